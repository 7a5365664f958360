//! The one [`Store`] implementation, for SQLite and PostgreSQL alike. What differs between them
//! (value encodings, how a write transaction starts, the claim query) is in [`super::db`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use super::db::{
    Column, Exec, FromRow, Pool, Query, Row, Tx, from_row, insert_rows, query, record, row_chunks,
    sql, sql_per_dialect, sql_variant,
};
use super::runs::*;
use super::types::{self, *};
use super::{Clock, Store, StoreError, StoreResult, lease_expiry};
use crate::error::ErrorBody;

/// How long a SQLite statement waits for another writer's lock before failing with
/// "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite connections open at most. Each is a thread of sqlx-sqlite's with SQLite's own memory
/// (its schema, statements and page cache), about 1.5 MB resident once used; SQLite writes one
/// transaction at a time, so beyond a few readers more connections only hold callers asleep in
/// the busy handler. Measured under the issue 12 `wrk` load: 8 → 4 took `dtc serve` from 44–47 to
/// 40–41 MB with the same sends per second (BENCHMARKS.md, "Fewer SQLite connections").
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// dtc's storage on SQLite (one file, WAL mode, one instance) or PostgreSQL (several instances
/// sharing one queue).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
    clock: Arc<dyn Clock>,
    advance: Arc<std::sync::OnceLock<Arc<dyn RunAdvance>>>,
}

/// The database holds sealed secrets and every message sent: it is created readable by its
/// owner only (like `master.key`), and an older one is made so. SQLite gives its `-wal` and
/// `-shm` files the database file's permissions.
fn make_private(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Hold the lock file beside a SQLite database for as long as the returned file lives: one
/// server owns a SQLite database (several instances need PostgreSQL), and holding it is what
/// lets a starting server take back every lease at once. `None` for databases that are not
/// SQLite files. The lock is the operating system's (`flock`), so it goes with the process,
/// even after `kill -9`.
pub fn lock_sqlite(url: &str) -> StoreResult<Option<std::fs::File>> {
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename();
    if path.to_string_lossy().starts_with(':') || url.contains("mode=memory") {
        return Ok(None);
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let config_err = |what: String| StoreError::Database(sqlx::Error::Configuration(what.into()));
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| config_err(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let file = open
        .open(&lock_path)
        .map_err(|e| config_err(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(config_err(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

/// Rebuilds SQLite's `flows` table once so that its CHECK takes the `chat` trigger kind
/// (migration 0008 says why this is not a migration).
async fn allow_chat_flows(pool: &sqlx::SqlitePool) -> StoreResult<()> {
    use sqlx::{Connection, Executor};
    let table: Option<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'flows'")
            .fetch_optional(pool)
            .await?;
    if table.is_none_or(|sql| sql.contains("'chat'")) {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    conn.execute("PRAGMA foreign_keys = OFF").await?;
    let rebuilt = async {
        let mut tx = conn.begin().await?;
        tx.execute(include_str!("queries/sqlite/flows_allow_chat.sql"))
            .await?;
        tx.commit().await
    }
    .await;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    rebuilt?;
    Ok(())
}

impl SqlStore {
    /// Opens a SQLite file (creating it and its directory if missing) and migrates it.
    pub async fn sqlite(url: &str, clock: Arc<dyn Clock>) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across process crashes in WAL mode (only an OS crash or power loss
            // can lose the last commits), and makes commits much cheaper than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // A multi-row insert keeps a statement journal (to undo just that statement); in
            // memory it costs no file writes. Measured: 8% of `dtc serve`'s CPU under sync sends.
            .pragma("temp_store", "MEMORY")
            // Checkpoint every 4,000 pages (16 MB of WAL) instead of 1,000: the same hot index
            // pages are copied back to the database a quarter as often (checkpoints were 8%).
            .pragma("wal_autocheckpoint", "4000");
        let path = options.get_filename();
        let config_err =
            |what: String| StoreError::Database(sqlx::Error::Configuration(what.into()));
        let in_memory = path.to_string_lossy().starts_with(':') || url.contains("mode=memory");
        if !in_memory {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    config_err(format!(
                        "cannot create database directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            make_private(path)
                .map_err(|e| config_err(format!("cannot make {} private: {e}", path.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        allow_chat_flows(&pool).await?;
        Ok(SqlStore {
            pool: Pool::Sqlite(pool),
            clock,
            advance: Arc::default(),
        })
    }

    /// Connects to PostgreSQL and migrates. Schema and other session settings can be given in
    /// the URL (`?options=-c%20search_path%3Dmyschema`).
    pub async fn postgres(url: &str, clock: Arc<dyn Clock>) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(SqlStore {
            pool: Pool::Postgres(pool),
            clock,
            advance: Arc::default(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        types::trunc_micros(self.clock.now())
    }

    fn run_advance(&self) -> StoreResult<Arc<dyn RunAdvance>> {
        self.advance.get().cloned().ok_or_else(|| {
            StoreError::Corrupt("a run was advanced before the flow engine was set".into())
        })
    }

    /// Locks run `run_id`, asks the flow logic what comes next, writes it. Returns the run as
    /// written (or as found when nothing changed).
    async fn advance_in(&self, tx: &mut Tx, run_id: Uuid) -> StoreResult<Option<RunRecord>> {
        let advance = self.run_advance()?;
        let Some(row) = Query::new(sql_per_dialect!(self.pool, "run_lock"))
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let run = RunRecord::from_row(&row)?;
        if run.progress.status != RunStatus::Running {
            return Ok(Some(run));
        }
        let deliveries: Vec<Delivery> = query!("run_deliveries", run_id).records(&mut *tx).await?;
        // Other items of the current step still out: nothing to decide, nothing more to read.
        let current = || {
            deliveries
                .iter()
                .filter(|d| d.run.is_some_and(|r| r.step == run.progress.step_index))
        };
        if current().any(|d| !d.status.is_finished()) {
            return Ok(Some(run));
        }
        let document = query!("flow_version", run.flow.id, run.flow.version)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.json::<Value>("document"))
            .transpose()?;
        // Connections are read only when a step may be planned: not when the last step ended.
        let steps = document
            .as_ref()
            .and_then(|d| d["steps"].as_array())
            .map_or(0, Vec::len);
        let plans = current().next().is_none() || (run.progress.step_index as usize) + 1 < steps;
        let connections = if plans {
            query!("connection_list").records(&mut *tx).await?
        } else {
            Vec::new()
        };
        let now = self.now();
        let state = RunState {
            run: &run,
            document: document.as_ref(),
            deliveries: &deliveries,
            connections: &connections,
            now,
        };
        let Some(change) = advance.advance(&state) else {
            return Ok(Some(run));
        };
        for new in &change.deliveries {
            self.insert_in(tx, new, now).await?;
        }
        let p = change.progress;
        query!(
            "run_update",
            run_id,
            p.status,
            p.step_index,
            &p.context,
            p.error.as_ref(),
            now
        )
        .execute(&mut *tx)
        .await?;
        Ok(Some(RunRecord {
            finished_at: (p.status != RunStatus::Running).then_some(now),
            progress: p,
            times: Timestamps {
                updated_at: now,
                ..run.times
            },
            ..run
        }))
    }

    async fn insert_in(
        &self,
        tx: &mut Tx,
        new: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StoreResult<Inserted> {
        let (status, owner, expires) = match &new.lease {
            Some(lease) => (
                DeliveryStatus::InFlight,
                Some(lease.owner.as_str()),
                Some(lease_expiry(now, lease.duration)),
            ),
            None => (DeliveryStatus::Queued, None, None),
        };
        let group_key = new.group_key.to_text();
        let row = query!(
            "delivery_insert",
            new.id,
            new.connection_id,
            &new.action,
            &group_key,
            &new.input,
            status,
            new.mode,
            now,
            owner,
            expires,
            &new.idempotency_key,
            &new.request_hash,
            new.run.map(|r| r.run_id),
            new.run.map(|r| r.step),
            new.run.map(|r| r.item)
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| duplicate_as(e, "delivery id"))?;
        if let Some(row) = row {
            return Ok(Inserted::New(Delivery::from_row(&row)?));
        }
        let key = new.idempotency_key.as_deref().ok_or_else(|| {
            StoreError::Corrupt("insert without idempotency key returned no row".into())
        })?;
        let existing = delivery_by_key(tx.into(), new.connection_id, key).await?;
        existing.map(Inserted::Existing).ok_or_else(|| {
            StoreError::Corrupt("an insert met an idempotency key that then was not there".into())
        })
    }
}

/// The delivery a connection accepted under an idempotency key.
async fn delivery_by_key(on: Exec<'_>, conn: Uuid, key: &str) -> StoreResult<Option<Delivery>> {
    query!("delivery_by_idempotency_key", conn, key)
        .record(on)
        .await
}

#[async_trait::async_trait]
impl Store for SqlStore {
    fn dialect(&self) -> &'static str {
        self.pool.dialect().name()
    }

    async fn insert_connection(
        &self,
        id: Uuid,
        fields: &ConnectionFields,
    ) -> StoreResult<ConnectionRecord> {
        let keywords = Value::from(fields.keywords.clone());
        let row = bind_connection(query!("connection_insert"), id, fields, &keywords)
            .bind(self.now())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| duplicate_as(e, "connection name"))?;
        ConnectionRecord::from_row(&row)
    }

    async fn get_connection(&self, id: Uuid) -> StoreResult<Option<ConnectionRecord>> {
        query!("connection_by_id", id).record(&self.pool).await
    }

    async fn get_connection_by_name(&self, name: &str) -> StoreResult<Option<ConnectionRecord>> {
        query!("connection_by_name", name).record(&self.pool).await
    }

    async fn list_connections(&self) -> StoreResult<Vec<ConnectionRecord>> {
        query!("connection_list").records(&self.pool).await
    }

    async fn update_connection(
        &self,
        id: Uuid,
        fields: &ConnectionFields,
        expected_updated_at: DateTime<Utc>,
    ) -> StoreResult<ConnectionRecord> {
        let mut now = self.now();
        // updated_at is the version: it must change even if the clock has not moved.
        if now <= expected_updated_at {
            now = expected_updated_at + chrono::Duration::microseconds(1);
        }
        let keywords = Value::from(fields.keywords.clone());
        let row = bind_connection(query!("connection_update"), id, fields, &keywords)
            .bind(now)
            .bind(expected_updated_at)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| duplicate_as(e, "connection name"))?;
        match row {
            Some(row) => ConnectionRecord::from_row(&row),
            None if self.get_connection(id).await?.is_some() => {
                Err(StoreError::Conflict { what: "connection" })
            }
            None => Err(StoreError::NotFound { what: "connection" }),
        }
    }

    async fn delete_connection(&self, id: Uuid) -> StoreResult<bool> {
        query!("connection_delete", id).changed(&self.pool).await
    }

    async fn update_sealed_secrets(&self, updates: &[SealedSecretsUpdate]) -> StoreResult<()> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        for update in updates {
            let swapped = query!(
                "connection_swap_secrets",
                update.id,
                &update.new,
                &update.old,
                now
            )
            .execute(&mut tx)
            .await?;
            if swapped != 1 {
                return Err(StoreError::Conflict { what: "connection" });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> StoreResult<()> {
        query!(
            "api_token_insert",
            token.id,
            &token.token_hash,
            &token.label,
            token.role,
            token.created_at
        )
        .execute(&self.pool)
        .await
        .map_err(|e| duplicate_as(e, "api token"))?;
        Ok(())
    }

    async fn find_api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<ApiTokenRecord>> {
        query!("api_token_by_hash", token_hash)
            .record(&self.pool)
            .await
    }

    async fn list_api_tokens(&self) -> StoreResult<Vec<ApiTokenRecord>> {
        query!("api_token_list").records(&self.pool).await
    }

    async fn delete_api_token(&self, id: Uuid) -> StoreResult<bool> {
        query!("api_token_delete", id).changed(&self.pool).await
    }

    async fn touch_api_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        query!("api_token_touch", id, at).done(&self.pool).await
    }

    async fn put_connection_check(&self, id: Uuid, check: &ConnectionCheck) -> StoreResult<()> {
        query!(
            "connection_check_put",
            id,
            check.checked_at,
            i32::from(check.ok),
            &check.message,
            &check.code
        )
        .done(&self.pool)
        .await
    }

    async fn recent_groups(&self, connection_id: Uuid, scan: u32) -> StoreResult<Vec<String>> {
        let rows = query!("delivery_recent_groups", connection_id, i64::from(scan))
            .fetch_all(&self.pool)
            .await?;
        let mut groups: Vec<String> = Vec::new();
        for row in &rows {
            let key = GroupKey::parse(&row.text("group_key")?)?;
            if let Some(g) = key.group_chat_id()
                && !groups.iter().any(|x| x == g)
            {
                groups.push(g.to_owned());
            }
        }
        Ok(groups)
    }

    async fn connection_page(
        &self,
        q: &ConnectionQuery,
    ) -> StoreResult<(Vec<(ConnectionRecord, ConnectionActivity)>, u64)> {
        let pattern = q.pattern();
        let rows = query!(
            "connection_page",
            &pattern,
            i64::from(q.limit),
            i64::from(q.offset)
        )
        .fetch_all(&self.pool)
        .await?;
        let page = rows
            .iter()
            .map(|row| {
                // No check yet: the joined check's columns are NULL.
                let last_check = row
                    .opt_time("checked_at")?
                    .map(|_| ConnectionCheck::from_row(row))
                    .transpose()?;
                let activity = ConnectionActivity {
                    last_check,
                    last_used_at: row.opt_time("last_used_at")?,
                };
                Ok((ConnectionRecord::from_row(row)?, activity))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let count = query!("connection_count", &pattern)
            .fetch_one(&self.pool)
            .await?;
        Ok((page, count.int("n")?.max(0) as u64))
    }

    async fn connection_names(&self) -> StoreResult<Vec<ConnectionName>> {
        query!("connection_names").records(&self.pool).await
    }

    async fn record_inbound(&self, m: &InboundMessage) -> StoreResult<bool> {
        let mut tx = self.pool.begin_write().await?;
        let (c, session) = (&m.conversation, m.session.as_ref());
        let inserted = query!(
            "inbound_insert",
            m.id,
            m.connection_id,
            &m.msg_id,
            &c.id,
            c.dingtalk_type(),
            &m.sender.staff_id,
            &m.sender.nick,
            &m.msgtype,
            &m.text,
            &m.message,
            m.received_at,
            session.map(|s| s.sealed_url.as_str()),
            session.map(|s| s.expires_at)
        )
        .execute(&mut tx)
        .await?;
        if inserted == 0 {
            // A redelivery: already recorded (and handled) once.
            return Ok(false);
        }
        query!(
            "conversation_seen",
            m.connection_id,
            &c.id,
            c.kind(),
            &c.title,
            m.received_at
        )
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn inbound_message(
        &self,
        connection_id: Uuid,
        msg_id: &str,
    ) -> StoreResult<Option<InboundMessage>> {
        query!("inbound_by_msg_id", connection_id, msg_id)
            .record(&self.pool)
            .await
    }

    async fn list_conversations(
        &self,
        connection_id: Uuid,
    ) -> StoreResult<Vec<ConversationRecord>> {
        query!("conversation_list", connection_id)
            .records(&self.pool)
            .await
    }

    async fn hold_stream(
        &self,
        connection_id: Uuid,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<bool> {
        let now = self.now();
        query!(
            "stream_hold",
            connection_id,
            owner,
            lease_expiry(now, lease),
            now
        )
        .changed(&self.pool)
        .await
    }

    async fn release_stream(&self, connection_id: Uuid, owner: &str) -> StoreResult<()> {
        query!("stream_release", connection_id, owner)
            .done(&self.pool)
            .await
    }

    async fn count_api_tokens(&self) -> StoreResult<u64> {
        let row = query!("api_token_count").fetch_one(&self.pool).await?;
        Ok(row.int("n")?.max(0) as u64)
    }

    async fn revoke_api_tokens_labelled(&self, label: &str, keep_hash: &str) -> StoreResult<u64> {
        Ok(query!("api_token_delete_labelled", label, keep_hash)
            .execute(&self.pool)
            .await?)
    }

    async fn insert_delivery(&self, new: &NewDelivery) -> StoreResult<Inserted> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        let inserted = self.insert_in(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_deliveries(&self, new: &[NewDelivery]) -> StoreResult<Vec<Inserted>> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        let mut out = Vec::with_capacity(new.len());
        for one in new {
            out.push(self.insert_in(&mut tx, one, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn find_by_idempotency_key(
        &self,
        connection_id: Uuid,
        idempotency_key: &str,
    ) -> StoreResult<Option<Delivery>> {
        delivery_by_key((&self.pool).into(), connection_id, idempotency_key).await
    }

    async fn get_delivery(&self, id: Uuid) -> StoreResult<Option<DeliveryDetail>> {
        let Some(row) = query!("delivery_by_id", id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let delivery = Delivery::from_row(&row)?;
        let attempt_log = query!("attempt_list", id).records(&self.pool).await?;
        Ok(Some(DeliveryDetail {
            delivery,
            attempt_log,
        }))
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> StoreResult<DeliveryPage> {
        let page = &filter.page;
        let scope = match filter.connection_id {
            Some(_) => "by_connection",
            None => "all",
        };
        let text = sql_variant!("delivery_list", scope, ["by_connection", "all"]);
        let rows = Query::new(text)
            .bind(filter.status.map(DeliveryStatus::as_str))
            .bind(filter.connection_id)
            .bind(&filter.group_chat_id)
            .bind(page.created_from)
            .bind(page.created_before)
            .bind(page.before_seq)
            .bind(i64::from(page.size()))
            .fetch_all(&self.pool)
            .await?;
        let deliveries: Vec<Delivery> = rows
            .iter()
            .map(Delivery::from_row)
            .collect::<StoreResult<_>>()?;
        Ok(DeliveryPage {
            next_cursor: page.next_cursor(&deliveries, |d| d.seq),
            deliveries,
        })
    }

    async fn claim_due(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        let rows = Query::new(sql_per_dialect!(self.pool, "delivery_claim"))
            .bind(now)
            .bind(owner)
            .bind(lease_expiry(now, lease))
            .bind(i64::from(limit))
            .fetch_all(&mut tx)
            .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(Delivery::from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING gives no order; callers get acceptance order.
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        id: Uuid,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> StoreResult<i32> {
        let error = attempt.error.as_ref().map(json);
        let mut tx = self.pool.begin_write().await?;
        let row = query!(
            "delivery_count_attempt",
            id,
            owner,
            DeliveryStatus::InFlight.as_str(),
            error.as_ref(),
            self.now()
        )
        .fetch_optional(&mut tx)
        .await?;
        let number = row
            .ok_or_else(|| lease_lost(id, owner))?
            .int32("attempts")?;
        insert_attempt(&mut tx, id, number, attempt).await?;
        tx.commit().await?;
        Ok(number)
    }

    async fn ack(&self, id: Uuid, owner: &str, ack: Ack<'_>) -> StoreResult<()> {
        let Ack {
            transition,
            result,
            error,
            next_attempt_at,
            attempt,
        } = ack;
        let now = self.now();
        let error = error.map(json);
        let mut tx = self.pool.begin_write().await?;
        let row = query!(
            "delivery_ack",
            id,
            owner,
            transition.to,
            transition.from,
            result,
            error.as_ref(),
            next_attempt_at,
            now
        )
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            // Dropping the transaction rolls it back; nothing was changed anyway.
            return Err(lease_lost(id, owner));
        };
        insert_attempt(&mut tx, id, row.int32("attempts")?, attempt).await?;
        // A run's step ended: the run moves on in this same transaction.
        if let Some(run_id) = row.opt_id("run_id")?
            && transition.to != DeliveryStatus::Retrying
        {
            self.advance_in(&mut tx, run_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn extend_lease(&self, id: Uuid, owner: &str, lease: Duration) -> StoreResult<()> {
        let now = self.now();
        let extended = query!(
            "delivery_extend_lease",
            id,
            owner,
            lease_expiry(now, lease),
            now,
            DeliveryStatus::InFlight.as_str()
        )
        .execute(&self.pool)
        .await?;
        fenced(id, owner, extended)
    }

    async fn retry_failed(&self, id: Uuid) -> StoreResult<Delivery> {
        let row = query!(
            "delivery_retry_failed",
            id,
            RETRY_FAILED.to,
            RETRY_FAILED.from,
            self.now()
        )
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Delivery::from_row(&row),
            None => match self.get_delivery(id).await? {
                Some(found) => Err(StoreError::InvalidTransition {
                    delivery_id: id,
                    from: found.delivery.status,
                    to: RETRY_FAILED.to,
                }),
                None => Err(StoreError::NotFound { what: "delivery" }),
            },
        }
    }

    async fn record_finished(&self, rows: &[FinishedDelivery]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let last_errors: Vec<Option<Value>> = rows
            .iter()
            .map(|r| r.last_error.as_ref().map(json))
            .collect();
        let group_keys: Vec<String> = rows.iter().map(|r| r.group_key.to_text()).collect();
        let mut tx = self.pool.begin_write().await?;
        let mut from = 0;
        for n in row_chunks(rows.len()) {
            let mut deliveries = insert_rows(sql!("delivery_insert_finished"), 10, n);
            for i in from..from + n {
                let r = &rows[i];
                deliveries = deliveries
                    .bind(r.id)
                    .bind(r.connection_id)
                    .bind(&r.action)
                    .bind(&group_keys[i])
                    .bind(&r.input)
                    .bind(r.status)
                    .bind(r.attempt.started_at)
                    .bind(last_errors[i].as_ref())
                    .bind(r.result.as_ref())
                    .bind(r.attempt.finished_at);
            }
            from += n;
            deliveries
                .execute(&mut tx)
                .await
                .map_err(|e| duplicate_as(e, "delivery id"))?;
        }
        // A delivered row is its own attempt (see attempt_list.sql): only the others write one.
        let attempted: Vec<&FinishedDelivery> =
            rows.iter().filter(|r| !r.is_its_own_attempt()).collect();
        let attempt_errors: Vec<Option<Value>> = attempted
            .iter()
            .map(|r| r.attempt.error.as_ref().map(json))
            .collect();
        let mut from = 0;
        for n in row_chunks(attempted.len()) {
            let mut attempts = insert_rows(sql!("attempt_insert"), 6, n);
            for i in from..from + n {
                let r = attempted[i];
                attempts = attempts
                    .bind(r.id)
                    .bind(1_i32)
                    .bind(r.attempt.started_at)
                    .bind(r.attempt.finished_at)
                    .bind(r.attempt.outcome)
                    .bind(attempt_errors[i].as_ref());
            }
            from += n;
            attempts.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release(&self, owner: &str) -> StoreResult<u64> {
        Ok(query!(
            "delivery_release",
            owner,
            RELEASE.to,
            RELEASE.from,
            self.now()
        )
        .execute(&self.pool)
        .await?)
    }

    async fn heartbeat(&self, owner: &str) -> StoreResult<()> {
        query!("instance_heartbeat", owner, self.now())
            .done(&self.pool)
            .await
    }

    async fn deregister(&self, owner: &str) -> StoreResult<()> {
        query!("instance_delete", owner).done(&self.pool).await
    }

    async fn take_back_dead(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        let taken = query!(
            "delivery_take_back_dead",
            now,
            cutoff,
            DeliveryStatus::InFlight.as_str()
        )
        .execute(&mut tx)
        .await?;
        query!("instance_delete_dead", cutoff)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(taken)
    }

    async fn expire_all_leases(&self) -> StoreResult<u64> {
        Ok(query!(
            "delivery_expire_all_leases",
            self.now(),
            DeliveryStatus::InFlight.as_str()
        )
        .execute(&self.pool)
        .await?)
    }

    async fn save_progress(&self, id: Uuid, owner: &str, progress: &Value) -> StoreResult<()> {
        let saved = query!(
            "delivery_save_progress",
            id,
            owner,
            DeliveryStatus::InFlight.as_str(),
            progress,
            self.now()
        )
        .execute(&self.pool)
        .await?;
        fenced(id, owner, saved)
    }

    async fn take_rate_slot(
        &self,
        key: &str,
        interval: Duration,
        not_after: Option<DateTime<Utc>>,
    ) -> StoreResult<RateSlot> {
        let now = self.now().timestamp_micros();
        let interval = i64::try_from(interval.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let not_after = not_after.map_or(i64::MAX, |t| t.timestamp_micros().max(now));
        let granted = query!("rate_take", key, now, interval, not_after)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = granted {
            return Ok(RateSlot::Granted {
                at: from_micros(row.int("tat_us")? - interval)?,
            });
        }
        let row = query!("rate_tat", key).fetch_one(&self.pool).await?;
        Ok(RateSlot::Denied {
            at: from_micros(row.int("tat_us")?.max(now))?,
        })
    }

    async fn push_rate_limit(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()> {
        query!("rate_push", key, until.timestamp_micros())
            .done(&self.pool)
            .await
    }

    fn set_run_advance(&self, advance: Arc<dyn RunAdvance>) {
        // Set once at start-up; a second engine on the same store keeps the first.
        let _ = self.advance.set(advance);
    }

    async fn put_flow(&self, new: &FlowFields) -> StoreResult<FlowRecord> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        let existing = query!("flow_by_name", &new.name)
            .fetch_optional(&mut tx)
            .await?;
        let (id, text) = match existing {
            Some(row) => (row.id("id")?, sql!("flow_update")),
            None => (Uuid::new_v4(), sql!("flow_insert")),
        };
        let row = Query::new(text)
            .bind(id)
            .bind(&new.trigger_kind)
            .bind(&new.document)
            .bind(&new.sealed_secrets)
            .bind(new.next_fire_at)
            .bind(now)
            .bind(&new.name)
            .fetch_one(&mut tx)
            .await
            .map_err(|e| duplicate_as(e, "flow name"))?;
        let flow = FlowRecord::from_row(&row)?;
        query!(
            "flow_version_insert",
            flow.id,
            flow.version,
            &flow.fields.document,
            &flow.fields.sealed_secrets,
            now
        )
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(flow)
    }

    async fn get_flow(&self, name: &str) -> StoreResult<Option<FlowRecord>> {
        query!("flow_by_name", name).record(&self.pool).await
    }

    async fn get_flow_version(
        &self,
        flow_id: Uuid,
        version: i32,
    ) -> StoreResult<Option<(Value, Option<String>)>> {
        let Some(row) = query!("flow_version", flow_id, version)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            row.json("document")?,
            row.opt_text("sealed_secrets")?,
        )))
    }

    async fn list_flows(&self) -> StoreResult<Vec<FlowRecord>> {
        query!("flow_list").records(&self.pool).await
    }

    async fn swap_flow_secrets(&self, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
        query!("flow_swap_secrets", id, old, new)
            .changed(&self.pool)
            .await
    }

    async fn delete_flow(&self, name: &str) -> StoreResult<bool> {
        query!("flow_delete", name).changed(&self.pool).await
    }

    async fn due_flows(&self, now: DateTime<Utc>) -> StoreResult<Vec<FlowRecord>> {
        query!("flow_due", now).records(&self.pool).await
    }

    async fn start_run(&self, new: &NewRun) -> StoreResult<RunStarted> {
        let now = self.now();
        let mut tx = self.pool.begin_write().await?;
        if let Some(fire) = &new.fire {
            let fired = query!("schedule_fire_insert", new.flow.id, fire.fire_at, new.id)
                .fetch_optional(&mut tx)
                .await?;
            // The schedule moves on either way (only if no one moved it already).
            query!(
                "flow_move_schedule",
                new.flow.id,
                fire.was_due,
                fire.next_due
            )
            .execute(&mut tx)
            .await?;
            if fired.is_none() {
                tx.commit().await?;
                return Ok(RunStarted::AlreadyFired);
            }
        }
        if let Some(key) = &new.dedupe_key {
            let window = chrono::Duration::from_std(new.dedupe_window).unwrap_or_default();
            query!("run_clear_stale_dedupe", new.flow.id, key, now - window)
                .execute(&mut tx)
                .await?;
        }
        let inserted = query!(
            "run_insert",
            new.id,
            new.flow.id,
            &new.flow.name,
            new.flow.version,
            &new.flow.trigger_kind,
            &new.context,
            &new.dedupe_key,
            now
        )
        .fetch_optional(&mut tx)
        .await
        .map_err(|e| duplicate_as(e, "run id"))?;
        if inserted.is_none() {
            let key = new.dedupe_key.as_deref().unwrap_or_default();
            let existing = query!("run_by_dedupe_key", new.flow.id, key)
                .fetch_one(&mut tx)
                .await?;
            return Ok(RunStarted::Duplicate(RunRecord::from_row(&existing)?));
        }
        let run = self
            .advance_in(&mut tx, new.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a run vanished while starting".into()))?;
        tx.commit().await?;
        Ok(RunStarted::Started(run))
    }

    async fn advance_run(&self, id: Uuid) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        self.advance_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_run(&self, id: Uuid) -> StoreResult<Option<RunRecord>> {
        query!("run_by_id").bind(id).record(&self.pool).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<RunPage> {
        let page = &filter.page;
        let runs: Vec<RunRecord> = query!(
            "run_list",
            &filter.flow,
            filter.status.map(RunStatus::as_str),
            page.created_from,
            page.created_before,
            page.before_seq,
            i64::from(page.size())
        )
        .records(&self.pool)
        .await?;
        Ok(RunPage {
            next_cursor: page.next_cursor(&runs, |r| r.seq),
            runs,
        })
    }

    async fn run_deliveries(&self, id: Uuid) -> StoreResult<Vec<Delivery>> {
        query!("run_deliveries", id).records(&self.pool).await
    }

    async fn stalled_runs(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<Uuid>> {
        query!("run_stalled", cutoff)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.id("id"))
            .collect()
    }
}

async fn insert_attempt(
    tx: &mut Tx,
    id: Uuid,
    number: i32,
    attempt: &AttemptRecord,
) -> StoreResult<()> {
    let error = attempt.error.as_ref().map(json);
    query!(
        "attempt_insert",
        id,
        number,
        attempt.started_at,
        attempt.finished_at,
        attempt.outcome,
        error.as_ref()
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// An error record as a JSON column.
fn json(e: &ErrorBody) -> Value {
    serde_json::to_value(e).expect("an error record serializes")
}

fn lease_lost(id: Uuid, owner: &str) -> StoreError {
    StoreError::LeaseLost {
        delivery_id: id,
        owner: owner.to_owned(),
    }
}

/// An update fenced by its lease owner changed nothing: the caller lost the lease.
fn fenced(id: Uuid, owner: &str, affected: u64) -> StoreResult<()> {
    if affected == 0 {
        return Err(lease_lost(id, owner));
    }
    Ok(())
}

fn duplicate_as(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate { what },
        _ => StoreError::Database(e),
    }
}

fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp out of range: {us}")))
}

/// A connection's id and fields, `$1` to `$10`, as `connection_insert` and `connection_update`
/// take them.
fn bind_connection<'a>(
    q: Query<'a>,
    id: Uuid,
    f: &'a ConnectionFields,
    keywords: &'a Value,
) -> Query<'a> {
    q.bind(id)
        .bind(&f.name)
        .bind(f.kind)
        .bind(&f.description)
        .bind(&f.app_key)
        .bind(&f.robot_code)
        .bind(keywords)
        .bind(f.qps_quota)
        .bind(&f.sealed_secrets)
        .bind(i32::from(f.stream))
}

/// Error records of any shape this store has written ([`ErrorBody::from_stored`]).
impl Column for Option<ErrorBody> {
    fn read(row: &Row, col: &str) -> StoreResult<Self> {
        Ok(row.opt_json(col)?.map(ErrorBody::from_stored))
    }
}

/// The flow step a delivery belongs to, if it is one's.
fn run_link(row: &Row) -> StoreResult<Option<RunLink>> {
    let Some(run_id) = row.opt_id("run_id")? else {
        return Ok(None);
    };
    Ok(Some(RunLink {
        run_id,
        step: row.opt_int32("run_step")?.unwrap_or_default(),
        item: row.opt_int32("run_item")?.unwrap_or_default(),
    }))
}

record! {
    |row| Timestamps { created_at, updated_at }
    |row| ApiTokenRecord { id, token_hash, label, role, created_at, last_used_at }
    |row| FlowRecord {
        id, version, times = Timestamps::from_row(row)?,
        fields = from_row!(row => FlowFields {
            name, trigger_kind, document, sealed_secrets, next_fire_at,
        }),
    }
    |row| RunRecord {
        id, seq, times = Timestamps::from_row(row)?, finished_at,
        flow = from_row!(row => RunFlow {
            id = row.get("flow_id")?, name = row.get("flow_name")?,
            version = row.get("flow_version")?, trigger_kind,
        }),
        progress = from_row!(row => RunProgress { status, step_index, context, error }),
    }
    |row| ConnectionRecord {
        id, times = Timestamps::from_row(row)?,
        fields = from_row!(row => ConnectionFields {
            name, kind, description, app_key, robot_code, keywords, qps_quota, stream,
            sealed_secrets,
        }),
    }
    |row| Delivery {
        id, seq, connection_id, action, group_key, input, status, mode, attempts,
        next_attempt_at, lease_owner, lease_expires_at, last_error, result, idempotency_key,
        request_hash, progress, run = run_link(row)?, times = Timestamps::from_row(row)?,
    }
    |row| DeliveryAttempt { delivery_id, attempt, started_at, finished_at, outcome, error }
    |row| ConnectionCheck { checked_at, ok, message, code }
    |row| ConnectionName { id, name, kind }
    |row| ConversationRecord {
        messages, last_seen_at,
        conversation = Conversation { id: row.get("conversation_id")?,
            group: row.text("kind")? == "group", title: row.get("title")? },
    }
    |row| InboundMessage {
        id, connection_id, msg_id, received_at, msgtype, text, message,
        sender = Sender { nick: row.get("sender_nick")?, staff_id: row.get("sender_staff_id")? },
        conversation = Conversation { id: row.get("conversation_id")?,
            group: row.text("conversation_type")? == "2", title: row.get("title")? },
        session = match (row.opt_text("session_webhook")?, row.opt_time("session_expires_at")?) {
            (Some(sealed_url), Some(expires_at)) => Some(SessionWebhook { sealed_url, expires_at }),
            _ => None,
        },
    }
}
