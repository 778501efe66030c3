//! The PostgreSQL pool behind [`crate::Context::postgres`]: built on first use, from the
//! configuration or from the Secrets Manager secret, and rebuilt once when the server refuses
//! the secret's password (it was rotated).
//!
//! Nothing here runs at start-up. A Lambda container's first invocation that needs the
//! database reads the secret, so an unreachable Secrets Manager is a `Retryable` stage error
//! the state machine retries, not a failed cold start (`Runtime.ExitError`), which it would
//! not. A warm container keeps the pool; when a new connection is refused with SQLSTATE 28P01
//! or 28000, the secret is read again and the pool replaced, once per refusal, so a rotated
//! password does not wait for the container to be recycled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio::sync::Mutex;

use crate::config::{ConfigError, PostgresConfig, Source, SslMode, DATABASE_SECRET_VAR};
use crate::error::{Service, StageError, TlsError};
use crate::postgres_tls;

/// A checked-out PostgreSQL connection; returns to the pool on drop.
pub type PgClient = deadpool_postgres::Object;

/// The most connections one process (one Lambda container) opens.
const POOL_SIZE: usize = 8;

pub(crate) struct Database {
    /// As configured; with a secret, only its source, timeout and `DATABASE_CA_FILE` count.
    settings: PostgresConfig,
    current: Mutex<Option<Current>>,
    secret_reads: AtomicU64,
}

/// The pool in use and the settings it was built with.
#[derive(Clone)]
struct Current {
    pool: Pool,
    settings: Arc<PostgresConfig>,
    /// Bumped on every rebuild, so that callers refused at the same time rebuild only once.
    generation: u64,
}

impl Database {
    pub(crate) fn new(settings: PostgresConfig) -> Self {
        Self {
            settings,
            current: Mutex::new(None),
            secret_reads: AtomicU64::new(0),
        }
    }

    /// How many times this process asked Secrets Manager for the database secret.
    pub(crate) fn secret_reads(&self) -> u64 {
        self.secret_reads.load(Ordering::Relaxed)
    }

    /// A connection. `secrets` makes the Secrets Manager client, only when the secret has to
    /// be read.
    pub(crate) async fn get(
        &self,
        secrets: impl Fn() -> aws_sdk_secretsmanager::Client,
    ) -> Result<PgClient, StageError> {
        if self.settings.source == Source::Unset {
            return Err(ConfigError::Missing {
                var: DATABASE_SECRET_VAR,
                hint: "inside Lambda the database settings come from Secrets Manager: deploy \
                       with the DatabaseSecretArn parameter (or set DATABASE_URL)",
            }
            .into());
        }
        let current = self.current(&secrets).await?;
        match current.pool.get().await {
            Err(PoolError::Backend(err)) if self.uses_secret() && is_auth_failure(&err) => {
                tracing::warn!(
                    sqlstate = err.code().map(tokio_postgres::error::SqlState::code),
                    "PostgreSQL refused the secret's credentials; reading the secret again \
                     (it may have been rotated)"
                );
                let renewed = self.renew(&secrets, current.generation).await?;
                renewed
                    .pool
                    .get()
                    .await
                    .map_err(|err| pool_error(&renewed.settings, err))
            }
            result => result.map_err(|err| pool_error(&current.settings, err)),
        }
    }

    fn uses_secret(&self) -> bool {
        matches!(self.settings.source, Source::Secret { .. })
    }

    /// The pool, built on first use. The lock is held while the secret is read, so that
    /// concurrent first callers read it once.
    async fn current(
        &self,
        secrets: &impl Fn() -> aws_sdk_secretsmanager::Client,
    ) -> Result<Current, StageError> {
        let mut current = self.current.lock().await;
        if let Some(current) = current.as_ref() {
            return Ok(current.clone());
        }
        let built = self.build(secrets, 0).await?;
        *current = Some(built.clone());
        Ok(built)
    }

    /// A new pool from a fresh read of the secret, unless another caller already replaced
    /// the pool that `seen` names.
    async fn renew(
        &self,
        secrets: &impl Fn() -> aws_sdk_secretsmanager::Client,
        seen: u64,
    ) -> Result<Current, StageError> {
        let mut current = self.current.lock().await;
        if let Some(newer) = current.as_ref().filter(|c| c.generation != seen) {
            return Ok(newer.clone());
        }
        let built = self.build(secrets, seen + 1).await?;
        if let Some(old) = current.replace(built.clone()) {
            // Connections still checked out finish their work; idle ones hold the old login.
            old.pool.close();
        }
        Ok(built)
    }

    async fn build(
        &self,
        secrets: &impl Fn() -> aws_sdk_secretsmanager::Client,
        generation: u64,
    ) -> Result<Current, StageError> {
        let settings = match &self.settings.source {
            Source::Secret { arn } => {
                self.secret_reads.fetch_add(1, Ordering::Relaxed);
                // Boxed: the SDK's future is deep, and every stage's future would nest it.
                Box::pin(crate::secrets::database_settings(
                    &secrets(),
                    &self.settings,
                    arn,
                ))
                .await?
            }
            _ => self.settings.clone(),
        };
        let connector = postgres_tls::connector(&settings.tls)?;
        let manager = Manager::from_config(
            settings.config.clone(),
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| StageError::Internal(format!("PostgreSQL pool: {e}")))?;
        Ok(Current {
            pool,
            settings: Arc::new(settings),
            generation,
        })
    }
}

/// invalid_password, or invalid_authorization_specification (no such role, or a pg_hba
/// rule that refuses it).
fn is_auth_failure(err: &tokio_postgres::Error) -> bool {
    err.code()
        .is_some_and(|code| matches!(code.code(), "28P01" | "28000"))
}

fn pool_error(settings: &PostgresConfig, err: PoolError) -> StageError {
    match err {
        PoolError::Backend(e) => connect_error(settings, e),
        PoolError::Timeout(_) => StageError::unavailable(
            Service::Postgres,
            format!(
                "no connection within {:?} (is the server at {} up?)",
                settings.connect_timeout,
                describe_hosts(&settings.config)
            ),
        ),
        other => StageError::unavailable(Service::Postgres, other.to_string()),
    }
}

/// A failed connection: TLS failures are `Fatal` with what to change, the rest as any
/// PostgreSQL error (refused or lost connections stay retryable).
fn connect_error(settings: &PostgresConfig, err: tokio_postgres::Error) -> StageError {
    let server = describe_hosts(&settings.config);
    if let Some(tls) = postgres_tls::handshake_failure(&err, &server, settings.tls.mode) {
        return tls.into();
    }
    // pg_hba's "no encryption" refusal: the server wants TLS and we asked for none.
    if let Some(db) = err.as_db_error() {
        if settings.tls.mode == SslMode::Disable && db.message().contains("no encryption") {
            return TlsError::Handshake {
                server,
                mode: SslMode::Disable.as_str(),
                reason: format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
                hint: Some(
                    "the server accepts only TLS connections (on RDS, rds.force_ssl=1): drop \
                     sslmode=disable",
                ),
            }
            .into();
        }
    }
    StageError::postgres(err)
}

/// "host:port" of the configured server(s), for messages (never the password).
pub fn describe_hosts(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
