//! The real template.yaml, as deployed with a database secret into bucket etl-lake-local.

use iam_contract::{
    unused_grants, ApiCall, Contract, Decision, DenyReason, Deployment, Evaluation, Request,
};

const BUCKET: &str = "etl-lake-local";
const DB_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/database-AbCdEf";

fn template_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    std::fs::read_to_string(path).unwrap()
}

fn deployment() -> Deployment {
    Deployment::new(BUCKET).with_parameter("DatabaseSecretArn", DB_SECRET)
}

fn contract() -> Contract {
    Contract::load(&template_text(), &deployment()).unwrap()
}

fn object(key: &str) -> String {
    format!("arn:aws:s3:::{BUCKET}/{key}")
}

fn eval(c: &Contract, r: Request) -> Evaluation {
    c.evaluate(&r).unwrap()
}

const FUNCTIONS: [&str; 11] = [
    "clickstream-simulate",
    "hr-export",
    "hr-hire",
    "hr-schema",
    "hr-sync",
    "marketing-generate",
    "marketing-plan",
    "marketing-report",
    "marketing-unify",
    "plan-dates",
    "record-run",
];

#[test]
fn every_function_is_loaded_with_the_boundary() {
    let c = contract();
    let names: Vec<&str> = c.functions().map(|f| f.binary.as_str()).collect();
    assert_eq!(names, FUNCTIONS);
    for f in c.functions() {
        let boundary = f.boundary.as_ref().map(|b| b.name.as_str());
        assert_eq!(
            boundary,
            Some("FunctionPermissionsBoundary"),
            "{}",
            f.binary
        );
    }
}

#[test]
fn unify_may_replace_the_days_quarantine() {
    let c = contract();
    let key = "quarantine/marketing/dt=2026-11-25/part-00001.csv";
    let e = eval(
        &c,
        Request::new("marketing-unify", "s3:DeleteObject", &object(key)),
    );
    assert!(e.is_allowed(), "{e}");
    let e = eval(
        &c,
        Request::new(
            "marketing-plan",
            "s3:DeleteObject",
            &object("raw/marketing/dt=2026-11-25/part-00009.csv"),
        ),
    );
    assert!(e.is_allowed(), "{e}");
}

#[test]
fn deletes_outside_the_replaced_prefixes_are_denied() {
    let c = contract();
    let e = eval(
        &c,
        Request::new(
            "hr-export",
            "s3:DeleteObject",
            &object("exports/employees/dt=2026-11-25/employees.csv"),
        ),
    );
    assert!(!e.is_allowed(), "{e}");
    let e = eval(
        &c,
        Request::new(
            "marketing-unify",
            "s3:DeleteObject",
            &object("curated/marketing/dt=2026-11-25/x.parquet"),
        ),
    );
    assert_eq!(
        e.decision,
        Decision::Denied {
            reason: DenyReason::ImplicitDeny
        },
        "{e}"
    );
}

#[test]
fn generate_may_not_read_curated() {
    let c = contract();
    let e = eval(
        &c,
        Request::new(
            "marketing-generate",
            "s3:GetObject",
            &object("curated/marketing/dt=2026-11-25/master.parquet"),
        ),
    );
    assert!(!e.is_allowed(), "{e}");
    let e = eval(
        &c,
        Request::new(
            "marketing-generate",
            "s3:PutObject",
            &object("raw/marketing/dt=2026-11-25/part-00001.csv"),
        ),
    );
    assert!(e.is_allowed(), "{e}");
}

#[test]
fn every_function_may_read_the_database_secret() {
    let c = contract();
    for f in FUNCTIONS {
        let e = eval(
            &c,
            Request::new(f, "secretsmanager:GetSecretValue", DB_SECRET),
        );
        assert!(e.is_allowed(), "{e}");
        let call = ApiCall::new(f, "Secrets Manager", "GetSecretValue").secret_id("etl/database");
        let by_name = c.check_call(&call).unwrap();
        assert!(by_name.iter().all(Evaluation::is_allowed), "{}", by_name[0]);
    }
    let other = "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf";
    assert!(!eval(
        &c,
        Request::new("hr-hire", "secretsmanager:GetSecretValue", other)
    )
    .is_allowed());
}

#[test]
fn no_secret_without_the_parameter() {
    let c = Contract::load(&template_text(), &Deployment::new(BUCKET)).unwrap();
    let e = eval(
        &c,
        Request::new("hr-hire", "secretsmanager:GetSecretValue", DB_SECRET),
    );
    assert!(!e.is_allowed(), "{e}");
}

#[test]
fn nothing_over_plain_http() {
    let c = contract();
    let cases = [
        (
            "marketing-unify",
            "s3:DeleteObject",
            object("quarantine/marketing/dt=2026-11-25/part-00001.csv"),
        ),
        (
            "marketing-generate",
            "s3:PutObject",
            object("raw/marketing/dt=2026-11-25/part-00001.csv"),
        ),
        (
            "marketing-report",
            "s3:GetObject",
            object("curated/marketing/dt=2026-11-25/master.parquet"),
        ),
        (
            "marketing-plan",
            "s3:ListBucket",
            format!("arn:aws:s3:::{BUCKET}"),
        ),
    ];
    for (f, action, resource) in cases {
        let mut r = Request::new(f, action, &resource);
        if action == "s3:ListBucket" {
            r = r.with_context("s3:prefix", &["raw/marketing/"]);
        }
        assert!(eval(&c, r.clone()).is_allowed(), "{}", eval(&c, r.clone()));
        let e = eval(&c, r.with_context("aws:SecureTransport", &["false"]));
        assert_eq!(
            e.decision,
            Decision::Denied {
                reason: DenyReason::ExplicitDeny {
                    policy: "DataBucketPolicy".into(),
                    sid: "DenyInsecureTransport".into()
                }
            },
            "{e}"
        );
    }
}

#[test]
fn listing_is_limited_to_the_granted_prefixes() {
    let c = contract();
    let list = |f: &str, prefix: &str| {
        let call = ApiCall::new(f, "s3", "ListObjectsV2")
            .bucket(BUCKET)
            .prefix(prefix);
        c.check_call(&call).unwrap().remove(0)
    };
    assert!(list("marketing-unify", "quarantine/marketing/dt=2026-11-25/").is_allowed());
    assert!(list("marketing-report", "curated/marketing/dt=2026-11-25/").is_allowed());
    assert!(!list("marketing-report", "raw/marketing/").is_allowed());
    assert!(!list("hr-export", "exports/").is_allowed());
}

#[test]
fn vpc_actions_only_in_a_vpc() {
    let eni = |c: &Contract| {
        eval(
            c,
            Request::new("hr-sync", "ec2:CreateNetworkInterface", "*"),
        )
    };
    let outside = eni(&contract());
    assert!(
        matches!(
            outside.decision,
            Decision::Denied {
                reason: DenyReason::BoundaryDoesNotAllow { .. }
            }
        ),
        "SAM attaches the VPC policy anyway; the boundary removes it: {outside}"
    );
    let in_vpc = deployment()
        .with_parameter("SubnetIds", "subnet-1,subnet-2")
        .with_parameter("SecurityGroupIds", "sg-1");
    let c = Contract::load(&template_text(), &in_vpc).unwrap();
    assert!(eni(&c).is_allowed(), "{}", eni(&c));
}

#[test]
fn logs_only_to_the_function_log_group() {
    let c = contract();
    let group = "arn:aws:logs:us-east-1:123456789012:log-group:FunctionLogs:*";
    assert!(eval(&c, Request::new("hr-hire", "logs:PutLogEvents", group)).is_allowed());
    let other = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/other:*";
    assert!(!eval(&c, Request::new("hr-hire", "logs:PutLogEvents", other)).is_allowed());
}

#[test]
fn the_boundary_is_honoured() {
    let text = template_text();
    let statement = "          - Sid: DataLakeReplacedPrefixes
            Effect: Allow
            Action: s3:DeleteObject
            Resource:
              - !Sub \"${DataBucket.Arn}/raw/marketing/*\"
              - !Sub \"${DataBucket.Arn}/quarantine/marketing/*\"
";
    assert!(
        text.contains(statement),
        "the boundary statement moved: update this test"
    );
    let without = text.replace(statement, "");
    let c = Contract::load(&without, &deployment()).unwrap();
    let key = "quarantine/marketing/dt=2026-11-25/part-00001.csv";
    let e = eval(
        &c,
        Request::new("marketing-unify", "s3:DeleteObject", &object(key)),
    );
    let Decision::Denied {
        reason:
            DenyReason::BoundaryDoesNotAllow {
                boundary,
                allowed_by,
            },
    } = &e.decision
    else {
        panic!("{e}")
    };
    assert_eq!(boundary, "FunctionPermissionsBoundary");
    assert_eq!(allowed_by[0].statement, "ReplaceQuarantine");
    let message = e.to_string();
    assert!(
        message.starts_with(
            "marketing-unify may not s3:DeleteObject on arn:aws:s3:::etl-lake-local/quarantine/"
        ),
        "{message}"
    );
    assert!(
        message.contains("permissions boundary FunctionPermissionsBoundary"),
        "{message}"
    );
}

#[test]
fn unused_grants_lists_what_no_request_exercised() {
    let c = contract();
    let requests = [Request::new(
        "marketing-generate",
        "s3:PutObject",
        &object("raw/marketing/dt=1/p.csv"),
    )];
    let report = unused_grants(&c, &requests).unwrap();
    let unused = |f: &str, statement: &str, action: &str| {
        report
            .unused
            .iter()
            .any(|g| g.function == f && g.statement == statement && g.action == action)
    };
    assert!(!unused(
        "marketing-generate",
        "WriteRawMarketing",
        "s3:PutObject"
    ));
    assert!(unused(
        "marketing-generate",
        "WriteRawMarketing",
        "s3:AbortMultipartUpload"
    ));
    assert!(unused(
        "marketing-unify",
        "ReplaceQuarantine",
        "s3:DeleteObject"
    ));
    assert!(
        !unused("*", "DataLakeObjects", "s3:PutObject"),
        "the boundary's grant was used"
    );
    assert!(unused("*", "DataLakeReplacedPrefixes", "s3:DeleteObject"));
    assert!(report
        .unused
        .iter()
        .all(|g| g.policy != "AWSLambdaBasicExecutionRole"));
    assert!(report.to_string().starts_with("| function |"));
}

/// The S3 calls each stage makes (etl-core/src/s3.rs and the stages), as an interceptor
/// would record them for one date: all must be allowed once deployed.
#[test]
fn the_stages_calls_are_allowed() {
    let c = contract();
    let dt = "dt=2026-11-25";
    let s3 = |f: &str, op: &str| ApiCall::new(f, "s3", op).bucket(BUCKET);
    let upload = |f: &str, key: &str| {
        [
            "PutObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
        ]
        .map(|op| s3(f, op).key(key))
    };
    let mut calls: Vec<ApiCall> = Vec::new();
    // marketing-plan prunes stale raw partitions: list, then DeleteObjects.
    calls.push(s3("marketing-plan", "ListObjectsV2").prefix(&format!("raw/marketing/{dt}/")));
    let mut prune = s3("marketing-plan", "DeleteObjects");
    prune.keys = vec![format!("raw/marketing/{dt}/part-00009.csv")];
    calls.push(prune);
    calls.extend(upload(
        "marketing-generate",
        &format!("raw/marketing/{dt}/part-00001.csv"),
    ));
    // marketing-unify: reads raw, replaces the quarantine, writes curated and quarantine.
    calls.push(s3("marketing-unify", "ListObjectsV2").prefix(&format!("raw/marketing/{dt}/")));
    calls.push(
        s3("marketing-unify", "GetObject").key(&format!("raw/marketing/{dt}/part-00001.csv")),
    );
    calls.push(
        s3("marketing-unify", "ListObjectsV2").prefix(&format!("quarantine/marketing/{dt}/")),
    );
    let mut replace = s3("marketing-unify", "DeleteObjects");
    replace.keys = vec![format!("quarantine/marketing/{dt}/part-00001.csv")];
    calls.push(replace);
    calls.push(
        s3("marketing-unify", "PutObject").key(&format!("curated/marketing/{dt}/master.parquet")),
    );
    calls.push(
        s3("marketing-unify", "PutObject")
            .key(&format!("quarantine/marketing/{dt}/part-00001.csv")),
    );
    calls.push(
        s3("marketing-report", "GetObject").key(&format!("curated/marketing/{dt}/master.parquet")),
    );
    calls.push(
        s3("marketing-report", "PutObject").key(&format!("reports/marketing/{dt}/kpis.json")),
    );
    calls.extend(upload(
        "hr-export",
        &format!("exports/employees/{dt}/employees.csv"),
    ));
    let mut requests = Vec::new();
    for call in &calls {
        for e in c.check_call(call).unwrap() {
            assert!(e.is_allowed(), "{e}");
            requests.push(e.request);
        }
    }
    // What the calls above leave unused is the coverage report's content.
    let report = unused_grants(&c, &requests).unwrap();
    assert!(
        !report
            .unused
            .iter()
            .any(|g| g.statement == "ReplaceQuarantine"),
        "{report}"
    );
}
