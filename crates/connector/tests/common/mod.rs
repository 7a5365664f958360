//! `spawn_app()`: each test gets its own server on port 0, its own simulator and its own
//! temporary database and key file.
#![allow(dead_code)]

use connector::app::Application;
use connector::settings::Settings;
use dingtalk_sim::{Fixture, SimHandle, Simulator};
use reqwest::{Method, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const TOKEN: &str = "test-api-token-0123456789";

pub struct TestApp {
    pub base: String,
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_tests(dir.path(), &sim.base_url());
    settings.api_token = Some(SecretString::from(TOKEN));
    settings.sync_attempts = 3;
    configure(&mut settings);
    let database_url = settings.database_url();
    let app = Application::build(settings).await.expect("app builds");
    let base = format!("http://{}", app.addr());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        sim,
        http: reqwest::Client::new(),
        dir,
        database_url,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        into_parts(self.request(Method::GET, path, None).await).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        into_parts(self.request(Method::POST, path, Some(body)).await).await
    }

    /// Create an app-robot connection for the sandbox app; returns its JSON.
    pub async fn create_app_connection(&self, name: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/connections",
                json!({
                    "name": name,
                    "app_key": dingtalk_sim::SANDBOX_APP_KEY,
                    "app_secret": dingtalk_sim::SANDBOX_APP_SECRET,
                    "robot_code": dingtalk_sim::SANDBOX_APP_KEY,
                    "description": "test connection"
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn create_webhook_connection(&self, name: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/connections",
                json!({
                    "name": name,
                    "kind": "webhook_robot",
                    "access_token": dingtalk_sim::SANDBOX_WEBHOOK_TOKEN,
                    "secret": dingtalk_sim::SANDBOX_WEBHOOK_SECRET,
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn run(&self, connection: &str, action: &str, input: Value) -> (u16, Value) {
        self.post(
            &format!("/v1/connections/{connection}/actions/{action}"),
            input,
        )
        .await
    }

    /// Run `action` with a `multipart/form-data` body.
    pub async fn run_form(
        &self,
        connection: &str,
        action: &str,
        form: reqwest::multipart::Form,
    ) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}/v1/connections/{connection}/actions/{action}",
                self.base
            ))
            .bearer_auth(TOKEN)
            .multipart(form)
            .send()
            .await
            .expect("request sent");
        into_parts(resp).await
    }

    /// Stop the server gracefully; returns its directory (database, key) for inspection.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.expect("server task").expect("server ran");
        }
        self.dir
    }
}

pub async fn into_parts(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

pub const OPS: &str = dingtalk_sim::SANDBOX_OPS_GROUP;
