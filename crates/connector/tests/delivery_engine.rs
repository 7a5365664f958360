//! The delivery engine against the in-process simulator, on a temporary SQLite store and — when
//! `DTC_TEST_POSTGRES_URL` is set — on PostgreSQL (each test in a fresh schema): deliveries are
//! retried through transient failures and throttling, fail at once with DingTalk's code when
//! refused for good, arrive in acceptance order per group while groups proceed in parallel, and
//! a graceful shutdown hands in-flight work to another instance.

mod delivery_support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use connector::delivery::{
    BackoffConfig, EngineConfig, Limited, LocalLimiter, RateScope, StepError, WithinLimits,
    execute_within_limits,
};
use connector::error::{ErrorBody, ErrorCode};
use connector::store::{AttemptOutcome, DeliveryStatus};
use delivery_support::*;
use dingtalk_sim::{FaultKind, FaultSpec, RouteName, SANDBOX_DEV_GROUP, SANDBOX_OPS_GROUP};
use serde_json::json;
use testkit::on_both_databases;

on_both_databases!(
    retries_then_delivers_after_two_qps_limits,
    a_token_rejected_once_is_refreshed_and_delivered_once,
    a_token_rejected_again_after_refresh_is_retried_then_delivered,
    an_unknown_group_fails_at_once_with_dingtalks_code,
    a_deleted_connection_fails_its_queued_deliveries,
    every_delivery_survives_thirty_percent_faults,
    each_group_arrives_in_acceptance_order_while_groups_interleave,
    a_split_message_resumes_after_its_last_accepted_part,
    graceful_shutdown_releases_in_flight_leases_to_another_engine,
    a_crashed_instances_lease_is_taken_back_when_it_expires,
    a_slow_send_keeps_its_lease,
    gives_up_after_max_attempts_with_the_last_error,
);

fn texts_received(w: &World) -> Vec<String> {
    w.sim
        .messages()
        .iter()
        .filter_map(|m| {
            m.msg_param
                .as_ref()?
                .get("content")?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

async fn retries_then_delivers_after_two_qps_limits(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    w.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::QpsLimit, 2));
    let engine = w.engine(test_config());
    let id = w
        .enqueue_text(SANDBOX_OPS_GROUP, "after two QPS limits")
        .await;
    let d = w
        .wait_finished(&[id], Duration::from_secs(20))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    let outcomes: Vec<_> = d.attempt_log.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::TransientError,
            AttemptOutcome::TransientError,
            AttemptOutcome::Success
        ]
    );
    assert_eq!(
        dingtalk_code(d.attempt_log[0].error.as_ref()),
        Some("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    );
    // DingTalk's advice is to wait a second after a QPS limit.
    let gap = d.attempt_log[1].started_at - d.attempt_log[0].finished_at;
    assert!(gap >= chrono::Duration::milliseconds(990), "{gap}");
    assert_eq!(d.delivery.result.as_ref().unwrap()["msg_key"], "sampleText");
    assert_eq!(texts_received(&w), ["after two QPS limits"]);
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn a_token_rejected_once_is_refreshed_and_delivered_once(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    let engine = w.engine(test_config());
    // Warm the token cache, so the rejected token is a cached one.
    let first = w.enqueue_text(SANDBOX_OPS_GROUP, "warm-up").await;
    w.wait_finished(&[first], Duration::from_secs(10)).await;
    w.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::TokenInvalid, 1));
    let id = w
        .enqueue_text(SANDBOX_OPS_GROUP, "after a token refresh")
        .await;
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    // The client refreshed the token and repeated the call within the one attempt.
    assert_eq!(d.delivery.attempts, 1);
    assert_eq!(texts_received(&w), ["warm-up", "after a token refresh"]);
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn a_token_rejected_again_after_refresh_is_retried_then_delivered(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    w.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::TokenInvalid, 2));
    let engine = w.engine(test_config());
    let id = w.enqueue_text(SANDBOX_OPS_GROUP, "token trouble").await;
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    let outcomes: Vec<_> = d.attempt_log.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::TokenRejected, AttemptOutcome::Success]
    );
    assert_eq!(d.attempt_log[0].error.as_ref().unwrap().token_rejections, 1);
    assert_eq!(texts_received(&w), ["token trouble"]);
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn an_unknown_group_fails_at_once_with_dingtalks_code(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    let engine = w.engine(test_config());
    let id = w.enqueue_text(UNKNOWN_GROUP, "nobody reads this").await;
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Failed);
    assert_eq!(d.delivery.attempts, 1);
    let error = d.delivery.last_error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::DingtalkRejected, "{error:?}");
    let dingtalk = error.dingtalk.as_ref().unwrap();
    assert_eq!(dingtalk.code.as_deref(), Some("invalid.openConversationId"));
    assert_eq!(dingtalk.http_status, Some(400));
    assert!(dingtalk.request_id.is_some(), "{error:?}");
    assert_eq!(d.attempt_log[0].outcome, AttemptOutcome::PermanentError);
    assert!(texts_received(&w).is_empty());
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn a_deleted_connection_fails_its_queued_deliveries(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    let id = w.enqueue_text(SANDBOX_OPS_GROUP, "orphan").await;
    w.connections.delete(&w.conn.id.to_string()).await.unwrap();
    let engine = w.engine(test_config());
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Failed);
    assert_eq!(
        d.delivery.last_error.as_ref().unwrap().code,
        ErrorCode::ConnectionNotFound
    );
    assert!(texts_received(&w).is_empty());
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn every_delivery_survives_thirty_percent_faults(db: Db) {
    let Some(w) = World::new(
        db,
        WorldOptions {
            groups: 6,
            client_timeout: Duration::from_millis(300),
            ..WorldOptions::default()
        },
    )
    .await
    else {
        return;
    };
    // Four kinds at 8.5 % each: 1 - 0.915^4 ≈ 30 % of requests get one of them.
    for kind in [
        FaultKind::QpsLimit,
        FaultKind::ServerError,
        FaultKind::Delay,
        FaultKind::Drop,
    ] {
        w.sim.add_fault(FaultSpec {
            route: RouteName::GroupSend,
            kind,
            count: None,
            probability: Some(0.085),
            // Past the client's timeout: the client gives up although DingTalk may accept it.
            delay_ms: Some(600),
        });
    }
    let groups = w.groups.clone();
    let mut good = Vec::new();
    let mut texts = Vec::new();
    for i in 0..300 {
        let text = format!("fault test {i}");
        good.push((groups[i % groups.len()].clone(), text.clone()));
        texts.push(text);
    }
    let good_ids = w.enqueue_texts(&good).await;
    let bad: Vec<_> = (0..5)
        .map(|i| (UNKNOWN_GROUP.to_owned(), format!("unknown group {i}")))
        .collect();
    let bad_ids = w.enqueue_texts(&bad).await;
    let started = std::time::Instant::now();
    let engine = w.engine(EngineConfig {
        concurrency: 16,
        ..test_config()
    });
    let done = w.wait_finished(&good_ids, Duration::from_secs(150)).await;
    println!(
        "300 deliveries through 30% faults in {:.1}s; sim stats {:?}",
        started.elapsed().as_secs_f64(),
        w.sim.stats()
    );
    for d in &done {
        assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    }
    let retried = done.iter().filter(|d| d.delivery.attempts > 1).count();
    assert!(retried > 30, "faults forced retries ({retried})");
    let received: HashSet<String> = texts_received(&w).into_iter().collect();
    let lost: Vec<_> = texts.iter().filter(|t| !received.contains(*t)).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    for d in w.wait_finished(&bad_ids, Duration::from_secs(60)).await {
        assert_eq!(d.delivery.status, DeliveryStatus::Failed, "{d:?}");
        assert_eq!(
            dingtalk_code(d.delivery.last_error.as_ref()),
            Some("invalid.openConversationId")
        );
    }
    let stats = w.sim.stats();
    assert!(stats.faulted > 50, "{stats:?}");
    assert_eq!(
        stats.throttled, 0,
        "the engine itself never exceeded the quota"
    );
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn each_group_arrives_in_acceptance_order_while_groups_interleave(db: Db) {
    let Some(w) = World::new(
        db,
        WorldOptions {
            groups: 3,
            ..WorldOptions::default()
        },
    )
    .await
    else {
        return;
    };
    // Failures force retries, which must not let a later message of the group overtake.
    w.sim.add_fault(FaultSpec {
        route: RouteName::GroupSend,
        kind: FaultKind::ServerError,
        count: None,
        probability: Some(0.1),
        delay_ms: None,
    });
    let groups = w.groups.clone();
    let mut batch = Vec::new();
    for i in 0..50 {
        for g in &groups {
            batch.push((g.clone(), format!("{g} #{i:02}")));
        }
    }
    let mut ids = w.enqueue_texts(&batch[..75]).await;
    // A text over DingTalk's 15000-byte limit is one delivery sent as numbered parts.
    let long: String = (0..3000).map(|i| format!("w{i:04} ")).collect();
    ids.extend(w.enqueue_texts(&[(groups[0].clone(), long.clone())]).await);
    ids.extend(w.enqueue_texts(&batch[75..]).await);
    let engine = w.engine(test_config());
    let done = w.wait_finished(&ids, Duration::from_secs(60)).await;
    for d in &done {
        assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    }
    // What each group should show, in acceptance order, from the stored plans.
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &done {
        for step in d.delivery.input["steps"].as_array().unwrap() {
            let g = step["group_chat_id"].as_str().unwrap().to_owned();
            let content = step["message"]["content"].as_str().unwrap().to_owned();
            want.entry(g).or_default().push(content);
        }
    }
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let messages = w.sim.messages();
    for m in &messages {
        let content = m.msg_param.as_ref().unwrap()["content"].as_str().unwrap();
        got.entry(m.open_conversation_id.clone().unwrap())
            .or_default()
            .push(content.to_owned());
    }
    assert_eq!(
        want[&groups[0]].len(),
        50 + 2,
        "the long text went as two parts"
    );
    assert_eq!(got, want);
    // Groups proceeded side by side rather than one after another.
    let first_sixty: HashSet<_> = messages[..60]
        .iter()
        .map(|m| m.open_conversation_id.clone())
        .collect();
    assert_eq!(first_sixty.len(), 3, "groups interleave");
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn a_split_message_resumes_after_its_last_accepted_part(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    // The first part goes through (a zero delay is a pass), the second gets a 500.
    w.sim.add_fault(FaultSpec {
        delay_ms: Some(0),
        ..fault(RouteName::GroupSend, FaultKind::Delay, 1)
    });
    w.sim
        .add_fault(fault(RouteName::GroupSend, FaultKind::ServerError, 1));
    let long: String = (0..6000).map(|i| format!("w{i:04} ")).collect();
    let id = w.enqueue_text(SANDBOX_OPS_GROUP, &long).await;
    let engine = w.engine(test_config());
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    assert_eq!(d.delivery.attempts, 2);
    let parts = d.delivery.input["steps"].as_array().unwrap().len();
    assert_eq!(parts, 3);
    // Each part arrived once: the retry resumed at part 2 instead of starting over.
    let want: Vec<String> = d.delivery.input["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["message"]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts_received(&w), want);
    let result = d.delivery.result.as_ref().unwrap();
    assert_eq!(result["parts"].as_array().unwrap().len(), 3, "{result}");
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn graceful_shutdown_releases_in_flight_leases_to_another_engine(db: Db) {
    let Some(w) = World::new(
        db,
        WorldOptions {
            groups: 4,
            ..WorldOptions::default()
        },
    )
    .await
    else {
        return;
    };
    // Every send hangs for a while, so the first engine is mid-send when it is told to stop.
    w.sim
        .add_fault(FaultSpec::delay_next(RouteName::GroupSend, 4, 3000));
    let batch: Vec<_> = (0..8)
        .map(|i| (w.groups[i % 4].clone(), format!("handed over {i}")))
        .collect();
    let ids = w.enqueue_texts(&batch).await;
    let first = w.engine(EngineConfig {
        owner: "first".into(),
        lease: Duration::from_secs(600),
        ..test_config()
    });
    // Wait until all four groups' heads are in flight.
    w.wait_for(Duration::from_secs(5), || async {
        w.count(DeliveryStatus::InFlight).await == 4
    })
    .await;
    let report = first.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.abandoned, 4, "{report:?}");
    assert_eq!(report.released, 4, "{report:?}");
    assert_eq!(w.count(DeliveryStatus::InFlight).await, 0);
    // Without the release, the 10-minute leases would hold these groups up.
    let second = w.engine(EngineConfig {
        owner: "second".into(),
        ..test_config()
    });
    let done = w.wait_finished(&ids, Duration::from_secs(20)).await;
    for d in &done {
        assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    }
    let received: HashSet<String> = texts_received(&w).into_iter().collect();
    for (_, text) in &batch {
        assert!(received.contains(text), "{text} lost");
    }
    second.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn a_crashed_instances_lease_is_taken_back_when_it_expires(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    let id = w
        .enqueue_text(SANDBOX_OPS_GROUP, "outlived its sender")
        .await;
    // An instance claims it and dies without a word.
    let lease = Duration::from_millis(500);
    let claimed = w.store.claim_due("crashed", lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let started = std::time::Instant::now();
    let engine = w.engine(test_config());
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    assert!(
        started.elapsed() >= lease / 2,
        "not before the lease ran out"
    );
    assert_eq!(texts_received(&w), ["outlived its sender"]);
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

async fn a_slow_send_keeps_its_lease(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    w.sim.add_fault(FaultSpec {
        delay_ms: Some(1500),
        ..fault(RouteName::GroupSend, FaultKind::Delay, 1)
    });
    let id = w.enqueue_text(SANDBOX_OPS_GROUP, "slow but once").await;
    let short = Duration::from_millis(600);
    // One at a time, so the first cannot renew its lease by claiming the delivery again.
    let a = w.engine(EngineConfig {
        owner: "a".into(),
        lease: short,
        concurrency: 1,
        ..test_config()
    });
    w.wait_for(Duration::from_secs(5), || async {
        w.count(DeliveryStatus::InFlight).await == 1
    })
    .await;
    // A second instance would take the delivery over if the first let its lease run out.
    let b = w.engine(EngineConfig {
        owner: "b".into(),
        lease: short,
        ..test_config()
    });
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    // Let the first instance's send run to its end before counting what arrived.
    a.shutdown(Duration::from_secs(3)).await;
    b.shutdown(Duration::from_secs(1)).await;
    assert_eq!(texts_received(&w), ["slow but once"]);
    let d = w.store.get_delivery(id).await.unwrap().unwrap();
    assert_eq!(d.delivery.attempts, 1);
    w.cleanup().await;
}

async fn gives_up_after_max_attempts_with_the_last_error(db: Db) {
    let Some(w) = World::new(db, WorldOptions::default()).await else {
        return;
    };
    w.sim.add_fault(FaultSpec {
        route: RouteName::GroupSend,
        kind: FaultKind::ServerError,
        count: None,
        probability: Some(1.0),
        delay_ms: None,
    });
    let mut config = test_config();
    config.backoff.policy.max_attempts = 3;
    let engine = w.engine(config);
    let id = w.enqueue_text(SANDBOX_OPS_GROUP, "never accepted").await;
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Failed);
    assert_eq!(d.delivery.attempts, 3);
    let error = d.delivery.last_error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::DingtalkUnavailable, "{error:?}");
    assert!(!error.retryable, "a delivery that gave up is not retryable");
    assert_eq!(dingtalk_code(Some(error)), Some("system.error"));
    assert_eq!(error.dingtalk.as_ref().unwrap().http_status, Some(500));
    assert!(
        error.message.contains("gave up after 3 attempts"),
        "{error:?}"
    );
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_path_gets_retry_after_instead_of_exceeding_the_quota() {
    let Some(w) = World::new(
        Db::Sqlite,
        WorldOptions {
            qps_quota: 1,
            ..WorldOptions::default()
        },
    )
    .await
    else {
        return;
    };
    let limiter = LocalLimiter::default();
    let target = w.targets.get(&w.connections, &w.conn).unwrap();
    let scope = RateScope::of(&w.connections, &w.conn).unwrap();
    let http = connector::fetch::Fetcher::new(
        "127.0.0.0/8".parse().unwrap(),
        std::time::Duration::from_secs(10),
    );
    let action = |text: &str| {
        connector::actions::validate(
            "send_text",
            json!({"group_chat_id": SANDBOX_OPS_GROUP, "content": text}),
        )
        .unwrap()
    };
    let deadline = || Some(tokio::time::Instant::now() + Duration::from_millis(200));
    let out = execute_within_limits(
        &action("first"),
        &target,
        WithinLimits {
            scope: &scope,
            limiter: &limiter,
            http: &http,
            deadline: deadline(),
            retry: &dingtalk::RetryPolicy::default(),
            reply: None,
            request_id: "req-1",
        },
    )
    .await
    .unwrap();
    assert_eq!(out["msg_key"], "sampleText");
    let err = execute_within_limits(
        &action("second"),
        &target,
        WithinLimits {
            scope: &scope,
            limiter: &limiter,
            http: &http,
            deadline: deadline(),
            retry: &dingtalk::RetryPolicy::default(),
            reply: None,
            request_id: "req-2",
        },
    )
    .await
    .unwrap_err();
    match err.error {
        StepError::Limited(Limited::RetryAfter(after)) => {
            assert!(after > Duration::from_millis(800), "{after:?}");
            assert!(after <= Duration::from_millis(1020), "{after:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.completed_parts, 0);
    assert_eq!(texts_received(&w), ["first"]);
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_robot_delivery_goes_through_its_own_limit() {
    let Some(w) = World::new(Db::Sqlite, WorldOptions::default()).await else {
        return;
    };
    let hook = w.webhook_connection().await;
    let engine = w.engine(test_config());
    let id = w
        .enqueue(
            &hook,
            "webhook_send",
            json!({"msg_type": "text", "content": "via webhook"}),
            SANDBOX_DEV_GROUP,
        )
        .await;
    let d = w
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.delivery.status, DeliveryStatus::Delivered, "{d:?}");
    let m = w.sim.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].api, "webhook");
    engine.shutdown(Duration::from_secs(1)).await;
    w.cleanup().await;
}

/// DingTalk's own code in an error record.
fn dingtalk_code(e: Option<&ErrorBody>) -> Option<&str> {
    e?.dingtalk.as_ref()?.code.as_deref()
}

fn test_config() -> EngineConfig {
    EngineConfig {
        concurrency: 16,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        batch_size: 32,
        backoff: BackoffConfig {
            policy: dingtalk::RetryPolicy {
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                ..BackoffConfig::default().policy
            },
            ..BackoffConfig::default()
        },
        jitter_seed: Some(7),
        ..EngineConfig::default()
    }
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
