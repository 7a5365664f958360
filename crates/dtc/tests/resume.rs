//! Recovery in seconds, not a lease period (issue 8). The leases here last five minutes, so a
//! delivery that arrives sooner after a `kill -9` was taken back, not waited out: on SQLite by
//! the restarted server (it owns the database, under its lock file); on PostgreSQL by the
//! surviving instance, which sees the dead one's heartbeat stop. The time to the first
//! message of each group is printed; BENCHMARKS.md has the figures.

mod support;

use dingtalk_sim::{
    FaultSpec, Fixture, RouteName, SANDBOX_DEV_GROUP, SANDBOX_OPS_GROUP, SimHandle, Simulator,
};
use std::time::{Duration, Instant};
use support::{Server, create_connection, send_async};

const GROUPS: [&str; 2] = [SANDBOX_OPS_GROUP, SANDBOX_DEV_GROUP];
const PER_GROUP: usize = 5;
/// Far longer than any wait below: nothing here may rely on a lease expiring.
const LEASE_SECS: &str = "300";

/// Every send takes `ms` until the faults are cleared, so work is in flight at the kill.
fn slow_sends(sim: &SimHandle, ms: u64) {
    sim.add_fault(FaultSpec::delay_all(RouteName::GroupSend, ms));
}

/// Queue `PER_GROUP` texts in each group through `base`.
async fn queue(http: &reqwest::Client, base: &str, tag: &str) -> Vec<String> {
    let mut all = Vec::new();
    for n in 0..PER_GROUP {
        for group in GROUPS {
            let content = format!("{tag}-{group}-{n}");
            assert!(
                send_async(http, base, "ops", group, &content)
                    .await
                    .is_some()
            );
            all.push(content);
        }
    }
    all
}

fn arrived(sim: &SimHandle, content: &str) -> bool {
    sim.messages()
        .iter()
        .any(|m| m.msg_param.as_ref().and_then(|p| p["content"].as_str()) == Some(content))
}

/// How long after `from` each group's next message arrived, waiting at most `within`.
async fn first_per_group(
    sim: &SimHandle,
    before: usize,
    from: Instant,
    within: Duration,
) -> Vec<Duration> {
    let mut firsts = vec![None; GROUPS.len()];
    while firsts.iter().any(Option::is_none) {
        assert!(
            from.elapsed() < within,
            "groups not resumed within {within:?}: {firsts:?}"
        );
        for m in sim.messages().iter().skip(before) {
            if let Some(g) = GROUPS
                .iter()
                .position(|g| m.open_conversation_id.as_deref() == Some(g))
                && firsts[g].is_none()
            {
                firsts[g] = Some(from.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    firsts.into_iter().map(Option::unwrap).collect()
}

async fn all_arrive(sim: &SimHandle, contents: &[String], within: Duration) {
    let started = Instant::now();
    while !contents.iter().all(|c| arrived(sim, c)) {
        assert!(
            started.elapsed() < within,
            "not everything arrived within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_sqlite_takes_back_every_lease_at_once() {
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let env = [("DTC_DELIVERY_LEASE_SECS", LEASE_SECS)];
    let http = reqwest::Client::new();
    let mut server = Server::start(&db, dir.path(), &sim.base_url(), &env);
    server.wait_ready(&http).await;
    create_connection(&http, &server.base, "ops", None).await;
    slow_sends(&sim, 5_000);
    let queued = queue(&http, &server.base, "sqlite").await;
    // Both groups' heads are claimed and being sent.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A second server on the same database is refused, plainly.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_dtc"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .arg("--data-dir")
        .arg(dir.path())
        .env("DTC_API_TOKEN", support::TOKEN)
        .env(
            "DTC_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another dtc serve is using"), "{stderr}");

    server.kill();
    sim.clear_faults();
    let before = sim.messages().len();
    let restarted = Instant::now();
    let server = Server::start(&db, dir.path(), &sim.base_url(), &env);
    server.wait_ready(&http).await;
    let firsts = first_per_group(&sim, before, restarted, Duration::from_secs(60)).await;
    println!(
        "SQLite: first message of each group {firsts:?} after the restart began (lease {LEASE_SECS} s)"
    );
    all_arrive(&sim, &queued, Duration::from_secs(60)).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_on_postgres_resumes_a_dead_instances_groups() {
    let Some(pg) = testkit::PgSchema::create("dtc_resume").await else {
        return;
    };
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The default heartbeat (2 s): dead after three missed beats, so the survivor resumes
    // within about 6–8 s, not the lease's 300 s.
    let env = [("DTC_DELIVERY_LEASE_SECS", LEASE_SECS)];
    let http = reqwest::Client::new();
    let mut a = Server::start(&pg.url, dir_a.path(), &sim.base_url(), &env);
    a.wait_ready(&http).await;
    create_connection(&http, &a.base, "ops", None).await;
    slow_sends(&sim, 5_000);
    let queued = queue(&http, &a.base, "pg").await;
    // A holds both groups' heads; B comes up and must wait for them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = Server::start(&pg.url, dir_b.path(), &sim.base_url(), &env);
    b.wait_ready(&http).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    a.kill();
    sim.clear_faults();
    let before = sim.messages().len();
    let killed = Instant::now();
    let firsts = first_per_group(&sim, before, killed, Duration::from_secs(60)).await;
    println!(
        "PostgreSQL: the survivor's first message of each group {firsts:?} after the kill (heartbeat 2 s, lease {LEASE_SECS} s)"
    );
    all_arrive(&sim, &queued, Duration::from_secs(60)).await;
    drop(b);
    pg.drop_schema().await;
}
