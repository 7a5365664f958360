//! Batched accepts (issue 8): a row the database refuses fails only its own request, never the
//! others committed in the same batch — on SQLite and PostgreSQL.

use std::sync::Arc;

use connector::api::accept::{Acceptor, Recorder};
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
);

fn delivery(id: Uuid) -> NewDelivery {
    let connection_id = Uuid::new_v4();
    NewDelivery {
        run: None,
        id,
        connection_id,
        action: "send_text".into(),
        group_key: GroupKey::Connection { connection_id },
        input: json!({"content": "hi"}),
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
        result: Some(json!({"ok": true})),
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
}
