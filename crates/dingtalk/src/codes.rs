//! The one table of DingTalk's error codes: every code `docs/dingtalk-api.md` (§1–§5, §7.1) lists, the dialect
//! and HTTP status it arrives with, what it means for a caller ([`ErrorClass`]), and how long
//! DingTalk asks to wait before a retry. [`classify`] reads it; nothing else lists codes.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use crate::error::{Dialect, ErrorClass};

/// One documented error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub dialect: Dialect,
    /// The HTTP status it arrives with (200 for the old dialect's `errcode`s).
    pub http_status: u16,
    /// The new API's `code`, or the old API's `errcode` (or `sub_code` under errcode 88).
    pub code: &'static str,
    pub class: ErrorClass,
    /// DingTalk's advice on how long to wait before retrying, in seconds (0: none given).
    pub retry_after_secs: u64,
    /// What it means, in English (DingTalk's own messages are often Chinese only).
    pub meaning: &'static str,
}

impl Code {
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_secs > 0).then(|| Duration::from_secs(self.retry_after_secs))
    }
}

const fn code(
    dialect: Dialect,
    http_status: u16,
    code: &'static str,
    class: ErrorClass,
    retry_after_secs: u64,
    meaning: &'static str,
) -> Code {
    Code {
        dialect,
        http_status,
        code,
        class,
        retry_after_secs,
        meaning,
    }
}

/// Codes DingTalk documents only as a family: the gateway's QPS (1 s windows) and QPM (1 min)
/// limits, whatever follows the prefix.
const FAMILIES: &[(&str, ErrorClass, u64, &str)] = &[
    (
        "Forbidden.AccessDenied.Qps",
        ErrorClass::Throttled,
        1,
        "a per-second call limit was hit; wait a second",
    ),
    (
        "Forbidden.AccessDenied.Qpm",
        ErrorClass::Throttled,
        60,
        "a per-minute call limit was hit; wait a minute",
    ),
];

use Dialect::{New, Old};
use ErrorClass::*;

/// Every code, in the order of `docs/dingtalk-api.md` (§1–§5, §7.1).
pub const CODES: &[Code] = &[
    // §1 tokens
    code(
        New,
        400,
        "invalidClientIdOrSecret",
        CredentialsRejected,
        0,
        "the AppKey (Client ID) or AppSecret (Client Secret) is wrong",
    ),
    code(
        New,
        400,
        "Missingbody",
        Rejected,
        0,
        "the request had no JSON body",
    ),
    code(
        New,
        400,
        "Invalidbody",
        Rejected,
        0,
        "the request body is not valid JSON",
    ),
    code(
        New,
        400,
        "invalid.client",
        CredentialsRejected,
        0,
        "the client ID or client secret is wrong",
    ),
    code(
        New,
        400,
        "unsupported.grant.type",
        Rejected,
        0,
        "the token request used a grant type DingTalk does not support",
    ),
    code(
        New,
        401,
        "unauthorized.client",
        CredentialsRejected,
        0,
        "the app is not allowed to get a token this way",
    ),
    code(
        New,
        500,
        "server.error",
        Transient,
        0,
        "DingTalk had an internal error",
    ),
    code(
        New,
        500,
        "unknownError",
        Transient,
        0,
        "DingTalk had an unknown internal error",
    ),
    code(
        Old,
        200,
        "40096",
        CredentialsRejected,
        0,
        "the AppKey or AppSecret is wrong",
    ),
    code(
        Old,
        200,
        "40089",
        CredentialsRejected,
        0,
        "the corpId or corpSecret (AppKey/AppSecret) is wrong",
    ),
    code(
        Old,
        200,
        "40035",
        Rejected,
        0,
        "a required parameter is missing or not valid JSON",
    ),
    code(
        New,
        400,
        "InvalidAuthentication",
        TokenRejected,
        0,
        "the access token is invalid or expired",
    ),
    code(
        New,
        400,
        "AuthenticationFailed.MissingParameter",
        Rejected,
        0,
        "the request carried no access token",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        CredentialsRejected,
        0,
        "the app lacks the permission for this API (for robot messages: qyapi_robot_sendmsg); add it in the developer console",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.IpNotInWhiteList",
        CredentialsRejected,
        0,
        "this server's IP address is not in the app's IP allow-list",
    ),
    code(
        Old,
        200,
        "40014",
        TokenRejected,
        0,
        "the access token is invalid",
    ),
    code(
        Old,
        200,
        "41001",
        Rejected,
        0,
        "the request carried no access token",
    ),
    code(
        Old,
        200,
        "42001",
        TokenRejected,
        0,
        "the access token has expired",
    ),
    code(
        Old,
        200,
        "40001",
        TokenRejected,
        0,
        "the access token or credentials are invalid",
    ),
    // §2.8 robot identity
    code(
        New,
        400,
        "invalidParameter.robotCode.empty",
        Rejected,
        0,
        "the robot code is empty or the robot is not in this group; add the robot to the group",
    ),
    code(
        New,
        400,
        "invalidParameter.robotCode.auth",
        Rejected,
        0,
        "the robot belongs to another app than the token's; check the RobotCode",
    ),
    code(
        New,
        400,
        "invalidParameter.robotCode.coolApp",
        Rejected,
        0,
        "the robot's cool-app is not valid for this group",
    ),
    code(
        New,
        400,
        "invalidParameter.robotCode.notExsit",
        Rejected,
        0,
        "no robot has this RobotCode; check it (usually the AppKey)",
    ),
    code(
        New,
        400,
        "invalidParameter.robotCode.missing",
        Rejected,
        0,
        "the request carried no robot code",
    ),
    code(
        New,
        400,
        "invalidParameter.robotCode.invalid",
        Rejected,
        0,
        "the robot code is not valid",
    ),
    code(
        New,
        400,
        "invalidParameter.token.invalid",
        CredentialsRejected,
        0,
        "the token is not authorised for this robot",
    ),
    code(
        New,
        400,
        "token.notExisted",
        CredentialsRejected,
        0,
        "the token does not exist",
    ),
    code(
        New,
        400,
        "bot.stopped",
        Rejected,
        0,
        "the robot is stopped; enable it in the developer console",
    ),
    code(
        New,
        400,
        "template.not.existed",
        Rejected,
        0,
        "the message template does not exist",
    ),
    code(
        New,
        400,
        "template.stopped",
        Rejected,
        0,
        "the message template is disabled",
    ),
    code(
        New,
        400,
        "resource.not.found",
        Rejected,
        0,
        "the robot or group was not found (often: the robot is not in this group)",
    ),
    code(
        New,
        400,
        "resource.unavailable",
        Rejected,
        0,
        "the robot is disabled or not installed in this group",
    ),
    code(
        New,
        400,
        "unauthorized",
        CredentialsRejected,
        0,
        "the app is not authorised for this call",
    ),
    code(
        New,
        400,
        "auth.error",
        CredentialsRejected,
        0,
        "authorisation failed",
    ),
    code(
        New,
        400,
        "conversation.org.notMatch",
        Rejected,
        0,
        "the group belongs to another organisation than the app",
    ),
    // §2.8 conversation
    code(
        New,
        400,
        "miss.openConversationId",
        Rejected,
        0,
        "the group chat id (openConversationId) is missing",
    ),
    code(
        New,
        400,
        "invalid.openConversationId",
        Rejected,
        0,
        "the group chat id (openConversationId) is not valid or unknown; check it",
    ),
    code(
        New,
        400,
        "group.disbanded",
        Rejected,
        0,
        "the group has been disbanded",
    ),
    // §2.8 message
    code(
        New,
        400,
        "invalidParameter.msgKey.empty",
        Rejected,
        0,
        "the message type (msgKey) is missing",
    ),
    code(
        New,
        400,
        "invalidParameter.msgKey.invalid",
        Rejected,
        0,
        "the message type (msgKey) is not supported",
    ),
    code(
        New,
        400,
        "invalidParameter.msgParam.invalid",
        Rejected,
        0,
        "the message parameters (msgParam) are not valid JSON",
    ),
    code(
        New,
        400,
        "invalidParameter.msgParam.tooLong",
        Rejected,
        0,
        "the message is too long",
    ),
    code(
        New,
        400,
        "invalidParameter.msg.unsupport",
        Rejected,
        0,
        "the message type is not supported here",
    ),
    code(
        New,
        400,
        "invalidParameter.msgBody.invalid",
        Rejected,
        0,
        "the request body is not valid JSON",
    ),
    code(
        New,
        400,
        "invalidParameter.param.invalid",
        Rejected,
        0,
        "a parameter is not valid",
    ),
    code(
        New,
        400,
        "sendMessage.model.notMatch",
        Rejected,
        0,
        "the message does not match its type",
    ),
    code(
        New,
        400,
        "miss.param.text",
        Rejected,
        0,
        "the text message has no text",
    ),
    code(
        New,
        400,
        "miss.param.contentOfText",
        Rejected,
        0,
        "the text message has no content",
    ),
    code(
        New,
        400,
        "miss.param.link",
        Rejected,
        0,
        "the link message has no link",
    ),
    code(
        New,
        400,
        "miss.param.textOfLink",
        Rejected,
        0,
        "the link message has no text",
    ),
    code(
        New,
        400,
        "miss.param.titleOfLink",
        Rejected,
        0,
        "the link message has no title",
    ),
    code(
        New,
        400,
        "miss.param.messageUrlOfLink",
        Rejected,
        0,
        "the link message has no URL",
    ),
    code(
        New,
        400,
        "miss.param.markdown",
        Rejected,
        0,
        "the markdown message has no markdown",
    ),
    code(
        New,
        400,
        "miss.param.markdownTotitle",
        Rejected,
        0,
        "the markdown message has no title",
    ),
    code(
        New,
        400,
        "miss.param.markdownTotext",
        Rejected,
        0,
        "the markdown message has no text",
    ),
    code(
        New,
        400,
        "miss.param.actionCard",
        Rejected,
        0,
        "the ActionCard has no card",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTotitle",
        Rejected,
        0,
        "the ActionCard has no title",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTotext",
        Rejected,
        0,
        "the ActionCard has no text",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTosingleTitle",
        Rejected,
        0,
        "the ActionCard has no button title",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTosingleUrl",
        Rejected,
        0,
        "the ActionCard has no button URL",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTobtns",
        Rejected,
        0,
        "the ActionCard has no buttons",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTobtnsTotitle",
        Rejected,
        0,
        "an ActionCard button has no title",
    ),
    code(
        New,
        400,
        "miss.param.actionCardTobtnsToactionUrl",
        Rejected,
        0,
        "an ActionCard button has no URL",
    ),
    code(
        New,
        400,
        "miss.param.feedCard",
        Rejected,
        0,
        "the FeedCard has no card",
    ),
    code(
        New,
        400,
        "miss.param.feedCardTolinks",
        Rejected,
        0,
        "the FeedCard has no links",
    ),
    code(
        New,
        400,
        "miss.param.feedCardTolinksTotitle",
        Rejected,
        0,
        "a FeedCard link has no title",
    ),
    code(
        New,
        400,
        "miss.param.feedCardTolinksTomessageUrl",
        Rejected,
        0,
        "a FeedCard link has no URL",
    ),
    code(
        New,
        400,
        "miss.param.feedCardTolinksTopicUrl",
        Rejected,
        0,
        "a FeedCard link has no picture URL",
    ),
    code(
        New,
        400,
        "miss.param.photo",
        Rejected,
        0,
        "the image message has no image",
    ),
    code(
        New,
        400,
        "miss.param.photoTophotoUrl",
        Rejected,
        0,
        "the image message has no image URL",
    ),
    code(
        New,
        400,
        "miss.param.image",
        Rejected,
        0,
        "the image message has no image",
    ),
    code(
        New,
        400,
        "miss.param.imageTopicUrl",
        Rejected,
        0,
        "the image message has no picture URL",
    ),
    code(
        New,
        400,
        "miss.param.beautifulCard",
        Rejected,
        0,
        "the card message has no card",
    ),
    code(
        New,
        400,
        "miss.param.file",
        Rejected,
        0,
        "the file message has no file",
    ),
    code(
        New,
        400,
        "miss.param.video",
        Rejected,
        0,
        "the video message has no video",
    ),
    code(
        New,
        400,
        "miss.param.audio",
        Rejected,
        0,
        "the voice message has no audio",
    ),
    code(
        New,
        400,
        "invalid.param.actionCardTobtnOrientation",
        Rejected,
        0,
        "the ActionCard's button orientation is not valid",
    ),
    code(
        New,
        400,
        "invalid.param.actionCardTocanForward",
        Rejected,
        0,
        "the ActionCard's forwarding flag is not valid",
    ),
    // §2.8 users (1:1)
    code(
        New,
        400,
        "invalidParameter.userIds.empty",
        Rejected,
        0,
        "no user ids were given",
    ),
    code(
        New,
        400,
        "invalidParameter.userIds.overMax",
        Rejected,
        0,
        "too many user ids were given",
    ),
    code(
        New,
        400,
        "invalidParameter.userId.empty",
        Rejected,
        0,
        "a user id (staffId) is empty",
    ),
    code(
        New,
        400,
        "staffId.notExisted",
        Rejected,
        0,
        "a user id (staffId) does not exist",
    ),
    code(
        New,
        400,
        "chatbotId.notAllow.sendOTO",
        Rejected,
        0,
        "this robot may not send 1:1 messages",
    ),
    code(
        New,
        400,
        "robot.oto.notExist",
        Rejected,
        0,
        "the robot has no 1:1 chat with this user",
    ),
    code(
        New,
        400,
        "illegal.receivers",
        Rejected,
        0,
        "the receivers are not valid",
    ),
    code(
        New,
        400,
        "receivers.exceed",
        Rejected,
        0,
        "too many receivers",
    ),
    code(
        New,
        400,
        "illegal.excludes",
        Rejected,
        0,
        "the excluded users are not valid",
    ),
    // §2.8 throttling: HTTP 400, not 429
    code(
        New,
        400,
        "send.too.fast",
        Throttled,
        2,
        "the robot sends too fast; wait and retry",
    ),
    code(
        New,
        400,
        "send.byToken.tooFast",
        Throttled,
        2,
        "this token sends too fast; wait and retry",
    ),
    code(
        New,
        400,
        "too.many.group",
        Throttled,
        2,
        "messages to too many groups at once; wait and retry",
    ),
    code(
        New,
        400,
        "too.many.people",
        Throttled,
        2,
        "messages to too many people at once; wait and retry",
    ),
    // §2.8 content safety
    code(
        New,
        400,
        "send.forbidden",
        Rejected,
        0,
        "the robot is forbidden to send",
    ),
    code(
        New,
        400,
        "ip.not.match",
        Rejected,
        0,
        "this server's IP address is not in the robot's allow-list",
    ),
    code(
        New,
        400,
        "keywords.not.match",
        Rejected,
        0,
        "the message contains none of the robot's keywords",
    ),
    code(
        New,
        400,
        "sign.not.match",
        Rejected,
        0,
        "the signature does not match; check the robot's signing secret",
    ),
    code(
        New,
        400,
        "contain.unsafe.url",
        Rejected,
        0,
        "the message contains a link DingTalk considers unsafe",
    ),
    code(
        New,
        400,
        "contain.notAllowed.text",
        Rejected,
        0,
        "the message contains text DingTalk does not allow",
    ),
    code(
        New,
        400,
        "contain.notAllowed.picture",
        Rejected,
        0,
        "the message contains a picture DingTalk does not allow",
    ),
    code(
        New,
        400,
        "contain.notAllowed.content",
        Rejected,
        0,
        "the message contains content DingTalk does not allow",
    ),
    code(
        New,
        400,
        "only.groupAdmin.canAtAll",
        Rejected,
        0,
        "only a group admin may @all",
    ),
    code(
        New,
        400,
        "bot.forbidden.sendMessage",
        Rejected,
        0,
        "the robot is forbidden to send messages",
    ),
    code(
        New,
        400,
        "session.notExisted",
        Rejected,
        0,
        "the session does not exist",
    ),
    code(
        New,
        400,
        "session.expired",
        Rejected,
        0,
        "the session has expired",
    ),
    // §2.5/§2.6/§2.8 query and recall
    code(
        New,
        400,
        "invalidParameter.processQueryKey.missing",
        Rejected,
        0,
        "the message key (processQueryKey) is missing",
    ),
    code(
        New,
        400,
        "invalid.processQueryKey",
        Rejected,
        0,
        "the message key (processQueryKey) is not valid",
    ),
    code(
        New,
        400,
        "unknown.send.result",
        Rejected,
        0,
        "the send result of this message is unknown",
    ),
    code(
        New,
        400,
        "invalidParameter.pageSize.invalid",
        Rejected,
        0,
        "the page size is not valid",
    ),
    code(
        New,
        400,
        "invalidParameter.cursor.invalid",
        Rejected,
        0,
        "the cursor is not valid",
    ),
    code(
        New,
        400,
        "processQueryKey.expireTime",
        Rejected,
        0,
        "the message key has expired (read status and recall work for 24 hours)",
    ),
    code(
        New,
        400,
        "robot.processQueryKey.expired",
        Rejected,
        0,
        "the message key has expired (read status and recall work for 24 hours)",
    ),
    code(
        New,
        400,
        "invalidParameter.processQueryKeys.overMax",
        Rejected,
        0,
        "too many message keys were given",
    ),
    code(
        New,
        400,
        "conversation.org.dismatch",
        Rejected,
        0,
        "the group belongs to another organisation than the app",
    ),
    code(
        New,
        400,
        "openConversationId.notExisted",
        Rejected,
        0,
        "the group chat id (openConversationId) does not exist",
    ),
    code(
        New,
        400,
        "not.allowed.robotCode",
        Rejected,
        0,
        "this robot may not act in this group",
    ),
    code(
        New,
        400,
        "notRevoke.all.messages",
        Rejected,
        0,
        "not every message could be recalled",
    ),
    // §2.8 server
    code(
        New,
        500,
        "system.error",
        Transient,
        0,
        "DingTalk had an internal error",
    ),
    code(
        New,
        500,
        "send.ding.exception",
        Transient,
        0,
        "DingTalk failed to send the message",
    ),
    code(
        New,
        500,
        "InternalError",
        Transient,
        0,
        "DingTalk had an internal error",
    ),
    // §3 media upload (old dialect)
    code(
        Old,
        200,
        "40004",
        Rejected,
        0,
        "the media type is not valid (image, voice, video or file)",
    ),
    code(
        Old,
        200,
        "40005",
        Rejected,
        0,
        "the file format is not allowed for this media type",
    ),
    code(
        Old,
        200,
        "40006",
        Rejected,
        0,
        "the file is too large for this media type",
    ),
    code(
        Old,
        200,
        "-1",
        Transient,
        0,
        "DingTalk is busy; retry later",
    ),
    // §4 webhook robots (old dialect)
    code(
        Old,
        200,
        "310000",
        Rejected,
        0,
        "the robot's security check failed: keywords, signature, timestamp or IP allow-list",
    ),
    code(
        Old,
        200,
        "300005",
        CredentialsRejected,
        0,
        "no webhook robot has this access token",
    ),
    code(
        Old,
        200,
        "300001",
        CredentialsRejected,
        0,
        "no webhook robot (or session) has this token",
    ),
    code(
        Old,
        200,
        "400101",
        CredentialsRejected,
        0,
        "no webhook robot has this access token",
    ),
    code(
        Old,
        200,
        "410100",
        Throttled,
        600,
        "the webhook robot sent more than 20 messages a minute and is throttled for 10 minutes",
    ),
    code(
        Old,
        200,
        "130101",
        Throttled,
        600,
        "the webhook robot sent more than 20 messages a minute and is throttled for 10 minutes",
    ),
    code(
        Old,
        200,
        "660026",
        Throttled,
        600,
        "the webhook robot sent too many messages a minute and is throttled for 10 minutes",
    ),
    code(
        Old,
        200,
        "400102",
        Rejected,
        0,
        "the webhook robot is disabled",
    ),
    code(
        Old,
        200,
        "400105",
        Rejected,
        0,
        "the message type is not supported",
    ),
    code(
        Old,
        200,
        "400106",
        Rejected,
        0,
        "the webhook robot does not exist",
    ),
    code(
        Old,
        200,
        "400013",
        Rejected,
        0,
        "the group has been disbanded",
    ),
    code(
        Old,
        200,
        "400402",
        Rejected,
        0,
        "a required field is missing or badly formatted",
    ),
    code(
        Old,
        200,
        "43004",
        Rejected,
        0,
        "the Content-Type header is not valid",
    ),
    code(
        Old,
        200,
        "430101",
        Rejected,
        0,
        "the message contains an unsafe link",
    ),
    code(
        Old,
        200,
        "430102",
        Rejected,
        0,
        "the message contains improper text",
    ),
    code(
        Old,
        200,
        "430103",
        Rejected,
        0,
        "the message contains an improper picture",
    ),
    code(
        Old,
        200,
        "430104",
        Rejected,
        0,
        "the message contains improper content",
    ),
    code(Old, 200, "460101", Rejected, 0, "the message is too long"),
    // §5 rate limits and quotas
    code(
        New,
        403,
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        Throttled,
        1,
        "the app called this API more than its QPS quota (20 a second by default); wait a second",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
        Throttled,
        60,
        "the app called this API more than its per-minute quota; wait a minute",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.QpsLimitForSuitekeyAndOrgAndApi",
        Throttled,
        1,
        "the app called this API too often for this organisation; wait a second",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.QpmLimitForSuitekeyAndOrgAndApi",
        Throttled,
        60,
        "the app called this API too often this minute for this organisation; wait a minute",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.QpsLimitForApi",
        Throttled,
        1,
        "this API is throttled for all callers; wait a second",
    ),
    code(
        New,
        403,
        "Forbidden.AccessDenied.ApiCountLimitForOrg",
        Rejected,
        0,
        "the organisation used up its monthly API quota",
    ),
    code(
        Old,
        200,
        "90018",
        Throttled,
        1,
        "the app called this API more than its QPS quota; wait a second",
    ),
    code(
        Old,
        200,
        "90002",
        Throttled,
        1,
        "this API is throttled for all callers; wait a second",
    ),
    code(
        Old,
        200,
        "90001",
        Throttled,
        1,
        "all APIs are throttled for this server; wait a second",
    ),
    code(
        Old,
        200,
        "90003",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90004",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90005",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90006",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90007",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90008",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90017",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "45009",
        Throttled,
        1,
        "the API call frequency is over the limit; wait",
    ),
    code(
        Old,
        200,
        "90020",
        Rejected,
        0,
        "the organisation used up its monthly API quota",
    ),
    code(
        Old,
        200,
        "15",
        Transient,
        0,
        "DingTalk timed out reaching its backend",
    ),
    code(
        Old,
        200,
        "88",
        Transient,
        0,
        "DingTalk reported an error (see sub_code)",
    ),
    // Gateway statuses with or without a code
    code(
        New,
        502,
        "BadGateway",
        Transient,
        0,
        "DingTalk's gateway failed (502)",
    ),
    code(
        New,
        503,
        "ServiceUnavailable",
        Transient,
        0,
        "DingTalk is unavailable (503)",
    ),
    code(
        New,
        504,
        "GatewayTimeout",
        Transient,
        0,
        "DingTalk's backend took too long (504)",
    ),
    // §7.1 stream gateway
    code(
        New,
        401,
        "authFailed",
        CredentialsRejected,
        0,
        "the Stream connection's Client ID or Client Secret is wrong",
    ),
    code(
        New,
        400,
        "systemError",
        Transient,
        0,
        "DingTalk's Stream gateway had an internal error",
    ),
];

static BY_CODE: LazyLock<HashMap<&'static str, &'static Code>> =
    LazyLock::new(|| CODES.iter().map(|c| (c.code, c)).collect());

/// The table's entry for `code`, if DingTalk documents it.
pub fn lookup(code: &str) -> Option<&'static Code> {
    BY_CODE.get(code).copied()
}

/// Decide what an error answer means. `code` is the new API's `code` or the old API's `errcode`
/// (or `sub_code` under errcode 88). Known codes come from [`CODES`], then the families; an
/// unknown code is transient on the new API's 5xx and a rejection otherwise; no code at all is
/// transient on 5xx and 429.
pub fn classify(dialect: Dialect, http_status: u16, code: Option<&str>) -> ErrorClass {
    match code {
        None if http_status >= 500 || http_status == 429 => Transient,
        None => Rejected,
        Some(c) => match lookup(c) {
            Some(known) => known.class,
            None => match family(c) {
                Some((class, _)) => class,
                None if dialect == New && http_status >= 500 => Transient,
                None => Rejected,
            },
        },
    }
}

/// DingTalk's advice on waiting before retrying `code`, if it gives any.
pub fn retry_after(code: &str) -> Option<Duration> {
    match lookup(code) {
        Some(known) => known.retry_after(),
        None => family(code).and_then(|(_, secs)| (secs > 0).then(|| Duration::from_secs(secs))),
    }
}

fn family(code: &str) -> Option<(ErrorClass, u64)> {
    FAMILIES
        .iter()
        .find(|(prefix, ..)| code.starts_with(prefix))
        .map(|&(_, class, secs, _)| (class, secs))
}

/// What `code` means, in English, when DingTalk documents it (alone or as a family).
pub fn meaning(code: &str) -> Option<&'static str> {
    lookup(code).map(|c| c.meaning).or_else(|| {
        FAMILIES
            .iter()
            .find(|(prefix, ..)| code.starts_with(prefix))
            .map(|&(.., meaning)| meaning)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_explained_in_english() {
        for c in CODES {
            assert!(
                c.meaning.len() > 10 && c.meaning.is_ascii(),
                "{}: {:?}",
                c.code,
                c.meaning
            );
        }
        assert!(meaning("Forbidden.AccessDenied.QpsLimitForSomethingNew").is_some());
        // The two DingTalk explains only in Chinese.
        let e = crate::Error::from_response(
            "robot.group_send",
            New,
            400,
            r#"{"code":"invalidParameter.robotCode.empty","message":"错误描述: robotCode为空","requestid":"r"}"#,
            None,
        );
        assert!(
            e.to_string().contains("the robot is not in this group"),
            "{e}"
        );
        assert_eq!(meaning("noSuchCode"), None);
    }

    fn answer(dialect: Dialect, code: &str) -> String {
        match dialect {
            New => format!(r#"{{"code":"{code}","message":"m","requestid":"r"}}"#),
            Old => match code.parse::<i64>() {
                Ok(n) => format!(r#"{{"errcode":{n},"errmsg":"m"}}"#),
                Err(_) => format!(r#"{{"errcode":"{code}","errmsg":"m"}}"#),
            },
        }
    }

    /// Each code, decoded from a real answer in its own dialect, gets its class and wait.
    #[test]
    fn every_documented_code_decodes_to_its_class_and_wait() {
        let mut wrong = Vec::new();
        for c in CODES {
            let body = answer(c.dialect, c.code);
            let e = crate::Error::from_response("test", c.dialect, c.http_status, &body, None);
            let want_wait = match c.class {
                Throttled | Transient => c.retry_after(),
                _ => None,
            };
            if e.class() != c.class || e.code() != Some(c.code) || e.retry_after() != want_wait {
                wrong.push(format!(
                    "{} (HTTP {}): got {:?} {:?}, wait {:?}",
                    c.code,
                    c.http_status,
                    e.class(),
                    e.code(),
                    e.retry_after()
                ));
            }
        }
        assert!(wrong.is_empty(), "misdecoded:\n{}", wrong.join("\n"));
    }

    #[test]
    fn each_code_is_listed_once() {
        assert_eq!(BY_CODE.len(), CODES.len(), "a code is listed twice");
        assert!(CODES.len() > 150, "the table lists every documented code");
    }

    #[test]
    fn only_retryable_codes_ask_for_a_wait() {
        for c in CODES {
            if c.retry_after_secs > 0 {
                assert!(matches!(c.class, Throttled | Transient), "{}", c.code);
            }
        }
    }

    #[test]
    fn families_and_unknown_codes() {
        let qps = "Forbidden.AccessDenied.QpsLimitForSomethingNew";
        assert_eq!(classify(New, 403, Some(qps)), Throttled);
        assert_eq!(retry_after(qps), Some(Duration::from_secs(1)));
        assert_eq!(
            retry_after("Forbidden.AccessDenied.QpmLimitForSomethingNew"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(classify(New, 500, Some("SomeFutureServerCode")), Transient);
        assert_eq!(classify(New, 400, Some("some.future.code")), Rejected);
        assert_eq!(classify(Old, 200, Some("999999")), Rejected);
        assert_eq!(classify(New, 502, None), Transient);
        assert_eq!(classify(New, 429, None), Transient);
        assert_eq!(classify(New, 404, None), Rejected);
        // The webhook lock-out lasts 10 minutes: retrying sooner only extends it.
        assert_eq!(retry_after("660026"), Some(Duration::from_secs(600)));
    }
}
