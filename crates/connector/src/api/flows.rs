//! `/v1/flows` (apply, list, show, delete, run), `/v1/runs` (the run log) and `POST
//! /hooks/{flow}` (webhook triggers, authenticated by the flow's own auth, not an API token).
//!
//! A hook answers 202 only after its run is committed (with its first step queued); when the
//! run cannot be stored it answers 503, which Alertmanager retries (it never retries a 4xx).
//! 4xx is kept for what can never succeed: an unknown flow, bad credentials, a body that is not
//! JSON or is too big.

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::AppState;
use super::deliveries::{DeliveryView, log_page};
use super::error::{ApiError, ErrorCode};
use super::extract::AppQuery;
use crate::flows::doc::{self, FlowProblem};
use crate::flows::service::{
    ApplyError, DEFAULT_DEDUPE_WINDOW, HookRefusal, TriggerData, body_key,
};
use crate::flows::{HookFormat, Trigger};
use crate::store::{FlowRecord, RunFilter, RunRecord, RunStarted, RunStatus};

const FLOW_BODY: &str = "The flow document as JSON (`application/json`) or YAML \
(`application/yaml`). A document of the right shape that cannot be used — an unknown connection \
or action, a template that does not parse, a bad cron pattern, a literal input the action \
refuses — answers 422 listing every problem with its line and field.";

/// The largest flow document or hook body taken.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/v1/flows",
            post_with(apply, |op| {
                op.id("applyFlow")
                    .summary("Apply a flow (YAML or JSON): create it, or store its next version")
                    .description(FLOW_BODY)
                    .tag("flows")
                    .input::<super::extract::AppJson<crate::flows::FlowDoc>>()
                    .response::<201, Json<FlowView>>()
                    .response::<200, Json<FlowView>>()
            })
            .get_with(list, |op| {
                op.id("listFlows").summary("Every flow").tag("flows")
            }),
        )
        .api_route(
            "/v1/flows/{name}",
            get_with(show, |op| op.id("getFlow").summary("A flow").tag("flows"))
                .put_with(put, |op| {
                    op.id("putFlow")
                        .summary("Apply a flow under this name (YAML or JSON)")
                        .description(FLOW_BODY)
                        .tag("flows")
                        .input::<super::extract::AppJson<crate::flows::FlowDoc>>()
                        .response::<201, Json<FlowView>>()
                        .response::<200, Json<FlowView>>()
                })
                .delete_with(delete, |op| {
                    op.id("deleteFlow")
                        .summary("Delete a flow (its runs stay in the log)")
                        .tag("flows")
                        .response::<204, ()>()
                }),
        )
        .api_route(
            "/v1/flows/{name}/runs",
            post_with(run_now, |op| {
                op.id("runFlow")
                    .summary("Run a flow now; the JSON body is the trigger's body")
                    .tag("flows")
                    .input::<Json<Value>>()
                    .response::<202, Json<RunView>>()
            }),
        )
        .api_route(
            "/v1/flows/{name}/dry-run",
            post_with(dry_run, |op| {
                op.id("dryRunFlow")
                    .summary("Render every step from a sample trigger body and check it; nothing is sent")
                    .tag("flows")
                    .input::<Json<Value>>()
            }),
        )
        .api_route(
            "/v1/runs",
            get_with(list_runs, |op| {
                op.id("listRuns")
                    .summary("The run log, newest first")
                    .tag("flows")
            }),
        )
        .api_route(
            "/v1/runs/{id}",
            get_with(show_run, |op| {
                op.id("getRun")
                    .summary("A run: its steps' results and deliveries")
                    .tag("flows")
            }),
        )
}

/// `POST /hooks/{flow}`: outside `/v1` (it has its own auth).
pub fn hook_routes() -> ApiRouter<AppState> {
    ApiRouter::new().api_route(
        "/hooks/{name}",
        post_with(hook, |op| {
            op.id("callHook")
                .summary("A webhook trigger (Alertmanager, Grafana or any JSON)")
                .tag("flows")
                .input::<Json<Value>>()
                .response::<202, Json<RunView>>()
                .response::<200, Json<RunView>>()
        }),
    )
}

#[derive(Deserialize, JsonSchema)]
struct FlowRef {
    /// The flow's name.
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct RunRef {
    /// The run's id (a UUID).
    #[schemars(with = "Uuid")]
    id: String,
}

/// A flow as the API shows it (secrets read `<set>`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct FlowView {
    pub name: String,
    pub version: i32,
    pub trigger: String,
    /// Where a webhook flow is called.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire_at: Option<DateTime<Utc>>,
    pub document: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<FlowRecord> for FlowView {
    fn from(f: FlowRecord) -> Self {
        FlowView {
            hook_path: (f.fields.trigger_kind == "webhook")
                .then(|| format!("/hooks/{}", f.fields.name)),
            name: f.fields.name,
            version: f.version,
            trigger: f.fields.trigger_kind,
            next_fire_at: f.fields.next_fire_at,
            document: f.fields.document,
            created_at: f.times.created_at,
            updated_at: f.times.updated_at,
        }
    }
}

/// A run as the API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunView {
    pub id: Uuid,
    pub flow: String,
    pub flow_version: i32,
    pub trigger: String,
    pub status: RunStatus,
    /// The step being run (or the number of steps once finished).
    pub step_index: i32,
    /// Each finished step's result: status, output, error, delivery ids.
    pub steps: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The trigger's payload (`GET /v1/runs/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_data: Option<Value>,
    /// The run's deliveries, one per step item (`GET /v1/runs/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView>>,
    /// True when this answer is an earlier run of the same notification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<RunRecord> for RunView {
    fn from(r: RunRecord) -> Self {
        RunView {
            id: r.id,
            flow: r.flow.name,
            flow_version: r.flow.version,
            trigger: r.flow.trigger_kind,
            status: r.progress.status,
            step_index: r.progress.step_index,
            steps: r
                .progress
                .context
                .get("steps")
                .cloned()
                .unwrap_or(Value::Object(Map::new())),
            error: r.progress.error,
            trigger_data: None,
            deliveries: None,
            duplicate: false,
            created_at: r.times.created_at,
            finished_at: r.finished_at,
        }
    }
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        // The document's shape is right (the schema states it); what it refers to or holds
        // cannot be used: unknown connections, templates that do not parse, a bad cron …
        ApplyError::Invalid(problems) => {
            let mut e = invalid_flow(&problems);
            e.body.code = ErrorCode::UnusableInput;
            e
        }
        ApplyError::Store(crate::store::StoreError::Duplicate { .. }) => ApiError::new(
            ErrorCode::Conflict,
            "a flow of this name was created at the same time",
        ),
        ApplyError::Store(e) => ApiError::internal(e),
        ApplyError::Seal(e) => ApiError::internal(e),
    }
}

/// Every problem, one per line; the first one's field.
fn invalid_flow(problems: &[FlowProblem]) -> ApiError {
    let message = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let mut e = ApiError::new(ErrorCode::InvalidInput, message);
    if let Some(first) = problems.first()
        && !first.field.is_empty()
    {
        e = e.with_field(first.field.clone());
    }
    e
}

async fn read_body(req: Request) -> Result<(HeaderMap, axum::body::Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    super::extract::refuse_declared_size(&parts.headers, MAX_BODY)?;
    let read = axum::body::to_bytes(body, MAX_BODY);
    let bytes = match parts
        .extensions
        .get::<crate::server::BodyDeadline>()
        .map(|d| d.0)
    {
        Some(at) => tokio::time::timeout_at(at, read)
            .await
            .map_err(|_| super::extract::body_timeout())?,
        None => read.await,
    }
    .map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {MAX_BODY} bytes"),
        )
    })?;
    Ok((parts.headers, bytes))
}

/// A flow document from a body: JSON, or YAML (`application/yaml`, `text/yaml`, …).
async fn read_flow(req: Request) -> Result<doc::Parsed, ApiError> {
    let (headers, bytes) = read_body(req).await?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let media = ct.split(';').next().unwrap_or_default().trim();
    if !(media.ends_with("json") || media.ends_with("yaml") || media == "text/plain") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the flow as application/json or application/yaml",
        ));
    }
    if media.ends_with("json") {
        // JSON is read as JSON (YAML parsers differ on escapes such as surrogate pairs).
        let free = |path: &str| {
            path.starts_with("vars") || (path.starts_with("steps[") && path.contains("].input"))
        };
        let value = super::extract::parse_value_with_free_parts(&bytes, &free)?;
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        return doc::from_json_text(text, value).map_err(|p| invalid_flow(&[p]));
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("body", "is not UTF-8 text"))?;
    doc::parse(text).map_err(|p| invalid_flow(&[p]))
}

async fn apply(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let parsed = read_flow(req).await?;
    apply_parsed(&s, parsed).await
}

async fn put(
    State(s): State<AppState>,
    Path(r): Path<FlowRef>,
    req: Request,
) -> Result<Response, ApiError> {
    let parsed = read_flow(req).await?;
    if parsed.doc.name != r.name {
        return Err(ApiError::new(
            ErrorCode::UnusableInput,
            format!(
                "the document's name is `{}`, but the URL names `{}`",
                parsed.doc.name, r.name
            ),
        )
        .with_field("name"));
    }
    apply_parsed(&s, parsed).await
}

async fn apply_parsed(s: &AppState, parsed: doc::Parsed) -> Result<Response, ApiError> {
    let flow = s.flows.apply(parsed).await.map_err(apply_error)?;
    let status = if flow.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(FlowView::from(flow))).into_response())
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<FlowView>>, ApiError> {
    let flows = s.store.list_flows().await.map_err(ApiError::internal)?;
    Ok(Json(flows.into_iter().map(FlowView::from).collect()))
}

async fn find(s: &AppState, name: &str) -> Result<FlowRecord, ApiError> {
    s.flows
        .get(name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no flow is named `{name}`")))
}

async fn show(
    State(s): State<AppState>,
    Path(r): Path<FlowRef>,
) -> Result<Json<FlowView>, ApiError> {
    Ok(Json(find(&s, &r.name).await?.into()))
}

async fn delete(State(s): State<AppState>, Path(r): Path<FlowRef>) -> Result<StatusCode, ApiError> {
    if s.store
        .delete_flow(&r.name)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no flow is named `{}`",
            r.name
        )))
    }
}

fn headers_json(headers: &HeaderMap) -> Value {
    // Credentials are never kept in the run log.
    let mut m = Map::new();
    for (k, v) in headers {
        let name = k.as_str();
        if matches!(name, "authorization" | "cookie" | "proxy-authorization") {
            continue;
        }
        if let Ok(v) = v.to_str() {
            m.insert(name.to_owned(), Value::from(v));
        }
    }
    Value::Object(m)
}

fn started(result: Result<RunStarted, crate::store::StoreError>) -> Result<Response, ApiError> {
    match result {
        Ok(RunStarted::Started(run)) => {
            Ok((StatusCode::ACCEPTED, Json(RunView::from(run))).into_response())
        }
        Ok(RunStarted::Duplicate(run)) => {
            let mut view = RunView::from(run);
            view.duplicate = true;
            Ok((StatusCode::OK, Json(view)).into_response())
        }
        Ok(RunStarted::AlreadyFired) => Err(ApiError::new(ErrorCode::Conflict, "already fired")),
        Err(e) => {
            tracing::error!(error = %e, "a run could not be stored");
            Err(ApiError::new(
                ErrorCode::StoreUnavailable,
                "the run could not be stored; try again",
            ))
        }
    }
}

/// A manual run's (or a dry run's) trigger body: any JSON, nothing meaning `{}`.
fn sample_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    super::extract::parse_value_with_free_parts(bytes, &|_| true)
}

async fn run_now(
    State(s): State<AppState>,
    Path(r): Path<FlowRef>,
    req: Request,
) -> Result<Response, ApiError> {
    let flow = find(&s, &r.name).await?;
    let (headers, bytes) = read_body(req).await?;
    let body = sample_body(&bytes)?;
    let trigger = TriggerData {
        kind: "manual",
        body,
        headers: headers_json(&headers),
        query: Value::Object(Map::new()),
        fired_at: Utc::now(),
    };
    let result = s.flows.start(&flow, trigger, None, None).await;
    s.wake_engine();
    started(result)
}

/// What a dry run found, step by step.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DryRunView {
    pub flow: String,
    pub version: i32,
    /// Per step: `outcome` (`would_send`, `skipped`, `would_fail`) and the items it would send
    /// (connection, action, rendered input) or its `reason` / `error`.
    pub steps: Vec<Value>,
}

async fn dry_run(
    State(s): State<AppState>,
    Path(r): Path<FlowRef>,
    req: Request,
) -> Result<Json<DryRunView>, ApiError> {
    let flow = find(&s, &r.name).await?;
    let (headers, bytes) = read_body(req).await?;
    let body = sample_body(&bytes)?;
    let kind = crate::flows::service::Flows::sample_kind(&flow.fields.trigger_kind);
    let trigger = TriggerData {
        kind,
        body,
        headers: headers_json(&headers),
        query: Value::Object(Map::new()),
        fired_at: Utc::now(),
    };
    let steps = s
        .flows
        .dry_run(&flow, trigger)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(DryRunView {
        flow: flow.fields.name,
        version: flow.version,
        steps,
    }))
}

async fn hook(
    State(s): State<AppState>,
    Path(r): Path<FlowRef>,
    req: Request,
) -> Result<Response, ApiError> {
    let result = hook_inner(&s, &r.name, req).await;
    let status = match &result {
        Ok(resp) => resp.status().as_u16(),
        Err(e) => e.status().as_u16(),
    };
    metrics::counter!("dtc_hook_requests_total", "status" => status.to_string()).increment(1);
    result
}

async fn hook_inner(s: &AppState, name: &str, req: Request) -> Result<Response, ApiError> {
    let flow = find(s, name).await?;
    let doc = crate::flows::service::Flows::document(&flow).map_err(ApiError::internal)?;
    let Trigger::Webhook {
        format,
        auth,
        dedupe_window_secs,
    } = &doc.trigger
    else {
        return Err(ApiError::not_found(format!(
            "flow `{name}` is started by its {}, not by a webhook",
            doc.trigger.kind()
        )));
    };
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (headers, bytes) = read_body(req).await?;
    if let Err(HookRefusal::Unauthorized(why)) =
        s.flows.verify_hook(&flow, auth.as_ref(), &headers, &bytes)
    {
        return Err(ApiError::new(ErrorCode::Unauthorized, why));
    }
    let body = super::extract::parse_value_with_free_parts(&bytes, &|_| true)?;
    check_format(*format, &body)?;
    let query: Map<String, Value> = serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let window = dedupe_window_secs
        .map(std::time::Duration::from_secs)
        .unwrap_or(DEFAULT_DEDUPE_WINDOW);
    let dedupe = (!window.is_zero()).then(|| (body_key(&bytes), window));
    let trigger = TriggerData {
        kind: "webhook",
        body,
        headers: headers_json(&headers),
        query: Value::Object(query),
        fired_at: Utc::now(),
    };
    let result = s.flows.start(&flow, trigger, dedupe, None).await;
    s.wake_engine();
    started(result)
}

/// The least a payload of the declared format has: Alertmanager and Grafana send `alerts`.
fn check_format(format: HookFormat, body: &Value) -> Result<(), ApiError> {
    match format {
        HookFormat::Json => Ok(()),
        HookFormat::Alertmanager | HookFormat::Grafana => {
            if body.get("alerts").is_some_and(Value::is_array) {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "alerts",
                    "is missing: this hook takes Alertmanager or Grafana notifications",
                ))
            }
        }
    }
}

/// Filters of the run log; they combine with AND.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    /// Only this flow's runs.
    flow: Option<String>,
    /// Only runs in this status.
    status: Option<RunStatus>,
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

#[derive(Serialize, JsonSchema)]
struct RunPageView {
    runs: Vec<RunView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<i64>,
}

async fn list_runs(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<RunQuery>,
) -> Result<Json<RunPageView>, ApiError> {
    let filter = RunFilter {
        flow: q.flow,
        status: q.status,
        page: log_page(
            q.created_after.as_deref(),
            q.created_before.as_deref(),
            q.cursor,
            q.limit,
        )?,
    };
    let page = s
        .store
        .list_runs(&filter)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(RunPageView {
        runs: page.runs.into_iter().map(RunView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn show_run(
    State(s): State<AppState>,
    Path(r): Path<RunRef>,
) -> Result<Json<RunView>, ApiError> {
    let not_found = || ApiError::not_found(format!("no run has the id `{}`", r.id));
    let id = Uuid::parse_str(&r.id).map_err(|_| not_found())?;
    let run = s
        .store
        .get_run(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    let deliveries = s
        .store
        .run_deliveries(id)
        .await
        .map_err(ApiError::internal)?;
    let trigger = run.progress.context.get("trigger").cloned();
    let mut view = RunView::from(run);
    view.trigger_data = trigger;
    view.deliveries = Some(deliveries.into_iter().map(DeliveryView::from).collect());
    Ok(Json(view))
}
