//! Deliveries: the log with filters (status, connection, group, time), auto-refreshing; one
//! delivery's attempts, last error, payload and result; retry of a failed one. The failed
//! filter is the dead-letter view.

use axum::Router;
use axum::extract::{Form, Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CsrfOnly, SignedIn, check, some, when};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::store::Role;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/deliveries", get(list))
        .route("/console/deliveries/{id}", get(detail))
        .route("/console/deliveries/{id}/retry", post(retry))
}

#[derive(Deserialize, Default)]
struct DeliveryQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    connection: String,
    #[serde(default)]
    group: String,
    /// `datetime-local` (the browser's local time is not known here: read as UTC).
    #[serde(default)]
    since: String,
    before: Option<i64>,
}

fn error_text(e: &Option<crate::error::ErrorBody>) -> Option<String> {
    e.as_ref().map(|e| e.message.clone())
}

async fn list(page: SignedIn, Query(q): Query<DeliveryQuery>) -> Response {
    let s = &page.state;
    let connections = match s.store.connection_names().await {
        Ok(c) => c,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let status = crate::store::DeliveryStatus::parse(&q.status).ok();
    let connection_id = connections
        .iter()
        .find(|c| c.name == q.connection)
        .map(|c| c.id);
    let since = chrono::NaiveDateTime::parse_from_str(&q.since, "%Y-%m-%dT%H:%M")
        .ok()
        .map(|t| t.and_utc());
    let filter = crate::store::DeliveryFilter {
        status,
        connection_id,
        group_chat_id: some(&q.group),
        page: crate::store::LogPage {
            created_from: since,
            created_before: None,
            before_seq: q.before,
            limit: 50,
        },
    };
    let page_of = match s.store.list_deliveries(&filter).await {
        Ok(p) => p,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let name_of = |id: uuid::Uuid| {
        connections
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    };
    let rows: Vec<Value> = page_of
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "status": d.status, "action": d.action,
                "connection": name_of(d.connection_id),
                "group": d.group_key.group_chat_id(),
                "attempts": d.attempts,
                "error": error_text(&d.last_error),
                "created_at": when(d.times.created_at),
            })
        })
        .collect();
    let next = page_of.next_cursor.map(|c| {
        let mut q2 = form_urlencoded(&[
            ("status", &q.status),
            ("connection", &q.connection),
            ("group", &q.group),
            ("since", &q.since),
        ]);
        q2.push_str(&format!("&before={c}"));
        format!("/console/deliveries?{q2}")
    });
    let conns: Vec<Value> = connections
        .iter()
        .map(|c| json!({"name": c.name}))
        .collect();
    page.render(
        "deliveries.html",
        "deliveries",
        json!({"deliveries": rows, "connections": conns, "next": next,
               "filter": {"status": q.status, "connection": q.connection, "group": q.group, "since": q.since}}),
    )
    .into_response()
}

fn form_urlencoded(pairs: &[(&str, &String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn detail(page: SignedIn, Path(id): Path<String>) -> Response {
    let s = &page.state;
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return page.not_found();
    };
    let detail = match s.store.get_delivery(id).await {
        Ok(Some(d)) => d,
        Ok(None) => return page.not_found(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let d = &detail.delivery;
    let connection = s
        .connections
        .get(&d.connection_id.to_string())
        .await
        .map_or_else(|_| d.connection_id.to_string(), |c| c.name);
    let attempts: Vec<Value> = detail
        .attempt_log
        .iter()
        .map(|a| {
            json!({"attempt": a.attempt,
                   "started_at": a.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
                   "outcome": a.outcome, "error": error_text(&a.error)})
        })
        .collect();
    page.render(
        "delivery.html",
        "deliveries",
        json!({
            "d": {
                "id": d.id, "status": d.status, "action": d.action, "connection": connection,
                "group": d.group_key.group_chat_id(), "attempts": d.attempts,
                "created_at": when(d.times.created_at),
                "error": error_text(&d.last_error),
                "code": d.last_error.as_ref().and_then(|e| e.dingtalk.as_ref()).map(|x| x.code.clone()),
                "result": d.result.as_ref().map(|r| serde_json::to_string_pretty(r).unwrap_or_default()),
                "input": serde_json::to_string_pretty(&d.input).unwrap_or_default(),
            },
            "attempts": attempts,
        }),
    )
    .into_response()
}

async fn retry(page: SignedIn, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    check!(page.post(Role::Operator, &f.csrf));
    let s = &page.state;
    let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
        return page.not_found();
    };
    match s.store.retry_failed(uuid).await {
        Ok(_) => {
            s.wake_engine();
            tracing::info!(delivery_id = %uuid, "failed delivery queued again from the console");
            Redirect::to(&format!("/console/deliveries/{uuid}")).into_response()
        }
        Err(crate::store::StoreError::NotFound { .. }) => page.not_found(),
        Err(crate::store::StoreError::InvalidTransition { .. }) => {
            Redirect::to(&format!("/console/deliveries/{uuid}")).into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}
