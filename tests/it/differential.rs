//! Differential test: clusterdns and a real CoreDNS 1.11 (`kubernetes` plugin) watch the same
//! fake API server (`tests/stand-in/fake_apiserver.py`) serving a generated cluster
//! (`gen_cluster.py`), get the same thousands of queries (`gen_queries.py`) over UDP with EDNS,
//! and must answer alike: rcode, AA and TC, the answer RRsets (order-insensitive, TTLs
//! included), the authority section (the SOA without its serial) and the additional section.
//! Then the changes the generator wrote are replayed through the fake's control endpoints, both
//! servers are waited for, and everything is compared again. This runs once per [`VARIANTS`]
//! entry, each with its own API server and servers.
//!
//! The Corefile is kubeadm's kubernetes block (`endpoint` instead of in-cluster config, no
//! `forward`); `bind 127.0.0.1` keeps CoreDNS off the machine's other addresses, so its own
//! address list is empty whatever the machine (it drops loopback addresses) and the answers do
//! not depend on where the test runs.
//!
//! A difference fails the test unless `tests/differential-allow.txt` lists it with a reason. An
//! entry that matches nothing fails it too, so the list stays honest. The full report of the
//! last run is written to `$CARGO_TARGET_TMPDIR/differential-report.txt`.
//!
//! CoreDNS comes from npm (`coredns-dist-linux-x64`, which `scripts/test.sh` installs into
//! `node_modules/`); the test fails, never skips, when it is missing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

use crate::allow_list::{self, AllowEntry};
use crate::harness::{Server, TempDir, request_bytes};
use crate::kube_api::FakeApi;

/// The generator seed: the same seed gives the same cluster, changes and queries.
const SEED: u64 = 1107;
/// Queries in flight per server.
const CONCURRENCY: usize = 24;
/// The EDNS UDP size sent: large enough that no answer of the generated cluster is truncated
/// (a truncated answer holds whichever records fitted, which cannot be compared; truncation
/// itself is tested in `protocol.rs`). Both servers honour any size the client asks for.
const EDNS_PAYLOAD: u16 = 65000;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn stand_in(file: &str) -> PathBuf {
    root().join("tests/stand-in").join(file)
}

fn coredns_binary() -> PathBuf {
    let path = root().join("node_modules/coredns-dist-linux-x64/coredns");
    assert!(
        path.is_file(),
        "CoreDNS is missing at {}: the differential test needs it. Run ./scripts/test.sh (it \
         installs it), or `npm install --no-save coredns-dist-linux-x64@1.11.1-3` in {}",
        path.display(),
        root().display()
    );
    path
}

fn python(script: &str, args: &[&str]) {
    let status = Command::new("python3")
        .arg(stand_in(script))
        .args(args)
        .status()
        .expect("python3 must be installed to generate the cluster");
    assert!(status.success(), "{script} {args:?} failed");
}

// === processes ===

/// CoreDNS with the kubeadm-like Corefile against the fake API; killed on drop.
pub struct CoreDns {
    child: Child,
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl CoreDns {
    /// `options`: extra lines for the `kubernetes` block.
    fn start(api: SocketAddr, options: &str) -> CoreDns {
        CoreDns::with_corefile(|port| {
            format!(
                ".:{port} {{\n    bind 127.0.0.1\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        endpoint http://{api}\n        {options}\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n}}\n"
            )
        })
    }

    /// The real CoreDNS 1.11 on 127.0.0.1 with the Corefile `corefile(port)` (it must bind
    /// 127.0.0.1 on that port).
    pub fn with_corefile(corefile: impl Fn(u16) -> String) -> CoreDns {
        let binary = coredns_binary();
        let mut last_error = String::new();
        // A free port is picked and released; retry if someone took it meanwhile.
        for _ in 0..3 {
            let port = crate::harness::free_port(false);
            let dir = TempDir::new();
            let corefile = dir.write("Corefile", &corefile(port));
            let log = std::fs::File::create(dir.0.join("stderr.log")).unwrap();
            let mut child = Command::new(&binary)
                .arg("-conf")
                .arg(&corefile)
                .current_dir(&dir.0)
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                // Keep draining: `errors` logs every SERVFAIL to stdout.
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut started = false;
            while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                if line.starts_with("CoreDNS-") {
                    started = true;
                    break;
                }
            }
            if started {
                return CoreDns {
                    child,
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_error = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap_or_default();
        }
        panic!("CoreDNS did not start: {last_error}");
    }
}

impl Drop for CoreDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === inputs ===

#[derive(Debug)]
enum Op {
    Apply(String),
    Delete(String),
    Wait { name: String, ip: String },
}

fn read_steps(path: &Path) -> Vec<(String, Vec<Op>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut steps: Vec<(String, Vec<Op>)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let op = match word {
            "step" => {
                steps.push((rest.to_owned(), Vec::new()));
                continue;
            }
            "apply" => Op::Apply(rest.to_owned()),
            "delete" => Op::Delete(rest.to_owned()),
            "wait" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(parts.len(), 3, "bad wait line {line:?}");
                Op::Wait {
                    name: parts[0].to_owned(),
                    ip: parts[2].to_owned(),
                }
            }
            _ => panic!("unknown line in the changes: {line:?}"),
        };
        steps.last_mut().expect("a step first").1.push(op);
    }
    steps
}

fn read_queries(path: &Path) -> Vec<(String, RecordType)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, qtype) = l.rsplit_once(' ').expect("NAME TYPE");
            (
                name.to_owned(),
                RecordType::from_str(qtype).expect("a record type"),
            )
        })
        .collect()
}

// === the allow-list ===

// === comparing ===

/// One response reduced to what is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    rcode: String,
    aa: bool,
    tc: bool,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

fn record_line(r: &Record) -> String {
    let data = match &r.data {
        // The serial is the time of the last change: it cannot agree between two servers.
        RData::SOA(soa) => format!(
            "{} {} (serial) {} {} {} {}",
            soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        other => other.to_string(),
    };
    format!("{} {} {} {}", r.name, r.ttl, r.record_type(), data)
}

fn section(records: &[Record]) -> Vec<String> {
    let mut lines: Vec<String> = records.iter().map(record_line).collect();
    lines.sort_by_key(|l| l.to_ascii_lowercase());
    lines
}

fn view(m: &Message) -> View {
    View {
        rcode: format!("{:?}", m.metadata.response_code),
        aa: m.metadata.authoritative,
        tc: m.metadata.truncation,
        answer: section(&m.answers),
        authority: section(&m.authorities),
        additional: section(
            &m.additionals
                .iter()
                .filter(|r| r.record_type() != RecordType::OPT)
                .cloned()
                .collect::<Vec<_>>(),
        ),
    }
}

/// What is compared, in the report's words.
const ASPECTS: [&str; 7] = [
    "rcode",
    "aa",
    "tc",
    "answer",
    "authority",
    "additional",
    "case",
];

struct Diff {
    aspect: &'static str,
    coredns: String,
    clusterdns: String,
}

fn differences(c: &View, x: &View) -> Vec<Diff> {
    let mut out = Vec::new();
    let mut add = |aspect: &'static str, a: String, b: String| {
        if a != b {
            out.push(Diff {
                aspect,
                coredns: a,
                clusterdns: b,
            });
        }
    };
    let lower =
        |v: &[String]| -> Vec<String> { v.iter().map(|l| l.to_ascii_lowercase()).collect() };
    add("rcode", c.rcode.clone(), x.rcode.clone());
    add("aa", c.aa.to_string(), x.aa.to_string());
    add("tc", c.tc.to_string(), x.tc.to_string());
    if c.tc || x.tc {
        // A truncated answer holds whichever records fitted: there is nothing more to compare.
        return out;
    }
    // Names compare case-insensitively (RFC 4343); a case difference alone is its own aspect.
    add(
        "answer",
        lower(&c.answer).join(" ; "),
        lower(&x.answer).join(" ; "),
    );
    add(
        "authority",
        lower(&c.authority).join(" ; "),
        lower(&x.authority).join(" ; "),
    );
    add(
        "additional",
        lower(&c.additional).join(" ; "),
        lower(&x.additional).join(" ; "),
    );
    if (c.answer != x.answer || c.authority != x.authority || c.additional != x.additional)
        && lower(&c.answer) == lower(&x.answer)
        && lower(&c.authority) == lower(&x.authority)
        && lower(&c.additional) == lower(&x.additional)
    {
        add(
            "case",
            format!("{:?} {:?} {:?}", c.answer, c.authority, c.additional),
            format!("{:?} {:?} {:?}", x.answer, x.authority, x.additional),
        );
    }
    out
}

fn allowed<'a>(
    entries: &'a [AllowEntry],
    qname: &str,
    qtype: RecordType,
    (c, x): (&View, &View),
    d: &Diff,
) -> Option<&'a AllowEntry> {
    let qtype = qtype.to_string();
    let name = qname.to_ascii_lowercase();
    let mentions = |text: &str| {
        d.coredns.contains(text)
            || d.clusterdns.contains(text)
            || c.answer
                .iter()
                .chain(&x.answer)
                .any(|l| l.to_ascii_lowercase().contains(text))
    };
    entries.iter().find(|e| {
        e.covers(&qtype, &name, (&c.rcode, &x.rcode), d.aspect)
            && e.contains.as_deref().is_none_or(mentions)
    })
}

// === querying ===

fn request(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut out = request_bytes(name, qtype, Some(EDNS_PAYLOAD));
    out[..2].copy_from_slice(&id.to_be_bytes());
    out
}

/// One query over UDP, retried on silence; `None` if the server never answered.
async fn ask(
    socket: &UdpSocket,
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> Option<Message> {
    let mut buf = vec![0u8; 65535];
    for attempt in 0..4u16 {
        let id: u16 = rand_id(attempt);
        socket
            .send_to(&request(id, name, qtype), server)
            .await
            .ok()?;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        loop {
            let Ok(Ok((n, from))) =
                tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
            else {
                break;
            };
            if from != server || n < 2 || u16::from_be_bytes([buf[0], buf[1]]) != id {
                continue; // a late answer to an earlier attempt
            }
            return Message::from_vec(&buf[..n]).ok();
        }
    }
    None
}

fn rand_id(salt: u16) -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    (NEXT.fetch_add(1, Ordering::Relaxed) as u16)
        .wrapping_mul(31)
        .wrapping_add(salt)
}

/// Sends every query to both servers (`CONCURRENCY` at a time each) and returns both views.
async fn ask_all(
    queries: Arc<Vec<(String, RecordType)>>,
    coredns: SocketAddr,
    clusterdns: SocketAddr,
) -> Vec<(Option<View>, Option<View>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let queries = queries.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let socket_c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let socket_x = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, qtype)) = queries.get(i) else {
                    break;
                };
                let (c, x) = tokio::join!(
                    ask(&socket_c, coredns, name, *qtype),
                    ask(&socket_x, clusterdns, name, *qtype)
                );
                out.push((i, c.as_ref().map(view), x.as_ref().map(view)));
            }
            out
        }));
    }
    let mut all: Vec<(Option<View>, Option<View>)> = vec![(None, None); queries.len()];
    for w in workers {
        for (i, c, x) in w.await.unwrap() {
            all[i] = (c, x);
        }
    }
    all
}

/// Polls both servers until `name` A includes `ip`.
async fn wait_for(coredns: SocketAddr, clusterdns: SocketAddr, name: &str, ip: &str, step: &str) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (who, server) in [("CoreDNS", coredns), ("clusterdns", clusterdns)] {
        loop {
            let answer = ask(&socket, server, name, RecordType::A).await;
            let has = answer.as_ref().is_some_and(|m| {
                m.answers.iter().any(|r| match &r.data {
                    RData::A(a) => a.0.to_string() == ip,
                    _ => false,
                })
            });
            if has {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "step {step}: {who} never answered {name} A {ip}; last answer {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The configurations compared: each gets its own API server, CoreDNS and clusterdns.
struct Variant {
    name: &'static str,
    /// Lines of CoreDNS's `kubernetes` block (besides endpoint and fallthrough).
    coredns: &'static str,
    /// Lines of clusterdns's `[server.kubernetes]` (likewise).
    clusterdns: &'static str,
}

const VARIANTS: &[Variant] = &[
    // The kubeadm Corefile's kubernetes block.
    Variant {
        name: "kubeadm",
        coredns: "pods insecure\n        ttl 30",
        clusterdns: "pods = \"insecure\"\nttl = 30",
    },
    // The options that change answers, with the default TTL (5).
    Variant {
        name: "verified",
        coredns: "pods verified\n        endpoint_pod_names\n        ignore empty_service",
        clusterdns: "pods = \"verified\"\nendpoint_pod_names = true\nignore_empty_service = true",
    },
    // Some namespaces only (the generator's fixed ones, and the markers' so the waits work).
    Variant {
        name: "namespaces",
        coredns: "pods insecure\n        ttl 0\n        namespaces default kube-system svc zz-sync-0 zz-sync-1 zz-sync-2",
        clusterdns: "pods = \"insecure\"\nttl = 0\nnamespaces = [\"default\", \"kube-system\", \"svc\", \"zz-sync-0\", \"zz-sync-1\", \"zz-sync-2\"]",
    },
];

#[derive(Default)]
struct Tally {
    report: String,
    failures: Vec<String>,
    compared: usize,
    /// Allow-list line → differences it allowed.
    allowed_count: BTreeMap<usize, usize>,
}

async fn run_variant(
    variant: &Variant,
    cluster: &Path,
    steps: &[(String, Vec<Op>)],
    queries: &Arc<Vec<(String, RecordType)>>,
    allow: &[AllowEntry],
    tally: &mut Tally,
) {
    let api = FakeApi::start_with(cluster);
    let coredns = CoreDns::start(api.addr, variant.coredns);
    let clusterdns = Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n# CoreDNS without bufsize honours any EDNS size: so does clusterdns here.\nmax_udp_size = 65535\n[server.kubernetes]\nendpoint = \"http://{}\"\n{}\nfallthrough = [\"in-addr.arpa\", \"ip6.arpa\"]\n",
        api.addr, variant.clusterdns
    ));
    for (step, ops) in steps {
        let step = format!("{}/{step}", variant.name);
        for op in ops {
            match op {
                Op::Apply(body) => {
                    api.control("apply", body);
                }
                Op::Delete(body) => {
                    api.control("delete", body);
                }
                Op::Wait { name, ip } => {
                    wait_for(coredns.addr, clusterdns.addr, name, ip, &step).await;
                }
            }
        }
        let t = Instant::now();
        let views = ask_all(queries.clone(), coredns.addr, clusterdns.addr).await;
        let mut rcodes: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut with_answers, mut truncated, mut most) = (0, 0, 0);
        for c in views.iter().filter_map(|(c, _)| c.as_ref()) {
            *rcodes.entry(c.rcode.as_str()).or_default() += 1;
            with_answers += usize::from(!c.answer.is_empty());
            truncated += usize::from(c.tc);
            most = most.max(c.answer.len());
        }
        writeln!(
            tally.report,
            "== step {step}: {} queries in {:?}; CoreDNS rcodes {rcodes:?}, {with_answers} with answers (at most {most} records), {truncated} truncated",
            queries.len(),
            t.elapsed()
        )
        .unwrap();
        for ((qname, qtype), (c, x)) in queries.iter().zip(&views) {
            tally.compared += 1;
            let (Some(c), Some(x)) = (c, x) else {
                let line = format!(
                    "[{step}] {qname} {qtype}: no answer from {}",
                    if c.is_none() { "CoreDNS" } else { "clusterdns" }
                );
                writeln!(tally.report, "FAIL {line}").unwrap();
                tally.failures.push(line);
                continue;
            };
            for d in differences(c, x) {
                let line = format!(
                    "[{step}] {qname} {qtype} {}: CoreDNS {:?} / clusterdns {:?}",
                    d.aspect, d.coredns, d.clusterdns
                );
                match allowed(allow, qname, *qtype, (c, x), &d) {
                    Some(entry) => {
                        entry.used.fetch_add(1, Ordering::Relaxed);
                        *tally.allowed_count.entry(entry.line).or_default() += 1;
                        writeln!(tally.report, "allowed (line {}) {line}", entry.line).unwrap();
                    }
                    None => {
                        writeln!(tally.report, "FAIL {line}").unwrap();
                        tally.failures.push(line);
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterdns_answers_like_coredns_on_a_generated_cluster() {
    let started = Instant::now();
    let allow = allow_list::read(&root().join("tests/differential-allow.txt"), None, &ASPECTS);
    let coredns_bin = coredns_binary();
    let output = Command::new(&coredns_bin).arg("-version").output().unwrap();
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(
        version.contains("CoreDNS-1.11."),
        "the differential test compares against CoreDNS 1.11, not {version}"
    );

    let work = TempDir::new();
    let seed = SEED.to_string();
    let cluster = work.0.join("cluster.json");
    let changes = work.0.join("changes.txt");
    let queries_file = work.0.join("queries.txt");
    python(
        "gen_cluster.py",
        &[
            "--seed",
            &seed,
            "--out",
            cluster.to_str().unwrap(),
            "--changes",
            changes.to_str().unwrap(),
        ],
    );
    python(
        "gen_queries.py",
        &[
            "--seed",
            &seed,
            "--cluster",
            cluster.to_str().unwrap(),
            "--changes",
            changes.to_str().unwrap(),
            "--out",
            queries_file.to_str().unwrap(),
        ],
    );
    let steps = read_steps(&changes);
    let queries = Arc::new(read_queries(&queries_file));

    let mut tally = Tally::default();
    for variant in VARIANTS {
        run_variant(variant, &cluster, &steps, &queries, &allow, &mut tally).await;
    }
    let Tally {
        report,
        failures,
        compared,
        allowed_count,
    } = &mut tally;
    let unused: Vec<String> = allow
        .iter()
        .filter(|e| e.used.load(Ordering::Relaxed) == 0)
        .map(|e| {
            format!(
                "line {}: {} {} {}/{} {} {} | {}",
                e.line,
                e.qtypes.join(","),
                e.names.join(","),
                e.rcodes.0,
                e.rcodes.1,
                e.aspects.join(","),
                e.contains.as_deref().unwrap_or(""),
                e.reason
            )
        })
        .collect();
    writeln!(
        report,
        "== {compared} queries compared in {} steps of {} configurations, {} differences not allowed, allow-list {} entries ({:?} used per line), {} unused, {:?} in all",
        steps.len(),
        VARIANTS.len(),
        failures.len(),
        allow.len(),
        allowed_count,
        unused.len(),
        started.elapsed()
    )
    .unwrap();
    let report_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-report.txt");
    let _ = std::fs::write(&report_path, report.as_str());
    println!(
        "differential: {compared} queries compared, {} failures, {:?}; report in {}",
        failures.len(),
        started.elapsed(),
        report_path.display()
    );
    assert!(
        failures.is_empty(),
        "{} differences from CoreDNS that tests/differential-allow.txt does not list (report: {}):\n{}",
        failures.len(),
        report_path.display(),
        failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        unused.is_empty(),
        "allow-list entries that matched no difference (remove them):\n{}",
        unused.join("\n")
    );
}
