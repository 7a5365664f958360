//! `send_link`: the seed's "Send a link message by chatbot" (`sampleLink`).

use super::compose::{Fields, group_send};
use super::types::{Link, Picture, Text};
use super::{GroupSend, InputError, Step};

group_input! {
    /// Send a link message by chatbot
    ///
    /// Sends a link card with a preview image to a group chat (sampleLink).
    pub struct Input {
        /// Message subject.
        pub subject: Text,
        /// Message content.
        pub content: Text,
        /// Link to the preview image (http(s) URL or media id `@…`).
        pub image_url: Picture,
        /// Redirection link opened after clicking the message: http(s) or `dingtalk://`.
        pub redirect_url: Link,
    }
}

impl GroupSend for Input {
    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        let f = Fields {
            image_url: Some(&i.image_url),
            redirect_url: Some(&i.redirect_url),
            ..Fields::titled(&i.subject, &i.content)
        };
        Ok(vec![group_send(g, f.app_link()?)?])
    }
}
