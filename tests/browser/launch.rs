//! Runs a browser check of this folder from a Rust integration test: Node runs the script,
//! which drives Debian's Chromium through playwright-core (`bash scripts/setup.sh` installs
//! both); screenshots land in `artifacts/screenshots`. Included with `#[path]` by the tests
//! of every crate that has pages.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};

/// The repository's root folder (every crate's manifest sits two levels below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `tests/browser/SCRIPT` with `env`; fails the test with the script's output unless
/// it succeeds.
pub async fn run_browser_check(script: &str, env: &[(&str, &str)]) {
    let root = repo_root();
    let output = tokio::process::Command::new("node")
        .arg(Path::new("tests/browser").join(script))
        .current_dir(&root)
        .envs(env.iter().copied())
        .env("SCREENSHOT_DIR", root.join("artifacts/screenshots"))
        .output()
        .await
        .expect("run node (install the browser test packages with `bash scripts/setup.sh`)");
    assert!(
        output.status.success(),
        "browser check {script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
