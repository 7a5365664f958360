//! Read status, recall and 1:1 batch send (docs/dingtalk-api.md §2.4–§2.6): paging, 24-hour
//! windows, the 20-item limits and per-user results.

mod common;

use std::time::Duration;

use common::{assert_new_error, json_of, start};
use dingtalk_sim::{
    AppFixture, Fixture, GroupFixture, SANDBOX_APP_KEY, SANDBOX_DEV_GROUP, SANDBOX_OPS_GROUP,
    UserFixture,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn query_body(key: &str, max: Option<u64>, next: Option<&str>) -> Value {
    let mut b = json!({"processQueryKey": key, "openConversationId": SANDBOX_OPS_GROUP, "robotCode": SANDBOX_APP_KEY});
    if let Some(m) = max {
        b["maxResults"] = json!(m);
    }
    if let Some(n) = next {
        b["nextToken"] = json!(n);
    }
    b
}

#[tokio::test]
async fn group_read_status_pages_through_readers() {
    let ctx = start().await;
    let token = ctx.token().await;
    let key = ctx.send_text(&token, "read me").await;
    let q = "/v1.0/robot/groupMessages/query";

    let (s, page1) = ctx
        .post_json(q, Some(&token), query_body(&key, Some(1), None))
        .await;
    assert_eq!(s, StatusCode::OK, "{page1}");
    assert_eq!(page1["sendStatus"], "SUCCESS");
    assert_eq!(page1["readUserIds"], json!(["manager1234"]));
    assert_eq!(page1["hasMore"], true);
    let next = page1["nextToken"].as_str().expect("nextToken");
    let (_, page2) = ctx
        .post_json(q, Some(&token), query_body(&key, Some(1), Some(next)))
        .await;
    assert_eq!(page2["readUserIds"], json!(["452523285939877041"]));
    assert_eq!(page2["hasMore"], false);

    let (_, all) = ctx
        .post_json(q, Some(&token), query_body(&key, None, None))
        .await;
    assert_eq!(all["readUserIds"].as_array().map(Vec::len), Some(2));

    let (s, b) = ctx
        .post_json(q, Some(&token), query_body(&key, Some(201), None))
        .await;
    assert_new_error(s, &b, 400, "invalidParameter.pageSize.invalid");
    let (s, b) = ctx
        .post_json(q, Some(&token), query_body("bm9zdWNoa2V5", None, None))
        .await;
    assert_new_error(s, &b, 400, "invalid.processQueryKey");

    ctx.sim.advance_clock(Duration::from_secs(24 * 3600 + 1));
    let token = ctx.token().await;
    let (s, b) = ctx
        .post_json(q, Some(&token), query_body(&key, None, None))
        .await;
    assert_new_error(s, &b, 400, "processQueryKey.expireTime");
}

#[tokio::test]
async fn paging_covers_many_readers_exactly_once() {
    let users: Vec<UserFixture> = (0..450)
        .map(|i| UserFixture {
            user_id: format!("user{i:04}"),
            name: format!("User {i}"),
        })
        .collect();
    let fixture = Fixture {
        apps: vec![AppFixture {
            app_key: "dingpaging000000001".into(),
            app_secret: "s".into(),
            robot_code: "dingpaging000000001".into(),
            groups: vec![GroupFixture {
                open_conversation_id: "cidPaging==".into(),
                title: "Big".into(),
            }],
            users,
        }],
        webhook_robots: vec![],
        limits: Default::default(),
    };
    let ctx = common::start_with(fixture).await;
    let token = ctx.token_for("dingpaging000000001", "s").await;
    let (_, sent) = ctx
        .group_send(
            &token,
            json!({"robotCode": "dingpaging000000001", "openConversationId": "cidPaging==",
                   "msgKey": "sampleText", "msgParam": "{\"content\":\"hi\"}"}),
        )
        .await;
    let key = sent["processQueryKey"].as_str().expect("key");
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let (s, page) = ctx
            .post_json(
                "/v1.0/robot/groupMessages/query",
                Some(&token),
                json!({"processQueryKey": key, "robotCode": "dingpaging000000001", "maxResults": 200, "nextToken": next}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for u in page["readUserIds"].as_array().expect("ids") {
            seen.push(u.as_str().expect("id").to_string());
        }
        if page["hasMore"] != true {
            break;
        }
        next = page["nextToken"].as_str().expect("next").to_string();
    }
    assert_eq!(seen.len(), 450);
    seen.dedup();
    assert_eq!(seen.len(), 450);
}

#[tokio::test]
async fn group_recall_hides_the_message_and_reports_unknown_keys() {
    let ctx = start().await;
    let token = ctx.token().await;
    let a = ctx.send_text(&token, "oops").await;
    let b = ctx.send_text(&token, "keep").await;
    let (s, body) = ctx
        .post_json(
            "/v1.0/robot/groupMessages/recall",
            Some(&token),
            json!({"openConversationId": SANDBOX_OPS_GROUP, "robotCode": SANDBOX_APP_KEY,
                   "processQueryKeys": [a, "unknownKey="]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["successResult"], json!([a]));
    assert!(body["failedResult"]["unknownKey="].is_string(), "{body}");
    let msgs = ctx.sim.messages();
    assert!(
        msgs.iter()
            .any(|m| m.process_query_key.as_deref() == Some(&a) && m.recalled)
    );
    assert!(
        msgs.iter()
            .any(|m| m.process_query_key.as_deref() == Some(&b) && !m.recalled)
    );

    let (_, status) = ctx
        .post_json(
            "/v1.0/robot/groupMessages/query",
            Some(&token),
            query_body(&a, None, None),
        )
        .await;
    assert_eq!(status["sendStatus"], "RECALLED");

    let page = ctx
        .http
        .get(ctx.url("/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        !page.contains("oops"),
        "recalled messages vanish from the chat"
    );
    assert!(page.contains("keep"));

    // A key from another group fails for this group.
    let (_, wrong_group) = ctx
        .post_json(
            "/v1.0/robot/groupMessages/recall",
            Some(&token),
            json!({"openConversationId": SANDBOX_DEV_GROUP, "robotCode": SANDBOX_APP_KEY, "processQueryKeys": [b]}),
        )
        .await;
    assert_eq!(wrong_group["successResult"], json!([]));

    let keys: Vec<String> = (0..21).map(|i| format!("k{i}")).collect();
    let (s, body) = ctx
        .post_json(
            "/v1.0/robot/groupMessages/recall",
            Some(&token),
            json!({"openConversationId": SANDBOX_OPS_GROUP, "robotCode": SANDBOX_APP_KEY, "processQueryKeys": keys}),
        )
        .await;
    assert_new_error(s, &body, 400, "invalidParameter.processQueryKeys.overMax");
}

async fn oto_send(ctx: &common::Ctx, token: &str, users: Value) -> (StatusCode, Value) {
    ctx.post_json(
        "/v1.0/robot/oToMessages/batchSend",
        Some(token),
        json!({"robotCode": SANDBOX_APP_KEY, "userIds": users, "msgKey": "sampleMarkdown",
               "msgParam": "{\"title\":\"T\",\"text\":\"**hi**\"}"}),
    )
    .await
}

#[tokio::test]
async fn oto_send_lists_invalid_users_and_enforces_limits() {
    let ctx = start().await;
    let token = ctx.token().await;
    let (s, body) = oto_send(&ctx, &token, json!(["manager1234", "ghost"])).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["invalidStaffIdList"], json!(["ghost"]));
    assert_eq!(body["flowControlledStaffIdList"], json!([]));
    assert!(body["processQueryKey"].is_string());
    let m = ctx.sim.messages().pop().expect("stored");
    assert_eq!(m.api, "robot.oto_send");
    assert_eq!(m.user_ids, Some(vec!["manager1234".to_string()]));

    let (s, b) = oto_send(&ctx, &token, json!([])).await;
    assert_new_error(s, &b, 400, "invalidParameter.userIds.empty");
    let many: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    let (s, b) = oto_send(&ctx, &token, json!(many)).await;
    assert_new_error(s, &b, 400, "invalidParameter.userIds.overMax");
    let (s, b) = ctx
        .post_json(
            "/v1.0/robot/oToMessages/batchSend",
            Some(&token),
            json!({"robotCode": SANDBOX_APP_KEY, "userIds": ["manager1234"], "msgKey": "sampleText", "msgParam": "{}"}),
        )
        .await;
    assert_new_error(s, &b, 400, "miss.param.contentOfText");
}

#[tokio::test]
async fn oto_read_status_recall_and_24_hour_limit() {
    let ctx = start().await;
    let token = ctx.token().await;
    let (_, sent) = oto_send(&ctx, &token, json!(["manager1234", "452523285939877041"])).await;
    let key = sent["processQueryKey"].as_str().expect("key").to_string();
    let read_status = |key: String, token: String| {
        let url = ctx.url(&format!(
            "/v1.0/robot/oToMessages/readStatus?robotCode={SANDBOX_APP_KEY}&processQueryKey={}",
            common::urlencode(&key)
        ));
        let http = ctx.http.clone();
        async move {
            json_of(
                http.get(url)
                    .header("x-acs-dingtalk-access-token", token)
                    .send()
                    .await
                    .expect("request"),
            )
            .await
        }
    };
    let (s, body) = read_status(key.clone(), token.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["sendStatus"], "SUCCESS");
    assert_eq!(
        body["messageReadInfoList"],
        json!([
            {"name": "Manager", "userId": "manager1234", "readStatus": "UNREAD"},
            {"name": "Li Lei", "userId": "452523285939877041", "readStatus": "UNREAD"}
        ])
    );

    let recall = |keys: Value, token: String| {
        let http = ctx.http.clone();
        let url = ctx.url("/v1.0/robot/otoMessages/batchRecall");
        async move {
            json_of(
                http.post(url)
                    .header("x-acs-dingtalk-access-token", token)
                    .json(&json!({"robotCode": SANDBOX_APP_KEY, "processQueryKeys": keys}))
                    .send()
                    .await
                    .expect("request"),
            )
            .await
        }
    };
    let (s, body) = recall(json!([key]), token.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["successResult"], json!([key]));
    assert_eq!(body["failedResult"], json!({}));
    let (_, body) = read_status(key.clone(), token.clone()).await;
    assert_eq!(body["sendStatus"], "RECALLED");

    let (_, later) = oto_send(&ctx, &token, json!(["manager1234"])).await;
    let later_key = later["processQueryKey"].as_str().expect("key").to_string();
    ctx.sim.advance_clock(Duration::from_secs(24 * 3600 + 1));
    let token = ctx.token().await;
    let (s, body) = read_status(later_key.clone(), token.clone()).await;
    assert_new_error(s, &body, 400, "processQueryKey.expireTime");
    let (s, body) = recall(json!([later_key]), token).await;
    assert_new_error(s, &body, 400, "robot.processQueryKey.expired");
}
