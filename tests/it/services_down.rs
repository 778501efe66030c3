//! A service that is down or frozen makes a test fail fast with that service's name, never
//! hang and never skip.

use std::time::Duration;

use etl_core::stages::hr_schema::{self, SchemaEvent};
use etl_core::{probe, ErrorKind, Service};
use integration_tests::{context, env_source, free_port, require};

/// A TCP server that accepts connections and never answers: a frozen service.
fn frozen_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < until {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (port, handle)
}

/// Each service pointed at a closed port and at a frozen one.
fn broken_settings() -> Vec<(Service, &'static str, String)> {
    let closed = free_port();
    let (frozen, _) = frozen_server();
    let mut cases = Vec::new();
    for port in [closed, frozen] {
        cases.push((
            Service::Postgres,
            "DATABASE_URL",
            format!("postgres://etl@127.0.0.1:{port}/etl"),
        ));
        cases.push((
            Service::S3,
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{port}"),
        ));
        cases.push((
            Service::Elasticsearch,
            "ELASTICSEARCH_URL",
            format!("http://127.0.0.1:{port}"),
        ));
    }
    cases
}

#[tokio::test]
async fn a_down_or_frozen_service_fails_fast_and_is_named() {
    for (service, var, value) in broken_settings() {
        let ctx = context(
            &env_source()
                .with(var, &value)
                .with("DATABASE_CONNECT_TIMEOUT_SECS", "2"),
        )
        .await;
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(20), probe::check(&ctx, service))
            .await
            .unwrap_or_else(|_| panic!("the {service} check hung on {value}"));
        let err = result.expect_err("a broken service must not pass its check");
        assert!(
            err.to_string().starts_with(&service.to_string()),
            "the error must name {service}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::Retryable, "{service}: {err}");
        assert!(started.elapsed() <= probe::PROBE_TIMEOUT + Duration::from_secs(1));
    }
}

#[tokio::test]
async fn the_test_guard_panics_naming_the_missing_service() {
    for (service, var, value) in broken_settings().into_iter().take(3) {
        let ctx = context(
            &env_source()
                .with(var, &value)
                .with("DATABASE_CONNECT_TIMEOUT_SECS", "2"),
        )
        .await;
        let outcome = tokio::spawn(async move { require(&ctx, &[service]).await }).await;
        let panic = outcome.expect_err("require() must fail when the service is down");
        let message = panic
            .into_panic()
            .downcast::<String>()
            .map(|s| *s)
            .unwrap_or_default();
        assert!(
            message.contains(&format!("required service {service} is not available")),
            "{message}"
        );
    }
}

#[tokio::test]
async fn the_schema_stage_reports_a_down_database_as_retryable() {
    let port = free_port();
    let ctx = context(
        &env_source()
            .with(
                "DATABASE_URL",
                &format!("postgres://etl@127.0.0.1:{port}/etl"),
            )
            .with("DATABASE_CONNECT_TIMEOUT_SECS", "2"),
    )
    .await;
    let err = hr_schema::run(&ctx, SchemaEvent::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable);
    assert!(err.to_string().starts_with("PostgreSQL"), "{err}");
}
