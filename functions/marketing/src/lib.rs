//! The marketing data-lake pipeline (the seed's generate → unify → analyse): synthetic
//! ad-campaign partitions to `raw/`, a validated master dataset (polars) to `curated/`, bad
//! data to `quarantine/`, and a KPI report with charts to `reports/`. polars lives in this
//! crate only, so the other functions do not pay for it.

pub mod dataset;
pub mod generate;
pub mod kpi;
pub mod master;
pub mod plain_csv;
pub mod render;
pub mod stages;
pub mod validate;
