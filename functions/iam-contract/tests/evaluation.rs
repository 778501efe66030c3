//! The IAM User Guide's policy evaluation examples, each as a one-function template.

use iam_contract::{Contract, Decision, DenyReason, Deployment, Request, TemplateError};

const BUCKET: &str = "arn:aws:s3:::b";

/// A template with one function `f` whose `Policies` are `policies` (YAML at six spaces'
/// indentation) and, when given, a boundary whose statements are `boundary` and a policy on
/// bucket `b` whose statements are `bucket_policy` (both at eight spaces').
fn contract(policies: &str, boundary: Option<&str>, bucket_policy: Option<&str>) -> Contract {
    try_contract(policies, boundary, bucket_policy).unwrap()
}

fn try_contract(
    policies: &str,
    boundary: Option<&str>,
    bucket_policy: Option<&str>,
) -> Result<Contract, TemplateError> {
    let mut t = String::from("Resources:\n  DataBucket:\n    Type: AWS::S3::Bucket\n");
    if let Some(statements) = boundary {
        t += "  Boundary:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n        Statement:\n";
        t += statements;
    }
    if let Some(statements) = bucket_policy {
        t += "  BPolicy:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: !Ref DataBucket\n      PolicyDocument:\n        Statement:\n";
        t += statements;
    }
    t += "  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n";
    if boundary.is_some() {
        t += "      PermissionsBoundary: !Ref Boundary\n";
    }
    t += "      Policies:\n";
    t += policies;
    Contract::load(&t, &Deployment::new("b"))
}

fn decide(c: &Contract, r: Request) -> Decision {
    c.evaluate(&r).unwrap().decision
}

fn allowed(c: &Contract, r: Request) -> bool {
    let e = c.evaluate(&r).unwrap();
    e.is_allowed()
}

const S3_ALL: &str = "        - Statement:
            - Sid: All
              Effect: Allow
              Action: s3:*
              Resource: '*'
";

#[test]
fn explicit_deny_beats_allow() {
    let policies = "        - Statement:
            - Sid: All
              Effect: Allow
              Action: s3:*
              Resource: '*'
            - Sid: NoDeletes
              Effect: Deny
              Action: s3:Delete*
              Resource: arn:aws:s3:::b/*
";
    let c = contract(policies, None, None);
    assert!(allowed(
        &c,
        Request::new("f", "s3:PutObject", "arn:aws:s3:::b/k")
    ));
    let d = decide(&c, Request::new("f", "s3:DeleteObject", "arn:aws:s3:::b/k"));
    let Decision::Denied {
        reason: DenyReason::ExplicitDeny { sid, .. },
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(sid, "NoDeletes");
}

#[test]
fn boundary_intersects_identity_policy() {
    let boundary = "          - Sid: ReadOnly
            Effect: Allow
            Action: s3:GetObject
            Resource: '*'
";
    let c = contract(S3_ALL, Some(boundary), None);
    assert!(allowed(
        &c,
        Request::new("f", "s3:GetObject", "arn:aws:s3:::b/k")
    ));
    let e = c
        .evaluate(&Request::new("f", "s3:PutObject", "arn:aws:s3:::b/k"))
        .unwrap();
    assert!(
        matches!(&e.decision, Decision::Denied { reason: DenyReason::BoundaryDoesNotAllow { boundary, .. } } if boundary == "Boundary"),
        "{e}"
    );
    assert!(
        e.to_string().contains("permissions boundary Boundary"),
        "{e}"
    );
}

#[test]
fn boundary_alone_grants_nothing() {
    let boundary = "          - Effect: Allow
            Action: '*'
            Resource: '*'
";
    let policies = "        - Statement:
            - Effect: Allow
              Action: sqs:SendMessage
              Resource: '*'
";
    let c = contract(policies, Some(boundary), None);
    let d = decide(&c, Request::new("f", "s3:GetObject", "arn:aws:s3:::b/k"));
    assert_eq!(
        d,
        Decision::Denied {
            reason: DenyReason::ImplicitDeny
        }
    );
}

#[test]
fn not_action_allows_everything_else() {
    let policies = "        - Statement:
            - Effect: Allow
              NotAction: [s3:Delete*, iam:*]
              Resource: '*'
";
    let c = contract(policies, None, None);
    assert!(allowed(
        &c,
        Request::new("f", "s3:GetObject", "arn:aws:s3:::b/k")
    ));
    assert!(!allowed(
        &c,
        Request::new("f", "s3:DeleteObject", "arn:aws:s3:::b/k")
    ));
    assert!(
        !allowed(&c, Request::new("f", "IAM:PassRole", "*")),
        "actions ignore case"
    );
}

#[test]
fn wildcard_and_not_resource() {
    let policies = "        - Statement:
            - Effect: Allow
              Action: s3:GetObject
              Resource: arn:aws:s3:::b/raw/*/part-????.csv
            - Effect: Allow
              Action: s3:PutObject
              NotResource: arn:aws:s3:::b/raw/*
";
    let c = contract(policies, None, None);
    assert!(allowed(
        &c,
        Request::new("f", "s3:GetObject", "arn:aws:s3:::b/raw/dt=1/part-0001.csv")
    ));
    assert!(!allowed(
        &c,
        Request::new("f", "s3:GetObject", "arn:aws:s3:::b/raw/dt=1/part-01.csv")
    ));
    assert!(
        !allowed(
            &c,
            Request::new("f", "s3:GetObject", "arn:aws:s3:::b/RAW/dt=1/part-0001.csv")
        ),
        "resources are case-sensitive"
    );
    assert!(allowed(
        &c,
        Request::new("f", "s3:PutObject", "arn:aws:s3:::b/curated/x")
    ));
    assert!(!allowed(
        &c,
        Request::new("f", "s3:PutObject", "arn:aws:s3:::b/raw/x")
    ));
}

#[test]
fn list_bucket_with_prefix_condition() {
    let policies = "        - Statement:
            - Effect: Allow
              Action: s3:ListBucket
              Resource: arn:aws:s3:::b
              Condition:
                StringLike:
                  s3:prefix: ['raw/', 'raw/*']
";
    let c = contract(policies, None, None);
    let list = || Request::new("f", "s3:ListBucket", BUCKET);
    assert!(allowed(
        &c,
        list().with_context("s3:prefix", &["raw/dt=1/"])
    ));
    assert!(!allowed(
        &c,
        list().with_context("s3:prefix", &["curated/"])
    ));
    assert!(
        !allowed(&c, list()),
        "listing the whole bucket sends no prefix"
    );
}

#[test]
fn bucket_policy_denies_plain_http() {
    let deny = "          - Sid: TlsOnly
            Effect: Deny
            Principal: '*'
            Action: s3:*
            Resource: [!GetAtt DataBucket.Arn, !Sub '${DataBucket.Arn}/*']
            Condition:
              Bool:
                aws:SecureTransport: false
";
    let c = contract(S3_ALL, None, Some(deny));
    let get = || Request::new("f", "s3:GetObject", "arn:aws:s3:::b/k");
    assert!(allowed(&c, get()));
    let d = decide(&c, get().with_context("aws:SecureTransport", &["false"]));
    assert_eq!(
        d,
        Decision::Denied {
            reason: DenyReason::ExplicitDeny {
                policy: "BPolicy".into(),
                sid: "TlsOnly".into()
            }
        }
    );
    assert!(
        allowed(
            &c,
            Request::new("f", "s3:GetObject", "arn:aws:s3:::other/k")
                .with_context("aws:SecureTransport", &["false"])
        ),
        "the policy is the bucket's only"
    );
}

#[test]
fn bucket_policy_allow_same_account() {
    let grant = |principal: &str| {
        format!(
            "          - Sid: Grant
            Effect: Allow
            Principal: {{AWS: '{principal}'}}
            Action: s3:GetObject
            Resource: arn:aws:s3:::b/*
"
        )
    };
    let no_s3 = "        - Statement:
            - Effect: Allow
              Action: sqs:SendMessage
              Resource: '*'
";
    let boundary = "          - Effect: Allow
            Action: sqs:*
            Resource: '*'
";
    let get = || Request::new("f", "s3:GetObject", "arn:aws:s3:::b/k");
    // Without a boundary, a bucket policy naming the role grants on its own.
    let role = "arn:aws:iam::123456789012:role/FRole";
    assert!(allowed(&contract(no_s3, None, Some(&grant(role))), get()));
    // The boundary caps a grant to the role, not one to the role's session.
    let c = contract(no_s3, Some(boundary), Some(&grant(role)));
    assert!(matches!(
        decide(&c, get()),
        Decision::Denied {
            reason: DenyReason::BoundaryDoesNotAllow { .. }
        }
    ));
    let session = "arn:aws:sts::123456789012:assumed-role/FRole/F";
    assert!(allowed(
        &contract(no_s3, Some(boundary), Some(&grant(session))),
        get()
    ));
    // Naming the account only delegates to the identity policies.
    assert!(!allowed(
        &contract(no_s3, None, Some(&grant("123456789012"))),
        get()
    ));
}

#[test]
fn unknown_policy_template_is_an_error() {
    let e = try_contract(
        "        - DynamoDBCrudPolicy:\n            TableName: t\n",
        None,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("DynamoDBCrudPolicy"), "{e}");
}
