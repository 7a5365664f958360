//! Roles: every route of the OpenAPI document, called with a viewer's, an operator's and an
//! admin's token — 403 exactly where the role is below what the route needs, in the error shape.
//! Tokens are managed by admins: created with a role (shown once), listed with last use, revoked.

mod common;

use common::{TOKEN, into_parts, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

async fn token(app: &common::TestApp, role: &str) -> (String, String) {
    let (status, body) = app
        .post(
            "/v1/tokens",
            json!({"label": format!("{role} token"), "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["id"].as_str().unwrap().to_owned(),
    )
}

fn needs(method: &str, path: &str) -> &'static str {
    if path.starts_with("/v1/tokens") {
        return "admin";
    }
    if method == "get" {
        return "viewer";
    }
    let operator = method == "post"
        && (path.starts_with("/v1/connections/{id_or_name}/actions/")
            || path == "/v1/connections/{id_or_name}/test"
            || path == "/v1/deliveries/{id}/retry"
            || path == "/v1/flows/{name}/runs"
            || path == "/v1/flows/{name}/dry-run");
    if operator { "operator" } else { "admin" }
}

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 0,
        "operator" => 1,
        _ => 2,
    }
}

#[tokio::test]
async fn every_route_refuses_a_role_below_it_with_403() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let viewer = token(&app, "viewer").await.0;
    let operator = token(&app, "operator").await.0;
    let (_, doc) = app.get("/v1/openapi.json").await;
    let mut checked = 0;
    for (role, bearer) in [
        ("viewer", &viewer),
        ("operator", &operator),
        ("admin", &TOKEN.to_owned()),
    ] {
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for method in item.as_object().unwrap().keys() {
                let url = path
                    .replace("{id_or_name}", "ops")
                    .replace("{action}", "send_text")
                    .replace("{id}", "00000000-0000-4000-8000-000000000000")
                    .replace("{name}", "nope");
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut req = app
                    .http
                    .request(m, format!("{}{url}", app.base))
                    .bearer_auth(bearer);
                if method != "get" && method != "delete" {
                    req = req.json(&json!({}));
                }
                let (status, body) = into_parts(req.send().await.unwrap()).await;
                let need = needs(method, path);
                if rank(role) < rank(need) {
                    assert_eq!(status, 403, "{role} {method} {path}: {body}");
                    assert_eq!(body["error"]["code"], "forbidden", "{body}");
                    let message = body["error"]["message"].as_str().unwrap();
                    assert!(
                        message.contains(role) && message.contains(need),
                        "{message}"
                    );
                } else {
                    assert_ne!(status, 403, "{role} {method} {path}: {body}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "{checked} calls");
}

#[tokio::test]
async fn admins_list_and_revoke_tokens_and_a_revoked_token_stops_working() {
    let app = spawn_app().await;
    let (operator, id) = token(&app, "operator").await;
    let call = |bearer: String| {
        let http = app.http.clone();
        let url = format!("{}/v1/connections", app.base);
        async move {
            http.get(url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(call(operator.clone()).await, 200);
    let (status, list) = app.get("/v1/tokens").await;
    assert_eq!(status, 200, "{list}");
    let listed: &Vec<Value> = list.as_array().unwrap();
    let entry = listed.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(entry["role"], "operator");
    assert!(
        entry.get("token").is_none() && !list.to_string().contains(&operator),
        "never the token"
    );
    // Last use is recorded (off the request's path).
    let mut used = false;
    for _ in 0..50 {
        let (_, list) = app.get("/v1/tokens").await;
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str() && t["last_used_at"].is_string())
        {
            used = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used, "last use recorded");
    let resp = app
        .request(Method::DELETE, &format!("/v1/tokens/{id}"), None)
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(call(operator).await, 401, "revoked at once");
    let (status, body) = app
        .post("/v1/tokens", json!({"label": "x", "role": "root"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "role");
}
