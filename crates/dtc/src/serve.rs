//! `dtc serve` and `dtc admin …`: settings from flags, env and file, then `connector` does
//! the work.

use crate::exit::Failure;
use clap::{Args, Subcommand};
use connector::app::Application;
use connector::settings::{Layer, LogFormat, Settings};
use secrecy::ExposeSecret;
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

pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let settings = args.settings()?;
    connector::telemetry::init_logs(settings.log_format);
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
    let api = format!("http://{}", app.addr());
    println!("dtc serve: API at {api}/v1 (OpenAPI: {api}/v1/openapi.json, metrics: {api}/metrics)");
    println!("  database: {db}");
    match &app.generated_token {
        Some(t) => println!(
            "  API token (shown once; only its hash is stored): {}\n  export DTC_API_TOKEN={}",
            t.expose_secret(),
            t.expose_secret()
        ),
        None => println!("  API token: use DTC_API_TOKEN (or the token printed on first start)"),
    }
    if let Some(sim) = &app.sandbox {
        println!(
            "  sandbox: DingTalk simulator at {} — chat page {}/",
            sim.base_url(),
            sim.base_url()
        );
        println!(
            "  sandbox connections: `{}` (app robot; groups {} and {}), `{}` (webhook robot)",
            connector::app::SANDBOX_CONNECTION,
            dingtalk_sim::SANDBOX_OPS_GROUP,
            dingtalk_sim::SANDBOX_DEV_GROUP,
            connector::app::SANDBOX_WEBHOOK_CONNECTION
        );
    }
    app.run_until(shutdown_signal())
        .await
        .map_err(|e| Failure::other(format!("dtc serve: {e}")))
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Re-encrypt every stored secret with a new master key, and replace the key.
    RotateKey(ServeArgs),
    /// Create an additional API token (printed once).
    CreateToken(ServeArgs),
}

pub async fn admin(cmd: AdminCmd) -> Result<serde_json::Value, Failure> {
    use connector::secrets::{Keyring, MasterKey};
    match cmd {
        AdminCmd::CreateToken(args) => {
            let settings = args.settings()?;
            let store = connector::store::connect(&settings.database_url())
                .await
                .map_err(|e| Failure::other(format!("database: {e}")))?;
            let token = connector::app::create_api_token(store.as_ref(), "dtc admin create-token")
                .await
                .map_err(|e| Failure::other(format!("database: {e}")))?;
            Ok(serde_json::json!({"token": token.expose_secret()}))
        }
        AdminCmd::RotateKey(args) => {
            let settings = args.settings()?;
            let old = MasterKey::load(settings.master_key.as_ref(), &settings.data_dir)
                .map_err(|e| Failure::other(e.to_string()))?;
            let new = MasterKey::generate();
            let store = connector::store::connect(&settings.database_url())
                .await
                .map_err(|e| Failure::other(format!("database: {e}")))?;
            let old_id = old.key_id().to_owned();
            let new_id = new.key_id().to_owned();
            let connections = connector::connections::Connections::new(
                store,
                Keyring {
                    current: old,
                    previous: Vec::new(),
                },
            );
            // Write the new key beside the old one first, so a crash mid-way loses nothing:
            // either key file still opens what the database holds.
            let key_path = settings.data_dir.join("master.key");
            let staged = settings.data_dir.join("master.key.new");
            let from_env = settings.master_key.is_some();
            if !from_env {
                new.write_new_file(&staged)
                    .map_err(|e| Failure::other(e.to_string()))?;
            }
            let old_again = MasterKey::load(settings.master_key.as_ref(), &settings.data_dir)
                .map_err(|e| Failure::other(e.to_string()))?;
            let count = connections
                .rotate_key(Keyring {
                    current: new.clone(),
                    previous: vec![old_again],
                })
                .await
                .map_err(|e| Failure::other(format!("rotation failed, nothing changed: {e}")))?;
            let mut out = serde_json::json!({"rotated_connections": count, "old_key_id": old_id, "new_key_id": new_id});
            if from_env {
                out["new_master_key"] = serde_json::json!(new.to_base64().expose_secret());
                out["note"] =
                    serde_json::json!("set DTC_MASTER_KEY to new_master_key before the next start");
            } else {
                std::fs::rename(&staged, &key_path)
                    .map_err(|e| Failure::other(format!("secrets were re-encrypted with the key in {}, but it could not replace {}: {e}", staged.display(), key_path.display())))?;
                out["key_file"] = serde_json::json!(key_path.display().to_string());
            }
            Ok(out)
        }
    }
}
