//! Conversations: the groups (and 1:1 chats) each Stream-mode robot has heard from, with their
//! ids ready to copy — the `group_chat_id` DingTalk shows nowhere in its own interface.

use axum::Router;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{SignedIn, when};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::connections::ConnectionKind;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/console/conversations", get(page))
}

#[derive(Deserialize, Default)]
struct ConversationQuery {
    #[serde(default)]
    connection: String,
}

async fn page(c: SignedIn, Query(q): Query<ConversationQuery>) -> Response {
    let streaming: Vec<crate::connections::Connection> = match c.state.connections.list().await {
        Ok(list) => list
            .into_iter()
            .filter(|x| x.stream && x.kind == ConnectionKind::AppRobot)
            .collect(),
        Err(e) => return c.failed(e),
    };
    let chosen = streaming
        .iter()
        .find(|x| x.name == q.connection)
        .or(streaming.first());
    let rows: Vec<Value> = match chosen {
        Some(conn) => match crate::chat::conversations(&c.state, conn).await {
            Ok(list) => list
                .into_iter()
                .map(|r| {
                    json!({"id": r.conversation.id, "kind": r.conversation.kind(), "title": r.conversation.title,
                           "messages": r.messages, "last_seen": when(r.last_seen_at)})
                })
                .collect(),
            Err(e) => return c.failed(ApiError::internal(e)),
        },
        None => Vec::new(),
    };
    let names: Vec<Value> = streaming.iter().map(|x| json!({"name": x.name})).collect();
    c.render(
        "conversations.html",
        "conversations",
        json!({"connections": names, "connection": chosen.map(|x| x.name.clone()), "conversations": rows}),
    )
    .into_response()
}
