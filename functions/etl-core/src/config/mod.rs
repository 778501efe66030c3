//! Typed configuration, read once from the environment.
//!
//! Values come from the process environment first, then from the env file that
//! `scripts/services up` writes (`.services/env`), then from defaults that point at the local
//! stand-ins. Inside Lambda there is no env file and the AWS defaults (region, credentials,
//! endpoints) come from the runtime, so the same code runs unchanged against real AWS.
//!
//! Credentials on AWS come from Secrets Manager: with `DATABASE_SECRET_ARN` (or
//! `ELASTICSEARCH_SECRET_ARN`) set and `DATABASE_URL` (or `ELASTICSEARCH_URL`) unset, the
//! setting's [`Source`] is [`Source::Secret`] and the [`crate::Context`] fetches the secret
//! when it is first needed, inside an invocation (see [`crate::secrets`]). The explicit URL
//! always wins, for local development.
//!
//! PostgreSQL's TLS settings ([`TlsSettings`]) are decided here: `sslmode` from the connection
//! string (`DATABASE_URL`, or the secret's), [`SslMode::DEFAULT`] (`verify-full`) without one;
//! extra trusted CAs from `sslrootcert` and `DATABASE_CA_FILE`.
//!
//! Pure: reading an [`EnvSource`] and validating it. Nothing here is async or talks to a
//! service, so the layers above (secrets, clients) may use it but it uses none of them.

mod elasticsearch;
mod env;
mod postgres;

use std::time::Duration;

use url::Url;

pub use crate::error::ConfigError;
pub use elasticsearch::{BulkSettings, ElasticsearchAuth, ELASTICSEARCH_AUTH_VAR};
pub use env::{find_env_file, parse_env_file, EnvSource};
pub use postgres::{parse_connection_string, CaFile, ConnectionString, SslMode, TlsSettings};

/// Where a connection setting comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An explicit URL in the environment (`DATABASE_URL`, `ELASTICSEARCH_URL`).
    Env,
    /// A Secrets Manager secret, fetched by [`crate::Context`] when first needed.
    Secret { arn: String },
    /// Nothing set outside Lambda: the local stand-in's default address.
    LocalDefault,
    /// Nothing set inside Lambda, where a local default cannot be right: using the service
    /// is a configuration error naming the secret's variable.
    Unset,
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Everything but TLS; its `ssl_mode` is `disable` or `require` to match [`Self::tls`].
    pub config: tokio_postgres::Config,
    pub connect_timeout: Duration,
    pub source: Source,
    pub tls: TlsSettings,
    /// `DATABASE_CA_FILE`: trusted whatever the connection string says, so it applies to a
    /// secret's settings too.
    pub ca_file_env: Vec<CaFile>,
}

#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// `AWS_ENDPOINT_URL`: set for moto/LocalStack, unset on AWS.
    pub endpoint_url: Option<Url>,
    pub region: Option<String>,
    /// Static keys, only when they come from the local env file; on AWS the SDK's default
    /// chain (the function's role) is used.
    pub static_credentials: Option<(String, String)>,
    pub force_path_style: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ElasticsearchConfig {
    pub url: Url,
    /// Basic auth, from `ELASTICSEARCH_USERNAME` + `ELASTICSEARCH_PASSWORD` (or the secret).
    pub basic_auth: Option<(String, String)>,
    /// How requests authenticate (`ELASTICSEARCH_AUTH`).
    pub auth: ElasticsearchAuth,
    pub timeout: Duration,
    pub source: Source,
    /// How the bulk sink sends (`ELASTICSEARCH_BULK_*`).
    pub bulk: BulkSettings,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub postgres: PostgresConfig,
    pub aws: AwsConfig,
    pub bucket: String,
    pub elasticsearch: ElasticsearchConfig,
    /// Prepended to every index name (`ETL_INDEX_PREFIX`): lets several environments, or
    /// tests, share one cluster.
    pub index_prefix: String,
}

const DEFAULT_DATABASE_URL: &str = "postgres://etl@127.0.0.1:5432/etl";
const DEFAULT_ELASTICSEARCH_URL: &str = "http://127.0.0.1:9200";
const DEFAULT_BUCKET: &str = "etl-lake-local";

/// The variables naming the secrets (the SAM template sets them from its parameters).
pub const DATABASE_SECRET_VAR: &str = "DATABASE_SECRET_ARN";
pub const ELASTICSEARCH_SECRET_VAR: &str = "ELASTICSEARCH_SECRET_ARN";
/// Extra CA certificates (PEM) trusted for PostgreSQL besides the built-in RDS bundle.
pub const DATABASE_CA_FILE_VAR: &str = "DATABASE_CA_FILE";

impl Config {
    /// Process environment, plus `.services/env` when one is found (local runs).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&EnvSource::load()?)
    }

    pub fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            postgres: PostgresConfig::from_source(env)?,
            aws: AwsConfig::from_source(env)?,
            bucket: bucket(env)?,
            elasticsearch: ElasticsearchConfig::from_source(env)?,
            index_prefix: index_prefix(env)?,
        })
    }

    /// True when a setting still has to be read from Secrets Manager.
    pub fn has_secrets(&self) -> bool {
        matches!(self.postgres.source, Source::Secret { .. })
            || matches!(self.elasticsearch.source, Source::Secret { .. })
    }
}

impl Source {
    /// Where the setting named by `url_var` (or, failing it, the secret named by `secret_var`)
    /// comes from. The URL wins over the secret, but a value in the process environment wins
    /// over the env file: `DATABASE_SECRET_ARN=… etl runs` is not overridden by a local
    /// file's URL.
    fn of(env: &EnvSource, url_var: &str, secret_var: &str) -> Self {
        // Lambda sets this for every function; `cargo lambda watch` does too.
        let in_lambda = env.get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let secret = |arn: &str| Source::Secret {
            arn: arn.trim().to_string(),
        };
        match (
            env.process_value(url_var),
            env.process_value(secret_var),
            env.get(url_var),
            env.get(secret_var),
        ) {
            (Some(_), _, _, _) => Source::Env,
            (None, Some(arn), _, _) => secret(arn),
            (None, None, Some(_), _) => Source::Env,
            (None, None, None, Some(arn)) => secret(arn),
            (None, None, None, None) if in_lambda => Source::Unset,
            (None, None, None, None) => Source::LocalDefault,
        }
    }
}

impl PostgresConfig {
    fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let source = Source::of(env, "DATABASE_URL", DATABASE_SECRET_VAR);
        let url = match source {
            Source::Env => env.get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL),
            // Replaced by the secret's settings before any connection is made.
            _ => DEFAULT_DATABASE_URL,
        };
        // The parser's messages never quote the input, which can hold the password.
        let parsed = parse_connection_string(url).map_err(|reason| ConfigError::Invalid {
            var: "DATABASE_URL",
            reason,
        })?;
        let ca_file_env = env
            .get(DATABASE_CA_FILE_VAR)
            .map(|paths| {
                std::env::split_paths(paths)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|path| CaFile {
                        path,
                        var: DATABASE_CA_FILE_VAR,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let connect_timeout = seconds(env, "DATABASE_CONNECT_TIMEOUT_SECS", 5)?;
        Ok(Self::new(
            parsed,
            "DATABASE_URL",
            connect_timeout,
            source,
            ca_file_env,
        ))
    }

    /// The application name, connect timeout and TLS settings are set here, so a connection
    /// configuration from a secret gets them too. `var` names where `connection` came from.
    pub(crate) fn new(
        connection: ConnectionString,
        var: &'static str,
        connect_timeout: Duration,
        source: Source,
        ca_file_env: Vec<CaFile>,
    ) -> Self {
        let ConnectionString {
            mut config,
            sslmode,
            sslrootcert,
        } = connection;
        let mode = sslmode.unwrap_or(SslMode::DEFAULT);
        config.connect_timeout(connect_timeout);
        config.application_name("etl");
        // tokio-postgres only negotiates; whether and how the certificate is checked is the
        // connector's job (crate::postgres_tls). `Require` never falls back to plaintext.
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let mut ca_files: Vec<CaFile> = sslrootcert
            .map(|path| CaFile { path, var })
            .into_iter()
            .collect();
        ca_files.extend(ca_file_env.iter().cloned());
        Self {
            config,
            connect_timeout,
            source,
            tls: TlsSettings { mode, ca_files },
            ca_file_env,
        }
    }

    /// These settings with the connection (and its TLS settings) replaced by a secret's.
    pub(crate) fn with_connection(&self, connection: ConnectionString, var: &'static str) -> Self {
        Self::new(
            connection,
            var,
            self.connect_timeout,
            self.source.clone(),
            self.ca_file_env.clone(),
        )
    }
}

impl AwsConfig {
    fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let endpoint_url = env
            .get("AWS_ENDPOINT_URL")
            .map(|raw| http_url("AWS_ENDPOINT_URL", raw))
            .transpose()?;
        let force_path_style = match env.get("ETL_S3_FORCE_PATH_STYLE") {
            Some(raw) => boolean("ETL_S3_FORCE_PATH_STYLE", raw)?,
            // Local S3 stand-ins have no per-bucket DNS names.
            None => endpoint_url.is_some(),
        };
        Ok(Self {
            endpoint_url,
            region: env.get("AWS_REGION").map(str::to_string),
            static_credentials: static_credentials(env),
            force_path_style,
            timeout: seconds(env, "AWS_TIMEOUT_SECS", 30)?,
        })
    }
}

/// Keys from the env file only (the local stand-ins' dummy keys), so that on AWS, or with a
/// session in the shell, the SDK's default chain decides.
fn static_credentials(env: &EnvSource) -> Option<(String, String)> {
    match (
        env.file_values().get("AWS_ACCESS_KEY_ID"),
        env.file_values().get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) if env.get("AWS_SESSION_TOKEN").is_none() => {
            let id = env.get("AWS_ACCESS_KEY_ID").unwrap_or(id);
            let secret = env.get("AWS_SECRET_ACCESS_KEY").unwrap_or(secret);
            Some((id.to_string(), secret.to_string()))
        }
        _ => None,
    }
}

fn bucket(env: &EnvSource) -> Result<String, ConfigError> {
    let bucket = env.get("ETL_BUCKET").unwrap_or(DEFAULT_BUCKET).to_string();
    validate_bucket_name(&bucket)?;
    Ok(bucket)
}

impl ElasticsearchConfig {
    fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let source = Source::of(env, "ELASTICSEARCH_URL", ELASTICSEARCH_SECRET_VAR);
        let url = http_url(
            "ELASTICSEARCH_URL",
            match source {
                Source::Env => env
                    .get("ELASTICSEARCH_URL")
                    .unwrap_or(DEFAULT_ELASTICSEARCH_URL),
                _ => DEFAULT_ELASTICSEARCH_URL,
            },
        )?;
        let basic_auth = basic_auth(env)?;
        let auth = elasticsearch::auth(env, &source, basic_auth.is_some())?;
        Ok(Self {
            url,
            basic_auth,
            auth,
            timeout: seconds(env, "ELASTICSEARCH_TIMEOUT_SECS", 30)?,
            source,
            bulk: elasticsearch::bulk(env)?,
        })
    }
}

/// Both halves or neither: half a credential is a typo, not a choice.
fn basic_auth(env: &EnvSource) -> Result<Option<(String, String)>, ConfigError> {
    match (
        env.get("ELASTICSEARCH_USERNAME"),
        env.get("ELASTICSEARCH_PASSWORD"),
    ) {
        (Some(user), Some(password)) => Ok(Some((user.to_string(), password.to_string()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Missing {
            var: "ELASTICSEARCH_PASSWORD",
            hint: "ELASTICSEARCH_USERNAME is set, so basic auth needs a password too",
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            var: "ELASTICSEARCH_USERNAME",
            hint: "ELASTICSEARCH_PASSWORD is set, so basic auth needs a user name too",
        }),
    }
}

/// Index names allow only these, so a bad prefix fails at start-up, not on the first write.
fn index_prefix(env: &EnvSource) -> Result<String, ConfigError> {
    let prefix = env.get("ETL_INDEX_PREFIX").unwrap_or("");
    if prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        Ok(prefix.to_string())
    } else {
        Err(ConfigError::Invalid {
            var: "ETL_INDEX_PREFIX",
            reason: "use lowercase letters, digits, '_' or '-'".into(),
        })
    }
}

fn http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::Invalid {
        var,
        reason: format!("not a URL ({e})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("scheme must be http or https, not {}", url.scheme()),
        });
    }
    Ok(url)
}

fn seconds(env: &EnvSource, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let Some(raw) = env.get(var) else {
        return Ok(Duration::from_secs(default));
    };
    match raw.parse::<u64>() {
        Ok(n) if (1..=900).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!("expected whole seconds between 1 and 900, got {raw:?}"),
        }),
    }
}

fn boolean(var: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!("expected true or false, got {raw:?}"),
        }),
    }
}

/// S3's naming rules, checked early so a typo fails at start-up rather than on first write.
fn validate_bucket_name(name: &str) -> Result<(), ConfigError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name
        .chars()
        .next()
        .zip(name.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    if (3..=63).contains(&name.len()) && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            var: "ETL_BUCKET",
            reason: format!(
                "{name:?} is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' or '.')"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_point_at_local_services() {
        let config = Config::from_source(&EnvSource::default()).unwrap();
        assert_eq!(config.elasticsearch.url.as_str(), "http://127.0.0.1:9200/");
        assert_eq!(config.bucket, DEFAULT_BUCKET);
        assert!(config.aws.endpoint_url.is_none());
        assert_eq!(config.postgres.config.get_dbname(), Some("etl"));
    }

    #[test]
    fn invalid_values_name_the_variable_without_echoing_secrets() {
        let env = EnvSource::from_pairs([("DATABASE_URL", "postgres://u:s3cret@host:notaport/db")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");

        let env = EnvSource::from_pairs([("ELASTICSEARCH_URL", "ftp://x")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("ELASTICSEARCH_URL") && err.contains("ftp"),
            "{err}"
        );

        let env = EnvSource::from_pairs([("ETL_BUCKET", "Not_A_Bucket")]);
        assert!(Config::from_source(&env)
            .unwrap_err()
            .to_string()
            .contains("ETL_BUCKET"));

        let env = EnvSource::from_pairs([("AWS_TIMEOUT_SECS", "0")]);
        assert!(Config::from_source(&env)
            .unwrap_err()
            .to_string()
            .contains("AWS_TIMEOUT_SECS"));
    }

    #[test]
    fn an_explicit_url_wins_over_a_secret_and_lambda_has_no_local_default() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/db-AbCdEf";
        let env = EnvSource::from_pairs([
            ("DATABASE_SECRET_ARN", arn),
            ("ELASTICSEARCH_SECRET_ARN", arn),
        ]);
        let config = Config::from_source(&env).unwrap();
        assert_eq!(config.postgres.source, Source::Secret { arn: arn.into() });
        assert_eq!(
            config.elasticsearch.source,
            Source::Secret { arn: arn.into() }
        );
        assert!(config.has_secrets());

        let env = env
            .with("DATABASE_URL", "postgres://etl@db:5432/etl")
            .with("ELASTICSEARCH_URL", "http://es:9200");
        let config = Config::from_source(&env).unwrap();
        assert_eq!(config.postgres.source, Source::Env);
        assert_eq!(config.elasticsearch.source, Source::Env);
        assert!(!config.has_secrets());

        assert_eq!(
            Config::from_source(&EnvSource::default())
                .unwrap()
                .postgres
                .source,
            Source::LocalDefault
        );
        // A secret in the process environment beats a URL from the env file.
        let file_url = EnvSource {
            file: parse_env_file("DATABASE_URL=postgres://etl@127.0.0.1:5432/etl\n"),
            ..Default::default()
        };
        assert_eq!(
            Config::from_source(&file_url).unwrap().postgres.source,
            Source::Env
        );
        let config = Config::from_source(&file_url.with("DATABASE_SECRET_ARN", arn)).unwrap();
        assert_eq!(config.postgres.source, Source::Secret { arn: arn.into() });

        let lambda = EnvSource::from_pairs([("AWS_LAMBDA_FUNCTION_NAME", "hr-hire")]);
        let config = Config::from_source(&lambda).unwrap();
        assert_eq!(config.postgres.source, Source::Unset);
        assert_eq!(config.elasticsearch.source, Source::Unset);
    }

    #[test]
    fn database_tls_defaults_to_verify_full_and_takes_the_url_and_ca_file() {
        let config = Config::from_source(&EnvSource::default()).unwrap().postgres;
        assert_eq!(config.tls.mode, SslMode::VerifyFull);
        assert!(config.tls.ca_files.is_empty());
        assert_eq!(
            config.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );

        let env = EnvSource::from_pairs([
            (
                "DATABASE_URL",
                "postgres://etl:pw@127.0.0.1:5433/etl?sslmode=verify-ca&sslrootcert=/a/ca.crt",
            ),
            ("DATABASE_CA_FILE", "/b/one.pem:/b/two.pem"),
        ]);
        let config = Config::from_source(&env).unwrap().postgres;
        assert_eq!(config.tls.mode, SslMode::VerifyCa);
        let files: Vec<(&str, &str)> = config
            .tls
            .ca_files
            .iter()
            .map(|f| (f.path.to_str().unwrap(), f.var))
            .collect();
        assert_eq!(
            files,
            [
                ("/a/ca.crt", "DATABASE_URL"),
                ("/b/one.pem", "DATABASE_CA_FILE"),
                ("/b/two.pem", "DATABASE_CA_FILE")
            ]
        );

        let env =
            EnvSource::from_pairs([("DATABASE_URL", "postgres://etl@db/etl?sslmode=disable")]);
        let config = Config::from_source(&env).unwrap().postgres;
        assert_eq!(config.tls.mode, SslMode::Disable);
        assert_eq!(
            config.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );

        let env =
            EnvSource::from_pairs([("DATABASE_URL", "postgres://u:s3cret@db/etl?sslmode=prefer")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("DATABASE_URL") && err.contains("verify-full"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn basic_auth_needs_both_halves() {
        let env = EnvSource::from_pairs([("ELASTICSEARCH_USERNAME", "elastic")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("ELASTICSEARCH_PASSWORD"), "{err}");
        let env = env.with("ELASTICSEARCH_PASSWORD", "pw");
        let config = Config::from_source(&env).unwrap();
        assert_eq!(
            config.elasticsearch.basic_auth,
            Some(("elastic".into(), "pw".into()))
        );
    }

    #[test]
    fn endpoint_turns_on_path_style_and_file_credentials() {
        let env = EnvSource {
            file: parse_env_file(
                "# comment\nAWS_ENDPOINT_URL=http://127.0.0.1:5000\nAWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n",
            ),
            ..Default::default()
        };
        let config = Config::from_source(&env).unwrap();
        assert!(config.aws.force_path_style);
        assert_eq!(
            config.aws.static_credentials,
            Some(("testing".into(), "testing".into()))
        );
        // Process environment wins over the file.
        let env = env.with("AWS_ENDPOINT_URL", "http://localhost:4566");
        let config = Config::from_source(&env).unwrap();
        assert_eq!(
            config.aws.endpoint_url.unwrap().as_str(),
            "http://localhost:4566/"
        );
    }
}
