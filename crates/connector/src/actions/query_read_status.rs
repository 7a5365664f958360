//! `query_read_status`: who has read a group message the app robot sent, a page at a time.

use super::compose::token;
use super::outputs::ReadStatusOutput;
use super::types::token_schema;
use super::{GroupAction, InputError, Step};
use dingtalk::robot::MAX_QUERY_RESULTS;

fn default_max_results() -> u32 {
    100
}

group_input! {
    /// Query who read a group message
    ///
    /// Lists who has read a group message sent by the app robot, one page at a time.
    pub struct Input {
        /// The `process_query_key` a send returned.
        #[schemars(schema_with = "token_schema")]
        pub process_query_key: String,
        /// Page size, 1 to 200.
        #[serde(default = "default_max_results")]
        #[schemars(range(min = 1, max = 200))]
        pub max_results: u32,
        /// `next_token` of the previous page.
        pub next_token: Option<String>,
    }
}

impl GroupAction for Input {
    type Output = ReadStatusOutput;

    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        token("process_query_key", &i.process_query_key)?;
        if i.max_results == 0 || i.max_results > MAX_QUERY_RESULTS {
            return Err(InputError::field(
                "max_results",
                format!("must be 1 to {MAX_QUERY_RESULTS}"),
            ));
        }
        // An empty token is what form-based tools send for "first page".
        let next_token = i.next_token.filter(|t| !t.trim().is_empty());
        Ok(vec![Step::Query {
            group_chat_id: g,
            process_query_key: i.process_query_key.trim().to_owned(),
            max_results: i.max_results,
            next_token,
        }])
    }
}
