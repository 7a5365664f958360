//! The OpenAPI document describes every route and action, and a real OpenAPI validator
//! (`openapi-spec-validator` from PyPI) accepts it.

mod common;

use common::spawn_app;
use serde_json::Value;
use std::process::Command;

#[tokio::test]
async fn openapi_lists_every_route_and_action() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
async fn a_real_openapi_validator_accepts_the_document() {
    let python = match testkit::python_venv(
        "openapi-validator",
        &["openapi-spec-validator==0.7.1"],
        "import openapi_spec_validator",
    ) {
        Ok(p) => p,
        Err(why) => return testkit::missing(why),
    };
    let app = spawn_app().await;
    let text = app
        .http
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("validator runs");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the document:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
