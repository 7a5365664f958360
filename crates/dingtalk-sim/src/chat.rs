//! The chat page (`GET /`): each conversation rendered the way the DingTalk client shows robot
//! messages. Self-contained (no external assets); every piece of user content is escaped, and
//! markdown is rendered with raw HTML turned into text and unsafe link schemes neutralised.

use axum::extract::State;
use axum::response::Html;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use serde_json::Value;

use crate::model::ReceivedMessage;
use crate::state::Sim;

pub(crate) async fn page(State(sim): State<Sim>) -> Html<String> {
    let body = render_chats(&sim);
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DingTalk simulator</title>
<style>{CSS}</style></head>
<body><header class="top">DingTalk simulator <span class="hint">new messages appear every 2 s · <a href="/_sim/messages">/_sim/messages</a> · <a href="/_sim/stats">/_sim/stats</a></span></header>
<div id="chats">{body}</div>
<script>{SCRIPT}</script></body></html>"#
    ))
}

pub(crate) async fn fragment(State(sim): State<Sim>) -> Html<String> {
    Html(render_chats(&sim))
}

/// The page's behaviour, like DingTalk's: every column opens at its newest message; a refresh
/// only adds new messages (and drops recalled ones), so nothing jumps; a column stays at the
/// bottom while you are there and keeps your place when you have scrolled up.
const SCRIPT: &str = r#"
const chats = document.getElementById('chats');
const atBottom = el => el.scrollHeight - el.scrollTop - el.clientHeight < 40;
const toBottom = el => { el.scrollTop = el.scrollHeight; };
const ids = root => new Set([...root.querySelectorAll('.msg')].map(m => m.dataset.msgId));
for (const list of chats.querySelectorAll('.messages')) { list.dataset.stick = '1'; toBottom(list); }
chats.addEventListener('scroll', e => {
  if (e.target.classList && e.target.classList.contains('messages')) {
    e.target.dataset.stick = atBottom(e.target) ? '1' : '0';
  }
}, true);
// Images load after the column was placed: keep a column that was at the bottom there.
chats.addEventListener('load', e => {
  const list = e.target.closest && e.target.closest('.messages');
  if (list && list.dataset.stick === '1') toBottom(list);
}, true);
// An image that cannot be loaded says so, in words.
chats.addEventListener('error', e => {
  if (e.target.tagName !== 'IMG') return;
  const note = document.createElement('span');
  note.className = 'broken-image';
  note.textContent = (e.target.alt || 'Image') + ' (could not be loaded)';
  note.title = e.target.title;
  e.target.replaceWith(note);
}, true);
async function refresh() {
  const r = await fetch('/_sim/chat');
  if (!r.ok) return;
  const next = document.createElement('div');
  next.innerHTML = await r.text();
  for (const section of next.querySelectorAll('section.chat')) {
    const key = section.dataset.conversation;
    const mine = [...chats.querySelectorAll('section.chat')].find(s => s.dataset.conversation === key);
    if (!mine) {
      chats.appendChild(section);
      const list = section.querySelector('.messages');
      list.dataset.stick = '1';
      toBottom(list);
      continue;
    }
    const list = mine.querySelector('.messages');
    const stick = list.dataset.stick !== '0';
    const wanted = ids(section);
    const height = list.scrollHeight;
    for (const m of [...list.querySelectorAll('.msg')]) if (!wanted.has(m.dataset.msgId)) m.remove();
    // Messages removed above the reader's place must not move what they are reading.
    if (!stick) list.scrollTop -= height - list.scrollHeight;
    const have = ids(list);
    for (const m of section.querySelectorAll('.msg')) {
      if (!have.has(m.dataset.msgId)) list.appendChild(m.cloneNode(true));
    }
    for (const cls of ['.earlier', '.empty']) {
      const old = list.querySelector(cls), fresh = section.querySelector(cls);
      if (old && !fresh) old.remove();
      if (fresh && !old) list.insertBefore(fresh.cloneNode(true), list.firstChild);
      if (fresh && old) old.textContent = fresh.textContent;
    }
    if (stick) toBottom(list);
  }
}
setInterval(() => refresh().catch(e => console.warn('refresh failed', e)), 2000);
"#;

const CSS: &str = r#"
body{margin:0;font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#eef0f4;color:#1f2329}
.top{background:#1677ff;color:#fff;padding:10px 16px;font-weight:600}
.top .hint{font-weight:400;font-size:12px;opacity:.85;margin-left:12px}.top a{color:#fff}
#chats{display:flex;flex-wrap:wrap;gap:16px;padding:16px}
.chat{background:#f5f6f7;border-radius:8px;width:420px;display:flex;flex-direction:column;max-height:80vh;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.chat-header{padding:10px 14px;font-weight:600;border-bottom:1px solid #e3e5e8;background:#fff;border-radius:8px 8px 0 0}
.chat-header .cid{display:block;font-weight:400;font-size:11px;color:#8f959e}
.messages{overflow-y:auto;padding:10px 12px;display:flex;flex-direction:column;gap:10px}
.msg .sender{font-size:12px;color:#8f959e;margin-bottom:3px}
.bubble{background:#fff;border-radius:6px;padding:8px 11px;max-width:340px;word-wrap:break-word;white-space:normal}
.bubble.text{white-space:pre-wrap}
.mention{color:#1677ff}
.card-title{font-weight:600;margin-bottom:6px}
.link-card{display:flex;gap:8px;text-decoration:none;color:inherit}
.link-card img{width:56px;height:56px;object-fit:cover;border-radius:4px;background:#e3e5e8}
.link-text{font-size:13px;color:#646a73}
.buttons{display:flex;flex-direction:column;border-top:1px solid #e3e5e8;margin:8px -11px -8px}
.buttons.horizontal{flex-direction:row}
.buttons a{flex:1;text-align:center;padding:8px;color:#1677ff;text-decoration:none;border-top:1px solid #e3e5e8}
.buttons.horizontal a{border-top:none;border-left:1px solid #e3e5e8}
.buttons.horizontal a:first-child{border-left:none}
.feed a{display:flex;justify-content:space-between;gap:8px;padding:6px 0;color:inherit;text-decoration:none;border-bottom:1px solid #eee}
.feed img{width:40px;height:40px;object-fit:cover;background:#e3e5e8}
.image img{max-width:300px;border-radius:4px;background:#e3e5e8;min-height:40px;display:block}
.file{display:flex;gap:10px;align-items:center}
.file .icon{width:36px;height:42px;background:#1677ff;color:#fff;border-radius:4px;display:flex;align-items:center;justify-content:center;font-size:11px;text-transform:uppercase}
.meta{font-size:12px;color:#8f959e}
.empty{color:#8f959e;font-size:13px;text-align:center;padding:20px}
.earlier{color:#8f959e;font-size:12px;text-align:center}.earlier a{color:#8f959e}
.broken-image{display:inline-block;color:#646a73;font-size:12px;background:#f0f1f3;border:1px dashed #c9ccd1;border-radius:4px;padding:6px 8px}
"#;

/// The most recent messages shown per conversation.
const SHOWN_PER_CONVERSATION: usize = 300;

/// One conversation on the page.
struct Conversation {
    key: String,
    title: String,
    subtitle: String,
}

fn conversations(sim: &Sim, messages: &[ReceivedMessage]) -> Vec<Conversation> {
    let mut out: Vec<Conversation> = Vec::new();
    let mut push = |key: &str, title: &str, subtitle: &str| {
        if !out.iter().any(|c| c.key == key) {
            out.push(Conversation {
                key: key.into(),
                title: title.into(),
                subtitle: subtitle.into(),
            });
        }
    };
    for app in &sim.fixture.apps {
        for g in &app.groups {
            push(&g.open_conversation_id, &g.title, &g.open_conversation_id);
        }
    }
    for w in &sim.fixture.webhook_robots {
        let title = w.title.as_deref().unwrap_or(&w.open_conversation_id);
        push(&w.open_conversation_id, title, &w.open_conversation_id);
    }
    // 1:1 chats appear once a robot has written to the user.
    for m in messages {
        for u in m.user_ids.iter().flatten() {
            let name = sim
                .fixture
                .apps
                .iter()
                .flat_map(|a| a.users.iter())
                .find(|f| &f.user_id == u)
                .map(|f| f.name.as_str())
                .unwrap_or(u);
            push(&format!("user:{u}"), name, &format!("1:1 chat · {u}"));
        }
    }
    out
}

fn in_conversation(m: &ReceivedMessage, key: &str) -> bool {
    match key.strip_prefix("user:") {
        Some(user) => m.user_ids.iter().flatten().any(|u| u == user),
        None => m.open_conversation_id.as_deref() == Some(key),
    }
}

fn render_chats(sim: &Sim) -> String {
    let messages: Vec<ReceivedMessage> = sim
        .lock()
        .messages
        .iter()
        .filter(|m| !m.recalled)
        .cloned()
        .collect();
    let mut html = String::new();
    for conv in conversations(sim, &messages) {
        html.push_str(&format!(
            r#"<section class="chat" data-conversation="{}"><div class="chat-header">{}<span class="cid">{}</span></div><div class="messages">"#,
            esc(&conv.key),
            esc(&conv.title),
            esc(&conv.subtitle)
        ));
        let here: Vec<&ReceivedMessage> = messages
            .iter()
            .filter(|m| in_conversation(m, &conv.key))
            .collect();
        // Like DingTalk, the page holds the recent history; the rest is in /_sim/messages.
        let earlier = here.len().saturating_sub(SHOWN_PER_CONVERSATION);
        if earlier > 0 {
            html.push_str(&format!(
                r#"<div class="earlier">{earlier} earlier messages are in <a href="/_sim/messages">/_sim/messages</a></div>"#
            ));
        }
        for m in &here[earlier..] {
            html.push_str(&render_message(sim, m));
        }
        if here.is_empty() {
            html.push_str(r#"<div class="empty">No messages yet</div>"#);
        }
        html.push_str("</div></section>");
    }
    html
}

fn render_message(sim: &Sim, m: &ReceivedMessage) -> String {
    let empty = Value::Null;
    let (sender, kind, body) = if m.api == "webhook" {
        let payload = m.payload.as_ref().unwrap_or(&empty);
        let msgtype = m.msgtype.as_deref().unwrap_or_default();
        (
            "Custom robot".to_string(),
            msgtype.to_string(),
            render_webhook(msgtype, payload, m.at.as_ref()),
        )
    } else {
        let param = m.msg_param.as_ref().unwrap_or(&empty);
        let key = m.msg_key.as_deref().unwrap_or_default();
        (
            m.robot_code.clone().unwrap_or_default(),
            key.to_string(),
            render_app_message(sim, key, param),
        )
    };
    format!(
        r#"<div class="msg" data-msg-id="{}" data-api="{}" data-msg-key="{}" data-received-at="{}"><div class="sender">{} · {}</div>{}</div>"#,
        m.id,
        esc(&m.api),
        esc(&kind),
        esc(&m.received_at),
        esc(&sender),
        esc(&m.received_at),
        body
    )
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn render_app_message(sim: &Sim, key: &str, p: &Value) -> String {
    match key {
        "sampleText" => text_bubble(s(p, "content"), &[], false),
        "sampleMarkdown" => markdown_bubble(s(p, "title"), s(p, "text")),
        "sampleLink" => link_card(
            s(p, "title"),
            s(p, "text"),
            s(p, "picUrl"),
            s(p, "messageUrl"),
        ),
        "sampleImageMsg" => image_bubble(s(p, "photoURL")),
        "sampleActionCard" => action_card(
            s(p, "title"),
            s(p, "text"),
            &[(s(p, "singleTitle"), s(p, "singleURL"))],
            false,
        ),
        "sampleActionCard6" => action_card(
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
            action_card(s(p, "title"), s(p, "text"), &buttons, false)
        }
        "sampleFile" => file_bubble(sim, s(p, "mediaId"), s(p, "fileName"), s(p, "fileType")),
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

fn render_webhook(msgtype: &str, p: &Value, at: Option<&Value>) -> String {
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
        "markdown" => markdown_bubble(s(p, "title"), s(p, "text")),
        "link" => link_card(
            s(p, "title"),
            s(p, "text"),
            s(p, "picUrl"),
            s(p, "messageUrl"),
        ),
        "actionCard" => {
            let horizontal = s(p, "btnOrientation") == "1";
            if !s(p, "singleTitle").is_empty() {
                action_card(
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
                action_card(s(p, "title"), s(p, "text"), &buttons, horizontal)
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
                    img_tag(s(l, "picURL"), s(l, "title"))
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

fn markdown_bubble(title: &str, text: &str) -> String {
    format!(
        r#"<div class="bubble markdown" title="{}">{}</div>"#,
        esc(title),
        markdown(text)
    )
}

fn link_card(title: &str, text: &str, pic: &str, url: &str) -> String {
    format!(
        r#"<div class="bubble link"><a class="link-card" href="{}" target="_blank" rel="noopener"><div><div class="card-title">{}</div><div class="link-text">{}</div></div>{}</a></div>"#,
        esc(&safe_url(url)),
        esc(title),
        esc(text),
        img_tag(pic, title)
    )
}

fn action_card(title: &str, text: &str, buttons: &[(&str, &str)], horizontal: bool) -> String {
    let mut html = format!(
        r#"<div class="bubble action-card"><div class="card-title">{}</div>{}<div class="buttons{}">"#,
        esc(title),
        markdown(text),
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

fn image_bubble(photo: &str) -> String {
    format!(
        r#"<div class="bubble image">{}</div>"#,
        img_tag(photo, "Image")
    )
}

fn file_bubble(sim: &Sim, media_id: &str, name: &str, file_type: &str) -> String {
    let size = crate::media::describe(sim, media_id)
        .map(|(_, _, size)| format!(" · {} KB", size.div_ceil(1024)))
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
fn img_tag(src: &str, alt: &str) -> String {
    if src.is_empty() {
        return String::new();
    }
    let alt = if alt.is_empty() { "Image" } else { alt };
    format!(
        r#"<img src="{}" alt="{}" title="{}" loading="lazy">"#,
        esc(&image_src(src)),
        esc(alt),
        esc(src)
    )
}

/// Media ids (`@…`, `$…`) are served by the simulator; other sources must be http(s).
fn image_src(src: &str) -> String {
    if src.starts_with('@') || src.starts_with('$') {
        let encoded =
            percent_encoding::utf8_percent_encode(src, percent_encoding::NON_ALPHANUMERIC);
        format!("/_sim/media/{encoded}")
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
fn markdown(text: &str) -> String {
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
            dest_url: CowStr::from(image_src(&dest_url)),
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
fn esc(s: &str) -> String {
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
        let html = markdown("# Hi\n\n<script>alert(1)</script>\n\nsee [x](javascript:alert(1))");
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
