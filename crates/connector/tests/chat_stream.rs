//! DingTalk talking back, through `dtc serve`: a connection with Stream mode on holds a socket to
//! the simulator's gateway; what a person writes is recorded with its conversation; "@robot id"
//! is answered with the group's id; the conversations are listed by the API and the console.

mod common;

use std::time::Duration;

use common::{OPS, spawn_app};
use serde_json::{Value, json};

async fn sim_get(app: &common::TestApp, path: &str) -> Value {
    app.http
        .get(format!("{}{path}", app.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
    let (status, conn) = app
        .post(
            "/v1/connections",
            json!({"name": "ops", "app_key": dingtalk_sim::SANDBOX_APP_KEY,
                   "app_secret": dingtalk_sim::SANDBOX_APP_SECRET,
                   "robot_code": dingtalk_sim::SANDBOX_APP_KEY, "stream": true}),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
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

    let mut n = 0;
    for _ in 0..100 {
        n = sockets(&app).await;
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 1, "dtc serve holds one socket");

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
    let st = sim_get(&app, "/_sim/stream").await;
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
