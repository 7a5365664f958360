//! `/v1/connections`: create, list, read, update, delete, test, and the conversations a
//! Stream-mode robot has heard from.

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use aide::transform::TransformOperation;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::AppJson;
use crate::connections::{Connection, ConnectionPatch, NewConnection};
use crate::probe::TestResult;

/// The `{id_or_name}` of a connection route.
#[derive(Deserialize, JsonSchema)]
pub struct ConnectionRef {
    /// The connection's id (a UUID) or name.
    pub id_or_name: String,
}

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/v1/connections",
            get_with(list, |op| doc(op, "listConnections", "List connections"))
                .post_with(create, |op| {
                    doc(op, "createConnection", "Create a connection (the seed's New Connection dialog)")
                        .description("409 if the name is taken. Secrets are write-only: sealed at rest, never returned.")
                        .response::<201, Json<Connection>>()
                }),
        )
        .api_route(
            "/v1/connections/{id_or_name}",
            get_with(show, |op| doc(op, "getConnection", "Read a connection"))
                .patch_with(update, |op| {
                    doc(op, "updateConnection", "Change a connection")
                        .description("Absent fields stay as they are; secrets are replaced only when given.")
                })
                .delete_with(remove, |op| {
                    doc(op, "deleteConnection", "Delete a connection").response::<204, ()>()
                }),
        )
        .api_route(
            "/v1/connections/{id_or_name}/test",
            post_with(test, |op| {
                doc(op, "testConnection", "Test a connection's credentials with DingTalk")
                    .description("App robots: fetch an access token. Webhook robots: a probe that posts nothing.")
            }),
        )
        .api_route(
            "/v1/connections/{id_or_name}/conversations",
            get_with(conversations, |op| {
                doc(op, "listConversations", "The conversations the robot has heard from")
                    .description("Stream mode only: every group (and 1:1 chat) a message came from, most recent first. A group's `conversation_id` is its openConversationId, the `group_chat_id` of the send actions.")
            }),
        )
}

/// A conversation a Stream-mode robot has heard from.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct ConversationView {
    /// A group's openConversationId (the actions' `group_chat_id`), or a 1:1 chat's id.
    pub conversation_id: String,
    /// `group` or `single` (1:1).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Messages received from it.
    pub messages: i64,
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
}

async fn conversations(
    State(s): State<AppState>,
    Path(c): Path<ConnectionRef>,
) -> Result<Json<Vec<ConversationView>>, ApiError> {
    let conn = s.connections.get(&c.id_or_name).await?;
    let list = crate::chat::conversations(&s, &conn)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        list.into_iter()
            .map(|r| ConversationView {
                kind: r.conversation.kind().to_owned(),
                conversation_id: r.conversation.id,
                title: r.conversation.title,
                messages: r.messages,
                last_seen_at: r.last_seen_at,
            })
            .collect(),
    ))
}

fn doc<'a>(op: TransformOperation<'a>, id: &str, summary: &str) -> TransformOperation<'a> {
    op.id(id).summary(summary).tag("connections")
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<Connection>>, ApiError> {
    Ok(Json(s.connections.list().await?))
}

async fn create(
    State(s): State<AppState>,
    AppJson(new): AppJson<NewConnection>,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    let conn = s.connections.create(new).await?;
    tracing::info!(connection = %conn.name, kind = conn.kind.as_str(), "connection created");
    Ok((StatusCode::CREATED, Json(conn)))
}

async fn show(
    State(s): State<AppState>,
    Path(c): Path<ConnectionRef>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(s.connections.get(&c.id_or_name).await?))
}

async fn update(
    State(s): State<AppState>,
    Path(c): Path<ConnectionRef>,
    AppJson(patch): AppJson<ConnectionPatch>,
) -> Result<Json<Connection>, ApiError> {
    let conn = s.connections.update(&c.id_or_name, patch).await?;
    s.connection_changed(conn.id);
    tracing::info!(connection = %conn.name, "connection updated");
    Ok(Json(conn))
}

async fn remove(
    State(s): State<AppState>,
    Path(c): Path<ConnectionRef>,
) -> Result<StatusCode, ApiError> {
    let conn = s.connections.get(&c.id_or_name).await?;
    s.connections.delete(&conn.id.to_string()).await?;
    s.connection_changed(conn.id);
    tracing::info!(connection = %conn.name, "connection deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn test(
    State(s): State<AppState>,
    Path(c): Path<ConnectionRef>,
) -> Result<Json<TestResult>, ApiError> {
    let conn = s.connections.get(&c.id_or_name).await?;
    Ok(Json(s.test_connection(&conn).await?))
}
