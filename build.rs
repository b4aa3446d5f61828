//! Records the git commit the binary was built from, for `clusterdns --version`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CLUSTERDNS_GIT_COMMIT");
    // A container build has no .git: the commit comes in as a build argument.
    if let Ok(commit) = std::env::var("CLUSTERDNS_GIT_COMMIT")
        && !commit.is_empty()
    {
        println!("cargo:rustc-env=CLUSTERDNS_GIT_COMMIT={commit}");
        return;
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CLUSTERDNS_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit or a checkout), not on every source change. In a git
    // worktree `.git` is a file and these paths do not exist: watching them would rebuild on
    // every command, so only the build script itself is watched there.
    if std::path::Path::new(".git/HEAD").is_file() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/refs/heads");
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
