//! The connection pool behind new-API calls ([`crate::Client::call`]), the path every group
//! message takes: hyper-util's pooled client directly, with rustls and the same web PKI roots as
//! reqwest. Measured under sync sends through `dtc serve`, reqwest's own layers above that
//! client were about a tenth of the process's CPU, most of it its redirect layer, which parses
//! every request's URL again twice whatever the policy (BENCHMARKS.md, "A lean path for new-API
//! calls").
//!
//! reqwest stays for everything else (tokens, uploads, webhooks, Stream mode) and for every
//! call when an outbound proxy is set in the environment, which reqwest honours and this path
//! does not.

use crate::client::ClientConfig;
use crate::error::Error;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as PooledClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// What came back: status, a `Retry-After` if any, and the whole body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub(crate) struct Lean {
    pool: PooledClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Lean {
    /// `None` when an outbound proxy is configured: then reqwest carries every call.
    pub(crate) fn new(config: &ClientConfig) -> Result<Option<Self>, Error> {
        if proxy_configured(|name| std::env::var_os(name)) {
            return Ok(None);
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let tls = HttpsConnectorBuilder::new()
            // The provider is named rather than taken from the process default, which panics
            // when more than one is compiled in.
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| {
                Error::transport_because("client.build", "TLS setup failed", Some(Box::new(e)))
            })?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let pool = PooledClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(tls);
        Ok(Some(Lean {
            pool,
            timeout: config.timeout,
        }))
    }

    /// Sends `request` and reads the whole answer within the client's timeout.
    pub(crate) async fn exchange(
        &self,
        route: &'static str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Answer, Error> {
        let exchange = async {
            let response = self.pool.request(request).await.map_err(|e| {
                let what = if e.is_connect() {
                    "could not connect"
                } else {
                    "transport failure"
                };
                Error::transport_because(route, what, Some(Box::new(e)))
            })?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| {
                Error::transport_because(route, "transport failure", Some(Box::new(e)))
            })?;
            Ok(Answer {
                status: parts.status,
                retry_after: retry_after(&parts.headers),
                body: body.to_bytes(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::transport_because(route, "timed out", None))?
    }
}

/// A `Retry-After` in seconds (UNCONFIRMED that DingTalk ever sends one; cheap to honour).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The variables reqwest reads a proxy from (through hyper-util's matcher).
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether the environment names an outbound proxy, as reqwest reads it (upper and lower case).
fn proxy_configured<V: AsRef<std::ffi::OsStr>>(var: impl Fn(&str) -> Option<V>) -> bool {
    PROXY_VARIABLES
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.as_ref().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn any_proxy_variable_in_either_case_hands_calls_to_reqwest() {
        assert!(!proxy_configured(env(&[])));
        assert!(!proxy_configured(env(&[("NO_PROXY", "localhost")])));
        assert!(!proxy_configured(env(&[("HTTPS_PROXY", "")])));
        for name in PROXY_VARIABLES {
            assert!(
                proxy_configured(env(&[(name, "http://proxy.internal:3128")])),
                "{name}"
            );
        }
    }

    #[test]
    fn retry_after_is_read_in_whole_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, " 3 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
