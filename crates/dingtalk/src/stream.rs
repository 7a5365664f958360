//! Stream mode (docs/dingtalk-stream.md): how an app receives its robot's messages without a
//! public callback URL. [`StreamClient::run`] opens a connection (`POST
//! /v1.0/gateway/connections/open`, then a WebSocket at `endpoint?ticket=…`), answers SYSTEM
//! pings, watches for a dead socket (its own WebSocket pings; silence), reconnects with backoff
//! and a fresh ticket, moves to a new socket on `disconnect` while the old one finishes what it
//! holds, decodes CALLBACK frames into [`ChatbotMessage`]s and acknowledges each one only after
//! the handler succeeded (a message not acknowledged is redelivered by DingTalk). Replies go
//! through the message's session webhook ([`ChatbotMessage::reply`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::auth::AppCredentials;
use crate::client::{Client, decode_old};
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::webhook::WebhookMessage;

/// The robot message topic.
pub const BOT_MESSAGE_TOPIC: &str = "/v1.0/im/bot/messages/get";

/// How the client keeps its socket honest.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// A WebSocket ping after this long without a frame; the socket is dead if nothing at all
    /// arrives within `dead_after` of the last frame.
    pub ping_after: Duration,
    pub dead_after: Duration,
    /// Reconnection backoff (capped exponential with full jitter), reset once connected.
    pub backoff: RetryPolicy,
    /// How long an old socket may finish its handlers after `disconnect` (DingTalk closes it
    /// 10 s after sending `disconnect`).
    pub drain: Duration,
    /// The largest frame taken. A robot message is a few kilobytes; a bigger frame ends the
    /// socket (logged) and a fresh one is opened, rather than buffering without bound.
    pub max_frame_bytes: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            ping_after: Duration::from_secs(30),
            dead_after: Duration::from_secs(90),
            backoff: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(60),
            },
            drain: Duration::from_secs(10),
            max_frame_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A robot message as DingTalk delivers it (§3). Unknown fields are ignored; what a message
/// kind carries is in [`ChatbotMessage::content`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatbotMessage {
    pub msg_id: String,
    /// The group's `openConversationId` in a group; the 1:1 conversation's id otherwise.
    pub conversation_id: String,
    /// `"1"` 1:1, `"2"` group.
    pub conversation_type: String,
    #[serde(default)]
    pub conversation_title: Option<String>,
    #[serde(default)]
    pub sender_nick: String,
    #[serde(default)]
    pub sender_id: String,
    /// The sender's userId in the organisation; empty for outsiders.
    #[serde(default)]
    pub sender_staff_id: Option<String>,
    #[serde(default)]
    pub sender_corp_id: Option<String>,
    #[serde(default)]
    pub chatbot_user_id: Option<String>,
    #[serde(default)]
    pub robot_code: Option<String>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    #[serde(default)]
    pub is_in_at_list: Option<bool>,
    #[serde(default)]
    pub at_users: Vec<AtUser>,
    pub session_webhook: String,
    /// Milliseconds since the epoch.
    pub session_webhook_expired_time: i64,
    pub create_at: i64,
    pub msgtype: String,
    #[serde(default)]
    pub text: Option<TextContent>,
    /// Pictures, rich text, files, audio and video carry `content`.
    #[serde(default)]
    pub content: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtUser {
    #[serde(default)]
    pub dingtalk_id: Option<String>,
    #[serde(default)]
    pub staff_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextContent {
    pub content: String,
}

/// What a message carries, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    Text(String),
    Picture {
        download_code: String,
    },
    /// Text pieces and pictures, in order.
    RichText(Vec<RichTextPart>),
    File {
        download_code: String,
        file_name: String,
    },
    Audio {
        download_code: String,
        recognition: Option<String>,
    },
    Video {
        download_code: String,
    },
    /// A kind this client does not model; the raw `content`.
    Other(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RichTextPart {
    Text(String),
    Picture { download_code: String },
}

impl ChatbotMessage {
    pub fn is_group(&self) -> bool {
        self.conversation_type == "2"
    }

    /// The text, trimmed (DingTalk leaves a space where the @-mention was); pieces of rich text
    /// joined; `None` for other kinds.
    pub fn text(&self) -> Option<String> {
        match self.content_kind() {
            MessageContent::Text(t) => Some(t.trim().to_owned()),
            MessageContent::RichText(parts) => Some(
                parts
                    .iter()
                    .filter_map(|p| match p {
                        RichTextPart::Text(t) => Some(t.as_str()),
                        RichTextPart::Picture { .. } => None,
                    })
                    .collect::<Vec<_>>()
                    .join("")
                    .trim()
                    .to_owned(),
            ),
            _ => None,
        }
    }

    pub fn content_kind(&self) -> MessageContent {
        let c = self.content.clone().unwrap_or(Value::Null);
        let s = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match self.msgtype.as_str() {
            "text" => MessageContent::Text(
                self.text
                    .as_ref()
                    .map(|t| t.content.clone())
                    .unwrap_or_default(),
            ),
            "picture" => MessageContent::Picture {
                download_code: s("downloadCode"),
            },
            "richText" => MessageContent::RichText(
                c.get("richText")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| match p.get("text").and_then(Value::as_str) {
                        Some(t) => RichTextPart::Text(t.to_owned()),
                        None => RichTextPart::Picture {
                            download_code: p
                                .get("downloadCode")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        },
                    })
                    .collect(),
            ),
            "file" => MessageContent::File {
                download_code: s("downloadCode"),
                file_name: s("fileName"),
            },
            "audio" => MessageContent::Audio {
                download_code: s("downloadCode"),
                recognition: c
                    .get("recognition")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            "video" => MessageContent::Video {
                download_code: s("downloadCode"),
            },
            _ => MessageContent::Other(c),
        }
    }

    /// Whether the session webhook still takes replies at `now_ms`.
    pub fn can_reply(&self, now_ms: i64) -> bool {
        now_ms < self.session_webhook_expired_time
    }

    /// Replies into the conversation through the message's session webhook (text, markdown,
    /// link, actionCard or feedCard; no token needed). DingTalk's refusal is an [`Error`].
    pub async fn reply(&self, client: &Client, message: &WebhookMessage) -> Result<(), Error> {
        send_by_session(client, &self.session_webhook, message).await
    }
}

/// Posts `message` to a session webhook (a received message's `sessionWebhook`): the reply
/// lands in that conversation. Once the session has expired DingTalk refuses it with a
/// [`crate::ErrorClass::CredentialsRejected`] error.
pub async fn send_by_session(
    client: &Client,
    session_webhook: &str,
    message: &WebhookMessage,
) -> Result<(), Error> {
    const ROUTE: &str = "robot.send_by_session";
    let url = url::Url::parse(session_webhook)
        .map_err(|e| Error::invalid_input("sessionWebhook", e.to_string()))?;
    let resp = client
        .http()
        .post(url)
        .header("content-type", "application/json;charset=utf-8")
        .body(message.to_body()?)
        .send()
        .await
        .map_err(|e| Error::transport(ROUTE, e))?;
    let _: Value = decode_old(ROUTE, resp).await?;
    Ok(())
}

/// `POST /v1.0/robot/messageFiles/download`: a received file's download URL.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFileDownload {
    pub robot_code: String,
    pub download_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFileUrl {
    pub download_url: String,
}

impl crate::client::ApiRequest for MessageFileDownload {
    type Response = MessageFileUrl;
    const METHOD: reqwest::Method = reqwest::Method::POST;
    const PATH: &'static str = "/v1.0/robot/messageFiles/download";
    const ROUTE: &'static str = "robot.message_file_download";
}

/// What the handler said about a message: acknowledge it, or leave it for redelivery.
pub type HandlerResult = Result<(), String>;

/// One Stream-mode connection of an app, kept alive until `shutdown` turns true.
pub struct StreamClient {
    client: Client,
    creds: AppCredentials,
    config: StreamConfig,
    /// Connected or not (for health and tests).
    state: watch::Sender<bool>,
}

#[derive(Deserialize)]
struct Opened {
    endpoint: String,
    ticket: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    subscriptions: Vec<Value>,
    ua: &'a str,
    local_ip: &'a str,
}

/// Why a socket ended.
enum Ended {
    /// DingTalk said `disconnect`: connect again at once.
    Disconnect,
    /// Closed, dead or failed: connect again after a backoff.
    Lost(String),
    Shutdown,
}

impl StreamClient {
    pub fn new(client: Client, creds: AppCredentials, config: StreamConfig) -> Self {
        StreamClient {
            client,
            creds,
            config,
            state: watch::Sender::new(false),
        }
    }

    /// Whether a socket is open, as it changes.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.state.subscribe()
    }

    async fn open(&self) -> Result<Opened, Error> {
        const ROUTE: &str = "stream.open";
        let body = OpenRequest {
            client_id: self.creds.app_key.as_str(),
            client_secret: self.creds.app_secret.expose(),
            subscriptions: vec![json!({"type": "CALLBACK", "topic": BOT_MESSAGE_TOPIC})],
            ua: concat!("dtc-dingtalk/", env!("CARGO_PKG_VERSION")),
            local_ip: "",
        };
        let resp = self
            .client
            .http()
            .post(self.client.api_url("/v1.0/gateway/connections/open"))
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::transport(ROUTE, e))?;
        let opened: Opened = crate::client::decode_new(ROUTE, resp).await?;
        if opened.endpoint.is_empty() || opened.ticket.is_empty() {
            return Err(Error::invalid_input(
                "endpoint",
                "DingTalk gave no endpoint or ticket",
            ));
        }
        Ok(opened)
    }

    /// Runs until `shutdown` is true: every robot message goes to `handler`, and is
    /// acknowledged when it returns `Ok`. Credentials DingTalk refuses end the run with the
    /// error; anything else is retried.
    pub async fn run<H, Fut>(
        &self,
        handler: H,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), Error>
    where
        H: Fn(ChatbotMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let ended = match self.open().await {
                Ok(opened) => {
                    let url = format!(
                        "{}?ticket={}",
                        opened.endpoint,
                        percent_encoding::utf8_percent_encode(
                            &opened.ticket,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    );
                    let limits =
                        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                            .max_message_size(Some(self.config.max_frame_bytes))
                            .max_frame_size(Some(self.config.max_frame_bytes));
                    match tokio_tungstenite::connect_async_with_config(
                        url.as_str(),
                        Some(limits),
                        false,
                    )
                    .await
                    {
                        Ok((socket, _)) => {
                            failures = 0;
                            self.state.send_replace(true);
                            let ended = self.serve(socket, handler.clone(), &mut shutdown).await;
                            self.state.send_replace(false);
                            ended
                        }
                        Err(e) => Ended::Lost(format!("WebSocket: {e}")),
                    }
                }
                Err(e) if e.class() == crate::ErrorClass::CredentialsRejected => return Err(e),
                Err(e) => Ended::Lost(e.to_string()),
            };
            match ended {
                Ended::Shutdown => return Ok(()),
                Ended::Disconnect => {
                    tracing::info!("DingTalk asked to reconnect (disconnect)");
                }
                Ended::Lost(why) => {
                    failures += 1;
                    let wait = self.config.backoff.delay(failures, None);
                    tracing::warn!(error = %why, wait_ms = wait.as_millis() as u64, "stream connection lost; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }

    /// One socket's life.
    async fn serve<H, Fut, S>(
        &self,
        socket: S,
        handler: Arc<H>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended
    where
        H: Fn(ChatbotMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
        S: futures::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>>
            + futures::Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error>
            + Send
            + Unpin
            + 'static,
    {
        let (mut sink, mut stream) = socket.split();
        // Acknowledgements come from handler tasks; one writer owns the sink. It outlives this
        // function after `disconnect` so in-flight handlers can still acknowledge.
        let (out, mut outbox) = mpsc::unbounded_channel::<WsMessage>();
        let drain = self.config.drain;
        let writer = tokio::spawn(async move {
            while let Some(m) = outbox.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let mut last_frame = tokio::time::Instant::now();
        let mut pinged = false;
        let ended = loop {
            let idle = last_frame.elapsed();
            let wake = if pinged {
                self.config.dead_after.saturating_sub(idle)
            } else {
                self.config.ping_after.saturating_sub(idle)
            };
            let frame = tokio::select! {
                f = stream.next() => f,
                _ = tokio::time::sleep(wake) => {
                    if pinged || idle >= self.config.dead_after {
                        break Ended::Lost("no frame from DingTalk: the socket is dead".into());
                    }
                    pinged = true;
                    let _ = out.send(WsMessage::Ping(Vec::new().into()));
                    continue;
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break Ended::Shutdown; }
                    continue;
                }
            };
            last_frame = tokio::time::Instant::now();
            pinged = false;
            let text = match frame {
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(WsMessage::Close(_))) | None => break Ended::Lost("closed".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Ended::Lost(e.to_string()),
            };
            let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                tracing::warn!("a frame that is not JSON was ignored");
                continue;
            };
            let headers = &frame["headers"];
            let message_id = headers["messageId"].as_str().unwrap_or_default().to_owned();
            let topic = headers["topic"].as_str().unwrap_or_default();
            let data = frame["data"].as_str().unwrap_or_default();
            match frame["type"].as_str() {
                Some("SYSTEM") if topic == "ping" => {
                    let _ = out.send(ack(&message_id, data));
                }
                Some("SYSTEM") if topic == "disconnect" => break Ended::Disconnect,
                Some("CALLBACK") if topic == BOT_MESSAGE_TOPIC => {
                    let message: ChatbotMessage = match serde_json::from_str(data) {
                        Ok(m) => m,
                        Err(e) => {
                            // Unreadable: acknowledging it would lose it silently; leave it.
                            tracing::warn!(error = %e, message_id, "a robot message could not be read");
                            continue;
                        }
                    };
                    let (handler, out) = (handler.clone(), out.clone());
                    tokio::spawn(async move {
                        match handler(message).await {
                            Ok(()) => {
                                let _ = out.send(ack(&message_id, r#"{"response":null}"#));
                            }
                            Err(why) => {
                                tracing::warn!(error = %why, message_id, "robot message not handled; DingTalk will send it again");
                            }
                        }
                    });
                }
                // Other topics and kinds: DingTalk's "not supported" (§2.3).
                _ => {
                    let reply = json!({"code": 404, "headers": {"messageId": message_id, "contentType": "application/json"},
                                       "message": "not supported", "data": ""});
                    let _ = out.send(WsMessage::Text(reply.to_string().into()));
                }
            }
        };
        // The writer ends once every handler still holding `out` has acknowledged (after
        // `disconnect` the old socket stays open for that), or when the socket is gone; it is
        // not waited for beyond the drain time.
        drop(out);
        tokio::spawn(async move {
            if tokio::time::timeout(drain, writer).await.is_err() {
                tracing::debug!("an old stream socket closed with handlers still running");
            }
        });
        ended
    }
}

fn ack(message_id: &str, data: &str) -> WsMessage {
    let body = json!({
        "code": 200,
        "headers": {"messageId": message_id, "contentType": "application/json"},
        "message": "OK",
        "data": data,
    });
    WsMessage::Text(body.to_string().into())
}
