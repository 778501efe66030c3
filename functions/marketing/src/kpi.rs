//! The KPI report's numbers. polars does the grouping and sums the master dataset in integer
//! cents and hundredths (exact, so a re-run gives identical bytes); the ratios are computed
//! here, where a zero denominator becomes `None` rather than a NaN or an infinity.

use std::sync::Arc;

use bytes::Bytes;
use polars::prelude::*;
use polars_buffer::Buffer;
use serde::{Deserialize, Serialize};

/// Sums for one group of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub rows: u64,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: i64,
    pub cost_cents: i64,
    pub revenue_cents: i64,
    pub view_time_hundredths: i64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.rows += other.rows;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.cost_cents += other.cost_cents;
        self.revenue_cents += other.revenue_cents;
        self.view_time_hundredths += other.view_time_hundredths;
    }

    pub fn cost(&self) -> f64 {
        self.cost_cents as f64 / 100.0
    }

    pub fn revenue(&self) -> f64 {
        self.revenue_cents as f64 / 100.0
    }

    /// Real CPC: cost / clicks.
    pub fn cpc(&self) -> Option<f64> {
        ratio(self.cost(), self.clicks as f64)
    }

    /// Real CTR in percent: clicks / impressions × 100.
    pub fn ctr_percent(&self) -> Option<f64> {
        ratio(self.clicks as f64 * 100.0, self.impressions as f64)
    }

    /// ROI: (revenue − cost) / cost.
    pub fn roi(&self) -> Option<f64> {
        ratio(self.revenue() - self.cost(), self.cost())
    }

    /// Mean video view time in seconds.
    pub fn mean_view_time(&self) -> Option<f64> {
        ratio(self.view_time_hundredths as f64 / 100.0, self.rows as f64)
    }
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0).then(|| numerator / denominator)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformKpis {
    pub platform: String,
    pub totals: Totals,
    pub cost: f64,
    pub revenue: f64,
    pub cpc: Option<f64>,
    pub ctr_percent: Option<f64>,
    pub roi: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewTime {
    pub platform: Option<String>,
    pub audience: String,
    pub rows: u64,
    pub mean_view_time: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiReport {
    pub logical_date: String,
    pub rows: u64,
    pub overall: PlatformKpis,
    /// One entry per platform, by name.
    pub platforms: Vec<PlatformKpis>,
    /// Mean view time per audience, longest first.
    pub view_time_by_audience: Vec<ViewTime>,
    /// The same per platform × audience, longest first.
    pub view_time_by_platform_audience: Vec<ViewTime>,
}

impl PlatformKpis {
    pub(crate) fn new(platform: String, totals: Totals) -> Self {
        Self {
            platform,
            totals,
            cost: totals.cost(),
            revenue: totals.revenue(),
            cpc: totals.cpc(),
            ctr_percent: totals.ctr_percent(),
            roi: totals.roi(),
        }
    }
}

/// Computes the report from the master dataset's Parquet bytes.
pub fn compute(parquet: Bytes, logical_date: &str) -> PolarsResult<KpiReport> {
    let source = ScanSources::Buffers(Arc::from([Buffer::from_owner(parquet)]));
    // One in-memory object: nothing to discover from paths (polars cannot for buffers).
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    let master = LazyFrame::scan_parquet_sources(source, args)?.select([
        col("platform"),
        col("target_audience"),
        col("impressions"),
        col("clicks"),
        col("conversions"),
        hundredths("costo_total").alias("cost_cents"),
        hundredths("revenue").alias("revenue_cents"),
        hundredths("video_view_time").alias("view_time_hundredths"),
    ]);

    // One pass over the file: the finest grouping, then the coarser ones summed from it
    // (the sums are exact integers, so the order of adding does not matter). Three group-bys
    // read and decoded the Parquet three times.
    let by_both = totals_by(master, &["platform", "target_audience"])?;
    let by_platform = roll_up(&by_both, 0);
    let by_audience = roll_up(&by_both, 1);

    let mut overall = Totals::default();
    for (_, t) in &by_platform {
        overall.add(t);
    }
    let platforms = by_platform
        .into_iter()
        .map(|(keys, totals)| PlatformKpis::new(keys.join(" "), totals))
        .collect();
    let view_time = |groups: Vec<(Vec<String>, Totals)>| {
        let mut rows: Vec<ViewTime> = groups
            .into_iter()
            .map(|(mut keys, totals)| {
                let audience = keys.pop().unwrap_or_default();
                ViewTime {
                    platform: keys.pop(),
                    audience,
                    rows: totals.rows,
                    mean_view_time: totals.mean_view_time(),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.mean_view_time
                .partial_cmp(&a.mean_view_time)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.platform.cmp(&b.platform))
                .then_with(|| a.audience.cmp(&b.audience))
        });
        rows
    };
    Ok(KpiReport {
        logical_date: logical_date.to_string(),
        rows: overall.rows,
        overall: PlatformKpis::new("All platforms".to_string(), overall),
        platforms,
        view_time_by_audience: view_time(by_audience),
        view_time_by_platform_audience: view_time(by_both),
    })
}

/// Sums `groups` by the key at `key` of each: the groups of a coarser grouping, sorted by
/// name as polars sorts them.
fn roll_up(groups: &[(Vec<String>, Totals)], key: usize) -> Vec<(Vec<String>, Totals)> {
    let mut sums: std::collections::BTreeMap<&str, Totals> = std::collections::BTreeMap::new();
    for (keys, totals) in groups {
        let name = keys.get(key).map_or("", String::as_str);
        sums.entry(name).or_default().add(totals);
    }
    sums.into_iter()
        .map(|(name, totals)| (vec![name.to_string()], totals))
        .collect()
}

/// A non-negative decimal column as an exact integer count of hundredths.
fn hundredths(column: &str) -> Expr {
    (col(column) * lit(100.0) + lit(0.5)).cast(DataType::Int64)
}

/// Sums per group, sorted by the group keys.
fn totals_by(master: LazyFrame, keys: &[&str]) -> PolarsResult<Vec<(Vec<String>, Totals)>> {
    let grouped = master
        .group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
        .agg([
            len().alias("rows"),
            col("impressions").sum(),
            col("clicks").sum(),
            col("conversions").sum(),
            col("cost_cents").sum(),
            col("revenue_cents").sum(),
            col("view_time_hundredths").sum(),
        ])
        .sort(keys.to_vec(), SortMultipleOptions::default())
        .collect()?;
    let key_columns = keys
        .iter()
        .map(|k| grouped.column(k).and_then(|c| c.str().cloned()))
        .collect::<PolarsResult<Vec<_>>>()?;
    let int = |name: &str| -> PolarsResult<Vec<i64>> {
        let column = grouped.column(name)?.cast(&DataType::Int64)?;
        Ok(column.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let (rows, impressions, clicks, conversions, cost, revenue, view) = (
        int("rows")?,
        int("impressions")?,
        int("clicks")?,
        int("conversions")?,
        int("cost_cents")?,
        int("revenue_cents")?,
        int("view_time_hundredths")?,
    );
    Ok((0..grouped.height())
        .map(|i| {
            let names = key_columns
                .iter()
                .map(|c| c.get(i).unwrap_or_default().to_string())
                .collect();
            let totals = Totals {
                rows: rows[i].max(0) as u64,
                impressions: impressions[i],
                clicks: clicks[i],
                conversions: conversions[i],
                cost_cents: cost[i],
                revenue_cents: revenue[i],
                view_time_hundredths: view[i],
            };
            (names, totals)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_with_a_zero_denominator_are_none() {
        let zero = Totals::default();
        assert_eq!(
            (
                zero.cpc(),
                zero.ctr_percent(),
                zero.roi(),
                zero.mean_view_time()
            ),
            (None, None, None, None)
        );
        let t = Totals {
            rows: 2,
            impressions: 1_000,
            clicks: 20,
            conversions: 1,
            cost_cents: 400,
            revenue_cents: 1_000,
            view_time_hundredths: 300,
        };
        assert_eq!(t.cpc(), Some(0.2));
        assert_eq!(t.ctr_percent(), Some(2.0));
        assert_eq!(t.roi(), Some(1.5));
        assert_eq!(t.mean_view_time(), Some(1.5));
    }
}
