//! Flows as the API and CLI use them: apply (check, seal the hook's secrets, store a new
//! version), start runs (manual, webhook, schedule), and the background work (schedules coming
//! due, the sweep for runs a crash left between two steps).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::doc::{self, FlowDoc, FlowProblem, HookAuth, Parsed, Trigger};
use super::run::Advancer;
use super::schedule::Schedule;
use crate::connections::Connections;
use crate::secrets;
use crate::store::{
    Clock, FlowFields, FlowRecord, NewRun, RunFlow, RunStarted, ScheduleFire, Store, StoreError,
};

/// Where a secret was, in a stored document.
pub const SET: &str = "<set>";
/// The default dedupe window of webhook flows: an Alertmanager retry comes well within it.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The document has problems; nothing was stored.
    #[error("the flow has {} problem(s)", .0.len())]
    Invalid(Vec<FlowProblem>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot seal the hook's secrets: {0}")]
    Seal(String),
}

/// Why a hook call was refused (nothing was started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRefusal {
    /// Missing or wrong credentials or signature.
    Unauthorized(&'static str),
}

/// A trigger as templates read it (`trigger.*`).
#[derive(Debug, Clone)]
pub struct TriggerData {
    pub kind: &'static str,
    pub body: Value,
    pub headers: Value,
    pub query: Value,
    pub fired_at: DateTime<Utc>,
}

pub struct Flows {
    store: Arc<dyn Store>,
    connections: Arc<Connections>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Flows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flows")
    }
}

/// Key rotation: re-seals every flow's hook secrets under `keyring.current` (they open with any
/// of its keys). Returns how many flows were re-sealed. Older versions keep theirs: only the
/// current version's secrets check a hook.
pub async fn rotate_key(store: &dyn Store, keyring: &secrets::Keyring) -> Result<usize, String> {
    let mut n = 0;
    for flow in store.list_flows().await.map_err(|e| e.to_string())? {
        let Some(old) = &flow.fields.sealed_secrets else {
            continue;
        };
        let context = secrets_context(&flow.fields.name);
        let plain = secrets::open(keyring, &context, old)
            .map_err(|e| format!("flow {}: {e}", flow.fields.name))?;
        let new = secrets::seal(keyring, &context, plain.expose_secret())
            .map_err(|e| format!("flow {}: {e}", flow.fields.name))?;
        if store
            .swap_flow_secrets(flow.id, old, &new)
            .await
            .map_err(|e| e.to_string())?
        {
            n += 1;
        }
    }
    Ok(n)
}

fn secrets_context(name: &str) -> String {
    format!("flow:{name}:hook")
}

impl Flows {
    /// Registers the flow logic with the store (runs advance inside its transactions).
    pub fn new(
        store: Arc<dyn Store>,
        connections: Arc<Connections>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        store.set_run_advance(Advancer::new());
        Flows {
            store,
            connections,
            clock,
        }
    }

    /// Parses (YAML or JSON text), checks and stores a flow as its next version.
    pub async fn apply_text(&self, text: &str) -> Result<FlowRecord, ApplyError> {
        let parsed = doc::parse(text).map_err(|p| ApplyError::Invalid(vec![p]))?;
        self.apply(parsed).await
    }

    pub async fn apply(&self, parsed: Parsed) -> Result<FlowRecord, ApplyError> {
        let connections = self.store.list_connections().await?;
        let problems = super::check::check(&parsed, &|name| {
            connections.iter().find(|c| c.fields.name == name).map(|c| {
                super::check::KnownConnection {
                    kind: c.fields.kind,
                    stream: c.fields.stream,
                }
            })
        });
        if !problems.is_empty() {
            return Err(ApplyError::Invalid(problems));
        }
        let mut flow = parsed.doc;
        let sealed = match &mut flow.trigger {
            Trigger::Webhook {
                auth: Some(auth), ..
            } => {
                let mut plain = take_secrets(auth);
                let keyring = self.connections.keyring();
                self.keep_stored_secrets(&flow.name, &mut plain, &keyring)
                    .await?;
                Some(
                    secrets::seal(&keyring, &secrets_context(&flow.name), &plain.to_string())
                        .map_err(|e| ApplyError::Seal(e.to_string()))?,
                )
            }
            _ => None,
        };
        let next_fire_at = match &flow.trigger {
            Trigger::Schedule { cron, .. } => Schedule::parse(cron, flow.zone())
                .ok()
                .and_then(|s| s.next_after(self.clock.now())),
            _ => None,
        };
        let record = self
            .store
            .put_flow(&FlowFields {
                name: flow.name.clone(),
                trigger_kind: flow.trigger.kind().to_owned(),
                document: serde_json::to_value(&flow).expect("a flow serializes"),
                sealed_secrets: sealed,
                next_fire_at,
            })
            .await?;
        metrics::counter!("dtc_flow_applies_total").increment(1);
        tracing::info!(flow = %record.fields.name, version = record.version, "flow applied");
        Ok(record)
    }

    /// A secret given as [`SET`] (as a stored document shows it, so one can be edited and
    /// applied again) keeps the current version's secret; a new flow has none to keep.
    async fn keep_stored_secrets(
        &self,
        name: &str,
        plain: &mut Value,
        keyring: &secrets::Keyring,
    ) -> Result<(), ApplyError> {
        let Some(fields) = plain.as_object_mut() else {
            return Ok(());
        };
        if !fields.values().any(|v| v == SET) {
            return Ok(());
        }
        let stored: Option<Value> = match self.store.get_flow(name).await? {
            Some(FlowRecord {
                fields:
                    FlowFields {
                        sealed_secrets: Some(sealed),
                        ..
                    },
                ..
            }) => secrets::open(keyring, &secrets_context(name), &sealed)
                .ok()
                .and_then(|p| serde_json::from_str(p.expose_secret()).ok()),
            _ => None,
        };
        for (key, value) in fields.iter_mut().filter(|(_, v)| *v == SET) {
            match stored.as_ref().and_then(|s| s.get(key.as_str())) {
                Some(old) => *value = old.clone(),
                None => {
                    return Err(ApplyError::Invalid(vec![FlowProblem {
                        field: format!("trigger.auth.{key}"),
                        line: None,
                        reason: format!(
                            "is `{SET}`, which keeps a stored secret, but this flow has none: give the secret"
                        ),
                    }]));
                }
            }
        }
        Ok(())
    }

    pub async fn get(&self, name: &str) -> Result<Option<FlowRecord>, StoreError> {
        self.store.get_flow(name).await
    }

    /// The stored document as a flow.
    pub fn document(record: &FlowRecord) -> Result<FlowDoc, StoreError> {
        serde_json::from_value(record.fields.document.clone())
            .map_err(|e| StoreError::Corrupt(format!("flow {}: {e}", record.fields.name)))
    }

    /// Checks a webhook call's credentials against the flow's auth.
    pub fn verify_hook(
        &self,
        record: &FlowRecord,
        auth: Option<&HookAuth>,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<(), HookRefusal> {
        let Some(auth) = auth else { return Ok(()) };
        let sealed = record
            .fields
            .sealed_secrets
            .as_deref()
            .ok_or(HookRefusal::Unauthorized("the hook's secrets are missing"))?;
        let keyring = self.connections.keyring();
        let plain = secrets::open(&keyring, &secrets_context(&record.fields.name), sealed)
            .map_err(|_| HookRefusal::Unauthorized("the hook's secrets cannot be read"))?;
        let plain: Value = serde_json::from_str(plain.expose_secret())
            .map_err(|_| HookRefusal::Unauthorized("the hook's secrets cannot be read"))?;
        let secret = |k: &str| {
            plain
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let same = |a: &[u8], b: &[u8]| a.len() == b.len() && bool::from(a.ct_eq(b));
        match auth {
            HookAuth::Bearer { .. } => {
                let given = header("authorization")
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .ok_or(HookRefusal::Unauthorized(
                        "send Authorization: Bearer <token>",
                    ))?;
                if !same(given.trim().as_bytes(), secret("token").as_bytes()) {
                    return Err(HookRefusal::Unauthorized("the bearer token is wrong"));
                }
            }
            HookAuth::Basic { .. } => {
                use base64::Engine;
                let given = header("authorization")
                    .and_then(|v| {
                        v.strip_prefix("Basic ")
                            .or_else(|| v.strip_prefix("basic "))
                    })
                    .and_then(|b| {
                        base64::engine::general_purpose::STANDARD
                            .decode(b.trim())
                            .ok()
                    })
                    .ok_or(HookRefusal::Unauthorized(
                        "send Authorization: Basic <credentials>",
                    ))?;
                let expected = format!("{}:{}", secret("username"), secret("password"));
                if !same(&given, expected.as_bytes()) {
                    return Err(HookRefusal::Unauthorized(
                        "the username or password is wrong",
                    ));
                }
            }
            HookAuth::Hmac {
                header: sig_header,
                timestamp_header,
                ..
            } => {
                let given = header(sig_header)
                    .ok_or(HookRefusal::Unauthorized("the signature header is missing"))?;
                let mut mac = Hmac::<Sha256>::new_from_slice(secret("secret").as_bytes())
                    .map_err(|_| HookRefusal::Unauthorized("the hook's secret cannot be used"))?;
                if let Some(ts) = timestamp_header {
                    let ts = header(ts)
                        .ok_or(HookRefusal::Unauthorized("the timestamp header is missing"))?;
                    mac.update(ts.as_bytes());
                    mac.update(b":");
                }
                mac.update(body);
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if !same(given.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
                    return Err(HookRefusal::Unauthorized(
                        "the signature does not match the body",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The trigger kind a dry run (or run now) reads a sample as: the flow's own.
    pub fn sample_kind(trigger_kind: &str) -> &'static str {
        match trigger_kind {
            "webhook" => "webhook",
            "schedule" => "schedule",
            "chat" => "chat",
            _ => "manual",
        }
    }

    /// Starts a run of the flow's current version. `dedupe` (a key and its window) makes a
    /// repeat within the window answer the first run.
    pub async fn start(
        &self,
        record: &FlowRecord,
        trigger: TriggerData,
        dedupe: Option<(String, Duration)>,
        fire: Option<ScheduleFire>,
    ) -> Result<RunStarted, StoreError> {
        let doc = Self::document(record)?;
        // Time-ordered, like delivery ids: a new run's row goes at the end of the id index.
        let id = Uuid::now_v7();
        let context = context(record, &doc, &trigger, id);
        let (dedupe_key, dedupe_window) = match dedupe {
            Some((k, w)) => (Some(k), w),
            None => (None, Duration::ZERO),
        };
        let started = self
            .store
            .start_run(&NewRun {
                id,
                flow: RunFlow {
                    id: record.id,
                    name: record.fields.name.clone(),
                    version: record.version,
                    trigger_kind: trigger.kind.to_owned(),
                },
                context,
                dedupe_key,
                dedupe_window,
                fire,
            })
            .await?;
        let outcome = match &started {
            RunStarted::Started(_) => "started",
            RunStarted::Duplicate(_) => "duplicate",
            RunStarted::AlreadyFired => "already_fired",
        };
        metrics::counter!("dtc_flow_runs_started_total", "flow" => record.fields.name.clone(), "outcome" => outcome)
            .increment(1);
        Ok(started)
    }

    /// Fires every schedule due now: one run per (flow, due time) whichever instances tick,
    /// and after downtime only the latest missed time. Returns the runs started.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut started = 0;
        for record in self.store.due_flows(now).await? {
            let Some(was_due) = record.fields.next_fire_at else {
                continue;
            };
            let schedule = Self::document(&record)
                .ok()
                .and_then(|doc| match &doc.trigger {
                    Trigger::Schedule { cron, .. } => Schedule::parse(cron, doc.zone()).ok(),
                    _ => None,
                });
            let Some(schedule) = schedule else {
                // Applying checked the pattern; only a hand-edited database gets here.
                tracing::warn!(flow = %record.fields.name, "a due flow has no usable schedule");
                continue;
            };
            let (fire_at, next_due) = schedule.catch_up(was_due, now);
            let trigger = TriggerData {
                kind: "schedule",
                body: json!({"fire_at": fire_at.to_rfc3339()}),
                headers: json!({}),
                query: json!({}),
                fired_at: fire_at,
            };
            let fire = ScheduleFire {
                fire_at,
                was_due,
                next_due,
            };
            if let RunStarted::Started(run) = self.start(&record, trigger, None, Some(fire)).await?
            {
                let lag = (now - fire_at).to_std().unwrap_or_default();
                metrics::histogram!("dtc_schedule_lag_seconds").record(lag.as_secs_f64());
                tracing::info!(flow = %record.fields.name, run_id = %run.id, fire_at = %fire_at, "schedule fired");
                started += 1;
            }
        }
        Ok(started)
    }

    /// Renders every step from a sample trigger and checks it, sending nothing.
    pub async fn dry_run(
        &self,
        record: &FlowRecord,
        trigger: TriggerData,
    ) -> Result<Vec<Value>, StoreError> {
        let doc = Self::document(record)?;
        let zone = super::schedule::parse_zone(doc.zone()).map_err(StoreError::Corrupt)?;
        let templates = super::template::Templates::new(zone);
        let ctx = context(record, &doc, &trigger, Uuid::nil());
        let connections = self.store.list_connections().await?;
        Ok(super::run::dry_run(&doc, &templates, &ctx, &connections))
    }

    /// Advances runs a crash left between two steps; how many.
    pub async fn sweep(&self, untouched_for: Duration) -> Result<usize, StoreError> {
        let cutoff =
            self.clock.now() - chrono::Duration::from_std(untouched_for).unwrap_or_default();
        let stalled = self.store.stalled_runs(cutoff).await?;
        for id in &stalled {
            self.store.advance_run(*id).await?;
        }
        Ok(stalled.len())
    }
}

/// What templates read at the start of a run.
fn context(record: &FlowRecord, doc: &FlowDoc, trigger: &TriggerData, run: Uuid) -> Value {
    let mut t = json!({
        "kind": trigger.kind,
        "body": trigger.body,
        "headers": trigger.headers,
        "query": trigger.query,
        "fired_at": trigger.fired_at.to_rfc3339(),
    });
    // A chat message's fields are read directly: `trigger.text`, `trigger.sender.nick`.
    if trigger.kind == "chat"
        && let (Value::Object(fields), Value::Object(t)) = (&trigger.body, &mut t)
    {
        for (k, v) in fields {
            t.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    json!({
        "trigger": t,
        "vars": doc.vars,
        "steps": {},
        "now": trigger.fired_at.to_rfc3339(),
        "flow": {"name": record.fields.name, "version": record.version},
        "run": {"id": run.to_string()},
    })
}

/// Replaces the secrets in `auth` by [`SET`]; returns them as JSON.
fn take_secrets(auth: &mut HookAuth) -> Value {
    let take = |s: &mut String| std::mem::replace(s, SET.to_owned());
    match auth {
        HookAuth::Bearer { token } => json!({"token": take(token)}),
        HookAuth::Basic { username, password } => {
            json!({"username": take(username), "password": take(password)})
        }
        HookAuth::Hmac { secret, .. } => json!({"secret": take(secret)}),
    }
}

/// The dedupe key of a notification: its body's digest. Alertmanager's deliberate repeats
/// (`repeat_interval`, hours) fall outside the window; its retries of one flush carry the same
/// body and fall inside it.
pub fn body_key(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
