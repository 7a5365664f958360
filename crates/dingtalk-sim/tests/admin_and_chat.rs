//! Admin routes under `/_sim/` and the chat page at `/` (docs/design.md §4).

mod common;

use common::{json_of, now_ms, start};
use dingtalk_sim::{
    Fixture, ReceivedMessage, SANDBOX_DEV_GROUP, SANDBOX_OPS_GROUP, SANDBOX_WEBHOOK_SECRET,
    SANDBOX_WEBHOOK_TOKEN, Stats,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn messages_are_listed_oldest_first_filtered_and_cleared() {
    let ctx = start().await;
    let token = ctx.token().await;
    ctx.send_text(&token, "first").await;
    ctx.send_msg(
        &token,
        SANDBOX_DEV_GROUP,
        "sampleText",
        json!({"content": "second"}),
    )
    .await;
    let all: Vec<ReceivedMessage> = ctx
        .http
        .get(ctx.url("/_sim/messages"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(all.len(), 2);
    assert!(all[0].id < all[1].id);
    assert_eq!(
        all[0].msg_param.as_ref().expect("param")["content"],
        "first"
    );

    let raw: Value = ctx
        .http
        .get(ctx.url(&format!(
            "/_sim/messages?open_conversation_id={}",
            common::urlencode(SANDBOX_DEV_GROUP)
        )))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let only = raw.as_array().expect("array");
    assert_eq!(only.len(), 1);
    for field in [
        "id",
        "received_at",
        "api",
        "robot_code",
        "open_conversation_id",
        "msg_key",
        "msg_param",
        "process_query_key",
        "recalled",
    ] {
        assert!(only[0].get(field).is_some(), "missing {field}: {}", only[0]);
    }

    let resp = ctx
        .http
        .delete(ctx.url("/_sim/messages"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(ctx.sim.messages().is_empty());
}

#[tokio::test]
async fn stats_route_matches_the_handle() {
    let ctx = start().await;
    let token = ctx.token().await;
    ctx.send_text(&token, "x").await;
    ctx.send_msg(&token, SANDBOX_OPS_GROUP, "sampleText", json!({}))
        .await;
    let (status, body) = json_of(
        ctx.http
            .get(ctx.url("/_sim/stats"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let stats: Stats = serde_json::from_value(body.clone()).expect("Stats shape");
    assert_eq!(stats, ctx.sim.stats());
    assert_eq!(body["token_requests"], 1);
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"]["miss.param.contentOfText"], 1);
    assert_eq!(body["throttled"], 0);
    assert_eq!(
        body["peak_qps"]["dingsandbox0000000001 robot.group_send"],
        2
    );
}

#[tokio::test]
async fn clock_and_fixture_routes() {
    let ctx = start().await;
    let before = ctx.sim_now_ms().await;
    let resp = ctx
        .http
        .post(ctx.url("/_sim/clock"))
        .json(&json!({"advance_secs": 3600}))
        .send()
        .await
        .expect("request");
    let (s, body) = json_of(resp).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body["now_ms"].as_i64().expect("now") - before >= 3_600_000);
    let bad = ctx
        .http
        .post(ctx.url("/_sim/clock"))
        .json(&json!({"advance": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let fixture: Fixture = ctx
        .http
        .get(ctx.url("/_sim/fixture"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(fixture, Fixture::sandbox());
}

#[tokio::test]
async fn sandbox_fixture_round_trips_and_rejects_unknown_keys() {
    let sandbox = Fixture::sandbox();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fixture.json");
    std::fs::write(&path, sandbox.to_pretty_json()).expect("write");
    assert_eq!(Fixture::from_path(&path).expect("parses"), sandbox);
    assert_eq!(sandbox.apps[0].app_secret.len(), 64);
    assert!(
        sandbox.apps[0]
            .app_secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    );
    assert_eq!(sandbox.webhook_robots[0].access_token.len(), 64);
    let secret = sandbox.webhook_robots[0].secret.as_deref().expect("secret");
    assert!(secret.starts_with("SEC") && secret.len() == 67);

    // Limits default per docs/design.md when omitted; unknown keys are errors.
    let minimal = r#"{"apps":[{"app_key":"k","app_secret":"s","robot_code":"k","groups":[]}]}"#;
    std::fs::write(&path, minimal).expect("write");
    let f = Fixture::from_path(&path).expect("minimal fixture");
    assert_eq!(f.limits.app_api_qps, 20);
    assert_eq!(f.limits.webhook_lockout_secs, 600);
    std::fs::write(&path, r#"{"apps":[],"colour":"red"}"#).expect("write");
    assert!(Fixture::from_path(&path).is_err());
}

#[tokio::test]
async fn chat_page_renders_each_kind_of_message() {
    let ctx = start().await;
    let token = ctx.token().await;
    let form = reqwest::multipart::Form::new().text("type", "image").part(
        "media",
        reqwest::multipart::Part::bytes(vec![0x89, b'P', b'N', b'G']).file_name("pic.png"),
    );
    let uploaded: Value = ctx
        .http
        .post(ctx.url(&format!("/media/upload?access_token={token}")))
        .multipart(form)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let media_id = uploaded["media_id"].as_str().expect("media_id").to_string();
    let sends = [
        (
            "sampleMarkdown",
            json!({"title": "Deploy", "text": "## Release 1.2\n**done** <script>alert(1)</script>"}),
        ),
        (
            "sampleLink",
            json!({"title": "Runbook", "text": "read this", "picUrl": "https://example.com/p.png", "messageUrl": "https://example.com/runbook"}),
        ),
        (
            "sampleActionCard",
            json!({"title": "Approve?", "text": "please", "singleTitle": "Open ticket", "singleURL": "https://example.com/t"}),
        ),
        (
            "sampleActionCard6",
            json!({"title": "Vote", "text": "choose", "buttonTitle1": "Yes", "buttonUrl1": "https://y", "buttonTitle2": "No", "buttonUrl2": "https://n"}),
        ),
        ("sampleImageMsg", json!({"photoURL": media_id})),
        (
            "sampleFile",
            json!({"mediaId": "@lADOfile", "fileName": "q3-report.xlsx", "fileType": "xlsx"}),
        ),
    ];
    for (key, param) in sends {
        let (s, b) = ctx.send_msg(&token, SANDBOX_OPS_GROUP, key, param).await;
        assert_eq!(s, StatusCode::OK, "{key}: {b}");
    }
    let ts = now_ms();
    let resp = ctx
        .webhook_signed(
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
            ts,
            json!({"msgtype": "text", "text": {"content": "ping @manager1234"}, "at": {"atUserIds": ["manager1234"]}}),
        )
        .await;
    assert_eq!(resp["errcode"], 0);

    let resp = ctx.http.get(ctx.url("/")).send().await.expect("page");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    let page = resp.text().await.expect("html");
    assert!(page.contains("setInterval"), "auto refresh");
    assert!(page.contains(r#"data-conversation="cidSandboxOps0000000000==""#));
    assert!(page.contains(">Ops<"));
    assert!(page.contains("<h2>Release 1.2</h2>"), "markdown rendered");
    assert!(page.contains("<strong>done</strong>"));
    assert!(!page.contains("<script>alert"), "raw HTML escaped");
    assert!(page.contains(r#"data-msg-key="sampleLink""#));
    assert!(page.contains(r#"href="https://example.com/runbook""#));
    assert!(page.contains(r#"<img src="https://example.com/p.png""#));
    assert!(page.contains(">Open ticket</a>"));
    assert!(page.contains(r#"class="buttons horizontal""#));
    assert!(page.contains(">Yes</a>") && page.contains(">No</a>"));
    let media_src = format!("/_sim/media/{}", common::urlencode(&media_id));
    assert!(
        page.contains(&media_src),
        "uploaded image shown from the sim"
    );
    assert!(page.contains("q3-report.xlsx"));
    assert!(page.contains(r#"<span class="mention">@manager1234</span>"#));
    assert!(page.contains(r#"data-api="webhook""#));

    let fragment = ctx
        .http
        .get(ctx.url("/_sim/chat"))
        .send()
        .await
        .expect("fragment")
        .text()
        .await
        .expect("html");
    assert!(fragment.contains("q3-report.xlsx"));
    assert!(!fragment.contains("<html"));
}

#[tokio::test]
async fn with_a_journal_the_chat_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("chat.jsonl");
    let first = common::start_journaled(Fixture::sandbox(), Some(&journal)).await;
    let token = first.token().await;
    first.send_text(&token, "before the restart").await;
    first.send_text(&token, "also before").await;
    first.sim.shutdown().await;

    let second = common::start_journaled(Fixture::sandbox(), Some(&journal)).await;
    let kept = second.sim.messages();
    assert_eq!(kept.len(), 2);
    assert_eq!(
        kept[0].msg_param.as_ref().unwrap()["content"],
        "before the restart"
    );
    let token = second.token().await;
    second.send_text(&token, "after").await;
    let all = second.sim.messages();
    assert_eq!(all.len(), 3);
    assert!(all[2].id > all[1].id, "ids go on from the kept ones");
    // Clearing forgets them for good.
    second.sim.clear_messages();
    second.sim.shutdown().await;
    let third = common::start_journaled(Fixture::sandbox(), Some(&journal)).await;
    assert!(third.sim.messages().is_empty());
}

#[tokio::test]
async fn sample_files_are_served_for_sandbox_messages() {
    let ctx = start().await;
    for (name, content_type, magic) in [
        ("chart.png", "image/png", &b"\x89PNG"[..]),
        ("logo.png", "image/png", &b"\x89PNG"[..]),
        ("report.pdf", "application/pdf", &b"%PDF"[..]),
    ] {
        let resp = ctx
            .http
            .get(ctx.url(&format!("/_sim/samples/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        assert_eq!(resp.headers()["content-type"], content_type);
        assert!(resp.bytes().await.unwrap().starts_with(magic), "{name}");
    }
    let missing = ctx
        .http
        .get(ctx.url("/_sim/samples/nothing.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
