//! `etl stats clickstream`: a date's funnel, from Elasticsearch aggregations.

use std::fmt;
use std::process::ExitCode;

use etl_core::clickstream::stats::{funnel, FunnelStats};

use super::{context, today};
use crate::cli::{StatsArgs, WithStatistics};

pub async fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let WithStatistics::Clickstream = args.what;
    let ctx = context().await?;
    let stats = funnel(&ctx, args.date.unwrap_or_else(today)).await?;
    println!("{}", Funnel(&stats));
    Ok(ExitCode::SUCCESS)
}

/// The funnel as a table: counts, conversion rates, top categories.
struct Funnel<'a>(&'a FunnelStats);

impl fmt::Display for Funnel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        writeln!(f, "clickstream funnel for {}", s.logical_date)?;
        writeln!(f, "  events                {:>10}", s.events)?;
        writeln!(f, "  sessions              {:>10}", s.sessions)?;
        writeln!(
            f,
            "  → added to cart       {:>10}  ({:.1} %)",
            s.sessions_with_cart,
            s.view_to_cart * 100.0
        )?;
        writeln!(
            f,
            "  → purchased           {:>10}  ({:.1} % of carts)",
            s.sessions_with_purchase,
            s.cart_to_purchase * 100.0
        )?;
        writeln!(f, "  revenue               {:>10.2}", s.revenue)?;
        write!(f, "  top categories by revenue:")?;
        for c in &s.top_categories {
            write!(
                f,
                "\n    {:<20} {:>6} purchases {:>12.2}",
                c.category, c.purchases, c.revenue
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use etl_core::clickstream::stats::CategoryRevenue;

    use super::*;

    #[test]
    fn the_funnel_reads_top_down() {
        let stats = FunnelStats {
            logical_date: "2026-11-25".parse().unwrap(),
            events: 3900,
            sessions: 1000,
            sessions_with_cart: 300,
            sessions_with_purchase: 120,
            view_to_cart: 0.3,
            cart_to_purchase: 0.4,
            revenue: 4567.891,
            top_categories: vec![CategoryRevenue {
                category: "books".into(),
                purchases: 42,
                revenue: 1234.5,
            }],
        };
        assert_eq!(
            Funnel(&stats).to_string(),
            "clickstream funnel for 2026-11-25\n\
             \x20 events                      3900\n\
             \x20 sessions                    1000\n\
             \x20 → added to cart              300  (30.0 %)\n\
             \x20 → purchased                  120  (40.0 % of carts)\n\
             \x20 revenue                  4567.89\n\
             \x20 top categories by revenue:\n\
             \x20   books                    42 purchases      1234.50"
        );
    }
}
