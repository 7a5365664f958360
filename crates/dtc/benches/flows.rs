//! Alertmanager notifications end to end through a flow (`POST /hooks/{flow}` → run → queued
//! step → DingTalk accepted), beside the same messages sent as direct async action calls
//! (`POST …/actions/send_markdown` with `Prefer: respond-async`), alternately in one run against
//! the in-process simulator with its limits off. Reports messages per second end to end (from
//! the first request until the simulator accepted the last message) and the hook's answer time
//! (p50, p99). `dtc serve` runs as its own process (release build, SQLite, rate limits off).
//!
//! `cargo bench -p dtc --bench flows [-- NOTIFICATIONS CONCURRENCY]`

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector::connections::ConnectionKind;
use connector::flows::init::{InitFormat, InitOptions, init};
use dingtalk_sim::{
    Fixture, Limits, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, SimHandle, Simulator,
};
use serde_json::json;

const TOKEN: &str = "bench-token-0123456789abcdef";
const HOOK: &str = "bench-hook-token-0123456789";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `n` requests made by `make(i)` with `concurrency` workers; returns each answer's time.
async fn drive(
    n: usize,
    concurrency: usize,
    make: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>,
) -> Vec<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let times = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, times, make) = (next.clone(), times.clone(), make.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let started = Instant::now();
                    let resp = make(i).send().await.expect("request");
                    let status = resp.status();
                    resp.bytes().await.expect("body");
                    assert!(status.as_u16() == 202, "answered {status}");
                    times.lock().unwrap().push(started.elapsed());
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    Arc::try_unwrap(times).unwrap().into_inner().unwrap()
}

async fn all_arrived(sim: &SimHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while sim.messages().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} arrived",
            sim.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    let i = ((times.len() as f64 - 1.0) * p).round() as usize;
    times[i].as_secs_f64() * 1000.0
}

fn notification(i: usize, round: usize) -> serde_json::Value {
    // Every notification differs (a retried one would be deduplicated).
    json!({"version": "4", "status": "firing", "receiver": "dingtalk",
        "groupKey": format!("{{}}:{{alertname=\"HighCPU\"}}/{round}/{i}"),
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU", "severity": "critical"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing",
            "labels": {"alertname": "HighCPU", "severity": "critical", "instance": format!("node-{round}-{i}:9100")},
            "annotations": {"summary": "CPU above 90%", "description": "at 97%"},
            "startsAt": "2026-12-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": format!("{i:016x}")}]})
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);

    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    sim.set_limits(Limits {
        app_api_qps: 0,
        webhook_per_minute: 0,
        ..Limits::default()
    });
    let base = sim.base_url();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_dtc"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--dingtalk-api-base", &base, "--dingtalk-oapi-base", &base])
            .env("DTC_API_TOKEN", TOKEN)
            .env("DTC_LOG", "warn")
            .env("DTC_ENFORCE_RATE_LIMITS", "false")
            .stdout(Stdio::null())
            .spawn()
            .expect("dtc serve starts"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{api}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "dtc serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = http.post(format!("{api}/v1/connections")).bearer_auth(TOKEN)
        .json(&json!({"name": "bench", "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "robot_code": SANDBOX_APP_KEY}))
        .send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let flow = init(&InitOptions {
        format: InitFormat::Alertmanager,
        name: "alertmanager",
        connection: "bench",
        kind: ConnectionKind::AppRobot,
        group: Some(SANDBOX_OPS_GROUP),
        secret: HOOK,
    })
    .unwrap();
    let resp = http
        .post(format!("{api}/v1/flows"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/yaml")
        .body(flow)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let hook_url = format!("{api}/hooks/alertmanager");
    let action_url = format!("{api}/v1/connections/bench/actions/send_markdown");
    let rounds = 3;
    let (mut t_hook, mut t_action) = (Duration::ZERO, Duration::ZERO);
    let (mut hook_times, mut action_times) = (Vec::new(), Vec::new());
    for round in 0..=rounds {
        // Round 0 warms up.
        for path in ["hook", "action"] {
            sim.clear_messages();
            let make: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync> = if path
                == "hook"
            {
                let (http, url) = (http.clone(), hook_url.clone());
                Arc::new(move |i| {
                    http.post(&url)
                        .bearer_auth(HOOK)
                        .json(&notification(i, round))
                })
            } else {
                let (http, url) = (http.clone(), action_url.clone());
                Arc::new(move |i| {
                    http.post(&url).bearer_auth(TOKEN).header("Prefer", "respond-async")
                        .json(&json!({"group_chat_id": SANDBOX_OPS_GROUP, "subject": "[FIRING:1] HighCPU",
                                      "content": format!("### HighCPU\nnode-{round}-{i}: CPU above 90%")}))
                })
            };
            let started = Instant::now();
            let mut times = drive(n, concurrency, make).await;
            all_arrived(&sim, n).await;
            let took = started.elapsed();
            if round > 0 {
                if path == "hook" {
                    t_hook += took;
                    hook_times.append(&mut times);
                } else {
                    t_action += took;
                    action_times.append(&mut times);
                }
            }
        }
    }
    let rate = |t: Duration| (n * rounds) as f64 / t.as_secs_f64();
    println!(
        "{n} messages x {rounds} rounds to one group, concurrency {concurrency}, end to end (accepted by the simulator)"
    );
    println!(
        "  direct async send_markdown   : {:>8.0} messages/s",
        rate(t_action)
    );
    println!(
        "  Alertmanager hook -> flow    : {:>8.0} notifications/s",
        rate(t_hook)
    );
    println!(
        "  ratio hook/direct            : {:>8.3}",
        rate(t_hook) / rate(t_action)
    );
    println!(
        "  hook answer p50 / p99        : {:>6.2} / {:.2} ms   (direct 202: {:.2} / {:.2} ms)",
        percentile(&mut hook_times, 0.5),
        percentile(&mut hook_times, 0.99),
        percentile(&mut action_times, 0.5),
        percentile(&mut action_times, 0.99)
    );
}
