//! `ELASTICSEARCH_AUTH=sigv4` (Amazon OpenSearch Service with IAM), against osmem behind a
//! proxy that checks every request's SigV4 signature as the service does
//! (`integration_tests::sigv4_proxy`) and refuses the others with 403.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use elasticsearch::http::headers::HeaderMap;
use etl_core::search::index::EMPLOYEES;
use etl_core::stages::hr_hire::{self, HireEvent};
use etl_core::stages::hr_sync::{self, SyncEvent};
use etl_core::{ErrorKind, StageError};
use iam_contract::{Contract, Deployment, Request};
use integration_tests::cli::{command, output, text};
use integration_tests::sigv4_proxy::{self, Expected, Seen, SigV4Proxy, ACCESS_KEY, SECRET_KEY};
use integration_tests::{context, doc_count, unique_suffix, TestEnv, LAKE};
use serde_json::json;

const DATE: &str = "2026-11-20";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE-session-token";
const DOMAIN: &str = "arn:aws:es:us-east-1:123456789012:domain/etl-search";

/// template.yaml deployed with `ElasticsearchAuth` = `auth` for the domain [`DOMAIN`].
fn contract(auth: &str) -> Contract {
    let deployment = Deployment::new("etl-lake")
        .with_parameter("ElasticsearchAuth", auth)
        .with_parameter("OpenSearchDomainArn", DOMAIN)
        .with_parameter(
            "ElasticsearchUrl",
            "https://search-etl-search.us-east-1.es.amazonaws.com",
        );
    Contract::load_file(integration_tests::iam::template_path(), &deployment).unwrap()
}

/// Whether `function`'s role (with the boundary) may make this HTTP request to the domain:
/// OpenSearch Service authorises `es:ESHttp<Method>` on `<domain ARN><path>`.
fn may_call(contract: &Contract, function: &str, method: &str, path: &str) -> bool {
    let verb = method[..1].to_uppercase() + &method[1..].to_lowercase();
    let request = Request::new(
        function,
        &format!("es:ESHttp{verb}"),
        &format!("{DOMAIN}{path}"),
    );
    contract.evaluate(&request).unwrap().is_allowed()
}

/// A lake with `count` generated hires, and how many of them cleaning kept.
async fn lake_with_hires(count: u64) -> (TestEnv, u64) {
    let env = TestEnv::with_lake(LAKE).await.with_schema().await;
    let event: HireEvent =
        serde_json::from_value(json!({"logical_date": DATE, "count": count})).unwrap();
    let loaded = hr_hire::run(&env.ctx, event).await.unwrap().loaded;
    (env, loaded)
}

/// osmem behind the signature-checking proxy, for the test suite's keys in us-east-1.
async fn proxy(env: &TestEnv) -> SigV4Proxy {
    let upstream = env.ctx.config.elasticsearch.url.to_string();
    SigV4Proxy::start(&upstream, Expected::opensearch("us-east-1")).await
}

fn summary(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| format!("{} {} {:?}", s.method, s.path, s.verdict))
        .collect()
}

/// The deployed function's way: `etl invoke hr-sync` in a process of its own, its
/// temporary credentials in its environment (the AWS SDK's default chain reads them, as on
/// Lambda), every request signed, checked and forwarded.
#[tokio::test]
async fn hr_sync_signs_every_request_with_the_functions_temporary_credentials() {
    let (env, loaded) = lake_with_hires(700).await;
    let proxy = proxy(&env).await;
    let event_file = std::env::temp_dir().join(format!("hr-sync-sigv4-{}.json", unique_suffix()));
    std::fs::write(
        &event_file,
        json!({"logical_date": DATE, "full": true}).to_string(),
    )
    .unwrap();

    let mut cmd = command(&["invoke", "hr-sync", "--event", event_file.to_str().unwrap()]);
    cmd.env("DATABASE_URL", &env.db.url)
        .env("ETL_INDEX_PREFIX", &env.ctx.config.index_prefix)
        .env("ELASTICSEARCH_URL", &proxy.url)
        .env("ELASTICSEARCH_AUTH", "sigv4")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env_remove("ELASTICSEARCH_USERNAME")
        .env_remove("ELASTICSEARCH_PASSWORD")
        .env_remove("ELASTICSEARCH_SECRET_ARN");
    // The proxy runs on this test's runtime: wait for the child off it.
    let out = tokio::task::spawn_blocking(move || output(&mut cmd))
        .await
        .unwrap();
    let _ = std::fs::remove_file(&event_file);
    let seen = proxy.seen();
    assert!(
        out.status.success(),
        "hr-sync failed:\n{}\n{}\nproxy saw: {:#?}",
        text(&out.stdout),
        text(&out.stderr),
        summary(&seen)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["indexed"], json!(loaded), "{result}");

    let index = env.ctx.index_name(EMPLOYEES.name);
    let requests: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    for expected in [
        format!("HEAD /{index}"),
        format!("PUT /{index}"),
        "POST /_bulk".to_string(),
        format!("POST /{index}/_refresh"),
    ] {
        assert!(requests.contains(&expected), "no {expected}: {requests:#?}");
    }
    for s in &seen {
        assert_eq!(s.verdict, Ok(()), "{} {}", s.method, s.path);
        assert_eq!(
            s.security_token.as_deref(),
            Some(TOKEN),
            "{} {}",
            s.method,
            s.path
        );
    }
    assert_eq!(doc_count(&env.ctx, EMPLOYEES.name).await, loaded);

    // And template.yaml, deployed with sigv4, lets the function's role make each of them
    // (the IAM contract does not see these HTTP calls, so they are checked here).
    let sigv4 = contract("sigv4");
    for s in &seen {
        assert!(
            may_call(&sigv4, "hr-sync", &s.method, &s.path),
            "template.yaml does not let hr-sync {} {}",
            s.method,
            s.path
        );
    }
}

/// Only the functions that index get the grant, only its verbs, and only with sigv4.
#[test]
fn template_grants_the_search_verbs_to_the_indexing_functions_only_with_sigv4() {
    let sigv4 = contract("sigv4");
    for function in ["hr-sync", "clickstream-simulate"] {
        for (method, path) in [
            ("HEAD", "/i"),
            ("PUT", "/i"),
            ("POST", "/_bulk"),
            ("POST", "/i/_refresh"),
        ] {
            assert!(
                may_call(&sigv4, function, method, path),
                "{function} {method} {path}"
            );
        }
        for (method, path) in [("GET", "/i/_search"), ("DELETE", "/i")] {
            assert!(
                !may_call(&sigv4, function, method, path),
                "{function} {method} {path}"
            );
        }
    }
    assert!(!may_call(&sigv4, "marketing-unify", "POST", "/_bulk"));
    assert!(!may_call(&contract("basic"), "hr-sync", "POST", "/_bulk"));
}

async fn sync_through(env: &TestEnv, proxy: &SigV4Proxy, settings: &[(&str, &str)]) -> StageError {
    let mut source = env.env.clone().with("ELASTICSEARCH_URL", &proxy.url);
    for (var, value) in settings {
        source = source.with(var, value);
    }
    let ctx = context(&source).await;
    let event: SyncEvent =
        serde_json::from_value(json!({"logical_date": DATE, "full": true})).unwrap();
    hr_sync::run(&ctx.for_function("hr-sync"), event)
        .await
        .expect_err("the proxy must refuse this request")
}

/// Requests OpenSearch Service would refuse fail the stage `Fatal` (retrying cannot fix
/// credentials), saying what to check, and nothing reaches the cluster.
#[tokio::test]
async fn an_unsigned_or_badly_signed_request_fails_the_stage_without_retries() {
    let (env, _) = lake_with_hires(10).await;
    let proxy = proxy(&env).await;

    let unsigned = sync_through(&env, &proxy, &[]).await;
    assert_eq!(unsigned.kind(), ErrorKind::Fatal, "{unsigned}");
    let message = unsigned.to_string();
    assert!(
        message.contains("HTTP 403") && message.contains("ELASTICSEARCH_AUTH"),
        "{message}"
    );

    let wrong_key = sync_through(
        &env,
        &proxy,
        &[
            ("ELASTICSEARCH_AUTH", "sigv4"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret-key"),
        ],
    )
    .await;
    assert_eq!(wrong_key.kind(), ErrorKind::Fatal, "{wrong_key}");
    assert!(wrong_key.to_string().contains("HTTP 403"), "{wrong_key}");

    // One refused request each (a HEAD: the 403 has no body to quote): the stage stopped
    // at the first.
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{:#?}", summary(&seen));
    assert!(
        seen[0]
            .verdict
            .as_ref()
            .is_err_and(|r| r.contains("anonymous")),
        "{:#?}",
        summary(&seen)
    );
    assert!(
        seen[1]
            .verdict
            .as_ref()
            .is_err_and(|r| r.contains("signature we calculated does not match")),
        "{:#?}",
        summary(&seen)
    );
}

/// The proxy's check itself, on AWS's published `get-vanilla` request: it accepts the
/// published signature and refuses any change to the request.
#[test]
fn the_proxy_accepts_the_published_get_vanilla_signature_and_nothing_else() {
    let expected = Expected {
        service: "service".into(),
        max_skew: None,
        ..Expected::opensearch("us-east-1")
    };
    let mut headers = HeaderMap::new();
    headers.insert("host", "example.amazonaws.com".parse().unwrap());
    headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
    headers.insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            .parse()
            .unwrap(),
    );
    let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let verify = |method: &str, path: &str, headers: &HeaderMap| {
        sigv4_proxy::verify(&expected, method, path, "", headers, b"", now)
    };
    assert_eq!(verify("GET", "/", &headers), Ok(()));
    assert!(verify("POST", "/", &headers).is_err());
    assert!(verify("GET", "/_bulk", &headers).is_err());
    let mut other_host = headers.clone();
    other_host.insert("host", "example.amazonaws.com:9200".parse().unwrap());
    assert!(verify("GET", "/", &other_host).is_err());
    let mut unsigned = headers.clone();
    unsigned.remove("authorization");
    assert!(verify("GET", "/", &unsigned)
        .unwrap_err()
        .contains("anonymous"));
    // A real service also refuses an old signature.
    let strict = Expected {
        max_skew: Some(Duration::from_secs(300)),
        ..expected.clone()
    };
    assert!(
        sigv4_proxy::verify(&strict, "GET", "/", "", &headers, b"", SystemTime::now()).is_err()
    );
}
