//! The one error shape of the REST API (design.md §6): `{"error": ErrorBody}` — the same record
//! a delivery stores ([`crate::error`]) — with the HTTP status its code calls for and, when
//! DingTalk or the limiter asked to wait, a `Retry-After` header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use crate::connections::ConnectionError;
pub use crate::error::{DingTalkDetail, ErrorBody, ErrorCode};

#[derive(Debug, Clone)]
pub struct ApiError {
    /// Boxed: handlers return `Result<_, ApiError>` everywhere, and the Ok path stays small.
    pub body: Box<ErrorBody>,
    pub retry_after: Option<Duration>,
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        ApiError {
            body: Box::new(body),
            retry_after: None,
        }
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody::new(code, message).into()
    }

    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ErrorBody::invalid(field, reason).into()
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "missing or invalid bearer token (Authorization: Bearer <DTC_API_TOKEN>)",
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error");
        Self::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// A failure of a DingTalk call, by its class: rejections are never reported as success.
    pub fn from_dingtalk(e: &dingtalk::Error) -> Self {
        ApiError {
            body: Box::new(ErrorBody::from_dingtalk(e)),
            retry_after: e.retry_after(),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.body.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ConnectionError::Duplicate { name } => ApiError::new(
                ErrorCode::Conflict,
                format!("a connection named `{name}` already exists"),
            ),
            ConnectionError::NotFound { id_or_name } => {
                ApiError::not_found(format!("no connection `{id_or_name}`"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.body })),
        )
            .into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Turn a JSON body error into one naming the field: `missing field `x``, `unknown field `x``,
/// or a type error at a path (found with `serde_path_to_error`).
pub fn json_field_error(path: &str, err: &serde_json::Error) -> ApiError {
    if err.is_syntax() || err.is_eof() {
        return ApiError::invalid("body", format!("is not valid JSON: {err}"));
    }
    let msg = err.to_string();
    let quoted = |prefix: &str| -> Option<String> {
        let start = msg.find(prefix)? + prefix.len();
        let rest = &msg[start..];
        let end = rest.find('`')?;
        Some(rest[..end].to_owned())
    };
    let join = |name: String| {
        if path.is_empty() || path == "." {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted("missing field `") {
        return ApiError::invalid(join(name), "is required");
    }
    if let Some(name) = quoted("unknown field `") {
        return ApiError::invalid(join(name), "is not a known field");
    }
    let field = if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    // serde quotes the offending value; for a secret field that would echo the secret.
    let leaf = field.rsplit('.').next().unwrap_or(&field);
    if matches!(
        leaf,
        "app_secret" | "access_token" | "secret" | "master_key"
    ) {
        return ApiError::invalid(field, "is invalid: expected a string");
    }
    // Drop serde's " at line 1 column 9" suffix: the field already says where.
    let reason = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    ApiError::invalid(field, format!("is invalid: {reason}"))
}

/// Deserialize a JSON body, naming the offending field on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        json_field_error(&path, e.inner())
    })
}
