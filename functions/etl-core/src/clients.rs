//! Clients for every service, built once per process (per Lambda container) and shared by
//! all invocations. Nothing here does network I/O up front: a service that is down surfaces
//! as a typed, retryable error from the stage that needs it, not as a failed cold start.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use elasticsearch::auth::Credentials as EsCredentials;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;

use crate::config::{AwsConfig, Config, ConfigError, Source};
use crate::error::{Service, StageError};

/// A checked-out PostgreSQL connection; returns to the pool on drop.
pub type PgClient = deadpool_postgres::Object;

pub struct Context {
    pub config: Config,
    postgres: Pool,
    aws: SdkConfig,
    s3: OnceLock<aws_sdk_s3::Client>,
    sfn: OnceLock<aws_sdk_sfn::Client>,
    scheduler: OnceLock<aws_sdk_scheduler::Client>,
    elasticsearch: OnceLock<Elasticsearch>,
}

impl Context {
    /// Builds every client from the configuration. Reads the environment (for the AWS default
    /// credential chain) and, when a setting comes from Secrets Manager, fetches that secret
    /// (once: a Lambda container builds its Context at cold start). Connects to nothing else.
    pub async fn new(config: Config) -> Result<Self, StageError> {
        let aws = sdk_config(&config.aws).await;
        let config = if config.has_secrets() {
            config
                .resolve_secrets(&aws_sdk_secretsmanager::Client::new(&aws))
                .await?
        } else {
            config
        };
        let manager = Manager::from_config(
            config.postgres.config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let postgres = Pool::builder(manager)
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.postgres.connect_timeout))
            .create_timeout(Some(config.postgres.connect_timeout))
            .build()
            .map_err(|e| StageError::Internal(format!("PostgreSQL pool: {e}")))?;
        Ok(Self {
            config,
            postgres,
            aws,
            s3: OnceLock::new(),
            sfn: OnceLock::new(),
            scheduler: OnceLock::new(),
            elasticsearch: OnceLock::new(),
        })
    }

    pub async fn postgres(&self) -> Result<PgClient, StageError> {
        if self.config.postgres.source == Source::Unset {
            return Err(ConfigError::Missing {
                var: crate::config::DATABASE_SECRET_VAR,
                hint: "inside Lambda the database settings come from Secrets Manager: deploy \
                       with the DatabaseSecretArn parameter (or set DATABASE_URL)",
            }
            .into());
        }
        self.postgres.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(e) => StageError::postgres(e),
            deadpool_postgres::PoolError::Timeout(_) => StageError::unavailable(
                Service::Postgres,
                format!(
                    "no connection within {:?} (is the server at {} up?)",
                    self.config.postgres.connect_timeout,
                    describe_hosts(&self.config.postgres.config)
                ),
            ),
            other => StageError::unavailable(Service::Postgres, other.to_string()),
        })
    }

    /// The shared AWS SDK configuration (region, credentials, endpoint), for clients this
    /// context does not keep.
    pub fn aws_config(&self) -> &SdkConfig {
        &self.aws
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| {
            let conf = aws_sdk_s3::config::Builder::from(&self.aws)
                .force_path_style(self.config.aws.force_path_style)
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }

    pub fn step_functions(&self) -> &aws_sdk_sfn::Client {
        self.sfn.get_or_init(|| aws_sdk_sfn::Client::new(&self.aws))
    }

    pub fn scheduler(&self) -> &aws_sdk_scheduler::Client {
        self.scheduler
            .get_or_init(|| aws_sdk_scheduler::Client::new(&self.aws))
    }

    /// A Lambda client for invoking functions at the given Invoke API endpoint (e.g.
    /// `cargo lambda watch`), or at the configured AWS endpoint when `None`. The SDK does
    /// not retry: a function error is the state machine's to retry, not the client's.
    pub fn lambda_invoker(
        &self,
        endpoint: Option<&str>,
        timeout: Duration,
    ) -> aws_sdk_lambda::Client {
        let mut conf = aws_sdk_lambda::config::Builder::from(&self.aws)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(timeout)
                    .build(),
            );
        if let Some(url) = endpoint {
            conf = conf.endpoint_url(url.trim_end_matches('/'));
        }
        aws_sdk_lambda::Client::from_conf(conf.build())
    }

    /// The full name of an index in this environment.
    pub fn index_name(&self, base: &str) -> String {
        format!("{}{base}", self.config.index_prefix)
    }

    pub fn elasticsearch(&self) -> Result<&Elasticsearch, StageError> {
        if let Some(client) = self.elasticsearch.get() {
            return Ok(client);
        }
        let es = &self.config.elasticsearch;
        if es.source == Source::Unset {
            return Err(ConfigError::Missing {
                var: crate::config::ELASTICSEARCH_SECRET_VAR,
                hint: "inside Lambda Elasticsearch needs ELASTICSEARCH_URL or a secret: deploy \
                       with the ElasticsearchSecretArn or ElasticsearchUrl parameter",
            }
            .into());
        }
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(es.url.clone()))
            .timeout(es.timeout)
            .disable_proxy();
        if let Some((user, password)) = &es.basic_auth {
            builder = builder.auth(EsCredentials::Basic(user.clone(), password.clone()));
        }
        let transport = builder
            .build()
            .map_err(|e| StageError::Internal(format!("Elasticsearch client: {e}")))?;
        Ok(self
            .elasticsearch
            .get_or_init(|| Elasticsearch::new(transport)))
    }
}

async fn sdk_config(aws: &AwsConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(aws.timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url.as_str().trim_end_matches('/'));
    }
    if let Some(region) = &aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((id, secret)) = &aws.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "etl-env-file",
        ));
    }
    loader.load().await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvSource;

    #[tokio::test]
    async fn inside_lambda_an_unconfigured_service_is_a_fatal_error_naming_the_secret() {
        let env = EnvSource::from_pairs([
            ("AWS_LAMBDA_FUNCTION_NAME", "hr-hire"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let ctx = crate::Context::new(Config::from_source(&env).unwrap())
            .await
            .unwrap();
        let Err(err) = ctx.postgres().await else {
            panic!("an unconfigured database gave a connection");
        };
        assert_eq!(err.kind(), crate::ErrorKind::Fatal);
        assert!(err.to_string().contains("DATABASE_SECRET_ARN"), "{err}");
        let Err(err) = ctx.elasticsearch() else {
            panic!("an unconfigured Elasticsearch gave a client");
        };
        assert!(
            err.to_string().contains("ELASTICSEARCH_SECRET_ARN"),
            "{err}"
        );
    }
}
