//! `clusterdns check` and start-up errors: exit codes and messages that name file and key.

use std::process::Command;

use crate::harness::{BIN, TempDir, demo_dir};

fn check(config: &str) -> (i32, String, String) {
    let dir = TempDir::new();
    let path = dir.write("c.toml", config);
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace(&*path.to_string_lossy(), "FILE");
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn check_accepts_the_embedded_default() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/clusterdns.toml");
    let out = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn check_rejects_an_unknown_key_naming_file_and_key() {
    let (code, _, err) = check("[[server]]\nlisten = [\"127.0.0.1:0\"]\nlistn = []\n");
    assert_eq!(code, 2);
    assert!(
        err.starts_with("clusterdns: FILE: server[0].listn: unknown field `listn`"),
        "{err}"
    );
}

#[test]
fn check_rejects_a_bad_address_a_bad_zone_and_a_missing_directory() {
    let (code, _, err) = check("[[server]]\nlisten = [\"127.0.0.1:99999\"]\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("FILE: server[0].listen[0]: \"127.0.0.1:99999\" is not a socket address"),
        "{err}"
    );
    let (code, _, err) = check("[[server]]\nzones = [\"-bad-.\"]\n");
    assert_eq!(code, 2);
    assert!(err.contains("server[0].zones[0]"), "{err}");
    let (code, _, err) = check("[[server]]\n[server.kubernetes]\nmanifests = \"no-such-dir\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("server[0].kubernetes.manifests:") && err.contains("is not a directory"),
        "{err}"
    );
}

#[test]
fn check_reports_an_unreadable_file() {
    let out = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/clusterdns.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read config file /nonexistent/clusterdns.toml")
    );
}

#[test]
fn run_fails_clearly_when_the_port_is_taken() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = TempDir::new();
    let path = dir.write(
        "c.toml",
        &format!(
            "[[server]]\nlisten = [\"{addr}\"]\n[server.kubernetes]\nmanifests = {:?}\n",
            demo_dir()
        ),
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot bind udp {addr}")), "{err}");
}
