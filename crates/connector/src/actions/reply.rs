//! `reply`: answer a message the robot received over Stream mode, in the conversation it came
//! from. It goes through the message's session webhook while the session lasts (about 90
//! minutes); once it has expired, as an ordinary robot message: into the group, or to the
//! sender in a 1:1 conversation. A chat flow's `reply` step is this action.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compose::non_empty;
use super::outputs::{FromResults, ReplyOutput};
use super::types::{MsgTypeFields, add_rule, msg_type_rule, text_without_nul};
use super::{Action, InputError, Step, StepResult};

/// The kinds of reply: what a session webhook takes that a group send can also carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyType {
    #[default]
    Text,
    Markdown,
}

/// The longest reply, in bytes: it is one message (not split), and must fit both a session
/// webhook's body (20000 bytes) and a group send's text (15000 bytes).
pub const MAX_REPLY_BYTES: usize = 15_000;
/// The same in characters, as a schema can state it (a character is at most 4 bytes).
const MAX_REPLY_CHARS: usize = MAX_REPLY_BYTES / 4;

const MSG_TYPES: &[MsgTypeFields] = &[
    MsgTypeFields {
        msg_type: "text",
        required: &["message_id", "content"],
        used: &["content"],
    },
    MsgTypeFields {
        msg_type: "markdown",
        required: &["message_id", "content"],
        used: &["content", "title"],
    },
];

/// What the schema states beyond the types: no blank text, the length, `title` for markdown.
fn rules(schema: &mut schemars::Schema) {
    let text = serde_json::json!({ "pattern": text_without_nul() });
    add_rule(
        schema,
        serde_json::json!({ "properties": {
            "message_id": text,
            "content": { "pattern": text_without_nul(), "maxLength": MAX_REPLY_CHARS },
            "title": text,
        } }),
    );
    add_rule(schema, msg_type_rule(MSG_TYPES, &["title"], &[]));
}

/// Reply to a received message
///
/// Answers a message the robot received (Stream mode) in its conversation: through the message's
/// session webhook while it lasts, then as a robot message to the group, or to the sender of a 1:1
/// message.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rules)]
pub struct Input {
    /// DingTalk's `msgId` of the message to answer (a chat flow's `trigger.msg_id`; a chat
    /// flow's `reply` step fills it in).
    #[schemars(length(min = 1, max = 128))]
    pub message_id: String,
    /// `text` (the default) or `markdown`.
    #[serde(default)]
    pub msg_type: ReplyType,
    /// The reply (Markdown when `msg_type` is `markdown`); at most 3750 characters.
    #[schemars(length(min = 1))]
    pub content: String,
    /// Markdown only: the title shown in the chat list (the first line of `content` when
    /// absent).
    #[schemars(length(min = 1, max = 200))]
    pub title: Option<String>,
}

impl Action for Input {
    type Output = ReplyOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        non_empty("message_id", &i.message_id)?;
        non_empty("content", &i.content)?;
        if i.content.len() > MAX_REPLY_BYTES {
            return Err(InputError::field(
                "content",
                format!(
                    "is {} bytes; a reply is one message of at most {MAX_REPLY_BYTES} bytes",
                    i.content.len()
                ),
            ));
        }
        let message = match i.msg_type {
            ReplyType::Text => {
                if i.title.is_some() {
                    return Err(InputError::field(
                        "title",
                        "is used by markdown replies only",
                    ));
                }
                dingtalk::Message::Text { content: i.content }
            }
            ReplyType::Markdown => {
                let title = match i.title {
                    Some(t) => {
                        non_empty("title", &t)?;
                        t
                    }
                    None => first_line(&i.content),
                };
                dingtalk::Message::Markdown {
                    title,
                    text: i.content,
                }
            }
        };
        Ok(vec![Step::Reply {
            message_id: i.message_id,
            message: message.into(),
        }])
    }
}

impl FromResults for ReplyOutput {
    fn from_results(steps: &[Step], results: &[StepResult]) -> Option<Self> {
        match (steps, results) {
            ([Step::Reply { .. }], [StepResult::Replied(out)]) => Some(out.clone()),
            _ => None,
        }
    }
}

/// A Markdown title from its text: the first non-empty line without its heading marks, cut
/// to 64 characters.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("reply");
    line.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_markdown_reply_takes_its_title_from_the_first_line() {
        assert_eq!(first_line("\n## Done\nall good"), "Done");
        assert_eq!(first_line("   "), "reply");
    }
}
