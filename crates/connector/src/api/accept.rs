//! Durable accepts with batched commits: concurrent `Prefer: respond-async` requests are
//! gathered for a moment and written in one transaction, so the fsync cost is shared. Each
//! request still gets its answer only after its row is committed.

use std::sync::Arc;
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
                    Err(e) => {
                        tracing::error!(error = %e, rows = rows.len(), "accepting deliveries failed");
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
}

enum LogEntry {
    Row(Box<FinishedDelivery>),
    /// Answered once everything queued before it is written (shutdown).
    Flush(oneshot::Sender<()>),
}

/// A failed batch is tried again this many times, a second apart, before it is given up (and
/// logged as lost): the requests themselves were answered long ago.
const LOG_TRIES: u32 = 3;

impl Recorder {
    pub fn start(store: Arc<dyn Store>) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<LogEntry>(8 * MAX_BATCH);
        tokio::spawn(async move {
            let mut entries = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut entries, MAX_BATCH).await > 0 {
                let mut rows = Vec::with_capacity(entries.len());
                let mut flushes = Vec::new();
                for e in entries.drain(..) {
                    match e {
                        LogEntry::Row(r) => rows.push(*r),
                        LogEntry::Flush(done) => flushes.push(done),
                    }
                }
                for attempt in 1..=LOG_TRIES {
                    match store.record_finished(&rows).await {
                        Ok(()) => break,
                        Err(e) if attempt < LOG_TRIES => {
                            tracing::warn!(error = %e, rows = rows.len(), attempt, "logging sync deliveries failed; trying again");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, rows = rows.len(), "logging sync deliveries failed; these log rows are lost (the requests were answered)");
                        }
                    }
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Recorder { tx }
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
