//! TLS to PostgreSQL against the local TLS-only cluster (`scripts/services`: hostssl only, a
//! certificate for localhost / 127.0.0.1 from a local CA), as RDS with rds.force_ssl=1: the
//! default `verify-full` connects, and plaintext, a certificate from another CA and a host
//! name the certificate does not hold are each refused with an error that says so.

use etl_core::config::SslMode;
use etl_core::{Context, EnvSource, ErrorKind, Service, StageError, TlsError};
use integration_tests::{context, env_source, postgres_settings, TestEnv};

/// `url` with its TLS query parameters replaced by `params`.
fn with_tls_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("DATABASE_URL: {e}"));
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(params.iter().copied());
    url.to_string()
}

fn var(env: &EnvSource, name: &str) -> String {
    env.get(name)
        .unwrap_or_else(|| panic!("{name} is not set in .services/env: run `scripts/services up`"))
        .to_string()
}

/// The local CA, as `scripts/services` wrote it.
fn local_ca(env: &EnvSource) -> String {
    var(env, "DATABASE_CA_FILE")
}

/// A connection attempt with `url` (and `DATABASE_CA_FILE` as given), which must fail.
async fn refused(env: &EnvSource, url: &str, ca_file: &str) -> StageError {
    let env = env
        .clone()
        .with("DATABASE_URL", url)
        .with("DATABASE_CA_FILE", ca_file)
        .with("DATABASE_CONNECT_TIMEOUT_SECS", "5");
    let ctx: Context = context(&env).await;
    match ctx.postgres().await {
        Ok(_) => panic!("connected although the connection must be refused"),
        Err(err) => err,
    }
}

fn password(env: &EnvSource) -> String {
    let settings = postgres_settings(env, None);
    String::from_utf8_lossy(settings.config.get_password().unwrap_or_default()).into_owned()
}

#[tokio::test]
async fn the_default_verify_full_connects_over_tls() {
    let test = TestEnv::new(&[Service::Postgres]).await;
    assert_eq!(test.ctx.config.postgres.tls.mode, SslMode::VerifyFull);
    // Without sslmode in the URL the default is verify-full too.
    let url = with_tls_params(&test.db.url, &[]);
    let env = test.env.clone().with("DATABASE_URL", &url);
    let ctx = context(&env).await;
    assert_eq!(ctx.config.postgres.tls.mode, SslMode::VerifyFull);
    let row = ctx
        .postgres()
        .await
        .unwrap_or_else(|e| panic!("verify-full with DATABASE_CA_FILE: {e}"))
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the session is not encrypted");
    assert!(row.get::<_, String>(1).starts_with("TLSv1."));
}

#[tokio::test]
async fn plaintext_is_refused_by_the_server_with_a_readable_error() {
    let env = env_source();
    let url = with_tls_params(&var(&env, "DATABASE_URL"), &[("sslmode", "disable")]);
    let err = refused(&env, &url, &local_ca(&env)).await;
    assert!(
        matches!(&err, StageError::Tls(TlsError::Handshake { .. })),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Fatal, "retrying cannot add TLS");
    let text = err.to_string();
    assert!(
        text.contains("no encryption") && text.contains("drop sslmode=disable"),
        "{text}"
    );
    assert!(!text.contains(&password(&env)), "{text}");
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let env = env_source();
    let other_ca = var(&env, "ETL_TEST_OTHER_CA_FILE");
    // verify-full and verify-ca both check the chain; the local CA is not trusted here.
    for mode in ["verify-full", "verify-ca"] {
        let url = with_tls_params(&var(&env, "DATABASE_URL"), &[("sslmode", mode)]);
        let err = refused(&env, &url, &other_ca).await;
        assert!(
            matches!(&err, StageError::Tls(TlsError::Handshake { .. })),
            "{mode}: {err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Fatal, "{mode}");
        let text = err.to_string();
        assert!(
            text.contains("UnknownIssuer") && text.contains("does not chain to a trusted CA"),
            "{mode}: {text}"
        );
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
        assert!(!text.contains(&password(&env)), "{text}");
    }

    // `require` encrypts without checking who answers (libpq's meaning): it connects.
    let url = with_tls_params(&var(&env, "DATABASE_URL"), &[("sslmode", "require")]);
    let ctx = context(
        &env.clone()
            .with("DATABASE_URL", &url)
            .with("DATABASE_CA_FILE", &other_ca),
    )
    .await;
    let _connection = ctx
        .postgres()
        .await
        .unwrap_or_else(|e| panic!("sslmode=require: {e}"));
}

/// The certificate names localhost and 127.0.0.1. `hostaddr` makes the TCP connection to
/// 127.0.0.1 while TLS checks the name in `host`, as libpq does, so a name the certificate
/// does not hold is tested without DNS.
#[tokio::test]
async fn a_host_name_the_certificate_does_not_hold_is_refused_under_verify_full() {
    let env = env_source();
    let mut url = url::Url::parse(&var(&env, "DATABASE_URL")).unwrap();
    url.set_host(Some("db.invalid")).unwrap();
    url.query_pairs_mut().append_pair("hostaddr", "127.0.0.1");
    let url = with_tls_params(url.as_str(), &[("sslmode", "verify-full")]);

    let err = refused(&env, &url, &local_ca(&env)).await;
    assert!(
        matches!(&err, StageError::Tls(TlsError::Handshake { .. })),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Fatal);
    let text = err.to_string();
    assert!(
        text.contains("db.invalid") && text.contains("does not name the host"),
        "{text}"
    );

    // verify-ca checks the chain only, so the same connection is accepted.
    let url = with_tls_params(&url, &[("sslmode", "verify-ca")]);
    let ctx = context(
        &env.clone()
            .with("DATABASE_URL", &url)
            .with("DATABASE_CA_FILE", &local_ca(&env)),
    )
    .await;
    let _connection = ctx
        .postgres()
        .await
        .unwrap_or_else(|e| panic!("sslmode=verify-ca with another host name: {e}"));
}

#[tokio::test]
async fn a_refused_connection_under_verify_full_stays_retryable() {
    let env = env_source();
    let mut url = url::Url::parse(&var(&env, "DATABASE_URL")).unwrap();
    url.set_port(Some(integration_tests::free_port())).unwrap();
    let err = refused(&env, url.as_str(), &local_ca(&env)).await;
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert!(matches!(&err, StageError::Service { .. }), "{err:?}");
}
