//! The HTTP JSON metric client (seed 003's `third_party` sources): GET or POST, 5 s for the
//! whole exchange, at most 1 MiB read, credentials in the URL sent as Basic authentication
//! and never logged (errors name the URL only through [`redact_url`]).
//!
//! It is built on the hyper/rustls (ring) stack the SDK's own HTTP client uses, with the
//! system's root certificates. Redirects are not followed (a metric endpoint that moves is a
//! configuration to fix, and following one could send the credentials elsewhere).

use std::sync::OnceLock;

use ballast_core::autoscale::redact_url;
use ballast_core::backend::{BackendError, HTTP_BODY_LIMIT, HTTP_TIMEOUT, HttpRequest};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

fn client() -> Result<&'static Client<Https, Full<Bytes>>, String> {
    static CLIENT: OnceLock<Result<Client<Https, Full<Bytes>>, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| format!("no root certificates: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(Client::builder(TokioExecutor::new()).build(https))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Splits `user:password@` out of the URL (RFC 3986, [`ballast_core::url::credentials`]):
/// (URL without it, Basic credentials).
fn split_credentials(url: &str) -> (String, Option<String>) {
    let (bare, user) = ballast_core::url::credentials(url);
    (bare, user.map(aws_smithy_types::base64::encode))
}

/// One request: the body of a 2xx answer.
pub async fn fetch(req: &HttpRequest) -> Result<Vec<u8>, BackendError> {
    let shown = redact_url(&req.url);
    let op = || "HTTP metric".to_string();
    let invalid = |message: String| BackendError::Invalid { operation: op(), message };
    let client = client().map_err(invalid)?;
    let (bare, basic) = split_credentials(&req.url);
    let uri: http::Uri = bare.parse().map_err(|_| invalid(format!("{shown}: not a valid URL")))?;
    let mut b = http::Request::builder()
        .method(if req.post.is_some() { http::Method::POST } else { http::Method::GET })
        .uri(uri)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, concat!("ballast/", env!("CARGO_PKG_VERSION")));
    if let Some(c) = basic {
        b = b.header(http::header::AUTHORIZATION, format!("Basic {c}"));
    }
    if req.post.is_some() {
        b = b.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = b
        .body(Full::new(Bytes::from(req.post.clone().unwrap_or_default())))
        .map_err(|_| invalid(format!("{shown}: not a valid request")))?;
    let exchange = async {
        let resp = client.request(request).await.map_err(|e| BackendError::Server {
            operation: op(),
            message: format!("{shown}: {}", connect_error(&e)),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let message = format!("{shown}: HTTP {status}");
            return Err(if status.is_server_error() {
                BackendError::Server { operation: op(), message }
            } else {
                invalid(message)
            });
        }
        if let Some(n) =
            resp.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            && n > HTTP_BODY_LIMIT as u64
        {
            return Err(invalid(format!("{shown}: the answer is {n} bytes, over the 1 MiB limit")));
        }
        let body = Limited::new(resp.into_body(), HTTP_BODY_LIMIT).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                invalid(format!("{shown}: the answer is over the 1 MiB limit"))
            } else {
                BackendError::Server { operation: op(), message: format!("{shown}: reading the answer failed") }
            }
        })?;
        Ok(body.to_bytes().to_vec())
    };
    match tokio::time::timeout(std::time::Duration::from_millis(HTTP_TIMEOUT.0), exchange).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout { operation: format!("HTTP metric {shown}") }),
    }
}

/// The cause of a failed exchange, without the URL (hyper's messages may hold it).
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    if e.is_connect() { "could not connect".into() } else { "the request failed".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_for_basic_auth() {
        let (bare, basic) = split_credentials("https://us%40r:p%3Ass@h.example/api/q?x=1");
        assert_eq!(bare, "https://h.example/api/q?x=1");
        assert_eq!(basic.as_deref(), Some(aws_smithy_types::base64::encode("us@r:p:ss").as_str()));
        assert_eq!(split_credentials("http://h/a@b"), ("http://h/a@b".to_string(), None));
    }
}
