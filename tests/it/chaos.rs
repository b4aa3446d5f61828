//! `chaos`, side by side with CoreDNS 1.11: the same Corefile, the same CH TXT questions.

use crate::differential::CoreDns;
use crate::harness::{Server, TempDir, dig};

/// dig's view of an answer without what differs run to run (ID, timings, sizes): the status
/// line, the flags and every record line.
fn shape(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            if l.contains("status:") {
                l.split(", id:").next().map(str::to_owned)
            } else if l.starts_with(";; flags:") {
                l.split(';').nth(2).map(|f| f.trim().to_owned())
            } else if !l.starts_with(';') && !l.trim().is_empty() {
                Some(l.split_whitespace().collect::<Vec<_>>().join(" "))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn chaos_answers_as_coredns_does() {
    let body = "chaos clusterdns-test alice\n";
    let coredns =
        CoreDns::with_corefile(|port| format!(".:{port} {{\n  bind 127.0.0.1\n  {body}}}\n"));
    let dir = TempDir::new();
    dir.write(
        "Corefile",
        &format!(".:0 {{\n  bind 127.0.0.1\n  {body}}}\n"),
    );
    let corefile = dir.0.join("Corefile");
    let ours = Server::spawn_corefile(dir, &corefile);
    for question in [
        ["version.bind", "TXT"],
        ["version.server", "TXT"],
        ["authors.bind", "TXT"],
    ] {
        let args = ["+norec", question[0], question[1], "CH"];
        let theirs = shape(&dig(coredns.addr, &args));
        let mine = shape(&dig(ours.addr, &args));
        assert_eq!(mine, theirs, "{question:?}");
    }
    // A CH question chaos does not answer: CoreDNS has no next plugin here and says SERVFAIL;
    // clusterdns says REFUSED, as for every name nobody here answers (README, "answers
    // differently").
    for question in [["unknown.bind", "TXT"], ["version.bind", "A"]] {
        let args = ["+norec", question[0], question[1], "CH"];
        assert!(
            dig(coredns.addr, &args).contains("status: SERVFAIL"),
            "{question:?}"
        );
        assert!(
            dig(ours.addr, &args).contains("status: REFUSED"),
            "{question:?}"
        );
    }
    // The host name, which both read from the same machine.
    let args = ["+short", "hostname.bind", "TXT", "CH"];
    assert_eq!(dig(ours.addr, &args), dig(coredns.addr, &args));
    let version = dig(ours.addr, &["+short", "version.bind", "TXT", "CH"]);
    assert_eq!(version.trim(), "\"clusterdns-test\"");
}
