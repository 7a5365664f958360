//! Stream mode with two `dtc serve` instances on one PostgreSQL: only one holds the app's
//! socket; when it is killed (kill -9) the other takes the socket over, and every message a
//! person wrote starts exactly one run and gets its answer — none lost, none handled twice.

mod support;

use dingtalk_sim::{Fixture, SANDBOX_OPS_GROUP, Simulator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{Server, TOKEN};

const MESSAGES: usize = 12;

async fn sockets_held(http: &reqwest::Client, base: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("dtc_stream_sockets"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn person_says(http: &reqwest::Client, sim: &str, text: &str) {
    let resp = http
        .post(format!(
            "{sim}/_sim/conversations/{SANDBOX_OPS_GROUP}/messages"
        ))
        .json(&json!({"sender": {"nick": "Li Lei", "staff_id": "manager1234"}, "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn get(http: &reqwest::Client, url: String) -> Value {
    testkit::get_json(http, &url, Some(TOKEN)).await
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let resp = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// How many times each "echo n" was answered.
fn answers(sim: &dingtalk_sim::SimHandle) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for m in sim.messages().into_iter().filter(|m| m.api == "session") {
        if let Some(text) = m.payload.as_ref().and_then(|p| p["content"].as_str()) {
            *n.entry(text.to_owned()).or_default() += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_holds_the_socket_and_the_other_takes_over_when_it_dies() {
    let Some(pg) = testkit::PgSchema::create("dtc_stream").await else {
        return;
    };
    let mut fixture = Fixture::sandbox();
    // What a killed instance received and never acknowledged comes again quickly.
    fixture.limits.stream_redeliver_secs = 2;
    let sim = Simulator::start(fixture, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("DTC_DELIVERY_LEASE_SECS", "3")];
    let http = reqwest::Client::new();
    let mut servers = [
        Server::start(&pg.url, dir_a.path(), &sim.base_url(), &env),
        Server::start(&pg.url, dir_b.path(), &sim.base_url(), &env),
    ];
    for s in &servers {
        s.wait_ready(&http).await;
    }
    let base = servers[0].base.clone();
    let (status, conn) = post(
        &http,
        format!("{base}/v1/connections"),
        json!({"name": "ops", "app_key": dingtalk_sim::SANDBOX_APP_KEY,
               "app_secret": dingtalk_sim::SANDBOX_APP_SECRET,
               "robot_code": dingtalk_sim::SANDBOX_APP_KEY, "stream": true}),
    )
    .await;
    assert_eq!(status, 201, "{conn}");
    let (status, flow) = post(
        &http,
        format!("{base}/v1/flows"),
        json!({"name": "echo", "trigger": {"type": "chat", "connection": "ops", "command": "echo"},
               "steps": [{"id": "answer", "action": "reply",
                          "input": {"content": "echo {{ trigger.args | join(' ') }}"}}]}),
    )
    .await;
    assert_eq!(status, 201, "{flow}");

    // Exactly one instance holds the socket.
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let held = [
            sockets_held(&http, &servers[0].base).await.unwrap_or(0.0),
            sockets_held(&http, &servers[1].base).await.unwrap_or(0.0),
        ];
        let open = sim.stream_status()["connections"]
            .as_array()
            .map_or(0, Vec::len);
        if held.iter().sum::<f64>() == 1.0 && open == 1 {
            break if held[0] == 1.0 { 0 } else { 1 };
        }
        assert!(
            Instant::now() < deadline,
            "no single holder: {held:?}, {open} sockets"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let other = 1 - holder;

    // People write; midway the holder freezes (SIGSTOP) with messages reaching its socket and
    // never acknowledged, then dies (kill -9).
    for n in 0..MESSAGES {
        if n == MESSAGES / 2 {
            let pid = servers[holder].child.id().to_string();
            let stopped = std::process::Command::new("kill")
                .args(["-STOP", &pid])
                .status()
                .unwrap();
            assert!(stopped.success());
        }
        if n == MESSAGES / 2 + 2 {
            servers[holder].kill();
        }
        person_says(&http, &sim.base_url(), &format!("echo {n}")).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = answers(&sim);
        if (0..MESSAGES).all(|n| got.contains_key(&format!("echo {n}"))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "answered {} of {MESSAGES}: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A redelivery comes after 2 s: give a late double the chance to show.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let survivor = &servers[other].base;
    assert_eq!(
        sockets_held(&http, survivor).await,
        Some(1.0),
        "the survivor holds the socket"
    );
    let runs = get(&http, format!("{survivor}/v1/runs?flow=echo&limit=100")).await;
    let mut started: HashMap<String, usize> = HashMap::new();
    for run in runs["runs"].as_array().unwrap() {
        let id = run["id"].as_str().unwrap();
        let run = get(&http, format!("{survivor}/v1/runs/{id}")).await;
        *started
            .entry(run["trigger_data"]["text"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for n in 0..MESSAGES {
        assert_eq!(
            started.get(&format!("echo {n}")),
            Some(&1),
            "message {n} started exactly one run: {started:?}"
        );
    }
    let got = answers(&sim);
    // A reply is a delivery: one sent by the killed instance in the instant before it could
    // record so is sent again by the survivor (at least once). Everything else exactly once.
    let doubled: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.len() <= 1, "answered more than once: {doubled:?}");
    let st = sim.stream_status();
    assert_eq!(st["pending"], 0, "every message acknowledged: {st}");
    assert!(
        st["stats"]["redeliveries"].as_u64().unwrap() >= 2,
        "what the frozen holder received came again: {st}"
    );
    println!(
        "{MESSAGES} messages, holder {holder} killed, survivor answered; stats {}",
        st["stats"]
    );
    pg.drop_schema().await;
}
