//! The bad-input matrix: for every action, each required field missing, wrong types, empty
//! values, bad enums, bad URLs and oversize values give a 4xx naming the field, and the
//! simulator received nothing (not even a token request).

mod common;

use common::{OPS, spawn_app};
use serde_json::{Value, json};

fn base_inputs() -> Vec<(&'static str, Value)> {
    vec![
        ("send_text", json!({"group_chat_id": OPS, "content": "hi"})),
        (
            "send_markdown",
            json!({"group_chat_id": OPS, "subject": "s", "content": "c"}),
        ),
        (
            "send_link",
            json!({"group_chat_id": OPS, "subject": "s", "content": "c", "image_url": "https://e.com/p.png", "redirect_url": "https://e.com"}),
        ),
        (
            "send_image",
            json!({"group_chat_id": OPS, "image_url": "https://e.com/p.png"}),
        ),
        (
            "send_file",
            json!({"group_chat_id": OPS, "media_id": "@lADOxyz", "file_name": "a.pdf", "file_type": "pdf"}),
        ),
        (
            "send_action_card",
            json!({"group_chat_id": OPS, "subject": "s", "content": "c", "button_text": "Go", "redirect_url": "https://e.com"}),
        ),
        (
            "upload_media",
            json!({"media_type": "file", "file": {"name": "a.pdf", "content_base64": "JVBERi0="}}),
        ),
        (
            "query_read_status",
            json!({"group_chat_id": OPS, "process_query_key": "k=="}),
        ),
        (
            "recall_messages",
            json!({"group_chat_id": OPS, "process_query_keys": ["k=="]}),
        ),
        (
            "send_to_users",
            json!({"user_ids": ["manager1234"], "msg_type": "text", "content": "hi"}),
        ),
    ]
}

/// `(action, input, expected field)` for every bad case.
fn cases() -> Vec<(String, Value, String)> {
    let mut out = Vec::new();
    for (action, base) in base_inputs() {
        let obj = base.as_object().unwrap();
        for (field, value) in obj {
            // Missing.
            let mut missing = obj.clone();
            missing.remove(field);
            out.push((action.to_owned(), Value::Object(missing), field.clone()));
            // Wrong type.
            let mut wrong = obj.clone();
            wrong.insert(
                field.clone(),
                if value.is_string() {
                    json!(42)
                } else {
                    json!("not-this-type")
                },
            );
            out.push((action.to_owned(), Value::Object(wrong), field.clone()));
            // Empty string.
            if value.is_string() {
                let mut empty = obj.clone();
                empty.insert(field.clone(), json!(""));
                out.push((action.to_owned(), Value::Object(empty), field.clone()));
            }
        }
        // Unknown field.
        let mut extra = obj.clone();
        extra.insert("colour".into(), json!("red"));
        out.push((action.to_owned(), Value::Object(extra), "colour".into()));
    }
    let with = |action: &str, patch: Value| -> Value {
        let mut v = base_inputs()
            .into_iter()
            .find(|(a, _)| *a == action)
            .unwrap()
            .1;
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    let mut add = |action: &str, patch: Value, field: &str| {
        out.push((action.to_owned(), with(action, patch), field.to_owned()));
    };
    // Bad enums.
    add("send_file", json!({"file_type": "txt"}), "file_type");
    add("upload_media", json!({"media_type": "gif"}), "media_type");
    add("send_to_users", json!({"msg_type": "fax"}), "msg_type");
    // Bad URLs.
    add(
        "send_link",
        json!({"redirect_url": "javascript:alert(1)"}),
        "redirect_url",
    );
    add(
        "send_link",
        json!({"image_url": "ftp://e.com/p.png"}),
        "image_url",
    );
    add(
        "send_action_card",
        json!({"redirect_url": "not a url"}),
        "redirect_url",
    );
    add(
        "send_image",
        json!({"image_url": "file:///etc/passwd"}),
        "image_url",
    );
    // Oversize and counts.
    add(
        "send_text",
        json!({"content": "x".repeat(16_000), "split": false}),
        "content",
    );
    add(
        "send_markdown",
        json!({"content": "x".repeat(16_000), "split": false}),
        "content",
    );
    add(
        "send_link",
        json!({"content": "x".repeat(16_000)}),
        "content",
    );
    add(
        "send_to_users",
        json!({"user_ids": (0..21).map(|i| format!("u{i}")).collect::<Vec<_>>()}),
        "user_ids",
    );
    add(
        "recall_messages",
        json!({"process_query_keys": (0..21).map(|i| format!("k{i}")).collect::<Vec<_>>()}),
        "process_query_keys",
    );
    add(
        "upload_media",
        json!({"file": {"name": "a.pdf", "content_base64": "%%%not base64%%%"}}),
        "file.content_base64",
    );
    add(
        "upload_media",
        json!({"file": {"name": "a.exe", "content_base64": "AAAA"}}),
        "file.name",
    );
    out.push((
        "send_text".into(),
        json!({"group_chat_id": "cid with spaces", "content": "x"}),
        "group_chat_id".into(),
    ));
    out
}

#[tokio::test]
async fn every_bad_input_is_a_4xx_naming_the_field_and_nothing_is_sent() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let mut failures = Vec::new();
    let cases = cases();
    for (action, input, field) in &cases {
        let (status, body) = app.run("ops", action, input.clone()).await;
        let got = body["error"]["field"].as_str().unwrap_or("");
        let ok = (400..500).contains(&status) && got == field;
        if !ok {
            failures.push(format!(
                "{action} {input}: HTTP {status}, field {got:?}, want {field:?}: {}",
                body["error"]["message"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    let stats = app.sim.stats();
    assert_eq!(
        stats.token_requests, 0,
        "no token may be fetched for bad input"
    );
    assert_eq!(stats.accepted, 0);
    assert!(app.sim.messages().is_empty());
}

#[tokio::test]
async fn malformed_json_and_empty_bodies_are_named() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let resp = app
        .http
        .post(format!("{}/v1/connections/ops/actions/send_text", app.base))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, b) = common::into_parts(resp).await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("body")),
        "{b}"
    );
    let (s, b) = app.post("/v1/connections", json!({"app_key": "k"})).await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("name")),
        "{b}"
    );
}

#[tokio::test]
async fn the_nul_character_is_refused_naming_the_field_and_nothing_is_stored_or_sent() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "a\u{0}b"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("content")),
        "{b}"
    );
    let (s, b) = app
        .post(
            "/v1/connections",
            json!({"name": "n", "app_key": "k", "app_secret": "s", "robot_code": "r",
                   "description": "x\u{0}y"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("description")),
        "{b}"
    );
    let (s, _) = app.get("/v1/connections/a%00b").await;
    assert_eq!(s, 404);
    let (s, b) = app.get("/v1/deliveries?group_chat_id=a%00b").await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("group_chat_id")),
        "{b}"
    );
    assert!(app.sim.messages().is_empty());
}
