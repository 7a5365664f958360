//! Graceful shutdown of the real binary: on SIGTERM `dtc serve` stops taking requests, lets
//! in-flight deliveries finish or gives them back to the queue, and exits 0; a restarted server
//! then delivers everything that was accepted.

mod support;

use dingtalk_sim::{FaultSpec, Fixture, RouteName, SANDBOX_OPS_GROUP, Simulator};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{Server, create_connection, send_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_releases_in_flight_work_and_exits_cleanly() {
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let env = [("DTC_DELIVERY_LEASE_SECS", "60")];
    let http = reqwest::Client::new();
    let mut server = Server::start(&db, dir.path(), &sim.base_url(), &env);
    server.wait_ready(&http).await;
    create_connection(&http, &server.base, "ops", None).await;
    // Each send takes 300 ms, so work is in flight when the signal comes.
    sim.add_fault(FaultSpec::delay_all(RouteName::GroupSend, 300));
    let mut accepted = Vec::new();
    for n in 0..20 {
        let content = format!("term-{n:02}");
        assert!(
            send_async(&http, &server.base, "ops", SANDBOX_OPS_GROUP, &content)
                .await
                .is_some()
        );
        accepted.push(content);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = tokio::task::spawn_blocking(move || {
        let code = server.child.wait().unwrap();
        (server, code)
    })
    .await
    .unwrap();
    let (server, code) = exit;
    assert!(code.success(), "dtc serve exited with {code:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(server);
    let sent_before = sim.messages().len();
    assert!(
        sent_before < accepted.len(),
        "the signal must land mid-drain"
    );
    sim.clear_faults();

    // Released leases are claimable at once (no 60 s lease to wait out).
    let server = Server::start(&db, dir.path(), &sim.base_url(), &env);
    server.wait_ready(&http).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: HashSet<String> = sim
            .messages()
            .iter()
            .filter_map(|m| m.msg_param.as_ref()?["content"].as_str().map(str::to_owned))
            .collect();
        if accepted.iter().all(|c| got.contains(c)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} delivered after restart",
            got.len(),
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let firsts: Vec<String> = {
        let mut seen = HashSet::new();
        sim.messages()
            .iter()
            .filter_map(|m| m.msg_param.as_ref()?["content"].as_str().map(str::to_owned))
            .filter(|c| seen.insert(c.clone()))
            .collect()
    };
    assert_eq!(firsts, accepted, "order across the restart");
}
