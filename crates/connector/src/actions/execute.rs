//! Running a validated action's steps against DingTalk, in order, stopping at the first failure.
//! Each step can also run on its own ([`execute_step`]) so a queue can deliver the parts of a
//! split message as separate deliveries; the [`StepContext`] carries what a later step needs
//! from an earlier one (the uploaded media id) and is serializable for that reason.

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::InputError;
use super::outputs::*;
use super::plan::*;
use super::types::MediaKind;
use crate::connections::ConnectionKind;

/// Where an action is sent: an app robot or a custom (webhook) robot.
#[derive(Debug, Clone)]
pub enum Target {
    App {
        client: dingtalk::AppClient,
        robot_code: dingtalk::RobotCode,
    },
    Webhook(dingtalk::WebhookRobot),
}

impl Target {
    pub fn kind(&self) -> ConnectionKind {
        match self {
            Target::App { .. } => ConnectionKind::AppRobot,
            Target::Webhook(_) => ConnectionKind::WebhookRobot,
        }
    }
}

/// Why running an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The input turned out unusable only when running (a download failed or was too big, the
    /// action does not fit the connection); nothing was sent for the failing step.
    #[error(transparent)]
    Input(InputError),
    /// DingTalk refused a call, or could not be reached. `completed_parts` messages of the
    /// action were accepted before it.
    #[error("{error}")]
    DingTalk {
        error: dingtalk::Error,
        completed_parts: usize,
    },
}

impl From<InputError> for ExecuteError {
    fn from(e: InputError) -> Self {
        ExecuteError::Input(e)
    }
}

/// What earlier steps of an action left for later ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepContext {
    /// The upload step's result, used by a send of `MediaRef::Uploaded`.
    #[serde(default)]
    pub uploaded: Option<UploadOutput>,
    /// A stable id of the request or delivery: webhook sends derive their `msgUuid` from it
    /// and the message, so DingTalk drops a repeat of a send whose first try timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_base: Option<String>,
    /// Where a `reply` step goes, looked up from the received message before the step runs
    /// (never stored: it holds the session webhook). `None`: no such message.
    #[serde(skip)]
    pub reply: Option<ReplyTarget>,
}

/// Where a reply goes: the received message's conversation and, while its session lasts, its
/// session webhook.
#[derive(Debug, Clone)]
pub struct ReplyTarget {
    /// The session webhook; `None` once the session has expired.
    pub session_webhook: Option<secrecy::SecretString>,
    pub conversation_id: String,
    /// A group conversation (else 1:1).
    pub group: bool,
    /// The sender's userId, to answer a 1:1 message once the session has expired.
    pub sender_staff_id: Option<String>,
}

impl PartialEq for ReplyTarget {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.session_webhook
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            == other
                .session_webhook
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
            && self.conversation_id == other.conversation_id
            && self.group == other.group
            && self.sender_staff_id == other.sender_staff_id
    }
}

/// What one step produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepResult {
    Uploaded(UploadOutput),
    Sent(SentPart),
    SentToUsers(SendToUsersOutput),
    ReadStatus(ReadStatusOutput),
    Recalled(RecallOutput),
    WebhookSent { msg_type: String },
    Replied(ReplyOutput),
}

/// How long a `file_url` download may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Run every step of `action` in order and answer with the action's output.
pub async fn execute(
    action: &ValidatedAction,
    target: &Target,
    http: &crate::fetch::Fetcher,
) -> Result<Value, ExecuteError> {
    check_target(action, target)?;
    let mut ctx = StepContext::default();
    let mut results = Vec::with_capacity(action.steps().len());
    let mut completed = 0;
    for step in action.steps() {
        match execute_step(step, target, http, &mut ctx).await {
            Ok(r) => {
                if step.is_send() {
                    completed += 1;
                }
                results.push(r);
            }
            Err(ExecuteError::DingTalk { error, .. }) => {
                return Err(ExecuteError::DingTalk {
                    error,
                    completed_parts: completed,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(assemble_output(action, &results).expect("every planned step produced its result"))
}

fn check_target(action: &ValidatedAction, target: &Target) -> Result<(), InputError> {
    let want = action.connection_kind();
    if want != target.kind() {
        return Err(InputError::field(
            "connection",
            format!(
                "{} needs a {} connection, not {}",
                action.action(),
                want.as_str(),
                target.kind().as_str()
            ),
        ));
    }
    Ok(())
}

fn wrong_target(step: &Step, target: &Target) -> InputError {
    let want = match step {
        Step::Webhook { .. } => ConnectionKind::WebhookRobot,
        _ => ConnectionKind::AppRobot,
    };
    InputError::field(
        "connection",
        format!(
            "this step needs a {} connection, not {}",
            want.as_str(),
            target.kind().as_str()
        ),
    )
}

/// A client error: local validation becomes an input error on `field`; anything DingTalk
/// answered (or the network did) stays a DingTalk error.
fn client_err(e: dingtalk::Error, field: &str) -> ExecuteError {
    if e.class() == dingtalk::ErrorClass::InvalidInput {
        ExecuteError::Input(InputError::field(field, e.message()))
    } else {
        ExecuteError::DingTalk {
            error: e,
            completed_parts: 0,
        }
    }
}

/// An upload's file, read before its DingTalk call: the bytes (downloaded from `file_url` or
/// decoded from base64) and the input field they came from.
pub struct StepFile {
    bytes: Vec<u8>,
    field: &'static str,
}

/// Reads the file of an upload step (`None` for other steps). A download can take seconds:
/// done before the call's rate slot is taken, the call is not late for its slot.
pub async fn read_step_file(
    step: &Step,
    http: &crate::fetch::Fetcher,
) -> Result<Option<StepFile>, ExecuteError> {
    match step {
        // Boxed: only uploads read a file, and its future is large (see `run_step`).
        Step::Upload {
            media_type, source, ..
        } => Ok(Some(Box::pin(read_file(*media_type, source, http)).await?)),
        _ => Ok(None),
    }
}

async fn read_file(
    kind: MediaKind,
    source: &FileSource,
    http: &crate::fetch::Fetcher,
) -> Result<StepFile, ExecuteError> {
    Ok(match source {
        FileSource::Inline { bytes_base64 } => StepFile {
            bytes: decode_base64(bytes_base64)
                .map_err(|e| InputError::field("file.content_base64", e))?,
            field: "file.content_base64",
        },
        FileSource::Url { url } => StepFile {
            bytes: download(http, url, kind).await?,
            field: "file_url",
        },
    })
}

/// Run one step. `completed_parts` of a `DingTalk` error is 0 here: only the caller knows how
/// many parts went before.
pub async fn execute_step(
    step: &Step,
    target: &Target,
    http: &crate::fetch::Fetcher,
    ctx: &mut StepContext,
) -> Result<StepResult, ExecuteError> {
    execute_read_step(step, None, target, http, ctx).await
}

/// [`execute_step`] with its file already read by [`read_step_file`] (`None`: read it now).
pub async fn execute_read_step(
    step: &Step,
    file: Option<StepFile>,
    target: &Target,
    http: &crate::fetch::Fetcher,
    ctx: &mut StepContext,
) -> Result<StepResult, ExecuteError> {
    if let Step::Webhook { message, mentions } = step {
        let Target::Webhook(robot) = target else {
            return Err(wrong_target(step, target).into());
        };
        let mut msg = webhook_message(message, mentions);
        if let Some(base) = &ctx.idempotency_base {
            use sha2::{Digest, Sha256};
            let body = msg.to_body().map_err(|e| client_err(e, "content"))?;
            let digest = Sha256::digest(body.as_bytes());
            let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            msg = msg.with_msg_uuid(format!("{base}-{tag}"));
        }
        robot
            .send(&msg)
            .await
            .map_err(|e| client_err(e, "content"))?;
        return Ok(StepResult::WebhookSent {
            msg_type: webhook_msg_type(message).to_owned(),
        });
    }
    let Target::App { client, robot_code } = target else {
        return Err(wrong_target(step, target).into());
    };
    match step {
        Step::Upload {
            media_type,
            file_name,
            source,
        } => {
            let StepFile { bytes, field } = match file {
                Some(file) => file,
                None => read_file(*media_type, source, http).await?,
            };
            let upload = dingtalk::MediaUpload::new(media_type.to_dingtalk(), file_name, bytes);
            let up = client
                .upload_media(&upload)
                .await
                .map_err(|e| client_err(e, field))?;
            let out = UploadOutput {
                media_id: up.media_id.to_string(),
                media_type: up.media_type,
                created_at: up.created_at,
            };
            ctx.uploaded = Some(out.clone());
            Ok(StepResult::Uploaded(out))
        }
        Step::GroupSend {
            group_chat_id,
            message,
        } => {
            let m = message.to_message(uploaded_id(ctx))?;
            let resp = client
                .send_group_message(robot_code, &group_chat_id.as_str().into(), &m)
                .await
                .map_err(|e| client_err(e, "content"))?;
            Ok(StepResult::Sent(SentPart {
                process_query_key: resp.process_query_key.to_string(),
                msg_key: m.msg_key(),
            }))
        }
        Step::OtoSend { user_ids, message } => {
            let m = message.to_message(uploaded_id(ctx))?;
            let users = user_ids.iter().map(|u| u.as_str().into()).collect();
            let resp = client
                .send_to_users(robot_code, users, &m)
                .await
                .map_err(|e| client_err(e, "content"))?;
            Ok(StepResult::SentToUsers(SendToUsersOutput {
                process_query_key: resp.process_query_key.to_string(),
                msg_key: m.msg_key(),
                invalid_user_ids: strings(resp.invalid_staff_id_list),
                flow_controlled_user_ids: strings(resp.flow_controlled_staff_id_list),
            }))
        }
        Step::Query {
            group_chat_id,
            process_query_key,
            max_results,
            next_token,
        } => {
            let resp = client
                .query_group_read_status(
                    robot_code,
                    &group_chat_id.as_str().into(),
                    &process_query_key.as_str().into(),
                    *max_results,
                    next_token.clone(),
                )
                .await
                .map_err(|e| client_err(e, "max_results"))?;
            Ok(StepResult::ReadStatus(ReadStatusOutput {
                send_status: resp.send_status,
                read_user_ids: strings(resp.read_user_ids),
                next_token: resp.next_token.filter(|t| !t.is_empty()),
                has_more: resp.has_more,
            }))
        }
        Step::Recall {
            group_chat_id,
            process_query_keys,
        } => {
            let keys = process_query_keys
                .iter()
                .map(|k| k.as_str().into())
                .collect();
            let resp = client
                .recall_group_messages(robot_code, &group_chat_id.as_str().into(), keys)
                .await
                .map_err(|e| client_err(e, "process_query_keys"))?;
            Ok(StepResult::Recalled(RecallOutput {
                recalled: strings(resp.success_result),
                failed: resp.failed_result,
            }))
        }
        Step::Reply {
            message_id,
            message,
        } => reply(client, robot_code, message_id, message, ctx.reply.as_ref()).await,
        Step::Webhook { .. } => unreachable!("handled above"),
    }
}

/// A reply: through the session webhook while it lasts; once DingTalk says it has expired (or
/// it had before the step ran), as a robot message into the same conversation.
async fn reply(
    client: &dingtalk::AppClient,
    robot_code: &dingtalk::RobotCode,
    message_id: &str,
    message: &MessageSpec,
    to: Option<&ReplyTarget>,
) -> Result<StepResult, ExecuteError> {
    use secrecy::ExposeSecret;
    let Some(to) = to else {
        return Err(InputError::unusable(
            "message_id",
            format!("this connection has received no message with msgId `{message_id}`"),
        )
        .into());
    };
    let replied = |via, process_query_key| {
        Ok(StepResult::Replied(ReplyOutput {
            via,
            conversation_id: to.conversation_id.clone(),
            process_query_key,
        }))
    };
    if let Some(url) = &to.session_webhook {
        // The reply action's schema allows text and markdown only, which a webhook carries.
        let Some(payload) = dingtalk::WebhookPayload::from_message(message.to_message(None)?)
        else {
            return Err(InputError::field("msg_type", "a session webhook cannot carry it").into());
        };
        let m = dingtalk::WebhookMessage::new(payload);
        match dingtalk::stream::send_by_session(client.client(), url.expose_secret(), &m).await {
            Ok(()) => return replied(ReplyRoute::SessionWebhook, None),
            // The session ended early (or its expiry was misjudged): fall back as below.
            Err(e) if e.class() == dingtalk::ErrorClass::CredentialsRejected => {
                tracing::info!("the session webhook has expired; replying as a robot message");
            }
            Err(e) => return Err(client_err(e, "content")),
        }
    }
    let m = message.to_message(None)?;
    if to.group {
        let resp = client
            .send_group_message(robot_code, &to.conversation_id.as_str().into(), &m)
            .await
            .map_err(|e| client_err(e, "content"))?;
        return replied(
            ReplyRoute::GroupSend,
            Some(resp.process_query_key.to_string()),
        );
    }
    let Some(user) = &to.sender_staff_id else {
        return Err(InputError::unusable(
            "message_id",
            "the session has expired and DingTalk did not give the sender's userId: a 1:1 reply cannot be sent",
        )
        .into());
    };
    let resp = client
        .send_to_users(robot_code, vec![user.as_str().into()], &m)
        .await
        .map_err(|e| client_err(e, "content"))?;
    replied(
        ReplyRoute::OneToOne,
        Some(resp.process_query_key.to_string()),
    )
}

fn uploaded_id(ctx: &StepContext) -> Option<&str> {
    ctx.uploaded.as_ref().map(|u| u.media_id.as_str())
}

fn strings<T: ToString>(v: Vec<T>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// The `msg_type` of the action's input (and output) for a payload.
fn webhook_msg_type(payload: &dingtalk::WebhookPayload) -> &'static str {
    match payload.msgtype() {
        "actionCard" => "action_card",
        "feedCard" => "feed_card",
        other => other,
    }
}

/// Standard base64, padding optional and trailing bits tolerated, as the catalog's schema states.
pub(crate) fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
    .decode(s.as_bytes())
    .map_err(|e| format!("is not base64: {e}"))
}

/// Fetch a `file_url` (under the fetcher's address policy), refusing it as soon as it grows
/// past the media type's limit.
async fn download(
    http: &crate::fetch::Fetcher,
    url: &str,
    kind: MediaKind,
) -> Result<Vec<u8>, InputError> {
    use crate::fetch::FetchError;
    let max = kind.to_dingtalk().max_bytes();
    http.download(url, max).await.map_err(|e| match e {
        FetchError::TooBig(n, _) => InputError::unusable(
            "file_url",
            format!(
                "is {n} bytes or more; DingTalk takes at most {} MB for {}",
                max / (1024 * 1024),
                kind.as_str()
            ),
        ),
        other => InputError::unusable("file_url", other.to_string()),
    })
}

/// The action's output from the results of all its steps, in order; `None` when `results` do
/// not match the plan (a step missing).
pub fn assemble_output(action: &ValidatedAction, results: &[StepResult]) -> Option<Value> {
    action.name().def().assemble(action.steps(), results)
}
