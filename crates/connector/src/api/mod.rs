//! The REST API (design.md §6). Each route module owns its router and DTOs; this module puts
//! them together behind bearer-token auth and request metrics.

pub mod actions;
pub mod auth;
pub mod connections;
pub mod error;
pub mod openapi;
pub mod system;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

use crate::actions::Target;
use crate::connections::{Connection, ConnectionKind, ConnectionSecrets, Connections};
use crate::settings::Settings;
use crate::store::Store;
pub use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub connections: Connections,
    pub dingtalk: dingtalk::Client,
    /// For downloading `file_url` inputs; separate from the DingTalk client's pool.
    pub http: reqwest::Client,
    pub settings: Settings,
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    pub tokens: Arc<auth::TokenCheck>,
    /// One client per connection (and so one token cache per app), rebuilt when it changes.
    targets: Mutex<HashMap<Uuid, (chrono::DateTime<chrono::Utc>, Target)>>,
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
        connections: Connections,
        dingtalk: dingtalk::Client,
        http: reqwest::Client,
        settings: Settings,
        tokens: Arc<auth::TokenCheck>,
    ) -> Self {
        AppState(Arc::new(Inner {
            store,
            connections,
            dingtalk,
            http,
            settings,
            prometheus: crate::telemetry::prometheus(),
            tokens,
            targets: Mutex::new(HashMap::new()),
        }))
    }

    /// The DingTalk target of a connection, cached while the connection is unchanged.
    pub fn target_for(&self, conn: &Connection) -> Result<Target, ApiError> {
        if let Some((at, t)) = self.targets.lock().expect("targets poisoned").get(&conn.id)
            && *at == conn.updated_at
        {
            return Ok(t.clone());
        }
        let target = match self.connections.secrets(conn)? {
            ConnectionSecrets::AppRobot { app_secret } => {
                use secrecy::ExposeSecret;
                let app_key = conn.app_key.clone().unwrap_or_default();
                Target::App {
                    client: dingtalk::AppClient::new(
                        self.dingtalk.clone(),
                        dingtalk::AppCredentials {
                            app_key: dingtalk::AppKey::new(app_key.clone()),
                            app_secret: dingtalk::AppSecret::new(app_secret.expose_secret()),
                        },
                    ),
                    robot_code: dingtalk::RobotCode::new(
                        conn.robot_code.clone().unwrap_or(app_key),
                    ),
                }
            }
            ConnectionSecrets::WebhookRobot {
                access_token,
                secret,
            } => {
                use secrecy::ExposeSecret;
                Target::Webhook(dingtalk::WebhookRobot::new(
                    self.dingtalk.clone(),
                    dingtalk::WebhookToken::new(access_token.expose_secret()),
                    secret.map(|s| dingtalk::WebhookSecret::new(s.expose_secret())),
                ))
            }
        };
        self.targets
            .lock()
            .expect("targets poisoned")
            .insert(conn.id, (conn.updated_at, target.clone()));
        Ok(target)
    }

    pub fn forget_target(&self, id: Uuid) {
        self.targets.lock().expect("targets poisoned").remove(&id);
    }
}

pub fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::AppRobot => "app_robot",
        ConnectionKind::WebhookRobot => "webhook_robot",
    }
}

async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("dtc_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("dtc_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .merge(connections::router())
        .merge(actions::router())
        .route_layer(middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(system::router())
        .merge(openapi::router())
        .merge(v1)
        .layer(middleware::from_fn(track))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // Base64 files of up to 20 MB grow by a third on the wire.
        .layer(axum::extract::DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(state)
}
