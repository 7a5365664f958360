//! The chat page in a real browser (headless Chromium over WebDriver), as a newcomer reads a
//! busy chat (issue 8): each column opens at its newest message, a refresh adds new messages
//! without rebuilding or jumping, a column you scrolled up in keeps its place, and an image
//! that cannot load says so in words. Screenshots land in `target/screenshots/`.

mod common;

use common::start;
use dingtalk_sim::{SANDBOX_DEV_GROUP, SANDBOX_OPS_GROUP};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::fantoccini::Client;

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script runs")
}

/// `(scrollTop, scrollHeight, clientHeight)` of a group's column.
async fn scroll_of(c: &Client, group: &str) -> (f64, f64, f64) {
    let v = js(
        c,
        &format!(
            "const l = document.querySelector('section[data-conversation=\"{group}\"] .messages');\
             return [l.scrollTop, l.scrollHeight, l.clientHeight];"
        ),
    )
    .await;
    let n = |i: usize| v[i].as_f64().unwrap();
    (n(0), n(1), n(2))
}

fn at_bottom((top, height, client): (f64, f64, f64)) -> bool {
    height - top - client < 41.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_chat_opens_at_the_newest_message_and_never_jumps() {
    let Some(browser) = testkit::Browser::start(1280, 900).await else {
        return;
    };
    let ctx = start().await;
    ctx.sim.set_limits(dingtalk_sim::Limits {
        app_api_qps: 0,
        ..dingtalk_sim::Limits::default()
    });
    let token = ctx.token().await;
    for n in 0..60 {
        ctx.send_text(&token, &format!("ops message {n:02}\nsecond line"))
            .await;
        ctx.send_msg(
            &token,
            SANDBOX_DEV_GROUP,
            "sampleText",
            json!({"content": format!("dev message {n:02}")}),
        )
        .await;
    }
    ctx.send_msg(
        &token,
        SANDBOX_DEV_GROUP,
        "sampleImageMsg",
        json!({"photoURL": "http://127.0.0.1:1/gone.png"}),
    )
    .await;
    let c = &browser.client;
    c.goto(&ctx.url("/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.screenshot("chat-page-opened").await;
    // Both columns open at their newest message.
    for group in [SANDBOX_OPS_GROUP, SANDBOX_DEV_GROUP] {
        let s = scroll_of(c, group).await;
        assert!(s.1 > s.2, "the column overflows: {s:?}");
        assert!(at_bottom(s), "{group} opens at the newest message: {s:?}");
    }
    // The broken image says so.
    let broken = js(
        c,
        "const b = document.querySelector('.broken-image'); return b && b.textContent;",
    )
    .await;
    assert!(
        broken
            .as_str()
            .is_some_and(|t| t.contains("could not be loaded")),
        "{broken}"
    );

    // Scroll Ops to its top, mark a message element, and let two refreshes pass with new
    // messages arriving in both groups.
    js(
        c,
        &format!(
            "const l = document.querySelector('section[data-conversation=\"{SANDBOX_OPS_GROUP}\"] .messages');\
             l.scrollTop = 0; l.dispatchEvent(new Event('scroll'));\
             l.querySelector('.msg').dataset.marked = 'yes'; return true;"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctx.send_text(&token, "new in ops").await;
    ctx.send_msg(
        &token,
        SANDBOX_DEV_GROUP,
        "sampleText",
        json!({"content": "new in dev"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    browser.screenshot("chat-page-after-refresh").await;
    let ops = scroll_of(c, SANDBOX_OPS_GROUP).await;
    assert_eq!(
        ops.0, 0.0,
        "the scrolled-up column keeps its place: {ops:?}"
    );
    let marked = js(
        c,
        "return !!document.querySelector('.msg[data-marked=\"yes\"]');",
    )
    .await;
    assert_eq!(
        marked,
        json!(true),
        "messages are updated in place, not rebuilt"
    );
    let texts = js(c, "return document.body.innerText;").await;
    let texts = texts.as_str().unwrap();
    assert!(texts.contains("new in ops") && texts.contains("new in dev"));
    let dev = scroll_of(c, SANDBOX_DEV_GROUP).await;
    assert!(
        at_bottom(dev),
        "a column at the bottom follows new messages: {dev:?}"
    );
    browser.close().await;
}
