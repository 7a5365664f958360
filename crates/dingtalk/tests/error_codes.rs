//! Every error code dingtalk-api.md lists (§1, §2.8, §3, §4, §5) and what the client makes of
//! it. A new code added to DingTalk's tables belongs here first.

use dingtalk::{Dialect, ErrorClass, classify};

use Dialect::{New, Old};
use ErrorClass::*;

const TABLE: &[(Dialect, u16, &str, ErrorClass)] = &[
    // §1 tokens
    (New, 400, "invalidClientIdOrSecret", CredentialsRejected),
    (New, 400, "Missingbody", Rejected),
    (New, 400, "Invalidbody", Rejected),
    (New, 400, "invalid.client", CredentialsRejected),
    (New, 400, "unsupported.grant.type", Rejected),
    (New, 401, "unauthorized.client", CredentialsRejected),
    (New, 500, "server.error", Transient),
    (New, 500, "unknownError", Transient),
    (Old, 200, "40096", CredentialsRejected),
    (Old, 200, "40089", CredentialsRejected),
    (Old, 200, "40035", Rejected),
    (New, 400, "InvalidAuthentication", TokenRejected),
    (New, 400, "AuthenticationFailed.MissingParameter", Rejected),
    (
        New,
        403,
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        CredentialsRejected,
    ),
    (
        New,
        403,
        "Forbidden.AccessDenied.IpNotInWhiteList",
        CredentialsRejected,
    ),
    (Old, 200, "40014", TokenRejected),
    (Old, 200, "41001", Rejected),
    (Old, 200, "42001", TokenRejected),
    // §2.8 robot identity
    (New, 400, "invalidParameter.robotCode.empty", Rejected),
    (New, 400, "invalidParameter.robotCode.auth", Rejected),
    (New, 400, "invalidParameter.robotCode.coolApp", Rejected),
    (New, 400, "invalidParameter.robotCode.notExsit", Rejected),
    (New, 400, "invalidParameter.robotCode.missing", Rejected),
    (New, 400, "invalidParameter.robotCode.invalid", Rejected),
    (
        New,
        400,
        "invalidParameter.token.invalid",
        CredentialsRejected,
    ),
    (New, 400, "token.notExisted", CredentialsRejected),
    (New, 400, "bot.stopped", Rejected),
    (New, 400, "template.not.existed", Rejected),
    (New, 400, "template.stopped", Rejected),
    (New, 400, "resource.not.found", Rejected),
    (New, 400, "resource.unavailable", Rejected),
    (New, 400, "unauthorized", CredentialsRejected),
    (New, 400, "auth.error", CredentialsRejected),
    (New, 400, "conversation.org.notMatch", Rejected),
    // §2.8 conversation
    (New, 400, "miss.openConversationId", Rejected),
    (New, 400, "invalid.openConversationId", Rejected),
    (New, 400, "group.disbanded", Rejected),
    // §2.8 message
    (New, 400, "invalidParameter.msgKey.empty", Rejected),
    (New, 400, "invalidParameter.msgKey.invalid", Rejected),
    (New, 400, "invalidParameter.msgParam.invalid", Rejected),
    (New, 400, "invalidParameter.msgParam.tooLong", Rejected),
    (New, 400, "invalidParameter.msg.unsupport", Rejected),
    (New, 400, "invalidParameter.msgBody.invalid", Rejected),
    (New, 400, "invalidParameter.param.invalid", Rejected),
    (New, 400, "sendMessage.model.notMatch", Rejected),
    (New, 400, "miss.param.text", Rejected),
    (New, 400, "miss.param.contentOfText", Rejected),
    (New, 400, "miss.param.link", Rejected),
    (New, 400, "miss.param.textOfLink", Rejected),
    (New, 400, "miss.param.titleOfLink", Rejected),
    (New, 400, "miss.param.messageUrlOfLink", Rejected),
    (New, 400, "miss.param.markdown", Rejected),
    (New, 400, "miss.param.markdownTotitle", Rejected),
    (New, 400, "miss.param.markdownTotext", Rejected),
    (New, 400, "miss.param.actionCard", Rejected),
    (New, 400, "miss.param.actionCardTotitle", Rejected),
    (New, 400, "miss.param.actionCardTotext", Rejected),
    (New, 400, "miss.param.actionCardTosingleTitle", Rejected),
    (New, 400, "miss.param.actionCardTosingleUrl", Rejected),
    (New, 400, "miss.param.actionCardTobtns", Rejected),
    (New, 400, "miss.param.actionCardTobtnsTotitle", Rejected),
    (New, 400, "miss.param.actionCardTobtnsToactionUrl", Rejected),
    (New, 400, "miss.param.feedCard", Rejected),
    (New, 400, "miss.param.feedCardTolinks", Rejected),
    (New, 400, "miss.param.feedCardTolinksTotitle", Rejected),
    (New, 400, "miss.param.feedCardTolinksTomessageUrl", Rejected),
    (New, 400, "miss.param.feedCardTolinksTopicUrl", Rejected),
    (New, 400, "miss.param.photo", Rejected),
    (New, 400, "miss.param.photoTophotoUrl", Rejected),
    (New, 400, "miss.param.image", Rejected),
    (New, 400, "miss.param.imageTopicUrl", Rejected),
    (New, 400, "miss.param.beautifulCard", Rejected),
    (New, 400, "miss.param.file", Rejected),
    (New, 400, "miss.param.video", Rejected),
    (New, 400, "miss.param.audio", Rejected),
    (
        New,
        400,
        "invalid.param.actionCardTobtnOrientation",
        Rejected,
    ),
    (New, 400, "invalid.param.actionCardTocanForward", Rejected),
    // §2.8 users (1:1)
    (New, 400, "invalidParameter.userIds.empty", Rejected),
    (New, 400, "invalidParameter.userIds.overMax", Rejected),
    (New, 400, "invalidParameter.userId.empty", Rejected),
    (New, 400, "staffId.notExisted", Rejected),
    (New, 400, "chatbotId.notAllow.sendOTO", Rejected),
    (New, 400, "robot.oto.notExist", Rejected),
    (New, 400, "illegal.receivers", Rejected),
    (New, 400, "receivers.exceed", Rejected),
    (New, 400, "illegal.excludes", Rejected),
    // §2.8 throttling: HTTP 400, not 429
    (New, 400, "send.too.fast", Throttled),
    (New, 400, "send.byToken.tooFast", Throttled),
    (New, 400, "too.many.group", Throttled),
    (New, 400, "too.many.people", Throttled),
    // §2.8 content safety
    (New, 400, "send.forbidden", Rejected),
    (New, 400, "ip.not.match", Rejected),
    (New, 400, "keywords.not.match", Rejected),
    (New, 400, "sign.not.match", Rejected),
    (New, 400, "contain.unsafe.url", Rejected),
    (New, 400, "contain.notAllowed.text", Rejected),
    (New, 400, "contain.notAllowed.picture", Rejected),
    (New, 400, "contain.notAllowed.content", Rejected),
    (New, 400, "only.groupAdmin.canAtAll", Rejected),
    (New, 400, "bot.forbidden.sendMessage", Rejected),
    (New, 400, "session.notExisted", Rejected),
    (New, 400, "session.expired", Rejected),
    // §2.5/§2.6/§2.8 query and recall
    (
        New,
        400,
        "invalidParameter.processQueryKey.missing",
        Rejected,
    ),
    (New, 400, "invalid.processQueryKey", Rejected),
    (New, 400, "unknown.send.result", Rejected),
    (New, 400, "invalidParameter.pageSize.invalid", Rejected),
    (New, 400, "invalidParameter.cursor.invalid", Rejected),
    (New, 400, "processQueryKey.expireTime", Rejected),
    (New, 400, "robot.processQueryKey.expired", Rejected),
    (
        New,
        400,
        "invalidParameter.processQueryKeys.overMax",
        Rejected,
    ),
    (New, 400, "conversation.org.dismatch", Rejected),
    (New, 400, "openConversationId.notExisted", Rejected),
    (New, 400, "not.allowed.robotCode", Rejected),
    (New, 400, "notRevoke.all.messages", Rejected),
    // §2.8 server
    (New, 500, "system.error", Transient),
    (New, 500, "send.ding.exception", Transient),
    // §3 media upload (old dialect)
    (Old, 200, "40004", Rejected),
    (Old, 200, "40005", Rejected),
    (Old, 200, "40006", Rejected),
    (Old, 200, "-1", Transient),
    // §4 webhook robots (old dialect)
    (Old, 200, "310000", Rejected),
    (Old, 200, "300005", CredentialsRejected),
    (Old, 200, "300001", CredentialsRejected),
    (Old, 200, "400101", CredentialsRejected),
    (Old, 200, "410100", Throttled),
    (Old, 200, "130101", Throttled),
    (Old, 200, "660026", Throttled),
    (Old, 200, "400102", Rejected),
    (Old, 200, "400105", Rejected),
    (Old, 200, "400106", Rejected),
    (Old, 200, "400013", Rejected),
    (Old, 200, "400402", Rejected),
    (Old, 200, "43004", Rejected),
    (Old, 200, "430101", Rejected),
    (Old, 200, "430102", Rejected),
    (Old, 200, "430103", Rejected),
    (Old, 200, "430104", Rejected),
    (Old, 200, "460101", Rejected),
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
    (
        New,
        403,
        "Forbidden.AccessDenied.ApiCountLimitForOrg",
        Rejected,
    ),
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
    (Old, 200, "90020", Rejected),
    (Old, 200, "15", Transient),
    (Old, 200, "88", Transient),
    // Gateway statuses with or without a code
    (New, 502, "BadGateway", Transient),
    (New, 503, "ServiceUnavailable", Transient),
    (New, 504, "GatewayTimeout", Transient),
    // §7.1 stream gateway
    (New, 401, "authFailed", CredentialsRejected),
    (New, 400, "systemError", Transient),
];

#[test]
fn every_documented_code_is_classified() {
    let mut wrong = Vec::new();
    for &(dialect, status, code, want) in TABLE {
        let got = classify(dialect, status, Some(code));
        if got != want {
            wrong.push(format!(
                "{code} (HTTP {status}): got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[test]
fn answers_without_a_code_are_classified_by_status() {
    assert_eq!(classify(New, 502, None), Transient);
    assert_eq!(classify(New, 429, None), Transient);
    assert_eq!(classify(New, 404, None), Rejected);
}
