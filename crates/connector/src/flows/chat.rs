//! Which chat flows a robot message starts, and what their templates read as `trigger.*`:
//! `text`, `command` and `args` (the first word and the rest), `match` (the pattern's groups),
//! `sender`, `conversation`, `msg_id` (what a `reply` step answers), `connection`.

use serde_json::{Map, Value, json};

use super::doc::{ChatScope, Trigger};
use crate::store::{Conversation, Sender};

/// The largest compiled pattern: a flow's regular expression cannot make matching slow.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// A received robot message, as chat flows see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// The connection's name.
    pub connection: String,
    pub msg_id: String,
    pub msgtype: String,
    /// The text (the @-mention removed, trimmed); `None` for pictures, files and the like.
    pub text: Option<String>,
    pub conversation: Conversation,
    pub sender: Sender,
}

/// Compiles a chat flow's pattern, or says why it cannot be used.
pub fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            // The syntax error's text draws the pattern with a caret over several lines; its
            // last line says what is wrong.
            let text = e.to_string();
            let why = text
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .trim_start_matches("error: ");
            format!("not a valid regular expression: {why}")
        })
}

/// The command word of a text: its first word without a leading `/`, in lower case.
fn split_command(text: &str) -> Option<(String, Vec<String>)> {
    let mut words = text.split_whitespace();
    let first = words.next()?.trim_start_matches('/').to_lowercase();
    Some((first, words.map(str::to_owned).collect()))
}

/// The trigger data when `trigger` is a chat trigger `m` satisfies; `None` otherwise.
pub fn matches(trigger: &Trigger, m: &ChatMessage) -> Option<Value> {
    let Trigger::Chat {
        connection,
        conversation,
        command,
        pattern,
        senders,
    } = trigger
    else {
        return None;
    };
    if *connection != m.connection {
        return None;
    }
    match conversation {
        ChatScope::Any => {}
        ChatScope::Group if m.conversation.group => {}
        ChatScope::OneToOne if !m.conversation.group => {}
        _ => return None,
    }
    if !senders.is_empty()
        && !senders
            .iter()
            .any(|s| *s == m.sender.nick || Some(s.as_str()) == m.sender.staff_id.as_deref())
    {
        return None;
    }
    let text = m.text.as_deref();
    let (word, args) = text.and_then(split_command).unzip();
    if let Some(want) = command {
        let want = want.trim().trim_start_matches('/').to_lowercase();
        if word.as_deref() != Some(want.as_str()) {
            return None;
        }
    }
    let groups = match pattern {
        None => Value::Null,
        Some(p) => {
            // Checked when the flow was applied; a pattern that stopped compiling matches nothing.
            let re = compile(p).ok()?;
            let caps = re.captures(text?)?;
            let mut out = Map::new();
            for (i, name) in re.capture_names().enumerate() {
                let value = caps
                    .get(i)
                    .map(|g| Value::from(g.as_str()))
                    .unwrap_or(Value::Null);
                out.insert(i.to_string(), value.clone());
                if let Some(name) = name {
                    out.insert(name.to_owned(), value);
                }
            }
            Value::Object(out)
        }
    };
    Some(json!({
        "connection": m.connection,
        "msg_id": m.msg_id,
        "msgtype": m.msgtype,
        "text": text.unwrap_or_default(),
        "command": word,
        "args": args.unwrap_or_default(),
        "match": groups,
        "sender": m.sender,
        "conversation": {
            "id": m.conversation.id,
            "title": m.conversation.title,
            "kind": if m.conversation.group { "group" } else { "one_to_one" },
        },
    }))
}

/// What a dry run of a chat flow reads when no sample is given.
pub fn sample(trigger: &Trigger) -> Value {
    let command = match trigger {
        Trigger::Chat {
            command: Some(c), ..
        } => c.trim_start_matches('/').to_lowercase(),
        _ => "status".to_owned(),
    };
    let connection = trigger.chat_connection().unwrap_or("ops");
    json!({
        "connection": connection,
        "msg_id": "msgSample",
        "msgtype": "text",
        "text": format!("{command} db-1"),
        "command": command,
        "args": ["db-1"],
        "match": null,
        "sender": {"nick": "Li Lei", "staff_id": "manager1234"},
        "conversation": {"id": "cidSample==", "title": "Ops", "kind": "group"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> ChatMessage {
        ChatMessage {
            connection: "ops".into(),
            msg_id: "m1".into(),
            msgtype: "text".into(),
            text: Some(text.into()),
            conversation: Conversation {
                id: "cidG==".into(),
                group: true,
                title: Some("Ops".into()),
            },
            sender: Sender {
                nick: "Li Lei".into(),
                staff_id: Some("u1".into()),
            },
        }
    }

    fn chat(command: Option<&str>, pattern: Option<&str>) -> Trigger {
        Trigger::Chat {
            connection: "ops".into(),
            conversation: ChatScope::Any,
            command: command.map(str::to_owned),
            pattern: pattern.map(str::to_owned),
            senders: Vec::new(),
        }
    }

    #[test]
    fn a_command_is_the_first_word_and_the_rest_are_its_arguments() {
        let data = matches(&chat(Some("ack"), None), &message("/ACK 4711 now")).unwrap();
        assert_eq!(data["command"], "ack");
        assert_eq!(data["args"], json!(["4711", "now"]));
        assert_eq!(data["text"], "/ACK 4711 now");
        assert_eq!(data["conversation"]["kind"], "group");
        assert_eq!(data["sender"]["staff_id"], "u1");
        assert!(matches(&chat(Some("ack"), None), &message("status db-1")).is_none());
        assert!(matches(&chat(Some("ack"), None), &message("")).is_none());
    }

    #[test]
    fn a_pattern_gives_its_groups() {
        let t = chat(None, Some(r"^status (?P<host>\S+)$"));
        let data = matches(&t, &message("status db-1")).unwrap();
        assert_eq!(data["match"]["host"], "db-1");
        assert_eq!(data["match"]["1"], "db-1");
        assert_eq!(data["match"]["0"], "status db-1");
        assert!(matches(&t, &message("status")).is_none());
        let mut picture = message("");
        picture.text = None;
        assert!(matches(&t, &picture).is_none(), "no text, no match");
        assert!(
            matches(&chat(None, None), &picture).is_some(),
            "a flow with no condition hears everything"
        );
    }

    #[test]
    fn connection_conversation_and_sender_must_fit() {
        let mut t = chat(None, None);
        let mut other = message("hi");
        other.connection = "dev".into();
        assert!(matches(&t, &other).is_none());
        if let Trigger::Chat {
            conversation,
            senders,
            ..
        } = &mut t
        {
            *conversation = ChatScope::OneToOne;
            senders.push("Li Lei".into());
        }
        assert!(matches(&t, &message("hi")).is_none(), "a group message");
        let mut single = message("hi");
        single.conversation.group = false;
        assert!(matches(&t, &single).is_some());
        single.sender = Sender {
            nick: "Han Meimei".into(),
            staff_id: Some("u2".into()),
        };
        assert!(matches(&t, &single).is_none(), "another sender");
    }

    #[test]
    fn a_bad_pattern_is_refused_with_its_reason() {
        assert!(
            compile("(unclosed")
                .unwrap_err()
                .contains("regular expression")
        );
    }
}
