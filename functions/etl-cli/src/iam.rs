//! template.yaml's IAM contract applied to the functions' AWS calls (issue #14): the auditor
//! the tests and `etl run` install ([`ContractAuditor`]), and `etl iam report`'s figures
//! from the call log ([`report`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use etl_core::aws_calls::{ApiCall, CallAuditor, CallDeployment, CallLog, CallRecord};
use etl_core::Config;
use iam_contract::{
    requests_for, unused_grants, Contract, CoverageReport, Deployment, Evaluation, Request,
};

/// The environment variable naming the template whose contract `etl run`'s in-process
/// functions are checked against.
pub const CONTRACT_VAR: &str = "ETL_IAM_CONTRACT";

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error(transparent)]
    Template(#[from] iam_contract::TemplateError),
    #[error(transparent)]
    Evaluate(#[from] iam_contract::EvaluateError),
    #[error("cannot read the call log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("call log line {line}: {source}")]
    Line {
        line: usize,
        source: serde_json::Error,
    },
}

/// The deployment template.yaml is evaluated for: the context's bucket and secrets.
pub fn deployment(d: &CallDeployment) -> Deployment {
    let mut deployment = Deployment::new(&d.bucket);
    if let Some(arn) = &d.database_secret_arn {
        deployment = deployment.with_parameter("DatabaseSecretArn", arn);
    }
    if let Some(arn) = &d.elasticsearch_secret_arn {
        deployment = deployment.with_parameter("ElasticsearchSecretArn", arn);
    }
    deployment
}

/// Decides each call against the contract; a denied call fails (the reason names function,
/// action, resource and the statement or its absence). Every call is logged when a
/// [`CallLog`] is given.
pub struct ContractAuditor {
    contract: Contract,
    deployment: CallDeployment,
    log: Option<CallLog>,
}

impl ContractAuditor {
    pub fn new(contract: Contract, deployment: CallDeployment, log: Option<CallLog>) -> Self {
        ContractAuditor {
            contract,
            deployment,
            log,
        }
    }

    /// The contract of the template at `template` for `config`'s bucket and secrets.
    pub fn load(template: &Path, config: &Config, log: Option<CallLog>) -> Result<Self, IamError> {
        let calls = CallDeployment::of(config);
        let contract = Contract::load_file(template, &deployment(&calls))?;
        Ok(ContractAuditor::new(contract, calls, log))
    }

    /// The auditor `ETL_IAM_CONTRACT` (a template path) asks for, logging to
    /// `ETL_AWS_CALL_LOG` when set; `None` without `ETL_IAM_CONTRACT`.
    pub fn from_env(config: &Config) -> Result<Option<Arc<dyn CallAuditor>>, IamError> {
        let Some(template) = std::env::var_os(CONTRACT_VAR).map(PathBuf::from) else {
            return Ok(None);
        };
        let auditor = ContractAuditor::load(&template, config, CallLog::from_env())?;
        Ok(Some(Arc::new(auditor)))
    }

    fn decide(&self, call: &ApiCall) -> Result<Vec<Evaluation>, String> {
        self.contract
            .check_call(call)
            .map_err(|e| format!("{} {} {}: {e}", call.function, call.service, call.operation))
    }
}

impl CallAuditor for ContractAuditor {
    fn check(&self, call: &ApiCall) -> Result<(), String> {
        let decided = self.decide(call);
        let denied = match &decided {
            Ok(evaluations) => evaluations
                .iter()
                .find(|e| !e.is_allowed())
                .map(ToString::to_string),
            Err(reason) => Some(reason.clone()),
        };
        if let Some(log) = &self.log {
            let evaluations = decided
                .iter()
                .flatten()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect();
            log.append(&CallRecord {
                call: call.clone(),
                deployment: self.deployment.clone(),
                decision: if denied.is_some() {
                    "denied"
                } else {
                    "allowed"
                }
                .into(),
                evaluations,
                reason: denied.clone(),
            });
        }
        match denied {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    fn permits(&self, call: &ApiCall) -> Option<bool> {
        Some(
            self.decide(call)
                .is_ok_and(|evaluations| evaluations.iter().all(Evaluation::is_allowed)),
        )
    }
}

/// The deployment every logged call is decided again for: each test's own bucket and
/// secrets map onto these, so one contract covers all of them.
fn canonical() -> CallDeployment {
    CallDeployment {
        bucket: "etl-lake".into(),
        database_secret_arn: Some(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/database-AbCdEf".into(),
        ),
        elasticsearch_secret_arn: Some(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/elasticsearch-AbCdEf".into(),
        ),
    }
}

/// `call` with the record's bucket and secrets replaced by the canonical deployment's.
fn canonical_call(record: &CallRecord, to: &CallDeployment) -> ApiCall {
    let from = &record.deployment;
    let mut call = record.call.clone();
    if call.bucket.as_deref() == Some(from.bucket.as_str()) {
        call.bucket = Some(to.bucket.clone());
    }
    if let Some(source) = &call.copy_source {
        let trimmed = source.trim_start_matches('/');
        if let Some(rest) = trimmed.strip_prefix(&format!("{}/", from.bucket)) {
            call.copy_source = Some(format!("{}/{rest}", to.bucket));
        }
    }
    let secrets = [
        (&from.database_secret_arn, &to.database_secret_arn),
        (&from.elasticsearch_secret_arn, &to.elasticsearch_secret_arn),
    ];
    for (from, to) in secrets {
        if from.is_some() && call.secret_id == *from {
            call.secret_id.clone_from(to);
        }
    }
    call
}

/// One function's calls in the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FunctionCalls {
    pub calls: usize,
    /// Calls recorded by a Lambda binary, decided only here.
    pub unchecked: usize,
    pub denials: Vec<String>,
}

/// `etl iam report`'s result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamReport {
    pub functions: BTreeMap<String, FunctionCalls>,
    pub unused: CoverageReport,
}

impl IamReport {
    pub fn denials(&self) -> usize {
        self.functions.values().map(|f| f.denials.len()).sum()
    }
}

/// Decides every call of a log (its text) again against the template at `template`, and
/// lists the grants none of them exercised.
pub fn report(template: &Path, log: &str) -> Result<IamReport, IamError> {
    let to = canonical();
    let contract = Contract::load_file(template, &deployment(&to))?;
    let scope = contract.arn_scope();
    let mut functions: BTreeMap<String, FunctionCalls> = contract
        .functions()
        .map(|f| (f.binary.clone(), FunctionCalls::default()))
        .collect();
    let mut requests: Vec<Request> = Vec::new();
    for (n, line) in log
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: CallRecord = serde_json::from_str(line).map_err(|source| IamError::Line {
            line: n + 1,
            source,
        })?;
        let call = canonical_call(&record, &to);
        let entry = functions.entry(call.function.clone()).or_default();
        entry.calls += 1;
        entry.unchecked += usize::from(record.decision == "unchecked");
        let decided = requests_for(&call, &scope)
            .map_err(|e| e.to_string())
            .and_then(|rs| {
                rs.iter()
                    .map(|r| contract.evaluate(r).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()
            });
        match decided {
            Ok(evaluations) => {
                for e in evaluations {
                    if !e.is_allowed() {
                        entry.denials.push(e.to_string());
                    }
                    requests.push(e.request);
                }
            }
            Err(reason) => entry.denials.push(format!(
                "{} {} {}: {reason}",
                call.function, call.service, call.operation
            )),
        }
    }
    let unused = unused_grants(&contract, &requests)?;
    Ok(IamReport { functions, unused })
}

impl fmt::Display for IamReport {
    /// Markdown: the calls per function, the denials, the unused grants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| function | AWS calls checked | of which from Lambda binaries | denials |"
        )?;
        writeln!(f, "| --- | ---: | ---: | ---: |")?;
        for (name, calls) in &self.functions {
            writeln!(
                f,
                "| {name} | {} | {} | {} |",
                calls.calls,
                calls.unchecked,
                calls.denials.len()
            )?;
        }
        let total: usize = self.functions.values().map(|c| c.calls).sum();
        writeln!(f, "| **all** | {total} | | {} |", self.denials())?;
        if self.denials() > 0 {
            writeln!(f, "\nDenials:\n")?;
            for (name, calls) in &self.functions {
                for d in &calls.denials {
                    writeln!(f, "- {name}: {d}")?;
                }
            }
        }
        writeln!(
            f,
            "\nGrants no call exercised ({}):\n",
            self.unused.unused.len()
        )?;
        write!(f, "{}", self.unused)
    }
}
