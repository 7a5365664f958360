//! How `dtc` commands fail: one line on stderr and a distinct exit code per kind of failure,
//! so scripts can tell a typo from a DingTalk outage.

use dingtalk::ErrorClass;

/// Exit codes shared by every command.
pub mod code {
    pub const BAD_INPUT: u8 = 2;
    pub const CREDENTIALS_REJECTED: u8 = 3;
    pub const MESSAGE_REJECTED: u8 = 4;
    pub const TRANSIENT: u8 = 5;
    pub const OTHER: u8 = 1;
}

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            code: code::BAD_INPUT,
            message: message.into(),
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Failure {
            code: code::OTHER,
            message: message.into(),
        }
    }
}

/// Map a client error to its exit code; the message names the field or DingTalk's code.
pub fn fail_from(e: dingtalk::Error) -> Failure {
    let code = match e.class() {
        ErrorClass::InvalidInput => code::BAD_INPUT,
        ErrorClass::CredentialsRejected | ErrorClass::TokenRejected => code::CREDENTIALS_REJECTED,
        ErrorClass::Rejected => code::MESSAGE_REJECTED,
        ErrorClass::Throttled | ErrorClass::Transient => code::TRANSIENT,
    };
    let message = match e.class() {
        ErrorClass::Throttled | ErrorClass::Transient => format!("{e} (gave up after retries)"),
        _ => e.to_string(),
    };
    Failure { code, message }
}
