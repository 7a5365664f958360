//! `send_link`: the seed's "Send a link message by chatbot" (`sampleLink`).


use super::compose::{Fields, group, group_send};
use super::outputs::SendOutput;
use super::types::{link_schema, picture_schema, text_schema};
use super::{Action, InputError, Step};


group_input! {
    /// Send a link message to a group chat through the app robot.
    pub struct Input {
        /// Message subject.
        #[schemars(schema_with = "text_schema")]
        pub subject: String,
        /// Message content.
        #[schemars(schema_with = "text_schema")]
        pub content: String,
        /// Link to the preview image (http(s) URL or media id `@…`).
        #[schemars(schema_with = "picture_schema")]
        pub image_url: String,
        /// Redirection link opened after clicking the message: http(s) or `dingtalk://`.
        #[schemars(schema_with = "link_schema")]
        pub redirect_url: String,
    }
}

impl Action for Input {
    const NAME: &'static str = "send_link";
    const TITLE: &'static str = "Send a link message by chatbot";
    const DESCRIPTION: &'static str =
        "Sends a link card with a preview image to a group chat (sampleLink).";
    type Output = SendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        let f = Fields {
            image_url: Some(&i.image_url),
            redirect_url: Some(&i.redirect_url),
            ..Fields::titled(&i.subject, &i.content)
        };
        Ok(vec![group_send(g, f.app_link()?)?])
    }
}
