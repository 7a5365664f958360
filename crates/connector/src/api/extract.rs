//! `AppJson<T>`: the JSON body extractor of every route. It refuses a body that is not
//! `application/json` (415), not JSON, or not valid by `T`'s JSON Schema — each with the one
//! error shape, naming the field — before the handler runs; handlers get a typed value.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};
use crate::schema::checked;
use crate::server::BodyDeadline;

pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + JsonSchema + 'static,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let bytes = read_body(req, JSON_BODY_LIMIT).await?;
        let value = parse_value(&bytes)?;
        checked::<T>()
            .parse(value)
            .map(AppJson)
            .map_err(|e| crate::error::ErrorBody::from_input(&e).into())
    }
}

/// Documented with the very schema the body is checked against.
impl<T: JsonSchema + 'static> aide::OperationInput for AppJson<T> {
    fn operation_input(_: &mut aide::generate::GenContext, op: &mut aide::openapi::Operation) {
        let body = serde_json::json!({
            "required": true,
            "content": { "application/json": { "schema": checked::<T>().schema } }
        });
        op.request_body =
            Some(serde_json::from_value(body).expect("a request body object deserializes"));
    }
}

/// Whether the headers say the body is JSON (`application/json` or `application/…+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "the body must be JSON: send Content-Type: application/json",
    )
    .with_field("Content-Type"))
}

/// The body limit of routes that take no files.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The whole body, if it is at most `limit` bytes and arrives by the request's
/// [`BodyDeadline`].
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
    refuse_declared_size(req.headers(), limit)?;
    let read = axum::body::to_bytes(req.into_body(), limit);
    let result = match deadline {
        Some(at) => tokio::time::timeout_at(at, read)
            .await
            .map_err(|_| body_timeout())?,
        None => read.await,
    };
    result.map_err(|e| {
        if is_length_limit(e.into_inner().as_ref()) {
            too_large(limit)
        } else {
            ApiError::invalid("body", "could not be read")
        }
    })
}

/// Refused before a byte is read when `Content-Length` says it is too large.
pub fn refuse_declared_size(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is over this route's limit of {limit} bytes"),
    )
    .with_field("body")
}

pub fn body_timeout() -> ApiError {
    ApiError::new(ErrorCode::RequestTimeout, "the body did not arrive in time").with_field("body")
}

/// Whether a body error (or what caused it) is the size limit.
pub fn is_length_limit(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        match e.source() {
            Some(next) => e = next,
            None => return false,
        }
    }
}

/// The body as one strict JSON value ([`super::strict_json`]), refused naming the field at
/// fault.
pub fn parse_value(bytes: &[u8]) -> Result<Value, ApiError> {
    use super::strict_json::{Refusal, from_slice};
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "is empty; send JSON"));
    }
    from_slice(bytes).map_err(|refusal| match refusal {
        Refusal::Syntax { line, column } => ApiError::invalid(
            "body",
            format!("is not one valid JSON value (line {line}, column {column})"),
        ),
        Refusal::Duplicate { path } => {
            ApiError::invalid(path, "is given more than once; give each field once")
        }
        Refusal::Nul { path } => {
            ApiError::invalid(path, "must not contain the NUL character (U+0000)")
        }
    })
}

/// [`parse_value`] for a body whose parts (`free` says which, by path) take any JSON: a NUL
/// character there breaks no rule the document states — it cannot be stored — so it is
/// refused as unusable (422), naming where it is.
pub fn parse_value_with_free_parts(
    bytes: &[u8],
    free: &dyn Fn(&str) -> bool,
) -> Result<Value, ApiError> {
    use super::strict_json::{Refusal, from_slice};
    match from_slice(bytes) {
        Err(Refusal::Nul { path }) if free(&path) => Err(ApiError::new(
            crate::error::ErrorCode::UnusableInput,
            format!("`{path}` holds the NUL character (U+0000), which cannot be stored"),
        )
        .with_field(path)),
        _ => parse_value(bytes),
    }
}

/// `AppQuery<T>`: query parameters checked against `T`'s JSON Schema like a JSON body — each
/// value read as the type the schema gives it (`limit=5` as an integer) — so every refusal
/// names its parameter.
pub struct AppQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for AppQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + JsonSchema + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::invalid("query", "is not a valid query string"))?;
        let schema = checked::<T>();
        let mut object = serde_json::Map::new();
        for (name, text) in pairs {
            if name.contains('\0') || text.contains('\0') {
                return Err(ApiError::invalid(
                    name,
                    "must not contain the NUL character (U+0000)",
                ));
            }
            if object.contains_key(&name) {
                return Err(ApiError::invalid(name, "is given more than once"));
            }
            let kind = schema.schema["properties"][&name]["type"].clone();
            object.insert(name, typed(text, &kind));
        }
        schema
            .parse(Value::Object(object))
            .map(AppQuery)
            .map_err(|e| crate::error::ErrorBody::from_input(&e).into())
    }
}

/// A query value as the JSON type its schema names (`type` may be a list, e.g. with `null`).
fn typed(text: String, kind: &Value) -> Value {
    let names: Vec<&str> = match kind {
        Value::String(k) => vec![k.as_str()],
        Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if names.contains(&"integer")
        && let Ok(n) = text.parse::<i64>()
    {
        return Value::from(n);
    }
    if names.contains(&"boolean")
        && let Ok(b) = text.parse::<bool>()
    {
        return Value::from(b);
    }
    Value::String(text)
}

/// Documented with the very schema the parameters are checked against, one per property.
impl<T: JsonSchema + 'static> aide::OperationInput for AppQuery<T> {
    fn operation_input(_: &mut aide::generate::GenContext, op: &mut aide::openapi::Operation) {
        let schema = checked::<T>().schema.clone();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            let mut prop = prop.clone();
            let description = prop
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::Null);
            let mut param = serde_json::json!({
                "in": "query",
                "name": name,
                "required": required.contains(&name.as_str()),
                "schema": prop,
            });
            if !description.is_null() {
                param["description"] = description;
            }
            op.parameters.push(aide::openapi::ReferenceOr::Item(
                serde_json::from_value(param).expect("a query parameter object deserializes"),
            ));
        }
    }
}
