//! Clients for every service, built once per process (per Lambda container) and shared by
//! all invocations. Nothing here does network I/O up front: a service that is down surfaces
//! as a typed, retryable error from the stage that needs it, not as a failed cold start.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use elasticsearch::auth::Credentials as EsCredentials;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;

use crate::aws_calls::{Audit, CallAuditor};
use crate::config::{
    AwsConfig, Config, ConfigError, ElasticsearchAuth, ElasticsearchConfig, Source,
};
use crate::database::Database;
pub use crate::database::{describe_hosts, PgClient};
use crate::error::StageError;
use crate::search::sigv4::RequestSigner;
use crate::search::SearchClient;

pub struct Context {
    pub config: Config,
    /// Shared by every view of this context: one pool, one secret cache (see
    /// [`crate::database`]).
    postgres: Arc<Database>,
    aws: SdkConfig,
    s3: OnceLock<aws_sdk_s3::Client>,
    sfn: OnceLock<aws_sdk_sfn::Client>,
    scheduler: OnceLock<aws_sdk_scheduler::Client>,
    elasticsearch: OnceLock<SearchClient>,
    /// Elasticsearch's settings once read from its secret (see [`Context::resolve_secrets`]).
    elasticsearch_secret: Arc<tokio::sync::OnceCell<ElasticsearchConfig>>,
    /// Whose AWS calls these are, and who checks them (see [`crate::aws_calls`]).
    audit: Audit,
    /// When the invocation this view serves is ended (Lambda's deadline, or the local
    /// host's `Timeout`): a stage that can stop early and continue later (hr-sync) stops
    /// before it. `None` outside an invocation.
    deadline: Option<Instant>,
}

impl Context {
    /// Builds every client from the configuration. Reads the environment (for the AWS default
    /// credential chain) and connects to nothing: secrets are read when first needed, inside
    /// an invocation ([`Context::postgres`], [`Context::resolve_secrets`]), so a Secrets
    /// Manager outage is a retryable stage error rather than a failed cold start.
    pub async fn new(config: Config) -> Result<Self, StageError> {
        Self::with_audit(config, Audit::default()).await
    }

    /// [`Context::new`], its AWS calls made as (and checked as) `audit` says: a Lambda
    /// binary's context is its function's, secret fetches included.
    pub async fn with_audit(config: Config, audit: Audit) -> Result<Self, StageError> {
        let aws = sdk_config(&config.aws).await;
        let postgres = Arc::new(Database::new(config.postgres.clone()));
        Ok(Self {
            config,
            postgres,
            aws,
            s3: OnceLock::new(),
            sfn: OnceLock::new(),
            scheduler: OnceLock::new(),
            elasticsearch: OnceLock::new(),
            elasticsearch_secret: Arc::default(),
            audit,
            deadline: None,
        })
    }

    /// This context as `function` runs: the same pools and clients, its AWS calls attributed
    /// to the function and checked by this context's auditor. Cheap: without an auditor the
    /// clients are shared; with one, the view builds its own S3 client (the interceptor is
    /// per client) on first use.
    pub fn for_function(&self, function: &str) -> Context {
        self.view(self.audit.for_function(function))
    }

    /// [`Context::for_function`] checked by `auditor` instead of this context's.
    pub fn for_function_with(&self, function: &str, auditor: Arc<dyn CallAuditor>) -> Context {
        self.view(
            self.audit
                .for_function(function)
                .with_auditor(Some(auditor)),
        )
    }

    /// The auditor calls made as a function are checked by, if any.
    pub fn auditor(&self) -> Option<&Arc<dyn CallAuditor>> {
        self.audit.auditor()
    }

    /// The function this context's AWS calls are made as (`None`: the operator's).
    pub fn function(&self) -> Option<&str> {
        self.audit.function()
    }

    /// This context for one invocation that is ended at `deadline`. Cheap: the same clients.
    pub fn with_deadline(&self, deadline: Instant) -> Context {
        let mut view = self.view(self.audit.clone());
        view.deadline = Some(deadline);
        view
    }

    /// When this invocation is ended, if it is one (see [`Context::with_deadline`]).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn view(&self, audit: Audit) -> Context {
        Context {
            config: self.config.clone(),
            postgres: self.postgres.clone(),
            aws: self.aws.clone(),
            s3: if audit.is_active() {
                OnceLock::new()
            } else {
                self.s3.clone()
            },
            sfn: self.sfn.clone(),
            scheduler: self.scheduler.clone(),
            elasticsearch: self.elasticsearch.clone(),
            elasticsearch_secret: Arc::clone(&self.elasticsearch_secret),
            audit,
            deadline: self.deadline,
        }
    }

    /// A PostgreSQL connection. The first call reads the database secret when the settings
    /// come from one; a refused login reads it again once (see [`crate::database`]).
    pub async fn postgres(&self) -> Result<PgClient, StageError> {
        self.postgres
            .get(|| self.audit.secrets_client(&self.aws))
            .await
    }

    /// How many times this process has read the database secret (shared by every view).
    pub fn database_secret_reads(&self) -> u64 {
        self.postgres.secret_reads()
    }

    /// Reads the secrets [`Context::postgres`] does not read by itself: Elasticsearch's,
    /// once. The Lambda handler calls it at the start of every invocation, so that
    /// [`Context::elasticsearch`], which cannot wait, finds the settings there.
    pub async fn resolve_secrets(&self) -> Result<(), StageError> {
        // With sigv4 the source is never a secret (the configuration refuses it).
        if let Source::Secret { arn } = &self.config.elasticsearch.source {
            self.elasticsearch_secret
                .get_or_try_init(|| async {
                    let client = self.audit.secrets_client(&self.aws);
                    // Boxed: the SDK's future is deep, and every handler's would nest it.
                    Box::pin(crate::secrets::elasticsearch_config(
                        &client,
                        &self.config.elasticsearch,
                        arn,
                    ))
                    .await
                })
                .await?;
        }
        Ok(())
    }

    /// Elasticsearch's settings: the configuration's, or its secret's once read (`None`
    /// before [`Context::resolve_secrets`]).
    pub fn elasticsearch_settings(&self) -> Option<&ElasticsearchConfig> {
        match self.config.elasticsearch.source {
            Source::Secret { .. } => self.elasticsearch_secret.get(),
            _ => Some(&self.config.elasticsearch),
        }
    }

    /// The shared AWS SDK configuration (region, credentials, endpoint), for clients this
    /// context does not keep.
    pub fn aws_config(&self) -> &SdkConfig {
        &self.aws
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| {
            let conf = aws_sdk_s3::config::Builder::from(&self.aws)
                .force_path_style(self.config.aws.force_path_style);
            let conf = self.audit.s3_config(conf).build();
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

    /// The Elasticsearch client, built on first use: basic auth on the transport, or a
    /// SigV4 signer with this context's AWS credentials and region.
    pub fn elasticsearch(&self) -> Result<&SearchClient, StageError> {
        if let Some(client) = self.elasticsearch.get() {
            return Ok(client);
        }
        if self.config.elasticsearch.source == Source::Unset {
            return Err(match self.config.elasticsearch.auth {
                ElasticsearchAuth::SigV4 => ConfigError::Missing {
                    var: "ELASTICSEARCH_URL",
                    hint: "with ELASTICSEARCH_AUTH=sigv4 the function needs the domain's \
                           endpoint: deploy with the ElasticsearchUrl parameter",
                },
                _ => ConfigError::Missing {
                    var: crate::config::ELASTICSEARCH_SECRET_VAR,
                    hint: "inside Lambda Elasticsearch needs ELASTICSEARCH_URL or a secret: \
                           deploy with the ElasticsearchSecretArn or ElasticsearchUrl parameter",
                },
            }
            .into());
        }
        let es = self.elasticsearch_settings().ok_or_else(|| {
            StageError::Internal(format!(
                "{}: the secret has not been read yet (call Context::resolve_secrets first)",
                crate::config::ELASTICSEARCH_SECRET_VAR
            ))
        })?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(es.url.clone()))
            .timeout(es.timeout)
            .disable_proxy();
        let mut signer = None;
        match (&es.basic_auth, es.auth) {
            (Some((user, password)), ElasticsearchAuth::Basic) => {
                builder = builder.auth(EsCredentials::Basic(user.clone(), password.clone()));
            }
            (_, ElasticsearchAuth::SigV4) => signer = Some(self.request_signer()?),
            _ => {}
        }
        let transport = builder
            .build()
            .map_err(|e| StageError::Internal(format!("Elasticsearch client: {e}")))?;
        let client = SearchClient::new(Elasticsearch::new(transport), es.url.clone(), signer);
        Ok(self.elasticsearch.get_or_init(|| client))
    }

    /// A SigV4 signer with the SDK's credential chain (on Lambda, the function role's
    /// temporary keys from its environment) for the function's own region.
    fn request_signer(&self) -> Result<RequestSigner, StageError> {
        let region = self.aws.region().ok_or(ConfigError::Missing {
            var: "AWS_REGION",
            hint: "ELASTICSEARCH_AUTH=sigv4 signs for the function's region (Lambda sets it)",
        })?;
        let provider = self.aws.credentials_provider().ok_or_else(|| {
            StageError::Internal("the AWS SDK configuration has no credentials provider".into())
        })?;
        Ok(RequestSigner::new(provider, region.to_string()))
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
