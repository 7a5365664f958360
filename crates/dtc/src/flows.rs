//! `dtc flow …` and `dtc runs …`: flows on a dtc server (apply a YAML or JSON document, run,
//! dry-run, start one from a ready template) and the run log.

use std::time::Duration;

use clap::Subcommand;
use connector::connections::ConnectionKind;
use connector::flows::init::{InitFormat, InitOptions, init};
use reqwest::Method;
use serde_json::{Value, json};

use crate::exit::{Failure, code};
use crate::remote::{Remote, ServerArgs, read_input, seg};

#[derive(Subcommand, Debug)]
pub enum FlowCmd {
    /// Apply a flow document (YAML or JSON; `-` reads standard input): create it, or store its
    /// next version.
    Apply { file: String },
    /// List flows.
    List,
    /// Show a flow (its secrets read `<set>`).
    Show { name: String },
    /// Delete a flow (its runs stay in the log).
    Delete { name: String },
    /// Run a flow now.
    Run {
        name: String,
        /// The trigger's body as JSON, or `@file.json`.
        #[arg(long)]
        input: Option<String>,
        /// Wait until the run has finished; exit non-zero if it failed.
        #[arg(long)]
        wait: bool,
    },
    /// Render every step from a sample trigger body and check it; nothing is sent.
    DryRun {
        name: String,
        /// The sample trigger body as JSON, or `@file.json`.
        #[arg(long)]
        input: Option<String>,
    },
    /// Print a ready flow to edit and apply: `alertmanager`, `grafana` or `json`.
    Init {
        format: String,
        /// The connection to send through.
        #[arg(long)]
        connection: String,
        /// The group chat (openConversationId) for app robots.
        #[arg(long)]
        group: Option<String>,
        /// The flow's name (default: the format's name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// The run log, newest first.
    List {
        #[arg(long)]
        flow: Option<String>,
        /// running, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One run: each step's result and deliveries.
    Show { id: String },
}

/// What a flow command printed itself (`init`) or left to print.
pub async fn flow(args: &ServerArgs, cmd: FlowCmd) -> Result<Option<Value>, Failure> {
    let r = Remote::new(args)?;
    let out = match cmd {
        FlowCmd::Apply { file } => {
            let (text, name) = if file == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| Failure::bad_input(format!("cannot read standard input: {e}")))?;
                (text, "-".to_owned())
            } else {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| Failure::bad_input(format!("cannot read {file}: {e}")))?;
                (text, file)
            };
            let content_type = if name.ends_with(".json") {
                "application/json"
            } else {
                "application/yaml"
            };
            r.call_raw(Method::POST, "/v1/flows", text, content_type)
                .await
                .map_err(|f| Failure {
                    message: format!("{name}: {}", f.message),
                    ..f
                })?
        }
        FlowCmd::List => r.call(Method::GET, "/v1/flows", None).await?,
        FlowCmd::Show { name } => {
            r.call(Method::GET, &format!("/v1/flows/{}", seg(&name)), None)
                .await?
        }
        FlowCmd::Delete { name } => {
            r.call(Method::DELETE, &format!("/v1/flows/{}", seg(&name)), None)
                .await?;
            json!({"deleted": name})
        }
        FlowCmd::Run { name, input, wait } => {
            let body = input
                .as_deref()
                .map(read_input)
                .transpose()?
                .unwrap_or(json!({}));
            let run = r
                .call(
                    Method::POST,
                    &format!("/v1/flows/{}/runs", seg(&name)),
                    Some(body),
                )
                .await?;
            if !wait {
                run
            } else {
                let id = run["id"].as_str().unwrap_or_default().to_owned();
                let finished = wait_for(&r, &id).await?;
                if finished["status"] == "failed" {
                    return Err(Failure {
                        code: code::MESSAGE_REJECTED,
                        message: format!("run {id} failed: {}", finished["error"]),
                    });
                }
                finished
            }
        }
        FlowCmd::DryRun { name, input } => {
            let body = input
                .as_deref()
                .map(read_input)
                .transpose()?
                .unwrap_or(json!({}));
            r.call(
                Method::POST,
                &format!("/v1/flows/{}/dry-run", seg(&name)),
                Some(body),
            )
            .await?
        }
        FlowCmd::Init {
            format,
            connection,
            group,
            name,
        } => {
            let format = InitFormat::parse(&format).ok_or_else(|| {
                Failure::bad_input(format!(
                    "unknown format `{format}`: use alertmanager, grafana, json or chat"
                ))
            })?;
            let conn = r
                .call(
                    Method::GET,
                    &format!("/v1/connections/{}", seg(&connection)),
                    None,
                )
                .await?;
            let kind = match conn["kind"].as_str() {
                Some("webhook_robot") => ConnectionKind::WebhookRobot,
                _ => ConnectionKind::AppRobot,
            };
            let secret = random_secret();
            let name = name.unwrap_or_else(|| format.as_str().to_owned());
            let yaml = init(&InitOptions {
                format,
                name: &name,
                connection: &connection,
                kind,
                group: group.as_deref(),
                secret: &secret,
            })
            .map_err(Failure::bad_input)?;
            print!("{yaml}");
            eprintln!("{}", hint(format, &name, &secret, &args_server(args)));
            return Ok(None);
        }
    };
    Ok(Some(out))
}

pub async fn runs(args: &ServerArgs, cmd: RunsCmd) -> Result<Value, Failure> {
    let r = Remote::new(args)?;
    match cmd {
        RunsCmd::List {
            flow,
            status,
            limit,
        } => {
            let mut query = Vec::new();
            if let Some(f) = flow {
                query.push(format!("flow={}", seg(&f)));
            }
            if let Some(s) = status {
                query.push(format!("status={}", seg(&s)));
            }
            if let Some(l) = limit {
                query.push(format!("limit={l}"));
            }
            let q = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let page = r.call(Method::GET, &format!("/v1/runs{q}"), None).await?;
            Ok(page["runs"].clone())
        }
        RunsCmd::Show { id } => {
            r.call(Method::GET, &format!("/v1/runs/{}", seg(&id)), None)
                .await
        }
    }
}

async fn wait_for(r: &Remote, id: &str) -> Result<Value, Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let run = r
            .call(Method::GET, &format!("/v1/runs/{}", seg(id)), None)
            .await?;
        if run["status"] != "running" {
            return Ok(run);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Failure {
                code: code::TRANSIENT,
                message: format!("run {id} is still running after 5 minutes"),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn random_secret() -> String {
    // The same generator as API tokens: 40 random letters and digits.
    connector::app::new_api_token()
}

fn args_server(args: &ServerArgs) -> String {
    args.base()
        .unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

/// What to do next, on standard error (standard output is the document).
fn hint(format: InitFormat, name: &str, secret: &str, server: &str) -> String {
    match format {
        InitFormat::Alertmanager => format!(
            "# Next: save this as {name}.yaml, `dtc flow apply {name}.yaml`, then in alertmanager.yml:\n\
             #   receivers:\n\
             #     - name: dingtalk\n\
             #       webhook_configs:\n\
             #         - url: {server}/hooks/{name}\n\
             #           send_resolved: true\n\
             #           http_config:\n\
             #             authorization:\n\
             #               credentials: {secret}"
        ),
        InitFormat::Grafana => format!(
            "# Next: save this as {name}.yaml, `dtc flow apply {name}.yaml`, then in Grafana add a webhook\n\
             # contact point: URL {server}/hooks/{name}, HMAC signature with secret {secret},\n\
             # timestamp header X-Grafana-Alerting-Signature-Timestamp."
        ),
        InitFormat::Json => format!(
            "# Next: save this as {name}.yaml, `dtc flow apply {name}.yaml`, then:\n\
             #   curl -H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' \\\n\
             #     -d '{{\"title\": \"hello\", \"text\": \"from curl\"}}' {server}/hooks/{name}"
        ),
        InitFormat::Chat => format!(
            "# Next: save this as {name}.yaml, `dtc flow apply {name}.yaml`, then write \"@robot status db-1\"\n\
             # in a group the robot is in (in the sandbox: the simulator's chat page)."
        ),
    }
}
