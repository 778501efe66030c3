//! Everything the pipeline stages share: configuration, clients, typed errors, the logical
//! date, schema migrations, and the stages themselves. No Lambda runtime here: the Lambda
//! entry points and the `etl` CLI are thin shells around this crate.

pub mod aws_calls;
pub mod clickstream;
pub mod clients;
pub mod config;
pub mod database;
pub mod error;
pub mod hr;
pub mod lease;
pub mod ledger;
pub mod logical_date;
pub mod metrics;
pub mod migrations;
pub mod postgres_tls;
pub mod probe;
pub mod retry;
pub mod rng;
pub mod s3;
pub mod search;
pub mod secrets;
pub mod stage;
pub mod stages;

pub use clients::Context;
pub use config::{Config, ConfigError, EnvSource};
pub use error::{ErrorKind, LeaseError, Service, StageError, TlsError};
pub use logical_date::LogicalDate;
pub use secrets::SecretError;
