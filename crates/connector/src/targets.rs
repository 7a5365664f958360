//! The DingTalk target of each connection, built once and cached while the connection is
//! unchanged, so each app keeps one token cache. Shared by the synchronous API path and the
//! delivery engine.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

use crate::actions::Target;
use crate::connections::{Connection, ConnectionError, ConnectionSecrets, Connections};

pub struct Targets {
    dingtalk: dingtalk::Client,
    cache: Mutex<HashMap<Uuid, (DateTime<Utc>, Target)>>,
}

impl Targets {
    pub fn new(dingtalk: dingtalk::Client) -> Self {
        Targets {
            dingtalk,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn dingtalk(&self) -> &dingtalk::Client {
        &self.dingtalk
    }

    /// The target of `conn`, rebuilt when the connection changed since it was cached.
    pub fn get(
        &self,
        connections: &Connections,
        conn: &Connection,
    ) -> Result<Target, ConnectionError> {
        if let Some((at, t)) = self.cache.lock().expect("targets poisoned").get(&conn.id)
            && *at == conn.updated_at
        {
            return Ok(t.clone());
        }
        let target = match connections.secrets(conn)? {
            ConnectionSecrets::AppRobot { app_secret } => {
                let app_key = conn.app_key.clone().unwrap_or_default();
                Target::App {
                    client: dingtalk::AppClient::new(
                        self.dingtalk.clone(),
                        dingtalk::AppCredentials {
                            app_key: dingtalk::AppKey::new(app_key.clone()),
                            app_secret: dingtalk::AppSecret::new(app_secret.expose_secret()),
                        },
                    ),
                    robot_code: dingtalk::RobotCode::new(
                        conn.robot_code.clone().unwrap_or(app_key),
                    ),
                }
            }
            ConnectionSecrets::WebhookRobot {
                access_token,
                secret,
            } => Target::Webhook(dingtalk::WebhookRobot::new(
                self.dingtalk.clone(),
                dingtalk::WebhookToken::new(access_token.expose_secret()),
                secret.map(|s| dingtalk::WebhookSecret::new(s.expose_secret())),
            )),
        };
        self.cache
            .lock()
            .expect("targets poisoned")
            .insert(conn.id, (conn.updated_at, target.clone()));
        Ok(target)
    }

    pub fn forget(&self, id: Uuid) {
        self.cache.lock().expect("targets poisoned").remove(&id);
    }
}
