//! What several actions share: typed checks that refuse bad input with the *input's* field
//! name (`buttons[1].url`, `file.content_base64`), never DingTalk's, and the builders of
//! messages, ActionCards and split content.

use super::InputError;
use super::plan::*;
use super::split::{Label, SplitError, split_to_fit};
use super::types::*;
use dingtalk::robot::MAX_MSG_PARAM_BYTES;

/// serde's default for the `split` flags.
pub(super) fn yes() -> bool {
    true
}

pub(super) fn non_empty(field: &str, v: &str) -> Result<(), InputError> {
    if v.chars().all(is_blank) {
        Err(InputError::field(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// A list of 1 to `max` opaque tokens; `what` they are ("keys") in the error.
pub(super) fn tokens(
    field: &str,
    list: &[String],
    max: usize,
    what: &str,
) -> Result<(), InputError> {
    let n = list.len();
    if n == 0 || n > max {
        return Err(InputError::field(
            field,
            format!("has {n} {what}; give 1 to {max}"),
        ));
    }
    for (k, t) in list.iter().enumerate() {
        token(&format!("{field}[{k}]"), t)?;
    }
    Ok(())
}

/// An opaque DingTalk token (key, id): non-empty, no whitespace.
pub(super) fn token(field: &str, v: &str) -> Result<(), InputError> {
    non_empty(field, v)?;
    if v.chars().any(is_blank) {
        return Err(InputError::field(field, "must not contain whitespace"));
    }
    Ok(())
}

pub(super) fn group(v: &str) -> Result<String, InputError> {
    const F: &str = "group_chat_id";
    non_empty(F, v)?;
    if v.chars().any(is_blank) {
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

pub(super) fn link(field: &str, v: &str) -> Result<String, InputError> {
    dingtalk::robot::check_link(field, v).map_err(|e| InputError::field(field, e.message()))?;
    Ok(v.trim().to_owned())
}

pub(super) fn picture(field: &str, v: &str) -> Result<String, InputError> {
    dingtalk::robot::check_picture(field, v).map_err(|e| InputError::field(field, e.message()))?;
    Ok(v.trim().to_owned())
}

/// A URL the server itself downloads: http(s) only.
pub(super) fn download_url(field: &str, v: &str) -> Result<url::Url, InputError> {
    non_empty(field, v)?;
    let only_http = "the server downloads http(s):// URLs only";
    dingtalk::robot::parse_url(field, v, &[], only_http)
        .map_err(|e| InputError::field(field, e.message()))
}

/// A field that must be given (and non-empty); `ctx` says under which condition.
pub(super) fn required<'a>(
    field: &str,
    v: Option<&'a String>,
    ctx: &str,
) -> Result<&'a str, InputError> {
    match v {
        None => Err(InputError::field(field, format!("is required{ctx}"))),
        Some(s) => {
            non_empty(field, s)?;
            Ok(s.as_str())
        }
    }
}

/// The extension of a file name (not a path: `/` is just a character), as the schemas'
/// name patterns read it: after the last `.`, which follows a character that is not blank.
pub(super) fn extension(name: &str) -> Option<String> {
    // One rule for the schema's pattern, this check and the client's own.
    dingtalk::media::file_extension(name)
}

/// Decode an inline file and check it against `kind`'s formats and size.
pub(super) fn inline_file(
    f: &InlineFile,
    kind: MediaKind,
) -> Result<(String, FileSource), InputError> {
    non_empty("file.name", &f.name)?;
    check_format("file.name", &f.name, kind)?;
    // Tools wrap base64 at 76 columns and some drop the padding: accept both.
    let cleaned: String = f
        .content_base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = super::execute::decode_base64(&cleaned)
        .map_err(|e| InputError::field("file.content_base64", e))?;
    if let Some(reason) = kind.to_dingtalk().size_refusal(bytes.len()) {
        return Err(InputError::field("file.content_base64", reason));
    }
    Ok((
        f.name.trim().to_owned(),
        FileSource::Inline {
            bytes_base64: cleaned,
        },
    ))
}

pub(super) fn check_format(field: &str, name: &str, kind: MediaKind) -> Result<(), InputError> {
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
pub(super) fn url_file_name(u: &url::Url) -> Option<String> {
    let last = u.path_segments()?.next_back()?;
    let name = percent_encoding::percent_decode_str(last)
        .decode_utf8_lossy()
        .into_owned();
    (!name.trim().is_empty()).then_some(name)
}

/// Exactly one of these optional fields of an input must be given, e.g.
/// `one_of!(i: file, file_url)?`; the error names the field.
macro_rules! one_of {
    ($input:ident: $($field:ident),+) => {
        $crate::actions::compose::exactly_one(&[$((stringify!($field), $input.$field.is_some())),+])
    };
}
pub(super) use one_of;

pub(super) fn exactly_one(options: &[(&str, bool)]) -> Result<(), InputError> {
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
pub(super) fn encoded_len(content: &str) -> usize {
    json_len(content) - 2
}

/// The length of `v` as JSON, counted as it is written, not kept (every send measures its
/// message: `Value`'s `to_string` goes through a formatter into a new string).
fn json_len(v: &(impl serde::Serialize + ?Sized)) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, v).expect("strings and JSON values always serialize");
    n.0
}

/// Plan `content` as one message or, if it is over the limit and `split` allows, as numbered
/// parts. `fits` measures the message built from a slice and its label. Content too large to
/// send at all is refused by its size before any message is built.
pub(super) fn plan_parts<'a>(
    content: &'a str,
    split: bool,
    limit: usize,
    fits: &mut dyn FnMut(&str, Label) -> Result<bool, InputError>,
) -> Result<Vec<(&'a str, Label)>, InputError> {
    let raw = content.len();
    let too_many = || {
        InputError::field(
            "content",
            format!(
                "is {raw} bytes; split at DingTalk's {limit}-byte limit it would take more than \
                 {} messages — shorten it or send it as a file",
                super::split::MAX_PARTS
            ),
        )
    };
    if raw > limit.saturating_mul(super::split::MAX_PARTS) {
        return Err(too_many());
    }
    if raw <= limit && fits(content, None)? {
        return Ok(vec![(content, None)]);
    }
    if !split {
        // Report the size the user gave; mention DingTalk's count only when escapes grew it.
        let encoded = encoded_len(content);
        let size = if encoded == raw {
            format!("{raw} bytes")
        } else {
            format!("{raw} bytes ({encoded} as DingTalk counts them, JSON escapes included)")
        };
        return Err(InputError::field(
            "content",
            format!(
                "is {size}; DingTalk allows {limit} bytes per message (with the other fields) — \
                 set split:true or shorten it"
            ),
        ));
    }
    match split_to_fit(content, limit, fits)? {
        Ok(parts) => {
            let count = parts.len();
            Ok(parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, (count > 1).then_some((i + 1, count))))
                .collect())
        }
        Err(SplitError::TooManyParts) => Err(too_many()),
        Err(SplitError::CannotFit) => Err(InputError::field(
            "subject",
            format!("is too long to leave room for content within DingTalk's {limit} bytes"),
        )),
    }
}

pub(super) fn labelled_text(slice: &str, label: Label) -> String {
    match label {
        Some((i, n)) => format!("({i}/{n}) {slice}"),
        None => slice.to_owned(),
    }
}

/// A markdown part's text: numbered where the reader sees it, not only in the title DingTalk
/// shows in notifications.
pub(super) fn labelled_markdown(slice: &str, label: Label) -> String {
    match label {
        Some((i, n)) => format!("**({i}/{n})**\n\n{slice}"),
        None => slice.to_owned(),
    }
}

pub(super) fn labelled_title(subject: &str, label: Label) -> String {
    match label {
        Some((i, n)) => format!("{subject} ({i}/{n})"),
        None => subject.to_owned(),
    }
}

/// The size DingTalk's msgParam limit applies to: the message's parameters as JSON.
fn msg_param_len(m: &dingtalk::Message) -> usize {
    json_len(&m.msg_param_value())
}

pub(super) fn app_fits(m: &dingtalk::Message) -> bool {
    msg_param_len(m) <= MAX_MSG_PARAM_BYTES
}

/// Map the client's (camelCase) field names back to the input's.
pub(super) fn input_field(dingtalk_field: &str) -> String {
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

pub(super) fn from_client(e: dingtalk::Error) -> InputError {
    let field = e.field().map_or_else(|| "input".to_owned(), input_field);
    InputError::field(field, e.message())
}

/// One checked message to a group chat.
pub(super) fn group_send(group_chat_id: String, message: MessageSpec) -> Result<Step, InputError> {
    check_app_message(&message)?;
    Ok(Step::GroupSend {
        group_chat_id,
        message,
    })
}

/// Check a whole app-robot message (DingTalk's rules and the msgParam limit).
pub(super) fn check_app_message(spec: &MessageSpec) -> Result<(), InputError> {
    // An uploaded media id is not known yet; a typical one stands in for the size check.
    let m = spec.to_message(Some("@lAzPDe7s0000000000000000000000"))?;
    m.validate().map_err(from_client)?;
    let size = msg_param_len(&m);
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
pub(super) struct Fields<'a> {
    /// ` for msg_type X` (or empty), appended to "is required".
    pub(super) ctx: String,
    pub(super) content: Option<&'a String>,
    pub(super) subject: Option<&'a String>,
    pub(super) image_url: Option<&'a String>,
    pub(super) redirect_url: Option<&'a String>,
    pub(super) button_text: Option<&'a String>,
    pub(super) buttons: Option<&'a Vec<ButtonInput>>,
    pub(super) button_layout: Option<Layout>,
}

impl<'a> Fields<'a> {
    /// A subject and content; the other fields not given.
    pub(super) fn titled(subject: &'a String, content: &'a String) -> Self {
        Fields {
            subject: Some(subject),
            content: Some(content),
            ..Fields::default()
        }
    }

    /// The fields of `m`, for `msg_type` (named in "is required for msg_type …").
    pub(super) fn of(m: &'a MessageFields, msg_type: &str) -> Self {
        Fields {
            ctx: format!(" for msg_type {msg_type}"),
            content: m.content.as_deref(),
            subject: m.subject.as_deref(),
            image_url: m.image_url.as_deref(),
            redirect_url: m.redirect_url.as_deref(),
            button_text: m.button_text.as_deref(),
            buttons: m.buttons.as_ref(),
            button_layout: m.button_layout,
        }
    }

    pub(super) fn req(&self, name: &str, v: Option<&'a String>) -> Result<&'a str, InputError> {
        required(name, v, &self.ctx)
    }

    /// The ActionCard the fields describe: one button or several.
    pub(super) fn card(&self) -> Result<dingtalk::Message, InputError> {
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
                let layout = self.button_layout.unwrap_or_default().to_dingtalk();
                if let Err(want) = layout.check_count(buttons.len()) {
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
                    out.push(dingtalk::Button {
                        title: b.title.0.clone(),
                        url,
                    });
                }
                Ok(dingtalk::Message::ActionCardButtons {
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
                Ok(dingtalk::Message::ActionCard {
                    title,
                    text,
                    single_title,
                    single_url: link("redirect_url", url)?,
                })
            }
        }
    }

    pub(super) fn app_card(&self) -> Result<MessageSpec, InputError> {
        Ok(self.card()?.into())
    }

    pub(super) fn app_link(&self) -> Result<MessageSpec, InputError> {
        Ok(dingtalk::Message::Link {
            title: self.req("subject", self.subject)?.to_owned(),
            text: self.req("content", self.content)?.to_owned(),
            pic_url: picture("image_url", self.req("image_url", self.image_url)?)?,
            message_url: link("redirect_url", self.req("redirect_url", self.redirect_url)?)?,
        }
        .into())
    }
}

/// Fields given that `msg_type` does not use are refused rather than silently dropped.
pub(super) fn refuse_unused(
    msg_type: &str,
    given: &[(&str, bool)],
    used: &[&str],
) -> Result<(), InputError> {
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

/// A text (no `subject`) or Markdown message to a group, split into parts when `split` allows;
/// `subject` and `content` must not be blank.
pub(super) fn group_text_steps(
    group: &str,
    content: &str,
    split: bool,
    subject: Option<&str>,
) -> Result<Vec<Step>, InputError> {
    if let Some(subject) = subject {
        non_empty("subject", subject)?;
    }
    non_empty("content", content)?;
    let build = |slice: &str, label: Label| {
        MessageSpec::Ready(match subject {
            None => dingtalk::Message::Text {
                content: labelled_text(slice, label),
            },
            Some(subject) => dingtalk::Message::Markdown {
                title: labelled_title(subject, label),
                text: labelled_markdown(slice, label),
            },
        })
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
