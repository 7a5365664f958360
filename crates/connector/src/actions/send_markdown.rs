//! `send_markdown`: the seed's "Send a Markdown message by chatbot" (`sampleMarkdown`).

use super::compose::group_text_steps;
use super::types::Text;
use super::{GroupSend, InputError, Step};

group_input! {
    /// Send a Markdown message by chatbot
    ///
    /// Sends a Markdown message to a group chat through the app robot (sampleMarkdown). Content
    /// over the limit is split into parts whose subjects end in (i/n).
    pub struct Input {
        /// Message subject (shown in the conversation list and notification).
        pub subject: Text,
        /// Message content in DingTalk's Markdown subset.
        pub content: Text,
        /// Split content over DingTalk's size limit into numbered parts sent in order; with `false`
        /// an oversize message is refused.
        #[serde(default = "super::compose::yes")]
        pub split: bool,
    }
}

impl GroupSend for Input {
    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        group_text_steps(&g, &i.content, i.split, Some(&i.subject))
    }
}
