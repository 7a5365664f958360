//! The chat page (`GET /`): each conversation rendered the way the DingTalk client shows robot
//! messages. Self-contained (no external assets); every piece of user content is escaped, and
//! markdown is rendered with raw HTML turned into text and unsafe link schemes neutralised.

use axum::extract::State;
use axum::response::Html;
use dingtalk_render::{Media, app_message, esc, webhook_message};
use serde_json::Value;

use crate::model::ReceivedMessage;
use crate::state::Sim;

pub(crate) async fn page(State(sim): State<Sim>) -> Html<String> {
    let body = render_chats(&sim);
    const BUBBLES: &str = dingtalk_render::CSS;
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DingTalk simulator</title>
<style>{CSS}{BUBBLES}</style></head>
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
// Writing as a person: the message goes to the robots of the group (Stream mode).
chats.addEventListener('submit', async e => {
  const form = e.target.closest('form.say');
  if (!form) return;
  e.preventDefault();
  const text = form.elements.text.value;
  if (!text.trim()) return;
  const r = await fetch('/_sim/conversations/' + encodeURIComponent(form.dataset.conversation) + '/messages', {
    method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify({sender: {nick: 'You', staff_id: 'manager1234'}, text, at_robot: form.elements.at.checked}),
  });
  if (r.ok) { form.elements.text.value = ''; refresh().catch(() => {}); }
});
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
.say{display:flex;gap:6px;align-items:center;padding:8px 10px;border-top:1px solid #e3e5e8;background:#fff;border-radius:0 0 8px 8px;font-size:12px}
.say input[name=text]{flex:1;padding:6px 8px;border:1px solid #c9ccd1;border-radius:4px}
.bubble.person{background:#d7e8ff}
.empty{color:#8f959e;font-size:13px;text-align:center;padding:20px}
.earlier{color:#8f959e;font-size:12px;text-align:center}.earlier a{color:#8f959e}
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
        html.push_str("</div>");
        // A person's side: write into a group, @-mentioning its robot(s) or not.
        if !conv.key.starts_with("user:") {
            html.push_str(&format!(
                r#"<form class="say" data-conversation="{}"><input name="text" placeholder="Write as a person…" aria-label="Message to {}" autocomplete="off"><label><input type="checkbox" name="at" checked> @robot</label><button type="submit">Send</button></form>"#,
                esc(&conv.key),
                esc(&conv.title)
            ));
        }
        html.push_str("</section>");
    }
    html
}

fn render_message(sim: &Sim, m: &ReceivedMessage) -> String {
    let empty = Value::Null;
    let payload = m.payload.as_ref().unwrap_or(&empty);
    let msgtype = m.msgtype.as_deref().unwrap_or_default();
    let (sender, kind, body) = match m.api.as_str() {
        "webhook" => (
            "Custom robot".to_string(),
            msgtype.to_string(),
            webhook_message(&SimMedia(sim), msgtype, payload, m.at.as_ref()),
        ),
        // A robot's reply through its session webhook (Stream mode).
        "session" => (
            format!("{} (reply)", m.robot_code.as_deref().unwrap_or_default()),
            msgtype.to_string(),
            webhook_message(&SimMedia(sim), msgtype, payload, m.at.as_ref()),
        ),
        // What a person wrote.
        "person" => (
            payload["sender"].as_str().unwrap_or("Someone").to_string(),
            msgtype.to_string(),
            person_bubble(msgtype, payload),
        ),
        _ => {
            let param = m.msg_param.as_ref().unwrap_or(&empty);
            let key = m.msg_key.as_deref().unwrap_or_default();
            (
                m.robot_code.clone().unwrap_or_default(),
                key.to_string(),
                app_message(&SimMedia(sim), key, param),
            )
        }
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

/// The simulator's media store: uploaded files are served at `/_sim/media/{id}`.
struct SimMedia<'a>(&'a Sim);

impl Media for SimMedia<'_> {
    fn src(&self, media_id: &str) -> Option<String> {
        let encoded =
            percent_encoding::utf8_percent_encode(media_id, percent_encoding::NON_ALPHANUMERIC);
        Some(format!("/_sim/media/{encoded}"))
    }

    fn size(&self, media_id: &str) -> Option<u64> {
        crate::media::describe(self.0, media_id).map(|(_, _, size)| size as u64)
    }
}

/// A person's message: text (with the @-mention of the robot when there was one), or the name
/// of the picture or file.
fn person_bubble(msgtype: &str, payload: &Value) -> String {
    let content = &payload["content"];
    let at = if payload["at_robot"].as_bool().unwrap_or(false) {
        r#"<span class="mention">@robot</span> "#
    } else {
        ""
    };
    let text = match msgtype {
        "text" => esc(content["content"].as_str().unwrap_or_default()),
        "picture" => "🖼 picture".to_owned(),
        "file" => format!(
            "📎 {}",
            esc(content["fileName"].as_str().unwrap_or_default())
        ),
        other => esc(other),
    };
    format!(r#"<div class="bubble text person">{at}{text}</div>"#)
}
