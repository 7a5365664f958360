//! Stream mode, spoken by hand over a WebSocket (docs/dingtalk-stream.md §8): the ticket, the
//! frames' exact shape, acknowledgements, redelivery, pings, the session webhook, the person's
//! side of a group, `disconnect`; then the official `dingtalk-stream` Python SDK, unchanged.

mod common;

use std::path::Path;
use std::time::Duration;

use dingtalk_sim::{BOT_TOPIC, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(ctx: &common::Ctx, secret: &str) -> (u16, Value) {
    let resp = ctx
        .http
        .post(ctx.url("/v1.0/gateway/connections/open"))
        .json(&json!({
            "clientId": SANDBOX_APP_KEY, "clientSecret": secret,
            "subscriptions": [{"type": "EVENT", "topic": "*"}, {"type": "CALLBACK", "topic": BOT_TOPIC}],
            "ua": "dingtalk-sdk-rust-test/1.0", "localIp": ""
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = common::json_of(resp).await;
    (status.as_u16(), body)
}

async fn connect(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    tokio_tungstenite::connect_async(url).await.map(|(s, _)| s)
}

/// The next TEXT frame within `wait`, parsed (pings are skipped unless `system` is wanted).
async fn next_frame(ws: &mut Socket, wait: Duration, want: &str) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(t) = m {
            let f: Value = serde_json::from_str(t.as_str()).expect("a frame is JSON");
            if f["type"] == want || f["headers"]["topic"] == want {
                return Some(f);
            }
        }
    }
}

async fn say(ctx: &common::Ctx, conversation: &str, body: Value) -> (u16, Value) {
    let resp = ctx
        .http
        .post(ctx.url(&format!("/_sim/conversations/{conversation}/messages")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = common::json_of(resp).await;
    (status.as_u16(), body)
}

async fn stream_status(ctx: &common::Ctx) -> Value {
    common::json_of(ctx.http.get(ctx.url("/_sim/stream")).send().await.unwrap())
        .await
        .1
}

#[tokio::test]
async fn a_robot_message_reaches_the_app_over_its_socket_as_dingtalk_frames_it() {
    let ctx = common::start().await;

    // Wrong credentials: DingTalk's answer.
    let (status, body) = open(&ctx, "wrong").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("authFailed")));

    let (status, body) = open(&ctx, SANDBOX_APP_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let endpoint = body["endpoint"].as_str().unwrap();
    assert!(
        endpoint.starts_with("ws://") && endpoint.ends_with("/connect"),
        "{endpoint}"
    );
    let url = format!("{endpoint}?ticket={}", body["ticket"].as_str().unwrap());
    let mut ws = connect(&url).await.expect("the ticket opens a socket");
    // A ticket is good once.
    assert!(
        connect(&url).await.is_err(),
        "a ticket opens one socket only"
    );
    // And for 90 s.
    let (_, late) = open(&ctx, SANDBOX_APP_SECRET).await;
    ctx.sim.advance_clock(Duration::from_secs(91));
    let late_url = format!("{endpoint}?ticket={}", late["ticket"].as_str().unwrap());
    assert!(
        connect(&late_url).await.is_err(),
        "a ticket older than 90 s opens nothing"
    );
    assert_eq!(stream_status(&ctx).await["stats"]["tickets_refused"], 2);

    // A person @-mentions the robot in the ops group.
    let (status, said) = say(
        &ctx,
        SANDBOX_OPS_GROUP,
        json!({"sender": {"nick": "Li Lei", "staff_id": "manager1234"}, "text": "status db-1", "at_robot": true}),
    )
    .await;
    assert_eq!(status, 200, "{said}");
    let f = next_frame(&mut ws, Duration::from_secs(5), "CALLBACK")
        .await
        .expect("a CALLBACK frame");
    assert_eq!(f["specVersion"], "1.0");
    for (k, v) in f["headers"].as_object().unwrap() {
        assert!(v.is_string(), "header {k} is a string: {v}");
    }
    assert_eq!(f["headers"]["topic"], BOT_TOPIC);
    assert_eq!(f["headers"]["contentType"], "application/json");
    let data: Value =
        serde_json::from_str(f["data"].as_str().expect("data is a JSON string")).unwrap();
    assert_eq!(data["conversationType"], "2");
    assert_eq!(data["conversationId"], SANDBOX_OPS_GROUP);
    assert_eq!(data["msgtype"], "text");
    assert_eq!(data["text"]["content"], " status db-1");
    assert_eq!(data["senderStaffId"], "manager1234");
    assert_eq!(data["senderNick"], "Li Lei");
    assert_eq!(data["isInAtList"], true);
    assert_eq!(data["msgId"], said["msgId"]);
    assert!(data["createAt"].is_i64() && data["sessionWebhookExpiredTime"].is_i64());
    let message_id = f["headers"]["messageId"].as_str().unwrap().to_owned();

    // Not acknowledged: after the redelivery time (simulator clock) it comes again, same id.
    ctx.http
        .post(ctx.url("/_sim/clock"))
        .json(&json!({"advance_secs": 61}))
        .send()
        .await
        .unwrap();
    let again = next_frame(&mut ws, Duration::from_secs(5), "CALLBACK")
        .await
        .expect("redelivered");
    assert_eq!(again["headers"]["messageId"], message_id.as_str());
    assert_eq!(again["data"], f["data"]);
    // Acknowledged the way the Python SDK does (data echoed, message "OK").
    let ack = json!({"code": 200, "headers": {"messageId": message_id, "contentType": "application/json"},
                     "message": "OK", "data": "{\"response\": \"OK\"}"});
    ws.send(Message::Text(ack.to_string().into()))
        .await
        .unwrap();
    let mut st = json!({});
    for _ in 0..50 {
        st = stream_status(&ctx).await;
        if st["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["stats"]["acks"], 1, "{st}");
    assert_eq!(st["stats"]["redeliveries"], 1, "{st}");

    // The reply goes through the session webhook into the group.
    let webhook = data["sessionWebhook"].as_str().unwrap();
    let reply = ctx
        .http
        .post(webhook)
        .json(&json!({"msgtype": "text", "text": {"content": "db-1 is up"}, "at": {"atUserIds": ["manager1234"]}}))
        .send()
        .await
        .unwrap();
    let (_, answer) = common::json_of(reply).await;
    assert_eq!(answer, json!({"errcode": 0, "errmsg": "ok"}));
    let messages = ctx.sim.messages();
    let person = messages
        .iter()
        .find(|m| m.api == "person")
        .expect("the person's message is shown");
    assert_eq!(
        person.open_conversation_id.as_deref(),
        Some(SANDBOX_OPS_GROUP)
    );
    let replied = messages
        .iter()
        .find(|m| m.api == "session")
        .expect("the reply is shown");
    assert_eq!(
        replied.open_conversation_id.as_deref(),
        Some(SANDBOX_OPS_GROUP)
    );
    assert_eq!(replied.payload.as_ref().unwrap()["content"], "db-1 is up");
    let page = ctx
        .http
        .get(ctx.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("db-1 is up") && page.contains("status db-1"),
        "the chat page shows both"
    );

    // Without an @-mention the robot gets nothing in a group.
    let (status, said) = say(
        &ctx,
        SANDBOX_OPS_GROUP,
        json!({"text": "lunch?", "at_robot": false}),
    )
    .await;
    assert_eq!((status, said["robots"].clone()), (200, json!([])));
    assert!(
        next_frame(&mut ws, Duration::from_millis(600), "CALLBACK")
            .await
            .is_none()
    );

    // A 1:1 message always reaches the robot; an unknown conversation without a robot is refused.
    let (status, _) = say(&ctx, "cidNoSuchGroup==", json!({"text": "hi"})).await;
    assert_eq!(status, 404);
    let (status, _) = say(
        &ctx,
        "cidOneToOne0001==",
        json!({"text": "hi", "robot_code": SANDBOX_APP_KEY}),
    )
    .await;
    assert_eq!(status, 200);
    let f = next_frame(&mut ws, Duration::from_secs(5), "CALLBACK")
        .await
        .expect("1:1 message");
    let data: Value = serde_json::from_str(f["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            data["conversationType"].as_str(),
            data["text"]["content"].as_str()
        ),
        (Some("1"), Some("hi"))
    );

    // Pings carry an opaque value the client echoes.
    ctx.http
        .post(ctx.url("/_sim/limits"))
        .json(&json!({"stream_ping_secs": 1}))
        .send()
        .await
        .unwrap();
    let ping = next_frame(&mut ws, Duration::from_secs(5), "ping")
        .await
        .expect("a ping");
    assert_eq!(ping["type"], "SYSTEM");
    let opaque: Value = serde_json::from_str(ping["data"].as_str().unwrap()).unwrap();
    let pong = json!({"code": 200, "headers": {"messageId": ping["headers"]["messageId"], "contentType": "application/json"},
                      "message": "OK", "data": json!({"opaque": opaque["opaque"]}).to_string()});
    ws.send(Message::Text(pong.to_string().into()))
        .await
        .unwrap();
    let mut pongs = Value::Null;
    for _ in 0..50 {
        pongs = stream_status(&ctx).await["stats"]["pongs"].clone();
        if pongs.as_u64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pongs.as_u64() >= Some(1), "{pongs}");

    // `disconnect` announces the close.
    ctx.http
        .post(ctx.url("/_sim/stream/disconnect"))
        .send()
        .await
        .unwrap();
    let bye = next_frame(&mut ws, Duration::from_secs(5), "disconnect")
        .await
        .expect("disconnect");
    assert!(bye["data"].as_str().unwrap().contains("reason"));
}

/// The official SDK from PyPI, unchanged, pointed at the simulator with
/// `DINGTALK_OPENAPI_ENDPOINT`: it connects, receives what a person writes, acknowledges it, and
/// its `reply_text` / `reply_markdown` helpers answer through the session webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_dingtalk_stream_sdk_receives_and_replies() {
    let python =
        match testkit::python_venv("stream-sdk", &["dingtalk-stream"], "import dingtalk_stream") {
            Ok(p) => p,
            Err(why) => return testkit::missing(why),
        };
    let ctx = common::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("stream_sdk.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .args([ctx.base.as_str(), SANDBOX_APP_KEY, SANDBOX_APP_SECRET, "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    // Connected?
    let mut connected = false;
    for _ in 0..200 {
        if stream_status(&ctx).await["connections"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !connected {
        child.start_kill().ok();
        let out = child.wait_with_output().await.unwrap();
        panic!(
            "the SDK did not connect\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    say(&ctx, SANDBOX_OPS_GROUP, json!({"text": "ping db-1"})).await;
    say(&ctx, SANDBOX_OPS_GROUP, json!({"text": "md release"})).await;
    let mut replies: Vec<dingtalk_sim::ReceivedMessage> = Vec::new();
    for _ in 0..200 {
        replies = ctx
            .sim
            .messages()
            .into_iter()
            .filter(|m| m.api == "session")
            .collect();
        if replies.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = stream_status(&ctx).await;
    child.start_kill().ok();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        replies.len(),
        2,
        "replies: {replies:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    let text = replies
        .iter()
        .find(|m| m.msgtype.as_deref() == Some("text"))
        .expect("reply_text");
    assert_eq!(text.payload.as_ref().unwrap()["content"], "echo: ping db-1");
    assert_eq!(
        text.at.as_ref().unwrap()["atUserIds"],
        json!(["manager1234"])
    );
    let md = replies
        .iter()
        .find(|m| m.msgtype.as_deref() == Some("markdown"))
        .expect("reply_markdown");
    assert_eq!(md.payload.as_ref().unwrap()["text"], "**md release**");
    assert_eq!(st["stats"]["acks"], 2, "the SDK acknowledged both: {st}");
    assert_eq!(st["pending"], 0, "{st}");
    // The SDK read the message as DingTalk's: a group, its id, the sender.
    let handled: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(handled.len(), 2, "{stdout}");
    assert_eq!(handled[0]["conversation_type"], "2");
    assert_eq!(handled[0]["conversation_id"], SANDBOX_OPS_GROUP);
    assert_eq!(handled[0]["sender_staff_id"], "manager1234");
    assert_eq!(handled[0]["reply_answer"]["errcode"], 0);
}
