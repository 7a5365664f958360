//! The console's pages under a full store: 1,000 connections and 100,000 deliveries (SQLite,
//! `dtc serve` as a child process, the engine off so every delivery stays in the log). Each page
//! is asked for in turn, many times; p50 and p99 are printed beside `/healthz` measured in the
//! same run (the floor: the same HTTP stack with no work). Target: every page p99 < 50 ms.
//!
//! `cargo bench -p dtc --bench console [-- CONNECTIONS DELIVERIES ROUNDS]`

use dingtalk_sim::{Fixture, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Simulator};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let connections = args.first().copied().unwrap_or(1_000);
    let deliveries = args.get(1).copied().unwrap_or(100_000);
    let rounds = args.get(2).copied().unwrap_or(200);

    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_dtc"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--dingtalk-api-base", &sim.base_url()])
            .args(["--dingtalk-oapi-base", &sim.base_url()])
            .env("DTC_API_TOKEN", TOKEN)
            .env("DTC_LOG", "warn")
            .env(
                "DTC_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("DTC_DELIVERY_CONCURRENCY", "0")
            .stdout(Stdio::null())
            .spawn()
            .expect("dtc serve starts"),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "dtc serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The store: connections through the API, deliveries through async accepts.
    let t = Instant::now();
    for i in 0..connections {
        let resp = http
            .post(format!("{base}/v1/connections"))
            .bearer_auth(TOKEN)
            .json(
                &json!({"name": format!("c{i:04}"), "app_key": SANDBOX_APP_KEY,
                          "app_secret": SANDBOX_APP_SECRET, "robot_code": SANDBOX_APP_KEY,
                          "description": format!("connection {i} <of the bench>")}),
            )
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (http, base, next) = (http.clone(), base.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= deliveries {
                        break;
                    }
                    let resp = http
                        .post(format!(
                            "{base}/v1/connections/c{:04}/actions/send_text",
                            i % connections
                        ))
                        .bearer_auth(TOKEN)
                        .header("Prefer", "respond-async")
                        .json(
                            &json!({"group_chat_id": format!("cidBench{:04}==", i % 200),
                                      "content": format!("message {i}")}),
                        )
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success(), "{}", resp.status());
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    println!(
        "store: {connections} connections, {deliveries} deliveries, filled in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // A console session.
    let resp = http
        .post(format!("{base}/console/sign-in"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page =
        testkit::get_json(&http, &format!("{base}/v1/deliveries?limit=1"), Some(TOKEN)).await;
    let one = page["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let pages = [
        "/healthz".to_owned(),
        "/console/connections".to_owned(),
        "/console/connections?page=7".to_owned(),
        "/console/connections?q=c05".to_owned(),
        "/console/deliveries".to_owned(),
        "/console/deliveries?status=queued&connection=c0500".to_owned(),
        "/console/deliveries?group=cidBench0042%3D%3D".to_owned(),
        format!("/console/deliveries/{one}"),
        "/console/send?connection=c0007&action=send_markdown".to_owned(),
        "/console/flows".to_owned(),
        "/console/runs".to_owned(),
        "/console/tokens".to_owned(),
        "/console/connections/c0999/edit".to_owned(),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); pages.len()];
    // Warm-up, then the pages in turn so load and noise fall on all of them alike.
    for (k, path) in pages.iter().enumerate() {
        let resp = http
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let bytes = resp.bytes().await.unwrap().len();
        if k > 0 {
            println!("  {path:<55} {:>8} bytes", bytes);
        }
    }
    for _ in 0..rounds {
        for (k, path) in pages.iter().enumerate() {
            let t = Instant::now();
            let resp = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            resp.bytes().await.unwrap();
            times[k].push(t.elapsed());
        }
    }
    let floor = {
        let mut t = times[0].clone();
        t.sort();
        percentile(&t, 0.99)
    };
    println!(
        "{:<55} {:>9} {:>9} {:>12}",
        "page", "p50 ms", "p99 ms", "p99 / floor"
    );
    let mut worst: f64 = 0.0;
    for (k, path) in pages.iter().enumerate() {
        let mut t = times[k].clone();
        t.sort();
        let (p50, p99) = (percentile(&t, 0.5), percentile(&t, 0.99));
        if k > 0 {
            worst = worst.max(p99);
        }
        println!("{path:<55} {p50:>9.2} {p99:>9.2} {:>12.1}", p99 / floor);
    }
    println!(
        "worst console page p99: {worst:.1} ms (target < 50 ms: {})",
        if worst < 50.0 { "met" } else { "NOT met" }
    );
}
