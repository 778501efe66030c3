//! Typed configuration, read once from the environment.
//!
//! Values come from the process environment first, then from the env file that
//! `scripts/services up` writes (`.services/env`), then from defaults that point at the local
//! stand-ins. Inside Lambda there is no env file and the AWS defaults (region, credentials,
//! endpoints) come from the runtime, so the same code runs unchanged against real AWS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// A configuration value that is missing or does not parse. Names the variable, never echoes
/// its value (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {var} is required: {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("cannot read env file {path}: {source}")]
    EnvFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where configuration values come from: process environment over env-file values.
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    file: HashMap<String, String>,
    process: HashMap<String, String>,
}

impl EnvSource {
    /// The process environment only (what a Lambda function sees).
    pub fn process() -> Self {
        Self {
            file: HashMap::new(),
            process: std::env::vars().collect(),
        }
    }

    /// The process environment over the given env file, which must exist.
    pub fn process_and_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::EnvFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file: parse_env_file(&text),
            process: std::env::vars().collect(),
        })
    }

    /// Explicit values, for tests.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            file: HashMap::new(),
            process: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A copy with one value overridden, for tests.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.process.insert(key.to_string(), value.to_string());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.process
            .get(key)
            .or_else(|| self.file.get(key))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Every value, process over file: what a child process (e.g. `cargo lambda watch`) needs.
    pub fn merged(&self) -> HashMap<String, String> {
        let mut all = self.file.clone();
        all.extend(self.process.clone());
        all
    }

    /// Values that came only from the env file (the local stand-ins' settings).
    pub fn file_values(&self) -> &HashMap<String, String> {
        &self.file
    }
}

/// `KEY=VALUE` lines; `#` comments and blank lines ignored; no quoting or interpolation.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The env file named by `ETL_ENV_FILE`, else `.services/env` in the current directory or
/// one of its parents.
pub fn find_env_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ETL_ENV_FILE") {
        return Some(PathBuf::from(path));
    }
    let start = std::env::current_dir().ok()?;
    start
        .ancestors()
        .map(|dir| dir.join(".services").join("env"))
        .find(|candidate| candidate.is_file())
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub config: tokio_postgres::Config,
    pub connect_timeout: Duration,
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
    /// Basic auth, from `ELASTICSEARCH_USERNAME` + `ELASTICSEARCH_PASSWORD`.
    pub basic_auth: Option<(String, String)>,
    pub timeout: Duration,
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

impl Config {
    /// Process environment, plus `.services/env` when one is found (local runs).
    pub fn from_env() -> Result<Self, ConfigError> {
        let source = match find_env_file() {
            Some(path) => EnvSource::process_and_file(&path)?,
            None => EnvSource::process(),
        };
        Self::from_source(&source)
    }

    pub fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let database_url = env.get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL);
        let mut pg =
            tokio_postgres::Config::from_str(database_url).map_err(|e| ConfigError::Invalid {
                var: "DATABASE_URL",
                reason: format!("not a PostgreSQL connection string ({e})"),
            })?;
        let connect_timeout = seconds(env, "DATABASE_CONNECT_TIMEOUT_SECS", 5)?;
        pg.connect_timeout(connect_timeout);
        pg.application_name("etl");

        let endpoint_url = env
            .get("AWS_ENDPOINT_URL")
            .map(|raw| http_url("AWS_ENDPOINT_URL", raw))
            .transpose()?;
        let static_credentials = match (
            env.file_values().get("AWS_ACCESS_KEY_ID"),
            env.file_values().get("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) if env.get("AWS_SESSION_TOKEN").is_none() => {
                let id = env.get("AWS_ACCESS_KEY_ID").unwrap_or(id);
                let secret = env.get("AWS_SECRET_ACCESS_KEY").unwrap_or(secret);
                Some((id.to_string(), secret.to_string()))
            }
            _ => None,
        };
        let force_path_style = match env.get("ETL_S3_FORCE_PATH_STYLE") {
            Some(raw) => boolean("ETL_S3_FORCE_PATH_STYLE", raw)?,
            // Local S3 stand-ins have no per-bucket DNS names.
            None => endpoint_url.is_some(),
        };
        let aws = AwsConfig {
            endpoint_url,
            region: env.get("AWS_REGION").map(str::to_string),
            static_credentials,
            force_path_style,
            timeout: seconds(env, "AWS_TIMEOUT_SECS", 30)?,
        };

        let bucket = env.get("ETL_BUCKET").unwrap_or(DEFAULT_BUCKET).to_string();
        validate_bucket_name(&bucket)?;

        let es_url = http_url(
            "ELASTICSEARCH_URL",
            env.get("ELASTICSEARCH_URL")
                .unwrap_or(DEFAULT_ELASTICSEARCH_URL),
        )?;
        let basic_auth = match (
            env.get("ELASTICSEARCH_USERNAME"),
            env.get("ELASTICSEARCH_PASSWORD"),
        ) {
            (Some(user), Some(password)) => Some((user.to_string(), password.to_string())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: "ELASTICSEARCH_PASSWORD",
                    hint: "ELASTICSEARCH_USERNAME is set, so basic auth needs a password too",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    var: "ELASTICSEARCH_USERNAME",
                    hint: "ELASTICSEARCH_PASSWORD is set, so basic auth needs a user name too",
                })
            }
        };
        let elasticsearch = ElasticsearchConfig {
            url: es_url,
            basic_auth,
            timeout: seconds(env, "ELASTICSEARCH_TIMEOUT_SECS", 30)?,
        };

        let index_prefix = env.get("ETL_INDEX_PREFIX").unwrap_or("").to_string();
        if !index_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(ConfigError::Invalid {
                var: "ETL_INDEX_PREFIX",
                reason: "use lowercase letters, digits, '_' or '-'".into(),
            });
        }

        Ok(Self {
            postgres: PostgresConfig {
                config: pg,
                connect_timeout,
            },
            aws,
            bucket,
            elasticsearch,
            index_prefix,
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
