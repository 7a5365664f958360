//! The `dtc` binary as a user runs it: `dtc send` straight to the simulator, the server's
//! client commands against an in-process server, exit codes, and `dtc admin rotate-key`.

use connector::app::Application;
use connector::settings::Settings;
use dingtalk_sim::{
    Fixture, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, SANDBOX_WEBHOOK_SECRET,
    SANDBOX_WEBHOOK_TOKEN, SimHandle, Simulator,
};
use secrecy::SecretString;
use serde_json::Value;
use std::process::{Command, Output};

const TOKEN: &str = "cli-test-token-0123456789";

async fn sim() -> SimHandle {
    Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn dtc(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtc"));
    cmd.args(args)
        .env_remove("DTC_API_TOKEN")
        .env_remove("DTC_APP_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("dtc runs")
}

/// Run `dtc` off the async runtime's threads (the simulator and server live on them).
async fn dtc_async(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        dtc(&args, &env)
    })
    .await
    .unwrap()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtc_send_delivers_and_exits_with_a_code_per_failure_kind() {
    let sim = sim().await;
    let base = sim.base_url();
    let secret_env = vec![("DTC_APP_SECRET".to_string(), SANDBOX_APP_SECRET.to_string())];
    let common = |extra: &[&str]| {
        let mut v = s(&["send"]);
        v.extend(s(extra));
        v.extend(s(&[
            "--dingtalk-api-base",
            &base,
            "--app-key",
            SANDBOX_APP_KEY,
        ]));
        v
    };
    let ok = dtc_async(
        common(&[
            "text",
            "--group",
            SANDBOX_OPS_GROUP,
            "--content",
            "from the CLI",
        ]),
        secret_env.clone(),
    )
    .await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = json_out(&ok);
    assert_eq!(out["msg_key"], "sampleText");
    assert!(out["process_query_key"].as_str().is_some());
    assert_eq!(
        sim.messages()[0].msg_param.as_ref().unwrap()["content"],
        "from the CLI"
    );

    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("report.pdf");
    std::fs::write(&pdf, b"%PDF-1.4 cli").unwrap();
    let file = dtc_async(
        common(&[
            "file",
            "--group",
            SANDBOX_OPS_GROUP,
            "--path",
            pdf.to_str().unwrap(),
        ]),
        secret_env.clone(),
    )
    .await;
    assert!(
        file.status.success(),
        "{}",
        String::from_utf8_lossy(&file.stderr)
    );
    assert!(json_out(&file)["media_id"].as_str().is_some());
    assert_eq!(sim.messages()[1].msg_key.as_deref(), Some("sampleFile"));

    // Exit codes: 2 bad input, 3 credentials, 4 rejected, 5 transient.
    let bad = dtc_async(
        common(&[
            "link",
            "--group",
            SANDBOX_OPS_GROUP,
            "--subject",
            "s",
            "--content",
            "c",
            "--image-url",
            "https://e/p.png",
            "--redirect-url",
            "javascript:x",
        ]),
        secret_env.clone(),
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("messageUrl"));
    let creds = dtc_async(
        common(&["text", "--group", SANDBOX_OPS_GROUP, "--content", "x"]),
        vec![("DTC_APP_SECRET".into(), "wrong".into())],
    )
    .await;
    assert_eq!(creds.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&creds.stderr).contains("invalidClientIdOrSecret"));
    let rejected = dtc_async(
        common(&["text", "--group", "cidNoSuchGroup==", "--content", "x"]),
        secret_env.clone(),
    )
    .await;
    assert_eq!(rejected.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&rejected.stderr).contains("invalid.openConversationId"));
    let down = dtc_async(
        s(&[
            "send",
            "text",
            "--group",
            SANDBOX_OPS_GROUP,
            "--content",
            "x",
            "--dingtalk-api-base",
            "http://127.0.0.1:1",
            "--app-key",
            SANDBOX_APP_KEY,
            "--attempts",
            "2",
        ]),
        secret_env.clone(),
    )
    .await;
    assert_eq!(down.status.code(), Some(5));

    let hook = dtc_async(
        s(&[
            "send",
            "webhook",
            "--token",
            SANDBOX_WEBHOOK_TOKEN,
            "--secret",
            SANDBOX_WEBHOOK_SECRET,
            "--at-mobile",
            "13800000000",
            "--dingtalk-api-base",
            &base,
            "text",
            "--content",
            "db down",
        ]),
        vec![],
    )
    .await;
    assert!(
        hook.status.success(),
        "{}",
        String::from_utf8_lossy(&hook.stderr)
    );
    let last = sim.messages().last().unwrap().clone();
    assert_eq!(last.api, "webhook");
    assert_eq!(last.at.unwrap()["atMobiles"][0], "13800000000");
}

async fn start_server(
    dir: &std::path::Path,
    sim: &SimHandle,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut settings = Settings::for_tests(dir, &sim.base_url());
    settings.api_token = Some(SecretString::from(TOKEN));
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    (base, tx, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_commands_manage_connections_and_run_actions() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, stop, handle) = start_server(dir.path(), &sim).await;
    let env = vec![
        ("DTC_SERVER".to_string(), base.clone()),
        ("DTC_API_TOKEN".to_string(), TOKEN.to_string()),
        ("OPS_SECRET".to_string(), SANDBOX_APP_SECRET.to_string()),
    ];
    let create = dtc_async(
        s(&[
            "connection",
            "create",
            "--name",
            "ops",
            "--app-key",
            SANDBOX_APP_KEY,
            "--app-secret-env",
            "OPS_SECRET",
            "--description",
            "Ops",
        ]),
        env.clone(),
    )
    .await;
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    assert!(!String::from_utf8_lossy(&create.stdout).contains(SANDBOX_APP_SECRET));
    let table = dtc_async(s(&["connection", "list", "--table"]), env.clone()).await;
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.starts_with("NAME") && table.contains("ops"),
        "{table}"
    );
    let test = dtc_async(s(&["connection", "test", "ops"]), env.clone()).await;
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let schema = dtc_async(s(&["action", "schema", "send_link"]), env.clone()).await;
    assert!(json_out(&schema)["input"]["properties"]["redirect_url"].is_object());

    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        format!("{{\"group_chat_id\":\"{SANDBOX_OPS_GROUP}\",\"content\":\"via dtc run\"}}"),
    )
    .unwrap();
    let run = dtc_async(
        s(&[
            "run",
            "ops",
            "send_text",
            "--input",
            &format!("@{}", input.display()),
        ]),
        env.clone(),
    )
    .await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(json_out(&run)["msg_key"], "sampleText");
    assert_eq!(sim.messages().len(), 1);

    let bad = dtc_async(
        s(&[
            "run",
            "ops",
            "send_text",
            "--input",
            "{\"content\":\"no group\"}",
        ]),
        env.clone(),
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("group_chat_id"));
    let rejected = dtc_async(
        s(&[
            "run",
            "ops",
            "send_text",
            "--input",
            "{\"group_chat_id\":\"cidNoSuchGroup==\",\"content\":\"x\"}",
        ]),
        env.clone(),
    )
    .await;
    assert_eq!(rejected.status.code(), Some(4));
    let mut no_token = env.clone();
    no_token.retain(|(k, _)| k != "DTC_API_TOKEN");
    let unauth = dtc_async(s(&["connection", "list"]), no_token).await;
    assert_eq!(unauth.status.code(), Some(3));
    let deleted = dtc_async(s(&["connection", "delete", "ops"]), env.clone()).await;
    assert!(deleted.status.success());
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_the_printed_server_url_and_says_plainly_what_is_wrong() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, stop, handle) = start_server(dir.path(), &sim).await;
    // The URL `dtc serve` prints ends in /v1.
    let env = vec![
        ("DTC_SERVER".to_string(), format!("{base}/v1")),
        ("DTC_API_TOKEN".to_string(), TOKEN.to_string()),
        ("OPS_SECRET".to_string(), SANDBOX_APP_SECRET.to_string()),
    ];
    let create = dtc_async(
        s(&[
            "connection",
            "create",
            "--name",
            "ops",
            "--app-key",
            SANDBOX_APP_KEY,
            "--app-secret-env",
            "OPS_SECRET",
            "--description",
            "\u{1b}[2J\u{1b}]0;owned\u{7}Alerts from the production clusters in Hangzhou and Beijing",
        ]),
        env.clone(),
    )
    .await;
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    // Table cells show control characters, never send them to the terminal.
    let table = dtc_async(s(&["connection", "list", "--table"]), env.clone()).await;
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("\\u{1b}[2J"), "{table}");
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table:?}"
    );
    // JSON is printed for people to read.
    let schema = dtc_async(s(&["action", "schema", "send_text"]), env.clone()).await;
    assert!(String::from_utf8_lossy(&schema.stdout).lines().count() > 10);
    assert!(json_out(&schema)["input"]["properties"]["content"].is_object());
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    // Nothing listens there now.
    let down = dtc_async(s(&["connection", "list"]), env).await;
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("connection refused") && stderr.contains("dtc serve"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_re_encrypts_secrets_and_the_server_still_reads_them() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, stop, handle) = start_server(dir.path(), &sim).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/v1/connections"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "ops", "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "robot_code": SANDBOX_APP_KEY}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // A flow whose hook has a bearer token: its secret is sealed too.
    let flow = serde_json::json!({"name": "hooked", "trigger": {"type": "webhook",
        "auth": {"bearer": {"token": "hook-token-before-rotation"}}},
        "steps": [{"id": "s", "action": "send_text", "connection": "ops",
                   "input": {"group_chat_id": dingtalk_sim::SANDBOX_OPS_GROUP, "content": "hooked"}}]});
    let resp = http
        .post(format!("{base}/v1/flows"))
        .bearer_auth(TOKEN)
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let _ = stop.send(());
    handle.await.unwrap().unwrap();

    let key_before = std::fs::read(dir.path().join("master.key")).unwrap();
    let db = format!("sqlite://{}", dir.path().join("dtc.db").display());
    let rotated = dtc_async(
        s(&[
            "admin",
            "rotate-key",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database-url",
            &db,
        ]),
        vec![],
    )
    .await;
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let out = json_out(&rotated);
    assert_eq!(out["rotated_connections"], 1);
    assert_eq!(out["rotated_flows"], 1);
    assert_ne!(out["old_key_id"], out["new_key_id"]);
    assert_ne!(
        std::fs::read(dir.path().join("master.key")).unwrap(),
        key_before
    );

    let (base, stop, handle) = start_server(dir.path(), &sim).await;
    let test: Value = http
        .post(format!("{base}/v1/connections/ops/test"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(test["ok"], true, "{test}");
    // The hook still knows its token under the new key.
    let hooked = http
        .post(format!("{base}/hooks/hooked"))
        .bearer_auth("hook-token-before-rotation")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(hooked.status(), 202, "{}", hooked.text().await.unwrap());
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}
