//! The HTTP server. Connections are served one by one with hyper's connection API rather than
//! `axum::serve`, so a `drop` fault can close a TCP connection without writing any response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::fixture::{Fixture, Limits};
use crate::model::{FaultSpec, ReceivedMessage, Stats};
use crate::state::{Sim, SimState};
use crate::{admin, auth, chat, media, robot, stream, webhook};

/// Largest request body accepted; above DingTalk's 20 MB media limit so oversize uploads get
/// DingTalk's own 40006 answer rather than a transport error.
const BODY_LIMIT_BYTES: usize = 25 * 1024 * 1024;

/// Lets a handler close its own TCP connection (the `drop` fault).
#[derive(Clone)]
pub(crate) struct ConnControl(Arc<Notify>);

impl ConnControl {
    /// Closes the connection without a response; never returns.
    pub(crate) async fn drop_connection(&self) -> ! {
        self.0.notify_one();
        std::future::pending().await
    }
}

/// Entry point for starting a simulator.
pub struct Simulator;

impl Simulator {
    /// Binds `listen` (use `127.0.0.1:0` in tests) and serves until [`SimHandle::shutdown`].
    pub async fn start(fixture: Fixture, listen: SocketAddr) -> std::io::Result<SimHandle> {
        Self::start_with_journal(fixture, listen, None).await
    }

    /// Like [`Simulator::start`], keeping the chat in the file `journal` across restarts.
    pub async fn start_with_journal(
        fixture: Fixture,
        listen: SocketAddr,
        journal: Option<&std::path::Path>,
    ) -> std::io::Result<SimHandle> {
        fixture
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let journal = journal.map(crate::journal::Journal::open).transpose()?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let sim = SimState::with_journal(fixture, journal);
        let app = router(sim.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(stream::run(sim.clone(), stop_rx.clone()));
        let task = tokio::spawn(accept_loop(listener, app, stop_rx));
        Ok(SimHandle {
            addr,
            sim,
            stop: Arc::new(stop_tx),
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }
}

pub(crate) fn router(sim: Sim) -> Router {
    Router::new()
        .route("/v1.0/oauth2/accessToken", post(auth::access_token))
        .route("/gettoken", get(auth::gettoken))
        .route("/v1.0/robot/groupMessages/send", post(robot::group_send))
        .route("/v1.0/robot/groupMessages/query", post(robot::group_query))
        .route(
            "/v1.0/robot/groupMessages/recall",
            post(robot::group_recall),
        )
        .route("/v1.0/robot/oToMessages/batchSend", post(robot::oto_send))
        .route(
            "/v1.0/robot/oToMessages/readStatus",
            get(robot::oto_read_status),
        )
        .route(
            "/v1.0/robot/otoMessages/batchRecall",
            post(robot::oto_recall),
        )
        .route("/media/upload", post(media::upload))
        .route("/robot/send", post(webhook::send))
        .route("/v1.0/gateway/connections/open", post(stream::open))
        .route("/connect", get(stream::connect))
        .route("/robot/sendBySession", post(stream::send_by_session))
        .route(
            "/v1.0/robot/messageFiles/download",
            post(stream::file_download_url),
        )
        .route("/_sim/files/{code}", get(stream::file_bytes))
        .route(
            "/_sim/conversations/{conversation}/messages",
            post(stream::person_writes),
        )
        .route("/_sim/stream", get(stream::status))
        .route("/_sim/stream/disconnect", post(stream::disconnect_all))
        .route("/_sim/stream/fault", post(stream::fault))
        .route("/", get(chat::page))
        .route("/_sim/chat", get(chat::fragment))
        .route("/_sim/samples/{name}", get(crate::samples::sample))
        .route("/_sim/media/{media_id}", get(media::download))
        .route("/_sim/uploads", get(media::list))
        .route(
            "/_sim/messages",
            get(admin::messages).delete(admin::clear_messages),
        )
        .route("/_sim/stats", get(admin::stats))
        .route(
            "/_sim/faults",
            get(admin::faults)
                .post(admin::add_fault)
                .delete(admin::clear_faults),
        )
        .route("/_sim/clock", post(admin::clock))
        .route("/_sim/limits", post(admin::set_limits))
        .route("/_sim/fixture", get(admin::fixture))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(sim)
}

async fn accept_loop(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Transient accept errors (e.g. too many open files) must not stop the sim.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let control = ConnControl(Arc::new(Notify::new()));
            let dropper = control.0.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(control.clone());
                app.clone().oneshot(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                // Stream mode's WebSocket is an upgrade of this connection.
                .with_upgrades();
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                // Dropping the connection future closes the socket with nothing written.
                _ = dropper.notified() => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// A running simulator. Cheap to clone; every clone controls the same simulator.
#[derive(Clone)]
pub struct SimHandle {
    addr: SocketAddr,
    sim: Sim,
    stop: Arc<watch::Sender<bool>>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base of both API families (new and old) and the admin routes.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn fixture(&self) -> &Fixture {
        &self.sim.fixture
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.sim.lock().messages.clone()
    }

    pub fn clear_messages(&self) {
        self.sim.lock().clear_messages();
    }

    pub fn stats(&self) -> Stats {
        self.sim.lock().stats.clone()
    }

    pub fn add_fault(&self, f: FaultSpec) {
        self.sim.add_fault(f);
    }

    pub fn clear_faults(&self) {
        self.sim.clear_faults();
    }

    /// Moves the simulator clock forward (token expiry, rate windows, lock-outs, 24 h limits).
    pub fn advance_clock(&self, d: Duration) {
        self.sim.advance_clock(d);
    }

    /// What `GET /_sim/stream` answers: Stream-mode sockets, unacknowledged messages, counters.
    pub fn stream_status(&self) -> serde_json::Value {
        crate::stream::status_of(&self.sim)
    }

    pub fn set_limits(&self, l: Limits) {
        self.sim.lock().limits = l;
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(self) {
        // Sending fails only when every receiver is gone, i.e. the server already stopped.
        if self.stop.send(true).is_err() {
            tracing::debug!("simulator already stopped");
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "simulator task failed");
        }
    }
}
