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
async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .expect("text")
}

/// The page's path once it is `want` (or, after 10 s, whatever it is).
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
    for label in ["group_chat_id", "subject", "content", "split"] {
        assert!(form.contains(label), "{label} in {form}");
    }
    shot("send").await;
    fill(c, "#f-group_chat_id", common::OPS).await;
    fill(c, "#f-subject", "Deploy").await;
    fill(c, "#f-content", "### Deploy done\n- **api** 1.4.2").await;
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
