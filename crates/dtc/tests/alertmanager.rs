//! The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) notifying DingTalk
//! through a dtc flow: firing, then resolved, as markdown in the simulator's group; and with dtc
//! down while Alertmanager sends, its retry delivers once dtc is back — nothing is lost.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use connector::connections::ConnectionKind;
use connector::flows::init::{InitFormat, InitOptions, init};
use dingtalk_sim::{Fixture, SANDBOX_OPS_GROUP, SimHandle, Simulator};
use serde_json::{Value, json};
use support::{Server, TOKEN, create_connection, free_port};

const HOOK_TOKEN: &str = "am-hook-token-0123456789";

struct Alertmanager {
    child: Child,
    api: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Option<&'static str> {
    ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
}

fn start_alertmanager(bin: &str, hook: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"route:
  receiver: dingtalk
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: dingtalk
    webhook_configs:
      - url: {hook}
        send_resolved: true
        http_config:
          authorization:
            credentials: {HOOK_TOKEN}
"#
    );
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, config).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    Alertmanager {
        child,
        api: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

async fn post_alert(http: &reqwest::Client, am: &Alertmanager, name: &str, resolved: bool) {
    let now = chrono::Utc::now();
    let ends = if resolved {
        now - chrono::Duration::seconds(1)
    } else {
        now + chrono::Duration::hours(1)
    };
    let alert = json!([{
        "labels": {"alertname": name, "severity": "critical", "instance": "db-1:9100"},
        "annotations": {"summary": format!("{name} on db-1"), "description": "from the test"},
        "startsAt": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "endsAt": ends.to_rfc3339(),
        "generatorURL": "http://prometheus:9090/graph"
    }]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http
            .post(format!("{}/api/v2/alerts", am.api))
            .json(&alert)
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager did not take the alert"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for a message whose title starts with `prefix`; returns its markdown.
async fn arrives(sim: &SimHandle, prefix: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let found = sim.messages().into_iter().find_map(|m| {
            let p = m.msg_param?;
            let title = p.get("title")?.as_str()?.to_owned();
            title.starts_with(prefix).then(|| {
                p.get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
        });
        if let Some(text) = found {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no message titled {prefix:?} within {within:?}: {:?}",
            sim.messages()
                .iter()
                .map(|m| m.msg_param.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_notifies_through_a_flow_and_retries_into_a_restarted_dtc() {
    let Some(bin) = binary() else {
        testkit::missing("the real Alertmanager (apt-get install prometheus-alertmanager)");
        return;
    };
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let port = free_port();
    let http = reqwest::Client::new();
    let mut dtc = Server::start_at(port, &db, dir.path(), &sim.base_url(), &[]);
    dtc.wait_ready(&http).await;
    create_connection(&http, &dtc.base, "ops", None).await;
    let flow = init(&InitOptions {
        format: InitFormat::Alertmanager,
        name: "alertmanager",
        connection: "ops",
        kind: ConnectionKind::AppRobot,
        group: Some(SANDBOX_OPS_GROUP),
        secret: HOOK_TOKEN,
    })
    .unwrap();
    let resp = http
        .post(format!("{}/v1/flows", dtc.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/yaml")
        .body(flow)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    let am = start_alertmanager(bin, &format!("{}/hooks/alertmanager", dtc.base));
    post_alert(&http, &am, "HighCPU", false).await;
    let text = arrives(&sim, "[FIRING:1] HighCPU", Duration::from_secs(60)).await;
    assert!(text.contains("#### [CRITICAL] HighCPU on db-1"), "{text}");
    assert!(text.contains("from the test"), "{text}");
    assert!(text.contains("instance=db-1:9100"), "{text}");

    post_alert(&http, &am, "HighCPU", true).await;
    let text = arrives(&sim, "[RESOLVED:0] HighCPU", Duration::from_secs(60)).await;
    assert!(text.contains("**Resolved**"), "{text}");
    assert!(text.contains("[RESOLVED] HighCPU on db-1"), "{text}");

    // dtc goes down; Alertmanager's notification fails (connection refused) and is retried.
    dtc.kill();
    post_alert(&http, &am, "DiskFull", false).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !sim.messages().iter().any(|m| m
            .msg_param
            .as_ref()
            .and_then(|p| p["title"].as_str())
            .is_some_and(|t| t.contains("DiskFull"))),
        "dtc was down"
    );
    let dtc = Server::start_at(port, &db, dir.path(), &sim.base_url(), &[]);
    dtc.wait_ready(&http).await;
    let text = arrives(&sim, "[FIRING:1] DiskFull", Duration::from_secs(90)).await;
    assert!(text.contains("DiskFull on db-1"), "{text}");

    // Every run the hook started succeeded, and each notification arrived once.
    let url = format!("{}/v1/runs?flow=alertmanager", dtc.base);
    let runs = testkit::get_json(&http, &url, Some(TOKEN)).await;
    let runs = runs["runs"].as_array().unwrap();
    assert!(runs.len() >= 3, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let titles: Vec<String> = sim
        .messages()
        .iter()
        .filter_map(|m| m.msg_param.as_ref()?["title"].as_str().map(str::to_owned))
        .collect();
    for t in [
        "[FIRING:1] HighCPU",
        "[RESOLVED:0] HighCPU",
        "[FIRING:1] DiskFull",
    ] {
        assert_eq!(titles.iter().filter(|x| *x == t).count(), 1, "{titles:?}");
    }
    drop(am);
}
