//! DingTalk talking back, through `dtc serve`: a connection with Stream mode on holds a socket to
//! the simulator's gateway; what a person writes is recorded with its conversation; "@robot id"
//! is answered with the group's id; the conversations are listed by the API and the console.

mod common;

use std::time::Duration;

use common::{OPS, spawn_app};
use serde_json::{Value, json};

async fn sim_get(app: &common::TestApp, path: &str) -> Value {
    testkit::get_json(&app.http, &format!("{}{path}", app.sim.base_url()), None).await
}

async fn person_says(app: &common::TestApp, text: &str) {
    let resp = app
        .http
        .post(format!(
            "{}/_sim/conversations/{OPS}/messages",
            app.sim.base_url()
        ))
        .json(&json!({"sender": {"nick": "Li Lei", "staff_id": "manager1234"}, "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn sockets(app: &common::TestApp) -> usize {
    sim_get(app, "/_sim/stream").await["connections"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_connection_hears_the_group_and_answers_id_with_its_id() {
    let app = spawn_app().await;
    let conn = ops_with_stream(&app).await;
    assert_eq!(conn["stream"], true);
    // A webhook robot cannot receive.
    let (status, refused) = app
        .post(
            "/v1/connections",
            json!({"name": "hook", "kind": "webhook_robot",
                   "access_token": dingtalk_sim::SANDBOX_WEBHOOK_TOKEN, "stream": true}),
        )
        .await;
    assert!(matches!(status, 400 | 422), "{status} {refused}");
    assert_eq!(refused["error"]["field"], "stream", "{refused}");
    assert_eq!(sockets(&app).await, 1, "dtc serve holds one socket");

    person_says(&app, "id").await;
    let mut answer = None;
    for _ in 0..100 {
        answer = app.sim.messages().into_iter().find(|m| m.api == "session");
        if answer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.expect("\"@robot id\" is answered");
    assert_eq!(answer.open_conversation_id.as_deref(), Some(OPS));
    let text = answer.payload.unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(OPS), "{text}");

    person_says(&app, "hello").await;
    let mut list = Value::Null;
    for _ in 0..100 {
        list = app.get("/v1/connections/ops/conversations").await.1;
        if list[0]["messages"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(list[0]["conversation_id"], OPS, "{list}");
    assert_eq!(list[0]["kind"], "group");
    assert_eq!(list[0]["messages"], 2, "{list}");
    assert!(list[0]["title"].is_string(), "{list}");
    // Acknowledged once recorded and handed to the flows (a moment after it is listed).
    let mut st = Value::Null;
    for _ in 0..100 {
        st = sim_get(&app, "/_sim/stream").await;
        if st["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st["pending"], 0, "both acknowledged: {st}");

    // The console's Conversations page shows the id, ready to copy.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = http
        .post(format!("{}/console/sign-in", app.base))
        .form(&[("token", common::TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{}/console/conversations", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("data-copy=\"{OPS}\"")), "{page}");

    // Stream mode off: the socket closes.
    let resp = app
        .request(
            reqwest::Method::PATCH,
            "/v1/connections/ops",
            Some(json!({"stream": false})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let mut n = 1;
    for _ in 0..100 {
        n = sockets(&app).await;
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 0, "the socket closes when Stream mode is turned off");
}

async fn wait_for<T>(mut probe: impl AsyncFnMut() -> Option<T>, what: &str) -> T {
    for _ in 0..150 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Creates `ops` with Stream mode on and waits for its socket; the connection as created.
async fn ops_with_stream(app: &common::TestApp) -> Value {
    let (status, conn) = app
        .post(
            "/v1/connections",
            json!({"name": "ops", "app_key": dingtalk_sim::SANDBOX_APP_KEY,
                   "app_secret": dingtalk_sim::SANDBOX_APP_SECRET,
                   "robot_code": dingtalk_sim::SANDBOX_APP_KEY, "stream": true}),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
    wait_for(
        async || (sockets(app).await == 1).then_some(()),
        "the Stream socket",
    )
    .await;
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_flow_answers_a_command_and_a_pattern_in_the_conversation() {
    let app = spawn_app().await;
    ops_with_stream(&app).await;

    let (status, flow) = app
        .post(
            "/v1/flows",
            json!({"name": "ping", "trigger": {"type": "chat", "connection": "ops", "command": "ping"},
                   "steps": [{"id": "pong", "action": "reply", "input": {"content": "pong"}}]}),
        )
        .await;
    assert_eq!(status, 201, "{flow}");
    let (status, flow) = app
        .post(
            "/v1/flows",
            json!({"name": "ack", "trigger": {"type": "chat", "connection": "ops",
                       "conversation": "group", "pattern": r"^ack (?P<alert>\d+)$"},
                   "steps": [{"id": "answer", "action": "reply", "input": {
                       "msg_type": "markdown",
                       "content": "Alert **{{ trigger.match.alert }}** acknowledged by {{ trigger.sender.nick }}"}}]}),
        )
        .await;
    assert_eq!(status, 201, "{flow}");

    person_says(&app, "ping").await;
    let pong = wait_for(
        async || app.sim.messages().into_iter().find(|m| m.api == "session"),
        "the pong",
    )
    .await;
    assert_eq!(pong.open_conversation_id.as_deref(), Some(OPS));
    assert_eq!(
        pong.payload.as_ref().unwrap()["content"],
        "pong",
        "{pong:?}"
    );

    // The message is in the run log of the run it started.
    let runs = app.get("/v1/runs?flow=ping").await.1;
    let run_id = runs["runs"][0]["id"].as_str().unwrap().to_owned();
    let run = wait_for(
        async || {
            let run = app.get(&format!("/v1/runs/{run_id}")).await.1;
            (run["status"] == "succeeded").then_some(run)
        },
        "the ping run to succeed",
    )
    .await;
    assert_eq!(run["trigger"], "chat", "{run}");
    let data = &run["trigger_data"];
    assert_eq!(data["text"], "ping", "{run}");
    assert_eq!(data["command"], "ping");
    assert_eq!(data["sender"]["nick"], "Li Lei");
    assert_eq!(data["conversation"]["id"], OPS);
    assert_eq!(
        run["steps"]["pong"]["output"]["via"], "session_webhook",
        "{run}"
    );
    let msg_id = data["msg_id"].as_str().unwrap().to_owned();

    person_says(&app, "ack 4711").await;
    let ack = wait_for(
        async || {
            app.sim.messages().into_iter().find(|m| {
                m.api == "session" && m.payload.as_ref().is_some_and(|p| p["title"].is_string())
            })
        },
        "the markdown answer",
    )
    .await;
    let text = ack.payload.unwrap()["text"].as_str().unwrap().to_owned();
    assert_eq!(text, "Alert **4711** acknowledged by Li Lei");
    // "ping" matched no pattern; "ack 4711" started no ping run.
    let runs = app.get("/v1/runs?flow=ping").await.1;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");

    // An hour and a half later the session has closed: a reply goes as a robot message into
    // the group instead.
    app.sim.advance_clock(Duration::from_secs(2 * 3600));
    let (status, out) = app
        .post(
            "/v1/connections/ops/actions/reply",
            json!({"message_id": msg_id, "content": "late pong"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["via"], "group_send", "{out}");
    assert_eq!(out["conversation_id"], OPS);
    let late = app
        .sim
        .messages()
        .into_iter()
        .find(|m| m.api == "robot.group_send")
        .expect("the late reply went to the group");
    assert_eq!(late.open_conversation_id.as_deref(), Some(OPS));
    assert_eq!(late.msg_param.unwrap()["content"], "late pong");

    // A reply to a message never received is refused, nothing sent.
    let before = app.sim.messages().len();
    let (status, out) = app
        .post(
            "/v1/connections/ops/actions/reply",
            json!({"message_id": "msgNever", "content": "?"}),
        )
        .await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "message_id", "{out}");
    assert_eq!(app.sim.messages().len(), before);

    // The session webhook (whoever has it can post into the group) is not stored in clear.
    let db_path = app.database_url.trim_start_matches("sqlite://").to_owned();
    let _dir = app.stop().await;
    let needle = b"sendBySession";
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(format!("{db_path}{suffix}")) {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the database file{suffix} holds a session webhook in clear"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_flow_is_refused_with_reasons_at_its_fields() {
    let app = spawn_app().await;
    let (status, _) = app
        .post(
            "/v1/connections",
            json!({"name": "quiet", "app_key": dingtalk_sim::SANDBOX_APP_KEY,
                   "app_secret": dingtalk_sim::SANDBOX_APP_SECRET,
                   "robot_code": dingtalk_sim::SANDBOX_APP_KEY}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, out) = app
        .post(
            "/v1/flows",
            json!({"name": "bad", "trigger": {"type": "chat", "connection": "quiet", "pattern": "(ack"},
                   "steps": [{"id": "a", "action": "reply", "input": {"content": "x"}}]}),
        )
        .await;
    assert_eq!(status, 422, "{out}");
    let problems = out["error"]["message"].as_str().unwrap();
    assert_eq!(out["error"]["field"], "trigger.connection", "{out}");
    assert!(problems.contains("Stream mode off"), "{out}");
    assert!(
        problems.contains("`trigger.pattern`: not a valid regular expression: unclosed group"),
        "{out}"
    );
    // A reply outside a chat flow must say which message it answers.
    let (status, out) = app
        .post(
            "/v1/flows",
            json!({"name": "bad2", "trigger": {"type": "manual"},
                   "steps": [{"id": "a", "action": "reply", "connection": "quiet", "input": {"content": "x"}}]}),
        )
        .await;
    assert_eq!(status, 422, "{out}");
    assert!(
        out.to_string().contains("steps[0].input.message_id"),
        "{out}"
    );
}
