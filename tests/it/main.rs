//! The integration tests, one binary (one link) with a module per area, against the real
//! local services (`scripts/services up`). What they share is this crate's library
//! (`tests/support/`). nextest names a test `it <module>::<test>`: select an area with
//! `-E 'test(/^moto_differential::/)'`.
//!
//! Under `cargo test` every test shares this process on threads, so none may change
//! process-wide state (environment variables, the current directory, a global tracing
//! subscriber): each test gets its own database, bucket, index prefix and names, and child
//! processes get their settings through their own environment.

mod alerting;
mod bench;
mod bulk_retries;
mod chaos;
mod clickstream;
mod cloud_limits;
mod date_isolation;
mod deployed;
mod distributed_map;
mod docs;
mod hr_export_sync;
mod hr_hire;
mod hr_pipeline;
mod hr_sync_split;
mod iam;
mod kibana;
mod lambda_faults;
mod lambda_host;
mod lambda_init;
mod lambda_watch;
mod leases;
mod marketing;
mod maximums;
mod moto_differential;
mod opensearch_sigv4;
mod postgres_tls;
mod progress;
mod redrive;
mod scheduled_runs;
mod schema;
mod secrets;
mod services_down;
mod state_machines;
mod template_limits;
mod ui;
mod ui_deployed;
mod validate;
mod warm_reuse;
