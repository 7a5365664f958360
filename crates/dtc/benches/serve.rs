//! `dtc serve` under load, against the in-process simulator with its limits off:
//! sends per second through `POST /v1/connections/{c}/actions/send_text`, beside the `dingtalk`
//! client alone in the same run (target ratio >= 0.8), and the server's resident memory when
//! idle (target < 30 MB) and after 10,000 sends. The server runs as its own process (the real
//! `dtc` binary) so its memory is its own.
//!
//! `cargo bench -p dtc --bench serve [-- SENDS CONCURRENCY]`

use dingtalk::robot::Message;
use dingtalk::{AppClient, AppCredentials, Client, ClientConfig, OpenConversationId, RobotCode};
use dingtalk_sim::{
    Fixture, Limits, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, Simulator,
};
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

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn drive<F, Fut>(sends: usize, concurrency: usize, op: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < sends {
                    op().await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sends: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);

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
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_dtc"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--dingtalk-api-base", &base, "--dingtalk-oapi-base", &base])
            .env("DTC_API_TOKEN", TOKEN)
            .env("DTC_LOG", "warn")
            // The simulator is unlimited here; so is the client-alone baseline.
            .env("DTC_ENFORCE_RATE_LIMITS", "false")
            .stdout(Stdio::null())
            .spawn()
            .expect("dtc serve starts"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{api}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "dtc serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mb(server.0.id());
    let resp = http
        .post(format!("{api}/v1/connections"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "bench", "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "robot_code": SANDBOX_APP_KEY}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let client = AppClient::new(
        Client::new(ClientConfig::with_base(&base).unwrap()).unwrap(),
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
        },
    );
    let body =
        serde_json::json!({"group_chat_id": SANDBOX_OPS_GROUP, "content": "benchmark message"});
    let url = format!("{api}/v1/connections/bench/actions/send_text");

    let via_client = |n: usize| {
        let client = client.clone();
        async move {
            drive(n, concurrency, move || {
                let client = client.clone();
                async move {
                    client
                        .send_group_message(
                            &RobotCode::new(SANDBOX_APP_KEY),
                            &OpenConversationId::new(SANDBOX_OPS_GROUP),
                            &Message::Text {
                                content: "benchmark message".into(),
                            },
                        )
                        .await
                        .expect("client send");
                }
            })
            .await
        }
    };
    let via_api = |n: usize| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        async move {
            drive(n, concurrency, move || {
                let req = http.post(&url).bearer_auth(TOKEN).json(&body);
                async move {
                    let resp = req.send().await.expect("api send");
                    assert!(resp.status().is_success(), "{}", resp.status());
                    resp.bytes().await.expect("body");
                }
            })
            .await
        }
    };

    via_client(500).await;
    via_api(500).await;
    let rounds = 3;
    let measure = |label: &'static str, n: usize| {
        let (via_client, via_api, sim) = (&via_client, &via_api, &sim);
        async move {
            let (mut t_client, mut t_api) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..rounds {
                t_client += via_client(n).await;
                t_api += via_api(n).await;
                sim.clear_messages();
            }
            let rate = |t: Duration| (n * rounds) as f64 / t.as_secs_f64();
            println!("{label}, {n} sends x {rounds} rounds, concurrency {concurrency}");
            println!(
                "  dingtalk client alone      : {:>9.0} sends/s",
                rate(t_client)
            );
            println!(
                "  POST .../actions/send_text : {:>9.0} sends/s",
                rate(t_api)
            );
            println!(
                "  ratio api/client           : {:>9.3} (target >= 0.8)",
                rate(t_api) / rate(t_client)
            );
        }
    };
    measure(
        "simulator answering at once (CPU-bound: bench, server and simulator share 2 cores)",
        sends,
    )
    .await;
    // DingTalk answers in tens of milliseconds from anywhere; with that latency the question is
    // what the server adds, not how fast three processes share two cores.
    sim.add_fault(dingtalk_sim::FaultSpec {
        route: dingtalk_sim::RouteName::GroupSend,
        kind: dingtalk_sim::FaultKind::Delay,
        count: None,
        probability: Some(1.0),
        delay_ms: Some(20),
    });
    measure("simulator answering after 20 ms", sends / 5).await;
    sim.clear_faults();
    let after = rss_mb(server.0.id());
    println!("  server RSS idle            : {idle:>9.1} MB (target < 30 MB)");
    println!(
        "  server RSS after {:>6} sends: {after:>7.1} MB",
        sends * rounds + sends / 5 * rounds + 500
    );
    drop(server);
    sim.shutdown().await;
}
