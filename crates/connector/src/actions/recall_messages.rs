//! `recall_messages`: recall up to 20 group messages the app robot sent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compose::{group, token};
use super::outputs::RecallOutput;
use super::types::{add_rule, group_chat_id_schema, tokens_rule};
use super::{Action, InputError, Step, StepResult};
use dingtalk::robot::MAX_RECALL_KEYS;

pub struct RecallMessages;

/// Recall group messages sent by the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rules)]
pub struct Input {
    /// The group's openConversationId (`cid…==`).
    #[schemars(schema_with = "group_chat_id_schema")]
    pub group_chat_id: String,
    /// The `process_query_key`s of the messages to recall, 1 to 20.
    pub process_query_keys: Vec<String>,
}

fn rules(schema: &mut schemars::Schema) {
    add_rule(
        schema,
        serde_json::json!({ "properties": { "process_query_keys": tokens_rule(1, MAX_RECALL_KEYS) } }),
    );
}

impl Action for RecallMessages {
    const NAME: &'static str = "recall_messages";
    const TITLE: &'static str = "Recall group messages";
    const DESCRIPTION: &'static str = "Recalls up to 20 group messages sent by the app robot.";
    type Input = Input;
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

    fn output(_: &[Step], results: &[StepResult]) -> Option<RecallOutput> {
        results.iter().find_map(|r| match r {
            StepResult::Recalled(o) => Some(o.clone()),
            _ => None,
        })
    }
}
