//! `send_image`: the seed's "Send an image message by chatbot" (`sampleImageMsg`), by URL,
//! media id, or an image file uploaded first.

use serde_json::json;

use super::compose::{exactly_one, group, inline_file, picture};
use super::outputs::SendOutput;
use super::types::{InlineFile, MediaKind, add_rule, picture_schema};
use super::{Action, InputError, MediaMessage, MediaRef, Step};


group_input! {
    /// Send an image message to a group chat through the app robot.
    #[schemars(transform = rules)]
    pub struct Input {
        /// The image: an http(s) URL or a media id (`@…`/`$…`). Give this or `file`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "picture_schema")]
        pub image_url: Option<String>,
        /// An image file to upload first (jpg, jpeg, gif, png, bmp). Give this or `image_url`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<InlineFile>,
    }
}

/// Exactly one of `image_url` and `file`; a file's name says it is an image.
fn rules(schema: &mut schemars::Schema) {
    add_rule(
        schema,
        json!({
            "oneOf": [{ "required": ["image_url"] }, { "required": ["file"] }],
            "properties": { "file": { "properties": { "name": {
                "pattern": MediaKind::Image.name_pattern()
            } } } }
        }),
    );
}

impl Action for Input {
    const MAX_BODY_BYTES: usize = super::FILE_BODY_LIMIT;
    const NAME: &'static str = "send_image";
    const TITLE: &'static str = "Send an image message by chatbot";
    const DESCRIPTION: &'static str = "Sends an image to a group chat (sampleImageMsg), by URL \
        or media id, or uploading a file first.";
    type Output = SendOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        let g = group(&i.group_chat_id)?;
        exactly_one(&[
            ("image_url", i.image_url.is_some()),
            ("file", i.file.is_some()),
        ])?;
        let Some(file) = &i.file else {
            let url = i.image_url.as_deref().unwrap_or_default();
            return Ok(vec![Step::GroupSend {
                group_chat_id: g,
                message: MediaMessage::Image {
                    photo: MediaRef::Given(picture("image_url", url)?),
                }
                .into(),
            }]);
        };
        let (file_name, source) = inline_file(file, MediaKind::Image)?;
        Ok(vec![
            Step::Upload {
                media_type: MediaKind::Image,
                file_name,
                source,
            },
            Step::GroupSend {
                group_chat_id: g,
                message: MediaMessage::Image {
                    photo: MediaRef::Uploaded,
                }
                .into(),
            },
        ])
    }
}
