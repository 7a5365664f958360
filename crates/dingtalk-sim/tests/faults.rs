//! Scripted faults (`POST /_sim/faults`, docs/design.md §4), each answered in the API's own dialect.

mod common;

use std::time::{Duration, Instant};

use common::{assert_new_error, json_of, start};
use dingtalk_sim::{
    FaultKind, FaultSpec, RouteName, SANDBOX_KEYWORD_WEBHOOK_TOKEN, SANDBOX_OPS_GROUP,
};
use reqwest::StatusCode;
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

async fn send(ctx: &common::Ctx, token: &str) -> (StatusCode, serde_json::Value) {
    ctx.send_msg(
        token,
        SANDBOX_OPS_GROUP,
        "sampleText",
        json!({"content": "x"}),
    )
    .await
}

#[tokio::test]
async fn new_api_faults_use_new_api_codes_for_the_next_n_requests() {
    let ctx = start().await;
    let token = ctx.token().await;
    ctx.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::QpsLimit, 1));
    ctx.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::ServerError, 1));
    ctx.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::TokenInvalid, 2));
    let (s, b) = send(&ctx, &token).await;
    assert_new_error(s, &b, 403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi");
    let (s, b) = send(&ctx, &token).await;
    assert_new_error(s, &b, 500, "system.error");
    for _ in 0..2 {
        let (s, b) = send(&ctx, &token).await;
        assert_new_error(s, &b, 400, "InvalidAuthentication");
    }
    let (s, b) = send(&ctx, &token).await;
    assert_eq!(s, StatusCode::OK, "faults are used up: {b}");
    let stats = ctx.sim.stats();
    assert_eq!(stats.faulted, 4);
    assert_eq!(stats.accepted, 1);
    assert_eq!(
        ctx.sim.messages().len(),
        1,
        "faulted requests are not accepted"
    );
}

#[tokio::test]
async fn old_api_faults_use_errcodes() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    let body = json!({"msgtype": "text", "text": {"content": "alert"}});
    ctx.sim
        .add_fault(fault(RouteName::WebhookSend, FaultKind::QpsLimit, 1));
    ctx.sim
        .add_fault(fault(RouteName::WebhookSend, FaultKind::ServerError, 1));
    ctx.sim
        .add_fault(fault(RouteName::WebhookSend, FaultKind::TokenInvalid, 1));
    assert_eq!(ctx.webhook_raw(&q, body.clone()).await["errcode"], 660026);
    assert_eq!(
        ctx.webhook_raw(&q, body.clone()).await,
        json!({"errcode": -1, "errmsg": "系统繁忙"})
    );
    assert_eq!(ctx.webhook_raw(&q, body.clone()).await["errcode"], 300005);
    assert_eq!(
        ctx.webhook_raw(&q, body).await["errcode"],
        0,
        "a fault does not lock the robot out"
    );

    let token = ctx.token().await;
    ctx.sim
        .add_fault(fault(RouteName::MediaUpload, FaultKind::QpsLimit, 1));
    ctx.sim
        .add_fault(fault(RouteName::MediaUpload, FaultKind::TokenInvalid, 1));
    for want in [90018, 40014] {
        let form = reqwest::multipart::Form::new().text("type", "image").part(
            "media",
            reqwest::multipart::Part::bytes(vec![1]).file_name("a.png"),
        );
        let resp = ctx
            .http
            .post(ctx.url(&format!("/media/upload?access_token={token}")))
            .multipart(form)
            .send()
            .await
            .expect("request");
        let (s, b) = json_of(resp).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["errcode"], want);
    }
}

#[tokio::test]
async fn token_route_faults() {
    let ctx = start().await;
    ctx.sim
        .add_fault(fault(RouteName::AuthToken, FaultKind::ServerError, 1));
    let (s, b) = ctx
        .post_json(
            "/v1.0/oauth2/accessToken",
            None,
            json!({"appKey": dingtalk_sim::SANDBOX_APP_KEY, "appSecret": dingtalk_sim::SANDBOX_APP_SECRET}),
        )
        .await;
    assert_new_error(s, &b, 500, "system.error");
    ctx.token().await;
}

#[tokio::test]
async fn drop_closes_the_connection_without_a_response() {
    let ctx = start().await;
    let token = ctx.token().await;
    ctx.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::Drop, 1));
    let err = ctx
        .http
        .post(ctx.url("/v1.0/robot/groupMessages/send"))
        .header("x-acs-dingtalk-access-token", &token)
        .json(&json!({}))
        .send()
        .await
        .expect_err("no response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let (s, b) = send(&ctx, &token).await;
    assert_eq!(s, StatusCode::OK, "the next request works: {b}");
}

#[tokio::test]
async fn delay_waits_then_answers_normally() {
    let ctx = start().await;
    let token = ctx.token().await;
    ctx.sim
        .add_fault(FaultSpec::delay_next(RouteName::GroupSend, 1, 300));
    let started = Instant::now();
    let (s, b) = send(&ctx, &token).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(s, StatusCode::OK, "{b}");
    let started = Instant::now();
    send(&ctx, &token).await;
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(ctx.sim.stats().faulted, 0, "a delay is not a failure");
}

#[tokio::test]
async fn probability_faults_apply_until_cleared() {
    let ctx = start().await;
    let token = ctx.token().await;
    ctx.sim.set_limits(dingtalk_sim::Limits {
        app_api_qps: 0,
        ..Default::default()
    });
    let resp = ctx
        .http
        .post(ctx.url("/_sim/faults"))
        .json(&json!({"route": "robot.group_send", "kind": "server_error", "probability": 1.0}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::CREATED);
    for _ in 0..5 {
        assert_eq!(
            send(&ctx, &token).await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    let resp = ctx
        .http
        .delete(ctx.url("/_sim/faults"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(send(&ctx, &token).await.0, StatusCode::OK);

    // p = 0.5 over 200 requests: both outcomes occur (failure odds ~1e-60).
    ctx.sim.add_fault(FaultSpec {
        route: RouteName::GroupSend,
        kind: FaultKind::ServerError,
        count: None,
        probability: Some(0.5),
        delay_ms: None,
    });
    let mut failed = 0;
    for _ in 0..200 {
        if send(&ctx, &token).await.0 != StatusCode::OK {
            failed += 1;
        }
    }
    assert!((40..=160).contains(&failed), "{failed} of 200 failed");
    ctx.sim.clear_faults();
}

#[tokio::test]
async fn bad_fault_specs_are_rejected() {
    let ctx = start().await;
    for body in [
        json!({"route": "robot.nope", "kind": "drop", "count": 1}),
        json!({"route": "robot.group_send", "kind": "explode", "count": 1}),
        json!({"route": "robot.group_send", "kind": "drop", "probability": 2.0}),
    ] {
        let resp = ctx
            .http
            .post(ctx.url("/_sim/faults"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    // Faults only affect their own route.
    ctx.sim
        .add_fault(fault(RouteName::GroupQuery, FaultKind::ServerError, 1));
    let token = ctx.token().await;
    assert_eq!(send(&ctx, &token).await.0, StatusCode::OK);
    let listed: serde_json::Value = ctx
        .http
        .get(ctx.url("/_sim/faults"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed,
        json!([{"route": "robot.group_query", "kind": "server_error", "count": 1}])
    );
}
