//! The HTTP layer shared by every API family: base URLs, a pooled `reqwest` client (and the lean
//! pool new-API calls take, `crate::lean`), and the decoding of both response dialects into typed
//! responses or [`Error`].

use crate::error::{Dialect, Error};
use crate::ids::AccessToken;
use crate::lean::{Lean, retry_after};
use bytes::Bytes;
use http_body_util::Full;
use reqwest::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use url::Url;

/// Where DingTalk is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// New API family, default `https://api.dingtalk.com`.
    pub api_base: Url,
    /// Old API family (and webhooks), default `https://oapi.dingtalk.com`.
    pub oapi_base: Url,
    /// Whole-request timeout. DingTalk's gateway gives up on its backends after 3 s (§5).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Timeout for media uploads, which carry up to 20 MB.
    pub upload_timeout: Duration,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            api_base: Url::parse("https://api.dingtalk.com").expect("static URL"),
            oapi_base: Url::parse("https://oapi.dingtalk.com").expect("static URL"),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            upload_timeout: Duration::from_secs(120),
            user_agent: concat!("dtc-dingtalk/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientConfig {
    /// Point both API families at one base URL (the simulator serves both on one port).
    pub fn with_base(base: &str) -> Result<Self, url::ParseError> {
        let url = Url::parse(base)?;
        Ok(ClientConfig {
            api_base: url.clone(),
            oapi_base: url,
            ..Default::default()
        })
    }
}

/// A DingTalk new-API method (`api.dingtalk.com`): one type per method, next to its response.
pub trait ApiRequest: Serialize + Sync {
    type Response: DeserializeOwned;
    /// `GET` or `POST`.
    const METHOD: Method;
    /// Path below the new-API base, e.g. `/v1.0/robot/groupMessages/send`.
    const PATH: &'static str;
    /// Route name `family.method`, used in errors, logs and metrics.
    const ROUTE: &'static str;
    /// Query parameters for `GET` methods (the body is not sent for them).
    fn query(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// The low-level client: no credentials, no token cache. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `None` when an outbound proxy is set: then new-API calls go through `http` too.
    lean: Option<Lean>,
    config: std::sync::Arc<ClientConfig>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| Error::transport("client.build", e))?;
        Ok(Client {
            http,
            lean: Lean::new(&config)?,
            config: std::sync::Arc::new(config),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn api_url(&self, path: &str) -> Url {
        join(&self.config.api_base, path)
    }

    pub(crate) fn oapi_url(&self, path: &str) -> Url {
        join(&self.config.oapi_base, path)
    }

    /// Call a new-API method with an access token in `x-acs-dingtalk-access-token`.
    pub async fn call<R: ApiRequest>(
        &self,
        token: &AccessToken,
        req: &R,
    ) -> Result<R::Response, Error> {
        let mut url = self.api_url(R::PATH);
        let Some(lean) = &self.lean else {
            return self.call_through_reqwest(url, token, req).await;
        };
        let body = if R::METHOD == Method::GET {
            let query = req.query();
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            Bytes::new()
        } else {
            serde_json::to_vec(req)
                .map_err(|e| {
                    Error::transport_because(
                        R::ROUTE,
                        "could not encode the request",
                        Some(Box::new(e)),
                    )
                })?
                .into()
        };
        let mut request = http::Request::builder()
            .method(R::METHOD)
            .uri(url.as_str())
            .header("x-acs-dingtalk-access-token", token.expose())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, self.config.user_agent.as_str());
        if R::METHOD != Method::GET {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        // Fails only on a token or user agent that is no header value; the error names neither.
        let request = request.body(Full::new(body)).map_err(|_| {
            Error::transport_because(
                R::ROUTE,
                "could not build the request (a header value is not valid)",
                None,
            )
        })?;
        let answer = lean.exchange(R::ROUTE, request).await?;
        decode_new_bytes(R::ROUTE, answer.status, answer.retry_after, &answer.body)
    }

    /// [`Self::call`] when a proxy is configured: reqwest honours it.
    async fn call_through_reqwest<R: ApiRequest>(
        &self,
        url: Url,
        token: &AccessToken,
        req: &R,
    ) -> Result<R::Response, Error> {
        let mut builder = self
            .http
            .request(R::METHOD, url)
            .header("x-acs-dingtalk-access-token", token.expose())
            .header(ACCEPT, "application/json");
        builder = if R::METHOD == Method::GET {
            builder.query(&req.query())
        } else {
            builder.json(req)
        };
        let resp = builder
            .send()
            .await
            .map_err(|e| Error::transport(R::ROUTE, e))?;
        decode_new(R::ROUTE, resp).await
    }
}

/// `path` under `base`, keeping any path prefix of the base (e.g. a proxy mounted under
/// /dingtalk). Only the path is set: parsing the whole URL again on every call (its host
/// through IDNA) was 2 % of `dtc serve`'s CPU under sync sends.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url
}

/// Decode a new-API response: 2xx is the typed body, anything else an error body.
pub(crate) async fn decode_new<T: DeserializeOwned>(
    route: &'static str,
    resp: reqwest::Response,
) -> Result<T, Error> {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let bytes = resp.bytes().await.map_err(|e| Error::transport(route, e))?;
    decode_new_bytes(route, status, retry_after, &bytes)
}

fn decode_new_bytes<T: DeserializeOwned>(
    route: &'static str,
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<T, Error> {
    // The success path parses bytes directly; only errors pay for a lossy string copy.
    if status.is_success() {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::decode(
                route,
                status.as_u16(),
                &String::from_utf8_lossy(bytes),
                e.to_string(),
            )
        })
    } else {
        Err(Error::from_response(
            route,
            Dialect::New,
            status.as_u16(),
            &String::from_utf8_lossy(bytes),
            retry_after,
        ))
    }
}

/// Decode an old-API response: HTTP 200 with `errcode` 0 is success; `errcode` ≠ 0 is an error
/// even though the status is 200; a non-200 status is an error (usually a gateway page).
pub(crate) async fn decode_old<T: DeserializeOwned>(
    route: &'static str,
    resp: reqwest::Response,
) -> Result<T, Error> {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = resp.text().await.map_err(|e| Error::transport(route, e))?;
    let value: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return Err(Error::decode(route, status.as_u16(), &body, e.to_string())),
    };
    let errcode = value.get("errcode").and_then(|c| match c {
        serde_json::Value::Number(n) => n.as_i64(),
        // The doc shows "0" as a string once; accept it.
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    });
    match errcode {
        Some(0) if status == StatusCode::OK => serde_json::from_value(value)
            .map_err(|e| Error::decode(route, status.as_u16(), &body, e.to_string())),
        Some(_) => Err(Error::from_response(
            route,
            Dialect::Old,
            status.as_u16(),
            &body,
            retry_after,
        )),
        None if !status.is_success() => Err(Error::from_response(
            route,
            Dialect::New,
            status.as_u16(),
            &body,
            retry_after,
        )),
        None => Err(Error::decode(
            route,
            status.as_u16(),
            &body,
            "no errcode in old-API answer".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_joins_the_base_and_keeps_its_prefix() {
        let at = |base: &str| join(&Url::parse(base).unwrap(), "/v1.0/robot/groupMessages/send");
        assert_eq!(
            at("https://api.dingtalk.com").as_str(),
            "https://api.dingtalk.com/v1.0/robot/groupMessages/send"
        );
        assert_eq!(
            at("http://127.0.0.1:8081/dingtalk/").as_str(),
            "http://127.0.0.1:8081/dingtalk/v1.0/robot/groupMessages/send"
        );
        assert_eq!(
            at("http://proxy.internal/dingtalk").as_str(),
            "http://proxy.internal/dingtalk/v1.0/robot/groupMessages/send"
        );
    }
}
