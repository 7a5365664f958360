//! `send_text`: the seed's "Send a text message by chatbot" (`sampleText`).

use super::compose::group_text_steps;
use super::types::Text;
use super::{GroupSend, InputError, Step};

group_input! {
    /// Send a text message by chatbot
    ///
    /// Sends a text message to a group chat through the app robot (sampleText). Content over
    /// DingTalk's 15000-byte limit is split into numbered parts unless split is false.
    pub struct Input {
        /// Message content.
        pub content: Text,
        /// Split content over DingTalk's size limit into numbered parts sent in order; with `false`
        /// an oversize message is refused.
        #[serde(default = "super::compose::yes")]
        pub split: bool,
    }
}

impl GroupSend for Input {
    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        group_text_steps(&g, &i.content, i.split, None)
    }
}
