//! The Kubernetes API source: the real binary watching a fake API server
//! (`tests/stand-in/fake_apiserver.py`) that the test changes and breaks on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{Proto, Server, lines, query};

/// The fake API server, killed on drop.
pub struct FakeApi {
    /// `None` for a second handle on a fake another handle owns.
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl FakeApi {
    /// The stand-in with the demo cluster.
    pub fn start() -> FakeApi {
        Self::start_with(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand-in/demo.json"))
    }

    /// The stand-in loaded with `fixture` (one object or a `kind: List`).
    pub fn start_with(fixture: &Path) -> FakeApi {
        Self::start_with_args(fixture, &[])
    }

    /// The stand-in loaded with `fixture`, with extra options (`--no-mcs`).
    pub fn start_with_args(fixture: &Path, extra: &[&str]) -> FakeApi {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand-in");
        let mut child = Command::new("python3")
            .arg(root.join("fake_apiserver.py"))
            .args(["--listen", "127.0.0.1:0", "--fixture"])
            .arg(fixture)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be installed to run the fake API server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("fake API server prints its address");
        let addr = line
            .trim()
            .strip_prefix("fake-apiserver: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        FakeApi {
            child: Some(child),
            addr,
        }
    }

    /// A second handle on the fake at `addr` (another handle owns it), for another thread.
    pub fn handle(addr: SocketAddr) -> FakeApi {
        FakeApi { child: None, addr }
    }

    /// One HTTP request to the fake; returns the body.
    fn call(&self, method: &str, path: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{method} {path}: {response}"
        );
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    pub fn control(&self, action: &str, body: &str) -> String {
        self.call("POST", &format!("/__control/{action}"), body)
    }

    pub fn requests(&self) -> String {
        self.call("GET", "/__control/requests", "")
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn watching(api: &FakeApi, extra: &str) -> Server {
    Server::start(&format!(
        "endpoint = \"http://{}\"\npods = \"insecure\"\n{extra}",
        api.addr
    ))
}

fn a_of(m: &Message) -> Vec<String> {
    let mut ips: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

/// Polls until `check` holds for the answer to `name` A, or panics after `within`.
pub async fn eventually(
    server: &Server,
    name: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&Message) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let m = query(server.addr, name, RecordType::A, Proto::Udp).await;
        if check(&m) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what} not reached within {within:?}; last answer {m:?}\nstderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const CHECKOUT: &str = r#"{"kind":"List","items":[
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"checkout","namespace":"shop"},
  "spec":{"clusterIP":"10.96.10.77","clusterIPs":["10.96.10.77"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"checkout-x1","namespace":"shop",
  "labels":{"kubernetes.io/service-name":"checkout"}},"addressType":"IPv4",
  "endpoints":[{"addresses":["10.244.3.7"],"conditions":{"ready":true}}],
  "ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]}"#;

#[tokio::test]
async fn the_zone_follows_the_api_incrementally() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_of(&m), ["10.96.10.10"]);
    let m = query(
        server.addr,
        "postgres.data.svc.cluster.local.",
        RecordType::A,
        Proto::Tcp,
    )
    .await;
    assert_eq!(
        a_of(&m),
        ["10.244.1.30", "10.244.2.31"],
        "ready endpoints only"
    );

    api.control("apply", CHECKOUT);
    eventually(
        &server,
        "checkout.shop.svc.cluster.local.",
        Duration::from_secs(5),
        "new service",
        |m| a_of(m) == ["10.96.10.77"],
    )
    .await;
    api.control(
        "delete",
        r#"{"kind":"Service","namespace":"shop","name":"checkout"}"#,
    );
    eventually(
        &server,
        "checkout.shop.svc.cluster.local.",
        Duration::from_secs(5),
        "NXDOMAIN after delete",
        |m| m.metadata.response_code == ResponseCode::NXDomain,
    )
    .await;
    // Untouched names were never disturbed.
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_of(&m), ["10.96.10.10"]);
}

#[tokio::test]
async fn before_the_first_sync_names_get_servfail_not_nxdomain() {
    let api = FakeApi::start();
    api.control("fail", r#"{"status":500}"#);
    let server = watching(&api, "startup_timeout_secs = 1");
    for name in [
        "frontend.shop.svc.cluster.local.",
        "nosuch.shop.svc.cluster.local.",
    ] {
        let m = query(server.addr, name, RecordType::A, Proto::Udp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{name}");
    }
    api.control("recover", "");
    eventually(
        &server,
        "frontend.shop.svc.cluster.local.",
        Duration::from_secs(15),
        "answer after sync",
        |m| a_of(m) == ["10.96.10.10"],
    )
    .await;
    // Every kind synced once: a missing name is a real NXDOMAIN now.
    eventually(
        &server,
        "nosuch.shop.svc.cluster.local.",
        Duration::from_secs(15),
        "NXDOMAIN after sync",
        |m| m.metadata.response_code == ResponseCode::NXDomain,
    )
    .await;
}

#[tokio::test]
async fn an_api_outage_keeps_the_zone_served_and_logs_lost_and_regained_once() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    api.control("fail", r#"{"status":500}"#);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("lost the Kubernetes API") {
        assert!(
            Instant::now() < deadline,
            "no 'lost' log:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        let m = query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(a_of(&m), ["10.96.10.10"], "served through the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.control("recover", "");
    // No change is made after recovery: the return must be noticed all the same.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server.stderr().contains("Kubernetes API regained") {
        assert!(
            Instant::now() < deadline,
            "no 'regained' log:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.stderr();
    assert_eq!(log.matches("lost the Kubernetes API").count(), 1, "{log}");
    assert_eq!(log.matches("Kubernetes API regained").count(), 1, "{log}");
}

#[tokio::test]
async fn a_relist_after_410_removes_what_vanished_without_flicker() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    let m = query(
        server.addr,
        "cart.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_of(&m), ["10.96.10.20"]);
    // The client learns of the deletion only through the re-list the 410 forces.
    api.control("hold-watches", "");
    api.control(
        "delete",
        r#"{"kind":"Service","namespace":"shop","name":"cart"}"#,
    );
    api.control("compact", "");
    api.control("release-watches", "");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let frontend = query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(
            a_of(&frontend),
            ["10.96.10.10"],
            "no flicker during re-list"
        );
        let cart = query(
            server.addr,
            "cart.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        if cart.metadata.response_code == ResponseCode::NXDomain {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cart never vanished:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !server.stderr().contains("lost the Kubernetes API"),
        "410 is routine"
    );
}

#[tokio::test]
async fn namespace_and_label_filters_are_sent_to_the_api() {
    let api = FakeApi::start();
    let server = watching(&api, "namespaces = [\"shop\"]\nlabels = \"tier!=internal\"");
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_of(&m), ["10.96.10.10"]);
    let m = query(
        server.addr,
        "postgres.data.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let requests = api.requests();
    assert!(
        requests.contains("/api/v1/namespaces/shop/services?"),
        "{requests}"
    );
    assert!(
        requests.contains("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?"),
        "{requests}"
    );
    assert!(
        requests.contains("labelSelector=tier%21%3Dinternal"),
        "{requests}"
    );
    assert!(
        !requests.contains("/api/v1/services?"),
        "no cluster-wide watch: {requests}"
    );
    assert!(
        !requests.contains("pods"),
        "pods are never watched unless verified"
    );
}

#[tokio::test]
async fn invalid_api_objects_are_skipped_with_a_warning_and_the_rest_served() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    let long_name = "x".repeat(70);
    let many_ports: Vec<String> = (0..10_000)
        .map(|i| {
            format!(
                r#"{{"name":"p{i}","port":{},"protocol":"TCP"}}"#,
                1 + i % 60000
            )
        })
        .collect();
    let bad = format!(
        r#"{{"kind":"List","items":[
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"badip","namespace":"shop"}},
   "spec":{{"clusterIP":"10.96.999.1","clusterIPs":["10.96.999.1"]}}}},
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{long_name}","namespace":"shop"}},
   "spec":{{"clusterIP":"10.96.10.91"}}}},
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"nospec","namespace":"shop"}}}},
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"manyports","namespace":"shop"}},
   "spec":{{"clusterIP":"10.96.10.92","ports":[{}]}}}},
 {{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"junk-1","namespace":"data",
   "labels":{{"kubernetes.io/service-name":"postgres"}}}},"addressType":"IPv4",
   "endpoints":[{{"addresses":["10.244.9.99"],"conditions":{{"ready":true}}}},
                {{"addresses":["not-an-address"]}}]}},
 {{"apiVersion":"v1","kind":"Service","metadata":{{"name":"inventory","namespace":"shop"}},
   "spec":{{"clusterIP":"None","ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}},
 {{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"inventory-a","namespace":"shop",
   "labels":{{"kubernetes.io/service-name":"inventory"}}}},"addressType":"IPv4",
   "endpoints":[{{"addresses":["10.244.9.1"],"conditions":{{"ready":true}}}}]}}]}}"#,
        many_ports.join(",")
    );
    api.control("apply", &bad);
    api.control("apply", CHECKOUT);
    // inventory's Service and slice come after every invalid object on their watches: once
    // it is served, all of them have been seen.
    eventually(
        &server,
        "inventory.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "valid objects after invalid ones",
        |m| a_of(m) == ["10.244.9.1"],
    )
    .await;
    eventually(
        &server,
        "checkout.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "valid objects applied after invalid ones",
        |m| a_of(m) == ["10.96.10.77"],
    )
    .await;
    let log = server.stderr();
    for object in [
        "shop/badip".to_owned(),
        format!("shop/{long_name}"),
        "shop/nospec".to_owned(),
        "data/junk-1".to_owned(),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("skipping invalid object") && l.contains(&object)),
            "a warning names {object}:\n{log}"
        );
    }
    for name in ["badip", "nospec"] {
        let m = query(
            server.addr,
            &format!("{name}.shop.svc.cluster.local."),
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
    }
    // The headless postgres keeps its own ready endpoints: the junk slice, whose valid
    // endpoint 10.244.9.99 would show here, added nothing.
    let m = query(
        server.addr,
        "postgres.data.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_of(&m), ["10.244.1.30", "10.244.2.31"]);
    // A Service with 10,000 ports is served (never fatal): one port's SRV is its one record,
    // and all of them are cut to what fits in a message (TC set).
    let m = query(
        server.addr,
        "manyports.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_of(&m), ["10.96.10.92"]);
    let m = query(
        server.addr,
        "_p1._tcp.manyports.shop.svc.cluster.local.",
        RecordType::SRV,
        Proto::Tcp,
    )
    .await;
    assert_eq!(
        lines(&m.answers),
        [
            "_p1._tcp.manyports.shop.svc.cluster.local. 5 IN SRV 0 100 2 manyports.shop.svc.cluster.local."
        ]
    );
    let mut over_udp = 0;
    for proto in [Proto::Udp, Proto::Tcp] {
        let m = query(
            server.addr,
            "manyports.shop.svc.cluster.local.",
            RecordType::SRV,
            proto,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{proto:?}");
        assert!(m.metadata.truncation, "{proto:?}: TC set");
        let n = m.answers.len();
        assert!(
            n > over_udp && n < 10_000,
            "{proto:?}: {n} of 10,000 SRV records (UDP: {over_udp})"
        );
        over_udp = n;
    }
}

#[tokio::test]
async fn heavy_churn_keeps_answers_flowing_and_memory_returns() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    let pid = server.child.id();
    // The churned slices belong to a headless Service, so the updates show in its answers.
    api.control(
        "apply",
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"churn","namespace":"shop"},
  "spec":{"clusterIP":"None","ports":[{"name":"grpc","port":9090,"protocol":"TCP"}]}}"#,
    );
    api.control(
        "apply",
        r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"churn-seed","namespace":"shop","labels":{"kubernetes.io/service-name":"churn"}},"addressType":"IPv4","endpoints":[{"addresses":["10.244.60.1"],"conditions":{"ready":true}}],"ports":[{"name":"grpc","port":9090,"protocol":"TCP"}]}"#,
    );
    eventually(
        &server,
        "churn.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "the churned Service served",
        |m| a_of(m) == ["10.244.60.1"],
    )
    .await;
    let before = rss_kib(pid);
    let api_addr = api.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // Bounded: at most 2000 updates or 6 s.
    let churn = std::thread::spawn(move || {
        let api = FakeApi {
            child: None,
            addr: api_addr,
        };
        let start = Instant::now();
        let mut n = 0;
        while n < 2000
            && start.elapsed() < Duration::from_secs(6)
            && !stop2.load(std::sync::atomic::Ordering::Relaxed)
        {
            let ip = format!("10.244.50.{}", n % 250 + 1);
            api.control(
                "apply",
                &format!(
                    r#"{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"churn-{}","namespace":"shop","labels":{{"kubernetes.io/service-name":"churn"}}}},"addressType":"IPv4","endpoints":[{{"addresses":["{ip}"],"conditions":{{"ready":true}}}}],"ports":[{{"name":"grpc","port":9090,"protocol":"TCP"}}]}}"#,
                    n % 20
                ),
            );
            n += 1;
        }
        n
    });
    let start = Instant::now();
    let mut asked = 0;
    while start.elapsed() < Duration::from_secs(5) {
        let m = query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(a_of(&m), ["10.96.10.10"], "answered during churn");
        asked += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let updates = churn.join().unwrap();
    assert!(updates > 100, "churn ran: {updates} updates");
    assert!(asked > 50);
    // Every update reached the zone: each of the 20 slices serves the last address it got.
    let mut expected: Vec<String> = (updates - 20..updates)
        .map(|n| format!("10.244.50.{}", n % 250 + 1))
        .chain(["10.244.60.1".to_owned()])
        .collect();
    expected.sort();
    eventually(
        &server,
        "churn.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "the churn's final addresses",
        |m| a_of(m) == expected,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    assert!(
        after < before + 20_000,
        "RSS grew from {before} kB to {after} kB over {updates} updates"
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

impl FakeApi {
    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.call("GET", "/__control/state", "")).unwrap()
    }
}

#[tokio::test]
async fn a_watch_stream_cut_mid_object_is_resumed_and_the_change_served() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    api.control("apply", CHECKOUT);
    eventually(
        &server,
        "checkout.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "checkout served",
        |m| a_of(m) == ["10.96.10.77"],
    )
    .await;
    // The next EndpointSlice event dies half-way through its JSON, twice in a row (the first
    // re-watch is cut too), and a Service event once.
    api.control("cut-watches", r#"{"kind":"EndpointSlice","count":2}"#);
    api.control("cut-watches", r#"{"kind":"Service","count":1}"#);
    api.control(
        "apply",
        r#"{"kind":"List","items":[
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"ledger","namespace":"shop"},
  "spec":{"clusterIP":"None","ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"ledger-a","namespace":"shop",
  "labels":{"kubernetes.io/service-name":"ledger"}},"addressType":"IPv4",
  "endpoints":[{"addresses":["10.244.9.1"],"conditions":{"ready":true}},
               {"addresses":["10.244.9.2"],"conditions":{"ready":true}}],
  "ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]}"#,
    );
    // Meanwhile the rest is answered from the last good zone.
    let m = query(
        server.addr,
        "checkout.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(
        a_of(&m),
        ["10.96.10.77"],
        "served while the watches were cut"
    );
    eventually(
        &server,
        "ledger.shop.svc.cluster.local.",
        Duration::from_secs(20),
        "the cut change served after the re-watch",
        |m| a_of(m) == ["10.244.9.1", "10.244.9.2"],
    )
    .await;
    let state = api.state();
    assert_eq!(
        state["cuts"]["EndpointSlice"], 0,
        "both EndpointSlice cuts happened: {state}"
    );
    assert_eq!(
        state["cuts"]["Service"], 0,
        "the Service cut happened: {state}"
    );
    // Later changes still arrive over the resumed watches.
    api.control(
        "delete",
        r#"{"kind":"EndpointSlice","namespace":"shop","name":"ledger-a"}"#,
    );
    eventually(
        &server,
        "ledger.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "NXDOMAIN after the slice is deleted",
        |m| m.metadata.response_code == ResponseCode::NXDomain,
    )
    .await;
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

/// The issue's load: 1,000 EndpointSlice updates per second for 60 s (applied by the stand-in
/// itself, so the test client's speed does not matter). Queries are answered throughout, the
/// final state is served exactly, and RSS comes back to its level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_updates_per_second_for_a_minute_keep_answers_flowing_and_memory_returns() {
    const COUNT: u64 = 60_000;
    const SLICES: u64 = 20;
    let api = FakeApi::start();
    let server = watching(&api, "");
    api.control(
        "apply",
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"burst","namespace":"shop"},
  "spec":{"clusterIP":"None","ports":[{"name":"grpc","port":9090,"protocol":"TCP"}]}}"#,
    );
    eventually(
        &server,
        "frontend.shop.svc.cluster.local.",
        Duration::from_secs(10),
        "synced",
        |m| a_of(m) == ["10.96.10.10"],
    )
    .await;
    // A first short burst settles the allocator's working set before the baseline is taken.
    api.control(
        "churn",
        &format!(
            r#"{{"namespace":"shop","service":"burst","count":{},"rate":1000,"slices":{SLICES}}}"#,
            2 * SLICES
        ),
    );
    while api.state()["churning"] == true {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.child.id();
    let before = rss_kib(pid);

    let started = Instant::now();
    api.control(
        "churn",
        &format!(
            r#"{{"namespace":"shop","service":"burst","count":{COUNT},"rate":1000,"slices":{SLICES}}}"#
        ),
    );
    let mut asked = 0u64;
    let mut peak = before;
    // Bounded: the churn takes 60 s at the requested rate; give the stand-in 120 s at most.
    loop {
        let m = query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(a_of(&m), ["10.96.10.10"], "answered during churn");
        asked += 1;
        if asked.is_multiple_of(50) {
            peak = peak.max(rss_kib(pid));
            if api.state()["churning"] == false {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the churn did not finish within 120 s: {}",
            api.state()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let churned = api.state()["churned"].as_u64().unwrap();
    assert_eq!(churned, COUNT, "every update applied by the stand-in");
    assert!(
        elapsed < Duration::from_secs(75),
        "the stand-in could not keep 1,000 updates/s: {COUNT} took {elapsed:?}"
    );
    // The final state: the last address each slice was given (see the stand-in's README).
    let mut expected: Vec<String> = (COUNT - SLICES..COUNT)
        .map(|n| format!("10.{}.{}.{}", 200 + n % 50, n / 250 % 250, n % 250 + 1))
        .collect();
    expected.sort();
    eventually(
        &server,
        "burst.shop.svc.cluster.local.",
        Duration::from_secs(20),
        "the final addresses served",
        |m| a_of(m) == expected,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid);
    assert!(asked > 1000, "queried throughout: {asked}");
    assert!(
        after < before + 10_000,
        "RSS {before} kB before, {peak} kB at peak, {after} kB after {COUNT} updates"
    );
    eprintln!(
        "{COUNT} updates in {elapsed:?}, {asked} queries answered, RSS {before} → peak {peak} → {after} kB"
    );
}
