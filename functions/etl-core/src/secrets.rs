//! Credentials from AWS Secrets Manager, read when first needed inside an invocation (see
//! [`crate::Context::postgres`] and [`crate::Context::resolve_secrets`]), never at start-up.
//!
//! On AWS the functions' environment holds only secret ARNs (`DATABASE_SECRET_ARN`,
//! `ELASTICSEARCH_SECRET_ARN`); the values stay in Secrets Manager and in this process's
//! memory. Locally `DATABASE_URL` / `ELASTICSEARCH_URL` win, so nothing here runs.
//!
//! Secret formats (the `SecretString`, JSON):
//! - database: `{"url": "postgres://…"}` (`sslmode` and `sslrootcert` as in `DATABASE_URL`),
//!   or the RDS style `{"username", "password", "host", "port"?, "dbname"?, "sslmode"?}`
//!   (extra keys such as `engine` are ignored; `port` may be a number or a string);
//! - Elasticsearch: `{"url"}` or `{"url", "username", "password"}` (basic auth).
//!
//! No error or log line ever contains a secret's value: messages name keys, never values.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{
    parse_connection_string, ConnectionString, ElasticsearchConfig, PostgresConfig, SslMode,
    DATABASE_SECRET_VAR, ELASTICSEARCH_SECRET_VAR,
};
pub use crate::error::SecretError;
use crate::retry;

/// `base` with its connection replaced by the one the database secret `arn` holds (its
/// timeout and `DATABASE_CA_FILE` kept).
pub async fn database_settings(
    client: &aws_sdk_secretsmanager::Client,
    base: &PostgresConfig,
    arn: &str,
) -> Result<PostgresConfig, SecretError> {
    let text = fetch(client, DATABASE_SECRET_VAR, arn).await?;
    let connection = database_config(DATABASE_SECRET_VAR, arn, &text)?;
    let settings = base.with_connection(connection, DATABASE_SECRET_VAR);
    tracing::debug!(sslmode = %settings.tls.mode, "database settings read from Secrets Manager");
    Ok(settings)
}

/// `base` with its URL and basic auth replaced by what the Elasticsearch secret `arn` holds.
pub async fn elasticsearch_config(
    client: &aws_sdk_secretsmanager::Client,
    base: &ElasticsearchConfig,
    arn: &str,
) -> Result<ElasticsearchConfig, SecretError> {
    let text = fetch(client, ELASTICSEARCH_SECRET_VAR, arn).await?;
    let (url, basic_auth) = elasticsearch_settings(ELASTICSEARCH_SECRET_VAR, arn, &text)?;
    Ok(ElasticsearchConfig {
        url,
        basic_auth,
        ..base.clone()
    })
}

/// What a database secret resolves to: a connection configuration (password included) and
/// its TLS settings.
pub fn database_config(
    var: &'static str,
    arn: &str,
    secret: &str,
) -> Result<ConnectionString, SecretError> {
    let malformed = |reason: String| SecretError::Malformed {
        var,
        arn: arn.to_string(),
        reason,
    };
    let fields = json_object(secret).map_err(malformed)?;
    let url = match fields.get("url") {
        Some(_) => string_field(&fields, "url").map_err(malformed)?.to_string(),
        None => rds_style_url(&fields).map_err(malformed)?,
    };
    // The parser's messages never quote the input, which holds the password.
    parse_connection_string(&url).map_err(|reason| {
        malformed(format!(
            "the connection settings do not form a valid PostgreSQL connection URL: {reason}"
        ))
    })
}

/// What an Elasticsearch secret resolves to: its URL and optional basic auth.
pub fn elasticsearch_settings(
    var: &'static str,
    arn: &str,
    secret: &str,
) -> Result<(Url, Option<(String, String)>), SecretError> {
    let malformed = |reason: String| SecretError::Malformed {
        var,
        arn: arn.to_string(),
        reason,
    };
    let fields = json_object(secret).map_err(malformed)?;
    let raw_url = string_field(&fields, "url").map_err(malformed)?;
    let url = Url::parse(raw_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| malformed("\"url\" is not an http(s) URL".into()))?;
    let user = optional_string(&fields, "username").map_err(malformed)?;
    let password = optional_string(&fields, "password").map_err(malformed)?;
    let auth = match (user, password) {
        (Some(user), Some(password)) => Some((user.to_string(), password.to_string())),
        (None, None) => None,
        (Some(_), None) => return Err(malformed("\"username\" without \"password\"".into())),
        (None, Some(_)) => return Err(malformed("\"password\" without \"username\"".into())),
    };
    Ok((url, auth))
}

/// Reads a secret's `SecretString`.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    var: &'static str,
    arn: &str,
) -> Result<String, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| classify(var, arn, err))?;
    output
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| SecretError::NotAString {
            var,
            arn: arn.to_string(),
        })
}

fn classify<E>(
    var: &'static str,
    arn: &str,
    err: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let arn = arn.to_string();
    if let SdkError::ServiceError(ctx) = &err {
        if ctx.err().code() == Some("ResourceNotFoundException") {
            return SecretError::NotFound { var, arn };
        }
    }
    let retryable = retry::is_retryable_aws(&err);
    SecretError::Unavailable {
        var,
        arn,
        retryable,
        // The SDK's error text carries codes and messages from the service, never the value.
        message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
    }
}

fn json_object(secret: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(secret) {
        Ok(Value::Object(map)) => Ok(map),
        // serde_json's messages can quote the input; say only what is wrong.
        Ok(_) => Err("expected a JSON object".into()),
        Err(_) => Err("not JSON (expected a JSON object)".into()),
    }
}

fn string_field<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    optional_string(fields, key)?.ok_or_else(|| format!("missing key \"{key}\""))
}

fn optional_string<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(format!("\"{key}\" is empty")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// `postgres://user:password@host:port/dbname`, user and password percent-encoded.
fn rds_style_url(fields: &Map<String, Value>) -> Result<String, String> {
    let (Some(_), Some(_), Some(_)) = (
        fields.get("host"),
        fields.get("username"),
        fields.get("password"),
    ) else {
        let missing: Vec<&str> = ["host", "username", "password"]
            .into_iter()
            .filter(|k| !fields.contains_key(*k))
            .collect();
        return Err(format!(
            "expected \"url\", or \"host\", \"username\" and \"password\" (missing: {})",
            missing.join(", ")
        ));
    };
    let host = string_field(fields, "host")?;
    let user = string_field(fields, "username")?;
    let password = string_field(fields, "password")?;
    let port = match fields.get("port") {
        None | Some(Value::Null) => 5432,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| "\"port\" is not a TCP port".to_string())?,
        Some(Value::String(s)) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| "\"port\" is not a TCP port".to_string())?,
        Some(_) => return Err("\"port\" must be a number".into()),
    };
    let dbname = optional_string(fields, "dbname")?;
    // Checked here so the message names the key; the URL parser checks it again.
    let sslmode = optional_string(fields, "sslmode")?
        .map(|mode| {
            mode.parse::<SslMode>()
                .map_err(|e| format!("\"sslmode\": {e}"))
        })
        .transpose()?;

    let mut url = Url::parse("postgres://placeholder").map_err(|e| e.to_string())?;
    url.set_host(Some(host))
        .map_err(|_| "\"host\" is not a host name or address".to_string())?;
    url.set_port(Some(port))
        .map_err(|_| "\"port\" cannot be set".to_string())?;
    // `set_username` / `set_password` percent-encode the userinfo; tokio-postgres decodes it.
    url.set_username(user)
        .map_err(|_| "\"username\" cannot be used in a URL".to_string())?;
    url.set_password(Some(password))
        .map_err(|_| "\"password\" cannot be used in a URL".to_string())?;
    if let Some(db) = dbname {
        url.path_segments_mut()
            .map_err(|_| "cannot set the database name".to_string())?
            .push(db);
    }
    if let Some(mode) = sslmode {
        url.query_pairs_mut().append_pair("sslmode", mode.as_str());
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/db-AbCdEf";

    #[test]
    fn a_url_secret_gives_its_connection_settings() {
        let config = database_config(
            "DATABASE_SECRET_ARN",
            ARN,
            r#"{"url": "postgres://etl:pw@db.internal:6432/etl"}"#,
        )
        .unwrap()
        .config;
        assert_eq!(config.get_user(), Some("etl"));
        assert_eq!(config.get_password(), Some(&b"pw"[..]));
        assert_eq!(config.get_ports(), &[6432]);
        assert_eq!(config.get_dbname(), Some("etl"));
    }

    #[test]
    fn an_rds_style_secret_is_percent_encoded_and_decodes_to_the_same_password() {
        let password = "p@ss:w/rd?#%[] é\"'";
        let secret = serde_json::json!({
            "engine": "postgres",
            "host": "etl.cluster-abc.us-east-1.rds.amazonaws.com",
            "port": "5433",
            "username": "etl admin",
            "password": password,
            "dbname": "etl",
        })
        .to_string();
        let parsed = database_config("DATABASE_SECRET_ARN", ARN, &secret).unwrap();
        assert_eq!(
            parsed.sslmode, None,
            "verify-full is the default, not written"
        );
        let config = parsed.config;
        assert_eq!(config.get_password(), Some(password.as_bytes()));
        assert_eq!(config.get_user(), Some("etl admin"));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_dbname(), Some("etl"));
        assert_eq!(
            config.get_hosts(),
            &[tokio_postgres::config::Host::Tcp(
                "etl.cluster-abc.us-east-1.rds.amazonaws.com".into()
            )]
        );

        // Numeric port, no dbname (the server then uses the user name).
        let config = database_config(
            "DATABASE_SECRET_ARN",
            ARN,
            r#"{"host": "10.0.0.5", "port": 5432, "username": "etl", "password": "x"}"#,
        )
        .unwrap()
        .config;
        assert_eq!(config.get_ports(), &[5432]);
        assert_eq!(config.get_dbname(), None);
    }

    #[test]
    fn a_secret_may_carry_its_sslmode_and_prefer_is_refused() {
        let parsed = database_config(
            "DATABASE_SECRET_ARN",
            ARN,
            r#"{"host": "db", "username": "etl", "password": "x", "sslmode": "verify-ca"}"#,
        )
        .unwrap();
        assert_eq!(parsed.sslmode, Some(SslMode::VerifyCa));
        let parsed = database_config(
            "DATABASE_SECRET_ARN",
            ARN,
            r#"{"url": "postgres://etl:x@db/etl?sslmode=disable&sslrootcert=/ca.pem"}"#,
        )
        .unwrap();
        assert_eq!(parsed.sslmode, Some(SslMode::Disable));
        assert_eq!(parsed.sslrootcert, Some("/ca.pem".into()));

        let err = database_config(
            "DATABASE_SECRET_ARN",
            ARN,
            r#"{"host": "db", "username": "etl", "password": "hunter2", "sslmode": "prefer"}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"sslmode\"") && text.contains("verify-full"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(err.kind(), ErrorKind::Fatal);
    }

    #[test]
    fn malformed_database_secrets_name_keys_not_values() {
        let cases = [
            ("hunter2-not-json", "not JSON"),
            (r#"["hunter2"]"#, "JSON object"),
            (r#"{"url": 12345}"#, "\"url\" must be a string"),
            (r#"{"password": "hunter2"}"#, "missing: host, username"),
            (
                r#"{"host": "h", "username": "u", "password": "hunter2", "port": "x"}"#,
                "\"port\"",
            ),
            (
                r#"{"host": "h", "username": "u", "password": 987654}"#,
                "\"password\" must be a string",
            ),
            (r#"{"url": "mysql://u:hunter2@h:/x"}"#, "PostgreSQL"),
        ];
        for (secret, expected) in cases {
            let err = database_config("DATABASE_SECRET_ARN", ARN, secret).unwrap_err();
            assert!(matches!(err, SecretError::Malformed { .. }), "{err:?}");
            assert_eq!(err.kind(), ErrorKind::Fatal);
            let text = err.to_string();
            assert!(text.contains(expected), "{secret}: {text}");
            assert!(
                text.contains("DATABASE_SECRET_ARN") && text.contains(ARN),
                "{text}"
            );
            assert!(
                !text.contains("hunter2") && !text.contains("987654"),
                "{text}"
            );
        }
    }

    #[test]
    fn elasticsearch_secrets_give_url_and_both_halves_of_basic_auth() {
        let (url, auth) = elasticsearch_settings(
            "ELASTICSEARCH_SECRET_ARN",
            ARN,
            r#"{"url": "https://es:9200"}"#,
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://es:9200/");
        assert_eq!(auth, None);
        let (_, auth) = elasticsearch_settings(
            "ELASTICSEARCH_SECRET_ARN",
            ARN,
            r#"{"url": "https://es:9200", "username": "etl", "password": "pw"}"#,
        )
        .unwrap();
        assert_eq!(auth, Some(("etl".into(), "pw".into())));

        for (secret, expected) in [
            (
                r#"{"url": "https://es", "username": "etl"}"#,
                "without \"password\"",
            ),
            (
                r#"{"url": "https://es", "password": "hunter2"}"#,
                "without \"username\"",
            ),
            (r#"{"url": "ftp://es"}"#, "http(s)"),
            (
                r#"{"username": "u", "password": "hunter2"}"#,
                "missing key \"url\"",
            ),
        ] {
            let err = elasticsearch_settings("ELASTICSEARCH_SECRET_ARN", ARN, secret).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expected), "{secret}: {text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
