//! The e-commerce clickstream: simulated shopping sessions.

pub mod simulate;
