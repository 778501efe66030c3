//! What SAM puts in a function's role besides the inline statements: its policy templates
//! (as samtranslator/policy_templates_data/policy_templates.json expands them) and the
//! AWS-managed execution-role policies.

use serde_json::{json, Map, Value};

use crate::cfn::json_text;
use crate::policy::{Policy, PolicyKind};
use crate::{Deployment, TemplateError};

/// Expands `{Template: {Parameter: value}}` into the policy SAM would attach. Only the
/// templates listed are known: any other is an error naming it.
pub(crate) fn expand_template(
    function: &str,
    policy_name: &str,
    template: &str,
    params: &Value,
    d: &Deployment,
) -> Result<Policy, TemplateError> {
    let empty = Map::new();
    let params = params.as_object().unwrap_or(&empty);
    let param = |name: &str| -> Result<String, TemplateError> {
        let missing = || TemplateError::PolicyTemplateParameter {
            function: function.into(),
            template: template.into(),
            parameter: name.into(),
        };
        json_text(params.get(name).ok_or_else(missing)?).map_err(|_| missing())
    };
    let p = &d.partition;
    let statement = match template {
        "AWSSecretsManagerGetSecretValuePolicy" => json!({
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": param("SecretArn")?,
        }),
        "S3ReadPolicy" | "S3CrudPolicy" | "S3WritePolicy" => {
            let bucket = param("BucketName")?;
            json!({
                "Effect": "Allow",
                "Action": s3_template_actions(template),
                "Resource": [format!("arn:{p}:s3:::{bucket}"), format!("arn:{p}:s3:::{bucket}/*")],
            })
        }
        _ => {
            return Err(TemplateError::UnknownPolicyTemplate {
                function: function.into(),
                template: template.into(),
            })
        }
    };
    let document = json!({ "Statement": [statement] });
    Ok(Policy::parse(
        policy_name,
        PolicyKind::SamTemplate(template.into()),
        &document,
        false,
    )?)
}

fn s3_template_actions(template: &str) -> Vec<&'static str> {
    const READ: [&str; 5] = [
        "s3:GetObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetObjectVersion",
        "s3:GetLifecycleConfiguration",
    ];
    match template {
        "S3ReadPolicy" => READ.to_vec(),
        "S3WritePolicy" => vec![
            "s3:PutObject",
            "s3:PutObjectAcl",
            "s3:PutLifecycleConfiguration",
        ],
        _ => READ
            .iter()
            .copied()
            .chain([
                "s3:PutObject",
                "s3:PutObjectAcl",
                "s3:PutLifecycleConfiguration",
                "s3:DeleteObject",
            ])
            .collect(),
    }
}

pub(crate) const BASIC_EXECUTION: &str = "AWSLambdaBasicExecutionRole";
pub(crate) const VPC_EXECUTION: &str = "AWSLambdaVPCAccessExecutionRole";

/// The AWS-managed policies this evaluator knows the contents of, by name or ARN.
pub(crate) fn aws_managed(name_or_arn: &str) -> Option<Policy> {
    let name = name_or_arn
        .rsplit_once(":policy/")
        .map_or(name_or_arn, |(_, n)| n.rsplit('/').next().unwrap_or(n));
    let logs = [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ];
    let actions: Vec<&str> = match name {
        BASIC_EXECUTION => logs.to_vec(),
        VPC_EXECUTION => logs
            .iter()
            .copied()
            .chain([
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ])
            .collect(),
        _ => return None,
    };
    let document = json!({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]});
    Policy::parse(name, PolicyKind::AwsManaged, &document, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_template_is_named() {
        let d = Deployment::new("b");
        let e = expand_template("f", "p", "DynamoDBCrudPolicy", &json!({}), &d).unwrap_err();
        assert!(e.to_string().contains("DynamoDBCrudPolicy"), "{e}");
    }

    #[test]
    fn crud_covers_bucket_and_objects() {
        let d = Deployment::new("b");
        let p = expand_template("f", "p", "S3CrudPolicy", &json!({"BucketName": "b"}), &d).unwrap();
        let s = &p.statements[0];
        assert!(s.covers_action("s3:DeleteObject"));
        assert!(s.covers_resource("arn:aws:s3:::b", false));
        assert!(s.covers_resource("arn:aws:s3:::b/k", false));
        assert!(!s.covers_resource("arn:aws:s3:::c/k", false));
    }

    #[test]
    fn managed_policies_by_name_or_arn() {
        assert!(aws_managed("AWSLambdaBasicExecutionRole").is_some());
        assert!(aws_managed(
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        )
        .is_some());
        assert!(aws_managed("AdministratorAccess").is_none());
    }
}
