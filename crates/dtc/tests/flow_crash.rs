//! `kill -9` in the middle of a run: the server restarted on the same database goes on from the
//! last finished step — the step that was in flight is sent again at most once more (the
//! queue's at-least-once bound), the next step is sent once, and the run succeeds.

mod support;

use std::time::{Duration, Instant};

use dingtalk_sim::{FaultSpec, Fixture, RouteName, SANDBOX_OPS_GROUP, SimHandle, Simulator};
use serde_json::{Value, json};
use support::{Server, TOKEN, create_connection};

fn count(sim: &SimHandle, content: &str) -> usize {
    sim.messages()
        .iter()
        .filter(|m| m.msg_param.as_ref().and_then(|p| p["content"].as_str()) == Some(content))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_step_goes_on_from_its_last_finished_step() {
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let http = reqwest::Client::new();
    let mut server = Server::start(&db, dir.path(), &sim.base_url(), &[]);
    server.wait_ready(&http).await;
    create_connection(&http, &server.base, "ops", None).await;
    let flow = json!({
        "name": "two-steps",
        "trigger": {"type": "manual"},
        "steps": [
            {"id": "first", "action": "send_text", "connection": "ops",
             "input": {"group_chat_id": SANDBOX_OPS_GROUP, "content": "step one"}},
            {"id": "second", "action": "send_text", "connection": "ops",
             "input": {"group_chat_id": SANDBOX_OPS_GROUP,
                       "content": "step two after {{ steps.first.status }}"}}
        ]
    });
    let resp = http
        .post(format!("{}/v1/flows", server.base))
        .bearer_auth(TOKEN)
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    // Step one hangs at DingTalk until the faults are cleared; the server dies meanwhile.
    sim.add_fault(FaultSpec::delay_all(RouteName::GroupSend, 3_000));
    let run: Value = http
        .post(format!("{}/v1/flows/two-steps/runs", server.base))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();
    sim.clear_faults();

    let server = Server::start(&db, dir.path(), &sim.base_url(), &[]);
    server.wait_ready(&http).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let url = format!("{}/v1/runs/{id}", server.base);
        let run = testkit::get_json(&http, &url, Some(TOKEN)).await;
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {run:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run:#}");
    // Wait out the delayed request of the killed server, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (one, two) = (
        count(&sim, "step one"),
        count(&sim, "step two after succeeded"),
    );
    assert!((1..=2).contains(&one), "step one arrived {one} times");
    assert_eq!(two, 1, "step two arrived {two} times");
}
