//! `/v1/actions` (the catalog) and `POST /v1/connections/{id_or_name}/actions/{action}`.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Map, Value};
use std::time::Instant;

use super::error::{ApiError, parse_json};
use super::{AppState, kind_name};
use crate::actions::{self, ActionSpec, ExecuteError, InputError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/actions", get(list))
        .route("/v1/actions/{action}", get(show))
        .route("/v1/connections/{id_or_name}/actions/{action}", post(run))
}

async fn list() -> Json<Vec<ActionSpec>> {
    Json(actions::catalog())
}

async fn show(Path(action): Path<String>) -> Result<Json<ActionSpec>, ApiError> {
    actions::spec(&action)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no action `{action}`; see GET /v1/actions")))
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Invalid { field, reason } => ApiError::invalid(field, reason),
            InputError::UnknownAction(name) => {
                ApiError::not_found(format!("no action `{name}`; see GET /v1/actions"))
            }
        }
    }
}

/// Read the action input: a JSON body, or `multipart/form-data` whose `file` part becomes
/// `file: {name, content_base64}`, whose optional `input` part is the JSON input, and whose
/// other text parts are string fields.
async fn read_input(state: &AppState, req: Request) -> Result<Value, ApiError> {
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if !is_multipart {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "body",
                "is empty; send the action input as JSON",
            ));
        }
        return parse_json(&bytes);
    }
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let mut input = Map::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::invalid("body", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(file_name) = field.file_name().map(str::to_owned) {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::invalid(name.clone(), e.body_text()))?;
            input.insert(
                name,
                serde_json::json!({
                    "name": file_name,
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
                }),
            );
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::invalid(name.clone(), e.body_text()))?;
            if name == "input" {
                let Value::Object(obj) = parse_json::<Value>(text.as_bytes())? else {
                    return Err(ApiError::invalid("input", "must be a JSON object"));
                };
                input.extend(obj);
            } else {
                input.insert(name, Value::String(text));
            }
        }
    }
    Ok(Value::Object(input))
}

async fn run(
    State(s): State<AppState>,
    Path((id_or_name, action)): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let spec = actions::spec(&action)
        .ok_or_else(|| ApiError::not_found(format!("no action `{action}`; see GET /v1/actions")))?;
    let conn = s.connections.get(&id_or_name).await?;
    if spec.connection_kind != conn.kind {
        return Err(ApiError::invalid(
            "action",
            format!(
                "`{action}` is for {} connections; `{}` is a {} connection",
                kind_name(spec.connection_kind),
                conn.name,
                kind_name(conn.kind)
            ),
        ));
    }
    let input = read_input(&s, req).await?;
    let validated = match actions::validate(&action, input) {
        Ok(v) => v,
        Err(e) => {
            metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => "invalid")
                .increment(1);
            return Err(e.into());
        }
    };
    let target = s.target_for(&conn)?;
    let started = Instant::now();
    let policy = dingtalk::RetryPolicy {
        max_attempts: s.settings.sync_attempts,
        ..dingtalk::RetryPolicy::default()
    };
    let mut attempt = 1;
    let result = loop {
        match actions::execute(&validated, &target, &s.http).await {
            // Only a failure before anything was delivered is retried as a whole, so a split
            // message never repeats its first parts.
            Err(ExecuteError::DingTalk {
                error,
                completed_parts: 0,
            }) if error.is_retryable() && attempt < policy.max_attempts => {
                let delay = policy.delay(attempt, error.retry_after());
                tracing::info!(connection = %conn.name, action = %action, attempt, error = %error, "retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    metrics::histogram!("dtc_action_duration_seconds", "action" => action.clone())
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(output) => {
            metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => "delivered")
                .increment(1);
            tracing::info!(connection = %conn.name, action = %action, "action done");
            Ok(Json(output))
        }
        Err(ExecuteError::Input(e)) => {
            metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => "invalid")
                .increment(1);
            Err(e.into())
        }
        Err(ExecuteError::DingTalk {
            error,
            completed_parts,
        }) => {
            let outcome = if error.is_retryable() {
                "failed"
            } else {
                "rejected"
            };
            metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => outcome)
                .increment(1);
            metrics::counter!("dtc_dingtalk_errors_total", "code" => error.code().unwrap_or("none").to_owned())
                .increment(1);
            tracing::warn!(connection = %conn.name, action = %action, code = error.code(), error = %error, completed_parts, "action failed");
            let mut api = ApiError::from_dingtalk(&error);
            if completed_parts > 0 {
                api.body.message = format!(
                    "{} ({completed_parts} earlier part(s) were delivered)",
                    api.body.message
                );
            }
            Err(api)
        }
    }
}
