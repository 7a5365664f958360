//! `dtc serve` and `dtc admin …`: settings from flags, env and file, then `connector` does
//! the work.

use crate::exit::Failure;
use clap::{Args, Subcommand};
use connector::app::Application;
use connector::connections::{ConnectionKind, ConnectionPatch, Connections, NewConnection};
use connector::settings::{Layer, LogFormat, Settings};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Config file (TOML); unknown keys are an error.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080; env DTC_LISTEN].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// sqlite://path or postgres://… [default: sqlite://./dtc-data/dtc.db; env DTC_DATABASE_URL].
    #[arg(long)]
    database_url: Option<String>,
    /// DingTalk new-API base [env DTC_DINGTALK_API_BASE].
    #[arg(long)]
    dingtalk_api_base: Option<String>,
    /// DingTalk old-API base [env DTC_DINGTALK_OAPI_BASE].
    #[arg(long)]
    dingtalk_oapi_base: Option<String>,
    /// Directory for the key file and the default database [default: ./dtc-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Start an in-process DingTalk simulator and a ready `sandbox` connection pointing at it.
    #[arg(long)]
    sandbox: bool,
    /// Where the sandbox simulator listens [default: 127.0.0.1:0, a free port].
    #[arg(long)]
    sandbox_sim_listen: Option<SocketAddr>,
    /// `text` or `json` log lines on stderr [env DTC_LOG_FORMAT].
    #[arg(long)]
    log_format: Option<LogFormat>,
}

impl ServeArgs {
    fn settings(&self) -> Result<Settings, Failure> {
        let flags = Layer {
            listen: self.listen,
            database_url: self.database_url.clone(),
            dingtalk_api_base: self.dingtalk_api_base.clone(),
            dingtalk_oapi_base: self.dingtalk_oapi_base.clone(),
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            sandbox: self.sandbox.then_some(true),
            sandbox_sim_listen: self.sandbox_sim_listen,
            ..Layer::default()
        };
        Settings::load(self.config.as_deref(), |k| std::env::var(k).ok(), flags)
            .map_err(|e| Failure::bad_input(e.to_string()))
    }

    /// The `worker_threads` setting, read before the runtime starts. Settings that do not
    /// load give `None` here: `serve` reports their error itself.
    pub fn runtime_threads(&self) -> Option<usize> {
        self.settings().ok()?.runtime_threads()
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// The name of the connection `--sandbox` creates.
pub const SANDBOX_CONNECTION: &str = "sandbox";
/// The webhook-robot connection `--sandbox` creates.
pub const SANDBOX_WEBHOOK_CONNECTION: &str = "sandbox-webhook";

pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut settings = args.settings()?;
    connector::telemetry::init_logs(settings.log_format);
    raise_open_file_limit(settings.http_max_connections);
    // --sandbox: a DingTalk simulator in this process, and the connector pointed at it.
    let sim = if settings.sandbox {
        let sim = start_sandbox_sim(&settings).await?;
        settings.dingtalk_api_base = sim.base_url();
        settings.dingtalk_oapi_base = sim.base_url();
        // Its sample files may be given as `file_url`s.
        settings.fetch_allow = settings.fetch_allow.clone().with_socket(sim.addr());
        Some(sim)
    } else {
        None
    };
    // A PostgreSQL URL may carry a password: show it masked.
    let db = match url::Url::parse(&settings.database_url()) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => settings.database_url(),
    };
    let app = Application::build(settings)
        .await
        .map_err(|e| Failure::other(format!("dtc serve: {e}")))?;
    if sim.is_some() {
        ensure_sandbox_connections(&app.state().connections)
            .await
            .map_err(|e| Failure::other(format!("dtc serve: sandbox connections: {e}")))?;
        ensure_sandbox_flows(app.state())
            .await
            .map_err(|e| Failure::other(format!("dtc serve: sandbox flows: {e}")))?;
    }
    let api = format!("http://{}", app.addr());
    println!(
        "dtc serve: API at {api}/v1 (OpenAPI: {api}/v1/openapi.json, Swagger 2.0: {api}/v1/swagger.json, metrics: {api}/metrics)"
    );
    println!("  console: {api}/console (sign in with the API token)");
    println!("  database: {db}");
    match &app.generated_token {
        Some(t) if sim.is_some() => println!(
            "  API token (the sandbox's; the same at every start): {}\n  export DTC_API_TOKEN={}",
            t.expose_secret(),
            t.expose_secret()
        ),
        Some(t) => println!(
            "  API token (shown once; only its hash is stored): {}\n  export DTC_API_TOKEN={}",
            t.expose_secret(),
            t.expose_secret()
        ),
        None => println!("  API token: use DTC_API_TOKEN (or the token printed on first start)"),
    }
    if let Some(sim) = &sim {
        println!(
            "  sandbox: DingTalk simulator at {} — chat page {}/",
            sim.base_url(),
            sim.base_url()
        );
        println!(
            "  sandbox connections: `{SANDBOX_CONNECTION}` (app robot; groups {} and {}), `{SANDBOX_WEBHOOK_CONNECTION}` (webhook robot)",
            dingtalk_sim::SANDBOX_OPS_GROUP,
            dingtalk_sim::SANDBOX_DEV_GROUP,
        );
    }
    tokio::spawn(async {
        // By then the router, its documents and validators are built (inside `run_until`).
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        give_back_startup_memory();
    });
    let served = app.run_until(shutdown_signal()).await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    served.map_err(|e| Failure::other(format!("dtc serve: {e}")))
}

/// Building the service (its OpenAPI documents, the action schemas and their validators, the
/// migrations) leaves megabytes freed but still resident; hand them back once, now that the
/// long-lived state is built, and from now on a second after they are freed: a long-running
/// server gets jemalloc's background thread for that (a one-shot `dtc send` does not need it).
fn give_back_startup_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(
                "jemalloc's background thread did not start ({e}); freed memory is handed back as the server allocates"
            );
        }
        // SAFETY: malloc_trim only returns free heap pages (SQLite's, in glibc) to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// The file in the data folder that keeps the sandbox chat across restarts.
pub const SANDBOX_CHAT_FILE: &str = "sandbox-chat.jsonl";

/// The sandbox's simulator on its fixed port (another one if that is taken), keeping its chat in
/// the data folder.
async fn start_sandbox_sim(settings: &Settings) -> Result<dingtalk_sim::SimHandle, Failure> {
    let journal = settings.data_dir.join(SANDBOX_CHAT_FILE);
    let start = |listen| {
        dingtalk_sim::Simulator::start_with_journal(
            dingtalk_sim::Fixture::sandbox(),
            listen,
            Some(&journal),
        )
    };
    let wanted = settings.sandbox_sim_listen;
    let failed = |e: std::io::Error| Failure::other(format!("dtc serve: sandbox simulator: {e}"));
    match start(wanted).await {
        Ok(sim) => Ok(sim),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && wanted.port() != 0 => {
            let sim = start(std::net::SocketAddr::new(wanted.ip(), 0))
                .await
                .map_err(failed)?;
            eprintln!(
                "dtc serve: {wanted} is in use; the sandbox simulator listens on {} instead \
                 (set DTC_SANDBOX_SIM_LISTEN to choose)",
                sim.addr()
            );
            Ok(sim)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Every connection is a file descriptor: take the hard limit as the soft one (often 1024 by
/// default), and warn when even that is less than the connections the server would hold.
fn raise_open_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            // Normal and overflow connections, plus the database, DingTalk and the log.
            let wanted = (2 * max_connections + 256) as u64;
            if limit < wanted {
                tracing::warn!(
                    limit,
                    wanted,
                    "the open-file limit is below what DTC_HTTP_MAX_CONNECTIONS needs; raise it \
                     (ulimit -Hn) or lower the setting"
                );
            } else {
                tracing::debug!(limit, "open-file limit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Create (or refresh) the sandbox connections pointing at the built-in fixture.
async fn ensure_sandbox_connections(
    connections: &Connections,
) -> Result<(), connector::connections::ConnectionError> {
    use connector::connections::ConnectionError;
    let app = NewConnection {
        name: SANDBOX_CONNECTION.into(),
        kind: ConnectionKind::AppRobot,
        description: "Built-in simulator (dtc serve --sandbox): groups Ops and Dev".into(),
        app_key: Some(dingtalk_sim::SANDBOX_APP_KEY.into()),
        app_secret: Some(SecretString::from(dingtalk_sim::SANDBOX_APP_SECRET)),
        robot_code: Some(dingtalk_sim::SANDBOX_APP_KEY.into()),
        access_token: None,
        secret: None,
        keywords: Vec::new(),
        qps_quota: None,
        // The sandbox robot hears its groups: "@robot id" on the chat page answers at once.
        stream: true,
    };
    match connections.create(app).await {
        Ok(_) => {}
        Err(ConnectionError::Duplicate { .. }) => {
            connections
                .update(
                    SANDBOX_CONNECTION,
                    ConnectionPatch {
                        app_key: Some(dingtalk_sim::SANDBOX_APP_KEY.into()),
                        app_secret: Some(SecretString::from(dingtalk_sim::SANDBOX_APP_SECRET)),
                        robot_code: Some(dingtalk_sim::SANDBOX_APP_KEY.into()),
                        ..ConnectionPatch::default()
                    },
                )
                .await?;
        }
        Err(e) => return Err(e),
    }
    let hook = NewConnection {
        name: SANDBOX_WEBHOOK_CONNECTION.into(),
        kind: ConnectionKind::WebhookRobot,
        description: "Built-in simulator's signed webhook robot in group Ops".into(),
        app_key: None,
        app_secret: None,
        robot_code: None,
        access_token: Some(SecretString::from(dingtalk_sim::SANDBOX_WEBHOOK_TOKEN)),
        secret: Some(SecretString::from(dingtalk_sim::SANDBOX_WEBHOOK_SECRET)),
        keywords: Vec::new(),
        qps_quota: None,
        stream: false,
    };
    match connections.create(hook).await {
        Ok(_) | Err(ConnectionError::Duplicate { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The sandbox's example chat flow: "@robot ping" answers "pong" (and whatever followed).
const SANDBOX_PING_FLOW: &str = "\
name: ping
description: \"Sandbox example: @robot ping answers pong\"
trigger:
  type: chat
  connection: sandbox
  command: ping
steps:
  - id: pong
    action: reply
    input:
      content: \"pong{% if trigger.args %} {{ trigger.args | join(' ') }}{% endif %}\"
";

/// Applies the example flow once; a user's own flow of that name, or a sandbox connection
/// whose Stream mode was turned off, is left alone.
async fn ensure_sandbox_flows(state: &connector::api::AppState) -> Result<(), String> {
    if state
        .flows
        .get("ping")
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    let conn = state
        .connections
        .get(SANDBOX_CONNECTION)
        .await
        .map_err(|e| e.to_string())?;
    if !conn.stream {
        return Ok(());
    }
    state
        .flows
        .apply_text(SANDBOX_PING_FLOW)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            connector::flows::service::ApplyError::Invalid(p) => format!("{p:?}"),
            e => e.to_string(),
        })
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Re-encrypt every stored secret with a new master key, and replace the key.
    RotateKey(ServeArgs),
    /// Create an additional API token (printed once).
    CreateToken {
        /// viewer (read only), operator (send, run flows, retry deliveries) or admin.
        #[arg(long, default_value = "admin")]
        role: String,
        /// What the token is for (shown in the token list).
        #[arg(long, default_value = "dtc admin create-token")]
        label: String,
        #[command(flatten)]
        args: ServeArgs,
    },
}

pub async fn admin(cmd: AdminCmd) -> Result<serde_json::Value, Failure> {
    let failed = |e: connector::admin::AdminError| Failure::other(e.to_string());
    match cmd {
        AdminCmd::CreateToken { role, label, args } => {
            let role = connector::store::Role::parse(&role).map_err(|_| {
                Failure::bad_input(format!(
                    "invalid --role `{role}`: use viewer, operator or admin"
                ))
            })?;
            let token = connector::admin::create_token(&args.settings()?, &label, role)
                .await
                .map_err(failed)?;
            Ok(serde_json::json!({"token": token.expose_secret(), "role": role.as_str()}))
        }
        AdminCmd::RotateKey(args) => {
            let r = connector::admin::rotate_key(&args.settings()?)
                .await
                .map_err(failed)?;
            let mut out = serde_json::json!({
                "rotated_connections": r.rotated_connections,
                "rotated_flows": r.rotated_flows,
                "old_key_id": r.old_key_id,
                "new_key_id": r.new_key_id,
            });
            if let Some(key) = r.new_master_key {
                out["new_master_key"] = serde_json::json!(key.expose_secret());
                out["note"] =
                    serde_json::json!("set DTC_MASTER_KEY to new_master_key before the next start");
            }
            if let Some(file) = r.key_file {
                out["key_file"] = serde_json::json!(file.display().to_string());
            }
            Ok(out)
        }
    }
}
