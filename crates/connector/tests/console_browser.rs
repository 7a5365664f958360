//! The console in a real browser (headless Chromium over WebDriver): sign in with the API
//! token, open New Connection, see an empty AppKey refused before submit and a bad name refused
//! at its field, create a connection whose description is a script (shown as text), test it,
//! switch to Chinese. A screenshot of every page lands in `target/console-screenshots/`.

mod common;

use common::{TOKEN, spawn_app};
use serde_json::Value;
use testkit::fantoccini::{Client, Locator};

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script runs")
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.expect(css);
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

/// The text of `css`, waiting for it to appear (a click's navigation may still be on its way).
/// A page that refreshes itself (the deliveries list) can replace the element between finding
/// it and reading it: then it is found again.
async fn text(c: &Client, css: &str) -> String {
    for _ in 0..20 {
        let found = c
            .wait()
            .at_most(std::time::Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await;
        let page = match &found {
            Ok(_) => String::new(),
            Err(_) => c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default(),
        };
        match found
            .unwrap_or_else(|e| panic!("no `{css}` on {page}: {e}"))
            .text()
            .await
        {
            Ok(t) => return t,
            Err(testkit::fantoccini::error::CmdError::Standard(e))
                if e.error == testkit::fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("text of `{css}`: {e}"),
        }
    }
    panic!("`{css}` kept being replaced while read")
}

/// The text of `css` once it contains `want` (the preview updates a moment after typing).
async fn wait_text(c: &Client, css: &str, want: &str) -> String {
    let mut got = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            got = e.text().await.unwrap_or_default();
            if got.contains(want) {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got
}

/// The page's path once it is `want` (or, after 10 s, whatever it is).
/// The text of `css` once `ok` holds for it (waiting up to 10 s; the last text if it never
/// does): a form that answers with the page it was posted from leaves `path_is` nothing to wait
/// for, and the old page can still be read.
async fn text_until(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut got = String::new();
    for _ in 0..100 {
        got = text(c, css).await;
        if ok(&got) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got
}

async fn path_is(c: &Client, want: &str) -> String {
    let mut got = String::new();
    for _ in 0..100 {
        got = c.current_url().await.expect("url").path().to_owned();
        let ready = js(c, "return document.readyState;").await;
        if got == want && ready == "complete" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_signs_in_creates_and_tests_a_connection_and_reads_it_in_chinese() {
    let Some(browser) = testkit::Browser::start(1280, 900).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let shot = |name: &'static str| browser.screenshot_in("console-screenshots", name);

    // `/` leads to the sign-in page.
    c.goto(&format!("{}/", app.base)).await.unwrap();
    assert_eq!(path_is(c, "/console/sign-in").await, "/console/sign-in");
    shot("sign-in").await;
    fill(c, "#token", "not-a-token").await;
    click(c, "button[type=submit].primary").await;
    assert!(text(c, "#token-error").await.contains("not valid"));
    fill(c, "#token", TOKEN).await;
    click(c, "button[type=submit].primary").await;
    assert_eq!(
        path_is(c, "/console/connections").await,
        "/console/connections"
    );
    assert!(text(c, "main").await.contains("No connections yet"));
    shot("connections-empty").await;

    // The seed's New Connection dialog.
    click(c, "a.button.primary").await;
    assert_eq!(
        path_is(c, "/console/connections/new").await,
        "/console/connections/new"
    );
    for label in ["Name", "AppKey", "AppSecret", "RobotCode", "Description"] {
        assert!(text(c, "main form").await.contains(label), "{label}");
    }
    shot("new-connection").await;
    // An empty AppKey is refused before anything is sent.
    fill(c, "#f-name", "ops").await;
    fill(c, "#f-app_secret", dingtalk_sim::SANDBOX_APP_SECRET).await;
    click(c, "button[type=submit].primary").await;
    assert_eq!(
        path_is(c, "/console/connections/new").await,
        "/console/connections/new",
        "not submitted"
    );
    let missing = js(
        c,
        "return document.querySelector('#f-app_key').validity.valueMissing;",
    )
    .await;
    assert_eq!(missing, Value::Bool(true));
    // The API's own rules are shown at their field.
    fill(c, "#f-name", "bad name!").await;
    fill(c, "#f-app_key", dingtalk_sim::SANDBOX_APP_KEY).await;
    click(c, "button[type=submit].primary").await;
    assert!(
        text(c, "#e-name")
            .await
            .contains("may contain only letters"),
        "{}",
        text(c, "main").await
    );
    let html = c.source().await.unwrap();
    assert!(
        !html.contains(dingtalk_sim::SANDBOX_APP_SECRET),
        "a secret is never sent back"
    );
    shot("new-connection-error").await;

    fill(c, "#f-name", "ops").await;
    fill(c, "#f-app_key", dingtalk_sim::SANDBOX_APP_KEY).await;
    fill(c, "#f-app_secret", dingtalk_sim::SANDBOX_APP_SECRET).await;
    fill(
        c,
        "#f-description",
        "<script>alert(1)</script> & <b>bold</b>",
    )
    .await;
    click(c, "button[type=submit].primary").await;
    assert_eq!(
        path_is(c, "/console/connections").await,
        "/console/connections"
    );
    assert!(text(c, ".flash").await.contains("ops"));
    assert_eq!(
        text(c, "td.description").await,
        "<script>alert(1)</script> & <b>bold</b>"
    );
    assert_eq!(
        js(
            c,
            "return document.querySelectorAll('main script, main b').length;"
        )
        .await,
        0
    );
    shot("connections").await;

    // Test, in plain words.
    click(c, "form[action$='/ops/test'] button").await;
    assert!(
        text(c, ".result").await.contains("Connection works"),
        "{}",
        text(c, ".result").await
    );
    shot("connection-tested").await;

    // Send a markdown message from the Send page: a form made from the action's schema.
    c.goto(&format!(
        "{}/console/send?connection=ops&action=send_markdown",
        app.base
    ))
    .await
    .unwrap();
    let form = text(c, "main form[method=post]").await;
    // The seed's labels.
    for label in ["Group Chat ID", "Subject", "Content", "Split long messages"] {
        assert!(form.contains(label), "{label} in {form}");
    }
    fill(c, "#f-group_chat_id", common::OPS).await;
    fill(c, "#f-subject", "Deploy").await;
    fill(c, "#f-content", "### Deploy done\n- **api** 1.4.2").await;
    // The live preview shows it as DingTalk will: a heading and a bold word.
    let preview = wait_text(c, "#preview .bubble.markdown h3", "Deploy done").await;
    assert_eq!(preview, "Deploy done");
    assert_eq!(text(c, "#preview .bubble.markdown strong").await, "api");
    shot("send").await;
    click(c, "main form[method=post] button.primary").await;
    let mut status = String::new();
    for _ in 0..100 {
        status = text(c, "dl.facts").await;
        if status.contains("delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c.refresh().await.unwrap();
    }
    assert!(status.contains("delivered"), "{status}");
    let sent = app.sim.messages();
    let last = sent.last().unwrap().msg_param.as_ref().unwrap();
    assert_eq!(last["title"], "Deploy");
    assert!(
        last["text"].as_str().unwrap().contains("### Deploy done"),
        "{last}"
    );
    shot("sent").await;
    c.goto(&format!("{}/console/deliveries", app.base))
        .await
        .unwrap();
    assert!(text(c, "table.list").await.contains("send_markdown"));

    // A DingTalk refusal is shown in plain words at the form.
    c.goto(&format!(
        "{}/console/send?connection=ops&action=send_text",
        app.base
    ))
    .await
    .unwrap();
    fill(c, "#f-group_chat_id", " ").await;
    fill(c, "#f-content", "hi").await;
    click(c, "main form[method=post] button.primary").await;
    assert!(
        text(c, "#e-group_chat_id").await.len() > 3,
        "{}",
        text(c, "main").await
    );

    // A delivery that failed (DingTalk: no such group) is in the dead letters; retry it.
    let (status, failed) = app
        .run(
            "ops",
            "send_text",
            serde_json::json!({"group_chat_id": "cidNoSuchGroup0000000==", "content": "lost"}),
        )
        .await;
    assert_eq!(status, 422, "{failed}");
    c.goto(&format!("{}/console/deliveries?status=failed", app.base))
        .await
        .unwrap();
    assert!(text(c, "table.list").await.contains("send_text"));
    shot("dead-letters").await;
    click(c, "table.list tbody tr a").await;
    assert!(text(c, ".error-box").await.len() > 10);
    shot("delivery").await;
    click(c, "form[action$='/retry'] button").await;
    // Queued again and tried again (DingTalk refuses it again: the group does not exist).
    let mut rows = 0;
    for _ in 0..100 {
        rows = js(
            c,
            "return document.querySelectorAll('main table.list tbody tr').length;",
        )
        .await
        .as_u64()
        .unwrap_or(0);
        if rows >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c.refresh().await.unwrap();
    }
    assert!(
        rows >= 2,
        "a second attempt after the retry: {}",
        text(c, "main").await
    );
    shot("delivery-retried").await;

    // Chinese, remembered.
    c.goto(&format!("{}/console/connections", app.base))
        .await
        .unwrap();
    c.find(Locator::Css("#lang-select"))
        .await
        .unwrap()
        .select_by_value("zh")
        .await
        .unwrap();
    for _ in 0..50 {
        if text(c, "h1").await == "连接" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(text(c, "h1").await, "连接");
    c.goto(&format!("{}/console/connections/new", app.base))
        .await
        .unwrap();
    let form = text(c, "main form").await;
    for label in ["连接名称", "AppKey", "AppSecret", "RobotCode", "描述"] {
        assert!(form.contains(label), "{label} in {form}");
    }
    assert_eq!(text(c, "h1").await, "新建连接");
    shot("new-connection-zh").await;
    // The API's refusal, in Chinese at its field.
    fill(c, "#f-name", "bad name!").await;
    fill(c, "#f-app_key", dingtalk_sim::SANDBOX_APP_KEY).await;
    fill(c, "#f-app_secret", dingtalk_sim::SANDBOX_APP_SECRET).await;
    click(c, "button[type=submit].primary").await;
    let error = text(c, "#e-name").await;
    assert!(error.contains("只能包含字母"), "{error}");
    shot("new-connection-error-zh").await;

    // Sign out ends the session.
    c.goto(&format!("{}/console/connections", app.base))
        .await
        .unwrap();
    click(c, "form[action='/console/sign-out'] button").await;
    assert_eq!(path_is(c, "/console/sign-in").await, "/console/sign-in");
    c.goto(&format!("{}/console/connections", app.base))
        .await
        .unwrap();
    assert_eq!(path_is(c, "/console/sign-in").await, "/console/sign-in");
    browser.close().await;
}

async fn sign_in(c: &Client, base: &str) {
    c.goto(&format!("{base}/console/sign-in")).await.unwrap();
    fill(c, "#token", TOKEN).await;
    click(c, "button[type=submit].primary").await;
    assert_eq!(
        path_is(c, "/console/connections").await,
        "/console/connections"
    );
}

/// After a send: the delivery page, followed until DingTalk accepted it.
async fn delivered(c: &Client) -> String {
    let mut facts = String::new();
    for _ in 0..100 {
        facts = text(c, "dl.facts").await;
        if facts.contains("delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c.refresh().await.unwrap();
    }
    facts
}

/// Replaces a textarea's whole text (typing a long document key by key is slow).
async fn set_value(c: &Client, css: &str, value: &str) {
    c.execute(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![Value::from(css), Value::from(value)],
    )
    .await
    .expect("value set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_six_seed_messages_tokens_an_edit_and_a_flow_from_the_console() {
    let Some(browser) = testkit::Browser::start(1280, 900).await else {
        return;
    };
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let c = &browser.client;
    let shot = |name: &'static str| browser.screenshot_in("console-screenshots", name);
    let base = app.base.clone();
    sign_in(c, &base).await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("chart.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n a tiny chart").unwrap();
    let pdf = dir.path().join("report.pdf");
    std::fs::write(&pdf, b"%PDF-1.4 a tiny report").unwrap();

    // Each of the seed's six messages: fill the form, see the preview, send, see it delivered.
    let send_page = |action: &str| format!("{base}/console/send?connection=ops&action={action}");
    c.goto(&send_page("send_text")).await.unwrap();
    fill(c, "#f-group_chat_id", common::OPS).await;
    fill(c, "#f-content", "Backup finished <ok>").await;
    assert_eq!(
        wait_text(c, "#preview .bubble.text", "Backup").await,
        "Backup finished <ok>"
    );
    shot("send-text").await;
    click(c, "main form[method=post] button.primary").await;
    assert!(delivered(c).await.contains("delivered"));

    c.goto(&send_page("send_markdown")).await.unwrap();
    // The group the connection has sent to is offered.
    let offered = js(
        c,
        "return [...document.querySelectorAll('#known-groups option')].map(o => o.value);",
    )
    .await;
    assert_eq!(offered, serde_json::json!([common::OPS]));
    fill(c, "#f-group_chat_id", common::OPS).await;
    fill(c, "#f-subject", "Weekly").await;
    fill(c, "#f-content", "**all green**").await;
    wait_text(c, "#preview .bubble.markdown strong", "all green").await;
    click(c, "main form[method=post] button.primary").await;
    assert!(delivered(c).await.contains("delivered"));

    c.goto(&send_page("send_link")).await.unwrap();
    fill(c, "#f-group_chat_id", common::OPS).await;
    fill(c, "#f-subject", "Release notes").await;
    fill(c, "#f-content", "What changed in 1.4").await;
    fill(c, "#f-image_url", "https://example.com/p.png").await;
    fill(c, "#f-redirect_url", "https://example.com/notes").await;
    assert_eq!(
        wait_text(c, "#preview .link-card .card-title", "Release").await,
        "Release notes"
    );
    shot("send-link").await;
    click(c, "main form[method=post] button.primary").await;
    assert!(delivered(c).await.contains("delivered"));

    // Files and images are picked from disk.
    c.goto(&send_page("send_image")).await.unwrap();
    fill(c, "#f-group_chat_id", common::OPS).await;
    c.find(Locator::Css("#f-file"))
        .await
        .unwrap()
        .send_keys(png.to_str().unwrap())
        .await
        .unwrap();
    assert!(
        wait_text(c, "#preview .bubble.image", "chart.png")
            .await
            .contains("chart.png")
    );
    shot("send-image").await;
    click(c, "main form[method=post] button.primary").await;
    assert!(delivered(c).await.contains("delivered"));

    c.goto(&send_page("send_file")).await.unwrap();
    fill(c, "#f-group_chat_id", common::OPS).await;
    c.find(Locator::Css("#f-file"))
        .await
        .unwrap()
        .send_keys(pdf.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        wait_text(c, "#preview .bubble.file .file-name", "report").await,
        "report.pdf"
    );
    click(c, "main form[method=post] button.primary").await;
    assert!(delivered(c).await.contains("delivered"));

    c.goto(&send_page("send_action_card")).await.unwrap();
    fill(c, "#f-group_chat_id", common::OPS).await;
    fill(c, "#f-subject", "Approve deploy?").await;
    fill(c, "#f-content", "api 1.4.2 to production").await;
    fill(c, "#f-button_text", "Open").await;
    fill(c, "#f-redirect_url", "https://example.com/approve").await;
    assert_eq!(
        wait_text(c, "#preview .action-card a.button", "Open").await,
        "Open"
    );
    shot("send-action-card").await;
    click(c, "main form[method=post] button.primary").await;
    assert!(delivered(c).await.contains("delivered"));

    let keys: Vec<String> = app
        .sim
        .messages()
        .iter()
        .filter_map(|m| m.msg_key.clone())
        .collect();
    for key in [
        "sampleText",
        "sampleMarkdown",
        "sampleLink",
        "sampleImageMsg",
        "sampleFile",
        "sampleActionCard",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
    }
    let file = app
        .sim
        .messages()
        .into_iter()
        .find(|m| m.msg_key.as_deref() == Some("sampleFile"))
        .unwrap();
    assert_eq!(file.msg_param.unwrap()["fileName"], "report.pdf");

    // Edit: secrets are shown only as "set" and kept when left empty.
    c.goto(&format!("{base}/console/connections/ops/edit"))
        .await
        .unwrap();
    assert_eq!(
        js(
            c,
            "return document.querySelector('#f-app_secret').placeholder;"
        )
        .await,
        "set"
    );
    assert!(
        !c.source()
            .await
            .unwrap()
            .contains(dingtalk_sim::SANDBOX_APP_SECRET)
    );
    fill(c, "#f-description", "ops group, edited").await;
    shot("connection-edit").await;
    click(c, "button[type=submit].primary").await;
    assert!(text(c, ".flash").await.contains("ops"));
    assert_eq!(text(c, "td.description").await, "ops group, edited");
    click(c, "form[action$='/ops/test'] button").await;
    assert!(text(c, ".result").await.contains("Connection works"));
    // The list remembers the last test and the last use.
    c.goto(&format!("{base}/console/connections"))
        .await
        .unwrap();
    let row = text(c, "table.list tbody tr").await;
    assert!(row.contains("Connection works"), "{row}");
    assert!(!row.contains("never"), "{row}");

    // Tokens: made with a role, shown once, revoked.
    c.goto(&format!("{base}/console/tokens")).await.unwrap();
    fill(c, "#f-label", "grafana").await;
    c.find(Locator::Css("#f-role"))
        .await
        .unwrap()
        .select_by_value("viewer")
        .await
        .unwrap();
    click(c, "main form[action='/console/tokens'] button.primary").await;
    let token = text(c, "#new-token").await;
    assert!(token.len() > 20, "{token}");
    shot("tokens").await;
    let (status, _) = common::into_parts(
        reqwest::Client::new()
            .get(format!("{base}/v1/connections"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    c.goto(&format!("{base}/console/tokens")).await.unwrap();
    assert!(!c.source().await.unwrap().contains(&token), "shown once");
    js(c, "window.confirm = () => true; return 1;").await;
    click(c, "button[aria-label='Revoke grafana']").await;
    let tokens = text_until(c, "table.list", |t| !t.contains("grafana")).await;
    assert!(!tokens.contains("grafana"), "{tokens}");
    let (status, _) = common::into_parts(
        reqwest::Client::new()
            .get(format!("{base}/v1/connections"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "a revoked token stops working");

    // Flows: the Alertmanager template one click away, a mistake shown at its line, apply,
    // a dry run previewed, a run.
    c.goto(&format!("{base}/console/flows")).await.unwrap();
    fill(c, "#t-group", common::OPS).await;
    click(c, "form[action='/console/flows/new'] button").await;
    path_is(c, "/console/flows/new").await;
    let yaml: String = js(c, "return document.querySelector('#editor').value;")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(yaml.contains("format: alertmanager"), "{yaml}");
    let secret = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .map(|t| t.trim_matches('"').to_owned())
        .expect("the template's hook token");
    let broken = yaml.replacen("action: send_markdown", "action: send_nothing", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("send_nothing"))
        .unwrap()
        + 1;
    set_value(c, "#editor", &broken).await;
    click(c, "main form[action='/console/flows'] button.primary").await;
    let problems = text(c, "#problems").await;
    assert!(problems.contains(&format!("line {line}")), "{problems}");
    assert!(problems.contains("send_nothing"), "{problems}");
    // The line number takes the cursor to the line.
    click(c, "#problems a[data-line]").await;
    let selected = js(
        c,
        "const e = document.querySelector('#editor'); return e.value.slice(e.selectionStart, e.selectionEnd);",
    )
    .await;
    assert!(
        selected
            .as_str()
            .unwrap_or_default()
            .contains("send_nothing"),
        "{selected}"
    );
    shot("flow-problems").await;
    set_value(c, "#editor", &yaml).await;
    click(c, "main form[action='/console/flows'] button.primary").await;
    assert_eq!(
        path_is(c, "/console/flows/alertmanager").await,
        "/console/flows/alertmanager"
    );
    let stored: String = js(c, "return document.querySelector('#editor').value;")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        stored.contains("<set>") && !stored.contains(&secret),
        "{stored}"
    );
    // Applied again as shown (`<set>`), the hook keeps its token.
    click(c, "main form[action='/console/flows'] button.primary").await;
    // The same path reloads: wait for the new page's message, not the old page's.
    let flash = wait_text(c, ".flash", "v2").await;
    assert!(flash.contains("v2"), "{flash}");
    let hook = reqwest::Client::new()
        .post(format!("{base}/hooks/alertmanager"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({"version": "4", "status": "firing", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 202);

    click(c, "form[action$='/dry-run'] button:not(.primary)").await;
    let preview = text(c, "#dry-run-result ~ .dry-step .dt-preview").await;
    assert!(preview.contains("HighLatency"), "{preview}");
    js(
        c,
        "document.getElementById('dry-run-result').scrollIntoView(); return 1;",
    )
    .await;
    shot("flow-dry-run").await;
    click(c, "form[action$='/dry-run'] button.primary").await;
    let mut run = String::new();
    for _ in 0..100 {
        run = text(c, "#run-status").await;
        if run == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c.refresh().await.unwrap();
    }
    assert_eq!(run, "succeeded", "{}", text(c, "main").await);
    shot("run").await;
    c.goto(&format!("{base}/console/runs")).await.unwrap();
    assert!(text(c, "table.list").await.contains("alertmanager"));
    shot("runs").await;
    c.goto(&format!("{base}/console/flows")).await.unwrap();
    shot("flows").await;

    // Stream mode on: a person's "@robot id" in the group; the group is listed with its id.
    let resp = app
        .request(
            reqwest::Method::PATCH,
            "/v1/connections/ops",
            Some(serde_json::json!({"stream": true})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let mut listed = String::new();
    for _ in 0..100 {
        let _ = reqwest::Client::new()
            .post(format!(
                "{}/_sim/conversations/{}/messages",
                app.sim.base_url(),
                common::OPS
            ))
            .json(&serde_json::json!({"text": "id"}))
            .send()
            .await;
        c.goto(&format!("{base}/console/conversations"))
            .await
            .unwrap();
        listed = text(c, "main").await;
        if listed.contains(common::OPS) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(listed.contains(common::OPS), "{listed}");
    shot("conversations").await;
    // The Send page offers the group the robot heard from.
    c.goto(&format!(
        "{base}/console/send?connection=ops&action=send_text&group={}",
        common::OPS
    ))
    .await
    .unwrap();
    assert_eq!(
        js(
            c,
            "return document.querySelector('#f-group_chat_id').value;"
        )
        .await,
        common::OPS
    );

    // Readable in a narrow window (a phone's width): no sideways scrolling.
    c.set_window_size(400, 800).await.unwrap();
    c.goto(&format!("{base}/console/connections"))
        .await
        .unwrap();
    let wide = js(
        c,
        "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1;",
    )
    .await;
    shot("connections-narrow").await;
    assert_eq!(wide, Value::Bool(false), "the page fits a narrow window");
    browser.close().await;
}
