//! Input types several actions share, and the JSON Schemas of the kinds of string they take
//! (a group chat id, a non-empty text, a link, a picture, a token, base64). The schemas state
//! the server's real rules, so a request valid by the catalog is not refused for its shape; the
//! typed checks in [`super::compose`] enforce the same rules with field-naming errors.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Longest group chat id accepted; real ones are about 30 characters.
pub const MAX_GROUP_ID_CHARS: usize = 128;

/// Characters a token may not hold and a text may not consist of only: control characters and
/// whitespace — written out, because `\s` differs between the regex engines that read these
/// schemas (ECMA in validators, Python in schemathesis, Rust here). [`is_blank`] is the same set.
const BLANK: &str = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff";
/// Whitespace as `str::trim` removes it.
const TRIMMED: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Whether `c` is a control character or whitespace (the class [`BLANK`] states).
pub(crate) fn is_blank(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\u{feff}'
}

/// A host a URL parser takes as it is written: a domain whose last label starts with a letter
/// (a last label of digits, or `0x…`, makes the WHATWG parser read the whole host as an IPv4
/// address, so `x0.10` is no host at all), or a dotted IPv4 address; then a valid port.
const HOST: &str = r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?";

/// A link DingTalk opens: http(s) or `dingtalk://`, with a host, then anything printable.
fn link_core() -> String {
    format!(r"(?:https?|dingtalk)://{HOST}(?:[/?#][^{BLANK}]*)?")
}

/// A token that starts with `prefix` (and may be nothing more).
pub(crate) fn prefixed_token(prefix: &str) -> String {
    format!("^{prefix}[^{BLANK}]*$")
}

pub(crate) fn no_space() -> String {
    format!("^[^{BLANK}]+$")
}

pub(crate) fn not_blank() -> String {
    format!("[^{BLANK}]")
}

/// Something besides whitespace, and no NUL anywhere, in one pattern (schema generators handle
/// one pattern better than two).
pub(crate) fn text_without_nul() -> String {
    format!(r"^[^\u0000]*[^{BLANK}][^\u0000]*$")
}

fn download() -> String {
    format!(r"^[{TRIMMED}]*https?://{HOST}(?:[/?#][^{BLANK}]*)?[{TRIMMED}]*$")
}

/// A connection's name: plain characters, and not only dots (`.` and `..` are URL path
/// segments, so such a name could not be addressed).
pub(crate) const PLAIN_NAME: &str = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$";

const BASE64: &str = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$";

fn link_pattern() -> String {
    format!(r"^[{TRIMMED}]*{}[{TRIMMED}]*$", link_core())
}

fn picture_pattern() -> String {
    format!(
        r"^[{TRIMMED}]*(?:[@$][^{BLANK}]+|{})[{TRIMMED}]*$",
        link_core()
    )
}

/// What a failed `pattern` of these schemas means, in words.
pub(crate) fn pattern_reason(pattern: &str) -> String {
    if pattern == r"^[^\u0000]*$" {
        return "must not contain the NUL character (U+0000)".into();
    }
    if pattern == no_space() {
        return "must not be empty or contain whitespace or control characters".into();
    }
    if pattern == not_blank() {
        return "must not be empty".into();
    }
    if pattern == link_pattern() {
        return "must be an http(s):// or dingtalk:// link".into();
    }
    if pattern == picture_pattern() {
        return "must be an http(s) URL or the media id of an upload (`@…`)".into();
    }
    if pattern == download() {
        return "must be an http(s):// URL the server can download".into();
    }
    if pattern == PLAIN_NAME {
        return "may contain only letters, digits, '-', '_' and '.', and not only dots".into();
    }
    if pattern == BASE64 {
        return "is not base64".into();
    }
    if pattern == named_url() {
        return "must end in a file name (or give `file_name`)".into();
    }
    for kind in MediaKind::ALL {
        if pattern == kind.url_pattern() {
            return format!(
                "must end in a file name with one of {} (or give `file_name`)",
                kind.to_dingtalk().formats().join(", ")
            );
        }
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
        "pattern": no_space(),
        "examples": ["cidSandboxOps0000000000=="],
    })
}

/// Text with at least one character that is not whitespace.
pub(crate) fn text_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1, "pattern": not_blank() })
}

/// Strings whose JSON Schema states their rule (inlined where they are used); each reads and
/// writes as a plain string and derefs to it.
macro_rules! schema_string {
    ($($(#[$doc:meta])* $name:ident => $schema:ident),+ $(,)?) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
            #[serde(transparent)]
            pub struct $name(pub String);

            impl std::ops::Deref for $name {
                type Target = String;
                fn deref(&self) -> &String {
                    &self.0
                }
            }

            impl JsonSchema for $name {
                fn inline_schema() -> bool {
                    true
                }
                fn schema_name() -> std::borrow::Cow<'static, str> {
                    stringify!($name).into()
                }
                fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                    $schema(generator)
                }
            }
        )+
    };
}

schema_string! {
    /// Text with at least one character that is not whitespace.
    Text => text_schema,
    /// A picture: an http(s) URL or a media id from an upload (`@…`/`$…`).
    Picture => picture_schema,
    /// A link DingTalk clients open: http(s) or `dingtalk://`.
    Link => link_schema,
}

/// A list of opaque tokens, `min` to `max` of them.
pub(crate) fn tokens_rule(min: usize, max: usize) -> serde_json::Value {
    serde_json::json!({
        "minItems": min,
        "maxItems": max,
        "items": { "type": "string", "minLength": 1, "pattern": no_space() },
    })
}

/// An opaque DingTalk token (key, id): non-empty, no whitespace.
pub(crate) fn token_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1, "pattern": no_space() })
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
    json_schema!({ "type": "string", "pattern": download() })
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
    pub name: Text,
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

    /// A pattern of the URLs whose last path segment is such a file name.
    pub fn url_pattern(self) -> String {
        url_with_extension(self.to_dingtalk().formats())
    }

    /// A pattern of the file names DingTalk takes for this kind (by extension).
    pub fn name_pattern(self) -> String {
        format!(
            r"(?i)[^{BLANK}]\.(?:{})[{TRIMMED}]*$",
            self.to_dingtalk().formats().join("|")
        )
    }
}

/// An http(s) URL whose last path segment (percent-decoded, the name it is uploaded as) is a
/// file name ending in `tail`: at least one character that is neither blank nor `%`.
fn url_with_last_segment(tail: &str) -> String {
    format!(
        r"^[{TRIMMED}]*https?://{HOST}/(?:[^?#{BLANK}]*/)?[^/?#{BLANK}]*[^/?#%{BLANK}][^/?#{BLANK}]*{tail}(?:[?#][^{BLANK}]*)?[{TRIMMED}]*$"
    )
}

/// A pattern of the URLs whose last path segment ends in one of `extensions`.
pub(crate) fn url_with_extension(extensions: &[&str]) -> String {
    format!(
        "(?i){}",
        url_with_last_segment(&format!(r"\.(?:{})", extensions.join("|")))
    )
}

/// A pattern of the URLs with a last path segment (a file name to upload as).
pub(crate) fn named_url() -> String {
    url_with_last_segment("")
}

/// A pattern of file names with one of `extensions`.
pub(crate) fn name_with_extension(extensions: &[&str]) -> String {
    format!(r"(?i)[^{BLANK}]\.(?:{})[{TRIMMED}]*$", extensions.join("|"))
}

/// One ActionCard button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonInput {
    /// Text on the button.
    pub title: Text,
    /// Link opened by the button: http(s) or `dingtalk://`.
    pub url: Link,
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
    pub title: Text,
    /// Link opened by the entry: http(s) or `dingtalk://`.
    pub url: Link,
    /// Entry picture: http(s) URL.
    pub image_url: Picture,
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

/// The message fields of actions that send one of several message types (`send_to_users`,
/// `webhook_send`, flattened into their inputs); which ones a type uses is its
/// [`MsgTypeFields`] entry.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageFields {
    /// Message content (text, markdown, link, action_card).
    pub content: Option<Text>,
    /// Message subject (markdown, link, action_card).
    pub subject: Option<Text>,
    /// Picture: http(s) URL or media id (image, link).
    pub image_url: Option<Picture>,
    /// Link opened by the message or its single button (link, action_card).
    pub redirect_url: Option<Link>,
    /// Text of the single button (action_card).
    pub button_text: Option<Text>,
    /// Several buttons (action_card): 2 to 5 vertical, exactly 2 horizontal.
    pub buttons: Option<Vec<ButtonInput>>,
    /// Layout of `buttons` (default `vertical`).
    pub button_layout: Option<Layout>,
}

impl MessageFields {
    pub const NAMES: [&'static str; 7] = [
        "content",
        "subject",
        "image_url",
        "redirect_url",
        "button_text",
        "buttons",
        "button_layout",
    ];

    /// The fields an ActionCard uses: one button (`button_text` + `redirect_url`) or several.
    pub const CARD: &'static [&'static str] = &[
        "subject",
        "content",
        "redirect_url",
        "button_text",
        "buttons",
        "button_layout",
    ];

    /// Each field's name and whether it was given.
    pub fn given(&self) -> [(&'static str, bool); 7] {
        let present = [
            self.content.is_some(),
            self.subject.is_some(),
            self.image_url.is_some(),
            self.redirect_url.is_some(),
            self.button_text.is_some(),
            self.buttons.is_some(),
            self.button_layout.is_some(),
        ];
        std::array::from_fn(|i| (Self::NAMES[i], present[i]))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the schema calls a link, the URL parser must take (and the other way round for the
    /// hosts it refuses): schemathesis found `http://X0.10` passing one and failing the other.
    #[test]
    fn the_link_pattern_takes_only_hosts_a_url_parser_takes_as_written() {
        let pattern = link_pattern();
        let re = regex_lite(&pattern);
        for ok in [
            "https://example.com/a?b#c",
            "http://x1",
            "http://127.0.0.1:8081/_sim/samples/chart.png",
            "dingtalk://dingtalkclient/page/link?url=x",
            "http://a-b.c0",
        ] {
            assert!(re(ok), "{ok}");
            assert!(url::Url::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://X0.10",
            "http://a.0x1f",
            "http://999.1.1.1",
            "http://.a",
            "http://a..b",
        ] {
            assert!(!re(bad), "{bad}");
        }
    }

    fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool + use<> {
        let schema = serde_json::json!({"type": "string", "pattern": pattern});
        let v = jsonschema::validator_for(&schema).unwrap();
        move |s| v.is_valid(&serde_json::Value::from(s))
    }
}
