//! template.yaml's IAM contract on every context the tests build (issue #14): a function's
//! AWS calls (a context's [`Context::for_function`] view, which the in-process runner makes
//! for each Task) are decided as AWS would decide them, and a call AWS would deny fails the
//! test. Each call is appended to `ETL_AWS_CALL_LOG` when set, for `etl iam report`.

use std::path::PathBuf;
use std::sync::Arc;

use etl_cli::iam::ContractAuditor;
use etl_core::aws_calls::{Audit, CallAuditor, CallLog};
use etl_core::{Config, Context};

use crate::repo_root;

pub fn template_path() -> PathBuf {
    repo_root().join("template.yaml")
}

/// template.yaml's contract for `config`'s bucket and secrets, logging to
/// `ETL_AWS_CALL_LOG` when set.
pub fn auditor(config: &Config) -> Arc<dyn CallAuditor> {
    let auditor = ContractAuditor::load(&template_path(), config, CallLog::from_env())
        .unwrap_or_else(|e| panic!("template.yaml's IAM contract: {e}"));
    Arc::new(auditor)
}

/// Clients for `config` whose function views are checked against template.yaml.
pub async fn audited_context(config: Config) -> Context {
    let audit = Audit::new(Some(auditor(&config)));
    Context::with_audit(config, audit)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
