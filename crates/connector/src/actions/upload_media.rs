//! `upload_media`: upload an image, voice, video or file and get its `media_id`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::compose::{check_format, download_url, inline_file, non_empty, one_of, url_file_name};
use super::outputs::UploadOutput;
use super::types::{InlineFile, MediaKind, Text, add_rule, download_url_schema};
use super::{Action, FileSource, InputError, Step};

/// Upload a media file
///
/// Uploads an image, voice, video or file to DingTalk and returns its media_id.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rules)]
pub struct Input {
    /// What kind of media this is; decides the accepted formats and size limit.
    pub media_type: MediaKind,
    /// The file, carried in the request. Give this or `file_url`.
    pub file: Option<InlineFile>,
    /// An http(s) URL the server downloads (within the type's size limit). Give this or `file`.
    #[serde(default)]
    #[schemars(schema_with = "download_url_schema")]
    pub file_url: Option<String>,
    /// Name to upload a `file_url` download as; defaults to the URL's last path segment.
    pub file_name: Option<Text>,
}

/// Exactly one of `file` and `file_url` (`file_name` only with the URL); the file's name has
/// an extension of the media type.
fn rules(schema: &mut schemars::Schema) {
    let by_kind: Vec<_> = MediaKind::ALL
        .iter()
        .map(|k| {
            json!({
                "if": { "properties": { "media_type": { "const": k.as_str() } } },
                "then": {
                    "properties": {
                        "file": { "properties": { "name": { "pattern": k.name_pattern() } } },
                        "file_name": { "pattern": k.name_pattern() }
                    },
                    "if": { "required": ["file_url"], "not": { "required": ["file_name"] } },
                    "then": { "properties": { "file_url": { "pattern": k.url_pattern() } } }
                }
            })
        })
        .collect();
    add_rule(
        schema,
        json!({
            "oneOf": [
                { "required": ["file"],
                  "not": { "anyOf": [{ "required": ["file_name"] }, { "required": ["file_url"] }] } },
                { "required": ["file_url"], "not": { "required": ["file"] } }
            ],
            "allOf": by_kind
        }),
    );
}

impl Action for Input {
    const MAX_BODY_BYTES: usize = super::FILE_BODY_LIMIT;
    type Output = UploadOutput;

    fn plan(i: Input) -> Result<Vec<Step>, InputError> {
        one_of!(i: file, file_url)?;
        if let Some(file) = &i.file {
            if i.file_name.is_some() {
                return Err(InputError::field(
                    "file_name",
                    "is only used with `file_url`; name the file in `file.name`",
                ));
            }
            let (file_name, source) = inline_file(file, i.media_type)?;
            return Ok(vec![Step::Upload {
                media_type: i.media_type,
                file_name,
                source,
            }]);
        }
        let raw = i.file_url.as_deref().unwrap_or_default();
        let u = download_url("file_url", raw)?;
        let (file_name, field) = match (&i.file_name, url_file_name(&u)) {
            (Some(n), _) => {
                non_empty("file_name", n)?;
                (n.trim().to_owned(), "file_name")
            }
            (None, Some(n)) => (n, "file_url"),
            (None, None) => {
                return Err(InputError::field(
                    "file_name",
                    "is required: `file_url` does not end in a file name",
                ));
            }
        };
        check_format(field, &file_name, i.media_type)?;
        Ok(vec![Step::Upload {
            media_type: i.media_type,
            file_name,
            source: FileSource::Url { url: u.to_string() },
        }])
    }
}
