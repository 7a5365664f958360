//! `send_action_card`: the seed's "Send an ActionCard message by chatbot": one redirect button
//! (`sampleActionCard`) or 2 to 5 buttons (`sampleActionCard2..6`).


use super::compose::{Fields, group, group_send};
use super::outputs::SendOutput;
use super::types::{
    ButtonInput, Layout, add_rule, card_buttons_rule, link_schema,
    text_schema,
};
use super::{Action, InputError, Step};


group_input! {
    /// Send an ActionCard message to a group chat through the app robot: one button
    /// (`button_text` + `redirect_url`) or several (`buttons`).
    #[schemars(transform = rules)]
    pub struct Input {
        /// Message subject.
        #[schemars(schema_with = "text_schema")]
        pub subject: String,
        /// Message content (Markdown).
        #[schemars(schema_with = "text_schema")]
        pub content: String,
        /// Text displayed on the single redirect button.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "text_schema")]
        pub button_text: Option<String>,
        /// Link opened by the single button: http(s) or `dingtalk://`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "link_schema")]
        pub redirect_url: Option<String>,
        /// Several buttons instead of one: 2 to 5 when vertical, exactly 2 when horizontal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub buttons: Option<Vec<ButtonInput>>,
        /// Layout of `buttons` (default `vertical`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub button_layout: Option<Layout>,
    }
}

fn rules(schema: &mut schemars::Schema) {
    add_rule(schema, card_buttons_rule());
}

impl Action for Input {
    const NAME: &'static str = "send_action_card";
    const TITLE: &'static str = "Send an ActionCard message by chatbot";
    const DESCRIPTION: &'static str = "Sends an ActionCard to a group chat: one redirect button \
        (sampleActionCard) or 2 to 5 buttons (sampleActionCard2..6).";
    type Output = SendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        let f = Fields {
            button_text: i.button_text.as_ref(),
            redirect_url: i.redirect_url.as_ref(),
            buttons: i.buttons.as_ref(),
            button_layout: i.button_layout,
            ..Fields::titled(&i.subject, &i.content)
        };
        Ok(vec![group_send(g, f.app_card()?)?])
    }
}
