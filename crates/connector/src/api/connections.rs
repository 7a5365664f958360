//! `/v1/connections`: create, list, read, update, delete, test.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, parse_json};
use crate::connections::{Connection, ConnectionPatch, ConnectionSecrets, NewConnection};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/connections", get(list).post(create))
        .route(
            "/v1/connections/{id_or_name}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/connections/{id_or_name}/test", post(test))
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<Connection>>, ApiError> {
    Ok(Json(s.connections.list().await?))
}

async fn create(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    let new: NewConnection = parse_json(&body)?;
    let conn = s.connections.create(new).await?;
    tracing::info!(connection = %conn.name, kind = conn.kind.as_str(), "connection created");
    Ok((StatusCode::CREATED, Json(conn)))
}

async fn show(
    State(s): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(s.connections.get(&id_or_name).await?))
}

async fn update(
    State(s): State<AppState>,
    Path(id_or_name): Path<String>,
    body: Bytes,
) -> Result<Json<Connection>, ApiError> {
    let patch: ConnectionPatch = parse_json(&body)?;
    let conn = s.connections.update(&id_or_name, patch).await?;
    s.connection_changed(conn.id);
    tracing::info!(connection = %conn.name, "connection updated");
    Ok(Json(conn))
}

async fn remove(
    State(s): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let conn = s.connections.get(&id_or_name).await?;
    s.connections.delete(&conn.id.to_string()).await?;
    s.connection_changed(conn.id);
    tracing::info!(connection = %conn.name, "connection deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct TestResult {
    ok: bool,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dingtalk: Option<super::error::DingTalkDetail>,
}

async fn test(
    State(s): State<AppState>,
    Path(id_or_name): Path<String>,
) -> Result<Json<TestResult>, ApiError> {
    let conn = s.connections.get(&id_or_name).await?;
    let result = match s.connections.secrets(&conn)? {
        ConnectionSecrets::AppRobot { app_secret } => {
            use secrecy::ExposeSecret;
            let app_key = dingtalk::AppKey::new(conn.app_key.clone().unwrap_or_default());
            let secret = dingtalk::AppSecret::new(app_secret.expose_secret());
            match s.dingtalk.get_access_token(&app_key, &secret).await {
                Ok(_) => TestResult {
                    ok: true,
                    message: format!(
                        "DingTalk accepted AppKey {app_key} and its AppSecret (an access token was issued)"
                    ),
                    dingtalk: None,
                },
                Err(e) => TestResult {
                    ok: false,
                    message: explain_test_failure(&e),
                    dingtalk: ApiError::from_dingtalk(&e).body.dingtalk,
                },
            }
        }
        ConnectionSecrets::WebhookRobot { .. } => probe_webhook(&s, &conn).await?,
    };
    Ok(Json(result))
}

fn explain_test_failure(e: &dingtalk::Error) -> String {
    use dingtalk::ErrorClass::*;
    match e.class() {
        CredentialsRejected | TokenRejected => format!(
            "DingTalk rejected the AppKey/AppSecret ({}): check the Client ID and Client Secret under Application information",
            e.code().unwrap_or("no code")
        ),
        Throttled | Transient => format!("DingTalk could not be reached or is busy: {e}"),
        InvalidInput | Rejected => format!("DingTalk refused the token request: {e}"),
    }
}

/// A webhook robot has no token endpoint. Probe it with a body that has no `msgtype`: DingTalk
/// checks the token and signature before the body (UNCONFIRMED, but the simulator and every
/// report agree), so "token is not exist" or a security error means the credentials are wrong,
/// and a complaint about the body means they were accepted — and nothing was posted.
async fn probe_webhook(s: &AppState, conn: &Connection) -> Result<TestResult, ApiError> {
    let target = s.target_for(conn)?;
    let crate::actions::Target::Webhook(robot) = target else {
        return Err(ApiError::internal(
            "webhook connection without a webhook target",
        ));
    };
    Ok(match robot.probe().await {
        Ok(()) => TestResult {
            ok: true,
            message: "DingTalk accepted the webhook token (and signature); no message was sent"
                .into(),
            dingtalk: None,
        },
        Err(e) => TestResult {
            ok: false,
            message: match e.class() {
                dingtalk::ErrorClass::CredentialsRejected => format!(
                    "DingTalk does not know this webhook access_token ({})",
                    e.code().unwrap_or("no code")
                ),
                _ => format!("DingTalk refused the probe: {e}"),
            },
            dingtalk: ApiError::from_dingtalk(&e).body.dingtalk,
        },
    })
}
