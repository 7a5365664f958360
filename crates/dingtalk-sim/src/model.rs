//! The JSON shapes of the admin routes (`/_sim/…`), shared by the HTTP routes and [`crate::SimHandle`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One message the simulator accepted, as listed by `GET /_sim/messages`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// Sequence number, unique per simulator (and its journal, when it keeps one).
    pub id: u64,
    /// RFC 3339 time on the simulator clock.
    pub received_at: String,
    /// `robot.group_send`, `robot.oto_send` or `webhook`.
    pub api: String,
    pub robot_code: Option<String>,
    /// Group the message went to (absent for 1:1 messages).
    pub open_conversation_id: Option<String>,
    pub msg_key: Option<String>,
    /// `msgParam` parsed from its JSON string.
    pub msg_param: Option<serde_json::Value>,
    pub process_query_key: Option<String>,
    /// 1:1 recipients that exist (`robot.oto_send`).
    pub user_ids: Option<Vec<String>>,
    /// Webhook: `msgtype` and the object named after it.
    pub msgtype: Option<String>,
    pub payload: Option<serde_json::Value>,
    /// Webhook: the `at` object as sent.
    pub at: Option<serde_json::Value>,
    /// Webhook: the robot's access token (identifies which robot sent it).
    pub webhook_token: Option<String>,
    /// Set by a recall; recalled messages vanish from the chat page.
    #[serde(default)]
    pub recalled: bool,
}

/// Counters served by `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Token requests on either token API (successful or not).
    pub token_requests: u64,
    /// Messages accepted (stored), on every send API, webhook duplicates by `msgUuid` excluded.
    pub accepted: u64,
    /// Rejected requests by DingTalk code (`code` for new APIs, `errcode` as text for old ones),
    /// including throttled and fault-injected ones.
    pub rejected: BTreeMap<String, u64>,
    /// Requests refused by a rate limit (app QPS or webhook per-minute), faults excluded.
    pub throttled: u64,
    /// Requests answered with a scripted fault (delay faults excluded: they proceed normally).
    #[serde(default)]
    pub faulted: u64,
    /// Highest number of requests in any 1-second window, keyed `"<app_key> <route>"`.
    /// Counts every request that authenticated as that app on that API, throttled ones
    /// included, so it measures how fast the client sent rather than what got through.
    pub peak_qps: BTreeMap<String, u64>,
    /// Highest number of sends in any 60-second window per webhook robot (keyed by access
    /// token), counting every send that passed the token and signature checks.
    #[serde(default)]
    pub webhook_peak_per_minute: BTreeMap<String, u64>,
}

/// API names used for faults and rate statistics (`family.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RouteName {
    #[serde(rename = "auth.token")]
    AuthToken,
    #[serde(rename = "robot.group_send")]
    GroupSend,
    #[serde(rename = "robot.group_query")]
    GroupQuery,
    #[serde(rename = "robot.group_recall")]
    GroupRecall,
    #[serde(rename = "robot.oto_send")]
    OtoSend,
    #[serde(rename = "robot.oto_query")]
    OtoQuery,
    #[serde(rename = "robot.oto_recall")]
    OtoRecall,
    #[serde(rename = "media.upload")]
    MediaUpload,
    #[serde(rename = "webhook.send")]
    WebhookSend,
}

impl RouteName {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteName::AuthToken => "auth.token",
            RouteName::GroupSend => "robot.group_send",
            RouteName::GroupQuery => "robot.group_query",
            RouteName::GroupRecall => "robot.group_recall",
            RouteName::OtoSend => "robot.oto_send",
            RouteName::OtoQuery => "robot.oto_query",
            RouteName::OtoRecall => "robot.oto_recall",
            RouteName::MediaUpload => "media.upload",
            RouteName::WebhookSend => "webhook.send",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The API's own throttling answer (new API 403, media 90018, webhook 660026 without lock-out).
    QpsLimit,
    /// New API 500 `system.error`; old API errcode -1.
    ServerError,
    /// The API's answer to a rejected token.
    TokenInvalid,
    /// Wait `delay_ms`, then handle the request normally.
    Delay,
    /// Close the TCP connection without answering.
    Drop,
}

/// A scripted fault, as posted to `POST /_sim/faults`.
///
/// With `probability`, every matching request gets the fault with that probability until the
/// faults are cleared; otherwise the next `count` matching requests get it (`count` defaults to 1).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub route: RouteName,
    pub kind: FaultKind,
    pub count: Option<u32>,
    pub probability: Option<f64>,
    pub delay_ms: Option<u64>,
}

impl FaultSpec {
    /// The next `count` requests to `route` wait `ms` before they are answered as usual.
    pub fn delay_next(route: RouteName, count: u32, ms: u64) -> Self {
        FaultSpec {
            route,
            kind: FaultKind::Delay,
            count: Some(count),
            probability: None,
            delay_ms: Some(ms),
        }
    }

    /// Every request to `route` waits `ms` before it is answered as usual, until the faults are
    /// cleared.
    pub fn delay_all(route: RouteName, ms: u64) -> Self {
        FaultSpec {
            route,
            kind: FaultKind::Delay,
            count: None,
            probability: Some(1.0),
            delay_ms: Some(ms),
        }
    }
}
