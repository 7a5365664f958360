//! One typed settings tree (docs/design.md §3), layered: defaults < config file (`--config dtc.toml`)
//! < environment (`DTC_*`) < flags. Unknown keys in the file are an error; secrets are
//! `SecretString`s and never printed.
//!
//! Each setting is declared once, in the [`settings!`] block below: its name (the file key; the
//! environment variable is `DTC_` + the name in capitals), type, default and meaning. The
//! [`Settings`] struct, the all-optional [`Layer`] that files, the environment and flags fill,
//! reading the environment and merging layers are generated from that one list.

use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::delivery::{BackoffConfig, EngineConfig};
use crate::fetch::AllowList;

/// Declares every setting once. `name: Type = default` has a default; `name: Option<Type>` has
/// none. `Type` must be `Deserialize` (for the file) and `FromStr` (for the environment).
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $kind:tt $(<$inner:ty>)? $(= $default:expr)?;
    )+) => {
        /// Settings of `dtc serve`, resolved from every layer.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $name: settings!(@type $kind $(<$inner>)?), )+
        }

        /// One layer of settings: every field optional, unknown keys refused.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Layer {
            $( pub $name: Option<settings!(@inner $kind $(<$inner>)?)>, )+
        }

        impl Layer {
            /// Every setting's environment variable, in declaration order.
            pub fn env_vars() -> Vec<String> {
                vec![$( env_var(stringify!($name)) ),+]
            }

            /// Read the `DTC_*` variables through `get` (injected for tests). Only settings'
            /// variables are read: other `DTC_*` variables belong to other commands.
            pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Layer, SettingsError> {
                Ok(Layer {
                    $( $name: parse_env(&env_var(stringify!($name)), &get)?, )+
                })
            }

            /// `other` wins where it has a value.
            pub fn merge(self, other: Layer) -> Layer {
                Layer { $( $name: other.$name.or(self.$name), )+ }
            }

            /// Apply defaults.
            fn with_defaults(self) -> Settings {
                Settings { $( $name: settings!(@resolve self.$name, $kind $(= $default)?), )+ }
            }
        }
    };
    (@type Option<$inner:ty>) => { Option<$inner> };
    (@type $t:ty) => { $t };
    (@inner Option<$inner:ty>) => { $inner };
    (@inner $t:ty) => { $t };
    (@resolve $v:expr, Option) => { $v };
    (@resolve $v:expr, $t:tt = $default:expr) => { $v.unwrap_or_else(|| $default) };
}

/// More async threads than this only add switching between them.
pub const MAX_WORKER_THREADS: usize = 256;

/// A setting's environment variable: `listen` → `DTC_LISTEN`.
fn env_var(name: &str) -> String {
    format!("DTC_{}", name.to_ascii_uppercase())
}

settings! {
    /// Address to listen on.
    listen: SocketAddr = "127.0.0.1:8080".parse().expect("static address");
    /// `sqlite://path` or `postgres://…`; default `sqlite://<data_dir>/dtc.db` (`sandbox.db`
    /// with `sandbox`). Use [`Settings::database_url`].
    database_url: Option<String>;
    /// DingTalk's new API (api.dingtalk.com).
    dingtalk_api_base: String = "https://api.dingtalk.com".into();
    /// DingTalk's old API and webhooks (oapi.dingtalk.com); follows `dingtalk_api_base` when
    /// only that one is set.
    dingtalk_oapi_base: String = "https://oapi.dingtalk.com".into();
    /// A fixed admin API token; without it one is generated and stored hashed.
    api_token: Option<SecretString>;
    /// Base64 of 32 bytes; without it a key file in `data_dir` is used (created if missing).
    master_key: Option<SecretString>;
    /// Where the key file and the default SQLite database live.
    data_dir: PathBuf = PathBuf::from("dtc-data");
    /// A request's headers must arrive within this many seconds; an idle keep-alive
    /// connection is closed after it too.
    http_header_timeout_secs: u64 = 10;
    /// A request's body must arrive within this many seconds of its headers.
    http_body_timeout_secs: u64 = 60;
    /// Connections served at once. As many again are answered 503 (`/healthz` still answers);
    /// beyond that, new connections are closed at once.
    http_max_connections: usize = 1024;
    /// Non-public addresses a `file_url` may be fetched from: networks (`10.0.0.0/8`),
    /// addresses and `address:port` sockets, comma-separated. Public addresses need no entry.
    fetch_allow: AllowList = AllowList::default();
    /// `text` or `json` log lines on stderr.
    log_format: LogFormat = LogFormat::Text;
    /// Timeout of one DingTalk request, in seconds.
    dingtalk_timeout_secs: u64 = 10;
    /// Attempts of a synchronous action for transient failures, including the first.
    sync_attempts: u32 = 3;
    /// How long a sync request may wait for its turn under the rate limits before it is
    /// answered 429 with Retry-After, in milliseconds.
    sync_rate_wait_ms: u64 = 5000;
    /// Start an in-process simulator and `sandbox` connections pointing at it.
    sandbox: bool = false;
    /// Where the sandbox simulator listens: a fixed port, so its chat page keeps its address
    /// (a free port is taken, with a warning, when this one is in use; port 0 always picks one).
    sandbox_sim_listen: SocketAddr = "127.0.0.1:8081".parse().expect("static address");
    /// Deliveries the engine sends at once (across groups; one per group at a time); 0 runs no
    /// engine on this instance (an API-only instance; others send).
    delivery_concurrency: usize = EngineConfig::DEFAULT_CONCURRENCY;
    /// How long a claimed delivery stays leased before another instance may take it back, in
    /// seconds.
    delivery_lease_secs: u64 = EngineConfig::DEFAULT_LEASE.as_secs();
    /// Attempts of a queued delivery, including the first, before it fails for good.
    delivery_max_attempts: u32 = BackoffConfig::default().policy.max_attempts;
    /// A queued delivery older than this (in seconds) fails instead of being retried.
    delivery_max_age_secs: u64 = BackoffConfig::default().max_age.as_secs();
    /// How often an instance renews its heartbeat, in milliseconds; an instance silent for
    /// three of these is taken for dead and its leases are taken back.
    instance_heartbeat_ms: u64 = 2000;
    /// Keep every app under its QPS quota and every webhook robot under 20 a minute. Turning
    /// it off is for benchmarks against an unlimited simulator only.
    enforce_rate_limits: bool = true;
    /// Spacing of requests over the exact quota (1.02: 98 % of it, absorbing 20 ms of jitter
    /// per second of quota). More for a network or machine whose delays are larger; read
    /// between 1.0 and 2.0.
    rate_margin: f64 = crate::delivery::DEFAULT_MARGIN;
    /// Threads running `dtc serve`'s async work; 0 is one per core (tokio's default). A
    /// thread does about 20,000 sync sends a second, a thousand times an app's quota; 1
    /// measured 11–21 % less CPU per send on a two-core machine (BENCHMARKS.md), but a large
    /// file then holds up the other requests for a while (~40 ms for 15 MB; under 10 ms with
    /// two), and PostgreSQL's client work shares that one thread (14 % fewer sends/s).
    worker_threads: usize = 0;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is not `text` or `json`")),
        }
    }
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

/// A setting's value as an environment variable spells it.
trait FromEnv: Sized {
    fn from_env(text: &str) -> Result<Self, String>;
}

macro_rules! from_env_by_from_str {
    ($($t:ty),+) => {$(
        impl FromEnv for $t {
            fn from_env(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|e| format!("{e}"))
            }
        }
    )+};
}

from_env_by_from_str!(
    SocketAddr, String, PathBuf, u64, u32, usize, f64, bool, LogFormat, AllowList
);

impl FromEnv for SecretString {
    /// Taken as it is (no trimming: it is a secret, whatever its bytes).
    fn from_env(text: &str) -> Result<Self, String> {
        Ok(SecretString::from(text))
    }
}

fn parse_env<T: FromEnv>(
    var: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<T>, SettingsError> {
    get(var)
        .map(|s| {
            T::from_env(&s).map_err(|message| SettingsError::Env {
                var: var.to_owned(),
                message,
            })
        })
        .transpose()
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

    /// Apply defaults and check values.
    pub fn resolve(mut self) -> Result<Settings, SettingsError> {
        // A simulator or proxy serves both API families at one base: moving only the new API
        // moves the old one (webhooks) with it, as `dtc send` does.
        if self.dingtalk_oapi_base.is_none()
            && let Some(api) = &self.dingtalk_api_base
            && url::Url::parse(api).is_ok_and(|u| u.host_str() != Some("api.dingtalk.com"))
        {
            self.dingtalk_oapi_base = Some(api.clone());
        }
        let mut s = self.with_defaults();
        let invalid = |field: &str, message: String| SettingsError::Invalid {
            field: field.into(),
            message,
        };
        for (field, v) in [
            ("dingtalk_api_base", &s.dingtalk_api_base),
            ("dingtalk_oapi_base", &s.dingtalk_oapi_base),
        ] {
            match url::Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(_) => return Err(invalid(field, format!("`{v}` must be an http(s) URL"))),
                Err(e) => return Err(invalid(field, format!("`{v}`: {e}"))),
            }
        }
        if s.sync_attempts == 0 {
            return Err(invalid("sync_attempts", "must be at least 1".into()));
        }
        if s.delivery_max_attempts == 0 {
            return Err(invalid(
                "delivery_max_attempts",
                "must be at least 1".into(),
            ));
        }
        s.dingtalk_timeout_secs = s.dingtalk_timeout_secs.max(1);
        s.delivery_lease_secs = s.delivery_lease_secs.max(1);
        s.delivery_concurrency = s.delivery_concurrency.min(1024);
        Ok(s)
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

    /// The database, by default a SQLite file in `data_dir`. The sandbox keeps its own file so
    /// a real connection is never pointed at the simulator by accident.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => {
                let file = if self.sandbox { "sandbox.db" } else { "dtc.db" };
                format!("sqlite://{}", self.data_dir.join(file).display())
            }
        }
    }

    /// [`Self::rate_margin`], within its range.
    pub fn rate_margin(&self) -> f64 {
        if self.rate_margin.is_finite() {
            self.rate_margin.clamp(1.0, 2.0)
        } else {
            crate::delivery::DEFAULT_MARGIN
        }
    }

    /// [`Self::worker_threads`] for the runtime's builder: `None` leaves tokio's default (one
    /// per core, or `TOKIO_WORKER_THREADS`).
    pub fn runtime_threads(&self) -> Option<usize> {
        (self.worker_threads > 0).then_some(self.worker_threads.min(MAX_WORKER_THREADS))
    }

    /// How the HTTP server treats its connections.
    pub fn http_limits(&self) -> crate::server::Limits {
        crate::server::Limits {
            header_timeout: Duration::from_secs(self.http_header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.http_body_timeout_secs.max(1)),
            max_connections: self.http_max_connections.max(1),
        }
    }

    pub fn instance_heartbeat(&self) -> Duration {
        Duration::from_millis(self.instance_heartbeat_ms.max(50))
    }

    pub fn dingtalk_timeout(&self) -> Duration {
        Duration::from_secs(self.dingtalk_timeout_secs)
    }

    pub fn sync_rate_wait(&self) -> Duration {
        Duration::from_millis(self.sync_rate_wait_ms)
    }

    /// How the delivery engine runs and retries, from these settings.
    pub fn engine(&self) -> EngineConfig {
        let defaults = BackoffConfig::default();
        EngineConfig {
            concurrency: self.delivery_concurrency,
            lease: Duration::from_secs(self.delivery_lease_secs),
            backoff: BackoffConfig {
                policy: dingtalk::RetryPolicy {
                    max_attempts: self.delivery_max_attempts,
                    ..defaults.policy
                },
                max_age: Duration::from_secs(self.delivery_max_age_secs),
                ..defaults
            },
            ..EngineConfig::default()
        }
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

    #[test]
    fn the_old_api_base_follows_the_new_one_when_only_that_is_set() {
        let load = |pairs: &[(&str, &str)]| Settings::load(None, env(pairs), Layer::default());
        let s = load(&[("DTC_DINGTALK_API_BASE", "http://127.0.0.1:9000")]).unwrap();
        assert_eq!(s.dingtalk_oapi_base, "http://127.0.0.1:9000");
        let s = load(&[
            ("DTC_DINGTALK_API_BASE", "http://127.0.0.1:9000"),
            ("DTC_DINGTALK_OAPI_BASE", "http://127.0.0.1:9001"),
        ])
        .unwrap();
        assert_eq!(s.dingtalk_oapi_base, "http://127.0.0.1:9001");
        let s = load(&[("DTC_DINGTALK_API_BASE", "https://api.dingtalk.com")]).unwrap();
        assert_eq!(s.dingtalk_oapi_base, "https://oapi.dingtalk.com");
        let s = load(&[]).unwrap();
        assert_eq!(s.dingtalk_oapi_base, "https://oapi.dingtalk.com");
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_follow_the_design_and_the_engine() {
        let s = Settings::load(None, env(&[]), Layer::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url(), "sqlite://dtc-data/dtc.db");
        assert_eq!(s.dingtalk_api_base, "https://api.dingtalk.com");
        assert!(s.api_token.is_none());
        let engine = s.engine();
        assert_eq!(engine.concurrency, EngineConfig::default().concurrency);
        assert_eq!(engine.lease, EngineConfig::default().lease);
        assert_eq!(engine.backoff, BackoffConfig::default());
    }

    #[test]
    fn every_setting_has_its_environment_variable() {
        let vars = Layer::env_vars();
        assert!(vars.contains(&"DTC_LISTEN".to_owned()));
        assert!(vars.contains(&"DTC_DELIVERY_MAX_ATTEMPTS".to_owned()));
        let s = Settings::load(
            None,
            env(&[
                ("DTC_DELIVERY_MAX_ATTEMPTS", "5"),
                ("DTC_LOG_FORMAT", "json"),
                ("DTC_SANDBOX", "true"),
            ]),
            Layer::default(),
        )
        .unwrap();
        assert_eq!(s.engine().backoff.policy.max_attempts, 5);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.database_url(), "sqlite://dtc-data/sandbox.db");
    }

    #[test]
    fn worker_threads_default_to_one_per_core_and_are_bounded() {
        let load = |pairs: &[(&str, &str)]| Settings::load(None, env(pairs), Layer::default());
        assert_eq!(load(&[]).unwrap().runtime_threads(), None);
        let one = load(&[("DTC_WORKER_THREADS", "1")]).unwrap();
        assert_eq!(one.runtime_threads(), Some(1));
        let many = load(&[("DTC_WORKER_THREADS", "100000")]).unwrap();
        assert_eq!(many.runtime_threads(), Some(MAX_WORKER_THREADS));
        let err = load(&[("DTC_WORKER_THREADS", "two")]).unwrap_err();
        assert!(err.to_string().contains("DTC_WORKER_THREADS"), "{err}");
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
            env(&[("DTC_LISTEN", "127.0.0.1:2000"), ("DTC_API_TOKEN", "12345")]),
            flags,
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url(), "sqlite://f.db");
        assert_eq!(s.sync_attempts, 7);
        assert_eq!(s.api_token.unwrap().expose_secret(), "12345");
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
    fn bad_values_name_the_variable_or_setting() {
        let err =
            Settings::load(None, env(&[("DTC_LISTEN", "nope")]), Layer::default()).unwrap_err();
        assert!(err.to_string().contains("DTC_LISTEN"), "{err}");
        let err =
            Settings::load(None, env(&[("DTC_LOG_FORMAT", "xml")]), Layer::default()).unwrap_err();
        assert!(err.to_string().contains("DTC_LOG_FORMAT"), "{err}");
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
