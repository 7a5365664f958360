//! Shared simulator state behind one mutex. The lock is only ever held for short,
//! synchronous bookkeeping, never across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::fixture::{AppFixture, Fixture, Limits};
use crate::journal::Journal;
use crate::model::{FaultKind, FaultSpec, ReceivedMessage, RouteName, Stats};

/// Milliseconds in the sliding windows used for app QPS and webhook per-minute limits.
const SECOND_MS: i64 = 1000;
const MINUTE_MS: i64 = 60_000;
/// Read status and recall work for 24 hours after a send (docs/dingtalk-api.md §2.5, §2.6).
pub(crate) const QUERY_KEY_LIFETIME_MS: i64 = 24 * 3600 * 1000;

pub(crate) type Sim = Arc<SimState>;

pub(crate) struct SimState {
    pub fixture: Fixture,
    /// Stream mode: tickets, sockets, unacknowledged messages, reply sessions.
    pub stream: crate::stream::Gateway,
    /// Added to the system time; moved forward by `advance_clock` so tests never sleep.
    clock_offset_ms: AtomicI64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub limits: Limits,
    /// token → (app_key, expiry in sim-clock ms; None = never).
    tokens: HashMap<String, (String, Option<i64>)>,
    /// app_key → its current token, so a repeated request returns the same one.
    app_token: HashMap<String, String>,
    pub messages: Vec<ReceivedMessage>,
    next_message_id: u64,
    pub stats: Stats,
    qps: HashMap<(String, RouteName), RateWindow>,
    pub webhooks: HashMap<String, WebhookState>,
    faults: Vec<ActiveFault>,
    pub sends: HashMap<String, SendRecord>,
    pub uploads: Vec<Upload>,
    /// Where accepted messages are kept across restarts, if anywhere.
    journal: Option<Journal>,
}

#[derive(Default)]
struct RateWindow {
    /// Every authenticated request, for the peak statistic.
    all: VecDeque<i64>,
    /// Requests that were not throttled; these consume the quota.
    passed: VecDeque<i64>,
}

#[derive(Default)]
pub(crate) struct WebhookState {
    /// Sends that passed token and signature checks (peak statistic).
    pub all: VecDeque<i64>,
    /// Accepted messages in the last minute (the quota).
    pub accepted: VecDeque<i64>,
    pub locked_until_ms: Option<i64>,
    pub seen_uuids: HashSet<String>,
}

struct ActiveFault {
    spec: FaultSpec,
    remaining: Option<u32>,
}

/// What a `processQueryKey` refers to.
pub(crate) struct SendRecord {
    pub robot_code: String,
    pub sent_at_ms: i64,
    pub message_id: u64,
    pub target: SendTarget,
    pub recalled: bool,
}

pub(crate) enum SendTarget {
    Group(String),
    /// Valid recipients of a 1:1 batch send.
    Users(Vec<String>),
}

pub(crate) struct Upload {
    pub media_id: String,
    pub file_name: String,
    pub media_type: String,
    pub size: usize,
    pub content_type: String,
    /// Kept for small images only, so the chat page can show them.
    pub bytes: Option<Bytes>,
}

/// A fault chosen for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultHit {
    pub kind: FaultKind,
    pub delay_ms: u64,
}

impl SimState {
    /// A simulator whose chat is kept in `journal` (and starts with what it holds).
    pub fn with_journal(fixture: Fixture, journal: Option<(Journal, Vec<ReceivedMessage>)>) -> Sim {
        let limits = fixture.limits.clone();
        let (journal, messages) = match journal {
            Some((j, m)) => (Some(j), m),
            None => (None, Vec::new()),
        };
        let next_message_id = messages.iter().map(|m| m.id).max().unwrap_or(0);
        Arc::new(SimState {
            fixture,
            stream: crate::stream::Gateway::default(),
            clock_offset_ms: AtomicI64::new(0),
            inner: Mutex::new(Inner {
                limits,
                messages,
                next_message_id,
                journal,
                ..Inner::default()
            }),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a simulator bug; keep serving regardless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.clock_offset_ms.load(Ordering::SeqCst)
    }

    pub fn now_rfc3339(&self) -> String {
        ms_to_rfc3339(self.now_ms())
    }

    pub fn advance_clock(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        self.clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn app_by_key(&self, app_key: &str) -> Option<&AppFixture> {
        self.fixture.apps.iter().find(|a| a.app_key == app_key)
    }

    pub fn app_by_robot(&self, robot_code: &str) -> Option<&AppFixture> {
        self.fixture
            .apps
            .iter()
            .find(|a| a.robot_code == robot_code)
    }

    /// True when the conversation id is known anywhere in the world (any app or webhook robot).
    pub fn group_exists(&self, ocid: &str) -> bool {
        self.fixture
            .apps
            .iter()
            .any(|a| a.groups.iter().any(|g| g.open_conversation_id == ocid))
            || self
                .fixture
                .webhook_robots
                .iter()
                .any(|w| w.open_conversation_id == ocid)
    }

    /// Returns the app's token: the current one (renewed) while valid, a fresh one otherwise.
    pub fn issue_token(&self, app_key: &str) -> (String, u64) {
        let now = self.now_ms();
        let mut inner = self.lock();
        let ttl = inner.limits.token_ttl_secs;
        let expiry = (ttl > 0).then(|| now + (ttl as i64) * 1000);
        let reported = if ttl > 0 { ttl } else { 7200 };
        if let Some(current) = inner.app_token.get(app_key).cloned() {
            if let Some(entry) = inner.tokens.get_mut(&current)
                && entry.1.is_none_or(|exp| exp > now)
            {
                entry.1 = expiry;
                return (current, reported);
            }
            inner.tokens.remove(&current);
        }
        let token = random_hex(32);
        inner
            .tokens
            .insert(token.clone(), (app_key.to_string(), expiry));
        inner.app_token.insert(app_key.to_string(), token.clone());
        (token, reported)
    }

    /// The app a token belongs to, if it is known and not expired.
    pub fn token_app(&self, token: &str) -> Option<String> {
        let now = self.now_ms();
        let inner = self.lock();
        match inner.tokens.get(token) {
            Some((app, exp)) if exp.is_none_or(|e| e > now) => Some(app.clone()),
            _ => None,
        }
    }

    /// Records an authenticated request and says whether it fits the app's QPS for this API.
    pub fn admit_app_request(&self, app_key: &str, route: RouteName) -> bool {
        let now = self.now_ms();
        let mut inner = self.lock();
        let qps = inner.limits.app_api_qps;
        let window = inner.qps.entry((app_key.to_string(), route)).or_default();
        trim(&mut window.all, now - SECOND_MS);
        trim(&mut window.passed, now - SECOND_MS);
        window.all.push_back(now);
        let seen = window.all.len() as u64;
        let admitted = qps == 0 || window.passed.len() < qps as usize;
        if admitted {
            window.passed.push_back(now);
        }
        let key = format!("{app_key} {}", route.as_str());
        let peak = inner.stats.peak_qps.entry(key).or_insert(0);
        *peak = (*peak).max(seen);
        if !admitted {
            inner.stats.throttled += 1;
        }
        admitted
    }

    /// Picks the fault (if any) that applies to this request, consuming a counted one.
    pub fn take_fault(&self, route: RouteName) -> Option<FaultHit> {
        let mut inner = self.lock();
        let mut hit = None;
        let mut rng = rand::rng();
        for f in inner.faults.iter_mut().filter(|f| f.spec.route == route) {
            let fires = match (f.spec.probability, f.remaining.as_mut()) {
                (Some(p), _) => rng.random_bool(p.clamp(0.0, 1.0)),
                (None, Some(n)) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            };
            if fires {
                hit = Some(FaultHit {
                    kind: f.spec.kind,
                    delay_ms: f.spec.delay_ms.unwrap_or(0),
                });
                break;
            }
        }
        inner.faults.retain(|f| f.remaining != Some(0));
        if hit.is_some_and(|h| h.kind != FaultKind::Delay) {
            inner.stats.faulted += 1;
        }
        hit
    }

    pub fn add_fault(&self, spec: FaultSpec) {
        let remaining = if spec.probability.is_some() {
            None
        } else {
            Some(spec.count.unwrap_or(1))
        };
        self.lock().faults.push(ActiveFault { spec, remaining });
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn faults(&self) -> Vec<FaultSpec> {
        self.lock()
            .faults
            .iter()
            .map(|f| {
                let mut spec = f.spec.clone();
                if f.remaining.is_some() {
                    spec.count = f.remaining;
                }
                spec
            })
            .collect()
    }

    pub fn record_rejection(&self, code: &str) {
        *self
            .lock()
            .stats
            .rejected
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    pub fn count_token_request(&self) {
        self.lock().stats.token_requests += 1;
    }
}

impl Inner {
    /// Stores an accepted message and returns its id.
    pub fn push_message(&mut self, mut msg: ReceivedMessage) -> u64 {
        self.next_message_id += 1;
        msg.id = self.next_message_id;
        self.stats.accepted += 1;
        if let Some(j) = &mut self.journal {
            j.message(&msg);
        }
        self.messages.push(msg);
        self.next_message_id
    }

    pub fn mark_recalled(&mut self, message_id: u64) {
        if let Some(m) = self.messages.iter_mut().find(|m| m.id == message_id) {
            m.recalled = true;
            if let Some(j) = &mut self.journal {
                j.recalled(message_id);
            }
        }
    }

    pub fn clear_messages(&mut self) {
        self.messages.clear();
        if let Some(j) = &mut self.journal {
            j.clear();
        }
    }
}

/// Drops timestamps at or before `cutoff`, leaving the half-open window (cutoff, now].
pub(crate) fn trim(q: &mut VecDeque<i64>, cutoff: i64) {
    while q.front().is_some_and(|&t| t <= cutoff) {
        q.pop_front();
    }
}

pub(crate) fn minute_ago(now: i64) -> i64 {
    now - MINUTE_MS
}

pub(crate) fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn random_hex(len: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| HEX[rng.random_range(0..16)] as char)
        .collect()
}

/// New-API request id, shaped like `01A08FE7-68C3-7BBD-B223-447768EA4B29`.
pub(crate) fn request_id() -> String {
    let h = random_hex(32).to_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A `processQueryKey`: 32 random bytes in standard base64 (44 chars, `=` padded, may hold `+`/`/`).
pub(crate) fn process_query_key() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A media id shaped like DingTalk's `@lADO…`.
pub(crate) fn media_id() -> String {
    use base64::Engine;
    let bytes: [u8; 12] = rand::rng().random();
    format!(
        "@lADO{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}
