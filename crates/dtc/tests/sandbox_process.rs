//! `dtc serve --sandbox` as a newcomer runs it, restarted the way they would (issue 8): the
//! simulator keeps its port and its chat, the API token stays the same and no other piles up,
//! logs written to a file carry no colour codes, and the open-file limit is raised.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Sandbox {
    child: Child,
    api: String,
    sim: String,
    token: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start the sandbox in `dir` (logs to `dir/serve.log`) and read what it prints.
fn start(dir: &std::path::Path, sim_port: u16) -> Sandbox {
    start_with(dir, sim_port, &[])
}

/// [`start`] with more environment variables.
fn start_with(dir: &std::path::Path, sim_port: u16, env: &[(&str, &str)]) -> Sandbox {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtc"))
        .args([
            "serve",
            "--sandbox",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DTC_API_TOKEN")
        .env_remove("NO_COLOR")
        .env("DTC_SANDBOX_SIM_LISTEN", format!("127.0.0.1:{sim_port}"))
        .env("DTC_LOG", "info")
        .env_remove("DTC_WORKER_THREADS")
        .env_remove("TOKIO_WORKER_THREADS")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("dtc serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep draining after the reader is gone: a closed pipe would kill the server.
            let _ = tx.send(line);
        }
    });
    let (mut token, mut sim) = (None, None);
    while token.is_none() || sim.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("dtc serve prints its token and simulator");
        if let Some(t) = line.trim().strip_prefix("export DTC_API_TOKEN=") {
            token = Some(t.to_owned());
        }
        if let Some(rest) = line.split("DingTalk simulator at ").nth(1) {
            sim = Some(rest.split_whitespace().next().unwrap().to_owned());
        }
    }
    Sandbox {
        child,
        api: format!("http://127.0.0.1:{port}"),
        sim: sim.unwrap(),
        token: token.unwrap(),
    }
}

async fn wait_ready(http: &reqwest::Client, api: &str) {
    for _ in 0..600 {
        if http
            .get(format!("{api}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dtc serve did not come up");
}

async fn send(http: &reqwest::Client, s: &Sandbox, token: &str, text: &str) -> u16 {
    http.post(format!(
        "{}/v1/connections/sandbox/actions/send_text",
        s.api
    ))
    .bearer_auth(token)
    .json(&json!({"group_chat_id": dingtalk_sim::SANDBOX_OPS_GROUP, "content": text}))
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

async fn chat(http: &reqwest::Client, s: &Sandbox) -> Vec<Value> {
    let messages = testkit::get_json(http, &format!("{}/_sim/messages", s.sim), None).await;
    serde_json::from_value(messages).expect("the simulator lists messages")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sandbox_keeps_its_port_chat_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let sim_port = free_port();
    let first = start(dir.path(), sim_port);
    wait_ready(&http, &first.api).await;
    assert_eq!(first.sim, format!("http://127.0.0.1:{sim_port}"));
    assert_eq!(
        send(&http, &first, &first.token, "before the restart").await,
        200
    );
    #[cfg(target_os = "linux")]
    {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", first.child.id())).unwrap();
        let files = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let numbers: Vec<&str> = files.split_whitespace().skip(3).take(2).collect();
        assert_eq!(
            numbers[0], numbers[1],
            "soft limit raised to the hard one: {files}"
        );
    }
    let token = first.token.clone();
    drop(first);

    let second = start(dir.path(), sim_port);
    wait_ready(&http, &second.api).await;
    assert_eq!(
        second.sim,
        format!("http://127.0.0.1:{sim_port}"),
        "same chat page URL"
    );
    assert_eq!(second.token, token, "the same token at every start");
    let kept = chat(&http, &second).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["msg_param"]["content"], "before the restart");
    assert_eq!(send(&http, &second, &token, "after").await, 200);
    assert_eq!(
        send(&http, &second, "dtc_notatokenatall0000000000", "x").await,
        401
    );
    drop(second);

    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in a log file");
}

/// At the default level each send is a log line, none lost in a burst, and a clean stop writes
/// its own lines before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_reaches_the_log_file_by_the_time_the_server_exits() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut s = start(dir.path(), free_port());
    wait_ready(&http, &s.api).await;
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..200 {
        let (http, url, token) = (
            http.clone(),
            format!("{}/v1/connections/sandbox/actions/send_text", s.api),
            s.token.clone(),
        );
        burst.spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"group_chat_id": dingtalk_sim::SANDBOX_OPS_GROUP, "content": format!("burst {n}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    // The sandbox keeps DingTalk's quota, so part of a burst is answered 429 (and not sent).
    let mut sent = 0;
    while let Some(answer) = burst.join_next().await {
        match answer.unwrap().unwrap() {
            200 => sent += 1,
            429 => {}
            other => panic!("a send answered {other}"),
        }
    }
    assert!(sent > 0);
    let stopped = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let code = s.child.wait().unwrap();
    assert!(code.success(), "dtc serve exited with {code:?}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert_eq!(
        log.matches("action done").count(),
        sent,
        "one line per send"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("delivery engine stopped"),
        "the lines of the shutdown itself are written too; the last: {last}"
    );
}

/// How many of a process's threads run tokio's async work (named so by tokio).
#[cfg(target_os = "linux")]
fn runtime_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_threads_sets_how_many_threads_run_the_server() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let http = reqwest::Client::new();
    for (setting, want) in [(None, cores), (Some("1"), 1), (Some("3"), 3)] {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = setting
            .map(|n| ("DTC_WORKER_THREADS", n))
            .into_iter()
            .collect();
        let s = start_with(dir.path(), free_port(), &env);
        wait_ready(&http, &s.api).await;
        assert_eq!(send(&http, &s, &s.token, "on few threads").await, 200);
        // Blocking threads (file reads, DNS) carry other names; the workers are all started.
        assert_eq!(
            runtime_workers(s.child.id()),
            want,
            "DTC_WORKER_THREADS={setting:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_simulator_port_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = start(dir.path(), port);
    wait_ready(&http, &s.api).await;
    assert_ne!(s.sim, format!("http://127.0.0.1:{port}"));
    assert_eq!(send(&http, &s, &s.token, "hello").await, 200);
    // Log lines are written in batches, a few milliseconds after they happen.
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
        if log.contains("is in use") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log.contains("is in use"), "{log}");
}

/// Whether a chat bubble on the page satisfies `want` (its text trimmed) within 10 s.
async fn bubble_shows(c: &testkit::fantoccini::Client, want: impl Fn(&str) -> bool) -> bool {
    for _ in 0..100 {
        let texts: Value = c
            .execute(
                "return [...document.querySelectorAll('section.chat .bubble')].map(b => b.textContent.trim());",
                vec![],
            )
            .await
            .unwrap();
        if texts
            .as_array()
            .is_some_and(|all| all.iter().any(|t| want(t.as_str().unwrap_or_default())))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn api_get(http: &reqwest::Client, s: &Sandbox, path: &str) -> Value {
    testkit::get_json(http, &format!("{}{path}", s.api), Some(&s.token)).await
}

/// A newcomer's way to a group's id: in the sandbox, type "id" (with "@robot" ticked) in the
/// Ops group's box on the chat page; the robot answers with the group's openConversationId, and
/// the group is listed among the connection's conversations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_at_robot_id_on_the_sandbox_chat_page_answers_the_group_id() {
    let Some(browser) = testkit::Browser::start(1280, 900).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), free_port());
    let http = reqwest::Client::new();
    wait_ready(&http, &s.api).await;
    // The sandbox robot holds its Stream socket.
    let mut sockets = 0;
    for _ in 0..100 {
        let st = testkit::get_json(&http, &format!("{}/_sim/stream", s.sim), None).await;
        sockets = st["connections"].as_array().map_or(0, Vec::len);
        if sockets == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sockets, 1);
    let c = &browser.client;
    c.goto(&format!("{}/", s.sim)).await.unwrap();
    let ops = dingtalk_sim::SANDBOX_OPS_GROUP;
    let input = c
        .find(testkit::fantoccini::Locator::Css(&format!(
            "form.say[data-conversation='{ops}'] input[name=text]"
        )))
        .await
        .expect("the Ops group has an input box");
    input.send_keys("id\n").await.unwrap();
    let id_answer = format!("openConversationId (group_chat_id):\n{ops}");
    let answered = bubble_shows(c, |b| b.contains(&id_answer)).await;
    browser
        .screenshot_in("console-screenshots", "sandbox-chat-robot-id")
        .await;
    assert!(answered, "the robot answered with the group's id");
    let list = api_get(&http, &s, "/v1/connections/sandbox/conversations").await;
    assert_eq!(list[0]["conversation_id"], ops, "{list}");

    // The sandbox's example chat flow: "@robot ping" → "pong", through a run of flow `ping`.
    input.send_keys("ping\n").await.unwrap();
    let ponged = bubble_shows(c, |b| b == "pong").await;
    browser
        .screenshot_in("console-screenshots", "sandbox-chat-robot-ping")
        .await;
    assert!(ponged, "the ping flow answered pong");
    let runs = api_get(&http, &s, "/v1/runs?flow=ping").await;
    assert_eq!(runs["runs"][0]["trigger"], "chat", "{runs}");
    browser.close().await;
}
