//! template.yaml → each function's role policies, permissions boundary, and the bucket
//! policies, as SAM and CloudFormation would deploy them for one [`Deployment`].

use std::collections::BTreeMap;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::cfn::{get, resource_type, Resolver};
use crate::policy::{Policy, PolicyKind};
use crate::sam;
use crate::TemplateError;

/// The values CloudFormation would have at deploy time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Template parameters; the rest take their Default. A CommaDelimitedList is given as
    /// its comma-separated text ("" for an empty list).
    pub parameters: BTreeMap<String, String>,
    /// Physical names by logical id (`DataBucket` → the bucket name). Resources not named
    /// here get their logical id, which makes their ARNs synthetic but consistent.
    pub physical_names: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
    pub partition: String,
    pub stack_name: String,
}

impl Deployment {
    /// A deployment whose `DataBucket` is named `data_bucket`, in us-east-1 of account
    /// 123456789012 (moto's default account), with every parameter at its Default.
    pub fn new(data_bucket: &str) -> Self {
        Deployment {
            parameters: BTreeMap::new(),
            physical_names: BTreeMap::from([("DataBucket".to_string(), data_bucket.to_string())]),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            partition: "aws".into(),
            stack_name: "etl-pipelines".into(),
        }
    }

    /// Sets a template parameter.
    pub fn with_parameter(mut self, name: &str, value: &str) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    pub(crate) fn physical_name(&self, logical_id: &str) -> String {
        self.physical_names
            .get(logical_id)
            .cloned()
            .unwrap_or_else(|| logical_id.to_string())
    }
}

/// One function's effective policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionPolicies {
    /// `Metadata.BuildProperties.Binary` (the logical id when absent).
    pub binary: String,
    pub logical_id: String,
    /// SAM's role: `<LogicalId>Role`.
    pub role_arn: String,
    /// The session Lambda runs the function under (what a resource policy may name).
    pub session_arn: String,
    pub identity: Vec<Policy>,
    pub boundary: Option<Policy>,
}

/// A bucket policy: applies to the bucket's ARN and its objects'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    pub bucket_arn: String,
    pub policy: Policy,
}

impl ResourcePolicy {
    pub fn applies_to(&self, resource: &str) -> bool {
        resource == self.bucket_arn
            || resource
                .strip_prefix(self.bucket_arn.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

pub(crate) struct Loaded {
    pub(crate) functions: BTreeMap<String, FunctionPolicies>,
    pub(crate) resource_policies: Vec<ResourcePolicy>,
}

pub(crate) fn load(text: &str, deployment: &Deployment) -> Result<Loaded, TemplateError> {
    let root: Yaml = serde_yaml::from_str(text)?;
    let r = Resolver::new(&root, deployment)?;
    let mut managed = BTreeMap::new();
    let mut resource_policies = Vec::new();
    for (id, res) in r.resources() {
        if !r.deployed(res)? {
            continue;
        }
        match resource_type(res) {
            "AWS::IAM::ManagedPolicy" => {
                let doc = resolved(&r, res, "PolicyDocument")?;
                let arn = r.arn_of(id, "AWS::IAM::ManagedPolicy");
                managed.insert(
                    arn,
                    Policy::parse(id, PolicyKind::CustomerManaged, &doc, false)?,
                );
            }
            "AWS::S3::BucketPolicy" => {
                let bucket = resolved(&r, res, "Bucket")?;
                let bucket = bucket
                    .as_str()
                    .ok_or_else(|| TemplateError::Shape(format!("{id}: Bucket is not a name")))?;
                let doc = resolved(&r, res, "PolicyDocument")?;
                resource_policies.push(ResourcePolicy {
                    bucket_arn: format!("arn:{}:s3:::{bucket}", deployment.partition),
                    policy: Policy::parse(id, PolicyKind::Resource, &doc, true)?,
                });
            }
            _ => {}
        }
    }
    let globals = get(&root, "Globals").and_then(|g| get(g, "Function"));
    let mut functions = BTreeMap::new();
    for (id, res) in r.resources() {
        if resource_type(res) == "AWS::Serverless::Function" && r.deployed(res)? {
            let f = function(&r, id, res, globals, &managed)?;
            functions.insert(f.binary.clone(), f);
        }
    }
    Ok(Loaded {
        functions,
        resource_policies,
    })
}

fn resolved(r: &Resolver, res: &Yaml, property: &str) -> Result<Json, TemplateError> {
    let v = get(res, "Properties")
        .and_then(|p| get(p, property))
        .ok_or_else(|| TemplateError::Shape(format!("resource without Properties.{property}")))?;
    r.resolve(v)?
        .ok_or_else(|| TemplateError::Shape(format!("Properties.{property} is AWS::NoValue")))
}

fn function(
    r: &Resolver,
    id: &str,
    res: &Yaml,
    globals: Option<&Yaml>,
    managed: &BTreeMap<String, Policy>,
) -> Result<FunctionPolicies, TemplateError> {
    let d = r.deployment;
    let binary = get(res, "Metadata")
        .and_then(|m| get(m, "BuildProperties"))
        .and_then(|b| get(b, "Binary"))
        .and_then(Yaml::as_str)
        .unwrap_or(id)
        .to_string();
    let props = get(res, "Properties");
    // A function property overrides the Globals one of the same name (SAM's rule for
    // scalars, which these are).
    let property = |name: &str| {
        props
            .and_then(|p| get(p, name))
            .or_else(|| globals.and_then(|g| get(g, name)))
    };
    let unsupported = |message: &str| TemplateError::Unsupported {
        function: binary.clone(),
        message: message.into(),
    };
    if props.and_then(|p| get(p, "Role")).is_some() {
        return Err(unsupported(
            "a Role of its own is not modelled (only SAM-created roles)",
        ));
    }
    let mut identity = vec![known_managed(sam::BASIC_EXECUTION)?];
    // SAM attaches the VPC policy whenever VpcConfig is written, even when it resolves to
    // AWS::NoValue (aws/serverless-application-model#3502): the boundary must cope.
    if property("VpcConfig").is_some() {
        identity.push(known_managed(sam::VPC_EXECUTION)?);
    }
    if let Some(policies) = props.and_then(|p| get(p, "Policies")) {
        let policies = r.resolve(policies)?.unwrap_or(Json::Array(Vec::new()));
        identity.extend(role_policies(r, &binary, id, &policies, managed)?);
    }
    let boundary = match property("PermissionsBoundary") {
        None => None,
        Some(v) => match r.resolve(v)? {
            None => None,
            Some(Json::String(arn)) => Some(boundary_policy(&binary, &arn, managed)?),
            Some(_) => return Err(unsupported("PermissionsBoundary is not an ARN")),
        },
    };
    let role = format!("{id}Role");
    Ok(FunctionPolicies {
        role_arn: format!("arn:{}:iam::{}:role/{role}", d.partition, d.account_id),
        session_arn: format!(
            "arn:{}:sts::{}:assumed-role/{role}/{}",
            d.partition,
            d.account_id,
            d.physical_name(id)
        ),
        binary,
        logical_id: id.into(),
        identity,
        boundary,
    })
}

fn known_managed(name: &str) -> Result<Policy, TemplateError> {
    sam::aws_managed(name).ok_or_else(|| TemplateError::Shape(format!("managed policy {name}")))
}

fn boundary_policy(
    function: &str,
    arn: &str,
    managed: &BTreeMap<String, Policy>,
) -> Result<Policy, TemplateError> {
    let mut policy = managed
        .get(arn)
        .cloned()
        .or_else(|| sam::aws_managed(arn))
        .ok_or_else(|| TemplateError::UnknownBoundary {
            function: function.into(),
            arn: arn.into(),
        })?;
    policy.kind = PolicyKind::Boundary;
    Ok(policy)
}

/// The entries of `Policies` (a list, or a single entry): a managed policy name or ARN, an
/// inline document, or a SAM policy template.
fn role_policies(
    r: &Resolver,
    binary: &str,
    logical_id: &str,
    policies: &Json,
    managed: &BTreeMap<String, Policy>,
) -> Result<Vec<Policy>, TemplateError> {
    let entries = match policies {
        Json::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        // SAM names the role's inline policies `<Function>RolePolicy<N>` by position.
        let name = format!("{logical_id}RolePolicy{n}");
        let policy = match entry {
            Json::String(m) => managed
                .get(m)
                .cloned()
                .or_else(|| sam::aws_managed(m))
                .ok_or_else(|| TemplateError::UnknownManagedPolicy {
                    function: binary.into(),
                    policy: m.clone(),
                })?,
            Json::Object(map) if map.contains_key("Statement") => {
                Policy::parse(&name, PolicyKind::Inline, entry, false)?
            }
            Json::Object(map) if map.len() == 1 => {
                let (template, params) = map
                    .iter()
                    .next()
                    .ok_or_else(|| TemplateError::Shape(format!("{binary}: empty policy entry")))?;
                sam::expand_template(binary, &name, template, params, r.deployment)?
            }
            other => {
                return Err(TemplateError::Shape(format!(
                    "{binary}: Policies entry {other} is not a policy"
                )))
            }
        };
        out.push(policy);
    }
    Ok(out)
}
