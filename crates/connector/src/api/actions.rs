//! `/v1/actions` (the catalog) and `POST /v1/connections/{id_or_name}/actions/{action}`: one
//! documented operation per action, its request and response schemas from the catalog.

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Instant;
use uuid::Uuid;

use super::AppState;
use super::connections::ConnectionRef;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{is_json, parse_value, read_body, require_json};
use crate::actions::{self, ActionDef, ExecuteError, InputError};
use crate::delivery::{
    Acked, Attempt, Limited, LimitedRunError, RateScope, StepError, WithinLimits,
    execute_within_limits,
};
use crate::server::BodyDeadline;
use crate::store::{
    AttemptOutcome, Delivery, DeliveryMode, DeliveryStatus, Inserted, JsonText, Lease, NewDelivery,
};

pub fn routes() -> ApiRouter<AppState> {
    let mut router = ApiRouter::new()
        .api_route(
            "/v1/actions",
            get_with(list, |op| {
                op.id("listActions")
                    .summary("The action catalog, with each action's JSON Schemas")
                    .tag("actions")
            }),
        )
        .api_route(
            "/v1/actions/{action}",
            get_with(show, |op| {
                op.id("getAction")
                    .summary("One action of the catalog")
                    .tag("actions")
            }),
        )
        .api_route(
            "/v1/connections/{id_or_name}/actions/{action}",
            post_with(run_named, |op| {
                op.id("runAction")
                    .summary("An action by a name the catalog does not have: 404")
                    .description("Each action of the catalog has its own operation; any other name is not found.")
                    .tag("actions")
                    .with(super::openapi::other_action)
            }),
        );
    for def in actions::catalog() {
        let path = format!("/v1/connections/{{id_or_name}}/actions/{}", def.name);
        router = router.api_route(
            &path,
            post_with(
                move |s: State<AppState>, c: Path<ConnectionRef>, req: Request| {
                    run(s, c.0.id_or_name, def, req)
                },
                move |op| super::openapi::action_operation(op, def),
            ),
        );
    }
    router
}

/// The `{action}` of a catalog route.
#[derive(Deserialize, JsonSchema)]
pub struct ActionRef {
    /// The action's name, e.g. `send_text`.
    pub action: String,
}

/// `{id_or_name}` and `{action}` of the generic action route.
#[derive(Deserialize, JsonSchema)]
pub struct RunRef {
    pub id_or_name: String,
    pub action: String,
}

async fn list() -> Json<&'static [ActionDef]> {
    Json(actions::catalog())
}

fn unknown_action(name: &str) -> ApiError {
    ApiError::not_found(format!("no action `{name}`; see GET /v1/actions"))
}

async fn show(Path(a): Path<ActionRef>) -> Result<Json<&'static ActionDef>, ApiError> {
    actions::spec(&a.action)
        .map(Json)
        .ok_or_else(|| unknown_action(&a.action))
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ErrorBody::from_input(&e).into()
    }
}

/// An action's input, and whether it is large enough that working on it (parsing, hashing,
/// decoding a file's base64) belongs on a blocking thread.
struct Input {
    value: Value,
    large: bool,
}

/// Inputs past this many bytes are worked on off the async threads: there, a 15 MB file held
/// up every other request of a one-thread server for 170 ms; 40 ms since (BENCHMARKS.md).
const LARGE_INPUT: usize = 256 * 1024;

/// `work` on a blocking thread if `large`, else right here (a thread hand-off costs more than a
/// small input's work).
async fn off_runtime<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if large {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ApiError::internal)
    } else {
        Ok(work())
    }
}

/// Read the action input: a JSON body, or `multipart/form-data` whose `file` part becomes
/// `file: {name, content_base64}`, whose optional `input` part is the JSON input, and whose
/// other text parts are string fields.
async fn read_input(state: &AppState, req: Request, limit: usize) -> Result<Input, ApiError> {
    super::extract::refuse_declared_size(req.headers(), limit)?;
    let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
    let read = read_limited(state, req, limit);
    match deadline {
        Some(at) => tokio::time::timeout_at(at, read)
            .await
            .map_err(|_| super::extract::body_timeout())?,
        None => read.await,
    }
}

async fn read_limited(state: &AppState, req: Request, limit: usize) -> Result<Input, ApiError> {
    let is_multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        if !is_json(req.headers()) {
            return Err(require_json(req.headers())
                .err()
                .unwrap_or_else(|| {
                    ApiError::new(
                        ErrorCode::UnsupportedMediaType,
                        "send JSON or multipart/form-data",
                    )
                })
                .with_field("Content-Type"));
        }
        let bytes = read_body(req, limit).await?;
        let large = bytes.len() > LARGE_INPUT;
        let value = off_runtime(large, move || parse_value(&bytes)).await??;
        return Ok(Input { value, large });
    }
    // Boxed: a form's future is large, and unboxed every JSON request would carry (and copy)
    // room for it.
    Box::pin(read_form(state, req, limit)).await
}

/// A `multipart/form-data` body, read as [`read_input`] describes.
async fn read_form(state: &AppState, req: Request, limit: usize) -> Result<Input, ApiError> {
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    let bad_form = |name: &str, e: &axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            super::extract::too_large(limit)
        } else {
            ApiError::invalid(name.to_owned(), "is not a readable multipart part")
        }
    };
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|_| ApiError::invalid("body", "is not a readable multipart body"))?;
    let mut input = Map::new();
    let mut large = false;
    let add = |input: &mut Map<String, Value>, name: String, value: Value| {
        if input.contains_key(&name) {
            return Err(ApiError::invalid(
                name,
                "is given more than once; give each field once",
            ));
        }
        input.insert(name, value);
        Ok(())
    };
    let no_nul = |name: &str, text: &str| {
        if name.contains('\0') || text.contains('\0') {
            return Err(ApiError::invalid(
                name.replace('\0', ""),
                "must not contain the NUL character (U+0000)",
            ));
        }
        Ok(())
    };
    while let Some(field) = form.next_field().await.map_err(|e| bad_form("body", &e))? {
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(file_name) = field.file_name().map(str::to_owned) {
            no_nul(&name, &file_name)?;
            let bytes = field.bytes().await.map_err(|e| bad_form(&name, &e))?;
            let big = bytes.len() > LARGE_INPUT;
            large |= big;
            let content = off_runtime(big, move || {
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            })
            .await?;
            let file = serde_json::json!({
                "name": file_name,
                "content_base64": content,
            });
            add(&mut input, name, file)?;
        } else {
            let text = field.text().await.map_err(|e| bad_form(&name, &e))?;
            large |= text.len() > LARGE_INPUT;
            no_nul(&name, &text)?;
            if name == "input" {
                let Value::Object(obj) = parse_value(text.as_bytes())? else {
                    return Err(ApiError::invalid("input", "must be a JSON object"));
                };
                for (k, v) in obj {
                    add(&mut input, k, v)?;
                }
            } else {
                add(&mut input, name, Value::String(text))?;
            }
        }
    }
    Ok(Input {
        value: Value::Object(input),
        large,
    })
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
pub(crate) fn request_hash(action: &str, input: &Value) -> String {
    use sha2::{Digest, Sha256};
    // serde_json's map is ordered, so equal inputs serialize identically.
    let mut h = Sha256::new();
    h.update(action.as_bytes());
    h.update(b"\n");
    h.update(input.to_string().as_bytes());
    h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Answer a repeated request from the stored delivery: its output, or its error record as the
/// first answer gave it (or as the queue finished it).
fn replay(
    existing: &Delivery,
    hash: Option<&str>,
    opts: &RunOptions,
) -> Result<Response, ApiError> {
    if existing.request_hash.as_deref() != hash {
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

/// Queues `input` for `def` on `conn` as `Prefer: respond-async` does — checked against the
/// action's schema and plan and the connection's keywords first — for the console's Send page.
pub(crate) async fn queue(
    s: &AppState,
    conn: &crate::connections::Connection,
    def: &'static ActionDef,
    input: Value,
) -> Result<Delivery, ApiError> {
    if def.connection_kind != conn.kind {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "`{}` is for {} connections; `{}` is a {} connection",
                def.name,
                def.connection_kind.as_str(),
                conn.name,
                conn.kind.as_str()
            ),
        )
        .with_field("action"));
    }
    // Off the async threads whatever its size: the page's sends are few, and may carry files.
    let (hash, validated) = off_runtime(true, move || {
        let hash = request_hash(def.name, &input);
        def.validate(input).map(|v| (hash, v))
    })
    .await??;
    validated.check_keywords(&conn.keywords)?;
    let new = NewDelivery {
        request_hash: Some(hash),
        ..validated.delivery(conn.id).map_err(ApiError::internal)?
    };
    let id = new.id;
    let inserted = s.acceptor.accept(new).await.map_err(ApiError::internal)?;
    metrics::counter!("dtc_deliveries_accepted_total", "action" => def.name).increment(1);
    tracing::info!(connection = %conn.name, action = def.name, delivery_id = %id, "delivery queued from the console");
    s.wake_engine();
    Ok(inserted.delivery().clone())
}

fn accepted(d: &Delivery) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "delivery_id": d.id, "status": d.status })),
    )
        .into_response()
}

/// The generic route: an unknown action is 404; a known one runs as its own route would.
async fn run_named(
    s: State<AppState>,
    Path(r): Path<RunRef>,
    req: Request,
) -> Result<Response, ApiError> {
    let def = actions::spec(&r.action).ok_or_else(|| unknown_action(&r.action))?;
    run(s, r.id_or_name, def, req).await
}

async fn run(
    State(s): State<AppState>,
    id_or_name: String,
    def: &'static ActionDef,
    req: Request,
) -> Result<Response, ApiError> {
    // A `&'static str`: a metric label made from it is not allocated per request.
    let action = def.name;
    // Read off the request (a `HeaderMap` extractor would copy every header).
    let opts = run_options(req.headers())?;
    let conn = s.connection(&id_or_name).await?;
    if def.connection_kind != conn.kind {
        // A valid request, but not for this connection.
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "`{action}` is for {} connections; `{}` is a {} connection",
                def.connection_kind.as_str(),
                conn.name,
                conn.kind.as_str()
            ),
        )
        .with_field("action"));
    }
    let Input {
        value: input,
        large,
    } = read_input(&s, req, def.max_body_bytes).await?;
    // Only a repeat (same Idempotency-Key) or a queued delivery is ever compared with it.
    let (input, hash) = if opts.idempotency_key.is_some() || opts.respond_async {
        off_runtime(large, move || {
            let hash = request_hash(action, &input);
            (input, Some(hash))
        })
        .await?
    } else {
        (input, None)
    };
    if let Some(key) = &opts.idempotency_key
        && let Some(existing) = s
            .store
            .find_by_idempotency_key(conn.id, key)
            .await
            .map_err(ApiError::internal)?
    {
        return replay(&existing, hash.as_deref(), &opts);
    }
    let validated = match off_runtime(large, move || def.validate(input)).await? {
        Ok(v) => v,
        Err(e) => {
            metrics::counter!("dtc_sends_total", "action" => action, "outcome" => "invalid")
                .increment(1);
            return Err(e.into());
        }
    };
    validated.check_keywords(&conn.keywords)?;
    let new = NewDelivery {
        mode: if opts.respond_async {
            DeliveryMode::Async
        } else {
            DeliveryMode::Sync
        },
        idempotency_key: opts.idempotency_key.clone(),
        request_hash: hash.clone(),
        // A sync request holds its group while it runs, so queued ones of the group wait.
        lease: (!opts.respond_async).then(|| Lease {
            owner: s.instance_id.clone(),
            duration: SYNC_LEASE,
        }),
        ..validated.delivery(conn.id).map_err(ApiError::internal)?
    };
    let id = new.id;
    if opts.respond_async {
        let inserted = s.acceptor.accept(new).await.map_err(ApiError::internal)?;
        if !inserted.is_new() {
            return replay(inserted.delivery(), hash.as_deref(), &opts);
        }
        metrics::counter!("dtc_deliveries_accepted_total", "action" => action).increment(1);
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
            Inserted::Existing(d) => return replay(&d, hash.as_deref(), &opts),
        },
    };
    // The send runs in its own task: a client that disconnects must not cancel it half-way
    // (parts sent, nothing recorded, a keyed delivery left in flight).
    // Boxed: the task then moves a pointer, not the send's whole state (several kilobytes,
    // copied as the task is made and again as it ends: 2 % of a sync send in a profile).
    let run = tokio::spawn(Box::pin(finish_sync(
        s.clone(),
        conn,
        validated,
        target,
        new,
        keyed,
    )));
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
    let (id, action) = (new.id, validated.action());
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let result = run_sync(&s, &conn, &validated, &target, id).await;
    metrics::histogram!("dtc_action_duration_seconds", "action" => action)
        .record(started.elapsed().as_secs_f64());
    if result.is_ok() {
        metrics::counter!("dtc_sends_total", "action" => action, "outcome" => "delivered")
            .increment(1);
        tracing::info!(connection = %conn.name, action = %action, delivery_id = %id, "action done");
    }
    // The output is written out once, for the answer and for the log (rather than cloned and
    // written out by each).
    let mut result = result.map(|out| JsonText::from(&out));
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
        return result.map(|out| super::json_body(out.into_string()));
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
    result.map(|out| super::json_body(out.into_string()))
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
    let action = validated.action();
    let policy = dingtalk::RetryPolicy {
        max_attempts: s.settings.sync_attempts,
        ..dingtalk::RetryPolicy::default()
    };
    let scope = RateScope::of(&s.connections, conn)?;
    // A sync request waits for its turn under DingTalk's limits at most this long; past it
    // the answer is 429 with Retry-After rather than a request DingTalk would throttle.
    let deadline = tokio::time::Instant::now() + s.settings.sync_rate_wait();
    let reply = crate::chat::reply_target(
        s.store.as_ref(),
        &s.connections,
        conn.id,
        validated,
        chrono::Utc::now(),
    )
    .await
    .map_err(ApiError::internal)?;
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
            reply: reply.as_ref(),
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
        metrics::counter!("dtc_sends_total", "action" => action, "outcome" => outcome).increment(1);
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
