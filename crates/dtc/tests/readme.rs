//! The README's copy-paste examples use the sandbox fixture's real values.

#[test]
fn readme_examples_use_the_sandbox_fixture_values() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root");
    for (what, value) in [
        ("app key", dingtalk_sim::SANDBOX_APP_KEY),
        ("app secret", dingtalk_sim::SANDBOX_APP_SECRET),
        ("Ops group", dingtalk_sim::SANDBOX_OPS_GROUP),
        ("Dev group", dingtalk_sim::SANDBOX_DEV_GROUP),
    ] {
        assert!(
            readme.contains(value),
            "README does not show the sandbox {what} `{value}`"
        );
    }
    // A longer string that merely starts with the secret would still match above.
    assert!(
        !readme.contains(&format!("{}0", dingtalk_sim::SANDBOX_APP_SECRET)),
        "README shows a wrong sandbox secret"
    );
}
