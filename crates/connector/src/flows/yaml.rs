//! A flow document back as YAML, for reading and editing (the console's editor): keys in the
//! order people write them, multi-line templates as block scalars, anything that could be
//! misread (templates, numbers-as-strings, `yes`, leading spaces…) double-quoted, which is
//! JSON's string syntax and YAML's alike. [`super::doc::parse`] reads it back to the same
//! document (tested).

use serde_json::Value;

/// Keys that come first, in this order, wherever they appear.
const FIRST: &[&str] = &[
    "name",
    "description",
    "timezone",
    "trigger",
    "type",
    "format",
    "cron",
    "auth",
    "dedupe",
    "vars",
    "steps",
    "id",
    "when",
    "for_each",
    "action",
    "connection",
    "on_error",
    "input",
];

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(_) | Value::Array(_) if !is_empty(value) => block(&mut out, value, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn ordered(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut items: Vec<(&String, &Value)> = map.iter().collect();
    let rank = |k: &str| FIRST.iter().position(|f| *f == k).unwrap_or(FIRST.len());
    items.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then_with(|| a.0.cmp(b.0)));
    items
}

/// A non-empty mapping or sequence, each entry on its own line at `indent`.
fn block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in ordered(map) {
                out.push_str(&pad);
                out.push_str(&key(k));
                out.push(':');
                entry(out, v, indent);
            }
        }
        Value::Array(items) => {
            for v in items {
                out.push_str(&pad);
                out.push('-');
                match v {
                    // A mapping in a list starts on the dash's line.
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        block(&mut inner, v, indent + 2);
                        out.push(' ');
                        out.push_str(inner.trim_start());
                    }
                    _ => entry(out, v, indent),
                }
            }
        }
        _ => unreachable!("block() takes mappings and sequences"),
    }
}

/// What follows `key:` or `-`: a nested block on the next lines, or a scalar on this one.
fn entry(out: &mut String, v: &Value, indent: usize) {
    if (v.is_object() || v.is_array()) && !is_empty(v) {
        out.push('\n');
        block(out, v, indent + 2);
    } else {
        out.push(' ');
        out.push_str(&scalar(v, indent + 2));
        out.push('\n');
    }
}

fn key(k: &str) -> String {
    if plain_ok(k) { k.to_owned() } else { quoted(k) }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn string(s: &str, indent: usize) -> String {
    if plain_ok(s) {
        return s.to_owned();
    }
    // A block scalar keeps a multi-line template readable, if its text survives one exactly.
    let lines: Vec<&str> = s.split('\n').collect();
    let block_ok = s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && !s.contains(['\r', '\t'])
        && !s.ends_with("\n\n")
        && lines.iter().all(|l| !l.ends_with(' '))
        && !s.chars().any(|c| c.is_control() && c != '\n');
    if block_ok {
        let (indicator, body) = match s.strip_suffix('\n') {
            Some(body) => ("|", body),
            None => ("|-", s),
        };
        let pad = " ".repeat(indent);
        let mut out = indicator.to_owned();
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
        return out;
    }
    quoted(s)
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Whether `s` reads back as this same string without quotes.
fn plain_ok(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    !WORDS.contains(&lower.as_str())
        && (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && s.chars().all(|c| {
            c.is_alphanumeric()
                || matches!(
                    c,
                    '_' | '-'
                        | '.'
                        | '/'
                        | ' '
                        | '('
                        | ')'
                        | '@'
                        | ','
                        | '+'
                        | '='
                        | '!'
                        | '?'
                        | '#'
                )
        })
        && !s.ends_with(' ')
        && !s.contains(" #")
        && s.parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flow_reads_back_as_the_same_document() {
        let doc = json!({
            "name": "alerts",
            "description": "Alertmanager to the ops group",
            "trigger": {"type": "webhook", "format": "alertmanager", "auth": {"bearer": {"token": "<set>"}}},
            "vars": {"routes": {"db": "cidAAA==", "web": "cidBBB=="}, "n": 3, "yes": "no", "empty": {}, "list": []},
            "steps": [{
                "id": "notify",
                "action": "send_markdown",
                "connection": "ops",
                "for_each": "{{ trigger.body.alerts }}",
                "input": {
                    "group_chat_id": "{{ vars.routes[item.labels.team] }}",
                    "subject": "[{{ item.status }}] {{ item.labels.alertname }}",
                    "content": "### {{ item.labels.alertname }}\n\n- severity: {{ item.labels.severity }}\n",
                    "odd": "  leading spaces\ttab\r\n",
                    "number_like": "10",
                    "colon": "a: b",
                    "hash": "a #b",
                    "plain": "one, two + three = four!",
                }
            }]
        });
        let text = to_yaml(&doc);
        assert!(text.starts_with("name: alerts\n"), "{text}");
        assert!(text.contains("content: |\n"), "{text}");
        let back = crate::flows::doc::parse(&text).unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert_eq!(back.value, doc, "{text}");
    }
}
