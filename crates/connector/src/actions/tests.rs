//! The catalog and validation, as a spec.

use super::compose::input_field;
use super::*;
use crate::schema;
use dingtalk::Message;
use dingtalk::robot::MAX_MSG_PARAM_BYTES;
use serde_json::{Value, json};
use types::MediaKind;

const G: &str = "cidSandboxOps0000000000==";

fn err(action: &str, input: Value) -> (String, String) {
    match validate(action, input) {
        Err(InputError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected a field error, got {other:?}"),
    }
}

/// Asserts that `input` is refused for `field`, with a reason that says `says`.
#[track_caller]
fn refused(action: &str, input: Value, field: &str, says: &str) {
    let (got_field, reason) = err(action, input);
    assert_eq!(got_field, field, "{reason}");
    assert!(reason.contains(says), "{field}: {reason}");
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
    refused(
        "send_text",
        json!({ "group_chat_id": G, "content": "x", "contnet": "y" }),
        "contnet",
        "content",
    );
}

#[test]
fn nested_fields_are_named_with_their_path() {
    let card = |buttons: Value| json!({ "group_chat_id": G, "subject": "s", "content": "c", "buttons": buttons });
    refused(
        "send_action_card",
        card(json!([{ "title": "a", "url": "https://a" }, { "title": "b", "url": 5 }])),
        "buttons[1].url",
        "string",
    );
    refused(
        "send_action_card",
        card(json!([{ "title": "a", "url": "https://a" }, { "title": "b" }])),
        "buttons[1].url",
        "is required",
    );
    refused(
        "send_action_card",
        card(
            json!([{ "title": "a", "url": "https://a" }, { "title": "b", "url": "https://b", "x": 1 }]),
        ),
        "buttons[1].x",
        "is not a field of this input (fields: title, url)",
    );
    refused(
        "send_action_card",
        card(json!([{ "title": "a", "url": "https://a" }, { "title": "b", "url": "ftp://b" }])),
        "buttons[1].url",
        "must be an http(s):// or dingtalk:// link",
    );
    refused(
        "send_image",
        json!({ "group_chat_id": G, "file": { "name": "a.png", "content_base64": "%%%" } }),
        "file.content_base64",
        "base64",
    );
}

#[test]
fn bad_enum_names_the_allowed_values() {
    let (field, reason) = err(
        "send_file",
        json!({ "group_chat_id": G, "media_id": "@x", "file_name": "a", "file_type": "txt" }),
    );
    // `null` (leaving the field out) is allowed too, but is no value to suggest.
    assert_eq!(
        (field.as_str(), reason.as_str()),
        (
            "file_type",
            "`txt` is not one of xlsx, pdf, zip, rar, doc, docx"
        )
    );
}

#[test]
fn a_short_text_is_one_unlabelled_part() {
    let v = validate("send_text", json!({ "group_chat_id": G, "content": "hi" })).unwrap();
    assert_eq!(v.parts(), 1);
    assert_eq!(v.group_chat_id(), Some(G));
    assert_eq!(v.action(), "send_text");
    assert_eq!(
        sends(&v),
        vec![&MessageSpec::Ready(Message::Text {
            content: "hi".into()
        })]
    );
}

#[test]
fn deliveries_get_ids_that_sort_in_the_order_they_were_made() {
    // Time-ordered ids (UUIDv7) keep the delivery log's id index and its attempts appending
    // at the end of their b-trees; random ones made each logged send rewrite random pages.
    let v = validate("send_text", json!({ "group_chat_id": G, "content": "hi" })).unwrap();
    let conn = uuid::Uuid::new_v4();
    let ids: Vec<uuid::Uuid> = (0..100).map(|_| v.delivery(conn).unwrap().id).collect();
    assert!(ids.iter().all(|id| id.get_version_num() == 7), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
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
        let MessageSpec::Ready(Message::Text { content }) = m else {
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
        let MessageSpec::Ready(Message::Markdown { title, text }) = m else {
            panic!("{m:?}")
        };
        assert_eq!(title, &format!("Report ({}/{n})", i + 1));
        // Numbered where a reader sees it, too.
        let label = format!("**({}/{n})**\n\n", i + 1);
        let body = text
            .strip_prefix(&label)
            .unwrap_or_else(|| panic!("{text:.40}"));
        assert!(body.ends_with('\n'), "cut at a line break");
        rejoined.push_str(body);
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
        "is 20000 bytes; DingTalk allows 15000 bytes per message (with the other fields) — set \
         split:true or shorten it"
    );
    // The size given is the text's; DingTalk's count is added when escapes make it differ.
    let (_, reason) = err(
        "send_text",
        json!({ "group_chat_id": G, "content": "\"".repeat(10_000), "split": false }),
    );
    assert!(
        reason.starts_with("is 10000 bytes (20000 as DingTalk counts them"),
        "{reason}"
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

/// Deliveries queued by an earlier dtc hold plans in the form it wrote; they still run.
#[test]
fn a_plan_stored_before_messages_were_dingtalks_own_types_still_reads() {
    let stored = json!({
        "action": "send_action_card",
        "steps": [
            { "step": "group_send", "group_chat_id": G, "message": {
                "type": "action_card_buttons", "title": "t", "text": "x", "layout": "horizontal",
                "buttons": [{ "title": "a", "url": "https://a.example" },
                            { "title": "b", "url": "https://b.example" }] } },
            { "step": "group_send", "group_chat_id": G, "message": {
                "type": "image", "photo": { "given": "@media" } } },
            { "step": "group_send", "group_chat_id": G, "message": {
                "type": "file", "media": "uploaded", "file_name": "a.pdf", "file_type": "pdf" } },
            { "step": "webhook", "message": {
                "type": "feed_card", "links": [{ "title": "t", "url": "https://a.example",
                                                 "image_url": "https://a.example/p.png" }] } },
            { "step": "webhook", "message": {
                "type": "action_card_buttons", "title": "t", "text": "x", "horizontal": false,
                "buttons": [{ "title": "a", "url": "https://a.example" }] } }
        ]
    });
    let v: ValidatedAction = serde_json::from_value(stored).unwrap();
    let msgs: Vec<_> = v
        .steps()
        .iter()
        .filter_map(|s| match s {
            Step::GroupSend { message, .. } => Some(message.to_message(Some("@up")).unwrap()),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&msgs[0], Message::ActionCardButtons { buttons, layout, .. }
        if buttons[1].url == "https://b.example" && *layout == dingtalk::ButtonLayout::Horizontal)
    );
    assert!(matches!(&msgs[1], Message::Image { photo_url } if photo_url == "@media"));
    assert!(matches!(&msgs[2], Message::File { media_id, .. } if media_id.as_str() == "@up"));
    let hooks: Vec<_> = v
        .steps()
        .iter()
        .filter_map(|s| match s {
            Step::Webhook { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&hooks[0], dingtalk::WebhookPayload::FeedCard { links }
        if links[0].message_url == "https://a.example"
            && links[0].pic_url == "https://a.example/p.png")
    );
    assert!(
        matches!(&hooks[1], dingtalk::WebhookPayload::ActionCardButtons { buttons, .. }
        if buttons[0].action_url == "https://a.example")
    );
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
        vec![&MessageSpec::Media(MediaMessage::File {
            media: MediaRef::Uploaded,
            file_name: "Q3 report.PDF".into(),
            file_type: "pdf".into(),
        })]
    );
    refused(
        "send_file",
        json!({ "group_chat_id": G, "file": { "name": "notes.txt", "content_base64": "aGk=" } }),
        "file.name",
        "is not a file type DingTalk sends",
    );
}

#[test]
fn mentions_only_in_text_and_markdown() {
    refused(
        "webhook_send",
        json!({ "msg_type": "link", "subject": "s", "content": "c",
                "redirect_url": "https://x", "at_all": true }),
        "at_all",
        "text and markdown",
    );
}

#[test]
fn fields_another_msg_type_uses_are_refused() {
    let (field, reason) = err(
        "send_to_users",
        json!({ "user_ids": ["u1"], "msg_type": "text", "content": "c", "subject": "s" }),
    );
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("subject", "is not used by msg_type text")
    );
}

#[test]
fn client_field_names_map_back_to_input_names() {
    for (client, input) in [
        ("btns[2].actionURL", "buttons[2].url"),
        ("links[0].messageURL", "links[0].url"),
        ("singleURL", "redirect_url"),
        ("msgParam", "content"),
    ] {
        assert_eq!(input_field(client), input);
    }
}

#[test]
fn the_catalog_lists_every_action_with_self_contained_schemas() {
    let catalog = catalog();
    assert_eq!(catalog.len(), 12);
    for spec in catalog {
        for schema in [&spec.input_schema, &spec.output_schema] {
            let text = schema.to_string();
            assert!(!text.contains("$ref"), "{}: {text}", spec.name);
            assert!(!text.contains("$schema"), "{}", spec.name);
            assert_eq!(schema["type"], "object", "{}", spec.name);
        }
        assert_eq!(
            spec.input_schema["additionalProperties"], false,
            "{} refuses unknown fields",
            spec.name
        );
    }
}

#[test]
fn the_catalog_entry_is_described_for_api_users() {
    let schema = serde_json::to_value(schemars::schema_for!(ActionDef)).unwrap();
    assert_eq!(schema["title"], "CatalogEntry");
    let description = schema["description"].as_str().unwrap();
    assert!(description.starts_with("An action of the catalog: its name"));
    assert!(!description.contains("validator"), "{description}");
    let fields: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "connection_kind",
            "description",
            "input_schema",
            "name",
            "output_schema",
            "title"
        ]
    );
}

#[test]
fn the_six_seed_actions_carry_the_seeds_names() {
    for (name, title) in [
        ("send_text", "Send a text message by chatbot"),
        ("send_markdown", "Send a Markdown message by chatbot"),
        ("send_link", "Send a link message by chatbot"),
        ("send_image", "Send an image message by chatbot"),
        ("send_file", "Send a file message by chatbot"),
        ("send_action_card", "Send an ActionCard message by chatbot"),
    ] {
        let s = spec(name).unwrap();
        assert_eq!(s.title, title);
        assert_eq!(s.input_schema["title"], title);
    }
    for s in catalog() {
        assert!(!s.title.is_empty() && !s.title.contains('\n'), "{}", s.name);
        assert!(
            s.description.ends_with('.'),
            "{}: {}",
            s.name,
            s.description
        );
        assert!(!s.description.contains('\n'), "{}", s.name);
        assert_eq!(s.input_schema["description"], s.description);
    }
}

#[test]
fn schemas_carry_the_seed_names_and_descriptions() {
    let s = spec("send_link").unwrap();
    let required: Vec<&str> = s.input_schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        [
            "group_chat_id",
            "subject",
            "content",
            "image_url",
            "redirect_url"
        ]
    );
    assert!(
        s.input_schema["properties"]["redirect_url"]["description"]
            .as_str()
            .unwrap()
            .contains("dingtalk://")
    );
    let file = spec("send_file").unwrap();
    let types = file.input_schema.to_string();
    for t in ["xlsx", "pdf", "zip", "rar", "doc", "docx"] {
        assert!(types.contains(&format!("\"{t}\"")), "{t}");
    }
    assert_eq!(
        spec("webhook_send").unwrap().connection_kind,
        ConnectionKind::WebhookRobot
    );
    assert_eq!(
        spec("send_text").unwrap().connection_kind,
        ConnectionKind::AppRobot
    );
    assert!(spec("send_fax").is_none());
}

/// Every form of every action's input, valid.
fn valid_inputs() -> Vec<(String, Value)> {
    let file = json!({ "name": "q3.xlsx", "content_base64": "UEsDBA==" });
    let png = json!({ "name": "chart.png", "content_base64": "iVBORw0KGgo=" });
    let buttons = json!([{ "title": "A", "url": "https://a.example" }, { "title": "B", "url": "dingtalk://dingtalkclient/page/link?url=x" }]);
    let by_action = json!({
        "send_text": [
            { "group_chat_id": G, "content": "hi" },
            { "group_chat_id": G, "content": "hi", "split": false }
        ],
        "send_markdown": [
            { "group_chat_id": G, "subject": "s", "content": "# c" }
        ],
        "send_link": [
            { "group_chat_id": G, "subject": "s", "content": "c", "image_url": "@lAzPDe7s", "redirect_url": "http://127.0.0.1:65535/x?y=1" }
        ],
        "send_image": [
            { "group_chat_id": G, "image_url": "https://e.com/p.png" },
            { "group_chat_id": G, "file": png }
        ],
        "send_file": [
            { "group_chat_id": G, "media_id": "@x", "file_name": "a", "file_type": "pdf" },
            { "group_chat_id": G, "file": file },
            { "group_chat_id": G, "file": { "name": "notes", "content_base64": "aGk=" }, "file_type": "doc" },
            { "group_chat_id": G, "file_url": "https://e.com/r/Q3.PDF" },
            { "group_chat_id": G, "file_url": "https://e.com/r/x", "file_name": "r.zip" }
        ],
        "send_action_card": [
            { "group_chat_id": G, "subject": "s", "content": "c", "button_text": "Go", "redirect_url": "https://e.com" },
            { "group_chat_id": G, "subject": "s", "content": "c", "buttons": buttons, "button_layout": "horizontal" }
        ],
        "upload_media": [
            { "media_type": "file", "file": file },
            { "media_type": "image", "file_url": "https://e.com/a.png" },
            { "media_type": "voice", "file_url": "https://e.com/x", "file_name": "v.mp3" }
        ],
        "query_read_status": [
            { "group_chat_id": G, "process_query_key": "k==", "max_results": 200 }
        ],
        "recall_messages": [
            { "group_chat_id": G, "process_query_keys": ["a", "b"] }
        ],
        "send_to_users": [
            { "user_ids": ["u1"], "msg_type": "image", "image_url": "@m" },
            { "user_ids": ["u1"], "msg_type": "action_card", "subject": "s", "content": "c", "buttons": buttons }
        ],
        "webhook_send": [
            { "msg_type": "text", "content": "c", "at_mobiles": ["13800000000"], "at_all": true },
            { "msg_type": "link", "subject": "s", "content": "c", "redirect_url": "https://e.com", "at_all": false, "at_mobiles": [] },
            { "msg_type": "feed_card", "links": [{ "title": "t", "url": "https://e.com", "image_url": "https://e.com/p.png" }] }
        ]
    });
    let Value::Object(by_action) = by_action else {
        unreachable!("an object")
    };
    by_action
        .into_iter()
        .flat_map(|(action, inputs)| {
            let Value::Array(inputs) = inputs else {
                unreachable!("an array")
            };
            inputs.into_iter().map(move |input| (action.clone(), input))
        })
        .collect()
}

#[test]
fn the_schema_accepts_every_form_the_plan_accepts() {
    for (action, input) in valid_inputs() {
        let def = spec(&action).unwrap();
        assert!(
            schema::check(&def.input_schema, &def.validator, &input).is_ok(),
            "{action}: the schema refuses {input}"
        );
        validate(&action, input.clone()).unwrap_or_else(|e| panic!("{action}: {e} for {input}"));
    }
}

#[test]
fn fields_that_do_not_go_together_are_refused_in_the_plans_words() {
    let png = json!({ "name": "chart.png", "content_base64": "iVBORw0KGgo=" });
    let cases = json!([
        { "action": "send_image", "field": "image_url", "says": "is required: give one of",
          "input": { "group_chat_id": G } },
        { "action": "send_image", "field": "file", "says": "give only one of",
          "input": { "group_chat_id": G, "image_url": "https://e.com/p.png", "file": png } },
        { "action": "send_action_card", "field": "button_text", "says": "not both",
          "input": { "group_chat_id": G, "subject": "s", "content": "c", "button_text": "Go", "redirect_url": "https://e.com", "buttons": [{ "title": "A", "url": "https://a" }, { "title": "B", "url": "https://b" }] } },
        { "action": "send_action_card", "field": "buttons", "says": "for one button use",
          "input": { "group_chat_id": G, "subject": "s", "content": "c", "buttons": [{ "title": "A", "url": "https://a" }] } },
        { "action": "upload_media", "field": "file_name", "says": "only used with `file_url`",
          "input": { "media_type": "file", "file": { "name": "a.pdf", "content_base64": "JVBERi0=" }, "file_name": "b.pdf" } },
        { "action": "upload_media", "field": "file.name", "says": "must be one of",
          "input": { "media_type": "image", "file": { "name": "a.pdf", "content_base64": "JVBERi0=" } } },
        { "action": "send_to_users", "field": "subject", "says": "is not used by msg_type text",
          "input": { "user_ids": ["u"], "msg_type": "text", "content": "c", "subject": "s" } },
        { "action": "send_to_users", "field": "subject", "says": "is required for msg_type link",
          "input": { "user_ids": ["u"], "msg_type": "link", "content": "c" } },
        { "action": "webhook_send", "field": "at_all", "says": "text and markdown",
          "input": { "msg_type": "link", "subject": "s", "content": "c", "redirect_url": "https://x", "at_all": true } }
    ]);
    for case in cases.as_array().unwrap() {
        let text = |k: &str| case[k].as_str().unwrap();
        refused(
            text("action"),
            case["input"].clone(),
            text("field"),
            text("says"),
        );
    }
}

#[test]
fn field_rules_are_refused_from_the_schema_with_their_path() {
    let cases = [
        (
            json!({ "group_chat_id": "cid with space", "content": "c" }),
            "group_chat_id",
            "whitespace",
        ),
        (
            json!({ "group_chat_id": G, "content": "   " }),
            "content",
            "must not be empty",
        ),
        (
            json!({ "group_chat_id": G, "content": 5 }),
            "content",
            "must be a string, not a number",
        ),
        (
            json!({ "group_chat_id": G, "content": "c", "split": "no" }),
            "split",
            "must be a boolean",
        ),
    ];
    for (input, field, reason) in cases {
        refused("send_text", input, field, reason);
    }
    refused(
        "send_action_card",
        json!({ "group_chat_id": G, "subject": "s", "content": "c",
                "buttons": [{ "title": "a", "url": "https://a" }, { "title": "b", "url": "ftp://b" }] }),
        "buttons[1].url",
        "http(s):// or dingtalk://",
    );
}

#[test]
fn the_nul_character_is_refused_in_every_string_by_the_schema() {
    refused(
        "send_text",
        json!({ "group_chat_id": G, "content": "a\u{0}b" }),
        "content",
        "U+0000",
    );
    refused(
        "send_text",
        json!({ "group_chat_id": "cid\u{0}x", "content": "c" }),
        "group_chat_id",
        "must not be empty or contain whitespace or control characters",
    );
}

#[test]
fn a_reply_is_one_text_or_markdown_message() {
    let v = validate("reply", json!({"message_id": "msg1", "content": "pong"})).unwrap();
    assert!(matches!(
        v.steps(),
        [Step::Reply { message_id, message: MessageSpec::Ready(Message::Text { .. }) }]
            if message_id == "msg1"
    ));
    let v = validate(
        "reply",
        json!({"message_id": "msg1", "msg_type": "markdown", "content": "## Done\nok"}),
    )
    .unwrap();
    assert!(matches!(
        v.steps(),
        [Step::Reply { message: MessageSpec::Ready(Message::Markdown { title, .. }), .. }]
            if title == "Done"
    ));
    let e = validate(
        "reply",
        json!({"message_id": "msg1", "content": "x", "title": "t"}),
    )
    .unwrap_err();
    assert_eq!(e.field_name(), Some("title"));
    let e = validate(
        "reply",
        json!({"message_id": "msg1", "content": "字".repeat(5001)}),
    )
    .unwrap_err();
    assert_eq!(e.field_name(), Some("content"));
    let e = validate("reply", json!({"message_id": " ", "content": "x"})).unwrap_err();
    assert_eq!(e.field_name(), Some("message_id"));
    let e = validate("reply", json!({"content": "x"})).unwrap_err();
    assert_eq!(e.field_name(), Some("message_id"));
}

#[test]
fn a_delivery_keeps_its_input_as_the_text_of_what_was_validated() {
    let inputs = [
        (
            "send_text",
            json!({ "group_chat_id": G, "content": "hi — 你好 \"quoted\"" }),
        ),
        (
            "send_link",
            json!({ "group_chat_id": G, "subject": "s", "content": "c",
                    "image_url": "https://example.com/p.png", "redirect_url": "https://example.com" }),
        ),
        (
            "send_markdown",
            json!({ "group_chat_id": G, "subject": "s", "content": "x".repeat(30_000) }),
        ),
    ];
    for (action, input) in inputs {
        let v = validate(action, input).unwrap();
        let stored = v.delivery(uuid::Uuid::now_v7()).unwrap().input;
        // The engine reads it back as the same action…
        let back: ValidatedAction = serde_json::from_str(stored.as_str()).unwrap();
        assert_eq!(back, v, "{action}");
        // …and a flow's request hash, taken over the value, is what it was when the input was
        // stored as a value (runs stored by an earlier build still match their deliveries).
        assert_eq!(
            stored.to_value(),
            serde_json::to_value(&v).unwrap(),
            "{action}"
        );
    }
}
