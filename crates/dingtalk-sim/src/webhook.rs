//! Custom (webhook) group robots: `POST /robot/send?access_token=…` (docs/dingtalk-api.md §4).
//! Always HTTP 200 with `{"errcode","errmsg"}`. The signature check is implemented here from
//! the documentation, independently of the client crate.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::auth::query_map;
use crate::fixture::WebhookRobotFixture;
use crate::model::{ReceivedMessage, RouteName};
use crate::reply::{
    FaultAnswer, SERVER_BUSY_ERRCODE, SERVER_BUSY_ERRMSG, fault_answer, old_err, old_ok,
};
use crate::server::ConnControl;
use crate::state::{Sim, minute_ago, trim};

/// Allowed clock skew of the signed `timestamp` (±1 hour).
const TIMESTAMP_SKEW_MS: i64 = 3600 * 1000;
/// UNCONFIRMED: body size limit answer; DingTalk documents the 20000-byte limit but not the code.
const TOO_LONG_ERRCODE: i64 = 460101;
const TOO_LONG_ERRMSG: &str = "message too long, exceed 20000 bytes";
const MAX_BODY_BYTES: usize = 20000;
/// UNCONFIRMED: the rate-limit answer; 660026 is the most recent live observation (2026),
/// 410100 (documented) and 130101 (older traffic) have also been seen.
pub(crate) const RATE_ERRCODE: i64 = 660026;
pub(crate) const RATE_ERRMSG: &str = "sending too many messages per minute";
const UNKNOWN_TOKEN_ERRCODE: i64 = 300005;
const UNKNOWN_TOKEN_ERRMSG: &str = "token is not exist";
const SECURITY_ERRCODE: i64 = 310000;

pub(crate) async fn send(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(answer) = fault_answer(&sim, &conn, RouteName::WebhookSend).await {
        return match answer {
            FaultAnswer::QpsLimit => old_err(&sim, RATE_ERRCODE, RATE_ERRMSG),
            FaultAnswer::ServerError => old_err(&sim, SERVER_BUSY_ERRCODE, SERVER_BUSY_ERRMSG),
            FaultAnswer::TokenInvalid => old_err(&sim, UNKNOWN_TOKEN_ERRCODE, UNKNOWN_TOKEN_ERRMSG),
        };
    }
    let params = query_map(query.as_deref());
    let robot = params.get("access_token").and_then(|t| {
        sim.fixture
            .webhook_robots
            .iter()
            .find(|w| &w.access_token == t)
    });
    let Some(robot) = robot else {
        return old_err(&sim, UNKNOWN_TOKEN_ERRCODE, UNKNOWN_TOKEN_ERRMSG);
    };
    if let Some(secret) = &robot.secret
        && let Err(msg) = check_signature(
            secret,
            params.get("timestamp").map(String::as_str),
            params.get("sign").map(String::as_str),
            sim.now_ms(),
        )
    {
        return old_err(&sim, SECURITY_ERRCODE, msg);
    }
    let now = sim.now_ms();
    {
        let mut inner = sim.lock();
        let state = inner
            .webhooks
            .entry(robot.access_token.clone())
            .or_default();
        trim(&mut state.all, minute_ago(now));
        state.all.push_back(now);
        let seen = state.all.len() as u64;
        let peak = inner
            .stats
            .webhook_peak_per_minute
            .entry(robot.access_token.clone())
            .or_insert(0);
        *peak = (*peak).max(seen);
    }
    if body.len() > MAX_BODY_BYTES {
        return old_err(&sim, TOO_LONG_ERRCODE, TOO_LONG_ERRMSG);
    }
    let msg = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) if m.get("msgtype").and_then(Value::as_str).is_some() => m,
        _ => return old_err(&sim, 40035, "缺少参数 json"),
    };
    let msg_uuid = msg
        .get("msgUuid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    // A retried send with a known msgUuid is acknowledged without a second message.
    if let Some(uuid) = msg_uuid {
        let inner = sim.lock();
        if inner
            .webhooks
            .get(&robot.access_token)
            .is_some_and(|s| s.seen_uuids.contains(uuid))
        {
            return old_ok(Value::Null);
        }
    }
    if !within_rate(&sim, robot, now) {
        return old_err(&sim, RATE_ERRCODE, RATE_ERRMSG);
    }
    let msgtype = msg
        .get("msgtype")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let payload = match validate_payload(&msgtype, &msg) {
        Ok(p) => p,
        Err((code, text)) => return old_err(&sim, code, &text),
    };
    if !robot.keywords.is_empty() {
        let text = searchable_text(&msgtype, &payload);
        if !robot.keywords.iter().any(|k| text.contains(k.as_str())) {
            return old_err(&sim, SECURITY_ERRCODE, "keywords not in content");
        }
    }
    let message = ReceivedMessage {
        id: 0,
        received_at: sim.now_rfc3339(),
        api: "webhook".into(),
        robot_code: None,
        open_conversation_id: Some(robot.open_conversation_id.clone()),
        msg_key: None,
        msg_param: None,
        process_query_key: None,
        user_ids: None,
        msgtype: Some(msgtype),
        payload: Some(payload),
        at: msg.get("at").cloned(),
        webhook_token: Some(robot.access_token.clone()),
        recalled: false,
    };
    let mut inner = sim.lock();
    inner.push_message(message);
    let state = inner
        .webhooks
        .entry(robot.access_token.clone())
        .or_default();
    state.accepted.push_back(now);
    if let Some(uuid) = msg_uuid {
        state.seen_uuids.insert(uuid.to_string());
    }
    drop(inner);
    old_ok(Value::Null)
}

/// DingTalk's signing recipe: `base64(HMAC-SHA256(key = secret, msg = "{timestamp}\n{secret}"))`,
/// with `timestamp` in milliseconds within ±1 h of now. `sign` arrives already URL-decoded.
pub(crate) fn check_signature(
    secret: &str,
    timestamp: Option<&str>,
    sign: Option<&str>,
    now_ms: i64,
) -> Result<(), &'static str> {
    let ts = timestamp
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| (now_ms - t).abs() <= TIMESTAMP_SKEW_MS)
        .ok_or("invalid timestamp")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| "sign not match")?;
    mac.update(format!("{ts}\n{secret}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if sign == Some(expected.as_str()) {
        Ok(())
    } else {
        Err("sign not match")
    }
}

/// Per-minute quota: more than `webhook_per_minute` accepted messages in a sliding minute
/// throttles the robot for `webhook_lockout_secs`, during which every send is refused.
fn within_rate(sim: &Sim, robot: &WebhookRobotFixture, now: i64) -> bool {
    let mut inner = sim.lock();
    let limits = inner.limits.clone();
    let state = inner
        .webhooks
        .entry(robot.access_token.clone())
        .or_default();
    let refused = if state.locked_until_ms.is_some_and(|until| now < until) {
        true
    } else {
        state.locked_until_ms = None;
        trim(&mut state.accepted, minute_ago(now));
        let over = limits.webhook_per_minute > 0
            && state.accepted.len() >= limits.webhook_per_minute as usize;
        if over && limits.webhook_lockout_secs > 0 {
            state.locked_until_ms = Some(now + limits.webhook_lockout_secs as i64 * 1000);
        }
        over
    };
    if refused {
        inner.stats.throttled += 1;
    }
    !refused
}

/// Checks the object named after `msgtype` has its required fields; returns it.
pub(crate) fn validate_payload(
    msgtype: &str,
    msg: &Map<String, Value>,
) -> Result<Value, (i64, String)> {
    let required: &[&str] = match msgtype {
        "text" => &["content"],
        "markdown" => &["title", "text"],
        "link" => &["title", "text", "messageUrl"],
        "actionCard" => &["title", "text"],
        "feedCard" => &[],
        _ => return Err((400105, "不支持的消息类型".into())),
    };
    let Some(Value::Object(payload)) = msg.get(msgtype) else {
        return Err(missing(msgtype, None));
    };
    for field in required {
        if !is_given(payload.get(*field)) {
            return Err(missing(msgtype, Some(field)));
        }
    }
    match msgtype {
        "actionCard" => {
            // One button (singleTitle + singleURL) wins; otherwise a non-empty btns list.
            if is_given(payload.get("singleTitle")) || is_given(payload.get("singleURL")) {
                for field in ["singleTitle", "singleURL"] {
                    if !is_given(payload.get(field)) {
                        return Err(missing(msgtype, Some(field)));
                    }
                }
            } else {
                check_list(msgtype, payload, "btns", &["title", "actionURL"])?;
            }
        }
        "feedCard" => check_list(msgtype, payload, "links", &["title", "messageURL"])?,
        _ => {}
    }
    Ok(Value::Object(payload.clone()))
}

fn check_list(
    msgtype: &str,
    payload: &Map<String, Value>,
    list: &str,
    fields: &[&str],
) -> Result<(), (i64, String)> {
    let items = match payload.get(list) {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(missing(msgtype, Some(list))),
    };
    for item in items {
        for field in fields {
            if !is_given(item.get(*field)) {
                return Err(missing(msgtype, Some(&format!("{list} --》 {field}"))));
            }
        }
    }
    Ok(())
}

fn is_given(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// errcode 400402, worded like live DingTalk traffic (docs/dingtalk-api.md §4).
fn missing(msgtype: &str, field: Option<&str>) -> (i64, String) {
    let what = match field {
        Some(f) => format!("{msgtype} --》 {f}"),
        None => msgtype.to_string(),
    };
    (
        400402,
        format!("错误描述:参数 {what} 缺失，或者参数格式不正确; 解决方案:请填充上对应参数;"),
    )
}

/// The text a keyword must appear in.
fn searchable_text(msgtype: &str, payload: &Value) -> String {
    let field = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default();
    match msgtype {
        "text" => field("content").to_string(),
        "markdown" | "link" | "actionCard" => format!("{}\n{}", field("title"), field("text")),
        "feedCard" => payload
            .get("links")
            .and_then(Value::as_array)
            .map(|links| {
                links
                    .iter()
                    .filter_map(|l| l.get("title").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{ts}\n{secret}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signature_window_is_one_hour_each_way() {
        let now = 1_700_000_000_000;
        let s = "SECabc";
        let ok = |ts: i64| check_signature(s, Some(&ts.to_string()), Some(&sign(s, ts)), now);
        assert_eq!(ok(now), Ok(()));
        assert_eq!(ok(now - TIMESTAMP_SKEW_MS), Ok(()));
        assert_eq!(ok(now + TIMESTAMP_SKEW_MS + 1), Err("invalid timestamp"));
        assert_eq!(
            check_signature(s, Some(&now.to_string()), Some("AAAA"), now),
            Err("sign not match")
        );
        assert_eq!(
            check_signature(s, None, None, now),
            Err("invalid timestamp")
        );
    }
}
