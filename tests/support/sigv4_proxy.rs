//! A stand-in for Amazon OpenSearch Service's request authentication in front of osmem: an
//! HTTP proxy that checks every request's SigV4 signature as the service would, answers an
//! unsigned or badly signed one with 403 (as OpenSearch Service does) and forwards the others.
//!
//! The check is written here from the SigV4 specification, not with the signer the
//! functions use (`etl_core::search::sigv4`): only the HMAC key derivation is shared
//! (`aws_sigv4::sign::v4`). The canonical request is rebuilt from the request as it arrived,
//! so what the client signed and what its HTTP stack sent must agree.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use sha2::Digest;

use crate::proxy::{forward, receive, respond, serve, ProxyResponse};

/// The access key AWS's SigV4 test suite uses, and its secret.
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Who may call, and for which scope.
#[derive(Debug, Clone)]
pub struct Expected {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub service: String,
    /// How far `x-amz-date` may be from now (the service allows five minutes); `None`
    /// accepts any date (for the published test vectors, dated 2015).
    pub max_skew: Option<Duration>,
}

impl Expected {
    /// The test suite's keys, for OpenSearch Service (`es`) in `region`.
    pub fn opensearch(region: &str) -> Self {
        Self {
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: region.into(),
            service: "es".into(),
            max_skew: Some(Duration::from_secs(300)),
        }
    }
}

/// One request the proxy received, and what it decided.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The `x-amz-security-token` it carried (temporary credentials).
    pub security_token: Option<String>,
    /// `Err(reason)` when refused with 403.
    pub verdict: Result<(), String>,
}

/// The proxy; stops when dropped.
pub struct SigV4Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SigV4Proxy {
    /// Listens on a free local port and forwards accepted requests to `upstream`.
    pub async fn start(upstream: &str, expected: Expected) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            expected,
            seen: Arc::clone(&seen),
            client: reqwest::Client::new(),
        });
        let (url, task) = serve(move |request| {
            let state = Arc::clone(&state);
            async move { state.handle(request).await }
        })
        .await;
        Self { url, seen, task }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for SigV4Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    upstream: String,
    expected: Expected,
    seen: Arc<Mutex<Vec<Seen>>>,
    client: reqwest::Client,
}

impl State {
    async fn handle(&self, request: Request<Incoming>) -> ProxyResponse {
        let (parts, body) = receive(request).await;
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let verdict = verify(
            &self.expected,
            parts.method.as_str(),
            &path,
            &query,
            &parts.headers,
            &body,
            SystemTime::now(),
        );
        self.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            path,
            security_token: header(&parts.headers, "x-amz-security-token").map(str::to_string),
            verdict: verdict.clone(),
        });
        if let Err(reason) = verdict {
            let body = serde_json::json!({ "message": reason }).to_string();
            return respond(StatusCode::FORBIDDEN, &[], body);
        }
        forward(&self.client, &self.upstream, &parts, body).await
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    scope: Vec<&'a str>,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, String> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization is not AWS4-HMAC-SHA256")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(format!("unexpected Authorization part {part:?}")),
        }
    }
    Ok(Authorization {
        scope: credential
            .ok_or("Authorization header requires 'Credential' parameter")?
            .split('/')
            .collect(),
        signed_headers: signed
            .ok_or("Authorization header requires 'SignedHeaders' parameter")?
            .split(';')
            .collect(),
        signature: signature.ok_or("Authorization header requires 'Signature' parameter")?,
    })
}

/// Checks a request's SigV4 signature (header form) as the service would. `path` as
/// received (percent-encoded), `query` without `?`.
pub fn verify(
    expected: &Expected,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), String> {
    let Some(authorization) = header(headers, "authorization") else {
        return Err(format!(
            "User: anonymous is not authorized to perform: es:ESHttp{}",
            titlecase(method)
        ));
    };
    let auth = parse_authorization(authorization)?;
    let amz_date = header(headers, "x-amz-date").ok_or("no x-amz-date header")?;
    let [key, date, region, service, "aws4_request"] = auth.scope[..] else {
        return Err("malformed credential scope".into());
    };
    if key != expected.access_key {
        return Err("The security token included in the request is invalid.".into());
    }
    if (region, service) != (expected.region.as_str(), expected.service.as_str())
        || !amz_date.starts_with(date)
    {
        return Err(format!(
            "credential scope {date}/{region}/{service} is not ours"
        ));
    }
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| "x-amz-date is not yyyymmddThhmmssZ")?
        .and_utc();
    let time = SystemTime::from(time);
    if let Some(skew) = expected.max_skew {
        let off = now.duration_since(time).unwrap_or_else(|e| e.duration());
        if off > skew {
            return Err("Signature expired or not yet current".into());
        }
    }
    for required in ["host", "x-amz-date"].into_iter().chain(
        ["x-amz-security-token", "x-amz-content-sha256"]
            .into_iter()
            .filter(|h| headers.contains_key(*h)),
    ) {
        if !auth.signed_headers.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    let payload = sha256_hex(body);
    if header(headers, "x-amz-content-sha256").is_some_and(|h| h != payload) {
        return Err("x-amz-content-sha256 is not the body's SHA-256".into());
    }
    let canonical =
        canonical_request(method, path, query, headers, &auth.signed_headers, &payload)?;
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key =
        aws_sigv4::sign::v4::generate_signing_key(&expected.secret_key, time, region, service);
    let signature = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    if signature == auth.signature {
        Ok(())
    } else {
        Err("The request signature we calculated does not match the signature you provided.".into())
    }
}

fn titlecase(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// SigV4's canonical request for a service other than S3: the path encoded once more, the
/// query's pairs decoded, re-encoded and sorted, the signed headers' values trimmed.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed: &[&str],
    payload_hash: &str,
) -> Result<String, String> {
    let uri = if path.is_empty() {
        "/".into()
    } else {
        encode(path, false)
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), true), encode(&decode(v), true))
        })
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut lines = vec![method.to_string(), uri, query];
    for name in signed {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                v.to_str()
                    .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                    .map_err(|_| format!("header {name} is not text"))
            })
            .collect::<Result<_, _>>()?;
        if values.is_empty() {
            return Err(format!("signed header {name} is missing"));
        }
        lines.push(format!("{name}:{}", values.join(",")));
    }
    lines.push(String::new());
    lines.push(signed.join(";"));
    lines.push(payload_hash.to_string());
    Ok(lines.join("\n"))
}

/// RFC 3986 encoding of everything but the unreserved characters (and `/` in a path).
fn encode(text: &str, slash_too: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' if !slash_too => "/".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
