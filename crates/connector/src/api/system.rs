//! `/healthz` and `/metrics`: unauthenticated, for load balancers and Prometheus.

use aide::axum::ApiRouter;
use aide::axum::routing::get_with;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use schemars::JsonSchema;
use serde::Serialize;

use super::AppState;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/healthz",
            get_with(healthz, |op| {
                op.id("health")
                    .summary("Whether the server and its database answer")
                    .tag("system")
                    .response::<200, Json<Health>>()
                    .response_with::<503, Json<Health>, _>(|r| {
                        r.description("The database is unavailable")
                    })
            }),
        )
        .api_route(
            "/metrics",
            get_with(metrics_text, |op| {
                op.id("metrics")
                    .summary("Prometheus metrics (text exposition format)")
                    .tag("system")
                    .with(|mut op| {
                        let responses = op
                            .inner_mut()
                            .responses
                            .get_or_insert_with(Default::default);
                        responses.responses.insert(
                            aide::openapi::StatusCode::Code(200),
                            aide::openapi::ReferenceOr::Item(
                                serde_json::from_value(serde_json::json!({
                                    "description": "Prometheus text exposition format 0.0.4",
                                    "content": { "text/plain": { "schema": { "type": "string" } } }
                                }))
                                .expect("a static response"),
                            ),
                        );
                        op
                    })
            }),
        )
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = state.store.dialect().to_owned();
    match state.store.count_api_tokens().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                database,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable".into(),
                    database,
                }),
            )
        }
    }
}

async fn metrics_text(
    State(state): State<AppState>,
) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
}
