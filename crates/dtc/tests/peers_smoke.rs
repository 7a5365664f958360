//! The peer suite (`cargo bench -p dtc --bench peers`) in smoke mode: every case runs for a
//! fraction of a second against the simulator, so the suite cannot rot. It checks that each
//! case delivered and nothing failed, and that at DingTalk's quota dtc's queue was never
//! throttled; the numbers themselves are the full run's business (BENCHMARKS.md).

#[path = "../benches/peers/suite.rs"]
mod suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_of_the_peer_suite_runs_and_delivers() {
    let python = match suite::python() {
        Ok(p) => Some(p),
        Err(e) => {
            testkit::missing(format!("the Python peers ({e})"));
            None
        }
    };
    let with_python = python.is_some();
    let report = suite::run(
        &suite::Options::smoke(python),
        std::path::Path::new(env!("CARGO_BIN_EXE_dtc")),
    )
    .await;
    let table = report.table();
    println!("{table}");
    assert!(!table.contains("NaN"), "every ratio is measured:\n{table}");
    let expected = if with_python { 10 } else { 7 };
    assert_eq!(report.cases.len(), expected, "{:?}", report.cases);
    for (case, samples) in &report.cases {
        for s in samples {
            // A peer that paces itself (a pause left in place) shows as a handful.
            assert!(s.sent >= 3, "{case} delivered next to nothing: {s:?}");
            assert_eq!(s.errors, 0, "{case} failed: {s:?}");
        }
    }
    // How cost grows: sync and drain per connection count, the groups' drain, and the backlog's
    // accepts, paced delivery and drain after a restart, every queued delivery arriving.
    let options = suite::Options::smoke(None);
    assert_eq!(
        report.growth.len(),
        2 * options.connections.len() + 4,
        "{:?}",
        report.growth
    );
    for (case, s) in &report.growth {
        assert!(s.sent >= 3, "{case} delivered next to nothing: {s:?}");
        assert_eq!(s.errors, 0, "{case} lost or failed some: {s:?}");
    }
    let latency = report.latency.expect("the latency case ran");
    assert_eq!(latency.failed, 0, "{latency:?}");
    assert!(latency.dtc.1 >= latency.dtc.0, "{latency:?}");
    let dtc = &report.quota[0];
    assert!(dtc.1.sent > 0, "{dtc:?}");
    assert_eq!(
        dtc.1.throttled, 0,
        "dtc's queue stays under the quota: {dtc:?}"
    );
    assert_eq!(dtc.1.errors, 0, "{dtc:?}");
}
