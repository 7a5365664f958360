//! What a client cannot do to the server by holding connections (issue 8): headers and bodies
//! have deadlines, idle connections close, and beyond the connection cap the server still says
//! it is alive while refusing work with 503.

mod common;

use common::{TOKEN, spawn_app_with};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the peer closes or `within` passes; `None` if it was still open.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_connection_that_does_not_finish_its_headers_is_closed() {
    let app = spawn_app_with(|s| s.http_header_timeout_secs = 1).await;
    let mut silent = connect(&app.base).await;
    let mut partial = connect(&app.base).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        read_until_closed(&mut partial, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(|s| s.http_header_timeout_secs = 1).await;
    let mut conn = connect(&app.base).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut conn, Duration::from_secs(5))
        .await
        .expect("closed after idling");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408() {
    let app = spawn_app_with(|s| s.http_body_timeout_secs = 1).await;
    let mut conn = connect(&app.base).await;
    let head = format!(
        "POST /v1/connections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // Trickle a byte now and then: every byte arriving does not extend the deadline.
    let trickle = async {
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if conn.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let answer = read_until_closed(&mut conn, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
}

#[tokio::test]
async fn beyond_the_connection_cap_healthz_answers_and_work_gets_503() {
    let app = spawn_app_with(|s| s.http_max_connections = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&app.base).await);
    }
    // Let the server take them before the next one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let busy = http
        .get(format!("{}/v1/connections", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body: serde_json::Value = busy.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    // Fill the overflow too: a new connection is closed at once, unanswered.
    for _ in 0..4 {
        held.push(connect(&app.base).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect(&app.base).await;
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut extra, Duration::from_secs(2)).await;
    assert_eq!(answer.as_deref(), Some(""), "closed with nothing written");
    // Once the held connections leave, work is served again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = http
        .get(format!("{}/v1/connections", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// One request written by hand; the whole answer.
async fn raw_request(base: &str, request: &[u8]) -> String {
    let mut conn = connect(base).await;
    conn.write_all(request).await.unwrap();
    read_until_closed(&mut conn, Duration::from_secs(5))
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn out_of_bounds_requests_answer_in_the_error_shape() {
    let app = spawn_app_with(|_| {}).await;
    let long_path = format!(
        "GET /v1/connections/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(10_000)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "v".repeat(40_000)
    );
    let bad_utf8 = format!(
        "GET /v1/connections/%FF%FE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Connection: close\r\n\r\n"
    );
    for (request, status, code) in [
        (long_path, "414", "uri_too_long"),
        (many_headers, "431", "headers_too_large"),
        (big_header, "431", "headers_too_large"),
        (bad_utf8, "400", "invalid_input"),
    ] {
        let answer = raw_request(&app.base, request.as_bytes()).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{status}: {answer}"
        );
        assert!(
            answer.contains(&format!(r#""code":"{code}""#)),
            "{code}: {answer}"
        );
    }
}
