//! Deterministic shopping sessions: the same (interval, seed, session) always yields the same
//! events, so a re-run overwrites documents (deterministic `_id`s) instead of adding more.
//!
//! A session is a user on one device arriving from one referrer, viewing a few products;
//! some add one to the cart, some of those buy it. Timestamps rise within a session and stay
//! inside the interval; a purchase's total is exactly its cart's value.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;

use crate::rng::mix;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

pub const ADD_TO_CART_RATE: f64 = 0.30;
pub const PURCHASE_RATE: f64 = 0.40;

const DEVICES: &[(&str, u32)] = &[("mobile", 58), ("desktop", 34), ("tablet", 8)];
const REFERRERS: &[(&str, u32)] = &[
    ("google", 40),
    ("direct", 22),
    ("instagram", 12),
    ("facebook", 9),
    ("newsletter", 8),
    ("tiktok", 6),
    ("bing", 3),
];

struct Product {
    id: &'static str,
    name: &'static str,
    category: &'static str,
    price: f64,
}

const CATALOGUE: &[Product] = &[
    Product {
        id: "P-1001",
        name: "Zapatillas running Aire",
        category: "Calzado",
        price: 89.95,
    },
    Product {
        id: "P-1002",
        name: "Botas de montaña Pirineo",
        category: "Calzado",
        price: 129.00,
    },
    Product {
        id: "P-2001",
        name: "Camiseta técnica",
        category: "Ropa",
        price: 24.99,
    },
    Product {
        id: "P-2002",
        name: "Chaqueta cortavientos",
        category: "Ropa",
        price: 74.50,
    },
    Product {
        id: "P-2003",
        name: "Mallas de ciclismo",
        category: "Ropa",
        price: 49.90,
    },
    Product {
        id: "P-3001",
        name: "Auriculares inalámbricos",
        category: "Electrónica",
        price: 59.00,
    },
    Product {
        id: "P-3002",
        name: "Reloj GPS deportivo",
        category: "Electrónica",
        price: 249.00,
    },
    Product {
        id: "P-3003",
        name: "Altavoz Bluetooth",
        category: "Electrónica",
        price: 39.99,
    },
    Product {
        id: "P-4001",
        name: "Esterilla de yoga",
        category: "Fitness",
        price: 19.95,
    },
    Product {
        id: "P-4002",
        name: "Mancuernas ajustables",
        category: "Fitness",
        price: 119.00,
    },
    Product {
        id: "P-5001",
        name: "Mochila 30 L",
        category: "Accesorios",
        price: 54.00,
    },
    Product {
        id: "P-5002",
        name: "Botella térmica",
        category: "Accesorios",
        price: 17.50,
    },
];

/// One clickstream event, as indexed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub event_id: String,
    pub event_type: &'static str,
    pub timestamp: DateTime<Utc>,
    pub session_id: String,
    pub user_id: String,
    pub device: &'static str,
    pub referrer: &'static str,
    pub page: String,
    pub product_id: &'static str,
    pub product_name: &'static str,
    pub category: &'static str,
    pub price: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_total: Option<f64>,
    /// Position in the session, from 0.
    pub step: u32,
}

/// The sessions of one interval.
#[derive(Debug, Clone, Copy)]
pub struct Simulation {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub seed: u64,
    /// Distinct users sessions are drawn from.
    pub users: u32,
}

fn weighted<'a>(rng: &mut StdRng, items: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (item, weight) in items {
        if roll < *weight {
            return item;
        }
        roll -= weight;
    }
    items[0].0
}

fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

impl Simulation {
    fn interval_id(&self) -> String {
        self.start.format("%Y%m%dT%H").to_string()
    }

    /// The events of session `index`, in time order.
    pub fn session(&self, index: u32) -> Vec<Event> {
        let mut rng = StdRng::seed_from_u64(mix(mix(self.start.timestamp() as u64)
            ^ mix(self.seed)
            ^ u64::from(index)));
        let session_id = format!("s-{}-{}-{index:07}", self.interval_id(), self.seed);
        let user_id = format!("u-{:06}", rng.random_range(0..self.users.max(1)));
        let device = weighted(&mut rng, DEVICES);
        let referrer = weighted(&mut rng, REFERRERS);

        // Sessions start anywhere in the interval but leave room for their steps.
        let span = (self.end - self.start).num_seconds().max(60);
        let mut at = self.start
            + Duration::seconds(rng.random_range(0..span.saturating_sub(30 * 60).max(1)));
        let last_moment = self.end - Duration::milliseconds(1);

        let mut events = Vec::new();
        let push = |events: &mut Vec<Event>,
                    event_type: &'static str,
                    at: DateTime<Utc>,
                    product: &Product,
                    extra: (Option<u32>, Option<f64>, Option<f64>)| {
            let step = events.len() as u32;
            events.push(Event {
                event_id: format!("{session_id}-{step:03}"),
                event_type,
                timestamp: at.min(last_moment),
                session_id: session_id.clone(),
                user_id: user_id.clone(),
                device,
                referrer,
                page: match event_type {
                    "page_view" => format!("/producto/{}", product.id),
                    "add_to_cart" => "/carrito".to_string(),
                    _ => "/pedido/confirmado".to_string(),
                },
                product_id: product.id,
                product_name: product.name,
                category: product.category,
                price: product.price,
                quantity: extra.0,
                cart_value: extra.1,
                order_total: extra.2,
                step,
            });
        };

        let views = rng.random_range(1..=6u32);
        let mut viewed = Vec::with_capacity(views as usize);
        for _ in 0..views {
            let product = &CATALOGUE[rng.random_range(0..CATALOGUE.len())];
            push(&mut events, "page_view", at, product, (None, None, None));
            viewed.push(product);
            at += Duration::milliseconds(rng.random_range(5_000..120_000));
        }
        if rng.random_bool(ADD_TO_CART_RATE) {
            let product = viewed[rng.random_range(0..viewed.len())];
            let quantity = rng.random_range(1..=3u32);
            let cart_value = cents(product.price * f64::from(quantity));
            push(
                &mut events,
                "add_to_cart",
                at,
                product,
                (Some(quantity), Some(cart_value), None),
            );
            at += Duration::milliseconds(rng.random_range(20_000..300_000));
            if rng.random_bool(PURCHASE_RATE) {
                push(
                    &mut events,
                    "purchase",
                    at,
                    product,
                    (Some(quantity), Some(cart_value), Some(cart_value)),
                );
            }
        }
        events
    }
}

/// `[start, end)` of a day, or of one hour of it.
pub fn interval(
    date: chrono::NaiveDate,
    hour: Option<u32>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match hour {
        None => {
            let start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?);
            Some((start, start + Duration::days(1)))
        }
        Some(h) if h < 24 => {
            let start = Utc.from_utc_datetime(&date.and_hms_opt(h, 0, 0)?);
            Some((start, start + Duration::hours(1)))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Simulation {
        let (start, end) = interval(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            Some(14),
        )
        .unwrap();
        Simulation {
            start,
            end,
            seed: 3,
            users: 500,
        }
    }

    #[test]
    fn sessions_are_deterministic() {
        assert_eq!(sim().session(42), sim().session(42));
        assert_ne!(sim().session(42), sim().session(43));
    }

    #[test]
    fn funnel_invariants_hold() {
        let s = sim();
        let (mut views, mut carts, mut purchases) = (0, 0, 0);
        for i in 0..5000 {
            let events = s.session(i);
            assert_eq!(events[0].event_type, "page_view");
            assert!(
                events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
                "timestamps must rise"
            );
            assert!(
                events
                    .iter()
                    .all(|e| e.timestamp >= s.start && e.timestamp < s.end),
                "outside the interval"
            );
            let cart = events.iter().find(|e| e.event_type == "add_to_cart");
            if let Some(purchase) = events.iter().find(|e| e.event_type == "purchase") {
                let cart = cart.expect("no purchase without an add_to_cart");
                assert!(cart.timestamp <= purchase.timestamp);
                assert_eq!(
                    purchase.order_total, cart.cart_value,
                    "purchase must match the cart"
                );
                assert_eq!(purchase.product_id, cart.product_id);
            }
            for e in &events {
                match e.event_type {
                    "page_view" => views += 1,
                    "add_to_cart" => carts += 1,
                    _ => purchases += 1,
                }
            }
        }
        let cart_rate = f64::from(carts) / 5000.0;
        let purchase_rate = f64::from(purchases) / f64::from(carts);
        assert!((0.25..0.35).contains(&cart_rate), "{cart_rate}");
        assert!((0.33..0.47).contains(&purchase_rate), "{purchase_rate}");
        assert!(views > 5000);
    }
}
