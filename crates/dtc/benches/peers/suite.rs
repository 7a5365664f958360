//! The peer suite: dtc beside the tools users pick today, against the simulator with its limits
//! off, each case for the same time, the cases taking turns round after round; medians and the
//! ratio to the floor (a bare HTTP loop hitting the simulator directly) are printed. Then the
//! same tools at DingTalk's quota (20 calls a second per app and API): goodput and how many
//! answers were "throttled". Used by `cargo bench -p dtc --bench peers` (the full run) and by
//! `tests/peers_smoke.rs` (a fraction of a second per case, so the suite cannot rot).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dingtalk::robot::Message;
use dingtalk::{AppClient, AppCredentials, Client, ClientConfig, OpenConversationId, RobotCode};
use dingtalk_sim::{
    AppFixture, Fixture, GroupFixture, Limits, SANDBOX_APP_KEY, SANDBOX_APP_SECRET,
    SANDBOX_OPS_GROUP, SANDBOX_WEBHOOK_SECRET, SANDBOX_WEBHOOK_TOKEN, SimHandle, Simulator,
};
use serde_json::{Value, json};

const TOKEN: &str = "bench-token-0123456789abcdef";
const CONTENT: &str = "peer benchmark";

/// How long and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each case runs this long per round.
    pub seconds: f64,
    pub rounds: usize,
    /// Concurrent requests of the HTTP cases (the wrk: 16 connections).
    pub concurrency: usize,
    /// Threads of the Python peers.
    pub python_threads: usize,
    /// `dtc send` processes run one after the other per round (at most).
    pub oneshots: usize,
    /// Seconds of the quota section's cases.
    pub quota_seconds: f64,
    /// Seconds of the fixed-rate latency case (1,000 requests/s).
    pub latency_seconds: f64,
    /// Where the Python peers' virtual environment is made; `None` leaves them out.
    pub python: Option<PathBuf>,
    /// How cost grows: REST sync and async over this many connections (one app each)…
    pub connections: Vec<usize>,
    /// …async sends spread over this many groups…
    pub groups: usize,
    /// …and a backlog of this many queued deliveries.
    pub backlog: usize,
    /// Run only the cases and sections whose name holds this (the floor always runs), e.g.
    /// to profile one path.
    pub only: Option<String>,
    /// Another `dtc` binary (an earlier build) whose REST cases run beside this one's, taking
    /// turns in the same run: before and after on the same noisy machine.
    pub baseline: Option<PathBuf>,
    /// How to start the relay case's server as a process of its own (a program and its
    /// arguments, to which the simulator's base URL and a port are added); `None` runs it in
    /// the driver's process (the smoke test), where its CPU and memory are not its own.
    pub relay: Option<(PathBuf, Vec<String>)>,
}

impl Options {
    fn wants(&self, case: &str) -> bool {
        self.only.as_ref().is_none_or(|o| case.contains(o.as_str()))
    }

    pub fn full(python: Option<PathBuf>) -> Self {
        Options {
            seconds: 5.0,
            rounds: 3,
            concurrency: 16,
            python_threads: 8,
            oneshots: 100,
            quota_seconds: 10.0,
            latency_seconds: 10.0,
            python,
            connections: vec![1, 10, 100],
            groups: 1000,
            backlog: 100_000,
            only: None,
            baseline: None,
            relay: None,
        }
    }

    /// A few hundred messages a case.
    pub fn smoke(python: Option<PathBuf>) -> Self {
        Options {
            seconds: 0.4,
            rounds: 1,
            concurrency: 4,
            python_threads: 2,
            oneshots: 3,
            quota_seconds: 1.5,
            latency_seconds: 0.3,
            python,
            connections: vec![1, 3],
            groups: 20,
            backlog: 300,
            only: None,
            baseline: None,
            relay: None,
        }
    }
}

/// One case's result in one round.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub sent: u64,
    pub errors: u64,
    pub throttled: u64,
    pub seconds: f64,
    /// CPU seconds of the process doing the work (not the simulator), when it is its own.
    pub cpu_s: Option<f64>,
    /// Its resident memory at the end (MB).
    pub rss_mb: Option<f64>,
    /// Paced cases: messages a second between the simulator's first and last receipt — the
    /// sender's own pace, without the time to start it and to see that it finished.
    pub steady_rate: Option<f64>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.seconds.max(1e-9)
    }
    /// Records process `pid`'s CPU seconds since it had used `cpu_before`, and its memory now.
    fn used_since(&mut self, pid: u32, cpu_before: f64) {
        self.cpu_s = Some(cpu_seconds(pid) - cpu_before);
        self.rss_mb = Some(rss_mb(pid));
    }

    pub fn cpu_per_10k(&self) -> Option<f64> {
        self.cpu_s
            .filter(|_| self.sent > 0)
            .map(|c| c * 10_000.0 / self.sent as f64)
    }
}

/// Every case's samples, in the order they were first run.
#[derive(Debug, Default)]
pub struct Report {
    pub cases: Vec<(String, Vec<Sample>)>,
    pub quota: Vec<(String, Sample)>,
    pub idle_rss_mb: f64,
    /// At a fixed rate: (p50, p99) in ms of the simulator hit directly and of dtc REST sync.
    pub latency: Option<Latency>,
    /// How cost grows (one run each).
    pub growth: Vec<(String, Sample)>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub rate: f64,
    pub requests: usize,
    pub direct: (f64, f64),
    pub dtc: (f64, f64),
    /// Requests that failed (either path).
    pub failed: usize,
}

impl Report {
    fn add(&mut self, case: &str, s: Sample) {
        match self.cases.iter_mut().find(|(c, _)| c == case) {
            Some((_, v)) => v.push(s),
            None => self.cases.push((case.to_owned(), vec![s])),
        }
    }

    /// The median sample of a case (by rate).
    pub fn median(&self, case: &str) -> Option<Sample> {
        let (_, v) = self.cases.iter().find(|(c, _)| c == case)?;
        let mut v = v.clone();
        v.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        v.get(v.len() / 2).cloned()
    }

    pub fn table(&self) -> String {
        let floor = self
            .cases
            .first()
            .and_then(|(c, _)| self.median(c))
            .map_or(f64::NAN, |s| s.rate());
        let mut out = String::from(
            "| case | sends/s (median) | ratio to floor | CPU s / 10,000 | RSS MB |\n|---|---|---|---|---|\n",
        );
        for (case, _) in &self.cases {
            let s = self.median(case).unwrap_or_default();
            out.push_str(&format!(
                "| {case} | {:.0} | {:.3} | {} | {} |\n",
                s.rate(),
                s.rate() / floor,
                s.cpu_per_10k().map_or("—".into(), |c| format!("{c:.2}")),
                s.rss_mb.map_or("—".into(), |r| format!("{r:.1}")),
            ));
        }
        out.push_str(&format!(
            "\n`dtc serve` idle RSS: {:.1} MB\n",
            self.idle_rss_mb
        ));
        if !self.quota.is_empty() {
            out.push_str("\n| at DingTalk's quota | delivered | throttled answers | goodput /s | first to last message /s |\n|---|---|---|---|---|\n");
            for (case, s) in &self.quota {
                out.push_str(&format!(
                    "| {case} | {} | {} | {:.1} | {} |\n",
                    s.sent,
                    s.throttled,
                    s.rate(),
                    s.steady_rate.map_or("—".into(), |r| format!("{r:.2}")),
                ));
            }
        }
        if let Some(l) = &self.latency {
            out.push_str(&format!(
                "\n| at {:.0} requests/s ({} each) | p50 ms | p99 ms |\n|---|---|---|\n\
                 | the simulator directly | {:.2} | {:.2} |\n| dtc REST sync | {:.2} | {:.2} |\n\
                 | **added by dtc** | {:.2} | **{:.2}** |\n",
                l.rate,
                l.requests,
                l.direct.0,
                l.direct.1,
                l.dtc.0,
                l.dtc.1,
                l.dtc.0 - l.direct.0,
                l.dtc.1 - l.direct.1,
            ));
        }
        if !self.growth.is_empty() {
            out.push_str(
                "\n| how cost grows | sends/s | CPU s / 10,000 | RSS MB |\n|---|---|---|---|\n",
            );
            for (case, s) in &self.growth {
                out.push_str(&format!(
                    "| {case} | {:.0} | {} | {} |\n",
                    s.rate(),
                    s.cpu_per_10k().map_or("—".into(), |c| format!("{c:.2}")),
                    s.rss_mb.map_or("—".into(), |r| format!("{r:.1}")),
                ));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("\n- {n}"));
        }
        out
    }
}

/// Starts `op` at a fixed `rate` (open loop: a slow answer does not delay the next request)
/// for `seconds`; every request's time, and how many failed.
async fn at_rate<F, Fut>(rate: f64, seconds: f64, op: F) -> (Vec<Duration>, usize)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let n = (rate * seconds) as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut running = Vec::with_capacity(n);
    for _ in 0..n {
        tick.tick().await;
        let fut = op();
        running.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = fut.await;
            (t.elapsed(), ok)
        }));
    }
    let (mut times, mut failed) = (Vec::with_capacity(n), 0);
    for r in running {
        let (t, ok) = r.await.expect("request task");
        times.push(t);
        failed += usize::from(!ok);
    }
    (times, failed)
}

fn p50_p99(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.99))
}

/// CPU seconds (user + system) a process has used, from `/proc`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; here 0-based after the state field (3rd).
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `op` from `concurrency` tasks for `seconds`; counts what it reports.
async fn for_a_while<F, Fut>(seconds: f64, concurrency: usize, op: F) -> Sample
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    repeat(seconds, u64::MAX, concurrency, op).await
}

/// Runs `op` from `concurrency` tasks until `seconds` passed or `most` operations started.
async fn repeat<F, Fut>(seconds: f64, most: u64, concurrency: usize, op: F) -> Sample
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let started = Arc::new(AtomicU64::new(0));
    let (sent, errors, throttled) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let op = Arc::new(op);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, sent, errors, throttled, started) = (
                op.clone(),
                sent.clone(),
                errors.clone(),
                throttled.clone(),
                started.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < until && started.fetch_add(1, Ordering::Relaxed) < most {
                    let counter = match op().await {
                        Outcome::Sent => &sent,
                        Outcome::Throttled => &throttled,
                        Outcome::Failed => &errors,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    Sample {
        sent: sent.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        throttled: throttled.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        ..Sample::default()
    }
}

pub enum Outcome {
    Sent,
    Throttled,
    Failed,
}

/// Sends `req` and reads its whole answer.
async fn answered(req: reqwest::RequestBuilder) -> Outcome {
    match req.send().await {
        Ok(r) => {
            let o = outcome(r.status());
            let _ = r.bytes().await;
            o
        }
        Err(_) => Outcome::Failed,
    }
}

fn outcome(status: reqwest::StatusCode) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Sent,
        429 => Outcome::Throttled,
        _ => Outcome::Failed,
    }
}

/// The relay case's server: axum in front of the `dingtalk` crate — a JSON request in, one
/// DingTalk call out, its answer back — with none of `dtc serve`'s work (no token check,
/// validation, delivery log, rate limits or metrics). Both hops, on the same stack: the most a
/// REST sync path can do on this machine, and so the ceiling of `dtc serve`'s.
pub async fn relay(listener: tokio::net::TcpListener, dingtalk_base: String) {
    #[derive(serde::Deserialize)]
    struct Send {
        group_chat_id: String,
        content: String,
    }
    let client = AppClient::new(
        Client::new(ClientConfig::with_base(&dingtalk_base).expect("a base URL"))
            .expect("a client"),
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
        },
    );
    let send = move |axum::Json(s): axum::Json<Send>| async move {
        let sent = client
            .send_group_message(
                &RobotCode::new(SANDBOX_APP_KEY),
                &OpenConversationId::new(s.group_chat_id),
                &Message::Text { content: s.content },
            )
            .await;
        match sent {
            Ok(r) => Ok(axum::Json(r)),
            Err(e) => Err((axum::http::StatusCode::BAD_GATEWAY, e.to_string())),
        }
    };
    let app = axum::Router::new().route("/send", axum::routing::post(send));
    axum::serve(listener, app).await.expect("the relay serves");
}

/// The relay, started as [`Options::relay`] says; its URL and, as its own process, its pid.
async fn start_relay(
    o: &Options,
    dingtalk_base: &str,
    http: &reqwest::Client,
) -> (String, Option<Server>) {
    let Some((program, args)) = &o.relay else {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/send", listener.local_addr().unwrap());
        tokio::spawn(relay(listener, dingtalk_base.to_owned()));
        return (url, None);
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Server(
        Command::new(program)
            .args(args)
            .args([dingtalk_base, &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("the relay starts"),
    );
    let url = format!("http://127.0.0.1:{port}/send");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(&url).send().await.is_err() {
        assert!(Instant::now() < deadline, "the relay did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (url, Some(process))
}

/// What the cases share: the simulator, a running `dtc serve`, clients.
struct World {
    sim: SimHandle,
    dtc: PathBuf,
    /// `dtc serve` with its rate limits off (the throughput cases)…
    server: Serve,
    /// …and with them on, as users run it (the quota cases).
    paced: Serve,
    /// The baseline build's `dtc serve`, limits off, if one was given.
    baseline: Option<Serve>,
    /// The relay case's URL, and its process when it has one.
    relay: (String, Option<Server>),
    http: reqwest::Client,
    client: AppClient,
    token: String,
}

struct Serve {
    process: Server,
    api: String,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// A new `dtc serve` with the connection `ops` (the sandbox app).
    async fn start(
        dtc: &Path,
        dingtalk: &str,
        enforce_limits: bool,
        http: &reqwest::Client,
    ) -> Serve {
        let serve = Serve::spawn(
            dtc,
            dingtalk,
            enforce_limits,
            http,
            tempfile::tempdir().unwrap(),
        )
        .await;
        serve
            .connect(http, "ops", SANDBOX_APP_KEY, SANDBOX_APP_SECRET)
            .await;
        serve
    }

    /// `dtc serve` on the data in `dir`, once it answers.
    async fn spawn(
        dtc: &Path,
        dingtalk: &str,
        enforce_limits: bool,
        http: &reqwest::Client,
        dir: tempfile::TempDir,
    ) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Server(
            Command::new(dtc)
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(dir.path())
                .args([
                    "--dingtalk-api-base",
                    dingtalk,
                    "--dingtalk-oapi-base",
                    dingtalk,
                ])
                .env("DTC_API_TOKEN", TOKEN)
                // As users run it: the default level (a line per send), into a file.
                .env_remove("DTC_LOG")
                .env("DTC_ENFORCE_RATE_LIMITS", enforce_limits.to_string())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("serve.log")).expect("a log file"))
                .spawn()
                .expect("dtc serve starts"),
        );
        let api = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.get(format!("{api}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "dtc serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Serve {
            process,
            api,
            _dir: dir,
        }
    }

    /// Creates connection `name` for an app (its robot code is its app key).
    async fn connect(&self, http: &reqwest::Client, name: &str, app_key: &str, secret: &str) {
        let resp = http
            .post(format!("{}/v1/connections", self.api))
            .bearer_auth(TOKEN)
            .json(&json!({"name": name, "app_key": app_key,
                "app_secret": secret, "robot_code": app_key}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }

    /// Stops it as an operator would (SIGTERM: leases are released) and hands back its data.
    fn stop(self) -> tempfile::TempDir {
        let Serve {
            mut process, _dir, ..
        } = self;
        // SAFETY: signals our own child, which has not been waited for yet.
        unsafe { libc::kill(process.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = process.0.wait();
        _dir
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

impl World {
    async fn start(dtc: &Path, o: &Options) -> World {
        // The sandbox, plus an app (and its group) for every growth connection after the first,
        // and the groups of the growth cases in the sandbox app.
        let mut fixture = Fixture::sandbox();
        let apps: Vec<AppFixture> = (1..o.connections.iter().copied().max().unwrap_or(1))
            .map(|i| {
                let (key, secret) = growth_app(i);
                AppFixture {
                    robot_code: key.clone(),
                    app_key: key,
                    app_secret: secret,
                    groups: vec![GroupFixture {
                        open_conversation_id: growth_group(i),
                        title: format!("growth {i}"),
                    }],
                    users: Vec::new(),
                }
            })
            .collect();
        fixture.apps.extend(apps);
        let sandbox = fixture
            .apps
            .iter_mut()
            .find(|a| a.app_key == SANDBOX_APP_KEY)
            .expect("the sandbox app");
        sandbox.groups.extend((0..o.groups).map(|i| GroupFixture {
            open_conversation_id: growth_group(i + 100_000),
            title: format!("group {i}"),
        }));
        let sim = Simulator::start(fixture, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator starts");
        let base = sim.base_url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .unwrap();
        let server = Serve::start(dtc, &base, false, &http).await;
        let paced = Serve::start(dtc, &base, true, &http).await;
        let baseline = match &o.baseline {
            Some(b) => Some(Serve::start(b, &base, false, &http).await),
            None => None,
        };
        let relay = start_relay(o, &base, &http).await;
        let client = AppClient::new(
            Client::new(ClientConfig::with_base(&base).unwrap()).unwrap(),
            AppCredentials {
                app_key: SANDBOX_APP_KEY.into(),
                app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
            },
        );
        let token: Value = http
            .post(format!("{base}/v1.0/oauth2/accessToken"))
            .json(&json!({"appKey": SANDBOX_APP_KEY, "appSecret": SANDBOX_APP_SECRET}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        World {
            sim,
            dtc: dtc.to_owned(),
            server,
            paced,
            baseline,
            relay,
            http,
            client,
            token: token["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    fn unlimited(&self, on: bool) {
        self.sim.set_limits(if on {
            Limits {
                app_api_qps: 0,
                webhook_per_minute: 0,
                ..Limits::default()
            }
        } else {
            Limits::default()
        });
    }

    /// The floor: one plain HTTP request per message, straight to the simulator.
    async fn floor(&self, o: &Options) -> Sample {
        let (http, token) = (self.http.clone(), self.token.clone());
        let url = format!("{}/v1.0/robot/groupMessages/send", self.sim.base_url());
        let body = json!({"robotCode": SANDBOX_APP_KEY, "openConversationId": SANDBOX_OPS_GROUP,
            "msgKey": "sampleText", "msgParam": json!({"content": CONTENT}).to_string()});
        for_a_while(o.seconds, o.concurrency, move || {
            let req = http
                .post(&url)
                .header("x-acs-dingtalk-access-token", &token)
                .json(&body);
            async move {
                match req.send().await {
                    Ok(r) => outcome(r.status()),
                    Err(_) => Outcome::Failed,
                }
            }
        })
        .await
    }

    /// The `dingtalk` crate as a library.
    async fn library(&self, o: &Options) -> Sample {
        let client = self.client.clone();
        for_a_while(o.seconds, o.concurrency, move || {
            let client = client.clone();
            async move {
                let r = client
                    .send_group_message(
                        &RobotCode::new(SANDBOX_APP_KEY),
                        &OpenConversationId::new(SANDBOX_OPS_GROUP),
                        &Message::Text {
                            content: CONTENT.into(),
                        },
                    )
                    .await;
                match r {
                    Ok(_) => Outcome::Sent,
                    Err(e) if e.class() == dingtalk::ErrorClass::Throttled => Outcome::Throttled,
                    Err(_) => Outcome::Failed,
                }
            }
        })
        .await
    }

    /// The relay: what [`World::rest`] sends, to [`relay`].
    async fn relayed(&self, o: &Options) -> Sample {
        let (http, url) = (self.http.clone(), self.relay.0.clone());
        let body = json!({"group_chat_id": SANDBOX_OPS_GROUP, "content": CONTENT});
        let pid = self.relay.1.as_ref().map(|p| p.0.id());
        let cpu = pid.map(cpu_seconds);
        let mut s = for_a_while(o.seconds, o.concurrency, move || {
            answered(http.post(&url).json(&body))
        })
        .await;
        if let (Some(pid), Some(cpu)) = (pid, cpu) {
            s.used_since(pid, cpu);
        }
        s
    }

    /// `POST /v1/connections/{c}/actions/send_text`, answered once DingTalk accepted
    /// (or, with `respond-async`, once queued: the accept rate).
    async fn rest(&self, o: &Options, asynchronous: bool, seconds: f64) -> Sample {
        self.rest_on(&self.server, o, asynchronous, seconds).await
    }

    async fn rest_on(
        &self,
        serve: &Serve,
        o: &Options,
        asynchronous: bool,
        seconds: f64,
    ) -> Sample {
        let ops = [("ops".to_owned(), SANDBOX_OPS_GROUP.to_owned())];
        self.rest_to(serve, &ops, asynchronous, seconds, u64::MAX, o.concurrency)
            .await
    }

    /// Like [`World::rest`], the requests taking the (connection, group) `targets` in turn,
    /// to `serve`, until `seconds` passed or `most` were sent.
    async fn rest_to(
        &self,
        serve: &Serve,
        targets: &[(String, String)],
        asynchronous: bool,
        seconds: f64,
        most: u64,
        concurrency: usize,
    ) -> Sample {
        let targets: Arc<Vec<(String, Value)>> = Arc::new(
            targets
                .iter()
                .map(|(c, g)| {
                    (
                        format!("{}/v1/connections/{c}/actions/send_text", serve.api),
                        json!({"group_chat_id": g, "content": CONTENT}),
                    )
                })
                .collect(),
        );
        let next = Arc::new(AtomicU64::new(0));
        let http = self.http.clone();
        let pid = serve.pid();
        let cpu = cpu_seconds(pid);
        let mut s = repeat(seconds, most, concurrency, move || {
            let i = next.fetch_add(1, Ordering::Relaxed) as usize % targets.len();
            let (url, body) = &targets[i];
            let mut req = http.post(url).bearer_auth(TOKEN).json(body);
            if asynchronous {
                req = req.header("Prefer", "respond-async");
            }
            answered(req)
        })
        .await;
        s.used_since(pid, cpu);
        s
    }

    /// `n` async sends to the paced server, then the time until DingTalk has them all.
    async fn paced(&self, n: usize) -> Sample {
        let url = format!("{}/v1/connections/ops/actions/send_text", self.paced.api);
        let body = json!({"group_chat_id": SANDBOX_OPS_GROUP, "content": CONTENT});
        let before = self.accepted();
        let start = Instant::now();
        let mut accepted = 0u64;
        for _ in 0..n {
            let r = self
                .http
                .post(&url)
                .bearer_auth(TOKEN)
                .header("Prefer", "respond-async")
                .json(&body)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 202) {
                accepted += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_secs_f64(n as f64 / 20.0 * 2.0 + 30.0);
        while self.accepted() < before + accepted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let delivered = self.accepted() - before;
        Sample {
            sent: delivered,
            errors: n as u64 - delivered,
            seconds: start.elapsed().as_secs_f64(),
            cpu_s: None,
            rss_mb: Some(rss_mb(self.paced.pid())),
            steady_rate: self.steady_rate(delivered as usize),
            ..Sample::default()
        }
    }

    /// (n − 1) / the time from the first to the last of the simulator's last `n` messages.
    fn steady_rate(&self, n: usize) -> Option<f64> {
        let messages = self.sim.messages();
        let last_n = &messages[messages.len().saturating_sub(n)..];
        let at = |i: usize| {
            chrono::DateTime::parse_from_rfc3339(&last_n.get(i)?.received_at)
                .ok()
                .map(|t| t.timestamp_millis())
        };
        let span_ms = at(last_n.len().checked_sub(1)?)? - at(0)?;
        (last_n.len() > 1 && span_ms > 0)
            .then(|| (last_n.len() - 1) as f64 / (span_ms as f64 / 1000.0))
    }

    /// Added latency: the same fixed rate straight to the simulator and through dtc REST sync.
    async fn latency(&self, rate: f64, seconds: f64) -> Latency {
        let direct_url = format!("{}/v1.0/robot/groupMessages/send", self.sim.base_url());
        let direct_body = json!({"robotCode": SANDBOX_APP_KEY, "openConversationId": SANDBOX_OPS_GROUP,
            "msgKey": "sampleText", "msgParam": json!({"content": CONTENT}).to_string()});
        let dtc_url = format!("{}/v1/connections/ops/actions/send_text", self.server.api);
        let dtc_body = json!({"group_chat_id": SANDBOX_OPS_GROUP, "content": CONTENT});
        let ok =
            |r: Result<reqwest::Response, reqwest::Error>| r.is_ok_and(|r| r.status().is_success());
        // Two rounds, the paths taking turns; the first warms both up and is not reported
        // (one slow moment of the shared machine otherwise decides a whole p99).
        let mut last = None;
        for _ in 0..2 {
            let (direct, failed_direct) = at_rate(rate, seconds, || {
                let req = self
                    .http
                    .post(&direct_url)
                    .header("x-acs-dingtalk-access-token", &self.token)
                    .json(&direct_body);
                async move { ok(req.send().await) }
            })
            .await;
            let (dtc, failed_dtc) = at_rate(rate, seconds, || {
                let req = self.http.post(&dtc_url).bearer_auth(TOKEN).json(&dtc_body);
                async move { ok(req.send().await) }
            })
            .await;
            self.sim.clear_messages();
            last = Some(Latency {
                rate,
                requests: direct.len(),
                direct: p50_p99(direct),
                dtc: p50_p99(dtc),
                failed: failed_direct + failed_dtc,
            });
        }
        last.expect("two rounds ran")
    }

    /// Async accepts, then the time until the simulator has every one: the drain rate.
    async fn rest_async(&self, o: &Options, serve: &Serve) -> (Sample, Sample) {
        let ops = [("ops".to_owned(), SANDBOX_OPS_GROUP.to_owned())];
        self.accept_and_drain(serve, &ops, o).await
    }

    /// [`World::rest_async`] over `targets` taken in turn.
    async fn accept_and_drain(
        &self,
        serve: &Serve,
        targets: &[(String, String)],
        o: &Options,
    ) -> (Sample, Sample) {
        let before = self.accepted();
        let pid = serve.pid();
        let cpu = cpu_seconds(pid);
        let start = Instant::now();
        let accepted = self
            .rest_to(serve, targets, true, o.seconds, u64::MAX, o.concurrency)
            .await;
        let drained = self
            .drained(
                before,
                accepted.sent,
                pid,
                cpu,
                start,
                Duration::from_secs(300),
            )
            .await;
        (accepted, drained)
    }

    /// Waits (at most `wait`) until the simulator accepted `expected` more messages than
    /// `before`; the sample of process `pid` since `cpu` and `start`.
    async fn drained(
        &self,
        before: u64,
        expected: u64,
        pid: u32,
        cpu: f64,
        start: Instant,
        wait: Duration,
    ) -> Sample {
        let deadline = Instant::now() + wait;
        while self.accepted() < before + expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivered = self.accepted() - before;
        Sample {
            sent: delivered,
            errors: expected.saturating_sub(delivered),
            seconds: start.elapsed().as_secs_f64(),
            cpu_s: Some(cpu_seconds(pid) - cpu),
            rss_mb: Some(rss_mb(pid)),
            ..Sample::default()
        }
    }

    /// Waits (at most `wait`) until `serve` has no unfinished delivery left, by its own API:
    /// after a stop, sends that were in flight go again with the same `msgUuid`, which the
    /// simulator counts once, so its counter alone cannot say when a backlog is done. `sent`
    /// is what the simulator accepted meanwhile; `errors`, deliveries that failed.
    async fn emptied(&self, serve: &Serve, pid: u32, wait: Duration) -> Sample {
        let (before, cpu, start) = (self.accepted(), cpu_seconds(pid), Instant::now());
        let deadline = start + wait;
        let (mut seen, mut moved_at) = (before, start);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.accepted();
            if now != seen {
                (seen, moved_at) = (now, Instant::now());
                continue;
            }
            // Quiet for a moment: ask the server (a listing scans the log, so not often).
            if moved_at.elapsed() > Duration::from_millis(500) {
                let mut unfinished = false;
                for status in ["queued", "in_flight", "retrying"] {
                    unfinished |= !self.deliveries(serve, status).await.is_empty();
                }
                if !unfinished || Instant::now() > deadline {
                    break;
                }
                moved_at = Instant::now();
            }
        }
        Sample {
            sent: seen - before,
            errors: self.deliveries(serve, "failed").await.len() as u64,
            seconds: moved_at.duration_since(start).as_secs_f64(),
            cpu_s: Some(cpu_seconds(pid) - cpu),
            rss_mb: Some(rss_mb(pid)),
            ..Sample::default()
        }
    }

    /// Up to 100 of `serve`'s deliveries in `status`.
    async fn deliveries(&self, serve: &Serve, status: &str) -> Vec<Value> {
        let url = format!("{}/v1/deliveries?status={status}&limit=100", serve.api);
        let page = testkit::get_json(&self.http, &url, Some(TOKEN)).await;
        page["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("not a page of deliveries: {page}"))
    }

    /// How cost grows with connections, groups and a backlog (one run each).
    async fn growth(&self, o: &Options, report: &mut Report) {
        let mut made = 1;
        for &n in &o.connections {
            for i in made..n {
                let (key, secret) = growth_app(i);
                self.server
                    .connect(&self.http, &connection(i), &key, &secret)
                    .await;
            }
            made = made.max(n);
            let targets: Vec<(String, String)> = (0..n)
                .map(|i| match i {
                    0 => ("ops".to_owned(), SANDBOX_OPS_GROUP.to_owned()),
                    i => (connection(i), growth_group(i)),
                })
                .collect();
            // First use fetches each app's token: not part of the sample.
            self.rest_to(&self.server, &targets, false, 30.0, n as u64, 4)
                .await;
            let plural = if n == 1 { "" } else { "s" };
            let sync = self
                .rest_to(
                    &self.server,
                    &targets,
                    false,
                    o.seconds,
                    u64::MAX,
                    o.concurrency,
                )
                .await;
            report
                .growth
                .push((format!("REST sync, {n} connection{plural}"), sync));
            let (_, drain) = self.accept_and_drain(&self.server, &targets, o).await;
            report
                .growth
                .push((format!("REST async drain, {n} connection{plural}"), drain));
            self.sim.clear_messages();
        }

        let groups: Vec<(String, String)> = (0..o.groups)
            .map(|i| ("ops".to_owned(), growth_group(i + 100_000)))
            .collect();
        let (_, drain) = self.accept_and_drain(&self.server, &groups, o).await;
        report
            .growth
            .push((format!("REST async drain, {} groups", o.groups), drain));
        self.sim.clear_messages();

        // A backlog: accepted by a `dtc serve` that keeps DingTalk's quota (so it stays queued),
        // then that server stopped and started again with the limits off to drain it.
        let paced = Serve::start(&self.dtc, &self.sim.base_url(), true, &self.http).await;
        let before = self.accepted();
        let accepts = self
            .rest_to(
                &paced,
                &groups,
                true,
                600.0,
                o.backlog as u64,
                o.concurrency,
            )
            .await;
        report.growth.push((
            format!(
                "REST async accepts into a growing backlog ({} groups)",
                o.groups
            ),
            accepts.clone(),
        ));
        // Paced at the quota with the backlog queued: what a delivery costs then.
        let pid = paced.pid();
        let (cpu, start, at) = (cpu_seconds(pid), Instant::now(), self.accepted());
        tokio::time::sleep(Duration::from_secs_f64(o.seconds.max(1.0))).await;
        let paced_sample = Sample {
            sent: self.accepted() - at,
            seconds: start.elapsed().as_secs_f64(),
            cpu_s: Some(cpu_seconds(pid) - cpu),
            rss_mb: Some(rss_mb(pid)),
            ..Sample::default()
        };
        report.growth.push((
            format!(
                "at the quota with {} queued (RSS with the backlog)",
                accepts.sent
            ),
            paced_sample,
        ));
        let dir = paced.stop();
        // What the paced server delivered, up to its last in-flight sends before it stopped.
        let queued = accepts.sent - (self.accepted() - before);
        let unpaced = Serve::spawn(&self.dtc, &self.sim.base_url(), false, &self.http, dir).await;
        let pid = unpaced.pid();
        let drain = self.emptied(&unpaced, pid, Duration::from_secs(900)).await;
        report.growth.push((
            format!("drain of that backlog ({queued} queued), limits off, after a restart"),
            drain,
        ));
        drop(unpaced);
        self.sim.clear_messages();
    }

    /// `dtc send text` processes, one after the other.
    async fn oneshot(&self, o: &Options) -> Sample {
        let base = self.sim.base_url();
        let start = Instant::now();
        let mut s = Sample {
            cpu_s: Some(0.0),
            ..Sample::default()
        };
        let until = start + Duration::from_secs_f64(o.seconds);
        let mut peak_rss: f64 = 0.0;
        for _ in 0..o.oneshots {
            if Instant::now() >= until && s.sent > 0 {
                break;
            }
            let child = Command::new(&self.dtc)
                .args(["send", "text", "--dingtalk-api-base", &base])
                .args(["--app-key", SANDBOX_APP_KEY, "--group", SANDBOX_OPS_GROUP])
                .args(["--content", CONTENT])
                .env("DTC_APP_SECRET", SANDBOX_APP_SECRET)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dtc send starts");
            let (status, usage) = wait_with_usage(child);
            if status == 0 {
                s.sent += 1;
            } else {
                s.errors += 1;
            }
            s.cpu_s = s.cpu_s.map(|c| c + usage.0);
            peak_rss = peak_rss.max(usage.1);
        }
        s.seconds = start.elapsed().as_secs_f64();
        s.rss_mb = Some(peak_rss);
        s
    }

    /// A Python peer (`peers.py`), its own process: its report is its sample.
    fn python(&self, python: &Path, args: &[String]) -> Sample {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/peers.py");
        let out = Command::new(python)
            .arg(script)
            .args(args)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "peers.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap_or_else(|e| {
            panic!(
                "peers.py printed no report ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Sample {
            sent: v["sent"].as_u64().unwrap_or(0),
            errors: v["errors"].as_u64().unwrap_or(0),
            throttled: v["throttled"].as_u64().unwrap_or(0),
            seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
            cpu_s: v["cpu_s"].as_f64(),
            rss_mb: v["max_rss_mb"].as_f64(),
            steady_rate: None,
        }
    }

    /// Messages the simulator has accepted so far (cheap: its counter, not its message list).
    fn accepted(&self) -> u64 {
        self.sim.stats().accepted
    }

    fn endpoint(&self) -> String {
        self.sim.base_url().trim_start_matches("http://").to_owned()
    }

    fn official_sdk(&self, python: &Path, seconds: f64, threads: usize) -> Sample {
        self.python(
            python,
            &[
                "alibabacloud".into(),
                self.endpoint(),
                SANDBOX_APP_KEY.into(),
                SANDBOX_APP_SECRET.into(),
                SANDBOX_OPS_GROUP.into(),
                seconds.to_string(),
                threads.to_string(),
            ],
        )
    }

    fn apprise(&self, python: &Path, seconds: f64, threads: usize) -> Sample {
        self.python(
            python,
            &[
                "apprise".into(),
                self.endpoint(),
                SANDBOX_WEBHOOK_TOKEN.into(),
                SANDBOX_WEBHOOK_SECRET.into(),
                seconds.to_string(),
                threads.to_string(),
            ],
        )
    }

    fn chatbot(&self, python: &Path, seconds: f64, threads: usize, limiter: &str) -> Sample {
        self.python(
            python,
            &[
                "chatbot".into(),
                self.endpoint(),
                SANDBOX_WEBHOOK_TOKEN.into(),
                SANDBOX_WEBHOOK_SECRET.into(),
                seconds.to_string(),
                threads.to_string(),
                limiter.into(),
            ],
        )
    }
}

/// The name of growth connection `i` (connection 0 is `ops`).
fn connection(i: usize) -> String {
    format!("c{i}")
}

/// The app key and secret of growth app `i`.
fn growth_app(i: usize) -> (String, String) {
    (
        format!("growthapp{i:03}"),
        format!("growth-secret-{i:03}-0123456789abcdef"),
    )
}

fn growth_group(i: usize) -> String {
    format!("cidGrowth{i}")
}

/// Waits for a child: its exit code, CPU seconds (from `wait4`) and the largest resident
/// memory seen while it ran (MB; sampled from `/proc`, since `ru_maxrss` would include this
/// process's own memory at fork time — Linux carries the high-water mark across exec).
fn wait_with_usage(child: Child) -> (i32, (f64, f64)) {
    let pid = child.id() as libc::pid_t;
    let mut peak: f64 = 0.0;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let rss = rss_mb(child.id());
        if rss.is_finite() {
            peak = peak.max(rss);
        }
        // SAFETY: waits (without blocking) for our own child, writing into locals of the
        // right types.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4");
        std::thread::sleep(Duration::from_micros(200));
    }
    std::mem::forget(child);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, (secs(usage.ru_utime) + secs(usage.ru_stime), peak))
}

/// Runs the suite with `dtc` as the server and CLI.
pub async fn run(o: &Options, dtc: &Path) -> Report {
    let w = World::start(dtc, o).await;
    let mut report = Report::default();
    // Idle as BENCHMARKS.md measures it: settled, after `dtc serve` handed back its start-up
    // memory (one second after it starts).
    tokio::time::sleep(Duration::from_secs(3)).await;
    report.idle_rss_mb = rss_mb(w.server.pid());
    w.unlimited(true);
    // Warm up: connections, tokens, caches.
    let warm = Options {
        seconds: 0.2,
        ..o.clone()
    };
    w.floor(&warm).await;
    w.rest(&warm, false, 0.2).await;
    w.relayed(&warm).await;
    if let Some(b) = &w.baseline {
        w.rest_on(b, &warm, false, 0.2).await;
    }

    for _ in 0..o.rounds {
        // The simulator keeps every message it accepts: it is emptied after each case.
        report.add("floor: bare HTTP loop to the simulator", w.floor(o).await);
        w.sim.clear_messages();
        let case = "dingtalk crate (library)";
        if o.wants(case) {
            report.add(case, w.library(o).await);
            w.sim.clear_messages();
        }
        let case = "ceiling: a bare relay (axum + the dingtalk crate, two hops, nothing else)";
        if o.wants(case) || o.wants("REST sync") {
            report.add(case, w.relayed(o).await);
            w.sim.clear_messages();
        }
        let case = "dtc REST sync";
        if o.wants(case) {
            report.add(case, w.rest(o, false, o.seconds).await);
            w.sim.clear_messages();
            if let Some(b) = &w.baseline {
                report.add(
                    "dtc REST sync (baseline build)",
                    w.rest_on(b, o, false, o.seconds).await,
                );
                w.sim.clear_messages();
            }
        }
        if o.wants("dtc REST async") {
            let (accepted, drained) = w.rest_async(o, &w.server).await;
            report.add("dtc REST async: accepts", accepted);
            report.add("dtc REST async: drain", drained);
            w.sim.clear_messages();
            if let Some(b) = &w.baseline {
                let (accepted, drained) = w.rest_async(o, b).await;
                report.add("dtc REST async: accepts (baseline build)", accepted);
                report.add("dtc REST async: drain (baseline build)", drained);
                w.sim.clear_messages();
            }
        }
        let case = "`dtc send` one-shot processes";
        if o.wants(case) {
            report.add(case, w.oneshot(o).await);
        }
        if let Some(py) = &o.python {
            let case = "alibabacloud-dingtalk (official SDK)";
            if o.wants(case) {
                report.add(case, w.official_sdk(py, o.seconds, o.python_threads));
                w.sim.clear_messages();
            }
            let case = "DingtalkChatbot (webhook, limiter bypassed)";
            if o.wants(case) {
                report.add(case, w.chatbot(py, o.seconds, o.python_threads, "bypass"));
                w.sim.clear_messages();
            }
            let case = "Apprise (DingTalk notifier, its 5.5 s pause bypassed)";
            if o.wants(case) {
                report.add(case, w.apprise(py, o.seconds, o.python_threads));
            }
        }
        w.sim.clear_messages();
    }

    // Added latency at 1,000 requests/s (the figure), the simulator answering at once.
    if o.wants("latency") {
        report.latency = Some(w.latency(1000.0, o.latency_seconds).await);
        w.sim.clear_messages();
    }
    if o.wants("growth") {
        w.growth(o, &mut report).await;
    }

    // At DingTalk's quota (20 a second per app and API): who stays under it, what gets through.
    w.unlimited(false);
    let n = (o.quota_seconds * 20.0) as usize;
    let mut at_quota = Vec::new();
    let throttled = |w: &World| w.sim.stats().throttled;
    if o.wants("quota") {
        // Each case starts in a fresh one-second window.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let before = throttled(&w);
        let mut s = w.paced(n).await;
        s.throttled = throttled(&w) - before;
        at_quota.push(("dtc REST async (its queue paces the app)", s));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let before = throttled(&w);
        let mut s = w
            .library(&Options {
                seconds: o.quota_seconds,
                ..o.clone()
            })
            .await;
        s.throttled = s.throttled.max(throttled(&w) - before);
        s.steady_rate = w.steady_rate(s.sent as usize);
        at_quota.push(("dingtalk crate alone (no pacing)", s));
        if let Some(py) = &o.python {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let before = throttled(&w);
            let mut s = w.official_sdk(py, o.quota_seconds, o.python_threads);
            s.throttled = s.throttled.max(throttled(&w) - before);
            s.steady_rate = w.steady_rate(s.sent as usize);
            at_quota.push(("alibabacloud-dingtalk (official SDK)", s));
        }
    }
    report.quota = at_quota
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s))
        .collect();
    report.notes.push(format!(
        "{} round(s) of {} s per case, taking turns; {} concurrent requests; Python peers with {} threads",
        o.rounds, o.seconds, o.concurrency, o.python_threads
    ));
    report
}

/// The Python peers' virtual environment (`target/py/peers`), made from PyPI if need be.
pub fn python() -> Result<PathBuf, String> {
    testkit::python_venv(
        "peers",
        &["alibabacloud-dingtalk", "DingtalkChatbot", "apprise"],
        "import alibabacloud_dingtalk.robot_1_0.client, dingtalkchatbot.chatbot, apprise",
    )
}
