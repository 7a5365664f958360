//! One typed settings tree (design.md §3), layered: defaults < config file (`--config dtc.toml`)
//! < environment (`DTC_*`) < flags. Unknown keys in the file are an error; secrets are
//! `SecretString`s and never printed.

use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings of `dtc serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub dingtalk_api_base: String,
    pub dingtalk_oapi_base: String,
    /// A fixed admin API token; without it one is generated and stored hashed.
    pub api_token: Option<SecretString>,
    /// Base64 of 32 bytes; without it a key file in `data_dir` is used (created if missing).
    pub master_key: Option<SecretString>,
    /// Where the key file and the default SQLite database live.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Timeout of one DingTalk request.
    pub dingtalk_timeout: Duration,
    /// Attempts of a synchronous action for transient failures, including the first.
    pub sync_attempts: u32,
    /// Start an in-process simulator and a `sandbox` connection pointing at it.
    pub sandbox: bool,
    /// Where the sandbox simulator listens (port 0 picks a free port).
    pub sandbox_sim_listen: SocketAddr,
    /// Deliveries the engine sends at once (across groups; one per group at a time).
    pub delivery_concurrency: usize,
    /// How long a claimed delivery stays leased before another instance may take it back.
    pub delivery_lease: Duration,
    /// Keep every app under its QPS quota and every webhook robot under 20 a minute. Turning
    /// it off is for benchmarks against an unlimited simulator only.
    pub enforce_rate_limits: bool,
    /// How long a sync request may wait for its turn under the rate limits before it is
    /// answered 429 with Retry-After.
    pub sync_rate_wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One layer: every field optional, unknown keys refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub dingtalk_api_base: Option<String>,
    pub dingtalk_oapi_base: Option<String>,
    pub api_token: Option<SecretString>,
    pub master_key: Option<SecretString>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub dingtalk_timeout_secs: Option<u64>,
    pub sync_attempts: Option<u32>,
    pub sandbox: Option<bool>,
    pub sandbox_sim_listen: Option<SocketAddr>,
    pub delivery_concurrency: Option<usize>,
    pub delivery_lease_secs: Option<u64>,
    pub enforce_rate_limits: Option<bool>,
    pub sync_rate_wait_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("setting `{field}`: {message}")]
    Invalid { field: String, message: String },
}

impl Layer {
    /// Read a TOML config file.
    pub fn from_file(path: &Path) -> Result<Layer, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| SettingsError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Read the `DTC_*` variables of design.md §3 through `get` (injected for tests). Only the
    /// listed names are read: other `DTC_*` variables belong to other commands.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Layer, SettingsError> {
        fn parse<T: std::str::FromStr>(
            var: &str,
            v: Option<String>,
        ) -> Result<Option<T>, SettingsError>
        where
            T::Err: std::fmt::Display,
        {
            v.map(|s| {
                s.trim().parse::<T>().map_err(|e| SettingsError::Env {
                    var: var.to_owned(),
                    message: e.to_string(),
                })
            })
            .transpose()
        }
        let log_format = match get("DTC_LOG_FORMAT").as_deref() {
            None => None,
            Some("json") => Some(LogFormat::Json),
            Some("text") => Some(LogFormat::Text),
            Some(other) => {
                return Err(SettingsError::Env {
                    var: "DTC_LOG_FORMAT".into(),
                    message: format!("`{other}` is not `text` or `json`"),
                });
            }
        };
        Ok(Layer {
            listen: parse("DTC_LISTEN", get("DTC_LISTEN"))?,
            database_url: get("DTC_DATABASE_URL"),
            dingtalk_api_base: get("DTC_DINGTALK_API_BASE"),
            dingtalk_oapi_base: get("DTC_DINGTALK_OAPI_BASE"),
            api_token: get("DTC_API_TOKEN").map(SecretString::from),
            master_key: get("DTC_MASTER_KEY").map(SecretString::from),
            data_dir: get("DTC_DATA_DIR").map(PathBuf::from),
            log_format,
            dingtalk_timeout_secs: parse(
                "DTC_DINGTALK_TIMEOUT_SECS",
                get("DTC_DINGTALK_TIMEOUT_SECS"),
            )?,
            sync_attempts: parse("DTC_SYNC_ATTEMPTS", get("DTC_SYNC_ATTEMPTS"))?,
            sandbox: None,
            sandbox_sim_listen: parse("DTC_SANDBOX_SIM_LISTEN", get("DTC_SANDBOX_SIM_LISTEN"))?,
            delivery_concurrency: parse(
                "DTC_DELIVERY_CONCURRENCY",
                get("DTC_DELIVERY_CONCURRENCY"),
            )?,
            delivery_lease_secs: parse("DTC_DELIVERY_LEASE_SECS", get("DTC_DELIVERY_LEASE_SECS"))?,
            enforce_rate_limits: parse("DTC_ENFORCE_RATE_LIMITS", get("DTC_ENFORCE_RATE_LIMITS"))?,
            sync_rate_wait_ms: parse("DTC_SYNC_RATE_WAIT_MS", get("DTC_SYNC_RATE_WAIT_MS"))?,
        })
    }

    /// `other` wins where it has a value.
    pub fn merge(self, other: Layer) -> Layer {
        Layer {
            listen: other.listen.or(self.listen),
            database_url: other.database_url.or(self.database_url),
            dingtalk_api_base: other.dingtalk_api_base.or(self.dingtalk_api_base),
            dingtalk_oapi_base: other.dingtalk_oapi_base.or(self.dingtalk_oapi_base),
            api_token: other.api_token.or(self.api_token),
            master_key: other.master_key.or(self.master_key),
            data_dir: other.data_dir.or(self.data_dir),
            log_format: other.log_format.or(self.log_format),
            dingtalk_timeout_secs: other.dingtalk_timeout_secs.or(self.dingtalk_timeout_secs),
            sync_attempts: other.sync_attempts.or(self.sync_attempts),
            sandbox: other.sandbox.or(self.sandbox),
            sandbox_sim_listen: other.sandbox_sim_listen.or(self.sandbox_sim_listen),
            delivery_concurrency: other.delivery_concurrency.or(self.delivery_concurrency),
            delivery_lease_secs: other.delivery_lease_secs.or(self.delivery_lease_secs),
            enforce_rate_limits: other.enforce_rate_limits.or(self.enforce_rate_limits),
            sync_rate_wait_ms: other.sync_rate_wait_ms.or(self.sync_rate_wait_ms),
        }
    }

    /// Apply defaults and check values.
    pub fn resolve(self) -> Result<Settings, SettingsError> {
        let sandbox = self.sandbox.unwrap_or(false);
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("dtc-data"));
        // The sandbox keeps its own database so a real connection is never pointed at the
        // simulator by accident.
        let default_db = if sandbox { "sandbox.db" } else { "dtc.db" };
        let database_url = self
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join(default_db).display()));
        let check_url = |field: &str, v: String| -> Result<String, SettingsError> {
            match url::Url::parse(&v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(v),
                Ok(_) => Err(SettingsError::Invalid {
                    field: field.into(),
                    message: format!("`{v}` must be an http(s) URL"),
                }),
                Err(e) => Err(SettingsError::Invalid {
                    field: field.into(),
                    message: format!("`{v}`: {e}"),
                }),
            }
        };
        let sync_attempts = self.sync_attempts.unwrap_or(3);
        if sync_attempts == 0 {
            return Err(SettingsError::Invalid {
                field: "sync_attempts".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(Settings {
            listen: self
                .listen
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("static address")),
            database_url,
            dingtalk_api_base: check_url(
                "dingtalk_api_base",
                self.dingtalk_api_base
                    .unwrap_or_else(|| "https://api.dingtalk.com".into()),
            )?,
            dingtalk_oapi_base: check_url(
                "dingtalk_oapi_base",
                self.dingtalk_oapi_base
                    .unwrap_or_else(|| "https://oapi.dingtalk.com".into()),
            )?,
            api_token: self.api_token,
            master_key: self.master_key,
            data_dir,
            log_format: self.log_format.unwrap_or_default(),
            dingtalk_timeout: Duration::from_secs(self.dingtalk_timeout_secs.unwrap_or(10).max(1)),
            sync_attempts,
            sandbox,
            sandbox_sim_listen: self
                .sandbox_sim_listen
                .unwrap_or_else(|| "127.0.0.1:0".parse().expect("static address")),
            // 0 runs no engine on this instance (an API-only instance; others send).
            delivery_concurrency: self.delivery_concurrency.unwrap_or(32).min(1024),
            delivery_lease: Duration::from_secs(self.delivery_lease_secs.unwrap_or(30).max(1)),
            enforce_rate_limits: self.enforce_rate_limits.unwrap_or(true),
            sync_rate_wait: Duration::from_millis(self.sync_rate_wait_ms.unwrap_or(5000)),
        })
    }
}

impl Settings {
    /// defaults < file < env < flags.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: Layer,
    ) -> Result<Settings, SettingsError> {
        let mut layer = Layer::default();
        if let Some(path) = file {
            layer = layer.merge(Layer::from_file(path)?);
        }
        layer.merge(Layer::from_env(env)?).merge(flags).resolve()
    }

    /// Settings for tests: everything local, nothing read from the environment.
    pub fn for_tests(data_dir: &Path, dingtalk_base: &str) -> Settings {
        Layer {
            listen: Some("127.0.0.1:0".parse().expect("static address")),
            data_dir: Some(data_dir.to_owned()),
            dingtalk_api_base: Some(dingtalk_base.to_owned()),
            dingtalk_oapi_base: Some(dingtalk_base.to_owned()),
            dingtalk_timeout_secs: Some(2),
            ..Layer::default()
        }
        .resolve()
        .expect("test settings are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_follow_the_design() {
        let s = Settings::load(None, env(&[]), Layer::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://dtc-data/dtc.db");
        assert_eq!(s.dingtalk_api_base, "https://api.dingtalk.com");
        assert!(s.api_token.is_none());
    }

    #[test]
    fn flags_beat_env_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dtc.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\ndatabase_url = \"sqlite://f.db\"\nsync_attempts = 7\n",
        )
        .unwrap();
        let flags = Layer {
            listen: Some("127.0.0.1:3000".parse().unwrap()),
            ..Layer::default()
        };
        let s = Settings::load(
            Some(&file),
            env(&[("DTC_LISTEN", "127.0.0.1:2000"), ("DTC_API_TOKEN", "tok")]),
            flags,
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url, "sqlite://f.db");
        assert_eq!(s.sync_attempts, 7);
        assert_eq!(s.api_token.unwrap().expose_secret(), "tok");
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dtc.toml");
        std::fs::write(&file, "listne = \"127.0.0.1:1\"\n").unwrap();
        let err = Settings::load(Some(&file), env(&[]), Layer::default()).unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err =
            Settings::load(None, env(&[("DTC_LISTEN", "nope")]), Layer::default()).unwrap_err();
        assert!(err.to_string().contains("DTC_LISTEN"), "{err}");
        let err = Settings::load(
            None,
            env(&[("DTC_DINGTALK_API_BASE", "ftp://x")]),
            Layer::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("dingtalk_api_base"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let s = Settings::load(
            None,
            env(&[("DTC_MASTER_KEY", "c2VjcmV0")]),
            Layer::default(),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
    }
}
