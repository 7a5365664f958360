//! `/v1/deliveries`: the delivery log (status, attempts, last error, DingTalk result) and the
//! dead-letter list (`?status=failed`), with `POST /v1/deliveries/{id}/retry`.

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::AppQuery;
use crate::store::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, LogPage, StoreError,
};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/v1/deliveries",
            get_with(list, |op| {
                op.id("listDeliveries")
                    .summary("The delivery log, newest first (the dead letters: ?status=failed)")
                    .tag("deliveries")
            }),
        )
        .api_route(
            "/v1/deliveries/{id}",
            get_with(show, |op| {
                op.id("getDelivery")
                    .summary("A delivery with its attempts")
                    .tag("deliveries")
            }),
        )
        .api_route(
            "/v1/deliveries/{id}/retry",
            post_with(retry, |op| {
                op.id("retryDelivery")
                    .summary("Queue a failed delivery again")
                    .tag("deliveries")
                    .response::<202, Json<DeliveryView>>()
            }),
        )
}

/// The `{id}` of a delivery route.
#[derive(Deserialize, JsonSchema)]
struct DeliveryRef {
    /// The delivery's id (a UUID).
    #[schemars(with = "Uuid")]
    id: String,
}

/// A delivery as the API shows it (without the stored input, which may hold a whole file).
#[derive(Debug, Serialize, JsonSchema)]
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
        let group = d.group_key.group_chat_id().map(str::to_owned);
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
            created_at: d.times.created_at,
            updated_at: d.times.updated_at,
            attempt_log: None,
        }
    }
}

/// Filters of the delivery log; they combine with AND.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only deliveries in this status.
    status: Option<DeliveryStatus>,
    /// Only this connection's (id or name).
    connection: Option<String>,
    /// Only this group chat's (of any connection, unless `connection` is given).
    group_chat_id: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[schemars(with = "Option<DateTime<Utc>>")]
    created_after: Option<String>,
    /// Created before this time (RFC 3339).
    #[schemars(with = "Option<DateTime<Utc>>")]
    created_before: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

/// One page of the delivery log.
#[derive(Serialize, JsonSchema)]
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

/// The page of a log (deliveries, runs) that a list query's `created_after`, `created_before`,
/// `cursor` and `limit` ask for.
pub(super) fn log_page(
    created_after: Option<&str>,
    created_before: Option<&str>,
    cursor: Option<i64>,
    limit: Option<u32>,
) -> Result<LogPage, ApiError> {
    Ok(LogPage {
        created_from: created_after
            .map(|v| parse_time("created_after", v))
            .transpose()?,
        created_before: created_before
            .map(|v| parse_time("created_before", v))
            .transpose()?,
        before_seq: cursor,
        limit: limit.unwrap_or(0),
    })
}

async fn list(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<ListPage>, ApiError> {
    let status = q.status;
    let connection_id = match &q.connection {
        Some(c) => Some(s.connections.get(c).await?.id),
        None => None,
    };
    let page = log_page(
        q.created_after.as_deref(),
        q.created_before.as_deref(),
        q.cursor,
        q.limit,
    )?;
    let filter = DeliveryFilter {
        status,
        connection_id,
        group_chat_id: q.group_chat_id,
        page,
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
    Path(d): Path<DeliveryRef>,
) -> Result<Json<DeliveryView>, ApiError> {
    let id = parse_id(&d.id)?;
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
    Path(d): Path<DeliveryRef>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let id = parse_id(&d.id)?;
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
