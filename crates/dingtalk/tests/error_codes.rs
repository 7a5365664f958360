//! Every error code dingtalk-api.md lists (§1, §2.8, §3, §4, §5) — the table
//! `dingtalk::error::DOCUMENTED_CODES` — and what the client makes of it. A new code added to
//! DingTalk's tables belongs in that table first.

use dingtalk::error::DOCUMENTED_CODES;
use dingtalk::{Dialect, ErrorClass, classify};

use Dialect::New;
use ErrorClass::*;

#[test]
fn every_documented_code_is_classified() {
    let mut wrong = Vec::new();
    for &(dialect, status, code, want) in DOCUMENTED_CODES {
        let got = classify(dialect, status, Some(code));
        if got != want {
            wrong.push(format!(
                "{code} (HTTP {status}): got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    assert!(
        DOCUMENTED_CODES.len() > 150,
        "the table lists every documented code"
    );
}

#[test]
fn answers_without_a_code_are_classified_by_status() {
    assert_eq!(classify(New, 502, None), Transient);
    assert_eq!(classify(New, 429, None), Transient);
    assert_eq!(classify(New, 404, None), Rejected);
}
