//! The distributions' own Corefiles, side by side with CoreDNS 1.11: every Corefile in
//! `tests/corefiles/` that converts completely (and every coredns-custom `*.server` file that
//! does, imported at the top level as k3s, AKS and Gardener import them) runs in the real
//! CoreDNS and in clusterdns twice, once with `--corefile` and once with the TOML that
//! `convert-corefile` makes of it. All three watch the same fake API server (the demo cluster
//! plus a namespace `bulk` with a 100-endpoint headless Service for large answers) and forward to
//! fake upstreams holding the same records, one upstream per server so that what each one sends
//! upstream can be compared.
//!
//! Each Corefile is adapted mechanically, the same way for every server: the server keys' port
//! becomes the test's (`.:53` → `.:PORT`; clusterdns gets port 0 and prints what it bound) and
//! every block gets `bind 127.0.0.1` (replacing its own `bind`); `kubernetes … {` gets
//! `endpoint http://API`; every `forward` goes to the server's fake upstream, except a node-local
//! block's forward to the cluster DNS (`10.96.0.10`, `__PILLAR__CLUSTER__DNS__`), which goes to a
//! "cluster DNS" backend (a CoreDNS with the kubeadm `kubernetes` block and no cache) that the
//! node-local servers share; `health`, `ready` and `prometheus` are removed (they serve HTTP on
//! fixed ports, not DNS answers); `import` paths point at adapted copies of the distribution's
//! `<dist>-custom/` files. `reload` and `loop` stay: neither changes an answer here (the files do
//! not change, and the fake upstream never loops back). Node-cache's placeholders are filled in
//! the text for CoreDNS, as node-cache does, and by `--localip 127.0.0.1` for clusterdns.
//!
//! The questions follow from the Corefile: cluster names (ClusterIP A/AAAA, headless, SRV, PTR,
//! ExternalName, pods, NXDOMAIN, NODATA, `dns-version` TXT) where it serves or forwards the
//! cluster zone, external names where `.` forwards, the names of every other zone it has a block
//! for, CH TXT where a block runs `chaos`, and a 100-record answer over UDP with EDNS 4096,
//! without EDNS and over TCP. They are asked one at a time, twice (the second round after a
//! pause, so caches answer it), over UDP with EDNS 1232 and RD unless said otherwise.
//!
//! Compared: rcode, AA, TC, RD, RA (not AD/CD), the three sections as sets (names
//! case-insensitively; a case difference alone is the `case` aspect), and for a truncated answer
//! only how many answer records it kept. TTLs: in the first round exactly (cold caches; within a
//! second for a question asked before in the round in another spelling or over another
//! transport); in the second, where caches count them down, a clusterdns TTL must not exceed
//! CoreDNS's first-round TTL of that record (which applies the Corefile's `ttl` and cache caps)
//! nor its own. What reached each upstream in each round is compared as well (`upstream`:
//! cached answers stay off it, TCP stays TCP). The two clusterdns modes must agree exactly.
//!
//! A difference fails the test unless `tests/corefile-differential-allow.txt` lists it with its
//! reason; an entry that matches nothing fails it too. A failure names the Corefile, the mode,
//! the round and the question, and shows all three answers. The report of the last run (each
//! adapted Corefile, every question with CoreDNS's rcode, every difference) is written to
//! `$CARGO_TARGET_TMPDIR/corefile-differential-report.txt`. clusterdns is started here rather
//! than with `harness::Server` because node-local Corefiles need `--localip`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::allow_list::{self, AllowEntry};
use crate::differential::CoreDns;
use crate::harness::{BIN, TempDir};
use crate::kube_api::FakeApi;
use crate::upstream::FakeUpstream;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn corefiles() -> PathBuf {
    root().join("tests/corefiles")
}

/// Files that do not convert completely today, with words `convert-corefile` must say about
/// them (the plugins it does not implement, or the import it cannot find): not compared. One
/// that converts must be removed from here, and is then compared.
const NOT_CONVERTED: &[(&str, &[&str])] = &[
    // The import of a file Gardener's sidecar generates, absent here (and CoreDNS would not
    // start either).
    (
        "gardener-nodelocaldns.Corefile",
        &["generated-config/custom-server-block.server"],
    ),
];

/// Endpoints of the headless Service `bulk.bulk`: 100 A records are about 1,650 octets, more
/// than 1232 and less than 4096.
const BULK: usize = 100;

/// The namespace `bulk`: the large headless Service, and `probe` (asked until every server has
/// synced; never part of the compared questions).
fn bulk_objects() -> String {
    let endpoints: Vec<String> = (0..BULK)
        .map(|i| {
            format!(
                r#"{{"addresses":["10.245.0.{}"],"conditions":{{"ready":true}}}}"#,
                i + 1
            )
        })
        .collect();
    format!(
        r#"{{"kind":"List","items":[
 {{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"bulk"}}}},
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"bulk","namespace":"bulk"}},
  "spec":{{"clusterIP":"None","ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}},
 {{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"bulk-1","namespace":"bulk",
  "labels":{{"kubernetes.io/service-name":"bulk"}}}},"addressType":"IPv4",
  "endpoints":[{}],"ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}},
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"probe","namespace":"bulk"}},
  "spec":{{"clusterIP":"10.96.99.99","clusterIPs":["10.96.99.99"],"ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}}
]}}"#,
        endpoints.join(",")
    )
}

/// What every fake upstream holds, besides `www.<zone>` of each stub zone: `(name, ttl, ip)`.
const UPSTREAM_A: &[(&str, u32, &str)] = &[
    ("www.example.com", 300, "192.0.2.1"),
    ("multi.example.com", 300, "192.0.2.11"),
    ("multi.example.com", 300, "192.0.2.12"),
    ("multi.example.com", 300, "192.0.2.13"),
    // Below every cache's minimum TTL.
    ("short.example.com", 2, "192.0.2.5"),
    // The target of the ExternalName Service shop/payments.
    ("api.payments.example.com", 300, "192.0.2.20"),
    // Asked over TCP.
    ("tcp.example.com", 300, "192.0.2.21"),
];

fn upstream() -> FakeUpstream {
    let up = FakeUpstream::start();
    for (name, ttl, ip) in UPSTREAM_A {
        up.add_a(name, *ttl, ip);
    }
    up
}

// === the Corefiles ===

/// One Corefile under test.
struct Case {
    /// Its path under `tests/corefiles/`.
    name: String,
    /// Its text: the file itself, or for a coredns-custom `*.server` file a one-line Corefile
    /// importing it.
    text: String,
    /// The distribution's coredns-custom directory, which `import …/custom/…` reads.
    custom: Option<PathBuf>,
}

fn cases() -> Vec<Case> {
    let dir = corefiles();
    let custom_of = |stem: &str| -> Option<PathBuf> {
        let first = stem.split(['-', '.']).next().unwrap_or(stem);
        [format!("{stem}-custom"), format!("{first}-custom")]
            .into_iter()
            .map(|d| dir.join(d))
            .find(|d| d.is_dir())
    };
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in &files {
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some(stem) = file.strip_suffix(".Corefile") {
            out.push(Case {
                text: std::fs::read_to_string(path).unwrap(),
                custom: custom_of(stem),
                name: file,
            });
        } else if path.is_dir() && file.ends_with("-custom") {
            let mut servers: Vec<PathBuf> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "server"))
                .collect();
            servers.sort();
            for server in servers {
                let text = std::fs::read_to_string(&server).unwrap();
                // Gardener's placeholder files hold only comments: nothing to serve.
                if blocks(&text, false).is_empty() {
                    continue;
                }
                let base = server.file_name().unwrap().to_str().unwrap();
                out.push(Case {
                    name: format!("{file}/{base}"),
                    text: format!("import /etc/coredns/custom/{base}\n"),
                    custom: Some(path.clone()),
                });
            }
        }
    }
    out
}

/// A line without its comment (`#` at the start or after a space, outside quotes).
fn code(line: &str) -> &str {
    let mut quoted = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// `{` minus `}` outside quotes.
fn braces(code: &str) -> i32 {
    let mut quoted = false;
    let mut n = 0;
    for c in code.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' if !quoted => n += 1,
            '}' if !quoted => n -= 1,
            _ => {}
        }
    }
    n
}

/// One server block: its zones (lower-case, no trailing dot, `.` for the root) and its
/// directives' names.
#[derive(Debug)]
struct Block {
    zones: Vec<String>,
    plugins: Vec<String>,
    /// Whether it has its own `bind`.
    bind: bool,
}

/// The server blocks of a Corefile (`inside`: a file imported inside a block has none).
fn blocks(text: &str, inside: bool) -> Vec<Block> {
    if inside {
        return Vec::new();
    }
    let mut out: Vec<Block> = Vec::new();
    let mut depth = 0;
    for line in text.lines() {
        let code = code(line).trim();
        let at = depth;
        depth += braces(code);
        let words: Vec<&str> = code.split_whitespace().collect();
        if at == 0 && code.ends_with('{') {
            let zones = words[..words.len() - 1]
                .iter()
                .map(|k| {
                    let k = k.trim_start_matches("dns://");
                    let zone = k.rsplit_once(':').map_or(k, |(z, _)| z);
                    let zone = zone.replace("__PILLAR__DNS__DOMAIN__", "cluster.local");
                    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
                    if zone.is_empty() {
                        ".".to_owned()
                    } else {
                        zone
                    }
                })
                .collect();
            out.push(Block {
                zones,
                plugins: Vec::new(),
                bind: false,
            });
        } else if at == 1
            && let (Some(block), Some(word)) = (out.last_mut(), words.first())
        {
            block.plugins.push((*word).to_owned());
            block.bind |= *word == "bind";
        }
    }
    out
}

/// Where a Corefile is adapted for one server.
struct Env {
    /// The port of every server key (0 for clusterdns).
    port: u16,
    api: SocketAddr,
    upstream: SocketAddr,
    /// The node-local Corefiles' cluster DNS.
    backend: Option<SocketAddr>,
    /// CoreDNS: fill node-cache's placeholders in the text (clusterdns gets `--localip`).
    coredns: bool,
    /// This server's directory: `custom/` holds its copies of the imported files.
    dir: PathBuf,
}

/// A node-local Corefile's forward to the cluster DNS (kube-dns's address in these files).
fn is_cluster_dns(target: &str) -> bool {
    target == "10.96.0.10" || target == "__PILLAR__CLUSTER__DNS__"
}

/// The Corefile `text` adapted for the test (module doc). `inside`: a file imported inside a
/// block (`*.override`), whose directives are at its top level.
fn adapt(text: &str, env: &Env, inside: bool) -> String {
    let blocks = blocks(text, inside);
    let mut block = None::<usize>;
    let mut out = String::new();
    let mut depth = i32::from(inside);
    let mut skipping = None::<i32>;
    for line in text.lines() {
        let code = code(line).trim();
        let at = depth;
        depth += braces(code);
        if let Some(d) = skipping {
            if depth <= d {
                skipping = None;
            }
            continue;
        }
        let words: Vec<&str> = code.split_whitespace().collect();
        let Some(&first) = words.first() else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let opens = code.ends_with('{');
        let brace = if opens { " {" } else { "" };
        if at == 0 && opens {
            let i = block.map_or(0, |b| b + 1);
            block = Some(i);
            let keys: Vec<String> = words[..words.len() - 1]
                .iter()
                .map(|k| {
                    let zone = k.rsplit_once(':').map_or(*k, |(z, _)| z);
                    let zone = if env.coredns {
                        zone.replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
                    } else {
                        zone.to_owned()
                    };
                    format!("{zone}:{}", env.port)
                })
                .collect();
            writeln!(out, "{} {{", keys.join(" ")).unwrap();
            if !blocks.get(i).is_some_and(|b| b.bind) {
                out.push_str("    bind 127.0.0.1\n");
            }
            continue;
        }
        if first == "import" && at <= 1 {
            let path = words.get(1).copied().unwrap_or_default();
            let (dir, pattern) = path.rsplit_once('/').unwrap_or((".", path));
            let last = dir.rsplit('/').next().unwrap_or(dir);
            writeln!(out, "import {}/{last}/{pattern}", env.dir.display()).unwrap();
            continue;
        }
        if at != 1 {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        match first {
            "health" | "ready" | "prometheus" => {
                if depth > at {
                    skipping = Some(at);
                }
            }
            "bind" => {
                if code.contains("__PILLAR__") && !env.coredns {
                    write!(out, "    {code}").unwrap();
                } else {
                    out.push_str("    bind 127.0.0.1");
                }
                out.push('\n');
            }
            "kubernetes" => {
                let args = code.trim_end_matches('{').trim_end();
                writeln!(out, "    {args} {{\n        endpoint http://{}", env.api).unwrap();
                if !opens {
                    out.push_str("    }\n");
                }
            }
            "forward" => {
                let targets = &words[2..words.len() - usize::from(opens)];
                let to = match env.backend {
                    Some(backend) if targets.iter().any(|t| is_cluster_dns(t)) => backend,
                    _ => env.upstream,
                };
                writeln!(out, "    forward {} {to}{brace}", words[1]).unwrap();
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Writes `case` adapted for one server into `env.dir` (its imports under `custom/`) and
/// returns the Corefile's path.
fn write_adapted(case: &Case, env: &Env) -> PathBuf {
    std::fs::create_dir_all(env.dir.join("custom")).unwrap();
    if let Some(custom) = &case.custom {
        for entry in std::fs::read_dir(custom).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let inside = name.ends_with(".override");
            std::fs::write(
                env.dir.join("custom").join(&name),
                adapt(&text, env, inside),
            )
            .unwrap();
        }
    }
    let corefile = env.dir.join("Corefile");
    std::fs::write(&corefile, adapt(&case.text, env, false)).unwrap();
    corefile
}

/// The server blocks of a case, its imported `*.server` files included.
fn case_blocks(case: &Case) -> Vec<Block> {
    let mut all = blocks(&case.text, false);
    if let Some(custom) = &case.custom {
        for line in case.text.lines() {
            let words: Vec<&str> = code(line).split_whitespace().collect();
            if words.first() != Some(&"import") || line.starts_with(char::is_whitespace) {
                continue;
            }
            let pattern = words[1].rsplit('/').next().unwrap();
            for entry in std::fs::read_dir(custom).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap();
                if glob_simple(pattern.as_bytes(), name.as_bytes()) {
                    all.extend(blocks(&std::fs::read_to_string(&path).unwrap(), false));
                }
            }
        }
    }
    all
}

/// `*` matches any run of characters.
fn glob_simple(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', rest @ ..] => (0..=text.len()).any(|i| glob_simple(rest, &text[i..])),
        [c, rest @ ..] => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && glob_simple(rest, &text[1..])
        }
    }
}

// === the questions ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// UDP with this EDNS payload size, or none.
    Udp(Option<u16>),
    Tcp,
}

#[derive(Debug, Clone)]
struct Question {
    name: String,
    qtype: RecordType,
    chaos: bool,
    via: Via,
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}{}",
            self.name,
            if self.chaos { "CH " } else { "" },
            self.qtype
        )?;
        match self.via {
            Via::Udp(Some(1232)) => Ok(()),
            Via::Udp(Some(n)) => write!(f, " (udp, edns {n})"),
            Via::Udp(None) => write!(f, " (udp, no edns)"),
            Via::Tcp => write!(f, " (tcp)"),
        }
    }
}

const CLUSTER: &[(&str, RecordType)] = &[
    ("kubernetes.default.svc.cluster.local.", RecordType::A),
    ("frontend.shop.svc.cluster.local.", RecordType::A),
    ("frontend.shop.svc.cluster.local.", RecordType::AAAA),
    ("frontend.shop.svc.cluster.local.", RecordType::TXT),
    ("search.shop.svc.cluster.local.", RecordType::A),
    ("search.shop.svc.cluster.local.", RecordType::AAAA),
    ("legacy.shop.svc.cluster.local.", RecordType::A),
    ("postgres.data.svc.cluster.local.", RecordType::A),
    ("postgres-0.postgres.data.svc.cluster.local.", RecordType::A),
    (
        "_postgres._tcp.postgres.data.svc.cluster.local.",
        RecordType::SRV,
    ),
    (
        "_https._tcp.frontend.shop.svc.cluster.local.",
        RecordType::SRV,
    ),
    (
        "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    ),
    ("storefront.shop.svc.cluster.local.", RecordType::A),
    ("payments.shop.svc.cluster.local.", RecordType::A),
    ("nosuch.shop.svc.cluster.local.", RecordType::A),
    ("nosuch.cluster.local.", RecordType::AAAA),
    ("10-244-1-10.shop.pod.cluster.local.", RecordType::A),
    ("dns-version.cluster.local.", RecordType::TXT),
    ("cluster.local.", RecordType::SOA),
    ("10.10.96.10.in-addr.arpa.", RecordType::PTR),
    ("30.1.244.10.in-addr.arpa.", RecordType::PTR),
    (
        "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    ),
    // No Service has it: falls through to the forwarder.
    ("4.3.2.1.in-addr.arpa.", RecordType::PTR),
];

const EXTERNAL: &[(&str, RecordType)] = &[
    ("www.example.com.", RecordType::A),
    ("www.example.com.", RecordType::AAAA),
    ("nosuch.example.com.", RecordType::A),
    ("multi.example.com.", RecordType::A),
    ("short.example.com.", RecordType::A),
    // A cache hit asked in another case.
    ("WWW.Example.COM.", RecordType::A),
];

/// Where a block has `rewrite` and the cluster is served: the names the distributions' rules rewrite (vCluster's node
/// names onto the API Service, Gardener's doubled search path), and what they answer.
const REWRITTEN: &[(&str, RecordType)] = &[
    ("node-1.nodes.vcluster.com.", RecordType::A),
    ("Node-2.Nodes.vcluster.com.", RecordType::AAAA),
    (
        "kubernetes.default.svc.cluster.local.svc.cluster.local.",
        RecordType::A,
    ),
    (
        "_http._tcp.frontend.shop.svc.cluster.local.svc.cluster.local.",
        RecordType::SRV,
    ),
];

fn questions(blocks: &[Block]) -> Vec<Question> {
    let udp = |name: &str, qtype| Question {
        name: name.to_owned(),
        qtype,
        chaos: false,
        via: Via::Udp(Some(1232)),
    };
    let zones: BTreeSet<&str> = blocks
        .iter()
        .flat_map(|b| b.zones.iter().map(String::as_str))
        .collect();
    let cluster = blocks.iter().any(|b| {
        b.plugins.iter().any(|p| p == "kubernetes") || b.zones.iter().any(|z| z == "cluster.local")
    });
    let mut out = Vec::new();
    if cluster {
        out.extend(CLUSTER.iter().map(|(n, t)| udp(n, *t)));
        out.push(udp("tcp.example.com.", RecordType::A).via(Via::Tcp));
        let big = "bulk.bulk.svc.cluster.local.";
        out.push(udp(big, RecordType::A).via(Via::Udp(Some(4096))));
        out.push(udp(big, RecordType::A).via(Via::Udp(None)));
        out.push(udp(big, RecordType::A).via(Via::Tcp));
    }
    // Asked everywhere: a name outside every zone where there is no `.` block.
    out.extend(EXTERNAL.iter().map(|(n, t)| udp(n, *t)));
    if cluster
        && blocks
            .iter()
            .any(|b| b.plugins.iter().any(|p| p == "rewrite"))
    {
        out.extend(REWRITTEN.iter().map(|(n, t)| udp(n, *t)));
    }
    for zone in &zones {
        if [".", "cluster.local", "in-addr.arpa", "ip6.arpa"].contains(zone) {
            continue;
        }
        if blocks
            .iter()
            .any(|b| b.zones.iter().any(|z| z == zone) && b.plugins.iter().any(|p| p == "chaos"))
        {
            continue;
        }
        out.push(udp(&format!("www.{zone}."), RecordType::A));
        out.push(udp(&format!("www.{zone}."), RecordType::AAAA));
        out.push(udp(&format!("nosuch.{zone}."), RecordType::A));
    }
    if blocks
        .iter()
        .any(|b| b.plugins.iter().any(|p| p == "chaos"))
    {
        for name in ["version.bind.", "hostname.bind."] {
            out.push(Question {
                chaos: true,
                ..udp(name, RecordType::TXT)
            });
        }
    }
    out
}

impl Via {
    /// How the allow-list's CONTAINS names it: `via=udp1232`, `via=udp-noedns`, `via=tcp`.
    fn tag(self) -> String {
        match self {
            Via::Udp(Some(n)) => format!("udp{n}"),
            Via::Udp(None) => "udp-noedns".to_owned(),
            Via::Tcp => "tcp".to_owned(),
        }
    }
}

impl Question {
    fn via(mut self, via: Via) -> Question {
        self.via = via;
        self
    }
}

/// The stub zones' records on the fake upstreams.
fn stub_records(blocks: &[Block], up: &FakeUpstream) {
    for (i, zone) in blocks.iter().flat_map(|b| &b.zones).enumerate() {
        if zone != "." {
            up.add_a(&format!("www.{zone}"), 300, &format!("192.0.2.{}", 100 + i));
        }
    }
}

// === asking ===

fn request(id: u16, q: &Question) -> Vec<u8> {
    let edns = match q.via {
        Via::Udp(size) => size,
        Via::Tcp => Some(1232),
    };
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in q.name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&u16::from(q.qtype).to_be_bytes());
    out.extend_from_slice(&(if q.chaos { 3u16 } else { 1 }).to_be_bytes());
    if let Some(size) = edns {
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    out
}

fn next_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One question, retried on silence; `None` if no answer came.
fn ask(server: SocketAddr, q: &Question) -> Option<Message> {
    for _ in 0..3 {
        let id = next_id();
        let bytes = request(id, q);
        let reply = match q.via {
            Via::Udp(_) => {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(3)))
                    .unwrap();
                socket.send_to(&bytes, server).unwrap();
                let mut buf = vec![0u8; 65535];
                loop {
                    match socket.recv_from(&mut buf) {
                        Ok((n, _)) if n >= 2 && buf[..2] == id.to_be_bytes() => {
                            break Some(buf[..n].to_vec());
                        }
                        Ok(_) => continue,
                        Err(_) => break None,
                    }
                }
            }
            Via::Tcp => (|| {
                let mut stream = TcpStream::connect(server).ok()?;
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&bytes);
                stream.write_all(&out).ok()?;
                let mut len = [0u8; 2];
                stream.read_exact(&mut len).ok()?;
                let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream.read_exact(&mut reply).ok()?;
                Some(reply)
            })(),
        };
        if let Some(reply) = reply {
            return Some(Message::from_vec(&reply).expect("a well-formed reply"));
        }
    }
    None
}

// === comparing ===

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    /// `owner class type rdata`, the SOA serial masked.
    text: String,
    ttl: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    rcode: String,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    answer: Vec<Rec>,
    authority: Vec<Rec>,
    additional: Vec<Rec>,
}

fn rec(r: &Record) -> Rec {
    let data = match &r.data {
        // The serial is the time of the last change: it cannot agree between two servers.
        RData::SOA(soa) => format!(
            "{} {} (serial) {} {} {} {}",
            soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        other => other.to_string(),
    };
    Rec {
        text: format!("{} {} {} {}", r.name, r.dns_class, r.record_type(), data),
        ttl: r.ttl,
    }
}

fn section(records: &[Record]) -> Vec<Rec> {
    let mut out: Vec<Rec> = records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(rec)
        .collect();
    out.sort_by(|a, b| {
        (a.text.to_ascii_lowercase(), a.ttl).cmp(&(b.text.to_ascii_lowercase(), b.ttl))
    });
    out
}

fn view(m: &Message) -> View {
    View {
        rcode: format!("{:?}", m.metadata.response_code),
        aa: m.metadata.authoritative,
        tc: m.metadata.truncation,
        rd: m.metadata.recursion_desired,
        ra: m.metadata.recursion_available,
        answer: section(&m.answers),
        authority: section(&m.authorities),
        additional: section(&m.additionals),
    }
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.rcode)?;
        for (on, flag) in [
            (self.aa, "aa"),
            (self.tc, "tc"),
            (self.rd, "rd"),
            (self.ra, "ra"),
        ] {
            if on {
                write!(f, " {flag}")?;
            }
        }
        for (label, records) in [
            ("ANSWER", &self.answer),
            ("AUTHORITY", &self.authority),
            ("ADDITIONAL", &self.additional),
        ] {
            if records.is_empty() {
                continue;
            }
            write!(f, "\n      {label} ({}):", records.len())?;
            for r in records.iter().take(6) {
                write!(f, "\n        {} (ttl {})", r.text, r.ttl)?;
            }
            if records.len() > 6 {
                write!(f, "\n        … {} more", records.len() - 6)?;
            }
        }
        Ok(())
    }
}

/// What is compared, in the report's and the allow-list's words.
/// What an allow-list entry may name: the aspects, and `upstream` (what reached the upstream).
const ALLOW_ASPECTS: [&str; 12] = [
    "rcode",
    "aa",
    "tc",
    "rd",
    "ra",
    "count",
    "answer",
    "authority",
    "additional",
    "case",
    "ttl",
    "upstream",
];

struct Diff {
    aspect: &'static str,
    coredns: String,
    clusterdns: String,
}

fn texts(records: &[Rec]) -> String {
    let mut t: Vec<String> = records
        .iter()
        .map(|r| r.text.to_ascii_lowercase())
        .collect();
    t.sort();
    t.join(" ; ")
}

/// How TTLs are compared.
#[derive(Clone, Copy)]
enum Ttls<'a> {
    /// Cold caches (the first time a question is asked): exactly.
    Exact,
    /// A question asked before in the same round (another spelling or transport), which a
    /// cache may answer a second later: within one second.
    Near,
    /// The second round, where caches count down: clusterdns's TTL of each record is at most
    /// CoreDNS's first-round TTL of it (the Corefile's `ttl` and cache caps applied) and at most
    /// its own first-round TTL.
    Within {
        coredns: &'a View,
        clusterdns: &'a View,
    },
}

fn all_records(v: &View) -> impl Iterator<Item = &Rec> {
    v.answer.iter().chain(&v.authority).chain(&v.additional)
}

fn ttl_list<'a>(records: impl Iterator<Item = &'a Rec>) -> String {
    records
        .map(|r| format!("{} {}", r.ttl, r.text.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(" ; ")
}

/// `c` CoreDNS's answer and `x` clusterdns's.
fn differences(c: &View, x: &View, ttls: Ttls) -> Vec<Diff> {
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
    add("rcode", c.rcode.clone(), x.rcode.clone());
    add("aa", c.aa.to_string(), x.aa.to_string());
    add("tc", c.tc.to_string(), x.tc.to_string());
    add("rd", c.rd.to_string(), x.rd.to_string());
    add("ra", c.ra.to_string(), x.ra.to_string());
    if c.tc || x.tc {
        // A truncated answer holds whichever records fitted: only their number is compared.
        add(
            "count",
            c.answer.len().to_string(),
            x.answer.len().to_string(),
        );
        return out;
    }
    let sections = |v: &View| [v.answer.clone(), v.authority.clone(), v.additional.clone()];
    let (cs, xs) = (sections(c), sections(x));
    for (i, aspect) in ["answer", "authority", "additional"]
        .into_iter()
        .enumerate()
    {
        add(aspect, texts(&cs[i]), texts(&xs[i]));
    }
    let same_sets = (0..3).all(|i| texts(&cs[i]) == texts(&xs[i]));
    if !same_sets {
        return out;
    }
    let spelled = |v: &View| -> Vec<String> { all_records(v).map(|r| r.text.clone()).collect() };
    if spelled(c) != spelled(x) {
        add("case", spelled(c).join(" ; "), spelled(x).join(" ; "));
    }
    // Same sets, sorted alike: records pair up.
    let pairs = all_records(c).zip(all_records(x));
    let cap = |v: &View| -> BTreeMap<String, u32> {
        all_records(v)
            .map(|r| (r.text.to_ascii_lowercase(), r.ttl))
            .collect()
    };
    let wrong = match ttls {
        Ttls::Exact => pairs.into_iter().any(|(a, b)| a.ttl != b.ttl),
        Ttls::Near => pairs.into_iter().any(|(a, b)| a.ttl.abs_diff(b.ttl) > 1),
        Ttls::Within {
            coredns,
            clusterdns,
        } => {
            let (theirs, mine) = (cap(coredns), cap(clusterdns));
            all_records(x).any(|r| {
                let key = r.text.to_ascii_lowercase();
                theirs.get(&key).is_some_and(|t| r.ttl > *t)
                    || mine.get(&key).is_some_and(|t| r.ttl > *t)
            })
        }
    };
    if wrong {
        let theirs = match ttls {
            Ttls::Within { coredns, .. } => format!("at most {}", ttl_list(all_records(coredns))),
            _ => ttl_list(all_records(c)),
        };
        out.push(Diff {
            aspect: "ttl",
            coredns: theirs,
            clusterdns: ttl_list(all_records(x)),
        });
    }
    out
}

/// The two clusterdns modes: the same answers, TTLs included where caches are cold (`exact`); of
/// a truncated answer (which records fit depends on the rotation) the flags and how many records
/// it kept.
fn modes_differ(a: &View, b: &View, exact: bool) -> bool {
    if a.tc || b.tc {
        let header = |v: &View| (v.rcode.clone(), v.aa, v.tc, v.rd, v.ra, v.answer.len());
        return header(a) != header(b);
    }
    if exact {
        return a != b;
    }
    let strip = |v: &View| {
        let mut v = v.clone();
        for r in v
            .answer
            .iter_mut()
            .chain(&mut v.authority)
            .chain(&mut v.additional)
        {
            r.ttl = 0;
        }
        v
    };
    strip(a) != strip(b)
}

// === the allow-list ===

/// What a difference is about, for matching it with the allow-list.
struct Subject<'a> {
    corefile: &'a str,
    name: &'a str,
    qtype: String,
    rcodes: (&'a str, &'a str),
    aspect: &'a str,
    /// Text `CONTAINS` is looked for in (lower-case).
    text: String,
}

fn allowed<'a>(entries: &'a [AllowEntry], s: &Subject) -> Option<&'a AllowEntry> {
    entries.iter().find(|e| {
        e.scope
            .iter()
            .any(|g| g == "*" || glob_simple(g.as_bytes(), s.corefile.as_bytes()))
            && e.covers(&s.qtype, s.name, s.rcodes, s.aspect)
            && e.contains.as_deref().is_none_or(|c| s.text.contains(c))
    })
}

// === servers ===

/// clusterdns started with `args`, killed on drop.
struct Ours {
    child: Child,
    addr: SocketAddr,
}

impl Ours {
    fn start(args: &[&str], stderr: PathBuf) -> Ours {
        let log = std::fs::File::create(&stderr).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start clusterdns");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "clusterdns {args:?} did not report a listening address; stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            };
            if let Some(addr) = line
                .strip_prefix("clusterdns: listening on ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                return Ours {
                    child,
                    addr: addr.parse().unwrap(),
                };
            }
        }
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The node-local Corefiles' cluster DNS: kubeadm's `kubernetes` block, no cache.
fn backend(api: SocketAddr, upstream: SocketAddr) -> CoreDns {
    CoreDns::with_corefile(|port| {
        format!(
            ".:{port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        endpoint http://{api}\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }}\n    forward . {upstream}\n}}\n"
        )
    })
}

/// Asks `server` for `probe.bulk` until it answers with its address.
fn wait_synced(who: &str, server: SocketAddr) {
    let q = Question {
        name: "probe.bulk.svc.cluster.local.".to_owned(),
        qtype: RecordType::A,
        chaos: false,
        via: Via::Udp(Some(1232)),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = ask(server, &q);
        if answer.as_ref().is_some_and(|m| {
            m.answers
                .iter()
                .any(|r| matches!(&r.data, RData::A(a) if a.0.to_string() == "10.96.99.99"))
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} never served the cluster; last answer {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What reached an upstream: `(name lower-case, type, over TCP)` → count.
fn reached(up: &FakeUpstream, names: &BTreeSet<String>) -> BTreeMap<(String, String, bool), usize> {
    let mut out = BTreeMap::new();
    for s in up.seen() {
        let name = s.name.to_ascii_lowercase();
        if names.contains(&name) {
            *out.entry((name, s.qtype.to_string(), s.tcp)).or_default() += 1;
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    report: String,
    failures: Vec<String>,
    compared: usize,
    corefiles: Vec<String>,
}

impl Tally {
    fn difference(&mut self, allow: &[AllowEntry], s: &Subject, line: String, detail: &str) {
        match allowed(allow, s) {
            Some(entry) => {
                entry.used.fetch_add(1, Ordering::Relaxed);
                writeln!(self.report, "allowed (line {}) {line}", entry.line).unwrap();
            }
            None => {
                writeln!(self.report, "FAIL {line}{detail}").unwrap();
                self.failures.push(format!("{line}{detail}"));
            }
        }
    }
}

fn run_case(case: &Case, api: &FakeApi, allow: &[AllowEntry], tally: &mut Tally) {
    let started = Instant::now();
    let blocks = case_blocks(case);
    let work = TempDir::new();
    let ups = [upstream(), upstream(), upstream()];
    for up in &ups {
        stub_records(&blocks, up);
    }
    let needs_backend = case.text.lines().any(|l| {
        let w: Vec<&str> = code(l).split_whitespace().collect();
        w.first() == Some(&"forward") && w.iter().any(|t| is_cluster_dns(t))
    });
    let backend_upstream = upstream();
    let backend = needs_backend.then(|| backend(api.addr, backend_upstream.addr));
    let ours_env = |upstream: SocketAddr, dir: &str| Env {
        port: 0,
        api: api.addr,
        upstream,
        backend: backend.as_ref().map(|b| b.addr),
        coredns: false,
        dir: work.0.join(dir),
    };
    let env_file = ours_env(ups[1].addr, "clusterdns-corefile");
    let corefile = write_adapted(case, &env_file);
    let env_toml = ours_env(ups[2].addr, "clusterdns-converted");
    let for_toml = write_adapted(case, &env_toml);
    let text = std::fs::read_to_string(&corefile).unwrap();
    let localip: &[&str] = if text.contains("__PILLAR__LOCAL__DNS__") {
        &["--localip", "127.0.0.1"]
    } else {
        &[]
    };
    let converted = Command::new(BIN)
        .args(localip)
        .arg("convert-corefile")
        .arg(&for_toml)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&converted.stderr);
    let known = NOT_CONVERTED.iter().find(|(n, _)| *n == case.name);
    if !converted.status.success() {
        let missing: Vec<&str> = known
            .map(|(_, words)| words.iter().copied())
            .into_iter()
            .flatten()
            .filter(|w| !stderr.contains(w))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: convert-corefile did not mention {missing:?}:\n{stderr}",
            case.name
        );
        assert!(
            known.is_some(),
            "{}: no longer converts completely (exit {:?}):\n{stderr}\nadapted Corefile:\n{}",
            case.name,
            converted.status.code(),
            std::fs::read_to_string(&for_toml).unwrap()
        );
        writeln!(
            tally.report,
            "== {}: not compared, does not convert: {}",
            case.name,
            stderr.trim().replace('\n', " / ")
        )
        .unwrap();
        return;
    }
    assert!(
        known.is_none(),
        "{} converts completely now: remove it from NOT_CONVERTED and it is compared",
        case.name
    );
    let toml = env_toml.dir.join("clusterdns.toml");
    std::fs::write(&toml, &converted.stdout).unwrap();

    let coredns_dir = work.0.clone();
    let coredns = CoreDns::with_corefile(|port| {
        let env = Env {
            port,
            api: api.addr,
            upstream: ups[0].addr,
            backend: backend.as_ref().map(|b| b.addr),
            coredns: true,
            dir: coredns_dir.join(format!("coredns-{port}")),
        };
        let path = write_adapted(case, &env);
        std::fs::read_to_string(path).unwrap()
    });
    let mut args = localip.to_vec();
    args.push("--corefile");
    args.push(corefile.to_str().unwrap());
    let by_corefile = Ours::start(&args, work.0.join("clusterdns-corefile.log"));
    let by_toml = Ours::start(
        &["--config", toml.to_str().unwrap()],
        work.0.join("clusterdns-converted.log"),
    );
    let questions = questions(&blocks);
    if questions
        .iter()
        .any(|q| q.name.ends_with(".svc.cluster.local."))
    {
        wait_synced("CoreDNS", coredns.addr);
        wait_synced("clusterdns --corefile", by_corefile.addr);
        wait_synced("clusterdns --config", by_toml.addr);
    }
    let servers = [coredns.addr, by_corefile.addr, by_toml.addr];
    let modes = ["--corefile", "converted"];
    let mut names: BTreeSet<String> = questions
        .iter()
        .map(|q| q.name.to_ascii_lowercase())
        .collect();
    names.insert("api.payments.example.com.".to_owned());
    let mut first_round: Vec<[View; 3]> = Vec::new();
    let mut upstream_rounds = Vec::new();
    writeln!(
        tally.report,
        "== {}: {} questions\n{}",
        case.name,
        questions.len(),
        std::fs::read_to_string(&corefile).unwrap()
    )
    .unwrap();
    let detail = |views: &[View; 3]| {
        format!(
            "\n    CoreDNS:    {}\n    clusterdns --corefile: {}\n    clusterdns converted:  {}",
            views[0], views[1], views[2]
        )
    };
    for round in 1..=2 {
        let mut asked = BTreeSet::new();
        if round == 2 {
            // Long enough for a cached TTL to count down.
            std::thread::sleep(Duration::from_millis(1100));
        }
        for (qi, q) in questions.iter().enumerate() {
            let answers = servers.map(|s| ask(s, q));
            let who = ["CoreDNS", "clusterdns --corefile", "clusterdns converted"];
            if let Some(i) = answers.iter().position(Option::is_none) {
                let line = format!(
                    "[{} round {round}] {q}: no answer from {}",
                    case.name, who[i]
                );
                writeln!(tally.report, "FAIL {line}").unwrap();
                tally.failures.push(line);
                continue;
            }
            let views = answers.map(|m| view(&m.unwrap()));
            tally.compared += 1;
            if round == 1 {
                let c = &views[0];
                writeln!(
                    tally.report,
                    "  {q}: CoreDNS {}{} with {} answer records",
                    c.rcode,
                    if c.tc { " (TC)" } else { "" },
                    c.answer.len()
                )
                .unwrap();
            }
            let repeated = !asked.insert((q.name.to_ascii_lowercase(), q.qtype));
            if modes_differ(&views[1], &views[2], round == 1 && !repeated) {
                let line = format!(
                    "[{} round {round}] {q}: clusterdns --corefile and converted differ",
                    case.name
                );
                let d = detail(&views);
                writeln!(tally.report, "FAIL {line}{d}").unwrap();
                tally.failures.push(format!("{line}{d}"));
            }
            for (m, mode) in modes.iter().enumerate() {
                let (c, x) = (&views[0], &views[m + 1]);
                let ttls = match (round, repeated) {
                    (1, false) => Ttls::Exact,
                    (1, true) => Ttls::Near,
                    _ => Ttls::Within {
                        coredns: &first_round[qi][0],
                        clusterdns: &first_round[qi][m + 1],
                    },
                };
                for d in differences(c, x, ttls) {
                    let line = format!(
                        "[{} {mode} round {round}] {q} {}: CoreDNS {:?} / clusterdns {:?}",
                        case.name, d.aspect, d.coredns, d.clusterdns
                    );
                    let text = format!(
                        "via={} {}={}/{} {} {} {} {}",
                        q.via.tag(),
                        d.aspect,
                        d.coredns,
                        d.clusterdns,
                        d.coredns,
                        d.clusterdns,
                        texts(&c.answer),
                        texts(&x.answer)
                    )
                    .to_ascii_lowercase();
                    let subject = Subject {
                        corefile: &case.name,
                        name: &q.name,
                        qtype: q.qtype.to_string(),
                        rcodes: (&c.rcode, &x.rcode),
                        aspect: d.aspect,
                        text,
                    };
                    tally.difference(allow, &subject, line, &detail(&views));
                }
            }
            if round == 1 {
                first_round.push(views);
            }
        }
        upstream_rounds.push(ups.each_ref().map(|u| reached(u, &names)));
    }
    // What reached each upstream in each round: the first round, and what the second added
    // (nothing, where a cache answered).
    let sent = |server: usize, round: usize| -> BTreeSet<(String, String, bool)> {
        let now = &upstream_rounds[round][server];
        now.iter()
            .filter(|(k, n)| {
                round == 0 || **n > upstream_rounds[0][server].get(*k).copied().unwrap_or(0)
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    for round in 0..2 {
        let theirs = sent(0, round);
        for (m, mode) in modes.iter().enumerate() {
            let mine = sent(m + 1, round);
            for key in theirs.symmetric_difference(&mine) {
                let (name, qtype, tcp) = key;
                let (c, x) = (theirs.contains(key), mine.contains(key));
                let line = format!(
                    "[{} {mode} round {}] {name} {qtype} upstream{}: CoreDNS sent it: {c} / clusterdns sent it: {x}",
                    case.name,
                    round + 1,
                    if *tcp { " over TCP" } else { " over UDP" },
                );
                let subject = Subject {
                    corefile: &case.name,
                    name,
                    qtype: qtype.clone(),
                    rcodes: ("-", "-"),
                    aspect: "upstream",
                    text: format!("round {} tcp {tcp}", round + 1),
                };
                tally.difference(allow, &subject, line, "");
            }
        }
    }
    writeln!(
        tally.report,
        "== {}: {} questions, 2 rounds, {:?}",
        case.name,
        questions.len(),
        started.elapsed()
    )
    .unwrap();
    tally
        .corefiles
        .push(format!("{} ({} questions)", case.name, questions.len()));
}

#[test]
fn distribution_corefiles_answer_as_in_coredns() {
    let started = Instant::now();
    let allow = allow_list::read(
        &root().join("tests/corefile-differential-allow.txt"),
        Some("COREFILES"),
        &ALLOW_ASPECTS,
    );
    let api = FakeApi::start();
    api.control("apply", &bulk_objects());
    let mut tally = Tally::default();
    let cases = cases();
    for case in &cases {
        run_case(case, &api, &allow, &mut tally);
    }
    for (name, _) in NOT_CONVERTED {
        assert!(
            cases.iter().any(|c| c.name == *name),
            "NOT_CONVERTED names {name}, which is not in tests/corefiles/"
        );
    }
    let unused: Vec<String> = allow
        .iter()
        .filter(|e| e.used.load(Ordering::Relaxed) == 0)
        .map(|e| format!("line {}: {}", e.line, e.reason))
        .collect();
    let Tally {
        report,
        failures,
        compared,
        corefiles,
    } = &mut tally;
    writeln!(
        report,
        "== {} Corefiles compared ({}), {compared} questions asked of all three servers, {} differences not allowed, {} allow-list entries unused, {:?}",
        corefiles.len(),
        corefiles.join(", "),
        failures.len(),
        unused.len(),
        started.elapsed()
    )
    .unwrap();
    let report_path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("corefile-differential-report.txt");
    let _ = std::fs::write(&report_path, report.as_str());
    println!(
        "corefile differential: {} Corefiles, {compared} questions, {} failures, {:?}; report in {}",
        corefiles.len(),
        failures.len(),
        started.elapsed(),
        report_path.display()
    );
    assert!(
        failures.is_empty(),
        "{} differences from CoreDNS that tests/corefile-differential-allow.txt does not list (report: {}):\n{}",
        failures.len(),
        report_path.display(),
        failures
            .iter()
            .take(40)
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
