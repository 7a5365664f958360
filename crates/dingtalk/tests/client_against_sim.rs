//! The `dingtalk` client against the in-process simulator: every message type, both error
//! dialects, every fault kind, and the token cache's promises.

use dingtalk::robot::Message;
use dingtalk::{
    AppClient, AppCredentials, At, Button, ButtonLayout, Client, ClientConfig, ErrorClass,
    FeedLink, MediaType, MediaUpload, OpenConversationId, ProcessQueryKey, RetryPolicy, RobotCode,
    UserId, WebhookButton, WebhookMessage, WebhookPayload, WebhookRobot, WebhookSecret,
    WebhookToken,
};
use dingtalk_sim::{
    FaultKind, FaultSpec, Fixture, Limits, RouteName, SANDBOX_APP_KEY, SANDBOX_APP_SECRET,
    SANDBOX_APP2_KEY, SANDBOX_OPS_GROUP, SANDBOX_SALES_GROUP, SANDBOX_WEBHOOK_SECRET,
    SANDBOX_WEBHOOK_TOKEN, SimHandle, Simulator,
};
use std::time::Duration;

async fn sim() -> SimHandle {
    Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

async fn unlimited_sim() -> SimHandle {
    let s = sim().await;
    s.set_limits(Limits {
        app_api_qps: 0,
        webhook_per_minute: 0,
        ..Limits::default()
    });
    s
}

fn client_for(sim: &SimHandle) -> Client {
    let mut config = ClientConfig::with_base(&sim.base_url()).unwrap();
    config.timeout = Duration::from_secs(2);
    Client::new(config).unwrap()
}

fn app(sim: &SimHandle) -> AppClient {
    AppClient::new(
        client_for(sim),
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
        },
    )
}

fn robot() -> RobotCode {
    RobotCode::new(SANDBOX_APP_KEY)
}

fn ops() -> OpenConversationId {
    OpenConversationId::new(SANDBOX_OPS_GROUP)
}

fn text(s: &str) -> Message {
    Message::Text { content: s.into() }
}

fn fault(route: RouteName, kind: FaultKind, count: u32) -> FaultSpec {
    FaultSpec {
        route,
        kind,
        count: Some(count),
        probability: None,
        delay_ms: None,
    }
}

fn all_message_types(media_id: &str) -> Vec<Message> {
    let buttons = |n: usize| -> Vec<Button> {
        (1..=n)
            .map(|i| Button {
                title: format!("Option {i}"),
                url: format!("https://example.com/{i}"),
            })
            .collect()
    };
    let mut v = vec![
        text("hello"),
        Message::Markdown {
            title: "Deploy".into(),
            text: "# Done\n- **v1.2** shipped".into(),
        },
        Message::Image {
            photo_url: "https://example.com/a.png".into(),
        },
        Message::Image {
            photo_url: media_id.into(),
        },
        Message::Link {
            title: "Report".into(),
            text: "Weekly report".into(),
            pic_url: "https://example.com/p.png".into(),
            message_url: "https://example.com/r".into(),
        },
        Message::ActionCard {
            title: "Approve?".into(),
            text: "Release **1.2**".into(),
            single_title: "Open".into(),
            single_url: "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fexample.com".into(),
        },
        Message::ActionCardButtons {
            title: "Pick".into(),
            text: "side by side".into(),
            buttons: buttons(2),
            layout: ButtonLayout::Horizontal,
        },
        Message::File {
            media_id: media_id.into(),
            file_name: "report.pdf".into(),
            file_type: "pdf".into(),
        },
    ];
    for n in 2..=5 {
        v.push(Message::ActionCardButtons {
            title: "Pick".into(),
            text: format!("{n} stacked"),
            buttons: buttons(n),
            layout: ButtonLayout::Vertical,
        });
    }
    v
}

#[tokio::test]
async fn every_message_type_is_accepted_and_stored_with_its_msg_key() {
    let sim = sim().await;
    let app = app(&sim);
    let media = app
        .upload_media(&MediaUpload::new(
            MediaType::File,
            "report.pdf",
            b"%PDF-1.4".to_vec(),
        ))
        .await
        .unwrap();
    let messages = all_message_types(media.media_id.as_str());
    for m in &messages {
        app.send_group_message(&robot(), &ops(), m).await.unwrap();
    }
    let got = sim.messages();
    assert_eq!(got.len(), messages.len());
    for (m, g) in messages.iter().zip(&got) {
        assert_eq!(g.msg_key.as_deref(), Some(m.msg_key().as_str()));
        assert_eq!(g.msg_param.as_ref(), Some(&m.msg_param_value()));
        assert_eq!(g.open_conversation_id.as_deref(), Some(SANDBOX_OPS_GROUP));
    }
}

#[tokio::test]
async fn read_status_recall_and_one_to_one_round_trip() {
    let sim = sim().await;
    let app = app(&sim);
    let sent = app
        .send_group_message(&robot(), &ops(), &text("to recall"))
        .await
        .unwrap();
    let status = app
        .query_group_read_status(&robot(), &ops(), &sent.process_query_key, 50, None)
        .await
        .unwrap();
    assert_eq!(status.send_status, "SUCCESS");
    let recall = app
        .recall_group_messages(
            &robot(),
            &ops(),
            vec![sent.process_query_key.clone(), ProcessQueryKey::new("nope")],
        )
        .await
        .unwrap();
    assert_eq!(recall.success_result, vec![sent.process_query_key.clone()]);
    assert!(recall.failed_result.contains_key("nope"));
    assert!(sim.messages()[0].recalled);

    let oto = app
        .send_to_users(
            &robot(),
            vec![UserId::new("manager1234"), UserId::new("nobody")],
            &text("1:1"),
        )
        .await
        .unwrap();
    assert_eq!(oto.invalid_staff_id_list, vec![UserId::new("nobody")]);
    let read = app
        .call(&dingtalk::robot::BatchOtoQuery {
            robot_code: robot(),
            process_query_key: oto.process_query_key.clone(),
        })
        .await
        .unwrap();
    assert_eq!(read.message_read_info_list.len(), 1);
    let recalled = app
        .call(&dingtalk::robot::BatchRecallOto::new(robot(), vec![oto.process_query_key]).unwrap())
        .await
        .unwrap();
    assert_eq!(recalled.success_result.len(), 1);
}

#[tokio::test]
async fn new_dialect_rejection_carries_status_code_and_request_id() {
    let sim = sim().await;
    let err = app(&sim)
        .send_group_message(
            &robot(),
            &OpenConversationId::new("cidNoSuchGroup=="),
            &text("x"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Rejected);
    assert_eq!(err.http_status(), Some(400));
    assert_eq!(err.code(), Some("invalid.openConversationId"));
    assert!(err.request_id().is_some_and(|r| !r.is_empty()));
    assert!(
        err.raw_body()
            .unwrap()
            .contains("invalid.openConversationId")
    );
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn robot_of_another_app_and_group_without_the_robot_are_rejected() {
    let sim = sim().await;
    let app = app(&sim);
    let err = app
        .send_group_message(&RobotCode::new(SANDBOX_APP2_KEY), &ops(), &text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalidParameter.robotCode.auth"));
    let err = app
        .send_group_message(
            &robot(),
            &OpenConversationId::new(SANDBOX_SALES_GROUP),
            &text("x"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Rejected);
    assert_eq!(err.http_status(), Some(400));
}

#[tokio::test]
async fn wrong_app_secret_is_credentials_rejected() {
    let sim = sim().await;
    let app = AppClient::new(
        client_for(&sim),
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new("NotTheSecret9x7"),
        },
    );
    let err = app.access_token().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::CredentialsRejected);
    assert_eq!(err.code(), Some("invalidClientIdOrSecret"));
    assert!(!format!("{err} {err:?}").contains("NotTheSecret9x7"));
    // The old token API speaks the other dialect: HTTP 200 with errcode 40096.
    let err = client_for(&sim)
        .get_token_legacy(
            &SANDBOX_APP_KEY.into(),
            &dingtalk::AppSecret::new("NotTheSecret9x7"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(200));
    assert_eq!(err.code(), Some("40096"));
    assert_eq!(err.class(), ErrorClass::CredentialsRejected);
}

#[tokio::test]
async fn old_dialect_errors_are_errors_despite_http_200() {
    let sim = sim().await;
    let app = app(&sim);
    sim.add_fault(fault(RouteName::MediaUpload, FaultKind::ServerError, 1));
    let up = MediaUpload::new(MediaType::Image, "a.png", vec![0x89, b'P', b'N', b'G']);
    let err = app.upload_media(&up).await.unwrap_err();
    assert_eq!(err.http_status(), Some(200));
    assert_eq!(err.code(), Some("-1"));
    assert!(err.is_retryable());
    // The access token rides in the query of this call; it must not leak into the error.
    let token = app.access_token().await.unwrap();
    assert!(!format!("{err} {err:?}").contains(token.expose()));
    assert!(app.upload_media(&up).await.is_ok());
}

#[tokio::test]
async fn one_thousand_sends_make_one_token_request() {
    let sim = unlimited_sim().await;
    let app = app(&sim);
    for i in 0..1000 {
        app.send_group_message(&robot(), &ops(), &text(&format!("n{i}")))
            .await
            .unwrap();
    }
    assert_eq!(sim.stats().token_requests, 1);
    assert_eq!(sim.messages().len(), 1000);
}

#[tokio::test]
async fn hundred_concurrent_sends_on_a_cold_cache_make_one_token_request() {
    let sim = unlimited_sim().await;
    // Slow the token endpoint down so every sender arrives while the first fetch is in flight.
    sim.add_fault(FaultSpec {
        delay_ms: Some(200),
        ..fault(RouteName::AuthToken, FaultKind::Delay, 1)
    });
    let app = app(&sim);
    let sends = (0..100).map(|i| {
        let app = app.clone();
        async move {
            app.send_group_message(&robot(), &ops(), &text(&format!("c{i}")))
                .await
        }
    });
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    assert_eq!(sim.stats().token_requests, 1);
    assert_eq!(sim.messages().len(), 100);
}

#[tokio::test]
async fn rejected_token_is_refreshed_once_and_the_message_delivered_once() {
    let sim = sim().await;
    let app = app(&sim);
    app.access_token().await.unwrap();
    sim.add_fault(fault(RouteName::GroupSend, FaultKind::TokenInvalid, 1));
    app.send_group_message(&robot(), &ops(), &text("once"))
        .await
        .unwrap();
    assert_eq!(sim.messages().len(), 1);
    assert_eq!(sim.stats().token_requests, 2);
}

#[tokio::test]
async fn a_token_rejected_twice_is_not_retried_forever() {
    let sim = sim().await;
    let app = app(&sim);
    sim.add_fault(fault(RouteName::GroupSend, FaultKind::TokenInvalid, 2));
    let err = app
        .send_group_message(&robot(), &ops(), &text("x"))
        .await
        .unwrap_err();
    assert!(err.is_token_rejected());
    assert_eq!(err.code(), Some("InvalidAuthentication"));
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn expired_token_is_replaced_after_the_simulator_clock_moves() {
    let sim = sim().await;
    let app = app(&sim);
    let first = app.access_token().await.unwrap();
    // The server expires the token while the client still believes in it.
    sim.advance_clock(Duration::from_secs(7201));
    app.send_group_message(&robot(), &ops(), &text("after expiry"))
        .await
        .unwrap();
    let second = app.access_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(sim.messages().len(), 1);
}

/// A clock the test moves by hand (tokio's paused time would also fire the HTTP timeouts).
struct ManualClock {
    start: tokio::time::Instant,
    offset: std::sync::Mutex<Duration>,
}

impl dingtalk::Clock for ManualClock {
    fn now(&self) -> tokio::time::Instant {
        self.start + *self.offset.lock().unwrap()
    }
}

#[tokio::test]
async fn cached_token_is_refreshed_shortly_before_expire_in() {
    let sim = sim().await;
    let clock = std::sync::Arc::new(ManualClock {
        start: tokio::time::Instant::now(),
        offset: std::sync::Mutex::new(Duration::ZERO),
    });
    let app = AppClient::with_clock(
        client_for(&sim),
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
        },
        clock.clone(),
        Duration::from_secs(300),
    );
    app.access_token().await.unwrap();
    *clock.offset.lock().unwrap() = Duration::from_secs(7200 - 301);
    app.access_token().await.unwrap();
    assert_eq!(sim.stats().token_requests, 1);
    *clock.offset.lock().unwrap() = Duration::from_secs(7200 - 299);
    app.access_token().await.unwrap();
    assert_eq!(sim.stats().token_requests, 2);
}

async fn send_with_retries(sim: &SimHandle, kind: FaultKind, delay_ms: Option<u64>) {
    let app = app(sim);
    app.access_token().await.unwrap();
    sim.add_fault(FaultSpec {
        delay_ms,
        ..fault(RouteName::GroupSend, kind, 2)
    });
    // DingTalk asks for a second after a QPS limit; the policy must be willing to wait that.
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(1),
    };
    let (robot, group, message) = (robot(), ops(), text("x"));
    let first = app.send_group_message(&robot, &group, &message).await;
    let err = first.unwrap_err();
    assert!(err.is_retryable(), "{kind:?} should be retryable: {err}");
    policy
        .run(|| app.send_group_message(&robot, &group, &message))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wait_longer_than_the_policy_allows_ends_the_retries() {
    let sim = sim().await;
    let app = app(&sim);
    sim.add_fault(fault(RouteName::GroupSend, FaultKind::QpsLimit, 1));
    let impatient = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let (robot, group, message) = (robot(), ops(), text("x"));
    let err = impatient
        .run(|| app.send_group_message(&robot, &group, &message))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn qps_limit_fault_is_throttled_then_delivered() {
    let sim = sim().await;
    send_with_retries(&sim, FaultKind::QpsLimit, None).await;
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn server_error_fault_is_transient_then_delivered() {
    let sim = sim().await;
    send_with_retries(&sim, FaultKind::ServerError, None).await;
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn dropped_connection_is_transient_then_delivered() {
    let sim = sim().await;
    send_with_retries(&sim, FaultKind::Drop, None).await;
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn delay_past_the_timeout_is_transient() {
    let sim = sim().await;
    // The client times out at 2 s; a delayed request is still handled by the simulator after
    // the client gave up, which is exactly the duplicate risk a real timeout carries.
    send_with_retries(&sim, FaultKind::Delay, Some(2500)).await;
    assert!(!sim.messages().is_empty());
}

#[tokio::test]
async fn real_qps_limit_of_the_simulator_is_classified_as_throttled() {
    let sim = sim().await;
    let app = app(&sim);
    let sends = (0..30).map(|i| {
        let app = app.clone();
        async move {
            app.send_group_message(&robot(), &ops(), &text(&format!("q{i}")))
                .await
        }
    });
    let results = futures::future::join_all(sends).await;
    let throttled: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!throttled.is_empty(), "30 sends at once must exceed 20 QPS");
    for e in throttled {
        assert_eq!(e.class(), ErrorClass::Throttled);
        assert_eq!(e.http_status(), Some(403));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    }
}

fn webhook(sim: &SimHandle, signed: bool) -> WebhookRobot {
    WebhookRobot::new(
        client_for(sim),
        WebhookToken::new(SANDBOX_WEBHOOK_TOKEN),
        signed.then(|| WebhookSecret::new(SANDBOX_WEBHOOK_SECRET)),
    )
}

#[tokio::test]
async fn webhook_messages_of_every_type_are_signed_and_accepted() {
    let sim = sim().await;
    let robot = webhook(&sim, true);
    let payloads = vec![
        WebhookPayload::Text {
            content: "disk full".into(),
        },
        WebhookPayload::Markdown {
            title: "t".into(),
            text: "**x**".into(),
        },
        WebhookPayload::Link {
            title: "t".into(),
            text: "x".into(),
            message_url: "https://example.com".into(),
            pic_url: Some("https://example.com/p.png".into()),
        },
        WebhookPayload::ActionCard {
            title: "t".into(),
            text: "x".into(),
            single_title: "Open".into(),
            single_url: "https://example.com".into(),
        },
        WebhookPayload::ActionCardButtons {
            title: "t".into(),
            text: "x".into(),
            buttons: vec![
                WebhookButton {
                    title: "a".into(),
                    action_url: "https://a".into(),
                },
                WebhookButton {
                    title: "b".into(),
                    action_url: "https://b".into(),
                },
            ],
            horizontal: true,
        },
        WebhookPayload::FeedCard {
            links: vec![FeedLink {
                title: "f".into(),
                message_url: "https://f".into(),
                pic_url: "https://f/p.png".into(),
            }],
        },
    ];
    for p in &payloads {
        robot.send(&WebhookMessage::new(p.clone())).await.unwrap();
    }
    let at = At {
        at_mobiles: vec!["13800000000".into()],
        at_user_ids: vec!["manager1234".into()],
        is_at_all: false,
    };
    robot
        .send(&WebhookMessage::new(payloads[0].clone()).with_at(at))
        .await
        .unwrap();
    let got = sim.messages();
    assert_eq!(got.len(), payloads.len() + 1);
    let last = got.last().unwrap();
    assert_eq!(last.api, "webhook");
    assert_eq!(last.at.as_ref().unwrap()["atMobiles"][0], "13800000000");
    assert_eq!(
        last.payload.as_ref().unwrap()["content"],
        "disk full @13800000000 @manager1234"
    );
}

#[tokio::test]
async fn webhook_with_wrong_secret_or_token_is_rejected_in_the_old_dialect() {
    let sim = sim().await;
    let bad_sign = WebhookRobot::new(
        client_for(&sim),
        WebhookToken::new(SANDBOX_WEBHOOK_TOKEN),
        Some(WebhookSecret::new("SECwrong")),
    );
    let msg = WebhookMessage::new(WebhookPayload::Text {
        content: "x".into(),
    });
    let err = bad_sign.send(&msg).await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (Some(200), Some("310000")));
    let unknown = WebhookRobot::new(client_for(&sim), WebhookToken::new("0".repeat(64)), None);
    let err = unknown.send(&msg).await.unwrap_err();
    assert_eq!(err.code(), Some("300005"));
    assert_eq!(err.class(), ErrorClass::CredentialsRejected);
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn webhook_msg_uuid_makes_a_retry_harmless() {
    let sim = sim().await;
    let robot = webhook(&sim, true);
    let msg = WebhookMessage::new(WebhookPayload::Text {
        content: "once".into(),
    })
    .with_msg_uuid("d-42");
    robot.send(&msg).await.unwrap();
    robot.send(&msg).await.unwrap();
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn webhook_rate_limit_is_throttled_with_the_lockout_as_retry_after() {
    let sim = sim().await;
    let robot = webhook(&sim, true);
    for i in 0..20 {
        robot
            .send(&WebhookMessage::new(WebhookPayload::Text {
                content: format!("m{i}"),
            }))
            .await
            .unwrap();
    }
    let err = robot
        .send(&WebhookMessage::new(WebhookPayload::Text {
            content: "21st".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
}

#[tokio::test]
async fn invalid_input_is_refused_before_any_request() {
    let sim = sim().await;
    let app = app(&sim);
    let err = app
        .send_group_message(
            &robot(),
            &ops(),
            &Message::Link {
                title: "t".into(),
                text: "x".into(),
                pic_url: "https://p".into(),
                message_url: "ftp://nope".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert_eq!(err.field(), Some("messageUrl"));
    let err = app
        .upload_media(&MediaUpload::new(
            MediaType::File,
            "notes.txt",
            b"x".to_vec(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("file_name"));
    let stats = sim.stats();
    assert_eq!(stats.token_requests, 0);
    assert_eq!(stats.accepted, 0);
}
