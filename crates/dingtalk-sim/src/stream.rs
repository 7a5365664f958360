//! Stream mode (docs/dingtalk-stream.md): the gateway through which an app receives its robot's
//! messages over a WebSocket, the session webhook its replies go to, and a person's side of the
//! chat (`POST /_sim/conversations/{id}/messages`, and the chat page's input box).
//!
//! - `POST /v1.0/gateway/connections/open` checks clientId/clientSecret and answers a single-use
//!   ticket valid 90 s and the endpoint `ws://<this host>/connect` (§1).
//! - On the socket: TEXT frames only, `{specVersion, type, headers, data}` with every header a
//!   string and `data` a JSON-encoded string (§2.1); SYSTEM `ping` with an `opaque` the client
//!   echoes, `disconnect` before the server closes (§2.2); CALLBACK frames for
//!   `/v1.0/im/bot/messages/get` with the full robot message (§3).
//! - Acknowledgements are matched by `messageId`, from any connection of the app (§2.3); an
//!   unacknowledged message is sent again, with the same `messageId`, after
//!   `Limits::stream_redeliver_secs` on the simulator's clock (§2.4; DingTalk's figure is
//!   unconfirmed). Each message goes to one of the app's connections that subscribed, at random.
//! - A message a person writes reaches every app whose robot is in the group when the robot is
//!   @-mentioned (a 1:1 conversation always); its `sessionWebhook` takes text, markdown, link,
//!   actionCard and feedCard replies into that conversation for 90 minutes (§4.1).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::model::ReceivedMessage;
use crate::reply::{new_err, new_ok, old_err, old_ok};
use crate::state::{Sim, random_hex};

/// The robot message topic (§3).
pub const BOT_TOPIC: &str = "/v1.0/im/bot/messages/get";
/// A ticket opens one connection within 90 s (§1.1).
const TICKET_TTL_MS: i64 = 90_000;
/// `sessionWebhookExpiredTime` is `createAt` + about 90 minutes in every sample (§4.1).
const SESSION_TTL_MS: i64 = 5_400_000;
/// After `disconnect`, the server closes the socket 10 s later (§2.2).
const DISCONNECT_GRACE: Duration = Duration::from_secs(10);
/// How often due redeliveries and pings are looked at.
const TICK: Duration = Duration::from_millis(200);
/// UNCONFIRMED: the session webhook's answer once the session has expired (or never existed);
/// the family's "invalid token" code is used, as a replying robot would see for a dead URL.
const SESSION_GONE_ERRCODE: i64 = 300001;

#[derive(Default)]
pub(crate) struct Gateway {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tickets: HashMap<String, Ticket>,
    connections: HashMap<String, Conn>,
    /// Unacknowledged CALLBACK frames by `messageId`.
    pending: HashMap<String, Pending>,
    /// SYSTEM pings sent and not yet answered: `messageId` → `opaque`.
    pings: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    /// `downloadCode` → (file name, bytes) of what people posted.
    files: HashMap<String, (String, Vec<u8>)>,
    stats: StreamStats,
    /// The next this many handshakes are refused as expired tickets (`refuse_tickets`).
    refuse_tickets: u32,
}

struct Ticket {
    app_key: String,
    topics: Vec<String>,
    expires_ms: i64,
}

struct Conn {
    app_key: String,
    topics: Vec<String>,
    tx: mpsc::UnboundedSender<Message>,
    last_ping: Instant,
    /// Sent `disconnect`: it gets nothing more.
    leaving: bool,
    /// What a test made of it ([`StreamFault`]).
    fate: watch::Sender<Fate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Live,
    Dropped,
    Frozen,
}

/// How long a frozen socket is held open before the simulator lets it go.
const FROZEN_FOR: Duration = Duration::from_secs(300);

struct Pending {
    app_key: String,
    topic: String,
    data: String,
    due_ms: i64,
    sent: u32,
}

struct Session {
    app_key: String,
    robot_code: String,
    /// The group, or the 1:1 conversation's id.
    conversation_id: String,
    /// 1:1: the person the robot answers.
    user_id: Option<String>,
    expires_ms: i64,
}

/// Counters served by `GET /_sim/stream`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamStats {
    pub connections_opened: u64,
    /// CALLBACK frames written (first sends and redeliveries).
    pub frames_sent: u64,
    pub redeliveries: u64,
    pub acks: u64,
    /// Pings answered with the right `opaque`.
    pub pongs: u64,
    /// Person messages delivered to no connection yet (waiting for one).
    pub waiting: u64,
    /// Handshakes refused for a bad, used or expired ticket.
    #[serde(default)]
    pub tickets_refused: u64,
}

impl Gateway {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn message_id() -> String {
    format!(
        "{}_{}_{}_{}",
        random_hex(7),
        random_hex(3),
        random_hex(11),
        random_hex(7)
    )
}

fn uuid_like() -> String {
    format!(
        "{}-{}-{}-{}-{}",
        random_hex(8),
        random_hex(4),
        random_hex(4),
        random_hex(4),
        random_hex(12)
    )
}

/// A frame as DingTalk writes it: every header a string, `data` a JSON-encoded string.
fn frame(
    kind: &str,
    topic: &str,
    message_id: &str,
    app_key: &str,
    conn: &str,
    now_ms: i64,
    data: &str,
) -> String {
    json!({
        "specVersion": "1.0",
        "type": kind,
        "headers": {
            "appId": app_key,
            "connectionId": conn,
            "contentType": "application/json",
            "messageId": message_id,
            "time": now_ms.to_string(),
            "topic": topic,
        },
        "data": data,
    })
    .to_string()
}

/// `POST /v1.0/gateway/connections/open`.
pub(crate) async fn open(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return new_err(&sim, StatusCode::BAD_REQUEST, "systemError", "系统错误");
    };
    let id = req
        .get("clientId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let secret = req
        .get("clientSecret")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(app) = sim.app_by_key(id).filter(|a| a.app_secret == secret) else {
        return new_err(&sim, StatusCode::UNAUTHORIZED, "authFailed", "鉴权失败");
    };
    let topics: Vec<String> = req
        .get("subscriptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("type").and_then(Value::as_str) == Some("CALLBACK"))
        .filter_map(|s| s.get("topic").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let ticket = uuid_like();
    sim.stream.lock().tickets.insert(
        ticket.clone(),
        Ticket {
            app_key: app.app_key.clone(),
            topics,
            expires_ms: sim.now_ms() + TICKET_TTL_MS,
        },
    );
    new_ok(json!({"endpoint": format!("ws://{host}/connect"), "ticket": ticket}))
}

#[derive(Deserialize)]
pub(crate) struct TicketQuery {
    #[serde(default)]
    ticket: String,
}

/// `GET /connect?ticket=…`: the socket. A ticket is good once, within 90 s. UNCONFIRMED: the
/// answer to a bad ticket (clients report a 400 at the handshake).
pub(crate) async fn connect(
    State(sim): State<Sim>,
    Query(q): Query<TicketQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let now = sim.now_ms();
    let ticket = {
        let mut gw = sim.stream.lock();
        let ticket = gw.tickets.remove(&q.ticket);
        let forced = gw.refuse_tickets > 0;
        gw.refuse_tickets = gw.refuse_tickets.saturating_sub(1);
        let ticket = ticket.filter(|t| t.expires_ms >= now && !forced);
        if ticket.is_none() {
            gw.stats.tickets_refused += 1;
        }
        ticket
    };
    let Some(ticket) = ticket else {
        return (StatusCode::BAD_REQUEST, "invalid or expired ticket").into_response();
    };
    ws.on_upgrade(move |socket| serve(sim, socket, ticket))
}

async fn serve(sim: Sim, socket: WebSocket, ticket: Ticket) {
    let id = uuid_like();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let (fate, mut fate_rx) = watch::channel(Fate::Live);
    {
        let mut gw = sim.stream.lock();
        gw.stats.connections_opened += 1;
        gw.connections.insert(
            id.clone(),
            Conn {
                app_key: ticket.app_key.clone(),
                topics: ticket.topics.clone(),
                tx,
                last_ping: Instant::now(),
                leaving: false,
                fate,
            },
        );
    }
    // Messages that waited for a connection go out now.
    deliver_due(&sim);
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    });
    let mut watching = true;
    loop {
        let m = tokio::select! {
            m = stream.next() => m,
            changed = fate_rx.changed(), if watching => {
                // The sender goes with the connection's entry: a test's fault was the last word.
                watching = changed.is_ok();
                let fate = *fate_rx.borrow_and_update();
                match fate {
                    Fate::Live => continue,
                    Fate::Dropped => break,
                    Fate::Frozen => {
                        // Neither write nor read (reading would answer pings) for a while.
                        writer.abort();
                        tokio::time::sleep(FROZEN_FOR).await;
                        break;
                    }
                }
            }
        };
        match m {
            Some(Ok(Message::Text(text))) => acknowledge(&sim, text.as_str()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            // Pings are answered by the WebSocket layer; binary frames mean nothing here.
            Some(Ok(_)) => {}
        }
    }
    sim.stream.lock().connections.remove(&id);
    writer.abort();
    // Dropping both halves here closes the TCP connection without a close frame.
}

/// A client's frame: an ACK of a callback (by `messageId`) or of a ping (echoing `opaque`).
fn acknowledge(sim: &Sim, text: &str) {
    let Ok(ack) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(id) = ack["headers"]["messageId"].as_str() else {
        return;
    };
    let mut gw = sim.stream.lock();
    if let Some(opaque) = gw.pings.remove(id) {
        // Clients re-serialise the data (Python adds spaces): compare parsed.
        let echoed = ack["data"]
            .as_str()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .and_then(|d| d["opaque"].as_str().map(str::to_owned));
        if echoed.as_deref() == Some(opaque.as_str()) {
            gw.stats.pongs += 1;
        }
        return;
    }
    // Any 2xx code is success, whatever `data` holds (§2.3); others leave it for redelivery.
    let ok = ack["code"]
        .as_i64()
        .is_some_and(|c| (200..300).contains(&c));
    if ok && gw.pending.remove(id).is_some() {
        gw.stats.acks += 1;
    }
}

/// Sends every pending message that is due to one connection of its app, at random.
fn deliver_due(sim: &Sim) {
    let now = sim.now_ms();
    let redeliver_ms = i64::try_from(sim.lock().limits.stream_redeliver_secs)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(1000);
    let mut gw = sim.stream.lock();
    let Inner {
        pending,
        connections,
        stats,
        ..
    } = &mut *gw;
    let mut waiting = 0;
    for (message_id, p) in pending.iter_mut().filter(|(_, p)| p.due_ms <= now) {
        let targets: Vec<(&String, &Conn)> = connections
            .iter()
            .filter(|(_, c)| c.app_key == p.app_key && !c.leaving && c.topics.contains(&p.topic))
            .collect();
        if targets.is_empty() {
            waiting += 1;
            continue;
        }
        let (conn_id, conn) = targets[rand::rng().random_range(0..targets.len())];
        let text = frame(
            "CALLBACK", &p.topic, message_id, &p.app_key, conn_id, now, &p.data,
        );
        if conn.tx.send(Message::Text(text.into())).is_ok() {
            stats.frames_sent += 1;
            if p.sent > 0 {
                stats.redeliveries += 1;
            }
            p.sent += 1;
            p.due_ms = now.saturating_add(redeliver_ms);
        }
    }
    stats.waiting = waiting;
}

/// Pings every connection whose last ping is `stream_ping_secs` old.
fn ping_all(sim: &Sim) {
    let every = Duration::from_secs(sim.lock().limits.stream_ping_secs.max(1));
    let now = sim.now_ms();
    let mut gw = sim.stream.lock();
    let mut sent = Vec::new();
    for (conn_id, c) in gw.connections.iter_mut() {
        if c.leaving || c.last_ping.elapsed() < every {
            continue;
        }
        c.last_ping = Instant::now();
        let id = message_id();
        let opaque = uuid_like();
        let data = json!({"opaque": opaque}).to_string();
        let text = frame("SYSTEM", "ping", &id, &c.app_key, conn_id, now, &data);
        if c.tx.send(Message::Text(text.into())).is_ok() {
            sent.push((id, opaque));
        }
    }
    gw.pings.extend(sent);
}

/// The background work of the gateway: redeliveries and pings, until the simulator stops.
pub(crate) async fn run(sim: Sim, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        deliver_due(&sim);
        ping_all(&sim);
    }
}

/// `POST /_sim/stream/disconnect`: every connection gets DingTalk's `disconnect` and is closed
/// 10 s later; nothing more is sent to it meanwhile (§2.2).
pub(crate) async fn disconnect_all(State(sim): State<Sim>) -> Json<Value> {
    let now = sim.now_ms();
    let mut closing = Vec::new();
    {
        let mut gw = sim.stream.lock();
        for (conn_id, c) in gw.connections.iter_mut().filter(|(_, c)| !c.leaving) {
            c.leaving = true;
            let data = json!({"reason": "persistent connection is timeout"}).to_string();
            let text = frame(
                "SYSTEM",
                "disconnect",
                &message_id(),
                &c.app_key,
                conn_id,
                now,
                &data,
            );
            let _ = c.tx.send(Message::Text(text.into()));
            closing.push(c.tx.clone());
        }
    }
    let n = closing.len();
    tokio::spawn(async move {
        tokio::time::sleep(DISCONNECT_GRACE).await;
        for tx in closing {
            let _ = tx.send(Message::Close(None));
        }
    });
    Json(json!({"disconnecting": n}))
}

/// `GET /_sim/stream`: connections, unacknowledged messages and counters.
pub(crate) async fn status(State(sim): State<Sim>) -> Json<Value> {
    Json(status_of(&sim))
}

/// What `GET /_sim/stream` answers.
pub(crate) fn status_of(sim: &Sim) -> Value {
    let gw = sim.stream.lock();
    let connections: Vec<Value> = gw
        .connections
        .iter()
        .map(|(id, c)| json!({"id": id, "app_key": c.app_key, "topics": c.topics, "leaving": c.leaving}))
        .collect();
    json!({
        "connections": connections,
        "pending": gw.pending.len(),
        "stats": gw.stats,
        "refuse_tickets": gw.refuse_tickets,
    })
}

/// What a test does to the open sockets (`POST /_sim/stream/fault`).
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum StreamFault {
    /// Every socket ends at once, without `disconnect` or a close frame (a network failure).
    Drop,
    /// Every socket goes silent: nothing is sent, nothing read (no pong either), the TCP
    /// connection stays open — a half-dead link only the client's own checks can notice.
    Freeze,
    /// This text goes to every socket as a frame, as it is (malformed frames, unknown topics,
    /// oversize messages).
    Frame { text: String },
    /// The next `count` sockets are refused at the handshake as if their ticket had expired.
    RefuseTickets { count: u32 },
}

/// `POST /_sim/stream/fault`: see [`StreamFault`]. Answers how many sockets it touched.
pub(crate) async fn fault(State(sim): State<Sim>, body: axum::body::Bytes) -> Response {
    let f: StreamFault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("expected {{\"kind\": \"drop\" | \"freeze\" | \"frame\" | \"refuse_tickets\"}}: {e}")})),
            )
                .into_response();
        }
    };
    let mut gw = sim.stream.lock();
    let n = match f {
        StreamFault::RefuseTickets { count } => {
            gw.refuse_tickets = count;
            0
        }
        StreamFault::Frame { text } => gw
            .connections
            .values()
            .filter(|c| c.tx.send(Message::Text(text.clone().into())).is_ok())
            .count(),
        StreamFault::Drop | StreamFault::Freeze => {
            let fate = if matches!(f, StreamFault::Drop) {
                Fate::Dropped
            } else {
                Fate::Frozen
            };
            // Forgotten at once: what they had not acknowledged is redelivered elsewhere.
            let gone: Vec<Conn> = gw.connections.drain().map(|(_, c)| c).collect();
            for c in &gone {
                let _ = c.fate.send(fate);
            }
            gone.len()
        }
    };
    Json(json!({"sockets": n})).into_response()
}

/// What a person writes (`POST /_sim/conversations/{id}/messages`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonMessage {
    #[serde(default)]
    sender: Sender,
    #[serde(default)]
    text: Option<String>,
    /// A picture: its file name and, optionally, its bytes in base64.
    #[serde(default)]
    picture: Option<Attachment>,
    #[serde(default)]
    file: Option<Attachment>,
    /// In a group, robots receive only messages that @-mention them.
    #[serde(default = "yes")]
    at_robot: bool,
    /// A 1:1 conversation: the robot the person writes to (the path's id is the conversation's).
    #[serde(default)]
    robot_code: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sender {
    #[serde(default = "default_nick")]
    nick: String,
    #[serde(default = "default_staff")]
    staff_id: String,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            nick: default_nick(),
            staff_id: default_staff(),
        }
    }
}

fn default_nick() -> String {
    "Sandbox User".into()
}
fn default_staff() -> String {
    "manager1234".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attachment {
    file_name: String,
    #[serde(default)]
    content_base64: Option<String>,
}

fn bad(why: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": why.into()}))).into_response()
}

/// A DingTalk-looking encrypted id (`$:LWCP_v1:$…`) for a plain one.
fn lwcp(plain: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(plain.as_bytes());
    use base64::Engine;
    format!(
        "$:LWCP_v1:${}",
        base64::engine::general_purpose::STANDARD.encode(&digest[..18])
    )
}

/// `POST /_sim/conversations/{id}/messages`: a person writes in a group (or 1:1 to a robot).
pub(crate) async fn person_writes(
    State(sim): State<Sim>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let msg: PersonMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return bad(format!("invalid message: {e}")),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let in_group: Vec<(String, String, String)> = sim
        .fixture
        .apps
        .iter()
        .filter_map(|a| {
            a.groups
                .iter()
                .find(|g| g.open_conversation_id == conversation)
                .map(|g| (a.app_key.clone(), a.robot_code.clone(), g.title.clone()))
        })
        .collect();
    let group = !in_group.is_empty();
    let robots: Vec<(String, String, String)> = if group {
        if msg.at_robot { in_group } else { Vec::new() }
    } else {
        match msg.robot_code.as_deref().and_then(|r| sim.app_by_robot(r)) {
            Some(a) => vec![(a.app_key.clone(), a.robot_code.clone(), String::new())],
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": "no group has this id; for a 1:1 conversation give `robot_code`"})),
                )
                    .into_response();
            }
        }
    };
    let (msgtype, content) = match (&msg.text, &msg.picture, &msg.file) {
        (Some(t), None, None) if !t.trim().is_empty() => ("text", json!({"content": t})),
        (None, Some(p), None) => {
            let code = store_file(&sim, p);
            (
                "picture",
                json!({"downloadCode": code, "pictureDownloadCode": code}),
            )
        }
        (None, None, Some(f)) => {
            let code = store_file(&sim, f);
            (
                "file",
                json!({"downloadCode": code, "fileName": f.file_name}),
            )
        }
        _ => return bad("give exactly one of `text` (not blank), `picture`, `file`"),
    };
    let now = sim.now_ms();
    let msg_id = format!("msg{}", random_hex(24));
    // The chat shows what the person wrote, once.
    {
        let shown = ReceivedMessage {
            id: 0,
            received_at: sim.now_rfc3339(),
            api: "person".into(),
            robot_code: None,
            open_conversation_id: group.then(|| conversation.clone()),
            msg_key: None,
            msg_param: None,
            process_query_key: None,
            user_ids: (!group).then(|| vec![msg.sender.staff_id.clone()]),
            msgtype: Some(msgtype.to_owned()),
            payload: Some(
                json!({"content": content, "sender": msg.sender.nick, "at_robot": msg.at_robot && group}),
            ),
            at: None,
            webhook_token: None,
            recalled: false,
        };
        sim.lock().push_message(shown);
    }
    let mut delivered_to = Vec::new();
    for (app_key, robot_code, title) in robots {
        let session = random_hex(32);
        let corp = format!("ding{}", &random_hex(16));
        let mut data = json!({
            "conversationId": conversation,
            "conversationType": if group { "2" } else { "1" },
            "chatbotCorpId": corp,
            "chatbotUserId": lwcp(&robot_code),
            "msgId": msg_id,
            "senderNick": msg.sender.nick,
            "senderId": lwcp(&msg.sender.staff_id),
            "senderStaffId": msg.sender.staff_id,
            "senderCorpId": corp,
            "isAdmin": false,
            "sessionWebhook": format!("http://{host}/robot/sendBySession?session={session}"),
            "sessionWebhookExpiredTime": now + SESSION_TTL_MS,
            "createAt": now,
            "robotCode": robot_code,
            "msgtype": msgtype,
        });
        if group {
            data["conversationTitle"] = json!(title);
            data["isInAtList"] = json!(true);
            data["atUsers"] = json!([{"dingtalkId": lwcp(&robot_code)}]);
        } else {
            data["openThreadId"] = json!(conversation);
        }
        if msgtype == "text" {
            // DingTalk removes the @-mention and keeps the space after it.
            let text = content["content"].as_str().unwrap_or_default();
            data["text"] =
                json!({"content": if group { format!(" {text}") } else { text.to_owned() }});
        } else {
            data["content"] = content.clone();
        }
        let mut gw = sim.stream.lock();
        gw.sessions.insert(
            session,
            Session {
                app_key: app_key.clone(),
                robot_code: robot_code.clone(),
                conversation_id: conversation.clone(),
                user_id: (!group).then(|| msg.sender.staff_id.clone()),
                expires_ms: now + SESSION_TTL_MS,
            },
        );
        gw.pending.insert(
            message_id(),
            Pending {
                app_key,
                topic: BOT_TOPIC.into(),
                data: data.to_string(),
                due_ms: now,
                sent: 0,
            },
        );
        delivered_to.push(robot_code);
    }
    deliver_due(&sim);
    Json(json!({"msgId": msg_id, "robots": delivered_to})).into_response()
}

fn store_file(sim: &Sim, a: &Attachment) -> String {
    use base64::Engine;
    let bytes = a
        .content_base64
        .as_deref()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let code = random_hex(40);
    sim.stream
        .lock()
        .files
        .insert(code.clone(), (a.file_name.clone(), bytes));
    code
}

/// `POST /robot/sendBySession?session=…`: a reply into the conversation the session came from,
/// in the webhook robots' format; `{"errcode":0,"errmsg":"ok"}` as the family answers.
pub(crate) async fn send_by_session(
    State(sim): State<Sim>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let now = sim.now_ms();
    let session = {
        let gw = sim.stream.lock();
        params
            .get("session")
            .and_then(|s| gw.sessions.get(s))
            .filter(|s| s.expires_ms > now)
            .map(|s| {
                (
                    s.app_key.clone(),
                    s.robot_code.clone(),
                    s.conversation_id.clone(),
                    s.user_id.clone(),
                )
            })
    };
    let Some((_app, robot_code, conversation, user)) = session else {
        return old_err(&sim, SESSION_GONE_ERRCODE, "session expired or unknown");
    };
    let msg = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) if m.get("msgtype").and_then(Value::as_str).is_some() => m,
        _ => return old_err(&sim, 40035, "缺少参数 json"),
    };
    let msgtype = msg["msgtype"].as_str().unwrap_or_default().to_owned();
    let payload = match crate::webhook::validate_payload(&msgtype, &msg) {
        Ok(p) => p,
        Err((code, text)) => return old_err(&sim, code, &text),
    };
    let message = ReceivedMessage {
        id: 0,
        received_at: sim.now_rfc3339(),
        api: "session".into(),
        robot_code: Some(robot_code),
        open_conversation_id: user.is_none().then_some(conversation),
        msg_key: None,
        msg_param: None,
        process_query_key: None,
        user_ids: user.map(|u| vec![u]),
        msgtype: Some(msgtype),
        payload: Some(payload),
        at: msg.get("at").cloned(),
        webhook_token: None,
        recalled: false,
    };
    sim.lock().push_message(message);
    old_ok(Value::Null)
}

/// `POST /v1.0/robot/messageFiles/download` `{robotCode, downloadCode}` → `{downloadUrl}`.
pub(crate) async fn file_download_url(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get("x-acs-dingtalk-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if sim.token_app(token).is_none() {
        return new_err(
            &sim,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthentication",
            "不合法的access_token",
        );
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = req["downloadCode"].as_str().unwrap_or_default();
    if !sim.stream.lock().files.contains_key(code) {
        return new_err(
            &sim,
            StatusCode::BAD_REQUEST,
            "invalidParameter.downloadCode",
            "downloadCode is invalid",
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    new_ok(json!({"downloadUrl": format!("http://{host}/_sim/files/{code}")}))
}

/// `GET /_sim/files/{code}`: the bytes behind a download URL.
pub(crate) async fn file_bytes(State(sim): State<Sim>, Path(code): Path<String>) -> Response {
    match sim.stream.lock().files.get(&code) {
        Some((_, bytes)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
