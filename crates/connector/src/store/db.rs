//! Everything that differs between SQLite and PostgreSQL, in one place, so the store itself
//! ([`super::sql::SqlStore`]) is written once:
//!
//! - how a value is encoded: uuids are hyphenated text on SQLite and `uuid` on PostgreSQL,
//!   timestamps integer unix microseconds and `timestamptz`, JSON text and `jsonb`;
//! - how a write transaction starts: `BEGIN IMMEDIATE` on SQLite (it takes the write lock up
//!   front, so two writers never both read and then fail to upgrade), a plain `BEGIN` on
//!   PostgreSQL;
//! - the query files that really differ (`queries/<dialect>/`).
//!
//! Queries use `$1`-style parameters, which both drivers accept. Each value is bound by meaning
//! ([`Arg`]) and typed by the dialect, so PostgreSQL keeps its native types (this is not sqlx's
//! `Any` driver, which would reduce them to text).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Postgres, Row as _, Sqlite, Transaction};
use uuid::Uuid;

use super::types::JsonText;
use super::{StoreError, StoreResult};

/// A query file shared by both dialects: `queries/<name>.sql`.
macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("queries/", $name, ".sql"))
    };
}

/// `query!("name", a, b)`: the statement of `queries/name.sql` with its arguments bound in
/// order, as `Query::new(sql!("name")).bind(a).bind(b)`.
macro_rules! query {
    ($name:literal $(, $arg:expr)* $(,)?) => {
        $crate::store::db::Query::new($crate::store::db::sql!($name))$(.bind($arg))*
    };
}

/// A query with parts for one use only (`/*@name … */`, see [`variant`]): the text for
/// `$keep`, one of the `$variants` the file has, made once.
macro_rules! sql_variant {
    ($name:literal, $keep:expr, [$($variant:literal),+]) => {{
        static TEXTS: std::sync::LazyLock<Vec<(&str, String)>> = std::sync::LazyLock::new(|| {
            let text = include_str!(concat!("queries/", $name, ".sql"));
            vec![$(($variant, $crate::store::db::variant(text, $variant))),+]
        });
        let keep: &str = $keep;
        TEXTS
            .iter()
            .find(|(v, _)| *v == keep)
            .map(|(_, text)| text.as_str())
            .expect("a variant the query file has")
    }};
}

/// A query whose text differs per dialect: its `/*@sqlite … */` and `/*@postgres … */` parts.
macro_rules! sql_per_dialect {
    ($pool:expr, $name:literal) => {
        $crate::store::db::sql_variant!($name, $pool.dialect().name(), ["sqlite", "postgres"])
    };
}

pub(crate) use {query, sql, sql_per_dialect, sql_variant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// A connection pool of either dialect.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open write transaction; dropping it rolls back.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// A value bound to a query, by what it means; the dialect decides its column type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Int32(Option<i32>),
    Id(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Json(Option<&'a Value>),
    JsonText(Option<&'a JsonText>),
}

macro_rules! arg_from {
    ($variant:ident, $t:ty) => {
        impl<'a> From<$t> for Arg<'a> {
            fn from(v: $t) -> Self {
                Arg::$variant(Some(v))
            }
        }
        impl<'a> From<Option<$t>> for Arg<'a> {
            fn from(v: Option<$t>) -> Self {
                Arg::$variant(v)
            }
        }
    };
}

arg_from!(Text, &'a str);
arg_from!(Int, i64);
arg_from!(Int32, i32);
arg_from!(Id, Uuid);
arg_from!(Json, &'a Value);
arg_from!(JsonText, &'a JsonText);

// Times are bound at microsecond precision, PostgreSQL's, so what either store reads back
// equals what was written.
impl<'a> From<Option<DateTime<Utc>>> for Arg<'a> {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v.map(super::types::trunc_micros))
    }
}

impl<'a> From<DateTime<Utc>> for Arg<'a> {
    fn from(v: DateTime<Utc>) -> Self {
        Some(v).into()
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}

/// Where a query runs: the pool, or an open transaction.
pub(crate) enum Exec<'e> {
    Pool(&'e Pool),
    Tx(&'e mut Tx),
}

impl<'e> From<&'e Pool> for Exec<'e> {
    fn from(p: &'e Pool) -> Self {
        Exec::Pool(p)
    }
}

impl<'e> From<&'e mut Tx> for Exec<'e> {
    fn from(t: &'e mut Tx) -> Self {
        Exec::Tx(t)
    }
}

/// One statement and its arguments, in order (`$1`, `$2`, …).
pub(crate) struct Query<'a> {
    sql: std::borrow::Cow<'static, str>,
    args: Vec<Arg<'a>>,
    /// For SQLite, the same statement with anonymous `?` parameters, and the argument each
    /// takes (see [`insert_rows`]).
    anonymous: Option<(String, Vec<usize>)>,
}

/// A multi-row INSERT: `insert` (one `VALUES (…)` tuple whose parameters are `$1`…`$params`)
/// with that tuple repeated for `rows` rows, each row's parameters numbered after the last's.
/// One statement for many rows spares a round trip to the database (on SQLite, to its worker
/// thread) per row. Callers use a few fixed `rows` counts, so sqlx's statement cache holds a
/// few texts, not one per batch size. SQLite gets it with anonymous `?` parameters: it finds a
/// numbered parameter's name by walking a list of them, so binding `$n`s costs the square of
/// their number (2 % of `dtc serve`'s CPU at 16 rows of 10).
pub(crate) fn insert_rows(insert: &'static str, params: usize, rows: usize) -> Query<'static> {
    let at = insert
        .rfind("VALUES")
        .expect("a multi-row insert has VALUES")
        + "VALUES".len();
    let (head, tuple) = insert.split_at(at);
    let tuple = tuple.trim();
    let mut sql = String::with_capacity(head.len() + rows * (tuple.len() + 8));
    let mut anonymous = String::with_capacity(sql.capacity());
    let mut order = Vec::with_capacity(rows * params);
    sql.push_str(head);
    anonymous.push_str(head);
    for row in 0..rows {
        let sep = if row == 0 { " " } else { ", " };
        sql.push_str(sep);
        anonymous.push_str(sep);
        let mut rest = tuple;
        while let Some(i) = rest.find('$') {
            sql.push_str(&rest[..=i]);
            anonymous.push_str(&rest[..i]);
            anonymous.push('?');
            rest = &rest[i + 1..];
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let n: usize = rest[..digits].parse().expect("a numbered parameter");
            sql.push_str(&(n + row * params).to_string());
            order.push(n - 1 + row * params);
            rest = &rest[digits..];
        }
        sql.push_str(rest);
        anonymous.push_str(rest);
    }
    Query {
        sql: sql.into(),
        args: Vec::with_capacity(rows * params),
        anonymous: Some((anonymous, order)),
    }
}

/// `text` for one use: each block `/*@keep … */` replaced by what it holds, every other
/// `/*@name … */` block dropped. A query written once can so carry what only one dialect takes
/// (SQLite's `INDEXED BY`, PostgreSQL's `FOR UPDATE`) beside the rest.
pub(crate) fn variant(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*@") {
        out.push_str(&rest[..start]);
        let block = &rest[start + 3..];
        let end = block.find("*/").expect("a /*@ block is closed");
        let (name, body) = block[..end]
            .split_once(char::is_whitespace)
            .unwrap_or((&block[..end], ""));
        if name == keep {
            out.push_str(body);
        }
        rest = &block[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Most rows in one multi-row statement: 320 parameters for the delivery log's 10 a row, far
/// under SQLite's 32,766 and PostgreSQL's 65,535. Each statement is a round trip to SQLite's
/// worker thread (two thread wake-ups), so a 512-row commit takes 32 of them, not 64 at 16
/// rows: −8 % CPU per sync send with `wrk` (BENCHMARKS.md). 64 rows saved no more and held
/// 8 MB more under load (not traced further), 32 about 3 MB. (The cap was 16
/// while SQLite got numbered `$n` parameters, whose binding cost grows with the square of their
/// number; anonymous ones, see [`insert_rows`], do not.)
const MAX_ROWS_PER_STATEMENT: usize = 32;

/// Splits `n` rows into chunks of the sizes [`insert_rows`] is called with: as many of
/// [`MAX_ROWS_PER_STATEMENT`] as fit, then the binary digits of the remainder, so sqlx caches
/// a few statement texts.
pub(crate) fn row_chunks(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let take = match n {
            0 => return None,
            n if n >= MAX_ROWS_PER_STATEMENT => MAX_ROWS_PER_STATEMENT,
            n => 1 << n.ilog2(),
        };
        n -= take;
        Some(take)
    })
}

/// The typed sqlx query of `$query`: text and integers bound as they are, ids, times and JSON
/// through the dialect's encodings.
macro_rules! bind_all {
    ($sql:expr, $args:expr, $id:expr, $time:expr, $json:expr, $json_text:expr) => {{
        let mut q = sqlx::query($sql);
        for arg in $args {
            q = match *arg {
                Arg::Text(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Int32(v) => q.bind(v),
                Arg::Id(v) => q.bind(v.map($id)),
                Arg::Time(v) => q.bind(v.map($time)),
                Arg::Json(v) => q.bind(v.map($json)),
                Arg::JsonText(v) => q.bind(v.map($json_text)),
            };
        }
        q
    }};
}

/// Runs `$run` with `$q`, the typed sqlx query of whichever dialect `$exec` is, and `$e`, its
/// executor.
macro_rules! on_exec {
    ($self:ident, $exec:expr, |$q:ident, $e:ident| $run:expr) => {{
        let exec: Exec<'_> = $exec.into();
        match exec {
            Exec::Pool(Pool::Sqlite(p)) => {
                let ($q, $e) = ($self.sqlite(), p);
                $run
            }
            Exec::Pool(Pool::Postgres(p)) => {
                let ($q, $e) = ($self.postgres(), p);
                $run
            }
            Exec::Tx(Tx::Sqlite(t)) => {
                let ($q, $e) = ($self.sqlite(), &mut **t);
                $run
            }
            Exec::Tx(Tx::Postgres(t)) => {
                let ($q, $e) = ($self.postgres(), &mut **t);
                $run
            }
        }
    }};
}

/// JSON as SQLite stores it. (`serde_json::to_string` writes into the buffer directly;
/// `Value`'s `Display` goes through a formatter, a profiled 2 % of a logged sync send.)
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("a JSON value always serializes")
}

impl<'a> Query<'a> {
    /// A statement with no arguments bound yet.
    pub fn new(sql: &'static str) -> Query<'static> {
        Query {
            sql: sql.into(),
            args: Vec::new(),
            anonymous: None,
        }
    }

    pub fn bind(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    fn sqlite(&self) -> sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>> {
        let id = |u: Uuid| u.hyphenated().to_string();
        let time = |t: DateTime<Utc>| t.timestamp_micros();
        match &self.anonymous {
            None => bind_all!(&self.sql, &self.args, id, time, json_text, JsonText::as_str),
            Some((sql, order)) => {
                let args = order.iter().map(|&i| &self.args[i]);
                bind_all!(sql, args, id, time, json_text, JsonText::as_str)
            }
        }
    }

    fn postgres(&self) -> sqlx::query::Query<'_, Postgres, PgArguments> {
        let (id, time) = (|u: Uuid| u, |t: DateTime<Utc>| t);
        let raw = |t: &'a JsonText| sqlx::types::Json(t.as_raw());
        bind_all!(&self.sql, &self.args, id, time, sqlx::types::Json, raw)
    }

    pub async fn fetch_all<'e>(self, on: impl Into<Exec<'e>>) -> Result<Vec<Row>, sqlx::Error> {
        on_exec!(self, on, |q, e| Ok(q
            .fetch_all(e)
            .await?
            .into_iter()
            .map(Row::from)
            .collect()))
    }

    pub async fn fetch_optional<'e>(
        self,
        on: impl Into<Exec<'e>>,
    ) -> Result<Option<Row>, sqlx::Error> {
        on_exec!(self, on, |q, e| Ok(q
            .fetch_optional(e)
            .await?
            .map(Row::from)))
    }

    pub async fn fetch_one<'e>(self, on: impl Into<Exec<'e>>) -> Result<Row, sqlx::Error> {
        on_exec!(self, on, |q, e| Ok(q.fetch_one(e).await?.into()))
    }

    /// Every row, each read as a `T`.
    pub async fn records<'e, T: FromRow>(self, on: impl Into<Exec<'e>>) -> StoreResult<Vec<T>> {
        self.fetch_all(on).await?.iter().map(T::from_row).collect()
    }

    /// The row, if there is one, read as a `T`.
    pub async fn record<'e, T: FromRow>(self, on: impl Into<Exec<'e>>) -> StoreResult<Option<T>> {
        self.fetch_optional(on)
            .await?
            .as_ref()
            .map(T::from_row)
            .transpose()
    }

    /// Whether the statement changed any row.
    pub async fn changed<'e>(self, on: impl Into<Exec<'e>>) -> StoreResult<bool> {
        Ok(self.execute(on).await? > 0)
    }

    /// Runs the statement; what it changed does not matter.
    pub async fn done<'e>(self, on: impl Into<Exec<'e>>) -> StoreResult<()> {
        self.execute(on).await?;
        Ok(())
    }

    /// Rows affected.
    pub async fn execute<'e>(self, on: impl Into<Exec<'e>>) -> Result<u64, sqlx::Error> {
        on_exec!(self, on, |q, e| Ok(q.execute(e).await?.rows_affected()))
    }
}

/// A result row of either dialect, read by what its columns mean.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl From<SqliteRow> for Row {
    fn from(r: SqliteRow) -> Self {
        Row::Sqlite(r)
    }
}

impl From<PgRow> for Row {
    fn from(r: PgRow) -> Self {
        Row::Postgres(r)
    }
}

/// A type both drivers decode the same way (text, integers).
trait Plain:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}

impl<T> Plain for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{col}: {e}"))
}

fn from_micros(col: &str, us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| corrupt(col, "timestamp out of range"))
}

impl Row {
    fn plain<T: Plain>(&self, col: &str) -> StoreResult<T> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(col)?,
            Row::Postgres(r) => r.try_get(col)?,
        })
    }

    /// Column `col`, read as what `T` is.
    pub fn get<T: Column>(&self, col: &str) -> StoreResult<T> {
        T::read(self, col)
    }

    pub fn text(&self, col: &str) -> StoreResult<String> {
        self.plain(col)
    }

    pub fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.plain(col)
    }

    pub fn int(&self, col: &str) -> StoreResult<i64> {
        self.plain(col)
    }

    pub fn int32(&self, col: &str) -> StoreResult<i32> {
        self.plain(col)
    }

    pub fn opt_int32(&self, col: &str) -> StoreResult<Option<i32>> {
        self.plain(col)
    }

    /// A column PostgreSQL stores natively and SQLite as text, which `parse` reads.
    fn opt_native<T, E: std::fmt::Display>(
        &self,
        col: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
        native: impl FnOnce(&PgRow) -> Result<Option<T>, sqlx::Error>,
    ) -> StoreResult<Option<T>> {
        match self {
            Row::Sqlite(r) => r
                .try_get::<Option<&str>, _>(col)?
                .map(|s| parse(s).map_err(|e| corrupt(col, e)))
                .transpose(),
            Row::Postgres(r) => Ok(native(r)?),
        }
    }

    pub fn id(&self, col: &str) -> StoreResult<Uuid> {
        self.opt_id(col)?
            .ok_or_else(|| corrupt(col, "unexpected NULL"))
    }

    pub fn opt_id(&self, col: &str) -> StoreResult<Option<Uuid>> {
        self.opt_native(col, Uuid::parse_str, |r| r.try_get(col))
    }

    pub fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        match self {
            Row::Sqlite(r) => r
                .try_get::<Option<i64>, _>(col)?
                .map(|us| from_micros(col, us))
                .transpose(),
            Row::Postgres(r) => Ok(r.try_get(col)?),
        }
    }

    pub fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        self.opt_time(col)?
            .ok_or_else(|| corrupt(col, "unexpected NULL"))
    }

    pub fn opt_json(&self, col: &str) -> StoreResult<Option<Value>> {
        self.opt_native(
            col,
            |s| serde_json::from_str(s),
            |r| {
                Ok(r.try_get::<Option<sqlx::types::Json<Value>>, _>(col)?
                    .map(|j| j.0))
            },
        )
    }

    pub fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        let value = self
            .opt_json(col)?
            .ok_or_else(|| corrupt(col, "unexpected NULL"))?;
        serde_json::from_value(value).map_err(|e| corrupt(col, e))
    }
}

/// A Rust value read from one column: the dialect's encoding is [`Row`]'s business, what the
/// text means (an enum, a group key) is the type's.
pub(crate) trait Column: Sized {
    fn read(row: &Row, col: &str) -> StoreResult<Self>;
}

macro_rules! column {
    ($($t:ty => $read:ident),+ $(,)?) => {
        $(impl Column for $t {
            fn read(row: &Row, col: &str) -> StoreResult<Self> {
                row.$read(col)
            }
        })+
    };
}

column! {
    String => text,
    Option<String> => opt_text,
    i64 => int,
    i32 => int32,
    Option<i32> => opt_int32,
    Uuid => id,
    Option<Uuid> => opt_id,
    DateTime<Utc> => time,
    Option<DateTime<Utc>> => opt_time,
    Value => json,
    Option<Value> => opt_json,
    Vec<String> => json,
}

/// Flags are stored as 0 or 1 (SQLite has no boolean).
impl Column for bool {
    fn read(row: &Row, col: &str) -> StoreResult<Self> {
        Ok(row.int32(col)? != 0)
    }
}

/// A record read from a result row.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &Row) -> StoreResult<Self>;
}

/// `Record { field, … }` from `row`: each field from the column of its name, read by its type
/// ([`Column`]); `field = expr` for one that is not a column of that name.
macro_rules! from_row {
    ($row:ident => $record:ident { $($field:ident $(= $value:expr)?),+ $(,)? }) => {
        $record { $($field: from_row!(@field $row, $field $(, $value)?)),+ }
    };
    (@field $row:ident, $field:ident) => {
        $row.get(stringify!($field))?
    };
    (@field $row:ident, $field:ident, $value:expr) => {
        $value
    };
}

/// Implements [`FromRow`] with [`from_row!`].
macro_rules! record {
    ($(|$row:ident| $record:ident { $($body:tt)+ })+) => {
        $(impl $crate::store::db::FromRow for $record {
            fn from_row($row: &$crate::store::db::Row) -> $crate::store::StoreResult<Self> {
                Ok($crate::store::db::from_row!($row => $record { $($body)+ }))
            }
        })+
    };
}

pub(crate) use {from_row, record};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_row_insert_numbers_each_rows_parameters_after_the_last() {
        let q = insert_rows("INSERT INTO t (a, b, c) VALUES ($1, 'x', $2, $1)\n", 2, 3);
        assert_eq!(
            q.sql,
            "INSERT INTO t (a, b, c) VALUES ($1, 'x', $2, $1), ($3, 'x', $4, $3), ($5, 'x', $6, $5)"
        );
        let (anonymous, order) = q.anonymous.unwrap();
        assert_eq!(
            anonymous,
            "INSERT INTO t (a, b, c) VALUES (?, 'x', ?, ?), (?, 'x', ?, ?), (?, 'x', ?, ?)"
        );
        assert_eq!(order, [0, 1, 0, 2, 3, 2, 4, 5, 4]);
    }

    #[test]
    fn a_query_variant_keeps_its_own_blocks_and_drops_the_others() {
        let text = "SELECT a FROM t /*@sqlite INDEXED BY i */WHERE b /*@postgres FOR UPDATE*/";
        assert_eq!(
            variant(text, "sqlite"),
            "SELECT a FROM t INDEXED BY i WHERE b "
        );
        assert_eq!(
            variant(text, "postgres"),
            "SELECT a FROM t WHERE b FOR UPDATE"
        );
        assert_eq!(variant("no blocks", "sqlite"), "no blocks");
    }

    #[test]
    fn rows_are_chunked_into_few_sizes() {
        assert_eq!(row_chunks(0).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(row_chunks(1).collect::<Vec<_>>(), vec![1]);
        assert_eq!(row_chunks(13).collect::<Vec<_>>(), vec![8, 4, 1]);
        assert_eq!(row_chunks(54).collect::<Vec<_>>(), vec![32, 16, 4, 2]);
        assert_eq!(
            row_chunks(200).collect::<Vec<_>>(),
            vec![32, 32, 32, 32, 32, 32, 8]
        );
    }
}
