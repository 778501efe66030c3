//! Credentials from Secrets Manager (moto's): the database and Elasticsearch settings a
//! Lambda function builds from `DATABASE_SECRET_ARN` / `ELASTICSEARCH_SECRET_ARN`, read on
//! first use rather than at start-up; the typed errors for a secret that is missing,
//! malformed or unreachable; and a rotated password picked up by a warm process.

use aws_sdk_secretsmanager::primitives::Blob;
use etl_core::config::Source;
use etl_core::stages::hr_schema::{self, SchemaEvent};
use etl_core::{probe, Config, Context, EnvSource, ErrorKind, SecretError, Service, StageError};
use integration_tests::{
    connect, env_source, free_port, postgres_settings, unique_suffix, TestEnv,
};

/// Secrets created by one test, deleted (without recovery window) when it ends.
struct Secrets {
    client: aws_sdk_secretsmanager::Client,
    arns: Vec<String>,
}

impl Secrets {
    fn new(ctx: &Context) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(ctx.aws_config()),
            arns: Vec::new(),
        }
    }

    async fn create(&mut self, value: &str) -> String {
        let name = format!("etl-test/{}-{}", std::process::id(), self.arns.len());
        let name = format!("{name}-{}", free_port());
        let created = self
            .client
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Secrets Manager (moto) is not available to create {name}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            });
        let arn = created
            .arn()
            .unwrap_or_else(|| panic!("moto returned no ARN for {name}"))
            .to_string();
        assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
        self.arns.push(arn.clone());
        arn
    }

    async fn create_binary(&mut self) -> String {
        let name = format!("etl-test/binary-{}-{}", std::process::id(), free_port());
        let created = self
            .client
            .create_secret()
            .name(&name)
            .secret_binary(Blob::new(vec![0_u8, 1, 2]))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Secrets Manager (moto): {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            });
        let arn = created.arn().unwrap_or_default().to_string();
        self.arns.push(arn.clone());
        arn
    }

    async fn delete_all(&self) {
        for arn in &self.arns {
            let _ = self
                .client
                .delete_secret()
                .secret_id(arn)
                .force_delete_without_recovery(true)
                .send()
                .await;
        }
    }
}

/// The test's settings with the database (and optionally Elasticsearch) coming from secrets
/// only: the explicit URLs are blanked, as in the Lambda environment.
fn from_secrets(env: &EnvSource, database_arn: &str, es_arn: Option<&str>) -> EnvSource {
    let env = env
        .clone()
        .with("DATABASE_URL", "")
        .with("DATABASE_SECRET_ARN", database_arn);
    match es_arn {
        Some(arn) => env
            .with("ELASTICSEARCH_URL", "")
            .with("ELASTICSEARCH_SECRET_ARN", arn),
        None => env,
    }
}

/// The error of the first use of a context whose secret is unusable. Building the context
/// itself must succeed: it reads no secret.
async fn first_use_error(env: &EnvSource) -> StageError {
    let config = Config::from_source(env).unwrap_or_else(|e| panic!("configuration: {e}"));
    let ctx = Context::new(config)
        .await
        .unwrap_or_else(|e| panic!("building a context must not read secrets: {e}"));
    if let Err(err) = ctx.resolve_secrets().await {
        return err;
    }
    match ctx.postgres().await {
        Ok(_) => panic!("connected although the secret is unusable"),
        Err(err) => err,
    }
}

async fn current_database(ctx: &Context) -> String {
    ctx.postgres()
        .await
        .unwrap_or_else(|e| panic!("connect with the secret's settings: {e}"))
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap_or_else(|e| panic!("SELECT current_database(): {e}"))
        .get(0)
}

#[tokio::test]
async fn database_and_elasticsearch_settings_come_from_secrets() {
    let test = TestEnv::new(&[Service::Postgres, Service::Elasticsearch]).await;
    let mut secrets = Secrets::new(&test.ctx);
    let db = postgres_settings(&test.env, Some(&test.db.url)).config;
    let host = match db.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("DATABASE_URL must name a TCP host, not {other:?}"),
    };
    let password = String::from_utf8(db.get_password().unwrap_or_default().to_vec()).unwrap();
    let es_url = test
        .env
        .get("ELASTICSEARCH_URL")
        .expect("ELASTICSEARCH_URL is not set in .services/env")
        .to_string();

    // {"url": …}: the test's own database, which is not the default one.
    let url_secret = secrets
        .create(&serde_json::json!({ "url": test.db.url }).to_string())
        .await;
    // RDS style, the port as a string as RDS writes it.
    let rds_secret = secrets
        .create(
            &serde_json::json!({
                "engine": "postgres",
                "host": host,
                "port": db.get_ports().first().copied().unwrap_or(5432).to_string(),
                "username": db.get_user().unwrap_or("etl"),
                "password": password,
                "dbname": test.db.name,
            })
            .to_string(),
        )
        .await;
    let es_secret = secrets
        .create(
            &serde_json::json!({ "url": es_url, "username": "etl", "password": "local-only" })
                .to_string(),
        )
        .await;

    for (label, arn) in [("url", &url_secret), ("rds", &rds_secret)] {
        let env = from_secrets(&test.env, arn, Some(&es_secret));
        let config = Config::from_source(&env).unwrap();
        assert_eq!(
            config.postgres.source,
            Source::Secret { arn: arn.clone() },
            "{label}"
        );
        let ctx = Context::new(config)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(ctx.database_secret_reads(), 0, "{label}: read before use");
        assert_eq!(current_database(&ctx).await, test.db.name, "{label}");
        assert_eq!(current_database(&ctx).await, test.db.name, "{label}");
        assert_eq!(
            ctx.database_secret_reads(),
            1,
            "{label}: read once, then kept"
        );

        assert!(ctx.elasticsearch_settings().is_none(), "{label}");
        ctx.resolve_secrets()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let es = ctx
            .elasticsearch_settings()
            .unwrap_or_else(|| panic!("{label}: Elasticsearch settings not read"));
        assert_eq!(es.url.as_str().trim_end_matches('/'), es_url, "{label}");
        assert_eq!(
            es.basic_auth,
            Some(("etl".to_string(), "local-only".to_string())),
            "{label}"
        );
        probe::check(&ctx, Service::Elasticsearch)
            .await
            .unwrap_or_else(|e| panic!("{label}: Elasticsearch from the secret: {e}"));
    }
    secrets.delete_all().await;
}

#[tokio::test]
async fn a_missing_secret_is_a_typed_fatal_error_naming_it() {
    let test = TestEnv::new(&[]).await;
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/does-not-exist-AbCdEf";
    let err = first_use_error(&from_secrets(&test.env, arn, None)).await;
    assert!(
        matches!(&err, StageError::Secret(SecretError::NotFound { var: "DATABASE_SECRET_ARN", arn: a }) if a == arn),
        "{err:?}"
    );
    assert_eq!(
        err.kind(),
        ErrorKind::Fatal,
        "a missing secret needs a person"
    );
    let text = err.to_string();
    assert!(
        text.contains("DATABASE_SECRET_ARN") && text.contains(arn),
        "{text}"
    );
}

#[tokio::test]
async fn a_malformed_secret_is_a_typed_fatal_error_that_never_echoes_it() {
    let test = TestEnv::new(&[]).await;
    let mut secrets = Secrets::new(&test.ctx);
    let password = "hunter2-do-not-print";
    let cases = [
        (
            serde_json::json!({ "username": "etl", "password": password }).to_string(),
            "missing: host",
        ),
        (format!("postgres://etl:{password}@db/etl"), "not JSON"),
        (
            serde_json::json!({ "url": format!("mysql://etl:{password}@db/etl") }).to_string(),
            "valid PostgreSQL connection URL",
        ),
    ];
    for (value, expected) in cases {
        let arn = secrets.create(&value).await;
        let err = first_use_error(&from_secrets(&test.env, &arn, None)).await;
        assert!(
            matches!(&err, StageError::Secret(SecretError::Malformed { .. })),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Fatal);
        let text = err.to_string();
        assert!(text.contains(expected) && text.contains(&arn), "{text}");
        assert!(
            !text.contains(password),
            "the error echoes the secret: {text}"
        );
        assert!(!format!("{err:?}").contains(password), "{err:?}");
    }

    // An Elasticsearch secret with half of basic auth.
    let db_arn = secrets
        .create(&serde_json::json!({ "url": test.db.url }).to_string())
        .await;
    let es_arn = secrets
        .create(
            &serde_json::json!({ "url": "http://127.0.0.1:9200", "username": "etl" }).to_string(),
        )
        .await;
    let err = first_use_error(&from_secrets(&test.env, &db_arn, Some(&es_arn))).await;
    assert!(
        matches!(
            &err,
            StageError::Secret(SecretError::Malformed {
                var: "ELASTICSEARCH_SECRET_ARN",
                ..
            })
        ),
        "{err:?}"
    );

    // A binary secret has no SecretString.
    let binary = secrets.create_binary().await;
    let err = first_use_error(&from_secrets(&test.env, &binary, None)).await;
    assert!(
        matches!(&err, StageError::Secret(SecretError::NotAString { .. })),
        "{err:?}"
    );
    secrets.delete_all().await;
}

#[tokio::test]
async fn an_unreachable_secrets_manager_fails_the_stage_as_retryable_not_the_start() {
    let env = env_source()
        .with(
            "AWS_ENDPOINT_URL",
            &format!("http://127.0.0.1:{}", free_port()),
        )
        .with("DATABASE_URL", "")
        .with(
            "DATABASE_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/db-AbCdEf",
        );
    let started = std::time::Instant::now();
    // What a Lambda container does at start-up: no network, so no failure.
    let ctx = Context::new(Config::from_source(&env).unwrap())
        .await
        .unwrap_or_else(|e| panic!("the context must build without Secrets Manager: {e}"));
    assert_eq!(ctx.database_secret_reads(), 0);

    let err = hr_schema::run(&ctx, SchemaEvent::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StageError::Secret(SecretError::Unavailable {
                retryable: true,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Retryable);
    assert_eq!(ctx.database_secret_reads(), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "a refused connection took {:?}",
        started.elapsed()
    );
}

/// A login role of its own for the rotation test (the shared `etl` role's password must not
/// change under other tests), dropped on drop. Declared before the [`TestEnv`] whose database
/// it is granted, so that the database is dropped first.
struct ThrowAwayRole {
    name: String,
    env: EnvSource,
}

impl ThrowAwayRole {
    async fn create(env: &EnvSource, password: &str) -> Self {
        let name = format!("etl_rotation_{}", unique_suffix());
        admin_sql(
            env,
            &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
        )
        .await;
        Self {
            name,
            env: env.clone(),
        }
    }

    async fn set_password(&self, password: &str) {
        admin_sql(
            &self.env,
            &format!("ALTER ROLE {} PASSWORD '{password}'", self.name),
        )
        .await;
    }
}

impl Drop for ThrowAwayRole {
    fn drop(&mut self) {
        let env = self.env.clone();
        let sql = format!("DROP ROLE IF EXISTS {}", self.name);
        // Drop has no async context: a thread with a runtime of its own, best effort.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(client) = connect(&postgres_settings(&env, None)).await {
                        let _ = client.batch_execute(&sql).await;
                    }
                });
            }
        })
        .join();
    }
}

/// Runs SQL as the `etl` role (which may create roles in the local cluster).
async fn admin_sql(env: &EnvSource, sql: &str) {
    connect(&postgres_settings(env, None))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL admin connection: {e}"))
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", sql.split(" PASSWORD").next().unwrap_or(sql)));
}

#[tokio::test]
async fn a_rotated_password_is_read_again_once_by_a_warm_process() {
    let env = env_source();
    let first = format!("first-{}", unique_suffix());
    let role = ThrowAwayRole::create(&env, &first).await;
    let test = TestEnv::new(&[Service::Postgres]).await;
    admin_sql(
        &env,
        &format!(
            "GRANT CONNECT, CREATE ON DATABASE {} TO {}",
            test.db.name, role.name
        ),
    )
    .await;
    let mut secrets = Secrets::new(&test.ctx);
    let url_with = |password: &str| {
        let mut url = url::Url::parse(&test.db.url).unwrap();
        url.set_username(&role.name).unwrap();
        url.set_password(Some(password)).unwrap();
        url.to_string()
    };
    let arn = secrets
        .create(&serde_json::json!({ "url": url_with(&first) }).to_string())
        .await;

    // One process, one context, as a warm Lambda container.
    let env = from_secrets(&test.env, &arn, None);
    let ctx = Context::new(Config::from_source(&env).unwrap())
        .await
        .unwrap();
    hr_schema::run(&ctx, SchemaEvent::default())
        .await
        .unwrap_or_else(|e| panic!("first run: {e}"));
    assert_eq!(ctx.database_secret_reads(), 1);

    // A warm container's idle connections are often gone after a freeze: end them (as the
    // role itself, which may signal its own sessions), so the next stage must log in again.
    connect(&postgres_settings(&test.env, Some(&url_with(&first))))
        .await
        .unwrap_or_else(|e| panic!("connect as the throw-away role: {e}"))
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = current_user AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap_or_else(|e| panic!("end the role's sessions: {e}"));
    // Rotation: the server's password first, then the secret, as Secrets Manager's rotation
    // function does.
    let second = format!("second-{}", unique_suffix());
    role.set_password(&second).await;
    secrets
        .client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(serde_json::json!({ "url": url_with(&second) }).to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "update the secret: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        });
    // Lets the pool's connection tasks see the termination, so the pool drops them.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    hr_schema::run(&ctx, SchemaEvent::default())
        .await
        .unwrap_or_else(|e| panic!("run after rotation: {e}"));
    assert_eq!(
        ctx.database_secret_reads(),
        2,
        "the secret is read again exactly once after the password changed"
    );
    let user: String = ctx
        .postgres()
        .await
        .unwrap()
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, role.name);
    assert_eq!(ctx.database_secret_reads(), 2);
    secrets.delete_all().await;
}
