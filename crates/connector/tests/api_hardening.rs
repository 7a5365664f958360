//! What an outside probe found (issue 8): every answer in the one error shape, labels that
//! cannot grow without bound, and parsing that accepts exactly one JSON document.

mod common;

use common::{OPS, TOKEN, into_parts, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn invented_methods_share_one_metric_label() {
    let app = spawn_app().await;
    for i in 0..5 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let resp = app.request(method, "/v1/connections", None).await;
        let (status, body) = into_parts(resp).await;
        assert_eq!(status, 405, "{body}");
    }
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("INVENTED"), "{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_in_the_error_shape_with_allow() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let resp = app
        .request(Method::GET, "/v1/connections/ops/actions/send_text", None)
        .await;
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = into_parts(resp).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    assert_eq!(body["error"]["retryable"], false, "{body}");
    assert_eq!(allow.as_deref(), Some("POST"));
}

/// Raw bytes to an action route, as JSON.
async fn post_raw(app: &common::TestApp, path: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    into_parts(resp).await
}

#[tokio::test]
async fn a_body_must_be_exactly_one_json_value_without_repeated_keys() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let path = "/v1/connections/ops/actions/send_text";
    let one = json!({"group_chat_id": OPS, "content": "first"}).to_string();
    for (body, field) in [
        (format!("{one}{one}"), "body"),
        (format!("{one}garbage"), "body"),
        (
            format!(r#"{{"group_chat_id":"{OPS}","content":"a","content":"b"}}"#),
            "content",
        ),
        (
            format!(r#"{{"group_chat_id":"{OPS}","content":"a","at_mobiles":["1","x\u0000"]}}"#),
            "at_mobiles[1]",
        ),
    ] {
        let (status, answer) = post_raw(&app, path, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    // Also when the connection is created.
    let (status, answer) = post_raw(
        &app,
        "/v1/connections",
        r#"{"name":"a","name":"b","app_key":"k","app_secret":"s","robot_code":"r"}"#,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("name")),
        "{answer}"
    );
    assert!(app.sim.messages().is_empty());
}

#[tokio::test]
async fn connection_names_of_only_dots_are_refused() {
    let app = spawn_app().await;
    for name in [".", "..", "..."] {
        let (status, body) = app
            .post(
                "/v1/connections",
                json!({"name": name, "app_key": "k", "app_secret": "s", "robot_code": "r"}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("name")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("only dots"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn oversize_bodies_and_content_are_refused_by_size_first() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let send_text = "/v1/connections/ops/actions/send_text";
    // Over the route's body limit: 413, nothing read into a plan.
    let huge = json!({"group_chat_id": OPS, "content": "a".repeat(2 * 1024 * 1024)}).to_string();
    let (status, body) = post_raw(&app, send_text, &huge).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    // Under it, but more than 20 messages' worth: refused by size, naming content.
    let big = json!({"group_chat_id": OPS, "content": "a".repeat(900 * 1024)}).to_string();
    let started = std::time::Instant::now();
    let (status, body) = post_raw(&app, send_text, &big).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("content")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 20 messages"),
        "{body}"
    );
    println!("900 KiB refused in {:?}", started.elapsed());
    // Routes without files take far less.
    let (status, body) = post_raw(
        &app,
        "/v1/connections",
        &json!({"name": "x", "app_key": "k", "app_secret": "s", "robot_code": "r",
                "description": "d".repeat(100_000)})
        .to_string(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(app.sim.messages().is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let dir = app.stop().await;
    let mut seen = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("dtc.db") || name == "master.key" {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
            seen += 1;
        }
    }
    assert!(seen >= 2, "the database and the key were found");
}
