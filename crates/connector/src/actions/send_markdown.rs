//! `send_markdown`: the seed's "Send a Markdown message by chatbot" (`sampleMarkdown`).


use super::compose::{group, group_text_steps, non_empty};
use super::outputs::SendOutput;
use super::types::{text_schema};
use super::{Action, InputError, Step};


group_input! {
    /// Send a Markdown message to a group chat through the app robot.
    pub struct Input {
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
}

impl Action for Input {
    const NAME: &'static str = "send_markdown";
    const TITLE: &'static str = "Send a Markdown message by chatbot";
    const DESCRIPTION: &'static str = "Sends a Markdown message to a group chat through the app \
        robot (sampleMarkdown). Content over the limit is split into parts whose subjects end \
        in (i/n).";
    type Output = SendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        non_empty("subject", &i.subject)?;
        non_empty("content", &i.content)?;
        group_text_steps(&g, &i.content, i.split, Some(&i.subject))
    }
}
