//! The official DingTalk Python SDK (`alibabacloud-dingtalk`) and the `DingtalkChatbot` webhook
//! library, unchanged, work against the simulator (docs/design.md §4). The Python side is
//! `tests/sdk_compat.py`; it runs in a venv kept under the target dir. Without Python or PyPI
//! the test says why it skipped, and fails in CI.

mod common;

use std::path::Path;

use dingtalk_sim::{
    SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, SANDBOX_WEBHOOK_SECRET,
    SANDBOX_WEBHOOK_TOKEN,
};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_and_dingtalkchatbot_work_unchanged() {
    let python = match testkit::python_venv(
        "sdk-compat",
        &["alibabacloud-dingtalk", "DingtalkChatbot"],
        "import alibabacloud_dingtalk.robot_1_0, dingtalkchatbot.chatbot",
    ) {
        Ok(p) => p,
        Err(why) => return testkit::missing(why),
    };
    let ctx = common::start().await;
    let endpoint = ctx.sim.addr().to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sdk_compat.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([
            endpoint.as_str(),
            SANDBOX_APP_KEY,
            SANDBOX_APP_SECRET,
            SANDBOX_OPS_GROUP,
            SANDBOX_WEBHOOK_TOKEN,
            SANDBOX_WEBHOOK_SECRET,
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run sdk_compat.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk_compat.py failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("summary ({e}): {stdout}"));
    assert_eq!(summary["wrong_secret_code"], "invalidClientIdOrSecret");
    assert_eq!(summary["query_has_more"], true);

    let messages = ctx.sim.messages();
    let keys: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.msg_key.as_deref())
        .collect();
    assert_eq!(keys, ["sampleText", "sampleMarkdown", "sampleActionCard"]);
    let sdk_keys: Vec<&str> = summary["group_send_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    let stored_keys: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.process_query_key.as_deref())
        .collect();
    assert_eq!(sdk_keys, stored_keys);
    let webhook = messages
        .iter()
        .find(|m| m.api == "webhook")
        .expect("webhook message stored");
    assert_eq!(
        webhook.payload.as_ref().expect("payload")["content"],
        "signed hello from DingtalkChatbot"
    );
    assert_eq!(ctx.sim.stats().rejected["invalidClientIdOrSecret"], 1);
}
