//! Group sends per second through the `dingtalk` client against the in-process simulator
//! (limits off), beside a bare `reqwest` loop sending identical requests in the same run.
//! Prints absolute rates and the ratio; the target is a ratio of at least 0.9.
//!
//! `cargo bench -p dingtalk --bench group_send [-- SENDS CONCURRENCY]`

use dingtalk::robot::{Message, OrgGroupSend};
use dingtalk::{AppClient, AppCredentials, Client, ClientConfig, OpenConversationId, RobotCode};
use dingtalk_sim::{
    Fixture, Limits, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, Simulator,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn drive<F, Fut>(sends: usize, concurrency: usize, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let op = op.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= sends {
                        break;
                    }
                    op(i).await;
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
    let sends: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);

    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator");
    sim.set_limits(Limits {
        app_api_qps: 0,
        webhook_per_minute: 0,
        ..Limits::default()
    });
    let base = sim.base_url();
    let client = Client::new(ClientConfig::with_base(&base).unwrap()).unwrap();
    let app = AppClient::new(
        client,
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
        },
    );
    let token = app.access_token().await.unwrap();
    let robot = RobotCode::new(SANDBOX_APP_KEY);
    let group = OpenConversationId::new(SANDBOX_OPS_GROUP);
    let message = Message::Text {
        content: "benchmark message".into(),
    };
    // The bare loop sends exactly the body the client would send, over a reqwest client with the
    // same transport settings (timeouts, TCP_NODELAY): the ratio isolates what the library adds
    // (encoding, validation, token cache, decoding). Per-request timeouts cost about 10% on
    // loopback; a loop without them is faster, and not something anyone should ship.
    let body =
        serde_json::to_vec(&OrgGroupSend::new(robot.clone(), group.clone(), &message).unwrap())
            .unwrap();
    let bare_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let url = format!("{base}/v1.0/robot/groupMessages/send");

    let bare = |n: usize| {
        let (http, url, body, token) = (
            bare_http.clone(),
            url.clone(),
            body.clone(),
            token.expose().to_owned(),
        );
        async move {
            drive(n, concurrency, move |_| {
                let req = http
                    .post(&url)
                    .header("x-acs-dingtalk-access-token", &token)
                    .header("content-type", "application/json")
                    .body(body.clone());
                async move {
                    let resp = req.send().await.expect("bare send");
                    assert!(resp.status().is_success());
                    resp.bytes().await.expect("body");
                }
            })
            .await
        }
    };
    let via_client = |n: usize| {
        let (app, robot, group, message) =
            (app.clone(), robot.clone(), group.clone(), message.clone());
        async move {
            drive(n, concurrency, move |_| {
                let (app, robot, group, message) =
                    (app.clone(), robot.clone(), group.clone(), message.clone());
                async move {
                    app.send_group_message(&robot, &group, &message)
                        .await
                        .expect("client send");
                }
            })
            .await
        }
    };

    // Warm up both paths, then alternate rounds so drift on a shared machine hits both alike.
    bare(1000).await;
    via_client(1000).await;
    let rounds = 3;
    let (mut t_bare, mut t_client) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        t_bare += bare(sends).await;
        t_client += via_client(sends).await;
        sim.clear_messages();
    }
    let rate = |t: Duration| (sends * rounds) as f64 / t.as_secs_f64();
    let (r_bare, r_client) = (rate(t_bare), rate(t_client));
    println!(
        "group sends against dtc sim: {sends} sends x {rounds} rounds, concurrency {concurrency}"
    );
    println!("  bare reqwest loop : {r_bare:>10.0} sends/s");
    println!("  dingtalk client   : {r_client:>10.0} sends/s");
    println!(
        "  ratio client/bare : {:>10.3} (target >= 0.9)",
        r_client / r_bare
    );
    sim.shutdown().await;
}
