//! The server's client commands: `dtc connection …`, `dtc action …`, `dtc run …`. They talk to
//! a running `dtc serve` (`--server` / `DTC_SERVER`, token from `DTC_API_TOKEN`).

use crate::exit::{Failure, code};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the dtc server.
    #[arg(
        long,
        env = "DTC_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Print a table instead of JSON.
    #[arg(long, global = true)]
    table: bool,
}

// Parsed once per process: the size of its biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ConnectionCmd {
    /// Create a connection (secrets are read from environment variables, never from flags).
    Create {
        #[arg(long)]
        name: String,
        /// `app_robot` (AppKey, AppSecret, RobotCode) or `webhook_robot` (access token, secret).
        #[arg(long, default_value = "app_robot")]
        kind: String,
        #[arg(long)]
        app_key: Option<String>,
        /// Environment variable holding the AppSecret.
        #[arg(long, default_value = "DTC_APP_SECRET")]
        app_secret_env: String,
        /// RobotCode (default: the app key).
        #[arg(long)]
        robot_code: Option<String>,
        /// Environment variable holding the webhook robot's access_token.
        #[arg(long, default_value = "DTC_WEBHOOK_TOKEN")]
        access_token_env: String,
        /// Environment variable holding the webhook robot's signing secret (optional).
        #[arg(long)]
        secret_env: Option<String>,
        /// A keyword of the webhook robot (repeatable).
        #[arg(long)]
        keyword: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Per-API QPS quota of the app (20 on DingTalk's standard edition, up to 60).
        #[arg(long)]
        qps_quota: Option<u32>,
        /// Stream mode (app robots): the server receives what people write to the robot.
        #[arg(long)]
        stream: bool,
    },
    /// List connections.
    List,
    /// Show one connection.
    Show { id_or_name: String },
    /// Check a connection's credentials with DingTalk.
    Test { id_or_name: String },
    /// Delete a connection.
    Delete { id_or_name: String },
}

#[derive(Subcommand, Debug)]
pub enum ActionCmd {
    /// List the action catalog.
    List,
    /// Print an action's input and output JSON Schemas.
    Schema { action: String },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Connection id or name.
    connection: String,
    /// Action name (see `dtc action list`).
    action: String,
    /// The input as JSON, or `@file.json`.
    #[arg(long)]
    input: String,
}

pub(crate) struct Remote {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// The server's base URL as a user may give it: `127.0.0.1:8080`, `http://host:8080/` or the
/// `…/v1` URL `dtc serve` prints all mean the same server.
pub fn server_base(given: &str) -> Result<String, Failure> {
    let mut base = given.trim().trim_end_matches('/').to_owned();
    if let Some(stripped) = base.strip_suffix("/v1") {
        base = stripped.trim_end_matches('/').to_owned();
    }
    if !base.contains("://") {
        base = format!("http://{base}");
    }
    match url::Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(base),
        _ => Err(Failure::bad_input(format!(
            "invalid --server / DTC_SERVER `{given}`: give the server's URL, e.g. http://127.0.0.1:8080"
        ))),
    }
}

/// Why the server could not be reached, with the cause a user can act on.
fn unreachable(base: &str, e: &reqwest::Error) -> Failure {
    use std::error::Error as _;
    let mut refused = false;
    let mut deepest = "the request failed".to_owned();
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        deepest = s.to_string();
        source = s.source();
    }
    let message = if refused {
        format!(
            "cannot reach the dtc server at {base}: connection refused — is `dtc serve` running \
             there? Start it (`dtc serve --sandbox` to try dtc) or point --server / DTC_SERVER at it"
        )
    } else if e.is_timeout() {
        format!("cannot reach the dtc server at {base}: timed out")
    } else {
        format!("cannot reach the dtc server at {base}: {deepest}")
    };
    Failure {
        code: code::TRANSIENT,
        message,
    }
}

impl Remote {
    pub(crate) fn new(args: &ServerArgs) -> Result<Self, Failure> {
        Ok(Remote {
            http: reqwest::Client::new(),
            base: server_base(&args.server)?,
            token: std::env::var("DTC_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// A body as it is (a YAML flow document, say), with its content type.
    pub(crate) async fn call_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: String,
        content_type: &str,
    ) -> Result<Value, Failure> {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(req).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| unreachable(&self.base, &e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| Failure {
            code: code::TRANSIENT,
            message: format!("reading the server's answer: {}", e.without_url()),
        })?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(failure_from_api(status.as_u16(), &value))
    }
}

/// The error shape of the API to an exit code and one line.
fn failure_from_api(status: u16, body: &Value) -> Failure {
    let err = &body["error"];
    let api_code = err["code"].as_str().unwrap_or("");
    let mut message = err["message"]
        .as_str()
        .map_or_else(|| format!("HTTP {status}: {body}"), str::to_owned);
    if let Some(dt) = err["dingtalk"]["code"].as_str()
        && !message.contains(dt)
    {
        message = format!("{message} (DingTalk code {dt})");
    }
    if api_code == "unauthorized" {
        message.push_str("; set DTC_API_TOKEN");
    }
    let code = match api_code {
        "invalid_input" | "unusable_input" | "not_found" | "conflict" | "idempotency_conflict" => {
            code::BAD_INPUT
        }
        "unauthorized" | "credentials_rejected" => code::CREDENTIALS_REJECTED,
        "dingtalk_rejected" => code::MESSAGE_REJECTED,
        "dingtalk_throttled" | "dingtalk_unavailable" | "rate_limited" => code::TRANSIENT,
        _ if status >= 500 => code::TRANSIENT,
        _ => code::OTHER,
    };
    Failure { code, message }
}

fn env_secret(var: &str, what: &str) -> Result<String, Failure> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "missing {what}: set the environment variable {var}"
            ))
        })
}

pub(crate) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Subcommand, Debug)]
pub enum ConversationCmd {
    /// The groups (and 1:1 chats) a Stream-mode connection's robot has heard from, with their
    /// ids: a group's is the `group_chat_id` the send actions take.
    List {
        #[arg(long)]
        connection: String,
    },
}

pub async fn conversation(args: &ServerArgs, cmd: ConversationCmd) -> Result<Value, Failure> {
    let r = Remote::new(args)?;
    match cmd {
        ConversationCmd::List { connection } => {
            r.call(
                reqwest::Method::GET,
                &format!("/v1/connections/{}/conversations", seg(&connection)),
                None,
            )
            .await
        }
    }
}

pub async fn connection(args: &ServerArgs, cmd: ConnectionCmd) -> Result<Value, Failure> {
    let r = Remote::new(args)?;
    use reqwest::Method;
    let out = match cmd {
        ConnectionCmd::Create {
            name,
            kind,
            app_key,
            app_secret_env,
            robot_code,
            access_token_env,
            secret_env,
            keyword,
            description,
            qps_quota,
            stream,
        } => {
            let mut body = Map::new();
            if stream {
                body.insert("stream".into(), json!(true));
            }
            body.insert("name".into(), json!(name));
            body.insert("kind".into(), json!(kind));
            body.insert("description".into(), json!(description));
            if let Some(q) = qps_quota {
                body.insert("qps_quota".into(), json!(q));
            }
            match kind.as_str() {
                "app_robot" => {
                    let app_key = app_key.ok_or_else(|| Failure::bad_input("missing --app-key"))?;
                    body.insert(
                        "robot_code".into(),
                        json!(robot_code.unwrap_or_else(|| app_key.clone())),
                    );
                    body.insert("app_key".into(), json!(app_key));
                    body.insert(
                        "app_secret".into(),
                        json!(env_secret(&app_secret_env, "AppSecret")?),
                    );
                }
                "webhook_robot" => {
                    body.insert(
                        "access_token".into(),
                        json!(env_secret(&access_token_env, "webhook access_token")?),
                    );
                    if let Some(var) = secret_env {
                        body.insert("secret".into(), json!(env_secret(&var, "webhook secret")?));
                    }
                    body.insert("keywords".into(), json!(keyword));
                }
                other => {
                    return Err(Failure::bad_input(format!(
                        "invalid --kind `{other}`: use app_robot or webhook_robot"
                    )));
                }
            }
            r.call(Method::POST, "/v1/connections", Some(Value::Object(body)))
                .await?
        }
        ConnectionCmd::List => r.call(Method::GET, "/v1/connections", None).await?,
        ConnectionCmd::Show { id_or_name } => {
            r.call(
                Method::GET,
                &format!("/v1/connections/{}", seg(&id_or_name)),
                None,
            )
            .await?
        }
        ConnectionCmd::Test { id_or_name } => {
            let v = r
                .call(
                    Method::POST,
                    &format!("/v1/connections/{}/test", seg(&id_or_name)),
                    None,
                )
                .await?;
            if v["ok"] == json!(false) {
                return Err(Failure {
                    code: code::CREDENTIALS_REJECTED,
                    message: v["message"]
                        .as_str()
                        .unwrap_or("connection test failed")
                        .to_owned(),
                });
            }
            v
        }
        ConnectionCmd::Delete { id_or_name } => {
            r.call(
                Method::DELETE,
                &format!("/v1/connections/{}", seg(&id_or_name)),
                None,
            )
            .await?;
            json!({"deleted": id_or_name})
        }
    };
    Ok(out)
}

pub async fn action(args: &ServerArgs, cmd: ActionCmd) -> Result<Value, Failure> {
    let r = Remote::new(args)?;
    match cmd {
        ActionCmd::List => r.call(reqwest::Method::GET, "/v1/actions", None).await,
        ActionCmd::Schema { action } => {
            let spec = r
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/actions/{}", seg(&action)),
                    None,
                )
                .await?;
            Ok(json!({"input": spec["input_schema"], "output": spec["output_schema"]}))
        }
    }
}

/// `--input`: JSON, or `@file.json`.
pub(crate) fn read_input(given: &str) -> Result<Value, Failure> {
    let text = match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::bad_input(format!("cannot read --input {path}: {e}")))?,
        None => given.to_owned(),
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::bad_input(format!("--input is not valid JSON: {e}")))
}

pub async fn run(args: &ServerArgs, run: RunArgs) -> Result<Value, Failure> {
    let input = read_input(&run.input)?;
    let r = Remote::new(args)?;
    r.call(
        reqwest::Method::POST,
        &format!(
            "/v1/connections/{}/actions/{}",
            seg(&run.connection),
            seg(&run.action)
        ),
        Some(input),
    )
    .await
}

impl ServerArgs {
    /// The server's base URL, as [`server_base`] reads it.
    pub fn base(&self) -> Result<String, Failure> {
        server_base(&self.server)
    }
}

pub fn wants_table(args: &ServerArgs) -> bool {
    args.table
}
