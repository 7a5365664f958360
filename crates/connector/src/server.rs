//! Serving HTTP/1.1 connections with limits a client cannot talk its way around: a deadline for
//! each request's headers (which also ends an idle keep-alive connection: hyper starts the same
//! timer while it waits for the next request), a deadline for its body ([`BodyDeadline`]), and
//! a cap on open connections.
//!
//! Beyond the cap, a second allowance of "overflow" connections is still read, briefly and
//! without keep-alive, so `/healthz` keeps answering while every other request gets 503
//! `overloaded` with `Retry-After`; beyond that, new sockets are closed at once. Accept errors
//! (out of file descriptors) never end the loop.

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::api::ApiError;
use crate::error::ErrorCode;

/// How a server treats its connections.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's head must arrive within this, and an idle connection closes after it.
    pub header_timeout: Duration,
    /// A request's body must arrive within this, counted from when its head was read.
    pub body_timeout: Duration,
    /// Connections served normally at once; as many again are answered 503 (or `/healthz`).
    pub max_connections: usize,
}

/// An overflow connection gets this long to send its request.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers larger than hyper will buffer are refused by hyper itself (without a body); below
/// that, [`crate::api`] answers 414/431 in the error shape.
const MAX_BUF_BYTES: usize = 256 * 1024;
/// hyper refuses more headers than this on its own; the API's lower limit answers first.
const HYPER_MAX_HEADERS: usize = 200;

/// When a request's body must have arrived (set per request; read by the body readers).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// Serve `app` on `listener` until `shutdown` resolves, then let open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let normal = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let overflow = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends pass; stopping the loop would stop the server.
                    tracing::warn!(error = %e, "accept failed");
                    metrics::counter!("dtc_http_accept_errors_total").increment(1);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (permit, overloaded) = match normal.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    metrics::counter!("dtc_http_connections_refused_total").increment(1);
                    drop(stream);
                    continue;
                }
            },
        };
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let app = app.clone();
            async move {
                if overloaded && req.uri().path() != "/healthz" {
                    return Ok::<_, Infallible>(busy());
                }
                req.extensions_mut()
                    .insert(BodyDeadline(tokio::time::Instant::now() + body_timeout));
                app.oneshot(req.map(axum::body::Body::new)).await
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(if overloaded {
                OVERFLOW_HEADER_TIMEOUT
            } else {
                limits.header_timeout
            })
            .keep_alive(!overloaded)
            .max_buf_size(MAX_BUF_BYTES)
            .max_headers(HYPER_MAX_HEADERS);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn busy() -> Response {
    let mut err = ApiError::new(
        ErrorCode::Overloaded,
        "the server has as many connections open as it serves; retry shortly",
    );
    err.retry_after = Some(Duration::from_secs(1));
    metrics::counter!("dtc_http_overloaded_total").increment(1);
    let mut resp = err.into_response();
    resp.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}
