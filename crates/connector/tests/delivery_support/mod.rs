//! A world for delivery-engine tests: the in-process simulator, a fresh store (temporary SQLite
//! file, or a fresh PostgreSQL schema), an app-robot connection, and helpers to enqueue
//! deliveries the way the API does and to wait for them to finish.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use connector::actions;
use connector::connections::{Connection, ConnectionKind, Connections, NewConnection};
use connector::delivery::{
    DeliveryEngine, EngineConfig, EngineDeps, EngineHandle, LocalLimiter, Notifier, RateLimiter,
};
use connector::secrets::{Keyring, MasterKey};
use connector::store::{
    Clock, DeliveryDetail, DeliveryFilter, DeliveryMode, DeliveryStatus, GroupKey, JsonText,
    LogPage, NewDelivery, Store, SystemClock, connect_with_clock,
};
use connector::targets::Targets;
use dingtalk_sim::{Fixture, GroupFixture, Limits, SimHandle, Simulator};
use secrecy::SecretString;
use serde_json::{Value, json};
pub use testkit::{Db, TestDb};
use uuid::Uuid;

/// A group the simulator does not know: DingTalk answers `invalid.openConversationId`.
pub const UNKNOWN_GROUP: &str = "cidNoSuchGroup000000000==";

pub struct WorldOptions {
    /// Group chats of the sandbox app to use (the sandbox's two, then made-up ones).
    pub groups: usize,
    /// The connection's QPS quota.
    pub qps_quota: u32,
    /// The simulator's per-app, per-API limit (0 = unlimited).
    pub sim_qps: u32,
    /// The DingTalk client's whole-request timeout.
    pub client_timeout: Duration,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            groups: 2,
            qps_quota: 60,
            sim_qps: 60,
            client_timeout: Duration::from_secs(5),
        }
    }
}

pub struct World {
    pub sim: SimHandle,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub connections: Arc<Connections>,
    pub targets: Arc<Targets>,
    pub notifier: Notifier,
    pub conn: Connection,
    pub groups: Vec<String>,
    keyring_key: MasterKey,
    client_timeout: Duration,
    db: TestDb,
}

impl World {
    /// `None` when `db` is PostgreSQL and none is configured (the test is skipped, or fails in CI).
    pub async fn new(db: Db, opts: WorldOptions) -> Option<World> {
        let db = TestDb::new(db).await?;
        let mut fixture = Fixture::sandbox();
        fixture.limits = Limits {
            app_api_qps: opts.sim_qps,
            ..fixture.limits
        };
        for i in fixture.apps[0].groups.len()..opts.groups {
            fixture.apps[0].groups.push(GroupFixture {
                open_conversation_id: format!("cidDtcTestGroup{i:02}00000=="),
                title: format!("Test {i}"),
            });
        }
        let groups = fixture.apps[0]
            .groups
            .iter()
            .take(opts.groups)
            .map(|g| g.open_conversation_id.clone())
            .collect();
        let sim = Simulator::start(fixture, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator starts");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = connect_with_clock(&db.url, clock.clone()).await.unwrap();
        let key = MasterKey::generate();
        let connections = Arc::new(Connections::new(store.clone(), Keyring::new(key.clone())));
        let conn = connections
            .create(NewConnection {
                name: "ops".into(),
                kind: ConnectionKind::AppRobot,
                description: String::new(),
                app_key: Some(dingtalk_sim::SANDBOX_APP_KEY.into()),
                app_secret: Some(SecretString::from(dingtalk_sim::SANDBOX_APP_SECRET)),
                robot_code: Some(dingtalk_sim::SANDBOX_APP_KEY.into()),
                access_token: None,
                secret: None,
                keywords: vec![],
                qps_quota: Some(opts.qps_quota),
                stream: false,
            })
            .await
            .unwrap();
        let targets = Arc::new(targets_for(&sim, opts.client_timeout));
        Some(World {
            sim,
            store,
            clock,
            connections,
            targets,
            notifier: Notifier::default(),
            conn,
            groups,
            keyring_key: key,
            client_timeout: opts.client_timeout,
            db,
        })
    }

    /// Everything a second instance on the same database would have: its own pool, connection
    /// service and targets (so its own token cache).
    pub async fn second_instance(&self) -> (Arc<dyn Store>, Arc<Connections>, Arc<Targets>) {
        let store = connect_with_clock(&self.db.url, self.clock.clone())
            .await
            .unwrap();
        let connections = Arc::new(Connections::new(
            store.clone(),
            Keyring::new(self.keyring_key.clone()),
        ));
        (
            store,
            connections,
            Arc::new(targets_for(&self.sim, self.client_timeout)),
        )
    }

    pub async fn webhook_connection(&self) -> Connection {
        self.connections
            .create(NewConnection {
                name: "hook".into(),
                kind: ConnectionKind::WebhookRobot,
                description: String::new(),
                app_key: None,
                app_secret: None,
                robot_code: None,
                access_token: Some(SecretString::from(dingtalk_sim::SANDBOX_WEBHOOK_TOKEN)),
                secret: Some(SecretString::from(dingtalk_sim::SANDBOX_WEBHOOK_SECRET)),
                keywords: vec![],
                qps_quota: None,
                stream: false,
            })
            .await
            .unwrap()
    }

    /// An engine on this world's store with its own in-process limiter.
    pub fn engine(&self, config: EngineConfig) -> EngineHandle {
        self.engine_with(config, Arc::new(LocalLimiter::default()))
    }

    pub fn engine_with(&self, config: EngineConfig, limiter: Arc<dyn RateLimiter>) -> EngineHandle {
        DeliveryEngine::start(
            config,
            EngineDeps {
                store: self.store.clone(),
                connections: self.connections.clone(),
                targets: self.targets.clone(),
                limiter,
                http: connector::fetch::Fetcher::new(
                    "127.0.0.0/8".parse().unwrap(),
                    std::time::Duration::from_secs(10),
                ),
                clock: self.clock.clone(),
                notifier: self.notifier.clone(),
            },
        )
    }

    /// Accepts one delivery of `action` on `conn`, as `Prefer: respond-async` does.
    pub async fn enqueue(
        &self,
        conn: &Connection,
        action: &str,
        input: Value,
        group: &str,
    ) -> Uuid {
        let new = new_delivery(conn, action, input, group);
        let id = new.id;
        self.store.insert_deliveries(&[new]).await.unwrap();
        self.notifier.notify();
        id
    }

    pub async fn enqueue_text(&self, group: &str, text: &str) -> Uuid {
        self.enqueue_texts(&[(group.to_owned(), text.to_owned())])
            .await
            .remove(0)
    }

    /// Accepts `send_text` deliveries in one transaction, in order.
    pub async fn enqueue_texts(&self, items: &[(String, String)]) -> Vec<Uuid> {
        let news: Vec<NewDelivery> = items
            .iter()
            .map(|(group, text)| {
                new_delivery(
                    &self.conn,
                    "send_text",
                    json!({"group_chat_id": group, "content": text}),
                    group,
                )
            })
            .collect();
        let ids = news.iter().map(|n| n.id).collect();
        self.store.insert_deliveries(&news).await.unwrap();
        self.notifier.notify();
        ids
    }

    pub async fn count(&self, status: DeliveryStatus) -> usize {
        let mut n = 0;
        let mut filter = DeliveryFilter {
            status: Some(status),
            page: LogPage {
                limit: 1000,
                ..Default::default()
            },
            ..DeliveryFilter::default()
        };
        loop {
            let page = self.store.list_deliveries(&filter).await.unwrap();
            n += page.deliveries.len();
            match page.next_cursor {
                Some(c) => filter.page.before_seq = Some(c),
                None => return n,
            }
        }
    }

    /// Polls (every 20 ms) until `done` holds; panics after `timeout`.
    pub async fn wait_for<F, Fut>(&self, timeout: Duration, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let until = std::time::Instant::now() + timeout;
        while !done().await {
            assert!(
                std::time::Instant::now() < until,
                "timed out after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every delivery of `ids` is delivered or failed; returns them in `ids` order.
    pub async fn wait_finished(&self, ids: &[Uuid], timeout: Duration) -> Vec<DeliveryDetail> {
        let until = std::time::Instant::now() + timeout;
        loop {
            let finished = self.count(DeliveryStatus::Delivered).await
                + self.count(DeliveryStatus::Failed).await;
            if finished >= ids.len() {
                let mut out = Vec::new();
                let mut all = true;
                for id in ids {
                    let d = self.store.get_delivery(*id).await.unwrap().unwrap();
                    all &= d.delivery.status.is_finished();
                    out.push(d);
                }
                if all {
                    return out;
                }
            }
            if std::time::Instant::now() > until {
                let mut states = Vec::new();
                for s in DeliveryStatus::ALL {
                    states.push(format!("{s}: {}", self.count(*s).await));
                }
                panic!(
                    "deliveries not finished after {timeout:?} ({}); sim {:?}",
                    states.join(", "),
                    self.sim.stats()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn cleanup(self) {
        self.db.cleanup().await;
    }
}

fn targets_for(sim: &SimHandle, timeout: Duration) -> Targets {
    let mut config = dingtalk::ClientConfig::with_base(&sim.base_url()).unwrap();
    config.timeout = timeout;
    Targets::new(dingtalk::Client::new(config).unwrap())
}

/// A queued delivery as the API builds it: validated input, ordered by connection and group.
pub fn new_delivery(conn: &Connection, action: &str, input: Value, group: &str) -> NewDelivery {
    let validated = actions::validate(action, input).expect("valid input");
    NewDelivery {
        run: None,
        id: Uuid::new_v4(),
        connection_id: conn.id,
        action: action.to_owned(),
        group_key: GroupKey::Group {
            connection_id: conn.id,
            group_chat_id: group.to_owned(),
        },
        input: JsonText::of(&validated).unwrap(),
        mode: DeliveryMode::Async,
        idempotency_key: None,
        request_hash: None,
        lease: None,
    }
}
