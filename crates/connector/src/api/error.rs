//! The one error shape of the REST API (docs/design.md §6): `{"error": ErrorBody}` — the same record
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

    /// The same error blamed on `field` (a header, a parameter).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
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
            // Valid input, but not for this connection as it is.
            ConnectionError::WrongKind { field, reason } => {
                ApiError::new(ErrorCode::Conflict, format!("`{field}` {reason}")).with_field(field)
            }
            ConnectionError::NotFound { id_or_name } => {
                ApiError::not_found(format!("no connection `{id_or_name}`"))
            }
            other => ApiError::internal(other),
        }
    }
}

/// The error answer's shape: `{"error": {...}}`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// Every route may answer an error: documented as the default response, in the one shape.
impl aide::OperationOutput for ApiError {
    type Inner = ErrorEnvelope;

    fn operation_response(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Option<aide::openapi::Response> {
        let mut response = axum::Json::<ErrorEnvelope>::operation_response(ctx, op)?;
        response.description =
            "An error; `error.code` says which (its HTTP status follows from it), `error.field` \
             names the field at fault. 429 and 503 answers may carry `Retry-After`."
                .into();
        Some(response)
    }

    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<aide::openapi::StatusCode>, aide::openapi::Response)> {
        Self::operation_response(ctx, op)
            .map(|r| vec![(None, r)])
            .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status(),
            axum::Json(ErrorEnvelope { error: *self.body }),
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
