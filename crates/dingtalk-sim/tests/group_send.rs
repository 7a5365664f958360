//! `POST /v1.0/robot/groupMessages/send` (docs/dingtalk-api.md §2.2, §2.3, §2.8): every msgKey is
//! accepted with its documented msgParam, and every validation failure has its code.

mod common;

use common::{assert_new_error, start};
use dingtalk_sim::{
    SANDBOX_APP_KEY, SANDBOX_APP2_KEY, SANDBOX_APP2_SECRET, SANDBOX_OPS_GROUP, SANDBOX_SALES_GROUP,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn valid_params() -> Vec<(&'static str, Value)> {
    vec![
        ("sampleText", json!({"content": "hello"})),
        (
            "sampleMarkdown",
            json!({"title": "T", "text": "# Head\n**bold**"}),
        ),
        (
            "sampleImageMsg",
            json!({"photoURL": "https://example.com/a.png"}),
        ),
        (
            "sampleLink",
            json!({"text": "t", "title": "T", "picUrl": "@lADOADmaWMzazQKA", "messageUrl": "https://example.com"}),
        ),
        (
            "sampleActionCard",
            json!({"title": "T", "text": "x", "singleTitle": "Open", "singleURL": "https://example.com"}),
        ),
        (
            "sampleActionCard2",
            json!({"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": "https://a", "actionTitle2": "B", "actionURL2": "https://b"}),
        ),
        (
            "sampleActionCard3",
            json!({"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": "https://a", "actionTitle2": "B", "actionURL2": "https://b",
                   "actionTitle3": "C", "actionURL3": "https://c"}),
        ),
        (
            "sampleActionCard4",
            json!({"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": "https://a", "actionTitle2": "B", "actionURL2": "https://b",
                   "actionTitle3": "C", "actionURL3": "https://c", "actionTitle4": "D", "actionURL4": "https://d"}),
        ),
        (
            "sampleActionCard5",
            json!({"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": "https://a", "actionTitle2": "B", "actionURL2": "https://b",
                   "actionTitle3": "C", "actionURL3": "https://c", "actionTitle4": "D", "actionURL4": "https://d",
                   "actionTitle5": "E", "actionURL5": "https://e"}),
        ),
        (
            "sampleActionCard6",
            json!({"title": "T", "text": "x", "buttonTitle1": "Yes", "buttonUrl1": "https://y", "buttonTitle2": "No", "buttonUrl2": "https://n"}),
        ),
        (
            "sampleFile",
            json!({"mediaId": "@lADOfile", "fileName": "report.pdf", "fileType": "pdf"}),
        ),
        (
            "sampleAudio",
            json!({"mediaId": "@lADOaudio", "duration": "3000"}),
        ),
        (
            "sampleVideo",
            json!({"duration": "10", "videoMediaId": "@lADOvideo", "videoType": "mp4", "picMediaId": "@lADOpic"}),
        ),
    ]
}

#[tokio::test]
async fn every_msg_key_is_accepted_and_stored() {
    let ctx = start().await;
    let token = ctx.token().await;
    for (key, param) in valid_params() {
        let (status, body) = ctx
            .send_msg(&token, SANDBOX_OPS_GROUP, key, param.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{key}: {body}");
        let pqk = body["processQueryKey"].as_str().expect("processQueryKey");
        assert_eq!(pqk.len(), 44, "{pqk}");
        assert!(pqk.ends_with('='), "{pqk}");
        let stored = ctx.sim.messages().pop().expect("stored");
        assert_eq!(stored.api, "robot.group_send");
        assert_eq!(stored.msg_key.as_deref(), Some(key));
        assert_eq!(stored.msg_param.as_ref(), Some(&param));
        assert_eq!(stored.process_query_key.as_deref(), Some(pqk));
        assert_eq!(stored.robot_code.as_deref(), Some(SANDBOX_APP_KEY));
        assert_eq!(
            stored.open_conversation_id.as_deref(),
            Some(SANDBOX_OPS_GROUP)
        );
        assert!(chrono::DateTime::parse_from_rfc3339(&stored.received_at).is_ok());
    }
    assert_eq!(ctx.sim.stats().accepted, valid_params().len() as u64);
}

#[tokio::test]
async fn missing_required_key_names_the_miss_param_code() {
    let ctx = start().await;
    let token = ctx.token().await;
    let cases = [
        ("sampleText", json!({}), "miss.param.contentOfText"),
        (
            "sampleMarkdown",
            json!({"text": "x"}),
            "miss.param.markdownTotitle",
        ),
        (
            "sampleMarkdown",
            json!({"title": "x"}),
            "miss.param.markdownTotext",
        ),
        (
            "sampleLink",
            json!({"title": "T", "messageUrl": "https://e"}),
            "miss.param.textOfLink",
        ),
        (
            "sampleLink",
            json!({"text": "t", "messageUrl": "https://e"}),
            "miss.param.titleOfLink",
        ),
        (
            "sampleLink",
            json!({"text": "t", "title": "T"}),
            "miss.param.messageUrlOfLink",
        ),
        (
            "sampleImageMsg",
            json!({"photoUrl": "https://e/a.png"}),
            "miss.param.photoTophotoUrl",
        ),
        (
            "sampleActionCard",
            json!({"text": "x", "singleTitle": "a", "singleURL": "https://e"}),
            "miss.param.actionCardTotitle",
        ),
        (
            "sampleActionCard",
            json!({"title": "T", "singleTitle": "a", "singleURL": "https://e"}),
            "miss.param.actionCardTotext",
        ),
        (
            "sampleActionCard",
            json!({"title": "T", "text": "x", "singleURL": "https://e"}),
            "miss.param.actionCardTosingleTitle",
        ),
        (
            "sampleActionCard",
            json!({"title": "T", "text": "x", "singleTitle": "a"}),
            "miss.param.actionCardTosingleUrl",
        ),
        (
            "sampleActionCard2",
            json!({"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": "https://a", "actionURL2": "https://b"}),
            "miss.param.actionCardTobtnsTotitle",
        ),
        (
            "sampleActionCard3",
            json!({"title": "T", "text": "x", "actionTitle1": "A", "actionURL1": "https://a", "actionTitle2": "B", "actionURL2": "https://b", "actionTitle3": "C"}),
            "miss.param.actionCardTobtnsToactionUrl",
        ),
        (
            "sampleActionCard6",
            json!({"title": "T", "text": "x", "buttonTitle1": "Y", "buttonURL1": "https://y", "buttonTitle2": "N", "buttonUrl2": "https://n"}),
            "miss.param.actionCardTobtnsToactionUrl",
        ),
        (
            "sampleFile",
            json!({"mediaId": "@x", "fileName": "a.pdf"}),
            "miss.param.file",
        ),
        ("sampleAudio", json!({"mediaId": "@x"}), "miss.param.audio"),
        (
            "sampleVideo",
            json!({"videoMediaId": "@x", "duration": "1", "videoType": "mp4"}),
            "miss.param.video",
        ),
    ];
    for (key, param, code) in cases {
        let (status, body) = ctx.send_msg(&token, SANDBOX_OPS_GROUP, key, param).await;
        assert_new_error(status, &body, 400, code);
    }
    assert!(ctx.sim.messages().is_empty(), "nothing invalid is stored");
}

#[tokio::test]
async fn msg_key_errors() {
    let ctx = start().await;
    let token = ctx.token().await;
    for key in ["sampleActionCard1", "sampleFoo", "text"] {
        let (status, body) = ctx
            .send_msg(&token, SANDBOX_OPS_GROUP, key, json!({"content": "x"}))
            .await;
        assert_new_error(status, &body, 400, "invalidParameter.msgKey.invalid");
    }
    let (status, body) = ctx
        .group_send(
            &token,
            json!({"robotCode": SANDBOX_APP_KEY, "openConversationId": SANDBOX_OPS_GROUP, "msgParam": "{}"}),
        )
        .await;
    assert_new_error(status, &body, 400, "invalidParameter.msgKey.empty");
}

#[tokio::test]
async fn msg_param_must_be_a_json_object_string_of_at_most_15000_bytes() {
    let ctx = start().await;
    let token = ctx.token().await;
    let base = json!({"robotCode": SANDBOX_APP_KEY, "openConversationId": SANDBOX_OPS_GROUP, "msgKey": "sampleText"});
    for bad in [
        json!("not json"),
        json!("[1,2]"),
        json!({"content": "inline object"}),
    ] {
        let mut body = base.clone();
        body["msgParam"] = bad;
        let (status, resp) = ctx.group_send(&token, body).await;
        assert_new_error(status, &resp, 400, "invalidParameter.msgParam.invalid");
    }
    let mut body = base.clone();
    body["msgParam"] = json!(json!({"content": "汉".repeat(5001)}).to_string());
    let (status, resp) = ctx.group_send(&token, body).await;
    assert_new_error(status, &resp, 400, "invalidParameter.msgParam.tooLong");
    // Exactly at the limit is fine: {"content":"..."} is 14 bytes of framing.
    let mut body = base;
    body["msgParam"] = json!(json!({"content": "x".repeat(15000 - 14)}).to_string());
    let (status, resp) = ctx.group_send(&token, body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
}

#[tokio::test]
async fn robot_and_group_errors() {
    let ctx = start().await;
    let token = ctx.token().await;
    let send = |robot: Option<&str>, ocid: Option<&str>| {
        let mut body = json!({"msgKey": "sampleText", "msgParam": "{\"content\":\"x\"}"});
        if let Some(r) = robot {
            body["robotCode"] = json!(r);
        }
        if let Some(o) = ocid {
            body["openConversationId"] = json!(o);
        }
        ctx.group_send(&token, body)
    };
    let (s, b) = send(None, Some(SANDBOX_OPS_GROUP)).await;
    assert_new_error(s, &b, 400, "invalidParameter.robotCode.missing");
    let (s, b) = send(Some("dingnosuchrobot0000"), Some(SANDBOX_OPS_GROUP)).await;
    assert_new_error(s, &b, 400, "invalidParameter.robotCode.notExsit");
    let (s, b) = send(Some(SANDBOX_APP2_KEY), Some(SANDBOX_SALES_GROUP)).await;
    assert_new_error(s, &b, 400, "invalidParameter.robotCode.auth");
    let (s, b) = send(Some(SANDBOX_APP_KEY), None).await;
    assert_new_error(s, &b, 400, "miss.openConversationId");
    let (s, b) = send(Some(SANDBOX_APP_KEY), Some("cidNoSuchGroup000000000==")).await;
    assert_new_error(s, &b, 400, "invalid.openConversationId");
    let (s, b) = send(Some(SANDBOX_APP_KEY), Some(SANDBOX_SALES_GROUP)).await;
    assert_new_error(s, &b, 400, "invalidParameter.robotCode.empty");

    // App 2 may send to its own group with its own token.
    let token2 = ctx.token_for(SANDBOX_APP2_KEY, SANDBOX_APP2_SECRET).await;
    let (s, b) = ctx
        .group_send(
            &token2,
            json!({"robotCode": SANDBOX_APP2_KEY, "openConversationId": SANDBOX_SALES_GROUP,
                   "msgKey": "sampleText", "msgParam": "{\"content\":\"sales\"}"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let stats = ctx.sim.stats();
    assert_eq!(stats.rejected["invalidParameter.robotCode.auth"], 1);
    assert_eq!(stats.accepted, 1);
}

#[tokio::test]
async fn body_that_is_not_json_is_msg_body_invalid() {
    let ctx = start().await;
    let token = ctx.token().await;
    let resp = ctx
        .http
        .post(ctx.url("/v1.0/robot/groupMessages/send"))
        .header("x-acs-dingtalk-access-token", &token)
        .header("content-type", "application/json")
        .body("msgKey=sampleText")
        .send()
        .await
        .expect("request");
    let (status, body) = common::json_of(resp).await;
    assert_new_error(status, &body, 400, "invalidParameter.msgBody.invalid");
}
