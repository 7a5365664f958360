//! One error type for every DingTalk call, classified where it is created.
//!
//! DingTalk has two error dialects (docs/dingtalk-api.md §0): the new API answers HTTP 4xx/5xx with
//! `{"code","message","requestid"}`; the old API (and webhooks) answer HTTP 200 with
//! `{"errcode","errmsg"}`. Both are decoded here into [`Error`], which keeps the evidence
//! (HTTP status, code, request id, raw body with secrets redacted) and a [`ErrorClass`] that
//! callers use to decide what to do. Classification is by code, never by message text.

use std::fmt;
use std::time::Duration;

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Refused by local validation before anything was sent.
    InvalidInput,
    /// The app's credentials, or the webhook robot's token, were rejected: fix the configuration.
    CredentialsRejected,
    /// The access token was rejected: refresh it once and repeat the call.
    TokenRejected,
    /// DingTalk throttled the call: wait [`Error::retry_after`] and retry.
    Throttled,
    /// Network failure, timeout, 5xx or "system busy": retry with backoff.
    Transient,
    /// DingTalk refused the request for good (unknown group, wrong robot, bad message, ...).
    Rejected,
}

/// Which error dialect a response was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `api.dingtalk.com`: HTTP 4xx/5xx with `code`/`message`/`requestid`.
    New,
    /// `oapi.dingtalk.com` and webhooks: HTTP 200 with `errcode`/`errmsg`.
    Old,
}

/// An error from a DingTalk call, with its evidence.
pub struct Error(Box<Inner>);

struct Inner {
    class: ErrorClass,
    api: &'static str,
    http_status: Option<u16>,
    code: Option<String>,
    message: String,
    request_id: Option<String>,
    raw_body: Option<String>,
    field: Option<String>,
    retry_after: Option<Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    fn new(class: ErrorClass, api: &'static str, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            class,
            api,
            http_status: None,
            code: None,
            message: message.into(),
            request_id: None,
            raw_body: None,
            field: None,
            retry_after: None,
            source: None,
        }))
    }

    /// Local validation failed for `field`; nothing was sent.
    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorClass::InvalidInput, "input", reason);
        e.0.field = Some(field.into());
        e
    }

    /// A transport failure (connect, reset, timeout) talking to `api`.
    pub(crate) fn transport(api: &'static str, err: reqwest::Error) -> Self {
        // reqwest's message includes the URL, which for old-API calls carries the access
        // token in its query: strip it.
        let err = err.without_url();
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "could not connect"
        } else {
            "transport failure"
        };
        let mut e = Self::new(ErrorClass::Transient, api, format!("{what}: {err}"));
        e.0.source = Some(Box::new(err));
        e
    }

    /// A transport failure on the lean new-API path (`client::Lean`): what went wrong in words
    /// (`timed out`, `could not connect`, …) and the error behind it. Its message names no URL.
    pub(crate) fn transport_because(
        api: &'static str,
        what: &str,
        err: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let message = match &err {
            Some(err) => format!("{what}: {err}"),
            None => what.to_owned(),
        };
        let mut e = Self::new(ErrorClass::Transient, api, message);
        e.0.source = err;
        e
    }

    /// A response that could not be understood (not JSON, missing fields).
    pub(crate) fn decode(api: &'static str, http_status: u16, body: &str, why: String) -> Self {
        // A 5xx with an HTML page from a gateway is transient; a 2xx we cannot parse is not.
        let class = if http_status >= 500 {
            ErrorClass::Transient
        } else {
            ErrorClass::Rejected
        };
        let mut e = Self::new(
            class,
            api,
            format!("unexpected response (HTTP {http_status}): {why}"),
        );
        e.0.http_status = Some(http_status);
        e.0.raw_body = Some(redact(body));
        e
    }

    /// Decode a DingTalk error body of either dialect. `retry_after_header` is the value of a
    /// `Retry-After` header, if DingTalk sent one (UNCONFIRMED that it ever does; cheap to honour).
    pub(crate) fn from_response(
        api: &'static str,
        dialect: Dialect,
        http_status: u16,
        body: &str,
        retry_after_header: Option<Duration>,
    ) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let get_str = |k: &str| -> Option<String> {
            parsed.as_ref()?.get(k).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let (code, message, request_id) = match dialect {
            Dialect::New => (
                get_str("code").or_else(|| get_str("Code")),
                get_str("message").or_else(|| get_str("Message")),
                get_str("requestid").or_else(|| get_str("requestId")),
            ),
            Dialect::Old => {
                let errcode = get_str("errcode");
                // errcode 88 is a wrapper; the meaningful code is sub_code (docs/dingtalk-api.md §1.4).
                let sub = get_str("sub_code").filter(|s| !s.is_empty());
                let code = match (errcode.as_deref(), sub) {
                    (Some("88"), Some(sub)) => Some(sub),
                    (e, _) => e.map(str::to_owned),
                };
                (code, get_str("errmsg"), get_str("request_id"))
            }
        };
        let class = crate::codes::classify(dialect, http_status, code.as_deref());
        let mut e = Self::new(
            class,
            api,
            message.unwrap_or_else(|| "no message in DingTalk's answer".into()),
        );
        e.0.http_status = Some(http_status);
        e.0.code = code;
        e.0.request_id = request_id;
        e.0.raw_body = Some(redact(body));
        e.0.retry_after =
            retry_after_header.or_else(|| e.0.code.as_deref().and_then(crate::codes::retry_after));
        e
    }

    pub fn class(&self) -> ErrorClass {
        self.0.class
    }
    /// The API route that failed, named `family.method` (e.g. `robot.group_send`).
    pub fn api(&self) -> &'static str {
        self.0.api
    }
    pub fn http_status(&self) -> Option<u16> {
        self.0.http_status
    }
    /// DingTalk's code: the new API's `code` string, or the old API's `errcode` as a string.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// DingTalk's message, or ours for local and transport errors.
    pub fn message(&self) -> &str {
        &self.0.message
    }
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// The response body as received, with secret-bearing fields redacted.
    pub fn raw_body(&self) -> Option<&str> {
        self.0.raw_body.as_deref()
    }
    /// For [`ErrorClass::InvalidInput`]: the field that was wrong.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }
    /// Whether repeating the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.0.class, ErrorClass::Throttled | ErrorClass::Transient)
    }
    /// How long to wait before retrying a throttled call.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.0.class {
            ErrorClass::Throttled | ErrorClass::Transient => self.0.retry_after,
            _ => None,
        }
    }
    /// Whether the access token was rejected (refresh once and repeat).
    pub fn is_token_rejected(&self) -> bool {
        self.0.class == ErrorClass::TokenRejected
    }
    /// Whether this came from DingTalk's answer (as opposed to local validation or transport).
    pub fn is_dingtalk_answer(&self) -> bool {
        self.0.code.is_some()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("class", &self.0.class)
            .field("api", &self.0.api)
            .field("http_status", &self.0.http_status)
            .field("code", &self.0.code)
            .field("message", &self.0.message)
            .field("request_id", &self.0.request_id)
            .field("field", &self.0.field)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        if let Some(field) = &i.field {
            return write!(f, "invalid `{field}`: {}", i.message);
        }
        match &i.code {
            Some(code) => {
                write!(f, "{}: DingTalk answered {code}", i.api)?;
                // DingTalk's own words are often Chinese only: say what the code means first.
                if let Some(meaning) = crate::codes::meaning(code) {
                    write!(f, " ({meaning})")?;
                }
                write!(f, ": {}", i.message)?;
                if let Some(s) = i.http_status {
                    write!(f, " (HTTP {s}")?;
                    if let Some(r) = &i.request_id {
                        write!(f, ", request id {r}")?;
                    }
                    write!(f, ")")?;
                }
                Ok(())
            }
            None => write!(f, "{}: {}", i.api, i.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

const SECRET_KEYS: &[&str] = &[
    "accessToken",
    "access_token",
    "appSecret",
    "appsecret",
    "clientSecret",
    "client_secret",
    "secret",
    "sessionWebhook",
];

/// Replace the values of secret-bearing keys in a JSON body; non-JSON bodies are kept, cut to
/// 2 KiB, with anything that looks like `access_token=…` masked.
pub(crate) fn redact(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            redact_value(&mut v);
            v.to_string()
        }
        Err(_) => {
            let mut s: String = body.chars().take(2048).collect();
            for key in ["access_token=", "appsecret=", "sign="] {
                let mut from = 0;
                while let Some(pos) = s[from..].find(key) {
                    let start = from + pos + key.len();
                    let end = s[start..]
                        .find(|c: char| c == '&' || c == '"' || c.is_whitespace())
                        .map_or(s.len(), |e| start + e);
                    s.replace_range(start..end, "***");
                    from = start + 3;
                }
            }
            s
        }
    }
}

fn redact_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) {
                    *val = serde_json::Value::String("***".into());
                } else {
                    redact_value(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_dialect_error_keeps_evidence() {
        let body = r#"{"requestid":"01A08FE7-68C3-7BBD-B223-447768EA4B29","code":"invalid.openConversationId","message":"bad group"}"#;
        let e = Error::from_response("robot.group_send", Dialect::New, 400, body, None);
        assert_eq!(e.class(), ErrorClass::Rejected);
        assert_eq!(e.code(), Some("invalid.openConversationId"));
        assert_eq!(e.http_status(), Some(400));
        assert_eq!(e.request_id(), Some("01A08FE7-68C3-7BBD-B223-447768EA4B29"));
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("invalid.openConversationId"));
    }

    #[test]
    fn old_dialect_88_wrapper_uses_sub_code() {
        let body = r#"{"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"ding talk error","request_id":"16l4ew3d47pdp"}"#;
        let e = Error::from_response("media.upload", Dialect::Old, 200, body, None);
        assert!(e.is_token_rejected());
        assert_eq!(e.code(), Some("40014"));
        assert_eq!(e.request_id(), Some("16l4ew3d47pdp"));
    }

    #[test]
    fn qps_limit_is_retryable_after_a_second() {
        let body = r#"{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"x","requestid":"r"}"#;
        let e = Error::from_response("robot.group_send", Dialect::New, 403, body, None);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn redaction_hides_secret_fields_and_query_tokens() {
        let r = redact(r#"{"accessToken":"abc","expireIn":7200,"nested":{"appSecret":"s"}}"#);
        assert!(!r.contains("abc") && !r.contains("\"s\""), "{r}");
        let r = redact("<html>see /media/upload?access_token=deadbeef&type=file</html>");
        assert!(!r.contains("deadbeef"), "{r}");
    }

    #[test]
    fn invalid_input_names_the_field() {
        let e = Error::invalid_input("msgParam", "is 15001 bytes; DingTalk allows 15000");
        assert_eq!(e.class(), ErrorClass::InvalidInput);
        assert_eq!(e.field(), Some("msgParam"));
        assert_eq!(
            e.to_string(),
            "invalid `msgParam`: is 15001 bytes; DingTalk allows 15000"
        );
    }
}
