//! Typed stage errors and the Step Functions error names they become.
//!
//! A Lambda's `errorType` is the error name Step Functions matches in `Retry` and `Catch`, so
//! every failure is classified once, here: `Retryable` (a service is down, slow or throttling),
//! `InvalidInput` (the event is wrong; retrying cannot help) or `Fatal` (a bug or a broken
//! invariant; retrying cannot help either, but it is not the caller's fault).

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::ConfigError;
use crate::secrets::SecretError;

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
            StageError::Service { .. } | StageError::Config(_) | StageError::Internal(_) => {
                ErrorKind::Fatal
            }
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

    /// Classifies a PostgreSQL error: lost connections, timeouts, serialization failures,
    /// deadlocks and shutdowns are worth retrying; everything else is not.
    pub fn postgres(err: tokio_postgres::Error) -> Self {
        let (retryable, message) = match err.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let retryable = code.starts_with("08") // connection exception
                    || code.starts_with("53") // insufficient resources
                    || code.starts_with("57P") // admin/crash shutdown, cannot connect now
                    || code == "40001" // serialization failure
                    || code == "40P01"; // deadlock detected
                (
                    retryable,
                    format!("{} {code}: {}", db.severity(), db.message()),
                )
            }
            // No server error: the connection failed, closed or timed out.
            None => (true, error_chain(&err)),
        };
        StageError::Service {
            service: Service::Postgres,
            retryable,
            message,
        }
    }

    /// Classifies an AWS SDK error: transport failures, timeouts, throttling and 5xx are
    /// retryable; other service errors (access denied, no such bucket, bad request) are not.
    pub fn aws<E>(service: Service, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let throttled = matches!(
                    ctx.err().code(),
                    Some(
                        "Throttling"
                            | "ThrottlingException"
                            | "SlowDown"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                    )
                );
                throttled || status == 429 || status >= 500
            }
            _ => false,
        };
        StageError::Service {
            service,
            retryable,
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    /// Classifies an Elasticsearch transport error.
    pub fn elasticsearch(err: elasticsearch::Error) -> Self {
        let retryable = match err.status_code() {
            Some(status) => status.as_u16() == 429 || status.is_server_error(),
            None => true, // connection refused, timeout, DNS: the request never got an answer
        };
        StageError::Service {
            service: Service::Elasticsearch,
            retryable,
            message: error_chain(&err),
        }
    }

    /// An HTTP answer from Elasticsearch that is not a success.
    pub fn elasticsearch_status(status: u16, body: &str) -> Self {
        let body: String = body.chars().take(500).collect();
        StageError::Service {
            service: Service::Elasticsearch,
            retryable: status == 429 || status >= 500,
            message: format!("HTTP {status}: {body}"),
        }
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
