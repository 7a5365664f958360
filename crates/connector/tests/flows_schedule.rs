//! Schedules, with an injected clock: a flow fires at its due instant in its time zone, once per
//! due time however many instances tick (PostgreSQL), and after downtime catches up one fire.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use connector::connections::{ConnectionKind, Connections, NewConnection};
use connector::flows::service::Flows;
use connector::secrets::{Keyring, MasterKey};
use connector::store::{self, ManualClock, RunFilter, Store};
use secrecy::SecretString;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 09:00 every day in Shanghai (01:00 UTC).
const DAILY: &str = r#"
name: morning
trigger: {type: schedule, cron: "0 9 * * *"}
steps:
  - id: hello
    action: send_text
    connection: ops
    input: {group_chat_id: "cidSandboxOps0000000000==", content: "good morning, it is {{ trigger.body.fire_at | localtime }}"}
"#;

async fn flows_on(store: Arc<dyn Store>, clock: Arc<ManualClock>, key: &MasterKey) -> Flows {
    let connections = Arc::new(Connections::new(store.clone(), Keyring::new(key.clone())));
    Flows::new(store, connections, clock)
}

async fn with_ops(store: &Arc<dyn Store>, key: &MasterKey) {
    let connections = Connections::new(store.clone(), Keyring::new(key.clone()));
    connections
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
            qps_quota: None,
            stream: false,
        })
        .await
        .unwrap();
}

async fn runs(store: &Arc<dyn Store>) -> Vec<connector::store::RunRecord> {
    store.list_runs(&RunFilter::default()).await.unwrap().runs
}

#[tokio::test]
async fn a_schedule_fires_at_its_instant_in_its_zone_and_catches_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-27T00:30:00Z")));
    let url = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let store = store::connect_with_clock(&url, clock.clone())
        .await
        .unwrap();
    let key = MasterKey::generate();
    with_ops(&store, &key).await;
    let flows = flows_on(store.clone(), clock.clone(), &key).await;
    let flow = flows.apply_text(DAILY).await.unwrap();
    assert_eq!(flow.fields.next_fire_at, Some(at("2026-11-27T01:00:00Z")));

    clock.set(at("2026-11-27T00:59:59.900Z"));
    assert_eq!(flows.tick().await.unwrap(), 0, "not yet");
    clock.set(at("2026-11-27T01:00:00.050Z"));
    assert_eq!(flows.tick().await.unwrap(), 1);
    assert_eq!(flows.tick().await.unwrap(), 0, "once per due time");
    let run = &runs(&store).await[0];
    assert_eq!(run.flow.trigger_kind, "schedule");
    assert_eq!(
        run.progress.context["trigger"]["body"]["fire_at"],
        "2026-11-27T01:00:00+00:00"
    );
    let sent = store.run_deliveries(run.id).await.unwrap();
    assert_eq!(
        sent[0].input["steps"][0]["message"]["content"], "good morning, it is 2026-11-27 09:00:00",
        "{:?}",
        sent[0].input
    );

    // Down for three days: one fire for the latest missed morning, then on schedule.
    clock.set(at("2026-11-30T03:00:00Z"));
    assert_eq!(flows.tick().await.unwrap(), 1);
    assert_eq!(flows.tick().await.unwrap(), 0);
    let latest = &runs(&store).await[0];
    assert_eq!(
        latest.progress.context["trigger"]["body"]["fire_at"],
        "2026-11-30T01:00:00+00:00"
    );
    let flow = flows.get("morning").await.unwrap().unwrap();
    assert_eq!(flow.fields.next_fire_at, Some(at("2026-12-01T01:00:00Z")));
}

#[tokio::test]
async fn two_instances_on_postgres_fire_each_due_time_once() {
    let Some(pg) = testkit::PgSchema::create("dtc_sched").await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(at("2026-11-27T00:30:00Z")));
    let a = store::connect_with_clock(&pg.url, clock.clone())
        .await
        .unwrap();
    let b = store::connect_with_clock(&pg.url, clock.clone())
        .await
        .unwrap();
    let key = MasterKey::generate();
    with_ops(&a, &key).await;
    let (fa, fb) = (
        Arc::new(flows_on(a.clone(), clock.clone(), &key).await),
        Arc::new(flows_on(b.clone(), clock.clone(), &key).await),
    );
    fa.apply_text(&DAILY.replace("0 9 * * *", "*/10 * * * * *"))
        .await
        .unwrap();
    let mut fired = 0;
    for _ in 0..6 {
        clock.advance(Duration::from_secs(10));
        // Both instances tick at once, several times.
        let ticks: Vec<_> = (0..3)
            .flat_map(|_| [fa.clone(), fb.clone()])
            .map(|f| tokio::spawn(async move { f.tick().await.unwrap() }))
            .collect();
        for t in ticks {
            fired += t.await.unwrap();
        }
    }
    assert_eq!(fired, 6, "one run per due time");
    let all = runs(&a).await;
    assert_eq!(all.len(), 6);
    let mut times: Vec<String> = all
        .iter()
        .map(|r| {
            r.progress.context["trigger"]["body"]["fire_at"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), 6, "{times:?}");
    pg.drop_schema().await;
}
