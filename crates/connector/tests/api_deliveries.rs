//! Idempotency keys, async accepts and the delivery log through the API.

mod common;

use common::{OPS, TOKEN, spawn_app};
use serde_json::{Value, json};

async fn run_with(
    app: &common::TestApp,
    action: &str,
    input: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/v1/connections/ops/actions/{action}", app.base))
        .bearer_auth(TOKEN)
        .json(&input);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    common::into_parts(req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_return_the_first_result_without_sending_again() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let input = json!({"group_chat_id": OPS, "content": "only once"});
    let first = run_with(
        &app,
        "send_text",
        input.clone(),
        &[("Idempotency-Key", "job-42")],
    )
    .await;
    let second = run_with(&app, "send_text", input, &[("Idempotency-Key", "job-42")]).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first, second);
    assert_eq!(app.sim.messages().len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_422() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "a"}),
        &[("Idempotency-Key", "k1")],
    )
    .await;
    let (s, b) = run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "b"}),
        &[("Idempotency-Key", "k1")],
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "idempotency_conflict");
    assert_eq!(app.sim.messages().len(), 1);
}

#[tokio::test]
async fn a_failed_first_attempt_is_replayed_as_the_same_error() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let input = json!({"group_chat_id": "cidNoSuchGroup==", "content": "x"});
    let first = run_with(
        &app,
        "send_text",
        input.clone(),
        &[("Idempotency-Key", "k2")],
    )
    .await;
    let second = run_with(&app, "send_text", input, &[("Idempotency-Key", "k2")]).await;
    assert_eq!(first.0, 422);
    assert_eq!(first, second);
    assert_eq!(
        app.sim.stats().rejected.get("invalid.openConversationId"),
        Some(&1)
    );
}

#[tokio::test]
async fn respond_async_answers_202_with_a_delivery_id_that_the_log_shows() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "later"}),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let id = b["delivery_id"].as_str().unwrap();
    let (s, d) = app.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["action"], "send_text");
    assert_eq!(d["group_chat_id"], OPS);
    assert!(d["attempt_log"].is_array());
    let again = run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "later"}),
        &[("Prefer", "respond-async"), ("Idempotency-Key", "a1")],
    )
    .await;
    let replay = run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "later"}),
        &[("Prefer", "respond-async"), ("Idempotency-Key", "a1")],
    )
    .await;
    assert_eq!(again.1["delivery_id"], replay.1["delivery_id"]);
}

#[tokio::test]
async fn the_delivery_log_filters_by_status_connection_and_group() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "ok"}),
        &[],
    )
    .await;
    run_with(
        &app,
        "send_text",
        json!({"group_chat_id": "cidNoSuchGroup==", "content": "bad"}),
        &[],
    )
    .await;
    // Sync requests are logged just behind their answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (s, all) = app.get("/v1/deliveries?connection=ops").await;
        assert_eq!(s, 200, "{all}");
        if all["deliveries"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sync requests not logged: {all}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (_, failed) = app.get("/v1/deliveries?status=failed").await;
    let failed = failed["deliveries"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["last_error"]["dingtalk"]["code"],
        "invalid.openConversationId"
    );
    let (_, delivered) = app
        .get(&format!(
            "/v1/deliveries?connection=ops&group_chat_id={}",
            urlencode(OPS)
        ))
        .await;
    assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 1);
    let (s, b) = app.get("/v1/deliveries?status=lost").await;
    assert_eq!((s, b["error"]["field"].as_str()), (400, Some("status")));
    // A group chat alone: its deliveries through any connection.
    let (s, b) = app
        .get(&format!("/v1/deliveries?group_chat_id={}", urlencode(OPS)))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["deliveries"].as_array().unwrap().len(), 1);
    // Only a failed delivery can be retried.
    let id = failed[0]["id"].as_str().unwrap();
    let (s, b) = app
        .post(&format!("/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!((s, b["status"].as_str()), (202, Some("queued")), "{b}");
    let ok_id = delivered["deliveries"][0]["id"].as_str().unwrap();
    let (s, _) = app
        .post(&format!("/v1/deliveries/{ok_id}/retry"), json!({}))
        .await;
    assert_eq!(s, 409);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[tokio::test]
async fn an_async_delivery_is_sent_by_the_engine_and_its_result_logged() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (s, b) = run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "queued"}),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let id = b["delivery_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let d = loop {
        let (_, d) = app.get(&format!("/v1/deliveries/{id}")).await;
        if d["status"] == "delivered" {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(d["result"]["msg_key"], "sampleText");
    assert_eq!(d["attempts"], 1);
    assert_eq!(
        app.sim.messages()[0].msg_param.as_ref().unwrap()["content"],
        "queued"
    );
}

#[tokio::test]
async fn a_sync_request_over_the_quota_is_429_with_retry_after_and_nothing_sent() {
    let app = common::spawn_app_with(|s| s.sync_rate_wait_ms = 100).await;
    let (s, b) = app
        .post("/v1/connections", json!({"name": "ops", "app_key": dingtalk_sim::SANDBOX_APP_KEY, "app_secret": dingtalk_sim::SANDBOX_APP_SECRET, "robot_code": dingtalk_sim::SANDBOX_APP_KEY, "qps_quota": 1}))
        .await;
    assert_eq!(s, 201, "{b}");
    let first = run_with(
        &app,
        "send_text",
        json!({"group_chat_id": OPS, "content": "1"}),
        &[],
    )
    .await;
    assert_eq!(first.0, 200, "{}", first.1);
    let resp = app
        .http
        .post(format!("{}/v1/connections/ops/actions/send_text", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({"group_chat_id": OPS, "content": "2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, b) = common::into_parts(resp).await;
    assert_eq!(b["error"]["code"], "rate_limited");
    assert_eq!(app.sim.messages().len(), 1);
    assert_eq!(app.sim.stats().throttled, 0);
}

#[tokio::test]
async fn a_keyed_request_that_failed_for_now_is_finished_by_the_queue_and_replayed() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    app.sim.add_fault(dingtalk_sim::FaultSpec {
        route: dingtalk_sim::RouteName::GroupSend,
        kind: dingtalk_sim::FaultKind::ServerError,
        count: Some(3),
        probability: None,
        delay_ms: None,
    });
    let input = json!({"group_chat_id": OPS, "content": "keep trying"});
    let first = run_with(
        &app,
        "send_text",
        input.clone(),
        &[("Idempotency-Key", "k-retry")],
    )
    .await;
    assert_eq!(first.0, 502, "{}", first.1);
    assert!(
        first.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("queued as delivery")
    );
    let replay = replay_until_finished(&app, &input, "k-retry").await;
    assert_eq!(replay.0, 200, "{}", replay.1);
    assert_eq!(replay.1["msg_key"], "sampleText");
    assert_eq!(app.sim.messages().len(), 1, "sent once, by the queue");
}

/// Replays `input` with key `key` until the queue has finished the delivery.
async fn replay_until_finished(app: &common::TestApp, input: &Value, key: &str) -> (u16, Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = run_with(app, "send_text", input.clone(), &[("Idempotency-Key", key)]).await;
        if r.0 != 409 {
            return r;
        }
        assert_eq!(r.1["error"]["code"], "in_progress", "{}", r.1);
        assert!(std::time::Instant::now() < deadline, "never finished");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_keyed_request_the_queue_gives_up_on_is_replayed_as_the_queues_final_error() {
    let app = common::spawn_app_with(|s| s.delivery_max_attempts = 2).await;
    app.create_app_connection("ops").await;
    app.sim.add_fault(dingtalk_sim::FaultSpec {
        route: dingtalk_sim::RouteName::GroupSend,
        kind: dingtalk_sim::FaultKind::ServerError,
        count: None,
        probability: Some(1.0),
        delay_ms: None,
    });
    let input = json!({"group_chat_id": OPS, "content": "never accepted"});
    let first = run_with(
        &app,
        "send_text",
        input.clone(),
        &[("Idempotency-Key", "k-dead")],
    )
    .await;
    assert_eq!(first.0, 502, "{}", first.1);
    let (status, body) = replay_until_finished(&app, &input, "k-dead").await;
    // The queue's last attempt failed too: its error record, in the API's one shape.
    assert_eq!(status, 502, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "dingtalk_unavailable", "{body}");
    assert_eq!(error["retryable"], false, "the queue gave up: {body}");
    assert_eq!(error["dingtalk"]["code"], "system.error", "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{body}"
    );
    // Asked again, the same answer; and the log shows the same record.
    let again = run_with(&app, "send_text", input, &[("Idempotency-Key", "k-dead")]).await;
    assert_eq!(again, (status, body.clone()));
    let (_, log) = app.get("/v1/deliveries?status=failed").await;
    assert_eq!(log["deliveries"][0]["last_error"], body["error"]);
    assert!(app.sim.messages().is_empty());
}

#[tokio::test]
async fn sync_requests_are_in_the_log_once_the_server_has_stopped() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    for i in 0..20 {
        let (s, _) = run_with(
            &app,
            "send_text",
            json!({"group_chat_id": OPS, "content": format!("s{i}")}),
            &[],
        )
        .await;
        assert_eq!(s, 200);
    }
    let url = app.database_url.clone();
    let dir = app.stop().await;
    let store = connector::store::connect(&url).await.unwrap();
    let page = store
        .list_deliveries(&connector::store::DeliveryFilter {
            page: connector::store::LogPage {
                limit: 100,
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.deliveries.len(),
        20,
        "every answered sync request is logged"
    );
    assert!(
        page.deliveries
            .iter()
            .all(|d| d.status == connector::store::DeliveryStatus::Delivered)
    );
    drop(dir);
}
