//! Access tokens (docs/dingtalk-api.md §1) and how the new robot APIs reject bad ones (§1.4).

mod common;

use std::time::Duration;

use common::{Ctx, assert_new_error, json_of, start};
use dingtalk_sim::{SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_APP2_KEY, SANDBOX_APP2_SECRET};
use reqwest::StatusCode;
use serde_json::json;

async fn gettoken(ctx: &Ctx, query: &str) -> serde_json::Value {
    let resp = ctx
        .http
        .get(ctx.url(&format!("/gettoken?{query}")))
        .send()
        .await
        .expect("request");
    let (status, body) = json_of(resp).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "old API answers 200 even for errors"
    );
    body
}

#[tokio::test]
async fn access_token_is_32_hex_with_7200_seconds_and_gateway_headers() {
    let ctx = start().await;
    let resp = ctx
        .http
        .post(ctx.url("/v1.0/oauth2/accessToken"))
        .json(&json!({"appKey": SANDBOX_APP_KEY, "appSecret": SANDBOX_APP_SECRET}))
        .send()
        .await
        .expect("request");
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;charset=utf-8"
    );
    assert!(resp.headers().contains_key("x-acs-request-id"));
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["accessToken"].as_str().expect("accessToken");
    assert_eq!(token.len(), 32);
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(body["expireIn"], 7200);
    assert!(body.get("code").is_none(), "success has no code: {body}");
}

#[tokio::test]
async fn same_token_while_valid_and_renewed_by_asking_again() {
    let ctx = start().await;
    let first = ctx.token().await;
    ctx.sim.advance_clock(Duration::from_secs(7000));
    let second = ctx.token().await;
    assert_eq!(first, second, "a valid token is returned again");
    // Asking again renewed it: 7000 s later it is still valid (14000 s after first issue).
    ctx.sim.advance_clock(Duration::from_secs(7000));
    let (status, body) = ctx
        .send_msg(
            &first,
            dingtalk_sim::SANDBOX_OPS_GROUP,
            "sampleText",
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn expired_token_is_rejected_and_a_new_one_is_issued() {
    let ctx = start().await;
    let old = ctx.token().await;
    ctx.sim.advance_clock(Duration::from_secs(7201));
    let (status, body) = ctx
        .send_msg(
            &old,
            dingtalk_sim::SANDBOX_OPS_GROUP,
            "sampleText",
            json!({"content": "x"}),
        )
        .await;
    assert_new_error(status, &body, 400, "InvalidAuthentication");
    assert_eq!(body["message"], "不合法的access_token");
    let fresh = ctx.token().await;
    assert_ne!(old, fresh);
}

#[tokio::test]
async fn gettoken_and_access_token_share_one_token() {
    let ctx = start().await;
    let body = gettoken(
        &ctx,
        &format!("appkey={SANDBOX_APP_KEY}&appsecret={SANDBOX_APP_SECRET}"),
    )
    .await;
    assert_eq!(body["errcode"], 0);
    assert_eq!(body["errmsg"], "ok");
    assert_eq!(body["expires_in"], 7200);
    let old_style = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    assert_eq!(ctx.token().await, old_style);
    // And the old-style token authenticates new-style calls.
    ctx.send_text(&old_style, "from a gettoken token").await;
}

#[tokio::test]
async fn gettoken_errors_are_http_200_with_errcode() {
    let ctx = start().await;
    let bad = gettoken(&ctx, &format!("appkey={SANDBOX_APP_KEY}&appsecret=wrong")).await;
    assert_eq!(
        bad,
        json!({"errcode": 40096, "errmsg": "不合法的appKey或appSecret"})
    );
    let missing = gettoken(&ctx, &format!("appkey={SANDBOX_APP_KEY}")).await;
    assert_eq!(
        missing,
        json!({"errcode": 40035, "errmsg": "缺少参数 corpid or appkey"})
    );
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_id_or_secret() {
    let ctx = start().await;
    let (status, body) = ctx
        .post_json(
            "/v1.0/oauth2/accessToken",
            None,
            json!({"appKey": SANDBOX_APP_KEY, "appSecret": SANDBOX_APP2_SECRET}),
        )
        .await;
    assert_new_error(status, &body, 400, "invalidClientIdOrSecret");
    assert_eq!(body["message"], "无效的clientId或者clientSecret");
    let rid = body["requestid"].as_str().expect("requestid");
    let parts: Vec<&str> = rid.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert_eq!(rid, rid.to_uppercase());
}

#[tokio::test]
async fn form_body_is_missingbody_and_broken_json_is_invalidbody() {
    let ctx = start().await;
    let resp = ctx
        .http
        .post(ctx.url("/v1.0/oauth2/accessToken"))
        .form(&[
            ("appKey", SANDBOX_APP_KEY),
            ("appSecret", SANDBOX_APP_SECRET),
        ])
        .send()
        .await
        .expect("request");
    let (status, body) = json_of(resp).await;
    assert_new_error(status, &body, 400, "Missingbody");

    let resp = ctx
        .http
        .post(ctx.url("/v1.0/oauth2/accessToken"))
        .send()
        .await
        .expect("request");
    let (status, body) = json_of(resp).await;
    assert_new_error(status, &body, 400, "Missingbody");

    let resp = ctx
        .http
        .post(ctx.url("/v1.0/oauth2/accessToken"))
        .header("content-type", "application/json")
        .body("{\"appKey\":")
        .send()
        .await
        .expect("request");
    let (status, body) = json_of(resp).await;
    assert_new_error(status, &body, 400, "Invalidbody");
}

#[tokio::test]
async fn robot_api_needs_the_token_header() {
    let ctx = start().await;
    let token = ctx.token().await;
    let body = json!({"robotCode": SANDBOX_APP_KEY, "openConversationId": dingtalk_sim::SANDBOX_OPS_GROUP,
                      "msgKey": "sampleText", "msgParam": "{\"content\":\"x\"}"});
    let (status, resp) = ctx
        .post_json("/v1.0/robot/groupMessages/send", None, body.clone())
        .await;
    assert_new_error(status, &resp, 400, "AuthenticationFailed.MissingParameter");
    assert_eq!(resp["message"], "缺少参数：x-acs-dingtalk-access-token");

    // A token in the query string or as a bearer token does not count.
    let resp = ctx
        .http
        .post(ctx.url(&format!(
            "/v1.0/robot/groupMessages/send?access_token={token}"
        )))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let (status, resp) = json_of(resp).await;
    assert_new_error(status, &resp, 400, "AuthenticationFailed.MissingParameter");

    let (status, resp) = ctx
        .group_send("0123456789abcdef0123456789abcdef", body)
        .await;
    assert_new_error(status, &resp, 400, "InvalidAuthentication");
}

#[tokio::test]
async fn each_app_gets_its_own_token() {
    let ctx = start().await;
    let a = ctx.token().await;
    let b = ctx.token_for(SANDBOX_APP2_KEY, SANDBOX_APP2_SECRET).await;
    assert_ne!(a, b);
    assert_eq!(ctx.sim.stats().token_requests, 2);
}
