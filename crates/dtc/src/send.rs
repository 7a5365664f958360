//! `dtc send`: one-shot sends straight to DingTalk, no server, for scripts and CI jobs.

use crate::exit::{Failure, fail_from};
use clap::{Args, Subcommand};
use dingtalk::robot::Message;
use dingtalk::{
    AppClient, AppCredentials, AppKey, AppSecret, At, Button, ButtonLayout, Client, ClientConfig,
    FeedLink, MediaType, MediaUpload, OpenConversationId, RetryPolicy, RobotCode, WebhookButton,
    WebhookMessage, WebhookPayload, WebhookRobot, WebhookSecret, WebhookToken,
};
use serde_json::json;
use std::path::PathBuf;

/// Where DingTalk is.
#[derive(Args, Debug, Clone)]
pub struct DingTalkBase {
    /// Base URL of DingTalk's new API family.
    #[arg(
        long,
        env = "DTC_DINGTALK_API_BASE",
        default_value = "https://api.dingtalk.com",
        global = true
    )]
    pub dingtalk_api_base: String,
    /// Base URL of DingTalk's old API family (media upload, webhook robots) [default:
    /// https://oapi.dingtalk.com, or the new-API base when only that one is changed, as for the
    /// simulator, which serves both on one port]
    #[arg(long, env = "DTC_DINGTALK_OAPI_BASE", global = true)]
    pub dingtalk_oapi_base: Option<String>,
}

impl DingTalkBase {
    pub fn client(&self) -> Result<Client, Failure> {
        let parse = |field: &str, v: &str| {
            url::Url::parse(v)
                .map_err(|e| Failure::bad_input(format!("invalid --{field} `{v}`: {e}")))
        };
        let api_base = parse("dingtalk-api-base", &self.dingtalk_api_base)?;
        let oapi_base = match &self.dingtalk_oapi_base {
            Some(o) => parse("dingtalk-oapi-base", o)?,
            None if api_base.host_str() == Some("api.dingtalk.com") => {
                ClientConfig::default().oapi_base
            }
            None => api_base.clone(),
        };
        let config = ClientConfig {
            api_base,
            oapi_base,
            ..ClientConfig::default()
        };
        Client::new(config).map_err(fail_from)
    }
}

#[derive(Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    base: DingTalkBase,
    /// App key (Client ID) of the enterprise-internal app.
    #[arg(long, env = "DTC_APP_KEY", global = true)]
    app_key: Option<String>,
    /// Name of the environment variable holding the app secret (never pass it as a flag).
    #[arg(long, default_value = "DTC_APP_SECRET", global = true)]
    app_secret_env: String,
    /// Robot code; for an enterprise-internal app robot it is the app key (the default).
    #[arg(long, env = "DTC_ROBOT_CODE", global = true)]
    robot_code: Option<String>,
    /// Attempts for transient failures (network, 5xx, throttling), including the first.
    #[arg(long, default_value_t = 4, global = true)]
    attempts: u32,
    #[command(subcommand)]
    what: SendWhat,
}

#[derive(Args, Debug)]
struct Group {
    /// The group chat's openConversationId (`cid…==`).
    #[arg(long)]
    group: String,
}

#[derive(Subcommand, Debug)]
enum SendWhat {
    /// A text message.
    Text {
        #[command(flatten)]
        group: Group,
        #[arg(long)]
        content: String,
    },
    /// A markdown message.
    Markdown {
        #[command(flatten)]
        group: Group,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        content: String,
    },
    /// A link card.
    Link {
        #[command(flatten)]
        group: Group,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        content: String,
        #[arg(long)]
        image_url: String,
        #[arg(long)]
        redirect_url: String,
    },
    /// An image: by URL, media id, or a local file uploaded first.
    Image {
        #[command(flatten)]
        group: Group,
        #[arg(long, conflicts_with_all = ["media_id", "path"])]
        image_url: Option<String>,
        #[arg(long, conflicts_with = "path")]
        media_id: Option<String>,
        /// A local image (jpg, png, gif, bmp) to upload first.
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// A file: by media id, or a local file uploaded first.
    File {
        #[command(flatten)]
        group: Group,
        #[arg(long, conflicts_with = "path")]
        media_id: Option<String>,
        /// A local file (xlsx, pdf, zip, rar, doc, docx) to upload first.
        #[arg(long)]
        path: Option<PathBuf>,
        /// Name shown in the chat (default: the file's name).
        #[arg(long)]
        file_name: Option<String>,
        /// xlsx, pdf, zip, rar, doc or docx (default: the file's extension).
        #[arg(long)]
        file_type: Option<String>,
    },
    /// An ActionCard: one button (`--button-text` + `--redirect-url`) or 2–5 (`--button`).
    ActionCard {
        #[command(flatten)]
        group: Group,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        content: String,
        #[arg(long, requires = "redirect_url", conflicts_with = "button")]
        button_text: Option<String>,
        #[arg(long)]
        redirect_url: Option<String>,
        /// A button as `TITLE=URL`; repeat 2–5 times.
        #[arg(long)]
        button: Vec<String>,
        /// Lay 2 buttons side by side.
        #[arg(long)]
        horizontal: bool,
    },
    /// Send through a custom (webhook) robot instead of an app robot.
    Webhook(WebhookArgs),
}

#[derive(Args, Debug)]
struct WebhookArgs {
    /// The robot's access_token from its webhook URL.
    #[arg(long, env = "DTC_WEBHOOK_TOKEN", hide_env_values = true)]
    token: String,
    /// The robot's signing secret (`SEC…`); prefer --secret-env, which keeps it out of the
    /// process list.
    #[arg(long, conflicts_with = "secret_env")]
    secret: Option<String>,
    /// Name of the environment variable holding the signing secret.
    #[arg(long)]
    secret_env: Option<String>,
    /// @-mention a member by mobile number (repeatable).
    #[arg(long)]
    at_mobile: Vec<String>,
    /// @-mention a member by userId (repeatable).
    #[arg(long)]
    at_user: Vec<String>,
    /// @-mention everyone.
    #[arg(long)]
    at_all: bool,
    /// Idempotency key: DingTalk drops a repeat with the same value.
    #[arg(long)]
    msg_uuid: Option<String>,
    #[command(subcommand)]
    what: WebhookWhat,
}

#[derive(Subcommand, Debug)]
enum WebhookWhat {
    Text {
        #[arg(long)]
        content: String,
    },
    Markdown {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        content: String,
    },
    Link {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        content: String,
        #[arg(long)]
        redirect_url: String,
        #[arg(long)]
        image_url: Option<String>,
    },
    ActionCard {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        content: String,
        #[arg(long, requires = "redirect_url", conflicts_with = "button")]
        button_text: Option<String>,
        #[arg(long)]
        redirect_url: Option<String>,
        /// A button as `TITLE=URL` (repeatable).
        #[arg(long)]
        button: Vec<String>,
        #[arg(long)]
        horizontal: bool,
    },
    FeedCard {
        /// A link as `TITLE|MESSAGE_URL|PICTURE_URL` (repeatable).
        #[arg(long, required = true)]
        link: Vec<String>,
    },
}

fn parse_buttons(raw: &[String]) -> Result<Vec<Button>, Failure> {
    raw.iter()
        .map(|b| {
            b.split_once('=')
                .map(|(t, u)| Button {
                    title: t.trim().to_owned(),
                    url: u.trim().to_owned(),
                })
                .ok_or_else(|| {
                    Failure::bad_input(format!("invalid --button `{b}`: expected TITLE=URL"))
                })
        })
        .collect()
}

fn read_file(path: &PathBuf) -> Result<(String, Vec<u8>), Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::bad_input(format!("cannot read --path {}: {e}", path.display())))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload")
        .to_owned();
    Ok((name, bytes))
}

pub async fn run(args: SendArgs) -> Result<serde_json::Value, Failure> {
    let client = args.base.client()?;
    let retry = RetryPolicy {
        max_attempts: args.attempts.max(1),
        ..RetryPolicy::default()
    };
    if let SendWhat::Webhook(w) = args.what {
        return run_webhook(client, retry, w).await;
    }
    let app_key = args
        .app_key
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| Failure::bad_input("missing --app-key (or DTC_APP_KEY)"))?;
    let app_secret = std::env::var(&args.app_secret_env).map_err(|_| {
        Failure::bad_input(format!(
            "missing app secret: set the environment variable {}",
            args.app_secret_env
        ))
    })?;
    let robot_code = RobotCode::new(args.robot_code.unwrap_or_else(|| app_key.clone()));
    let app = AppClient::new(
        client,
        AppCredentials {
            app_key: AppKey::new(app_key),
            app_secret: AppSecret::new(app_secret),
        },
    );

    let mut extra = serde_json::Map::new();
    let (group, message) = match args.what {
        SendWhat::Text { group, content } => (group, Message::Text { content }),
        SendWhat::Markdown {
            group,
            subject,
            content,
        } => (
            group,
            Message::Markdown {
                title: subject,
                text: content,
            },
        ),
        SendWhat::Link {
            group,
            subject,
            content,
            image_url,
            redirect_url,
        } => (
            group,
            Message::Link {
                title: subject,
                text: content,
                pic_url: image_url,
                message_url: redirect_url,
            },
        ),
        SendWhat::Image {
            group,
            image_url,
            media_id,
            path,
        } => {
            let photo_url = match (image_url, media_id, path) {
                (Some(u), _, _) | (None, Some(u), _) => u,
                (None, None, Some(path)) => {
                    let (name, bytes) = read_file(&path)?;
                    let up = MediaUpload::new(MediaType::Image, name, bytes);
                    let media = retry
                        .run(|| app.upload_media(&up))
                        .await
                        .map_err(fail_from)?;
                    extra.insert("media_id".into(), json!(media.media_id));
                    media.media_id.to_string()
                }
                (None, None, None) => {
                    return Err(Failure::bad_input(
                        "send image needs one of --image-url, --media-id or --path",
                    ));
                }
            };
            (group, Message::Image { photo_url })
        }
        SendWhat::File {
            group,
            media_id,
            path,
            file_name,
            file_type,
        } => {
            let (media_id, file_name, file_type) = match (media_id, path) {
                (Some(id), None) => (
                    id,
                    file_name.ok_or_else(|| Failure::bad_input("missing --file-name"))?,
                    file_type.ok_or_else(|| Failure::bad_input("missing --file-type"))?,
                ),
                (None, Some(path)) => {
                    let (name, bytes) = read_file(&path)?;
                    let up = MediaUpload::new(MediaType::File, name.clone(), bytes);
                    let ext = up.extension().unwrap_or_default();
                    let media = retry
                        .run(|| app.upload_media(&up))
                        .await
                        .map_err(fail_from)?;
                    extra.insert("media_id".into(), json!(media.media_id));
                    (
                        media.media_id.to_string(),
                        file_name.unwrap_or(name),
                        file_type.unwrap_or(ext),
                    )
                }
                _ => {
                    return Err(Failure::bad_input(
                        "send file needs --media-id (with --file-name, --file-type) or --path",
                    ));
                }
            };
            (
                group,
                Message::File {
                    media_id: media_id.into(),
                    file_name,
                    file_type,
                },
            )
        }
        SendWhat::ActionCard {
            group,
            subject,
            content,
            button_text,
            redirect_url,
            button,
            horizontal,
        } => {
            let message = if button.is_empty() {
                Message::ActionCard {
                    title: subject,
                    text: content,
                    single_title: button_text
                        .ok_or_else(|| Failure::bad_input("missing --button-text (or --button)"))?,
                    single_url: redirect_url
                        .ok_or_else(|| Failure::bad_input("missing --redirect-url"))?,
                }
            } else {
                Message::ActionCardButtons {
                    title: subject,
                    text: content,
                    buttons: parse_buttons(&button)?,
                    layout: if horizontal {
                        ButtonLayout::Horizontal
                    } else {
                        ButtonLayout::Vertical
                    },
                }
            };
            (group, message)
        }
        SendWhat::Webhook(_) => unreachable!("handled above"),
    };
    let group = OpenConversationId::new(group.group);
    // Validate fully before any network call (no token is fetched for bad input).
    let msg_key = message.encode().map_err(fail_from)?.0;
    let resp = retry
        .run(|| app.send_group_message(&robot_code, &group, &message))
        .await
        .map_err(fail_from)?;
    let mut out = json!({
        "ok": true,
        "msg_key": msg_key,
        "process_query_key": resp.process_query_key,
        "open_conversation_id": group,
    });
    out.as_object_mut().expect("object").extend(extra);
    Ok(out)
}

async fn run_webhook(
    client: Client,
    retry: RetryPolicy,
    w: WebhookArgs,
) -> Result<serde_json::Value, Failure> {
    let secret = match (w.secret, w.secret_env) {
        (Some(s), _) => Some(s),
        (None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
            Failure::bad_input(format!(
                "--secret-env: environment variable {var} is not set"
            ))
        })?),
        (None, None) => None,
    };
    let payload = match w.what {
        WebhookWhat::Text { content } => WebhookPayload::Text { content },
        WebhookWhat::Markdown { subject, content } => WebhookPayload::Markdown {
            title: subject,
            text: content,
        },
        WebhookWhat::Link {
            subject,
            content,
            redirect_url,
            image_url,
        } => WebhookPayload::Link {
            title: subject,
            text: content,
            message_url: redirect_url,
            pic_url: image_url,
        },
        WebhookWhat::ActionCard {
            subject,
            content,
            button_text,
            redirect_url,
            button,
            horizontal,
        } => {
            if button.is_empty() {
                WebhookPayload::ActionCard {
                    title: subject,
                    text: content,
                    single_title: button_text
                        .ok_or_else(|| Failure::bad_input("missing --button-text (or --button)"))?,
                    single_url: redirect_url
                        .ok_or_else(|| Failure::bad_input("missing --redirect-url"))?,
                }
            } else {
                WebhookPayload::ActionCardButtons {
                    title: subject,
                    text: content,
                    buttons: parse_buttons(&button)?
                        .into_iter()
                        .map(|b| WebhookButton {
                            title: b.title,
                            action_url: b.url,
                        })
                        .collect(),
                    horizontal,
                }
            }
        }
        WebhookWhat::FeedCard { link } => WebhookPayload::FeedCard {
            links: link
                .iter()
                .map(|l| {
                    let parts: Vec<&str> = l.splitn(3, '|').collect();
                    match parts.as_slice() {
                        [t, m, p] => Ok(FeedLink {
                            title: t.to_string(),
                            message_url: m.to_string(),
                            pic_url: p.to_string(),
                        }),
                        _ => Err(Failure::bad_input(format!(
                            "invalid --link `{l}`: expected TITLE|MESSAGE_URL|PICTURE_URL"
                        ))),
                    }
                })
                .collect::<Result<_, _>>()?,
        },
    };
    let mut message = WebhookMessage::new(payload).with_at(At {
        at_mobiles: w.at_mobile,
        at_user_ids: w.at_user,
        is_at_all: w.at_all,
    });
    if let Some(id) = w.msg_uuid {
        message = message.with_msg_uuid(id);
    }
    message.to_body().map_err(fail_from)?;
    let robot = WebhookRobot::new(
        client,
        WebhookToken::new(w.token),
        secret.map(WebhookSecret::new),
    );
    retry
        .run(|| robot.send(&message))
        .await
        .map_err(fail_from)?;
    Ok(json!({ "ok": true, "msgtype": message.msgtype() }))
}
