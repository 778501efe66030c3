//! The HR domain: generating, cleaning and loading employees.

pub mod binary_copy;
pub mod chunks;
pub mod clean;
pub mod generate;
pub mod load;
pub mod locale;
