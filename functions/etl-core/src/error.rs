//! Typed stage errors and the Step Functions error names they become.
//!
//! A Lambda's `errorType` is the error name Step Functions matches in `Retry` and `Catch`, so
//! every failure is classified once, here: `Retryable` (a service is down, slow or throttling),
//! `InvalidInput` (the event is wrong; retrying cannot help) or `Fatal` (a bug or a broken
//! invariant; retrying cannot help either, but it is not the caller's fault). Whether a
//! service's failure may clear up on its own is [`crate::retry`]'s decision.
//!
//! The bottom layer with `retry`: every other module uses these types, so this one uses
//! none of theirs (the configuration and secret errors live here for that reason).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, NaiveDate, Utc};

use crate::retry;

/// An external service a stage talks to. Named in every error about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Postgres,
    S3,
    Elasticsearch,
    StepFunctions,
    Scheduler,
    Lambda,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Postgres => "PostgreSQL",
            Service::S3 => "S3",
            Service::Elasticsearch => "Elasticsearch",
            Service::StepFunctions => "Step Functions",
            Service::Scheduler => "EventBridge Scheduler",
            Service::Lambda => "Lambda",
        })
    }
}

/// The error names our state machines route on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Retryable,
    InvalidInput,
    Fatal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Retryable => "Retryable",
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::Fatal => "Fatal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration value that is missing or does not parse. Names the variable, never echoes
/// its value (it may hold a password).
///
/// Defined here rather than in [`crate::config`] so that this module, which every other one
/// uses, depends on none of them.
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

/// A secret that cannot be read or does not hold what we need. Names the variable and the
/// secret's ARN, never its value.
///
/// Defined here rather than in [`crate::secrets`], which sits above the configuration, so
/// that this module depends on no other.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager did not answer, or answered with an error other than "not found".
    #[error("{var}: cannot read secret {arn} from Secrets Manager: {message}")]
    Unavailable {
        var: &'static str,
        arn: String,
        /// Transport failures, timeouts, throttling and 5xx: trying again may help.
        retryable: bool,
        message: String,
    },
    #[error("{var}: secret {arn} does not exist (or is scheduled for deletion)")]
    NotFound { var: &'static str, arn: String },
    #[error("{var}: secret {arn} has no SecretString (binary secrets are not supported)")]
    NotAString { var: &'static str, arn: String },
    /// The value is not the JSON we expect. `reason` names keys, never values.
    #[error("{var}: secret {arn} is malformed: {reason}")]
    Malformed {
        var: &'static str,
        arn: String,
        reason: String,
    },
}

impl SecretError {
    /// Only an unreachable or throttling Secrets Manager is worth retrying; a missing or
    /// malformed secret needs a person.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SecretError::Unavailable {
                retryable: true, ..
            } => ErrorKind::Retryable,
            _ => ErrorKind::Fatal,
        }
    }
}

/// TLS to PostgreSQL that cannot work as configured: a CA file that cannot be read, or a
/// handshake the server or our checks refused. Retrying cannot fix either, so both are
/// `Fatal`; a refused or lost connection is a [`StageError::Service`] error and stays
/// retryable.
///
/// Defined here rather than in [`crate::postgres_tls`] so that this module depends on no other.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{var}: cannot read CA file {path}: {source}")]
    CaFile {
        var: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{var}: CA file {path} holds no PEM certificate")]
    NoCertificate { var: &'static str, path: PathBuf },
    #[error("{var}: CA file {path} is not usable: {reason}")]
    BadCertificate {
        var: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The built-in Amazon RDS bundle does not parse: a broken build, not a setting.
    #[error("the built-in Amazon RDS CA bundle is not usable: {0}")]
    Bundle(String),
    /// rustls refused our own configuration (a provider without the protocol versions).
    #[error("TLS set-up for PostgreSQL failed: {0}")]
    Setup(String),
    #[error(
        "PostgreSQL at {server}: TLS with sslmode={mode} failed: {reason}{}",
        hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Handshake {
        server: String,
        mode: &'static str,
        /// What the TLS library or the server said (names and errors, never a credential).
        reason: String,
        hint: Option<&'static str>,
    },
}

/// The (pipeline, logical date) lease of [`crate::lease`] is not ours: another execution is
/// running the date. `Retryable`, so the state machines' `Retry` blocks wait and try again;
/// after their last attempt the execution fails with this cause.
///
/// Defined here rather than in [`crate::lease`] so that this module depends on no other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Refused at the start of a stage.
    #[error(
        "{pipeline} {date} is being run by {holder} (lease until {expires_at}); \
         one run per pipeline and date at a time"
    )]
    Held {
        pipeline: String,
        date: NaiveDate,
        /// `execution NAME`, or `a direct invocation (LABEL)`.
        holder: String,
        expires_at: DateTime<Utc>,
    },
    /// Lost while the stage ran: the lease expired and another execution took the date over.
    #[error(
        "{pipeline} {date}: the lease of {owner} expired and was taken over; the stage was stopped"
    )]
    Lost {
        pipeline: String,
        date: NaiveDate,
        owner: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The event is malformed or out of range. Nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A service failed; `retryable` says whether trying again may help.
    #[error("{service}: {message}")]
    Service {
        service: Service,
        retryable: bool,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A credential secret that cannot be read or is malformed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// TLS to PostgreSQL that cannot work as configured.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Another execution holds the (pipeline, logical date) lease.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// A broken invariant inside the stage.
    #[error("internal error: {0}")]
    Internal(String),
}

impl StageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StageError::InvalidInput(_) => ErrorKind::InvalidInput,
            StageError::Service {
                retryable: true, ..
            } => ErrorKind::Retryable,
            StageError::Secret(err) => err.kind(),
            StageError::Lease(_) => ErrorKind::Retryable,
            StageError::Service { .. }
            | StageError::Config(_)
            | StageError::Tls(_)
            | StageError::Internal(_) => ErrorKind::Fatal,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        StageError::InvalidInput(message.into())
    }

    pub fn unavailable(service: Service, message: impl Into<String>) -> Self {
        StageError::Service {
            service,
            retryable: true,
            message: message.into(),
        }
    }

    /// Classifies a PostgreSQL error (see [`retry::is_retryable_postgres`]).
    pub fn postgres(err: tokio_postgres::Error) -> Self {
        let retryable = retry::is_retryable_postgres(&err);
        let message = match err.as_db_error() {
            Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
            // No server error: the connection failed, closed or timed out.
            None => error_chain(&err),
        };
        StageError::Service {
            service: Service::Postgres,
            retryable,
            message,
        }
    }

    /// Classifies an AWS SDK error (see [`retry::is_retryable_aws`]): access denied, no such
    /// bucket or a bad request are not worth retrying.
    pub fn aws<E>(service: Service, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        StageError::Service {
            service,
            retryable: retry::is_retryable_aws(&err),
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    /// Classifies an Elasticsearch transport error.
    pub fn elasticsearch(err: elasticsearch::Error) -> Self {
        StageError::Service {
            service: Service::Elasticsearch,
            retryable: retry::is_retryable_elasticsearch(&err),
            message: error_chain(&err),
        }
    }

    /// An HTTP answer from Elasticsearch that is not a success. A refused credential says
    /// what to check, since the cluster's own message rarely does (Amazon OpenSearch
    /// Service answers an unsigned request with 403 and a bare "not authorized").
    pub fn elasticsearch_status(status: u16, body: &str) -> Self {
        let body: String = body.chars().take(500).collect();
        let hint = match status {
            401 | 403 => {
                " (the cluster refused the request's credentials: check ELASTICSEARCH_AUTH \
                 (Amazon OpenSearch Service with IAM needs sigv4) and that the domain's \
                 access policy allows this function's role)"
            }
            _ => "",
        };
        StageError::Service {
            service: Service::Elasticsearch,
            retryable: retry::is_retryable_status(status),
            message: format!("HTTP {status}: {body}{hint}"),
        }
    }
}

/// The most an error message returned to Step Functions (a Lambda's `errorMessage`) takes,
/// counted as the JSON text it travels in (quotes, backslashes and control characters
/// escaped). Step Functions puts the message into the caught error's `Cause`, and the `hr`
/// machine keeps one per failed date in its Map results until the execution ends: uncapped,
/// a long message (a whole HTTP body, a chain of SDK errors) times the dates of a backfill
/// would pass the 256 KiB state limit, a `States.DataLimitExceeded` that nothing catches.
/// The whole text stays in the function's log (the Lambda entry point and the local runner
/// both log it) and, for a failure inside a stage's ledger row, in that `etl.runs` row
/// (`error_cause`).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// Ends a cut message, saying where the rest is. Plain ASCII: JSON adds nothing to it.
pub const ERROR_MESSAGE_CUT_MARKER: &str =
    " [... cut at 1 KiB; the whole message is in the function's log]";

/// `message` as a stage returns it to Step Functions: unchanged when its JSON text fits
/// [`MAX_ERROR_MESSAGE_BYTES`], else its longest prefix that fits with
/// [`ERROR_MESSAGE_CUT_MARKER`] after it, cut on a character boundary. Capping a capped
/// message changes nothing.
pub fn capped_error_message(message: &str) -> Cow<'_, str> {
    if message.chars().map(json_escaped_len).sum::<usize>() <= MAX_ERROR_MESSAGE_BYTES {
        return Cow::Borrowed(message);
    }
    let budget = MAX_ERROR_MESSAGE_BYTES - ERROR_MESSAGE_CUT_MARKER.len();
    let mut used = 0;
    let mut end = 0;
    for (at, c) in message.char_indices() {
        used += json_escaped_len(c);
        if used > budget {
            break;
        }
        end = at + c.len_utf8();
    }
    Cow::Owned(format!("{}{ERROR_MESSAGE_CUT_MARKER}", &message[..end]))
}

/// The bytes `c` takes inside a JSON string, as serde_json (and Step Functions) write it.
fn json_escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// An error and its sources on one line: "outer: inner: root cause".
pub fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_step_functions_error_names() {
        assert_eq!(
            StageError::invalid_input("x").kind().as_str(),
            "InvalidInput"
        );
        assert_eq!(
            StageError::unavailable(Service::S3, "down").kind().as_str(),
            "Retryable"
        );
        assert_eq!(StageError::Internal("bug".into()).kind().as_str(), "Fatal");
        let status = StageError::elasticsearch_status(503, "busy");
        assert_eq!(status.kind(), ErrorKind::Retryable);
        assert!(status.to_string().starts_with("Elasticsearch: HTTP 503"));
        assert_eq!(
            StageError::elasticsearch_status(400, "mapper_parsing_exception").kind(),
            ErrorKind::Fatal
        );
        assert_eq!(
            StageError::elasticsearch_status(429, "").kind(),
            ErrorKind::Retryable
        );
        // Another execution running the date: the state machines' Retry blocks wait for it.
        let lost = StageError::from(LeaseError::Lost {
            pipeline: "hr".into(),
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            owner: "execution hr-a".into(),
        });
        assert_eq!(lost.kind().as_str(), "Retryable");
    }

    /// The size of `text` inside a JSON string, as serde_json writes it.
    fn json_text_len(text: &str) -> usize {
        serde_json::to_string(text).unwrap().len() - 2
    }

    #[test]
    fn a_short_error_message_is_returned_as_it_is() {
        let lease = "hr 2026-11-25 is being run by execution hr-manual (lease until 2026-11-25 \
                     01:30:00 UTC); one run per pipeline and date at a time";
        assert!(matches!(capped_error_message(lease), Cow::Borrowed(m) if m == lease));
        let exactly = "x".repeat(MAX_ERROR_MESSAGE_BYTES);
        assert_eq!(capped_error_message(&exactly), exactly.as_str());
    }

    #[test]
    fn a_long_error_message_is_cut_to_1_kib_of_json_on_a_char_boundary_with_a_marker() {
        // Each case: a long message of one kind of character, and how many bytes its JSON
        // text takes per character (escapes count, as they do in the state).
        let cases = [
            ("x", 1),
            ("é", 2),
            ("€", 3),
            ("🦀", 4),
            ("\"", 2),
            ("\\", 2),
            ("\n", 2),
            ("\u{1}", 6),
        ];
        for (unit, per_char) in cases {
            let message = format!("PostgreSQL: {}", unit.repeat(5_000));
            let capped = capped_error_message(&message);
            assert!(
                json_text_len(&capped) <= MAX_ERROR_MESSAGE_BYTES,
                "{unit:?}: {} bytes of JSON",
                json_text_len(&capped)
            );
            // Cut as late as the budget allows: one more character would not fit.
            assert!(
                json_text_len(&capped) + per_char > MAX_ERROR_MESSAGE_BYTES,
                "{unit:?}: cut too early ({} bytes)",
                json_text_len(&capped)
            );
            let kept = capped
                .strip_suffix(ERROR_MESSAGE_CUT_MARKER)
                .unwrap_or_else(|| panic!("{unit:?}: no marker in {capped:?}"));
            assert!(
                message.starts_with(kept),
                "{unit:?}: the kept part is a prefix"
            );
            assert!(kept.starts_with("PostgreSQL: "), "{unit:?}");
            // Capping again changes nothing.
            assert_eq!(capped_error_message(&capped), capped, "{unit:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_postgres_connection_is_retryable_and_names_postgres() {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(1)
            .user("nobody")
            .connect_timeout(std::time::Duration::from_secs(2));
        let Err(err) = config.connect(tokio_postgres::NoTls).await else {
            panic!("nothing listens on port 1, yet the connection succeeded");
        };
        let err = StageError::postgres(err);
        assert_eq!(err.kind(), ErrorKind::Retryable);
        assert!(err.to_string().starts_with("PostgreSQL: "), "{err}");
    }
}
