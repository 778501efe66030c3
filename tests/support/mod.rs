//! What the integration tests (`tests/it/`, one binary) share: configuration from
//! `.services/env`, loud failures for missing services, a throw-away database per test,
//! `cargo lambda watch` as a child process, and the real `etl` binary ([`cli`]).

pub mod cli;
pub mod fault_proxy;
pub mod iam;
pub mod marketing;
pub mod moto_sfn;
pub mod proxy;
pub mod sfn_redrive_mock;
pub mod sigv4_proxy;
pub mod webdriver;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use etl_cli::runner::{FunctionHost, RunSettings};
use etl_cli::template::Template;
use etl_core::config::PostgresConfig;
use etl_core::search::index::call;
use etl_core::stages::hr_schema::{self, SchemaEvent};
use etl_core::{probe, Config, Context, EnvSource, Service};

/// PostgreSQL, S3 and Elasticsearch: what a whole pipeline writes to.
pub const LAKE: &[Service] = &[Service::Postgres, Service::S3, Service::Elasticsearch];

/// The workspace root: where template.yaml, events/ and `.services/env` are.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `target/` of the workspace), where
/// `cargo lambda build` leaves the packaged functions under `lambda/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from)
}

/// The deployed template, `template.yaml`.
pub fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).unwrap()
}

/// Settings for a local run with the stages in this process and no waiting: on `date` (none
/// to start it as EventBridge Scheduler does), with `extra` input.
pub fn in_process(date: Option<&str>, extra: Option<serde_json::Value>) -> RunSettings {
    RunSettings {
        date: date.map(|d| d.parse().unwrap()),
        extra_input: extra,
        host: FunctionHost::InProcess,
        time_scale: 0.0,
        execution_name: None,
        overrides: Default::default(),
        ..RunSettings::default()
    }
}

/// `.services/env`, or the file `ETL_ENV_FILE` names.
pub fn env_file() -> PathBuf {
    std::env::var_os("ETL_ENV_FILE")
        .map_or_else(|| repo_root().join(".services").join("env"), PathBuf::from)
}

/// The process environment over `.services/env`. Panics, saying what to run, when the
/// services were never started: a test must never pass or skip without them.
pub fn env_source() -> EnvSource {
    let path = env_file();
    assert!(
        path.is_file(),
        "{} is missing: start the local services with `scripts/services up` (scripts/test does it)",
        path.display()
    );
    EnvSource::process_and_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Fails the test at once, naming the service, if one it needs does not answer.
pub async fn require(ctx: &Context, services: &[Service]) {
    for &service in services {
        if let Err(err) = probe::check(ctx, service).await {
            panic!(
                "required service {service} is not available: {err}\n\
                 start the local services with `scripts/services up`"
            );
        }
    }
}

/// Clients for these settings, which must be valid.
pub async fn context(env: &EnvSource) -> Context {
    iam::audited_context(Config::from_source(env).unwrap_or_else(|e| panic!("configuration: {e}")))
        .await
}

/// A name part no other test, test process or earlier run uses.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connection with these settings, TLS as the functions use it (the same connector).
pub async fn connect(
    settings: &PostgresConfig,
) -> Result<tokio_postgres::Client, etl_core::StageError> {
    let connector = etl_core::postgres_tls::connector(&settings.tls)?;
    let (client, connection) = settings
        .config
        .connect(connector)
        .await
        .map_err(etl_core::StageError::postgres)?;
    tokio::spawn(connection);
    Ok(client)
}

/// The database settings of `.services/env` (as the functions read them), with `DATABASE_URL`
/// replaced by `url` when given.
pub fn postgres_settings(env: &EnvSource, url: Option<&str>) -> PostgresConfig {
    let env = match url {
        Some(url) => env.clone().with("DATABASE_URL", url),
        None => env.clone(),
    };
    Config::from_source(&env)
        .unwrap_or_else(|e| panic!("configuration: {e}"))
        .postgres
}

/// A database of its own for one test, dropped (with its connections) when the test ends.
pub struct TestDatabase {
    pub name: String,
    /// Connection URL for the new database (for child processes).
    pub url: String,
    admin: PostgresConfig,
}

impl TestDatabase {
    pub async fn create(env: &EnvSource) -> Self {
        let base_url = env
            .get("DATABASE_URL")
            .expect("DATABASE_URL is not set in .services/env");
        let admin = postgres_settings(env, None);
        let name = format!("etl_test_{}", unique_suffix());
        let client = connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is not available ({e}); run `scripts/services up`")
        });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let mut url = url::Url::parse(base_url).expect("DATABASE_URL is not a URL");
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
            admin,
        }
    }
}

/// Runs clean-up work to completion from `Drop`, which has no async context to borrow: on a
/// thread with a small runtime of its own. Best effort, like any clean-up.
pub(crate) fn run_to_completion<F: std::future::Future<Output = ()> + Send + 'static>(work: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(work);
        }
    })
    .join();
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        run_to_completion(async move {
            if let Ok(client) = connect(&admin).await {
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        });
    }
}

/// Configuration and clients for one test, on its own database, and (with
/// [`TestEnv::with_lake`]) its own bucket and index prefix.
pub struct TestEnv {
    pub env: EnvSource,
    pub ctx: Arc<Context>,
    pub db: TestDatabase,
    _scratch: Option<Scratch>,
}

impl TestEnv {
    pub async fn new(services: &[Service]) -> Self {
        Self::build(services, false, &[]).await
    }

    /// Also a fresh S3 bucket and Elasticsearch index prefix, removed when the test ends.
    pub async fn with_lake(services: &[Service]) -> Self {
        Self::build(services, true, &[]).await
    }

    /// [`TestEnv::with_lake`] with some settings replaced, e.g. `AWS_ENDPOINT_URL` and
    /// `ELASTICSEARCH_URL` pointing at proxies in front of the services.
    pub async fn with_lake_and(services: &[Service], settings: &[(&str, &str)]) -> Self {
        Self::build(services, true, settings).await
    }

    async fn build(services: &[Service], lake: bool, settings: &[(&str, &str)]) -> Self {
        let env = env_source();
        let db = TestDatabase::create(&env).await;
        let mut env = env.with("DATABASE_URL", &db.url);
        for (name, value) in settings {
            env = env.with(name, value);
        }
        let suffix = unique_suffix().replace('_', "-");
        if lake {
            env = env
                .with("ETL_BUCKET", &format!("etl-test-{suffix}"))
                .with("ETL_INDEX_PREFIX", &format!("test-{suffix}-"));
        }
        let config = Config::from_source(&env).unwrap_or_else(|e| panic!("configuration: {e}"));
        let ctx = Arc::new(iam::audited_context(config.clone()).await);
        let scratch = if lake {
            require(&ctx, &[Service::Elasticsearch]).await;
            ctx.s3()
                .create_bucket()
                .bucket(&config.bucket)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "S3 is not available to create a test bucket: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                });
            Some(Scratch { config })
        } else {
            None
        };
        require(&ctx, services).await;
        Self {
            env,
            ctx,
            db,
            _scratch: scratch,
        }
    }

    /// Applies the schema (the `hr-schema` stage): the run ledger and the HR tables.
    pub async fn with_schema(self) -> Self {
        hr_schema::run(&self.ctx, SchemaEvent::default())
            .await
            .unwrap();
        self
    }
}

/// A test's bucket and indices, deleted on drop.
struct Scratch {
    config: Config,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let config = self.config.clone();
        run_to_completion(async move {
            let Ok(ctx) = Context::new(config.clone()).await else {
                return;
            };
            // Every page of the bucket, not only the first thousand keys.
            let _ = etl_core::s3::delete_prefix(&ctx, &config.bucket, "").await;
            let s3 = ctx.s3();
            let _ = s3.delete_bucket().bucket(&config.bucket).send().await;
            if let Ok(es) = ctx.elasticsearch() {
                let pattern = format!("/{}*", config.index_prefix);
                let _ = call(es, Method::Delete, &pattern, None).await;
            }
        });
    }
}

/// Every migration's version, in order: what a fresh database gets applied.
pub fn all_migrations() -> Vec<i32> {
    etl_core::migrations::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect()
}

/// The first column of the first row of a query, as an integer.
pub async fn scalar(ctx: &Context, sql: &str) -> i64 {
    ctx.postgres()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// A GET against Elasticsearch, as JSON.
pub async fn es_get(ctx: &Context, path: &str) -> serde_json::Value {
    call(ctx.elasticsearch().unwrap(), Method::Get, path, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Documents in this test's copy of an index (after the stage's refresh).
pub async fn doc_count(ctx: &Context, index_base: &str) -> u64 {
    let index = ctx.index_name(index_base);
    es_get(ctx, &format!("/{index}/_count")).await["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count for {index}"))
}

/// An object of this test's bucket.
pub async fn download(ctx: &Context, key: &str) -> Vec<u8> {
    ctx.s3()
        .get_object()
        .bucket(&ctx.config.bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "GET s3://{}/{key}: {}",
                ctx.config.bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port on 127.0.0.1")
}

/// `cargo lambda watch` serving this workspace's function binaries, killed on drop.
pub struct LambdaWatch {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
}

impl LambdaWatch {
    pub fn start(env: &EnvSource) -> Self {
        let cargo_lambda = env
            .get("CARGO_LAMBDA")
            .map(PathBuf::from)
            .expect("CARGO_LAMBDA is not set: run `scripts/services up`");
        assert!(
            cargo_lambda.is_file(),
            "{} is missing: run `scripts/services up`",
            cargo_lambda.display()
        );
        let port = free_port();
        let log = std::env::temp_dir().join(format!("cargo-lambda-watch-{}.log", unique_suffix()));
        let log_file = std::fs::File::create(&log).expect("cannot create the watch log");
        let mut command = Command::new(&cargo_lambda);
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(repo_root())
            // Only the toolchain's and the functions' settings: variables the test harness
            // sets (CARGO, RUSTC, …) would make the nested `cargo run` rebuild everything.
            .env_clear()
            .envs(forwarded_env(env))
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cargo_lambda.display()));
        let watch = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port} within 60 s:\n{}",
                watch.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Toolchain variables from this process plus every configuration variable the functions read.
fn forwarded_env(env: &EnvSource) -> Vec<(String, String)> {
    const TOOLCHAIN: &[&str] = &[
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "CARGO_TARGET_DIR",
        "TMPDIR",
        "LANG",
    ];
    let mut vars: Vec<(String, String)> = TOOLCHAIN
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    vars.extend(env.function_settings());
    // The binaries record their AWS calls there for `etl iam report`.
    if let Some(log) = std::env::var_os(etl_core::aws_calls::CALL_LOG_VAR) {
        vars.push((
            etl_core::aws_calls::CALL_LOG_VAR.to_string(),
            log.to_string_lossy().into_owned(),
        ));
    }
    vars
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // The watcher runs `cargo run` children: end its whole process group (it leads one of
        // its own, see `process_group(0)`), never anything else.
        if let Ok(group) = i32::try_from(self.child.id()) {
            if group > 1 {
                // SAFETY: kill(2) with a negative pid signals exactly that process group.
                unsafe {
                    libc::kill(-group, libc::SIGTERM);
                }
            }
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
