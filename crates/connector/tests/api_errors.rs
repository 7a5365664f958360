//! Every error class of the API, in the one error shape of docs/design.md §6.

mod common;

use common::{OPS, TOKEN, spawn_app};
use dingtalk_sim::{FaultKind, FaultSpec, RouteName};
use reqwest::Method;
use serde_json::json;

fn fault(route: RouteName, kind: FaultKind, count: u32) -> FaultSpec {
    FaultSpec {
        route,
        kind,
        count: Some(count),
        probability: None,
        delay_ms: None,
    }
}

#[tokio::test]
async fn v1_routes_require_the_bearer_token() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/v1/connections"),
        (Method::GET, "/v1/actions"),
        (Method::POST, "/v1/connections/x/actions/send_text"),
    ] {
        let resp = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let (s, b) = common::into_parts(resp).await;
        assert_eq!(s, 401, "{path}");
        assert_eq!(b["error"]["code"], "unauthorized");
        let resp = app
            .http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(format!("{TOKEN}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path} with a wrong token");
    }
    for path in ["/healthz", "/metrics", "/v1/openapi.json"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} is public");
    }
}

#[tokio::test]
async fn connections_crud_by_id_or_name() {
    let app = spawn_app().await;
    let created = app.create_app_connection("ops").await;
    let id = created["id"].as_str().unwrap();
    assert!(created.get("app_secret").is_none());
    let (s, by_id) = app.get(&format!("/v1/connections/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(by_id["name"], "ops");
    let (s, dup) = app
        .post(
            "/v1/connections",
            json!({"name": "ops", "app_key": "k", "app_secret": "s", "robot_code": "r"}),
        )
        .await;
    assert_eq!(s, 409, "{dup}");
    assert_eq!(dup["error"]["code"], "conflict");
    let resp = app
        .request(
            Method::PATCH,
            "/v1/connections/ops",
            Some(json!({"description": "Ops alerts"})),
        )
        .await;
    let (s, patched) = common::into_parts(resp).await;
    assert_eq!(
        (s, patched["description"].as_str()),
        (200, Some("Ops alerts"))
    );
    let (s, list) = app.get("/v1/connections").await;
    assert_eq!((s, list.as_array().unwrap().len()), (200, 1));
    let resp = app
        .request(Method::DELETE, "/v1/connections/ops", None)
        .await;
    assert_eq!(resp.status(), 204);
    let (s, gone) = app.get("/v1/connections/ops").await;
    assert_eq!(
        (s, gone["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn connection_test_says_plainly_what_is_wrong() {
    let app = spawn_app().await;
    app.create_app_connection("good").await;
    let (s, b) = app.post("/v1/connections/good/test", json!({})).await;
    assert_eq!((s, b["ok"].as_bool()), (200, Some(true)), "{b}");
    app.post("/v1/connections", json!({"name": "bad", "app_key": dingtalk_sim::SANDBOX_APP_KEY, "app_secret": "wrong-secret", "robot_code": "r"}))
        .await;
    let (s, b) = app.post("/v1/connections/bad/test", json!({})).await;
    assert_eq!((s, b["ok"].as_bool()), (200, Some(false)), "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("AppKey/AppSecret"),
        "{b}"
    );
    assert_eq!(b["dingtalk"]["code"], "invalidClientIdOrSecret");
    app.create_webhook_connection("hook").await;
    let (_, b) = app.post("/v1/connections/hook/test", json!({})).await;
    assert_eq!(b["ok"], true, "{b}");
    assert!(app.sim.messages().is_empty(), "a test sends no message");
}

#[tokio::test]
async fn dingtalk_rejection_is_an_error_with_dingtalks_code_and_request_id() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": "cidNoSuchGroup==", "content": "x"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let e = &b["error"];
    assert_eq!(e["code"], "dingtalk_rejected");
    assert_eq!(e["retryable"], false);
    assert_eq!(e["dingtalk"]["code"], "invalid.openConversationId");
    assert_eq!(e["dingtalk"]["http_status"], 400);
    // Explained in English, whatever language DingTalk's own message is in.
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the group chat id (openConversationId) is not valid or unknown"),
        "{e}"
    );
    assert!(
        e["dingtalk"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
}

#[tokio::test]
async fn wrong_credentials_are_credentials_rejected() {
    let app = spawn_app().await;
    app.post("/v1/connections", json!({"name": "bad", "app_key": dingtalk_sim::SANDBOX_APP_KEY, "app_secret": "nope", "robot_code": dingtalk_sim::SANDBOX_APP_KEY}))
        .await;
    let (s, b) = app
        .run(
            "bad",
            "send_text",
            json!({"group_chat_id": OPS, "content": "x"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "credentials_rejected");
    assert_eq!(b["error"]["dingtalk"]["code"], "invalidClientIdOrSecret");
}

#[tokio::test]
async fn dingtalk_outage_after_retries_is_a_retryable_502() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    app.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::ServerError, 10));
    let (s, b) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "x"}),
        )
        .await;
    assert_eq!(s, 502, "{b}");
    assert_eq!(b["error"]["code"], "dingtalk_unavailable");
    assert_eq!(b["error"]["retryable"], true);
    assert_eq!(b["error"]["dingtalk"]["code"], "system.error");
    assert!(app.sim.messages().is_empty());
}

#[tokio::test]
async fn persistent_throttling_is_a_429_with_retry_after() {
    let app = spawn_app_fast_retries().await;
    app.create_app_connection("ops").await;
    app.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::QpsLimit, 10));
    let resp = app
        .request(
            Method::POST,
            "/v1/connections/ops/actions/send_text",
            Some(json!({"group_chat_id": OPS, "content": "x"})),
        )
        .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, b) = common::into_parts(resp).await;
    assert_eq!(b["error"]["code"], "dingtalk_throttled");
}

async fn spawn_app_fast_retries() -> common::TestApp {
    common::spawn_app_with(|s| s.sync_attempts = 1).await
}

#[tokio::test]
async fn unknown_action_and_connection_are_404() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = app.run("ops", "send_fax", json!({})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = app
        .run(
            "nope",
            "send_text",
            json!({"group_chat_id": OPS, "content": "x"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app.get("/v1/actions/send_fax").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn metrics_count_sends_by_action_and_outcome() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    app.run(
        "ops",
        "send_text",
        json!({"group_chat_id": OPS, "content": "x"}),
    )
    .await;
    app.run(
        "ops",
        "send_text",
        json!({"group_chat_id": "cidNoSuchGroup==", "content": "x"}),
    )
    .await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("dtc_sends_total{action=\"send_text\",outcome=\"delivered\"}"),
        "{text}"
    );
    assert!(
        text.contains("dtc_sends_total{action=\"send_text\",outcome=\"rejected\"}"),
        "{text}"
    );
    assert!(
        text.contains("dtc_dingtalk_errors_total{code=\"invalid.openConversationId\"}"),
        "{text}"
    );
    assert!(
        text.contains("dtc_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // The two sends' log rows are written behind the answers; their commits show once done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("dtc_delivery_log_commits_total")
            && text.contains("dtc_delivery_log_rows_total")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery log metrics: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unknown_routes_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let (s, b) = app.get("/v2/nothing").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
}
