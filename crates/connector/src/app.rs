//! `Application::build(settings)`: storage, keys, the DingTalk client and the HTTP server, bound
//! and ready. `dtc serve` is a thin shim over it, and tests build it on port 0.

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::api::{self, AppState, auth};
use crate::connections::Connections;
use crate::delivery::{
    Acker, DeliveryEngine, EngineConfig, EngineDeps, LocalLimiter, Notifier, RateLimiter, Registry,
    StoreLimiter,
};
use crate::secrets::{Keyring, MasterKey};
use crate::settings::Settings;
use crate::store::{self, ApiTokenRecord};

/// How long in-flight deliveries may run on after a shutdown signal before their leases are
/// given back.
const ENGINE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// No limits at all: for benchmarks against an unlimited simulator
/// (`DTC_ENFORCE_RATE_LIMITS=false`), never for DingTalk.
#[derive(Debug)]
struct Unlimited;

#[async_trait::async_trait]
impl RateLimiter for Unlimited {
    async fn acquire(
        &self,
        _key: &crate::delivery::RateKey,
        _deadline: Option<tokio::time::Instant>,
    ) -> Result<(), crate::delivery::Limited> {
        Ok(())
    }
    async fn hold_back(
        &self,
        _key: &crate::delivery::RateKey,
        _retry_after: std::time::Duration,
    ) -> Result<(), crate::delivery::Limited> {
        Ok(())
    }
}

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    addr: SocketAddr,
    engine: Option<(EngineConfig, EngineDeps)>,
    /// Held while serving: this server owns its SQLite database.
    db_lock: Option<std::fs::File>,
    clock: Arc<dyn store::Clock>,
    /// A token generated at this start (printed once; only its hash is stored).
    pub generated_token: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("secret-encryption key: {0}")]
    Key(#[from] crate::secrets::SecretsError),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),

    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DingTalk client: {0}")]
    Client(String),
    #[error("cannot write {path}: {source}")]
    TokenFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A new random API token: `dtc_` + 40 alphanumerics.
pub fn new_api_token() -> String {
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
        .collect();
    format!("dtc_{body}")
}

/// Store a new API token's hash; returns the token (to be shown once).
pub async fn create_api_token(
    store: &dyn store::Store,
    label: &str,
) -> Result<SecretString, store::StoreError> {
    create_api_token_with_role(store, label, store::Role::Admin)
        .await
        .map(|(_, token)| token)
}

/// A new token of `role`; returns its record id and the token (shown once).
pub async fn create_api_token_with_role(
    store: &dyn store::Store,
    label: &str,
    role: store::Role,
) -> Result<(uuid::Uuid, SecretString), store::StoreError> {
    let token = new_api_token();
    let id = uuid::Uuid::new_v4();
    store
        .insert_api_token(&ApiTokenRecord {
            id,
            token_hash: auth::hash_hex(&token),
            label: label.to_owned(),
            role,
            created_at: chrono::Utc::now(),
            last_used_at: None,
        })
        .await?;
    Ok((id, SecretString::from(token)))
}

/// The file in the data folder where the sandbox keeps its token.
pub const SANDBOX_TOKEN_FILE: &str = "sandbox-token";

/// The sandbox's one API token: the same at every start, so a user exports it once. It is kept
/// in the data folder (mode 0600, like `master.key`; the database has only its hash), and any
/// other sandbox token an earlier version made is revoked, so tokens do not pile up.
async fn sandbox_token(
    store: &dyn store::Store,
    data_dir: &std::path::Path,
) -> Result<SecretString, BuildError> {
    let path = data_dir.join(SANDBOX_TOKEN_FILE);
    let kept = std::fs::read_to_string(&path)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| t.starts_with("dtc_") && t.len() > 20);
    let token = match kept {
        Some(t)
            if store
                .find_api_token_by_hash(&auth::hash_hex(&t))
                .await?
                .is_some() =>
        {
            SecretString::from(t)
        }
        _ => {
            let token = create_api_token(store, "sandbox").await?;
            write_private(&path, token.expose_secret()).map_err(|source| {
                BuildError::TokenFile {
                    path: path.clone(),
                    source,
                }
            })?;
            token
        }
    };
    store
        .revoke_api_tokens_labelled("sandbox", &auth::hash_hex(token.expose_secret()))
        .await?;
    Ok(token)
}

/// Write `text` to a file only its owner can read, replacing what was there.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, BuildError> {
        let key = MasterKey::load(settings.master_key.as_ref(), &settings.data_dir)?;
        // Locked before it is opened: a second server on the same file stops here.
        let db_lock = store::lock_sqlite(&settings.database_url())?;
        let store = store::connect(&settings.database_url()).await?;
        if db_lock.is_some() {
            // Whoever held a lease in this database is gone: take every lease back now rather
            // than when it expires, so a restart resumes every group at once.
            let taken = store.expire_all_leases().await?;
            if taken > 0 {
                tracing::info!(leases = taken, "took back the leases of the previous run");
            }
        }
        let connections = Arc::new(Connections::new(
            store.clone(),
            Keyring {
                current: key,
                previous: Vec::new(),
            },
        ));

        let mut known = Vec::new();
        if let Some(t) = &settings.api_token {
            known.push(auth::hash_token(t.expose_secret()));
        }
        // Without DTC_API_TOKEN, the first start generates a token and prints it once; only its
        // hash is kept. The sandbox keeps one token for good (see `sandbox_token`).
        let generated_token = if settings.api_token.is_some() {
            None
        } else if settings.sandbox {
            Some(sandbox_token(store.as_ref(), &settings.data_dir).await?)
        } else if store.count_api_tokens().await? == 0 {
            Some(create_api_token(store.as_ref(), "generated on first start").await?)
        } else {
            None
        };

        let client_config = dingtalk::ClientConfig {
            api_base: url::Url::parse(&settings.dingtalk_api_base)
                .map_err(|e| BuildError::Client(e.to_string()))?,
            oapi_base: url::Url::parse(&settings.dingtalk_oapi_base)
                .map_err(|e| BuildError::Client(e.to_string()))?,
            timeout: settings.dingtalk_timeout(),
            ..dingtalk::ClientConfig::default()
        };
        let dingtalk =
            dingtalk::Client::new(client_config).map_err(|e| BuildError::Client(e.to_string()))?;
        let http = crate::fetch::Fetcher::new(
            settings.fetch_allow.clone(),
            crate::actions::DOWNLOAD_TIMEOUT,
        );

        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| BuildError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| BuildError::Listen {
            addr: settings.listen,
            source,
        })?;
        let tokens = Arc::new(auth::TokenCheck::new(store.clone(), known));
        let targets = Arc::new(crate::targets::Targets::new(dingtalk));
        let clock: Arc<dyn store::Clock> = Arc::new(store::SystemClock);
        let registry_clock = clock.clone();
        // Several instances on PostgreSQL share one budget per app; SQLite means one instance.
        let limiter: Arc<dyn RateLimiter> = if !settings.enforce_rate_limits {
            tracing::warn!(
                "rate limits are off (DTC_ENFORCE_RATE_LIMITS=false): for simulators and benchmarks only"
            );
            Arc::new(Unlimited)
        } else if store.dialect() == "postgres" {
            Arc::new(StoreLimiter::new(
                store.clone(),
                clock.clone(),
                settings.rate_margin(),
            ))
        } else {
            Arc::new(LocalLimiter::new(settings.rate_margin()))
        };
        let notifier = Notifier::default();
        let engine_config = settings.engine();
        let acker = Acker::new(
            store.clone(),
            clock.clone(),
            engine_config.backoff.clone(),
            None,
        );
        let engine = (settings.delivery_concurrency > 0).then(|| {
            (
                engine_config,
                EngineDeps {
                    store: store.clone(),
                    connections: connections.clone(),
                    targets: targets.clone(),
                    limiter: limiter.clone(),
                    http: http.clone(),
                    clock,
                    notifier: notifier.clone(),
                },
            )
        });
        let state = AppState::new(
            store,
            connections,
            targets,
            http,
            settings,
            tokens,
            (notifier, limiter, acker),
        );
        Ok(Application {
            listener,
            state,
            addr,
            engine,
            db_lock,
            clock: registry_clock,
            generated_token,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve (and send queued deliveries) until `shutdown` resolves; then stop taking
    /// requests, let the engine finish or release what it holds, and return.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let _db_lock = self.db_lock;
        let mut owners = vec![self.state.instance_id.clone()];
        if let Some((config, _)) = &self.engine {
            owners.push(config.owner.clone());
        }
        let registry = Registry {
            store: self.state.store.clone(),
            clock: self.clock.clone(),
            owners,
            interval: self.state.settings.instance_heartbeat(),
            notifier: self.state.wake.clone(),
        }
        .start();
        let engine = self
            .engine
            .map(|(config, deps)| DeliveryEngine::start(config, deps));
        let sweeper = tokio::spawn(sweep_runs(
            self.state.flows.clone(),
            self.state.wake.clone(),
        ));
        let (stream_stop, stream_stopped) = tokio::sync::watch::channel(false);
        let streams = tokio::spawn(crate::chat::supervise(self.state.clone(), stream_stopped));
        let router = api::router(self.state.clone());
        let limits = self.state.settings.http_limits();
        let result = crate::server::serve(self.listener, router, limits, shutdown).await;
        let _ = stream_stop.send(true);
        if tokio::time::timeout(std::time::Duration::from_secs(10), streams)
            .await
            .is_err()
        {
            tracing::warn!("Stream sockets did not close in time");
        }
        self.state.recorder.flush().await;
        if let Some(engine) = engine {
            let report = engine.shutdown(ENGINE_GRACE).await;
            tracing::info!(
                abandoned = report.abandoned,
                released = report.released,
                "delivery engine stopped"
            );
        }
        registry.shutdown().await;
        sweeper.abort();
        result
    }
}

/// Schedules fire (every instance ticks; the store lets one run start per due time), and runs
/// a crash left between two steps move on: acks advance runs in their own transaction, so only
/// a run whose advance could not be written at all waits for the sweep.
async fn sweep_runs(flows: Arc<crate::flows::service::Flows>, wake: Notifier) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        match flows.tick().await {
            Ok(0) => {}
            Ok(_) => wake.notify(),
            Err(e) => tracing::warn!(error = %e, "firing schedules failed; trying again"),
        }
        if !n.is_multiple_of(10) {
            continue;
        }
        match flows.sweep(std::time::Duration::from_secs(10)).await {
            Ok(0) => {}
            Ok(runs) => {
                tracing::info!(runs, "runs moved on after a pause");
                wake.notify();
            }
            Err(e) => tracing::warn!(error = %e, "the run sweep failed; trying again"),
        }
    }
}
