//! The store methods the delivery engine adds, on SQLite and (when `DTC_TEST_POSTGRES_URL` is
//! set) PostgreSQL, with a manual clock: progress is saved only under the lease and survives a
//! hand-over; the shared GCRA spaces slots by the interval, refuses past a deadline without
//! reserving, and can be held back.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use connector::store::{
    DeliveryMode, GroupKey, ManualClock, NewDelivery, RateSlot, Store, StoreError,
    connect_with_clock,
};
use serde_json::json;
use testkit::{Db, TestDb, on_both_databases};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);

struct Env {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    db: TestDb,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

async fn env(which: Db) -> Option<Env> {
    let db = TestDb::new(which).await?;
    let clock = Arc::new(ManualClock::new(t0()));
    let store = connect_with_clock(&db.url, clock.clone()).await.unwrap();
    Some(Env { store, clock, db })
}

impl Env {
    async fn cleanup(self) {
        self.db.cleanup().await;
    }
}

on_both_databases!(with env;
    progress_is_saved_only_under_the_lease_and_survives_a_hand_over,
    rate_slots_are_spaced_by_the_interval,
    a_slot_past_the_deadline_is_refused_without_reserving_it,
    holding_a_key_back_delays_only_that_key,
);

async fn progress_is_saved_only_under_the_lease_and_survives_a_hand_over(env: &Env) {
    let s = &env.store;
    let id = Uuid::new_v4();
    s.insert_delivery(&NewDelivery {
        run: None,
        id,
        connection_id: Uuid::new_v4(),
        action: "send_text".into(),
        group_key: GroupKey::Connection {
            connection_id: Uuid::new_v4(),
        },
        input: json!({}),
        mode: DeliveryMode::Async,
        idempotency_key: None,
        request_hash: None,
        lease: None,
    })
    .await
    .unwrap();
    let claimed = s.claim_due("a", LEASE, 10).await.unwrap();
    assert_eq!(claimed[0].progress, None);
    let progress = json!({"completed": 1});
    s.save_progress(id, "a", &progress).await.unwrap();
    // Someone who does not hold the lease cannot write it.
    match s.save_progress(id, "b", &json!({"completed": 9})).await {
        Err(StoreError::LeaseLost { .. }) => {}
        other => panic!("{other:?}"),
    }
    // The lease expires; the next owner sees where the first one got to.
    env.clock.advance(LEASE + Duration::from_secs(1));
    let taken = s.claim_due("b", LEASE, 10).await.unwrap();
    assert_eq!(taken[0].progress, Some(progress.clone()));
    match s.save_progress(id, "a", &json!({"completed": 9})).await {
        Err(StoreError::LeaseLost { .. }) => {}
        other => panic!("the old owner is fenced off: {other:?}"),
    }
    let stored = s.get_delivery(id).await.unwrap().unwrap();
    assert_eq!(stored.delivery.progress, Some(progress));
}

fn granted(slot: RateSlot) -> DateTime<Utc> {
    match slot {
        RateSlot::Granted { at } => at,
        other => panic!("{other:?}"),
    }
}

async fn rate_slots_are_spaced_by_the_interval(env: &Env) {
    let s = &env.store;
    let every = Duration::from_millis(51);
    let ms = |n| chrono::Duration::milliseconds(n);
    for n in 0..5 {
        let at = granted(
            s.take_rate_slot("app:k robot.group_send", every, None)
                .await
                .unwrap(),
        );
        assert_eq!(at, t0() + ms(51 * n));
    }
    // Another key has its own slots.
    let other = granted(
        s.take_rate_slot("app:k robot.oto_send", every, None)
            .await
            .unwrap(),
    );
    assert_eq!(other, t0());
    // Idle time is not saved up as a burst: after a pause the next slot is now.
    env.clock.advance(Duration::from_secs(10));
    let after = granted(
        s.take_rate_slot("app:k robot.group_send", every, None)
            .await
            .unwrap(),
    );
    assert_eq!(after, t0() + ms(10_000));
    let next = granted(
        s.take_rate_slot("app:k robot.group_send", every, None)
            .await
            .unwrap(),
    );
    assert_eq!(next, t0() + ms(10_051));
}

async fn a_slot_past_the_deadline_is_refused_without_reserving_it(env: &Env) {
    let s = &env.store;
    let every = Duration::from_millis(500);
    let key = "app:k robot.group_send";
    granted(s.take_rate_slot(key, every, None).await.unwrap());
    granted(s.take_rate_slot(key, every, None).await.unwrap());
    let soon = t0() + chrono::Duration::milliseconds(100);
    assert_eq!(
        s.take_rate_slot(key, every, Some(soon)).await.unwrap(),
        RateSlot::Denied {
            at: t0() + chrono::Duration::milliseconds(1000)
        }
    );
    // The refused request took nothing: the next one gets the slot it would have had.
    let later = t0() + chrono::Duration::seconds(2);
    assert_eq!(
        granted(s.take_rate_slot(key, every, Some(later)).await.unwrap()),
        t0() + chrono::Duration::milliseconds(1000)
    );
}

async fn holding_a_key_back_delays_only_that_key(env: &Env) {
    let s = &env.store;
    let every = Duration::from_millis(50);
    let until = t0() + chrono::Duration::seconds(1);
    s.push_rate_limit("app:k robot.group_send", until)
        .await
        .unwrap();
    assert_eq!(
        granted(
            s.take_rate_slot("app:k robot.group_send", every, None)
                .await
                .unwrap()
        ),
        until
    );
    assert_eq!(
        granted(
            s.take_rate_slot("app:k media.upload", every, None)
                .await
                .unwrap()
        ),
        t0()
    );
    // Holding back never moves a key's slots earlier.
    s.push_rate_limit("app:k robot.group_send", t0())
        .await
        .unwrap();
    assert_eq!(
        granted(
            s.take_rate_slot("app:k robot.group_send", every, None)
                .await
                .unwrap()
        ),
        until + chrono::Duration::milliseconds(50)
    );
}
