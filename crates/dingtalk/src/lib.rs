//! `dingtalk`: a typed client for the DingTalk Open API.
//!
//! It covers access tokens (with a per-app cache and single-flight refresh), enterprise-internal
//! app robot messages (group send, read status, recall, 1:1 batch send), media upload, custom
//! webhook robots and Stream mode (receiving robot messages over a WebSocket, replying), and decodes both of DingTalk's error dialects into one classified [`Error`].
//! Base URLs and time are injected, so it runs against the local simulator as well as DingTalk.
//! It knows nothing of connections, storage or queues: those belong to the `connector` crate,
//! and it must never depend on it.
//!
//! A bare `§N` in this crate refers to the repository's `docs/dingtalk-api.md`.

pub mod auth;
pub mod client;
pub mod codes;
pub mod error;
pub mod ids;
mod lean;
pub mod media;
pub mod retry;
pub mod robot;
pub mod stream;
pub mod webhook;

pub use auth::{AppClient, AppCredentials, Clock, TokenCache, TokioClock};
pub use client::{ApiRequest, Client, ClientConfig};
pub use codes::classify;
pub use error::{Dialect, Error, ErrorClass};
pub use ids::*;
pub use media::{MediaType, MediaUpload, UploadedMedia};
pub use retry::{RetryPolicy, Retryable};
pub use robot::{Button, ButtonLayout, Message};
pub use stream::{ChatbotMessage, MessageContent, StreamClient, StreamConfig};
pub use webhook::{At, FeedLink, WebhookButton, WebhookMessage, WebhookPayload, WebhookRobot};
