//! End to end: the six seed actions and the ones beyond them, through the REST API, into the
//! simulator.

mod common;

use base64::Engine;
use common::{OPS, spawn_app};
use dingtalk_sim::{FaultKind, FaultSpec, RouteName};
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn each_seed_action_arrives_in_the_group_with_its_msg_key() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let upload = app
        .run(
            "ops",
            "upload_media",
            json!({"media_type": "file", "file": {"name": "report.pdf", "content_base64": b64(b"%PDF-1.4 x")}}),
        )
        .await;
    assert_eq!(upload.0, 200, "{}", upload.1);
    let media_id = upload.1["media_id"].as_str().unwrap().to_owned();

    let cases = [
        (
            "send_text",
            json!({"group_chat_id": OPS, "content": "disk 91% on db-1"}),
            "sampleText",
        ),
        (
            "send_markdown",
            json!({"group_chat_id": OPS, "subject": "Deploy", "content": "# v1.2\n**done**"}),
            "sampleMarkdown",
        ),
        (
            "send_link",
            json!({"group_chat_id": OPS, "subject": "Report", "content": "weekly", "image_url": "https://example.com/p.png", "redirect_url": "https://example.com/r"}),
            "sampleLink",
        ),
        (
            "send_image",
            json!({"group_chat_id": OPS, "image_url": "https://example.com/chart.png"}),
            "sampleImageMsg",
        ),
        (
            "send_file",
            json!({"group_chat_id": OPS, "media_id": media_id, "file_name": "report.pdf", "file_type": "pdf"}),
            "sampleFile",
        ),
        (
            "send_action_card",
            json!({"group_chat_id": OPS, "subject": "Approve", "content": "release 1.2?", "button_text": "Open", "redirect_url": "https://example.com/a"}),
            "sampleActionCard",
        ),
    ];
    for (action, input, msg_key) in &cases {
        let (status, body) = app.run("ops", action, input.clone()).await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["msg_key"], *msg_key, "{action}: {body}");
        assert!(
            body["process_query_key"]
                .as_str()
                .is_some_and(|k| !k.is_empty())
        );
    }
    let got = app.sim.messages();
    let keys: Vec<_> = got.iter().filter_map(|m| m.msg_key.clone()).collect();
    assert_eq!(keys, cases.iter().map(|c| c.2).collect::<Vec<_>>());
    assert_eq!(
        got[0].msg_param.as_ref().unwrap()["content"],
        "disk 91% on db-1"
    );
    assert_eq!(
        got[2].msg_param.as_ref().unwrap()["messageUrl"],
        "https://example.com/r"
    );
    assert_eq!(got[5].msg_param.as_ref().unwrap()["singleTitle"], "Open");
}

#[tokio::test]
async fn send_file_uploads_a_base64_file_first() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (status, body) = app
        .run(
            "ops",
            "send_file",
            json!({"group_chat_id": OPS, "file": {"name": "q3.xlsx", "content_base64": b64(b"PK\x03\x04 sheet")}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["media_id"].as_str().is_some());
    let msg = &app.sim.messages()[0];
    let p = msg.msg_param.as_ref().unwrap();
    assert_eq!(p["fileName"], "q3.xlsx");
    assert_eq!(p["fileType"], "xlsx");
    assert_eq!(p["mediaId"], body["media_id"]);
}

#[tokio::test]
async fn send_image_takes_a_multipart_upload() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let form = reqwest::multipart::Form::new()
        .text("group_chat_id", OPS)
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n".to_vec())
                .file_name("chart.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let (status, body) = app.run_form("ops", "send_image", form).await;
    assert_eq!(status, 200, "{body}");
    let p = app.sim.messages()[0].msg_param.clone().unwrap();
    assert!(
        p["photoURL"].as_str().unwrap().starts_with('@')
            || p["photoURL"].as_str().unwrap().starts_with('$')
    );
}

#[tokio::test]
async fn multi_button_action_cards_pick_the_right_template() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let buttons = json!([{"title": "Approve", "url": "https://x/a"}, {"title": "Reject", "url": "https://x/r"}, {"title": "Later", "url": "https://x/l"}]);
    let (s, b) = app
        .run(
            "ops",
            "send_action_card",
            json!({"group_chat_id": OPS, "subject": "Vote", "content": "?", "buttons": buttons}),
        )
        .await;
    assert_eq!(
        (s, b["msg_key"].as_str()),
        (200, Some("sampleActionCard3")),
        "{b}"
    );
    let (s, b) = app
        .run("ops", "send_action_card", json!({"group_chat_id": OPS, "subject": "Vote", "content": "?", "button_layout": "horizontal",
            "buttons": [{"title": "Yes", "url": "https://x/y"}, {"title": "No", "url": "https://x/n"}]}))
        .await;
    assert_eq!(
        (s, b["msg_key"].as_str()),
        (200, Some("sampleActionCard6")),
        "{b}"
    );
}

#[tokio::test]
async fn read_status_and_recall_work_on_a_sent_message() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (_, sent) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "oops"}),
        )
        .await;
    let key = sent["process_query_key"].as_str().unwrap();
    let (s, status) = app
        .run(
            "ops",
            "query_read_status",
            json!({"group_chat_id": OPS, "process_query_key": key}),
        )
        .await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["send_status"], "SUCCESS");
    let (s, recall) = app
        .run(
            "ops",
            "recall_messages",
            json!({"group_chat_id": OPS, "process_query_keys": [key]}),
        )
        .await;
    assert_eq!(s, 200, "{recall}");
    assert_eq!(recall["recalled"], json!([key]));
    assert!(app.sim.messages()[0].recalled);
}

#[tokio::test]
async fn send_to_users_reports_unknown_users() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = app
        .run(
            "ops",
            "send_to_users",
            json!({"user_ids": ["manager1234", "ghost"], "msg_type": "text", "content": "1:1"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["invalid_user_ids"], json!(["ghost"]));
}

#[tokio::test]
async fn webhook_connection_sends_with_mentions() {
    let app = spawn_app().await;
    app.create_webhook_connection("hook").await;
    let (s, b) = app
        .run(
            "hook",
            "webhook_send",
            json!({"msg_type": "text", "content": "db down", "at_mobiles": ["13800000000"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let m = &app.sim.messages()[0];
    assert_eq!(m.api, "webhook");
    assert_eq!(m.at.as_ref().unwrap()["atMobiles"], json!(["13800000000"]));
    // An app-robot action on a webhook connection is refused before anything is sent.
    let (s, b) = app
        .run(
            "hook",
            "send_text",
            json!({"group_chat_id": OPS, "content": "x"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["field"], "action");
    assert_eq!(app.sim.messages().len(), 1);
}

#[tokio::test]
async fn long_text_is_split_into_numbered_parts_in_order() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let para = "x".repeat(8000);
    let content = format!("{para}\n\n{para}\n\n{para}");
    let (s, b) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": content}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["parts"].as_array().map(Vec::len), Some(3), "{b}");
    let texts: Vec<String> = app
        .sim
        .messages()
        .iter()
        .map(|m| {
            m.msg_param.as_ref().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts.len(), 3);
    for (i, t) in texts.iter().enumerate() {
        assert!(
            t.starts_with(&format!("({}/3)", i + 1)),
            "part {i}: {}",
            &t[..10]
        );
    }
}

#[tokio::test]
async fn split_false_over_the_limit_fails_and_sends_nothing() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "y".repeat(20_000), "split": false}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["field"], "content");
    assert!(app.sim.messages().is_empty());
}

#[tokio::test]
async fn transient_failures_are_retried_then_delivered_once() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    app.sim.add_fault(FaultSpec {
        route: RouteName::GroupSend,
        kind: FaultKind::ServerError,
        count: Some(1),
        probability: None,
        delay_ms: None,
    });
    app.sim.add_fault(FaultSpec {
        route: RouteName::GroupSend,
        kind: FaultKind::QpsLimit,
        count: Some(1),
        probability: None,
        delay_ms: None,
    });
    let (s, b) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "eventually"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(app.sim.messages().len(), 1);
}

#[tokio::test]
async fn a_webhook_message_without_the_robots_keyword_is_refused_before_sending() {
    let app = spawn_app().await;
    let (s, b) = app
        .post(
            "/v1/connections",
            json!({"name": "kw", "kind": "webhook_robot", "access_token": dingtalk_sim::SANDBOX_KEYWORD_WEBHOOK_TOKEN, "keywords": ["alert"]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .run(
            "kw",
            "webhook_send",
            json!({"msg_type": "text", "content": "disk full"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "content");
    assert!(app.sim.messages().is_empty());
    let (s, b) = app
        .run(
            "kw",
            "webhook_send",
            json!({"msg_type": "text", "content": "alert: disk full"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(app.sim.messages().len(), 1);
}

/// Inputs past a few hundred kilobytes are parsed, hashed and validated on a blocking thread;
/// they must behave as small ones do: sent, refused with the field named, replayed by key.
#[tokio::test]
async fn large_files_take_the_same_paths_as_small_ones() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let mut pdf = b"%PDF-1.4 ".to_vec();
    pdf.resize(1024 * 1024, b'x');
    let url = format!("{}/v1/connections/ops/actions/send_file", app.base);

    let send = async |name: &str| {
        let file = json!({"name": name, "content_base64": b64(&pdf)});
        app.run(
            "ops",
            "send_file",
            json!({"group_chat_id": OPS, "file": file}),
        )
        .await
    };
    let (status, body) = send("big.pdf").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.sim.messages()[0].msg_key.as_deref(), Some("sampleFile"));
    let (status, body) = send("big.bin").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "file.name", "{body}");

    let form = reqwest::multipart::Form::new()
        .text("group_chat_id", OPS)
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf.clone())
                .file_name("form.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let (status, body) = app.run_form("ops", "send_file", form).await;
    assert_eq!(status, 200, "{body}");

    // Queued with a key: hashed off the async threads; the repeat finds the first.
    let queue = async |name: &str| {
        let file = json!({"name": name, "content_base64": b64(&pdf)});
        let resp = app
            .http
            .post(&url)
            .bearer_auth(common::TOKEN)
            .header("Prefer", "respond-async")
            .header("Idempotency-Key", "big-1")
            .json(&json!({"group_chat_id": OPS, "file": file}))
            .send()
            .await
            .unwrap();
        common::into_parts(resp).await
    };
    let (first, queued) = queue("keyed.pdf").await;
    let (again, repeat) = queue("keyed.pdf").await;
    assert_eq!((first, again), (202, 202), "{queued} {repeat}");
    assert!(queued["delivery_id"].is_string(), "{queued}");
    assert_eq!(
        queued["delivery_id"], repeat["delivery_id"],
        "the repeat answers the first delivery"
    );
    // The same key with another file is refused, not a second send.
    let (status, body) = queue("other.pdf").await;
    assert_eq!(status, 422, "{body}");
}
