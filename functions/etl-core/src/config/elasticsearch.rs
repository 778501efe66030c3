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

/// How the bulk sink sends to the cluster (`ELASTICSEARCH_BULK_*`); the defaults come from
/// the measurements in BENCHMARKS.md (`etl bench hr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkSettings {
    /// `_bulk` requests in flight at once (`ELASTICSEARCH_BULK_CONCURRENCY`, 1 to 64).
    pub concurrency: usize,
    /// Uncompressed body bytes per request (`ELASTICSEARCH_BULK_BYTES`, 64 KiB to 90 MiB).
    pub max_bytes: usize,
    /// Gzip request bodies (`ELASTICSEARCH_BULK_GZIP`: `on`, `off`, or `auto` = on unless
    /// the endpoint is on this machine, where compressing only costs CPU).
    pub gzip: Option<bool>,
}

pub const DEFAULT_BULK_CONCURRENCY: usize = 3;
pub const DEFAULT_BULK_BYTES: usize = 2 * 1024 * 1024;

impl Default for BulkSettings {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_BULK_CONCURRENCY,
            max_bytes: DEFAULT_BULK_BYTES,
            gzip: None,
        }
    }
}

impl BulkSettings {
    /// Whether bodies sent to `url` are gzipped: as configured, else on for a remote
    /// cluster (bandwidth and its request-size limit) and off for a loopback one.
    pub fn gzip_for(&self, url: &url::Url) -> bool {
        self.gzip.unwrap_or_else(|| !is_loopback(url))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn bulk(env: &EnvSource) -> Result<BulkSettings, ConfigError> {
    let number = |var: &'static str, range: std::ops::RangeInclusive<usize>, default: usize| {
        let Some(raw) = env.get(var).map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(default);
        };
        match raw.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid {
                var,
                reason: format!(
                    "expected a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            }),
        }
    };
    let gzip = match env.get(BULK_GZIP_VAR).map(str::trim) {
        None | Some("") => None,
        Some(raw) => match raw.to_ascii_lowercase().as_str() {
            "auto" => None,
            "on" | "true" | "1" => Some(true),
            "off" | "false" | "0" => Some(false),
            _ => {
                return Err(ConfigError::Invalid {
                    var: BULK_GZIP_VAR,
                    reason: format!("expected on, off or auto, got {raw:?}"),
                })
            }
        },
    };
    Ok(BulkSettings {
        concurrency: number(BULK_CONCURRENCY_VAR, 1..=64, DEFAULT_BULK_CONCURRENCY)?,
        max_bytes: number(
            BULK_BYTES_VAR,
            64 * 1024..=90 * 1024 * 1024,
            DEFAULT_BULK_BYTES,
        )?,
        gzip,
    })
}

pub const BULK_CONCURRENCY_VAR: &str = "ELASTICSEARCH_BULK_CONCURRENCY";
pub const BULK_BYTES_VAR: &str = "ELASTICSEARCH_BULK_BYTES";
pub const BULK_GZIP_VAR: &str = "ELASTICSEARCH_BULK_GZIP";

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
    fn bulk_settings_parse_and_bad_values_name_their_variable() {
        let bulk = |pairs: &[(&str, &str)]| {
            Config::from_source(&EnvSource::from_pairs(pairs.iter().copied()))
                .map(|c| c.elasticsearch.bulk)
                .map_err(|e| e.to_string())
        };
        assert_eq!(bulk(&[]), Ok(BulkSettings::default()));
        let set = bulk(&[
            ("ELASTICSEARCH_BULK_CONCURRENCY", "8"),
            ("ELASTICSEARCH_BULK_BYTES", "1048576"),
            ("ELASTICSEARCH_BULK_GZIP", "off"),
        ])
        .unwrap();
        assert_eq!(
            (set.concurrency, set.max_bytes, set.gzip),
            (8, 1 << 20, Some(false))
        );
        let err = bulk(&[("ELASTICSEARCH_BULK_CONCURRENCY", "0")]).unwrap_err();
        assert!(err.contains("ELASTICSEARCH_BULK_CONCURRENCY"), "{err}");
        let err = bulk(&[("ELASTICSEARCH_BULK_BYTES", "5MB")]).unwrap_err();
        assert!(err.contains("ELASTICSEARCH_BULK_BYTES"), "{err}");
        let err = bulk(&[("ELASTICSEARCH_BULK_GZIP", "maybe")]).unwrap_err();
        assert!(err.contains("ELASTICSEARCH_BULK_GZIP"), "{err}");

        let auto = BulkSettings::default();
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(!auto.gzip_for(&url("http://127.0.0.1:9200")));
        assert!(!auto.gzip_for(&url("http://localhost:9200")));
        assert!(auto.gzip_for(&url("https://search-x.eu-west-1.es.amazonaws.com")));
        let off = BulkSettings {
            gzip: Some(false),
            ..auto
        };
        assert!(!off.gzip_for(&url("https://search-x.eu-west-1.es.amazonaws.com")));
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
