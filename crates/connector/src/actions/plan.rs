//! A validated action as a list of planned steps. Serializable because a later issue stores it
//! as a durable delivery's input: it must hold everything needed to execute, and nothing that
//! depends on the process that validated it.

use serde::{Deserialize, Serialize};

use super::types::{ButtonInput, FeedLinkInput, Layout, MediaKind};
use super::{ActionDef, InputError};
use crate::connections::ConnectionKind;

/// An action of the catalog, by name. Stored (in a delivery's planned input) as its name;
/// reading back a name the catalog does not know is an error.
#[derive(Clone, Copy)]
pub struct ActionName(&'static ActionDef);

impl ActionName {
    pub(crate) fn of(def: &'static ActionDef) -> Self {
        ActionName(def)
    }

    pub fn parse(name: &str) -> Option<Self> {
        super::spec(name).map(ActionName)
    }

    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn def(self) -> &'static ActionDef {
        self.0
    }

    /// The kind of connection the action runs on.
    pub fn connection_kind(self) -> ConnectionKind {
        self.0.connection_kind
    }
}

impl PartialEq for ActionName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ActionName {}

impl std::fmt::Debug for ActionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ActionName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ActionName::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown action `{name}`")))
    }
}

/// Where the bytes of an upload come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum FileSource {
    /// Carried in the request; already checked to decode and to fit the type's limit.
    Inline { bytes_base64: String },
    /// Downloaded when the step runs; size checked while downloading.
    Url { url: String },
}

/// A media id given by the caller, or the one the upload step before produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaRef {
    Given(String),
    Uploaded,
}

/// An app-robot message, serializable; field names follow `dingtalk::Message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageSpec {
    Text {
        content: String,
    },
    Markdown {
        title: String,
        text: String,
    },
    Link {
        title: String,
        text: String,
        pic_url: String,
        message_url: String,
    },
    Image {
        photo: MediaRef,
    },
    ActionCard {
        title: String,
        text: String,
        single_title: String,
        single_url: String,
    },
    ActionCardButtons {
        title: String,
        text: String,
        buttons: Vec<ButtonInput>,
        layout: Layout,
    },
    File {
        media: MediaRef,
        file_name: String,
        file_type: String,
    },
}

impl MessageSpec {
    /// The client's message, with an uploaded media id filled in.
    pub fn to_message(&self, uploaded: Option<&str>) -> Result<dingtalk::Message, InputError> {
        use dingtalk::Message as M;
        Ok(match self {
            MessageSpec::Text { content } => M::Text {
                content: content.clone(),
            },
            MessageSpec::Markdown { title, text } => M::Markdown {
                title: title.clone(),
                text: text.clone(),
            },
            MessageSpec::Link {
                title,
                text,
                pic_url,
                message_url,
            } => M::Link {
                title: title.clone(),
                text: text.clone(),
                pic_url: pic_url.clone(),
                message_url: message_url.clone(),
            },
            MessageSpec::Image { photo } => M::Image {
                photo_url: resolve(photo, uploaded, "image_url")?,
            },
            MessageSpec::ActionCard {
                title,
                text,
                single_title,
                single_url,
            } => M::ActionCard {
                title: title.clone(),
                text: text.clone(),
                single_title: single_title.clone(),
                single_url: single_url.clone(),
            },
            MessageSpec::ActionCardButtons {
                title,
                text,
                buttons,
                layout,
            } => M::ActionCardButtons {
                title: title.clone(),
                text: text.clone(),
                buttons: buttons
                    .iter()
                    .map(|b| dingtalk::Button {
                        title: b.title.clone(),
                        url: b.url.clone(),
                    })
                    .collect(),
                layout: layout.to_dingtalk(),
            },
            MessageSpec::File {
                media,
                file_name,
                file_type,
            } => M::File {
                media_id: resolve(media, uploaded, "media_id")?.into(),
                file_name: file_name.clone(),
                file_type: file_type.clone(),
            },
        })
    }
}

fn resolve(r: &MediaRef, uploaded: Option<&str>, field: &str) -> Result<String, InputError> {
    match r {
        MediaRef::Given(id) => Ok(id.clone()),
        // A step run on its own (from a queue) gets the upload's result through its context.
        MediaRef::Uploaded => uploaded
            .map(str::to_owned)
            .ok_or_else(|| InputError::field(field, "no upload ran before this send step")),
    }
}

/// Who a webhook message mentions (text and markdown only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Mentions {
    /// Mobile numbers to @-mention (text, markdown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_mobiles: Vec<String>,
    /// userIds to @-mention (text, markdown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_user_ids: Vec<String>,
    /// @-mention everyone (text, markdown).
    #[serde(default)]
    pub at_all: bool,
}

/// A webhook-robot message, serializable; field names follow `dingtalk::WebhookPayload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebhookSpec {
    Text {
        content: String,
    },
    Markdown {
        title: String,
        text: String,
    },
    Link {
        title: String,
        text: String,
        message_url: String,
        pic_url: Option<String>,
    },
    ActionCard {
        title: String,
        text: String,
        single_title: String,
        single_url: String,
    },
    ActionCardButtons {
        title: String,
        text: String,
        buttons: Vec<ButtonInput>,
        horizontal: bool,
    },
    FeedCard {
        links: Vec<FeedLinkInput>,
    },
}

impl WebhookSpec {
    pub fn to_message(&self, mentions: &Mentions) -> dingtalk::WebhookMessage {
        use dingtalk::WebhookPayload as P;
        let payload = match self.clone() {
            WebhookSpec::Text { content } => P::Text { content },
            WebhookSpec::Markdown { title, text } => P::Markdown { title, text },
            WebhookSpec::Link {
                title,
                text,
                message_url,
                pic_url,
            } => P::Link {
                title,
                text,
                message_url,
                pic_url,
            },
            WebhookSpec::ActionCard {
                title,
                text,
                single_title,
                single_url,
            } => P::ActionCard {
                title,
                text,
                single_title,
                single_url,
            },
            WebhookSpec::ActionCardButtons {
                title,
                text,
                buttons,
                horizontal,
            } => P::ActionCardButtons {
                title,
                text,
                buttons: buttons
                    .into_iter()
                    .map(|b| dingtalk::WebhookButton {
                        title: b.title,
                        action_url: b.url,
                    })
                    .collect(),
                horizontal,
            },
            WebhookSpec::FeedCard { links } => P::FeedCard {
                links: links
                    .into_iter()
                    .map(|l| dingtalk::FeedLink {
                        title: l.title,
                        message_url: l.url,
                        pic_url: l.image_url,
                    })
                    .collect(),
            },
        };
        dingtalk::WebhookMessage::new(payload).with_at(dingtalk::At {
            at_mobiles: mentions.at_mobiles.clone(),
            at_user_ids: mentions.at_user_ids.clone(),
            is_at_all: mentions.at_all,
        })
    }
}

/// One call to DingTalk (or a download followed by one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Upload {
        media_type: MediaKind,
        file_name: String,
        source: FileSource,
    },
    GroupSend {
        group_chat_id: String,
        message: MessageSpec,
    },
    OtoSend {
        user_ids: Vec<String>,
        message: MessageSpec,
    },
    Query {
        group_chat_id: String,
        process_query_key: String,
        max_results: u32,
        next_token: Option<String>,
    },
    Recall {
        group_chat_id: String,
        process_query_keys: Vec<String>,
    },
    Webhook {
        message: WebhookSpec,
        #[serde(default)]
        mentions: Mentions,
    },
    /// An answer to a received message ([`super::StepContext::reply`] says where it goes).
    Reply {
        message_id: String,
        message: MessageSpec,
    },
}

impl Step {
    /// Whether the step sends a message (counts as a part).
    pub fn is_send(&self) -> bool {
        matches!(
            self,
            Step::GroupSend { .. }
                | Step::OtoSend { .. }
                | Step::Webhook { .. }
                | Step::Reply { .. }
        )
    }

    /// The received message a `reply` step answers.
    pub fn reply_to(&self) -> Option<&str> {
        match self {
            Step::Reply { message_id, .. } => Some(message_id),
            _ => None,
        }
    }
}

/// An action whose input passed validation, planned as steps run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatedAction {
    action: ActionName,
    steps: Vec<Step>,
}

impl ValidatedAction {
    pub(crate) fn new(action: ActionName, steps: Vec<Step>) -> Self {
        ValidatedAction { action, steps }
    }

    pub fn action(&self) -> &str {
        self.action.as_str()
    }

    pub fn name(&self) -> ActionName {
        self.action
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The group the action addresses: messages to one group must keep their order.
    pub fn group_chat_id(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match s {
            Step::GroupSend { group_chat_id, .. }
            | Step::Query { group_chat_id, .. }
            | Step::Recall { group_chat_id, .. } => Some(group_chat_id.as_str()),
            _ => None,
        })
    }

    /// How many messages the action sends (more than one when content was split; 0 for
    /// upload, query and recall).
    pub fn parts(&self) -> usize {
        self.steps.iter().filter(|s| s.is_send()).count()
    }

    /// The connection kind the action needs.
    pub fn connection_kind(&self) -> ConnectionKind {
        self.action.connection_kind()
    }

    /// A webhook robot with keywords drops every message without one (errcode 310000): check
    /// each part before anything is sent, the way DingTalk does — in the message's text, not
    /// its links.
    pub fn check_keywords(&self, keywords: &[String]) -> Result<(), InputError> {
        if keywords.is_empty() {
            return Ok(());
        }
        fn texts(v: &serde_json::Value, out: &mut String) {
            use serde_json::Value;
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        if !k.to_ascii_lowercase().ends_with("url") {
                            texts(v, out);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|v| texts(v, out)),
                Value::String(s) => {
                    out.push_str(s);
                    out.push('\n');
                }
                _ => {}
            }
        }
        let parts = self.steps.iter().filter_map(|step| match step {
            Step::Webhook { message, mentions } => Some(message.to_message(mentions)),
            _ => None,
        });
        for (i, msg) in parts.enumerate() {
            let body: serde_json::Value = msg
                .to_body()
                .ok()
                .and_then(|b| serde_json::from_str(&b).ok())
                .unwrap_or(serde_json::Value::Null);
            let mut text = String::new();
            texts(&body[msg.msgtype()], &mut text);
            if !keywords.iter().any(|k| text.contains(k.as_str())) {
                let which = if self.parts() > 1 {
                    format!(" (part {} of {})", i + 1, self.parts())
                } else {
                    String::new()
                };
                // Well-formed, but not for this robot: 422, not 400.
                return Err(InputError::unusable(
                    "content",
                    format!(
                        "contains none of the webhook robot's keywords ({}){which}; DingTalk would drop it",
                        keywords.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}
