//! Running the real `dtc serve` binary as a child process, for the tests that kill it.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "process-test-token-0123456789";

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Start `dtc serve` on a free port against `database_url`, talking to `dingtalk_base`.
    pub fn start(
        database_url: &str,
        data_dir: &std::path::Path,
        dingtalk_base: &str,
        env: &[(&str, &str)],
    ) -> Server {
        Self::start_at(free_port(), database_url, data_dir, dingtalk_base, env)
    }

    /// [`Server::start`] on `port` (a restart where clients already point).
    pub fn start_at(
        port: u16,
        database_url: &str,
        data_dir: &std::path::Path,
        dingtalk_base: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtc"));
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--dingtalk-api-base",
            dingtalk_base,
            "--dingtalk-oapi-base",
            dingtalk_base,
        ])
        .env("DTC_API_TOKEN", TOKEN)
        .env("DTC_LOG", "warn")
        .env(
            "DTC_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("dtc serve starts");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "dtc serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn create_connection(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    qps_quota: Option<u32>,
) {
    let mut body = json!({
        "name": name,
        "app_key": dingtalk_sim::SANDBOX_APP_KEY,
        "app_secret": dingtalk_sim::SANDBOX_APP_SECRET,
        "robot_code": dingtalk_sim::SANDBOX_APP_KEY,
    });
    if let Some(q) = qps_quota {
        body["qps_quota"] = json!(q);
    }
    let resp = http
        .post(format!("{base}/v1/connections"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// Queue a text; returns the delivery id.
pub async fn send_async(
    http: &reqwest::Client,
    base: &str,
    connection: &str,
    group: &str,
    content: &str,
) -> Option<String> {
    let resp = http
        .post(format!(
            "{base}/v1/connections/{connection}/actions/send_text"
        ))
        .bearer_auth(TOKEN)
        .header("Prefer", "respond-async")
        .json(&json!({"group_chat_id": group, "content": content}))
        .send()
        .await
        .ok()?;
    if resp.status() != 202 {
        return None;
    }
    let v: Value = resp.json().await.ok()?;
    v["delivery_id"].as_str().map(str::to_owned)
}
