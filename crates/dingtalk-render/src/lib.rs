//! Robot messages as HTML, the way the DingTalk client shows them: the simulator's chat page
//! and the console's previews render with the same code, so a preview is what the chat shows.
//! Every piece of message content is escaped; markdown is rendered with raw HTML turned into
//! text and unsafe link schemes neutralised.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use serde_json::Value;

/// The bubbles' stylesheet: every rule is inside `.bubble`, so a page can hold bubbles beside
/// its own classes.
pub const CSS: &str = r#"
.bubble{background:#fff;border-radius:6px;padding:8px 11px;max-width:340px;word-wrap:break-word;white-space:normal}
.bubble.text{white-space:pre-wrap}
.bubble .mention{color:#1677ff}
.bubble .card-title{font-weight:600;margin-bottom:6px}
.bubble .link-card{display:flex;gap:8px;text-decoration:none;color:inherit}
.bubble .link-card img{width:56px;height:56px;object-fit:cover;border-radius:4px;background:#e3e5e8}
.bubble .link-text{font-size:13px;color:#646a73}
.bubble .buttons{display:flex;flex-direction:column;border-top:1px solid #e3e5e8;margin:8px -11px -8px}
.bubble .buttons.horizontal{flex-direction:row}
.bubble .buttons a{flex:1;text-align:center;padding:8px;color:#1677ff;text-decoration:none;border-top:1px solid #e3e5e8}
.bubble .buttons.horizontal a{border-top:none;border-left:1px solid #e3e5e8}
.bubble .buttons.horizontal a:first-child{border-left:none}
.bubble.feed a{display:flex;justify-content:space-between;gap:8px;padding:6px 0;color:inherit;text-decoration:none;border-bottom:1px solid #eee}
.bubble.feed img{width:40px;height:40px;object-fit:cover;background:#e3e5e8}
.bubble.image img{max-width:300px;border-radius:4px;background:#e3e5e8;min-height:40px;display:block}
.bubble.file{display:flex;gap:10px;align-items:center}
.bubble.file .icon{width:36px;height:42px;background:#1677ff;color:#fff;border-radius:4px;display:flex;align-items:center;justify-content:center;font-size:11px;text-transform:uppercase}
.bubble .meta{font-size:12px;color:#8f959e}
.bubble .broken-image, .broken-image{display:inline-block;color:#646a73;font-size:12px;background:#f0f1f3;border:1px dashed #c9ccd1;border-radius:4px;padding:6px 8px}
"#;

/// What the renderer knows of media ids (`@…`): where their bytes are shown from and their size.
/// The simulator knows both; a preview knows neither, and shows the id in words instead.
pub trait Media {
    fn src(&self, media_id: &str) -> Option<String>;
    fn size(&self, media_id: &str) -> Option<u64>;
}

/// No media store: images by media id show as words.
pub struct NoMedia;

impl Media for NoMedia {
    fn src(&self, _: &str) -> Option<String> {
        None
    }
    fn size(&self, _: &str) -> Option<u64> {
        None
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An app robot message (`msgKey` + `msgParam`).
pub fn app_message(media: &dyn Media, key: &str, p: &Value) -> String {
    match key {
        "sampleText" => text_bubble(s(p, "content"), &[], false),
        "sampleMarkdown" => markdown_bubble(media, s(p, "title"), s(p, "text")),
        "sampleLink" => link_card(
            media,
            s(p, "title"),
            s(p, "text"),
            s(p, "picUrl"),
            s(p, "messageUrl"),
        ),
        "sampleImageMsg" => image_bubble(media, s(p, "photoURL")),
        "sampleActionCard" => action_card(
            media,
            s(p, "title"),
            s(p, "text"),
            &[(s(p, "singleTitle"), s(p, "singleURL"))],
            false,
        ),
        "sampleActionCard6" => action_card(
            media,
            s(p, "title"),
            s(p, "text"),
            &[
                (s(p, "buttonTitle1"), s(p, "buttonUrl1")),
                (s(p, "buttonTitle2"), s(p, "buttonUrl2")),
            ],
            true,
        ),
        k if k.starts_with("sampleActionCard") => {
            let buttons: Vec<(&str, &str)> = (1..=5)
                .map(|i| {
                    (
                        s(p, &format!("actionTitle{i}")),
                        s(p, &format!("actionURL{i}")),
                    )
                })
                .filter(|(t, _)| !t.is_empty())
                .collect();
            action_card(media, s(p, "title"), s(p, "text"), &buttons, false)
        }
        "sampleFile" => file_bubble(media, s(p, "mediaId"), s(p, "fileName"), s(p, "fileType")),
        "sampleAudio" => format!(
            r#"<div class="bubble audio">🎤 Voice message <span class="meta">{} ms</span></div>"#,
            esc(&value_text(p.get("duration")))
        ),
        "sampleVideo" => format!(
            r#"<div class="bubble video">🎬 Video <span class="meta">{} · {} s</span></div>"#,
            esc(s(p, "videoType")),
            esc(&value_text(p.get("duration")))
        ),
        other => format!(
            r#"<div class="bubble">Unsupported message {}</div>"#,
            esc(other)
        ),
    }
}

/// A custom (webhook) robot message: its `msgtype`, the payload under that key, and `at`.
pub fn webhook_message(media: &dyn Media, msgtype: &str, p: &Value, at: Option<&Value>) -> String {
    match msgtype {
        "text" => {
            let mut mentions: Vec<String> = Vec::new();
            let mut at_all = false;
            if let Some(at) = at {
                for list in ["atUserIds", "atMobiles"] {
                    if let Some(Value::Array(a)) = at.get(list) {
                        mentions.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)));
                    }
                }
                at_all = at.get("isAtAll").and_then(Value::as_bool).unwrap_or(false);
            }
            text_bubble(s(p, "content"), &mentions, at_all)
        }
        "markdown" => markdown_bubble(media, s(p, "title"), s(p, "text")),
        "link" => link_card(
            media,
            s(p, "title"),
            s(p, "text"),
            s(p, "picUrl"),
            s(p, "messageUrl"),
        ),
        "actionCard" => {
            let horizontal = s(p, "btnOrientation") == "1";
            if !s(p, "singleTitle").is_empty() {
                action_card(
                    media,
                    s(p, "title"),
                    s(p, "text"),
                    &[(s(p, "singleTitle"), s(p, "singleURL"))],
                    horizontal,
                )
            } else {
                let btns = p.get("btns").and_then(Value::as_array);
                let buttons: Vec<(&str, &str)> = btns
                    .into_iter()
                    .flatten()
                    .map(|b| (s(b, "title"), s(b, "actionURL")))
                    .collect();
                action_card(media, s(p, "title"), s(p, "text"), &buttons, horizontal)
            }
        }
        "feedCard" => {
            let mut html = String::from(r#"<div class="bubble feed">"#);
            for l in p
                .get("links")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                html.push_str(&format!(
                    r#"<a href="{}" target="_blank" rel="noopener"><span class="card-title">{}</span>{}</a>"#,
                    esc(&safe_url(s(l, "messageURL"))),
                    esc(s(l, "title")),
                    img_tag(media, s(l, "picURL"), s(l, "title"))
                ));
            }
            html.push_str("</div>");
            html
        }
        other => format!(
            r#"<div class="bubble">Unsupported message {}</div>"#,
            esc(other)
        ),
    }
}

fn text_bubble(content: &str, mentions: &[String], at_all: bool) -> String {
    let mut html = esc(content);
    for m in mentions.iter().filter(|m| !m.is_empty()) {
        let token = format!("@{}", esc(m));
        html = html.replace(&token, &format!(r#"<span class="mention">{token}</span>"#));
    }
    if at_all {
        html.push_str(r#" <span class="mention">@所有人</span>"#);
    }
    format!(r#"<div class="bubble text">{html}</div>"#)
}

fn markdown_bubble(media: &dyn Media, title: &str, text: &str) -> String {
    format!(
        r#"<div class="bubble markdown" title="{}">{}</div>"#,
        esc(title),
        markdown(media, text)
    )
}

fn link_card(media: &dyn Media, title: &str, text: &str, pic: &str, url: &str) -> String {
    format!(
        r#"<div class="bubble link"><a class="link-card" href="{}" target="_blank" rel="noopener"><div><div class="card-title">{}</div><div class="link-text">{}</div></div>{}</a></div>"#,
        esc(&safe_url(url)),
        esc(title),
        esc(text),
        img_tag(media, pic, title)
    )
}

fn action_card(
    media: &dyn Media,
    title: &str,
    text: &str,
    buttons: &[(&str, &str)],
    horizontal: bool,
) -> String {
    let mut html = format!(
        r#"<div class="bubble action-card"><div class="card-title">{}</div>{}<div class="buttons{}">"#,
        esc(title),
        markdown(media, text),
        if horizontal { " horizontal" } else { "" }
    );
    for (t, u) in buttons {
        html.push_str(&format!(
            r#"<a class="button" href="{}" target="_blank" rel="noopener">{}</a>"#,
            esc(&safe_url(u)),
            esc(t)
        ));
    }
    html.push_str("</div></div>");
    html
}

fn image_bubble(media: &dyn Media, photo: &str) -> String {
    format!(
        r#"<div class="bubble image">{}</div>"#,
        img_tag(media, photo, "Image")
    )
}

fn file_bubble(media: &dyn Media, media_id: &str, name: &str, file_type: &str) -> String {
    let size = media
        .size(media_id)
        .map(|size| format!(" · {} KB", size.div_ceil(1024)))
        .unwrap_or_default();
    format!(
        r#"<div class="bubble file" data-media-id="{}"><div class="icon">{}</div><div><div class="file-name">{}</div><div class="meta">{}{}</div></div></div>"#,
        esc(media_id),
        esc(file_type),
        esc(name),
        esc(file_type),
        esc(&size)
    )
}

/// An image with words for when it cannot be shown (the page replaces a broken one with them).
fn img_tag(media: &dyn Media, src: &str, alt: &str) -> String {
    if src.is_empty() {
        return String::new();
    }
    let alt = if alt.is_empty() { "Image" } else { alt };
    if is_media_id(src) && media.src(src).is_none() {
        return format!(
            r#"<span class="broken-image" title="{}">{} ({})</span>"#,
            esc(src),
            esc(alt),
            esc(src)
        );
    }
    format!(
        r#"<img src="{}" alt="{}" title="{}" loading="lazy">"#,
        esc(&image_src(media, src)),
        esc(alt),
        esc(src)
    )
}

fn is_media_id(src: &str) -> bool {
    src.starts_with('@') || src.starts_with('$')
}

/// Media ids (`@…`, `$…`) are shown from where the media store says; other sources must be
/// http(s).
fn image_src(media: &dyn Media, src: &str) -> String {
    if is_media_id(src) {
        media.src(src).unwrap_or_else(|| "#".to_owned())
    } else {
        safe_url(src)
    }
}

/// Only http(s) and dingtalk:// links are kept; anything else (e.g. `javascript:`) becomes `#`.
fn safe_url(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if ["http://", "https://", "dingtalk://"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        url.trim().to_string()
    } else {
        "#".to_string()
    }
}

fn value_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// DingTalk's markdown subset: raw HTML is shown as text, single newlines break lines.
fn markdown(media: &dyn Media, text: &str) -> String {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::SoftBreak => Event::HardBreak,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: CowStr::from(safe_url(&dest_url)),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::from(image_src(media, &dest_url)),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_raw_html_and_bad_links() {
        let html = markdown(
            &NoMedia,
            "# Hi\n\n<script>alert(1)</script>\n\nsee [x](javascript:alert(1))",
        );
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains(r##"href="#""##), "{html}");
    }

    #[test]
    fn mentions_are_highlighted_inside_escaped_text() {
        let html = text_bubble("<b>hi</b> @manager1234", &["manager1234".into()], true);
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;"), "{html}");
        assert!(html.contains(r#"<span class="mention">@manager1234</span>"#));
        assert!(html.contains("@所有人"));
    }
}
