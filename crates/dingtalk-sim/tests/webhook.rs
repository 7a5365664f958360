//! Custom webhook robots, `POST /robot/send` (docs/dingtalk-api.md §4): always HTTP 200 with
//! errcode/errmsg; signing, keywords, required fields, msgUuid, size, 20/min then a lock-out.

mod common;

use std::time::Duration;

use common::{now_ms, sign, start, urlencode};
use dingtalk_sim::{
    SANDBOX_DEV_GROUP, SANDBOX_KEYWORD_WEBHOOK_TOKEN, SANDBOX_OPS_GROUP, SANDBOX_WEBHOOK_SECRET,
    SANDBOX_WEBHOOK_TOKEN,
};
use serde_json::{Value, json};

const OK: fn() -> Value = || json!({"errcode": 0, "errmsg": "ok"});

fn text(content: &str) -> Value {
    json!({"msgtype": "text", "text": {"content": content}})
}

#[tokio::test]
async fn signed_send_is_accepted_and_stored_with_at() {
    let ctx = start().await;
    let body = json!({
        "msgtype": "text",
        "text": {"content": "disk full @manager1234"},
        "at": {"atUserIds": ["manager1234"], "atMobiles": [], "isAtAll": false},
    });
    let resp = ctx
        .webhook_signed(
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
            now_ms(),
            body,
        )
        .await;
    assert_eq!(resp, OK());
    let msgs = ctx.sim.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.api, "webhook");
    assert_eq!(m.msgtype.as_deref(), Some("text"));
    assert_eq!(
        m.payload,
        Some(json!({"content": "disk full @manager1234"}))
    );
    assert_eq!(
        m.at.as_ref().expect("at")["atUserIds"],
        json!(["manager1234"])
    );
    assert_eq!(m.open_conversation_id.as_deref(), Some(SANDBOX_OPS_GROUP));
}

#[tokio::test]
async fn bad_or_missing_signature_and_stale_timestamp_are_310000() {
    let ctx = start().await;
    let ts = now_ms();
    let wrong = sign("SECnotthesecret", ts);
    let resp = ctx
        .webhook_raw(
            &format!(
                "access_token={SANDBOX_WEBHOOK_TOKEN}&timestamp={ts}&sign={}",
                urlencode(&wrong)
            ),
            text("x"),
        )
        .await;
    assert_eq!(resp, json!({"errcode": 310000, "errmsg": "sign not match"}));

    let resp = ctx
        .webhook_raw(&format!("access_token={SANDBOX_WEBHOOK_TOKEN}"), text("x"))
        .await;
    assert_eq!(
        resp,
        json!({"errcode": 310000, "errmsg": "invalid timestamp"})
    );

    let stale = ts - 3600 * 1000 - 60_000;
    let resp = ctx
        .webhook_signed(
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
            stale,
            text("x"),
        )
        .await;
    assert_eq!(
        resp,
        json!({"errcode": 310000, "errmsg": "invalid timestamp"})
    );

    // A sign that was not URL-encoded loses its '+' to form decoding, as on the real server.
    let mut t = ts;
    let raw = loop {
        let s = sign(SANDBOX_WEBHOOK_SECRET, t);
        if s.contains('+') {
            break s;
        }
        t += 1;
    };
    let resp = ctx
        .webhook_raw(
            &format!("access_token={SANDBOX_WEBHOOK_TOKEN}&timestamp={t}&sign={raw}"),
            text("x"),
        )
        .await;
    assert_eq!(resp["errmsg"], "sign not match");
    assert!(ctx.sim.messages().is_empty());
}

#[tokio::test]
async fn signature_follows_the_simulator_clock() {
    let ctx = start().await;
    ctx.sim.advance_clock(Duration::from_secs(2 * 3600));
    let resp = ctx
        .webhook_signed(
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
            now_ms(),
            text("x"),
        )
        .await;
    assert_eq!(resp["errmsg"], "invalid timestamp");
    let sim_now = ctx.sim_now_ms().await;
    let resp = ctx
        .webhook_signed(
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
            sim_now,
            text("x"),
        )
        .await;
    assert_eq!(resp, OK());
}

#[tokio::test]
async fn unknown_token_is_300005() {
    let ctx = start().await;
    let resp = ctx.webhook_raw("access_token=deadbeef", text("x")).await;
    assert_eq!(
        resp,
        json!({"errcode": 300005, "errmsg": "token is not exist"})
    );
    let resp = ctx.webhook_raw("", text("x")).await;
    assert_eq!(resp["errcode"], 300005);
}

#[tokio::test]
async fn keywords_must_appear_in_the_content() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    let resp = ctx.webhook_raw(&q, text("all good")).await;
    assert_eq!(
        resp,
        json!({"errcode": 310000, "errmsg": "keywords not in content"})
    );
    assert_eq!(ctx.webhook_raw(&q, text("alert: disk full")).await, OK());
    let md =
        json!({"msgtype": "markdown", "markdown": {"title": "alert", "text": "no kw in text"}});
    assert_eq!(
        ctx.webhook_raw(&q, md).await,
        OK(),
        "the markdown title counts"
    );
    let feed = json!({"msgtype": "feedCard", "feedCard": {"links": [
        {"title": "nothing", "messageURL": "https://e", "picURL": "https://e/p.png"}]}});
    assert_eq!(ctx.webhook_raw(&q, feed).await["errcode"], 310000);
    let msgs = ctx.sim.messages();
    assert_eq!(msgs.len(), 2);
    assert!(
        msgs.iter()
            .all(|m| m.open_conversation_id.as_deref() == Some(SANDBOX_DEV_GROUP))
    );
}

#[tokio::test]
async fn every_message_type_is_accepted() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    let bodies = [
        text("alert"),
        json!({"msgtype": "markdown", "markdown": {"title": "alert", "text": "# x"}}),
        json!({"msgtype": "link", "link": {"title": "alert", "text": "t", "messageUrl": "https://e"}}),
        json!({"msgtype": "actionCard", "actionCard": {"title": "alert", "text": "t", "singleTitle": "Go", "singleURL": "https://e"}}),
        json!({"msgtype": "actionCard", "actionCard": {"title": "alert", "text": "t", "btnOrientation": "1",
               "btns": [{"title": "A", "actionURL": "https://a"}, {"title": "B", "actionURL": "https://b"}]}}),
        json!({"msgtype": "feedCard", "feedCard": {"links": [{"title": "alert 1", "messageURL": "https://e", "picURL": "https://e/p.png"}]}}),
    ];
    for b in bodies {
        assert_eq!(ctx.webhook_raw(&q, b.clone()).await, OK(), "{b}");
    }
    assert_eq!(ctx.sim.messages().len(), 6);
}

#[tokio::test]
async fn missing_field_is_400402_naming_it() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    let resp = ctx
        .webhook_raw(
            &q,
            json!({"msgtype": "markdown", "markdown": {"text": "alert"}}),
        )
        .await;
    assert_eq!(resp["errcode"], 400402);
    assert_eq!(
        resp["errmsg"],
        "错误描述:参数 markdown --》 title 缺失，或者参数格式不正确; 解决方案:请填充上对应参数;"
    );
    let resp = ctx
        .webhook_raw(
            &q,
            json!({"msgtype": "link", "link": {"title": "alert", "text": "t"}}),
        )
        .await;
    assert_eq!(resp["errcode"], 400402);
    assert!(
        resp["errmsg"]
            .as_str()
            .expect("errmsg")
            .contains("messageUrl")
    );
    let resp = ctx
        .webhook_raw(
            &q,
            json!({"msgtype": "actionCard", "actionCard": {"title": "alert", "text": "t"}}),
        )
        .await;
    assert_eq!(resp["errcode"], 400402);
    let resp = ctx.webhook_raw(&q, json!({"msgtype": "text"})).await;
    assert_eq!(resp["errcode"], 400402);
}

#[tokio::test]
async fn bad_json_unsupported_type_and_too_long() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    let resp = ctx
        .webhook_raw(&q, json!({"text": {"content": "alert"}}))
        .await;
    assert_eq!(resp, json!({"errcode": 40035, "errmsg": "缺少参数 json"}));
    let raw = ctx
        .http
        .post(ctx.url(&format!("/robot/send?{q}")))
        .body("not json")
        .send()
        .await
        .expect("request");
    let (_, body) = common::json_of(raw).await;
    assert_eq!(body["errcode"], 40035);
    let resp = ctx
        .webhook_raw(
            &q,
            json!({"msgtype": "image", "image": {"picURL": "https://e/a.png"}}),
        )
        .await;
    assert_eq!(resp["errcode"], 400105);
    let resp = ctx
        .webhook_raw(&q, text(&format!("alert {}", "x".repeat(20_000))))
        .await;
    assert_eq!(
        resp,
        json!({"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"})
    );
    assert!(ctx.sim.messages().is_empty());
}

#[tokio::test]
async fn repeated_msg_uuid_is_ok_but_stored_once() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    let mut body = text("alert once");
    body["msgUuid"] = json!("7b1c2d3e-0000-4000-8000-000000000001");
    assert_eq!(ctx.webhook_raw(&q, body.clone()).await, OK());
    assert_eq!(ctx.webhook_raw(&q, body).await, OK());
    assert_eq!(ctx.sim.messages().len(), 1);
    assert_eq!(ctx.sim.stats().accepted, 1);
}

#[tokio::test]
async fn twenty_a_minute_then_locked_out_for_ten_minutes() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    for i in 0..20 {
        assert_eq!(
            ctx.webhook_raw(&q, text(&format!("alert {i}"))).await,
            OK(),
            "send {i}"
        );
    }
    let throttled = json!({"errcode": 660026, "errmsg": "sending too many messages per minute"});
    assert_eq!(ctx.webhook_raw(&q, text("alert 21")).await, throttled);
    // The minute passing does not help: the robot is locked out for 10 minutes.
    ctx.sim.advance_clock(Duration::from_secs(61));
    assert_eq!(ctx.webhook_raw(&q, text("alert 22")).await, throttled);
    ctx.sim.advance_clock(Duration::from_secs(8 * 60));
    assert_eq!(ctx.webhook_raw(&q, text("alert 23")).await, throttled);
    ctx.sim.advance_clock(Duration::from_secs(60));
    assert_eq!(ctx.webhook_raw(&q, text("alert 24")).await, OK());
    let stats = ctx.sim.stats();
    assert_eq!(stats.throttled, 3);
    assert_eq!(stats.rejected["660026"], 3);
    assert_eq!(stats.accepted, 21);
    assert_eq!(
        stats.webhook_peak_per_minute[SANDBOX_KEYWORD_WEBHOOK_TOKEN],
        21
    );
    // Other robots are not affected.
    let resp = ctx
        .webhook_signed(
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
            ctx.sim_now_ms().await,
            text("x"),
        )
        .await;
    assert_eq!(resp, OK());
}

#[tokio::test]
async fn sliding_minute_without_exceeding_never_locks() {
    let ctx = start().await;
    let q = format!("access_token={SANDBOX_KEYWORD_WEBHOOK_TOKEN}");
    for round in 0..3 {
        for i in 0..20 {
            assert_eq!(
                ctx.webhook_raw(&q, text(&format!("alert {round}/{i}")))
                    .await,
                OK()
            );
        }
        ctx.sim.advance_clock(Duration::from_secs(60));
    }
    assert_eq!(ctx.sim.stats().throttled, 0);
}
