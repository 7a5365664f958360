//! Rows and enums of the store. Enums are stored as snake_case text; `as_str`/`parse` are the
//! only mapping, so they round-trip identically through SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::StoreError;
use crate::error::ErrorBody;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        $(#[$meta])*
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Result<Self, $crate::store::StoreError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::store::StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other
                    ))),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::store::StoreError;
            fn from_str(s: &str) -> Result<Self, $crate::store::StoreError> {
                Self::parse(s)
            }
        }

        impl<'a> From<$name> for $crate::store::db::Arg<'a> {
            fn from(v: $name) -> Self {
                v.as_str().into()
            }
        }

        impl $crate::store::db::Column for $name {
            fn read(
                row: &$crate::store::db::Row,
                col: &str,
            ) -> Result<Self, $crate::store::StoreError> {
                Self::parse(&row.text(col)?)
            }
        }
    };
}

pub(crate) use text_enum;

text_enum! {
    /// What a connection talks to DingTalk through.
    ConnectionKind { AppRobot => "app_robot", WebhookRobot => "webhook_robot" }
}

text_enum! {
    /// Where a delivery is in its life. Allowed moves: [`DeliveryStatus::can_transition_to`].
    DeliveryStatus {
        Queued => "queued",
        InFlight => "in_flight",
        Delivered => "delivered",
        Retrying => "retrying",
        Failed => "failed",
    }
}

text_enum! {
    /// Whether the caller waits for the send (`sync`) or got 202 and polls (`async`).
    DeliveryMode { Sync => "sync", Async => "async" }
}

text_enum! {
    /// How one attempt to send ended.
    AttemptOutcome {
        Success => "success",
        TransientError => "transient_error",
        PermanentError => "permanent_error",
        TokenRejected => "token_rejected",
    }
}

impl DeliveryStatus {
    /// The one table of allowed status changes; every store operation follows it.
    ///
    /// | from | to | by |
    /// |---|---|---|
    /// | queued, retrying | in_flight | `claim_due` |
    /// | in_flight | in_flight | `claim_due` taking back an expired lease |
    /// | in_flight | delivered | `complete_delivery` |
    /// | in_flight | retrying | `schedule_retry` |
    /// | in_flight | failed | `fail_delivery` |
    /// | in_flight | queued | `release` |
    /// | failed | queued | `retry_failed` |
    pub fn can_transition_to(self, to: DeliveryStatus) -> bool {
        use DeliveryStatus::*;
        matches!(
            (self, to),
            (Queued | Retrying, InFlight)
                | (InFlight, InFlight | Delivered | Retrying | Failed | Queued)
                | (Failed, Queued)
        )
    }

    /// Delivered and failed deliveries no longer hold up their group.
    pub fn is_finished(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Failed)
    }
}

/// A status change made by one store operation; SQL binds `from` and `to` from these constants,
/// so the statuses an operation touches are written down once, here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transition {
    pub from: DeliveryStatus,
    pub to: DeliveryStatus,
}

const fn moves(from: DeliveryStatus, to: DeliveryStatus) -> Transition {
    Transition { from, to }
}

pub(crate) const COMPLETE: Transition = moves(DeliveryStatus::InFlight, DeliveryStatus::Delivered);
pub(crate) const SCHEDULE_RETRY: Transition =
    moves(DeliveryStatus::InFlight, DeliveryStatus::Retrying);
pub(crate) const FAIL: Transition = moves(DeliveryStatus::InFlight, DeliveryStatus::Failed);
pub(crate) const RELEASE: Transition = moves(DeliveryStatus::InFlight, DeliveryStatus::Queued);
pub(crate) const RETRY_FAILED: Transition = moves(DeliveryStatus::Failed, DeliveryStatus::Queued);

/// How a claimed attempt ends ([`super::Store::ack`]): the status change, what it writes
/// besides (DingTalk's result, the error, the next attempt time; `None` keeps the current
/// value), and the attempt's record.
#[derive(Clone, Copy, Debug)]
pub struct Ack<'a> {
    pub(crate) transition: Transition,
    pub(crate) result: Option<&'a JsonText>,
    pub(crate) error: Option<&'a ErrorBody>,
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    pub(crate) attempt: &'a AttemptRecord,
}

impl<'a> Ack<'a> {
    pub fn complete(result: &'a JsonText, attempt: &'a AttemptRecord) -> Self {
        Ack {
            transition: COMPLETE,
            result: Some(result),
            error: None,
            next_attempt_at: None,
            attempt,
        }
    }

    pub fn retry(
        error: &'a ErrorBody,
        next_attempt_at: DateTime<Utc>,
        attempt: &'a AttemptRecord,
    ) -> Self {
        Ack {
            transition: SCHEDULE_RETRY,
            next_attempt_at: Some(next_attempt_at),
            ..Ack::fail(error, attempt)
        }
    }

    pub fn fail(error: &'a ErrorBody, attempt: &'a AttemptRecord) -> Self {
        Ack {
            transition: FAIL,
            result: None,
            error: Some(error),
            next_attempt_at: None,
            attempt,
        }
    }
}

/// What orders a delivery: deliveries with the same key go out one at a time, in acceptance
/// order; different keys proceed in parallel. Stored as text (`<connection>/<group>`,
/// `<connection>/-`, `<connection>/unordered/<delivery>`); only this type writes and reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// Messages to one group chat of a connection.
    Group {
        connection_id: Uuid,
        group_chat_id: String,
    },
    /// A connection's sends that have no group (1:1 sends; a webhook robot's fixed group).
    Connection { connection_id: Uuid },
    /// Needs no order (uploads, queries, recalls): a key of its own.
    Unordered {
        connection_id: Uuid,
        delivery_id: Uuid,
    },
}

impl GroupKey {
    /// The key of delivery `id` of an action addressing `group` that sends messages (`ordered`)
    /// or not.
    pub fn of(connection_id: Uuid, group: Option<&str>, ordered: bool, id: Uuid) -> Self {
        match (group, ordered) {
            (Some(g), true) => GroupKey::Group {
                connection_id,
                group_chat_id: g.to_owned(),
            },
            (None, true) => GroupKey::Connection { connection_id },
            (_, false) => GroupKey::Unordered {
                connection_id,
                delivery_id: id,
            },
        }
    }

    pub fn group_chat_id(&self) -> Option<&str> {
        match self {
            GroupKey::Group { group_chat_id, .. } => Some(group_chat_id),
            _ => None,
        }
    }

    pub(crate) fn to_text(&self) -> String {
        match self {
            GroupKey::Group {
                connection_id,
                group_chat_id,
            } => format!("{connection_id}/{group_chat_id}"),
            GroupKey::Connection { connection_id } => format!("{connection_id}/-"),
            GroupKey::Unordered {
                connection_id,
                delivery_id,
            } => format!("{connection_id}/unordered/{delivery_id}"),
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("group key {text:?}"));
        let (conn, rest) = text.split_once('/').ok_or_else(corrupt)?;
        let connection_id = Uuid::parse_str(conn).map_err(|_| corrupt())?;
        Ok(match rest {
            "-" => GroupKey::Connection { connection_id },
            _ => match rest.strip_prefix("unordered/").map(Uuid::parse_str) {
                Some(Ok(delivery_id)) => GroupKey::Unordered {
                    connection_id,
                    delivery_id,
                },
                _ => GroupKey::Group {
                    connection_id,
                    group_chat_id: rest.to_owned(),
                },
            },
        })
    }
}

impl super::db::Column for GroupKey {
    fn read(row: &super::db::Row, col: &str) -> Result<Self, StoreError> {
        Self::parse(&row.text(col)?)
    }
}

impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

/// When a record was created and last changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timestamps {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The stored, non-secret fields of a connection plus its sealed secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionFields {
    // The seed dialog's fields first, in its order (Name, AppKey, AppSecret, RobotCode,
    // Description), then dtc's own.
    pub name: String,
    pub app_key: Option<String>,
    /// `secrets::seal` of a JSON object of the connection's secrets.
    pub sealed_secrets: String,
    pub robot_code: Option<String>,
    pub description: String,
    pub kind: ConnectionKind,
    pub keywords: Vec<String>,
    pub qps_quota: Option<i32>,
    /// Stream mode: receive the robot's messages (app robots only).
    pub stream: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: Uuid,
    pub fields: ConnectionFields,
    pub times: Timestamps,
}

/// One connection's re-sealed secrets, applied only if the row still holds `old`.
#[derive(Clone, Debug)]
pub struct SealedSecretsUpdate {
    pub id: Uuid,
    pub old: String,
    pub new: String,
}

/// A connection's last test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionCheck {
    pub checked_at: DateTime<Utc>,
    pub ok: bool,
    pub message: String,
    /// DingTalk's code when it refused.
    pub code: Option<String>,
}

/// What the connection list shows beside a connection's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionActivity {
    pub last_check: Option<ConnectionCheck>,
    /// When its newest delivery was accepted.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A robot message received over Stream mode, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub id: Uuid,
    pub connection_id: Uuid,
    /// DingTalk's id of the message: a redelivery carries the same.
    pub msg_id: String,
    pub received_at: DateTime<Utc>,
    pub msgtype: String,
    pub text: Option<String>,
    /// The message as DingTalk sent it, without its session webhook.
    pub message: serde_json::Value,
    pub sender: Sender,
    pub conversation: Conversation,
    /// `None` when DingTalk sent none (or an expiry that cannot be read).
    pub session: Option<SessionWebhook>,
}

/// Where a robot message was said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// DingTalk's id of it (a group's is its openConversationId).
    pub id: String,
    /// A group (else 1:1).
    pub group: bool,
    /// A group's name.
    pub title: Option<String>,
}

impl Conversation {
    /// `group` or `single`, as the conversation list and the API name it.
    pub fn kind(&self) -> &'static str {
        if self.group { "group" } else { "single" }
    }

    /// DingTalk's `conversationType`: `"1"` 1:1, `"2"` group.
    pub fn dingtalk_type(&self) -> &'static str {
        if self.group { "2" } else { "1" }
    }
}

/// Who sent a robot message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sender {
    pub nick: String,
    /// The sender's userId, when DingTalk shows it to the robot.
    pub staff_id: Option<String>,
}

/// A conversation's session webhook: whoever has the URL can post into the conversation until
/// it expires, so it is kept sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionWebhook {
    pub expires_at: DateTime<Utc>,
    /// `secrets::seal` of the URL.
    pub sealed_url: String,
}

/// A conversation a robot has heard from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationRecord {
    /// With the newest title any message gave it.
    pub conversation: Conversation,
    pub messages: i64,
    pub last_seen_at: DateTime<Utc>,
}

/// A connection as pickers and lookups need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionName {
    pub id: Uuid,
    pub name: String,
    pub kind: ConnectionKind,
}

/// A page of the connection list: which ones, by name, from where.
#[derive(Clone, Debug, Default)]
pub struct ConnectionQuery {
    /// Part of a name or description, any case.
    pub search: Option<String>,
    pub offset: u32,
    pub limit: u32,
}

impl ConnectionQuery {
    /// The search as a lower-case LIKE pattern, its wildcards escaped.
    pub(crate) fn pattern(&self) -> Option<String> {
        self.search.as_ref().map(|s| {
            let mut p = String::from("%");
            for c in s.to_lowercase().chars() {
                if matches!(c, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(c);
            }
            p.push('%');
            p
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: Uuid,
    /// sha256 hex of the bearer token; the token itself is never stored.
    pub token_hash: String,
    pub label: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// To the minute; `None` if never used.
    pub last_used_at: Option<DateTime<Utc>>,
}

text_enum! {
    /// What an API token may do. Ordered: each role may do everything the one before it may.
    #[derive(PartialOrd, Ord)]
    Role {
        /// Read only.
        Viewer => "viewer",
        /// Send, run flows, read and retry deliveries; no change to connections, flows or tokens.
        Operator => "operator",
        /// Everything.
        Admin => "admin",
    }
}

/// A JSON document already written out as text, the way the store keeps it. An action's input
/// goes from its typed form to this directly: a `serde_json::Value` in between (built, written
/// out and freed) was a profiled 4 % of a logged sync send.
#[derive(Clone, Debug)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    pub fn of(v: &impl Serialize) -> serde_json::Result<JsonText> {
        serde_json::value::to_raw_value(v).map(JsonText)
    }

    pub fn as_raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The text itself, without a copy.
    pub fn into_string(self) -> String {
        Box::<str>::from(self.0).into_string()
    }

    /// The document as a value (its object keys in order, as a `Value` keeps them).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).expect("JsonText holds valid JSON")
    }
}

impl From<&serde_json::Value> for JsonText {
    fn from(v: &serde_json::Value) -> Self {
        JsonText::of(v).expect("a JSON value always serializes")
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(v: serde_json::Value) -> Self {
        JsonText::from(&v)
    }
}

/// A delivery to accept.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub action: String,
    pub group_key: GroupKey,
    /// The validated action input; must contain no secrets.
    pub input: JsonText,
    pub mode: DeliveryMode,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    /// `Some` inserts it already `in_flight` under this lease (a sync request sends at once but
    /// still holds up later deliveries of its group); `None` inserts it `queued`, due now.
    pub lease: Option<Lease>,
    /// The run step this delivery is, if any.
    pub run: Option<RunLink>,
}

/// Which run, step and item (of a `for_each`) a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RunLink {
    pub run_id: Uuid,
    /// The step's index in the flow.
    pub step: i32,
    /// The item's index (0 without `for_each`).
    pub item: i32,
}

/// A sync request that already ran, for the delivery log.
#[derive(Clone, Debug)]
pub struct FinishedDelivery {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub action: String,
    pub group_key: GroupKey,
    pub input: JsonText,
    /// `Delivered` or `Failed`.
    pub status: DeliveryStatus,
    pub result: Option<JsonText>,
    pub last_error: Option<ErrorBody>,
    pub attempt: AttemptRecord,
}

impl FinishedDelivery {
    /// Whether the delivery row says all its one attempt does (delivered, nothing to report), so
    /// the store reads the attempt off the row instead of writing it beside it.
    pub fn is_its_own_attempt(&self) -> bool {
        self.status == DeliveryStatus::Delivered
            && self.attempt.outcome == AttemptOutcome::Success
            && self.attempt.error.is_none()
    }
}

#[derive(Clone, Debug)]
pub struct Lease {
    pub owner: String,
    pub duration: std::time::Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub seq: i64,
    pub connection_id: Uuid,
    pub action: String,
    pub group_key: GroupKey,
    pub input: serde_json::Value,
    pub status: DeliveryStatus,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub mode: DeliveryMode,
    /// Attempts recorded so far.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure, in the API's error shape.
    pub last_error: Option<ErrorBody>,
    pub result: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    /// Steps already accepted by DingTalk, as the delivery engine saved them
    /// ([`super::Store::save_progress`]); `None` before the first step completed.
    pub progress: Option<serde_json::Value>,
    pub run: Option<RunLink>,
    #[serde(flatten)]
    pub times: Timestamps,
}

/// Result of an insert that may meet an existing delivery with the same idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    New(Delivery),
    /// A delivery with this `(connection_id, idempotency_key)` already existed; nothing was
    /// inserted. Compare its `request_hash` with the new request's.
    Existing(Delivery),
}

impl Inserted {
    pub fn delivery(&self) -> &Delivery {
        match self {
            Inserted::New(d) | Inserted::Existing(d) => d,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Inserted::New(_))
    }
}

/// How one attempt went, as the sender reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    /// Why it failed, in the API's error shape.
    pub error: Option<ErrorBody>,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DeliveryAttempt {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub error: Option<ErrorBody>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// Filter for [`super::Store::list_deliveries`]; every field is optional and they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub connection_id: Option<Uuid>,
    /// Deliveries to this group chat (of any connection, unless `connection_id` is given too).
    pub group_chat_id: Option<String>,
    pub page: LogPage,
}

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

/// Which page of a log (deliveries, runs) to list, newest first: a creation-time range and a
/// cursor.
#[derive(Clone, Debug, Default)]
pub struct LogPage {
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
    /// Page cursor: only entries with a smaller seq.
    pub before_seq: Option<i64>,
    /// Page size; 0 means the default (100), capped at [`MAX_PAGE`].
    pub limit: u32,
}

impl LogPage {
    pub(crate) fn size(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        }
    }

    /// The cursor of the next page, given this page's entries: `None` when it was not full.
    pub(crate) fn next_cursor<T>(&self, entries: &[T], seq: impl Fn(&T) -> i64) -> Option<i64> {
        if entries.len() as u32 == self.size() {
            entries.last().map(seq)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// `Some` when there may be more: pass it as `before_seq`.
    pub next_cursor: Option<i64>,
}

/// Answer of [`super::Store::take_rate_slot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateSlot {
    /// The caller may send at `at` (now or later) and must not send before it.
    Granted { at: DateTime<Utc> },
    /// The next free slot, `at`, is after the caller's deadline; nothing was reserved.
    Denied { at: DateTime<Utc> },
}

/// Timestamps are kept at microsecond precision, PostgreSQL's, so a value read back from either
/// store equals the value written.
pub(crate) fn trunc_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_text() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()).unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in DeliveryMode::ALL {
            assert_eq!(DeliveryMode::parse(m.as_str()).unwrap(), *m);
        }
        for k in ConnectionKind::ALL {
            assert_eq!(ConnectionKind::parse(k.as_str()).unwrap(), *k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(o.as_str()).unwrap(), *o);
        }
        assert!(DeliveryStatus::parse("sent").is_err());
    }

    #[test]
    fn store_operations_only_make_allowed_transitions() {
        for t in [COMPLETE, SCHEDULE_RETRY, FAIL, RELEASE, RETRY_FAILED] {
            assert!(t.from.can_transition_to(t.to), "{t:?}");
        }
    }

    #[test]
    fn finished_deliveries_go_nowhere_but_failed_can_be_retried() {
        use DeliveryStatus::*;
        for to in DeliveryStatus::ALL {
            assert!(!Delivered.can_transition_to(*to));
            assert_eq!(Failed.can_transition_to(*to), *to == Queued);
        }
        assert!(!Queued.can_transition_to(Delivered));
        assert!(Delivered.is_finished() && Failed.is_finished());
        assert!(!Retrying.is_finished());
    }
}
