//! `webhook_send`: a message through a custom (webhook) robot, optionally @-mentioning people;
//! text and Markdown over the 20000-byte body limit are split into parts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compose::{
    Fields, from_client, labelled_markdown, labelled_text, labelled_title, link, non_empty,
    picture, plan_parts, refuse_unused, token,
};
use super::outputs::{FromResults, WebhookSendOutput};
use super::split::Label;
use super::types::{FeedLinkInput, MessageFields, MsgTypeFields, add_rule, msg_type_rule};
use super::{Action, InputError, Mentions, Step, StepResult, webhook_message};
use crate::connections::ConnectionKind;
use dingtalk::webhook::{MAX_AT, MAX_WEBHOOK_BODY_BYTES};

/// Message types a webhook robot can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMsgType {
    /// `content`; mentions allowed.
    Text,
    /// `subject`, `content`; mentions allowed.
    Markdown,
    /// `subject`, `content`, `redirect_url`, optional `image_url`
    Link,
    /// `subject`, `content`, and `button_text` + `redirect_url` or `buttons` (+ `button_layout`)
    ActionCard,
    /// `links`
    FeedCard,
}

impl WebhookMsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMsgType::Text => "text",
            WebhookMsgType::Markdown => "markdown",
            WebhookMsgType::Link => "link",
            WebhookMsgType::ActionCard => "action_card",
            WebhookMsgType::FeedCard => "feed_card",
        }
    }
}

const MSG_TYPES: &[MsgTypeFields] = &[
    MsgTypeFields {
        msg_type: "text",
        required: &["content"],
        used: &["content", "at_mobiles", "at_user_ids", "at_all"],
    },
    MsgTypeFields {
        msg_type: "markdown",
        required: &["subject", "content"],
        used: &["subject", "content", "at_mobiles", "at_user_ids", "at_all"],
    },
    MsgTypeFields {
        msg_type: "link",
        required: &["subject", "content", "redirect_url"],
        used: &["subject", "content", "image_url", "redirect_url"],
    },
    MsgTypeFields {
        msg_type: "action_card",
        required: &["subject", "content"],
        used: MessageFields::CARD,
    },
    MsgTypeFields {
        msg_type: "feed_card",
        required: &["links"],
        used: &["links"],
    },
];

// Unknown fields are refused by the schema, which says `additionalProperties: false`: serde
// cannot deny them next to a flattened struct.
/// Send a message by webhook robot
///
/// Sends a message through a custom (webhook) robot, optionally @-mentioning people. Text and
/// Markdown over the 20000-byte body limit are split into parts.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = rules)]
pub struct Input {
    /// The message type; decides which of the other fields are used.
    pub msg_type: WebhookMsgType,
    /// The message: which fields its type uses is the table above.
    #[serde(flatten)]
    pub message: MessageFields,
    /// Feed card entries (feed_card).
    pub links: Option<Vec<FeedLinkInput>>,
    /// Who to @-mention (text, markdown).
    #[serde(flatten)]
    pub mentions: Mentions,
    /// Split text/markdown over the 20000-byte body limit into numbered parts sent in order;
    /// with `false` an oversize message is refused.
    #[serde(default = "super::compose::yes")]
    pub split: bool,
}

fn rules(schema: &mut schemars::Schema) {
    let optional: Vec<&str> = MessageFields::NAMES
        .into_iter()
        .chain(["links", "at_mobiles", "at_user_ids", "at_all"])
        .collect();
    let empty_ok = [
        ("at_mobiles", serde_json::json!({ "maxItems": 0 })),
        ("at_user_ids", serde_json::json!({ "maxItems": 0 })),
        ("at_all", serde_json::json!({ "const": false })),
    ];
    let mentions = super::types::tokens_rule(0, MAX_AT);
    add_rule(
        schema,
        serde_json::json!({ "additionalProperties": false, "properties": {
            "at_mobiles": mentions,
            "at_user_ids": mentions,
            "links": { "minItems": 1 },
        } }),
    );
    add_rule(schema, msg_type_rule(MSG_TYPES, &optional, &empty_ok));
}

impl Action for Input {
    const KIND: ConnectionKind = ConnectionKind::WebhookRobot;
    type Output = WebhookSendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let name = i.msg_type.as_str();
        let given: Vec<(&str, bool)> = i
            .message
            .given()
            .into_iter()
            .chain([
                ("links", i.links.is_some()),
                ("at_mobiles", !i.mentions.at_mobiles.is_empty()),
                ("at_user_ids", !i.mentions.at_user_ids.is_empty()),
                ("at_all", i.mentions.at_all),
            ])
            .collect();
        let used = MsgTypeFields::find(MSG_TYPES, name).used;
        if !matches!(i.msg_type, WebhookMsgType::Text | WebhookMsgType::Markdown) {
            for (field, present) in &given[8..] {
                if *present {
                    return Err(InputError::field(
                        *field,
                        format!("@mentions work only in text and markdown, not {name}"),
                    ));
                }
            }
        }
        refuse_unused(name, &given, used)?;
        for (list, field) in [
            (&i.mentions.at_mobiles, "at_mobiles"),
            (&i.mentions.at_user_ids, "at_user_ids"),
        ] {
            for (k, v) in list.iter().enumerate() {
                token(&format!("{field}[{k}]"), v)?;
            }
        }
        let people = i.mentions.at_mobiles.len() + i.mentions.at_user_ids.len();
        if people > MAX_AT {
            return Err(InputError::field(
                "at_mobiles",
                format!(
                    "with at_user_ids mentions {people} people; DingTalk takes at most {MAX_AT}"
                ),
            ));
        }
        let mentions = i.mentions.clone();
        let f = Fields::of(&i.message, name);
        // Measures the real body, mentions included; they ride on the first part only so people
        // are notified once.
        let body_fits =
            |spec: &dingtalk::WebhookPayload, m: &Mentions| -> Result<bool, InputError> {
                match webhook_message(spec, m).to_body() {
                    Ok(_) => Ok(true),
                    Err(e) if e.field() == Some("body") => Ok(false),
                    Err(e) => Err(from_client(e)),
                }
            };
        let none = Mentions::default();
        let text_like = |subject: Option<&str>| -> Result<Vec<Step>, InputError> {
            let content = f.req("content", f.content)?;
            let build = |slice: &str, label: Label| match subject {
                None => dingtalk::WebhookPayload::Text {
                    content: labelled_text(slice, label),
                },
                Some(s) => dingtalk::WebhookPayload::Markdown {
                    title: labelled_title(s, label),
                    text: labelled_markdown(slice, label),
                },
            };
            let first = |label: Label| matches!(label, None | Some((1, _)));
            let mut fits = |slice: &str, label: Label| {
                let m = if first(label) { &mentions } else { &none };
                body_fits(&build(slice, label), m)
            };
            let parts = plan_parts(content, i.split, MAX_WEBHOOK_BODY_BYTES, &mut fits)?;
            Ok(parts
                .into_iter()
                .map(|(slice, label)| Step::Webhook {
                    message: build(slice, label),
                    mentions: if first(label) {
                        mentions.clone()
                    } else {
                        Mentions::default()
                    },
                })
                .collect())
        };
        let single = |spec: dingtalk::WebhookPayload| -> Result<Vec<Step>, InputError> {
            if !body_fits(&spec, &none)? {
                return Err(InputError::field(
                    "content",
                    format!(
                        "the message is over DingTalk's {MAX_WEBHOOK_BODY_BYTES}-byte webhook body limit — shorten it"
                    ),
                ));
            }
            Ok(vec![Step::Webhook {
                message: spec,
                mentions: Mentions::default(),
            }])
        };
        match i.msg_type {
            WebhookMsgType::Text => text_like(None),
            WebhookMsgType::Markdown => {
                let subject = f.req("subject", f.subject)?;
                text_like(Some(subject))
            }
            WebhookMsgType::Link => single(dingtalk::WebhookPayload::Link {
                title: f.req("subject", f.subject)?.to_owned(),
                text: f.req("content", f.content)?.to_owned(),
                message_url: link("redirect_url", f.req("redirect_url", f.redirect_url)?)?,
                pic_url: match f.image_url {
                    Some(p) => Some(picture("image_url", p)?),
                    None => None,
                },
            }),
            WebhookMsgType::ActionCard => single(
                dingtalk::WebhookPayload::from_message(f.card()?)
                    .expect("an ActionCard goes by webhook"),
            ),
            WebhookMsgType::FeedCard => {
                let links = i.links.as_ref().ok_or_else(|| {
                    InputError::field("links", format!("is required for msg_type {name}"))
                })?;
                if links.is_empty() {
                    return Err(InputError::field("links", "must have at least one link"));
                }
                let mut out = Vec::with_capacity(links.len());
                for (k, l) in links.iter().enumerate() {
                    non_empty(&format!("links[{k}].title"), &l.title)?;
                    out.push(dingtalk::FeedLink {
                        title: l.title.0.clone(),
                        message_url: link(&format!("links[{k}].url"), &l.url)?,
                        pic_url: picture(&format!("links[{k}].image_url"), &l.image_url)?,
                    });
                }
                single(dingtalk::WebhookPayload::FeedCard { links: out })
            }
        }
    }
}

impl FromResults for WebhookSendOutput {
    fn from_results(steps: &[Step], results: &[StepResult]) -> Option<Self> {
        let sent: Vec<&String> = results
            .iter()
            .filter_map(|r| match r {
                StepResult::WebhookSent { msg_type } => Some(msg_type),
                _ => None,
            })
            .collect();
        if sent.len() != steps.iter().filter(|s| s.is_send()).count() {
            return None;
        }
        Some(WebhookSendOutput {
            msg_type: sent.first()?.to_string(),
            parts: (sent.len() > 1).then_some(sent.len()),
        })
    }
}
