//! Server-side `msgKey`/`msgParam` validation for the app-robot send APIs (docs/dingtalk-api.md §2.3).
//! Written independently of the `dingtalk` client crate on purpose: a shared bug would hide.

use serde_json::{Map, Value};

/// Documented limit on the `msgParam` string (bytes).
pub(crate) const MSG_PARAM_MAX_BYTES: usize = 15000;

/// Validates `msgKey` and the raw `msgParam` value of a request body; returns the parsed object.
/// Errors are DingTalk codes (all HTTP 400).
pub(crate) fn validate(
    msg_key: Option<&Value>,
    msg_param: Option<&Value>,
) -> Result<(String, Map<String, Value>), &'static str> {
    let key = match msg_key {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err("invalidParameter.msgKey.empty");
        }
        Some(_) => return Err("invalidParameter.msgKey.invalid"),
    };
    let Some(rules) = rules_for(key) else {
        return Err("invalidParameter.msgKey.invalid");
    };
    // msgParam is a JSON object *encoded as a string*; an inline object is a client bug.
    let Some(Value::String(raw)) = msg_param else {
        return Err("invalidParameter.msgParam.invalid");
    };
    if raw.len() > MSG_PARAM_MAX_BYTES {
        return Err("invalidParameter.msgParam.tooLong");
    }
    let Ok(Value::Object(param)) = serde_json::from_str::<Value>(raw) else {
        return Err("invalidParameter.msgParam.invalid");
    };
    for (field, code) in rules {
        if !present(&param, field) {
            return Err(code);
        }
    }
    Ok((key.to_string(), param))
}

/// A value counts as given when it is neither absent, null nor an empty string.
fn present(param: &Map<String, Value>, field: &str) -> bool {
    match param.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Required keys per msgKey and the `miss.param.*` code each one's absence yields. The codes
/// are named after DingTalk's legacy message model; the key→code mapping is inferred from the
/// documented code list (docs/dingtalk-api.md §2.3 says so).
fn rules_for(msg_key: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const TEXT: &[(&str, &str)] = &[("content", "miss.param.contentOfText")];
    const MARKDOWN: &[(&str, &str)] = &[
        ("title", "miss.param.markdownTotitle"),
        ("text", "miss.param.markdownTotext"),
    ];
    const IMAGE: &[(&str, &str)] = &[("photoURL", "miss.param.photoTophotoUrl")];
    // picUrl is optional in practice (cards render without a picture), so it is not checked.
    const LINK: &[(&str, &str)] = &[
        ("text", "miss.param.textOfLink"),
        ("title", "miss.param.titleOfLink"),
        ("messageUrl", "miss.param.messageUrlOfLink"),
    ];
    const CARD: &[(&str, &str)] = &[
        ("title", "miss.param.actionCardTotitle"),
        ("text", "miss.param.actionCardTotext"),
        ("singleTitle", "miss.param.actionCardTosingleTitle"),
        ("singleURL", "miss.param.actionCardTosingleUrl"),
    ];
    const T: &str = "miss.param.actionCardTobtnsTotitle";
    const U: &str = "miss.param.actionCardTobtnsToactionUrl";
    const HEAD: [(&str, &str); 2] = [
        ("title", "miss.param.actionCardTotitle"),
        ("text", "miss.param.actionCardTotext"),
    ];
    const CARD2: &[(&str, &str)] = &[
        HEAD[0],
        HEAD[1],
        ("actionTitle1", T),
        ("actionURL1", U),
        ("actionTitle2", T),
        ("actionURL2", U),
    ];
    const CARD3: &[(&str, &str)] = &[
        HEAD[0],
        HEAD[1],
        ("actionTitle1", T),
        ("actionURL1", U),
        ("actionTitle2", T),
        ("actionURL2", U),
        ("actionTitle3", T),
        ("actionURL3", U),
    ];
    const CARD4: &[(&str, &str)] = &[
        HEAD[0],
        HEAD[1],
        ("actionTitle1", T),
        ("actionURL1", U),
        ("actionTitle2", T),
        ("actionURL2", U),
        ("actionTitle3", T),
        ("actionURL3", U),
        ("actionTitle4", T),
        ("actionURL4", U),
    ];
    const CARD5: &[(&str, &str)] = &[
        HEAD[0],
        HEAD[1],
        ("actionTitle1", T),
        ("actionURL1", U),
        ("actionTitle2", T),
        ("actionURL2", U),
        ("actionTitle3", T),
        ("actionURL3", U),
        ("actionTitle4", T),
        ("actionURL4", U),
        ("actionTitle5", T),
        ("actionURL5", U),
    ];
    const CARD6: &[(&str, &str)] = &[
        HEAD[0],
        HEAD[1],
        ("buttonTitle1", T),
        ("buttonUrl1", U),
        ("buttonTitle2", T),
        ("buttonUrl2", U),
    ];
    const FILE: &[(&str, &str)] = &[
        ("mediaId", "miss.param.file"),
        ("fileName", "miss.param.file"),
        ("fileType", "miss.param.file"),
    ];
    const AUDIO: &[(&str, &str)] = &[
        ("mediaId", "miss.param.audio"),
        ("duration", "miss.param.audio"),
    ];
    const VIDEO: &[(&str, &str)] = &[
        ("duration", "miss.param.video"),
        ("videoMediaId", "miss.param.video"),
        ("videoType", "miss.param.video"),
        ("picMediaId", "miss.param.video"),
    ];
    Some(match msg_key {
        "sampleText" => TEXT,
        "sampleMarkdown" => MARKDOWN,
        "sampleImageMsg" => IMAGE,
        "sampleLink" => LINK,
        "sampleActionCard" => CARD,
        "sampleActionCard2" => CARD2,
        "sampleActionCard3" => CARD3,
        "sampleActionCard4" => CARD4,
        "sampleActionCard5" => CARD5,
        "sampleActionCard6" => CARD6,
        "sampleFile" => FILE,
        "sampleAudio" => AUDIO,
        "sampleVideo" => VIDEO,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(key: &str, param: Value) -> Result<(), &'static str> {
        validate(Some(&json!(key)), Some(&json!(param.to_string()))).map(|_| ())
    }

    #[test]
    fn each_missing_key_names_its_code() {
        assert_eq!(
            check("sampleText", json!({})),
            Err("miss.param.contentOfText")
        );
        assert_eq!(
            check(
                "sampleActionCard6",
                json!({"title":"t","text":"x","buttonTitle1":"a"})
            ),
            Err("miss.param.actionCardTobtnsToactionUrl")
        );
        assert_eq!(
            check("sampleActionCard1", json!({})),
            Err("invalidParameter.msgKey.invalid")
        );
        assert_eq!(check("sampleText", json!({"content": "hi"})), Ok(()));
    }

    #[test]
    fn msg_param_must_be_a_string_holding_an_object() {
        let key = json!("sampleText");
        assert_eq!(
            validate(Some(&key), Some(&json!({"content": "hi"}))).err(),
            Some("invalidParameter.msgParam.invalid")
        );
        assert_eq!(
            validate(Some(&key), Some(&json!("[1]"))).err(),
            Some("invalidParameter.msgParam.invalid")
        );
        let long = json!({"content": "x".repeat(MSG_PARAM_MAX_BYTES)}).to_string();
        assert_eq!(
            validate(Some(&key), Some(&json!(long))).err(),
            Some("invalidParameter.msgParam.tooLong")
        );
    }
}
