//! template.yaml's alerting (issue #16): the failure rule matches exactly our machines' failed,
//! timed-out and aborted runs and tells the alert topic a readable message; every alarm
//! watches a metric that exists (Lambda's, the dead-letter queue's, or one our code emits,
//! cross-checked against etl-core's EMF constants) and tells the topic; the VPC resources
//! exist only under the VPC condition and the boundary lets Lambda manage ENIs only there.

use std::collections::{BTreeMap, BTreeSet};

use etl_core::metrics::{names, NAMESPACE};
use iam_contract::{Contract, Deployment, Request};
use integration_tests::{repo_root, template};
use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

fn raw_template() -> Yaml {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn resources(root: &Yaml) -> impl Iterator<Item = (&str, &Yaml)> {
    root["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id"), v))
}

fn of_type<'a>(root: &'a Yaml, kind: &'a str) -> Vec<(&'a str, &'a Yaml)> {
    resources(root).filter(|(_, r)| r["Type"] == kind).collect()
}

/// `!Tag value` as (tag, value).
fn tagged(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        _ => None,
    }
}

/// The logical id of a `!Ref X`.
fn ref_of(value: &Yaml) -> Option<&str> {
    tagged(value).and_then(|(tag, v)| (tag == "Ref").then(|| v.as_str()).flatten())
}

/// A state machine's ARN as AWS would make it for the logical id.
fn machine_arn(logical_id: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical_id}-AbCdEf123456")
}

/// The YAML as JSON, `!Ref` of a state machine as its ARN and other intrinsics as markers.
fn resolve(value: &Yaml, machines: &BTreeSet<String>) -> Json {
    if let Some((tag, inner)) = tagged(value) {
        return match (tag.as_str(), inner.as_str()) {
            ("Ref", Some(id)) if machines.contains(id) => Json::String(machine_arn(id)),
            ("Ref", Some(id)) => Json::String(format!("ref:{id}")),
            ("GetAtt", Some(path)) => Json::String(format!("getatt:{path}")),
            ("Sub", Some(text)) => Json::String(text.to_string()),
            _ => json!({ tag: resolve(inner, machines) }),
        };
    }
    match value {
        Yaml::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or("?").to_string(), resolve(v, machines)))
                .collect(),
        ),
        Yaml::Sequence(s) => Json::Array(s.iter().map(|v| resolve(v, machines)).collect()),
        other => serde_json::to_value(other).unwrap_or(Json::Null),
    }
}

/// EventBridge's matching for the pattern forms the rule uses: a field's array lists the
/// values it may have (any of them, against a scalar or an array in the event), an object
/// matches a nested object. Content filters (`prefix`, `anything-but`…) are refused so the
/// test cannot silently misjudge a richer pattern.
fn matches(pattern: &Json, event: &Json) -> bool {
    let pattern = pattern.as_object().expect("a pattern is an object");
    pattern.iter().all(|(key, wanted)| {
        let Some(actual) = event.get(key) else {
            return false;
        };
        match wanted {
            Json::Object(_) => actual.is_object() && matches(wanted, actual),
            Json::Array(values) => {
                assert!(
                    values.iter().all(|v| !v.is_object()),
                    "content filters are not evaluated here: {key}: {wanted}"
                );
                match actual {
                    Json::Array(items) => items.iter().any(|i| values.contains(i)),
                    scalar => values.contains(scalar),
                }
            }
            other => panic!("pattern value for {key} must be an array or object: {other}"),
        }
    })
}

/// A Step Functions "Execution Status Change" event, as the service sends it.
fn status_change(machine: &str, status: &str) -> Json {
    let name = "hr-2026-11-25-manual";
    json!({
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": "2026-11-26T00:47:12Z",
        "region": REGION,
        "resources": [format!("{}:{name}", machine.replace(":stateMachine:", ":execution:"))],
        "detail": {
            "executionArn": format!("{}:{name}", machine.replace(":stateMachine:", ":execution:")),
            "stateMachineArn": machine,
            "name": name,
            "status": status,
            "startDate": 1_764_117_600_000_i64,
            "stopDate": 1_764_118_032_000_i64,
            "input": "{}",
            "output": null,
            "error": "Retryable",
            "cause": "PostgreSQL: connection refused"
        }
    })
}

fn machine_ids(root: &Yaml) -> BTreeSet<String> {
    of_type(root, "AWS::Serverless::StateMachine")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect()
}

fn failure_rule(root: &Yaml) -> &Yaml {
    let rules = of_type(root, "AWS::Events::Rule");
    assert_eq!(rules.len(), 1, "one failure rule");
    rules[0].1
}

#[test]
fn the_failure_rule_matches_failed_timed_out_and_aborted_runs_of_our_machines_only() {
    let root = raw_template();
    let machines = machine_ids(&root);
    assert_eq!(machines.len(), 4, "{machines:?}");
    let pattern = resolve(
        &failure_rule(&root)["Properties"]["EventPattern"],
        &machines,
    );
    for machine in &machines {
        let arn = machine_arn(machine);
        for status in ["FAILED", "TIMED_OUT", "ABORTED"] {
            assert!(
                matches(&pattern, &status_change(&arn, status)),
                "{machine} {status} must alert"
            );
        }
        for status in ["SUCCEEDED", "RUNNING", "PENDING_REDRIVE"] {
            assert!(
                !matches(&pattern, &status_change(&arn, status)),
                "{machine} {status} must not alert"
            );
        }
    }
    let stranger = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:SomeoneElses");
    assert!(!matches(&pattern, &status_change(&stranger, "FAILED")));
    let mut other_source = status_change(&machine_arn("HrStateMachine"), "FAILED");
    other_source["source"] = json!("aws.batch");
    assert!(!matches(&pattern, &other_source));
}

/// EventBridge's input transformer for the `$.a.b` paths the rule uses.
fn transform(transformer: &Json, event: &Json) -> String {
    let mut text = transformer["InputTemplate"]
        .as_str()
        .expect("InputTemplate")
        .to_string();
    for (name, path) in transformer["InputPathsMap"].as_object().expect("paths") {
        let path = path.as_str().expect("path").trim_start_matches("$.");
        let value = path.split('.').fold(event, |v, key| &v[key]);
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        text = text.replace(&format!("<{name}>"), &value);
    }
    text
}

#[test]
fn the_alert_says_which_run_failed_why_and_how_to_redrive() {
    let root = raw_template();
    let machines = machine_ids(&root);
    let targets = resolve(&failure_rule(&root)["Properties"]["Targets"], &machines);
    let targets = targets.as_array().expect("Targets");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["Arn"], "ref:AlertTopic");
    let transformer = &targets[0]["InputTransformer"];
    let template_text = transformer["InputTemplate"].as_str().unwrap();
    for name in transformer["InputPathsMap"].as_object().unwrap().keys() {
        assert!(
            template_text.contains(&format!("<{name}>")),
            "{name} unused"
        );
    }
    let arn = machine_arn("MarketingStateMachine");
    let message = transform(transformer, &status_change(&arn, "TIMED_OUT"));
    let execution_arn = arn.replace(":stateMachine:", ":execution:") + ":hr-2026-11-25-manual";
    for needle in [
        "TIMED_OUT",
        arn.as_str(),
        "hr-2026-11-25-manual",
        "Retryable",
        "PostgreSQL: connection refused",
        "console.aws.amazon.com/states/",
        &format!("aws stepfunctions redrive-execution --execution-arn {execution_arn}"),
    ] {
        assert!(message.contains(needle), "{needle:?} not in:\n{message}");
    }
    assert!(!message.contains('<'), "a placeholder is left:\n{message}");
    // Each line is one quoted string: EventBridge's form for plain multi-line text.
    for line in template_text.lines() {
        assert!(line.starts_with('"') && line.ends_with('"'), "{line}");
    }
}

#[test]
fn the_topic_is_encrypted_with_a_key_its_publishers_may_use_and_only_they_publish() {
    let root = raw_template();
    let none = BTreeSet::new();
    let topic = &root["Resources"]["AlertTopic"]["Properties"];
    // alias/aws/sns would silently drop every alert: its key policy cannot let EventBridge
    // or CloudWatch use it.
    let key_id = ref_of(&topic["KmsMasterKeyId"]).expect("KmsMasterKeyId: !Ref <key>");
    let key = &root["Resources"][key_id];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let key_policy = resolve(&key["Properties"]["KeyPolicy"], &none);
    let publishers = key_policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "AlertPublishersEncrypt")
        .expect("a statement for the publishers");
    assert_eq!(
        publishers["Principal"]["Service"],
        json!(["events.amazonaws.com", "cloudwatch.amazonaws.com"])
    );

    let policy = of_type(&root, "AWS::SNS::TopicPolicy");
    assert_eq!(policy.len(), 1);
    let document = resolve(&policy[0].1["Properties"]["PolicyDocument"], &none);
    let statements = document["Statement"].as_array().unwrap();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "sns:Publish");
        assert_eq!(statement["Resource"], "ref:AlertTopic");
    }
    let events = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "events.amazonaws.com")
        .expect("EventBridge may publish");
    assert_eq!(
        events["Condition"]["ArnEquals"]["aws:SourceArn"],
        "getatt:PipelineFailureRule.Arn"
    );
    let alarms = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .expect("the alarms may publish");
    assert!(alarms["Condition"]["ArnLike"]["aws:SourceArn"]
        .as_str()
        .unwrap()
        .ends_with(":alarm:${AWS::StackName}-*"));
    assert_eq!(statements.len(), 2, "no other publisher");

    let subscription = &root["Resources"]["AlertEmailSubscription"];
    assert_eq!(subscription["Condition"], "HasAlertEmail");
    assert_eq!(
        resolve(&root["Conditions"]["HasAlertEmail"], &none),
        json!({"Not": [{"Equals": ["ref:AlertEmail", ""]}]})
    );
    assert_eq!(root["Parameters"]["AlertEmail"]["Default"], "");
}

/// The pipeline names `record-run` is called with, per state machine logical id.
fn recorded_pipelines() -> BTreeMap<String, String> {
    let mut pipelines = BTreeMap::new();
    for machine in &template().machines {
        let asl = std::fs::read_to_string(&machine.definition_path).expect("ASL file");
        if let Some(rest) = asl.split("\"pipeline\": \"").nth(1) {
            let name = rest.split('"').next().unwrap_or_default().to_string();
            pipelines.insert(machine.logical_id.clone(), name);
        }
    }
    pipelines
}

fn dimensions(alarm: &Yaml) -> Vec<(String, &Yaml)> {
    alarm["Properties"]["Dimensions"]
        .as_sequence()
        .map(|dims| {
            dims.iter()
                .map(|d| (d["Name"].as_str().unwrap_or("?").to_string(), &d["Value"]))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one alarm's metric against what exists; returns (namespace, metric, dimension
/// values) for the coverage checks.
fn check_metric(id: &str, alarm: &Yaml, root: &Yaml) -> (String, String, Vec<String>) {
    let properties = &alarm["Properties"];
    let namespace = properties["Namespace"]
        .as_str()
        .expect("Namespace")
        .to_string();
    let metric = properties["MetricName"]
        .as_str()
        .expect("MetricName")
        .to_string();
    let dims = dimensions(alarm);
    let functions = template().functions;
    let pipelines: BTreeSet<String> = recorded_pipelines().into_values().collect();
    let values: Vec<String> = match namespace.as_str() {
        "AWS/Lambda" => {
            assert!(
                ["Errors", "Throttles"].contains(&metric.as_str()),
                "{id}: {metric}"
            );
            assert_eq!(dims.len(), 1, "{id}");
            assert_eq!(dims[0].0, "FunctionName", "{id}");
            let function = ref_of(dims[0].1).expect("FunctionName: !Ref <function>");
            assert!(
                functions.contains_key(function),
                "{id}: {function} is not ours"
            );
            vec![function.to_string()]
        }
        "AWS/SQS" => {
            assert_eq!(metric, "ApproximateNumberOfMessagesVisible", "{id}");
            assert_eq!(dims[0].0, "QueueName");
            let (tag, target) = tagged(dims[0].1).expect("!GetAtt");
            assert_eq!(
                (tag.as_str(), target.as_str()),
                ("GetAtt", Some("ScheduleDeadLetterQueue.QueueName"))
            );
            assert_eq!(
                root["Resources"]["ScheduleDeadLetterQueue"]["Type"],
                "AWS::SQS::Queue"
            );
            vec!["ScheduleDeadLetterQueue".into()]
        }
        ns if ns == NAMESPACE => {
            let literal = |v: &Yaml| v.as_str().expect("a literal dimension value").to_string();
            let keys: Vec<&str> = dims.iter().map(|(k, _)| k.as_str()).collect();
            if names::RUN_METRICS.contains(&metric.as_str()) {
                assert_eq!(keys, ["Pipeline"], "{id}");
            } else {
                assert!(
                    names::STAGE_METRICS.contains(&metric.as_str()),
                    "{id}: {metric} is not emitted"
                );
                assert_eq!(keys, ["Pipeline", "Stage"], "{id}");
                let stage = literal(dims[1].1);
                assert!(
                    functions.values().any(|binary| *binary == stage),
                    "{id}: Stage {stage} is no function"
                );
            }
            let pipeline = literal(dims[0].1);
            assert!(
                pipelines.contains(&pipeline),
                "{id}: no pipeline {pipeline} in {pipelines:?}"
            );
            dims.iter().map(|(_, v)| literal(v)).collect()
        }
        other => panic!("{id}: namespace {other} is none of ours"),
    };
    (namespace, metric, values)
}

#[test]
fn every_alarm_watches_a_metric_that_exists_and_tells_the_alert_topic() {
    let root = raw_template();
    let alarms = of_type(&root, "AWS::CloudWatch::Alarm");
    let mut watched = BTreeSet::new();
    for (id, alarm) in &alarms {
        let actions = alarm["Properties"]["AlarmActions"]
            .as_sequence()
            .expect("AlarmActions");
        assert_eq!(actions.len(), 1, "{id}");
        assert_eq!(ref_of(&actions[0]), Some("AlertTopic"), "{id}");
        let (namespace, metric, values) = check_metric(id, alarm, &root);
        watched.insert((namespace, metric, values));
    }
    // Errors and Throttles for every function.
    for function in template().functions.keys() {
        for metric in ["Errors", "Throttles"] {
            let key = (
                "AWS/Lambda".to_string(),
                metric.to_string(),
                vec![function.clone()],
            );
            assert!(watched.contains(&key), "no {metric} alarm for {function}");
        }
    }
    // Rejected rows of every stage that rejects any.
    for (pipeline, stage) in [
        ("hr", "hr-hire"),
        ("hr", "hr-sync"),
        ("clickstream", "clickstream-simulate"),
        ("marketing", "marketing-unify"),
    ] {
        let key = (
            NAMESPACE.to_string(),
            names::ROWS_REJECTED.to_string(),
            vec![pipeline.to_string(), stage.to_string()],
        );
        assert!(watched.contains(&key), "no RowsRejected alarm for {stage}");
    }
    assert!(
        watched.iter().any(|(ns, _, _)| ns == "AWS/SQS"),
        "no DLQ alarm"
    );
}

#[test]
fn every_scheduled_pipeline_alarms_when_no_run_succeeded_within_its_cadence() {
    let root = raw_template();
    let pipelines = recorded_pipelines();
    let alarms = of_type(&root, "AWS::CloudWatch::Alarm");
    let schedules = of_type(&root, "AWS::Scheduler::Schedule");
    assert_eq!(schedules.len(), 3);
    for (id, schedule) in schedules {
        let target = &schedule["Properties"]["Target"];
        let machine = ref_of(&target["Arn"]).expect("Target.Arn: !Ref <machine>");
        let input: Json = serde_json::from_str(target["Input"].as_str().unwrap()).unwrap();
        // A day and two hours of slack for daily runs (start window, duration, a retry);
        // two missed hours for the hourly one.
        let hours = match input["cadence"].as_str() {
            Some("daily") => 26,
            Some("hourly") => 2,
            other => panic!("{id}: cadence {other:?}"),
        };
        let pipeline = &pipelines[machine];
        let (alarm_id, alarm) = alarms
            .iter()
            .find(|(_, a)| {
                a["Properties"]["MetricName"] == names::RUN_SUCCEEDED
                    && dimensions(a)
                        .first()
                        .is_some_and(|(_, v)| v.as_str() == Some(pipeline))
            })
            .unwrap_or_else(|| panic!("no RunSucceeded alarm for {pipeline}"));
        let p = &alarm["Properties"];
        let period = p["Period"].as_u64().unwrap();
        let evaluations = p["EvaluationPeriods"].as_u64().unwrap();
        assert_eq!(period * evaluations, hours * 3600, "{alarm_id}");
        assert_eq!(
            p["DatapointsToAlarm"], p["EvaluationPeriods"],
            "{alarm_id}: every period empty"
        );
        // CloudWatch's limit: 7 days in all, 1 day for periods under an hour.
        assert!(period * evaluations <= if period < 3600 { 86_400 } else { 604_800 });
        assert_eq!(p["Statistic"], "Sum");
        assert_eq!(p["ComparisonOperator"], "LessThanThreshold");
        assert_eq!(p["Threshold"].as_f64(), Some(1.0));
        assert_eq!(
            p["TreatMissingData"], "breaching",
            "{alarm_id}: no data is no success"
        );
    }
}

#[test]
fn the_dashboard_shows_every_alarm_and_our_metrics() {
    let root = raw_template();
    let dashboards = of_type(&root, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1);
    let (tag, body) = tagged(&dashboards[0].1["Properties"]["DashboardBody"]).expect("!Sub");
    assert_eq!(tag, "Sub");
    let body = body.as_str().unwrap();
    let plain: String = {
        // ${X} substitutions are strings inside the JSON: any placeholder parses.
        let mut out = String::new();
        let mut rest = body;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${") + start;
            out.push('X');
            rest = &rest[end + 1..];
        }
        out + rest
    };
    let parsed: Json = serde_json::from_str(&plain).expect("the dashboard body is JSON");
    assert!(parsed["widgets"].as_array().is_some_and(|w| w.len() >= 5));
    for (id, _) in of_type(&root, "AWS::CloudWatch::Alarm") {
        assert!(
            body.contains(&format!("${{{id}.Arn}}")),
            "{id} not on the dashboard"
        );
    }
    for metric in [
        names::RUN_SUCCEEDED,
        names::RUN_FAILED,
        names::ROWS_IN,
        names::ROWS_OUT,
        names::ROWS_REJECTED,
        names::DURATION,
    ] {
        assert!(
            body.contains(&format!("{{{NAMESPACE},"))
                && body.contains(&format!("\\\"{metric}\\\"")),
            "{metric}"
        );
    }
}

/// Whether a condition is, or requires, `InVpc`.
fn implies_in_vpc(root: &Yaml, condition: &str) -> bool {
    if condition == "InVpc" {
        return true;
    }
    let Some((tag, args)) = tagged(&root["Conditions"][condition]) else {
        return false;
    };
    tag == "And"
        && args.as_sequence().is_some_and(|parts| {
            parts.iter().any(|part| {
                tagged(part).is_some_and(|(t, name)| {
                    t == "Condition" && name.as_str().is_some_and(|n| implies_in_vpc(root, n))
                })
            })
        })
}

#[test]
fn the_vpc_resources_exist_only_under_the_vpc_condition() {
    let root = raw_template();
    let none = BTreeSet::new();
    let vpc_config = resolve(&root["Globals"]["Function"]["VpcConfig"], &none);
    assert_eq!(vpc_config["If"][0], "InVpc");
    assert_eq!(vpc_config["If"][2], "ref:AWS::NoValue");
    let endpoints = of_type(&root, "AWS::EC2::VPCEndpoint");
    let mut kinds = BTreeMap::new();
    for (id, endpoint) in &endpoints {
        let condition = endpoint["Condition"].as_str().expect("a Condition");
        assert!(
            implies_in_vpc(&root, condition),
            "{id}: {condition} does not imply InVpc"
        );
        let p = resolve(&endpoint["Properties"], &none);
        let service = p["ServiceName"]
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_string();
        kinds.insert(service, (p["VpcEndpointType"].clone(), p));
    }
    let (kind, s3) = &kinds["s3"];
    assert_eq!(kind, "Gateway");
    assert_eq!(s3["RouteTableIds"], "ref:VpcRouteTableIds");
    let (kind, secrets) = &kinds["secretsmanager"];
    assert_eq!(kind, "Interface");
    assert_eq!(secrets["PrivateDnsEnabled"], true);
    assert_eq!(secrets["SubnetIds"], "ref:SubnetIds");
    let group_id = secrets["SecurityGroupIds"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("ref:");
    let group = &root["Resources"][group_id];
    assert!(implies_in_vpc(&root, group["Condition"].as_str().unwrap()));
    let ingress = resolve(&group["Properties"]["SecurityGroupIngress"], &none);
    assert_eq!(ingress.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            ingress[0]["FromPort"].as_u64(),
            ingress[0]["ToPort"].as_u64()
        ),
        (Some(443), Some(443))
    );
    assert_eq!(
        ingress[0]["SourceSecurityGroupId"]["Select"][1],
        "ref:SecurityGroupIds"
    );
}

#[test]
fn functions_may_manage_their_network_interfaces_in_a_vpc_only() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let outside = Deployment::new("etl-lake");
    let inside = Deployment::new("etl-lake")
        .with_parameter("SubnetIds", "subnet-0a,subnet-0b")
        .with_parameter("SecurityGroupIds", "sg-0123")
        .with_parameter("VpcId", "vpc-0123")
        .with_parameter("VpcRouteTableIds", "rtb-0a");
    for action in [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
    ] {
        for (deployment, allowed) in [(&outside, false), (&inside, true)] {
            let contract =
                Contract::load(&text, deployment).expect("the contract reads the template");
            for function in contract
                .functions()
                .map(|f| f.binary.clone())
                .collect::<Vec<_>>()
            {
                let decision = contract
                    .evaluate(&Request::new(&function, action, "*"))
                    .expect("evaluates");
                assert_eq!(
                    decision.is_allowed(),
                    allowed,
                    "{function} {action} with VPC parameters {allowed}: {decision:?}"
                );
            }
        }
    }
}
