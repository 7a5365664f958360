//! A validated action as a list of planned steps. Serializable because a later issue stores it
//! as a durable delivery's input: it must hold everything needed to execute, and nothing that
//! depends on the process that validated it.

use serde::{Deserialize, Serialize};

use super::types::MediaKind;
use super::{ActionDef, InputError};
use crate::connections::ConnectionKind;
use crate::store::{DeliveryMode, GroupKey, JsonText, NewDelivery};

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

/// An app-robot message: DingTalk's own ([`dingtalk::Message`]), or an image or file whose
/// media may come from the upload step before it. Stored untagged: both forms carry their
/// `type`, and a media message is tried first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageSpec {
    Media(MediaMessage),
    Ready(dingtalk::Message),
}

/// A message whose media id may be known only once its upload step ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaMessage {
    Image {
        photo: MediaRef,
    },
    File {
        media: MediaRef,
        file_name: String,
        file_type: String,
    },
}

impl From<dingtalk::Message> for MessageSpec {
    fn from(m: dingtalk::Message) -> Self {
        MessageSpec::Ready(m)
    }
}

impl From<MediaMessage> for MessageSpec {
    fn from(m: MediaMessage) -> Self {
        MessageSpec::Media(m)
    }
}

impl MessageSpec {
    /// The client's message, with an uploaded media id filled in.
    pub fn to_message(&self, uploaded: Option<&str>) -> Result<dingtalk::Message, InputError> {
        let media = |r: &MediaRef, field: &str| match r {
            MediaRef::Given(id) => Ok(id.clone()),
            // A step run on its own (from a queue) gets the upload's result through its context.
            MediaRef::Uploaded => uploaded
                .map(str::to_owned)
                .ok_or_else(|| InputError::field(field, "no upload ran before this send step")),
        };
        Ok(match self {
            MessageSpec::Ready(m) => m.clone(),
            MessageSpec::Media(MediaMessage::Image { photo }) => dingtalk::Message::Image {
                photo_url: media(photo, "image_url")?,
            },
            MessageSpec::Media(MediaMessage::File {
                media: id,
                file_name,
                file_type,
            }) => dingtalk::Message::File {
                media_id: media(id, "media_id")?.into(),
                file_name: file_name.clone(),
                file_type: file_type.clone(),
            },
        })
    }
}

/// Who a webhook message mentions (text and markdown only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Mentions {
    /// Mobile numbers to @-mention (text, markdown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub at_mobiles: Vec<String>,
    /// userIds to @-mention (text, markdown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub at_user_ids: Vec<String>,
    /// @-mention everyone (text, markdown).
    pub at_all: bool,
}

/// A webhook message with its mentions, as the client sends it.
pub fn webhook_message(
    payload: &dingtalk::WebhookPayload,
    mentions: &Mentions,
) -> dingtalk::WebhookMessage {
    dingtalk::WebhookMessage::new(payload.clone()).with_at(dingtalk::At {
        at_mobiles: mentions.at_mobiles.clone(),
        at_user_ids: mentions.at_user_ids.clone(),
        is_at_all: mentions.at_all,
    })
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
        message: dingtalk::WebhookPayload,
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
        // Exhaustive, so a new kind of step must say whether it sends.
        match self {
            Step::GroupSend { .. } | Step::OtoSend { .. } | Step::Webhook { .. } => true,
            Step::Reply { .. } => true,
            Step::Upload { .. } | Step::Query { .. } | Step::Recall { .. } => false,
        }
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

    pub fn action(&self) -> &'static str {
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

    /// The delivery that carries this action on a connection: queued and due now, behind the
    /// earlier deliveries of its group. Callers set what differs (mode, key, lease, run).
    pub fn delivery(&self, connection_id: uuid::Uuid) -> serde_json::Result<NewDelivery> {
        // Time-ordered (UUIDv7): a new delivery's id, and its attempts keyed by it, go at the end
        // of their b-trees, where the pages are already in the cache; random ids (v4) made every
        // logged send read and rewrite a random page of each.
        let id = uuid::Uuid::now_v7();
        Ok(NewDelivery {
            id,
            connection_id,
            action: self.action().to_owned(),
            group_key: GroupKey::of(connection_id, self.group_chat_id(), self.parts() > 0, id),
            input: JsonText::of(self)?,
            mode: DeliveryMode::Async,
            idempotency_key: None,
            request_hash: None,
            lease: None,
            run: None,
        })
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
            Step::Webhook { message, mentions } => Some(webhook_message(message, mentions)),
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
