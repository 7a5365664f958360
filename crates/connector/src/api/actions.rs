//! `/v1/actions` (the catalog) and `POST /v1/connections/{id_or_name}/actions/{action}`.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Map, Value};
use std::time::Instant;
use uuid::Uuid;

use super::AppState;
use super::deliveries::group_key;
use super::error::{ApiError, ErrorBody, ErrorCode, parse_json};
use crate::actions::{self, ActionDef, ExecuteError, InputError};
use crate::delivery::{
    Acked, Attempt, Limited, LimitedRunError, RateScope, StepError, WithinLimits,
    execute_within_limits,
};
use crate::store::{
    AttemptOutcome, Delivery, DeliveryMode, DeliveryStatus, Inserted, Lease, NewDelivery,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/actions", get(list))
        .route("/v1/actions/{action}", get(show))
        .route("/v1/connections/{id_or_name}/actions/{action}", post(run))
}

async fn list() -> Json<&'static [ActionDef]> {
    Json(actions::catalog())
}

async fn show(Path(action): Path<String>) -> Result<Json<&'static ActionDef>, ApiError> {
    actions::spec(&action)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no action `{action}`; see GET /v1/actions")))
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ErrorBody::from_input(&e).into()
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
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "the body is over 32 MB; upload large files with multipart",
                    )
                } else {
                    ApiError::invalid("body", e.body_text())
                }
            })?;
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

/// What the client asked for in headers.
struct RunOptions {
    respond_async: bool,
    idempotency_key: Option<String>,
}

fn run_options(headers: &HeaderMap) -> Result<RunOptions, ApiError> {
    // RFC 7240: `Prefer: respond-async` (possibly among other preferences).
    let respond_async = headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    });
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?
                .trim();
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::invalid(
                    "Idempotency-Key",
                    "must be 1 to 255 characters",
                ));
            }
            Some(key.to_owned())
        }
    };
    Ok(RunOptions {
        respond_async,
        idempotency_key,
    })
}

/// The same key with the same body returns the first result; with another body, 422.
fn request_hash(action: &str, input: &Value) -> String {
    use sha2::{Digest, Sha256};
    // serde_json's map is ordered, so equal inputs serialize identically.
    let mut h = Sha256::new();
    h.update(action.as_bytes());
    h.update(b"\n");
    h.update(input.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Answer a repeated request from the stored delivery: its output, or its error record as the
/// first answer gave it (or as the queue finished it).
fn replay(existing: &Delivery, hash: &str, opts: &RunOptions) -> Result<Response, ApiError> {
    if existing.request_hash.as_deref() != Some(hash) {
        return Err(ErrorBody::new(
            ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was used with a different action or input",
        )
        .with_field("Idempotency-Key")
        .into());
    }
    if opts.respond_async || existing.mode == DeliveryMode::Async {
        return Ok(accepted(existing));
    }
    match (existing.status, &existing.last_error) {
        (DeliveryStatus::Delivered, _) => {
            Ok(Json(existing.result.clone().unwrap_or(Value::Null)).into_response())
        }
        (DeliveryStatus::Failed, Some(error)) => Err(error.clone().into()),
        (DeliveryStatus::Failed, None) => Err(ApiError::internal(format!(
            "failed delivery {} has no error record",
            existing.id
        ))),
        _ => Err(ApiError::new(
            ErrorCode::InProgress,
            format!(
                "the first request with this Idempotency-Key (delivery {}) is still running",
                existing.id
            ),
        )),
    }
}

fn accepted(d: &Delivery) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "delivery_id": d.id, "status": d.status })),
    )
        .into_response()
}

async fn run(
    State(s): State<AppState>,
    Path((id_or_name, action)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    let opts = run_options(&headers)?;
    let spec = actions::spec(&action)
        .ok_or_else(|| ApiError::not_found(format!("no action `{action}`; see GET /v1/actions")))?;
    let conn = s.connection(&id_or_name).await?;
    if spec.connection_kind != conn.kind {
        return Err(ApiError::invalid(
            "action",
            format!(
                "`{action}` is for {} connections; `{}` is a {} connection",
                spec.connection_kind.as_str(),
                conn.name,
                conn.kind.as_str()
            ),
        ));
    }
    let input = read_input(&s, req).await?;
    let hash = request_hash(&action, &input);
    if let Some(key) = &opts.idempotency_key
        && let Some(existing) = s
            .store
            .find_by_idempotency_key(conn.id, key)
            .await
            .map_err(ApiError::internal)?
    {
        return replay(&existing, &hash, &opts);
    }
    let validated = match actions::validate(&action, input) {
        Ok(v) => v,
        Err(e) => {
            metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => "invalid")
                .increment(1);
            return Err(e.into());
        }
    };
    check_keywords(&validated, &conn.keywords)?;
    let id = Uuid::new_v4();
    let ordered = validated.parts() > 0;
    let new = NewDelivery {
        id,
        connection_id: conn.id,
        action: action.clone(),
        group_key: group_key(conn.id, validated.group_chat_id(), ordered, id),
        input: serde_json::to_value(&validated).map_err(ApiError::internal)?,
        mode: if opts.respond_async {
            DeliveryMode::Async
        } else {
            DeliveryMode::Sync
        },
        idempotency_key: opts.idempotency_key.clone(),
        request_hash: Some(hash.clone()),
        // A sync request holds its group while it runs, so queued ones of the group wait.
        lease: (!opts.respond_async).then(|| Lease {
            owner: s.instance_id.clone(),
            duration: SYNC_LEASE,
        }),
    };
    if opts.respond_async {
        let inserted = s.acceptor.accept(new).await.map_err(ApiError::internal)?;
        if !inserted.is_new() {
            return replay(inserted.delivery(), &hash, &opts);
        }
        metrics::counter!("dtc_deliveries_accepted_total", "action" => action.clone()).increment(1);
        tracing::info!(connection = %conn.name, action = %action, delivery_id = %id, "delivery queued");
        s.wake_engine();
        return Ok(accepted(inserted.delivery()));
    }
    // With an Idempotency-Key the request is written first (it holds its group and a repeat
    // finds it); without one, it runs straight away and is logged behind the answer.
    let target = s.target_for(&conn)?;
    let keyed = match opts.idempotency_key {
        None => None,
        Some(_) => match s
            .acceptor
            .accept(new.clone())
            .await
            .map_err(ApiError::internal)?
        {
            Inserted::New(d) => Some(d),
            Inserted::Existing(d) => return replay(&d, &hash, &opts),
        },
    };
    // The send runs in its own task: a client that disconnects must not cancel it half-way
    // (parts sent, nothing recorded, a keyed delivery left in flight).
    let run = tokio::spawn(finish_sync(s.clone(), conn, validated, target, new, keyed));
    run.await.map_err(ApiError::internal)?
}

/// Run a sync action and record its outcome: a keyed request through the one ack path (a
/// transient failure is handed to the queue, which keeps trying), the others in the log behind
/// the answer.
async fn finish_sync(
    s: AppState,
    conn: crate::connections::Connection,
    validated: actions::ValidatedAction,
    target: actions::Target,
    new: NewDelivery,
    keyed: Option<Delivery>,
) -> Result<Response, ApiError> {
    let (id, action) = (new.id, new.action.clone());
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let mut result = run_sync(&s, &conn, &validated, &target, id).await;
    metrics::histogram!("dtc_action_duration_seconds", "action" => action.clone())
        .record(started.elapsed().as_secs_f64());
    if result.is_ok() {
        metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => "delivered")
            .increment(1);
        tracing::info!(connection = %conn.name, action = %action, delivery_id = %id, "action done");
    }
    let attempt = match &result {
        Ok(output) => Attempt::Delivered(output.clone()),
        Err(api) if api.body.retryable => Attempt::Retry {
            error: (*api.body).clone(),
            after: api.retry_after,
            outcome: AttemptOutcome::TransientError,
        },
        Err(api) => Attempt::Fail((*api.body).clone()),
    };
    let Some(delivery) = keyed else {
        s.recorder
            .record(attempt.into_log_row(new, started_at, chrono::Utc::now()))
            .await;
        return result.map(|out| Json(out).into_response());
    };
    let acked = s
        .acker
        .ack(&delivery, &s.instance_id, started_at, attempt)
        .await;
    if let (Acked::Retrying { .. }, Err(api)) = (acked, &mut result) {
        s.wake_engine();
        api.body.message = format!(
            "{}; queued as delivery {id}, which dtc keeps retrying: repeat with the same Idempotency-Key for its outcome",
            api.body.message
        );
    }
    result.map(|out| Json(out).into_response())
}

/// A webhook robot with keywords drops every message without one (errcode 310000): check each
/// part before anything is sent, the way DingTalk does — in the message's text, not its links.
fn check_keywords(
    validated: &actions::ValidatedAction,
    keywords: &[String],
) -> Result<(), ApiError> {
    if keywords.is_empty() {
        return Ok(());
    }
    fn texts(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if !k.to_ascii_lowercase().ends_with("url") {
                        texts(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| texts(v, out)),
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            _ => {}
        }
    }
    let parts = validated.steps().iter().filter_map(|step| match step {
        actions::Step::Webhook { message, mentions } => Some(message.to_message(mentions)),
        _ => None,
    });
    for (i, msg) in parts.enumerate() {
        let body: Value = msg
            .to_body()
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or(Value::Null);
        let mut text = String::new();
        texts(&body[msg.msgtype()], &mut text);
        if !keywords.iter().any(|k| text.contains(k.as_str())) {
            let which = if validated.parts() > 1 {
                format!(" (part {} of {})", i + 1, validated.parts())
            } else {
                String::new()
            };
            return Err(ApiError::invalid(
                "content",
                format!(
                    "contains none of the webhook robot's keywords ({}){which}; DingTalk would drop it",
                    keywords.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// How long a sync request may hold its group before the queue takes it back.
const SYNC_LEASE: std::time::Duration = std::time::Duration::from_secs(300);

/// Run the steps one by one, retrying a step (never the steps before it) on transient
/// failures, so a split message never repeats its first parts.
async fn run_sync(
    s: &AppState,
    conn: &crate::connections::Connection,
    validated: &actions::ValidatedAction,
    target: &actions::Target,
    id: Uuid,
) -> Result<Value, ApiError> {
    let action = validated.action().to_owned();
    let policy = dingtalk::RetryPolicy {
        max_attempts: s.settings.sync_attempts,
        ..dingtalk::RetryPolicy::default()
    };
    let scope = RateScope::of(&s.connections, conn)?;
    // A sync request waits for its turn under DingTalk's limits at most this long; past it
    // the answer is 429 with Retry-After rather than a request DingTalk would throttle.
    let deadline = tokio::time::Instant::now() + s.settings.sync_rate_wait();
    let LimitedRunError {
        error,
        completed_parts,
        key,
    } = match execute_within_limits(
        validated,
        target,
        WithinLimits {
            scope: &scope,
            limiter: s.limiter.as_ref(),
            http: &s.http,
            deadline: Some(deadline),
            retry: &policy,
            request_id: &id.to_string(),
        },
    )
    .await
    {
        Ok(output) => return Ok(output),
        Err(e) => e,
    };
    let earlier = if completed_parts > 0 {
        format!(" ({completed_parts} earlier part(s) were delivered)")
    } else {
        String::new()
    };
    let count = |outcome: &'static str| {
        metrics::counter!("dtc_sends_total", "action" => action.clone(), "outcome" => outcome)
            .increment(1);
    };
    Err(match error {
        StepError::Limited(Limited::RetryAfter(after)) => {
            count("rate_limited");
            let what = if key.name.starts_with("webhook:") {
                "webhook robot"
            } else {
                "app and API"
            };
            let mut e = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "DingTalk allows {} calls per {:?} for this {what}; the next slot is in {:.1} s{earlier}",
                    key.limit,
                    key.period,
                    after.as_secs_f64(),
                ),
            );
            e.retry_after = Some(after.max(std::time::Duration::from_secs(1)));
            e
        }
        StepError::Limited(Limited::Unavailable(err)) => {
            tracing::error!(error = %err, "the shared rate limiter is unavailable");
            ApiError::new(
                ErrorCode::RateLimiterUnavailable,
                "the shared rate limiter's database is unavailable; nothing more was sent",
            )
        }
        StepError::Execute(ExecuteError::Input(e)) => {
            count("invalid");
            e.into()
        }
        StepError::Execute(ExecuteError::DingTalk { error, .. }) => {
            count(if error.is_retryable() {
                "failed"
            } else {
                "rejected"
            });
            metrics::counter!("dtc_dingtalk_errors_total", "code" => error.code().unwrap_or("none").to_owned())
                .increment(1);
            tracing::warn!(connection = %conn.name, action = %action, code = error.code(), error = %error, completed_parts, "action failed");
            let mut api = ApiError::from_dingtalk(&error);
            api.body.message.push_str(&earlier);
            api
        }
    })
}
