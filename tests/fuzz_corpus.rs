//! Replays the checked-in fuzz inputs (`fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`)
//! through the fuzz targets' own bodies and oracles, so CI checks them without cargo-fuzz or a
//! nightly toolchain. The bodies live in `fuzz/src/lib.rs`, shared with the cargo-fuzz binaries.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod targets;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read the directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus and regression input of `target`; fails naming each input that panics.
fn replay(target: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = inputs(&root.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} holds no inputs: the seeds are missing"
    );
    let regressions = inputs(&root.join("regressions").join(target));
    let mut failures = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).expect("read a fuzz input");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| targets::run(target, &data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failures.len(),
        corpus.len() + regressions.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_test() {
    assert_eq!(
        targets::TARGETS,
        [
            "request_path",
            "zone_name",
            "config",
            "manifests",
            "upstream_reply"
        ]
    );
}

#[test]
fn request_path_corpus() {
    replay("request_path");
}

#[test]
fn zone_name_corpus() {
    replay("zone_name");
}

#[test]
fn config_corpus() {
    replay("config");
}

#[test]
fn manifests_corpus() {
    replay("manifests");
}

#[test]
fn upstream_reply_corpus() {
    replay("upstream_reply");
}
