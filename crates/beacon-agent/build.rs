//! Records build facts the report needs and `std` cannot give at run time: the target
//! triple, the compiler's version, and how the binary was packaged.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BEACON_RELFORM");
    let target = env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=BEACON_BUILD_TARGET={target}");
    println!("cargo:rustc-env=BEACON_BUILD_RUSTC={}", rustc_version());
    // Packaging scripts (deb, docker, tgz) set BEACON_RELFORM; a plain `cargo build` is "cargo".
    let relform = env::var("BEACON_RELFORM").unwrap_or_else(|_| "cargo".to_owned());
    println!("cargo:rustc-env=BEACON_BUILD_RELFORM={relform}");
}

/// `rustc 1.95.0 (59807616e 2026-04-14)` -> `1.95.0`; "unknown" if the compiler cannot say.
fn rustc_version() -> String {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc).arg("--version").output();
    let text = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => return "unknown".to_owned(),
    };
    text.split_whitespace()
        .nth(1)
        .unwrap_or("unknown")
        .to_owned()
}
