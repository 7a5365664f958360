//! The durable queue of `dtc serve` (the real binary, as a child process), against the
//! in-process simulator with its limits off and rate limits off in the server:
//! - async accepts per second (`Prefer: respond-async`, each answered after its commit) on
//!   SQLite and, when `DTC_TEST_POSTGRES_URL` is set, PostgreSQL — target >= 5,000/s on SQLite;
//! - the sync path (`send_text` answered once DingTalk accepted it) in the same run;
//! - the drain rate of queued deliveries with an unlimited simulator;
//! - the server's resident memory with 100,000 deliveries queued.
//!
//! `cargo bench -p dtc --bench queue [-- QUEUED CONCURRENCY]`

use dingtalk_sim::{
    Fixture, GroupFixture, Limits, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SimHandle, Simulator,
};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef";
const GROUPS: usize = 64;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn start(
    db: &str,
    dir: &std::path::Path,
    sim: &SimHandle,
    engine: bool,
    http: &reqwest::Client,
) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_dtc"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--dingtalk-api-base",
            &sim.base_url(),
            "--dingtalk-oapi-base",
            &sim.base_url(),
        ])
        .env("DTC_API_TOKEN", TOKEN)
        .env("DTC_LOG", "warn")
        .env(
            "DTC_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env("DTC_ENFORCE_RATE_LIMITS", "false")
        .env("DTC_DELIVERY_CONCURRENCY", if engine { "64" } else { "0" })
        .stdout(Stdio::null())
        .spawn()
        .expect("dtc serve starts");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "dtc serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn drive<F, Fut>(n: usize, concurrency: usize, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    op(i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    start.elapsed()
}

async fn send(http: &reqwest::Client, base: &str, i: usize, respond_async: bool) {
    let mut req = http
        .post(format!("{base}/v1/connections/bench/actions/send_text"))
        .bearer_auth(TOKEN)
        .json(&json!({"group_chat_id": group(i), "content": format!("m{i}")}));
    if respond_async {
        req = req.header("Prefer", "respond-async");
    }
    let resp = req.send().await.expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.bytes().await.unwrap();
}

fn group(i: usize) -> String {
    format!("cidBench{:06}==", i % GROUPS)
}

async fn connection(http: &reqwest::Client, base: &str) {
    let resp = http
        .post(format!("{base}/v1/connections"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "bench", "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "robot_code": SANDBOX_APP_KEY}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
}

/// Accepts per second into a fresh database with no engine running (pure accept cost).
async fn accepts(
    label: &str,
    db: &str,
    sim: &SimHandle,
    n: usize,
    concurrency: usize,
    http: &reqwest::Client,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let server = start(db, dir.path(), sim, false, http).await;
    connection(http, &server.base).await;
    let (h, b) = (http.clone(), server.base.clone());
    drive(500, concurrency, move |i| {
        let (h, b) = (h.clone(), b.clone());
        async move { send(&h, &b, i, true).await }
    })
    .await;
    let (h, b) = (http.clone(), server.base.clone());
    let t = drive(n, concurrency, move |i| {
        let (h, b) = (h.clone(), b.clone());
        async move { send(&h, &b, i, true).await }
    })
    .await;
    let rate = n as f64 / t.as_secs_f64();
    println!("  async accepts, {label:<10}: {rate:>9.0} /s ({n} at concurrency {concurrency})");
    rate
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let queued: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let mut fixture = Fixture::sandbox();
    fixture.apps[0].groups = (0..GROUPS)
        .map(|i| GroupFixture {
            open_conversation_id: group(i),
            title: format!("Bench {i}"),
        })
        .collect();
    let sim = Simulator::start(fixture, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    sim.set_limits(Limits {
        app_api_qps: 0,
        webhook_per_minute: 0,
        ..Limits::default()
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .unwrap();
    println!("dtc serve durable queue, simulator unlimited, {GROUPS} groups");

    let n = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("accepts.db").display());
    let r_sqlite = accepts("SQLite", &sqlite, &sim, n, concurrency, &http).await;
    // Without DTC_TEST_POSTGRES_URL, testkit says the PostgreSQL case was skipped.
    if let Some(pg) = testkit::PgSchema::create("dtc_bench").await {
        accepts("PostgreSQL", &pg.url, &sim, n, concurrency, &http).await;
        pg.drop_schema().await;
    }

    // The sync path in the same run, same concurrency.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sync.db").display());
    let server = start(&db, dir.path(), &sim, true, &http).await;
    connection(&http, &server.base).await;
    let (h, b) = (http.clone(), server.base.clone());
    let sync_n = 5_000;
    let t = drive(sync_n, concurrency, move |i| {
        let (h, b) = (h.clone(), b.clone());
        async move { send(&h, &b, i, false).await }
    })
    .await;
    let r_sync = sync_n as f64 / t.as_secs_f64();
    println!("  sync sends, SQLite      : {r_sync:>9.0} /s (answered after DingTalk accepted)");
    println!("  async accepts / sync    : {:>9.1}x", r_sqlite / r_sync);
    drop(server);
    sim.clear_messages();

    // 100,000 queued with no engine: memory; then restart with the engine: drain rate.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let server = start(&db, dir.path(), &sim, false, &http).await;
    connection(&http, &server.base).await;
    let idle = rss_mb(server.child.id());
    let (h, b) = (http.clone(), server.base.clone());
    drive(queued, concurrency, move |i| {
        let (h, b) = (h.clone(), b.clone());
        async move { send(&h, &b, i, true).await }
    })
    .await;
    let full = rss_mb(server.child.id());
    println!("  RSS idle / with {queued} queued: {idle:.1} MB / {full:.1} MB");
    drop(server);
    let base_count = sim.stats().accepted as usize;
    let started = Instant::now();
    let server = start(&db, dir.path(), &sim, true, &http).await;
    let sample = queued.min(30_000);
    while (sim.stats().accepted as usize) < base_count + sample {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = sample as f64 / started.elapsed().as_secs_f64();
    println!(
        "  drain rate (engine 64 wide, {GROUPS} groups): {drain:>9.0} /s over the first {sample}"
    );
    println!("  drain / sync            : {:>9.2}x", drain / r_sync);
    drop(server);
    sim.shutdown().await;
}
