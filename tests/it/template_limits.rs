//! CloudFormation refuses a stack whose properties exceed the services' own limits, and no
//! local tool we run catches all of them (cfn-lint 1.58 misses E3033 on a Lambda
//! `Description` over 256 characters). These are the limits of every property our template
//! sets as a literal string, from the services' API references.

use serde_yaml::Value;

use integration_tests::repo_root;

/// (resource type, property, maximum length in characters).
const LIMITS: &[(&str, &str, usize)] = &[
    ("AWS::Serverless::Function", "Description", 256),
    ("AWS::Serverless::Function", "FunctionName", 64),
    ("AWS::Lambda::Function", "Description", 256),
    ("AWS::Lambda::Function", "FunctionName", 64),
    ("AWS::Serverless::StateMachine", "Name", 80),
    ("AWS::StepFunctions::StateMachine", "StateMachineName", 80),
    ("AWS::Scheduler::Schedule", "Name", 64),
    ("AWS::Scheduler::Schedule", "Description", 512),
    ("AWS::Scheduler::Schedule", "GroupName", 64),
    ("AWS::Scheduler::ScheduleGroup", "Name", 64),
    ("AWS::IAM::Role", "Description", 1000),
    ("AWS::IAM::Role", "RoleName", 64),
    ("AWS::IAM::ManagedPolicy", "Description", 1000),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName", 128),
    ("AWS::Logs::LogGroup", "LogGroupName", 512),
    ("AWS::SQS::Queue", "QueueName", 80),
    ("AWS::SNS::Topic", "TopicName", 256),
    ("AWS::SNS::Topic", "DisplayName", 100),
    ("AWS::CloudWatch::Alarm", "AlarmName", 255),
    ("AWS::CloudWatch::Alarm", "AlarmDescription", 1024),
    ("AWS::CloudWatch::Dashboard", "DashboardName", 255),
    ("AWS::Events::Rule", "Name", 64),
    ("AWS::Events::Rule", "Description", 512),
    ("AWS::EC2::VPCEndpoint", "PolicyDocument", 20480),
];

/// A template-level `Description` may have 1,024 bytes; a parameter's 4,000 characters; an
/// output's 1,024.
const TEMPLATE_DESCRIPTION: usize = 1024;
const PARAMETER_DESCRIPTION: usize = 4000;
const OUTPUT_DESCRIPTION: usize = 1024;

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// Every literal string property over its limit, as "Resource.Property: N > max".
fn violations(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |what: String, value: Option<&Value>, max: usize| {
        if let Some(text) = value.and_then(Value::as_str) {
            let length = text.chars().count();
            if length > max {
                found.push(format!("{what}: {length} characters > {max}"));
            }
        }
    };
    check(
        "Description".into(),
        template.get("Description"),
        TEMPLATE_DESCRIPTION,
    );
    for (section, max) in [
        ("Parameters", PARAMETER_DESCRIPTION),
        ("Outputs", OUTPUT_DESCRIPTION),
    ] {
        if let Some(entries) = template.get(section).and_then(Value::as_mapping) {
            for (name, entry) in entries {
                let name = name.as_str().unwrap_or("?");
                check(
                    format!("{section}.{name}.Description"),
                    entry.get("Description"),
                    max,
                );
            }
        }
    }
    let resources = template.get("Resources").and_then(Value::as_mapping);
    for (name, resource) in resources.into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("?");
        let properties = resource.get("Properties");
        for (_, property, max) in LIMITS.iter().filter(|(t, _, _)| *t == kind) {
            check(
                format!("{name}.{property}"),
                properties.and_then(|p| p.get(*property)),
                *max,
            );
        }
    }
    found
}

#[test]
fn every_literal_property_is_within_the_service_limit() {
    let found = violations(&template());
    assert!(found.is_empty(), "CloudFormation would refuse: {found:#?}");
}

#[test]
fn a_lambda_description_over_256_characters_is_caught() {
    let mut template = template();
    let long = "x".repeat(273);
    let function = template["Resources"]["HrSchemaFunction"]["Properties"]
        .as_mapping_mut()
        .expect("HrSchemaFunction has Properties");
    function.insert("Description".into(), long.into());
    let found = violations(&template);
    assert_eq!(
        found,
        vec!["HrSchemaFunction.Description: 273 characters > 256".to_string()]
    );
}
