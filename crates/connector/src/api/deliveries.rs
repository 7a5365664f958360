//! `/v1/deliveries`: the delivery log (status, attempts, last error, DingTalk result) and the
//! dead-letter list (`?status=failed`), with `POST /v1/deliveries/{id}/retry`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use crate::store::{Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/{id}", get(show))
        .route("/v1/deliveries/{id}/retry", post(retry))
}

/// The ordering key of a delivery: one per connection and group chat; actions without a group
/// (1:1 sends, webhook robots, whose group is fixed) share one per connection; uploads,
/// queries and recalls need no order and get their own.
pub fn group_key(connection_id: Uuid, group: Option<&str>, ordered: bool, id: Uuid) -> String {
    match (group, ordered) {
        (Some(g), true) => format!("{connection_id}/{g}"),
        (None, true) => format!("{connection_id}/-"),
        (_, false) => format!("{connection_id}/unordered/{id}"),
    }
}

/// A delivery as the API shows it (without the stored input, which may hold a whole file).
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: Uuid,
    pub status: DeliveryStatus,
    pub mode: crate::store::DeliveryMode,
    pub connection_id: Uuid,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_chat_id: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<DeliveryAttempt>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let group = d
            .group_key
            .split_once('/')
            .map(|(_, g)| g)
            .filter(|g| *g != "-" && !g.starts_with("unordered/"))
            .map(str::to_owned);
        DeliveryView {
            id: d.id,
            status: d.status,
            mode: d.mode,
            connection_id: d.connection_id,
            action: d.action,
            group_chat_id: group,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            result: d.result,
            idempotency_key: d.idempotency_key,
            created_at: d.created_at,
            updated_at: d.updated_at,
            attempt_log: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    connection: Option<String>,
    group_chat_id: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    limit: Option<u32>,
    cursor: Option<i64>,
}

#[derive(Serialize)]
struct ListPage {
    deliveries: Vec<DeliveryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<i64>,
}

fn parse_time(field: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::invalid(field, format!("is not an RFC 3339 time: {e}")))
}

async fn list(
    State(s): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let status = q
        .status
        .as_deref()
        .map(|v| {
            DeliveryStatus::parse(v).map_err(|_| {
                ApiError::invalid(
                    "status",
                    "must be one of queued, in_flight, delivered, retrying, failed",
                )
            })
        })
        .transpose()?;
    let connection_id = match &q.connection {
        Some(c) => Some(s.connections.get(c).await?.id),
        None => None,
    };
    let group_key = match (&q.group_chat_id, connection_id) {
        (Some(g), Some(c)) => Some(format!("{c}/{g}")),
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "connection",
                "is required with group_chat_id (order is kept per connection and group)",
            ));
        }
        _ => None,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 1000"));
    }
    let filter = DeliveryFilter {
        status,
        connection_id,
        group_key,
        created_from: q
            .created_after
            .as_deref()
            .map(|v| parse_time("created_after", v))
            .transpose()?,
        created_before: q
            .created_before
            .as_deref()
            .map(|v| parse_time("created_before", v))
            .transpose()?,
        before_seq: q.cursor,
        limit,
    };
    let page = s
        .store
        .list_deliveries(&filter)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(ListPage {
        deliveries: page
            .deliveries
            .into_iter()
            .map(DeliveryView::from)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::invalid("id", "is not a delivery id (UUID)"))
}

async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let id = parse_id(&id)?;
    let detail = s
        .store
        .get_delivery(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no delivery {id}")))?;
    let mut view = DeliveryView::from(detail.delivery);
    view.attempt_log = Some(detail.attempt_log);
    Ok(Json(view))
}

async fn retry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let id = parse_id(&id)?;
    match s.store.retry_failed(id).await {
        Ok(d) => {
            tracing::info!(delivery_id = %id, "failed delivery queued again");
            s.wake_engine();
            Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(d))))
        }
        Err(StoreError::NotFound { .. }) => Err(ApiError::not_found(format!("no delivery {id}"))),
        Err(StoreError::InvalidTransition { .. }) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("delivery {id} is not failed; only failed deliveries can be retried"),
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}
