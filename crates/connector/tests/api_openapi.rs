//! The OpenAPI document describes every route and action, and a real OpenAPI validator
//! (`openapi-spec-validator` from PyPI) accepts it.

mod common;

use common::spawn_app;
use serde_json::{Value, json};
use std::process::Command;

#[tokio::test]
async fn openapi_lists_every_route_and_action() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/metrics",
        "/v1/connections",
        "/v1/connections/{id_or_name}",
        "/v1/connections/{id_or_name}/test",
        "/v1/actions",
        "/v1/actions/{action}",
        "/v1/connections/{id_or_name}/actions/{action}",
        "/v1/deliveries",
        "/v1/deliveries/{id}",
        "/v1/deliveries/{id}/retry",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    let (_, actions) = app.get("/v1/actions").await;
    for a in actions.as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let path = format!("/v1/connections/{{id_or_name}}/actions/{name}");
        assert!(paths.contains_key(&path), "no operation for action {name}");
        assert_eq!(paths[&path]["post"]["operationId"], name);
    }
    // Every $ref resolves inside the document.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {r}"
        );
    }
}

#[tokio::test]
async fn a_real_openapi_validator_accepts_both_documents() {
    let python = match testkit::python_venv(
        "openapi-validator",
        &["openapi-spec-validator==0.7.1"],
        "import openapi_spec_validator",
    ) {
        Ok(p) => p,
        Err(why) => return testkit::missing(why),
    };
    let app = spawn_app().await;
    for doc in ["openapi.json", "swagger.json"] {
        let text = app
            .http
            .get(format!("{}/v1/{doc}", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let file = app.dir.path().join(doc);
        std::fs::write(&file, text).unwrap();
        let out = Command::new(&python)
            .args(["-m", "openapi_spec_validator"])
            .arg(&file)
            .output()
            .expect("validator runs");
        assert!(
            out.status.success(),
            "openapi-spec-validator rejected {doc}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn the_swagger_2_rendition_has_every_operation_with_its_body_and_answer() {
    let app = spawn_app().await;
    let get = |doc: &'static str| {
        let url = format!("{}/v1/{doc}", app.base);
        let http = app.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let (v3, v2) = (get("openapi.json").await, get("swagger.json").await);
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(v2["securityDefinitions"]["bearer"]["in"], "header");
    for (path, item) in v3["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let op2 = &v2["paths"][path][method];
            assert_eq!(op2["operationId"], op["operationId"], "{method} {path}");
            if op.get("requestBody").is_some() {
                let body = op2["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["in"] == "body")
                    .unwrap_or_else(|| panic!("{method} {path}: no body parameter"));
                assert!(body["schema"].is_object());
            }
        }
    }
    let send = &v2["paths"]["/v1/connections/{id_or_name}/actions/send_text"]["post"];
    let body = &send["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["in"] == "body")
        .unwrap()["schema"];
    assert_eq!(body["required"], json!(["group_chat_id", "content"]));
    assert_eq!(
        send["responses"]["200"]["schema"]["required"],
        json!(["process_query_key", "msg_key"])
    );
    let text = v2.to_string();
    for not_in_2 in ["oneOf", "anyOf", "\"if\"", "#/components/", "\"const\""] {
        assert!(!text.contains(not_in_2), "{not_in_2} is not Swagger 2.0");
    }
}
