//! Access tokens (docs/dingtalk-api.md §1): the token methods, and a per-app cache that reuses a
//! token until shortly before it expires and lets one caller refresh it while the others wait.

use crate::client::{Client, decode_new, decode_old};
use crate::error::Error;
use crate::ids::{AccessToken, AppKey, AppSecret};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// `POST /v1.0/oauth2/accessToken`: get an enterprise-internal app's access token.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAccessToken<'a> {
    pub app_key: &'a str,
    pub app_secret: &'a str,
}

/// Response of [`GetAccessToken`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAccessTokenResponse {
    pub access_token: String,
    /// Lifetime in seconds (7200).
    pub expire_in: u64,
}

/// `GET /gettoken` (old API): the same token, obtained the legacy way.
#[derive(Deserialize)]
pub struct GetTokenResponse {
    pub access_token: String,
    pub expires_in: u64,
}

impl Client {
    /// Fetch a token from `/v1.0/oauth2/accessToken`. Callers normally go through [`AppClient`],
    /// which caches it.
    pub async fn get_access_token(
        &self,
        app_key: &AppKey,
        app_secret: &AppSecret,
    ) -> Result<(AccessToken, Duration), Error> {
        const ROUTE: &str = "auth.token";
        let resp = self
            .http()
            .post(self.api_url("/v1.0/oauth2/accessToken"))
            .json(&GetAccessToken {
                app_key: app_key.as_str(),
                app_secret: app_secret.expose(),
            })
            .send()
            .await
            .map_err(|e| Error::transport(ROUTE, e))?;
        let body: GetAccessTokenResponse = decode_new(ROUTE, resp).await?;
        Ok((
            AccessToken::new(body.access_token),
            Duration::from_secs(body.expire_in),
        ))
    }

    /// Fetch a token from the old `/gettoken` endpoint.
    pub async fn get_token_legacy(
        &self,
        app_key: &AppKey,
        app_secret: &AppSecret,
    ) -> Result<(AccessToken, Duration), Error> {
        const ROUTE: &str = "auth.gettoken";
        let resp = self
            .http()
            .get(self.oapi_url("/gettoken"))
            .query(&[
                ("appkey", app_key.as_str()),
                ("appsecret", app_secret.expose()),
            ])
            .send()
            .await
            .map_err(|e| Error::transport(ROUTE, e))?;
        let body: GetTokenResponse = decode_old(ROUTE, resp).await?;
        Ok((
            AccessToken::new(body.access_token),
            Duration::from_secs(body.expires_in),
        ))
    }
}

/// A source of monotonic time, injectable so tests can move time without sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
}

/// Tokio's clock: real time, or paused time under `tokio::time::pause()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// A token cache for one app.
///
/// Reuses the token until `margin` before `expireIn` runs out (the official Stream SDK keeps a
/// 5-minute margin too). On a cold or stale cache exactly one caller fetches; concurrent
/// callers wait for that fetch and share its result (single flight).
pub struct TokenCache {
    current: Mutex<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    margin: Duration,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("margin", &self.margin)
            .finish()
    }
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>, margin: Duration) -> Self {
        TokenCache {
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            clock,
            margin,
        }
    }

    fn fresh(&self) -> Option<AccessToken> {
        let guard = self.current.lock().expect("token cache poisoned");
        guard
            .as_ref()
            .filter(|c| self.clock.now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The cached token, or the result of `fetch` run by exactly one caller.
    pub async fn get_or_fetch<F, Fut>(&self, fetch: F) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(AccessToken, Duration), Error>>,
    {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        // Boxed: the fetch's future (an HTTP call) is large, and every caller's future would
        // otherwise carry, and copy on each call, room for it although a fetch is rare.
        Box::pin(self.refresh_with(fetch)).await
    }

    async fn refresh_with<F, Fut>(&self, fetch: F) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(AccessToken, Duration), Error>>,
    {
        let _flight = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let started = self.clock.now();
        let (token, ttl) = fetch().await?;
        let refresh_at = started + ttl.saturating_sub(self.margin);
        *self.current.lock().expect("token cache poisoned") = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }

    /// Forget `rejected` if it is still the cached token (a newer one is kept).
    pub fn invalidate(&self, rejected: &AccessToken) {
        let mut guard = self.current.lock().expect("token cache poisoned");
        if guard.as_ref().is_some_and(|c| &c.token == rejected) {
            *guard = None;
        }
    }
}

/// An app's credentials.
#[derive(Clone, Debug)]
pub struct AppCredentials {
    pub app_key: AppKey,
    pub app_secret: AppSecret,
}

/// A client for one enterprise-internal app: wraps [`Client`] with the app's credentials and its
/// token cache. On `InvalidAuthentication` it refreshes the token once and repeats the call.
#[derive(Clone)]
pub struct AppClient {
    client: Client,
    creds: Arc<AppCredentials>,
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for AppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppClient")
            .field("app_key", &self.creds.app_key)
            .finish()
    }
}

/// Refresh this long before `expireIn` runs out.
pub const DEFAULT_TOKEN_MARGIN: Duration = Duration::from_secs(300);

impl AppClient {
    pub fn new(client: Client, creds: AppCredentials) -> Self {
        Self::with_clock(client, creds, Arc::new(TokioClock), DEFAULT_TOKEN_MARGIN)
    }

    pub fn with_clock(
        client: Client,
        creds: AppCredentials,
        clock: Arc<dyn Clock>,
        margin: Duration,
    ) -> Self {
        AppClient {
            client,
            creds: Arc::new(creds),
            tokens: Arc::new(TokenCache::new(clock, margin)),
        }
    }

    pub fn app_key(&self) -> &AppKey {
        &self.creds.app_key
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A valid access token, from the cache or freshly fetched.
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        self.tokens
            .get_or_fetch(|| {
                self.client
                    .get_access_token(&self.creds.app_key, &self.creds.app_secret)
            })
            .await
    }

    /// Asks DingTalk for a token with these credentials now, bypassing the cache: whether they
    /// are accepted (a connection test).
    pub async fn check_credentials(&self) -> Result<(), Error> {
        self.client
            .get_access_token(&self.creds.app_key, &self.creds.app_secret)
            .await
            .map(|_| ())
    }

    /// Run `op` with a token; if DingTalk rejects the token, refresh it once and run `op` again.
    pub async fn with_token<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let token = self.access_token().await?;
        match op(token.clone()).await {
            Err(e) if e.is_token_rejected() => {
                tracing::info!(app_key = %self.creds.app_key, api = e.api(), "access token rejected; refreshing once");
                self.tokens.invalidate(&token);
                let token = self.access_token().await?;
                op(token).await
            }
            other => other,
        }
    }

    /// Call a new-API method with the app's token.
    pub async fn call<R: crate::client::ApiRequest>(&self, req: &R) -> Result<R::Response, Error> {
        self.with_token(|token| async move { self.client.call(&token, req).await })
            .await
    }
}
