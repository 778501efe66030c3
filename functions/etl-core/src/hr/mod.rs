//! The HR domain: generating, cleaning and loading employees.

pub mod clean;
pub mod generate;
pub mod load;
pub mod locale;
