//! The simulator's world: apps with their robots and groups, webhook robots, and limits.
//! The JSON format is the one in docs/design.md §4; unknown keys are rejected so a typo in a
//! fixture file fails loudly instead of silently changing the simulated world.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the simulator knows about at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub apps: Vec<AppFixture>,
    #[serde(default)]
    pub webhook_robots: Vec<WebhookRobotFixture>,
    #[serde(default)]
    pub limits: Limits,
}

/// An enterprise-internal app and its robot (for such apps `robot_code` usually equals `app_key`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFixture {
    pub app_key: String,
    pub app_secret: String,
    pub robot_code: String,
    /// Groups the app's robot is installed in.
    #[serde(default)]
    pub groups: Vec<GroupFixture>,
    /// Staff reachable by 1:1 robot messages; also treated as members of the app's groups
    /// (they are the users who "read" group messages).
    #[serde(default)]
    pub users: Vec<UserFixture>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFixture {
    pub open_conversation_id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFixture {
    pub user_id: String,
    pub name: String,
}

/// A custom (webhook) group robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRobotFixture {
    pub access_token: String,
    /// Signing secret (`SEC…`); when set, every send must carry a valid `timestamp` and `sign`.
    #[serde(default)]
    pub secret: Option<String>,
    /// When non-empty, a message must contain at least one of these.
    #[serde(default)]
    pub keywords: Vec<String>,
    pub open_conversation_id: String,
    /// Chat title shown on the chat page when no app group has this conversation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Rate limits and lifetimes. A value of 0 means unlimited (for benchmarks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per app per API in any 1-second window (DingTalk standard edition: 20).
    #[serde(default = "default_qps")]
    pub app_api_qps: u32,
    /// Accepted messages per webhook robot in any 60-second window (DingTalk: 20).
    #[serde(default = "default_webhook_per_minute")]
    pub webhook_per_minute: u32,
    /// Access-token lifetime (DingTalk: 7200 s).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// How long a webhook robot stays throttled after exceeding its per-minute limit (DingTalk: 10 min).
    #[serde(default = "default_lockout")]
    pub webhook_lockout_secs: u64,
    /// Stream mode: an unacknowledged robot message is sent again after this long (on the
    /// simulator's clock). DingTalk's figure is unconfirmed: 60 s is what users report.
    #[serde(default = "default_stream_redeliver")]
    pub stream_redeliver_secs: u64,
    /// Stream mode: how often each connection gets a SYSTEM `ping` (real time). Unconfirmed:
    /// reports say 20–30 s.
    #[serde(default = "default_stream_ping")]
    pub stream_ping_secs: u64,
}

fn default_qps() -> u32 {
    20
}
fn default_webhook_per_minute() -> u32 {
    20
}
fn default_token_ttl() -> u64 {
    7200
}
fn default_lockout() -> u64 {
    600
}
fn default_stream_redeliver() -> u64 {
    60
}
fn default_stream_ping() -> u64 {
    30
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            app_api_qps: default_qps(),
            webhook_per_minute: default_webhook_per_minute(),
            token_ttl_secs: default_token_ttl(),
            webhook_lockout_secs: default_lockout(),
            stream_redeliver_secs: default_stream_redeliver(),
            stream_ping_secs: default_stream_ping(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fixture file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("fixture is inconsistent: {0}")]
    Invalid(String),
}

/// App 1 of the sandbox: its key doubles as robot code, as for real internal-app robots.
pub const SANDBOX_APP_KEY: &str = "dingsandbox0000000001";
pub const SANDBOX_APP_SECRET: &str =
    "SandboxSecret000000000000000000000000000000000000000000000000001";
pub const SANDBOX_APP2_KEY: &str = "dingsandbox0000000002";
pub const SANDBOX_APP2_SECRET: &str =
    "SandboxSecret000000000000000000000000000000000000000000000000002";
pub const SANDBOX_OPS_GROUP: &str = "cidSandboxOps0000000000==";
pub const SANDBOX_DEV_GROUP: &str = "cidSandboxDev0000000000==";
pub const SANDBOX_SALES_GROUP: &str = "cidSandboxSales000000000==";
pub const SANDBOX_WEBHOOK_TOKEN: &str =
    "5a5d0c6e1f2b3a4958677685a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f";
pub const SANDBOX_WEBHOOK_SECRET: &str =
    "SEC0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
pub const SANDBOX_KEYWORD_WEBHOOK_TOKEN: &str =
    "9e8d7c6b5a4938271605f4e3d2c1b0a99e8d7c6b5a4938271605f4e3d2c1b0a9";

impl Fixture {
    /// The built-in world used when no fixture file is given (see the crate docs).
    pub fn sandbox() -> Fixture {
        Fixture {
            apps: vec![
                AppFixture {
                    app_key: SANDBOX_APP_KEY.into(),
                    app_secret: SANDBOX_APP_SECRET.into(),
                    robot_code: SANDBOX_APP_KEY.into(),
                    groups: vec![
                        GroupFixture {
                            open_conversation_id: SANDBOX_OPS_GROUP.into(),
                            title: "Ops".into(),
                        },
                        GroupFixture {
                            open_conversation_id: SANDBOX_DEV_GROUP.into(),
                            title: "Dev".into(),
                        },
                    ],
                    users: vec![
                        UserFixture {
                            user_id: "manager1234".into(),
                            name: "Manager".into(),
                        },
                        UserFixture {
                            user_id: "452523285939877041".into(),
                            name: "Li Lei".into(),
                        },
                    ],
                },
                AppFixture {
                    app_key: SANDBOX_APP2_KEY.into(),
                    app_secret: SANDBOX_APP2_SECRET.into(),
                    robot_code: SANDBOX_APP2_KEY.into(),
                    groups: vec![GroupFixture {
                        open_conversation_id: SANDBOX_SALES_GROUP.into(),
                        title: "Sales".into(),
                    }],
                    users: vec![UserFixture {
                        user_id: "sales0001".into(),
                        name: "Han Meimei".into(),
                    }],
                },
            ],
            webhook_robots: vec![
                WebhookRobotFixture {
                    access_token: SANDBOX_WEBHOOK_TOKEN.into(),
                    secret: Some(SANDBOX_WEBHOOK_SECRET.into()),
                    keywords: vec![],
                    open_conversation_id: SANDBOX_OPS_GROUP.into(),
                    title: None,
                },
                WebhookRobotFixture {
                    access_token: SANDBOX_KEYWORD_WEBHOOK_TOKEN.into(),
                    secret: None,
                    keywords: vec!["alert".into()],
                    open_conversation_id: SANDBOX_DEV_GROUP.into(),
                    title: None,
                },
            ],
            limits: Limits::default(),
        }
    }

    /// Reads and checks a fixture file.
    pub fn from_path(p: &Path) -> Result<Fixture, FixtureError> {
        let text = std::fs::read_to_string(p).map_err(|source| FixtureError::Read {
            path: p.to_path_buf(),
            source,
        })?;
        let fixture: Fixture =
            serde_json::from_str(&text).map_err(|source| FixtureError::Parse {
                path: p.to_path_buf(),
                source,
            })?;
        fixture.validate()?;
        Ok(fixture)
    }

    pub fn to_pretty_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Rejects worlds the simulator could not answer unambiguously (duplicate keys or codes).
    pub fn validate(&self) -> Result<(), FixtureError> {
        let mut keys = std::collections::HashSet::new();
        let mut robots = std::collections::HashSet::new();
        for app in &self.apps {
            if !keys.insert(app.app_key.as_str()) {
                return Err(FixtureError::Invalid(format!(
                    "duplicate app_key {}",
                    app.app_key
                )));
            }
            if !robots.insert(app.robot_code.as_str()) {
                return Err(FixtureError::Invalid(format!(
                    "duplicate robot_code {}",
                    app.robot_code
                )));
            }
        }
        let mut tokens = std::collections::HashSet::new();
        for w in &self.webhook_robots {
            if !tokens.insert(w.access_token.as_str()) {
                return Err(FixtureError::Invalid(format!(
                    "duplicate webhook access_token {}",
                    w.access_token
                )));
            }
        }
        Ok(())
    }
}
