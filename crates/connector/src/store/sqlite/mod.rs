//! [`Store`] on SQLite: one file, WAL mode, one instance.
//!
//! Column encodings: uuids as hyphenated text, timestamps as integer unix microseconds, JSON as
//! text. Writes that read first (claims, acks) run in `BEGIN IMMEDIATE` transactions, which take
//! the write lock up front so two writers never both read and then fail to upgrade.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::types::{self, *};
use super::{Clock, Store, StoreError, StoreResult, lease_expiry};

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!($name, ".sql"))
    };
}

/// How long a statement waits for another writer's lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating the file and its directory if missing) and migrates.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across process crashes in WAL mode (only an OS crash or power loss
            // can lose the last commits), and makes commits much cheaper than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let path = options.get_filename();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(sqlx::Error::Configuration(
                    format!("cannot create database directory {}: {e}", dir.display()).into(),
                ))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool, clock })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn now(&self) -> DateTime<Utc> {
        types::trunc_micros(self.clock.now())
    }

    async fn begin_immediate(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn ack(
        &self,
        id: Uuid,
        owner: &str,
        ack: Ack<'_>,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        let Ack {
            transition,
            result,
            error,
            next_attempt_at,
        } = ack;
        let now = self.now();
        let mut tx = self.begin_immediate().await?;
        let attempts: Option<i32> = sqlx::query_scalar(sql!("delivery_ack"))
            .bind(id.to_string())
            .bind(owner)
            .bind(transition.to.as_str())
            .bind(transition.from.as_str())
            .bind(result.map(json_text))
            .bind(error.map(json_text))
            .bind(next_attempt_at.map(micros))
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(number) = attempts else {
            // Dropping the transaction rolls it back; nothing was changed anyway.
            return Err(lease_lost(id, owner));
        };
        insert_attempt(&mut tx, id, number, attempt).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        new: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StoreResult<Inserted> {
        let (status, owner, expires) = match &new.lease {
            Some(lease) => (
                DeliveryStatus::InFlight,
                Some(lease.owner.as_str()),
                Some(micros(lease_expiry(now, lease.duration))),
            ),
            None => (DeliveryStatus::Queued, None, None),
        };
        let row = sqlx::query(sql!("delivery_insert"))
            .bind(new.id.to_string())
            .bind(new.connection_id.to_string())
            .bind(&new.action)
            .bind(&new.group_key)
            .bind(json_text(&new.input))
            .bind(status.as_str())
            .bind(new.mode.as_str())
            .bind(micros(now))
            .bind(owner)
            .bind(expires)
            .bind(new.idempotency_key.as_deref())
            .bind(new.request_hash.as_deref())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| duplicate_as(e, "delivery id"))?;
        if let Some(row) = row {
            return Ok(Inserted::New(delivery_from_row(&row)?));
        }
        let key = new.idempotency_key.as_deref().ok_or_else(|| {
            StoreError::Corrupt("insert without idempotency key returned no row".into())
        })?;
        let existing = sqlx::query(sql!("delivery_by_idempotency_key"))
            .bind(new.connection_id.to_string())
            .bind(key)
            .fetch_one(&mut **tx)
            .await?;
        Ok(Inserted::Existing(delivery_from_row(&existing)?))
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn dialect(&self) -> &'static str {
        "sqlite"
    }

    async fn insert_connection(
        &self,
        id: Uuid,
        fields: &ConnectionFields,
    ) -> StoreResult<ConnectionRecord> {
        let row = sqlx::query(sql!("connection_insert"))
            .bind(id.to_string())
            .bind(&fields.name)
            .bind(fields.kind.as_str())
            .bind(&fields.description)
            .bind(fields.app_key.as_deref())
            .bind(fields.robot_code.as_deref())
            .bind(json_text(&fields.keywords))
            .bind(fields.qps_quota)
            .bind(&fields.sealed_secrets)
            .bind(micros(self.now()))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| duplicate_as(e, "connection name"))?;
        connection_from_row(&row)
    }

    async fn get_connection(&self, id: Uuid) -> StoreResult<Option<ConnectionRecord>> {
        sqlx::query(sql!("connection_by_id"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(connection_from_row)
            .transpose()
    }

    async fn get_connection_by_name(&self, name: &str) -> StoreResult<Option<ConnectionRecord>> {
        sqlx::query(sql!("connection_by_name"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(connection_from_row)
            .transpose()
    }

    async fn list_connections(&self) -> StoreResult<Vec<ConnectionRecord>> {
        sqlx::query(sql!("connection_list"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(connection_from_row)
            .collect()
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
        let row = sqlx::query(sql!("connection_update"))
            .bind(id.to_string())
            .bind(&fields.name)
            .bind(fields.kind.as_str())
            .bind(&fields.description)
            .bind(fields.app_key.as_deref())
            .bind(fields.robot_code.as_deref())
            .bind(json_text(&fields.keywords))
            .bind(fields.qps_quota)
            .bind(&fields.sealed_secrets)
            .bind(micros(now))
            .bind(micros(expected_updated_at))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| duplicate_as(e, "connection name"))?;
        match row {
            Some(row) => connection_from_row(&row),
            None if self.get_connection(id).await?.is_some() => {
                Err(StoreError::Conflict { what: "connection" })
            }
            None => Err(StoreError::NotFound { what: "connection" }),
        }
    }

    async fn delete_connection(&self, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query(sql!("connection_delete"))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_sealed_secrets(&self, updates: &[SealedSecretsUpdate]) -> StoreResult<()> {
        let now = micros(self.now());
        let mut tx = self.begin_immediate().await?;
        for update in updates {
            let done = sqlx::query(sql!("connection_swap_secrets"))
                .bind(update.id.to_string())
                .bind(&update.new)
                .bind(&update.old)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict { what: "connection" });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> StoreResult<()> {
        sqlx::query(sql!("api_token_insert"))
            .bind(token.id.to_string())
            .bind(&token.token_hash)
            .bind(&token.label)
            .bind(micros(types::trunc_micros(token.created_at)))
            .execute(&self.pool)
            .await
            .map_err(|e| duplicate_as(e, "api token"))?;
        Ok(())
    }

    async fn find_api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<ApiTokenRecord>> {
        let row = sqlx::query(sql!("api_token_by_hash"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(ApiTokenRecord {
                id: uuid_col(&row, "id")?,
                token_hash: row.try_get("token_hash")?,
                label: row.try_get("label")?,
                created_at: time_col(&row, "created_at")?,
            })
        })
        .transpose()
    }

    async fn count_api_tokens(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(sql!("api_token_count"))
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn insert_delivery(&self, new: &NewDelivery) -> StoreResult<Inserted> {
        let now = self.now();
        let mut tx = self.begin_immediate().await?;
        let inserted = self.insert_in(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_deliveries(&self, new: &[NewDelivery]) -> StoreResult<Vec<Inserted>> {
        let now = self.now();
        let mut tx = self.begin_immediate().await?;
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
        sqlx::query(sql!("delivery_by_idempotency_key"))
            .bind(connection_id.to_string())
            .bind(idempotency_key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(delivery_from_row)
            .transpose()
    }

    async fn get_delivery(&self, id: Uuid) -> StoreResult<Option<DeliveryDetail>> {
        let Some(row) = sqlx::query(sql!("delivery_by_id"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let delivery = delivery_from_row(&row)?;
        let attempt_log = sqlx::query(sql!("attempt_list"))
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Some(DeliveryDetail {
            delivery,
            attempt_log,
        }))
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> StoreResult<DeliveryPage> {
        let page_size = filter.page_size();
        let rows = sqlx::query(sql!("delivery_list"))
            .bind(filter.status.map(DeliveryStatus::as_str))
            .bind(filter.connection_id.map(|id| id.to_string()))
            .bind(filter.group_key.as_deref())
            .bind(filter.created_from.map(micros))
            .bind(filter.created_before.map(micros))
            .bind(filter.before_seq)
            .bind(i64::from(page_size))
            .fetch_all(&self.pool)
            .await?;
        let deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(DeliveryPage::from_rows(deliveries, page_size))
    }

    async fn claim_due(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let now = self.now();
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query(sql!("delivery_claim"))
            .bind(micros(now))
            .bind(owner)
            .bind(micros(lease_expiry(now, lease)))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(delivery_from_row)
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
        let mut tx = self.begin_immediate().await?;
        let number: Option<i32> = sqlx::query_scalar(sql!("delivery_count_attempt"))
            .bind(id.to_string())
            .bind(owner)
            .bind(DeliveryStatus::InFlight.as_str())
            .bind(attempt.error.as_ref().map(json_text))
            .bind(micros(self.now()))
            .fetch_optional(&mut *tx)
            .await?;
        let number = number.ok_or_else(|| lease_lost(id, owner))?;
        insert_attempt(&mut tx, id, number, attempt).await?;
        tx.commit().await?;
        Ok(number)
    }

    async fn complete_delivery(
        &self,
        id: Uuid,
        owner: &str,
        result: &serde_json::Value,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        let ack = Ack {
            transition: COMPLETE,
            result: Some(result),
            error: None,
            next_attempt_at: None,
        };
        self.ack(id, owner, ack, attempt).await
    }

    async fn schedule_retry(
        &self,
        id: Uuid,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &serde_json::Value,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        let at = types::trunc_micros(next_attempt_at);
        let ack = Ack {
            transition: SCHEDULE_RETRY,
            result: None,
            error: Some(error),
            next_attempt_at: Some(at),
        };
        self.ack(id, owner, ack, attempt).await
    }

    async fn fail_delivery(
        &self,
        id: Uuid,
        owner: &str,
        error: &serde_json::Value,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        let ack = Ack {
            transition: FAIL,
            result: None,
            error: Some(error),
            next_attempt_at: None,
        };
        self.ack(id, owner, ack, attempt).await
    }

    async fn extend_lease(&self, id: Uuid, owner: &str, lease: Duration) -> StoreResult<()> {
        let now = self.now();
        let done = sqlx::query(sql!("delivery_extend_lease"))
            .bind(id.to_string())
            .bind(owner)
            .bind(micros(lease_expiry(now, lease)))
            .bind(micros(now))
            .bind(DeliveryStatus::InFlight.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(id, owner));
        }
        Ok(())
    }

    async fn retry_failed(&self, id: Uuid) -> StoreResult<Delivery> {
        let row = sqlx::query(sql!("delivery_retry_failed"))
            .bind(id.to_string())
            .bind(RETRY_FAILED.to.as_str())
            .bind(RETRY_FAILED.from.as_str())
            .bind(micros(self.now()))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => delivery_from_row(&row),
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
        if !rows.is_empty() {
            let now = self.now();
            let mut tx = self.begin_immediate().await?;
            for r in rows {
                sqlx::query(sql!("delivery_insert_finished"))
                    .bind(r.id.to_string())
                    .bind(r.connection_id.to_string())
                    .bind(&r.action)
                    .bind(&r.group_key)
                    .bind(json_text(&r.input))
                    .bind(r.status.as_str())
                    .bind(micros(types::trunc_micros(r.attempt.started_at)))
                    .bind(r.last_error.as_ref().map(json_text))
                    .bind(r.result.as_ref().map(json_text))
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| duplicate_as(e, "delivery id"))?;
                insert_attempt(&mut tx, r.id, 1, &r.attempt).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn release(&self, owner: &str) -> StoreResult<u64> {
        let done = sqlx::query(sql!("delivery_release"))
            .bind(owner)
            .bind(RELEASE.to.as_str())
            .bind(RELEASE.from.as_str())
            .bind(micros(self.now()))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn save_progress(
        &self,
        id: Uuid,
        owner: &str,
        progress: &serde_json::Value,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql!("delivery_save_progress"))
            .bind(id.to_string())
            .bind(owner)
            .bind(DeliveryStatus::InFlight.as_str())
            .bind(json_text(progress))
            .bind(micros(self.now()))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(id, owner));
        }
        Ok(())
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
        let tat: Option<i64> = sqlx::query_scalar(sql!("rate_take"))
            .bind(key)
            .bind(now)
            .bind(interval)
            .bind(not_after)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(tat) = tat {
            return Ok(RateSlot::Granted {
                at: from_micros(tat - interval)?,
            });
        }
        let tat: i64 = sqlx::query_scalar(sql!("rate_tat"))
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(RateSlot::Denied {
            at: from_micros(tat.max(now))?,
        })
    }

    async fn push_rate_limit(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(sql!("rate_push"))
            .bind(key)
            .bind(until.timestamp_micros())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn insert_attempt(
    tx: &mut Transaction<'static, Sqlite>,
    id: Uuid,
    number: i32,
    attempt: &AttemptRecord,
) -> StoreResult<()> {
    sqlx::query(sql!("attempt_insert"))
        .bind(id.to_string())
        .bind(number)
        .bind(micros(attempt.started_at))
        .bind(micros(attempt.finished_at))
        .bind(attempt.outcome.as_str())
        .bind(attempt.error.as_ref().map(json_text))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn lease_lost(id: Uuid, owner: &str) -> StoreError {
    StoreError::LeaseLost {
        delivery_id: id,
        owner: owner.to_owned(),
    }
}

fn duplicate_as(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate { what },
        _ => StoreError::Database(e),
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serializing a serde_json::Value or a Vec<String> to a string cannot fail.
    serde_json::to_string(value).expect("JSON value serializes")
}

fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp out of range: {us}")))
}

fn time_col(row: &SqliteRow, name: &str) -> StoreResult<DateTime<Utc>> {
    let v: i64 = row.try_get(name)?;
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| StoreError::Corrupt(format!("{name}: timestamp {v} out of range")))
}

fn opt_time_col(row: &SqliteRow, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let v: Option<i64> = row.try_get(name)?;
    v.map(|v| {
        DateTime::from_timestamp_micros(v)
            .ok_or_else(|| StoreError::Corrupt(format!("{name}: timestamp {v} out of range")))
    })
    .transpose()
}

fn uuid_col(row: &SqliteRow, name: &str) -> StoreResult<Uuid> {
    let v: String = row.try_get(name)?;
    Uuid::parse_str(&v).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

fn json_col<T: serde::de::DeserializeOwned>(row: &SqliteRow, name: &str) -> StoreResult<T> {
    let v: String = row.try_get(name)?;
    serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

fn opt_json_col(row: &SqliteRow, name: &str) -> StoreResult<Option<serde_json::Value>> {
    let v: Option<String> = row.try_get(name)?;
    v.map(|v| serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(format!("{name}: {e}"))))
        .transpose()
}

fn connection_from_row(row: &SqliteRow) -> StoreResult<ConnectionRecord> {
    Ok(ConnectionRecord {
        id: uuid_col(row, "id")?,
        fields: ConnectionFields {
            name: row.try_get("name")?,
            kind: ConnectionKind::parse(row.try_get("kind")?)?,
            description: row.try_get("description")?,
            app_key: row.try_get("app_key")?,
            robot_code: row.try_get("robot_code")?,
            keywords: json_col(row, "keywords")?,
            qps_quota: row.try_get("qps_quota")?,
            sealed_secrets: row.try_get("sealed_secrets")?,
        },
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

fn delivery_from_row(row: &SqliteRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: uuid_col(row, "id")?,
        seq: row.try_get("seq")?,
        connection_id: uuid_col(row, "connection_id")?,
        action: row.try_get("action")?,
        group_key: row.try_get("group_key")?,
        input: json_col(row, "input")?,
        status: DeliveryStatus::parse(row.try_get("status")?)?,
        mode: DeliveryMode::parse(row.try_get("mode")?)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: time_col(row, "next_attempt_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time_col(row, "lease_expires_at")?,
        last_error: opt_json_col(row, "last_error")?,
        result: opt_json_col(row, "result")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        progress: opt_json_col(row, "progress")?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

fn attempt_from_row(row: &SqliteRow) -> StoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        delivery_id: uuid_col(row, "delivery_id")?,
        attempt: row.try_get("attempt")?,
        started_at: time_col(row, "started_at")?,
        finished_at: time_col(row, "finished_at")?,
        outcome: AttemptOutcome::parse(row.try_get("outcome")?)?,
        error: opt_json_col(row, "error")?,
    })
}
