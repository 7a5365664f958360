//! The action catalog: what a connection can do (the seed's six chatbot actions and the ones
//! beyond them). Each action is one module whose input type implements [`Action`]: the input's
//! JSON Schema (from schemars) is the catalog's input schema; the impl holds the rules the
//! schema cannot state, the plan of steps, and the output type. Adding an action is one module
//! and one line in [`catalog!`].
//!
//! Flow: [`validate`] (action name + JSON input → [`ValidatedAction`] or [`InputError`]): the
//! input is checked against the action's JSON Schema (every error names its field, from the
//! validator's typed error kinds), deserialized into the input type, and planned; then
//! [`execute`] (→ the action's JSON output or [`ExecuteError`]). It holds no storage and no
//! HTTP routes; it must not log or return a secret (it never sees one but the target's).

mod compose;
mod execute;
mod plan;
pub mod split;
pub mod types;

pub mod outputs;

use outputs::FromResults;

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use execute::{
    DOWNLOAD_TIMEOUT, ExecuteError, ReplyTarget, StepContext, StepFile, StepResult, Target,
    assemble_output, execute, execute_read_step, execute_step, read_step_file,
};
pub use plan::{
    ActionName, FileSource, MediaMessage, MediaRef, Mentions, MessageSpec, Step, ValidatedAction,
    webhook_message,
};

use crate::connections::ConnectionKind;
use crate::schema;

/// Why an input was refused. Field names are the input's (`buttons[1].url`), never DingTalk's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputError {
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    /// Well-formed, but what it refers to cannot be used when the step runs (a `file_url` that
    /// cannot be downloaded, or is too big or empty).
    #[error("unusable `{field}`: {reason}")]
    Unusable { field: String, reason: String },
    #[error("unknown action `{0}`")]
    UnknownAction(String),
}

impl InputError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InputError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn unusable(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InputError::Unusable {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The offending field, if the error is about one.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            InputError::Invalid { field, .. } | InputError::Unusable { field, .. } => Some(field),
            InputError::UnknownAction(_) => None,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            InputError::Invalid { reason, .. } | InputError::Unusable { reason, .. } => {
                reason.clone()
            }
            InputError::UnknownAction(a) => format!("no action is named `{a}`"),
        }
    }

    /// The same error blamed on `to` instead of `from`.
    pub(crate) fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            InputError::Invalid { field, reason } if field == from => InputError::Invalid {
                field: to.to_owned(),
                reason,
            },
            other => other,
        }
    }
}

/// The request body limit of an action that carries no file: 20 parts of the largest message,
/// JSON-escaped, fit with room to spare.
pub const MESSAGE_BODY_LIMIT: usize = 1024 * 1024;
/// The request body limit of an action that may carry a file: DingTalk's 20 MB, grown by a
/// third in base64.
pub const FILE_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// One action: everything about it in one module (whose name is the action's, e.g. `send_text`),
/// implemented by its input type: the seed's parameter names; its JSON Schema is the catalog's
/// input schema; its doc comment's first line the action's title (the seed's name for it, e.g.
/// "Send a text message by chatbot"), the paragraphs after it the action's description.
pub trait Action: DeserializeOwned + JsonSchema + 'static {
    /// The connection kind it runs on.
    const KIND: ConnectionKind = ConnectionKind::AppRobot;
    /// The largest request body taken, in bytes ([`FILE_BODY_LIMIT`] for actions with files).
    const MAX_BODY_BYTES: usize = MESSAGE_BODY_LIMIT;
    /// The answer once DingTalk accepted every step.
    type Output: Serialize + JsonSchema + FromResults;
    /// The rules the schema cannot state, then the steps to run, in order.
    fn plan(input: Self) -> Result<Vec<Step>, InputError>;
}

/// An action of the catalog, with its schemas and compiled validator; the API shows it as a
/// catalog entry (what serializes).
#[derive(Serialize, JsonSchema)]
#[schemars(
    rename = "CatalogEntry",
    description = "An action of the catalog: its name, the seed's title for it, what it does, \
                   the connection kind it runs on, and the JSON Schemas of its input and output."
)]
pub struct ActionDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub connection_kind: ConnectionKind,
    /// The largest request body the action's route takes, in bytes.
    #[serde(skip)]
    pub max_body_bytes: usize,
    /// JSON Schema (2020-12) of the input.
    pub input_schema: Value,
    /// JSON Schema (2020-12) of the output.
    pub output_schema: Value,
    #[serde(skip)]
    validator: jsonschema::Validator,
    #[serde(skip)]
    plan: fn(Value) -> Result<Vec<Step>, InputError>,
    #[serde(skip)]
    output: fn(&[Step], &[StepResult]) -> Option<Value>,
}

impl ActionDef {
    /// Action `name` (its module's), titled and described by its input's doc comment: the
    /// first line is the title (the seed's name for it), the paragraphs after it describe it.
    fn of<A: Action>(name: &'static str) -> ActionDef {
        let mut input_schema = schema::of::<A>();
        let doc = input_schema["description"].as_str().unwrap_or_default();
        let (title, description) = match doc.split_once("\n\n") {
            Some((title, description)) => (title.trim(), description.replace('\n', " ")),
            None => panic!("{name}: the input's doc comment has no title line and description"),
        };
        // Built once per process (the catalog is static).
        let title: &'static str = title.to_owned().leak();
        let description: &'static str = description.leak();
        input_schema["title"] = title.into();
        input_schema["description"] = description.into();
        let validator = jsonschema::draft202012::new(&input_schema)
            .unwrap_or_else(|e| panic!("{name}: the input schema does not compile: {e}"));
        ActionDef {
            name,
            title,
            description,
            connection_kind: A::KIND,
            max_body_bytes: A::MAX_BODY_BYTES,
            input_schema,
            output_schema: schema::of_output::<A::Output>(),
            validator,
            plan: |input| {
                let input: A = schema::deserialize(input)?;
                A::plan(input)
            },
            output: |steps, results| {
                A::Output::from_results(steps, results)
                    .map(|o| serde_json::to_value(o).expect("output types serialize to JSON"))
            },
        }
    }

    /// Check `input` against the schema, then plan it.
    pub fn validate(&'static self, input: Value) -> Result<ValidatedAction, InputError> {
        let combination = match schema::check(&self.input_schema, &self.validator, &input) {
            Ok(()) => None,
            Err(schema::Refusal::Field(e)) => return Err(e),
            Err(schema::Refusal::Combination(e)) => Some(e),
        };
        let steps = (self.plan)(input)?;
        // The plan's own checks found nothing; the schema's rule still stands.
        if let Some(e) = combination {
            return Err(e);
        }
        Ok(ValidatedAction::new(ActionName::of(self), steps))
    }

    /// Checks an input whose templated strings (`templated` says which, by JSON pointer) are
    /// not known yet: everything else is checked against the schema; with no templates at all,
    /// the input is validated and planned completely.
    pub fn check_literal(
        &'static self,
        input: &Value,
        templated: &dyn Fn(&str) -> bool,
        any_templated: bool,
    ) -> Result<(), InputError> {
        if !any_templated {
            return self.validate(input.clone()).map(|_| ());
        }
        schema::check_literal(&self.input_schema, &self.validator, input, templated)
    }

    pub(crate) fn assemble(&self, steps: &[Step], results: &[StepResult]) -> Option<Value> {
        (self.output)(steps, results)
    }
}

impl std::fmt::Debug for ActionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionDef")
            .field("name", &self.name)
            .finish()
    }
}

/// An action that addresses one group chat (its input declared with [`group_input!`]): its
/// plan gets the group chat id already checked.
pub trait GroupAction: Sized {
    /// As [`Action::MAX_BODY_BYTES`].
    const MAX_BODY_BYTES: usize = MESSAGE_BODY_LIMIT;
    type Output: Serialize + JsonSchema + FromResults;
    /// The rules the schema cannot state, then the steps to run in group `group_chat_id`.
    fn plan(group_chat_id: String, input: Self) -> Result<Vec<Step>, InputError>;
}

/// A group action that sends messages and answers with what DingTalk accepted
/// ([`outputs::SendOutput`]): the seed's six.
pub trait GroupSend: Sized {
    /// As [`Action::MAX_BODY_BYTES`].
    const MAX_BODY_BYTES: usize = MESSAGE_BODY_LIMIT;
    /// As [`GroupAction::plan`].
    fn plan(group_chat_id: String, input: Self) -> Result<Vec<Step>, InputError>;
}

impl<T: GroupSend> GroupAction for T {
    const MAX_BODY_BYTES: usize = <T as GroupSend>::MAX_BODY_BYTES;
    type Output = outputs::SendOutput;

    fn plan(group_chat_id: String, input: Self) -> Result<Vec<Step>, InputError> {
        <T as GroupSend>::plan(group_chat_id, input)
    }
}

/// The input of an action that addresses one group chat: `group_chat_id`, then the action's
/// own fields; unknown fields are refused. Its [`Action`] checks the group chat id and plans
/// through its [`GroupAction`].
macro_rules! group_input {
    ($(#[$meta:meta])* pub struct Input { $($fields:tt)* }) => {
        #[serde_with::skip_serializing_none]
        #[derive(
            Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[serde(deny_unknown_fields)]
        $(#[$meta])*
        pub struct Input {
            /// The group's openConversationId (`cid…==`).
            #[schemars(schema_with = "crate::actions::types::group_chat_id_schema")]
            pub group_chat_id: String,
            $($fields)*
        }

        impl $crate::actions::Action for Input {
            const MAX_BODY_BYTES: usize = <Self as $crate::actions::GroupAction>::MAX_BODY_BYTES;
            type Output = <Self as $crate::actions::GroupAction>::Output;

            fn plan(
                input: Self,
            ) -> Result<Vec<$crate::actions::Step>, $crate::actions::InputError> {
                let group = $crate::actions::compose::group(&input.group_chat_id)?;
                <Self as $crate::actions::GroupAction>::plan(group, input)
            }
        }
    };
}

/// Declares the action modules and registers each: one line per action. (cargo fmt does not
/// see modules declared here; `.ci/run` formats-checks `actions/*.rs` itself.)
macro_rules! catalog {
    ($($module:ident),+ $(,)?) => {
        $(mod $module;)+
        /// Every action, in a stable order.
        static CATALOG: LazyLock<Vec<ActionDef>> =
            LazyLock::new(|| vec![$(ActionDef::of::<$module::Input>(stringify!($module))),+]);
    };
}

catalog! {
    send_text,
    send_markdown,
    send_link,
    send_image,
    send_file,
    send_action_card,
    upload_media,
    query_read_status,
    recall_messages,
    send_to_users,
    webhook_send,
    reply,
}

/// Every action, in a stable order.
pub fn catalog() -> &'static [ActionDef] {
    &CATALOG
}

/// The entry for `name`, if there is such an action.
pub fn spec(name: &str) -> Option<&'static ActionDef> {
    CATALOG.iter().find(|d| d.name == name)
}

/// Check `input` for `action` and plan its steps.
pub fn validate(action: &str, input: Value) -> Result<ValidatedAction, InputError> {
    spec(action)
        .ok_or_else(|| InputError::UnknownAction(action.to_owned()))?
        .validate(input)
}

#[cfg(test)]
mod tests;
