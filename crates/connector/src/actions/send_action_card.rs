//! `send_action_card`: the seed's "Send an ActionCard message by chatbot": one redirect button
//! (`sampleActionCard`) or 2 to 5 buttons (`sampleActionCard2..6`).

use super::compose::{Fields, group_send};
use super::types::{ButtonInput, Layout, Link, Text, add_rule, card_buttons_rule};
use super::{GroupSend, InputError, Step};

group_input! {
    /// Send an ActionCard message by chatbot
    ///
    /// Sends an ActionCard to a group chat: one redirect button (sampleActionCard) or 2 to 5
    /// buttons (sampleActionCard2..6).
    #[schemars(transform = rules)]
    pub struct Input {
        /// Message subject.
        pub subject: Text,
        /// Message content (Markdown).
        pub content: Text,
        /// Text displayed on the single redirect button.
        pub button_text: Option<Text>,
        /// Link opened by the single button: http(s) or `dingtalk://`.
        pub redirect_url: Option<Link>,
        /// Several buttons instead of one: 2 to 5 when vertical, exactly 2 when horizontal.
        pub buttons: Option<Vec<ButtonInput>>,
        /// Layout of `buttons` (default `vertical`).
        pub button_layout: Option<Layout>,
    }
}

fn rules(schema: &mut schemars::Schema) {
    add_rule(schema, card_buttons_rule());
}

impl GroupSend for Input {
    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        let f = Fields {
            button_text: i.button_text.as_deref(),
            redirect_url: i.redirect_url.as_deref(),
            buttons: i.buttons.as_ref(),
            button_layout: i.button_layout,
            ..Fields::titled(&i.subject, &i.content)
        };
        Ok(vec![group_send(g, f.app_card()?)?])
    }
}
