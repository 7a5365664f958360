//! `send_to_users`: one message 1:1 to up to 20 users through the app robot.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compose::{Fields, check_app_message, picture, refuse_unused, token};
use super::outputs::SendToUsersOutput;
use super::types::{
    ButtonInput, Layout, MsgTypeFields, add_rule, link_schema, msg_type_rule, picture_schema,
    text_schema, tokens_rule,
};
use super::{Action, InputError, MediaRef, MessageSpec, Step, StepResult};
use dingtalk::robot::MAX_OTO_USERS;

pub struct SendToUsers;

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

const CARD: &[&str] = &[
    "subject",
    "content",
    "redirect_url",
    "button_text",
    "buttons",
    "button_layout",
];

const MSG_TYPES: &[MsgTypeFields] = &[
    MsgTypeFields { msg_type: "text", required: &["content"], used: &["content"] },
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
    MsgTypeFields { msg_type: "image", required: &["image_url"], used: &["image_url"] },
    MsgTypeFields { msg_type: "action_card", required: &["subject", "content"], used: CARD },
];

/// Send one message 1:1 to up to 20 users through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rules)]
pub struct Input {
    /// Recipients' userIds, 1 to 20.
    pub user_ids: Vec<String>,
    /// The message type; decides which of the other fields are used.
    pub msg_type: UserMsgType,
    /// Message content (text, markdown, link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "text_schema")]
    pub content: Option<String>,
    /// Message subject (markdown, link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "text_schema")]
    pub subject: Option<String>,
    /// Image: http(s) URL or media id (image, link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "picture_schema")]
    pub image_url: Option<String>,
    /// Link opened by the message or its single button (link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "link_schema")]
    pub redirect_url: Option<String>,
    /// Text of the single button (action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "text_schema")]
    pub button_text: Option<String>,
    /// Several buttons (action_card): 2 to 5 vertical, exactly 2 horizontal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<ButtonInput>>,
    /// Layout of `buttons` (default `vertical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_layout: Option<Layout>,
}

fn rules(schema: &mut schemars::Schema) {
    let optional = [
        "content",
        "subject",
        "image_url",
        "redirect_url",
        "button_text",
        "buttons",
        "button_layout",
    ];
    add_rule(
        schema,
        serde_json::json!({ "properties": { "user_ids": tokens_rule(1, MAX_OTO_USERS) } }),
    );
    add_rule(schema, msg_type_rule(MSG_TYPES, &optional, &[]));
}

impl Action for SendToUsers {
    const NAME: &'static str = "send_to_users";
    const TITLE: &'static str = "Send a message to users 1:1";
    const DESCRIPTION: &'static str =
        "Sends one message 1:1 to up to 20 users through the app robot.";
    type Input = Input;
    type Output = SendToUsersOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let n = i.user_ids.len();
        if n == 0 || n > MAX_OTO_USERS {
            return Err(InputError::field(
                "user_ids",
                format!("has {n} users; give 1 to {MAX_OTO_USERS}"),
            ));
        }
        for (k, u) in i.user_ids.iter().enumerate() {
            token(&format!("user_ids[{k}]"), u)?;
        }
        let name = i.msg_type.as_str();
        let given = [
            ("content", i.content.is_some()),
            ("subject", i.subject.is_some()),
            ("image_url", i.image_url.is_some()),
            ("redirect_url", i.redirect_url.is_some()),
            ("button_text", i.button_text.is_some()),
            ("buttons", i.buttons.is_some()),
            ("button_layout", i.button_layout.is_some()),
        ];
        let used = MsgTypeFields::find(MSG_TYPES, name).used;
        refuse_unused(name, &given, used)?;
        let f = Fields {
            ctx: format!(" for msg_type {name}"),
            content: i.content.as_ref(),
            subject: i.subject.as_ref(),
            image_url: i.image_url.as_ref(),
            redirect_url: i.redirect_url.as_ref(),
            button_text: i.button_text.as_ref(),
            buttons: i.buttons.as_ref(),
            button_layout: i.button_layout,
        };
        let message = match i.msg_type {
            UserMsgType::Text => MessageSpec::Text {
                content: f.req("content", f.content)?.to_owned(),
            },
            UserMsgType::Markdown => MessageSpec::Markdown {
                title: f.req("subject", f.subject)?.to_owned(),
                text: f.req("content", f.content)?.to_owned(),
            },
            UserMsgType::Link => f.app_link()?,
            UserMsgType::Image => MessageSpec::Image {
                photo: MediaRef::Given(picture("image_url", f.req("image_url", f.image_url)?)?),
            },
            UserMsgType::ActionCard => f.app_card()?,
        };
        check_app_message(&message)?;
        Ok(vec![Step::OtoSend {
            user_ids: i.user_ids.iter().map(|u| u.trim().to_owned()).collect(),
            message,
        }])
    }

    fn output(_: &[Step], results: &[StepResult]) -> Option<SendToUsersOutput> {
        results.iter().find_map(|r| match r {
            StepResult::SentToUsers(o) => Some(o.clone()),
            _ => None,
        })
    }
}
