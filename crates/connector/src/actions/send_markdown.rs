//! `send_markdown`: the seed's "Send a Markdown message by chatbot" (`sampleMarkdown`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compose::{group, group_text_steps, non_empty};
use super::outputs::SendOutput;
use super::types::{group_chat_id_schema, text_schema};
use super::{Action, InputError, Step, StepResult};

pub struct SendMarkdown;

/// Send a Markdown message to a group chat through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The group's openConversationId (`cid…==`).
    #[schemars(schema_with = "group_chat_id_schema")]
    pub group_chat_id: String,
    /// Message subject (shown in the conversation list and notification).
    #[schemars(schema_with = "text_schema")]
    pub subject: String,
    /// Message content in DingTalk's Markdown subset.
    #[schemars(schema_with = "text_schema")]
    pub content: String,
    /// Split content over DingTalk's size limit into numbered parts sent in order; with `false`
    /// an oversize message is refused.
    #[serde(default = "super::compose::yes")]
    pub split: bool,
}

impl Action for SendMarkdown {
    const NAME: &'static str = "send_markdown";
    const TITLE: &'static str = "Send a Markdown message by chatbot";
    const DESCRIPTION: &'static str = "Sends a Markdown message to a group chat through the app \
        robot (sampleMarkdown). Content over the limit is split into parts whose subjects end \
        in (i/n).";
    type Input = Input;
    type Output = SendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        non_empty("subject", &i.subject)?;
        non_empty("content", &i.content)?;
        group_text_steps(&g, &i.content, i.split, Some(&i.subject))
    }

    fn output(steps: &[Step], results: &[StepResult]) -> Option<SendOutput> {
        SendOutput::from_results(steps, results)
    }
}
