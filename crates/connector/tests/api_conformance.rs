//! The OpenAPI document tells the truth: real requests through every documented operation —
//! successes and errors — get answers whose status the document lists (or its `default`) and
//! whose body its schema accepts; and every operation of the document is exercised.

mod common;

use std::collections::BTreeSet;

use common::{OPS, TOKEN, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// A request to make, by the document's path template and the concrete path.
struct Call {
    method: Method,
    template: &'static str,
    path: String,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
    auth: bool,
}

fn call(method: Method, template: &'static str, path: impl Into<String>) -> Call {
    Call {
        method,
        template,
        path: path.into(),
        body: None,
        headers: Vec::new(),
        auth: true,
    }
}

impl Call {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    fn anonymous(mut self) -> Self {
        self.auth = false;
        self
    }
}

/// The schema at `pointer` in `doc` as a validator that resolves the document's `$ref`s
/// (`#/components/schemas/…`).
fn validator(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc
        .pointer(pointer)
        .expect("the schema is in the document")
        .clone();
    if let Some(obj) = root.as_object_mut() {
        obj.insert("components".into(), doc["components"].clone());
    }
    jsonschema::draft202012::new(&root).expect("the document's schema compiles")
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The id of a delivery in `status` once the log shows one (sync sends are logged behind the
/// answer).
async fn first_logged(app: &common::TestApp, status: &str) -> String {
    for _ in 0..100 {
        let (_, page) = app.get(&format!("/v1/deliveries?status={status}")).await;
        if let Some(id) = page["deliveries"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {status} delivery was logged");
}

#[tokio::test]
async fn every_operation_answers_as_the_document_says() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/v1/openapi.json").await;
    app.create_app_connection("ops").await;
    app.create_webhook_connection("hook").await;

    // A message sent, for the read-status and recall operations and the delivery log.
    let (s, sent) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": OPS, "content": "first"}),
        )
        .await;
    assert_eq!(s, 200, "{sent}");
    let key = sent["process_query_key"].as_str().unwrap().to_owned();
    let delivered = first_logged(&app, "delivered").await;
    // A failed one, to retry.
    let (s, _) = app
        .run(
            "ops",
            "send_text",
            json!({"group_chat_id": "cidNoSuchGroup==", "content": "x"}),
        )
        .await;
    assert_eq!(s, 422);
    let failed = first_logged(&app, "failed").await;
    let (_, upload) = app
        .run(
            "ops",
            "upload_media",
            json!({"media_type": "file", "file": {"name": "a.pdf", "content_base64": "JVBERi0xLjQK"}}),
        )
        .await;
    let media = upload["media_id"].as_str().unwrap().to_owned();
    let flow = |name: &str, trigger: Value| {
        json!({"name": name, "trigger": trigger, "steps": [{"id": "say", "action": "send_text",
               "connection": "ops", "input": {"group_chat_id": OPS, "content": "{{ trigger.body | tojson }}"}}]})
    };
    for (name, trigger) in [
        ("conf", json!({"type": "manual"})),
        ("conf-hook", json!({"type": "webhook"})),
    ] {
        let (status, body) = app.post("/v1/flows", flow(name, trigger)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, run) = app.post("/v1/flows/conf/runs", json!({"n": 1})).await;
    assert_eq!(status, 202, "{run}");
    let run = run["id"].as_str().unwrap().to_owned();
    let (status, viewer) = app
        .post(
            "/v1/tokens",
            json!({"label": "conformance viewer", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{viewer}");
    let viewer_id = viewer["id"].as_str().unwrap().to_owned();
    let viewer = viewer["token"].as_str().unwrap().to_owned();

    let act = |name: &str| format!("/v1/connections/ops/actions/{name}");
    let action = |name: &'static str, t: &'static str| call(Method::POST, t, act(name));
    use Method as M;
    let calls =
        vec![
        call(M::GET, "/healthz", "/healthz").anonymous(),
        call(M::GET, "/metrics", "/metrics").anonymous(),
        call(M::GET, "/v1/actions", "/v1/actions"),
        call(M::GET, "/v1/actions", "/v1/actions").anonymous(),
        call(M::GET, "/v1/actions/{action}", "/v1/actions/send_link"),
        call(M::GET, "/v1/actions/{action}", "/v1/actions/send_fax"),
        call(M::GET, "/v1/connections", "/v1/connections"),
        call(M::POST, "/v1/connections", "/v1/connections").body(json!({
            "name": "tmp", "app_key": "dingsandbox0000000001",
            "app_secret": dingtalk_sim::SANDBOX_APP_SECRET, "robot_code": "dingsandbox0000000001"
        })),
        call(M::POST, "/v1/connections", "/v1/connections")
            .body(json!({"name": "ops", "app_key": "k", "app_secret": "s", "robot_code": "r"})),
        call(M::POST, "/v1/connections", "/v1/connections").body(json!({"name": "bad name"})),
        call(M::POST, "/v1/connections", "/v1/connections")
            .body(json!({"name": "x"}))
            .header("content-type", "text/plain"),
        call(
            M::GET,
            "/v1/connections/{id_or_name}",
            "/v1/connections/ops",
        ),
        call(
            M::GET,
            "/v1/connections/{id_or_name}",
            "/v1/connections/nope",
        ),
        call(
            M::PATCH,
            "/v1/connections/{id_or_name}",
            "/v1/connections/tmp",
        )
        .body(json!({"description": "changed"})),
        call(
            M::PATCH,
            "/v1/connections/{id_or_name}",
            "/v1/connections/tmp",
        )
        .body(json!({"qps_quota": 99})),
        call(
            M::POST,
            "/v1/connections/{id_or_name}/test",
            "/v1/connections/ops/test",
        ),
        call(
            M::POST,
            "/v1/connections/{id_or_name}/test",
            "/v1/connections/hook/test",
        ),
        call(
            M::GET,
            "/v1/connections/{id_or_name}/conversations",
            "/v1/connections/ops/conversations",
        ),
        call(
            M::GET,
            "/v1/connections/{id_or_name}/conversations",
            "/v1/connections/nope/conversations",
        ),
        call(
            M::DELETE,
            "/v1/connections/{id_or_name}",
            "/v1/connections/tmp",
        ),
        call(
            M::DELETE,
            "/v1/connections/{id_or_name}",
            "/v1/connections/tmp",
        ),
        action(
            "send_text",
            "/v1/connections/{id_or_name}/actions/send_text",
        )
        .body(json!({"group_chat_id": OPS, "content": "hi"})),
        action(
            "send_text",
            "/v1/connections/{id_or_name}/actions/send_text",
        )
        .body(json!({"group_chat_id": OPS, "content": "later"}))
        .header("prefer", "respond-async"),
        action(
            "send_text",
            "/v1/connections/{id_or_name}/actions/send_text",
        )
        .body(json!({"group_chat_id": OPS})),
        action(
            "send_text",
            "/v1/connections/{id_or_name}/actions/send_text",
        )
        .body(json!({"group_chat_id": "cidNoSuchGroup==", "content": "refused"})),
        action(
            "send_markdown",
            "/v1/connections/{id_or_name}/actions/send_markdown",
        )
        .body(json!({"group_chat_id": OPS, "subject": "s", "content": "# c"})),
        action(
            "send_link",
            "/v1/connections/{id_or_name}/actions/send_link",
        )
        .body(json!({
            "group_chat_id": OPS, "subject": "s", "content": "c",
            "image_url": "https://e.com/p.png", "redirect_url": "https://e.com"
        })),
        action(
            "send_image",
            "/v1/connections/{id_or_name}/actions/send_image",
        )
        .body(json!({"group_chat_id": OPS, "image_url": "https://e.com/p.png"})),
        action(
            "send_file",
            "/v1/connections/{id_or_name}/actions/send_file",
        )
        .body(json!({
            "group_chat_id": OPS, "media_id": media, "file_name": "a.pdf", "file_type": "pdf"
        })),
        action(
            "send_action_card",
            "/v1/connections/{id_or_name}/actions/send_action_card",
        )
        .body(json!({"group_chat_id": OPS, "subject": "s", "content": "c",
                         "button_text": "Go", "redirect_url": "https://e.com"})),
        action(
            "upload_media",
            "/v1/connections/{id_or_name}/actions/upload_media",
        )
        .body(json!({
            "media_type": "image", "file": {"name": "p.png", "content_base64": "iVBORw0KGgo="}
        })),
        action(
            "query_read_status",
            "/v1/connections/{id_or_name}/actions/query_read_status",
        )
        .body(json!({"group_chat_id": OPS, "process_query_key": key})),
        action(
            "recall_messages",
            "/v1/connections/{id_or_name}/actions/recall_messages",
        )
        .body(json!({"group_chat_id": OPS, "process_query_keys": [key]})),
        action(
            "send_to_users",
            "/v1/connections/{id_or_name}/actions/send_to_users",
        )
        .body(json!({"user_ids": ["manager1234"], "msg_type": "text", "content": "1:1"})),
        // No message was received: 422, naming `message_id` (chat_stream.rs replies for real).
        action("reply", "/v1/connections/{id_or_name}/actions/reply")
            .body(json!({"message_id": "msgNeverReceived", "content": "pong"})),
        call(
            M::POST,
            "/v1/connections/{id_or_name}/actions/webhook_send",
            "/v1/connections/hook/actions/webhook_send",
        )
        .body(json!({"msg_type": "text", "content": "via hook"})),
        action(
            "webhook_send",
            "/v1/connections/{id_or_name}/actions/webhook_send",
        )
        .body(json!({"msg_type": "text", "content": "wrong kind"})),
        call(
            M::POST,
            "/v1/connections/{id_or_name}/actions/{action}",
            "/v1/connections/ops/actions/send_fax",
        )
        .body(json!({})),
        call(
            M::GET,
            "/v1/deliveries",
            "/v1/deliveries?status=delivered&limit=5",
        ),
        call(M::GET, "/v1/deliveries", "/v1/deliveries?limit=0"),
        call(
            M::GET,
            "/v1/deliveries/{id}",
            format!("/v1/deliveries/{delivered}"),
        ),
        call(M::GET, "/v1/deliveries/{id}", "/v1/deliveries/not-a-uuid"),
        call(
            M::POST,
            "/v1/deliveries/{id}/retry",
            format!("/v1/deliveries/{failed}/retry"),
        ),
        call(
            M::POST,
            "/v1/deliveries/{id}/retry",
            format!("/v1/deliveries/{delivered}/retry"),
        ),
        call(M::POST, "/v1/flows", "/v1/flows").body(flow("conf2", json!({"type": "manual"}))),
        call(M::POST, "/v1/flows", "/v1/flows").body(json!({"name": "x", "steps": []})),
        call(M::GET, "/v1/flows", "/v1/flows"),
        call(M::GET, "/v1/flows/{name}", "/v1/flows/conf"),
        call(M::GET, "/v1/flows/{name}", "/v1/flows/nope"),
        call(M::PUT, "/v1/flows/{name}", "/v1/flows/conf")
            .body(flow("conf", json!({"type": "manual"}))),
        call(M::POST, "/v1/flows/{name}/runs", "/v1/flows/conf/runs").body(json!({"n": 2})),
        call(M::POST, "/v1/flows/{name}/dry-run", "/v1/flows/conf/dry-run").body(json!({"n": 4})),
        call(M::POST, "/v1/flows/{name}/dry-run", "/v1/flows/nope/dry-run").body(json!({})),
        call(M::GET, "/v1/runs", "/v1/runs?flow=conf&limit=5"),
        call(M::GET, "/v1/runs/{id}", format!("/v1/runs/{run}")),
        call(M::GET, "/v1/runs/{id}", "/v1/runs/not-a-uuid"),
        call(M::POST, "/hooks/{name}", "/hooks/conf-hook")
            .body(json!({"n": 3}))
            .anonymous(),
        call(M::POST, "/hooks/{name}", "/hooks/nope")
            .body(json!({}))
            .anonymous(),
        call(M::DELETE, "/v1/flows/{name}", "/v1/flows/conf2"),
        call(M::GET, "/v1/tokens", "/v1/tokens"),
        call(M::POST, "/v1/tokens", "/v1/tokens").body(json!({"label": "ci", "role": "operator"})),
        call(M::POST, "/v1/tokens", "/v1/tokens").body(json!({"label": "ci", "role": "root"})),
        call(M::POST, "/v1/connections", "/v1/connections")
            .body(json!({"name": "by-viewer", "app_key": "k", "app_secret": "s"}))
            .anonymous()
            .header("authorization", &format!("Bearer {viewer}")),
        call(M::DELETE, "/v1/tokens/{id}", format!("/v1/tokens/{viewer_id}")),
        call(M::DELETE, "/v1/tokens/{id}", "/v1/tokens/not-a-uuid"),
    ];

    let mut exercised = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    for c in calls {
        let mut req = app
            .http
            .request(c.method.clone(), format!("{}{}", app.base, c.path));
        if c.auth {
            req = req.bearer_auth(TOKEN);
        }
        let typed = c
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if let Some(b) = &c.body {
            req = if typed {
                req.body(b.to_string())
            } else {
                req.json(b)
            };
        }
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await.unwrap();
        let method = c.method.as_str().to_ascii_lowercase();
        let op_pointer = format!("/paths/{}/{method}", escape(c.template));
        let op = doc
            .pointer(&op_pointer)
            .unwrap_or_else(|| panic!("{} {} is not in the document", c.method, c.template));
        exercised.insert((method.clone(), c.template));
        statuses.insert(status);
        let code = if op["responses"].get(status.to_string()).is_some() {
            status.to_string()
        } else {
            assert!(
                op["responses"].get("default").is_some(),
                "{} {} answered {status}, which the document does not list: {text}",
                c.method,
                c.path
            );
            "default".into()
        };
        let response = &op["responses"][&code];
        let Some(content) = response["content"].as_object() else {
            assert!(
                text.is_empty(),
                "{} {}: a body the document does not describe",
                c.method,
                c.path
            );
            continue;
        };
        let (media, _) = content
            .iter()
            .find(|(m, _)| content_type.starts_with(m.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{} {} answered {content_type}, documented {content:?}",
                    c.method, c.path
                )
            });
        if media != "application/json" {
            continue;
        }
        let body: Value = serde_json::from_str(&text).unwrap();
        let schema = format!(
            "{op_pointer}/responses/{code}/content/{}/schema",
            escape(media)
        );
        let v = validator(&doc, &schema);
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {} ({status}) breaks the document: {errors:?}\n{body}",
            c.method,
            c.path
        );
    }

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.clone(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let exercised: BTreeSet<(String, String)> = exercised
        .into_iter()
        .map(|(m, p)| (m, p.to_owned()))
        .collect();
    let missed: Vec<_> = documented.difference(&exercised).collect();
    assert!(missed.is_empty(), "operations never exercised: {missed:?}");
    for want in [200, 201, 202, 204, 400, 401, 403, 404, 409, 415, 422] {
        assert!(
            statuses.contains(&want),
            "no answer was {want}: {statuses:?}"
        );
    }
}
