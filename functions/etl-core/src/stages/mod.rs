//! One module per pipeline stage; each is the body of one Lambda function.

pub mod clickstream_simulate;
pub mod hr_export;
pub mod hr_hire;
pub mod hr_schema;
pub mod hr_sync;
pub mod plan;
pub mod record_run;
