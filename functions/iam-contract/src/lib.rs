//! The IAM contract of template.yaml: which AWS API calls each function may make once
//! deployed.
//!
//! The local stand-ins (moto for S3 and Secrets Manager) check no IAM, so a call AWS would
//! deny passes every local test. This crate evaluates requests against what template.yaml
//! deploys for a function — its role's policies (inline statements, SAM policy templates,
//! the AWS-managed execution-role policies SAM attaches), its permissions boundary and the
//! bucket policy — with AWS's same-account evaluation logic, so tests can assert that every
//! call they make would also be allowed on AWS.
//!
//! ```no_run
//! use iam_contract::{ApiCall, Contract, Deployment};
//! let deployment = Deployment::new("etl-lake-local")
//!     .with_parameter("DatabaseSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
//! let contract = Contract::load_file("template.yaml", &deployment)?;
//! let call = ApiCall::new("marketing-plan", "s3", "ListObjectsV2")
//!     .bucket("etl-lake-local")
//!     .prefix("raw/marketing/dt=2026-11-25/");
//! for evaluation in contract.check_call(&call)? {
//!     assert!(evaluation.is_allowed(), "{evaluation}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Not modelled: SCPs and RCPs, session policies, cross-account requests, policy variables
//! (`${aws:username}`), date and IP condition operators, KMS key policies, and condition keys
//! other than those a [`Request`] carries (a policy testing any other key sees it absent).

mod cfn;
mod condition;
mod error;
mod evaluate;
mod glob;
mod operations;
mod policy;
mod report;
mod sam;
mod template;

use std::collections::BTreeMap;
use std::path::Path;

pub use condition::ConditionClause;
pub use error::{ContractError, EvaluateError, OperationError, PolicyError, TemplateError};
pub use evaluate::{Decision, DenyReason, Evaluation, Request, StatementRef};
pub use operations::{requests_for, ApiCall, ArnScope};
pub use policy::{Effect, Patterns, Policy, PolicyKind, PrincipalSpec, Principals, Statement};
pub use report::{unused_grants, CoverageReport, UnusedGrant};
pub use template::{Deployment, FunctionPolicies, ResourcePolicy};

/// The functions' effective permissions for one deployment of template.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    deployment: Deployment,
    functions: BTreeMap<String, FunctionPolicies>,
    resource_policies: Vec<ResourcePolicy>,
}

impl Contract {
    /// Reads template.yaml's text as deployed with `deployment`.
    pub fn load(template: &str, deployment: &Deployment) -> Result<Contract, TemplateError> {
        let loaded = template::load(template, deployment)?;
        Ok(Contract {
            deployment: deployment.clone(),
            functions: loaded.functions,
            resource_policies: loaded.resource_policies,
        })
    }

    pub fn load_file(
        path: impl AsRef<Path>,
        deployment: &Deployment,
    ) -> Result<Contract, TemplateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Contract::load(&text, deployment)
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Every function, by binary name.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionPolicies> {
        self.functions.values()
    }

    pub fn function(&self, binary: &str) -> Option<&FunctionPolicies> {
        self.functions.get(binary)
    }

    pub fn resource_policies(&self) -> &[ResourcePolicy] {
        &self.resource_policies
    }

    /// Decides one IAM request.
    pub fn evaluate(&self, request: &Request) -> Result<Evaluation, EvaluateError> {
        evaluate::evaluate(self, request)
    }

    /// The deployment's partition, region and account, for building ARNs.
    pub fn arn_scope(&self) -> ArnScope {
        ArnScope {
            partition: self.deployment.partition.clone(),
            region: self.deployment.region.clone(),
            account_id: self.deployment.account_id.clone(),
        }
    }

    /// Maps an API call to its IAM requests and decides each.
    pub fn check_call(&self, call: &ApiCall) -> Result<Vec<Evaluation>, ContractError> {
        let requests = requests_for(call, &self.arn_scope())?;
        Ok(requests
            .iter()
            .map(|r| self.evaluate(r))
            .collect::<Result<Vec<_>, _>>()?)
    }
}
