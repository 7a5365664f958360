//! What each action answers. Rust types so the catalog's output schemas come from the same code
//! that builds the answers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Step, StepResult};

/// One message DingTalk accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SentPart {
    /// Key to query the read status of the message or to recall it.
    pub process_query_key: String,
    /// The DingTalk message template used, e.g. `sampleText`.
    pub msg_key: String,
}

/// Answer of a group send (`send_text`, `send_markdown`, `send_link`, `send_image`,
/// `send_file`, `send_action_card`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendOutput {
    /// Key of the (first) message sent.
    pub process_query_key: String,
    /// The DingTalk message template used, e.g. `sampleText`.
    pub msg_key: String,
    /// media_id of the file uploaded before sending, if one was.
    pub media_id: Option<String>,
    /// Every part, in order, when the content was split into more than one message.
    pub parts: Option<Vec<SentPart>>,
}

/// How a reply went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyRoute {
    /// Through the received message's session webhook.
    SessionWebhook,
    /// The session had expired: as a robot message to the group.
    GroupSend,
    /// The session had expired: as a robot message to the sender (1:1).
    OneToOne,
}

/// Answer of `reply`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReplyOutput {
    /// How the reply was sent.
    pub via: ReplyRoute,
    /// The conversation it went to.
    pub conversation_id: String,
    /// Set when it went as a robot message (read status, recall).
    pub process_query_key: Option<String>,
}

/// Answer of `upload_media`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UploadOutput {
    /// The id to send the media with (`@…`).
    pub media_id: String,
    /// `image`, `voice`, `video` or `file`.
    pub media_type: String,
    /// Upload time, milliseconds since the epoch.
    pub created_at: i64,
}

/// Answer of `query_read_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReadStatusOutput {
    /// `SUCCESS`, `RECALLED` or `PROCESSING`.
    pub send_status: String,
    /// userIds of the people who read the message (this page).
    pub read_user_ids: Vec<String>,
    /// Pass as `next_token` to get the next page.
    #[serde(default)]
    pub next_token: Option<String>,
    /// Whether there is a next page.
    pub has_more: bool,
}

/// Answer of `recall_messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecallOutput {
    /// Keys of the messages recalled.
    pub recalled: Vec<String>,
    /// Keys that could not be recalled, with DingTalk's reason.
    pub failed: BTreeMap<String, String>,
}

/// Answer of `send_to_users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendToUsersOutput {
    /// Key to query the read status or recall the message.
    pub process_query_key: String,
    /// The DingTalk message template used.
    pub msg_key: String,
    /// Recipients DingTalk does not know.
    pub invalid_user_ids: Vec<String>,
    /// Recipients DingTalk skipped for flow control.
    pub flow_controlled_user_ids: Vec<String>,
}

/// Answer of `webhook_send`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookSendOutput {
    /// The message type sent.
    pub msg_type: String,
    /// How many messages were sent, when the content was split into more than one.
    pub parts: Option<usize>,
}

/// An action's answer, made from the results of its planned steps; `None` if they do not match
/// the plan.
pub trait FromResults: Sized {
    fn from_results(steps: &[Step], results: &[StepResult]) -> Option<Self>;
}

/// Answers that are the one result of their kind.
macro_rules! the_result {
    ($($output:ty => $variant:ident),+ $(,)?) => {
        $(impl FromResults for $output {
            fn from_results(_: &[Step], results: &[StepResult]) -> Option<Self> {
                results.iter().find_map(|r| match r {
                    StepResult::$variant(o) => Some(o.clone()),
                    _ => None,
                })
            }
        })+
    };
}

the_result! {
    UploadOutput => Uploaded,
    ReadStatusOutput => ReadStatus,
    RecallOutput => Recalled,
    SendToUsersOutput => SentToUsers,
}

impl FromResults for SendOutput {
    /// The output of a group send: every planned part accepted, and the upload before them if
    /// there was one.
    fn from_results(steps: &[Step], results: &[StepResult]) -> Option<Self> {
        let parts: Vec<SentPart> = results
            .iter()
            .filter_map(|r| match r {
                StepResult::Sent(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        if parts.len() != steps.iter().filter(|s| s.is_send()).count() {
            return None;
        }
        let first = parts.first()?.clone();
        Some(SendOutput {
            process_query_key: first.process_query_key,
            msg_key: first.msg_key,
            media_id: UploadOutput::from_results(steps, results).map(|u| u.media_id),
            parts: (parts.len() > 1).then_some(parts),
        })
    }
}
