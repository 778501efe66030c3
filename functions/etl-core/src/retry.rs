//! The one place that decides whether trying again may help, for every service and caller.
//!
//! Modelled on vector's Elasticsearch sink `RetryLogic`: a failure is retryable when the
//! service is busy (429, throttling), failing (5xx) or did not answer at all (timeouts,
//! connection failures); anything the service rejected on its merits (4xx, access denied,
//! a bad document) will fail again and is not. Callers turn the answer into
//! [`crate::ErrorKind::Retryable`], into a bulk item retry, or into
//! [`crate::SecretError::Unavailable`]'s `retryable`.
//!
//! Sits at the bottom of the crate: it imports no other module, so every layer can use it.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// AWS error codes that mean "busy or briefly failing, try again". One list for every AWS
/// service: it is the union of the two lists `StageError::aws` and the Secrets Manager
/// fetch used to keep, so no code either of them retried became final.
pub const RETRYABLE_AWS_CODES: &[&str] = &[
    // Throttling, as the SDKs name it across services.
    "Throttling",
    "ThrottlingException",
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    // Secrets Manager's server fault; it can arrive without a 5xx status.
    "InternalServiceError",
];

/// 429 (too many requests) and every 5xx. Everything else (2xx aside) the server decided
/// on the request's merits, so sending it again gives the same answer.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// An AWS service error code from [`RETRYABLE_AWS_CODES`].
pub fn is_retryable_aws_code(code: &str) -> bool {
    RETRYABLE_AWS_CODES.contains(&code)
}

/// An AWS SDK failure: no answer (timeout, dispatch failure, unreadable response),
/// throttling, or a retryable status. A request the SDK could not even build is a bug.
pub fn is_retryable_aws<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            ctx.err().code().is_some_and(is_retryable_aws_code)
                || is_retryable_status(ctx.raw().status().as_u16())
        }
        _ => false,
    }
}

/// An Elasticsearch transport error: without a status the request never got an answer
/// (connection refused, timeout, DNS), which is worth another try.
pub fn is_retryable_elasticsearch(err: &elasticsearch::Error) -> bool {
    err.status_code()
        .is_none_or(|status| is_retryable_status(status.as_u16()))
}

/// A PostgreSQL SQLSTATE: lost connections, exhausted resources, shutdowns, serialization
/// failures and deadlocks clear up on their own; constraint, syntax and permission errors
/// do not.
pub fn is_retryable_sqlstate(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
}

/// A PostgreSQL client error. Without a server error the connection failed, closed or timed
/// out.
pub fn is_retryable_postgres(err: &tokio_postgres::Error) -> bool {
    err.as_db_error()
        .is_none_or(|db| is_retryable_sqlstate(db.code().code()))
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    #[test]
    fn statuses() {
        let cases = [
            (200, false),
            (201, false),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (409, false),
            (413, false),
            (428, false),
            (429, true),
            (430, false),
            (499, false),
            (500, true),
            (501, true),
            (502, true),
            (503, true),
            (504, true),
            (599, true),
        ];
        for (status, retryable) in cases {
            assert_eq!(is_retryable_status(status), retryable, "HTTP {status}");
        }
    }

    /// Every code of both former lists, so none that was retried becomes final.
    #[test]
    fn aws_codes_cover_both_former_throttling_lists() {
        let stage_error_list = [
            "Throttling",
            "ThrottlingException",
            "SlowDown",
            "TooManyRequestsException",
            "RequestLimitExceeded",
        ];
        let secrets_list = ["ThrottlingException", "InternalServiceError"];
        for code in stage_error_list.into_iter().chain(secrets_list) {
            assert!(is_retryable_aws_code(code), "{code}");
        }
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "NoSuchBucket",
            "NoSuchKey",
            "ResourceNotFoundException",
            "ValidationException",
            "InvalidParameterException",
            "throttlingexception",
            "",
        ] {
            assert!(!is_retryable_aws_code(code), "{code}");
        }
    }

    fn service_error(code: &str, status: u16) -> SdkError<GetSecretValueError, HttpResponse> {
        let err = GetSecretValueError::generic(ErrorMetadata::builder().code(code).build());
        let status = status.try_into().expect("a valid HTTP status");
        SdkError::service_error(err, HttpResponse::new(status, SdkBody::empty()))
    }

    #[test]
    fn aws_service_errors_by_code_and_status() {
        let cases = [
            ("ThrottlingException", 400, true),
            ("SlowDown", 503, true),
            ("InternalServiceError", 400, true),
            ("RequestLimitExceeded", 400, true),
            ("Anything", 429, true),
            ("InternalFailure", 500, true),
            ("ServiceUnavailable", 503, true),
            ("AccessDeniedException", 403, false),
            ("ResourceNotFoundException", 400, false),
            ("ValidationException", 400, false),
        ];
        for (code, status, retryable) in cases {
            assert_eq!(
                is_retryable_aws(&service_error(code, status)),
                retryable,
                "{code} / HTTP {status}"
            );
        }
    }

    #[test]
    fn aws_failures_without_an_answer_are_retryable_a_bad_request_is_not() {
        type Err = SdkError<GetSecretValueError, HttpResponse>;
        let timeout: Err = SdkError::timeout_error("operation timed out");
        let dispatch: Err = SdkError::dispatch_failure(ConnectorError::io("refused".into()));
        let unreadable: Err = SdkError::response_error(
            "truncated body",
            HttpResponse::new(200u16.try_into().expect("200"), SdkBody::empty()),
        );
        let unbuildable: Err = SdkError::construction_failure("missing secret id");
        assert!(is_retryable_aws(&timeout));
        assert!(is_retryable_aws(&dispatch));
        assert!(is_retryable_aws(&unreadable));
        assert!(!is_retryable_aws(&unbuildable));
    }

    #[test]
    fn sqlstates() {
        let cases = [
            ("08000", true),
            ("08006", true),
            ("53300", true),
            ("57P01", true),
            ("57P03", true),
            ("40001", true),
            ("40P01", true),
            ("57014", false), // query cancelled: a statement timeout, not a shutdown
            ("23505", false),
            ("42P01", false),
            ("42501", false),
            ("22P02", false),
            ("40002", false),
        ];
        for (code, retryable) in cases {
            assert_eq!(is_retryable_sqlstate(code), retryable, "SQLSTATE {code}");
        }
    }
}
