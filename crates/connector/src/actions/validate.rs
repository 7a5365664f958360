//! Turning an action's JSON input into planned steps, refusing bad input before any network call
//! with the *input's* field name (`buttons[1].url`, `file.content_base64`), never DingTalk's.

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::InputError;
use super::inputs::*;
use super::plan::*;
use super::split::{Label, SplitError, split_to_fit};
use dingtalk::robot::{MAX_MSG_PARAM_BYTES, MAX_OTO_USERS, MAX_QUERY_RESULTS, MAX_RECALL_KEYS};
use dingtalk::webhook::{MAX_AT, MAX_WEBHOOK_BODY_BYTES};

/// Longest group chat id accepted; real ones are about 30 characters.
const MAX_GROUP_ID_CHARS: usize = 128;

/// Check `input` for `action` and plan its steps.
pub fn validate(action: &str, input: Value) -> Result<ValidatedAction, InputError> {
    let name =
        ActionName::parse(action).ok_or_else(|| InputError::UnknownAction(action.to_owned()))?;
    let steps = match name {
        ActionName::SendText => send_text(parse(input)?)?,
        ActionName::SendMarkdown => send_markdown(parse(input)?)?,
        ActionName::SendLink => send_link(parse(input)?)?,
        ActionName::SendImage => send_image(parse(input)?)?,
        ActionName::SendFile => send_file(parse(input)?)?,
        ActionName::SendActionCard => send_action_card(parse(input)?)?,
        ActionName::UploadMedia => upload_media(parse(input)?)?,
        ActionName::QueryReadStatus => query_read_status(parse(input)?)?,
        ActionName::RecallMessages => recall_messages(parse(input)?)?,
        ActionName::SendToUsers => send_to_users(parse(input)?)?,
        ActionName::WebhookSend => webhook_send(parse(input)?)?,
    };
    Ok(ValidatedAction {
        action: name,
        steps,
    })
}

/// Deserialize, turning serde's messages into `{field, reason}` with the field's full path.
fn parse<T: DeserializeOwned>(input: Value) -> Result<T, InputError> {
    if !input.is_object() {
        return Err(InputError::field("input", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let join = |name: &str| {
            if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        let here = if path == "." {
            "input".to_owned()
        } else {
            path.clone()
        };
        // serde_json's messages for these cases are stable and name the field in backticks.
        let quoted = |rest: &str| rest.split('`').nth(1).map(str::to_owned);
        if let Some(rest) = msg.strip_prefix("missing field ") {
            let name = quoted(rest).unwrap_or_default();
            InputError::field(join(&name), "is required")
        } else if let Some(rest) = msg.strip_prefix("unknown field ") {
            let name = quoted(rest).unwrap_or_default();
            let expected = rest.split_once(", ").map_or("", |(_, e)| e);
            // The path may already end in the unknown key, depending on where serde stopped.
            let field = if path.rsplit('.').next() == Some(name.as_str()) {
                path.clone()
            } else {
                join(&name)
            };
            InputError::field(
                field,
                format!(
                    "is not a field of this input ({})",
                    expected.replace('`', "")
                ),
            )
        } else if let Some(rest) = msg.strip_prefix("unknown variant ") {
            let got = quoted(rest).unwrap_or_default();
            let allowed = rest
                .split_once("expected one of ")
                .map_or(String::new(), |(_, e)| e.replace('`', ""));
            InputError::field(here, format!("`{got}` is not one of {allowed}"))
        } else if let Some(rest) = msg.strip_prefix("invalid type: ") {
            let (got, want) = rest
                .split_once(", expected ")
                .unwrap_or((rest, "another type"));
            InputError::field(here, format!("must be {want}, not {got}"))
        } else {
            InputError::field(here, msg)
        }
    })
}

fn non_empty(field: &str, v: &str) -> Result<(), InputError> {
    if v.trim().is_empty() {
        Err(InputError::field(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// An opaque DingTalk token (key, id): non-empty, no whitespace.
fn token(field: &str, v: &str) -> Result<(), InputError> {
    non_empty(field, v)?;
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::field(field, "must not contain whitespace"));
    }
    Ok(())
}

fn group(v: &str) -> Result<String, InputError> {
    const F: &str = "group_chat_id";
    non_empty(F, v)?;
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::field(
            F,
            "is not a group chat id: it contains whitespace",
        ));
    }
    if v.chars().count() > MAX_GROUP_ID_CHARS {
        return Err(InputError::field(
            F,
            format!("is not a group chat id: longer than {MAX_GROUP_ID_CHARS} characters"),
        ));
    }
    Ok(v.to_owned())
}

fn link(field: &str, v: &str) -> Result<String, InputError> {
    dingtalk::robot::check_link(field, v).map_err(|e| InputError::field(field, e.message()))?;
    Ok(v.trim().to_owned())
}

fn picture(field: &str, v: &str) -> Result<String, InputError> {
    dingtalk::robot::check_picture(field, v).map_err(|e| InputError::field(field, e.message()))?;
    Ok(v.trim().to_owned())
}

/// A URL the server itself downloads: http(s) only.
fn download_url(field: &str, v: &str) -> Result<url::Url, InputError> {
    non_empty(field, v)?;
    match url::Url::parse(v.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        Ok(u) => Err(InputError::field(
            field,
            format!(
                "scheme `{}` is not allowed; the server downloads http(s):// URLs only",
                u.scheme()
            ),
        )),
        Err(e) => Err(InputError::field(field, format!("is not a URL: {e}"))),
    }
}

/// A field that must be given (and non-empty); `ctx` says under which condition.
fn required<'a>(field: &str, v: Option<&'a String>, ctx: &str) -> Result<&'a str, InputError> {
    match v {
        None => Err(InputError::field(field, format!("is required{ctx}"))),
        Some(s) => {
            non_empty(field, s)?;
            Ok(s.as_str())
        }
    }
}

fn extension(name: &str) -> Option<String> {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

const MB: usize = 1024 * 1024;

/// Decode an inline file and check it against `kind`'s formats and size.
fn inline_file(f: &InlineFile, kind: MediaKind) -> Result<(String, FileSource), InputError> {
    non_empty("file.name", &f.name)?;
    check_format("file.name", &f.name, kind)?;
    // Tools wrap base64 at 76 columns and some drop the padding: accept both.
    let cleaned: String = f
        .content_base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(cleaned.as_bytes())
        .map_err(|e| InputError::field("file.content_base64", format!("is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(InputError::field(
            "file.content_base64",
            "decodes to an empty file",
        ));
    }
    let max = kind.to_dingtalk().max_bytes();
    if bytes.len() > max {
        return Err(InputError::field(
            "file.content_base64",
            format!(
                "is {} bytes decoded; DingTalk takes at most {} MB for {}",
                bytes.len(),
                max / MB,
                kind.as_str()
            ),
        ));
    }
    Ok((
        f.name.trim().to_owned(),
        FileSource::Inline {
            bytes_base64: cleaned,
        },
    ))
}

fn check_format(field: &str, name: &str, kind: MediaKind) -> Result<(), InputError> {
    let formats = kind.to_dingtalk().formats();
    match extension(name) {
        Some(ext) if formats.contains(&ext.as_str()) => Ok(()),
        other => Err(InputError::field(
            field,
            format!(
                "a {} must be one of {} (got {})",
                kind.as_str(),
                formats.join(", "),
                other.map_or("no extension".into(), |e| format!("`.{e}`"))
            ),
        )),
    }
}

/// The last path segment of a URL, percent-decoded, as a file name.
fn url_file_name(u: &url::Url) -> Option<String> {
    let last = u.path_segments()?.next_back()?;
    let name = percent_decode(last);
    (!name.trim().is_empty()).then_some(name)
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn exactly_one(options: &[(&str, bool)]) -> Result<(), InputError> {
    let given: Vec<&str> = options
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| *n)
        .collect();
    let names = options
        .iter()
        .map(|(n, _)| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match given.len() {
        1 => Ok(()),
        0 => Err(InputError::field(
            options[0].0,
            format!("is required: give one of {names}"),
        )),
        _ => Err(InputError::field(
            given[1],
            format!(
                "give only one of {names}, not `{}` and `{}`",
                given[0], given[1]
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Size and splitting

/// Encoded length of `content` as a JSON string, without the quotes: what DingTalk counts.
fn encoded_len(content: &str) -> usize {
    serde_json::to_string(content).map_or(content.len(), |s| s.len() - 2)
}

/// Plan `content` as one message or, if it is over the limit and `split` allows, as numbered
/// parts. `fits` measures the message built from a slice and its label.
fn plan_parts<'a>(
    content: &'a str,
    split: bool,
    limit: usize,
    fits: &mut dyn FnMut(&str, Label) -> Result<bool, InputError>,
) -> Result<Vec<(&'a str, Label)>, InputError> {
    if fits(content, None)? {
        return Ok(vec![(content, None)]);
    }
    let n = encoded_len(content);
    if !split {
        return Err(InputError::field(
            "content",
            format!("content is {n} bytes; DingTalk allows {limit} — set split:true or shorten it"),
        ));
    }
    match split_to_fit(content, fits)? {
        Ok(parts) => {
            let count = parts.len();
            Ok(parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, (count > 1).then_some((i + 1, count))))
                .collect())
        }
        Err(SplitError::TooManyParts) => Err(InputError::field(
            "content",
            format!(
                "content is {n} bytes; split at DingTalk's {limit}-byte limit it would take more \
                 than {} messages — shorten it or send it as a file",
                super::split::MAX_PARTS
            ),
        )),
        Err(SplitError::CannotFit) => Err(InputError::field(
            "subject",
            format!("is too long to leave room for content within DingTalk's {limit} bytes"),
        )),
    }
}

fn labelled_text(slice: &str, label: Label) -> String {
    match label {
        Some((i, n)) => format!("({i}/{n}) {slice}"),
        None => slice.to_owned(),
    }
}

fn labelled_title(subject: &str, label: Label) -> String {
    match label {
        Some((i, n)) => format!("{subject} ({i}/{n})"),
        None => subject.to_owned(),
    }
}

fn app_fits(m: &dingtalk::Message) -> bool {
    m.msg_param_value().to_string().len() <= MAX_MSG_PARAM_BYTES
}

/// Map the client's (camelCase) field names back to the input's.
fn input_field(dingtalk_field: &str) -> String {
    let plain = match dingtalk_field {
        "title" => "subject",
        "text" | "msgParam" | "body" => "content",
        "picUrl" | "photoURL" => "image_url",
        "messageUrl" | "singleURL" => "redirect_url",
        "singleTitle" => "button_text",
        "mediaId" => "media_id",
        "fileName" => "file_name",
        "fileType" => "file_type",
        "at" => "at_mobiles",
        "btns" => "buttons",
        other => other,
    };
    plain
        .replace("btns[", "buttons[")
        .replace("].actionURL", "].url")
        .replace("].messageURL", "].url")
}

fn from_client(e: dingtalk::Error) -> InputError {
    let field = e.field().map_or_else(|| "input".to_owned(), input_field);
    InputError::field(field, e.message())
}

/// Check a whole app-robot message (DingTalk's rules and the msgParam limit).
fn check_app_message(spec: &MessageSpec) -> Result<(), InputError> {
    // An uploaded media id is not known yet; a typical one stands in for the size check.
    let m = spec.to_message(Some("@lAzPDe7s0000000000000000000000"))?;
    m.validate().map_err(from_client)?;
    let size = m.msg_param_value().to_string().len();
    if size > MAX_MSG_PARAM_BYTES {
        return Err(InputError::field(
            "content",
            format!(
                "the message is {size} bytes encoded; DingTalk allows {MAX_MSG_PARAM_BYTES} — shorten it"
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared message builders

/// The fields a message type may use, as given (app and webhook sends share them).
#[derive(Default)]
struct Fields<'a> {
    /// ` for msg_type X` (or empty), appended to "is required".
    ctx: String,
    content: Option<&'a String>,
    subject: Option<&'a String>,
    image_url: Option<&'a String>,
    redirect_url: Option<&'a String>,
    button_text: Option<&'a String>,
    buttons: Option<&'a Vec<ButtonInput>>,
    button_layout: Option<Layout>,
}

enum Card {
    Single {
        title: String,
        text: String,
        single_title: String,
        single_url: String,
    },
    Multi {
        title: String,
        text: String,
        buttons: Vec<ButtonInput>,
        layout: Layout,
    },
}

impl<'a> Fields<'a> {
    fn req(&self, name: &str, v: Option<&'a String>) -> Result<&'a str, InputError> {
        required(name, v, &self.ctx)
    }

    fn card(&self) -> Result<Card, InputError> {
        let title = self.req("subject", self.subject)?.to_owned();
        let text = self.req("content", self.content)?.to_owned();
        match self.buttons {
            Some(buttons) => {
                for (name, v) in [
                    ("button_text", self.button_text),
                    ("redirect_url", self.redirect_url),
                ] {
                    if v.is_some() {
                        return Err(InputError::field(
                            name,
                            "give either `buttons` or `button_text` + `redirect_url`, not both",
                        ));
                    }
                }
                let layout = self.button_layout.unwrap_or_default();
                let ok = match layout {
                    Layout::Vertical => (2..=5).contains(&buttons.len()),
                    Layout::Horizontal => buttons.len() == 2,
                };
                if !ok {
                    let want = match layout {
                        Layout::Vertical => "2 to 5 buttons when vertical",
                        Layout::Horizontal => "exactly 2 buttons when horizontal",
                    };
                    let hint = if buttons.len() == 1 {
                        "; for one button use `button_text` + `redirect_url`"
                    } else {
                        ""
                    };
                    return Err(InputError::field(
                        "buttons",
                        format!("has {} buttons; DingTalk takes {want}{hint}", buttons.len()),
                    ));
                }
                let mut out = Vec::with_capacity(buttons.len());
                for (i, b) in buttons.iter().enumerate() {
                    non_empty(&format!("buttons[{i}].title"), &b.title)?;
                    let url = link(&format!("buttons[{i}].url"), &b.url)?;
                    out.push(ButtonInput {
                        title: b.title.clone(),
                        url,
                    });
                }
                Ok(Card::Multi {
                    title,
                    text,
                    buttons: out,
                    layout,
                })
            }
            None => {
                if self.button_layout.is_some() {
                    return Err(InputError::field(
                        "button_layout",
                        "is only used with `buttons`",
                    ));
                }
                let ctx = format!("{} (or give `buttons`)", self.ctx);
                let single_title = required("button_text", self.button_text, &ctx)?.to_owned();
                let url = required("redirect_url", self.redirect_url, &ctx)?;
                Ok(Card::Single {
                    title,
                    text,
                    single_title,
                    single_url: link("redirect_url", url)?,
                })
            }
        }
    }

    fn app_card(&self) -> Result<MessageSpec, InputError> {
        Ok(match self.card()? {
            Card::Single {
                title,
                text,
                single_title,
                single_url,
            } => MessageSpec::ActionCard {
                title,
                text,
                single_title,
                single_url,
            },
            Card::Multi {
                title,
                text,
                buttons,
                layout,
            } => MessageSpec::ActionCardButtons {
                title,
                text,
                buttons,
                layout,
            },
        })
    }

    fn app_link(&self) -> Result<MessageSpec, InputError> {
        Ok(MessageSpec::Link {
            title: self.req("subject", self.subject)?.to_owned(),
            text: self.req("content", self.content)?.to_owned(),
            pic_url: picture("image_url", self.req("image_url", self.image_url)?)?,
            message_url: link("redirect_url", self.req("redirect_url", self.redirect_url)?)?,
        })
    }
}

/// Fields given that `msg_type` does not use are refused rather than silently dropped.
fn refuse_unused(msg_type: &str, given: &[(&str, bool)], used: &[&str]) -> Result<(), InputError> {
    for (name, present) in given {
        if *present && !used.contains(name) {
            return Err(InputError::field(
                *name,
                format!("is not used by msg_type {msg_type}"),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Actions

fn group_text_steps(
    group: &str,
    content: &str,
    split: bool,
    subject: Option<&str>,
) -> Result<Vec<Step>, InputError> {
    let build = |slice: &str, label: Label| match subject {
        None => MessageSpec::Text {
            content: labelled_text(slice, label),
        },
        Some(subject) => MessageSpec::Markdown {
            title: labelled_title(subject, label),
            text: slice.to_owned(),
        },
    };
    let mut fits = |slice: &str, label: Label| -> Result<bool, InputError> {
        Ok(app_fits(&build(slice, label).to_message(None)?))
    };
    let parts = plan_parts(content, split, MAX_MSG_PARAM_BYTES, &mut fits)?;
    Ok(parts
        .into_iter()
        .map(|(slice, label)| Step::GroupSend {
            group_chat_id: group.to_owned(),
            message: build(slice, label),
        })
        .collect())
}

fn send_text(i: SendText) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    non_empty("content", &i.content)?;
    group_text_steps(&g, &i.content, i.split, None)
}

fn send_markdown(i: SendMarkdown) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    non_empty("subject", &i.subject)?;
    non_empty("content", &i.content)?;
    group_text_steps(&g, &i.content, i.split, Some(&i.subject))
}

fn send_link(i: SendLink) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    let f = Fields {
        subject: Some(&i.subject),
        content: Some(&i.content),
        image_url: Some(&i.image_url),
        redirect_url: Some(&i.redirect_url),
        ..Fields::default()
    };
    let message = f.app_link()?;
    check_app_message(&message)?;
    Ok(vec![Step::GroupSend {
        group_chat_id: g,
        message,
    }])
}

fn send_image(i: SendImage) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    exactly_one(&[
        ("image_url", i.image_url.is_some()),
        ("file", i.file.is_some()),
    ])?;
    if let Some(url) = &i.image_url {
        return Ok(vec![Step::GroupSend {
            group_chat_id: g,
            message: MessageSpec::Image {
                photo: MediaRef::Given(picture("image_url", url)?),
            },
        }]);
    }
    let file = i.file.as_ref().expect("exactly one is given");
    let (file_name, source) = inline_file(file, MediaKind::Image)?;
    Ok(vec![
        Step::Upload {
            media_type: MediaKind::Image,
            file_name,
            source,
        },
        Step::GroupSend {
            group_chat_id: g,
            message: MessageSpec::Image {
                photo: MediaRef::Uploaded,
            },
        },
    ])
}

fn send_file(i: SendFile) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    exactly_one(&[
        ("media_id", i.media_id.is_some()),
        ("file", i.file.is_some()),
        ("file_url", i.file_url.is_some()),
    ])?;
    if let Some(file_name) = &i.file_name {
        non_empty("file_name", file_name)?;
    }
    let send = |media: MediaRef, file_name: String, file_type: FileType| {
        let message = MessageSpec::File {
            media,
            file_name,
            file_type: file_type.as_str().to_owned(),
        };
        check_app_message(&message)?;
        Ok::<_, InputError>(Step::GroupSend {
            group_chat_id: g.clone(),
            message,
        })
    };
    if let Some(media_id) = &i.media_id {
        token("media_id", media_id)?;
        let ctx = " with `media_id`";
        let file_name = required("file_name", i.file_name.as_ref(), ctx)?.to_owned();
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
        let raw = i.file_url.as_deref().expect("exactly one is given");
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
        format!("{source_name}.{}", file_type.as_str())
    };
    let source = match (source, &i.file) {
        (None, Some(file)) => {
            let renamed = InlineFile {
                name: upload_name.clone(),
                content_base64: file.content_base64.clone(),
            };
            inline_file(&renamed, MediaKind::File)
                .map_err(|e| e.renamed("file.name", name_field))?
                .1
        }
        (Some(u), _) => FileSource::Url { url: u.to_string() },
        (None, None) => unreachable!("exactly one of file and file_url is given here"),
    };
    let display_name = i.file_name.clone().unwrap_or(source_name);
    Ok(vec![
        Step::Upload {
            media_type: MediaKind::File,
            file_name: upload_name,
            source,
        },
        send(MediaRef::Uploaded, display_name, file_type)?,
    ])
}

fn send_action_card(i: SendActionCard) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    let f = Fields {
        subject: Some(&i.subject),
        content: Some(&i.content),
        button_text: i.button_text.as_ref(),
        redirect_url: i.redirect_url.as_ref(),
        buttons: i.buttons.as_ref(),
        button_layout: i.button_layout,
        ..Fields::default()
    };
    let message = f.app_card()?;
    check_app_message(&message)?;
    Ok(vec![Step::GroupSend {
        group_chat_id: g,
        message,
    }])
}

fn upload_media(i: UploadMedia) -> Result<Vec<Step>, InputError> {
    exactly_one(&[
        ("file", i.file.is_some()),
        ("file_url", i.file_url.is_some()),
    ])?;
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
    let raw = i.file_url.as_deref().expect("exactly one is given");
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

fn query_read_status(i: QueryReadStatus) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    token("process_query_key", &i.process_query_key)?;
    if i.max_results == 0 || i.max_results > MAX_QUERY_RESULTS {
        return Err(InputError::field(
            "max_results",
            format!("must be 1 to {MAX_QUERY_RESULTS}"),
        ));
    }
    // An empty token is what form-based tools send for "first page".
    let next_token = i.next_token.filter(|t| !t.trim().is_empty());
    Ok(vec![Step::Query {
        group_chat_id: g,
        process_query_key: i.process_query_key.trim().to_owned(),
        max_results: i.max_results,
        next_token,
    }])
}

fn recall_messages(i: RecallMessages) -> Result<Vec<Step>, InputError> {
    let g = group(&i.group_chat_id)?;
    let n = i.process_query_keys.len();
    if n == 0 || n > MAX_RECALL_KEYS {
        return Err(InputError::field(
            "process_query_keys",
            format!("has {n} keys; give 1 to {MAX_RECALL_KEYS}"),
        ));
    }
    for (k, key) in i.process_query_keys.iter().enumerate() {
        token(&format!("process_query_keys[{k}]"), key)?;
    }
    Ok(vec![Step::Recall {
        group_chat_id: g,
        process_query_keys: i.process_query_keys,
    }])
}

fn send_to_users(i: SendToUsers) -> Result<Vec<Step>, InputError> {
    let n = i.user_ids.len();
    if n == 0 || n > MAX_OTO_USERS {
        return Err(InputError::field(
            "user_ids",
            format!("has {n} users; give 1 to {MAX_OTO_USERS}"),
        ));
    }
    for (k, u) in i.user_ids.iter().enumerate() {
        token(&format!("user_ids[{k}]"), u)?;
    }
    let name = match i.msg_type {
        UserMsgType::Text => "text",
        UserMsgType::Markdown => "markdown",
        UserMsgType::Link => "link",
        UserMsgType::Image => "image",
        UserMsgType::ActionCard => "action_card",
    };
    let given = [
        ("content", i.content.is_some()),
        ("subject", i.subject.is_some()),
        ("image_url", i.image_url.is_some()),
        ("redirect_url", i.redirect_url.is_some()),
        ("button_text", i.button_text.is_some()),
        ("buttons", i.buttons.is_some()),
        ("button_layout", i.button_layout.is_some()),
    ];
    let used: &[&str] = match i.msg_type {
        UserMsgType::Text => &["content"],
        UserMsgType::Markdown => &["subject", "content"],
        UserMsgType::Link => &["subject", "content", "image_url", "redirect_url"],
        UserMsgType::Image => &["image_url"],
        UserMsgType::ActionCard => &[
            "subject",
            "content",
            "redirect_url",
            "button_text",
            "buttons",
            "button_layout",
        ],
    };
    refuse_unused(name, &given, used)?;
    let f = Fields {
        ctx: format!(" for msg_type {name}"),
        content: i.content.as_ref(),
        subject: i.subject.as_ref(),
        image_url: i.image_url.as_ref(),
        redirect_url: i.redirect_url.as_ref(),
        button_text: i.button_text.as_ref(),
        buttons: i.buttons.as_ref(),
        button_layout: i.button_layout,
    };
    let message = match i.msg_type {
        UserMsgType::Text => MessageSpec::Text {
            content: f.req("content", f.content)?.to_owned(),
        },
        UserMsgType::Markdown => MessageSpec::Markdown {
            title: f.req("subject", f.subject)?.to_owned(),
            text: f.req("content", f.content)?.to_owned(),
        },
        UserMsgType::Link => f.app_link()?,
        UserMsgType::Image => MessageSpec::Image {
            photo: MediaRef::Given(picture("image_url", f.req("image_url", f.image_url)?)?),
        },
        UserMsgType::ActionCard => f.app_card()?,
    };
    check_app_message(&message)?;
    Ok(vec![Step::OtoSend {
        user_ids: i.user_ids.iter().map(|u| u.trim().to_owned()).collect(),
        message,
    }])
}

fn webhook_send(i: WebhookSend) -> Result<Vec<Step>, InputError> {
    let name = i.msg_type.as_str();
    let given = [
        ("content", i.content.is_some()),
        ("subject", i.subject.is_some()),
        ("image_url", i.image_url.is_some()),
        ("redirect_url", i.redirect_url.is_some()),
        ("button_text", i.button_text.is_some()),
        ("buttons", i.buttons.is_some()),
        ("button_layout", i.button_layout.is_some()),
        ("links", i.links.is_some()),
        ("at_mobiles", !i.at_mobiles.is_empty()),
        ("at_user_ids", !i.at_user_ids.is_empty()),
        ("at_all", i.at_all),
    ];
    let mentions = ["at_mobiles", "at_user_ids", "at_all"];
    let used: Vec<&str> = match i.msg_type {
        WebhookMsgType::Text => [&["content"][..], &mentions].concat(),
        WebhookMsgType::Markdown => [&["subject", "content"][..], &mentions].concat(),
        WebhookMsgType::Link => vec!["subject", "content", "image_url", "redirect_url"],
        WebhookMsgType::ActionCard => vec![
            "subject",
            "content",
            "redirect_url",
            "button_text",
            "buttons",
            "button_layout",
        ],
        WebhookMsgType::FeedCard => vec!["links"],
    };
    if !matches!(i.msg_type, WebhookMsgType::Text | WebhookMsgType::Markdown) {
        for (field, present) in &given[8..] {
            if *present {
                return Err(InputError::field(
                    *field,
                    format!("@mentions work only in text and markdown, not {name}"),
                ));
            }
        }
    }
    refuse_unused(name, &given, &used)?;
    for (list, field) in [
        (&i.at_mobiles, "at_mobiles"),
        (&i.at_user_ids, "at_user_ids"),
    ] {
        for (k, v) in list.iter().enumerate() {
            token(&format!("{field}[{k}]"), v)?;
        }
    }
    let people = i.at_mobiles.len() + i.at_user_ids.len();
    if people > MAX_AT {
        return Err(InputError::field(
            "at_mobiles",
            format!("with at_user_ids mentions {people} people; DingTalk takes at most {MAX_AT}"),
        ));
    }
    let mentions = Mentions {
        at_mobiles: i.at_mobiles.clone(),
        at_user_ids: i.at_user_ids.clone(),
        at_all: i.at_all,
    };
    let f = Fields {
        ctx: format!(" for msg_type {name}"),
        content: i.content.as_ref(),
        subject: i.subject.as_ref(),
        image_url: i.image_url.as_ref(),
        redirect_url: i.redirect_url.as_ref(),
        button_text: i.button_text.as_ref(),
        buttons: i.buttons.as_ref(),
        button_layout: i.button_layout,
    };
    // Measures the real body, mentions included; they ride on the first part only so people
    // are notified once.
    let body_fits = |spec: &WebhookSpec, m: &Mentions| -> Result<bool, InputError> {
        match spec.to_message(m).to_body() {
            Ok(_) => Ok(true),
            Err(e) if e.field() == Some("body") => Ok(false),
            Err(e) => Err(from_client(e)),
        }
    };
    let none = Mentions::default();
    let text_like = |subject: Option<&str>| -> Result<Vec<Step>, InputError> {
        let content = f.req("content", f.content)?;
        let build = |slice: &str, label: Label| match subject {
            None => WebhookSpec::Text {
                content: labelled_text(slice, label),
            },
            Some(s) => WebhookSpec::Markdown {
                title: labelled_title(s, label),
                text: slice.to_owned(),
            },
        };
        let first = |label: Label| matches!(label, None | Some((1, _)));
        let mut fits = |slice: &str, label: Label| {
            let m = if first(label) { &mentions } else { &none };
            body_fits(&build(slice, label), m)
        };
        let parts = plan_parts(content, i.split, MAX_WEBHOOK_BODY_BYTES, &mut fits)?;
        Ok(parts
            .into_iter()
            .map(|(slice, label)| Step::Webhook {
                message: build(slice, label),
                mentions: if first(label) {
                    mentions.clone()
                } else {
                    Mentions::default()
                },
            })
            .collect())
    };
    let single = |spec: WebhookSpec| -> Result<Vec<Step>, InputError> {
        if !body_fits(&spec, &none)? {
            return Err(InputError::field(
                "content",
                format!(
                    "the message is over DingTalk's {MAX_WEBHOOK_BODY_BYTES}-byte webhook body limit — shorten it"
                ),
            ));
        }
        Ok(vec![Step::Webhook {
            message: spec,
            mentions: Mentions::default(),
        }])
    };
    match i.msg_type {
        WebhookMsgType::Text => text_like(None),
        WebhookMsgType::Markdown => {
            let subject = f.req("subject", f.subject)?;
            text_like(Some(subject))
        }
        WebhookMsgType::Link => single(WebhookSpec::Link {
            title: f.req("subject", f.subject)?.to_owned(),
            text: f.req("content", f.content)?.to_owned(),
            message_url: link("redirect_url", f.req("redirect_url", f.redirect_url)?)?,
            pic_url: match f.image_url {
                Some(p) => Some(picture("image_url", p)?),
                None => None,
            },
        }),
        WebhookMsgType::ActionCard => single(match f.card()? {
            Card::Single {
                title,
                text,
                single_title,
                single_url,
            } => WebhookSpec::ActionCard {
                title,
                text,
                single_title,
                single_url,
            },
            Card::Multi {
                title,
                text,
                buttons,
                layout,
            } => WebhookSpec::ActionCardButtons {
                title,
                text,
                buttons,
                horizontal: layout == Layout::Horizontal,
            },
        }),
        WebhookMsgType::FeedCard => {
            let links = i.links.as_ref().ok_or_else(|| {
                InputError::field("links", format!("is required for msg_type {name}"))
            })?;
            if links.is_empty() {
                return Err(InputError::field("links", "must have at least one link"));
            }
            let mut out = Vec::with_capacity(links.len());
            for (k, l) in links.iter().enumerate() {
                non_empty(&format!("links[{k}].title"), &l.title)?;
                out.push(FeedLinkInput {
                    title: l.title.clone(),
                    url: link(&format!("links[{k}].url"), &l.url)?,
                    image_url: picture(&format!("links[{k}].image_url"), &l.image_url)?,
                });
            }
            single(WebhookSpec::FeedCard { links: out })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const G: &str = "cidSandboxOps0000000000==";

    fn err(action: &str, input: Value) -> (String, String) {
        match validate(action, input) {
            Err(InputError::Invalid { field, reason }) => (field, reason),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    fn sends(v: &ValidatedAction) -> Vec<&MessageSpec> {
        v.steps()
            .iter()
            .filter_map(|s| match s {
                Step::GroupSend { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn missing_field_is_named_and_required() {
        let (field, reason) = err("send_text", json!({ "group_chat_id": G }));
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("content", "is required")
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let (field, reason) = err(
            "send_text",
            json!({ "group_chat_id": G, "content": "x", "contnet": "y" }),
        );
        assert_eq!(field, "contnet");
        assert!(reason.contains("content"), "{reason}");
    }

    #[test]
    fn nested_fields_are_named_with_their_path() {
        let card = |buttons: Value| json!({ "group_chat_id": G, "subject": "s", "content": "c", "buttons": buttons });
        let (field, reason) = err(
            "send_action_card",
            card(json!([{ "title": "a", "url": "https://a" }, { "title": "b", "url": 5 }])),
        );
        assert_eq!(field, "buttons[1].url");
        assert!(reason.contains("string"), "{reason}");
        let (field, _) = err(
            "send_action_card",
            card(json!([{ "title": "a", "url": "https://a" }, { "title": "b" }])),
        );
        assert_eq!(field, "buttons[1].url");
        let (field, _) = err(
            "send_action_card",
            card(
                json!([{ "title": "a", "url": "https://a" }, { "title": "b", "url": "https://b", "x": 1 }]),
            ),
        );
        assert_eq!(field, "buttons[1].x");
        let (field, _) = err(
            "send_action_card",
            card(json!([{ "title": "a", "url": "https://a" }, { "title": "b", "url": "ftp://b" }])),
        );
        assert_eq!(field, "buttons[1].url");
        let (field, reason) = err(
            "send_image",
            json!({ "group_chat_id": G, "file": { "name": "a.png", "content_base64": "%%%" } }),
        );
        assert_eq!(field, "file.content_base64");
        assert!(reason.contains("base64"), "{reason}");
    }

    #[test]
    fn bad_enum_names_the_allowed_values() {
        let (field, reason) = err(
            "send_file",
            json!({ "group_chat_id": G, "media_id": "@x", "file_name": "a", "file_type": "txt" }),
        );
        assert_eq!(field, "file_type");
        assert!(reason.contains("`txt`") && reason.contains("xlsx, pdf, zip, rar, doc, docx"));
    }

    #[test]
    fn a_short_text_is_one_unlabelled_part() {
        let v = validate("send_text", json!({ "group_chat_id": G, "content": "hi" })).unwrap();
        assert_eq!(v.parts(), 1);
        assert_eq!(v.group_chat_id(), Some(G));
        assert_eq!(v.action(), "send_text");
        assert_eq!(
            sends(&v),
            vec![&MessageSpec::Text {
                content: "hi".into()
            }]
        );
    }

    #[test]
    fn long_text_is_planned_as_numbered_parts_that_rejoin() {
        let para = "监控告警：磁盘使用率超过阈值 \"quoted\" \\ ".repeat(40);
        let content = vec![para; 20].join("\n\n");
        let v = validate(
            "send_text",
            json!({ "group_chat_id": G, "content": content }),
        )
        .unwrap();
        let n = v.parts();
        assert!(n >= 2, "{n} parts");
        let mut rejoined = String::new();
        for (i, m) in sends(&v).into_iter().enumerate() {
            let MessageSpec::Text { content } = m else {
                panic!("{m:?}")
            };
            let prefix = format!("({}/{n}) ", i + 1);
            rejoined.push_str(content.strip_prefix(&prefix).expect("numbered"));
            let encoded = json!({ "content": content }).to_string();
            assert!(encoded.len() <= MAX_MSG_PARAM_BYTES);
        }
        assert_eq!(rejoined, content);
    }

    #[test]
    fn long_markdown_numbers_its_subjects() {
        let content = "- line of a long report\n".repeat(1000);
        let v = validate(
            "send_markdown",
            json!({ "group_chat_id": G, "subject": "Report", "content": content }),
        )
        .unwrap();
        let n = v.parts();
        assert!(n >= 2);
        let mut rejoined = String::new();
        for (i, m) in sends(&v).into_iter().enumerate() {
            let MessageSpec::Markdown { title, text } = m else {
                panic!("{m:?}")
            };
            assert_eq!(title, &format!("Report ({}/{n})", i + 1));
            assert!(text.ends_with('\n'), "cut at a line break");
            rejoined.push_str(text);
        }
        assert_eq!(rejoined, content);
    }

    #[test]
    fn split_false_over_the_limit_says_what_to_do() {
        let (field, reason) = err(
            "send_text",
            json!({ "group_chat_id": G, "content": "x".repeat(20_000), "split": false }),
        );
        assert_eq!(field, "content");
        assert_eq!(
            reason,
            "content is 20000 bytes; DingTalk allows 15000 — set split:true or shorten it"
        );
    }

    #[test]
    fn a_validated_action_round_trips_through_json() {
        let v = validate(
            "send_file",
            json!({ "group_chat_id": G, "file": { "name": "q3.xlsx", "content_base64": "UEsDBA==" } }),
        )
        .unwrap();
        let stored = serde_json::to_string(&v).unwrap();
        let back: ValidatedAction = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, v);
        assert!(matches!(
            &back.steps()[0],
            Step::Upload { media_type: MediaKind::File, file_name, .. } if file_name == "q3.xlsx"
        ));
        assert_eq!(back.parts(), 1);
    }

    #[test]
    fn file_type_defaults_from_the_file_name() {
        let v = validate(
            "send_file",
            json!({ "group_chat_id": G, "file_url": "https://example.com/files/Q3%20report.PDF" }),
        )
        .unwrap();
        assert_eq!(
            sends(&v),
            vec![&MessageSpec::File {
                media: MediaRef::Uploaded,
                file_name: "Q3 report.PDF".into(),
                file_type: "pdf".into(),
            }]
        );
        let (field, _) = err(
            "send_file",
            json!({ "group_chat_id": G, "file": { "name": "notes.txt", "content_base64": "aGk=" } }),
        );
        assert_eq!(field, "file.name");
    }

    #[test]
    fn mentions_only_in_text_and_markdown() {
        let (field, reason) = err(
            "webhook_send",
            json!({ "msg_type": "link", "subject": "s", "content": "c",
                    "redirect_url": "https://x", "at_all": true }),
        );
        assert_eq!(field, "at_all");
        assert!(reason.contains("text and markdown"));
    }

    #[test]
    fn fields_another_msg_type_uses_are_refused() {
        let (field, reason) = err(
            "send_to_users",
            json!({ "user_ids": ["u1"], "msg_type": "text", "content": "c", "subject": "s" }),
        );
        assert_eq!(field, "subject");
        assert_eq!(reason, "is not used by msg_type text");
    }

    #[test]
    fn client_field_names_map_back_to_input_names() {
        assert_eq!(input_field("btns[2].actionURL"), "buttons[2].url");
        assert_eq!(input_field("links[0].messageURL"), "links[0].url");
        assert_eq!(input_field("singleURL"), "redirect_url");
        assert_eq!(input_field("msgParam"), "content");
    }
}
