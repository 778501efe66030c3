//! Errors. Anything the evaluator does not understand is an error naming it, never a silent
//! allow or deny, so a new policy shape or API call shows up as a failing test.

/// A policy document this evaluator cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy}: {message}")]
pub struct PolicyError {
    pub policy: String,
    pub message: String,
}

/// template.yaml (with the given deployment) cannot be turned into policies.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template.yaml is not YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("template.yaml: {0}")]
    Shape(String),
    #[error("parameter {0} has no value: give it in the Deployment (it has no Default)")]
    MissingParameter(String),
    #[error("the Deployment gives parameter {0}, which template.yaml does not declare")]
    UnknownParameter(String),
    #[error("unsupported CloudFormation intrinsic {0}")]
    UnsupportedIntrinsic(String),
    #[error("reference to {0}, which is neither a parameter, a pseudo parameter nor a resource")]
    UnknownReference(String),
    #[error("condition {0} is undefined or refers to itself")]
    BadCondition(String),
    #[error("function {function}: unknown SAM policy template {template}")]
    UnknownPolicyTemplate { function: String, template: String },
    #[error("function {function}: policy template {template} needs parameter {parameter}")]
    PolicyTemplateParameter {
        function: String,
        template: String,
        parameter: String,
    },
    #[error("function {function}: managed policy {policy} is not in template.yaml nor known here")]
    UnknownManagedPolicy { function: String, policy: String },
    #[error(
        "function {function}: permissions boundary {arn} is not a managed policy of template.yaml"
    )]
    UnknownBoundary { function: String, arn: String },
    #[error("function {function}: {message}")]
    Unsupported { function: String, message: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// A request that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    #[error("no function with binary {0} in template.yaml")]
    UnknownFunction(String),
}

/// An API call the operation mapping does not know (so it can never be silently allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    #[error("no IAM mapping for {service} {operation}: add it to iam-contract's operations.rs")]
    UnknownOperation { service: String, operation: String },
    #[error("{service} {operation} needs {field}")]
    MissingField {
        service: String,
        operation: String,
        field: &'static str,
    },
    #[error("CopySource {0:?} is not bucket/key")]
    BadCopySource(String),
}

/// Either step of checking an API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error(transparent)]
    Operation(#[from] OperationError),
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
}
