//! One decision per failed attempt: retry later, retry because the token was still rejected, or
//! fail for good. It reads only the class the `dingtalk` crate gave the error where it was
//! created (by code, never by message text) and DingTalk's `retry_after` hint.

use std::time::Duration;

use dingtalk::ErrorClass;
use serde_json::{Value, json};

use crate::actions::{ExecuteError, InputError};

/// What the engine does about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Transient (network, timeout, 5xx, system busy) or throttled (QPS/QPM limits,
    /// `send.too.fast`, webhook rate-limit codes): try again after backoff, and not before
    /// `after` (DingTalk's hint). `throttled` makes the engine also hold back the rate-limit key.
    Retry {
        after: Option<Duration>,
        throttled: bool,
    },
    /// The access token was rejected even after the client's own refresh-and-repeat inside the
    /// call: retry with backoff a limited number of times ([`super::BackoffConfig::token_retries`]),
    /// then fail.
    RefreshToken,
    /// Permanent: DingTalk refused the request for good (unknown group, wrong robot, bad
    /// message), the credentials are wrong, or the input is unusable.
    Fail,
}

/// The outcome of a DingTalk client error.
pub fn classify(error: &dingtalk::Error) -> Outcome {
    outcome_of(error.class(), error.retry_after())
}

/// The outcome of an error class; [`classify`] is this applied to an error's class and hint.
pub fn outcome_of(class: ErrorClass, retry_after: Option<Duration>) -> Outcome {
    match class {
        ErrorClass::Transient => Outcome::Retry {
            after: retry_after,
            throttled: false,
        },
        ErrorClass::Throttled => Outcome::Retry {
            after: retry_after,
            throttled: true,
        },
        ErrorClass::TokenRejected => Outcome::RefreshToken,
        ErrorClass::InvalidInput | ErrorClass::CredentialsRejected | ErrorClass::Rejected => {
            Outcome::Fail
        }
    }
}

/// The outcome of running a step: input that turned out unusable at run time is permanent.
pub fn classify_execute(error: &ExecuteError) -> Outcome {
    match error {
        ExecuteError::Input(_) => Outcome::Fail,
        ExecuteError::DingTalk { error, .. } => classify(error),
    }
}

/// The evidence stored as a delivery's `last_error` and in its attempt log. DingTalk's answer
/// keeps its own code, HTTP status, message and request id; errors of our own get a code too.
/// Never holds a secret: the client already redacted its messages.
pub fn error_json(error: &ExecuteError) -> Value {
    match error {
        ExecuteError::Input(e) => input_error_json(e),
        ExecuteError::DingTalk { error, .. } => dingtalk_error_json(error),
    }
}

pub fn dingtalk_error_json(e: &dingtalk::Error) -> Value {
    let mut v = json!({
        "code": e.code().unwrap_or(match e.class() {
            ErrorClass::Transient => "transport_error",
            ErrorClass::InvalidInput => "invalid_input",
            _ => "dingtalk_error",
        }),
        "message": e.message(),
        "api": e.api(),
        "retryable": e.is_retryable(),
    });
    if let Some(s) = e.http_status() {
        v["http_status"] = json!(s);
    }
    if let Some(r) = e.request_id() {
        v["request_id"] = json!(r);
    }
    if let Some(f) = e.field() {
        v["field"] = json!(f);
    }
    v
}

pub fn input_error_json(e: &InputError) -> Value {
    let mut v = json!({
        "code": "invalid_input",
        "message": e.to_string(),
        "retryable": false,
    });
    if let Some(f) = e.field_name() {
        v["field"] = json!(f);
    }
    v
}

/// An error of the engine's own (`code` is ours, e.g. `connection_not_found`).
pub fn engine_error_json(code: &str, message: impl std::fmt::Display, retryable: bool) -> Value {
    json!({"code": code, "message": message.to_string(), "retryable": retryable})
}

#[cfg(test)]
mod tests {
    use super::*;
    use dingtalk::Dialect::{self, New, Old};

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Retry,
        Throttled,
        Token,
        Fail,
    }
    use Want::*;

    /// Every code dingtalk-api.md lists (the same list as the `dingtalk` crate's
    /// tests/error_codes.rs, from §1, §2.8, §3, §4, §5) and what the engine does about it.
    const TABLE: &[(Dialect, u16, &str, Want)] = &[
        // §1 tokens and credentials: wrong configuration is permanent
        (New, 400, "invalidClientIdOrSecret", Fail),
        (New, 400, "Missingbody", Fail),
        (New, 400, "Invalidbody", Fail),
        (New, 400, "invalid.client", Fail),
        (New, 400, "unsupported.grant.type", Fail),
        (New, 401, "unauthorized.client", Fail),
        (New, 500, "server.error", Retry),
        (New, 500, "unknownError", Retry),
        (Old, 200, "40096", Fail),
        (Old, 200, "40089", Fail),
        (Old, 200, "40035", Fail),
        (New, 400, "InvalidAuthentication", Token),
        (New, 400, "AuthenticationFailed.MissingParameter", Fail),
        (
            New,
            403,
            "Forbidden.AccessDenied.AccessTokenPermissionDenied",
            Fail,
        ),
        (New, 403, "Forbidden.AccessDenied.IpNotInWhiteList", Fail),
        (Old, 200, "40014", Token),
        (Old, 200, "41001", Fail),
        (Old, 200, "42001", Token),
        // §2.8 robot identity
        (New, 400, "invalidParameter.robotCode.empty", Fail),
        (New, 400, "invalidParameter.robotCode.auth", Fail),
        (New, 400, "invalidParameter.robotCode.coolApp", Fail),
        (New, 400, "invalidParameter.robotCode.notExsit", Fail),
        (New, 400, "invalidParameter.robotCode.missing", Fail),
        (New, 400, "invalidParameter.robotCode.invalid", Fail),
        (New, 400, "invalidParameter.token.invalid", Fail),
        (New, 400, "token.notExisted", Fail),
        (New, 400, "bot.stopped", Fail),
        (New, 400, "template.not.existed", Fail),
        (New, 400, "template.stopped", Fail),
        (New, 400, "resource.not.found", Fail),
        (New, 400, "resource.unavailable", Fail),
        (New, 400, "unauthorized", Fail),
        (New, 400, "auth.error", Fail),
        (New, 400, "conversation.org.notMatch", Fail),
        // §2.8 conversation
        (New, 400, "miss.openConversationId", Fail),
        (New, 400, "invalid.openConversationId", Fail),
        (New, 400, "group.disbanded", Fail),
        // §2.8 message
        (New, 400, "invalidParameter.msgKey.empty", Fail),
        (New, 400, "invalidParameter.msgKey.invalid", Fail),
        (New, 400, "invalidParameter.msgParam.invalid", Fail),
        (New, 400, "invalidParameter.msgParam.tooLong", Fail),
        (New, 400, "invalidParameter.msg.unsupport", Fail),
        (New, 400, "invalidParameter.msgBody.invalid", Fail),
        (New, 400, "invalidParameter.param.invalid", Fail),
        (New, 400, "sendMessage.model.notMatch", Fail),
        (New, 400, "miss.param.text", Fail),
        (New, 400, "miss.param.contentOfText", Fail),
        (New, 400, "miss.param.link", Fail),
        (New, 400, "miss.param.textOfLink", Fail),
        (New, 400, "miss.param.titleOfLink", Fail),
        (New, 400, "miss.param.messageUrlOfLink", Fail),
        (New, 400, "miss.param.markdown", Fail),
        (New, 400, "miss.param.markdownTotitle", Fail),
        (New, 400, "miss.param.markdownTotext", Fail),
        (New, 400, "miss.param.actionCard", Fail),
        (New, 400, "miss.param.actionCardTotitle", Fail),
        (New, 400, "miss.param.actionCardTotext", Fail),
        (New, 400, "miss.param.actionCardTosingleTitle", Fail),
        (New, 400, "miss.param.actionCardTosingleUrl", Fail),
        (New, 400, "miss.param.actionCardTobtns", Fail),
        (New, 400, "miss.param.actionCardTobtnsTotitle", Fail),
        (New, 400, "miss.param.actionCardTobtnsToactionUrl", Fail),
        (New, 400, "miss.param.feedCard", Fail),
        (New, 400, "miss.param.feedCardTolinks", Fail),
        (New, 400, "miss.param.feedCardTolinksTotitle", Fail),
        (New, 400, "miss.param.feedCardTolinksTomessageUrl", Fail),
        (New, 400, "miss.param.feedCardTolinksTopicUrl", Fail),
        (New, 400, "miss.param.photo", Fail),
        (New, 400, "miss.param.photoTophotoUrl", Fail),
        (New, 400, "miss.param.image", Fail),
        (New, 400, "miss.param.imageTopicUrl", Fail),
        (New, 400, "miss.param.beautifulCard", Fail),
        (New, 400, "miss.param.file", Fail),
        (New, 400, "miss.param.video", Fail),
        (New, 400, "miss.param.audio", Fail),
        (New, 400, "invalid.param.actionCardTobtnOrientation", Fail),
        (New, 400, "invalid.param.actionCardTocanForward", Fail),
        // §2.8 users (1:1)
        (New, 400, "invalidParameter.userIds.empty", Fail),
        (New, 400, "invalidParameter.userIds.overMax", Fail),
        (New, 400, "invalidParameter.userId.empty", Fail),
        (New, 400, "staffId.notExisted", Fail),
        (New, 400, "chatbotId.notAllow.sendOTO", Fail),
        (New, 400, "robot.oto.notExist", Fail),
        (New, 400, "illegal.receivers", Fail),
        (New, 400, "receivers.exceed", Fail),
        (New, 400, "illegal.excludes", Fail),
        // §2.8 robot throttling: HTTP 400, not 429
        (New, 400, "send.too.fast", Throttled),
        (New, 400, "send.byToken.tooFast", Throttled),
        (New, 400, "too.many.group", Throttled),
        (New, 400, "too.many.people", Throttled),
        // §2.8 content safety
        (New, 400, "send.forbidden", Fail),
        (New, 400, "ip.not.match", Fail),
        (New, 400, "keywords.not.match", Fail),
        (New, 400, "sign.not.match", Fail),
        (New, 400, "contain.unsafe.url", Fail),
        (New, 400, "contain.notAllowed.text", Fail),
        (New, 400, "contain.notAllowed.picture", Fail),
        (New, 400, "contain.notAllowed.content", Fail),
        (New, 400, "only.groupAdmin.canAtAll", Fail),
        (New, 400, "bot.forbidden.sendMessage", Fail),
        (New, 400, "session.notExisted", Fail),
        (New, 400, "session.expired", Fail),
        // §2.5/§2.6/§2.8 query and recall
        (New, 400, "invalidParameter.processQueryKey.missing", Fail),
        (New, 400, "invalid.processQueryKey", Fail),
        (New, 400, "unknown.send.result", Fail),
        (New, 400, "invalidParameter.pageSize.invalid", Fail),
        (New, 400, "invalidParameter.cursor.invalid", Fail),
        (New, 400, "processQueryKey.expireTime", Fail),
        (New, 400, "robot.processQueryKey.expired", Fail),
        (New, 400, "invalidParameter.processQueryKeys.overMax", Fail),
        (New, 400, "conversation.org.dismatch", Fail),
        (New, 400, "openConversationId.notExisted", Fail),
        (New, 400, "not.allowed.robotCode", Fail),
        (New, 400, "notRevoke.all.messages", Fail),
        // §2.8 server
        (New, 500, "system.error", Retry),
        (New, 500, "send.ding.exception", Retry),
        // §3 media upload (old dialect)
        (Old, 200, "40004", Fail),
        (Old, 200, "40005", Fail),
        (Old, 200, "40006", Fail),
        (Old, 200, "-1", Retry),
        // §4 webhook robots (old dialect)
        (Old, 200, "310000", Fail),
        (Old, 200, "300005", Fail),
        (Old, 200, "300001", Fail),
        (Old, 200, "400101", Fail),
        (Old, 200, "410100", Throttled),
        (Old, 200, "130101", Throttled),
        (Old, 200, "660026", Throttled),
        (Old, 200, "400102", Fail),
        (Old, 200, "400105", Fail),
        (Old, 200, "400106", Fail),
        (Old, 200, "400013", Fail),
        (Old, 200, "400402", Fail),
        (Old, 200, "43004", Fail),
        (Old, 200, "430101", Fail),
        (Old, 200, "430102", Fail),
        (Old, 200, "430103", Fail),
        (Old, 200, "430104", Fail),
        (Old, 200, "460101", Fail),
        // §5 rate limits and quotas
        (
            New,
            403,
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            Throttled,
        ),
        (
            New,
            403,
            "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
            Throttled,
        ),
        (
            New,
            403,
            "Forbidden.AccessDenied.QpsLimitForSuitekeyAndOrgAndApi",
            Throttled,
        ),
        (
            New,
            403,
            "Forbidden.AccessDenied.QpmLimitForSuitekeyAndOrgAndApi",
            Throttled,
        ),
        (New, 403, "Forbidden.AccessDenied.QpsLimitForApi", Throttled),
        // The monthly quota does not come back within a delivery's lifetime.
        (New, 403, "Forbidden.AccessDenied.ApiCountLimitForOrg", Fail),
        (Old, 200, "90018", Throttled),
        (Old, 200, "90002", Throttled),
        (Old, 200, "90001", Throttled),
        (Old, 200, "90003", Throttled),
        (Old, 200, "90004", Throttled),
        (Old, 200, "90005", Throttled),
        (Old, 200, "90006", Throttled),
        (Old, 200, "90007", Throttled),
        (Old, 200, "90008", Throttled),
        (Old, 200, "90017", Throttled),
        (Old, 200, "45009", Throttled),
        (Old, 200, "90020", Fail),
        (Old, 200, "15", Retry),
        (Old, 200, "88", Retry),
        // Gateway statuses
        (New, 502, "BadGateway", Retry),
        (New, 503, "ServiceUnavailable", Retry),
        (New, 504, "GatewayTimeout", Retry),
        (New, 500, "SomeFutureServerCode", Retry),
        // An unknown 4xx code is permanent: retrying the same request cannot help.
        (New, 400, "some.future.code", Fail),
    ];

    fn want_of(o: Outcome) -> Want {
        match o {
            Outcome::Retry {
                throttled: false, ..
            } => Retry,
            Outcome::Retry {
                throttled: true, ..
            } => Throttled,
            Outcome::RefreshToken => Token,
            Outcome::Fail => Fail,
        }
    }

    #[test]
    fn every_documented_code_gets_its_delivery_outcome() {
        let mut wrong = Vec::new();
        for &(dialect, status, code, want) in TABLE {
            let got = want_of(outcome_of(
                dingtalk::classify(dialect, status, Some(code)),
                None,
            ));
            if got != want {
                wrong.push(format!(
                    "{code} (HTTP {status}): got {got:?}, want {want:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    }

    #[test]
    fn answers_without_a_code_retry_on_5xx_and_429_only() {
        for (status, want) in [(500, Retry), (502, Retry), (429, Retry), (400, Fail)] {
            let got = want_of(outcome_of(dingtalk::classify(New, status, None), None));
            assert_eq!(got, want, "HTTP {status}");
        }
    }

    #[test]
    fn a_retry_keeps_dingtalks_hint() {
        let hint = Some(Duration::from_secs(1));
        assert_eq!(
            outcome_of(ErrorClass::Throttled, hint),
            Outcome::Retry {
                after: hint,
                throttled: true
            }
        );
    }

    #[test]
    fn local_validation_and_run_time_input_errors_fail() {
        let e = dingtalk::Error::invalid_input("msgParam", "too long");
        assert_eq!(classify(&e), Outcome::Fail);
        let json = dingtalk_error_json(&e);
        assert_eq!(json["code"], "invalid_input");
        assert_eq!(json["field"], "msgParam");
        let run = ExecuteError::Input(InputError::field("file_url", "could not be downloaded"));
        assert_eq!(classify_execute(&run), Outcome::Fail);
        assert_eq!(error_json(&run)["field"], "file_url");
    }
}
