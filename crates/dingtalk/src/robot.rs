//! Enterprise-internal app robot messages (docs/dingtalk-api.md §2): typed messages for every
//! `msgKey`, and one request type per robot method.

use crate::auth::AppClient;
use crate::client::ApiRequest;
use crate::error::Error;
use crate::ids::{MediaId, OpenConversationId, ProcessQueryKey, RobotCode, UserId};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// DingTalk's limit on the serialized `msgParam` of a robot message (§2.2).
pub const MAX_MSG_PARAM_BYTES: usize = 15_000;
/// Recipients per 1:1 batch send; the doc says 20 in one place and 100 in another (§2.4).
pub const MAX_OTO_USERS: usize = 20;
/// Keys per recall call (§2.6).
pub const MAX_RECALL_KEYS: usize = 20;
/// Page size limit of the group read-status query (§2.5).
pub const MAX_QUERY_RESULTS: u32 = 200;

/// One ActionCard button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Button {
    pub title: String,
    pub url: String,
}

/// How the buttons of a multi-button ActionCard are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonLayout {
    /// 2–5 buttons stacked (`sampleActionCard2`..`5`).
    #[default]
    Vertical,
    /// Exactly 2 buttons side by side (`sampleActionCard6`).
    Horizontal,
}

impl ButtonLayout {
    /// Whether DingTalk shows `n` buttons in this layout; if not, what it takes instead.
    pub fn check_count(self, n: usize) -> Result<(), &'static str> {
        match self {
            ButtonLayout::Vertical if (2..=5).contains(&n) => Ok(()),
            ButtonLayout::Horizontal if n == 2 => Ok(()),
            ButtonLayout::Vertical => Err("2 to 5 buttons when vertical"),
            ButtonLayout::Horizontal => Err("exactly 2 buttons when horizontal"),
        }
    }
}

/// A robot message: one variant per `msgKey` family of §2.3. Serializable (tagged by `type`) so
/// a caller can keep a message to send later; that form is not DingTalk's wire format
/// ([`Message::msg_param_value`] is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// `sampleText`
    Text { content: String },
    /// `sampleMarkdown`
    Markdown { title: String, text: String },
    /// `sampleImageMsg`; `photo_url` is a URL or a media id.
    Image { photo_url: String },
    /// `sampleLink`
    Link {
        title: String,
        text: String,
        pic_url: String,
        message_url: String,
    },
    /// `sampleActionCard`: one button.
    ActionCard {
        title: String,
        text: String,
        single_title: String,
        single_url: String,
    },
    /// `sampleActionCard2`..`6`: several buttons.
    ActionCardButtons {
        title: String,
        text: String,
        buttons: Vec<Button>,
        layout: ButtonLayout,
    },
    /// `sampleFile`
    File {
        media_id: MediaId,
        file_name: String,
        file_type: String,
    },
    /// `sampleAudio`; `duration_ms` as DingTalk wants it, in milliseconds.
    Audio { media_id: MediaId, duration_ms: u64 },
    /// `sampleVideo`
    Video {
        video_media_id: MediaId,
        pic_media_id: MediaId,
        duration_secs: u64,
        video_type: String,
    },
}

/// File types `sampleFile` accepts (§2.3).
pub const FILE_TYPES: &[&str] = &["xlsx", "pdf", "zip", "rar", "doc", "docx"];

/// Whether `url` is a link DingTalk clients can open: http(s), or DingTalk's own
/// `dingtalk://` scheme (used to choose where a PC client opens a link, §4).
pub fn check_link(field: &str, url: &str) -> Result<(), Error> {
    parse_url(field, url, &["dingtalk"], "use http(s):// or dingtalk://").map(drop)
}

/// Parses `url`: an http(s) URL with a host, or one of `other_schemes`; `allowed` tells the
/// caller what to use instead when the scheme is none of those.
pub fn parse_url(
    field: &str,
    url: &str,
    other_schemes: &[&str],
    allowed: &str,
) -> Result<url::Url, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::invalid_input(field, "must not be empty"));
    }
    let u = url::Url::parse(url)
        .map_err(|e| Error::invalid_input(field, format!("is not a URL: {e}")))?;
    let web = matches!(u.scheme(), "http" | "https") && u.host_str().is_some();
    if web || other_schemes.contains(&u.scheme()) {
        Ok(u)
    } else {
        let reason = format!("scheme `{}` is not allowed; {allowed}", u.scheme());
        Err(Error::invalid_input(field, reason))
    }
}

/// A picture reference: an http(s) URL or a media id from an upload (`@…`/`$…`).
pub fn check_picture(field: &str, pic: &str) -> Result<(), Error> {
    let pic = pic.trim();
    if pic.starts_with('@') || pic.starts_with('$') {
        if pic.len() < 2 || pic.chars().any(char::is_whitespace) {
            return Err(Error::invalid_input(field, "is not a valid media id"));
        }
        return Ok(());
    }
    check_link(field, pic)
}

impl Message {
    /// The `msgKey` this message is sent with.
    pub fn msg_key(&self) -> String {
        match self {
            Message::Text { .. } => "sampleText".into(),
            Message::Markdown { .. } => "sampleMarkdown".into(),
            Message::Image { .. } => "sampleImageMsg".into(),
            Message::Link { .. } => "sampleLink".into(),
            Message::ActionCard { .. } => "sampleActionCard".into(),
            Message::ActionCardButtons {
                buttons, layout, ..
            } => match layout {
                ButtonLayout::Horizontal => "sampleActionCard6".into(),
                ButtonLayout::Vertical => format!("sampleActionCard{}", buttons.len()),
            },
            Message::File { .. } => "sampleFile".into(),
            Message::Audio { .. } => "sampleAudio".into(),
            Message::Video { .. } => "sampleVideo".into(),
        }
    }

    /// Check the message against DingTalk's rules, naming the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        fn non_empty(field: &str, v: &str) -> Result<(), Error> {
            if v.trim().is_empty() {
                Err(Error::invalid_input(field, "must not be empty"))
            } else {
                Ok(())
            }
        }
        match self {
            Message::Text { content } => non_empty("content", content),
            Message::Markdown { title, text } => {
                non_empty("title", title)?;
                non_empty("text", text)
            }
            Message::Image { photo_url } => check_picture("photoURL", photo_url),
            Message::Link {
                title,
                text,
                pic_url,
                message_url,
            } => {
                non_empty("title", title)?;
                non_empty("text", text)?;
                check_picture("picUrl", pic_url)?;
                check_link("messageUrl", message_url)
            }
            Message::ActionCard {
                title,
                text,
                single_title,
                single_url,
            } => {
                non_empty("title", title)?;
                non_empty("text", text)?;
                non_empty("singleTitle", single_title)?;
                check_link("singleURL", single_url)
            }
            Message::ActionCardButtons {
                title,
                text,
                buttons,
                layout,
            } => {
                non_empty("title", title)?;
                non_empty("text", text)?;
                if let Err(want) = layout.check_count(buttons.len()) {
                    return Err(Error::invalid_input(
                        "buttons",
                        format!("has {} buttons; DingTalk takes {want}", buttons.len()),
                    ));
                }
                for (i, b) in buttons.iter().enumerate() {
                    non_empty(&format!("buttons[{i}].title"), &b.title)?;
                    check_link(&format!("buttons[{i}].url"), &b.url)?;
                }
                Ok(())
            }
            Message::File {
                media_id,
                file_name,
                file_type,
            } => {
                non_empty("mediaId", media_id.as_str())?;
                non_empty("fileName", file_name)?;
                if !FILE_TYPES.contains(&file_type.as_str()) {
                    return Err(Error::invalid_input(
                        "fileType",
                        format!("`{file_type}` is not one of {}", FILE_TYPES.join(", ")),
                    ));
                }
                Ok(())
            }
            Message::Audio { media_id, .. } => non_empty("mediaId", media_id.as_str()),
            Message::Video {
                video_media_id,
                pic_media_id,
                video_type,
                ..
            } => {
                non_empty("videoMediaId", video_media_id.as_str())?;
                non_empty("picMediaId", pic_media_id.as_str())?;
                non_empty("videoType", video_type)
            }
        }
    }

    /// The `msgParam` JSON object, with DingTalk's irregular key names.
    pub fn msg_param_value(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Message::Text { content } => json!({ "content": content }),
            Message::Markdown { title, text } => json!({ "title": title, "text": text }),
            Message::Image { photo_url } => json!({ "photoURL": photo_url }),
            Message::Link {
                title,
                text,
                pic_url,
                message_url,
            } => {
                json!({ "title": title, "text": text, "picUrl": pic_url, "messageUrl": message_url })
            }
            Message::ActionCard {
                title,
                text,
                single_title,
                single_url,
            } => {
                json!({ "title": title, "text": text, "singleTitle": single_title, "singleURL": single_url })
            }
            Message::ActionCardButtons {
                title,
                text,
                buttons,
                layout,
            } => {
                let mut m = serde_json::Map::new();
                m.insert("title".into(), json!(title));
                m.insert("text".into(), json!(text));
                for (i, b) in buttons.iter().enumerate() {
                    let n = i + 1;
                    // sampleActionCard6 spells its keys `buttonTitleN`/`buttonUrlN` (§2.3).
                    let (t, u) = match layout {
                        ButtonLayout::Horizontal => {
                            (format!("buttonTitle{n}"), format!("buttonUrl{n}"))
                        }
                        ButtonLayout::Vertical => {
                            (format!("actionTitle{n}"), format!("actionURL{n}"))
                        }
                    };
                    m.insert(t, json!(b.title));
                    m.insert(u, json!(b.url));
                }
                serde_json::Value::Object(m)
            }
            Message::File {
                media_id,
                file_name,
                file_type,
            } => json!({ "mediaId": media_id, "fileName": file_name, "fileType": file_type }),
            Message::Audio {
                media_id,
                duration_ms,
            } => json!({ "mediaId": media_id, "duration": duration_ms.to_string() }),
            Message::Video {
                video_media_id,
                pic_media_id,
                duration_secs,
                video_type,
            } => json!({
                "videoMediaId": video_media_id,
                "picMediaId": pic_media_id,
                "duration": duration_secs.to_string(),
                "videoType": video_type,
            }),
        }
    }

    /// Validate and encode as `(msgKey, msgParam)`, where `msgParam` is a JSON *string* no
    /// longer than [`MAX_MSG_PARAM_BYTES`].
    pub fn encode(&self) -> Result<(String, String), Error> {
        self.validate()?;
        let param = self.msg_param_value().to_string();
        if param.len() > MAX_MSG_PARAM_BYTES {
            return Err(Error::invalid_input(
                "msgParam",
                format!(
                    "is {} bytes; DingTalk allows {MAX_MSG_PARAM_BYTES}",
                    param.len()
                ),
            ));
        }
        Ok((self.msg_key(), param))
    }
}

/// `POST /v1.0/robot/groupMessages/send` (OrgGroupSend): a robot message to a group chat.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupSend {
    pub msg_key: String,
    /// JSON *string*, not an object.
    pub msg_param: String,
    pub open_conversation_id: OpenConversationId,
    pub robot_code: RobotCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cool_app_code: Option<String>,
}

impl OrgGroupSend {
    pub fn new(
        robot_code: RobotCode,
        group: OpenConversationId,
        message: &Message,
    ) -> Result<Self, Error> {
        if group.as_str().trim().is_empty() {
            return Err(Error::invalid_input(
                "openConversationId",
                "must not be empty",
            ));
        }
        if robot_code.as_str().trim().is_empty() {
            return Err(Error::invalid_input("robotCode", "must not be empty"));
        }
        let (msg_key, msg_param) = message.encode()?;
        Ok(OrgGroupSend {
            msg_key,
            msg_param,
            open_conversation_id: group,
            robot_code,
            cool_app_code: None,
        })
    }
}

/// Response of [`OrgGroupSend`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupSendResponse {
    pub process_query_key: ProcessQueryKey,
}

impl ApiRequest for OrgGroupSend {
    type Response = OrgGroupSendResponse;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = "/v1.0/robot/groupMessages/send";
    const ROUTE: &'static str = "robot.group_send";
}

/// `POST /v1.0/robot/groupMessages/query` (OrgGroupQuery): who has read a group message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupQuery {
    pub process_query_key: ProcessQueryKey,
    pub open_conversation_id: OpenConversationId,
    pub robot_code: RobotCode,
    pub max_results: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Response of [`OrgGroupQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupQueryResponse {
    /// `SUCCESS`, `RECALLED` or `PROCESSING`.
    pub send_status: String,
    #[serde(default)]
    pub read_user_ids: Vec<UserId>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

impl ApiRequest for OrgGroupQuery {
    type Response = OrgGroupQueryResponse;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = "/v1.0/robot/groupMessages/query";
    const ROUTE: &'static str = "robot.group_query";
}

/// `POST /v1.0/robot/groupMessages/recall` (OrgGroupRecall): recall group messages.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroupRecall {
    pub open_conversation_id: OpenConversationId,
    pub robot_code: RobotCode,
    pub process_query_keys: Vec<ProcessQueryKey>,
}

/// Response of the recall methods: `failedResult` is a map from key to reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallResponse {
    #[serde(default)]
    pub success_result: Vec<ProcessQueryKey>,
    #[serde(default)]
    pub failed_result: BTreeMap<String, String>,
}

impl ApiRequest for OrgGroupRecall {
    type Response = RecallResponse;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = "/v1.0/robot/groupMessages/recall";
    const ROUTE: &'static str = "robot.group_recall";
}

fn check_keys(keys: &[ProcessQueryKey]) -> Result<(), Error> {
    if keys.is_empty() {
        return Err(Error::invalid_input(
            "processQueryKeys",
            "must list at least one key",
        ));
    }
    if keys.len() > MAX_RECALL_KEYS {
        return Err(Error::invalid_input(
            "processQueryKeys",
            format!(
                "has {} keys; DingTalk takes at most {MAX_RECALL_KEYS} per call",
                keys.len()
            ),
        ));
    }
    Ok(())
}

impl OrgGroupRecall {
    pub fn new(
        robot_code: RobotCode,
        group: OpenConversationId,
        keys: Vec<ProcessQueryKey>,
    ) -> Result<Self, Error> {
        check_keys(&keys)?;
        Ok(OrgGroupRecall {
            open_conversation_id: group,
            robot_code,
            process_query_keys: keys,
        })
    }
}

/// `POST /v1.0/robot/oToMessages/batchSend` (BatchSendOTO): one message to several users 1:1.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSendOto {
    pub robot_code: RobotCode,
    pub user_ids: Vec<UserId>,
    pub msg_key: String,
    pub msg_param: String,
}

impl BatchSendOto {
    pub fn new(
        robot_code: RobotCode,
        user_ids: Vec<UserId>,
        message: &Message,
    ) -> Result<Self, Error> {
        if user_ids.is_empty() {
            return Err(Error::invalid_input(
                "userIds",
                "must list at least one user",
            ));
        }
        if user_ids.len() > MAX_OTO_USERS {
            return Err(Error::invalid_input(
                "userIds",
                format!(
                    "has {} users; DingTalk takes at most {MAX_OTO_USERS} per call",
                    user_ids.len()
                ),
            ));
        }
        let (msg_key, msg_param) = message.encode()?;
        Ok(BatchSendOto {
            robot_code,
            user_ids,
            msg_key,
            msg_param,
        })
    }
}

/// Response of [`BatchSendOto`]: per-user failures are reported inside a 200 answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSendOtoResponse {
    pub process_query_key: ProcessQueryKey,
    #[serde(default)]
    pub invalid_staff_id_list: Vec<UserId>,
    #[serde(default)]
    pub flow_controlled_staff_id_list: Vec<UserId>,
}

impl ApiRequest for BatchSendOto {
    type Response = BatchSendOtoResponse;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = "/v1.0/robot/oToMessages/batchSend";
    const ROUTE: &'static str = "robot.oto_send";
}

/// `GET /v1.0/robot/oToMessages/readStatus` (BatchOTOQuery): read status of a 1:1 message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOtoQuery {
    pub robot_code: RobotCode,
    pub process_query_key: ProcessQueryKey,
}

/// One recipient's read status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageReadInfo {
    #[serde(default)]
    pub name: String,
    pub user_id: UserId,
    /// `READ` or `UNREAD`.
    pub read_status: String,
}

/// Response of [`BatchOtoQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOtoQueryResponse {
    pub send_status: String,
    #[serde(default)]
    pub message_read_info_list: Vec<MessageReadInfo>,
}

impl ApiRequest for BatchOtoQuery {
    type Response = BatchOtoQueryResponse;
    const METHOD: Method = Method::GET;
    const PATH: &'static str = "/v1.0/robot/oToMessages/readStatus";
    const ROUTE: &'static str = "robot.oto_query";
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![
            ("robotCode", self.robot_code.to_string()),
            ("processQueryKey", self.process_query_key.to_string()),
        ]
    }
}

/// `POST /v1.0/robot/otoMessages/batchRecall` (BatchRecallOTO) — note the lower-case `oto`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecallOto {
    pub robot_code: RobotCode,
    pub process_query_keys: Vec<ProcessQueryKey>,
}

impl BatchRecallOto {
    pub fn new(robot_code: RobotCode, keys: Vec<ProcessQueryKey>) -> Result<Self, Error> {
        check_keys(&keys)?;
        Ok(BatchRecallOto {
            robot_code,
            process_query_keys: keys,
        })
    }
}

impl ApiRequest for BatchRecallOto {
    type Response = RecallResponse;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = "/v1.0/robot/otoMessages/batchRecall";
    const ROUTE: &'static str = "robot.oto_recall";
}

impl AppClient {
    /// Send `message` to a group chat through `robot_code`.
    pub async fn send_group_message(
        &self,
        robot_code: &RobotCode,
        group: &OpenConversationId,
        message: &Message,
    ) -> Result<OrgGroupSendResponse, Error> {
        let req = OrgGroupSend::new(robot_code.clone(), group.clone(), message)?;
        self.call(&req).await
    }

    /// Who has read a group message, one page at a time.
    pub async fn query_group_read_status(
        &self,
        robot_code: &RobotCode,
        group: &OpenConversationId,
        key: &ProcessQueryKey,
        max_results: u32,
        next_token: Option<String>,
    ) -> Result<OrgGroupQueryResponse, Error> {
        if max_results == 0 || max_results > MAX_QUERY_RESULTS {
            return Err(Error::invalid_input(
                "maxResults",
                format!("must be 1 to {MAX_QUERY_RESULTS}"),
            ));
        }
        self.call(&OrgGroupQuery {
            process_query_key: key.clone(),
            open_conversation_id: group.clone(),
            robot_code: robot_code.clone(),
            max_results,
            next_token,
        })
        .await
    }

    /// Recall group messages by their process query keys.
    pub async fn recall_group_messages(
        &self,
        robot_code: &RobotCode,
        group: &OpenConversationId,
        keys: Vec<ProcessQueryKey>,
    ) -> Result<RecallResponse, Error> {
        let req = OrgGroupRecall::new(robot_code.clone(), group.clone(), keys)?;
        self.call(&req).await
    }

    /// Send `message` 1:1 to several users.
    pub async fn send_to_users(
        &self,
        robot_code: &RobotCode,
        users: Vec<UserId>,
        message: &Message,
    ) -> Result<BatchSendOtoResponse, Error> {
        let req = BatchSendOto::new(robot_code.clone(), users, message)?;
        self.call(&req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_param_is_a_json_string_with_dingtalk_key_names() {
        let m = Message::ActionCardButtons {
            title: "t".into(),
            text: "x".into(),
            buttons: vec![
                Button {
                    title: "a".into(),
                    url: "https://a".into(),
                },
                Button {
                    title: "b".into(),
                    url: "https://b".into(),
                },
            ],
            layout: ButtonLayout::Horizontal,
        };
        let (key, param) = m.encode().unwrap();
        assert_eq!(key, "sampleActionCard6");
        let v: serde_json::Value = serde_json::from_str(&param).unwrap();
        assert_eq!(v["buttonUrl2"], "https://b");
        let req = OrgGroupSend::new("r".into(), "cid==".into(), &m).unwrap();
        let body = serde_json::to_value(&req).unwrap();
        assert!(body["msgParam"].is_string());
        assert_eq!(body["openConversationId"], "cid==");
    }

    #[test]
    fn vertical_cards_take_two_to_five_buttons() {
        let b = |n: usize| {
            (0..n)
                .map(|i| Button {
                    title: format!("b{i}"),
                    url: "https://x".into(),
                })
                .collect::<Vec<_>>()
        };
        for n in 2..=5 {
            let m = Message::ActionCardButtons {
                title: "t".into(),
                text: "x".into(),
                buttons: b(n),
                layout: ButtonLayout::Vertical,
            };
            assert_eq!(m.encode().unwrap().0, format!("sampleActionCard{n}"));
        }
        for n in [0, 1, 6] {
            let m = Message::ActionCardButtons {
                title: "t".into(),
                text: "x".into(),
                buttons: b(n),
                layout: ButtonLayout::Vertical,
            };
            assert_eq!(m.encode().unwrap_err().field(), Some("buttons"));
        }
    }

    #[test]
    fn oversize_msg_param_is_refused_before_sending() {
        let m = Message::Text {
            content: "x".repeat(MAX_MSG_PARAM_BYTES),
        };
        assert_eq!(m.encode().unwrap_err().field(), Some("msgParam"));
    }

    #[test]
    fn links_must_be_http_or_dingtalk_scheme() {
        assert!(check_link("u", "https://example.com/a?b=c").is_ok());
        assert!(check_link("u", "dingtalk://dingtalkclient/page/link?url=x").is_ok());
        for bad in ["javascript:alert(1)", "ftp://x/y", "not a url", ""] {
            assert_eq!(
                check_link("u", bad).unwrap_err().field(),
                Some("u"),
                "{bad}"
            );
        }
        assert!(check_picture("p", "@lADOADmaWMzazQKA").is_ok());
        assert!(check_picture("p", "file:///etc/passwd").is_err());
    }

    #[test]
    fn file_type_must_be_one_dingtalk_takes() {
        let m = Message::File {
            media_id: "@x".into(),
            file_name: "a.txt".into(),
            file_type: "txt".into(),
        };
        assert_eq!(m.encode().unwrap_err().field(), Some("fileType"));
    }
}
