//! Shared helpers: each test starts its own simulator on 127.0.0.1:0 and talks to it with raw
//! reqwest, exactly as a DingTalk client would.
// Every test binary uses a different subset of these helpers.
#![allow(dead_code)]

use base64::Engine;
use dingtalk_sim::{
    Fixture, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, SimHandle, Simulator,
};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

pub struct Ctx {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub base: String,
}

pub async fn start() -> Ctx {
    start_with(Fixture::sandbox()).await
}

pub async fn start_with(fixture: Fixture) -> Ctx {
    start_journaled(fixture, None).await
}

/// A simulator keeping its chat in `journal`.
pub async fn start_journaled(fixture: Fixture, journal: Option<&std::path::Path>) -> Ctx {
    let sim = Simulator::start_with_journal(fixture, "127.0.0.1:0".parse().expect("addr"), journal)
        .await
        .expect("simulator starts");
    let base = sim.base_url();
    Ctx {
        sim,
        http: reqwest::Client::new(),
        base,
    }
}

/// `(status, json body)`; panics if the body is not JSON (every DingTalk answer is).
pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

impl Ctx {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// New-API token for an app.
    pub async fn token_for(&self, app_key: &str, secret: &str) -> String {
        let (status, body) = self
            .post_json(
                "/v1.0/oauth2/accessToken",
                None,
                json!({"appKey": app_key, "appSecret": secret}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().expect("token").to_string()
    }

    pub async fn token(&self) -> String {
        self.token_for(SANDBOX_APP_KEY, SANDBOX_APP_SECRET).await
    }

    /// POSTs JSON to a new-API path with an optional `x-acs-dingtalk-access-token`.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.header("x-acs-dingtalk-access-token", t);
        }
        json_of(req.send().await.expect("request")).await
    }

    pub async fn group_send(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.post_json("/v1.0/robot/groupMessages/send", Some(token), body)
            .await
    }

    /// Sends one message with app 1's robot to a group; returns `(status, body)`.
    pub async fn send_msg(
        &self,
        token: &str,
        ocid: &str,
        msg_key: &str,
        param: Value,
    ) -> (StatusCode, Value) {
        self.group_send(
            token,
            json!({
                "robotCode": SANDBOX_APP_KEY,
                "openConversationId": ocid,
                "msgKey": msg_key,
                "msgParam": param.to_string(),
            }),
        )
        .await
    }

    /// Sends a text to Ops and returns its processQueryKey.
    pub async fn send_text(&self, token: &str, content: &str) -> String {
        let (status, body) = self
            .send_msg(
                token,
                SANDBOX_OPS_GROUP,
                "sampleText",
                json!({"content": content}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["processQueryKey"].as_str().expect("key").to_string()
    }

    /// POSTs to the webhook endpoint with a raw query string; returns the JSON body
    /// after checking the old API's "always 200".
    pub async fn webhook_raw(&self, query: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(self.url(&format!("/robot/send?{query}")))
            .json(&body)
            .send()
            .await
            .expect("request");
        let (status, body) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "webhook always answers 200: {body}");
        body
    }

    /// A signed webhook send to a robot with a secret.
    pub async fn webhook_signed(&self, token: &str, secret: &str, ts: i64, body: Value) -> Value {
        let query = format!(
            "access_token={token}&timestamp={ts}&sign={}",
            urlencode(&sign(secret, ts))
        );
        self.webhook_raw(&query, body).await
    }

    /// Simulator "now" in ms (system time plus whatever the clock was advanced by).
    pub async fn sim_now_ms(&self) -> i64 {
        let resp = self
            .http
            .post(self.url("/_sim/clock"))
            .json(&json!({"advance_secs": 0}))
            .send()
            .await
            .expect("clock");
        let (_, body) = json_of(resp).await;
        body["now_ms"].as_i64().expect("now_ms")
    }
}

/// DingTalk's webhook signature, computed here from the documentation.
pub fn sign(secret: &str, ts: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{ts}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

pub fn assert_new_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(body["requestid"].is_string(), "{body}");
}
