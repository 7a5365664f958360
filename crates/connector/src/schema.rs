//! JSON Schemas of request types (schemars), and refusing input by them: the validator's typed
//! error kinds (the `jsonschema` crate) become `{field, reason}` with the input's field path
//! (`buttons[1].url`) — never by reading an error message's text. Used for action inputs and
//! for every JSON body of the REST API.
//!
//! Rules that combine fields (`oneOf`, `not`, `if`/`then`) are also checked by the typed code
//! behind them (an action's `plan`, a connection's validation), which says *which* fields go
//! together in its own words; an input the schema refuses that way is refused with those
//! words, or — should the code miss it — with the schema's ([`Refusal::Combination`]).

use jsonschema::error::{TypeKind, ValidationErrorKind};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::actions::InputError;

/// A self-contained schema of a request type: sub-schemas inlined so it can be embedded
/// anywhere in an OpenAPI document (a `#/$defs/…` reference would resolve against the
/// document's root there). An optional field is left out, not sent as `null`: `null` is refused
/// unless the field's schema says what it means (`x-null`, e.g. "clears the value").
pub fn of<T: JsonSchema>() -> Value {
    let mut value = generate::<T>(schemars::generate::Contract::Deserialize);
    no_null(&mut value);
    no_nul_character(&mut value);
    value
}

/// States on every string that it may not hold U+0000 (the API refuses it before anything
/// else; PostgreSQL cannot store it).
fn no_nul_character(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if obj.get("type").is_some_and(|t| t == "string") {
                let rule = serde_json::json!({
                    "pattern": "\\u0000",
                    "description": "must not contain the NUL character (U+0000)"
                });
                if !obj.contains_key("pattern") {
                    obj.insert("pattern".into(), Value::from("^[^\\u0000]*$"));
                } else if !obj.contains_key("not") {
                    obj.insert("not".into(), rule);
                } else if let Some(Value::Array(all)) = obj.get_mut("allOf") {
                    all.push(serde_json::json!({ "not": rule }));
                } else {
                    obj.insert("allOf".into(), serde_json::json!([{ "not": rule }]));
                }
            }
            for (k, v) in obj.iter_mut() {
                // A `not` forbids what it holds: a NUL rule inside would turn around.
                if k != "not" {
                    no_nul_character(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(no_nul_character),
        _ => {}
    }
}

/// A self-contained schema of an answer: what serializing `T` produces (a field skipped when
/// empty is optional; `null` where an `Option` is `None`).
pub fn of_output<T: JsonSchema>() -> Value {
    generate::<T>(schemars::generate::Contract::Serialize)
}

fn generate<T: JsonSchema>(contract: schemars::generate::Contract) -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.contract = contract;
        })
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
    }
    value
}

/// Removes `null` from the properties' schemas (see [`of`]).
fn no_null(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for prop in props.values_mut() {
            if prop.get("x-null").is_none() {
                drop_null_alternative(prop);
            }
            no_null(prop);
        }
    }
    for key in ["items", "then", "else", "if", "not"] {
        if let Some(sub) = obj.get_mut(key) {
            no_null(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = obj.get_mut(key) {
            subs.iter_mut().for_each(no_null);
        }
    }
}

/// `{"type": ["string", "null"]}` → `{"type": "string"}`; `{"anyOf": [X, {"type": "null"}]}` → X.
fn drop_null_alternative(s: &mut Value) {
    if let Some(Value::Array(types)) = s.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            s["type"] = only;
        }
    }
    let collapse = match s.get("anyOf") {
        Some(Value::Array(options)) if options.len() == 2 => options
            .iter()
            .position(|o| o.get("type").is_some_and(|t| t == "null"))
            .map(|null_at| options[1 - null_at].clone()),
        _ => None,
    };
    if let Some(mut only) = collapse
        && let (Some(obj), Some(outer)) = (only.as_object_mut(), s.as_object())
    {
        for (k, v) in outer {
            if k != "anyOf" {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        *s = only;
    }
}

/// Why the schema refused an input.
pub enum Refusal {
    /// A field's own rule (type, length, pattern, required, unknown field …): refuse now.
    Field(InputError),
    /// A rule combining fields: the action's typed plan says which in its own words; this is
    /// the answer only if the plan lets the input through.
    Combination(InputError),
}

/// Checks `input` against an action's schema (`root`, compiled as `validator`).
pub fn check(
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
    // Most inputs are valid: `is_valid` stops at nothing and builds no errors (iterating the
    // errors of a valid input was half of the schema check's cost in a profile of sync sends).
    if validator.is_valid(input) {
        return Ok(());
    }
    let mut combining = None;
    for error in validator.iter_errors(input) {
        let at = error.instance_path().as_str();
        let keyword = error.schema_path().as_str();
        if is_combining(keyword) || is_combining_kind(error.kind()) {
            combining.get_or_insert_with(|| combination(&error, root));
            continue;
        }
        return Err(Refusal::Field(leaf(
            error.kind(),
            at,
            error.instance(),
            keyword,
            root,
        )));
    }
    match combining {
        None => Ok(()),
        Some(e) => Err(Refusal::Combination(e)),
    }
}

/// [`check`] for an input some of whose strings are templates, filled in only when a run
/// renders them: errors at or below a templated field (`skip` says which JSON pointers are) are
/// left for the run, and so are rules combining fields. The rest is refused now.
pub fn check_literal(
    root: &Value,
    validator: &jsonschema::Validator,
    input: &Value,
    skip: &dyn Fn(&str) -> bool,
) -> Result<(), InputError> {
    if !input.is_object() {
        return Err(InputError::field("input", "must be a JSON object"));
    }
    for error in validator.iter_errors(input) {
        let at = error.instance_path().as_str();
        let keyword = error.schema_path().as_str();
        if skip(at) || is_combining(keyword) || is_combining_kind(error.kind()) {
            continue;
        }
        return Err(leaf(error.kind(), at, error.instance(), keyword, root));
    }
    Ok(())
}

/// The properties a `required`-only schema (or an `anyOf` of them) names.
fn required_names(schema: &Value) -> Vec<String> {
    let own = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned);
    let nested = ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .flat_map(required_names);
    own.chain(nested).collect()
}

/// Words for a rule combining fields. A `not` says which field is not allowed (and why, from
/// the rule's `description`); a `oneOf` which fields to choose from.
fn combination(error: &jsonschema::ValidationError<'_>, root: &Value) -> InputError {
    use ValidationErrorKind as K;
    let at = error.instance_path().as_str();
    let backticked = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &error.kind() {
        K::Required { property } => InputError::field(field(at, property.as_str()), "is required"),
        K::Not { schema } => {
            let present = required_names(schema)
                .into_iter()
                .find(|n| error.instance().get(n).is_some());
            let reason = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("is not allowed with the other fields given");
            InputError::field(field(at, present.as_deref()), reason)
        }
        K::OneOfNotValid { context } => {
            let missing: Option<Vec<String>> = context
                .iter()
                .map(|branch| match branch.as_slice() {
                    [e, ..]
                        if branch
                            .iter()
                            .all(|e| matches!(e.kind(), K::Required { .. })) =>
                    {
                        match &e.kind() {
                            K::Required { property } => property.as_str().map(str::to_owned),
                            _ => None,
                        }
                    }
                    _ => None,
                })
                .collect();
            match missing {
                Some(names) if !names.is_empty() => InputError::field(
                    field(at, Some(&names[0])),
                    format!("is required: give one of {}", backticked(&names)),
                ),
                _ => InputError::field(
                    field(at, None),
                    "does not match any of the combinations of fields allowed (see the schema)",
                ),
            }
        }
        K::OneOfMultipleValid { .. } => {
            let branches = root
                .pointer(error.schema_path().as_str())
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<String> = branches
                .iter()
                .filter_map(|b| required_names(b).into_iter().next())
                .collect();
            let given: Vec<&String> = names
                .iter()
                .filter(|n| error.instance().get(n.as_str()).is_some())
                .collect();
            InputError::field(
                field(at, given.get(1).map(|n| n.as_str())),
                format!("give only one of {}", backticked(&names)),
            )
        }
        _ => InputError::field(
            field(at, None),
            "does not match the combinations of fields allowed (see the schema)",
        ),
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

/// The values an enum allows, as a reason lists them; `null` (an optional field's "leave it
/// out") is not a value to suggest.
fn list(values: &Value) -> String {
    match values {
        Value::Array(items) => items
            .iter()
            .filter(|v| !v.is_null())
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
            crate::actions::types::pattern_reason(
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
pub fn deserialize<T: DeserializeOwned>(input: Value) -> Result<T, InputError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let name = if path == "." { "input".into() } else { path };
        InputError::field(name, "does not fit the action's input type")
    })
}

/// A type's schema with its compiled validator, made once per type ([`checked`]).
pub struct Checked {
    pub schema: Value,
    validator: jsonschema::Validator,
}

impl Checked {
    fn new(schema: Value) -> Self {
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("a request schema does not compile: {e}"));
        Checked { schema, validator }
    }

    /// Checks `input` against the schema, then deserializes it; any refusal is answered.
    pub fn parse<T: DeserializeOwned>(&self, input: Value) -> Result<T, InputError> {
        match check(&self.schema, &self.validator, &input) {
            Ok(()) => deserialize(input),
            Err(Refusal::Field(e) | Refusal::Combination(e)) => Err(e),
        }
    }
}

/// The checked schema of `T`, compiled on first use.
pub fn checked<T: JsonSchema + 'static>() -> std::sync::Arc<Checked> {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, RwLock};
    static CACHE: LazyLock<RwLock<HashMap<TypeId, Arc<Checked>>>> = LazyLock::new(RwLock::default);
    let id = TypeId::of::<T>();
    if let Some(c) = CACHE.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return c.clone();
    }
    let made = Arc::new(Checked::new(of::<T>()));
    CACHE
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id)
        .or_insert(made)
        .clone()
}
