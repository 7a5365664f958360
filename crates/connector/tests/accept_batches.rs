//! Batched accepts (issue 8): a row the database refuses fails only its own request, never the
//! others committed in the same batch — on SQLite and PostgreSQL. The sync delivery log
//! (issue 12) commits many rows at a time, and a lone row is not held back waiting for others.

use std::sync::Arc;

use connector::api::accept::{Acceptor, LogStats, Recorder};
use connector::store::{
    AttemptOutcome, AttemptRecord, DeliveryMode, DeliveryStatus, FinishedDelivery, GroupKey,
    NewDelivery, Store, connect,
};
use serde_json::json;
use testkit::{Db, TestDb, on_both_databases};
use uuid::Uuid;

struct Env {
    store: Arc<dyn Store>,
    db: TestDb,
}

async fn env(which: Db) -> Option<Env> {
    let db = TestDb::new(which).await?;
    let store = connect(&db.url).await.unwrap();
    Some(Env { store, db })
}

impl Env {
    async fn cleanup(self) {
        self.db.cleanup().await;
    }
}

on_both_databases!(with env;
    one_refused_row_fails_only_its_own_request,
    one_refused_log_row_loses_no_other,
    log_rows_recorded_together_share_a_commit,
    a_lone_log_row_is_written_without_a_flush,
);

fn delivery(id: Uuid) -> NewDelivery {
    let connection_id = Uuid::new_v4();
    NewDelivery {
        run: None,
        id,
        connection_id,
        action: "send_text".into(),
        group_key: GroupKey::Connection { connection_id },
        input: json!({"content": "hi"}).into(),
        mode: DeliveryMode::Async,
        idempotency_key: None,
        request_hash: None,
        lease: None,
    }
}

async fn one_refused_row_fails_only_its_own_request(env: &Env) {
    // A row already holds this id: inserting it again breaks the batch's transaction.
    let taken = Uuid::new_v4();
    env.store.insert_delivery(&delivery(taken)).await.unwrap();
    let acceptor = Acceptor::start(env.store.clone());
    let ids: Vec<Uuid> = (0..200)
        .map(|i| if i == 100 { taken } else { Uuid::new_v4() })
        .collect();
    let answers =
        futures::future::join_all(ids.iter().map(|&id| acceptor.accept(delivery(id)))).await;
    let failed: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, vec![100], "only the refused row fails");
    for (id, answer) in ids.iter().zip(&answers) {
        if *id != taken {
            assert_eq!(answer.as_ref().unwrap().delivery().id, *id);
            assert!(env.store.get_delivery(*id).await.unwrap().is_some());
        }
    }
}

fn finished(id: Uuid) -> FinishedDelivery {
    let new = delivery(id);
    let now = chrono::Utc::now();
    FinishedDelivery {
        id,
        connection_id: new.connection_id,
        action: new.action,
        group_key: new.group_key,
        input: new.input,
        status: DeliveryStatus::Delivered,
        result: Some(json!({"ok": true}).into()),
        last_error: None,
        attempt: AttemptRecord {
            started_at: now,
            finished_at: now,
            outcome: AttemptOutcome::Success,
            error: None,
        },
    }
}

async fn one_refused_log_row_loses_no_other(env: &Env) {
    let taken = Uuid::new_v4();
    env.store.insert_delivery(&delivery(taken)).await.unwrap();
    let recorder = Recorder::start(env.store.clone());
    let ids: Vec<Uuid> = (0..50)
        .map(|i| if i == 25 { taken } else { Uuid::new_v4() })
        .collect();
    for &id in &ids {
        recorder.record(finished(id)).await;
    }
    recorder.flush().await;
    for id in ids.iter().filter(|&&id| id != taken) {
        let stored = env.store.get_delivery(*id).await.unwrap();
        assert!(stored.is_some(), "log row {id} was written");
    }
    let stats = recorder.stats();
    assert_eq!((stats.rows, stats.lost), (49, 1), "{stats:?}");
}

async fn log_rows_recorded_together_share_a_commit(env: &Env) {
    let recorder = Recorder::start(env.store.clone());
    // As under load: many requests finish at once, each queueing its row from its own task.
    let ids: Vec<Uuid> = (0..600).map(|_| Uuid::new_v4()).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let recorder = recorder.clone();
            tokio::spawn(async move { recorder.record(finished(id)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    recorder.flush().await;
    let LogStats {
        commits,
        rows,
        lost,
    } = recorder.stats();
    assert_eq!((rows, lost), (600, 0));
    // 600 rows queued within milliseconds: a commit per row would be 600 commits; gathered, a
    // few (at most 512 rows a commit). Generous, for a loaded machine.
    assert!(
        (2..=30).contains(&commits),
        "{rows} rows in {commits} commits"
    );
    for id in &ids {
        assert!(env.store.get_delivery(*id).await.unwrap().is_some());
    }
}

async fn a_lone_log_row_is_written_without_a_flush(env: &Env) {
    let recorder = Recorder::start(env.store.clone());
    let id = Uuid::new_v4();
    recorder.record(finished(id)).await;
    // Nothing else comes: the row is committed after the short gathering pause, not held
    // until more rows or a flush arrive.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.store.get_delivery(id).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a lone log row was not written within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        recorder.stats(),
        LogStats {
            commits: 1,
            rows: 1,
            lost: 0
        }
    );
}
