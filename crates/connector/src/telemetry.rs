//! Logs and metrics. Logs are structured `tracing` events (text or JSON lines); metrics are
//! Prometheus counters and histograms served at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

use crate::settings::LogFormat;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often pending histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder (the `metrics` macros write to one global recorder, so
/// several in-process servers in a test share it).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let latency = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); keep ours readable.
            let _ = metrics::set_global_recorder(recorder);
            // A recorder from `build_recorder` keeps every histogram sample until something
            // drains them: a scrape, or this upkeep. Without it, a `dtc serve` nobody scrapes
            // grew by every request's samples (the peer suite's RSS under load).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started; histograms are drained only by scrapes");
            }
            handle
        })
        .clone()
}

/// Install the `tracing` subscriber for `dtc serve`: `DTC_LOG` filter (default `info`).
/// Colour only for a person at a terminal: never in a file or a pipe, never with `NO_COLOR`.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DTC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_on_stderr())
        .with_writer(BatchedStderr);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if installed.is_ok() {
        // A panic's message goes straight to stderr: the lines before it go first.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            flush_logs();
            report(info);
        }));
    }
}

/// How long log lines gather before they are written together.
const LOG_GATHER: std::time::Duration = std::time::Duration::from_millis(5);
/// A buffer this full is written at once, by the thread that filled it.
const LOG_BUFFER_MAX: usize = 1 << 20;

/// Log lines waiting for [`LOG_GATHER`] to pass, and the thread that writes them.
struct LogBuffer {
    lines: std::sync::Mutex<Vec<u8>>,
    writer: std::thread::Thread,
}

static LOG_BUFFER: OnceLock<Option<LogBuffer>> = OnceLock::new();

/// The buffer, its writer thread started on first use; `None` if the thread could not start
/// (lines are then written one by one).
fn log_buffer() -> Option<&'static LogBuffer> {
    LOG_BUFFER
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("log-writer".into())
                .stack_size(64 * 1024)
                .spawn(write_batches)
                .ok()
                .map(|handle| LogBuffer {
                    lines: std::sync::Mutex::new(Vec::new()),
                    writer: handle.thread().clone(),
                })
        })
        .as_ref()
}

/// The writer thread: asleep until a line comes to an empty buffer, then [`LOG_GATHER`] later
/// everything that came meanwhile in one write. Written under the buffer's lock, so lines
/// never overtake each other (a full buffer is written by whoever fills it).
fn write_batches() {
    loop {
        std::thread::park();
        std::thread::sleep(LOG_GATHER);
        flush_logs();
    }
}

fn lock(lines: &std::sync::Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    // A panic while holding it left whole lines or none: the buffer is still good.
    lines.lock().unwrap_or_else(|p| p.into_inner())
}

fn write_stderr(bytes: &[u8]) {
    use std::io::Write;
    if !bytes.is_empty() {
        // Nowhere to report a failed write of the log itself.
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

/// Write out every log line gathered so far (before the process exits or prints to stderr).
pub fn flush_logs() {
    if let Some(Some(buffer)) = LOG_BUFFER.get() {
        let mut lines = lock(&buffer.lines);
        write_stderr(&lines);
        lines.clear();
    }
}

/// stderr for `dtc serve`'s log, written in batches: a write system call per line (and the
/// lock on stderr that concurrent lines wait for) was 3–4 % of a logged sync send's CPU. The
/// price: a line reaches stderr up to [`LOG_GATHER`] late, and a process killed outright loses
/// that much of its log; an orderly exit and a panic write it out first ([`flush_logs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchedStderr;

/// One line (tracing formats a whole event, then writes it at once).
pub struct BatchedLine;

impl std::io::Write for BatchedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let Some(buffer) = log_buffer() else {
            return std::io::stderr().write(bytes);
        };
        let mut lines = lock(&buffer.lines);
        if lines.is_empty() {
            buffer.writer.unpark();
        }
        lines.extend_from_slice(bytes);
        if lines.len() >= LOG_BUFFER_MAX {
            write_stderr(&lines);
            lines.clear();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStderr {
    type Writer = BatchedLine;

    fn make_writer(&'a self) -> BatchedLine {
        BatchedLine
    }
}
