//! `file_url` cannot reach inside the network dtc runs in (issue 8): internal addresses are
//! refused in every spelling and after every redirect, failures say only "not allowed" or
//! "unreachable", and an operator's allow-list opens exactly what it names.

mod common;

use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use common::{OPS, spawn_app_with};
use serde_json::json;
use std::net::SocketAddr;

/// A file server on loopback: `/report.pdf` is a file, `/hop?to=URL` redirects.
async fn file_server() -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/report.pdf",
            get(|| async { b"%PDF-1.4 quarterly report".to_vec() }),
        )
        .route(
            "/hop",
            get(
                |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    let mut h = HeaderMap::new();
                    h.insert(header::LOCATION, q["to"].parse().unwrap());
                    (StatusCode::FOUND, h)
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn send_file(app: &common::TestApp, url: &str) -> (u16, serde_json::Value) {
    app.run(
        "ops",
        "send_file",
        json!({ "group_chat_id": OPS, "file_url": url, "file_name": "report.pdf" }),
    )
    .await
}

#[tokio::test]
async fn internal_addresses_are_not_fetched_in_any_spelling() {
    let files = file_server().await;
    let port = files.port();
    let app = spawn_app_with(|_| {}).await;
    app.create_app_connection("ops").await;
    let sim = app.sim.base_url();
    for url in [
        format!("http://127.0.0.1:{port}/report.pdf"),
        format!("http://localhost:{port}/report.pdf"),
        format!("http://0.0.0.0:{port}/report.pdf"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("{sim}/_sim/fixture"),
    ] {
        let (status, body) = send_file(&app, &url).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["field"], "file_url", "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("is not allowed"), "{url}: {message}");
    }
    // Hosts a URL parser reads as IPv4 numbers (decimal, octal) are not links the schema
    // takes at all: refused before any address is looked at.
    for url in [
        format!("http://2130706433:{port}/report.pdf"),
        format!("http://0177.0.0.1:{port}/report.pdf"),
    ] {
        let (status, body) = send_file(&app, &url).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["field"], "file_url", "{url}: {body}");
    }
    assert!(app.sim.messages().is_empty());
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_not_followed() {
    let files = file_server().await;
    let secret = file_server().await;
    // The operator allows the file server, and nothing else.
    let app = spawn_app_with(|s| s.fetch_allow = files.to_string().parse().unwrap()).await;
    app.create_app_connection("ops").await;
    let (status, body) = send_file(&app, &format!("http://{files}/report.pdf")).await;
    assert_eq!(status, 200, "the allowed server is fetched: {body}");
    let hop = format!("http://{files}/hop?to=http://{secret}/report.pdf");
    let (status, body) = send_file(&app, &hop).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not allowed"),
        "{body}"
    );
    assert_eq!(app.sim.messages().len(), 1);
}

#[tokio::test]
async fn failures_of_allowed_addresses_do_not_tell_ports_apart() {
    let files = file_server().await;
    let app = spawn_app_with(|s| s.fetch_allow = "127.0.0.0/8".parse().unwrap()).await;
    app.create_app_connection("ops").await;
    // A closed port, and a port that is open but speaks no HTTP (the database's, say).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = mute.accept().await {
            drop(s);
        }
    });
    let mut messages = Vec::new();
    for url in [
        format!("http://{closed}/x"),
        format!("http://{mute_addr}/x"),
    ] {
        let (status, body) = send_file(&app, &url).await;
        assert_eq!(status, 422, "{body}");
        messages.push(body["error"]["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(messages[0], messages[1]);
    assert!(messages[0].ends_with("is unreachable"), "{messages:?}");
    let (status, body) = send_file(&app, &format!("http://{files}/gone.pdf")).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 404"),
        "{body}"
    );
}
