//! `send_to_users`: one message 1:1 to up to 20 users through the app robot.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compose::{Fields, check_app_message, picture, refuse_unused, tokens};
use super::outputs::SendToUsersOutput;
use super::types::{MessageFields, MsgTypeFields, add_rule, msg_type_rule, tokens_rule};
use super::{Action, InputError, Step};
use dingtalk::robot::MAX_OTO_USERS;

/// Message types the app robot can send 1:1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserMsgType {
    /// `content`
    Text,
    /// `subject`, `content`
    Markdown,
    /// `subject`, `content`, `image_url`, `redirect_url`
    Link,
    /// `image_url`
    Image,
    /// `subject`, `content`, and `button_text` + `redirect_url` or `buttons` (+ `button_layout`)
    ActionCard,
}

impl UserMsgType {
    fn as_str(self) -> &'static str {
        match self {
            UserMsgType::Text => "text",
            UserMsgType::Markdown => "markdown",
            UserMsgType::Link => "link",
            UserMsgType::Image => "image",
            UserMsgType::ActionCard => "action_card",
        }
    }
}

const MSG_TYPES: &[MsgTypeFields] = &[
    MsgTypeFields {
        msg_type: "text",
        required: &["content"],
        used: &["content"],
    },
    MsgTypeFields {
        msg_type: "markdown",
        required: &["subject", "content"],
        used: &["subject", "content"],
    },
    MsgTypeFields {
        msg_type: "link",
        required: &["subject", "content", "image_url", "redirect_url"],
        used: &["subject", "content", "image_url", "redirect_url"],
    },
    MsgTypeFields {
        msg_type: "image",
        required: &["image_url"],
        used: &["image_url"],
    },
    MsgTypeFields {
        msg_type: "action_card",
        required: &["subject", "content"],
        used: MessageFields::CARD,
    },
];

// Unknown fields are refused by the schema, which says `additionalProperties: false`: serde
// cannot deny them next to a flattened struct.
/// Send a message to users 1:1
///
/// Sends one message 1:1 to up to 20 users through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = rules)]
pub struct Input {
    /// Recipients' userIds, 1 to 20.
    pub user_ids: Vec<String>,
    /// The message type; decides which of the other fields are used.
    pub msg_type: UserMsgType,
    /// The message: which fields its type uses is the table above.
    #[serde(flatten)]
    pub message: MessageFields,
}

fn rules(schema: &mut schemars::Schema) {
    add_rule(
        schema,
        serde_json::json!({
            "additionalProperties": false,
            "properties": { "user_ids": tokens_rule(1, MAX_OTO_USERS) }
        }),
    );
    add_rule(schema, msg_type_rule(MSG_TYPES, &MessageFields::NAMES, &[]));
}

impl Action for Input {
    type Output = SendToUsersOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        tokens("user_ids", &i.user_ids, MAX_OTO_USERS, "users")?;
        let name = i.msg_type.as_str();
        let used = MsgTypeFields::find(MSG_TYPES, name).used;
        refuse_unused(name, &i.message.given(), used)?;
        let f = Fields::of(&i.message, name);
        let message = match i.msg_type {
            UserMsgType::Text => dingtalk::Message::Text {
                content: f.req("content", f.content)?.to_owned(),
            }
            .into(),
            UserMsgType::Markdown => dingtalk::Message::Markdown {
                title: f.req("subject", f.subject)?.to_owned(),
                text: f.req("content", f.content)?.to_owned(),
            }
            .into(),
            UserMsgType::Link => f.app_link()?,
            UserMsgType::Image => dingtalk::Message::Image {
                photo_url: picture("image_url", f.req("image_url", f.image_url)?)?,
            }
            .into(),
            UserMsgType::ActionCard => f.app_card()?,
        };
        check_app_message(&message)?;
        Ok(vec![Step::OtoSend {
            user_ids: i.user_ids.iter().map(|u| u.trim().to_owned()).collect(),
            message,
        }])
    }
}
