//! `recall_messages`: recall up to 20 group messages the app robot sent.

use super::compose::tokens;
use super::outputs::RecallOutput;
use super::types::{add_rule, tokens_rule};
use super::{GroupAction, InputError, Step};
use dingtalk::robot::MAX_RECALL_KEYS;

group_input! {
    /// Recall group messages
    ///
    /// Recalls up to 20 group messages sent by the app robot.
    #[schemars(transform = rules)]
    pub struct Input {
        /// The `process_query_key`s of the messages to recall, 1 to 20.
        pub process_query_keys: Vec<String>,
    }
}

fn rules(schema: &mut schemars::Schema) {
    add_rule(
        schema,
        serde_json::json!({ "properties": { "process_query_keys": tokens_rule(1, MAX_RECALL_KEYS) } }),
    );
}

impl GroupAction for Input {
    type Output = RecallOutput;

    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        tokens(
            "process_query_keys",
            &i.process_query_keys,
            MAX_RECALL_KEYS,
            "keys",
        )?;
        Ok(vec![Step::Recall {
            group_chat_id: g,
            process_query_keys: i.process_query_keys,
        }])
    }
}
