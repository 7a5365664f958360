//! `dtc`, the one binary: `dtc sim`, `dtc send …` (and, as they land, `dtc serve` and the
//! server's client commands). Thin: parses arguments and settings, calls into the crates.

mod exit;
mod flows;
mod remote;
mod send;
mod serve;
mod table;

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
        /// Keep the chat (accepted messages) in this file across restarts.
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Send one message straight to DingTalk (no server), for scripts and CI jobs.
    Send(send::SendArgs),
    /// Run the connector service (REST API, connections, actions).
    Serve(serve::ServeArgs),
    /// Manage connections on a dtc server.
    Connection {
        #[command(flatten)]
        server: remote::ServerArgs,
        #[command(subcommand)]
        cmd: remote::ConnectionCmd,
    },
    /// Conversations a Stream-mode robot has heard from (how to find a group's id).
    Conversation {
        #[command(flatten)]
        server: remote::ServerArgs,
        #[command(subcommand)]
        cmd: remote::ConversationCmd,
    },
    /// Browse the action catalog of a dtc server.
    Action {
        #[command(flatten)]
        server: remote::ServerArgs,
        #[command(subcommand)]
        cmd: remote::ActionCmd,
    },
    /// Run an action through a connection on a dtc server.
    Run {
        #[command(flatten)]
        server: remote::ServerArgs,
        #[command(flatten)]
        run: remote::RunArgs,
    },
    /// Flows on a dtc server: apply, run, dry-run, or start from a ready one (`init`).
    Flow {
        #[command(flatten)]
        server: remote::ServerArgs,
        #[command(subcommand)]
        cmd: flows::FlowCmd,
    },
    /// The run log of a dtc server's flows.
    Runs {
        #[command(flatten)]
        server: remote::ServerArgs,
        #[command(subcommand)]
        cmd: flows::RunsCmd,
    },
    /// Administration on the server's own database and key (run where the server runs).
    Admin {
        #[command(subcommand)]
        cmd: serve::AdminCmd,
    },
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("DTC_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_ansi(connector::telemetry::colour_on_stderr())
        .with_writer(std::io::stderr)
        .try_init();
}

fn server_table(args: &remote::ServerArgs) -> bool {
    remote::wants_table(args)
}

fn main() -> ExitCode {
    few_malloc_arenas();
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(args) = &cli.command
        && let Some(n) = args.runtime_threads()
    {
        runtime.worker_threads(n);
    }
    runtime
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(run(cli))
}

/// glibc gives each thread that allocates an arena of its own (up to 8 per core), and keeps what
/// each one grew to. `dtc serve` runs a dozen threads (tokio's, sqlx-sqlite's one per
/// connection): under load most of its memory was in those arenas. Two arenas measured 92 →
/// 78 MB resident under the peer suite's REST sync case with no change in throughput. Since
/// Rust's allocations went to jemalloc (below) this bounds what is left with glibc: SQLite's
/// page caches on sqlx-sqlite's threads. Set before any thread starts; `MALLOC_ARENA_MAX` in the
/// environment still wins.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// jemalloc for Rust's allocations: glibc's `malloc`/`free` were a fifth of `dtc serve`'s CPU
/// under sync sends; jemalloc measured 10–16 % less CPU per send (BENCHMARKS.md). Two arenas,
/// freed pages handed back after a second (by a background thread `dtc serve` starts), keep
/// the idle server near glibc's size; SQLite's own allocations stay with glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Read by jemalloc at its start; `_RJEM_MALLOC_CONF` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

async fn run(cli: Cli) -> ExitCode {
    if !matches!(cli.command, Command::Serve(_)) {
        init_logs();
    }
    let mut table = false;
    let result = match cli.command {
        Command::Sim {
            listen,
            fixture,
            journal,
        } => dingtalk_sim::run(listen, fixture, journal)
            .await
            .map(|()| None)
            .map_err(|e| exit::Failure::other(format!("dtc sim: {e}"))),
        Command::Send(args) => send::run(args).await.map(Some),
        Command::Serve(args) => serve::serve(args).await.map(|()| None),
        Command::Connection { server, cmd } => {
            table = server_table(&server);
            remote::connection(&server, cmd).await.map(Some)
        }
        Command::Action { server, cmd } => {
            table = server_table(&server);
            remote::action(&server, cmd).await.map(Some)
        }
        Command::Conversation { server, cmd } => {
            table = server_table(&server);
            remote::conversation(&server, cmd).await.map(Some)
        }
        Command::Run { server, run } => {
            table = server_table(&server);
            remote::run(&server, run).await.map(Some)
        }
        Command::Flow { server, cmd } => {
            table = server_table(&server);
            flows::flow(&server, cmd).await
        }
        Command::Runs { server, cmd } => {
            table = server_table(&server);
            flows::runs(&server, cmd).await.map(Some)
        }
        Command::Admin { cmd } => serve::admin(cmd).await.map(Some),
    };
    connector::telemetry::flush_logs();
    match result {
        Ok(Some(out)) => {
            if table {
                println!("{}", table::render(&out));
            } else {
                // Indented: people read it; `jq` and scripts read it just as well.
                println!("{out:#}");
            }
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
