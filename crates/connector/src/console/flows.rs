//! Flows: the list with the ready templates one click away; a flow's YAML in an editor with the
//! problems shown at their lines; apply; a dry run from a sample trigger with each message
//! previewed as DingTalk shows it; run now; and the runs with their steps.

use axum::Router;
use axum::extract::{Form, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{CsrfOnly, Page, SignedIn, check, seg, some, when};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::flows::doc;
use crate::flows::init::{InitFormat, InitOptions};
use crate::flows::service::{ApplyError, TriggerData};
use crate::flows::{FlowDoc, FlowProblem, Trigger};
use crate::store::{FlowRecord, LogPage, Role, RunFilter, RunStatus};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/flows", get(list).post(apply))
        .route("/console/flows/new", get(new))
        .route("/console/flows/{name}", get(show))
        .route("/console/flows/{name}/dry-run", post(dry_run))
        .route("/console/flows/{name}/run", post(run_now))
        .route("/console/flows/{name}/delete", post(delete))
        .route("/console/runs", get(runs))
        .route("/console/runs/{id}", get(run))
}

async fn list(c: SignedIn) -> Response {
    let flows = match c.state.store.list_flows().await {
        Ok(f) => f,
        Err(e) => return c.failed(ApiError::internal(e)),
    };
    let rows: Vec<Value> = flows
        .iter()
        .map(|f| {
            let doc = crate::flows::service::Flows::document(f).ok();
            json!({
                "name": f.fields.name, "trigger": f.fields.trigger_kind, "version": f.version,
                "updated_at": when(f.times.updated_at),
                "description": doc.as_ref().map(|d| d.description.clone()),
                "hook": (f.fields.trigger_kind == "webhook").then(|| format!("/hooks/{}", seg(&f.fields.name))),
                "next_fire": f.fields.next_fire_at.map(when),
            })
        })
        .collect();
    let connections = match c.state.store.connection_names().await {
        Ok(list) => list
            .into_iter()
            .map(|x| json!({"name": x.name}))
            .collect::<Vec<_>>(),
        Err(e) => return c.failed(ApiError::internal(e)),
    };
    c.render(
        "flows.html",
        "flows",
        json!({"flows": rows, "connections": connections}),
    )
    .into_response()
}

/// The editor page: the text, its problems (at their lines), and for a stored flow, what can
/// be done with it.
async fn editor(
    page: &Page,
    status: StatusCode,
    text: &str,
    problems: &[FlowProblem],
    stored: Option<&FlowRecord>,
    extra: Value,
) -> Response {
    let problems: Vec<Value> = problems
        .iter()
        .map(|p| json!({"line": p.line, "field": p.field, "reason": p.reason}))
        .collect();
    let flow = stored.map(|f| {
        json!({"name": f.fields.name, "version": f.version, "trigger": f.fields.trigger_kind,
               "updated_at": when(f.times.updated_at),
               "hook": (f.fields.trigger_kind == "webhook").then(|| format!("/hooks/{}", seg(&f.fields.name)))})
    });
    let sample = stored
        .and_then(|f| crate::flows::service::Flows::document(f).ok())
        .map(|d| sample_body(&d))
        .unwrap_or_default();
    let mut ctx = json!({
        "text": text, "problems": problems, "flow": flow,
        "lines": text.lines().count().max(1),
        "sample": sample,
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut ctx, extra) {
        base.extend(more);
    }
    (status, page.render("flow.html", "flows", ctx)).into_response()
}

#[derive(Deserialize, Default)]
struct NewQuery {
    #[serde(default)]
    template: String,
    #[serde(default)]
    connection: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    name: String,
}

/// A blank flow, or a ready one (`init`) for the chosen connection with a fresh hook secret —
/// shown here once, for the sender's configuration, and stored only sealed.
async fn new(c: SignedIn, Query(q): Query<NewQuery>) -> Response {
    check!(c.may(Role::Admin));
    let Some(format) = InitFormat::parse(&q.template) else {
        let text = "name: my-flow\ntrigger:\n  type: manual\nsteps:\n  - id: hello\n    action: send_text\n    connection: ops\n    input:\n      group_chat_id: cid…==\n      content: \"Hello from {{ flow.name }}\"\n";
        return editor(&c, StatusCode::OK, text, &[], None, json!({})).await;
    };
    let conn = match c.state.connections.get(&q.connection).await {
        Ok(conn) => conn,
        Err(_) => {
            let problem = FlowProblem {
                field: "connection".into(),
                line: None,
                reason: format!("choose a connection for the {} template", format.as_str()),
            };
            return editor(
                &c,
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
                &[problem],
                None,
                json!({}),
            )
            .await;
        }
    };
    let mut secret = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    let secret = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret);
    let group = some(&q.group).unwrap_or_else(|| "cid…==".to_owned());
    let name = some(&q.name).unwrap_or_else(|| format.as_str().to_owned());
    let options = InitOptions {
        format,
        name: &name,
        connection: &conn.name,
        kind: conn.kind,
        group: Some(&group),
        secret: &secret,
    };
    match crate::flows::init::init(&options) {
        Ok(text) => {
            editor(
                &c,
                StatusCode::OK,
                &text,
                &[],
                None,
                json!({"template": format.as_str()}),
            )
            .await
        }
        Err(reason) => {
            let problem = FlowProblem {
                field: String::new(),
                line: None,
                reason,
            };
            editor(
                &c,
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
                &[problem],
                None,
                json!({}),
            )
            .await
        }
    }
}

async fn find(c: &SignedIn, name: &str) -> Result<FlowRecord, Response> {
    match c.state.flows.get(name).await {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(c.not_found()),
        Err(e) => Err(c.failed(ApiError::internal(e))),
    }
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    applied: Option<i32>,
}

async fn show(c: SignedIn, Path(name): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    let flow = check!(find(&c, &name).await);
    let text = crate::flows::yaml::to_yaml(&flow.fields.document);
    let flash = q
        .applied
        .map(|v| json!({"kind": "ok", "text": format!("{} (v{v})", c.word("flow_applied"))}));
    editor(
        &c,
        StatusCode::OK,
        &text,
        &[],
        Some(&flow),
        json!({"flash": flash}),
    )
    .await
}

#[derive(Deserialize)]
struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

async fn apply(c: SignedIn, Form(f): Form<ApplyForm>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    // Browsers post CRLF line ends; the document's lines are what the user sees.
    let text = f.text.replace("\r\n", "\n");
    let stored_before = |name: &str| {
        let state = c.state.clone();
        let name = name.to_owned();
        async move { state.flows.get(&name).await.ok().flatten() }
    };
    match c.state.flows.apply_text(&text).await {
        Ok(flow) => Redirect::to(&format!(
            "/console/flows/{}?applied={}",
            seg(&flow.fields.name),
            flow.version
        ))
        .into_response(),
        Err(ApplyError::Invalid(problems)) => {
            let name = doc::parse(&text).ok().map(|p| p.doc.name);
            let stored = match &name {
                Some(n) => stored_before(n).await,
                None => None,
            };
            editor(
                &c,
                StatusCode::UNPROCESSABLE_ENTITY,
                &text,
                &problems,
                stored.as_ref(),
                json!({}),
            )
            .await
        }
        Err(ApplyError::Store(e)) => c.failed(ApiError::internal(e)),
        Err(e @ ApplyError::Seal(_)) => c.failed(ApiError::internal(e)),
    }
}

/// A sample trigger body for a dry run: what the flow's sender would post.
fn sample_body(d: &FlowDoc) -> String {
    let body = match &d.trigger {
        Trigger::Webhook { format, .. } => match format {
            crate::flows::HookFormat::Alertmanager => json!({
                "version": "4", "status": "firing", "receiver": "dtc", "groupKey": "{}:{alertname=\"HighLatency\"}",
                "groupLabels": {"alertname": "HighLatency"},
                "commonLabels": {"alertname": "HighLatency", "severity": "critical", "team": "db"},
                "commonAnnotations": {"summary": "p99 latency above 2 s"},
                "externalURL": "http://alertmanager.example:9093",
                "alerts": [{
                    "status": "firing",
                    "labels": {"alertname": "HighLatency", "severity": "critical", "team": "db", "instance": "db-1:9100"},
                    "annotations": {"summary": "p99 latency above 2 s", "description": "db-1 answers slowly"},
                    "startsAt": "2026-12-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": "a1b2c3"
                }]
            }),
            crate::flows::HookFormat::Grafana => json!({
                "receiver": "dtc", "status": "firing", "title": "[FIRING:1] HighLatency", "state": "alerting",
                "message": "p99 latency above 2 s", "externalURL": "http://grafana.example:3000/",
                "commonLabels": {"alertname": "HighLatency", "severity": "critical", "team": "db"},
                "alerts": [{
                    "status": "firing",
                    "labels": {"alertname": "HighLatency", "severity": "critical", "team": "db"},
                    "annotations": {"summary": "p99 latency above 2 s"},
                    "startsAt": "2026-12-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://grafana.example:3000/alerting/grafana/x/view",
                    "dashboardURL": "", "panelURL": "", "values": {"B": 2.4}, "fingerprint": "a1b2c3"
                }]
            }),
            crate::flows::HookFormat::Json => json!({"text": "Hello from a sample"}),
        },
        Trigger::Chat { .. } => crate::flows::chat::sample(&d.trigger),
        _ => json!({}),
    };
    serde_json::to_string_pretty(&body).expect("a sample serializes")
}

#[derive(Deserialize)]
struct SampleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sample: String,
}

/// The flow and the trigger its form describes (a sample body as the sender would post it), or
/// the editor again saying what is wrong with the sample.
async fn sampled(
    c: &SignedIn,
    name: &str,
    f: &SampleForm,
    kind: Option<&'static str>,
) -> Result<(FlowRecord, TriggerData), Response> {
    let flow = find(c, name).await?;
    let body = if f.sample.trim().is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_str(&f.sample).map_err(|e| format!("the sample trigger is not JSON: {e}"))
    };
    let body = match body {
        Ok(b) => b,
        Err(reason) => {
            let text = crate::flows::yaml::to_yaml(&flow.fields.document);
            return Err(editor(
                c,
                StatusCode::BAD_REQUEST,
                &text,
                &[],
                Some(&flow),
                json!({"sample": f.sample, "sample_error": reason}),
            )
            .await);
        }
    };
    // A dry run reads the sample as the flow's own trigger would deliver it.
    let kind = kind.unwrap_or(crate::flows::service::Flows::sample_kind(
        &flow.fields.trigger_kind,
    ));
    let trigger = TriggerData {
        kind,
        body,
        headers: json!({}),
        query: json!({}),
        fired_at: chrono::Utc::now(),
    };
    Ok((flow, trigger))
}

async fn dry_run(c: SignedIn, Path(name): Path<String>, Form(f): Form<SampleForm>) -> Response {
    check!(c.post(Role::Operator, &f.csrf));
    let (flow, trigger) = check!(sampled(&c, &name, &f, None).await);
    let text = crate::flows::yaml::to_yaml(&flow.fields.document);
    let steps = match c.state.flows.dry_run(&flow, trigger).await {
        Ok(s) => s,
        Err(e) => return c.failed(ApiError::internal(e)),
    };
    let steps: Vec<Value> = steps.into_iter().map(with_previews).collect();
    editor(
        &c,
        StatusCode::OK,
        &text,
        &[],
        Some(&flow),
        json!({"sample": f.sample, "dry_run": steps}),
    )
    .await
}

/// A dry-run step with each item's message rendered as DingTalk shows it (or why the action
/// would refuse its input).
fn with_previews(mut step: Value) -> Value {
    if let Some(items) = step.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            let action = item["action"].as_str().unwrap_or_default().to_owned();
            let preview = match crate::actions::validate(&action, item["input"].clone()) {
                Ok(v) => json!({"html": super::send::preview_html(v.steps())}),
                Err(e) => json!({"error": e.to_string()}),
            };
            item["preview"] = preview;
            item["input_text"] =
                Value::from(serde_json::to_string_pretty(&item["input"]).unwrap_or_default());
        }
    }
    step
}

async fn run_now(c: SignedIn, Path(name): Path<String>, Form(f): Form<SampleForm>) -> Response {
    check!(c.post(Role::Operator, &f.csrf));
    let (flow, trigger) = check!(sampled(&c, &name, &f, Some("manual")).await);
    let started = c.state.flows.start(&flow, trigger, None, None).await;
    c.state.wake_engine();
    match started {
        Ok(crate::store::RunStarted::Started(r) | crate::store::RunStarted::Duplicate(r)) => {
            Redirect::to(&format!("/console/runs/{}", r.id)).into_response()
        }
        Ok(crate::store::RunStarted::AlreadyFired) => {
            Redirect::to(&format!("/console/runs?flow={}", seg(&flow.fields.name))).into_response()
        }
        Err(e) => c.failed(ApiError::internal(e)),
    }
}

async fn delete(c: SignedIn, Path(name): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    match c.state.store.delete_flow(&name).await {
        Ok(true) => {
            tracing::info!(flow = %name, "flow deleted in the console");
            Redirect::to("/console/flows").into_response()
        }
        Ok(false) => c.not_found(),
        Err(e) => c.failed(ApiError::internal(e)),
    }
}

#[derive(Deserialize, Default)]
struct RunsQuery {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    status: String,
    before: Option<i64>,
}

async fn runs(c: SignedIn, Query(q): Query<RunsQuery>) -> Response {
    let filter = RunFilter {
        flow: some(&q.flow),
        status: RunStatus::parse(&q.status).ok(),
        page: LogPage {
            before_seq: q.before,
            limit: 50,
            ..Default::default()
        },
    };
    let page = match c.state.store.list_runs(&filter).await {
        Ok(p) => p,
        Err(e) => return c.failed(ApiError::internal(e)),
    };
    let rows: Vec<Value> = page
        .runs
        .iter()
        .map(|r| {
            json!({"id": r.id, "flow": r.flow.name, "version": r.flow.version,
                   "trigger": r.flow.trigger_kind, "status": r.progress.status.as_str(),
                   "created_at": when(r.times.created_at), "finished_at": r.finished_at.map(when),
                   "error": r.progress.error.as_ref().map(error_words)})
        })
        .collect();
    let next = page.next_cursor.map(|cursor| {
        format!(
            "/console/runs?flow={}&status={}&before={cursor}",
            seg(&q.flow),
            seg(&q.status)
        )
    });
    c.render(
        "runs.html",
        "runs",
        json!({"runs": rows, "next": next, "filter": {"flow": q.flow, "status": q.status}}),
    )
    .into_response()
}

/// An error record in words.
fn error_words(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| e.to_string())
}

async fn run(c: SignedIn, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return c.not_found();
    };
    let run = match c.state.store.get_run(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return c.not_found(),
        Err(e) => return c.failed(ApiError::internal(e)),
    };
    let deliveries = match c.state.store.run_deliveries(id).await {
        Ok(d) => d,
        Err(e) => return c.failed(ApiError::internal(e)),
    };
    let steps: Vec<Value> = run.progress.context["steps"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(step, r)| {
                    json!({"id": step, "status": r["status"], "reason": r.get("reason"),
                           "error": r.get("error").map(error_words),
                           "output": r.get("output").filter(|o| !o.is_null())
                               .map(|o| serde_json::to_string_pretty(o).unwrap_or_default())})
                })
                .collect()
        })
        .unwrap_or_default();
    let deliveries: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({"id": d.id, "status": d.status, "action": d.action,
                   "group": d.group_key.group_chat_id(), "attempts": d.attempts,
                   "error": d.last_error.as_ref().map(|e| e.message.clone())})
        })
        .collect();
    let trigger =
        serde_json::to_string_pretty(&run.progress.context["trigger"]).unwrap_or_default();
    c.render(
        "run.html",
        "runs",
        json!({
            "run": {"id": run.id, "flow": run.flow.name, "version": run.flow.version,
                    "trigger": run.flow.trigger_kind, "status": run.progress.status.as_str(),
                    "created_at": when(run.times.created_at), "finished_at": run.finished_at.map(when),
                    "error": run.progress.error.as_ref().map(error_words),
                    "running": run.progress.status == RunStatus::Running},
            "steps": steps, "deliveries": deliveries, "trigger_data": trigger,
        }),
    )
    .into_response()
}
