//! The crash test of issue 4: 5,000 async deliveries accepted, `kill -9` of the server in the
//! middle of sending, a restart — every accepted delivery reaches the simulator, and the
//! duplicates stay within the number that were in flight.

mod support;

use dingtalk_sim::{Fixture, Limits, SANDBOX_DEV_GROUP, SANDBOX_OPS_GROUP, Simulator};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{Server, create_connection, send_async};

const TOTAL: usize = 5000;
const CONCURRENCY: &str = "16";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_delivery_arrives_after_a_kill_9() {
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Unlimited simulator and limits off, so 5,000 sends take seconds rather than minutes.
    sim.set_limits(Limits {
        app_api_qps: 0,
        webhook_per_minute: 0,
        ..Limits::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let env = [
        ("DTC_ENFORCE_RATE_LIMITS", "false"),
        ("DTC_DELIVERY_CONCURRENCY", CONCURRENCY),
        ("DTC_DELIVERY_LEASE_SECS", "3"),
    ];
    let http = reqwest::Client::new();
    let mut server = Server::start(&db, dir.path(), &sim.base_url(), &env);
    server.wait_ready(&http).await;
    create_connection(&http, &server.base, "ops", None).await;

    // Slow DingTalk down a little so the kill lands mid-drain.
    sim.add_fault(dingtalk_sim::FaultSpec {
        route: dingtalk_sim::RouteName::GroupSend,
        kind: dingtalk_sim::FaultKind::Delay,
        count: None,
        probability: Some(1.0),
        delay_ms: Some(5),
    });
    let groups = [SANDBOX_OPS_GROUP, SANDBOX_DEV_GROUP];
    // One sequential sender per group, so acceptance order within a group is known.
    let mut accepted = Vec::with_capacity(TOTAL);
    let mut senders = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let (http, base, group) = (http.clone(), server.base.clone(), group.to_string());
        senders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (g..TOTAL).step_by(groups.len()) {
                let content = format!("crash-{n:05}");
                let id = send_async(&http, &base, "ops", &group, &content).await;
                ids.push((content, id));
            }
            ids
        }));
    }
    for s in senders {
        accepted.extend(s.await.unwrap());
    }
    let accepted: Vec<String> = accepted
        .into_iter()
        .filter_map(|(c, id)| id.map(|_| c))
        .collect();
    assert_eq!(accepted.len(), TOTAL, "every request was accepted");

    // Kill once sending is under way but far from done.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.messages().len() < 500 {
        assert!(Instant::now() < deadline, "sending never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let at_kill = sim.messages().len();
    assert!(
        at_kill < TOTAL,
        "the kill must land mid-drain (got {at_kill})"
    );
    sim.clear_faults();

    let server = Server::start(&db, dir.path(), &sim.base_url(), &env);
    server.wait_ready(&http).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let got: std::collections::HashSet<String> = sim
            .messages()
            .iter()
            .filter_map(|m| m.msg_param.as_ref()?["content"].as_str().map(str::to_owned))
            .collect();
        if accepted.iter().all(|c| got.contains(c)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {TOTAL} delivered after the restart",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in sim.messages() {
        if let Some(c) = m.msg_param.as_ref().and_then(|p| p["content"].as_str()) {
            *counts.entry(c.to_owned()).or_default() += 1;
        }
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    // One delivery per group is in flight at a time, so at most that many were cut off.
    let in_flight_bound: usize = groups.len().min(CONCURRENCY.parse().unwrap());
    println!("killed after {at_kill} messages; {duplicates} duplicates (bound {in_flight_bound})");
    assert!(
        duplicates <= in_flight_bound,
        "{duplicates} duplicates, more than the {in_flight_bound} that could be in flight"
    );
    // Per-group order survives the crash: first arrivals are in acceptance order.
    for (g, group) in groups.iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<usize> = sim
            .messages()
            .iter()
            .filter(|m| m.open_conversation_id.as_deref() == Some(group))
            .filter_map(|m| m.msg_param.as_ref()?["content"].as_str().map(str::to_owned))
            .filter(|c| seen.insert(c.clone()))
            .map(|c| c.trim_start_matches("crash-").parse().unwrap())
            .collect();
        let mut sorted = firsts.clone();
        sorted.sort();
        assert_eq!(firsts, sorted, "group {g} out of order");
    }
    drop(server);
}
