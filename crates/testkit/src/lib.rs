//! Test-only helpers shared by dtc's crates. Never a dependency of shipped code.
//!
//! The rule they enforce: a test whose dependency (PostgreSQL, Python, PyPI) is missing says
//! so and passes locally, but fails when `CI` is set — a green CI means every test ran.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether this is a CI run (the `CI` variable is set to anything but `""`, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// A dependency of the calling test is missing: print why and return (locally), or fail the
/// test (in CI).
#[track_caller]
pub fn missing(why: impl std::fmt::Display) {
    if in_ci() {
        panic!("{why} — CI is set, so this test may not be skipped");
    }
    println!("skipped: {why}");
}

/// The PostgreSQL server tests use (`DTC_TEST_POSTGRES_URL`), if configured. When it is not,
/// [`missing`] has been called.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DTC_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            missing("DTC_TEST_POSTGRES_URL is not set (a PostgreSQL server for tests)");
            None
        }
    }
}

/// A fresh schema on the test PostgreSQL server; `url` points into it (via `search_path`).
#[derive(Debug, Clone)]
pub struct PgSchema {
    pub url: String,
    base: String,
    schema: String,
}

impl PgSchema {
    /// Creates a schema named `<prefix>_<random>`; `None` if PostgreSQL is not configured
    /// (see [`postgres_url`]).
    pub async fn create(prefix: &str) -> Option<PgSchema> {
        let base = postgres_url()?;
        let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        exec(&base, &format!("CREATE SCHEMA {schema}")).await;
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(PgSchema {
            url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
            base,
            schema,
        })
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(&self) {
        exec(&self.base, &format!("DROP SCHEMA {} CASCADE", self.schema)).await;
    }
}

/// Runs `statement` against the PostgreSQL server at `url` (tests that break the database).
pub async fn pg_exec(url: &str, statement: &str) {
    exec(url, statement).await
}

async fn exec(url: &str, statement: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at DTC_TEST_POSTGRES_URL: {e}"));
    sqlx::raw_sql(statement)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let _ = conn.close().await;
}

/// The workspace's `target/` directory (shared by every test run, so venvs are made once).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// A Python virtual environment under `target/py/<name>` in which `probe` (Python code, e.g.
/// `import x`) runs, installing `packages` from PyPI first if needed. Returns its `python`, or
/// why it cannot be had (give that to [`missing`]).
pub fn python_venv(name: &str, packages: &[&str], probe: &str) -> Result<PathBuf, String> {
    let venv = target_dir().join("py").join(name);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .map_err(|e| format!("python3 is not available: {e}"))?;
        if !out.status.success() {
            return Err(format!("python3 -m venv failed: {}", tail(&out.stderr)));
        }
    }
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", probe])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return Ok(python);
    }
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .args(packages)
        .output()
        .map_err(|e| format!("pip does not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pip install {} failed (is PyPI reachable?): {}",
            packages.join(" "),
            tail(&out.stderr)
        ));
    }
    if !ready(&python) {
        return Err(format!("after pip install, `{probe}` still fails"));
    }
    Ok(python)
}

/// The last lines of a process's output, for an error message.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL schema. Call [`TestDb::cleanup`] at the end (PostgreSQL schemas outlive the test
/// process otherwise).
pub struct TestDb {
    pub url: String,
    dir: tempfile::TempDir,
    pg: Option<PgSchema>,
}

impl TestDb {
    /// `None` when `db` is PostgreSQL and none is configured ([`missing`] was called).
    pub async fn new(db: Db) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (url, pg) = match db {
            // A directory that does not exist yet: the store must create it.
            Db::Sqlite => (
                format!(
                    "sqlite://{}",
                    dir.path().join("data").join("dtc.db").display()
                ),
                None,
            ),
            Db::Postgres => {
                let pg = PgSchema::create("dtc_test").await?;
                (pg.url.clone(), Some(pg))
            }
        };
        Some(TestDb { url, dir, pg })
    }

    /// A temporary directory that lives as long as the database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.pg
            .is_none()
            .then(|| self.dir.path().join("data").join("dtc.db"))
    }

    pub async fn cleanup(&self) {
        if let Some(pg) = &self.pg {
            pg.drop_schema().await;
        }
    }
}

/// Runs each named `async fn` twice, on SQLite and on PostgreSQL, as `sqlite::<name>` and
/// `postgres::<name>` tests.
///
/// - `on_both_databases!(a, b)` calls `a(Db)`.
/// - `on_both_databases!(with setup; a, b)` calls `setup(Db).await -> Option<Env>` (`None`:
///   skipped), then `a(&env).await`, then `env.cleanup().await`.
#[macro_export]
macro_rules! on_both_databases {
    (with $setup:ident; $($name:ident),+ $(,)?) => {
        $crate::on_both_databases!(@mods $($name),+ => |db, name| {
            let Some(env) = super::$setup(db).await else { return };
            name(&env).await;
            env.cleanup().await;
        });
    };
    ($($name:ident),+ $(,)?) => {
        $crate::on_both_databases!(@mods $($name),+ => |db, name| { name(db).await; });
    };
    (@mods $($name:ident),+ => |$db:ident, $f:ident| $body:block) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let ($db, $f) = ($crate::Db::Sqlite, super::$name);
                    $body
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let ($db, $f) = ($crate::Db::Postgres, super::$name);
                    $body
                }
            )+
        }
    };
}

/// Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`): a
/// chromedriver on a free port and one browser session, both gone when this is dropped.
pub use fantoccini;

pub struct Browser {
    pub client: fantoccini::Client,
    driver: std::process::Child,
}

impl Browser {
    /// `None` (after [`missing`]) when chromedriver or Chromium is not installed.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let (Some(chromium), Ok(_)) = (
            chromium,
            Command::new("chromedriver").arg("--version").output(),
        ) else {
            missing("headless Chromium (apt-get install chromium chromium-driver)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}")],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let plain_http = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(plain_http)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Some(Browser { client, driver }),
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("no WebDriver session with headless Chromium: {e}")
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }

    /// A screenshot (PNG) into `target/screenshots/<name>.png`, for a person to look at.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.screenshot_in("screenshots", name).await
    }

    /// A screenshot (PNG) into `target/<folder>/<name>.png`.
    pub async fn screenshot_in(&self, folder: &str, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = target_dir().join(folder);
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }
}

impl Browser {
    /// End the browser session, then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `GET url` (with `token` as a bearer token, if any): its JSON body. Panics on a transport
/// error or a body that is not JSON, saying which URL.
pub async fn get_json(http: &reqwest::Client, url: &str, token: Option<&str>) -> serde_json::Value {
    let mut req = http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}
