//! `send_file`: the seed's "Send a file message by chatbot" (`sampleFile`): an uploaded media
//! id, or a file (base64) or URL that is uploaded first.

use serde_json::json;

use super::compose::{
    download_url, extension, group_send, inline_file, non_empty, one_of, required, token,
    url_file_name,
};
use super::types::{
    FileType, InlineFile, MediaKind, Text, add_rule, download_url_schema, name_with_extension,
    named_url, token_schema, url_with_extension,
};
use super::{FileSource, GroupSend, InputError, MediaMessage, MediaRef, Step};

group_input! {
    /// Send a file message by chatbot
    ///
    /// Sends a file to a group chat (sampleFile): an uploaded media id, or a file (base64) or URL
    /// that is uploaded first.
    #[schemars(transform = rules)]
    pub struct Input {
        /// media_id of an uploaded file. Give exactly one of `media_id`, `file`, `file_url`.
        #[serde(default)]
        #[schemars(schema_with = "token_schema")]
        pub media_id: Option<String>,
        /// Name of the file to be sent; required with `media_id`, otherwise taken from the file.
        pub file_name: Option<Text>,
        /// File type; required with `media_id`, otherwise taken from the file name's extension.
        pub file_type: Option<FileType>,
        /// A file to upload first, carried in the request.
        pub file: Option<InlineFile>,
        /// An http(s) URL the server downloads (at most 20 MB) and uploads first.
        #[serde(default)]
        #[schemars(schema_with = "download_url_schema")]
        pub file_url: Option<String>,
    }
}

/// Exactly one source; with `media_id`, its name and type; without `file_type`, a name whose
/// extension is one.
fn rules(schema: &mut schemars::Schema) {
    let types: Vec<&str> = FileType::ALL.iter().map(|t| t.as_str()).collect();
    let typed_name = name_with_extension(&types);
    add_rule(
        schema,
        json!({
            "oneOf": [
                { "required": ["media_id", "file_name", "file_type"],
                  "not": { "anyOf": [{ "required": ["file"] }, { "required": ["file_url"] }] } },
                { "required": ["file"],
                  "not": { "anyOf": [{ "required": ["media_id"] }, { "required": ["file_url"] }] } },
                { "required": ["file_url"],
                  "not": { "anyOf": [{ "required": ["media_id"] }, { "required": ["file"] }] } }
            ],
            "allOf": [
                {
                    "if": { "required": ["file_url"], "not": { "required": ["file_name"] } },
                    "then": { "properties": { "file_url": { "pattern": named_url() } } }
                },
                {
                    "if": { "not": { "required": ["file_type"] } },
                    "then": { "anyOf": [
                        { "required": ["file_name"], "properties": { "file_name": { "pattern": typed_name } } },
                        { "not": { "required": ["file_name"] }, "required": ["file"],
                          "properties": { "file": { "properties": { "name": { "pattern": typed_name } } } } },
                        { "not": { "required": ["file_name"] }, "required": ["file_url"],
                          "properties": { "file_url": { "pattern": url_with_extension(&types) } } }
                    ] }
                }
            ]
        }),
    );
}

impl GroupSend for Input {
    const MAX_BODY_BYTES: usize = super::FILE_BODY_LIMIT;

    fn plan(g: String, i: Input) -> Result<Vec<Step>, InputError> {
        one_of!(i: media_id, file, file_url)?;
        if let Some(file_name) = &i.file_name {
            non_empty("file_name", file_name)?;
        }
        let send = |media: MediaRef, file_name: String, file_type: FileType| {
            let message = MediaMessage::File {
                media,
                file_name,
                file_type: file_type.as_str().to_owned(),
            };
            group_send(g.clone(), message.into())
        };
        if let Some(media_id) = &i.media_id {
            token("media_id", media_id)?;
            let ctx = " with `media_id`";
            let file_name = required("file_name", i.file_name.as_deref(), ctx)?.to_owned();
            let file_type = i
                .file_type
                .ok_or_else(|| InputError::field("file_type", format!("is required{ctx}")))?;
            return Ok(vec![send(
                MediaRef::Given(media_id.trim().to_owned()),
                file_name,
                file_type,
            )?]);
        }
        // The file's own name (uploaded as), and the field to blame when it does not say the type.
        let (source_name, name_field, source) = if let Some(file) = &i.file {
            non_empty("file.name", &file.name)?;
            (file.name.trim().to_owned(), "file.name", None)
        } else {
            let raw = i.file_url.as_deref().unwrap_or_default();
            let u = download_url("file_url", raw)?;
            let name = match (&i.file_name, url_file_name(&u)) {
                (Some(n), _) => n.trim().to_owned(),
                (None, Some(n)) => n,
                (None, None) => {
                    return Err(InputError::field(
                        "file_name",
                        "is required: `file_url` does not end in a file name",
                    ));
                }
            };
            (name, "file_url", Some(u))
        };
        let file_type = match i.file_type {
            Some(t) => t,
            None => {
                let from = i.file_name.as_deref().unwrap_or(&source_name);
                extension(from)
                    .and_then(|e| FileType::parse(&e))
                    .ok_or_else(|| {
                        let field = if i.file_name.is_some() {
                            "file_name"
                        } else {
                            name_field
                        };
                        InputError::field(
                            field,
                            format!(
                                "`{from}` is not a file type DingTalk sends ({}); name the file so \
                                 or give `file_type`",
                                FileType::ALL
                                    .iter()
                                    .map(|t| t.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?
            }
        };
        // Upload under a name whose extension DingTalk's upload accepts for the declared type.
        let upload_name = if extension(&source_name).as_deref() == Some(file_type.as_str()) {
            source_name.clone()
        } else {
            // A name ending in a control character or space would hide the extension added to it.
            let base = source_name.trim_end_matches(super::types::is_blank);
            let base = if base.is_empty() { "file" } else { base };
            format!("{base}.{}", file_type.as_str())
        };
        let source = match (source, &i.file) {
            (None, Some(file)) => {
                let renamed = InlineFile {
                    name: Text(upload_name.clone()),
                    content_base64: file.content_base64.clone(),
                };
                inline_file(&renamed, MediaKind::File)
                    .map_err(|e| e.renamed("file.name", name_field))?
                    .1
            }
            (Some(u), _) => FileSource::Url { url: u.to_string() },
            (None, None) => {
                return Err(InputError::field(
                    "file",
                    "is required: give one of `media_id`, `file`, `file_url`",
                ));
            }
        };
        let display_name = i.file_name.clone().map_or(source_name, |n| n.0);
        Ok(vec![
            Step::Upload {
                media_type: MediaKind::File,
                file_name: upload_name,
                source,
            },
            send(MediaRef::Uploaded, display_name, file_type)?,
        ])
    }
}
