//! Flows end to end against the simulator: apply a document, trigger it (manually or through
//! its hook), and see each step arrive in DingTalk's groups — one message per item of a
//! `for_each`, skipped steps, failures that stop or do not stop a run, deduplicated retries and
//! hook auth.

mod common;

use std::time::Duration;

use common::{OPS, TOKEN, TestApp, into_parts, spawn_app};
use dingtalk_sim::{SANDBOX_DEV_GROUP, SANDBOX_SALES_GROUP};
use serde_json::{Value, json};

async fn apply(app: &TestApp, yaml: &str) -> (u16, Value) {
    let resp = app
        .http
        .post(format!("{}/v1/flows", app.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .unwrap();
    into_parts(resp).await
}

async fn hook(app: &TestApp, flow: &str, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/hooks/{flow}", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    into_parts(req.send().await.unwrap()).await
}

/// Waits until the run is finished; returns it.
async fn finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..300 {
        let (status, run) = app.get(&format!("/v1/runs/{id}")).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} did not finish");
}

fn texts(app: &TestApp) -> Vec<(String, String)> {
    app.sim
        .messages()
        .into_iter()
        .map(|m| {
            let text = m
                .msg_param
                .as_ref()
                .and_then(|p| p.get("content").or_else(|| p.get("text")))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (m.open_conversation_id.unwrap_or_default(), text)
        })
        .collect()
}

const FAN_OUT: &str = r#"
name: fan-out
description: one message per group, then a summary
trigger: {type: manual}
vars:
  targets:
    - {connection: ops, group: "GROUP_OPS"}
    - {connection: ops, group: "GROUP_DEV"}
    - {connection: sales, group: "GROUP_SALES"}
steps:
  - id: each
    action: send_text
    connection: "{{ item.connection }}"
    for_each: vars.targets
    input:
      group_chat_id: "{{ item.group }}"
      content: "{{ index + 1 }}/3: {{ trigger.body.what }}"
  - id: skipped
    action: send_text
    connection: ops
    when: trigger.body.loud
    input: {group_chat_id: "GROUP_OPS", content: "never"}
  - id: summary
    action: send_text
    connection: ops
    input:
      group_chat_id: "GROUP_OPS"
      content: "sent {{ steps.each.output | length }} messages; skipped: {{ steps.skipped.status }}"
"#;

fn fan_out() -> String {
    FAN_OUT
        .replace("GROUP_OPS", OPS)
        .replace("GROUP_DEV", SANDBOX_DEV_GROUP)
        .replace("GROUP_SALES", SANDBOX_SALES_GROUP)
}

async fn create_sales_connection(app: &TestApp) {
    let (status, body) = app
        .post(
            "/v1/connections",
            json!({
                "name": "sales",
                "app_key": dingtalk_sim::SANDBOX_APP2_KEY,
                "app_secret": dingtalk_sim::SANDBOX_APP2_SECRET,
                "robot_code": dingtalk_sim::SANDBOX_APP2_KEY,
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_manual_run_fans_out_to_three_groups_skips_and_summarises() {
    fans_out(spawn_app().await).await;
}

#[tokio::test]
async fn the_same_run_on_postgres() {
    let Some(pg) = testkit::PgSchema::create("dtc_flows").await else {
        return;
    };
    let url = pg.url.clone();
    fans_out(common::spawn_app_with(move |s| s.database_url = Some(url)).await).await;
    pg.drop_schema().await;
}

async fn fans_out(app: TestApp) {
    app.create_app_connection("ops").await;
    create_sales_connection(&app).await;
    let (status, flow) = apply(&app, &fan_out()).await;
    assert_eq!(status, 201, "{flow}");
    assert_eq!(flow["version"], 1);

    let (status, run) = app
        .post(
            "/v1/flows/fan-out/runs",
            json!({"what": "deploy done", "loud": false}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let run = finished(&app, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["steps"]["skipped"]["status"], "skipped");
    assert_eq!(run["deliveries"].as_array().unwrap().len(), 4, "{run:#}");

    let mut got = texts(&app);
    // The summary is sent after every item of the step before it.
    assert_eq!(
        got.pop(),
        Some((
            OPS.to_owned(),
            "sent 3 messages; skipped: skipped".to_owned()
        ))
    );
    // The items go out in parallel (different groups); each arrives once.
    got.sort();
    let mut want = vec![
        (OPS.to_owned(), "1/3: deploy done".to_owned()),
        (SANDBOX_DEV_GROUP.to_owned(), "2/3: deploy done".to_owned()),
        (
            SANDBOX_SALES_GROUP.to_owned(),
            "3/3: deploy done".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    // A second apply is the next version; runs list by flow.
    let (status, flow) = apply(&app, &fan_out().replace("one message per group", "v2")).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["version"], 2);
    let (_, runs) = app.get("/v1/runs?flow=fan-out").await;
    assert_eq!(runs["runs"][0]["flow_version"], 1);
}

#[tokio::test]
async fn a_failed_step_stops_the_run_unless_it_may_continue() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let flow = |on_error: &str| {
        format!(
            r#"
name: fails-{on_error}
trigger: {{type: manual}}
steps:
  - id: bad
    action: send_text
    connection: ops
    on_error: {on_error}
    input: {{group_chat_id: "cidNoSuchGroup0000000==", content: "lost"}}
  - id: after
    action: send_text
    connection: ops
    input: {{group_chat_id: "{OPS}", content: "after {on_error}: {{{{ steps.bad.status }}}}"}}
"#
        )
    };
    for on_error in ["fail", "continue"] {
        let (status, body) = apply(&app, &flow(on_error)).await;
        assert_eq!(status, 201, "{body}");
        let (status, run) = app
            .post(&format!("/v1/flows/fails-{on_error}/runs"), json!({}))
            .await;
        assert_eq!(status, 202, "{run}");
        let run = finished(&app, run["id"].as_str().unwrap()).await;
        assert_eq!(run["steps"]["bad"]["status"], "failed", "{run:#}");
        let code = &run["steps"]["bad"]["error"]["dingtalk"];
        assert!(code.is_object(), "DingTalk's answer is kept: {run:#}");
        if on_error == "fail" {
            assert_eq!(run["status"], "failed", "{run:#}");
            assert_eq!(run["error"]["step"], "bad");
            assert!(run["steps"].get("after").is_none());
        } else {
            assert_eq!(run["status"], "succeeded", "{run:#}");
        }
    }
    let got = texts(&app);
    assert_eq!(
        got,
        vec![(OPS.to_owned(), "after continue: failed".to_owned())]
    );
}

#[tokio::test]
async fn a_hook_checks_its_token_and_a_retried_notification_starts_no_second_run() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let yaml = format!(
        r#"
name: am
trigger:
  type: webhook
  format: alertmanager
  auth: {{bearer: {{token: s3cret-hook-token}}}}
steps:
  - id: notify
    action: send_markdown
    connection: ops
    for_each: trigger.body.alerts
    input:
      group_chat_id: "{OPS}"
      subject: "{{{{ item.labels.alertname }}}}"
      content: "**{{{{ item.status | upper }}}}** {{{{ item.annotations.summary }}}} since {{{{ item.startsAt | localtime }}}}"
"#
    );
    let (status, flow) = apply(&app, &yaml).await;
    assert_eq!(status, 201, "{flow}");
    assert_eq!(flow["hook_path"], "/hooks/am");
    assert_eq!(
        flow["document"]["trigger"]["auth"]["bearer"]["token"], "<set>",
        "the token is not kept in clear: {flow}"
    );
    let alert = json!({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "HighCPU"},
         "annotations": {"summary": "CPU > 90%"}, "startsAt": "2026-11-25T08:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z"}]});

    let (status, body) = hook(&app, "am", None, &alert).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = hook(&app, "am", Some("Bearer wrong"), &alert).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = hook(
        &app,
        "am",
        Some("Bearer s3cret-hook-token"),
        &json!({"x": 1}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "alerts");
    let (_, runs) = app.get("/v1/runs?flow=am").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "nothing started");

    let (status, first) = hook(&app, "am", Some("Bearer s3cret-hook-token"), &alert).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = hook(&app, "am", Some("Bearer s3cret-hook-token"), &alert).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"]);
    let run = finished(&app, first["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(
        run["trigger_data"]["headers"]
            .get("authorization")
            .is_none(),
        "credentials are not logged: {run}"
    );
    let got = app.sim.messages();
    assert_eq!(got.len(), 1);
    let text = got[0].msg_param.as_ref().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, "**FIRING** CPU > 90% since 2026-11-25 16:00:00");
}

#[tokio::test]
async fn applying_a_bad_flow_names_line_field_and_reason_and_stores_nothing() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let bad = fan_out()
        .replace("connection: ops\n    when", "connection: nope\n    when")
        .replace("{{ trigger.body.what }}", "{{ trigger.body.what ");
    // The shape is right; what it refers to and holds cannot be used: 422, every problem listed.
    let (status, body) = apply(&app, &bad).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("line 20, `steps[1].connection`: no connection is named `nope`"),
        "{message}"
    );
    assert!(message.contains("`steps[0].input.content`"), "{message}");
    assert_eq!(body["error"]["field"], "steps[0].input.content");
    let (status, body) = apply(&app, "name: x\n  bad: [\n").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid YAML"),
        "{body}"
    );
    let (_, flows) = app.get("/v1/flows").await;
    assert_eq!(flows, json!([]));
    assert!(app.sim.messages().is_empty());
}

fn grafana_signature(secret: &str, timestamp: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}:{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_grafana_notification_is_verified_by_its_hmac_signature() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let yaml = connector::flows::init::init(&connector::flows::init::InitOptions {
        format: connector::flows::init::InitFormat::Grafana,
        name: "grafana",
        connection: "ops",
        kind: connector::connections::ConnectionKind::AppRobot,
        group: Some(OPS),
        secret: "grafana-hmac-secret",
    })
    .unwrap();
    let (status, body) = apply(&app, &yaml).await;
    assert_eq!(status, 201, "{body}");
    let payload = json!({"receiver": "dtc", "status": "firing", "orgId": 1, "state": "alerting",
        "version": "1", "title": "[FIRING:1] HighCPU (critical)", "message": "m",
        "groupLabels": {"alertname": "HighCPU"}, "commonLabels": {"alertname": "HighCPU"},
        "commonAnnotations": {}, "externalURL": "https://grafana.example/",
        "alerts": [{"status": "firing", "labels": {"alertname": "HighCPU"},
            "annotations": {"summary": "CPU > 90%"}, "startsAt": "2026-11-25T08:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "values": {"B": 97.1},
            "panelURL": "https://grafana.example/d/x?viewPanel=2",
            "silenceURL": "https://grafana.example/alerting/silence/new",
            "dashboardURL": "", "imageURL": "https://grafana.example/x.png"}]})
    .to_string();
    let send = |signature: String, timestamp: &'static str| {
        app.http
            .post(format!("{}/hooks/grafana", app.base))
            .header("content-type", "application/json")
            .header("X-Grafana-Alerting-Signature", signature)
            .header("X-Grafana-Alerting-Signature-Timestamp", timestamp)
            .body(payload.clone())
            .send()
    };
    // Signed with another secret, or over another timestamp: refused, nothing started.
    let (status, body) = into_parts(
        send(
            grafana_signature("wrong", "1764000000", &payload),
            "1764000000",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = into_parts(
        send(
            grafana_signature("grafana-hmac-secret", "1764000001", &payload),
            "1764000000",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        app.get("/v1/runs?flow=grafana").await.1["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let (status, run) = into_parts(
        send(
            grafana_signature("grafana-hmac-secret", "1764000000", &payload),
            "1764000000",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let run = finished(&app, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let got = app.sim.messages();
    let p = got[0].msg_param.as_ref().unwrap();
    assert_eq!(p["title"], "[FIRING:1] HighCPU (critical)");
    let text = p["text"].as_str().unwrap();
    for want in [
        "B=97.1",
        "[Panel](https://grafana.example/d/x?viewPanel=2)",
        "![image](https://grafana.example/x.png)",
        "2026-11-25 16:00:00",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
}

#[tokio::test]
async fn hooks_refuse_oversize_bodies_and_unknown_flows_and_runs_stop_runaway_templates() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let yaml = format!(
        r#"
name: loop
trigger: {{type: webhook}}
steps:
  - id: spin
    action: send_text
    connection: ops
    input:
      group_chat_id: "{OPS}"
      content: "{{% for i in range(100000) %}}{{% for j in range(100000) %}}x{{% endfor %}}{{% endfor %}}"
"#
    );
    let (status, body) = apply(&app, &yaml).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = hook(&app, "nope", None, &json!({})).await;
    assert_eq!(status, 404, "{body}");
    let big = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let (status, body) = hook(&app, "loop", None, &big).await;
    assert_eq!(status, 413, "{body}");

    let (status, run) = hook(&app, "loop", None, &json!({"n": 1})).await;
    assert_eq!(status, 202, "{run}");
    let run = finished(&app, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(message.contains("ran out of its budget"), "{message}");
    assert_eq!(run["error"]["field"], "input.content");
    assert!(app.sim.messages().is_empty());

    // A bad cron is refused when applied, naming the field.
    let (status, body) = apply(
        &app,
        "name: cron\ntrigger: {type: schedule, cron: '61 * * * *'}\nsteps:\n  - {id: a, action: send_text, connection: ops, input: {group_chat_id: x, content: y}}\n",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "trigger.cron");
}

/// Alertmanager retries 5xx and never 4xx: a hook whose run cannot be stored must say 503.
#[tokio::test]
async fn a_hook_whose_run_cannot_be_stored_answers_503_so_alertmanager_retries() {
    let Some(pg) = testkit::PgSchema::create("dtc_hook503").await else {
        return;
    };
    let url = pg.url.clone();
    let app = common::spawn_app_with(move |s| s.database_url = Some(url)).await;
    app.create_app_connection("ops").await;
    let yaml = format!(
        "name: am\ntrigger: {{type: webhook, format: json}}\nsteps:\n  - {{id: a, action: send_text, connection: ops, input: {{group_chat_id: '{OPS}', content: hi}}}}\n"
    );
    let (status, body) = apply(&app, &yaml).await;
    assert_eq!(status, 201, "{body}");
    testkit::pg_exec(&pg.url, "ALTER TABLE runs RENAME TO runs_away").await;
    let (status, body) = hook(&app, "am", None, &json!({"n": 1})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert_eq!(body["error"]["retryable"], true, "{body}");
    testkit::pg_exec(&pg.url, "ALTER TABLE runs_away RENAME TO runs").await;
    let (status, body) = hook(&app, "am", None, &json!({"n": 1})).await;
    assert_eq!(status, 202, "the retry is taken: {body}");
    pg.drop_schema().await;
}

/// The ready Alertmanager flow routes by the `team` label (one alert to several groups) and, on
/// a webhook robot, @-mentions by `severity` with the numbers in the text.
#[tokio::test]
async fn the_ready_alertmanager_flow_routes_by_team_and_mentions_by_severity() {
    use connector::connections::ConnectionKind;
    use connector::flows::init::{InitFormat, InitOptions, init};
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    app.create_webhook_connection("hook").await;
    let yaml = init(&InitOptions {
        format: InitFormat::Alertmanager,
        name: "am",
        connection: "ops",
        kind: ConnectionKind::AppRobot,
        group: Some(OPS),
        secret: "t0ken",
    })
    .unwrap()
    .replace(
        "    # db:\n",
        &format!("    db:\n      - {{connection: ops, group: \"{OPS}\"}}\n      - {{connection: ops, group: \"{SANDBOX_DEV_GROUP}\"}}\n"),
    );
    let (status, body) = apply(&app, &yaml).await;
    assert_eq!(status, 201, "{body}\n{yaml}");
    let alert = |team: &str| {
        json!({"status": "firing", "groupLabels": {"alertname": "Slow"},
               "commonLabels": {"alertname": "Slow", "team": team, "severity": "critical"},
               "alerts": [{"status": "firing", "labels": {"alertname": "Slow", "team": team},
                           "annotations": {"summary": "slow"}, "startsAt": "2026-11-25T08:00:00Z"}]})
    };
    let groups = |dry: &Value| -> Vec<String> {
        dry["steps"][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["input"]["group_chat_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, dry) = app.post("/v1/flows/am/dry-run", alert("db")).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        groups(&dry),
        vec![OPS.to_owned(), SANDBOX_DEV_GROUP.to_owned()]
    );
    let (_, dry) = app.post("/v1/flows/am/dry-run", alert("web")).await;
    assert_eq!(groups(&dry), vec![OPS.to_owned()], "the default route");
    assert!(app.sim.messages().is_empty(), "a dry run sends nothing");

    let yaml = init(&InitOptions {
        format: InitFormat::Alertmanager,
        name: "am-hook",
        connection: "hook",
        kind: ConnectionKind::WebhookRobot,
        group: None,
        secret: "t0ken",
    })
    .unwrap()
    .replace("    critical: []", "    critical: [\"13800000000\"]");
    let (status, body) = apply(&app, &yaml).await;
    assert_eq!(status, 201, "{body}\n{yaml}");
    let (_, dry) = app.post("/v1/flows/am-hook/dry-run", alert("db")).await;
    let input = &dry["steps"][0]["items"][0]["input"];
    assert_eq!(input["at_mobiles"], json!(["13800000000"]), "{dry:#}");
    assert!(
        input["content"].as_str().unwrap().contains("@13800000000"),
        "{dry:#}"
    );
}
