//! Testing a connection's credentials with DingTalk, answered in plain words.

use schemars::JsonSchema;
use serde::Serialize;

use crate::actions::Target;
use crate::error::{DingTalkDetail, ErrorBody};

/// How a connection test went, in plain words, with DingTalk's evidence when it refused.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestResult {
    pub ok: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dingtalk: Option<DingTalkDetail>,
}

impl TestResult {
    fn refused(message: String, e: &dingtalk::Error) -> Self {
        TestResult {
            ok: false,
            message,
            dingtalk: ErrorBody::from_dingtalk(e).dingtalk,
        }
    }
}

/// App robots: a fresh access token with the stored AppKey and AppSecret. Webhook robots: a
/// probe DingTalk answers without posting anything.
pub async fn test(target: &Target) -> TestResult {
    match target {
        Target::App { client, .. } => match client.check_credentials().await {
            Ok(()) => TestResult {
                ok: true,
                message: format!(
                    "DingTalk accepted AppKey {} and its AppSecret (an access token was issued)",
                    client.app_key()
                ),
                dingtalk: None,
            },
            Err(e) => TestResult::refused(explain_token_failure(&e), &e),
        },
        // DingTalk checks a webhook's token and signature before its body (UNCONFIRMED, but the
        // simulator and every report agree): "token is not exist" or a security error means the
        // credentials are wrong, a complaint about the body that they were accepted.
        Target::Webhook(robot) => match robot.probe().await {
            Ok(()) => TestResult {
                ok: true,
                message: "DingTalk accepted the webhook token (and signature); no message was sent"
                    .into(),
                dingtalk: None,
            },
            Err(e) => {
                let message = match e.class() {
                    dingtalk::ErrorClass::CredentialsRejected => format!(
                        "DingTalk does not know this webhook access_token ({})",
                        e.code().unwrap_or("no code")
                    ),
                    _ => format!("DingTalk refused the probe: {e}"),
                };
                TestResult::refused(message, &e)
            }
        },
    }
}

fn explain_token_failure(e: &dingtalk::Error) -> String {
    use dingtalk::ErrorClass::*;
    match e.class() {
        CredentialsRejected | TokenRejected => format!(
            "DingTalk rejected the AppKey/AppSecret ({}): check the Client ID and Client Secret under Application information",
            e.code().unwrap_or("no code")
        ),
        Throttled | Transient => format!("DingTalk could not be reached or is busy: {e}"),
        InvalidInput | Rejected => format!("DingTalk refused the token request: {e}"),
    }
}
