//! `ELASTICSEARCH_AUTH`: how requests to Elasticsearch / OpenSearch authenticate, and the
//! combinations of settings that contradict it.

use std::fmt;

use super::{EnvSource, Source, ELASTICSEARCH_SECRET_VAR};
use crate::error::ConfigError;

pub const ELASTICSEARCH_AUTH_VAR: &str = "ELASTICSEARCH_AUTH";

/// How requests to the cluster authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ElasticsearchAuth {
    /// Basic auth when a user name and password are given (the variables or the secret),
    /// nothing otherwise: what every deployment did before the choice existed.
    #[default]
    Basic,
    /// AWS Signature Version 4 (service `es`), with the function's AWS credentials and
    /// region: Amazon OpenSearch Service with an IAM access policy.
    SigV4,
    /// No credentials at all, even if the secret holds some (a domain whose access policy
    /// allows by IP or VPC).
    None,
}

impl ElasticsearchAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ElasticsearchAuth::Basic => "basic",
            ElasticsearchAuth::SigV4 => "sigv4",
            ElasticsearchAuth::None => "none",
        }
    }
}

impl fmt::Display for ElasticsearchAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mode `ELASTICSEARCH_AUTH` names, refused when the other settings contradict it: a
/// user name with `sigv4` or `none` would be silently unused, and a `sigv4` function reads
/// no secret, so its endpoint must come from `ELASTICSEARCH_URL`.
pub(super) fn auth(
    env: &EnvSource,
    source: &Source,
    has_basic_auth: bool,
) -> Result<ElasticsearchAuth, ConfigError> {
    let mode = match env.get(ELASTICSEARCH_AUTH_VAR).map(str::trim) {
        None | Some("") => return Ok(ElasticsearchAuth::default()),
        Some(raw) => match raw.to_ascii_lowercase().as_str() {
            "basic" => ElasticsearchAuth::Basic,
            "sigv4" => ElasticsearchAuth::SigV4,
            "none" => ElasticsearchAuth::None,
            _ => {
                return Err(ConfigError::Invalid {
                    var: ELASTICSEARCH_AUTH_VAR,
                    reason: format!("expected basic, sigv4 or none, got {raw:?}"),
                })
            }
        },
    };
    if mode != ElasticsearchAuth::Basic && has_basic_auth {
        return Err(ConfigError::Invalid {
            var: ELASTICSEARCH_AUTH_VAR,
            reason: format!(
                "{mode} sends no user name and password, but ELASTICSEARCH_USERNAME and \
                 ELASTICSEARCH_PASSWORD are set: unset them or choose basic"
            ),
        });
    }
    if mode == ElasticsearchAuth::SigV4 && matches!(source, Source::Secret { .. }) {
        return Err(ConfigError::Invalid {
            var: ELASTICSEARCH_AUTH_VAR,
            reason: format!(
                "sigv4 signs with the function's AWS credentials and reads no secret: give \
                 the endpoint in ELASTICSEARCH_URL instead of {ELASTICSEARCH_SECRET_VAR}"
            ),
        });
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, EnvSource};

    use super::*;

    fn auth_of(pairs: &[(&str, &str)]) -> Result<ElasticsearchAuth, String> {
        Config::from_source(&EnvSource::from_pairs(pairs.iter().copied()))
            .map(|c| c.elasticsearch.auth)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_is_basic_and_each_mode_parses() {
        assert_eq!(auth_of(&[]), Ok(ElasticsearchAuth::Basic));
        assert_eq!(
            auth_of(&[("ELASTICSEARCH_AUTH", "SigV4")]),
            Ok(ElasticsearchAuth::SigV4)
        );
        assert_eq!(
            auth_of(&[("ELASTICSEARCH_AUTH", "none")]),
            Ok(ElasticsearchAuth::None)
        );
        assert_eq!(
            auth_of(&[
                ("ELASTICSEARCH_AUTH", "basic"),
                ("ELASTICSEARCH_USERNAME", "u"),
                ("ELASTICSEARCH_PASSWORD", "pw")
            ]),
            Ok(ElasticsearchAuth::Basic)
        );
        let err = auth_of(&[("ELASTICSEARCH_AUTH", "iam")]).unwrap_err();
        assert!(
            err.contains("ELASTICSEARCH_AUTH") && err.contains("sigv4"),
            "{err}"
        );
    }

    #[test]
    fn contradicting_settings_are_refused_without_echoing_the_password() {
        let err = auth_of(&[
            ("ELASTICSEARCH_AUTH", "sigv4"),
            ("ELASTICSEARCH_USERNAME", "u"),
            ("ELASTICSEARCH_PASSWORD", "s3cret"),
        ])
        .unwrap_err();
        assert!(err.contains("ELASTICSEARCH_USERNAME"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");

        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/es-AbCdEf";
        let err = auth_of(&[
            ("ELASTICSEARCH_AUTH", "sigv4"),
            ("ELASTICSEARCH_SECRET_ARN", arn),
        ])
        .unwrap_err();
        assert!(err.contains("ELASTICSEARCH_URL"), "{err}");
        // The URL wins over the secret, so nothing is read and sigv4 is fine.
        assert_eq!(
            auth_of(&[
                ("ELASTICSEARCH_AUTH", "sigv4"),
                ("ELASTICSEARCH_SECRET_ARN", arn),
                (
                    "ELASTICSEARCH_URL",
                    "https://search-x.us-east-1.es.amazonaws.com"
                ),
            ]),
            Ok(ElasticsearchAuth::SigV4)
        );
    }
}
