//! The e-commerce clickstream: simulated shopping sessions.

pub mod simulate;
pub mod stats;
