//! An action's JSON Schema, and refusing input by it: the validator's typed error kinds become
//! `{field, reason}` with the input's field path (`buttons[1].url`) — never by reading an error
//! message's text.
//!
//! Rules that combine fields (`oneOf`, `not`, `if`/`then`) are also checked in each action's
//! typed `plan`, which says *which* fields go together in its own words; an input the schema
//! refuses that way is refused with the plan's message, or — should the plan miss it — with
//! the schema's ([`Refusal::Combination`]).

use jsonschema::error::{TypeKind, ValidationErrorKind};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::InputError;

/// A self-contained schema: sub-schemas inlined so it can be embedded anywhere in an OpenAPI
/// document (a `#/$defs/…` reference would resolve against the document's root there).
pub(super) fn of<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
    }
    value
}

/// Why the schema refused an input.
pub(super) enum Refusal {
    /// A field's own rule (type, length, pattern, required, unknown field …): refuse now.
    Field(InputError),
    /// A rule combining fields: the action's typed plan says which in its own words; this is
    /// the answer only if the plan lets the input through.
    Combination(InputError),
}

/// Checks `input` against an action's schema (`root`, compiled as `validator`).
pub(super) fn check(
    root: &Value,
    validator: &jsonschema::Validator,
    input: &Value,
) -> Result<(), Refusal> {
    if !input.is_object() {
        return Err(Refusal::Field(InputError::field(
            "input",
            "must be a JSON object",
        )));
    }
    let mut combining = None;
    for error in validator.iter_errors(input) {
        let at = error.instance_path.as_str();
        if is_combining(error.schema_path.as_str()) || is_combining_kind(&error.kind) {
            combining.get_or_insert_with(|| {
                InputError::field(
                    field(at, None),
                    "does not match a combination of fields the action allows (see its input schema)",
                )
            });
            continue;
        }
        return Err(Refusal::Field(leaf(
            &error.kind,
            at,
            &error.instance,
            error.schema_path.as_str(),
            root,
        )));
    }
    match combining {
        None => Ok(()),
        Some(e) => Err(Refusal::Combination(e)),
    }
}

/// Whether a schema error came from a rule combining fields.
fn is_combining(schema_path: &str) -> bool {
    [
        "/oneOf", "/anyOf", "/not", "/if", "/then", "/else", "/allOf",
    ]
    .iter()
    .any(|k| schema_path.contains(k))
}

fn is_combining_kind(kind: &ValidationErrorKind) -> bool {
    matches!(
        kind,
        ValidationErrorKind::OneOfNotValid { .. }
            | ValidationErrorKind::OneOfMultipleValid { .. }
            | ValidationErrorKind::AnyOf { .. }
            | ValidationErrorKind::Not { .. }
    )
}

/// `/buttons/1/url` → `buttons[1].url`; `extra` is a property under it.
fn field(pointer: &str, extra: Option<&str>) -> String {
    let mut out = String::new();
    let segments = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .chain(extra.map(str::to_owned));
    for seg in segments {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    if out.is_empty() { "input".into() } else { out }
}

fn type_name(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => article(&t.to_string()),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| article(&t.to_string()))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn article(t: &str) -> String {
    match t {
        "array" | "integer" | "object" => format!("an {t}"),
        "null" => "null".into(),
        other => format!("a {other}"),
    }
}

/// A JSON value's type, in words.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of an offending value (strings unquoted, long ones cut).
fn shown(v: &Value) -> String {
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn list(values: &Value) -> String {
    match values {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The property names an object schema declares, for an unknown-field error.
fn known_fields(object_schema: Option<&Value>) -> String {
    object_schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn leaf(
    kind: &ValidationErrorKind,
    at: &str,
    value: &Value,
    keyword: &str,
    root: &Value,
) -> InputError {
    use ValidationErrorKind as K;
    let here = field(at, None);
    let (field_name, reason) = match kind {
        K::Required { property } => (field(at, property.as_str()), "is required".to_owned()),
        K::AdditionalProperties { unexpected } => {
            let name = unexpected.first().map(String::as_str);
            (
                field(at, name),
                format!(
                    "is not a field of this input (fields: {})",
                    known_fields(schema_at(root, at))
                ),
            )
        }
        K::Type { kind } => (
            here,
            format!("must be {}, not {}", type_name(kind), json_type(value)),
        ),
        K::Enum { options } => (
            here,
            format!("`{}` is not one of {}", shown(value), list(options)),
        ),
        K::Constant { expected_value } => (here, format!("must be {expected_value}")),
        K::MinLength { limit: 1 } => (here, "must not be empty".into()),
        K::MinLength { limit } => (here, format!("must be at least {limit} characters")),
        K::MaxLength { limit } => (here, format!("must be at most {limit} characters")),
        // The validator reports the pattern rewritten for its regex engine; the schema has it
        // as written.
        K::Pattern { pattern } => (
            here,
            super::types::pattern_reason(
                root.pointer(keyword)
                    .and_then(Value::as_str)
                    .unwrap_or(pattern),
            ),
        ),
        K::MinItems { limit } => (here, format!("must have at least {limit} items")),
        K::MaxItems { limit } => (here, format!("must have at most {limit} items")),
        K::Minimum { limit } => (here, format!("must be at least {limit}")),
        K::Maximum { limit } => (here, format!("must be at most {limit}")),
        K::ExclusiveMinimum { limit } => (here, format!("must be more than {limit}")),
        K::ExclusiveMaximum { limit } => (here, format!("must be less than {limit}")),
        K::UniqueItems => (here, "must not repeat an item".into()),
        _ => (here, "does not match the action's schema".into()),
    };
    InputError::field(field_name, reason)
}

/// The sub-schema of the instance at `pointer`, following `properties` and `items`.
fn schema_at<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut at = root;
    for seg in pointer.split('/').skip(1) {
        at = if seg.bytes().all(|b| b.is_ascii_digit()) {
            at.get("items")?
        } else {
            at.get("properties")?.get(seg)?
        };
    }
    Some(at)
}

/// Deserialize an input the schema accepted. A failure here means the schema and the type
/// disagree (a bug); the field is still named, by the path serde stopped at.
pub(super) fn deserialize<T: DeserializeOwned>(input: Value) -> Result<T, InputError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let name = if path == "." { "input".into() } else { path };
        InputError::field(name, "does not fit the action's input type")
    })
}
