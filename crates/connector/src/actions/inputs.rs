//! The input of every action, one type per action, with the seed's parameter names. These types
//! both validate requests (serde) and describe them (schemars), so the catalog cannot drift from
//! what is accepted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

fn default_max_results() -> u32 {
    100
}

/// A file carried inside the JSON request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineFile {
    /// File name with its extension, e.g. `chart.png`; the extension decides the format.
    pub name: String,
    /// The file's bytes in base64 (standard alphabet; padding and line breaks are optional).
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
}

/// One ActionCard button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonInput {
    /// Text on the button.
    pub title: String,
    /// Link opened by the button: http(s) or `dingtalk://`.
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

/// Send a text message to a group chat through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendText {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// Message content.
    pub content: String,
    /// Split content over DingTalk's size limit into numbered parts sent in order; with `false`
    /// an oversize message is refused.
    #[serde(default = "yes")]
    pub split: bool,
}

/// Send a Markdown message to a group chat through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMarkdown {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// Message subject (shown in the conversation list and notification).
    pub subject: String,
    /// Message content in DingTalk's Markdown subset.
    pub content: String,
    /// Split content over DingTalk's size limit into numbered parts sent in order; with `false`
    /// an oversize message is refused.
    #[serde(default = "yes")]
    pub split: bool,
}

/// Send a link message to a group chat through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendLink {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// Message subject.
    pub subject: String,
    /// Message content.
    pub content: String,
    /// Link to the preview image (http(s) URL or media id `@…`).
    pub image_url: String,
    /// Redirection link opened after clicking the message: http(s) or `dingtalk://`.
    pub redirect_url: String,
}

/// Send an image message to a group chat through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendImage {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// The image: an http(s) URL or a media id (`@…`/`$…`). Give this or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// An image file to upload first (jpg, jpeg, gif, png, bmp). Give this or `image_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<InlineFile>,
}

/// Send a file message to a group chat through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendFile {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// media_id of an uploaded file. Give exactly one of `media_id`, `file`, `file_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// Name of the file to be sent; required with `media_id`, otherwise taken from the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// File type; required with `media_id`, otherwise taken from the file name's extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<FileType>,
    /// A file to upload first, carried in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<InlineFile>,
    /// An http(s) URL the server downloads (at most 20 MB) and uploads first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
}

/// Send an ActionCard message to a group chat through the app robot: one button
/// (`button_text` + `redirect_url`) or several (`buttons`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendActionCard {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// Message subject.
    pub subject: String,
    /// Message content (Markdown).
    pub content: String,
    /// Text displayed on the single redirect button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
    /// Link opened by the single button: http(s) or `dingtalk://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Several buttons instead of one: 2 to 5 when vertical, exactly 2 when horizontal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<ButtonInput>>,
    /// Layout of `buttons` (default `vertical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_layout: Option<Layout>,
}

/// Upload a file to DingTalk and get its media_id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadMedia {
    /// What kind of media this is; decides the accepted formats and size limit.
    pub media_type: MediaKind,
    /// The file, carried in the request. Give this or `file_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<InlineFile>,
    /// An http(s) URL the server downloads (within the type's size limit). Give this or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    /// Name to upload a `file_url` download as; defaults to the URL's last path segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// Who has read a group message sent by the app robot, one page at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryReadStatus {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// The `process_query_key` a send returned.
    pub process_query_key: String,
    /// Page size, 1 to 200.
    #[serde(default = "default_max_results")]
    #[schemars(range(min = 1, max = 200))]
    pub max_results: u32,
    /// `next_token` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Recall group messages sent by the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallMessages {
    /// The group's openConversationId (`cid…==`).
    pub group_chat_id: String,
    /// The `process_query_key`s of the messages to recall, 1 to 20.
    #[schemars(length(min = 1, max = 20))]
    pub process_query_keys: Vec<String>,
}

/// Message types the app robot can send 1:1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserMsgType {
    /// `content`
    Text,
    /// `subject`, `content`
    Markdown,
    /// `subject`, `content`, `image_url`, `redirect_url`
    Link,
    /// `image_url`
    Image,
    /// `subject`, `content`, and `button_text` + `redirect_url` or `buttons` (+ `button_layout`)
    ActionCard,
}

/// Send one message 1:1 to up to 20 users through the app robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendToUsers {
    /// Recipients' userIds, 1 to 20.
    #[schemars(length(min = 1, max = 20))]
    pub user_ids: Vec<String>,
    /// The message type; decides which of the other fields are used.
    pub msg_type: UserMsgType,
    /// Message content (text, markdown, link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Message subject (markdown, link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Image: http(s) URL or media id (image, link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Link opened by the message or its single button (link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Text of the single button (action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
    /// Several buttons (action_card): 2 to 5 vertical, exactly 2 horizontal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<ButtonInput>>,
    /// Layout of `buttons` (default `vertical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_layout: Option<Layout>,
}

/// Message types a webhook robot can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMsgType {
    /// `content`; mentions allowed.
    Text,
    /// `subject`, `content`; mentions allowed.
    Markdown,
    /// `subject`, `content`, `redirect_url`, optional `image_url`
    Link,
    /// `subject`, `content`, and `button_text` + `redirect_url` or `buttons` (+ `button_layout`)
    ActionCard,
    /// `links`
    FeedCard,
}

impl WebhookMsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMsgType::Text => "text",
            WebhookMsgType::Markdown => "markdown",
            WebhookMsgType::Link => "link",
            WebhookMsgType::ActionCard => "action_card",
            WebhookMsgType::FeedCard => "feed_card",
        }
    }
}

/// One entry of a feed card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedLinkInput {
    /// Entry title.
    pub title: String,
    /// Link opened by the entry: http(s) or `dingtalk://`.
    pub url: String,
    /// Entry picture: http(s) URL.
    pub image_url: String,
}

/// Send a message through a custom (webhook) robot, optionally @-mentioning people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSend {
    /// The message type; decides which of the other fields are used.
    pub msg_type: WebhookMsgType,
    /// Message content (text, markdown, link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Message subject (markdown, link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Link opened by the message or its single button (link, action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Preview picture (link, optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Text of the single button (action_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
    /// Several buttons (action_card): 2 to 5 vertical, exactly 2 horizontal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<ButtonInput>>,
    /// Layout of `buttons` (default `vertical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_layout: Option<Layout>,
    /// Feed card entries (feed_card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<FeedLinkInput>>,
    /// Mobile numbers to @-mention (text, markdown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_mobiles: Vec<String>,
    /// userIds to @-mention (text, markdown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_user_ids: Vec<String>,
    /// @-mention everyone (text, markdown).
    #[serde(default)]
    pub at_all: bool,
    /// Split text/markdown over the 20000-byte body limit into numbered parts sent in order;
    /// with `false` an oversize message is refused.
    #[serde(default = "yes")]
    pub split: bool,
}
