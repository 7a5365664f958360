//! Input types several actions share, and the JSON Schemas of the kinds of string they take
//! (a group chat id, a non-empty text, a link, a picture, a token, base64). The schemas state
//! the server's real rules, so a request valid by the catalog is not refused for its shape; the
//! typed checks in [`super::compose`] enforce the same rules with field-naming errors.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Longest group chat id accepted; real ones are about 30 characters.
pub const MAX_GROUP_ID_CHARS: usize = 128;

/// A link DingTalk opens: http(s) with a host (and a valid port), or `dingtalk://`.
const LINK: &str = r"(?:https?://[A-Za-z0-9.\-]+(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:[/?#]\S*)?|dingtalk://\S+)";
const NO_SPACE: &str = r"^\S+$";
const NOT_BLANK: &str = r"\S";
const DOWNLOAD: &str = r"^\s*https?://[A-Za-z0-9.\-]+(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:[/?#]\S*)?\s*$";
const BASE64: &str = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$";

fn link_pattern() -> String {
    format!(r"^\s*{LINK}\s*$")
}

fn picture_pattern() -> String {
    format!(r"^\s*(?:[@$]\S+|{LINK})\s*$")
}

/// What a failed `pattern` of these schemas means, in words.
pub(crate) fn pattern_reason(pattern: &str) -> String {
    if pattern == NO_SPACE {
        return "must not be empty or contain whitespace".into();
    }
    if pattern == NOT_BLANK {
        return "must not be empty".into();
    }
    if pattern == link_pattern() {
        return "must be an http(s):// or dingtalk:// link".into();
    }
    if pattern == picture_pattern() {
        return "must be an http(s) URL or the media id of an upload (`@…`)".into();
    }
    if pattern == DOWNLOAD {
        return "must be an http(s):// URL the server can download".into();
    }
    if pattern == BASE64 {
        return "is not base64".into();
    }
    for kind in MediaKind::ALL {
        if pattern == kind.name_pattern() {
            return format!(
                "a {} must be one of {}",
                kind.as_str(),
                kind.to_dingtalk().formats().join(", ")
            );
        }
    }
    format!("does not match `{pattern}`")
}

/// The group's openConversationId (`cid…==`).
pub(crate) fn group_chat_id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_GROUP_ID_CHARS,
        "pattern": NO_SPACE,
        "examples": ["cidSandboxOps0000000000=="],
    })
}

/// Text with at least one character that is not whitespace.
pub(crate) fn text_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1, "pattern": NOT_BLANK })
}

/// A list of opaque tokens, `min` to `max` of them.
pub(crate) fn tokens_rule(min: usize, max: usize) -> serde_json::Value {
    serde_json::json!({
        "minItems": min,
        "maxItems": max,
        "items": { "type": "string", "minLength": 1, "pattern": NO_SPACE },
    })
}

/// An opaque DingTalk token (key, id): non-empty, no whitespace.
pub(crate) fn token_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1, "pattern": NO_SPACE })
}

/// A link opened by a message or button: http(s) or `dingtalk://`.
pub(crate) fn link_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": link_pattern() })
}

/// A picture: an http(s) URL or the media id of an upload (`@…`, `$…`).
pub(crate) fn picture_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": picture_pattern() })
}

/// A URL the server downloads: http(s) only.
pub(crate) fn download_url_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": DOWNLOAD })
}

/// Base64 of at least one byte (standard alphabet; padding optional).
pub(crate) fn base64_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 2,
        "pattern": BASE64,
        "contentEncoding": "base64",
    })
}

/// A file carried inside the JSON request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineFile {
    /// File name with its extension, e.g. `chart.png`; the extension decides the format.
    #[schemars(schema_with = "text_schema")]
    pub name: String,
    /// The file's bytes in base64 (standard alphabet; padding and line breaks are optional).
    #[schemars(schema_with = "base64_schema")]
    pub content_base64: String,
}

/// File types a file message can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    Xlsx,
    Pdf,
    Zip,
    Rar,
    Doc,
    Docx,
}

impl FileType {
    pub const ALL: &'static [FileType] = &[
        FileType::Xlsx,
        FileType::Pdf,
        FileType::Zip,
        FileType::Rar,
        FileType::Doc,
        FileType::Docx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Xlsx => "xlsx",
            FileType::Pdf => "pdf",
            FileType::Zip => "zip",
            FileType::Rar => "rar",
            FileType::Doc => "doc",
            FileType::Docx => "docx",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// Media types DingTalk's upload takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// jpg, jpeg, gif, png, bmp; up to 20 MB.
    Image,
    /// amr, mp3, wav; up to 2 MB.
    Voice,
    /// mp4; up to 20 MB.
    Video,
    /// doc, docx, xls, xlsx, ppt, pptx, zip, pdf, rar; up to 20 MB.
    File,
}

impl MediaKind {
    pub const ALL: &'static [MediaKind] = &[
        MediaKind::Image,
        MediaKind::Voice,
        MediaKind::Video,
        MediaKind::File,
    ];

    pub fn to_dingtalk(self) -> dingtalk::MediaType {
        match self {
            MediaKind::Image => dingtalk::MediaType::Image,
            MediaKind::Voice => dingtalk::MediaType::Voice,
            MediaKind::Video => dingtalk::MediaType::Video,
            MediaKind::File => dingtalk::MediaType::File,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.to_dingtalk().as_str()
    }

    /// A pattern of the file names DingTalk takes for this kind (by extension).
    pub fn name_pattern(self) -> String {
        format!(
            r"(?i)\S\.(?:{})\s*$",
            self.to_dingtalk().formats().join("|")
        )
    }
}

/// One ActionCard button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonInput {
    /// Text on the button.
    #[schemars(schema_with = "text_schema")]
    pub title: String,
    /// Link opened by the button: http(s) or `dingtalk://`.
    #[schemars(schema_with = "link_schema")]
    pub url: String,
}

/// How the buttons of a multi-button ActionCard are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// 2 to 5 buttons stacked.
    #[default]
    Vertical,
    /// Exactly 2 buttons side by side.
    Horizontal,
}

impl Layout {
    pub fn to_dingtalk(self) -> dingtalk::ButtonLayout {
        match self {
            Layout::Vertical => dingtalk::ButtonLayout::Vertical,
            Layout::Horizontal => dingtalk::ButtonLayout::Horizontal,
        }
    }
}

/// One entry of a feed card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedLinkInput {
    /// Entry title.
    #[schemars(schema_with = "text_schema")]
    pub title: String,
    /// Link opened by the entry: http(s) or `dingtalk://`.
    #[schemars(schema_with = "link_schema")]
    pub url: String,
    /// Entry picture: http(s) URL.
    #[schemars(schema_with = "picture_schema")]
    pub image_url: String,
}

/// JSON Schema rules for the single-button or multi-button form of an ActionCard: either
/// `button_text` + `redirect_url`, or `buttons` (2 to 5 vertical, exactly 2 horizontal) with an
/// optional `button_layout`.
pub(crate) fn card_buttons_rule() -> serde_json::Value {
    serde_json::json!({
        "oneOf": [
            {
                "required": ["button_text", "redirect_url"],
                "not": { "anyOf": [{ "required": ["buttons"] }, { "required": ["button_layout"] }] }
            },
            {
                "required": ["buttons"],
                "not": { "anyOf": [{ "required": ["button_text"] }, { "required": ["redirect_url"] }] },
                "if": { "required": ["button_layout"], "properties": { "button_layout": { "const": "horizontal" } } },
                "then": { "properties": { "buttons": { "minItems": 2, "maxItems": 2 } } },
                "else": { "properties": { "buttons": { "minItems": 2, "maxItems": 5 } } }
            }
        ]
    })
}

/// Adds `rule`'s keywords to an input schema (a `transform` of the derive): objects merge,
/// lists (`required`, `allOf`) grow, anything else is set.
pub(crate) fn add_rule(schema: &mut Schema, rule: serde_json::Value) {
    if let Some(obj) = schema.as_object_mut() {
        merge(obj, rule);
    }
}

fn merge(into: &mut serde_json::Map<String, serde_json::Value>, rule: serde_json::Value) {
    use serde_json::Value;
    let Value::Object(rule) = rule else { return };
    for (k, v) in rule {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(existing)), v @ Value::Object(_)) => merge(existing, v),
            (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Which fields a `msg_type` needs and which it may use, for actions that send several message
/// types through one input: the plan refuses fields another type uses, and the schema states
/// the same table.
pub(crate) struct MsgTypeFields {
    pub msg_type: &'static str,
    pub required: &'static [&'static str],
    pub used: &'static [&'static str],
}

impl MsgTypeFields {
    pub fn find(table: &'static [MsgTypeFields], msg_type: &str) -> &'static MsgTypeFields {
        table
            .iter()
            .find(|t| t.msg_type == msg_type)
            .unwrap_or(&table[0])
    }
}

/// The schema rule for such a table: for each `msg_type`, its required fields, and none of the
/// `optional` fields it does not use (a list field may be given empty, a flag `false`).
pub(crate) fn msg_type_rule(
    table: &[MsgTypeFields],
    optional: &[&str],
    empty_ok: &[(&str, serde_json::Value)],
) -> serde_json::Value {
    let rules: Vec<_> = table
        .iter()
        .map(|t| {
            let unused: Vec<&str> = optional
                .iter()
                .copied()
                .filter(|f| !t.used.contains(f))
                .collect();
            let mut then = serde_json::json!({ "required": t.required });
            let absent: Vec<_> = unused
                .iter()
                .filter(|f| !empty_ok.iter().any(|(n, _)| n == *f))
                .map(|f| serde_json::json!({ "required": [f] }))
                .collect();
            if !absent.is_empty() {
                then["not"] = serde_json::json!({ "anyOf": absent });
            }
            for (name, only) in empty_ok {
                if unused.contains(name) {
                    then["properties"][*name] = only.clone();
                }
            }
            if t.used.contains(&"buttons") {
                then["allOf"] = serde_json::json!([card_buttons_rule()]);
            }
            serde_json::json!({
                "if": { "properties": { "msg_type": { "const": t.msg_type } } },
                "then": then,
            })
        })
        .collect();
    serde_json::json!({ "allOf": rules })
}
