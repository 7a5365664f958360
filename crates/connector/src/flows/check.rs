//! Everything about a flow that can be checked before anything runs: names and ids, references
//! between steps, connections and actions, literal inputs against the action's JSON Schema,
//! templates and expressions that parse, the cron pattern and time zone, the webhook's auth.
//! Every problem is reported (not just the first), each with its line and field.

use std::collections::HashSet;

use minijinja::Environment;
use serde_json::Value;

use super::doc::{FlowProblem, HookAuth, Parsed, Trigger};
use super::schedule::{Schedule, parse_zone};
use super::template::{TemplateError, Templates, is_template};
use crate::actions;
use crate::connections::ConnectionKind;

/// Names a template may read: the run's context, and MiniJinja's global functions.
const CONTEXT: &[&str] = &["trigger", "vars", "steps", "now", "flow", "run"];
const FOR_EACH: &[&str] = &["item", "index"];
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "lipsum",
    "cycler",
    "joiner",
    "loop",
];
/// The action a chat flow answers with.
const REPLY: &str = "reply";
/// The longest dedupe window: a day.
pub const MAX_DEDUPE_WINDOW_SECS: u64 = 86_400;

/// What a check needs to know of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownConnection {
    pub kind: ConnectionKind,
    /// Stream mode on: its robot's messages arrive (chat flows need it).
    pub stream: bool,
}

/// Checks a parsed flow; `connection` looks a connection up by name.
pub fn check(p: &Parsed, connection: &dyn Fn(&str) -> Option<KnownConnection>) -> Vec<FlowProblem> {
    let doc = &p.doc;
    let lines = &p.lines;
    let mut problems = Vec::new();
    let mut problem = |field: String, reason: String| problems.push(lines.problem(field, reason));

    if let Some(reason) = crate::connections::name_problem(&doc.name) {
        problem("name".into(), reason);
    }
    let zone = match parse_zone(doc.zone()) {
        Ok(z) => z,
        Err(reason) => {
            let field = match &doc.trigger {
                Trigger::Schedule {
                    timezone: Some(_), ..
                } => "trigger.timezone",
                _ => "timezone",
            };
            problem(field.into(), reason);
            chrono_tz::Asia::Shanghai
        }
    };
    match &doc.trigger {
        Trigger::Schedule { cron, .. } => {
            if let Err(reason) = Schedule::parse(cron, &zone.to_string()) {
                problem("trigger.cron".into(), reason);
            }
        }
        Trigger::Webhook {
            auth,
            dedupe_window_secs,
            ..
        } => {
            if dedupe_window_secs.is_some_and(|w| w > MAX_DEDUPE_WINDOW_SECS) {
                problem(
                    "trigger.dedupe_window_secs".into(),
                    format!("must be at most {MAX_DEDUPE_WINDOW_SECS} (a day)"),
                );
            }
            if let Some(auth) = auth {
                for (field, value) in auth_secrets(auth) {
                    if value.trim().is_empty() {
                        problem(format!("trigger.auth.{field}"), "must not be empty".into());
                    }
                }
            }
        }
        Trigger::Manual => {}
        Trigger::Chat {
            connection: name,
            command,
            pattern,
            senders,
            ..
        } => {
            match connection(name) {
                None => problem(
                    "trigger.connection".into(),
                    format!("no connection is named `{name}`"),
                ),
                Some(c) if c.kind != ConnectionKind::AppRobot => problem(
                    "trigger.connection".into(),
                    format!(
                        "`{name}` is a {} connection; only an app robot receives messages",
                        c.kind.as_str()
                    ),
                ),
                Some(c) if !c.stream => problem(
                    "trigger.connection".into(),
                    format!(
                        "`{name}` has Stream mode off, so its robot's messages do not arrive \
                         (turn it on: the console's edit page, or PATCH the connection with \
                         `\"stream\": true`)"
                    ),
                ),
                Some(_) => {}
            }
            if let Some(c) = command {
                let word = c.trim().trim_start_matches('/');
                if word.is_empty() || word.contains(char::is_whitespace) {
                    problem(
                        "trigger.command".into(),
                        "a command is one word (the arguments after it are `trigger.args`)".into(),
                    );
                }
            }
            if let Some(p) = pattern
                && let Err(reason) = super::chat::compile(p)
            {
                problem("trigger.pattern".into(), reason);
            }
            for (i, who) in senders.iter().enumerate() {
                if who.trim().is_empty() {
                    problem(format!("trigger.senders[{i}]"), "must not be empty".into());
                }
            }
        }
    }
    for (k, v) in &doc.vars {
        if k.is_empty() || !is_identifier(k) {
            problem(
                format!("vars.{k}"),
                "variable names are letters, digits and '_', not starting with a digit".into(),
            );
        }
        if let Some((at, e)) = plain_templates(v) {
            let field = if at.is_empty() {
                format!("vars.{k}")
            } else {
                format!("vars.{k}.{at}")
            };
            problem(field, format!("variables are values, not templates: {e}"));
        }
    }

    if doc.steps.is_empty() {
        problem("steps".into(), "a flow needs at least one step".into());
    }
    let templates = Templates::new(zone);
    let mut earlier: Vec<&str> = Vec::new();
    for (i, step) in doc.steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        if !is_identifier(&step.id) {
            problem(
                at("id"),
                "step ids are letters, digits and '_', not starting with a digit (templates read `steps.<id>.output`)"
                    .into(),
            );
        } else if earlier.contains(&step.id.as_str()) {
            problem(
                at("id"),
                format!("another step is already called `{}`", step.id),
            );
        }
        let scope = Scope {
            vars: doc.vars.keys().map(String::as_str).collect(),
            steps: earlier.clone(),
            per_item: step.for_each.is_some(),
        };
        let def = actions::spec(&step.action);
        if def.is_none() {
            let names: Vec<&str> = actions::catalog().iter().map(|d| d.name).collect();
            problem(
                at("action"),
                format!(
                    "no action is named `{}` (actions: {})",
                    step.action,
                    names.join(", ")
                ),
            );
        }
        let step_connection = if step.connection.is_empty() {
            match doc.trigger.chat_connection() {
                Some(c) => c,
                None => {
                    problem(
                        at("connection"),
                        "a step needs a `connection` (only a chat flow's steps default to the trigger's)"
                            .into(),
                    );
                    earlier.push(&step.id);
                    continue;
                }
            }
        } else {
            step.connection.as_str()
        };
        if is_template(step_connection) {
            if let Err(e) = templates.check_template(step_connection) {
                problem(at("connection"), e.0);
            }
            refs(
                step_connection,
                false,
                &scope,
                &at("connection"),
                &mut problem,
            );
        } else {
            match connection(step_connection) {
                None => problem(
                    at("connection"),
                    format!("no connection is named `{step_connection}`"),
                ),
                Some(known) => {
                    if let Some(def) = def
                        && def.connection_kind != known.kind
                    {
                        problem(
                            at("action"),
                            format!(
                                "`{}` is for {} connections; `{}` is a {} connection",
                                def.name,
                                def.connection_kind.as_str(),
                                step_connection,
                                known.kind.as_str()
                            ),
                        );
                    }
                }
            }
        }
        for (field, expr) in [("when", &step.when), ("for_each", &step.for_each)] {
            let Some(expr) = expr else { continue };
            match templates.check_expression(expr) {
                Err(e) => problem(at(field), e.0),
                // `when` sees the item too, when there is one.
                Ok(()) => refs(
                    expr,
                    true,
                    &Scope {
                        per_item: scope.per_item && field == "when",
                        ..scope.clone()
                    },
                    &at(field),
                    &mut problem,
                ),
            }
        }
        let input = super::run::with_reply_defaults(doc.trigger.chat_connection().is_some(), step);
        if step.action == REPLY
            && doc.trigger.chat_connection().is_none()
            && input.get("message_id").is_none()
        {
            problem(
                at("input.message_id"),
                "a reply outside a chat flow needs the `message_id` of the message it answers"
                    .into(),
            );
        }
        let mut templated = HashSet::new();
        let mut bad_template = false;
        super::template::walk_strings(&input, String::new(), &mut |path, s| {
            if !is_template(s) {
                return;
            }
            templated.insert(pointer(&path));
            let field = if path.is_empty() {
                at("input")
            } else {
                at(&format!("input.{path}"))
            };
            if let Err((_, e)) = templates.check_value(&Value::String(s.to_owned())) {
                bad_template = true;
                problem(field, e.0);
            } else {
                refs(s, false, &scope, &field, &mut problem);
            }
        });
        if let Some(def) = def
            && !bad_template
        {
            let skip = |p: &str| {
                templated
                    .iter()
                    .any(|t| p == t || p.starts_with(&format!("{t}/")))
            };
            if let Err(e) = def.check_literal(&input, &skip, !templated.is_empty()) {
                let field = match e.field_name() {
                    Some(f) if f != "input" => at(&format!("input.{f}")),
                    _ => at("input"),
                };
                problem(field, e.reason());
            }
        }
        earlier.push(&step.id);
    }
    problems
}

fn auth_secrets(auth: &HookAuth) -> Vec<(&'static str, &str)> {
    match auth {
        HookAuth::Bearer { token } => vec![("bearer.token", token)],
        HookAuth::Basic { username, password } => {
            vec![("basic.username", username), ("basic.password", password)]
        }
        HookAuth::Hmac { secret, header, .. } => {
            vec![("hmac.secret", secret), ("hmac.header", header)]
        }
    }
}

#[derive(Clone)]
struct Scope<'a> {
    vars: Vec<&'a str>,
    steps: Vec<&'a str>,
    per_item: bool,
}

/// Checks what a template or expression reads: known names, variables that exist, steps that
/// ran before this one.
fn refs(
    source: &str,
    expression: bool,
    scope: &Scope<'_>,
    field: &str,
    problem: &mut dyn FnMut(String, String),
) {
    let env = Environment::new();
    let names = if expression {
        match env.compile_expression(source) {
            Ok(e) => e.undeclared_variables(true),
            Err(_) => return,
        }
    } else {
        match env.template_from_str(source) {
            Ok(t) => t.undeclared_variables(true),
            Err(_) => return,
        }
    };
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    for name in names {
        let mut parts = name.split('.');
        let top = parts.next().unwrap_or_default();
        let next = parts.next();
        if FOR_EACH.contains(&top) {
            if !scope.per_item {
                problem(
                    field.to_owned(),
                    format!("`{top}` is only defined in a step with `for_each`"),
                );
            }
        } else if top == "vars" {
            if let Some(v) = next
                && !scope.vars.contains(&v)
            {
                problem(
                    field.to_owned(),
                    format!("`vars.{v}` is not defined in `vars`"),
                );
            }
        } else if top == "steps" {
            if let Some(s) = next
                && !scope.steps.contains(&s)
            {
                problem(
                    field.to_owned(),
                    format!("`steps.{s}` is not a step before this one"),
                );
            }
        } else if !CONTEXT.contains(&top) && !GLOBALS.contains(&top) {
            problem(
                field.to_owned(),
                format!(
                    "`{top}` is not defined (templates read trigger, vars, steps, now, flow, run{})",
                    if scope.per_item { ", item, index" } else { "" }
                ),
            );
        }
    }
}

/// The first template string in a value, with its path.
fn plain_templates(v: &Value) -> Option<(String, TemplateError)> {
    let mut found = None;
    super::template::walk_strings(v, String::new(), &mut |path, s| {
        if found.is_none() && is_template(s) {
            found = Some((path, TemplateError(format!("`{s}`"))));
        }
    });
    found
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `buttons[1].url` → `/buttons/1/url` (the validator's instance paths).
fn pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for idx in rest.split('[') {
            let idx = idx.trim_end_matches(']');
            if !idx.is_empty() {
                out.push('/');
                out.push_str(idx);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::doc::parse;

    fn known(name: &str) -> Option<KnownConnection> {
        let (kind, stream) = match name {
            "ops" => (ConnectionKind::AppRobot, true),
            "quiet" => (ConnectionKind::AppRobot, false),
            "hook" => (ConnectionKind::WebhookRobot, false),
            _ => return None,
        };
        Some(KnownConnection { kind, stream })
    }

    fn problems(text: &str) -> Vec<FlowProblem> {
        check(&parse(text).unwrap(), &known)
    }

    const GOOD: &str = "\
name: am-ops
trigger: {type: webhook, format: alertmanager}
vars:
  group: cid123==
steps:
  - id: notify
    action: send_markdown
    connection: ops
    for_each: trigger.body.alerts
    input:
      group_chat_id: \"{{ vars.group }}\"
      subject: \"{{ item.labels.alertname }}\"
      content: \"{{ item.annotations.summary | md_escape }}\"
  - id: after
    action: send_text
    connection: ops
    when: steps.notify.output
    input:
      group_chat_id: cid123==
      content: done
";

    #[test]
    fn a_good_flow_has_no_problems() {
        assert_eq!(problems(GOOD), vec![]);
    }

    #[test]
    fn each_problem_names_its_line_field_and_reason() {
        let bad = GOOD
            .replace(
                "connection: ops\n    for_each",
                "connection: nope\n    for_each",
            )
            .replace("action: send_text", "action: send_fax")
            .replace("{{ vars.group }}", "{{ vars.groups }}")
            .replace("when: steps.notify.output", "when: steps.later.output")
            .replace("content: done", "content: \"{% if %}\"");
        let p = problems(&bad);
        let found: Vec<(String, Option<usize>)> =
            p.iter().map(|p| (p.field.clone(), p.line)).collect();
        assert!(
            found.contains(&("steps[0].connection".into(), Some(8))),
            "{p:?}"
        );
        assert!(
            found.contains(&("steps[0].input.group_chat_id".into(), Some(11))),
            "{p:?}"
        );
        assert!(
            found.contains(&("steps[1].action".into(), Some(15))),
            "{p:?}"
        );
        assert!(found.contains(&("steps[1].when".into(), Some(17))), "{p:?}");
        assert!(
            found.contains(&("steps[1].input.content".into(), Some(20))),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.reason.contains("no connection is named `nope`"))
        );
        assert!(
            p.iter()
                .any(|p| p.reason.contains("`vars.groups` is not defined"))
        );
        assert!(
            p.iter()
                .any(|p| p.reason.contains("`steps.later` is not a step before"))
        );
        assert!(p.iter().any(|p| p.reason.contains("syntax error")));
    }

    #[test]
    fn literal_inputs_are_checked_against_the_actions_schema() {
        let p = problems(&GOOD.replace(
            "      content: done\n",
            "      content: done\n      colour: red\n",
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "steps[1].input.colour");
        assert_eq!(p[0].line, Some(21));
        // A templated field is left for the run; a missing required one is not.
        let p = problems(&GOOD.replace("      subject: \"{{ item.labels.alertname }}\"\n", ""));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].field.starts_with("steps[0].input"), "{p:?}");
        assert_eq!(p[0].field, "steps[0].input.subject", "{p:?}");
    }

    #[test]
    fn actions_must_suit_the_connection_and_ids_be_unique() {
        let p = problems(&GOOD.replace("id: after", "id: notify").replace(
            "action: send_text\n    connection: ops",
            "action: send_text\n    connection: hook",
        ));
        assert!(
            p.iter()
                .any(|p| p.field == "steps[1].id" && p.reason.contains("already")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.field == "steps[1].action" && p.reason.contains("webhook_robot")),
            "{p:?}"
        );
    }

    #[test]
    fn cron_zone_and_item_outside_for_each() {
        let p = problems(
            "name: s\ntrigger: {type: schedule, cron: '0 25 * * *', timezone: Mars/Base}\nsteps:\n  - id: a\n    action: send_text\n    connection: ops\n    input: {group_chat_id: x, content: '{{ item }}'}\n",
        );
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"trigger.timezone"), "{p:?}");
        assert!(fields.contains(&"steps[0].input.content"), "{p:?}");
        let p = problems(
            "name: s\ntrigger: {type: schedule, cron: '0 25 * * *'}\nsteps:\n  - id: a\n    action: send_text\n    connection: ops\n    input: {group_chat_id: x, content: hi}\n",
        );
        assert_eq!(p[0].field, "trigger.cron");
        assert_eq!(p[0].line, Some(2));
    }

    #[test]
    fn pointers_follow_the_validators_paths() {
        assert_eq!(pointer("buttons[1].url"), "/buttons/1/url");
        assert_eq!(pointer("text"), "/text");
        assert_eq!(pointer(""), "");
    }

    const CHAT: &str = "\
name: ping
trigger: {type: chat, connection: ops, command: ping}
steps:
  - id: pong
    action: reply
    input: {content: \"pong to {{ trigger.sender.nick }}\"}
";

    #[test]
    fn a_chat_flow_replies_on_its_trigger_connection() {
        assert_eq!(problems(CHAT), vec![]);
    }

    #[test]
    fn a_chat_flow_needs_a_listening_app_robot_and_sound_conditions() {
        let p = problems(&CHAT.replace("connection: ops", "connection: quiet"));
        assert_eq!(p[0].field, "trigger.connection");
        assert!(p[0].reason.contains("Stream mode off"), "{p:?}");
        let p = problems(&CHAT.replace("connection: ops", "connection: hook"));
        assert!(p[0].reason.contains("only an app robot"), "{p:?}");
        let p = problems(&CHAT.replace("command: ping", "command: \"ping now\""));
        assert_eq!(p[0].field, "trigger.command");
        let p = problems(&CHAT.replace("command: ping", "pattern: \"[a-\""));
        assert_eq!(p[0].field, "trigger.pattern");
        assert_eq!(p[0].line, Some(2));
    }

    #[test]
    fn only_chat_flows_default_a_steps_connection_and_a_replys_message() {
        let manual = CHAT.replace(
            "{type: chat, connection: ops, command: ping}",
            "{type: manual}",
        );
        let p = problems(&manual);
        assert_eq!(p[0].field, "steps[0].connection", "{p:?}");
        let p = problems(&manual.replace("action: reply", "action: reply\n    connection: ops"));
        assert_eq!(p[0].field, "steps[0].input.message_id", "{p:?}");
    }
}
