//! The peer suite, full run: dtc's paths (REST sync and async, `dtc send`, the `dingtalk` crate)
//! beside DingTalk's official Python SDK, the DingtalkChatbot library and Apprise, against the simulator
//! with its limits off, with a bare HTTP loop to the simulator as the floor; then each at
//! DingTalk's quota. Builds what it needs (`cargo bench` builds `dtc` in release; the Python
//! peers are installed from PyPI into `target/py/peers`). Prints a Markdown table for
//! BENCHMARKS.md.
//!
//! `cargo bench -p dtc --bench peers [-- --seconds S --rounds N --no-python --only CASE
//! --baseline PATH]`
//! (`--only` runs the cases and sections whose name holds CASE, e.g. `"REST sync"`,
//! `growth`, `latency`, `quota`; the floor always runs; `--baseline` runs the REST cases of
//! another `dtc` binary too, e.g. the last commit's, taking turns with this one)

#[path = "peers/suite.rs"]
mod suite;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The relay case's server, started by the suite as a process of its own (`--relay BASE PORT`).
    if let [_, flag, base, port] = args.as_slice()
        && flag == "--relay"
    {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
            .await
            .expect("the relay's port");
        return suite::relay(listener, base.clone()).await;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let python = if args.iter().any(|a| a == "--no-python") {
        None
    } else {
        match suite::python() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("the Python peers are left out: {e}");
                None
            }
        }
    };
    let mut options = suite::Options::full(python);
    if let Some(s) = value("--seconds") {
        options.seconds = s;
    }
    if let Some(r) = value("--rounds") {
        options.rounds = r as usize;
    }
    options.only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    options.baseline = args
        .iter()
        .position(|a| a == "--baseline")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    options.relay = Some((
        std::env::current_exe().expect("this program"),
        vec!["--relay".to_owned()],
    ));
    let dtc = std::path::Path::new(env!("CARGO_BIN_EXE_dtc"));
    let report = suite::run(&options, dtc).await;
    println!("{}", report.table());
}
