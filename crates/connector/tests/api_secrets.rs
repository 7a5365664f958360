//! Secrets never appear in a response, a log line or a byte of the database file.

mod common;

use common::{OPS, spawn_app};
use reqwest::Method;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let c = Captured::default();
        let writer = c.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .init();
        c
    })
    .clone()
}

#[tokio::test]
async fn secrets_are_in_no_response_log_line_or_database_byte() {
    let logs = capture_logs();
    let app = spawn_app().await;
    let app_secret = dingtalk_sim::SANDBOX_APP_SECRET;
    let hook_token = dingtalk_sim::SANDBOX_WEBHOOK_TOKEN;
    let hook_secret = dingtalk_sim::SANDBOX_WEBHOOK_SECRET;
    let wrong_secret = "WrongSecretThatMustNeverLeak0123456789";
    let mut responses = Vec::new();

    responses.push(app.create_app_connection("ops").await.to_string());
    responses.push(app.create_webhook_connection("hook").await.to_string());
    let (_, b) = app
        .post("/v1/connections", json!({"name": "bad", "app_key": dingtalk_sim::SANDBOX_APP_KEY, "app_secret": wrong_secret, "robot_code": "x"}))
        .await;
    responses.push(b.to_string());
    // A type error on a secret field must not echo the value either.
    let (_, b) = app
        .post("/v1/connections", json!({"name": "typed", "app_key": "k", "app_secret": {"v": wrong_secret}, "robot_code": "r"}))
        .await;
    responses.push(b.to_string());
    for path in [
        "/v1/connections",
        "/v1/connections/ops",
        "/v1/connections/hook",
    ] {
        responses.push(app.get(path).await.1.to_string());
    }
    for name in ["ops", "bad", "hook"] {
        responses.push(
            app.post(&format!("/v1/connections/{name}/test"), json!({}))
                .await
                .1
                .to_string(),
        );
    }
    responses.push(
        app.run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "hi"}),
        )
        .await
        .1
        .to_string(),
    );
    responses.push(
        app.run(
            "bad",
            "send_text",
            json!({"group_chat_id": OPS, "content": "hi"}),
        )
        .await
        .1
        .to_string(),
    );
    responses.push(
        app.run(
            "hook",
            "webhook_send",
            json!({"msg_type": "text", "content": "hi"}),
        )
        .await
        .1
        .to_string(),
    );
    let resp = app
        .request(
            Method::PATCH,
            "/v1/connections/ops",
            Some(json!({"app_secret": app_secret})),
        )
        .await;
    responses.push(resp.text().await.unwrap());
    responses.push(
        app.http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );

    let db_path = app.database_url.trim_start_matches("sqlite://").to_owned();
    // Keep the directory: the database is inspected below.
    let _dir = app.stop().await;
    assert!(
        std::fs::metadata(&db_path).is_ok_and(|m| m.len() > 0),
        "the database file must exist to be checked"
    );

    for s in [app_secret, hook_token, hook_secret, wrong_secret] {
        for r in &responses {
            assert!(!r.contains(s), "a response contains a secret: {r}");
        }
        let log = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
        assert!(!log.is_empty(), "logs were captured");
        assert!(!log.contains(s), "a log line contains a secret");
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(format!("{db_path}{suffix}")) {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "the database file{suffix} contains a secret in clear text"
                );
            }
        }
    }
}
