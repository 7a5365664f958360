//! The API's documents, derived from the code: aide collects every route with its handler's
//! extractors and answer types (schemars schemas); the actions' operations take their request
//! and response schemas from the catalog. Served as OpenAPI 3.1 at `/v1/openapi.json` (ROMA
//! Connect, n8n) and as Swagger 2.0 at `/v1/swagger.json` — Power Automate and Logic Apps
//! custom connectors import only 2.0.

use std::sync::Arc;

use aide::openapi::OpenApi;
use aide::transform::{TransformOpenApi, TransformOperation};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::actions::ActionDef;

/// Both renditions, made once at start.
pub struct Documents {
    pub openapi: Value,
    pub swagger: Value,
}

/// Routes that need no bearer token.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/metrics",
    "/v1/openapi.json",
    "/v1/swagger.json",
];

/// What the document says about the API as a whole.
pub fn describe(api: TransformOpenApi<'_>) -> TransformOpenApi<'_> {
    api.title("dtc — the DingTalk connector")
        .version(env!("CARGO_PKG_VERSION"))
        .description(
            "Send DingTalk chatbot messages (text, markdown, link, image, file, ActionCard) to \
             group chats through stored connections. Every error answers \
             `{\"error\":{\"code\",\"message\",\"field\"?,\"retryable\",\"dingtalk\"?}}`.",
        )
        .security_scheme(
            "bearer",
            aide::openapi::SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: Some("dtc API token".into()),
                description: Some("Authorization: Bearer <DTC_API_TOKEN>".into()),
                extensions: Default::default(),
            },
        )
}

/// The finished documents: every operation but the public ones requires the bearer token, and
/// any may answer an error in the one shape (a refused token, a body over the limit, a bug).
pub fn finish(api: OpenApi) -> Documents {
    let mut openapi = serde_json::to_value(&api).expect("the OpenAPI document serializes");
    let error = json!({
        "description": "An error; `error.code` says which (its HTTP status follows from it).",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } }
    });
    if let Some(paths) = openapi["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut())
                .filter(|v| v.is_object())
            {
                if !public {
                    op["security"] = json!([{ "bearer": [] }]);
                }
                if op["responses"].get("default").is_none() {
                    op["responses"]["default"] = error.clone();
                }
            }
        }
    }
    let swagger = swagger2(&openapi);
    Documents { openapi, swagger }
}

pub fn routes<S: Clone + Send + Sync + 'static>(docs: Arc<Documents>) -> Router<S> {
    let openapi = docs.clone();
    Router::new()
        .route(
            "/v1/openapi.json",
            get(move || async move { Json(openapi.openapi.clone()) }),
        )
        .route(
            "/v1/swagger.json",
            get(move || async move { Json(docs.swagger.clone()) }),
        )
}

/// The operation of one action: its input as the request body, its output as the 200 answer,
/// the 202 of `Prefer: respond-async`, and the headers it reads.
pub fn action_operation<'a>(op: TransformOperation<'a>, def: &ActionDef) -> TransformOperation<'a> {
    let op = op
        .id(def.name)
        .summary(def.title)
        .description(def.description)
        .tag("actions");
    op.with(|mut op| {
        let o = op.inner_mut();
        o.request_body = Some(from(json!({
            "required": true,
            "content": { "application/json": { "schema": def.input_schema } }
        })));
        for header in [
            json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Repeating a request with the same key returns the first result instead of sending again.",
                "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$" }
            }),
            json!({
                "name": "Prefer", "in": "header", "required": false,
                "description": "`respond-async`: answer 202 once the delivery is durably queued.",
                "schema": { "type": "string", "enum": ["respond-async"] }
            }),
        ] {
            o.parameters.push(aide::openapi::ReferenceOr::Item(from(header)));
        }
        let responses = o.responses.get_or_insert_with(Default::default);
        responses.responses.insert(
            aide::openapi::StatusCode::Code(200),
            aide::openapi::ReferenceOr::Item(from(json!({
                "description": "DingTalk accepted the message(s): the action's output.",
                "content": { "application/json": { "schema": def.output_schema } }
            }))),
        );
        responses.responses.insert(
            aide::openapi::StatusCode::Code(202),
            aide::openapi::ReferenceOr::Item(from(json!({
                "description": "With `Prefer: respond-async`: durably queued; poll GET /v1/deliveries/{id}.",
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "required": ["delivery_id", "status"],
                    "properties": {
                        "delivery_id": { "type": "string", "format": "uuid" },
                        "status": { "type": "string", "enum": ["queued", "in_flight", "delivered", "retrying", "failed"] }
                    }
                } } }
            }))),
        );
        op
    })
}

/// The generic action route: its `{action}` is any name but the catalog's, its body any object.
pub fn other_action(mut op: TransformOperation<'_>) -> TransformOperation<'_> {
    let names: Vec<&str> = crate::actions::catalog().iter().map(|d| d.name).collect();
    let o = op.inner_mut();
    for p in o.parameters.iter_mut() {
        if let aide::openapi::ReferenceOr::Item(param) = p
            && param.parameter_data_ref().name == "action"
        {
            *param = from(json!({ "in": "path", "name": "action", "required": true,
                "description": "Not the name of an action of the catalog.",
                "schema": { "type": "string", "minLength": 1, "not": { "enum": names } } }));
        }
    }
    o.request_body = Some(from(json!({
        "required": true,
        "content": { "application/json": { "schema": { "type": "object" } } }
    })));
    op
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a static OpenAPI fragment deserializes")
}

// ---------------------------------------------------------------------------------------------
// Swagger 2.0

/// The OpenAPI 3.1 document as Swagger 2.0: request bodies become `in: body` parameters,
/// components become definitions, and schemas are cut to what 2.0 can say (no `oneOf`/`anyOf`/
/// `if`/`not`; a nullable type becomes its non-null type).
pub fn swagger2(doc: &Value) -> Value {
    let mut paths = Map::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let mut out = Map::new();
        for (method, op) in item.as_object().into_iter().flatten() {
            if op.is_object() {
                out.insert(method.clone(), operation2(op));
            }
        }
        paths.insert(path.clone(), Value::Object(out));
    }
    let definitions: Map<String, Value> = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), schema2(v)))
        .collect();
    let mut info = doc["info"].clone();
    if let Some(i) = info.as_object_mut() {
        i.remove("summary");
    }
    json!({
        "swagger": "2.0",
        "info": info,
        "basePath": "/",
        "schemes": ["http", "https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": { "bearer": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Bearer <DTC_API_TOKEN>`"
        } },
        "paths": paths,
        "definitions": definitions,
    })
}

fn operation2(op: &Value) -> Value {
    let mut out = Map::new();
    for key in [
        "operationId",
        "summary",
        "description",
        "tags",
        "security",
        "deprecated",
    ] {
        if let Some(v) = op.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let mut params: Vec<Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(parameter2)
        .collect();
    if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
        params.push(json!({
            "name": "body", "in": "body",
            "required": op["requestBody"]["required"].as_bool().unwrap_or(false),
            "schema": schema2(schema),
        }));
    }
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    let mut responses = Map::new();
    for (code, r) in op["responses"].as_object().into_iter().flatten() {
        let mut r2 = json!({ "description": r["description"].as_str().unwrap_or("") });
        if let Some(content) = r["content"].as_object()
            && let Some((_, media)) = content.iter().next()
            && let Some(schema) = media.get("schema")
        {
            r2["schema"] = schema2(schema);
        }
        responses.insert(code.clone(), r2);
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

/// A non-body parameter: its schema's keywords move onto the parameter itself.
fn parameter2(p: &Value) -> Value {
    let mut out = json!({
        "name": p["name"], "in": p["in"],
        "required": p["required"].as_bool().unwrap_or(p["in"] == "path"),
    });
    if let Some(d) = p.get("description") {
        out["description"] = d.clone();
    }
    let schema = schema2(&p["schema"]);
    for (k, v) in schema.as_object().into_iter().flatten() {
        if matches!(
            k.as_str(),
            "type"
                | "format"
                | "enum"
                | "minimum"
                | "maximum"
                | "minLength"
                | "maxLength"
                | "pattern"
                | "default"
                | "items"
        ) {
            out[k] = v.clone();
        }
    }
    if out.get("type").is_none() {
        out["type"] = json!("string");
    }
    out
}

/// A JSON Schema (2020-12) as a Swagger 2.0 schema.
fn schema2(s: &Value) -> Value {
    let Value::Object(map) = s else {
        // `true` and friends: any value.
        return json!({});
    };
    // `anyOf: [X, {type: null}]` is how a nullable X is spelled: keep X.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = map.get(key) {
            let non_null: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
            if non_null.len() == 1 && options.len() == 2 && !map.contains_key("properties") {
                let mut inner = schema2(non_null[0]);
                inner["x-nullable"] = json!(true);
                if let Some(d) = map.get("description") {
                    inner["description"] = d.clone();
                }
                return inner;
            }
        }
    }
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "$ref" => {
                let r = v.as_str().unwrap_or_default();
                out.insert(
                    k.clone(),
                    json!(r.replace("#/components/schemas/", "#/definitions/")),
                );
            }
            "type" => match v {
                Value::Array(types) => {
                    let kept: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if let Some(t) = kept.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                    if kept.len() < types.len() {
                        out.insert("x-nullable".into(), json!(true));
                    }
                }
                Value::String(t) if t == "null" => {}
                other => {
                    out.insert(k.clone(), other.clone());
                }
            },
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(n, p)| (n.clone(), schema2(p)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), schema2(v));
            }
            "additionalProperties" => {
                out.insert(k.clone(), v.clone());
            }
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            "examples" => {
                if let Some(first) = v.as_array().and_then(|a| a.first()) {
                    out.insert("example".into(), first.clone());
                }
            }
            // 2.0 has no null: a null default says nothing it can keep.
            "default" if v.is_null() => {}
            "exclusiveMinimum" | "exclusiveMaximum" if v.is_number() => {
                let bound = if k == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                out.insert(bound.into(), v.clone());
                out.insert(k.clone(), json!(true));
            }
            "description" | "title" | "format" | "enum" | "default" | "required" | "minimum"
            | "maximum" | "minLength" | "maxLength" | "pattern" | "minItems" | "maxItems"
            | "uniqueItems" | "readOnly" | "example" => {
                out.insert(k.clone(), v.clone());
            }
            // 2.0 cannot say these (`oneOf`, `anyOf`, `allOf` of rules, `if`/`then`, `not`,
            // `$defs`, `contentEncoding`): the server still checks them.
            _ => {}
        }
    }
    // An enum of one type without its type (schemars' unit enums) gets one for 2.0.
    if !out.contains_key("type")
        && !out.contains_key("$ref")
        && let Some(Value::Array(values)) = out.get("enum")
        && values.iter().all(Value::is_string)
    {
        out.insert("type".into(), json!("string"));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_and_combining_keywords_become_what_swagger_2_says() {
        let s = schema2(&json!({
            "type": "object",
            "required": ["a"],
            "properties": {
                "a": { "type": ["string", "null"], "pattern": "x" },
                "b": { "anyOf": [{ "$ref": "#/components/schemas/B" }, { "type": "null" }] },
                "c": { "const": "only" },
                "d": { "type": "integer", "exclusiveMinimum": 0 }
            },
            "oneOf": [{ "required": ["a"] }],
            "if": {}, "then": {}
        }));
        assert_eq!(
            s,
            json!({
                "type": "object",
                "required": ["a"],
                "properties": {
                    "a": { "type": "string", "x-nullable": true, "pattern": "x" },
                    "b": { "$ref": "#/definitions/B", "x-nullable": true },
                    "c": { "enum": ["only"], "type": "string" },
                    "d": { "type": "integer", "minimum": 0, "exclusiveMinimum": true }
                }
            })
        );
    }
}
