//! PostgreSQL connection strings, with the TLS settings tokio-postgres cannot parse itself.
//!
//! tokio-postgres 0.7 knows `sslmode=disable|prefer|require` and rejects `verify-ca`,
//! `verify-full` and `sslrootcert`, so [`parse_connection_string`] takes those out (of a URL's
//! query or a `key=value` string) and hands it the rest. What a mode means, and which roots
//! are trusted, is [`crate::postgres_tls`]'s business; this module only reads.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// How a connection uses TLS. Named and spelt as libpq's `sslmode`, minus the two modes that
/// silently fall back to plaintext (`allow`, `prefer`): a pipeline must not send its
/// password in clear text because a server or a proxy declined TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext. Only for a local server that has no TLS.
    Disable,
    /// TLS, but the server's certificate is not checked: protects against eavesdropping, not
    /// against an impostor. libpq's meaning, kept for parity.
    Require,
    /// TLS, the certificate must chain to a trusted root; any host name is accepted.
    VerifyCa,
    /// TLS, the certificate must chain to a trusted root and name the host (DNS or IP SAN).
    VerifyFull,
}

impl SslMode {
    /// Stricter than libpq's `prefer`: RDS forces TLS, so checking everything is the only
    /// setting that is right both there and against an impostor.
    pub const DEFAULT: SslMode = SslMode::VerifyFull;

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    /// Why the value is refused, naming the accepted ones.
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "disable" => Ok(SslMode::Disable),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            mode @ ("prefer" | "allow") => Err(format!(
                "sslmode={mode} is not supported: it falls back to plaintext without telling; \
                 use sslmode=verify-full (the default), or sslmode=disable for a local server \
                 without TLS"
            )),
            other => Err(format!(
                "sslmode={other:?} is not one of disable, require, verify-ca, verify-full"
            )),
        }
    }
}

/// Extra trusted roots: a PEM file, and the setting that named it (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    /// `DATABASE_CA_FILE`, or the variable whose connection string had `sslrootcert`.
    pub var: &'static str,
}

/// How a PostgreSQL connection uses TLS: the mode, and the CA files trusted besides the
/// built-in Amazon RDS bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub ca_files: Vec<CaFile>,
}

/// A connection string taken apart: what tokio-postgres understands, and our TLS settings.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    /// Everything but the TLS settings (its `ssl_mode` is set from [`Self::sslmode`] by
    /// [`super::PostgresConfig`]).
    pub config: tokio_postgres::Config,
    /// `sslmode`, when the string has one.
    pub sslmode: Option<SslMode>,
    /// `sslrootcert`, when the string has one.
    pub sslrootcert: Option<PathBuf>,
}

/// Parses a `postgres://` URL or a `key=value` connection string. The error says what is
/// wrong without quoting the input, which may hold a password.
pub fn parse_connection_string(raw: &str) -> Result<ConnectionString, String> {
    let raw = raw.trim();
    let (rest, params) = if let Some(query_at) = url_query_start(raw) {
        strip_url_params(raw, query_at)?
    } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        (raw.to_string(), TlsParams::default())
    } else {
        strip_keyword_params(raw)?
    };
    let config = tokio_postgres::Config::from_str(&rest).map_err(|_| {
        "not a PostgreSQL connection string (postgres://user:password@host:port/db)".to_string()
    })?;
    let sslmode = params.sslmode.as_deref().map(str::parse).transpose()?;
    let sslrootcert = match params.sslrootcert {
        Some(path) if path.trim().is_empty() => return Err("sslrootcert is empty".into()),
        other => other.map(PathBuf::from),
    };
    Ok(ConnectionString {
        config,
        sslmode,
        sslrootcert,
    })
}

#[derive(Debug, Default)]
struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl TlsParams {
    /// Takes a TLS parameter; `false` for anything else, which stays in the string.
    fn take(&mut self, key: &str, value: String) -> Result<bool, String> {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            // Client certificates are not used with RDS; refuse rather than ignore them.
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(format!("{key} (client certificates) is not supported"))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Where a URL's query starts, found as tokio-postgres finds it: the user info runs to the
/// first `@`, so a `?` in a password does not count.
fn url_query_start(raw: &str) -> Option<usize> {
    let prefix = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| raw.starts_with(p))?;
    let after_prefix = prefix.len();
    let host_at = raw[after_prefix..]
        .find('@')
        .map_or(after_prefix, |at| after_prefix + at + 1);
    raw[host_at..].find('?').map(|q| host_at + q)
}

fn strip_url_params(raw: &str, query_at: usize) -> Result<(String, TlsParams), String> {
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for pair in raw[query_at + 1..].split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = percent_decode(value)?;
        if !params.take(&percent_decode(key)?, decoded)? {
            kept.push(pair);
        }
    }
    let mut rest = raw[..query_at].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, params))
}

/// `%XX` escapes, as tokio-postgres decodes URL parts (`+` stays a plus).
fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a %-escape in the query is not two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a query parameter is not UTF-8".into())
}

/// `key=value key='quoted value'`, libpq's other syntax: the TLS keys are taken out and the
/// rest is written back, every value quoted.
fn strip_keyword_params(raw: &str) -> Result<(String, TlsParams), String> {
    let mut params = TlsParams::default();
    let mut rest = String::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || key.is_empty() {
            return Err("not a PostgreSQL connection string (expected key=value pairs)".into());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = keyword_value(&mut chars)?;
        if !params.take(&key, value.clone())? {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            rest.push_str(&format!("{key}='{escaped}' "));
        }
    }
    Ok((rest.trim_end().to_string(), params))
}

fn keyword_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    let mut value = String::new();
    if chars.next_if_eq(&'\'').is_none() {
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            value.push(c);
        }
        return Ok(value);
    }
    loop {
        match chars.next() {
            Some('\'') => return Ok(value),
            Some('\\') => value.push(chars.next().ok_or("unterminated quoted value")?),
            Some(c) => value.push(c),
            None => return Err("unterminated quoted value".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::Host;

    #[test]
    fn url_tls_parameters_are_taken_out_and_the_rest_kept() {
        let parsed = parse_connection_string(
            "postgres://etl:p%3Fw@127.0.0.1:5433/etl?application_name=x&sslmode=verify-full\
             &sslrootcert=/tmp/ca%20dir/ca.crt&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(parsed.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(
            parsed.sslrootcert,
            Some(PathBuf::from("/tmp/ca dir/ca.crt"))
        );
        assert_eq!(parsed.config.get_password(), Some(&b"p?w"[..]));
        assert_eq!(parsed.config.get_ports(), &[5433]);
        assert_eq!(parsed.config.get_application_name(), Some("x"));
        assert_eq!(
            parsed.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );

        // Only TLS parameters: no `?` left behind; a raw `?` in the password is not a query.
        let parsed = parse_connection_string("postgresql://u:a?b@db/etl?sslmode=disable").unwrap();
        assert_eq!(parsed.sslmode, Some(SslMode::Disable));
        assert_eq!(parsed.config.get_password(), Some(&b"a?b"[..]));
        assert_eq!(parsed.config.get_dbname(), Some("etl"));

        let parsed = parse_connection_string("postgres://etl@db/etl").unwrap();
        assert_eq!((parsed.sslmode, parsed.sslrootcert), (None, None));
    }

    #[test]
    fn keyword_strings_are_supported_too() {
        let parsed = parse_connection_string(
            "host=db.internal port = 6432 user=etl password='it\\'s x' dbname=etl \
             sslmode=verify-ca sslrootcert='/etc/ssl/my ca.pem'",
        )
        .unwrap();
        assert_eq!(parsed.sslmode, Some(SslMode::VerifyCa));
        assert_eq!(
            parsed.sslrootcert,
            Some(PathBuf::from("/etc/ssl/my ca.pem"))
        );
        assert_eq!(parsed.config.get_password(), Some(&b"it's x"[..]));
        assert_eq!(parsed.config.get_ports(), &[6432]);
        assert_eq!(
            parsed.config.get_hosts(),
            &[Host::Tcp("db.internal".into())]
        );
    }

    #[test]
    fn modes_that_downgrade_or_are_unknown_are_refused_with_advice() {
        for mode in ["prefer", "allow", "PREFER"] {
            let err =
                parse_connection_string(&format!("postgres://u:hunter2@db/etl?sslmode={mode}"))
                    .unwrap_err();
            assert!(
                err.contains("verify-full") && err.contains("disable"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
        let err = parse_connection_string("host=db password=hunter2 sslmode=strict").unwrap_err();
        assert!(err.contains("strict") && !err.contains("hunter2"), "{err}");
        let err =
            parse_connection_string("postgres://u:hunter2@db/etl?sslcert=/c.pem").unwrap_err();
        assert!(err.contains("client certificates"), "{err}");
        let err = parse_connection_string("postgres://u:hunter2@db:notaport/etl").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        for mode in ["disable", "require", "verify-ca", "verify-full"] {
            assert_eq!(mode.parse::<SslMode>().unwrap().as_str(), mode);
        }
    }
}
