//! Durable accepts with batched commits: concurrent `Prefer: respond-async` requests are
//! gathered for a moment and written in one transaction, so the fsync cost is shared. Each
//! request still gets its answer only after its row is committed. When a batch's transaction
//! fails, its rows are committed one by one: one row the database refuses fails only its own
//! request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

use crate::store::{FinishedDelivery, Inserted, NewDelivery, Store};

type Reply = oneshot::Sender<Result<Inserted, String>>;

/// Most rows committed in one transaction.
const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub struct Acceptor {
    tx: mpsc::Sender<(NewDelivery, Reply)>,
}

impl Acceptor {
    pub fn start(store: Arc<dyn Store>) -> Acceptor {
        let (tx, mut rx) = mpsc::channel::<(NewDelivery, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            // Whatever queued up while the previous commit ran forms the next batch: no timer,
            // so a lone request is not delayed.
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let rows: Vec<NewDelivery> = batch.iter().map(|(d, _)| d.clone()).collect();
                match store.insert_deliveries(&rows).await {
                    Ok(results) => {
                        for ((_, reply), r) in batch.drain(..).zip(results) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Err(e) if rows.len() > 1 => {
                        tracing::warn!(error = %e, rows = rows.len(), "a batch of accepts failed; committing its rows one by one");
                        for (row, reply) in batch.drain(..) {
                            let one = store
                                .insert_deliveries(std::slice::from_ref(&row))
                                .await
                                .map_err(|e| e.to_string())
                                .and_then(|mut r| {
                                    r.pop().ok_or_else(|| "no row inserted".to_owned())
                                });
                            if let Err(e) = &one {
                                tracing::error!(error = %e, delivery_id = %row.id, "accepting a delivery failed");
                            }
                            let _ = reply.send(one);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "accepting a delivery failed");
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Acceptor { tx }
    }

    /// Write `delivery` durably; returns once its transaction committed.
    pub async fn accept(&self, delivery: NewDelivery) -> Result<Inserted, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((delivery, reply))
            .await
            .map_err(|_| "the accept queue is closed".to_owned())?;
        answer
            .await
            .map_err(|_| "the accept queue stopped".to_owned())?
    }
}

/// The delivery log of sync requests without an Idempotency-Key, written behind the answer in
/// batches: the caller already has its result, and the request path stays free of commits.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<LogEntry>,
    stats: Arc<LogCounters>,
}

/// What the log writer did since it started; also exported as `dtc_delivery_log_*` metrics, whose
/// ratio (rows per commit) shows whether the batching works under a given load.
#[derive(Debug, Default)]
struct LogCounters {
    commits: AtomicU64,
    rows: AtomicU64,
    lost: AtomicU64,
}

/// A snapshot of [`Recorder::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    /// Successful writes (transactions) of log rows.
    pub commits: u64,
    /// Rows written by them.
    pub rows: u64,
    /// Rows given up after [`LOG_TRIES`] failed writes.
    pub lost: u64,
}

impl LogCounters {
    fn written(&self, rows: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        metrics::counter!("dtc_delivery_log_commits_total").increment(1);
        metrics::counter!("dtc_delivery_log_rows_total").increment(rows as u64);
    }

    fn lost(&self, rows: usize) {
        self.lost.fetch_add(rows as u64, Ordering::Relaxed);
        metrics::counter!("dtc_delivery_log_rows_lost_total").increment(rows as u64);
    }
}

enum LogEntry {
    Row(Box<FinishedDelivery>),
    /// Answered once everything queued before it is written (shutdown).
    Flush(oneshot::Sender<()>),
}

/// Rows whose write failed are tried again this many times in all, a second apart, before they
/// are given up (and logged as lost): the requests themselves were answered long ago.
const LOG_TRIES: u32 = 3;

/// How long the log waits for more rows before a commit. A flush (shutdown) waits this too.
const LOG_GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// Write `rows` to the log: in one transaction, or, if that fails, one by one so a row the
/// database refuses cannot lose the others. Returns the rows not written.
async fn write_log(
    store: &dyn Store,
    stats: &LogCounters,
    rows: Vec<FinishedDelivery>,
) -> Vec<FinishedDelivery> {
    if rows.is_empty() {
        // Only a flush came: nothing to commit, and no commit to count.
        return rows;
    }
    match store.record_finished(&rows).await {
        Ok(()) => {
            stats.written(rows.len());
            Vec::new()
        }
        Err(_) if rows.len() == 1 => rows,
        Err(e) => {
            tracing::warn!(error = %e, rows = rows.len(), "logging a batch of sync deliveries failed; writing its rows one by one");
            let mut failed = Vec::new();
            for row in rows {
                match store.record_finished(std::slice::from_ref(&row)).await {
                    Ok(()) => stats.written(1),
                    Err(_) => failed.push(row),
                }
            }
            failed
        }
    }
}

impl Recorder {
    pub fn start(store: Arc<dyn Store>) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<LogEntry>(8 * MAX_BATCH);
        let stats = Arc::new(LogCounters::default());
        let counters = stats.clone();
        tokio::spawn(async move {
            let mut entries = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut entries, MAX_BATCH).await > 0 {
                // The answers are out already: gather for a moment more, so a commit carries
                // many rows (each commit rewrites the same index pages to the WAL). Asleep, not
                // waiting on the channel: a waiting receiver is woken by every row, which under
                // load wakes a parked worker thread thousands of times a second.
                if entries.len() < MAX_BATCH {
                    tokio::time::sleep(LOG_GATHER).await;
                    let more = MAX_BATCH - entries.len();
                    // Not empty: this takes what is there without waiting.
                    if !rx.is_empty() {
                        rx.recv_many(&mut entries, more).await;
                    }
                }
                let mut rows = Vec::with_capacity(entries.len());
                let mut flushes = Vec::new();
                for e in entries.drain(..) {
                    match e {
                        LogEntry::Row(r) => rows.push(*r),
                        LogEntry::Flush(done) => flushes.push(done),
                    }
                }
                let mut pending = rows;
                for attempt in 1..=LOG_TRIES {
                    pending = write_log(store.as_ref(), &counters, pending).await;
                    if pending.is_empty() {
                        break;
                    }
                    if attempt < LOG_TRIES {
                        tracing::warn!(
                            rows = pending.len(),
                            attempt,
                            "logging sync deliveries failed; trying again"
                        );
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    } else {
                        counters.lost(pending.len());
                        let ids: Vec<String> = pending.iter().map(|r| r.id.to_string()).collect();
                        tracing::error!(rows = pending.len(), delivery_ids = ?ids, "logging sync deliveries failed; these log rows are lost (the requests were answered)");
                    }
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Recorder { tx, stats }
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> LogStats {
        LogStats {
            commits: self.stats.commits.load(Ordering::Relaxed),
            rows: self.stats.rows.load(Ordering::Relaxed),
            lost: self.stats.lost.load(Ordering::Relaxed),
        }
    }

    /// Queue a finished sync request for the log; waits only when the log is far behind.
    pub async fn record(&self, row: FinishedDelivery) {
        if self.tx.send(LogEntry::Row(Box::new(row))).await.is_err() {
            tracing::error!("the delivery log writer stopped");
        }
    }

    /// Wait until everything recorded so far is written (before the process exits).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.tx.send(LogEntry::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}
