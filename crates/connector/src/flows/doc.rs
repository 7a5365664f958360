//! A flow document as users write it (YAML or JSON), read with the line of every value so that
//! each error can say where it is.

use std::collections::HashMap;

use marked_yaml::{LoaderOptions, Node};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The default time zone of schedules and of the time filters: where DingTalk's users are.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// One flow: a trigger, optional variables, and the steps it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = flow_rules)]
pub struct FlowDoc {
    /// Unique; the flow's address (`/hooks/{name}`, `/v1/flows/{name}`).
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub trigger: Trigger,
    /// The time zone of the schedule and of the `localtime` filter (an IANA name).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Values the templates read as `vars.<name>`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
    pub steps: Vec<StepDoc>,
}

/// Identifiers templates read (`vars.<name>`, `steps.<id>`).
pub const IDENTIFIER: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// The rules [`super::check`] applies that a schema can state.
fn flow_rules(schema: &mut schemars::Schema) {
    use crate::actions::types::{add_rule, text_without_nul};
    let name = serde_json::json!({
        "minLength": 1,
        "maxLength": crate::connections::MAX_NAME_CHARS,
        "pattern": crate::actions::types::PLAIN_NAME,
        "not": { "pattern": r"^(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$",
                 "description": "must not be a UUID" }
    });
    add_rule(
        schema,
        serde_json::json!({ "properties": {
            "name": name,
            "vars": { "propertyNames": { "pattern": IDENTIFIER } },
            "steps": { "minItems": 1 },
            "timezone": { "minLength": 1, "pattern": text_without_nul() }
        } }),
    );
}

fn step_rules(schema: &mut schemars::Schema) {
    use crate::actions::types::{add_rule, text_without_nul};
    add_rule(
        schema,
        serde_json::json!({ "properties": {
            "id": { "pattern": IDENTIFIER },
            "action": { "minLength": 1 },
            "connection": { "minLength": 1, "pattern": text_without_nul() },
            "input": { "type": "object" }
        } }),
    );
}

/// Secrets and header names must not be blank: every string property of every variant.
fn secret_rules(schema: &mut schemars::Schema) {
    fn visit(v: &mut Value, text: &Value) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&Value::from("string")) && !m.contains_key("enum") {
                    m.insert("minLength".into(), Value::from(1));
                    m.insert("pattern".into(), text.clone());
                }
                m.values_mut().for_each(|v| visit(v, text));
            }
            Value::Array(a) => a.iter_mut().for_each(|v| visit(v, text)),
            _ => {}
        }
    }
    let text = Value::from(crate::actions::types::text_without_nul());
    if let Some(obj) = schema.as_object_mut() {
        obj.values_mut().for_each(|v| visit(v, &text));
    }
}

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_owned()
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// `POST /hooks/{flow}`.
    Webhook {
        /// How the body is read: `alertmanager`, `grafana` or `json`.
        #[serde(default)]
        format: HookFormat,
        /// Who may call the hook. Without it the hook is open to anyone who can reach it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<HookAuth>,
        /// The same body again within this many seconds starts no second run (600 by default;
        /// 0 turns deduplication off; at most a day).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(max = 86_400))]
        dedupe_window_secs: Option<u64>,
    },
    /// A cron schedule (5 fields, or 6 with seconds first).
    Schedule {
        cron: String,
        /// The schedule's time zone; the flow's `timezone` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
    },
    /// Only `POST /v1/flows/{name}/runs` (or `dtc flow run`).
    Manual,
    /// A message to the robot of an app-robot connection with Stream mode on: in a group when
    /// the robot is @-mentioned, in a 1:1 conversation always. Every condition given must hold.
    Chat {
        /// The connection whose robot is addressed.
        connection: String,
        /// Which conversations: `any` (the default), `group` or `one_to_one`.
        #[serde(default)]
        conversation: ChatScope,
        /// The first word of the text, compared without case (a leading `/` is ignored): the
        /// rest of the words are `trigger.args`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// A regular expression the text must match (Rust `regex` syntax); its groups are
        /// `trigger.match` (`trigger.match.1`, or by name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        /// Only messages from these people (userId or nick); anyone when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        senders: Vec<String>,
    },
}

/// Which conversations a chat flow listens to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatScope {
    #[default]
    Any,
    Group,
    OneToOne,
}

impl FlowDoc {
    /// The time zone the schedule and the time filters use.
    pub fn zone(&self) -> &str {
        match &self.trigger {
            Trigger::Schedule {
                timezone: Some(tz), ..
            } => tz,
            _ => &self.timezone,
        }
    }
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Webhook { .. } => "webhook",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Manual => "manual",
            Trigger::Chat { .. } => "chat",
        }
    }

    /// The connection a chat flow listens on (and its steps use when they name none).
    pub fn chat_connection(&self) -> Option<&str> {
        match self {
            Trigger::Chat { connection, .. } => Some(connection),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HookFormat {
    /// Prometheus Alertmanager's webhook payload (version 4).
    Alertmanager,
    /// Grafana's webhook contact point payload.
    Grafana,
    /// Any JSON body.
    #[default]
    Json,
}

/// Webhook authentication. Secrets are never stored in clear: the document keeps `"<set>"`
/// where a secret was, and the secret itself is sealed beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(transform = secret_rules)]
pub enum HookAuth {
    /// `Authorization: Bearer <token>` (Alertmanager's `http_config.authorization`).
    Bearer { token: String },
    /// `Authorization: Basic …` (Alertmanager's `http_config.basic_auth`).
    Basic { username: String, password: String },
    /// HMAC-SHA256 of the body, hex, in `header` (Grafana's `X-Grafana-Alerting-Signature`);
    /// with `timestamp_header`, the signed text is `<timestamp>:<body>`.
    Hmac {
        secret: String,
        #[serde(default = "default_hmac_header")]
        header: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp_header: Option<String>,
    },
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn default_hmac_header() -> String {
    "X-Grafana-Alerting-Signature".to_owned()
}

/// One step: an action of a connection, with templated input.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = step_rules)]
pub struct StepDoc {
    /// Unique in the flow; later steps read `steps.<id>.output`.
    pub id: String,
    /// An action of the catalog (`send_markdown`, `reply`, …).
    pub action: String,
    /// The connection's name (a template is allowed: routing by label). A chat flow's steps
    /// use the trigger's connection when this is left out.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connection: String,
    /// The action's input; every string is a template.
    #[serde(default = "empty_object")]
    pub input: Value,
    /// A condition (an expression, no braces): the step is skipped when it is false.
    pub when: Option<String>,
    /// An expression giving a list: the step runs once per item, as `item` (and `index`).
    pub for_each: Option<String>,
    #[serde(default)]
    pub on_error: OnError,
}

/// What a failed step does to its run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The run fails; later steps do not run.
    #[default]
    Fail,
    /// The failure is recorded and the next step runs.
    Continue,
}

/// Where a problem is: the field's path and, when the document was read from text, its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FlowProblem {
    /// `steps[1].input.content`; empty for the document as a whole.
    pub field: String,
    /// 1-based; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub reason: String,
}

impl std::fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.field.is_empty()) {
            (Some(l), false) => write!(f, "line {l}, `{}`: {}", self.field, self.reason),
            (Some(l), true) => write!(f, "line {l}: {}", self.reason),
            (None, false) => write!(f, "`{}`: {}", self.field, self.reason),
            (None, true) => f.write_str(&self.reason),
        }
    }
}

/// The lines of a document's values, by field path (`steps[0].input`).
#[derive(Debug, Clone, Default)]
pub struct Lines(HashMap<String, usize>);

impl Lines {
    /// The line of `field`, or of the nearest enclosing field that has one.
    pub fn of(&self, field: &str) -> Option<usize> {
        let mut path = field;
        loop {
            if let Some(l) = self.0.get(path) {
                return Some(*l);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    pub fn problem(&self, field: impl Into<String>, reason: impl Into<String>) -> FlowProblem {
        let field = field.into();
        FlowProblem {
            line: self.of(&field),
            field,
            reason: reason.into(),
        }
    }
}

/// A document read from text: the JSON value, where each value was, and the typed flow.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub value: Value,
    pub lines: Lines,
    pub doc: FlowDoc,
}

/// Reads a flow from YAML or JSON text (JSON is read as YAML, which it is). Anchors, aliases,
/// tags and duplicate keys are refused.
pub fn parse(text: &str) -> Result<Parsed, FlowProblem> {
    if text.contains('\0') {
        return Err(FlowProblem {
            field: String::new(),
            line: text
                .find('\0')
                .map(|at| text[..at].matches('\n').count() + 1),
            reason: "the document contains a NUL character".into(),
        });
    }
    let node = marked_yaml::parse_yaml_with_options(
        0,
        text,
        LoaderOptions::default()
            .error_on_duplicate_keys(true)
            // Marks quoted scalars as not coercible: `"123"` stays a string.
            .prevent_coercion(true),
    )
    .map_err(load_problem)?;
    let mut lines = Lines::default();
    let value = to_json(&node, String::new(), &mut lines);
    let doc = from_value(&value, &lines)?;
    Ok(Parsed { value, lines, doc })
}

/// Reads a flow from a JSON value (no lines known).
pub fn from_json(value: Value) -> Result<Parsed, FlowProblem> {
    let lines = Lines::default();
    let doc = from_value(&value, &lines)?;
    Ok(Parsed { value, lines, doc })
}

/// Reads a flow from JSON text already parsed as `value`: the lines come from reading the text
/// as YAML too, when the YAML reader takes it (it does not take every JSON escape).
pub fn from_json_text(text: &str, value: Value) -> Result<Parsed, FlowProblem> {
    let lines = marked_yaml::parse_yaml_with_options(
        0,
        text,
        LoaderOptions::default().prevent_coercion(true),
    )
    .map(|node| {
        let mut lines = Lines::default();
        to_json(&node, String::new(), &mut lines);
        lines
    })
    .unwrap_or_default();
    let doc = from_value(&value, &lines)?;
    Ok(Parsed { value, lines, doc })
}

fn from_value(value: &Value, lines: &Lines) -> Result<FlowDoc, FlowProblem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        lines.problem(field, e.inner().to_string())
    })
}

fn load_problem(e: marked_yaml::LoadError) -> FlowProblem {
    use marked_yaml::LoadError::*;
    #[allow(deprecated)]
    let (marker, reason) = match &e {
        TopLevelMustBeMapping(m) => (Some(*m), "the document must be a mapping (name: …)".into()),
        TopLevelMustBeSequence(m) => (Some(*m), "the document must be a sequence".into()),
        UnexpectedAnchor(m) => (Some(*m), "anchors and aliases are not supported".into()),
        MappingKeyMustBeScalar(m) => (Some(*m), "a key must be a plain value".into()),
        UnexpectedTag(m) => (Some(*m), "tags (!…) are not supported".into()),
        ScanError(m, err) => (Some(*m), format!("not valid YAML: {}", scan_reason(err))),
        DuplicateKey(d) => (
            d.key.span().start().copied(),
            format!("duplicate key `{}`", d.key.as_str()),
        ),
        #[allow(unreachable_patterns)]
        _ => (None, e.to_string()),
    };
    FlowProblem {
        field: String::new(),
        line: marker.map(|m| m.line()),
        reason,
    }
}

fn scan_reason(e: &impl std::fmt::Display) -> String {
    // yaml-rust appends " at byte … line … column …"; the line is reported separately.
    let text = e.to_string();
    match text.find(" at byte ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// YAML 1.2 core schema scalars: plain `null`/`~`/empty, booleans and numbers are typed; quoted
/// scalars are strings.
fn to_json(node: &Node, path: String, lines: &mut Lines) -> Value {
    if let Some(m) = node.span().start() {
        lines.0.entry(path.clone()).or_insert(m.line());
    }
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_owned());
            }
            match text {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                _ => {
                    if let Some(b) = yaml_bool(text) {
                        Value::Bool(b)
                    } else if let Ok(i) = text.parse::<i64>() {
                        Value::from(i)
                    } else if looks_numeric(text)
                        && let Some(n) = text
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                    {
                        Value::Number(n)
                    } else {
                        Value::String(text.to_owned())
                    }
                }
            }
        }
        Node::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| to_json(n, format!("{path}[{i}]"), lines))
                .collect(),
        ),
        Node::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter() {
                let key = k.as_str().to_owned();
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(m) = k.span().start() {
                    lines.0.insert(child.clone(), m.line());
                }
                out.insert(key, to_json(v, child, lines));
            }
            Value::Object(out)
        }
    }
}

fn yaml_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Digits with at most a sign, a point and an exponent: `inf`, `nan` and `1_000` stay strings.
fn looks_numeric(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "\
name: am-ops
trigger:
  type: webhook
  format: alertmanager
vars:
  group: \"cid123==\"
  retries: 3
steps:
  - id: notify
    action: send_markdown
    connection: ops
    input:
      group_chat_id: \"{{ vars.group }}\"
      title: alert
      text: |
        ### {{ trigger.body.status }}
";

    #[test]
    fn a_yaml_flow_reads_with_types_and_lines() {
        let p = parse(FLOW).unwrap();
        assert_eq!(p.doc.name, "am-ops");
        assert_eq!(p.doc.timezone, DEFAULT_TIMEZONE);
        assert_eq!(p.doc.vars["retries"], 3);
        assert_eq!(p.doc.vars["group"], "cid123==");
        assert_eq!(
            p.doc.steps[0].input["text"],
            "### {{ trigger.body.status }}\n"
        );
        assert_eq!(p.lines.of("steps[0].input.title"), Some(14));
        assert_eq!(p.lines.of("steps[0].action"), Some(10));
        // A field that is not there is placed at its nearest parent.
        assert_eq!(p.lines.of("steps[0].input.nope"), Some(12));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let p = parse(
            "name: \"123\"\ntrigger: {type: manual}\nsteps: []\nvars: {a: 'true', b: true}\n",
        )
        .unwrap();
        assert_eq!(p.doc.name, "123");
        assert_eq!(p.doc.vars["a"], "true");
        assert_eq!(p.doc.vars["b"], true);
    }

    #[test]
    fn json_text_keeps_its_lines() {
        let text = "{\n  \"name\": \"j\",\n  \"trigger\": {\"type\": \"manual\"},\n  \"steps\": [\n    {\"id\": \"a\", \"action\": \"send_text\", \"connection\": \"c\"}\n  ]\n}";
        let value: Value = serde_json::from_str(text).unwrap();
        let p = from_json_text(text, value).unwrap();
        assert_eq!(p.lines.of("steps[0].connection"), Some(5));
    }

    #[test]
    fn json_is_read_too() {
        let p = parse(r#"{"name": "j", "trigger": {"type": "manual"}, "steps": []}"#).unwrap();
        assert_eq!(p.doc.trigger, Trigger::Manual);
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let e = parse(&FLOW.replace(
            "    action: send_markdown\n",
            "    action: send_markdown\n    retry: 3\n",
        ))
        .unwrap_err();
        assert_eq!(e.field, "steps[0].retry");
        assert!(e.reason.contains("unknown field `retry`"), "{e}");
        assert_eq!(e.line, Some(11));

        let e = parse("name: x\ntrigger:\n  type: cron\nsteps: []\n").unwrap_err();
        assert_eq!(e.field, "trigger.type");
        assert!(e.reason.contains("unknown variant `cron`"), "{e}");
        assert_eq!(e.line, Some(3));

        let e = parse("name: x\nname: y\n").unwrap_err();
        assert!(e.reason.contains("duplicate key `name`"), "{e}");
        assert_eq!(e.line, Some(2));

        let e = parse("name: x\n  steps: [\n").unwrap_err();
        assert!(e.reason.starts_with("not valid YAML"), "{e}");
        assert!(e.line.is_some());

        let e = parse("a: &x 1\nb: *x\n").unwrap_err();
        assert!(e.reason.contains("anchors"), "{e}");
    }
}
