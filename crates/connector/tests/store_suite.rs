//! One store test suite, run against SQLite (a temporary file) and against PostgreSQL when
//! `DTC_TEST_POSTGRES_URL` is set (each test in its own fresh schema).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use connector::connections::{
    Connection, ConnectionError, ConnectionKind, ConnectionPatch, ConnectionSecrets, Connections,
    NewConnection,
};
use connector::error::{DingTalkDetail, ErrorBody, ErrorCode};
use connector::secrets::{Keyring, MasterKey, sealed_key_id};
use connector::store::{
    ApiTokenRecord, AttemptOutcome, AttemptRecord, Clock, ConnectionActivity, ConnectionCheck,
    ConnectionQuery, Conversation, Delivery, DeliveryDetail, DeliveryFilter, DeliveryMode,
    DeliveryStatus, FinishedDelivery, GroupKey, InboundMessage, Inserted, JsonText, Lease, LogPage,
    ManualClock, NewDelivery, RateSlot, Sender, SessionWebhook, Store, StoreError,
    connect_with_clock,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use testkit::{Db, TestDb, on_both_databases};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);
const APP_SECRET: &str = "AppSecretPlaintext-7f3a9c";
const ACCESS_TOKEN: &str = "AccessTokenPlaintext-51be02";
const SIGNING_SECRET: &str = "SECSigningPlaintext-0d44e1";

struct Env {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    db: TestDb,
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

async fn env(which: Db) -> Option<Env> {
    let db = TestDb::new(which).await?;
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = connect_with_clock(&db.url, clock.clone()).await.unwrap();
    Some(Env { store, clock, db })
}

impl Env {
    async fn cleanup(self) {
        self.db.cleanup().await;
    }

    fn connections(&self, keyring: Keyring) -> Connections {
        Connections::new(self.store.clone(), keyring)
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

on_both_databases!(with env;

    connections_are_created_listed_and_found_by_id_or_name,
    the_connection_list_pages_searches_and_shows_last_test_and_use,
    an_inbound_message_is_recorded_once_with_its_conversation,
    one_owner_holds_a_stream_socket_until_its_lease_runs_out,
    a_duplicate_connection_name_is_rejected,
    secrets_are_never_stored_in_clear_text,
    patch_changes_only_what_it_names_and_keeps_secrets,
    rotate_key_reseals_every_connection_under_the_new_key,
    missing_connections_are_not_found,
    api_tokens_are_found_by_hash_and_counted,
    a_delivery_round_trips_through_the_store,
    a_batch_is_accepted_in_order_in_one_transaction,
    the_same_idempotency_key_returns_the_first_delivery,
    claim_leases_due_deliveries_oldest_first,
    second_delivery_of_a_group_waits_for_the_first,
    different_groups_are_claimed_in_parallel,
    an_expired_lease_is_taken_back,
    an_ack_from_a_stale_owner_is_rejected,
    a_retrying_delivery_waits_for_its_time_and_holds_up_its_group,
    a_failed_delivery_frees_its_group_and_can_be_retried,
    a_retried_dead_letter_waits_while_its_group_has_one_in_flight,
    release_returns_leases_to_the_queue,
    a_sync_delivery_inserted_in_flight_holds_up_its_group,
    attempts_are_numbered_and_kept_with_the_delivery,
    two_owners_claiming_concurrently_never_share_a_delivery_and_keep_group_order,
    list_filters_by_status_connection_group_and_time_and_pages,
    finished_sync_requests_are_logged_and_never_claimed,
    progress_is_saved_only_under_the_lease_and_survives_a_hand_over,
    rate_slots_are_spaced_by_the_interval,
    a_slot_past_the_deadline_is_refused_without_reserving_it,
    holding_a_key_back_delays_only_that_key,
);

// ---------- helpers ----------

fn keyring() -> Keyring {
    Keyring::new(MasterKey::generate())
}

fn app_robot(name: &str) -> NewConnection {
    serde_json::from_value(json!({
        "name": name,
        "kind": "app_robot",
        "description": "Ops alerts",
        "app_key": "dingappkey0001",
        "app_secret": APP_SECRET,
        "robot_code": "dingrobot0001",
    }))
    .unwrap()
}

fn webhook_robot(name: &str) -> NewConnection {
    serde_json::from_value(json!({
        "name": name,
        "kind": "webhook_robot",
        "access_token": ACCESS_TOKEN,
        "secret": SIGNING_SECRET,
        "keywords": ["alert"],
        "qps_quota": 10,
    }))
    .unwrap()
}

/// A webhook robot's access token and signing secret, opened.
fn webhook_secrets(conns: &Connections, c: &Connection) -> (String, Option<String>) {
    match conns.secrets(c).unwrap() {
        ConnectionSecrets::WebhookRobot {
            access_token,
            secret,
        } => (
            access_token.expose_secret().to_owned(),
            secret.map(|s| s.expose_secret().to_owned()),
        ),
        other => panic!("{other:?}"),
    }
}

fn new_delivery(connection_id: Uuid, group: &str) -> NewDelivery {
    NewDelivery {
        run: None,
        id: Uuid::new_v4(),
        connection_id,
        action: "send_text".into(),
        group_key: group_of(connection_id, group),
        input: json!({"group_chat_id": group, "content": "hello"}).into(),
        mode: DeliveryMode::Async,
        idempotency_key: None,
        request_hash: None,
        lease: None,
    }
}

async fn insert(env: &Env, new: NewDelivery) -> Delivery {
    match env.store.insert_delivery(&new).await.unwrap() {
        Inserted::New(d) => d,
        other => panic!("expected a new delivery, got {other:?}"),
    }
}

fn group_of(connection_id: Uuid, group: &str) -> GroupKey {
    GroupKey::Group {
        connection_id,
        group_chat_id: group.into(),
    }
}

fn attempt(env: &Env, outcome: AttemptOutcome) -> AttemptRecord {
    let now = env.clock.now();
    AttemptRecord {
        started_at: now,
        finished_at: now,
        outcome,
        error: match outcome {
            AttemptOutcome::Success => None,
            _ => Some(ErrorBody {
                dingtalk: Some(DingTalkDetail {
                    http_status: Some(429),
                    code: Some("Forbidden.AccessDenied.QpsLimitForApi".into()),
                    message: "qps limit".into(),
                    request_id: Some("req-1".into()),
                }),
                ..ErrorBody::new(ErrorCode::DingtalkThrottled, "qps limit")
            }),
        },
    }
}

async fn claim(env: &Env, owner: &str, limit: u32) -> Vec<Delivery> {
    env.store.claim_due(owner, LEASE, limit).await.unwrap()
}

async fn complete(env: &Env, d: &Delivery, owner: &str) {
    env.store
        .complete_delivery(
            d.id,
            owner,
            &JsonText::from(json!({"process_query_key": format!("pqk-{}", d.seq)})),
            &attempt(env, AttemptOutcome::Success),
        )
        .await
        .unwrap();
}

/// A delivery as stored now, with its attempts.
async fn stored(env: &Env, id: Uuid) -> DeliveryDetail {
    let found = env.store.get_delivery(id).await.unwrap();
    found.unwrap_or_else(|| panic!("delivery {id} is not stored"))
}

async fn status_of(env: &Env, id: Uuid) -> DeliveryStatus {
    stored(env, id).await.delivery.status
}

/// Two deliveries of one group, the first claimed by `w1`.
async fn two_of_a_group_first_claimed(env: &Env) -> (Delivery, Delivery) {
    let conn = Uuid::new_v4();
    let first = insert(env, new_delivery(conn, "cidA")).await;
    let next = insert(env, new_delivery(conn, "cidA")).await;
    claim(env, "w1", 1).await;
    (first, next)
}

/// `w1`'s delivery `id` fails for good: a dead letter.
async fn fail_for_good(env: &Env, id: Uuid) {
    let failed = attempt(env, AttemptOutcome::PermanentError);
    let error = failed.error.as_ref().unwrap();
    env.store
        .fail_delivery(id, "w1", error, &failed)
        .await
        .unwrap();
}

/// The first page of at most `n`.
fn limit(n: u32) -> LogPage {
    LogPage {
        limit: n,
        ..Default::default()
    }
}

/// `n` deliveries of one connection spread over `groups` group chats.
fn batch(n: usize, groups: usize) -> Vec<NewDelivery> {
    let conn = Uuid::new_v4();
    (0..n)
        .map(|i| new_delivery(conn, &format!("cid{}", i % groups)))
        .collect()
}

fn ids(ds: &[Delivery]) -> Vec<Uuid> {
    ds.iter().map(|d| d.id).collect()
}

// ---------- connections ----------

async fn connections_are_created_listed_and_found_by_id_or_name(env: &Env) {
    let conns = env.connections(keyring());
    let ops = conns.create(app_robot("ops")).await.unwrap();
    let hook = conns.create(webhook_robot("hook")).await.unwrap();
    assert_eq!(ops.kind, ConnectionKind::AppRobot);
    assert_eq!(ops.app_key.as_deref(), Some("dingappkey0001"));
    assert_eq!(ops.qps_quota, None);
    assert_eq!(ops.effective_qps_quota(), 20);
    assert_eq!(hook.effective_qps_quota(), 10);
    assert_eq!(hook.keywords, vec!["alert".to_owned()]);

    assert_eq!(conns.get("ops").await.unwrap(), ops);
    assert_eq!(conns.get(&ops.id.to_string()).await.unwrap(), ops);
    let listed = conns.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["hook", "ops"], "by name");

    let shown = serde_json::to_string(&ops).unwrap();
    assert!(
        !shown.contains(APP_SECRET) && !shown.contains("v1:"),
        "{shown}"
    );
    assert!(!format!("{ops:?}").contains("v1:"));

    match conns.secrets(&ops).unwrap() {
        ConnectionSecrets::AppRobot { app_secret } => {
            assert_eq!(app_secret.expose_secret(), APP_SECRET)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        webhook_secrets(&conns, &hook),
        (ACCESS_TOKEN.into(), Some(SIGNING_SECRET.into()))
    );

    conns.delete("ops").await.unwrap();
    assert!(matches!(
        conns.get("ops").await,
        Err(ConnectionError::NotFound { .. })
    ));
    assert_eq!(conns.list().await.unwrap().len(), 1);
}

async fn the_connection_list_pages_searches_and_shows_last_test_and_use(env: &Env) {
    let conns = env.connections(keyring());
    let mut ids = Vec::new();
    for name in ["alpha", "beta_1", "beta-2", "gamma"] {
        ids.push(conns.create(app_robot(name)).await.unwrap().id);
    }
    let page = |search: Option<&str>, offset: u32, limit: u32| ConnectionQuery {
        search: search.map(str::to_owned),
        offset,
        limit,
    };
    let names = |p: &[(connector::store::ConnectionRecord, ConnectionActivity)]| {
        p.iter()
            .map(|(r, _)| r.fields.name.clone())
            .collect::<Vec<_>>()
    };
    let (p, n) = env.store.connection_page(&page(None, 1, 2)).await.unwrap();
    assert_eq!(
        (names(&p), n),
        (vec!["beta-2".to_owned(), "beta_1".to_owned()], 4)
    );
    // `_` is a letter to the search, not LIKE's wildcard; any case matches.
    let (p, n) = env
        .store
        .connection_page(&page(Some("A_1"), 0, 10))
        .await
        .unwrap();
    assert_eq!((names(&p), n), (vec!["beta_1".to_owned()], 1));
    let (p, n) = env
        .store
        .connection_page(&page(Some("BETA"), 0, 10))
        .await
        .unwrap();
    assert_eq!((p.len(), n), (2, 2));
    // Nothing tested or used yet; then a test and a delivery show.
    assert_eq!(
        p[0].1,
        ConnectionActivity {
            last_check: None,
            last_used_at: None
        }
    );
    let check = ConnectionCheck {
        checked_at: env.clock.now(),
        ok: false,
        message: "DingTalk refused the AppSecret".into(),
        code: Some("invalidClientIdOrSecret".into()),
    };
    env.store
        .put_connection_check(ids[0], &check)
        .await
        .unwrap();
    let d = insert(env, new_delivery(ids[0], "cidA==")).await;
    let (p, _) = env
        .store
        .connection_page(&page(Some("alpha"), 0, 10))
        .await
        .unwrap();
    assert_eq!(p[0].1.last_check.as_ref(), Some(&check));
    assert_eq!(p[0].1.last_used_at, Some(d.times.created_at));
    let all = env.store.connection_names().await.unwrap();
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta-2", "beta_1", "gamma"]);
    assert_eq!(
        env.store.recent_groups(ids[0], 10).await.unwrap(),
        ["cidA=="]
    );
}

async fn an_inbound_message_is_recorded_once_with_its_conversation(env: &Env) {
    let conn = env
        .connections(keyring())
        .create(app_robot("ops"))
        .await
        .unwrap();
    let message = |msg_id: &str, title: Option<&str>| InboundMessage {
        id: Uuid::new_v4(),
        connection_id: conn.id,
        msg_id: msg_id.into(),
        received_at: env.clock.now(),
        msgtype: "text".into(),
        text: Some("id".into()),
        message: json!({"msgId": msg_id}),
        sender: Sender {
            nick: "Li Lei".into(),
            staff_id: Some("manager1234".into()),
        },
        conversation: Conversation {
            id: "cidGroup==".into(),
            group: true,
            title: title.map(str::to_owned),
        },
        session: Some(SessionWebhook {
            sealed_url: "sealed-url".into(),
            expires_at: env.clock.now() + chrono::Duration::minutes(90),
        }),
    };
    assert!(
        env.store
            .record_inbound(&message("m1", Some("Ops")))
            .await
            .unwrap()
    );
    // A redelivery of the same message is recognised.
    assert!(
        !env.store
            .record_inbound(&message("m1", Some("Ops")))
            .await
            .unwrap()
    );
    env.advance(Duration::from_secs(5));
    assert!(
        env.store
            .record_inbound(&message("m2", None))
            .await
            .unwrap()
    );
    let list = env.store.list_conversations(conn.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].conversation,
        message("m1", Some("Ops")).conversation,
        "a message without a title keeps it"
    );
    assert_eq!(list[0].messages, 2);
    assert_eq!(list[0].last_seen_at, env.clock.now());

    // A message is found again by DingTalk's id (to reply to it), with its conversation.
    let m1 = env
        .store
        .inbound_message(conn.id, "m1")
        .await
        .unwrap()
        .unwrap();
    let first = message("m1", Some("Ops"));
    assert_eq!(m1.conversation, first.conversation);
    assert_eq!(m1.sender, first.sender);
    assert_eq!(
        m1.session.map(|s| s.sealed_url),
        Some("sealed-url".to_owned())
    );
    assert!(
        env.store
            .inbound_message(conn.id, "m9")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.store
            .inbound_message(Uuid::new_v4(), "m1")
            .await
            .unwrap()
            .is_none(),
        "another connection's message is not found"
    );
}

async fn one_owner_holds_a_stream_socket_until_its_lease_runs_out(env: &Env) {
    let id = Uuid::new_v4();
    let holds = |owner| env.store.hold_stream(id, owner, Duration::from_secs(10));
    assert!(holds("a").await.unwrap());
    assert!(!holds("b").await.unwrap(), "a holds it");
    env.advance(Duration::from_secs(5));
    assert!(holds("a").await.unwrap(), "renewed");
    env.advance(Duration::from_secs(9));
    assert!(!holds("b").await.unwrap(), "still a's");
    env.advance(Duration::from_secs(2));
    assert!(holds("b").await.unwrap(), "taken over");
    assert!(!holds("a").await.unwrap());
    env.store.release_stream(id, "b").await.unwrap();
    assert!(holds("a").await.unwrap(), "released");
}

async fn a_duplicate_connection_name_is_rejected(env: &Env) {
    let conns = env.connections(keyring());
    conns.create(app_robot("ops")).await.unwrap();
    let err = conns.create(app_robot("ops")).await.unwrap_err();
    assert!(
        matches!(&err, ConnectionError::Duplicate { name } if name == "ops"),
        "{err}"
    );
    conns.create(app_robot("dev")).await.unwrap();
    let rename = ConnectionPatch {
        name: Some("ops".into()),
        ..Default::default()
    };
    let err = conns.update("dev", rename).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Duplicate { .. }), "{err}");
}

async fn secrets_are_never_stored_in_clear_text(env: &Env) {
    let conns = env.connections(keyring());
    let ops = conns.create(app_robot("ops")).await.unwrap();
    conns.create(webhook_robot("hook")).await.unwrap();
    // Rewrite once more so old page versions and the WAL have seen several copies.
    let patch = ConnectionPatch {
        description: Some("rotated".into()),
        ..Default::default()
    };
    conns.update("ops", patch).await.unwrap();

    for record in env.store.list_connections().await.unwrap() {
        let sealed = &record.fields.sealed_secrets;
        assert!(sealed.starts_with("v1:"));
        for plain in [APP_SECRET, ACCESS_TOKEN, SIGNING_SECRET] {
            assert!(!sealed.contains(plain));
        }
    }
    if let Some(file) = env.db.sqlite_file() {
        let mut bytes = std::fs::read(&file).unwrap();
        // Committed pages may still sit in the write-ahead log.
        let wal = file.with_extension("db-wal");
        if wal.exists() {
            bytes.extend(std::fs::read(&wal).unwrap());
        }
        assert!(
            contains(&bytes, b"dingappkey0001"),
            "the test reads the right file"
        );
        for plain in [APP_SECRET, ACCESS_TOKEN, SIGNING_SECRET] {
            assert!(
                !contains(&bytes, plain.as_bytes()),
                "{plain} found in the database"
            );
        }
    }
    // The decrypted value is still there for the sender.
    let ops = conns.get(&ops.id.to_string()).await.unwrap();
    assert!(matches!(conns.secrets(&ops).unwrap(),
        ConnectionSecrets::AppRobot { app_secret } if app_secret.expose_secret() == APP_SECRET));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn patch_changes_only_what_it_names_and_keeps_secrets(env: &Env) {
    let conns = env.connections(keyring());
    let hook = conns.create(webhook_robot("hook")).await.unwrap();
    env.advance(Duration::from_secs(1));
    let patch: ConnectionPatch =
        serde_json::from_value(json!({"description": "new", "qps_quota": null, "secret": null}))
            .unwrap();
    let updated = conns.update("hook", patch).await.unwrap();
    assert_eq!(updated.description, "new");
    assert_eq!(updated.qps_quota, None);
    assert_eq!(updated.keywords, hook.keywords);
    assert_eq!(updated.created_at, hook.created_at);
    assert!(updated.updated_at > hook.updated_at);
    assert_eq!(
        webhook_secrets(&conns, &updated),
        (ACCESS_TOKEN.into(), None),
        "null clears the signing secret"
    );

    let new_token = ConnectionPatch {
        access_token: Some(SecretString::from("NewToken123".to_owned())),
        ..Default::default()
    };
    let updated = conns.update(&hook.id.to_string(), new_token).await.unwrap();
    assert!(matches!(conns.secrets(&updated).unwrap(),
        ConnectionSecrets::WebhookRobot { access_token, .. } if access_token.expose_secret() == "NewToken123"));

    let bad = ConnectionPatch {
        kind: Some(ConnectionKind::AppRobot),
        ..Default::default()
    };
    let err = conns.update("hook", bad).await.unwrap_err();
    assert!(
        matches!(err, ConnectionError::WrongKind { field: "kind", .. }),
        "{err}"
    );
    let bad = ConnectionPatch {
        qps_quota: Some(Some(61)),
        ..Default::default()
    };
    let err = conns.update("hook", bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Invalid {
                field: "qps_quota",
                ..
            }
        ),
        "{err}"
    );
}

async fn rotate_key_reseals_every_connection_under_the_new_key(env: &Env) {
    let old = MasterKey::generate();
    let conns = env.connections(Keyring::new(old.clone()));
    conns.create(app_robot("ops")).await.unwrap();
    conns.create(webhook_robot("hook")).await.unwrap();

    let new = MasterKey::generate();
    let rotated = conns
        .rotate_key(Keyring {
            current: new.clone(),
            previous: vec![old.clone()],
        })
        .await
        .unwrap();
    assert_eq!(rotated, 2);
    for record in env.store.list_connections().await.unwrap() {
        assert_eq!(
            sealed_key_id(&record.fields.sealed_secrets).unwrap(),
            new.key_id()
        );
    }
    // The old key is no longer needed to read anything.
    let fresh = env.connections(Keyring::new(new));
    let ops = fresh.get("ops").await.unwrap();
    assert!(matches!(fresh.secrets(&ops).unwrap(),
        ConnectionSecrets::AppRobot { app_secret } if app_secret.expose_secret() == APP_SECRET));
    let hook = fresh.get("hook").await.unwrap();
    assert!(fresh.secrets(&hook).is_ok());
    // And the old key alone can no longer read them.
    let stale = env.connections(Keyring::new(old));
    assert!(matches!(
        stale.secrets(&ops),
        Err(ConnectionError::Crypto(_))
    ));
}

async fn missing_connections_are_not_found(env: &Env) {
    let conns = env.connections(keyring());
    for id_or_name in ["nope", &Uuid::new_v4().to_string()] {
        assert!(matches!(
            conns.get(id_or_name).await,
            Err(ConnectionError::NotFound { .. })
        ));
        assert!(matches!(
            conns.delete(id_or_name).await,
            Err(ConnectionError::NotFound { .. })
        ));
        assert!(matches!(
            conns.update(id_or_name, ConnectionPatch::default()).await,
            Err(ConnectionError::NotFound { .. })
        ));
    }
}

async fn api_tokens_are_found_by_hash_and_counted(env: &Env) {
    assert_eq!(env.store.count_api_tokens().await.unwrap(), 0);
    let token = ApiTokenRecord {
        id: Uuid::new_v4(),
        token_hash: "ab".repeat(32),
        label: "admin".into(),
        role: connector::store::Role::Operator,
        created_at: start_time(),
        last_used_at: None,
    };
    env.store.insert_api_token(&token).await.unwrap();
    assert_eq!(env.store.count_api_tokens().await.unwrap(), 1);
    assert_eq!(
        env.store
            .find_api_token_by_hash(&token.token_hash)
            .await
            .unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        env.store
            .find_api_token_by_hash(&"cd".repeat(32))
            .await
            .unwrap(),
        None
    );
    let again = ApiTokenRecord {
        id: Uuid::new_v4(),
        ..token
    };
    assert!(matches!(
        env.store.insert_api_token(&again).await,
        Err(StoreError::Duplicate { .. })
    ));
    let used = start_time() + chrono::Duration::minutes(3);
    env.store.touch_api_token(token.id, used).await.unwrap();
    let listed = env.store.list_api_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].role, connector::store::Role::Operator);
    assert_eq!(listed[0].last_used_at, Some(used));
    assert!(env.store.delete_api_token(token.id).await.unwrap());
    assert!(!env.store.delete_api_token(token.id).await.unwrap());
    assert_eq!(env.store.count_api_tokens().await.unwrap(), 0);
}

// ---------- deliveries ----------

async fn a_delivery_round_trips_through_the_store(env: &Env) {
    let conn = Uuid::new_v4();
    let mut new = new_delivery(conn, "cidA");
    new.idempotency_key = Some("key-1".into());
    new.request_hash = Some("hash-1".into());
    let d = insert(env, new.clone()).await;
    assert_eq!(d.id, new.id);
    assert_eq!(d.connection_id, conn);
    assert_eq!(d.action, "send_text");
    assert_eq!(d.group_key, new.group_key);
    assert_eq!(d.input, new.input.to_value());
    assert_eq!(d.status, DeliveryStatus::Queued);
    assert_eq!(d.mode, DeliveryMode::Async);
    assert_eq!(d.attempts, 0);
    assert_eq!(d.next_attempt_at, start_time());
    assert_eq!(d.times.created_at, start_time());
    assert_eq!(d.lease_owner, None);
    assert_eq!(d.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(d.request_hash.as_deref(), Some("hash-1"));
    let got = stored(env, d.id).await;
    assert_eq!(got.delivery, d);
    assert!(got.attempt_log.is_empty());
    assert!(
        env.store
            .get_delivery(Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_batch_is_accepted_in_order_in_one_transaction(env: &Env) {
    let batch = batch(50, 3);
    let conn = batch[0].connection_id;
    let inserted = env.store.insert_deliveries(&batch).await.unwrap();
    assert_eq!(inserted.len(), 50);
    let seqs: Vec<i64> = inserted.iter().map(|i| i.delivery().seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for (new, got) in batch.iter().zip(&inserted) {
        assert!(got.is_new());
        assert_eq!(got.delivery().id, new.id);
    }
    // A batch that fails part-way leaves nothing behind.
    let dup_id = batch[0].id;
    let bad = vec![
        new_delivery(conn, "cidX"),
        NewDelivery {
            run: None,
            id: dup_id,
            ..new_delivery(conn, "cidX")
        },
    ];
    assert!(env.store.insert_deliveries(&bad).await.is_err());
    assert!(env.store.get_delivery(bad[0].id).await.unwrap().is_none());
}

async fn the_same_idempotency_key_returns_the_first_delivery(env: &Env) {
    let conn = Uuid::new_v4();
    let mut first = new_delivery(conn, "cidA");
    first.idempotency_key = Some("order-42".into());
    first.request_hash = Some("h1".into());
    let first = insert(env, first).await;

    let mut again = new_delivery(conn, "cidA");
    again.idempotency_key = Some("order-42".into());
    again.request_hash = Some("h2".into());
    match env.store.insert_delivery(&again).await.unwrap() {
        Inserted::Existing(d) => {
            assert_eq!(d.id, first.id);
            assert_eq!(
                d.request_hash.as_deref(),
                Some("h1"),
                "caller compares hashes"
            );
        }
        other => panic!("expected the existing delivery, got {other:?}"),
    }
    // Within a batch too.
    let mut in_batch = new_delivery(conn, "cidA");
    in_batch.idempotency_key = Some("order-42".into());
    let out = env
        .store
        .insert_deliveries(&[new_delivery(conn, "cidB"), in_batch])
        .await
        .unwrap();
    assert!(out[0].is_new());
    assert_eq!(out[1], Inserted::Existing(first.clone()));

    let found = env
        .store
        .find_by_idempotency_key(conn, "order-42")
        .await
        .unwrap();
    assert_eq!(found, Some(first.clone()));
    assert_eq!(
        env.store
            .find_by_idempotency_key(conn, "other")
            .await
            .unwrap(),
        None
    );
    // The key is scoped to the connection.
    let mut elsewhere = new_delivery(Uuid::new_v4(), "cidA");
    elsewhere.idempotency_key = Some("order-42".into());
    assert!(
        env.store
            .insert_delivery(&elsewhere)
            .await
            .unwrap()
            .is_new()
    );
    // Deliveries without a key never collide.
    insert(env, new_delivery(conn, "cidA")).await;
    insert(env, new_delivery(conn, "cidA")).await;
}

async fn claim_leases_due_deliveries_oldest_first(env: &Env) {
    let conn = Uuid::new_v4();
    let a = insert(env, new_delivery(conn, "cidA")).await;
    let b = insert(env, new_delivery(conn, "cidB")).await;
    let c = insert(env, new_delivery(conn, "cidC")).await;
    let claimed = claim(env, "w1", 2).await;
    assert_eq!(ids(&claimed), [a.id, b.id]);
    for d in &claimed {
        assert_eq!(d.status, DeliveryStatus::InFlight);
        assert_eq!(d.lease_owner.as_deref(), Some("w1"));
        assert_eq!(d.lease_expires_at, Some(start_time() + LEASE));
    }
    assert_eq!(ids(&claim(env, "w2", 10).await), [c.id]);
    assert!(claim(env, "w3", 10).await.is_empty());
}

async fn second_delivery_of_a_group_waits_for_the_first(env: &Env) {
    let conn = Uuid::new_v4();
    let first = insert(env, new_delivery(conn, "cidA")).await;
    let second = insert(env, new_delivery(conn, "cidA")).await;
    let claimed = claim(env, "w1", 10).await;
    assert_eq!(ids(&claimed), [first.id]);
    assert!(
        claim(env, "w2", 10).await.is_empty(),
        "second must wait while the first is in flight"
    );
    complete(env, &claimed[0], "w1").await;
    assert_eq!(ids(&claim(env, "w2", 10).await), [second.id]);
}

async fn different_groups_are_claimed_in_parallel(env: &Env) {
    let conn = Uuid::new_v4();
    let mut heads = Vec::new();
    for group in ["cidA", "cidB", "cidC"] {
        heads.push(insert(env, new_delivery(conn, group)).await.id);
        insert(env, new_delivery(conn, group)).await;
    }
    let claimed = claim(env, "w1", 10).await;
    assert_eq!(ids(&claimed), heads, "one per group: each group's oldest");
}

async fn an_expired_lease_is_taken_back(env: &Env) {
    let conn = Uuid::new_v4();
    let d = insert(env, new_delivery(conn, "cidA")).await;
    insert(env, new_delivery(conn, "cidA")).await;
    assert_eq!(ids(&claim(env, "crashed", 10).await), [d.id]);
    env.advance(LEASE - Duration::from_secs(1));
    assert!(claim(env, "w2", 10).await.is_empty(), "lease still live");
    env.advance(Duration::from_secs(1));
    let taken = claim(env, "w2", 10).await;
    assert_eq!(ids(&taken), [d.id], "the same delivery, not the next one");
    assert_eq!(taken[0].lease_owner.as_deref(), Some("w2"));
    assert_eq!(
        taken[0].lease_expires_at,
        Some(start_time() + LEASE + LEASE)
    );
}

async fn an_ack_from_a_stale_owner_is_rejected(env: &Env) {
    let conn = Uuid::new_v4();
    let d = insert(env, new_delivery(conn, "cidA")).await;
    claim(env, "old", 1).await;
    env.advance(LEASE);
    claim(env, "new", 1).await;

    let ok = attempt(env, AttemptOutcome::Success);
    let err = env
        .store
        .complete_delivery(d.id, "old", &JsonText::from(json!({})), &ok)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::LeaseLost { delivery_id, owner } if *delivery_id == d.id && owner == "old"),
        "{err}"
    );
    let failed = attempt(env, AttemptOutcome::TransientError);
    let error = failed.error.clone().unwrap();
    assert!(matches!(
        env.store
            .schedule_retry(d.id, "old", start_time(), &error, &failed)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        env.store.fail_delivery(d.id, "old", &error, &failed).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        env.store.record_attempt(d.id, "old", &failed).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        env.store.extend_lease(d.id, "old", LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let detail = stored(env, d.id).await;
    assert_eq!(detail.delivery.status, DeliveryStatus::InFlight);
    assert_eq!(detail.delivery.lease_owner.as_deref(), Some("new"));
    assert!(
        detail.attempt_log.is_empty(),
        "no rejected ack left a trace"
    );

    // The current owner's ack applies, once.
    env.store
        .complete_delivery(
            d.id,
            "new",
            &JsonText::from(json!({"process_query_key": "q"})),
            &ok,
        )
        .await
        .unwrap();
    assert!(matches!(
        env.store
            .complete_delivery(d.id, "new", &JsonText::from(json!({})), &ok)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    let done = stored(env, d.id).await.delivery;
    assert_eq!(done.status, DeliveryStatus::Delivered);
    assert_eq!(done.result, Some(json!({"process_query_key": "q"})));
    assert_eq!(done.lease_owner, None);
}

async fn a_retrying_delivery_waits_for_its_time_and_holds_up_its_group(env: &Env) {
    let (d, next) = two_of_a_group_first_claimed(env).await;
    let failed = attempt(env, AttemptOutcome::TransientError);
    let retry_at = start_time() + Duration::from_secs(5);
    env.store
        .schedule_retry(
            d.id,
            "w1",
            retry_at,
            failed.error.as_ref().unwrap(),
            &failed,
        )
        .await
        .unwrap();
    let got = stored(env, d.id).await.delivery;
    assert_eq!(got.status, DeliveryStatus::Retrying);
    assert_eq!(got.next_attempt_at, retry_at);
    assert_eq!(got.attempts, 1);
    assert_eq!(got.last_error, failed.error);
    assert_eq!(got.lease_owner, None);

    assert!(
        claim(env, "w1", 10).await.is_empty(),
        "neither the retry (not due) nor the next of its group"
    );
    env.advance(Duration::from_secs(5));
    assert_eq!(ids(&claim(env, "w1", 10).await), [d.id]);
    assert_eq!(status_of(env, next.id).await, DeliveryStatus::Queued);
}

async fn a_failed_delivery_frees_its_group_and_can_be_retried(env: &Env) {
    let (d, next) = two_of_a_group_first_claimed(env).await;
    fail_for_good(env, d.id).await;
    assert_eq!(status_of(env, d.id).await, DeliveryStatus::Failed);
    let claimed = claim(env, "w1", 10).await;
    assert_eq!(
        ids(&claimed),
        [next.id],
        "a dead letter does not block its group"
    );
    complete(env, &claimed[0], "w1").await;

    let requeued = env.store.retry_failed(d.id).await.unwrap();
    assert_eq!(requeued.status, DeliveryStatus::Queued);
    assert_eq!(ids(&claim(env, "w1", 10).await), [d.id]);
    // Only failed deliveries can be retried.
    let err = env.store.retry_failed(next.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidTransition {
                from: DeliveryStatus::Delivered,
                to: DeliveryStatus::Queued,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        env.store.retry_failed(Uuid::new_v4()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn a_retried_dead_letter_waits_while_its_group_has_one_in_flight(env: &Env) {
    let (dead, next) = two_of_a_group_first_claimed(env).await;
    fail_for_good(env, dead.id).await;
    let in_flight = claim(env, "w1", 1).await;
    assert_eq!(ids(&in_flight), [next.id]);
    // The retried one is now its group's oldest unfinished delivery, but its group is busy.
    env.store.retry_failed(dead.id).await.unwrap();
    assert!(claim(env, "w2", 10).await.is_empty());
    complete(env, &in_flight[0], "w1").await;
    assert_eq!(ids(&claim(env, "w2", 10).await), [dead.id]);
}

async fn release_returns_leases_to_the_queue(env: &Env) {
    let conn = Uuid::new_v4();
    let a = insert(env, new_delivery(conn, "cidA")).await;
    let b = insert(env, new_delivery(conn, "cidB")).await;
    let c = insert(env, new_delivery(conn, "cidC")).await;
    claim(env, "leaving", 2).await;
    claim(env, "staying", 1).await;
    assert_eq!(env.store.release("leaving").await.unwrap(), 2);
    assert_eq!(status_of(env, a.id).await, DeliveryStatus::Queued);
    assert_eq!(status_of(env, b.id).await, DeliveryStatus::Queued);
    assert_eq!(status_of(env, c.id).await, DeliveryStatus::InFlight);
    // Claimable again at once, without waiting for the lease to run out.
    assert_eq!(ids(&claim(env, "other", 10).await), [a.id, b.id]);
    assert_eq!(env.store.release("nobody").await.unwrap(), 0);
}

async fn a_sync_delivery_inserted_in_flight_holds_up_its_group(env: &Env) {
    let conn = Uuid::new_v4();
    let mut sync = new_delivery(conn, "cidA");
    sync.mode = DeliveryMode::Sync;
    sync.lease = Some(Lease {
        owner: "request-1".into(),
        duration: LEASE,
    });
    let sync = insert(env, sync).await;
    assert_eq!(sync.status, DeliveryStatus::InFlight);
    assert_eq!(sync.lease_owner.as_deref(), Some("request-1"));
    let later = insert(env, new_delivery(conn, "cidA")).await;
    assert!(claim(env, "w1", 10).await.is_empty());
    complete(env, &sync, "request-1").await;
    assert_eq!(ids(&claim(env, "w1", 10).await), [later.id]);
}

async fn finished_sync_requests_are_logged_and_never_claimed(env: &Env) {
    let conn = Uuid::new_v4();
    let now = chrono::Utc::now();
    let attempt = AttemptRecord {
        started_at: now,
        finished_at: now + chrono::Duration::milliseconds(7),
        outcome: AttemptOutcome::Success,
        error: None,
    };
    let ok = FinishedDelivery {
        id: Uuid::new_v4(),
        connection_id: conn,
        action: "send_text".into(),
        group_key: group_of(conn, "cidA"),
        input: json!({"content": "hi"}).into(),
        status: DeliveryStatus::Delivered,
        result: Some(json!({"process_query_key": "k"}).into()),
        last_error: None,
        attempt: attempt.clone(),
    };
    let failed = FinishedDelivery {
        id: Uuid::new_v4(),
        status: DeliveryStatus::Failed,
        result: None,
        last_error: Some(ErrorBody::new(ErrorCode::DingtalkRejected, "refused")),
        attempt: AttemptRecord {
            outcome: AttemptOutcome::PermanentError,
            ..attempt
        },
        ..ok.clone()
    };
    env.store
        .record_finished(&[ok.clone(), failed.clone()])
        .await
        .unwrap();
    let got = stored(env, ok.id).await;
    assert_eq!(got.delivery.status, DeliveryStatus::Delivered);
    assert_eq!(got.delivery.mode, DeliveryMode::Sync);
    assert_eq!(
        got.delivery.result,
        ok.result.as_ref().map(JsonText::to_value)
    );
    // Its one attempt, read off the row (it is logged without an attempt row).
    assert_eq!(got.attempt_log.len(), 1);
    let a = &got.attempt_log[0];
    assert_eq!((a.attempt, a.outcome), (1, AttemptOutcome::Success));
    assert_eq!(a.error, None);
    assert_eq!(a.started_at, got.delivery.times.created_at);
    assert_eq!(a.finished_at, got.delivery.times.updated_at);
    let got = stored(env, failed.id).await;
    assert_eq!(got.delivery.status, DeliveryStatus::Failed);
    assert_eq!(got.delivery.last_error, failed.last_error);
    assert_eq!(got.attempt_log.len(), 1);
    assert_eq!(got.attempt_log[0].outcome, AttemptOutcome::PermanentError);
    assert_eq!(got.attempt_log[0].error, failed.attempt.error);
    assert!(claim(env, "w1", 10).await.is_empty());
    // A later queued delivery of the same group is not held up by them.
    let later = insert(env, new_delivery(conn, "cidA")).await;
    assert_eq!(ids(&claim(env, "w1", 10).await), [later.id]);

    // A large batch (written as multi-row statements) keeps every row's own values, in order.
    let batch: Vec<FinishedDelivery> = (0..37)
        .map(|i| {
            let row = if i % 3 == 0 { &failed } else { &ok };
            FinishedDelivery {
                id: Uuid::new_v4(),
                input: json!({"content": format!("message {i}")}).into(),
                ..row.clone()
            }
        })
        .collect();
    env.store.record_finished(&batch).await.unwrap();
    let mut seqs = Vec::new();
    for (i, row) in batch.iter().enumerate() {
        let got = stored(env, row.id).await;
        assert_eq!(got.delivery.input, row.input.to_value(), "row {i}");
        assert_eq!(got.delivery.status, row.status, "row {i}");
        assert_eq!(got.delivery.last_error, row.last_error, "row {i}");
        assert_eq!(got.attempt_log.len(), 1, "row {i}");
        assert_eq!(got.attempt_log[0].outcome, row.attempt.outcome, "row {i}");
        assert_eq!(got.attempt_log[0].error, row.attempt.error, "row {i}");
        assert_eq!(
            got.attempt_log[0].started_at, got.delivery.times.created_at,
            "row {i}"
        );
        assert_eq!(
            got.attempt_log[0].finished_at, got.delivery.times.updated_at,
            "row {i}"
        );
        seqs.push(got.delivery.seq);
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in batch order: {seqs:?}"
    );
    // One row the database refuses (an id already logged) refuses the whole batch: nothing of
    // it is written, so the caller can retry the rows one by one.
    let fresh = FinishedDelivery {
        id: Uuid::new_v4(),
        ..ok.clone()
    };
    assert!(
        env.store
            .record_finished(&[fresh.clone(), ok.clone()])
            .await
            .is_err()
    );
    assert!(env.store.get_delivery(fresh.id).await.unwrap().is_none());
}

async fn attempts_are_numbered_and_kept_with_the_delivery(env: &Env) {
    let conn = Uuid::new_v4();
    let d = insert(env, new_delivery(conn, "cidA")).await;
    claim(env, "w1", 1).await;
    let rejected = attempt(env, AttemptOutcome::TokenRejected);
    assert_eq!(
        env.store
            .record_attempt(d.id, "w1", &rejected)
            .await
            .unwrap(),
        1
    );
    env.store.extend_lease(d.id, "w1", LEASE).await.unwrap();
    env.advance(Duration::from_secs(1));
    complete(env, &d, "w1").await;
    let detail = stored(env, d.id).await;
    assert_eq!(detail.delivery.attempts, 2);
    let log: Vec<_> = detail
        .attempt_log
        .iter()
        .map(|a| (a.attempt, a.outcome))
        .collect();
    assert_eq!(
        log,
        [
            (1, AttemptOutcome::TokenRejected),
            (2, AttemptOutcome::Success)
        ]
    );
    assert_eq!(detail.attempt_log[0].error, rejected.error);
    assert_eq!(detail.attempt_log[0].started_at, start_time());
    assert_eq!(
        detail.attempt_log[1].finished_at,
        start_time() + Duration::from_secs(1)
    );
}

async fn two_owners_claiming_concurrently_never_share_a_delivery_and_keep_group_order(env: &Env) {
    let batch = batch(120, 8);
    let accepted = env.store.insert_deliveries(&batch).await.unwrap();
    let seq_of: HashMap<Uuid, (GroupKey, i64)> = accepted
        .iter()
        .map(|i| {
            (
                i.delivery().id,
                (i.delivery().group_key.clone(), i.delivery().seq),
            )
        })
        .collect();

    // Every claim is logged as soon as it returns, before its ack: a group's next delivery can
    // only be claimed after that ack, so per group the log is in claim order.
    let log = Arc::new(Mutex::new(Vec::new()));
    let worker = |owner: &'static str| {
        let store = env.store.clone();
        let clock = env.clock.clone();
        let log = log.clone();
        async move {
            let mut mine = 0;
            let mut idle = 0;
            while idle < 50 {
                let claimed = store.claim_due(owner, LEASE, 4).await.unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                log.lock().unwrap().extend(claimed.iter().map(|d| d.id));
                for d in claimed {
                    let ok = AttemptRecord {
                        started_at: clock.now(),
                        finished_at: clock.now(),
                        outcome: AttemptOutcome::Success,
                        error: None,
                    };
                    store
                        .complete_delivery(d.id, owner, &JsonText::from(json!({})), &ok)
                        .await
                        .unwrap();
                    mine += 1;
                }
            }
            mine
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(worker("a")), tokio::spawn(worker("b")));
    let (a, b) = (a.unwrap(), b.unwrap());

    let log = log.lock().unwrap().clone();
    let mut seen = HashSet::new();
    for id in &log {
        assert!(seen.insert(*id), "delivery {id} claimed twice");
    }
    assert_eq!(seen.len(), 120, "every delivery was claimed");
    let mut last: HashMap<&GroupKey, i64> = HashMap::new();
    for id in &log {
        let (group, seq) = &seq_of[id];
        if let Some(prev) = last.insert(group, *seq) {
            assert!(prev < *seq, "group {group:?}: {seq} claimed after {prev}");
        }
    }
    assert_eq!(last.len(), 8);
    assert_eq!(a + b, 120);
    let delivered = env
        .store
        .list_deliveries(&DeliveryFilter {
            status: Some(DeliveryStatus::Delivered),
            page: limit(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.deliveries.len(), 120);
}

async fn list_filters_by_status_connection_group_and_time_and_pages(env: &Env) {
    let c1 = Uuid::new_v4();
    let c2 = Uuid::new_v4();
    let d1 = insert(env, new_delivery(c1, "cidA")).await;
    env.advance(Duration::from_secs(10));
    let d2 = insert(env, new_delivery(c1, "cidB")).await;
    env.advance(Duration::from_secs(10));
    let d3 = insert(env, new_delivery(c2, "cidA")).await;
    let t3 = start_time() + Duration::from_secs(20);
    let claimed = claim(env, "w1", 1).await;
    assert_eq!(ids(&claimed), [d1.id]);
    complete(env, &claimed[0], "w1").await;

    let list = |filter: DeliveryFilter| {
        let store = env.store.clone();
        async move { ids(&store.list_deliveries(&filter).await.unwrap().deliveries) }
    };
    let page = |created_from, created_before| LogPage {
        created_from: Some(created_from),
        created_before: Some(created_before),
        ..Default::default()
    };
    let cases = [
        (
            DeliveryFilter::default(),
            vec![d3.id, d2.id, d1.id],
            "newest first",
        ),
        (
            DeliveryFilter {
                status: Some(DeliveryStatus::Delivered),
                ..Default::default()
            },
            vec![d1.id],
            "delivered",
        ),
        (
            DeliveryFilter {
                status: Some(DeliveryStatus::Queued),
                ..Default::default()
            },
            vec![d3.id, d2.id],
            "queued",
        ),
        (
            DeliveryFilter {
                connection_id: Some(c1),
                ..Default::default()
            },
            vec![d2.id, d1.id],
            "one connection",
        ),
        (
            DeliveryFilter {
                connection_id: Some(c2),
                group_chat_id: Some("cidA".into()),
                ..Default::default()
            },
            vec![d3.id],
            "a connection's group chat",
        ),
        (
            DeliveryFilter {
                group_chat_id: Some("cidA".into()),
                ..Default::default()
            },
            vec![d3.id, d1.id],
            "a group chat across connections",
        ),
        (
            DeliveryFilter {
                page: page(start_time() + Duration::from_secs(10), t3),
                ..Default::default()
            },
            vec![d2.id],
            "created in a time range",
        ),
        (
            DeliveryFilter {
                connection_id: Some(c1),
                status: Some(DeliveryStatus::Failed),
                ..Default::default()
            },
            vec![],
            "all filters together",
        ),
    ];
    for (filter, want, what) in cases {
        assert_eq!(list(filter).await, want, "{what}");
    }

    // Paging with the cursor.
    let first = env
        .store
        .list_deliveries(&DeliveryFilter {
            page: limit(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&first.deliveries), [d3.id, d2.id]);
    let cursor = first.next_cursor.expect("a full page has a cursor");
    let second = env
        .store
        .list_deliveries(&DeliveryFilter {
            page: LogPage {
                limit: 2,
                before_seq: Some(cursor),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&second.deliveries), [d1.id]);
    assert_eq!(second.next_cursor, None);
}

// ---------- connect ----------

#[tokio::test]
async fn an_unknown_database_url_is_refused_without_echoing_it() {
    let err = connector::store::connect("mysql://user:hunter2@db/dtc")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn sqlite_store_is_created_in_wal_mode_and_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested").join("dir").join("dtc.db");
    let url = format!("sqlite://{}", file.display());
    let store = connector::store::connect(&url).await.unwrap();
    assert_eq!(store.dialect(), "sqlite");
    let conn = Uuid::new_v4();
    let d = store
        .insert_delivery(&new_delivery(conn, "cidA"))
        .await
        .unwrap();
    drop(store);
    assert!(file.exists());
    let reopened = connector::store::connect(&url).await.unwrap();
    let again = reopened.get_delivery(d.delivery().id).await.unwrap();
    assert!(
        again.is_some(),
        "data survives a reopen (migrations are idempotent)"
    );

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

// The store methods the delivery engine adds: progress under the lease, and the shared rate
// limiter (GCRA) that spaces slots by the interval, refuses past a deadline without reserving,
// and can be held back.

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
        input: json!({}).into(),
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

/// The slot `key` is granted now, waiting as long as it takes.
async fn slot(s: &Arc<dyn Store>, key: &str, every: Duration) -> DateTime<Utc> {
    granted(s.take_rate_slot(key, every, None).await.unwrap())
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
        assert_eq!(at, start_time() + ms(51 * n));
    }
    // Another key has its own slots.
    let other = granted(
        s.take_rate_slot("app:k robot.oto_send", every, None)
            .await
            .unwrap(),
    );
    assert_eq!(other, start_time());
    // Idle time is not saved up as a burst: after a pause the next slot is now.
    env.clock.advance(Duration::from_secs(10));
    let after = granted(
        s.take_rate_slot("app:k robot.group_send", every, None)
            .await
            .unwrap(),
    );
    assert_eq!(after, start_time() + ms(10_000));
    let next = granted(
        s.take_rate_slot("app:k robot.group_send", every, None)
            .await
            .unwrap(),
    );
    assert_eq!(next, start_time() + ms(10_051));
}

async fn a_slot_past_the_deadline_is_refused_without_reserving_it(env: &Env) {
    let s = &env.store;
    let every = Duration::from_millis(500);
    let key = "app:k robot.group_send";
    slot(s, key, every).await;
    slot(s, key, every).await;
    let soon = start_time() + chrono::Duration::milliseconds(100);
    assert_eq!(
        s.take_rate_slot(key, every, Some(soon)).await.unwrap(),
        RateSlot::Denied {
            at: start_time() + chrono::Duration::milliseconds(1000)
        }
    );
    // The refused request took nothing: the next one gets the slot it would have had.
    let later = start_time() + chrono::Duration::seconds(2);
    assert_eq!(
        granted(s.take_rate_slot(key, every, Some(later)).await.unwrap()),
        start_time() + chrono::Duration::milliseconds(1000)
    );
}

async fn holding_a_key_back_delays_only_that_key(env: &Env) {
    let s = &env.store;
    let every = Duration::from_millis(50);
    let until = start_time() + chrono::Duration::seconds(1);
    s.push_rate_limit("app:k robot.group_send", until)
        .await
        .unwrap();
    assert_eq!(slot(s, "app:k robot.group_send", every).await, until);
    assert_eq!(slot(s, "app:k media.upload", every).await, start_time());
    // Holding back never moves a key's slots earlier.
    s.push_rate_limit("app:k robot.group_send", start_time())
        .await
        .unwrap();
    assert_eq!(
        slot(s, "app:k robot.group_send", every).await,
        until + chrono::Duration::milliseconds(50)
    );
}
