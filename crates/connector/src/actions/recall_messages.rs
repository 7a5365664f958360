//! `recall_messages`: recall up to 20 group messages the app robot sent.


use super::compose::{group, token};
use super::outputs::RecallOutput;
use super::types::{add_rule, tokens_rule};
use super::{Action, InputError, Step};
use dingtalk::robot::MAX_RECALL_KEYS;


group_input! {
    /// Recall group messages sent by the app robot.
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

impl Action for Input {
    const NAME: &'static str = "recall_messages";
    const TITLE: &'static str = "Recall group messages";
    const DESCRIPTION: &'static str = "Recalls up to 20 group messages sent by the app robot.";
    type Output = RecallOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        let n = i.process_query_keys.len();
        if n == 0 || n > MAX_RECALL_KEYS {
            return Err(InputError::field(
                "process_query_keys",
                format!("has {n} keys; give 1 to {MAX_RECALL_KEYS}"),
            ));
        }
        for (k, key) in i.process_query_keys.iter().enumerate() {
            token(&format!("process_query_keys[{k}]"), key)?;
        }
        Ok(vec![Step::Recall {
            group_chat_id: g,
            process_query_keys: i.process_query_keys,
        }])
    }
}
