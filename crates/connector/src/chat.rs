//! DingTalk talking back: for every app-robot connection with Stream mode on, one instance keeps
//! a Stream socket ([`dingtalk::StreamClient`]). Which instance is decided in the store (a lease
//! renewed every few seconds, taken over when its holder stops renewing). Each robot message is
//! recorded durably — with the conversation it came from — before DingTalk is told it arrived,
//! and a redelivery (same `msgId`) is recognised and not handled twice. Messages start the
//! chat flows they match ([`crate::flows::chat`]); a flow's `reply` steps answer through the
//! message's session webhook ([`reply_target`]). The built-in answer, when no flow takes the
//! message: "@robot id" replies with the conversation's id, which DingTalk shows nowhere else.

use std::collections::HashMap;
use std::time::Duration;

use dingtalk::stream::{ChatbotMessage, StreamClient, StreamConfig};
use dingtalk::{AppCredentials, AppKey, AppSecret, WebhookMessage, WebhookPayload};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::actions::{ReplyTarget, ValidatedAction};
use crate::api::AppState;
use crate::connections::{Connection, ConnectionKind, ConnectionSecrets, Connections};
use crate::flows::chat::ChatMessage;
use crate::flows::service::{Flows, TriggerData};
use crate::store::{
    Conversation, InboundMessage, RunStarted, Sender, SessionWebhook, Store, StoreError,
};

/// How long a holder's claim on a socket lasts without renewal; renewed every [`CHECK_EVERY`].
const HOLD_LEASE: Duration = Duration::from_secs(10);
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// One socket this instance runs.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The connection as it was when started: a change restarts the socket.
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// Keeps the sockets of this instance's share of Stream connections until `shutdown`.
pub async fn supervise(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut running: HashMap<Uuid, Running> = HashMap::new();
    let owner = state.instance_id.clone();
    loop {
        if let Err(e) = check(&state, &owner, &mut running).await {
            tracing::warn!(error = %e, "Stream mode: could not check the connections; trying again");
        }
        metrics::gauge!("dtc_stream_sockets").set(running.len() as f64);
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = shutdown.changed() => break,
        }
    }
    for (id, r) in running.drain() {
        stop(r).await;
        if let Err(e) = state.store.release_stream(id, &owner).await {
            tracing::warn!(error = %e, "Stream mode: could not release a socket");
        }
    }
    metrics::gauge!("dtc_stream_sockets").set(0.0);
}

async fn stop(r: Running) {
    let _ = r.stop.send(true);
    if tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .is_err()
    {
        tracing::warn!("Stream mode: a socket did not stop in time");
    }
}

async fn check(
    state: &AppState,
    owner: &str,
    running: &mut HashMap<Uuid, Running>,
) -> Result<(), String> {
    let wanted: Vec<Connection> = state
        .connections
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|c| c.stream && c.kind == ConnectionKind::AppRobot)
        .collect();
    // Sockets no longer wanted (deleted, Stream mode off) stop.
    let gone: Vec<Uuid> = running
        .keys()
        .filter(|id| !wanted.iter().any(|c| c.id == **id))
        .copied()
        .collect();
    for id in gone {
        if let Some(r) = running.remove(&id) {
            stop(r).await;
        }
        let _ = state.store.release_stream(id, owner).await;
    }
    for conn in wanted {
        let held = state
            .store
            .hold_stream(conn.id, owner, HOLD_LEASE)
            .await
            .map_err(|e| e.to_string())?;
        let current = running.get(&conn.id).map(|r| r.updated_at);
        match (held, current) {
            (true, Some(at)) if at == conn.updated_at && !running[&conn.id].task.is_finished() => {}
            (true, _) => {
                if let Some(r) = running.remove(&conn.id) {
                    stop(r).await;
                }
                match start(state, &conn) {
                    Ok(r) => {
                        tracing::info!(connection = %conn.name, "Stream mode: holding the socket");
                        running.insert(conn.id, r);
                    }
                    Err(e) => {
                        tracing::warn!(connection = %conn.name, error = %e, "Stream mode: cannot start")
                    }
                }
            }
            // Another instance holds it (we may have lost it after a pause).
            (false, Some(_)) => {
                if let Some(r) = running.remove(&conn.id) {
                    tracing::info!(connection = %conn.name, "Stream mode: another instance holds the socket now");
                    stop(r).await;
                }
            }
            (false, None) => {}
        }
    }
    Ok(())
}

fn start(state: &AppState, conn: &Connection) -> Result<Running, String> {
    let ConnectionSecrets::AppRobot { app_secret } =
        state.connections.secrets(conn).map_err(|e| e.to_string())?
    else {
        return Err("not an app robot".into());
    };
    let creds = AppCredentials {
        app_key: AppKey::new(conn.app_key.clone().unwrap_or_default()),
        app_secret: AppSecret::new(app_secret.expose_secret()),
    };
    let client = StreamClient::new(state.dingtalk.clone(), creds, StreamConfig::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (state2, conn2) = (state.clone(), conn.clone());
    let task = tokio::spawn(async move {
        let handler = {
            let (state, conn) = (state2.clone(), conn2.clone());
            move |m: ChatbotMessage| {
                let (state, conn) = (state.clone(), conn.clone());
                async move { receive(&state, &conn, m).await }
            }
        };
        if let Err(e) = client.run(handler, stop_rx).await {
            // DingTalk refused the credentials: a configuration problem, reported, not retried
            // in a loop; the supervisor starts it again when the connection changes.
            metrics::counter!("dtc_stream_failures_total").increment(1);
            tracing::error!(connection = %conn2.name, error = %e, "Stream mode stopped: DingTalk refused the connection");
            // Keep the task alive (and so not restarted every check) until stopped.
            std::future::pending::<()>().await;
        }
    });
    Ok(Running {
        stop: stop_tx,
        task,
        updated_at: conn.updated_at,
    })
}

/// How long a chat message's runs are remembered: a redelivery within it starts no second run.
const RUN_DEDUPE_WINDOW: Duration = Duration::from_secs(86_400);
/// A session webhook is not used in its last seconds: the reply could arrive after it closed.
const SESSION_MARGIN: chrono::Duration = chrono::Duration::seconds(10);

fn session_context(connection: Uuid) -> String {
    format!("connection:{connection}:session-webhook")
}

/// One robot message: recorded (with its conversation) before it is acknowledged, then the
/// chat flows it matches are started. An `Err` leaves it unacknowledged, so DingTalk sends it
/// again: the record is not repeated (same `msgId`) and neither are the runs (their dedupe key
/// is the `msgId`), so a crash between the two loses nothing and doubles nothing.
async fn receive(state: &AppState, conn: &Connection, m: ChatbotMessage) -> Result<(), String> {
    let keyring = state.connections.keyring();
    let expires_at = chrono::DateTime::from_timestamp_millis(m.session_webhook_expired_time);
    let session = match expires_at {
        Some(expires_at) if !m.session_webhook.is_empty() => Some(SessionWebhook {
            sealed_url: crate::secrets::seal(
                &keyring,
                &session_context(conn.id),
                &m.session_webhook,
            )
            .map_err(|e| format!("could not seal the session webhook: {e}"))?,
            expires_at,
        }),
        _ => None,
    };
    let mut message = serde_json::to_value(&m).map_err(|e| e.to_string())?;
    if let Some(fields) = message.as_object_mut() {
        fields.remove("sessionWebhook");
    }
    let record = InboundMessage {
        // Time-ordered, like delivery ids: appended to the id index, not scattered over it.
        id: Uuid::now_v7(),
        connection_id: conn.id,
        msg_id: m.msg_id.clone(),
        received_at: chrono::Utc::now(),
        msgtype: m.msgtype.clone(),
        text: m.text(),
        message,
        sender: Sender {
            nick: m.sender_nick.clone(),
            staff_id: m.sender_staff_id.clone().filter(|s| !s.is_empty()),
        },
        conversation: Conversation {
            id: m.conversation_id.clone(),
            group: m.is_group(),
            title: m.conversation_title.clone(),
        },
        session,
    };
    let fresh = state
        .store
        .record_inbound(&record)
        .await
        .map_err(|e| format!("could not record the message: {e}"))?;
    let outcome = if fresh { "recorded" } else { "duplicate" };
    metrics::counter!("dtc_inbound_messages_total", "outcome" => outcome).increment(1);
    if fresh {
        tracing::info!(
            connection = %conn.name,
            conversation = %m.conversation_id,
            msgtype = %m.msgtype,
            "robot message received"
        );
    }
    // Also for a redelivery: the first delivery may have been recorded and not acknowledged
    // because starting its runs failed.
    let started = start_flows(state, conn, &record).await?;
    if fresh
        && started == 0
        && record
            .text
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("id"))
    {
        answer_id(state, &m).await;
    }
    Ok(())
}

/// Starts every chat flow of `conn` the message matches; how many match.
async fn start_flows(
    state: &AppState,
    conn: &Connection,
    record: &InboundMessage,
) -> Result<usize, String> {
    let message = ChatMessage {
        connection: conn.name.clone(),
        msg_id: record.msg_id.clone(),
        msgtype: record.msgtype.clone(),
        text: record.text.clone(),
        conversation: record.conversation.clone(),
        sender: record.sender.clone(),
    };
    let flows = state
        .store
        .list_flows()
        .await
        .map_err(|e| format!("could not read the flows: {e}"))?;
    let mut matched = 0;
    for flow in flows.iter().filter(|f| f.fields.trigger_kind == "chat") {
        let Ok(doc) = Flows::document(flow) else {
            tracing::warn!(flow = %flow.fields.name, "a stored chat flow cannot be read");
            continue;
        };
        let Some(data) = crate::flows::chat::matches(&doc.trigger, &message) else {
            continue;
        };
        matched += 1;
        let trigger = TriggerData {
            kind: "chat",
            body: data,
            headers: serde_json::json!({}),
            query: serde_json::json!({}),
            fired_at: record.received_at,
        };
        let dedupe = Some((format!("chat:{}", record.msg_id), RUN_DEDUPE_WINDOW));
        match state.flows.start(flow, trigger, dedupe, None).await {
            Ok(RunStarted::Started(run)) => {
                tracing::info!(flow = %flow.fields.name, run_id = %run.id, "a chat message started a run");
            }
            Ok(_) => {}
            Err(e) => return Err(format!("could not start flow {}: {e}", flow.fields.name)),
        }
    }
    if matched > 0 {
        state.wake_engine();
    }
    Ok(matched)
}

/// Where a `reply` step of `action` goes: the received message's conversation, and its session
/// webhook while the session lasts (`now` is compared with DingTalk's expiry). `None` when the
/// action replies to nothing, or to a message this connection never received.
pub async fn reply_target(
    store: &dyn Store,
    connections: &Connections,
    connection_id: Uuid,
    action: &ValidatedAction,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<ReplyTarget>, StoreError> {
    let Some(msg_id) = action.steps().iter().find_map(|s| s.reply_to()) else {
        return Ok(None);
    };
    let Some(m) = store.inbound_message(connection_id, msg_id).await? else {
        return Ok(None);
    };
    let open = m.session.filter(|s| now + SESSION_MARGIN < s.expires_at);
    let session_webhook = match open {
        Some(session) => {
            match crate::secrets::open(
                &connections.keyring(),
                &session_context(connection_id),
                &session.sealed_url,
            ) {
                Ok(url) => Some(url),
                // Sealed under a key no longer held: answer as a robot message instead.
                Err(e) => {
                    tracing::warn!(error = %e, "a session webhook cannot be opened");
                    None
                }
            }
        }
        None => None,
    };
    Ok(Some(ReplyTarget {
        session_webhook,
        group: m.conversation.group,
        conversation_id: m.conversation.id,
        sender_staff_id: m.sender.staff_id,
    }))
}

/// "@robot id": the conversation's id, ready to paste (a group's is its openConversationId).
async fn answer_id(state: &AppState, m: &ChatbotMessage) {
    let text = if m.is_group() {
        format!(
            "This group's openConversationId (group_chat_id):\n{}",
            m.conversation_id
        )
    } else {
        format!(
            "This 1:1 conversation's id: {}\nYour userId: {}",
            m.conversation_id,
            m.sender_staff_id
                .as_deref()
                .unwrap_or("(not shown to this robot)")
        )
    };
    let reply = WebhookMessage::new(WebhookPayload::Text { content: text });
    if let Err(e) = m.reply(&state.dingtalk, &reply).await {
        metrics::counter!("dtc_stream_reply_failures_total").increment(1);
        tracing::warn!(error = %e, "could not answer \"id\"");
    }
}

/// The conversations a connection's robot has heard from (`GET …/conversations`).
pub async fn conversations(
    state: &AppState,
    connection: &Connection,
) -> Result<Vec<crate::store::ConversationRecord>, crate::store::StoreError> {
    state.store.list_conversations(connection.id).await
}
