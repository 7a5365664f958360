//! The one error record. What the REST API answers for a failure
//! (`{"error": ErrorBody}` with [`ErrorCode::http_status`]) is exactly what a delivery stores as
//! its `last_error` and in its attempt log — whether the synchronous path or the delivery engine
//! wrote it — so replaying an `Idempotency-Key` can return it unchanged.

use dingtalk::ErrorClass;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::{ExecuteError, InputError};

/// What went wrong, as a stable code; it decides the HTTP status and whether to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or an input field is invalid (`field` names it).
    InvalidInput,
    /// The request body is not JSON (or multipart for actions).
    UnsupportedMediaType,
    /// No or a wrong bearer token.
    Unauthorized,
    /// The token's role may not do this (viewer, operator, admin).
    Forbidden,
    /// No such connection, action, delivery or route.
    NotFound,
    /// The route exists but not for this HTTP method (`Allow` lists the ones it has).
    MethodNotAllowed,
    /// The request (its headers or its body) did not arrive in time.
    RequestTimeout,
    /// The name is taken, or the resource changed meanwhile.
    Conflict,
    /// The first request with this `Idempotency-Key` is still running.
    InProgress,
    /// The body is too large.
    PayloadTooLarge,
    /// The request's path and query are too long.
    UriTooLong,
    /// The request's headers are too large.
    HeadersTooLarge,
    /// The `Idempotency-Key` was used with another action or input.
    IdempotencyConflict,
    /// The input is well-formed but what it refers to cannot be used (a `file_url` that cannot
    /// be downloaded, or is too big or empty).
    UnusableInput,
    /// DingTalk rejected the connection's credentials (AppKey/AppSecret, webhook token).
    CredentialsRejected,
    /// DingTalk refused the request for good (unknown group, robot not in it, bad message …).
    DingtalkRejected,
    /// DingTalk throttled the call; retry after `Retry-After`.
    DingtalkThrottled,
    /// DingTalk could not be reached or failed (network, timeout, 5xx); retry later.
    DingtalkUnavailable,
    /// dtc held the request back to keep within DingTalk's limits; retry after `Retry-After`.
    RateLimited,
    /// The shared rate limiter's database is unavailable; nothing was sent.
    RateLimiterUnavailable,
    /// The delivery's connection was deleted.
    ConnectionNotFound,
    /// The connection cannot be used as stored (e.g. its secrets are unreadable).
    ConnectionUnusable,
    /// The connection's secrets are sealed with a key this instance does not hold yet.
    ConnectionKeyUnknown,
    /// The database was unavailable.
    StoreUnavailable,
    /// The server has as many open connections as it serves; retry after `Retry-After`.
    Overloaded,
    /// A bug or an unexpected condition; see the server log.
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidInput => 400,
            Unauthorized => 401,
            Forbidden => 403,
            NotFound | ConnectionNotFound => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            Conflict | InProgress => 409,
            PayloadTooLarge => 413,
            UriTooLong => 414,
            UnsupportedMediaType => 415,
            HeadersTooLarge => 431,
            IdempotencyConflict | UnusableInput | CredentialsRejected | DingtalkRejected
            | ConnectionUnusable => 422,
            DingtalkThrottled | RateLimited => 429,
            Internal => 500,
            DingtalkUnavailable => 502,
            RateLimiterUnavailable | ConnectionKeyUnknown | StoreUnavailable | Overloaded => 503,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            InProgress
                | DingtalkThrottled
                | DingtalkUnavailable
                | RateLimited
                | RateLimiterUnavailable
                | ConnectionKeyUnknown
                | StoreUnavailable
                | RequestTimeout
                | Overloaded
        )
    }

    /// The code of a DingTalk error class.
    pub fn of_class(class: ErrorClass) -> Self {
        match class {
            ErrorClass::InvalidInput => ErrorCode::InvalidInput,
            ErrorClass::CredentialsRejected | ErrorClass::TokenRejected => {
                ErrorCode::CredentialsRejected
            }
            ErrorClass::Rejected => ErrorCode::DingtalkRejected,
            ErrorClass::Throttled => ErrorCode::DingtalkThrottled,
            ErrorClass::Transient => ErrorCode::DingtalkUnavailable,
        }
    }
}

/// DingTalk's own evidence for a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DingTalkDetail {
    /// HTTP status of DingTalk's answer (none when it could not be reached).
    pub http_status: Option<u16>,
    /// DingTalk's code (`code` of the new API, `errcode` of the old one).
    pub code: Option<String>,
    /// DingTalk's message, with secrets redacted.
    pub message: String,
    /// DingTalk's request id, to quote to DingTalk's support.
    pub request_id: Option<String>,
}

/// The error record.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// What happened, in plain words; never holds a secret.
    pub message: String,
    /// The input field (or header) at fault, e.g. `buttons[1].url` or `Idempotency-Key`.
    pub field: Option<String>,
    /// Whether repeating the request later may succeed.
    pub retryable: bool,
    /// DingTalk's answer, when DingTalk refused or failed the call.
    pub dingtalk: Option<DingTalkDetail>,
    /// Consecutive attempts whose access token was rejected even after a refresh (the delivery
    /// engine gives up after a few).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub token_rejections: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            field: None,
            retryable: code.is_retryable(),
            dingtalk: None,
            token_rejections: 0,
        }
    }

    /// `field` is invalid for `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        let mut e = Self::new(ErrorCode::InvalidInput, format!("`{field}` {reason}"));
        e.field = Some(field);
        e
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A failed DingTalk call, by the class it was given where it was created.
    pub fn from_dingtalk(e: &dingtalk::Error) -> Self {
        if e.class() == ErrorClass::InvalidInput {
            return Self::invalid(e.field().unwrap_or("input"), e.message());
        }
        let mut body = Self::new(ErrorCode::of_class(e.class()), e.to_string());
        body.dingtalk = Some(DingTalkDetail {
            http_status: e.http_status(),
            code: e.code().map(str::to_owned),
            message: e.message().to_owned(),
            request_id: e.request_id().map(str::to_owned),
        });
        body
    }

    pub fn from_input(e: &InputError) -> Self {
        match e {
            InputError::Invalid { field, reason } => Self::invalid(field.clone(), reason),
            InputError::Unusable { field, reason } => {
                Self::new(ErrorCode::UnusableInput, format!("`{field}` {reason}"))
                    .with_field(field.clone())
            }
            InputError::UnknownAction(name) => Self::new(
                ErrorCode::NotFound,
                format!("no action `{name}`; see GET /v1/actions"),
            ),
        }
    }

    pub fn from_execute(e: &ExecuteError) -> Self {
        match e {
            ExecuteError::Input(e) => Self::from_input(e),
            ExecuteError::DingTalk { error, .. } => Self::from_dingtalk(error),
        }
    }

    /// The HTTP status the API answers this record with.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// A record read back from the database. Deliveries written before the record had one shape
    /// stored the sync path's `{"status","error":{…}}` or the engine's flat
    /// `{"code":<DingTalk's code>,"message",…}`; both are read as well as they can be.
    pub fn from_stored(value: Value) -> Self {
        if let Ok(body) = serde_json::from_value::<ErrorBody>(value.clone()) {
            return body;
        }
        if let Some(inner) = value.get("error")
            && let Ok(body) = serde_json::from_value::<ErrorBody>(inner.clone())
        {
            return body;
        }
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let retryable = value.get("retryable").and_then(Value::as_bool);
        let code = match retryable {
            Some(true) => ErrorCode::DingtalkUnavailable,
            _ => ErrorCode::DingtalkRejected,
        };
        let mut body = Self::new(code, text("message").unwrap_or_else(|| value.to_string()));
        body.field = text("field");
        if text("api").is_some() {
            body.dingtalk = Some(DingTalkDetail {
                http_status: value
                    .get("http_status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok()),
                code: text("code"),
                message: body.message.clone(),
                request_id: text("request_id"),
            });
        }
        body
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_and_retryability_follow_the_code() {
        assert_eq!(ErrorCode::InvalidInput.http_status(), 400);
        assert_eq!(ErrorCode::DingtalkThrottled.http_status(), 429);
        assert!(ErrorCode::DingtalkUnavailable.is_retryable());
        assert!(!ErrorCode::DingtalkRejected.is_retryable());
        let e = ErrorBody::invalid("buttons[1].url", "must be a URL");
        assert_eq!(e.message, "`buttons[1].url` must be a URL");
        assert_eq!(serde_json::to_value(&e).unwrap()["code"], "invalid_input");
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let e = ErrorBody::from_dingtalk(&dingtalk::Error::invalid_input("x", "y"));
        let back = ErrorBody::from_stored(serde_json::to_value(&e).unwrap());
        assert_eq!(back, e);
    }

    #[test]
    fn earlier_shapes_are_still_read() {
        let sync = json!({"status": 422, "error": {"code": "dingtalk_rejected", "message": "m", "retryable": false}});
        assert_eq!(
            ErrorBody::from_stored(sync).code,
            ErrorCode::DingtalkRejected
        );
        let engine = json!({"code": "invalid.openConversationId", "message": "bad group",
                            "api": "robot.group_send", "retryable": false, "http_status": 400});
        let e = ErrorBody::from_stored(engine);
        assert_eq!(e.code, ErrorCode::DingtalkRejected);
        let d = e.dingtalk.unwrap();
        assert_eq!(d.code.as_deref(), Some("invalid.openConversationId"));
        assert_eq!(d.http_status, Some(400));
    }
}
