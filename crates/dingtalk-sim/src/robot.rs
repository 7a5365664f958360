//! Enterprise-internal app robot APIs on api.dingtalk.com (docs/dingtalk-api.md §2): group send,
//! read status and recall, and 1:1 batch send, read status and recall.
// Helpers return a finished `Response` as their error so handlers can return it as is;
// boxing it would only add noise.
#![allow(clippy::result_large_err)]

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::auth::query_map;
use crate::fixture::AppFixture;
use crate::model::{ReceivedMessage, RouteName};
use crate::msgparam;
use crate::reply::{
    QPS_CODE, QPS_MESSAGE, bad_request, fault_answer, new_api_fault, new_err, new_ok,
};
use crate::server::ConnControl;
use crate::state::{QUERY_KEY_LIFETIME_MS, SendRecord, SendTarget, Sim, process_query_key};

const TOKEN_HEADER: &str = "x-acs-dingtalk-access-token";
/// UNCONFIRMED: which code DingTalk returns when the group exists but the robot is not in it
/// (docs/dingtalk-api.md §2.8 lists `robotCode.empty`, `resource.not.found`, `resource.unavailable`).
/// The documented description of `invalidParameter.robotCode.empty` says "check the robot is
/// in the group", so that is the one used.
pub(crate) const ROBOT_NOT_IN_GROUP_CODE: &str = "invalidParameter.robotCode.empty";
/// Group read-status page size limit.
const MAX_RESULTS_LIMIT: u64 = 200;
/// Most keys per recall call and most users per 1:1 batch send (the docs also say 100 for
/// users; 20 is the stricter documented value).
const MAX_KEYS_PER_CALL: usize = 20;
const MAX_USERS_PER_CALL: usize = 20;

/// The part every new robot API shares: faults, the token header, the app's QPS, a JSON body.
async fn admit(
    sim: &Sim,
    conn: &ConnControl,
    headers: &HeaderMap,
    route: RouteName,
) -> Result<String, Response> {
    if let Some(answer) = fault_answer(sim, conn, route).await {
        return Err(new_api_fault(sim, answer));
    }
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(bad_request(sim, "AuthenticationFailed.MissingParameter"));
    };
    let Some(app_key) = sim.token_app(token) else {
        return Err(bad_request(sim, "InvalidAuthentication"));
    };
    if !sim.admit_app_request(&app_key, route) {
        return Err(new_err(sim, StatusCode::FORBIDDEN, QPS_CODE, QPS_MESSAGE));
    }
    Ok(app_key)
}

fn json_body(sim: &Sim, body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_request(sim, "invalidParameter.msgBody.invalid")),
    }
}

fn non_empty_str<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Resolves `robotCode` and checks it belongs to the token's app.
fn robot_of<'a>(
    sim: &'a Sim,
    app_key: &str,
    robot_code: Option<&str>,
) -> Result<&'a AppFixture, Response> {
    let Some(code) = robot_code else {
        return Err(bad_request(sim, "invalidParameter.robotCode.missing"));
    };
    let Some(app) = sim.app_by_robot(code) else {
        return Err(bad_request(sim, "invalidParameter.robotCode.notExsit"));
    };
    if app.app_key != app_key {
        return Err(bad_request(sim, "invalidParameter.robotCode.auth"));
    }
    Ok(app)
}

/// `processQueryKeys`: a list of strings, at most 20.
fn query_keys(sim: &Sim, body: &Map<String, Value>) -> Result<Vec<String>, Response> {
    let keys: Vec<String> = match body.get("processQueryKeys") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return Err(bad_request(sim, "invalidParameter.processQueryKey.missing")),
    };
    if keys.is_empty() {
        return Err(bad_request(sim, "invalidParameter.processQueryKey.missing"));
    }
    if keys.len() > MAX_KEYS_PER_CALL {
        return Err(bad_request(
            sim,
            "invalidParameter.processQueryKeys.overMax",
        ));
    }
    Ok(keys)
}

pub(crate) async fn group_send(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app_key = match admit(&sim, &conn, &headers, RouteName::GroupSend).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match json_body(&sim, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let app = match robot_of(&sim, &app_key, non_empty_str(&body, "robotCode")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(ocid) = non_empty_str(&body, "openConversationId") else {
        return bad_request(&sim, "miss.openConversationId");
    };
    if !sim.group_exists(ocid) {
        return bad_request(&sim, "invalid.openConversationId");
    }
    if !app.groups.iter().any(|g| g.open_conversation_id == ocid) {
        return bad_request(&sim, ROBOT_NOT_IN_GROUP_CODE);
    }
    let (msg_key, param) = match msgparam::validate(body.get("msgKey"), body.get("msgParam")) {
        Ok(v) => v,
        Err(code) => return bad_request(&sim, code),
    };
    let key = process_query_key();
    let now = sim.now_ms();
    let message = ReceivedMessage {
        id: 0,
        received_at: sim.now_rfc3339(),
        api: RouteName::GroupSend.as_str().into(),
        robot_code: Some(app.robot_code.clone()),
        open_conversation_id: Some(ocid.to_string()),
        msg_key: Some(msg_key),
        msg_param: Some(Value::Object(param)),
        process_query_key: Some(key.clone()),
        user_ids: None,
        msgtype: None,
        payload: None,
        at: None,
        webhook_token: None,
        recalled: false,
    };
    let mut inner = sim.lock();
    let message_id = inner.push_message(message);
    inner.sends.insert(
        key.clone(),
        SendRecord {
            robot_code: app.robot_code.clone(),
            sent_at_ms: now,
            message_id,
            target: SendTarget::Group(ocid.to_string()),
            recalled: false,
        },
    );
    drop(inner);
    new_ok(json!({"processQueryKey": key}))
}

pub(crate) async fn group_query(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app_key = match admit(&sim, &conn, &headers, RouteName::GroupQuery).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match json_body(&sim, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let app = match robot_of(&sim, &app_key, non_empty_str(&body, "robotCode")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(key) = non_empty_str(&body, "processQueryKey") else {
        return bad_request(&sim, "invalidParameter.processQueryKey.missing");
    };
    let max_results = match body.get("maxResults") {
        None | Some(Value::Null) => MAX_RESULTS_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_RESULTS_LIMIT).contains(&n) => n,
            _ => return bad_request(&sim, "invalidParameter.pageSize.invalid"),
        },
    } as usize;
    let offset = match non_empty_str(&body, "nextToken") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n <= app.users.len() => n,
            _ => return bad_request(&sim, "invalidParameter.cursor.invalid"),
        },
    };
    let ocid = non_empty_str(&body, "openConversationId");
    let now = sim.now_ms();
    // Copy what is needed out of the lock: answering an error locks again for the stats.
    let found = match sim.lock().sends.get(key) {
        Some(SendRecord {
            robot_code,
            sent_at_ms,
            target: SendTarget::Group(group),
            recalled,
            ..
        }) if *robot_code == app.robot_code && ocid.is_none_or(|o| o == group) => {
            Some((*sent_at_ms, *recalled))
        }
        _ => None,
    };
    let Some((sent_at, recalled)) = found else {
        return bad_request(&sim, "invalid.processQueryKey");
    };
    if now - sent_at > QUERY_KEY_LIFETIME_MS {
        return bad_request(&sim, "processQueryKey.expireTime");
    }
    // The app's users stand for the group's members, and every member has read the message.
    let readers: Vec<&str> = app.users.iter().map(|u| u.user_id.as_str()).collect();
    let end = (offset + max_results).min(readers.len());
    let has_more = end < readers.len();
    new_ok(json!({
        "sendStatus": if recalled { "RECALLED" } else { "SUCCESS" },
        "readUserIds": &readers[offset..end],
        "nextToken": if has_more { end.to_string() } else { String::new() },
        "hasMore": has_more,
    }))
}

pub(crate) async fn group_recall(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app_key = match admit(&sim, &conn, &headers, RouteName::GroupRecall).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match json_body(&sim, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let app = match robot_of(&sim, &app_key, non_empty_str(&body, "robotCode")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(ocid) = non_empty_str(&body, "openConversationId") else {
        return bad_request(&sim, "miss.openConversationId");
    };
    let keys = match query_keys(&sim, &body) {
        Ok(k) => k,
        Err(r) => return r,
    };
    recall(&sim, &app.robot_code, Some(ocid), &keys)
}

/// Shared recall: every key must be within 24 h; unknown keys are reported per key.
fn recall(sim: &Sim, robot_code: &str, ocid: Option<&str>, keys: &[String]) -> Response {
    let now = sim.now_ms();
    let mut inner = sim.lock();
    let expired = keys.iter().any(|k| {
        inner
            .sends
            .get(k)
            .is_some_and(|r| now - r.sent_at_ms > QUERY_KEY_LIFETIME_MS)
    });
    if expired {
        drop(inner);
        // UNCONFIRMED: whether one expired key fails the whole call or only itself; the docs
        // list the code as a call error, so the whole call fails.
        return bad_request(sim, "robot.processQueryKey.expired");
    }
    let mut success = Vec::new();
    let mut failed = Map::new();
    let mut to_mark = Vec::new();
    for key in keys {
        let record = inner.sends.get_mut(key).filter(|r| {
            r.robot_code == robot_code
                && match (&r.target, ocid) {
                    (SendTarget::Group(g), Some(o)) => g == o,
                    (SendTarget::Users(_), None) => true,
                    _ => false,
                }
        });
        match record {
            Some(r) => {
                r.recalled = true;
                to_mark.push(r.message_id);
                success.push(Value::String(key.clone()));
            }
            None => {
                failed.insert(key.clone(), json!("invalid.processQueryKey"));
            }
        }
    }
    for id in to_mark {
        inner.mark_recalled(id);
    }
    drop(inner);
    new_ok(json!({"successResult": success, "failedResult": failed}))
}

pub(crate) async fn oto_send(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app_key = match admit(&sim, &conn, &headers, RouteName::OtoSend).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match json_body(&sim, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let app = match robot_of(&sim, &app_key, non_empty_str(&body, "robotCode")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let user_ids: Vec<String> = match body.get("userIds") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if user_ids.is_empty() {
        return bad_request(&sim, "invalidParameter.userIds.empty");
    }
    if user_ids.len() > MAX_USERS_PER_CALL {
        return bad_request(&sim, "invalidParameter.userIds.overMax");
    }
    let (msg_key, param) = match msgparam::validate(body.get("msgKey"), body.get("msgParam")) {
        Ok(v) => v,
        Err(code) => return bad_request(&sim, code),
    };
    let (valid, invalid): (Vec<String>, Vec<String>) = user_ids
        .into_iter()
        .partition(|u| app.users.iter().any(|f| &f.user_id == u));
    let key = process_query_key();
    let now = sim.now_ms();
    let mut inner = sim.lock();
    // Nothing is delivered when no recipient exists, but the call still succeeds.
    let message_id = if valid.is_empty() {
        0
    } else {
        inner.push_message(ReceivedMessage {
            id: 0,
            received_at: sim.now_rfc3339(),
            api: RouteName::OtoSend.as_str().into(),
            robot_code: Some(app.robot_code.clone()),
            open_conversation_id: None,
            msg_key: Some(msg_key),
            msg_param: Some(Value::Object(param)),
            process_query_key: Some(key.clone()),
            user_ids: Some(valid.clone()),
            msgtype: None,
            payload: None,
            at: None,
            webhook_token: None,
            recalled: false,
        })
    };
    inner.sends.insert(
        key.clone(),
        SendRecord {
            robot_code: app.robot_code.clone(),
            sent_at_ms: now,
            message_id,
            target: SendTarget::Users(valid),
            recalled: false,
        },
    );
    drop(inner);
    new_ok(json!({
        "processQueryKey": key,
        "invalidStaffIdList": invalid,
        "flowControlledStaffIdList": [],
    }))
}

pub(crate) async fn oto_read_status(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let app_key = match admit(&sim, &conn, &headers, RouteName::OtoQuery).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let params = query_map(query.as_deref());
    let app = match robot_of(&sim, &app_key, params.get("robotCode").map(String::as_str)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(key) = params.get("processQueryKey") else {
        return bad_request(&sim, "invalidParameter.processQueryKey.missing");
    };
    let now = sim.now_ms();
    let found = match sim.lock().sends.get(key) {
        Some(SendRecord {
            robot_code,
            sent_at_ms,
            target: SendTarget::Users(users),
            recalled,
            ..
        }) if *robot_code == app.robot_code => Some((*sent_at_ms, *recalled, users.clone())),
        _ => None,
    };
    let Some((sent_at, recalled, users)) = found else {
        return bad_request(&sim, "invalid.processQueryKey");
    };
    if now - sent_at > QUERY_KEY_LIFETIME_MS {
        return bad_request(&sim, "processQueryKey.expireTime");
    }
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            let name = app
                .users
                .iter()
                .find(|f| &f.user_id == u)
                .map(|f| f.name.as_str())
                .unwrap_or_default();
            json!({"name": name, "userId": u, "readStatus": "UNREAD"})
        })
        .collect();
    new_ok(json!({
        "sendStatus": if recalled { "RECALLED" } else { "SUCCESS" },
        "messageReadInfoList": list,
    }))
}

pub(crate) async fn oto_recall(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app_key = match admit(&sim, &conn, &headers, RouteName::OtoRecall).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match json_body(&sim, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let app = match robot_of(&sim, &app_key, non_empty_str(&body, "robotCode")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let keys = match query_keys(&sim, &body) {
        Ok(k) => k,
        Err(r) => return r,
    };
    recall(&sim, &app.robot_code, None, &keys)
}
