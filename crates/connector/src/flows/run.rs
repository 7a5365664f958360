//! How a run moves on: the flow logic the store calls in the transaction that ends a step
//! ([`crate::store::RunAdvance`]). It records the finished step's result in the run's context,
//! then renders the following steps until one has something to send: a step whose `when` is
//! false (or whose `for_each` gives nothing) is skipped; a step that cannot be rendered or
//! whose input the action refuses fails without sending anything; otherwise each item becomes
//! a delivery on the queue (idempotency key `run:<run>:<step>:<item>`, so an advance repeated
//! after a crash never queues a step twice), and per-group order, rate limits and retries apply
//! as to any delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::doc::{FlowDoc, OnError, StepDoc};
use super::schedule::parse_zone;
use super::template::{Templates, is_template};
use crate::actions;
use crate::store::{
    ConnectionRecord, Delivery, DeliveryStatus, NewDelivery, RunAdvance, RunChange, RunLink,
    RunProgress, RunState, RunStatus,
};

/// The most items one `for_each` may fan out to.
pub const MAX_ITEMS: usize = 100;

/// The flow logic; caches each flow version's parsed document and templates.
#[derive(Debug, Default)]
pub struct Advancer {
    compiled: Mutex<HashMap<(Uuid, i32), Arc<Compiled>>>,
}

#[derive(Debug)]
struct Compiled {
    doc: FlowDoc,
    templates: Templates,
}

impl Advancer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn compiled(
        &self,
        flow: Uuid,
        version: i32,
        document: &Value,
    ) -> Result<Arc<Compiled>, String> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&(flow, version)) {
            return Ok(c.clone());
        }
        let doc: FlowDoc = serde_json::from_value(document.clone())
            .map_err(|e| format!("the stored flow cannot be read: {e}"))?;
        let zone = parse_zone(doc.zone())?;
        let c = Arc::new(Compiled {
            doc,
            templates: Templates::new(zone),
        });
        // Versions are immutable; a small cache is enough (a few flows are hot at once).
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert((flow, version), c.clone());
        Ok(c)
    }
}

/// What planning a step came to.
enum Planned {
    Skipped(&'static str),
    Failed(Value),
    /// Each item's delivery and its rendered input.
    Send(Vec<(NewDelivery, Value)>),
}

impl RunAdvance for Advancer {
    fn advance(&self, st: &RunState<'_>) -> Option<RunChange> {
        let change = self.next(st)?;
        if change.progress.status != RunStatus::Running {
            // Counted when decided; a rolled-back transaction decides again (rare, and counted
            // again: the metric is an operator's view, the run log is the record).
            metrics::counter!(
                "dtc_flow_runs_total",
                "flow" => st.run.flow.name.clone(),
                "outcome" => change.progress.status.as_str()
            )
            .increment(1);
        }
        Some(change)
    }
}

impl Advancer {
    fn next(&self, st: &RunState<'_>) -> Option<RunChange> {
        let run = st.run;
        let mut ctx = run.progress.context.clone();
        let Some(document) = st.document else {
            return Some(finish_failed(
                ctx,
                run.progress.step_index,
                json!({"message": "the flow was deleted while this run was running"}),
            ));
        };
        let flow = match self.compiled(run.flow.id, run.flow.version, document) {
            Ok(c) => c,
            Err(message) => {
                return Some(finish_failed(
                    ctx,
                    run.progress.step_index,
                    json!({"message": message}),
                ));
            }
        };
        let steps = &flow.doc.steps;
        let mut k = usize::try_from(run.progress.step_index).unwrap_or(0);

        // The current step's deliveries: all ended, or nothing to do yet.
        let current: Vec<&Delivery> = st
            .deliveries
            .iter()
            .filter(|d| d.run.is_some_and(|r| r.step as usize == k))
            .collect();
        if !current.is_empty() {
            if current.iter().any(|d| !d.status.is_finished()) {
                return None;
            }
            let step = steps.get(k)?;
            let mut result = step_result(step, &current);
            // The rendered input, recorded when the step was planned, stays in the run log.
            if let Some(input) = ctx.pointer(&format!("/steps/{}/input", step.id)) {
                result["input"] = input.clone();
            }
            let failed = result["status"] == "failed";
            set_step(&mut ctx, &step.id, result.clone());
            if failed && step.on_error == OnError::Fail {
                return Some(finish_failed(ctx, k as i32, step_error(step, &result)));
            }
            k += 1;
        }

        // Render what follows until a step has something to send.
        loop {
            let Some(step) = steps.get(k) else {
                return Some(RunChange {
                    progress: RunProgress {
                        status: RunStatus::Succeeded,
                        step_index: k as i32,
                        context: ctx,
                        error: None,
                    },
                    deliveries: Vec::new(),
                });
            };
            let chat = flow.doc.trigger.chat_connection();
            match plan_step(&flow.templates, step, k, &ctx, st.connections, run.id, chat) {
                Planned::Send(items) => {
                    let (deliveries, inputs): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                    let input = if step.for_each.is_some() {
                        Value::Array(inputs)
                    } else {
                        inputs.into_iter().next().unwrap_or(Value::Null)
                    };
                    set_step(
                        &mut ctx,
                        &step.id,
                        json!({"status": "running", "input": input}),
                    );
                    return Some(RunChange {
                        progress: RunProgress {
                            status: RunStatus::Running,
                            step_index: k as i32,
                            context: ctx,
                            error: None,
                        },
                        deliveries,
                    });
                }
                Planned::Skipped(why) => {
                    set_step(
                        &mut ctx,
                        &step.id,
                        json!({"status": "skipped", "reason": why}),
                    );
                }
                Planned::Failed(error) => {
                    let result = json!({"status": "failed", "error": error});
                    set_step(&mut ctx, &step.id, result.clone());
                    if step.on_error == OnError::Fail {
                        return Some(finish_failed(ctx, k as i32, step_error(step, &result)));
                    }
                }
            }
            k += 1;
        }
    }
}

/// Renders every step of `doc` from a sample context without sending anything: what each step
/// would send (connection, action, rendered input), or why it would be skipped or fail. Later
/// steps see earlier ones as succeeded with no output.
pub fn dry_run(
    doc: &FlowDoc,
    templates: &Templates,
    ctx: &Value,
    connections: &[ConnectionRecord],
) -> Vec<Value> {
    let mut ctx = ctx.clone();
    let mut out = Vec::new();
    for (k, step) in doc.steps.iter().enumerate() {
        let chat = doc.trigger.chat_connection();
        let report = match plan_step(templates, step, k, &ctx, connections, Uuid::nil(), chat) {
            Planned::Send(items) => {
                let items: Vec<Value> = items
                    .into_iter()
                    .map(|(d, input)| {
                        let conn = connections.iter().find(|c| c.id == d.connection_id);
                        json!({
                            "connection": conn.map(|c| c.fields.name.clone()),
                            "action": d.action,
                            "input": input,
                        })
                    })
                    .collect();
                set_step(
                    &mut ctx,
                    &step.id,
                    json!({"status": "succeeded", "output": if step.for_each.is_some() { json!([]) } else { Value::Null }}),
                );
                json!({"step": step.id, "outcome": "would_send", "items": items})
            }
            Planned::Skipped(why) => {
                set_step(
                    &mut ctx,
                    &step.id,
                    json!({"status": "skipped", "reason": why}),
                );
                json!({"step": step.id, "outcome": "skipped", "reason": why})
            }
            Planned::Failed(error) => {
                set_step(
                    &mut ctx,
                    &step.id,
                    json!({"status": "failed", "error": error}),
                );
                json!({"step": step.id, "outcome": "would_fail", "error": error,
                       "run_stops": step.on_error == OnError::Fail})
            }
        };
        out.push(report);
    }
    out
}

fn finish_failed(context: Value, step_index: i32, error: Value) -> RunChange {
    RunChange {
        progress: RunProgress {
            status: RunStatus::Failed,
            step_index,
            context,
            error: Some(error),
        },
        deliveries: Vec::new(),
    }
}

fn step_error(step: &StepDoc, result: &Value) -> Value {
    let mut error = result.get("error").cloned().unwrap_or(Value::Null);
    if let Value::Object(m) = &mut error {
        m.insert("step".into(), Value::from(step.id.clone()));
    } else {
        error = json!({"step": step.id, "message": "the step failed"});
    }
    error
}

fn set_step(ctx: &mut Value, id: &str, result: Value) {
    if !ctx.get("steps").is_some_and(Value::is_object) {
        ctx["steps"] = Value::Object(Map::new());
    }
    ctx["steps"][id] = result;
}

/// The result templates read as `steps.<id>`: `status`, `output` (a list for `for_each`),
/// `error` (the first failure), `delivery_ids`.
fn step_result(step: &StepDoc, ds: &[&Delivery]) -> Value {
    let failed: Vec<&&Delivery> = ds
        .iter()
        .filter(|d| d.status == DeliveryStatus::Failed)
        .collect();
    let outputs: Vec<Value> = ds
        .iter()
        .map(|d| d.result.clone().unwrap_or(Value::Null))
        .collect();
    let output = if step.for_each.is_some() {
        Value::Array(outputs)
    } else {
        outputs.into_iter().next().unwrap_or(Value::Null)
    };
    let mut r = json!({
        "status": if failed.is_empty() { "succeeded" } else { "failed" },
        "output": output,
        "delivery_ids": ds.iter().map(|d| d.id.to_string()).collect::<Vec<_>>(),
    });
    if let Some(d) = failed.first() {
        r["error"] = serde_json::to_value(&d.last_error).unwrap_or(Value::Null);
        r["failed_items"] = Value::from(failed.len());
    }
    r
}

fn failure(field: Option<String>, message: String) -> Value {
    let mut v = json!({"message": message});
    if let Some(f) = field {
        v["field"] = Value::from(f);
    }
    v
}

fn plan_step(
    templates: &Templates,
    step: &StepDoc,
    k: usize,
    ctx: &Value,
    connections: &[ConnectionRecord],
    run_id: Uuid,
    chat: Option<&str>,
) -> Planned {
    let items: Vec<Option<Value>> = match &step.for_each {
        None => vec![None],
        Some(expr) => match templates.eval(expr, ctx) {
            Err(e) => return Planned::Failed(failure(Some("for_each".into()), e.0)),
            Ok(Value::Null) => Vec::new(),
            Ok(Value::Array(items)) => items.into_iter().map(Some).collect(),
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| Some(json!({"key": k, "value": v})))
                .collect(),
            Ok(other) => {
                return Planned::Failed(failure(
                    Some("for_each".into()),
                    format!("must give a list, not {}", kind_of(&other)),
                ));
            }
        },
    };
    if items.len() > MAX_ITEMS {
        return Planned::Failed(failure(
            Some("for_each".into()),
            format!("gave {} items; at most {MAX_ITEMS} are sent", items.len()),
        ));
    }
    let mut deliveries = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let scoped;
        let ctx = match &item {
            None => ctx,
            Some(item) => {
                let mut c = ctx.clone();
                c["item"] = item.clone();
                c["index"] = Value::from(i);
                scoped = c;
                &scoped
            }
        };
        if let Some(when) = &step.when {
            match templates.eval_bool(when, ctx) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Planned::Failed(failure(Some("when".into()), e.0)),
            }
        }
        match plan_item(
            templates,
            step,
            chat,
            ctx,
            connections,
            RunLink {
                run_id,
                step: k as i32,
                item: i as i32,
            },
        ) {
            Ok(item) => deliveries.push(item),
            Err(e) => return Planned::Failed(e),
        }
    }
    if deliveries.is_empty() {
        return Planned::Skipped(if step.for_each.is_some() {
            "no item to send"
        } else {
            "`when` was false"
        });
    }
    Planned::Send(deliveries)
}

/// The action a chat flow answers with.
const REPLY: &str = "reply";

/// A step's input with what a chat flow's `reply` step leaves out filled in: the message it
/// answers is the one that started the run.
pub fn with_reply_defaults(chat_flow: bool, step: &StepDoc) -> Value {
    let mut input = step.input.clone();
    if step.action == REPLY
        && chat_flow
        && let Value::Object(m) = &mut input
    {
        m.entry("message_id")
            .or_insert_with(|| Value::from("{{ trigger.msg_id }}"));
    }
    input
}

fn plan_item(
    templates: &Templates,
    step: &StepDoc,
    chat: Option<&str>,
    ctx: &Value,
    connections: &[ConnectionRecord],
    link: RunLink,
) -> Result<(NewDelivery, Value), Value> {
    let name = if step.connection.is_empty() {
        chat.ok_or_else(|| failure(Some("connection".into()), "no connection is given".into()))?
            .to_owned()
    } else if is_template(&step.connection) {
        templates
            .render(&step.connection, ctx)
            .map_err(|e| failure(Some("connection".into()), e.0))?
            .trim()
            .to_owned()
    } else {
        step.connection.clone()
    };
    let conn = connections
        .iter()
        .find(|c| c.fields.name == name)
        .ok_or_else(|| {
            failure(
                Some("connection".into()),
                format!("no connection is named `{name}`"),
            )
        })?;
    let def = actions::spec(&step.action).ok_or_else(|| {
        failure(
            Some("action".into()),
            format!("no action is named `{}`", step.action),
        )
    })?;
    if def.connection_kind != conn.fields.kind {
        return Err(failure(
            Some("action".into()),
            format!(
                "`{}` is for {} connections; `{name}` is a {} connection",
                def.name,
                def.connection_kind.as_str(),
                conn.fields.kind.as_str()
            ),
        ));
    }
    let input = with_reply_defaults(chat.is_some(), step);
    let input = templates
        .render_value(&input, ctx)
        .map_err(|(f, e)| failure(Some(input_field(&f)), e.0))?;
    let rendered = input.clone();
    let validated = def
        .validate(input)
        .map_err(|e| failure(e.field_name().map(input_field), e.reason()))?;
    validated
        .check_keywords(&conn.fields.keywords)
        .map_err(|e| failure(e.field_name().map(input_field), e.reason()))?;
    let new = validated
        .delivery(conn.id)
        .map_err(|e| failure(None, format!("the input cannot be stored: {e}")))?;
    let new = NewDelivery {
        // Hashed as a `Value`, as before the input became text: a run stored by an earlier
        // build finds its deliveries' hashes unchanged.
        request_hash: Some(crate::api::actions::request_hash(
            def.name,
            &new.input.to_value(),
        )),
        idempotency_key: Some(format!("run:{}:{}:{}", link.run_id, link.step, link.item)),
        run: Some(link),
        ..new
    };
    Ok((new, rendered))
}

fn input_field(f: &str) -> String {
    if f.is_empty() || f == "input" {
        "input".into()
    } else {
        format!("input.{f}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
