//! AWS Signature Version 4 for Amazon OpenSearch Service (`ELASTICSEARCH_AUTH=sigv4`).
//!
//! The `elasticsearch` crate (9.x) cannot sign, so [`super::SearchClient`] signs each request
//! before handing it to the crate's transport: [`sign_request`] computes the headers with
//! the SDK's own signer (`aws-sigv4`), [`RequestSigner`] supplies the credentials (the AWS
//! SDK's default chain: the Lambda role's temporary keys on AWS) and the region.
//!
//! The signature covers the method, the URL, the body's SHA-256 and the headers given to
//! [`sign_request`]; the host comes from the URL, as hyper sends it (default ports
//! dropped). Headers the transport adds afterwards (`content-type`, `user-agent`,
//! `x-elastic-client-meta`) stay unsigned, which SigV4 allows: only `host` and the `x-amz-*`
//! headers must be signed.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The signing name of Amazon OpenSearch Service (and of the older Elasticsearch Service).
pub const SERVICE: &str = "es";

/// Credentials are fetched again this long before they expire, so that a request signed
/// now is not received after its key stopped working.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The credential chain gave nothing; `retryable` when its source timed out or failed
    /// in a way that may clear up (the container credentials endpoint, IMDS).
    #[error("no AWS credentials to sign Elasticsearch requests with: {message}")]
    Credentials { retryable: bool, message: String },
    /// The request cannot be signed as given (a URL the signer does not accept).
    #[error("cannot sign the Elasticsearch request: {0}")]
    Request(String),
}

impl SigningError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SigningError::Credentials {
                retryable: true,
                ..
            }
        )
    }
}

/// The scope a signature is valid for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// One request to sign. `url` is the full URL as it will be sent (already percent-encoded);
/// `headers` are the ones the signature must cover besides `host`, and must not include the
/// `x-amz-*` headers the signer adds.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers that sign `request`: `x-amz-date`, `x-amz-content-sha256` (when
/// `content_sha256_header`), `x-amz-security-token` (temporary credentials) and
/// `authorization`. The one signing function: the client and the tests (AWS's published
/// test vectors) both go through it.
pub fn sign_request(
    request: &Request<'_>,
    credentials: &Credentials,
    scope: &Scope<'_>,
    content_sha256_header: bool,
) -> Result<Vec<(&'static str, String)>, SigningError> {
    let invalid = |e: &dyn std::fmt::Display| SigningError::Request(e.to_string());
    let identity = Identity::from(credentials.clone());
    let mut settings = SigningSettings::default();
    if content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(settings)
        .build()
        .map_err(|e| invalid(&e))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| invalid(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| invalid(&e))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

/// Signs requests with the credentials of the AWS SDK's default chain, for one region.
/// The SDK caches credentials inside its clients, not in the provider: this keeps the last
/// ones until shortly before they expire, so a `_bulk` loop does not ask the Lambda
/// credentials endpoint for every request.
#[derive(Debug)]
pub struct RequestSigner {
    provider: SharedCredentialsProvider,
    region: String,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl RequestSigner {
    pub fn new(provider: SharedCredentialsProvider, region: String) -> Self {
        Self {
            provider,
            region,
            cached: tokio::sync::Mutex::default(),
        }
    }

    /// The headers that sign `request` for service `es`, now.
    pub async fn sign(
        &self,
        request: &Request<'_>,
    ) -> Result<Vec<(&'static str, String)>, SigningError> {
        let credentials = self.credentials().await?;
        let scope = Scope {
            region: &self.region,
            service: SERVICE,
            time: SystemTime::now(),
        };
        sign_request(request, &credentials, &scope, true)
    }

    async fn credentials(&self) -> Result<Credentials, SigningError> {
        let mut cached = self.cached.lock().await;
        let fresh = |c: &&Credentials| {
            c.expiry()
                .is_none_or(|at| at > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        };
        if let Some(credentials) = cached.as_ref().filter(fresh) {
            return Ok(credentials.clone());
        }
        let credentials =
            self.provider
                .provide_credentials()
                .await
                .map_err(|e| SigningError::Credentials {
                    retryable: matches!(
                        e,
                        CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_)
                    ),
                    message: crate::error::error_chain(&e),
                })?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    //! AWS's published SigV4 test suite, through [`sign_request`]: the canonical request
    //! (recorded from the signer's trace event), the string to sign (the signature must be
    //! its HMAC, and its last line the canonical request's SHA-256) and the exact
    //! `Authorization` header.
    //!
    //! Expected values: `get-vanilla`, `post-vanilla`, `get-vanilla-query-order-key-case` and
    //! `post-x-www-form-urlencoded` as the suite published them in 2015
    //! (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html, also in the AWS
    //! JavaScript SDK's `suite.fixture.js`), and the revised `post-x-www-form-urlencoded` of
    //! the AWS common runtime's suite (`aws-signing-test-suite/v4/`, shipped in the
    //! `aws-sigv4` crate), which signs the body's hash as `x-amz-content-sha256` as we do.

    use std::sync::{Arc, Mutex};
    use std::time::UNIX_EPOCH;

    use sha2::Digest;
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::*;

    const ACCESS_KEY: &str = "AKIDEXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z.
    const SUITE_TIME: u64 = 1_440_938_160;
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const FORM_SHA256: &str = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";

    struct Vector {
        name: &'static str,
        request: Request<'static>,
        content_sha256_header: bool,
        canonical_request: String,
        string_to_sign: String,
        authorization: &'static str,
    }

    fn lines(parts: &[&str]) -> String {
        parts.join("\n")
    }

    fn string_to_sign(hash: &str) -> String {
        lines(&[
            "AWS4-HMAC-SHA256",
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            hash,
        ])
    }

    fn vanilla(method: &'static str, sts: &str, authorization: &'static str) -> Vector {
        Vector {
            name: if method == "GET" {
                "get-vanilla"
            } else {
                "post-vanilla"
            },
            request: Request {
                method,
                url: "https://example.amazonaws.com/",
                headers: &[],
                body: b"",
            },
            content_sha256_header: false,
            canonical_request: lines(&[
                method,
                "/",
                "",
                "host:example.amazonaws.com",
                "x-amz-date:20150830T123600Z",
                "",
                "host;x-amz-date",
                EMPTY_SHA256,
            ]),
            string_to_sign: string_to_sign(sts),
            authorization,
        }
    }

    fn vectors() -> Vec<Vector> {
        vec![
            vanilla(
                "GET",
                "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            vanilla(
                "POST",
                "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            query_order_key_case(),
        ]
        .into_iter()
        .chain(form_urlencoded())
        .collect()
    }

    fn query_order_key_case() -> Vector {
        Vector {
            name: "get-vanilla-query-order-key-case",
            request: Request {
                method: "GET",
                url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                headers: &[],
                body: b"",
            },
            content_sha256_header: false,
            canonical_request: lines(&[
                "GET",
                "/",
                "Param1=value1&Param2=value2",
                "host:example.amazonaws.com",
                "x-amz-date:20150830T123600Z",
                "",
                "host;x-amz-date",
                EMPTY_SHA256,
            ]),
            string_to_sign: string_to_sign(
                "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            ),
            authorization:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, \
                     Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        }
    }

    /// The 2015 suite's form post, and the common runtime's, which also signs the body's
    /// hash and the length.
    fn form_urlencoded() -> [Vector; 2] {
        [
            Vector {
                name: "post-x-www-form-urlencoded",
                request: Request {
                    method: "POST",
                    url: "https://example.amazonaws.com/",
                    headers: &[("content-type", "application/x-www-form-urlencoded")],
                    body: b"Param1=value1",
                },
                content_sha256_header: false,
                canonical_request: lines(&[
                    "POST",
                    "/",
                    "",
                    "content-type:application/x-www-form-urlencoded",
                    "host:example.amazonaws.com",
                    "x-amz-date:20150830T123600Z",
                    "",
                    "content-type;host;x-amz-date",
                    FORM_SHA256,
                ]),
                string_to_sign: string_to_sign(
                    "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
                ),
                authorization:
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, \
                     Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            },
            Vector {
                name: "post-x-www-form-urlencoded (common runtime suite, sign_body)",
                request: Request {
                    method: "POST",
                    url: "https://example.amazonaws.com/",
                    headers: &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("content-length", "13"),
                    ],
                    body: b"Param1=value1",
                },
                content_sha256_header: true,
                canonical_request: lines(&[
                    "POST",
                    "/",
                    "",
                    "content-length:13",
                    "content-type:application/x-www-form-urlencoded",
                    "host:example.amazonaws.com",
                    &format!("x-amz-content-sha256:{FORM_SHA256}"),
                    "x-amz-date:20150830T123600Z",
                    "",
                    "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
                    FORM_SHA256,
                ]),
                string_to_sign: string_to_sign(
                    "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
                ),
                authorization:
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, \
                     Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
            },
        ]
    }

    /// Records the `canonical_request` field of the signer's trace events.
    #[derive(Clone, Default)]
    struct CanonicalRequests(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for CanonicalRequests {
        fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
            struct Visitor<'a>(&'a Mutex<Vec<String>>);
            impl Visit for Visitor<'_> {
                fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                    if field.name() == "canonical_request" {
                        self.0.lock().unwrap().push(format!("{value:?}"));
                    }
                }
            }
            event.record(&mut Visitor(&self.0));
        }
    }

    /// Signs as the client does, and returns the added headers and the canonical request
    /// the signer built.
    fn sign_traced(
        request: &Request<'_>,
        credentials: &Credentials,
        scope: &Scope<'_>,
        content_sha256_header: bool,
    ) -> (Vec<(&'static str, String)>, String) {
        let recorded = CanonicalRequests::default();
        let subscriber = tracing_subscriber::registry().with(recorded.clone());
        let headers = tracing::subscriber::with_default(subscriber, || {
            sign_request(request, credentials, scope, content_sha256_header).unwrap()
        });
        let mut canonical = recorded.0.lock().unwrap().clone();
        assert_eq!(
            canonical.len(),
            1,
            "aws-sigv4 no longer traces the canonical request once per signature"
        );
        (headers, canonical.remove(0))
    }

    fn header<'h>(headers: &'h [(&'static str, String)], name: &str) -> Option<&'h str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn aws_sigv4_test_suite() {
        let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test-suite");
        let time = UNIX_EPOCH + Duration::from_secs(SUITE_TIME);
        let scope = Scope {
            region: "us-east-1",
            service: "service",
            time,
        };
        for v in vectors() {
            let (headers, canonical) =
                sign_traced(&v.request, &credentials, &scope, v.content_sha256_header);
            assert_eq!(
                canonical, v.canonical_request,
                "{}: canonical request",
                v.name
            );
            assert_eq!(
                v.string_to_sign.lines().last(),
                Some(sha256_hex(canonical.as_bytes()).as_str()),
                "{}: the string to sign must hash this canonical request",
                v.name
            );
            let authorization = header(&headers, "authorization").unwrap();
            assert_eq!(authorization, v.authorization, "{}: Authorization", v.name);
            let key = v4::generate_signing_key(SECRET_KEY, time, "us-east-1", "service");
            let signature = v4::calculate_signature(key, v.string_to_sign.as_bytes());
            assert!(
                authorization.ends_with(&format!("Signature={signature}")),
                "{}: the signature is not the HMAC of the published string to sign",
                v.name
            );
            assert_eq!(header(&headers, "x-amz-date"), Some("20150830T123600Z"));
            assert_eq!(
                header(&headers, "x-amz-content-sha256").is_some(),
                v.content_sha256_header,
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn a_bulk_request_to_opensearch_carries_every_signing_header() {
        let body = b"{\"index\":{\"_index\":\"empleados_search\",\"_id\":\"1\"}}\n{\"a\":1}\n";
        let request = Request {
            method: "POST",
            url: "https://search-etl-abc.eu-west-1.es.amazonaws.com/_bulk",
            headers: &[],
            body,
        };
        let temporary = Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            Some("session-token-of-the-lambda-role".into()),
            None,
            "lambda",
        );
        let scope = Scope {
            region: "eu-west-1",
            service: SERVICE,
            time: UNIX_EPOCH + Duration::from_secs(SUITE_TIME),
        };
        let (headers, canonical) = sign_traced(&request, &temporary, &scope, true);
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            Some(sha256_hex(body).as_str())
        );
        assert_eq!(header(&headers, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            Some("session-token-of-the-lambda-role")
        );
        let authorization = header(&headers, "authorization").unwrap();
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/es/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, \
                 Signature="
            ),
            "{authorization}"
        );
        assert!(
            canonical
                .starts_with("POST\n/_bulk\n\nhost:search-etl-abc.eu-west-1.es.amazonaws.com\n"),
            "{canonical}"
        );
        // The trace never carries the session token.
        assert!(!canonical.contains("session-token-of"), "{canonical}");

        // Long-term keys: no token header, and it is not signed.
        let long_term = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "env");
        let (headers, _) = sign_traced(&request, &long_term, &scope, true);
        assert_eq!(header(&headers, "x-amz-security-token"), None);
        assert!(header(&headers, "authorization")
            .unwrap()
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    }

    #[test]
    fn a_local_endpoint_signs_its_port_as_hyper_sends_the_host() {
        let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "env");
        let scope = Scope {
            region: "us-east-1",
            service: SERVICE,
            time: UNIX_EPOCH + Duration::from_secs(SUITE_TIME),
        };
        for (url, host) in [
            ("http://127.0.0.1:9200/_refresh", "127.0.0.1:9200"),
            (
                "https://search-x.us-east-1.es.amazonaws.com:443/",
                "search-x.us-east-1.es.amazonaws.com",
            ),
        ] {
            let request = Request {
                method: "HEAD",
                url,
                headers: &[],
                body: b"",
            };
            let (_, canonical) = sign_traced(&request, &credentials, &scope, true);
            assert!(
                canonical.contains(&format!("\nhost:{host}\n")),
                "{canonical}"
            );
        }
    }
}
