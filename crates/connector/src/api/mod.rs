//! The REST API (docs/design.md §6). Each route module owns its router and DTOs; this module puts
//! them together behind bearer-token auth and request metrics.

pub mod accept;
pub mod actions;
pub mod auth;
pub mod connections;
pub mod deliveries;
pub mod error;
pub mod extract;
mod flows;
pub mod openapi;
pub mod strict_json;
pub mod swagger;
pub mod system;
pub(crate) mod tokens;

use aide::axum::ApiRouter;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

use crate::actions::Target;
use crate::connections::{Connection, Connections};
use crate::delivery::{Acker, Notifier, RateLimiter};
use crate::settings::Settings;
use crate::store::Store;
use crate::targets::Targets;
pub use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub connections: Arc<Connections>,
    pub dingtalk: dingtalk::Client,
    /// For downloading `file_url` inputs; separate from the DingTalk client's pool.
    pub http: crate::fetch::Fetcher,
    pub settings: Settings,
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    pub tokens: Arc<auth::TokenCheck>,
    /// One client per connection (and so one token cache per app), rebuilt when it changes.
    pub targets: Arc<Targets>,
    /// This process's lease owner name (sync requests hold their group under it).
    pub instance_id: String,
    pub acceptor: accept::Acceptor,
    pub recorder: accept::Recorder,
    /// Wakes the delivery engine when something was queued.
    pub wake: Notifier,
    /// DingTalk's limits, shared with the delivery engine (and other instances on PostgreSQL).
    pub limiter: Arc<dyn RateLimiter>,
    /// Ends keyed sync requests' attempts the way the engine ends its own.
    pub acker: Acker,
    /// Flows and their runs.
    pub flows: Arc<crate::flows::service::Flows>,
    /// Connections looked up by the action route, kept briefly: every send needs its
    /// connection, and a database read per send is most of an accept's cost.
    recent: std::sync::Mutex<std::collections::HashMap<String, (Instant, Connection)>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        connections: Arc<Connections>,
        targets: Arc<Targets>,
        http: crate::fetch::Fetcher,
        settings: Settings,
        tokens: Arc<auth::TokenCheck>,
        engine: (Notifier, Arc<dyn RateLimiter>, Acker),
    ) -> Self {
        let store_for_acceptor = store.clone();
        let flows = Arc::new(crate::flows::service::Flows::new(
            store.clone(),
            connections.clone(),
            Arc::new(crate::store::SystemClock),
        ));
        AppState(Arc::new(Inner {
            flows,
            store,
            connections,
            dingtalk: targets.dingtalk().clone(),
            http,
            settings,
            prometheus: crate::telemetry::prometheus(),
            tokens,
            targets,
            instance_id: format!("dtc-{}", Uuid::new_v4()),
            acceptor: accept::Acceptor::start(store_for_acceptor.clone()),
            recorder: accept::Recorder::start(store_for_acceptor),
            wake: engine.0,
            limiter: engine.1,
            acker: engine.2,
            recent: std::sync::Mutex::new(std::collections::HashMap::new()),
        }))
    }

    /// The DingTalk target of a connection, cached while the connection is unchanged.
    pub fn target_for(&self, conn: &Connection) -> Result<Target, ApiError> {
        Ok(self.targets.get(&self.connections, conn)?)
    }

    /// The connection `id_or_name`, from a cache of at most [`CONNECTION_TTL`]: a change made
    /// through another instance is seen within that time; one made here at once.
    pub async fn connection(&self, id_or_name: &str) -> Result<Connection, ApiError> {
        if let Some((at, c)) = self.recent.lock().expect("cache poisoned").get(id_or_name)
            && at.elapsed() < CONNECTION_TTL
        {
            return Ok(c.clone());
        }
        let conn = self.connections.get(id_or_name).await?;
        let mut recent = self.recent.lock().expect("cache poisoned");
        if recent.len() > 10_000 {
            recent.clear();
        }
        recent.insert(id_or_name.to_owned(), (Instant::now(), conn.clone()));
        Ok(conn)
    }

    /// Forget cached lookups of a connection that changed here.
    pub fn connection_changed(&self, id: Uuid) {
        self.recent
            .lock()
            .expect("cache poisoned")
            .retain(|_, (_, c)| c.id != id);
        self.targets.forget(id);
    }

    /// Tests a connection against DingTalk and records the result as its last test.
    pub async fn test_connection(
        &self,
        conn: &Connection,
    ) -> Result<crate::probe::TestResult, ApiError> {
        let target = self.target_for(conn)?;
        let result = crate::probe::test(&target).await;
        let check = crate::store::ConnectionCheck {
            checked_at: chrono::Utc::now(),
            ok: result.ok,
            message: result.message.clone(),
            code: result.dingtalk.as_ref().and_then(|d| d.code.clone()),
        };
        // The test happened and is answered either way; only the list's note of it is lost.
        if let Err(e) = self.store.put_connection_check(conn.id, &check).await {
            tracing::warn!(connection = %conn.name, error = %e, "could not record the connection test");
        }
        Ok(result)
    }

    pub fn wake_engine(&self) {
        self.wake.notify();
    }
}

/// How long a looked-up connection is reused by the action route.
pub const CONNECTION_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A request's method as a metric label: one of a fixed set, so invented methods cannot grow
/// the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A `200` whose body is JSON already written out.
pub(crate) fn json_body(body: impl Into<axum::body::Body>) -> Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// A metric label as a `&'static str`, kept once per distinct value: one made from a `String`
/// was allocated, and freed, for every request. Only bounded sets come here (the router's
/// route templates, status codes).
fn static_label(value: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::RwLock;
    static SEEN: RwLock<Option<HashSet<&'static str>>> = RwLock::new(None);
    let known = |set: &Option<HashSet<&'static str>>| set.as_ref()?.get(value).copied();
    // A panic while holding the lock cannot leave the set half-changed: take it as it is.
    if let Some(label) = known(&SEEN.read().unwrap_or_else(|p| p.into_inner())) {
        return label;
    }
    let mut seen = SEEN.write().unwrap_or_else(|p| p.into_inner());
    if let Some(label) = known(&seen) {
        return label;
    }
    let label: &'static str = Box::leak(value.into());
    seen.get_or_insert_with(HashSet::new).insert(label);
    label
}

/// Counts and times every request, after refusing one of the wrong shape.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| static_label(p.as_str()));
    let method = method_label(req.method());
    let started = Instant::now();
    // One layer for both (each layer is another boxed future and a move of the request).
    let resp = match refuse_shape(&req) {
        Some(refused) => refused,
        None => next.run(req).await,
    };
    let status = static_label(resp.status().as_str());
    metrics::counter!("dtc_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("dtc_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// The longest path and query taken; longer ones are 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most headers, and their largest total size, taken; beyond either, 431.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Requests whose line or headers are out of bounds, or whose path is not UTF-8 once decoded,
/// are answered here in the error shape (hyper answers only far larger ones itself, bare).
fn refuse_shape(req: &Request) -> Option<Response> {
    use axum::response::IntoResponse;
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(
            ApiError::new(
                error::ErrorCode::UriTooLong,
                format!(
                    "the path and query are {uri_len} bytes; at most {MAX_URI_BYTES} are taken"
                ),
            )
            .into_response(),
        );
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(
            ApiError::new(
                error::ErrorCode::HeadersTooLarge,
                format!(
                    "{} headers of {header_bytes} bytes; at most {MAX_HEADERS} headers and \
                 {MAX_HEADER_BYTES} bytes are taken",
                    headers.len()
                ),
            )
            .into_response(),
        );
    }
    let path = req.uri().path();
    if path.contains('%')
        && percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .is_err()
    {
        return Some(
            ApiError::invalid("path", "is not UTF-8 once percent-decoded").into_response(),
        );
    }
    None
}

/// A known route asked with a method it does not have: axum has already set `Allow`.
async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        error::ErrorCode::MethodNotAllowed,
        format!("this route does not take {method}; see GET /v1/openapi.json"),
    )
}

/// The whole HTTP surface, and its OpenAPI document derived from it.
pub fn router(state: AppState) -> Router {
    let v1 = ApiRouter::new()
        .merge(connections::routes())
        .merge(actions::routes())
        .merge(deliveries::routes())
        .merge(flows::routes())
        .merge(tokens::routes())
        .route_layer(middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::require_token,
        ));
    let mut api = aide::openapi::OpenApi::default();
    let app = ApiRouter::new()
        .merge(system::routes())
        .merge(flows::hook_routes())
        .merge(v1)
        .finish_api_with(&mut api, openapi::describe);
    let docs = Arc::new(openapi::finish(api));
    app.merge(openapi::routes(docs))
        .merge(crate::console::routes())
        .fallback(|| async { ApiError::not_found("no such route; see GET /v1/openapi.json") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(track))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // Base64 files of up to 20 MB grow by a third on the wire.
        .layer(axum::extract::DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::static_label;

    #[test]
    fn a_label_is_kept_once_and_handed_out_again() {
        let first = static_label(&String::from("/v1/test-route/{id}"));
        let again = static_label(&String::from("/v1/test-route/{id}"));
        assert_eq!(first, "/v1/test-route/{id}");
        assert!(std::ptr::eq(first, again), "the same kept string");
        assert_ne!(static_label("/v1/other"), first);
    }
}
