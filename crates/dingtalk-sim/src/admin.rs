//! Admin routes under `/_sim/` (docs/design.md §4): inspect messages and counters, script faults,
//! move the clock, change limits. Not part of DingTalk; plain JSON, errors as `{"error": …}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::fixture::Limits;
use crate::model::{FaultSpec, ReceivedMessage, Stats};
use crate::state::Sim;

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

pub(crate) async fn messages(
    State(sim): State<Sim>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Vec<ReceivedMessage>> {
    let inner = sim.lock();
    let ocid = q.get("open_conversation_id");
    Json(
        inner
            .messages
            .iter()
            .filter(|m| ocid.is_none_or(|o| m.open_conversation_id.as_ref() == Some(o)))
            .cloned()
            .collect(),
    )
}

pub(crate) async fn clear_messages(State(sim): State<Sim>) -> StatusCode {
    sim.lock().clear_messages();
    StatusCode::NO_CONTENT
}

pub(crate) async fn stats(State(sim): State<Sim>) -> Json<Stats> {
    Json(sim.lock().stats.clone())
}

pub(crate) async fn faults(State(sim): State<Sim>) -> Json<Vec<FaultSpec>> {
    Json(sim.faults())
}

pub(crate) async fn add_fault(State(sim): State<Sim>, body: Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad(format!("invalid fault: {e}")),
    };
    if let Some(p) = spec.probability
        && !(0.0..=1.0).contains(&p)
    {
        return bad(format!("probability must be within 0..=1, got {p}"));
    }
    sim.add_fault(spec.clone());
    (StatusCode::CREATED, Json(spec)).into_response()
}

pub(crate) async fn clear_faults(State(sim): State<Sim>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockAdvance {
    advance_secs: u64,
}

pub(crate) async fn clock(State(sim): State<Sim>, body: Bytes) -> Response {
    let req: ClockAdvance = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("expected {{\"advance_secs\": N}}: {e}")),
    };
    sim.advance_clock(Duration::from_secs(req.advance_secs));
    Json(json!({"now": sim.now_rfc3339(), "now_ms": sim.now_ms()})).into_response()
}

pub(crate) async fn set_limits(State(sim): State<Sim>, body: Bytes) -> Response {
    let limits: Limits = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return bad(format!("invalid limits: {e}")),
    };
    sim.lock().limits = limits.clone();
    Json(limits).into_response()
}

pub(crate) async fn fixture(State(sim): State<Sim>) -> Json<Value> {
    let mut fixture = sim.fixture.clone();
    // Show the limits in force, which `set_limits` may have changed since start.
    fixture.limits = sim.lock().limits.clone();
    Json(serde_json::to_value(fixture).unwrap_or(Value::Null))
}
