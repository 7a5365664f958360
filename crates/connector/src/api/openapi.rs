//! The API's documents, derived from the code: aide collects every route with its handler's
//! extractors and answer types (schemars schemas); the actions' operations take their request
//! and response schemas from the catalog. Served as OpenAPI 3.1 at `/v1/openapi.json` (ROMA
//! Connect, n8n) and as Swagger 2.0 at `/v1/swagger.json` — Power Automate and Logic Apps
//! custom connectors import only 2.0.

use std::sync::Arc;

use aide::openapi::OpenApi;
use aide::transform::{TransformOpenApi, TransformOperation};
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::actions::ActionDef;

/// Both renditions, made once at start and kept as the bytes served (a `Value` tree of them
/// would hold several times their size for the life of the process).
pub struct Documents {
    pub openapi: bytes::Bytes,
    pub swagger: bytes::Bytes,
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
    let swagger = super::swagger::swagger2(&openapi);
    let bytes = |doc: &Value| bytes::Bytes::from(serde_json::to_vec(doc).expect("JSON serializes"));
    Documents {
        openapi: bytes(&openapi),
        swagger: bytes(&swagger),
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>(docs: Arc<Documents>) -> Router<S> {
    let openapi = docs.clone();
    Router::new()
        .route(
            "/v1/openapi.json",
            get(move || async move { super::json_body(openapi.openapi.clone()) }),
        )
        .route(
            "/v1/swagger.json",
            get(move || async move { super::json_body(docs.swagger.clone()) }),
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
