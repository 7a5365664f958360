//! `GET /v1/openapi.json`: an OpenAPI 3.1 document of every route, with one operation per
//! action whose request and response schemas come from the action catalog, so ROMA Connect,
//! Power Automate or n8n can import dtc as a custom connector.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::actions;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(|| async { Json(document()) }))
}

/// Move a schema's `$defs` into `components.schemas` under `prefix`, rewriting its `$ref`s, so
/// references resolve from the document root.
fn hoist(mut schema: Value, prefix: &str, components: &mut Map<String, Value>) -> Value {
    fn rewrite(v: &mut Value, prefix: &str) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref") {
                    for from in ["#/$defs/", "#/definitions/"] {
                        if let Some(name) = r.strip_prefix(from) {
                            *r = format!("#/components/schemas/{prefix}{name}");
                            break;
                        }
                    }
                }
                map.values_mut().for_each(|c| rewrite(c, prefix));
            }
            Value::Array(items) => items.iter_mut().for_each(|c| rewrite(c, prefix)),
            _ => {}
        }
    }
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(defs)) = map.remove(key) {
                for (name, mut def) in defs {
                    rewrite(&mut def, prefix);
                    components.insert(format!("{prefix}{name}"), def);
                }
            }
        }
    }
    rewrite(&mut schema, prefix);
    schema
}

fn pascal(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn error_responses(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut m = Map::new();
    let mut add = |code: &str, desc: &str| {
        m.insert(
            code.to_owned(),
            json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    };
    add("400", "Invalid input; `error.field` names the field");
    add("401", "Missing or invalid bearer token");
    for (code, desc) in extra {
        add(code, desc);
    }
    m
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

fn id_or_name() -> Value {
    json!({"name": "id_or_name", "in": "path", "required": true, "description": "Connection id (UUID) or name", "schema": {"type": "string"}})
}

fn connection_schemas(schemas: &mut Map<String, Value>) {
    let kind = json!({"type": "string", "enum": ["app_robot", "webhook_robot"]});
    schemas.insert("Connection".into(), json!({
        "type": "object",
        "description": "A stored DingTalk connection. Secrets are write-only and never returned.",
        "required": ["id", "name", "kind", "description", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "kind": kind,
            "description": {"type": "string"},
            "app_key": {"type": ["string", "null"]},
            "robot_code": {"type": ["string", "null"]},
            "keywords": {"type": "array", "items": {"type": "string"}},
            "qps_quota": {"type": ["integer", "null"]},
            "has_secret": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}
        }
    }));
    let writable = json!({
        "name": {"type": "string", "description": "Unique name: letters, digits, - _ . (1-64)"},
        "kind": kind,
        "description": {"type": "string", "maxLength": 500},
        "app_key": {"type": "string", "description": "AppKey (Client ID); app_robot"},
        "app_secret": {"type": "string", "writeOnly": true, "description": "AppSecret (Client Secret); app_robot"},
        "robot_code": {"type": "string", "description": "RobotCode; app_robot"},
        "access_token": {"type": "string", "writeOnly": true, "description": "Webhook access_token; webhook_robot"},
        "secret": {"type": ["string", "null"], "writeOnly": true, "description": "Webhook signing secret (SEC...); webhook_robot"},
        "keywords": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
        "qps_quota": {"type": ["integer", "null"], "minimum": 1, "maximum": 60}
    });
    schemas.insert("NewConnection".into(), json!({
        "type": "object", "additionalProperties": false, "required": ["name"], "properties": writable.clone()
    }));
    schemas.insert(
        "ConnectionPatch".into(),
        json!({
            "type": "object", "additionalProperties": false, "properties": writable
        }),
    );
    schemas.insert("ConnectionTest".into(), json!({
        "type": "object", "required": ["ok", "message"],
        "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}, "dingtalk": {"$ref": "#/components/schemas/DingTalkDetail"}}
    }));
    schemas.insert(
        "DingTalkDetail".into(),
        json!({
            "type": "object",
            "properties": {
                "http_status": {"type": ["integer", "null"]},
                "code": {"type": ["string", "null"]},
                "message": {"type": "string"},
                "request_id": {"type": ["string", "null"]}
            }
        }),
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message", "retryable"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "retryable": {"type": "boolean"},
                    "dingtalk": {"$ref": "#/components/schemas/DingTalkDetail"}
                }
            }}
        }),
    );
    schemas.insert("ActionSpec".into(), json!({
        "type": "object", "required": ["name", "title", "description", "connection_kind", "input_schema", "output_schema"],
        "properties": {
            "name": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "connection_kind": kind, "input_schema": {"type": "object"}, "output_schema": {"type": "object"}
        }
    }));
}

/// The whole document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    connection_schemas(&mut schemas);
    let mut paths = Map::new();
    paths.insert("/healthz".into(), json!({"get": {
        "operationId": "healthz", "summary": "Liveness and database check", "security": [],
        "responses": {"200": ok("Healthy", json!({"type": "object"})), "503": {"description": "Database unavailable"}}
    }}));
    paths.insert("/metrics".into(), json!({"get": {
        "operationId": "metrics", "summary": "Prometheus metrics", "security": [],
        "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}
    }}));
    paths.insert(
        "/v1/openapi.json".into(),
        json!({"get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": {"200": ok("OpenAPI document", json!({"type": "object"}))}
        }}),
    );
    paths.insert("/v1/connections".into(), json!({
        "get": {"operationId": "listConnections", "summary": "List connections",
            "responses": Value::Object({let mut r = error_responses(&[]); r.insert("200".into(), ok("Connections", json!({"type": "array", "items": {"$ref": "#/components/schemas/Connection"}}))); r})},
        "post": {"operationId": "createConnection", "summary": "Create a connection",
            "requestBody": json_body(json!({"$ref": "#/components/schemas/NewConnection"})),
            "responses": Value::Object({let mut r = error_responses(&[("409", "A connection with this name exists")]); r.insert("201".into(), ok("Created", json!({"$ref": "#/components/schemas/Connection"}))); r})}
    }));
    paths.insert("/v1/connections/{id_or_name}".into(), json!({
        "parameters": [id_or_name()],
        "get": {"operationId": "getConnection", "summary": "Read a connection",
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such connection")]); r.insert("200".into(), ok("Connection", json!({"$ref": "#/components/schemas/Connection"}))); r})},
        "patch": {"operationId": "updateConnection", "summary": "Update a connection",
            "requestBody": json_body(json!({"$ref": "#/components/schemas/ConnectionPatch"})),
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such connection"), ("409", "Name taken")]); r.insert("200".into(), ok("Updated", json!({"$ref": "#/components/schemas/Connection"}))); r})},
        "delete": {"operationId": "deleteConnection", "summary": "Delete a connection",
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such connection")]); r.insert("204".into(), json!({"description": "Deleted"})); r})}
    }));
    paths.insert("/v1/connections/{id_or_name}/test".into(), json!({
        "parameters": [id_or_name()],
        "post": {"operationId": "testConnection", "summary": "Check the stored credentials with DingTalk",
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such connection")]); r.insert("200".into(), ok("Result", json!({"$ref": "#/components/schemas/ConnectionTest"}))); r})}
    }));
    paths.insert("/v1/actions".into(), json!({"get": {
        "operationId": "listActions", "summary": "The action catalog with JSON Schemas",
        "responses": Value::Object({let mut r = error_responses(&[]); r.insert("200".into(), ok("Actions", json!({"type": "array", "items": {"$ref": "#/components/schemas/ActionSpec"}}))); r})
    }}));
    paths.insert("/v1/actions/{action}".into(), json!({
        "parameters": [{"name": "action", "in": "path", "required": true, "schema": {"type": "string"}}],
        "get": {"operationId": "getAction", "summary": "One action of the catalog",
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such action")]); r.insert("200".into(), ok("Action", json!({"$ref": "#/components/schemas/ActionSpec"}))); r})}
    }));
    let action_responses = |out: Value| {
        let mut r = error_responses(&[
            ("404", "No such connection or action"),
            (
                "422",
                "DingTalk rejected the request or the credentials (error.dingtalk has its code)",
            ),
            (
                "409",
                "The first request with this Idempotency-Key is still running",
            ),
            (
                "429",
                "Over DingTalk's rate limit, or throttled by DingTalk; see Retry-After",
            ),
            ("502", "DingTalk unavailable after retries"),
            ("503", "The shared rate limiter's database is unavailable"),
        ]);
        r.insert("200".into(), ok("DingTalk accepted it", out));
        r.insert(
            "202".into(),
            ok(
                "Queued durably (with Prefer: respond-async)",
                json!({"$ref": "#/components/schemas/Accepted"}),
            ),
        );
        Value::Object(r)
    };
    schemas.insert("Accepted".into(), json!({
        "type": "object", "required": ["delivery_id", "status"],
        "properties": {"delivery_id": {"type": "string", "format": "uuid"}, "status": {"type": "string"}}
    }));
    schemas.insert("Delivery".into(), json!({
        "type": "object",
        "required": ["id", "status", "mode", "connection_id", "action", "attempts", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["queued", "in_flight", "delivered", "retrying", "failed"]},
            "mode": {"type": "string", "enum": ["sync", "async"]},
            "connection_id": {"type": "string", "format": "uuid"},
            "action": {"type": "string"},
            "group_chat_id": {"type": "string"},
            "attempts": {"type": "integer"},
            "next_attempt_at": {"type": "string", "format": "date-time"},
            "last_error": {"type": "object"},
            "result": {"type": "object"},
            "idempotency_key": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "attempt_log": {"type": "array", "items": {"type": "object"}}
        }
    }));
    let delivery_id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let q = |name: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}});
    paths.insert("/v1/deliveries".into(), json!({"get": {
        "operationId": "listDeliveries", "summary": "The delivery log, newest first (failed ones are the dead-letter list)",
        "parameters": [
            q("status", "queued, in_flight, delivered, retrying or failed"),
            q("connection", "Connection id or name"),
            q("group_chat_id", "Group chat (needs connection)"),
            q("created_after", "RFC 3339"),
            q("created_before", "RFC 3339"),
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            {"name": "cursor", "in": "query", "required": false, "description": "next_cursor of the previous page", "schema": {"type": "integer"}}
        ],
        "responses": Value::Object({let mut r = error_responses(&[]); r.insert("200".into(), ok("A page", json!({
            "type": "object", "required": ["deliveries"],
            "properties": {"deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}, "next_cursor": {"type": "integer"}}
        }))); r})
    }}));
    paths.insert("/v1/deliveries/{id}".into(), json!({
        "parameters": [delivery_id.clone()],
        "get": {"operationId": "getDelivery", "summary": "One delivery with its attempts and last error",
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such delivery")]); r.insert("200".into(), ok("The delivery", json!({"$ref": "#/components/schemas/Delivery"}))); r})}
    }));
    paths.insert("/v1/deliveries/{id}/retry".into(), json!({
        "parameters": [delivery_id],
        "post": {"operationId": "retryDelivery", "summary": "Queue a failed delivery again",
            "responses": Value::Object({let mut r = error_responses(&[("404", "No such delivery"), ("409", "The delivery is not failed")]); r.insert("202".into(), ok("Queued again", json!({"$ref": "#/components/schemas/Delivery"}))); r})}
    }));
    let run_headers = json!([
        {"name": "Prefer", "in": "header", "required": false, "description": "respond-async: answer 202 once durably queued", "schema": {"type": "string", "enum": ["respond-async"]}},
        {"name": "Idempotency-Key", "in": "header", "required": false, "description": "A repeat with the same key and body returns the first result; another body gets 422", "schema": {"type": "string", "maxLength": 255}}
    ]);
    paths.insert("/v1/connections/{id_or_name}/actions/{action}".into(), json!({
        "parameters": [id_or_name(), {"name": "action", "in": "path", "required": true, "schema": {"type": "string"}, "description": "An action name from GET /v1/actions"}],
        "post": {"operationId": "runAction", "summary": "Run any action (generic form of the per-action operations)",
            "parameters": run_headers.clone(),
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"type": "object"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}, "input": {"type": "string", "description": "The JSON input"}}}}
            }},
            "responses": action_responses(json!({"type": "object"}))}
    }));
    for spec in actions::catalog() {
        let base = pascal(spec.name);
        let input = hoist(
            spec.input_schema.clone(),
            &format!("{base}Input"),
            &mut schemas,
        );
        let output = hoist(
            spec.output_schema.clone(),
            &format!("{base}Output"),
            &mut schemas,
        );
        schemas.insert(format!("{base}Input"), input);
        schemas.insert(format!("{base}Output"), output);
        paths.insert(
            format!("/v1/connections/{{id_or_name}}/actions/{}", spec.name),
            json!({
                "parameters": [id_or_name()],
                "post": {
                    "operationId": spec.name,
                    "parameters": run_headers.clone(),
                    "summary": spec.title,
                    "description": format!("{} (for {} connections)", spec.description, spec.connection_kind.as_str()),
                    "tags": ["actions"],
                    "requestBody": json_body(json!({"$ref": format!("#/components/schemas/{base}Input")})),
                    "responses": action_responses(json!({"$ref": format!("#/components/schemas/{base}Output")}))
                }
            }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dtc — DingTalk connector",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Send DingTalk chatbot messages (text, markdown, link, image, file, ActionCard) to group chats through stored connections. Errors have one shape; DingTalk rejections are never reported as success."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "DTC_API_TOKEN, or the token printed on first start"}},
            "schemas": schemas
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoisted_refs_point_into_components() {
        let mut comps = Map::new();
        let s = hoist(
            json!({"$schema": "x", "type": "object", "properties": {"b": {"$ref": "#/$defs/Button"}},
                   "$defs": {"Button": {"type": "object", "properties": {"l": {"$ref": "#/$defs/Layout"}}}, "Layout": {"type": "string"}}}),
            "P",
            &mut comps,
        );
        assert_eq!(s["properties"]["b"]["$ref"], "#/components/schemas/PButton");
        assert_eq!(
            comps["PButton"]["properties"]["l"]["$ref"],
            "#/components/schemas/PLayout"
        );
        assert!(s.get("$defs").is_none() && s.get("$schema").is_none());
    }
}
