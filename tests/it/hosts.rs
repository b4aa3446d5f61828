//! `[server.hosts]`: the real binary serving a hosts file and inline entries (bytes checked:
//! rcode, AA, answers, TTL), picking up an edit within `reload`, keeping its entries when the
//! file goes; its memory for 100,000 lines; and the same hosts data and Corefile answered by a
//! real CoreDNS 1.11 alike (clusterdns runs the Corefile with `--corefile`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::{BIN, Server, TempDir, raw_udp, request_bytes};
use crate::upstream::FakeUpstream;

const HOSTS: &str = "# a hosts file\n\
    10.0.0.1   web.example.org   # the first\n\
    10.0.0.2   web.example.org both.example.org\n\
    ::2        both.example.org\n\
    fd00::1    v6only.example.org\n\
    not-an-ip  skipped.example.org\n";

/// rcode, AA (read from the header bytes) and the answers as `name ttl TYPE data`, in order.
fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> (u8, bool, Vec<String>) {
    let reply = raw_udp(
        addr,
        &request_bytes(name, qtype, Some(1232)),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|| panic!("no reply to {name} {qtype}"));
    assert_eq!(&reply[..2], [0x12, 0x34], "id");
    let (aa, rcode) = (reply[2] & 0x04 != 0, reply[3] & 0x0f);
    let m = Message::from_vec(&reply).unwrap();
    let answers = m
        .answers
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect();
    (rcode, aa, answers)
}

const NOERROR: u8 = 0;
const SERVFAIL: u8 = 2;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn config(hosts: &Path, upstream: SocketAddr, reload: &str) -> String {
    format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\nloadbalance = false\n\
         [server.hosts]\nfile = {:?}\nentries = [\"10.9.9.9 inline.example.org web.example.org\"]\n\
         ttl = 77\nreload = {reload:?}\nfallthrough = [\"fall.example.org\"]\n\
         [server.forward]\nto = [\"{upstream}\"]\n",
        hosts.display().to_string()
    )
}

/// Polls `check` every 100 ms until it holds; fails after `within`.
fn within(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_hosts_file_and_inline_entries_are_served_as_coredns_serves_them() {
    let up = FakeUpstream::start();
    up.add_a("elsewhere.fall.example.org.", 30, "192.0.2.7");
    let files = TempDir::new();
    let hosts = files.write("hosts", HOSTS);
    let s = Server::with_config(&config(&hosts, up.addr, "5s"));
    let a = s.addr;
    assert_eq!(
        ask(a, "web.example.org", RecordType::A),
        (
            NOERROR,
            true,
            strings(&[
                "web.example.org. 77 A 10.0.0.1",
                "web.example.org. 77 A 10.0.0.2",
                "web.example.org. 77 A 10.9.9.9"
            ])
        ),
        "the file's entries in order, then the inline one"
    );
    assert_eq!(
        ask(a, "Both.Example.ORG", RecordType::AAAA),
        (NOERROR, true, strings(&["Both.Example.ORG. 77 AAAA ::2"]))
    );
    // A known name without records of the type: NODATA, authoritative, no SOA.
    assert_eq!(
        ask(a, "v6only.example.org", RecordType::A),
        (NOERROR, true, vec![])
    );
    assert_eq!(
        ask(a, "web.example.org", RecordType::TXT),
        (NOERROR, true, vec![])
    );
    // Unknown: SERVFAIL as CoreDNS's hosts, or the next plugin where fallthrough covers it.
    assert_eq!(
        ask(a, "skipped.example.org", RecordType::A),
        (SERVFAIL, false, vec![])
    );
    assert_eq!(
        ask(a, "elsewhere.fall.example.org", RecordType::A),
        (
            NOERROR,
            false,
            strings(&["elsewhere.fall.example.org. 30 A 192.0.2.7"])
        )
    );
    assert_eq!(
        ask(a, "2.0.0.10.in-addr.arpa", RecordType::PTR),
        (
            NOERROR,
            true,
            strings(&[
                "2.0.0.10.in-addr.arpa. 77 PTR web.example.org.",
                "2.0.0.10.in-addr.arpa. 77 PTR both.example.org."
            ])
        )
    );
    let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    assert_eq!(
        ask(a, v6, RecordType::PTR),
        (
            NOERROR,
            true,
            vec![format!("{v6}. 77 PTR v6only.example.org.")]
        )
    );
}

#[test]
fn an_edit_applies_within_the_reload_interval_and_a_deleted_file_keeps_its_entries() {
    let up = FakeUpstream::start();
    let files = TempDir::new();
    let hosts = files.write("hosts", HOSTS);
    let s = Server::with_config(&config(&hosts, up.addr, "1s"));
    let web = || ask(s.addr, "web.example.org", RecordType::A).2;
    assert_eq!(web().len(), 3);
    files.write(
        "hosts",
        "10.0.0.5 web.example.org\n10.0.0.6 new.example.org\n",
    );
    let edited = Instant::now();
    within(Duration::from_secs(5), "the edit applies", || {
        web()
            == [
                "web.example.org. 77 A 10.0.0.5",
                "web.example.org. 77 A 10.9.9.9",
            ]
    });
    let took = edited.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "reload 1s took {took:?}"
    );
    std::fs::remove_file(&hosts).unwrap();
    within(Duration::from_secs(5), "the missing file is logged", || {
        s.stderr().contains("cannot read the hosts file")
    });
    assert_eq!(
        ask(s.addr, "new.example.org", RecordType::A),
        (NOERROR, true, strings(&["new.example.org. 77 A 10.0.0.6"])),
        "the entries last read stay"
    );
    files.write("hosts", "10.0.0.7 back.example.org\n");
    within(Duration::from_secs(5), "the file is read again", || {
        ask(s.addr, "back.example.org", RecordType::A).2 == ["back.example.org. 77 A 10.0.0.7"]
    });
}

// === memory ===

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// The resident memory of a server with a hosts file of `lines` lines, once it has loaded.
fn rss_with_hosts(lines: u32) -> u64 {
    let files = TempDir::new();
    let mut text = String::new();
    for i in 0..lines {
        let [_, b, c, d] = i.to_be_bytes();
        text.push_str(&format!("10.{b}.{c}.{d} host-{i}.nodes.example.internal\n"));
    }
    let hosts = files.write("hosts", &text);
    let s = Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.hosts]\nfile = {:?}\nreload = 0\n",
        hosts.display().to_string()
    ));
    if lines > 0 {
        let last = format!("host-{}.nodes.example.internal", lines - 1);
        assert_eq!(ask(s.addr, &last, RecordType::A).0, NOERROR);
    }
    std::thread::sleep(Duration::from_millis(300));
    rss(s.child.id())
}

/// 100,000 lines cost at most ~100 bytes of RSS each: the server with them against the same
/// server with an empty file (the entries' names are 32 bytes).
#[test]
fn a_hosts_file_of_100k_lines_costs_about_100_bytes_an_entry() {
    let empty = rss_with_hosts(0);
    let full = rss_with_hosts(100_000);
    let per_entry = full.saturating_sub(empty) / 100_000;
    eprintln!(
        "RSS: {empty} bytes empty, {full} bytes with 100,000 entries: {per_entry} bytes an entry"
    );
    assert!(per_entry <= 110, "{per_entry} bytes an entry");
}

// === against CoreDNS 1.11 ===

/// A process killed on drop, and the address it answers on.
struct Running(Child, SocketAddr);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and waits for `started` to pick the address out of a stdout line.
fn run(mut command: Command, log: &Path, started: impl Fn(&str) -> Option<SocketAddr>) -> Running {
    let child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    // Killed and waited for on drop, whichever way this ends.
    let mut running = Running(child, SocketAddr::from(([0, 0, 0, 0], 0)));
    let stdout = BufReader::new(running.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(addr) = started(&line) {
            running.1 = addr;
            return running;
        }
    }
    panic!(
        "did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The Corefile both run (clusterdns with `--corefile`): `hosts` with a file, zones, inline
/// entries and fallthrough for one zone, then `forward` to a fake upstream.
const COREFILE: &str = ".:PORT {\n    bind 127.0.0.1\n    hosts HOSTS example.org example.com 10.0.0.0/8 {\n        10.9.9.9 inline.example.org example.org\n        fd00::9 inline.example.org\n        ttl 77\n        fallthrough fall.example.org\n    }\n    forward . UPSTREAM\n}\n";

const DIFF_HOSTS: &str = "127.0.0.1 localhost\n10.0.0.1 Example.org www.example.org\n\
    ::FFFF:10.0.0.2 example.com\n10.0.0.3 a.example.org\n10.0.0.3 a.example.org\n\
    fd00::1 v6.example.org\n10.1.2.3 outside.example.net in.example.org\n";

const V6_PTR: &str = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
/// What both servers are asked: hits, NODATA, SERVFAIL, PTR of each kind.
const DIFF_QUERIES: &[(&str, RecordType)] = &[
    ("example.org", RecordType::A),
    ("www.example.org", RecordType::A),
    ("example.org", RecordType::AAAA),
    ("example.org", RecordType::MX),
    ("example.org", RecordType::ANY),
    ("example.com", RecordType::A),
    ("example.com", RecordType::AAAA),
    ("a.example.org", RecordType::A),
    ("inline.example.org", RecordType::AAAA),
    ("v6.example.org", RecordType::AAAA),
    ("v6.example.org", RecordType::A),
    ("in.example.org", RecordType::A),
    ("nosuch.example.org", RecordType::A),
    ("nosuch.example.org", RecordType::AAAA),
    ("1.0.0.10.in-addr.arpa", RecordType::PTR),
    ("2.0.0.10.in-addr.arpa", RecordType::PTR),
    ("3.0.0.10.in-addr.arpa", RecordType::PTR),
    ("9.9.9.10.in-addr.arpa", RecordType::PTR),
    ("3.2.1.10.in-addr.arpa", RecordType::PTR),
    (V6_PTR, RecordType::PTR),
    ("1.0.0.10.in-addr.arpa", RecordType::A),
    // On to forward: fallthrough, outside the zones, PTR without a name.
    ("x.fall.example.org", RecordType::A),
    ("nosuch.fall.example.org", RecordType::A),
    ("example.net", RecordType::A),
    ("7.7.7.10.in-addr.arpa", RecordType::PTR),
    ("1.0.0.127.in-addr.arpa", RecordType::PTR),
];

#[test]
fn the_same_hosts_data_is_answered_as_by_coredns() {
    let files = TempDir::new();
    let hosts = files.write("hosts", DIFF_HOSTS).display().to_string();
    let up = FakeUpstream::start();
    up.add_a("x.fall.example.org.", 30, "192.0.2.1");
    up.add_a("example.net.", 30, "192.0.2.2");
    let corefile = COREFILE
        .replace("HOSTS", &hosts)
        .replace("UPSTREAM", &up.addr.to_string());
    // Picks a free port and tries again if another test took it meanwhile.
    let coredns = crate::differential::CoreDns::with_corefile(|port| {
        corefile.replace("PORT", &port.to_string())
    });
    let ours_file = files.write("ours.Corefile", &corefile.replace("PORT", "0"));
    let mut c = Command::new(BIN);
    c.arg("--corefile").arg(&ours_file).env("RUST_LOG", "info");
    let ours = run(c, &files.0.join("ours.log"), |l| {
        l.strip_prefix("clusterdns: listening on ")
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
    });
    let lower = |(rcode, aa, answers): (u8, bool, Vec<String>)| {
        (
            rcode,
            aa,
            answers
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect::<Vec<_>>(),
        )
    };
    let mut differences = Vec::new();
    for (name, qtype) in DIFF_QUERIES {
        let theirs = lower(ask(coredns.addr, name, *qtype));
        let mine = lower(ask(ours.1, name, *qtype));
        if theirs != mine {
            differences.push(format!(
                "{name} {qtype}: CoreDNS {theirs:?}, clusterdns {mine:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(
        ask(ours.1, "x.fall.example.org", RecordType::A).2,
        ["x.fall.example.org. 30 A 192.0.2.1"],
        "fallthrough reaches forward"
    );
    // The question's case: CoreDNS answers with the name lower-cased, clusterdns echoes it.
    assert_eq!(
        ask(coredns.addr, "WWW.Example.org", RecordType::A).2,
        ["www.example.org. 77 A 10.0.0.1"]
    );
    assert_eq!(
        ask(ours.1, "WWW.Example.org", RecordType::A).2,
        ["WWW.Example.org. 77 A 10.0.0.1"]
    );
}
