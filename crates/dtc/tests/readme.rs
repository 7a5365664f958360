//! The README's copy-paste examples use the sandbox fixture's real values.

#[test]
fn readme_examples_use_the_sandbox_fixture_values() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root");
    for (what, value) in [
        ("app key", dingtalk_sim::SANDBOX_APP_KEY),
        ("app secret", dingtalk_sim::SANDBOX_APP_SECRET),
        ("Ops group", dingtalk_sim::SANDBOX_OPS_GROUP),
        ("Dev group", dingtalk_sim::SANDBOX_DEV_GROUP),
    ] {
        assert!(
            readme.contains(value),
            "README does not show the sandbox {what} `{value}`"
        );
    }
    // A longer string that merely starts with the secret would still match above.
    assert!(
        !readme.contains(&format!("{}0", dingtalk_sim::SANDBOX_APP_SECRET)),
        "README shows a wrong sandbox secret"
    );
}

/// The README's fenced `sh` block that follows `marker`.
fn block_after(readme: &str, marker: &str) -> String {
    let from = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has `{marker}`"));
    let rest = &readme[from..];
    let start = rest.find("```sh\n").expect("an sh block follows") + 6;
    let end = rest[start..].find("```").expect("the block ends") + start;
    rest[start..end].to_owned()
}

/// The README's "Try it" commands, as written (ports aside), against a fresh sandbox: every
/// curl answer is a success, every message reaches the simulator, and the CLI block runs with
/// `dtc` on the PATH as the README says to install it.
#[test]
fn the_readme_commands_work_as_written() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    if Command::new("curl").arg("--version").output().is_err() {
        testkit::missing("curl");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (api_port, sim_port) = (free(), free());
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_dtc"))
        .args([
            "serve",
            "--sandbox",
            "--listen",
            &format!("127.0.0.1:{api_port}"),
        ])
        .current_dir(dir.path())
        .env_remove("DTC_API_TOKEN")
        .env("DTC_SANDBOX_SIM_LISTEN", format!("127.0.0.1:{sim_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read the token, then keep draining stdout: a closed pipe would kill the server at its
    // next line.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = serve.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(t) = line.trim().strip_prefix("export DTC_API_TOKEN=") {
                let _ = tx.send(t.to_owned());
            }
        }
    });
    let token = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the sandbox prints its token");
    let ports = |s: &str| {
        s.replace("127.0.0.1:8080", &format!("127.0.0.1:{api_port}"))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{sim_port}"))
    };
    let run = |script: &str, path: &str| {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(dir.path())
            .env("DTC_API_TOKEN", &token)
            .env("PATH", path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{script}\n{stdout}\n{stderr}");
        stdout
    };
    // Ready?
    let wait = format!(
        "for i in $(seq 1 300); do curl -sf http://127.0.0.1:{api_port}/healthz >/dev/null && exit 0; sleep 0.1; done; exit 1"
    );
    run(&wait, &std::env::var("PATH").unwrap());

    let curl = ports(&block_after(&readme, "## Try it")).replace(
        "export DTC_API_TOKEN=…",
        "export DTC_API_TOKEN=\"$DTC_API_TOKEN\"",
    );
    let answers = run(&curl, &std::env::var("PATH").unwrap());
    assert!(!answers.contains("\"error\""), "{answers}");
    let messages = run(
        &format!("curl -s http://127.0.0.1:{sim_port}/_sim/messages"),
        &std::env::var("PATH").unwrap(),
    );
    let messages: serde_json::Value = serde_json::from_str(&messages).unwrap();
    assert_eq!(
        messages.as_array().unwrap().len(),
        6,
        "the six seed actions arrived"
    );

    // The CLI block, with `dtc` installed on the PATH.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_dtc"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // The README's default server is 127.0.0.1:8080; this one listens elsewhere, given the
    // way `dtc serve` prints it.
    let cli = format!(
        "export DTC_SERVER=http://127.0.0.1:{api_port}/v1\n{}",
        ports(&block_after(&readme, "The same with the CLI"))
    );
    let out = run(&cli, &path);
    assert!(out.contains("NAME") && out.contains("sandbox"), "{out}");
    let messages = run(
        &format!("curl -s http://127.0.0.1:{sim_port}/_sim/messages"),
        &std::env::var("PATH").unwrap(),
    );
    let messages: serde_json::Value = serde_json::from_str(&messages).unwrap();
    assert_eq!(messages.as_array().unwrap().len(), 8, "and the CLI's two");

    // The three alerting commands, as written.
    let alerting = format!(
        "export DTC_SERVER=http://127.0.0.1:{api_port}\n{}",
        ports(&block_after(&readme, "## Alerting"))
    );
    let out = run(&alerting, &path);
    assert!(
        out.contains("\"status\":\"running\"") || out.contains("\"status\":\"succeeded\""),
        "{out}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let messages = run(
            &format!("curl -s http://127.0.0.1:{sim_port}/_sim/messages"),
            &std::env::var("PATH").unwrap(),
        );
        let messages: serde_json::Value = serde_json::from_str(&messages).unwrap();
        let last = &messages.as_array().unwrap().last().unwrap()["msg_param"];
        if last["title"] == "[FIRING:1] HighCPU" {
            assert!(
                last["text"].as_str().unwrap().contains("CPU above 90%"),
                "{last}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert did not arrive: {last}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = serve.kill();
    let _ = serve.wait();
}
