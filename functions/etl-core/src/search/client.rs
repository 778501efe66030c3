//! The one way requests reach the cluster: the `elasticsearch` crate's transport, with
//! basic auth set on it, or each request SigV4-signed here first (`ELASTICSEARCH_AUTH`).

use std::sync::Arc;

use elasticsearch::http::headers::{HeaderMap, HeaderName, HeaderValue};
use elasticsearch::http::response::Response;
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use url::Url;

use super::sigv4::{Request, RequestSigner, SigningError};
use crate::error::{Service, StageError};

#[derive(Debug, Clone)]
pub struct SearchClient {
    transport: Elasticsearch,
    /// The node's URL, to sign the URL the transport will build from it.
    url: Url,
    signer: Option<Arc<RequestSigner>>,
}

impl SearchClient {
    pub fn new(transport: Elasticsearch, url: Url, signer: Option<RequestSigner>) -> Self {
        Self {
            transport,
            url,
            signer: signer.map(Arc::new),
        }
    }

    /// The node's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One request (no query string). The body is bytes so that what is signed is exactly
    /// what is sent.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<Response, StageError> {
        self.send_with_timeout(method, path, headers, body, None)
            .await
    }

    /// As [`Self::send`], with this request's own timeout instead of the client's.
    pub async fn send_with_timeout(
        &self,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        body: Option<&[u8]>,
        timeout: Option<std::time::Duration>,
    ) -> Result<Response, StageError> {
        if let Some(signer) = &self.signer {
            for (name, value) in self.signature(signer, method, path, body).await? {
                let value = HeaderValue::try_from(value).map_err(|e| {
                    StageError::Internal(format!("SigV4 header {name} is not a header value: {e}"))
                })?;
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        self.transport
            .send(method, path, headers, Option::<&()>::None, body, timeout)
            .await
            .map_err(StageError::elasticsearch)
    }

    async fn signature(
        &self,
        signer: &RequestSigner,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<(&'static str, String)>, StageError> {
        // The transport joins the path to the node's URL this way; the signature must
        // cover that very URL.
        let url = self
            .url
            .join(path.trim_start_matches('/'))
            .map_err(|e| StageError::Internal(format!("Elasticsearch path {path:?}: {e}")))?;
        let request = Request {
            method: method_name(method),
            url: url.as_str(),
            headers: &[],
            body: body.unwrap_or_default(),
        };
        signer.sign(&request).await.map_err(signing_error)
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    }
}

fn signing_error(err: SigningError) -> StageError {
    match &err {
        SigningError::Credentials { .. } => StageError::Service {
            service: Service::Elasticsearch,
            retryable: err.is_retryable(),
            message: err.to_string(),
        },
        SigningError::Request(_) => StageError::Internal(err.to_string()),
    }
}
