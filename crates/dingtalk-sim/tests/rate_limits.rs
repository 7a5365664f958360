//! App QPS limit (docs/dingtalk-api.md §5): at most 20 requests per app per API in any 1-second
//! window, then HTTP 403 `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`; media upload answers
//! errcode 90018. Stats count throttled requests and the peak per window.

mod common;

use std::time::Duration;

use common::{assert_new_error, start};
use dingtalk_sim::{Limits, SANDBOX_APP_KEY, SANDBOX_OPS_GROUP};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_21st_request_in_a_second_is_403() {
    let ctx = start().await;
    let token = ctx.token().await;
    // 21 loopback requests take a few milliseconds, well inside one window.
    let mut statuses = Vec::new();
    for i in 0..21 {
        let (s, body) = ctx
            .send_msg(
                &token,
                SANDBOX_OPS_GROUP,
                "sampleText",
                json!({"content": format!("m{i}")}),
            )
            .await;
        if s != StatusCode::OK {
            assert_new_error(
                s,
                &body,
                403,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            );
            assert_eq!(
                body["message"],
                "您的企业应用调用钉钉开放平台当前接口的所有请求都被暂时禁用了"
            );
        }
        statuses.push(s);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        20
    );
    assert_eq!(statuses[20], StatusCode::FORBIDDEN);
    let stats = ctx.sim.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.accepted, 20);
    assert_eq!(
        stats.peak_qps[&format!("{SANDBOX_APP_KEY} robot.group_send")],
        21
    );
    assert_eq!(
        ctx.sim.messages().len(),
        20,
        "throttled requests are not accepted"
    );

    // Another API of the same app has its own quota.
    let (s, _) = ctx
        .post_json(
            "/v1.0/robot/oToMessages/batchSend",
            Some(&token),
            json!({"robotCode": SANDBOX_APP_KEY, "userIds": ["manager1234"], "msgKey": "sampleText", "msgParam": "{\"content\":\"x\"}"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    ctx.sim.advance_clock(Duration::from_millis(1001));
    let (s, body) = ctx
        .send_msg(
            &token,
            SANDBOX_OPS_GROUP,
            "sampleText",
            json!({"content": "later"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "a new second, a new quota: {body}");
}

#[tokio::test]
async fn media_upload_throttling_is_errcode_90018() {
    let ctx = start().await;
    ctx.sim.set_limits(Limits {
        app_api_qps: 1,
        ..Limits::default()
    });
    let token = ctx.token().await;
    let mut last = serde_json::Value::Null;
    for _ in 0..2 {
        let form = reqwest::multipart::Form::new().text("type", "image").part(
            "media",
            reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("a.png"),
        );
        let resp = ctx
            .http
            .post(ctx.url(&format!("/media/upload?access_token={token}")))
            .multipart(form)
            .send()
            .await
            .expect("request");
        let (status, body) = common::json_of(resp).await;
        assert_eq!(status, StatusCode::OK);
        last = body;
    }
    assert_eq!(last["errcode"], 90018);
}

#[tokio::test]
async fn zero_means_unlimited() {
    let ctx = start().await;
    ctx.sim.set_limits(Limits {
        app_api_qps: 0,
        ..Limits::default()
    });
    let token = ctx.token().await;
    for i in 0..60 {
        let (s, body) = ctx
            .send_msg(
                &token,
                SANDBOX_OPS_GROUP,
                "sampleText",
                json!({"content": format!("m{i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let stats = ctx.sim.stats();
    assert_eq!(stats.throttled, 0);
    assert_eq!(
        stats.peak_qps[&format!("{SANDBOX_APP_KEY} robot.group_send")],
        60
    );
}

#[tokio::test]
async fn limits_can_be_changed_over_http() {
    let ctx = start().await;
    let resp = ctx
        .http
        .post(ctx.url("/_sim/limits"))
        .json(&json!({"app_api_qps": 2, "webhook_per_minute": 5, "token_ttl_secs": 60}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let token = ctx.token().await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (s, _) = ctx
            .send_msg(
                &token,
                SANDBOX_OPS_GROUP,
                "sampleText",
                json!({"content": "x"}),
            )
            .await;
        codes.push(s.as_u16());
    }
    assert_eq!(codes, [200, 200, 403]);
    ctx.sim.advance_clock(Duration::from_secs(61));
    let (s, body) = ctx
        .send_msg(
            &token,
            SANDBOX_OPS_GROUP,
            "sampleText",
            json!({"content": "x"}),
        )
        .await;
    assert_new_error(s, &body, 400, "InvalidAuthentication");
}
