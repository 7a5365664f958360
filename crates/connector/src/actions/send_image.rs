//! `send_image`: the seed's "Send an image message by chatbot" (`sampleImageMsg`), by URL,
//! media id, or an image file uploaded first.

use serde_json::json;

use super::compose::{inline_file, one_of, picture};
use super::types::{InlineFile, MediaKind, Picture, add_rule};
use super::{GroupSend, InputError, MediaMessage, MediaRef, Step};

group_input! {
    /// Send an image message by chatbot
    ///
    /// Sends an image to a group chat (sampleImageMsg), by URL or media id, or uploading a file
    /// first.
    #[schemars(transform = rules)]
    pub struct Input {
        /// The image: an http(s) URL or a media id (`@…`/`$…`). Give this or `file`.
        pub image_url: Option<Picture>,
        /// An image file to upload first (jpg, jpeg, gif, png, bmp). Give this or `image_url`.
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

impl GroupSend for Input {
    const MAX_BODY_BYTES: usize = super::FILE_BODY_LIMIT;

    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        one_of!(i: image_url, file)?;
        let Some(file) = &i.file else {
            let url = i.image_url.as_deref().map_or("", String::as_str);
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
