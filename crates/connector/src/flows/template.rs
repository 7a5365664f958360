//! Flow templates: MiniJinja, sandboxed. No loader (no file access), no environment access, an
//! instruction budget per render (fuel) and a recursion limit, so a template cannot run away;
//! output is capped. Every string of a step's input is a template; a string that is exactly one
//! `{{ expression }}` keeps the expression's type (a list of mobiles stays a list).
//!
//! Undefined values are chainable (`alert.labels.team` of an alert without that label prints
//! nothing): an alert that lacks one annotation must still be delivered, not fail its run.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use minijinja::value::{Kwargs, Value as JValue};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};
use serde_json::Value;

/// Instructions one render may execute: plenty for a page of alerts, nowhere near forever.
pub const FUEL: u64 = 200_000;
/// Nested calls, includes and macro calls.
pub const RECURSION_LIMIT: usize = 64;
/// The most one rendered string may hold (an action's request body limit).
pub const OUTPUT_LIMIT: usize = crate::actions::MESSAGE_BODY_LIMIT;

/// The context variable holding the time the trigger fired (RFC 3339), used as "now".
pub const NOW: &str = "now";

/// A template or expression that cannot be used, with MiniJinja's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl From<Error> for TemplateError {
    fn from(e: Error) -> Self {
        let reason = match e.kind() {
            ErrorKind::OutOfFuel => format!(
                "the template ran out of its budget of {FUEL} instructions (an endless loop?)"
            ),
            _ => {
                let mut text = e.to_string();
                // "(in <string>:3)": the line in the template is useful, the name is not.
                if let Some(i) = text.find(" (in <") {
                    let line = e.line().map(|l| format!(" (template line {l})"));
                    text.truncate(i);
                    text.push_str(&line.unwrap_or_default());
                }
                text
            }
        };
        TemplateError(reason)
    }
}

/// The template environment of one flow (its time zone is the default of `localtime`).
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    pub fn new(zone: Tz) -> Self {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Messages are markdown or text, never HTML.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("localtime", move |v: JValue, kw: Kwargs| {
            localtime(v, kw, zone)
        });
        env.add_filter("duration", duration);
        env.add_filter("since", since);
        env.add_filter("md_escape", md_escape);
        env.add_filter("truncate_bytes", truncate_bytes);
        Templates { env }
    }

    /// Whether `source` parses as a template.
    pub fn check_template(&self, source: &str) -> Result<(), TemplateError> {
        self.env.template_from_str(source)?;
        Ok(())
    }

    /// Whether `source` parses as an expression (`when`, `for_each`).
    pub fn check_expression(&self, source: &str) -> Result<(), TemplateError> {
        self.env.compile_expression(source)?;
        Ok(())
    }

    /// Renders one template to text.
    pub fn render(&self, source: &str, ctx: &Value) -> Result<String, TemplateError> {
        let out = self.env.render_str(source, ctx)?;
        if out.len() > OUTPUT_LIMIT {
            return Err(TemplateError(format!(
                "the rendered text is {} bytes; at most {OUTPUT_LIMIT} are allowed",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Evaluates an expression to JSON.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        let v = self.env.compile_expression(expr)?.eval(ctx)?;
        to_json(&v)
    }

    /// Evaluates a condition: false, none, undefined, empty and zero are false.
    pub fn eval_bool(&self, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
        Ok(self.env.compile_expression(expr)?.eval(ctx)?.is_true())
    }

    /// Renders every string in `input` (keys stay as written). A string that is exactly one
    /// `{{ expression }}` becomes the expression's value, of whatever type. Errors name the
    /// field below `input` (`text`, `at_mobiles[0]`).
    pub fn render_value(
        &self,
        input: &Value,
        ctx: &Value,
    ) -> Result<Value, (String, TemplateError)> {
        self.render_at(input, ctx, String::new())
    }

    fn render_at(
        &self,
        input: &Value,
        ctx: &Value,
        path: String,
    ) -> Result<Value, (String, TemplateError)> {
        match input {
            Value::String(s) if is_template(s) => {
                let out = match whole_expression(s) {
                    Some(expr) => self.eval(expr, ctx),
                    None => self.render(s, ctx).map(Value::String),
                };
                out.map_err(|e| (path, e))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.render_at(v, ctx, format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.render_at(v, ctx, child).map(|v| (k.clone(), v))
                })
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    /// Checks every template string in `input` parses; the first error with its field.
    pub fn check_value(&self, input: &Value) -> Result<(), (String, TemplateError)> {
        let mut result = Ok(());
        walk_strings(input, String::new(), &mut |path, s| {
            if result.is_err() || !is_template(s) {
                return;
            }
            let checked = match whole_expression(s) {
                Some(expr) => self.check_expression(expr),
                None => self.check_template(s),
            };
            if let Err(e) = checked {
                result = Err((path, e));
            }
        });
        result
    }
}

/// Calls `f` with every string in `v` and its path.
pub fn walk_strings(v: &Value, path: String, f: &mut dyn FnMut(String, &str)) {
    match v {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_strings(item, format!("{path}[{i}]"), f);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk_strings(item, child, f);
            }
        }
        _ => {}
    }
}

/// Whether a string holds template syntax at all (plain strings are taken as they are).
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// `{{ expr }}` and nothing else: the expression.
fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then(|| inner.trim())
}

fn to_json(v: &JValue) -> Result<Value, TemplateError> {
    if v.is_undefined() || v.is_none() {
        return Ok(Value::Null);
    }
    serde_json::to_value(v).map_err(|e| TemplateError(format!("cannot use the value: {e}")))
}

fn invalid(msg: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// A time from an RFC 3339 string or Unix seconds; Alertmanager's zero time (`0001-01-01…`,
/// "no end") is `None`.
fn parse_time(v: &JValue) -> Result<Option<DateTime<Utc>>, Error> {
    if v.is_undefined() || v.is_none() {
        return Ok(None);
    }
    if let Some(s) = v.as_str() {
        if s.is_empty() {
            return Ok(None);
        }
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|_| invalid(format!("`{s}` is not an RFC 3339 time")))?
            .with_timezone(&Utc);
        return Ok((t.timestamp() > 0).then_some(t));
    }
    if let Ok(secs) = f64::try_from(v.clone()) {
        return Ok(Utc.timestamp_opt(secs as i64, 0).single());
    }
    Err(invalid(format!("{v} is not a time")))
}

/// `startsAt | localtime` → `2026-11-25 16:00:00` in the flow's zone;
/// `localtime(format="%H:%M", tz="UTC")`.
fn localtime(v: JValue, kw: Kwargs, zone: Tz) -> Result<String, Error> {
    let format: Option<String> = kw.get("format")?;
    let tz: Option<String> = kw.get("tz")?;
    kw.assert_all_used()?;
    let zone = match tz {
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| invalid(format!("`{name}` is not a time zone")))?,
        None => zone,
    };
    let Some(t) = parse_time(&v)? else {
        return Ok(String::new());
    };
    let format = format.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S");
    let mut out = String::new();
    use std::fmt::Write;
    write!(out, "{}", t.with_timezone(&zone).format(format))
        .map_err(|_| invalid(format!("`{format}` is not a time format")))?;
    Ok(out)
}

/// Seconds → `1h 5m 3s` (`2d 3h` past a day).
fn duration(v: JValue) -> Result<String, Error> {
    let secs = f64::try_from(v.clone()).map_err(|_| invalid(format!("{v} is not seconds")))?;
    Ok(human(secs.max(0.0) as u64))
}

/// `startsAt | since` → how long from then until `endsAt` (`since(alert.endsAt)`) or, with no
/// end, until the trigger fired.
fn since(state: &State, start: JValue, end: Option<JValue>) -> Result<String, Error> {
    let Some(start) = parse_time(&start)? else {
        return Ok(String::new());
    };
    let end = match end.map(|e| parse_time(&e)).transpose()?.flatten() {
        Some(t) => t,
        None => match state
            .lookup(NOW)
            .as_ref()
            .map(parse_time)
            .transpose()?
            .flatten()
        {
            Some(t) => t,
            None => Utc::now(),
        },
    };
    Ok(human((end - start).num_seconds().max(0) as u64))
}

fn human(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = if d > 0 {
        vec![format!("{d}d"), format!("{h}h")]
    } else if h > 0 {
        vec![format!("{h}h"), format!("{m}m"), format!("{s}s")]
    } else if m > 0 {
        vec![format!("{m}m"), format!("{s}s")]
    } else {
        vec![format!("{s}s")]
    };
    parts.join(" ")
}

/// Escapes what DingTalk's markdown would read as formatting: emphasis, code and link
/// brackets anywhere, headings and quotes at the start of a line. DingTalk documents its
/// markdown as a subset and says nothing of backslash escapes (unconfirmed); the simulator's
/// CommonMark renderer honours them, as prometheus-webhook-dingtalk's `markdown` filter assumes.
fn md_escape(v: String) -> String {
    let mut out = String::with_capacity(v.len());
    let mut line_start = true;
    for c in v.chars() {
        let special = matches!(c, '\\' | '*' | '_' | '`' | '[' | ']')
            || (line_start && matches!(c, '#' | '>' | '-' | '+'));
        if special {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n' || (line_start && c == ' ');
    }
    out
}

/// At most `n` UTF-8 bytes, cut at a character boundary, `end` (default `…`) appended when cut
/// (within the `n`).
fn truncate_bytes(v: String, n: usize, end: Option<String>) -> String {
    if v.len() <= n {
        return v;
    }
    let end = end.unwrap_or_else(|| "…".to_owned());
    let mut cut = n.saturating_sub(end.len());
    while !v.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{end}", &v[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t() -> Templates {
        Templates::new(chrono_tz::Asia::Shanghai)
    }

    #[test]
    fn strings_render_and_whole_expressions_keep_their_type() {
        let ctx = json!({"vars": {"group": "cid1", "mobiles": ["1380000"]}, "n": 3});
        let input = json!({
            "group_chat_id": "{{ vars.group }}",
            "at_mobiles": "{{ vars.mobiles }}",
            "text": "count {{ n }} in {{ vars.group }}",
            "plain": "no template",
            "flag": true
        });
        let out = t().render_value(&input, &ctx).unwrap();
        assert_eq!(
            out,
            json!({"group_chat_id": "cid1", "at_mobiles": ["1380000"], "text": "count 3 in cid1",
                   "plain": "no template", "flag": true})
        );
    }

    #[test]
    fn a_missing_label_prints_nothing_instead_of_failing() {
        let ctx = json!({"alert": {"labels": {}}});
        let out = t().render("[{{ alert.labels.team.name }}]", &ctx).unwrap();
        assert_eq!(out, "[]");
    }

    #[test]
    fn a_template_that_loops_forever_is_stopped_by_its_budget() {
        let e = t()
            .render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &json!({}),
            )
            .unwrap_err();
        assert!(e.0.contains("ran out of its budget"), "{e}");
        let e = t()
            .render(
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                &json!({}),
            )
            .unwrap_err();
        assert!(e.0.contains("recursion"), "{e}");
    }

    #[test]
    fn syntax_errors_say_what_and_where() {
        let e = t().check_template("line one\n{{ oops ").unwrap_err();
        assert!(e.0.contains("syntax error"), "{e}");
        assert!(e.0.contains("template line 2"), "{e}");
        let (field, e) = t()
            .check_value(&json!({"a": ["ok", "{% if %}"]}))
            .unwrap_err();
        assert_eq!(field, "a[1]");
        assert!(e.0.contains("syntax error"), "{e}");
    }

    #[test]
    fn time_filters_use_the_flows_zone() {
        let ctx = json!({"s": "2026-11-25T08:00:00Z", "e": "2026-11-25T09:05:03Z",
                         "zero": "0001-01-01T00:00:00Z", "now": "2026-11-25T08:00:42Z"});
        let r = |src: &str| t().render(src, &ctx).unwrap();
        assert_eq!(r("{{ s | localtime }}"), "2026-11-25 16:00:00");
        assert_eq!(r("{{ s | localtime(format='%H:%M', tz='UTC') }}"), "08:00");
        assert_eq!(r("{{ zero | localtime }}"), "");
        assert_eq!(r("{{ s | since(e) }}"), "1h 5m 3s");
        assert_eq!(r("{{ s | since(zero) }}"), "42s");
        assert_eq!(r("{{ 90061 | duration }}"), "1d 1h");
    }

    #[test]
    fn markdown_escaping_and_byte_truncation() {
        let r = |src: &str, ctx: Value| t().render(src, &ctx).unwrap();
        assert_eq!(
            r("{{ v | md_escape }}", json!({"v": "a_b*c > 1"})),
            "a\\_b\\*c > 1"
        );
        assert_eq!(
            r("{{ v | md_escape }}", json!({"v": "# x\n> y"})),
            "\\# x\n\\> y"
        );
        assert_eq!(
            r("{{ v | truncate_bytes(7) }}", json!({"v": "告警告警"})),
            "告…"
        );
        assert_eq!(
            r("{{ v | truncate_bytes(12) }}", json!({"v": "告警告警"})),
            "告警告警"
        );
    }
}
