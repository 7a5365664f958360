//! The action catalog against the in-process simulator: every action arrives the way DingTalk
//! expects it, files are uploaded before they are sent, long text arrives as ordered parts,
//! DingTalk's rejections come back as errors with its code, and bad input is refused naming the
//! field before anything reaches DingTalk.

use base64::Engine;
use connector::actions::{self, ExecuteError, InputError, Target};
use dingtalk::{AppClient, AppCredentials, Client, ClientConfig, RobotCode, WebhookRobot};
use dingtalk_sim::{
    Fixture, ReceivedMessage, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP,
    SANDBOX_WEBHOOK_SECRET, SANDBOX_WEBHOOK_TOKEN, SimHandle, Simulator,
};
use serde_json::{Value, json};

const G: &str = SANDBOX_OPS_GROUP;

struct World {
    sim: SimHandle,
    app: Target,
    webhook: Target,
    http: connector::fetch::Fetcher,
}

async fn world() -> World {
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let client = Client::new(ClientConfig::with_base(&sim.base_url()).unwrap()).unwrap();
    let app = Target::App {
        client: AppClient::new(
            client.clone(),
            AppCredentials {
                app_key: SANDBOX_APP_KEY.into(),
                app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
            },
        ),
        robot_code: RobotCode::new(SANDBOX_APP_KEY),
    };
    let webhook = Target::Webhook(WebhookRobot::new(
        client,
        dingtalk::WebhookToken::new(SANDBOX_WEBHOOK_TOKEN),
        Some(dingtalk::WebhookSecret::new(SANDBOX_WEBHOOK_SECRET)),
    ));
    World {
        sim,
        app,
        webhook,
        // The file server of these tests is on loopback.
        http: connector::fetch::Fetcher::new(
            "127.0.0.0/8".parse().unwrap(),
            std::time::Duration::from_secs(10),
        ),
    }
}

impl World {
    async fn run(&self, action: &str, input: Value) -> Result<Value, ExecuteError> {
        let validated = actions::validate(action, input).expect("input is valid");
        let target = if validated.action() == "webhook_send" {
            &self.webhook
        } else {
            &self.app
        };
        actions::execute(&validated, target, &self.http).await
    }

    async fn ok(&self, action: &str, input: Value) -> Value {
        self.run(action, input).await.expect("action succeeds")
    }

    fn last(&self) -> ReceivedMessage {
        self.sim.messages().pop().expect("a message arrived")
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A tiny file server on 127.0.0.1:0 for `file_url` tests.
async fn file_server() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/files/report.pdf",
            get(|| async { b"%PDF-1.4 quarterly report".to_vec() }),
        )
        .route(
            "/files/big.mp3",
            get(|| async { vec![0u8; 2 * 1024 * 1024 + 1] }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// The six seed actions

#[tokio::test]
async fn send_text_arrives_as_sample_text() {
    let w = world().await;
    let out = w
        .ok(
            "send_text",
            json!({ "group_chat_id": G, "content": "disk 91% on db-1" }),
        )
        .await;
    assert_eq!(out["msg_key"], "sampleText");
    let m = w.last();
    assert_eq!(m.open_conversation_id.as_deref(), Some(G));
    assert_eq!(m.msg_key.as_deref(), Some("sampleText"));
    assert_eq!(
        m.msg_param.unwrap(),
        json!({ "content": "disk 91% on db-1" })
    );
    assert_eq!(
        out["process_query_key"],
        json!(m.process_query_key.unwrap())
    );
    assert!(out.get("parts").is_none() && out.get("media_id").is_none());
}

#[tokio::test]
async fn send_markdown_arrives_as_sample_markdown() {
    let w = world().await;
    w.ok(
        "send_markdown",
        json!({ "group_chat_id": G, "subject": "Deploy", "content": "## v2.1\n- done" }),
    )
    .await;
    let m = w.last();
    assert_eq!(m.msg_key.as_deref(), Some("sampleMarkdown"));
    assert_eq!(
        m.msg_param.unwrap(),
        json!({ "title": "Deploy", "text": "## v2.1\n- done" })
    );
}

#[tokio::test]
async fn send_link_arrives_as_sample_link() {
    let w = world().await;
    w.ok(
        "send_link",
        json!({ "group_chat_id": G, "subject": "Incident", "content": "see the timeline",
                "image_url": "https://example.com/p.png",
                "redirect_url": "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fx" }),
    )
    .await;
    let m = w.last();
    assert_eq!(m.msg_key.as_deref(), Some("sampleLink"));
    assert_eq!(
        m.msg_param.unwrap(),
        json!({ "title": "Incident", "text": "see the timeline",
                "picUrl": "https://example.com/p.png",
                "messageUrl": "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fx" })
    );
}

#[tokio::test]
async fn send_image_by_url_arrives_as_sample_image_msg() {
    let w = world().await;
    w.ok(
        "send_image",
        json!({ "group_chat_id": G, "image_url": "https://example.com/chart.png" }),
    )
    .await;
    let m = w.last();
    assert_eq!(m.msg_key.as_deref(), Some("sampleImageMsg"));
    assert_eq!(
        m.msg_param.unwrap(),
        json!({ "photoURL": "https://example.com/chart.png" })
    );
}

#[tokio::test]
async fn send_file_by_media_id_arrives_as_sample_file() {
    let w = world().await;
    let up = w
        .ok(
            "upload_media",
            json!({ "media_type": "file", "file": { "name": "q3.xlsx", "content_base64": b64(b"PK\x03\x04 sheet") } }),
        )
        .await;
    assert_eq!(up["media_type"], "file");
    assert!(up["created_at"].as_i64().unwrap() > 0);
    let media_id = up["media_id"].as_str().unwrap().to_owned();
    w.ok(
        "send_file",
        json!({ "group_chat_id": G, "media_id": media_id, "file_name": "Q3.xlsx", "file_type": "xlsx" }),
    )
    .await;
    let m = w.last();
    assert_eq!(m.msg_key.as_deref(), Some("sampleFile"));
    assert_eq!(
        m.msg_param.unwrap(),
        json!({ "mediaId": media_id, "fileName": "Q3.xlsx", "fileType": "xlsx" })
    );
}

#[tokio::test]
async fn send_action_card_with_one_button_arrives_as_sample_action_card() {
    let w = world().await;
    w.ok(
        "send_action_card",
        json!({ "group_chat_id": G, "subject": "Approve?", "content": "Release v2.1",
                "button_text": "Open", "redirect_url": "https://ci.example.com/r/21" }),
    )
    .await;
    let m = w.last();
    assert_eq!(m.msg_key.as_deref(), Some("sampleActionCard"));
    assert_eq!(
        m.msg_param.unwrap(),
        json!({ "title": "Approve?", "text": "Release v2.1", "singleTitle": "Open",
                "singleURL": "https://ci.example.com/r/21" })
    );
}

// ---------------------------------------------------------------------------------------------
// Beyond the seed

#[tokio::test]
async fn multi_button_cards_use_the_numbered_templates() {
    let w = world().await;
    let buttons = json!([
        { "title": "Approve", "url": "https://x/a" },
        { "title": "Reject", "url": "https://x/r" },
        { "title": "Details", "url": "https://x/d" }
    ]);
    let out = w
        .ok(
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": "c", "buttons": buttons }),
        )
        .await;
    assert_eq!(out["msg_key"], "sampleActionCard3");
    let p = w.last().msg_param.unwrap();
    assert_eq!(p["actionTitle3"], "Details");
    assert_eq!(p["actionURL1"], "https://x/a");

    w.ok(
        "send_action_card",
        json!({ "group_chat_id": G, "subject": "s", "content": "c", "button_layout": "horizontal",
                "buttons": [{ "title": "Yes", "url": "https://x/y" }, { "title": "No", "url": "https://x/n" }] }),
    )
    .await;
    let m = w.last();
    assert_eq!(m.msg_key.as_deref(), Some("sampleActionCard6"));
    assert_eq!(m.msg_param.unwrap()["buttonTitle2"], "No");
}

#[tokio::test]
async fn send_file_with_base64_uploads_first_then_sends_the_media_id() {
    let w = world().await;
    let out = w
        .ok(
            "send_file",
            json!({ "group_chat_id": G, "file": { "name": "report.pdf", "content_base64": b64(b"%PDF-1.4 x") } }),
        )
        .await;
    let media_id = out["media_id"].as_str().expect("media_id in the output");
    assert_eq!(out["msg_key"], "sampleFile");
    assert_eq!(
        w.last().msg_param.unwrap(),
        json!({ "mediaId": media_id, "fileName": "report.pdf", "fileType": "pdf" })
    );
}

#[tokio::test]
async fn send_file_from_a_url_downloads_uploads_and_sends() {
    let w = world().await;
    let files = file_server().await;
    let out = w
        .ok(
            "send_file",
            json!({ "group_chat_id": G, "file_url": format!("{files}/files/report.pdf") }),
        )
        .await;
    let media_id = out["media_id"].as_str().unwrap();
    assert_eq!(
        w.last().msg_param.unwrap(),
        json!({ "mediaId": media_id, "fileName": "report.pdf", "fileType": "pdf" })
    );
}

#[tokio::test]
async fn a_file_url_that_fails_or_is_too_big_is_an_input_error_and_nothing_is_sent() {
    let w = world().await;
    let files = file_server().await;
    let missing = w
        .run(
            "send_file",
            json!({ "group_chat_id": G, "file_url": format!("{files}/files/gone.pdf") }),
        )
        .await;
    match missing {
        Err(ExecuteError::Input(e)) => {
            assert_eq!(e.field_name(), Some("file_url"));
            assert!(e.reason().contains("404"), "{e}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    let big = w
        .run(
            "upload_media",
            json!({ "media_type": "voice", "file_url": format!("{files}/files/big.mp3") }),
        )
        .await;
    match big {
        Err(ExecuteError::Input(e)) => {
            assert_eq!(e.field_name(), Some("file_url"));
            assert!(e.reason().contains("2 MB"), "{e}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    assert!(w.sim.messages().is_empty());
}

#[tokio::test]
async fn send_image_with_a_file_uploads_it_as_an_image() {
    let w = world().await;
    let png = b"\x89PNG\r\n\x1a\n tiny";
    let out = w
        .ok(
            "send_image",
            json!({ "group_chat_id": G, "file": { "name": "chart.png", "content_base64": b64(png) } }),
        )
        .await;
    let media_id = out["media_id"].as_str().unwrap();
    assert_eq!(w.last().msg_param.unwrap(), json!({ "photoURL": media_id }));
}

#[tokio::test]
async fn long_text_arrives_as_ordered_numbered_parts() {
    let w = world().await;
    // Three paragraphs of about 9000 bytes: two cannot share one 15000-byte message.
    let paragraphs: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|p| format!("{p}{}", "x".repeat(9000)))
        .collect();
    let content = paragraphs.join("\n\n");
    let out = w
        .ok(
            "send_text",
            json!({ "group_chat_id": G, "content": content }),
        )
        .await;
    let parts = out["parts"].as_array().expect("parts listed");
    assert_eq!(parts.len(), 3);
    let got = w.sim.messages();
    assert_eq!(got.len(), 3);
    let mut rejoined = String::new();
    for (i, m) in got.iter().enumerate() {
        let text = m.msg_param.as_ref().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        let prefix = format!("({}/3) ", i + 1);
        assert!(
            text.starts_with(&format!("{prefix}{}", ["A", "B", "C"][i])),
            "part {i} in order"
        );
        rejoined.push_str(text.strip_prefix(&prefix).unwrap());
        assert_eq!(parts[i]["process_query_key"], json!(m.process_query_key));
    }
    assert_eq!(rejoined, content);
    assert_eq!(out["process_query_key"], parts[0]["process_query_key"]);
}

#[tokio::test]
async fn split_false_over_the_limit_is_refused_and_nothing_is_sent() {
    let w = world().await;
    let err = actions::validate(
        "send_text",
        json!({ "group_chat_id": G, "content": "x".repeat(16_000), "split": false }),
    )
    .unwrap_err();
    assert_eq!(err.field_name(), Some("content"));
    assert!(err.reason().contains("set split:true"), "{err}");
    assert!(w.sim.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_group_comes_back_as_dingtalk_s_rejection() {
    let w = world().await;
    let err = w
        .run(
            "send_text",
            json!({ "group_chat_id": "cidNoSuchGroup000000000==", "content": "hi" }),
        )
        .await
        .unwrap_err();
    match err {
        ExecuteError::DingTalk {
            error,
            completed_parts,
        } => {
            assert_eq!(error.code(), Some("invalid.openConversationId"));
            assert_eq!(error.http_status(), Some(400));
            assert!(error.request_id().is_some());
            assert!(!error.is_retryable());
            assert_eq!(completed_parts, 0);
        }
        other => panic!("expected a DingTalk error, got {other:?}"),
    }
}

#[tokio::test]
async fn read_status_and_recall_work_on_a_sent_message() {
    let w = world().await;
    let sent = w
        .ok(
            "send_text",
            json!({ "group_chat_id": G, "content": "read me" }),
        )
        .await;
    let key = sent["process_query_key"].as_str().unwrap();
    let page = w
        .ok(
            "query_read_status",
            json!({ "group_chat_id": G, "process_query_key": key, "max_results": 1 }),
        )
        .await;
    assert_eq!(page["send_status"], "SUCCESS");
    assert_eq!(page["read_user_ids"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], true);
    let next = w
        .ok(
            "query_read_status",
            json!({ "group_chat_id": G, "process_query_key": key, "next_token": page["next_token"] }),
        )
        .await;
    assert_eq!(next["has_more"], false);
    assert_eq!(next["next_token"], Value::Null);

    let recall = w
        .ok(
            "recall_messages",
            json!({ "group_chat_id": G, "process_query_keys": [key] }),
        )
        .await;
    assert_eq!(recall["recalled"], json!([key]));
    assert_eq!(recall["failed"], json!({}));
    assert!(w.last().recalled);
}

#[tokio::test]
async fn send_to_users_reports_unknown_recipients() {
    let w = world().await;
    let out = w
        .ok(
            "send_to_users",
            json!({ "user_ids": ["manager1234", "nobody"], "msg_type": "markdown",
                    "subject": "1:1", "content": "**hello**" }),
        )
        .await;
    assert_eq!(out["msg_key"], "sampleMarkdown");
    assert_eq!(out["invalid_user_ids"], json!(["nobody"]));
    assert_eq!(out["flow_controlled_user_ids"], json!([]));
    let m = w.last();
    assert_eq!(m.api, "robot.oto_send");
    assert_eq!(m.user_ids, Some(vec!["manager1234".to_owned()]));
}

#[tokio::test]
async fn webhook_send_mentions_people_in_text() {
    let w = world().await;
    let out = w
        .ok(
            "webhook_send",
            json!({ "msg_type": "text", "content": "on call: db-1 down", "at_mobiles": ["13800000000"] }),
        )
        .await;
    assert_eq!(out, json!({ "msg_type": "text" }));
    let m = w.last();
    assert_eq!(m.api, "webhook");
    assert_eq!(m.msgtype.as_deref(), Some("text"));
    assert_eq!(
        m.payload.unwrap()["content"],
        "on call: db-1 down @13800000000"
    );
    assert_eq!(m.at.unwrap()["atMobiles"], json!(["13800000000"]));
}

#[tokio::test]
async fn webhook_send_feed_card_and_split_markdown() {
    let w = world().await;
    w.ok(
        "webhook_send",
        json!({ "msg_type": "feed_card", "links": [
            { "title": "One", "url": "https://x/1", "image_url": "https://x/1.png" },
            { "title": "Two", "url": "https://x/2", "image_url": "https://x/2.png" } ] }),
    )
    .await;
    assert_eq!(w.last().msgtype.as_deref(), Some("feedCard"));

    let content = "- a line of the nightly report\n".repeat(1000); // ~31 KB
    let out = w
        .ok(
            "webhook_send",
            json!({ "msg_type": "markdown", "subject": "Nightly", "content": content, "at_all": true }),
        )
        .await;
    assert_eq!(out["msg_type"], "markdown");
    let n = out["parts"].as_u64().unwrap() as usize;
    assert!(n >= 2);
    let got = w.sim.messages();
    let parts = &got[got.len() - n..];
    for (i, m) in parts.iter().enumerate() {
        let title = m.payload.as_ref().unwrap()["title"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(title, format!("Nightly ({}/{n})", i + 1));
        // Everyone is notified once, by the first part.
        assert_eq!(
            m.at.is_some() && m.at.as_ref().unwrap()["isAtAll"] == true,
            i == 0
        );
    }
}

#[tokio::test]
async fn an_action_on_the_wrong_kind_of_connection_is_refused() {
    let w = world().await;
    let v = actions::validate(
        "webhook_send",
        json!({ "msg_type": "text", "content": "x" }),
    )
    .unwrap();
    match actions::execute(&v, &w.app, &w.http).await {
        Err(ExecuteError::Input(e)) => assert_eq!(e.field_name(), Some("connection")),
        other => panic!("expected an input error, got {other:?}"),
    }
    let v = actions::validate("send_text", json!({ "group_chat_id": G, "content": "x" })).unwrap();
    assert!(matches!(
        actions::execute(&v, &w.webhook, &w.http).await,
        Err(ExecuteError::Input(_))
    ));
    assert!(w.sim.messages().is_empty());
}

#[tokio::test]
async fn steps_can_run_one_at_a_time_with_a_stored_plan() {
    let w = world().await;
    let v = actions::validate(
        "send_image",
        json!({ "group_chat_id": G, "file": { "name": "a.png", "content_base64": b64(b"\x89PNG img") } }),
    )
    .unwrap();
    // As a queue would: store the plan, reload it, run each step with a carried context.
    let stored: actions::ValidatedAction =
        serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    let mut ctx = actions::StepContext::default();
    let mut results = Vec::new();
    for step in stored.steps() {
        let r = actions::execute_step(step, &w.app, &w.http, &mut ctx)
            .await
            .unwrap();
        // The context survives a round trip through storage between steps.
        ctx = serde_json::from_value(serde_json::to_value(&ctx).unwrap()).unwrap();
        results.push(r);
    }
    let out = actions::assemble_output(&stored, &results).unwrap();
    assert_eq!(out["msg_key"], "sampleImageMsg");
    assert_eq!(w.last().msg_param.unwrap()["photoURL"], out["media_id"]);
}

// ---------------------------------------------------------------------------------------------
// Bad input: refused before any network call, naming the field

fn field_of(action: &str, input: Value) -> String {
    match actions::validate(action, input.clone()) {
        Err(InputError::Invalid { field, .. }) => field,
        other => panic!("{action} {input}: expected a field error, got {other:?}"),
    }
}

/// `base` with `key` removed (`None`) or replaced.
fn with(base: &Value, key: &str, value: Option<Value>) -> Value {
    let mut v = base.clone();
    let obj = v.as_object_mut().unwrap();
    match value {
        Some(x) => {
            obj.insert(key.to_owned(), x);
        }
        None => {
            obj.remove(key);
        }
    }
    v
}

#[tokio::test]
async fn bad_input_matrix_names_the_field_and_sends_nothing() {
    let w = world().await;
    let big = "x".repeat(16_000);
    let file = json!({ "name": "a.png", "content_base64": "aGk=" });
    let valid: Vec<(&str, Value)> = vec![
        ("send_text", json!({ "group_chat_id": G, "content": "c" })),
        (
            "send_markdown",
            json!({ "group_chat_id": G, "subject": "s", "content": "c" }),
        ),
        (
            "send_link",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "image_url": "https://x/p.png", "redirect_url": "https://x" }),
        ),
        (
            "send_image",
            json!({ "group_chat_id": G, "image_url": "https://x/p.png" }),
        ),
        (
            "send_file",
            json!({ "group_chat_id": G, "media_id": "@m", "file_name": "f.pdf", "file_type": "pdf" }),
        ),
        (
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "button_text": "b", "redirect_url": "https://x" }),
        ),
        (
            "upload_media",
            json!({ "media_type": "image", "file": file }),
        ),
        (
            "query_read_status",
            json!({ "group_chat_id": G, "process_query_key": "k" }),
        ),
        (
            "recall_messages",
            json!({ "group_chat_id": G, "process_query_keys": ["k"] }),
        ),
        (
            "send_to_users",
            json!({ "user_ids": ["u"], "msg_type": "text", "content": "c" }),
        ),
        (
            "webhook_send",
            json!({ "msg_type": "text", "content": "c" }),
        ),
    ];
    for (action, input) in &valid {
        actions::validate(action, input.clone())
            .unwrap_or_else(|e| panic!("{action} base input is valid: {e}"));
        // Every required field, missing.
        let spec = actions::spec(action).unwrap();
        for req in spec.input_schema["required"].as_array().unwrap() {
            let req = req.as_str().unwrap();
            assert_eq!(
                field_of(action, with(input, req, None)),
                req,
                "{action} without {req}"
            );
        }
        // Every string field given a number; every field given empty where it is a string.
        for (key, value) in input.as_object().unwrap() {
            if value.is_string() {
                assert_eq!(
                    field_of(action, with(input, key, Some(json!(5)))),
                    *key,
                    "{action}.{key} as number"
                );
                assert_eq!(
                    field_of(action, with(input, key, Some(json!("  ")))),
                    *key,
                    "{action}.{key} empty"
                );
            }
        }
        // An unknown field.
        assert_eq!(
            field_of(action, with(input, "colour", Some(json!("red")))),
            "colour"
        );
    }

    // Bad enums, URLs, counts, sizes and ids, one by one.
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "send_file",
            json!({ "group_chat_id": G, "media_id": "@m", "file_name": "f", "file_type": "txt" }),
            "file_type",
        ),
        (
            "upload_media",
            json!({ "media_type": "gif", "file": file }),
            "media_type",
        ),
        (
            "send_to_users",
            json!({ "user_ids": ["u"], "msg_type": "video" }),
            "msg_type",
        ),
        (
            "webhook_send",
            json!({ "msg_type": "image", "content": "c" }),
            "msg_type",
        ),
        (
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": "c", "button_text": "b",
                    "redirect_url": "javascript:alert(1)" }),
            "redirect_url",
        ),
        (
            "send_link",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "image_url": "file:///etc/passwd", "redirect_url": "https://x" }),
            "image_url",
        ),
        (
            "send_link",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "image_url": "https://x/p.png", "redirect_url": "ftp://x" }),
            "redirect_url",
        ),
        (
            "send_image",
            json!({ "group_chat_id": G, "image_url": "not a url" }),
            "image_url",
        ),
        (
            "send_file",
            json!({ "group_chat_id": G, "file_url": "dingtalk://dingtalkclient/x.pdf" }),
            "file_url",
        ),
        (
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "buttons": [{ "title": "a", "url": "https://x" }] }),
            "buttons",
        ),
        (
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": "c", "button_layout": "horizontal",
                    "buttons": [{ "title": "a", "url": "https://x" }, { "title": "b", "url": "https://y" },
                                { "title": "c", "url": "https://z" }] }),
            "buttons",
        ),
        (
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "buttons": [{ "title": "a", "url": "https://x" }, { "title": "", "url": "https://y" }] }),
            "buttons[1].title",
        ),
        (
            "recall_messages",
            json!({ "group_chat_id": G, "process_query_keys": [] }),
            "process_query_keys",
        ),
        (
            "recall_messages",
            json!({ "group_chat_id": G, "process_query_keys": vec!["k"; 21] }),
            "process_query_keys",
        ),
        (
            "send_to_users",
            json!({ "user_ids": vec!["u"; 21], "msg_type": "text", "content": "c" }),
            "user_ids",
        ),
        (
            "send_to_users",
            json!({ "user_ids": [], "msg_type": "text", "content": "c" }),
            "user_ids",
        ),
        (
            "send_to_users",
            json!({ "user_ids": ["u"], "msg_type": "link", "subject": "s", "content": "c",
                                  "redirect_url": "https://x" }),
            "image_url",
        ),
        (
            "query_read_status",
            json!({ "group_chat_id": G, "process_query_key": "k", "max_results": 201 }),
            "max_results",
        ),
        (
            "query_read_status",
            json!({ "group_chat_id": G, "process_query_key": "k", "max_results": -1 }),
            "max_results",
        ),
        (
            "send_text",
            json!({ "group_chat_id": "cid with spaces==", "content": "c" }),
            "group_chat_id",
        ),
        (
            "send_text",
            json!({ "group_chat_id": G, "content": big, "split": false }),
            "content",
        ),
        (
            "send_text",
            json!({ "group_chat_id": G, "content": "c", "split": "no" }),
            "split",
        ),
        (
            "send_link",
            json!({ "group_chat_id": G, "subject": "s", "content": big,
                    "image_url": "https://x/p.png", "redirect_url": "https://x" }),
            "content",
        ),
        (
            "send_action_card",
            json!({ "group_chat_id": G, "subject": "s", "content": big,
                    "button_text": "b", "redirect_url": "https://x" }),
            "content",
        ),
        (
            "upload_media",
            json!({ "media_type": "voice", "file": { "name": "a.mp3",
                    "content_base64": b64(&vec![0u8; 2 * 1024 * 1024 + 1]) } }),
            "file.content_base64",
        ),
        (
            "upload_media",
            json!({ "media_type": "image", "file": { "name": "a.png", "content_base64": "not base64!" } }),
            "file.content_base64",
        ),
        (
            "upload_media",
            json!({ "media_type": "image", "file": { "name": "a.pdf", "content_base64": "aGk=" } }),
            "file.name",
        ),
        ("upload_media", json!({ "media_type": "image" }), "file"),
        (
            "upload_media",
            json!({ "media_type": "image", "file": file, "file_url": "https://x/a.png" }),
            "file_url",
        ),
        ("send_image", json!({ "group_chat_id": G }), "image_url"),
        (
            "send_file",
            json!({ "group_chat_id": G, "media_id": "@m", "file_type": "pdf" }),
            "file_name",
        ),
        (
            "send_file",
            json!({ "group_chat_id": G, "media_id": "@m", "file_name": "f" }),
            "file_type",
        ),
        (
            "webhook_send",
            json!({ "msg_type": "text", "content": big.repeat(2), "split": false }),
            "content",
        ),
        (
            "webhook_send",
            json!({ "msg_type": "markdown", "content": "c" }),
            "subject",
        ),
        (
            "webhook_send",
            json!({ "msg_type": "feed_card", "links": [] }),
            "links",
        ),
        (
            "webhook_send",
            json!({ "msg_type": "feed_card", "links": [{ "title": "t", "url": "mailto:a@b", "image_url": "https://x" }] }),
            "links[0].url",
        ),
        (
            "webhook_send",
            json!({ "msg_type": "action_card", "subject": "s", "content": "c", "button_text": "b",
                    "redirect_url": "https://x", "at_mobiles": ["138"] }),
            "at_mobiles",
        ),
    ];
    for (action, input, field) in cases {
        assert_eq!(field_of(action, input.clone()), field, "{action} {input}");
    }
    assert!(matches!(
        actions::validate("send_fax", json!({})),
        Err(InputError::UnknownAction(a)) if a == "send_fax"
    ));
    assert!(matches!(
        actions::validate("send_text", json!("just a string")),
        Err(InputError::Invalid { field, .. }) if field == "input"
    ));
    assert!(
        w.sim.messages().is_empty(),
        "validation never reaches DingTalk"
    );
    assert_eq!(w.sim.stats().token_requests, 0);
}
