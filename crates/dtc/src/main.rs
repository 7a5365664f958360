//! `dtc`, the one binary: `dtc sim`, `dtc send …` (and, as they land, `dtc serve` and the
//! server's client commands). Thin: parses arguments and settings, calls into the crates.

mod exit;
mod send;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "dtc", version, about = "dtc — the DingTalk connector")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the local DingTalk simulator (both API families on one port, chat page at /).
    Sim {
        #[arg(long, env = "DTC_SIM_LISTEN", default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// Fixture file (JSON); without it the built-in sandbox fixture is used and printed.
        #[arg(long)]
        fixture: Option<PathBuf>,
    },
    /// Send one message straight to DingTalk (no server), for scripts and CI jobs.
    Send(send::SendArgs),
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("DTC_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let result = match cli.command {
        Command::Sim { listen, fixture } => dingtalk_sim::run(listen, fixture)
            .await
            .map(|()| None)
            .map_err(|e| exit::Failure::other(format!("dtc sim: {e}"))),
        Command::Send(args) => send::run(args).await.map(Some),
    };
    match result {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
