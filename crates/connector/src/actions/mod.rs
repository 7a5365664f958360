//! The action catalog: what a connection can do (the seed's six chatbot actions and the ones
//! beyond them), each with an input type that validates requests before any network call and
//! generates the catalog's JSON Schema, a plan of steps that can be stored and replayed, and the
//! code that runs the steps against DingTalk.
//!
//! Flow: [`validate`] (action name + JSON input → [`ValidatedAction`] or [`InputError`]), then
//! [`execute`] (→ the action's JSON output or [`ExecuteError`]). It holds no storage and no
//! HTTP routes; it must not log or return a secret (it never sees one but the target's).

mod execute;
pub mod inputs;
pub mod outputs;
mod plan;
pub mod split;
mod validate;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

pub use execute::{
    ExecuteError, StepContext, StepResult, Target, assemble_output, execute, execute_step,
};
pub use plan::{
    ActionName, FileSource, MediaRef, Mentions, MessageSpec, Step, ValidatedAction, WebhookSpec,
};
pub use validate::validate;

use crate::connections::ConnectionKind;

/// Why an input was refused. Field names are the input's (`buttons[1].url`), never DingTalk's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputError {
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
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

    /// The offending field, if the error is about one.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            InputError::Invalid { field, .. } => Some(field),
            InputError::UnknownAction(_) => None,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            InputError::Invalid { reason, .. } => reason.clone(),
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

/// One entry of the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct ActionSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub connection_kind: ConnectionKind,
    /// JSON Schema (2020-12) of the input, self-contained (no `$ref`).
    pub input_schema: Value,
    /// JSON Schema (2020-12) of the output, self-contained (no `$ref`).
    pub output_schema: Value,
}

/// A self-contained schema: sub-schemas inlined so it can be embedded anywhere in an OpenAPI
/// 3.1 document (a `#/$defs/…` reference would resolve against the document's root there).
fn schema_of<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
    }
    value
}

/// The entry for `name`, if there is such an action.
pub fn spec(name: &str) -> Option<ActionSpec> {
    let action = ActionName::parse(name)?;
    use inputs as i;
    use outputs as o;
    let (title, description, input, output) = match action {
        ActionName::SendText => (
            "Send a text message by chatbot",
            "Sends a text message to a group chat through the app robot (sampleText). Content \
             over DingTalk's 15000-byte limit is split into numbered parts unless split is false.",
            schema_of::<i::SendText>(),
            schema_of::<o::SendOutput>(),
        ),
        ActionName::SendMarkdown => (
            "Send a Markdown message by chatbot",
            "Sends a Markdown message to a group chat through the app robot (sampleMarkdown). \
             Content over the limit is split into parts whose subjects end in (i/n).",
            schema_of::<i::SendMarkdown>(),
            schema_of::<o::SendOutput>(),
        ),
        ActionName::SendLink => (
            "Send a link message by chatbot",
            "Sends a link card with a preview image to a group chat (sampleLink).",
            schema_of::<i::SendLink>(),
            schema_of::<o::SendOutput>(),
        ),
        ActionName::SendImage => (
            "Send an image message by chatbot",
            "Sends an image to a group chat (sampleImageMsg), by URL or media id, or uploading \
             a file first.",
            schema_of::<i::SendImage>(),
            schema_of::<o::SendOutput>(),
        ),
        ActionName::SendFile => (
            "Send a file message by chatbot",
            "Sends a file to a group chat (sampleFile): an uploaded media id, or a file (base64) \
             or URL that is uploaded first.",
            schema_of::<i::SendFile>(),
            schema_of::<o::SendOutput>(),
        ),
        ActionName::SendActionCard => (
            "Send an ActionCard message by chatbot",
            "Sends an ActionCard to a group chat: one redirect button (sampleActionCard) or 2 to \
             5 buttons (sampleActionCard2..6).",
            schema_of::<i::SendActionCard>(),
            schema_of::<o::SendOutput>(),
        ),
        ActionName::UploadMedia => (
            "Upload a media file",
            "Uploads an image, voice, video or file to DingTalk and returns its media_id.",
            schema_of::<i::UploadMedia>(),
            schema_of::<o::UploadOutput>(),
        ),
        ActionName::QueryReadStatus => (
            "Query who read a group message",
            "Lists who has read a group message sent by the app robot, one page at a time.",
            schema_of::<i::QueryReadStatus>(),
            schema_of::<o::ReadStatusOutput>(),
        ),
        ActionName::RecallMessages => (
            "Recall group messages",
            "Recalls up to 20 group messages sent by the app robot.",
            schema_of::<i::RecallMessages>(),
            schema_of::<o::RecallOutput>(),
        ),
        ActionName::SendToUsers => (
            "Send a message to users 1:1",
            "Sends one message 1:1 to up to 20 users through the app robot.",
            schema_of::<i::SendToUsers>(),
            schema_of::<o::SendToUsersOutput>(),
        ),
        ActionName::WebhookSend => (
            "Send a message by webhook robot",
            "Sends a message through a custom (webhook) robot, optionally @-mentioning people. \
             Text and Markdown over the 20000-byte body limit are split into parts.",
            schema_of::<i::WebhookSend>(),
            schema_of::<o::WebhookSendOutput>(),
        ),
    };
    Some(ActionSpec {
        name: action.as_str(),
        title,
        description,
        connection_kind: action.connection_kind(),
        input_schema: input,
        output_schema: output,
    })
}

/// Every action, in a stable order.
pub fn catalog() -> Vec<ActionSpec> {
    ActionName::ALL
        .iter()
        .filter_map(|a| spec(a.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_every_action_with_self_contained_schemas() {
        let catalog = catalog();
        assert_eq!(catalog.len(), ActionName::ALL.len());
        for spec in &catalog {
            for schema in [&spec.input_schema, &spec.output_schema] {
                let text = schema.to_string();
                assert!(!text.contains("$ref"), "{}: {text}", spec.name);
                assert!(!text.contains("$schema"), "{}", spec.name);
                assert_eq!(schema["type"], "object", "{}", spec.name);
            }
            assert_eq!(
                spec.input_schema["additionalProperties"], false,
                "{} refuses unknown fields",
                spec.name
            );
        }
    }

    #[test]
    fn schemas_carry_the_seed_names_and_descriptions() {
        let s = spec("send_link").unwrap();
        let required: Vec<&str> = s.input_schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            required,
            [
                "group_chat_id",
                "subject",
                "content",
                "image_url",
                "redirect_url"
            ]
        );
        assert!(
            s.input_schema["properties"]["redirect_url"]["description"]
                .as_str()
                .unwrap()
                .contains("dingtalk://")
        );
        let file = spec("send_file").unwrap();
        let types = file.input_schema.to_string();
        for t in ["xlsx", "pdf", "zip", "rar", "doc", "docx"] {
            assert!(types.contains(&format!("\"{t}\"")), "{t}");
        }
        assert_eq!(
            spec("webhook_send").unwrap().connection_kind,
            ConnectionKind::WebhookRobot
        );
        assert_eq!(
            spec("send_text").unwrap().connection_kind,
            ConnectionKind::AppRobot
        );
        assert!(spec("send_fax").is_none());
    }
}
