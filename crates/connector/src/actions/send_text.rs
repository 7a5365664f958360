//! `send_text`: the seed's "Send a text message by chatbot" (`sampleText`).


use super::compose::{group, group_text_steps, non_empty};
use super::outputs::SendOutput;
use super::types::{text_schema};
use super::{Action, InputError, Step};


group_input! {
    /// Send a text message to a group chat through the app robot.
    pub struct Input {
        /// Message content.
        #[schemars(schema_with = "text_schema")]
        pub content: String,
        /// Split content over DingTalk's size limit into numbered parts sent in order; with `false`
        /// an oversize message is refused.
        #[serde(default = "super::compose::yes")]
        pub split: bool,
    }
}

impl Action for Input {
    const NAME: &'static str = "send_text";
    const TITLE: &'static str = "Send a text message by chatbot";
    const DESCRIPTION: &'static str = "Sends a text message to a group chat through the app \
        robot (sampleText). Content over DingTalk's 15000-byte limit is split into numbered \
        parts unless split is false.";
    type Output = SendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        non_empty("content", &i.content)?;
        group_text_steps(&g, &i.content, i.split, None)
    }
}
