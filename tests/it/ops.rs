//! Operating it like CoreDNS: probes, metrics, reload, shutdown, loadbalance, logs, version.

use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{BIN, Proto, Server, TempDir, demo_dir, dig, http_get, query};
use crate::kube_api::FakeApi;

const ADMIN: &str =
    "[admin]\nhealth = \"127.0.0.1:0\"\nready = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n";

fn demo_block(extra: &str) -> String {
    format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\n{extra}\n[server.kubernetes]\nmanifests = {:?}\npods = \"insecure\"\n",
        demo_dir()
    )
}

/// The value of one sample line `name{labels} value` (labels given in order, exactly).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The metrics page once every series has its wanted value (a query is counted just after
/// its answer is sent, so a scrape right after the answer may not see it yet); counters only
/// grow, so a series past its value fails at the deadline just as one that never gets there.
fn settled(metrics: std::net::SocketAddr, wanted: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = http_get(metrics, "/metrics");
        assert_eq!(status, 200);
        if wanted
            .iter()
            .all(|(series, want)| sample(&page, series) == *want)
        {
            return page;
        }
        if Instant::now() > deadline {
            for (series, want) in wanted {
                assert_eq!(sample(&page, series), *want, "{series}\n{page}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn ready_goes_from_503_to_200_once_the_api_synced_and_health_is_200_throughout() {
    let api = FakeApi::start();
    api.control("fail", r#"{"status":500}"#);
    let config = format!(
        "{ADMIN}[[server]]\nlisten = [\"127.0.0.1:0\"]\n[server.kubernetes]\nendpoint = \"http://{}\"\nstartup_timeout_secs = 1\n",
        api.addr
    );
    let server = Server::with_config(&config);
    let (status, body) = http_get(server.admin_for("/ready"), "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not synced"), "says why: {body}");
    assert_eq!(http_get(server.admin_for("/health"), "/health").0, 200);
    api.control("recover", "");
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_get(server.admin_for("/ready"), "/ready").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(server.admin_for("/health"), "/health").0, 200);
    assert_eq!(http_get(server.admin_for("/ready"), "/nope").0, 404);
}

#[tokio::test]
async fn metrics_count_exactly_the_queries_sent_by_type_and_rcode_and_pass_promtool() {
    let server = Server::with_config(&format!("{ADMIN}{}", demo_block("")));
    let metrics = server.admin_for("/metrics");
    for _ in 0..3 {
        query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
    }
    for _ in 0..2 {
        query(
            server.addr,
            "nosuch.shop.svc.cluster.local.",
            RecordType::AAAA,
            Proto::Tcp,
        )
        .await;
    }
    let s = format!("dns://{}", server.addr);
    let a = format!(
        "coredns_dns_requests_total{{server=\"{s}\",zone=\".\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"}}"
    );
    let aaaa = format!(
        "coredns_dns_requests_total{{server=\"{s}\",zone=\".\",view=\"\",proto=\"tcp\",family=\"1\",type=\"AAAA\"}}"
    );
    let noerror = format!(
        "coredns_dns_responses_total{{server=\"{s}\",zone=\".\",view=\"\",rcode=\"NOERROR\",plugin=\"kubernetes\"}}"
    );
    let nxdomain = format!(
        "coredns_dns_responses_total{{server=\"{s}\",zone=\".\",view=\"\",rcode=\"NXDOMAIN\",plugin=\"kubernetes\"}}"
    );
    let page = settled(
        metrics,
        &[(&a, 3.0), (&aaaa, 2.0), (&noerror, 3.0), (&nxdomain, 2.0)],
    );
    for family in [
        "coredns_dns_request_duration_seconds_bucket",
        "coredns_dns_request_size_bytes_bucket",
        "coredns_dns_response_size_bytes_bucket",
        "coredns_build_info",
        "coredns_reload_failed_total",
        "coredns_panics_total 0",
        "coredns_kubernetes_dns_programming_duration_seconds_bucket",
        "process_resident_memory_bytes",
    ] {
        assert!(page.contains(family), "{family} missing:\n{page}");
    }

    // One more query moves the counter by exactly one.
    query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    let page = settled(metrics, &[(&a, 4.0)]);

    let file = server.dir.write("metrics.txt", &page);
    let output = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool must be installed (apt-get install prometheus); .ci/run installs it");
    assert!(
        output.status.success(),
        "promtool rejected /metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Points `link` at `target` atomically, as the kubelet updates a ConfigMap volume.
fn swap_symlink(dir: &std::path::Path, link: &str, target: &str) {
    let tmp = dir.join(format!("{link}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(link)).unwrap();
}

#[tokio::test]
async fn a_configmap_style_symlink_swap_reloads_without_a_failed_query() {
    let dir = TempDir::new();
    let (udp, tcp) = crate::upstream::bind_pair();
    let addr = udp.local_addr().unwrap();
    drop((udp, tcp));
    let block = |ttl: u32| {
        format!(
            "[admin]\nreload_interval = \"200ms\"\n[[server]]\nlisten = [\"{addr}\"]\n[server.kubernetes]\nmanifests = {:?}\nttl = {ttl}\n",
            demo_dir()
        )
    };
    dir.write("v1/clusterdns.toml", &block(5));
    dir.write("v2/clusterdns.toml", &block(42));
    swap_symlink(&dir.0, "data", "v1");
    let config = dir.0.join("clusterdns.toml");
    std::os::unix::fs::symlink("data/clusterdns.toml", &config).unwrap();
    let server = Server::spawn(dir, &config);
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.answers[0].ttl, 5);

    let path = server.dir.0.clone();
    swap_symlink(&path, "data", "v2");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_new = false;
    let mut sent = 0;
    while Instant::now() < deadline && !seen_new {
        let m = query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        sent += 1;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "query {sent} failed during reload"
        );
        assert_eq!(m.answers.len(), 1, "query {sent}");
        seen_new = m.answers[0].ttl == 42;
    }
    assert!(
        seen_new,
        "new config never took effect:\n{}",
        server.stderr()
    );
    // The log line follows the swap by a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.stderr().contains("config reloaded") {
        assert!(
            Instant::now() < deadline,
            "no reload logged:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.addr, addr, "the listener kept its address");
}

#[tokio::test]
async fn an_invalid_edit_is_rejected_counted_and_the_old_config_keeps_answering() {
    let server = Server::with_config(&format!(
        "{ADMIN}reload_interval = \"200ms\"\n{}",
        demo_block("")
    ));
    let file = server.dir.0.join("clusterdns.toml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        good.replace("pods = \"insecure\"", "pods = \"sometimes\""),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("config reload rejected") {
        assert!(
            Instant::now() < deadline,
            "not rejected:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.stderr().contains("server[0].kubernetes.pods"),
        "names the key"
    );
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let (_, page) = http_get(server.admin_for("/metrics"), "/metrics");
    assert_eq!(sample(&page, "coredns_reload_failed_total"), 1.0, "{page}");
}

#[tokio::test]
async fn sighup_forces_a_reload() {
    let server = Server::with_config(&format!("[admin]\nreload_interval = 0\n{}", demo_block("")));
    let file = server.dir.0.join("clusterdns.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("pods = \"insecure\"", "pods = \"insecure\"\nttl = 17"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.answers[0].ttl, 5, "no polling with reload_interval = 0");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = query(
            server.addr,
            "frontend.shop.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        if m.answers[0].ttl == 17 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn sigterm_turns_ready_503_answers_through_lameduck_then_exits_0() {
    let mut server =
        Server::with_config(&format!("{ADMIN}lameduck = \"1500ms\"\n{}", demo_block("")));
    let ready = server.admin_for("/ready");
    assert_eq!(http_get(ready, "/ready").0, 200);
    let start = Instant::now();
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = http_get(ready, "/ready");
    assert_eq!(status, 503);
    assert!(body.contains("shutting down"), "{body}");
    while start.elapsed() < Duration::from_millis(1200) {
        let out = dig(
            server.addr,
            &["frontend.shop.svc.cluster.local", "A", "+short"],
        );
        assert_eq!(out.trim(), "10.96.10.10", "answers during lameduck");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after lameduck");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "exited before lameduck ended"
    );
}

#[tokio::test]
async fn multi_address_answers_rotate_and_loadbalance_can_be_switched_off() {
    let first_of = |m: &hickory_proto::op::Message| match &m.answers[0].data {
        RData::A(a) => a.0.to_string(),
        other => panic!("{other:?}"),
    };
    let on = Server::with_config(&demo_block(""));
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let m = query(
            on.addr,
            "postgres.data.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(m.answers.len(), 2);
        firsts.insert(first_of(&m));
    }
    assert_eq!(firsts.len(), 2, "both addresses lead in turn: {firsts:?}");

    let off = Server::with_config(&demo_block("loadbalance = false"));
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let m = query(
            off.addr,
            "postgres.data.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        firsts.insert(first_of(&m));
    }
    assert_eq!(firsts.len(), 1, "fixed order without loadbalance");
}

#[test]
fn the_query_log_names_client_name_type_rcode_and_duration() {
    let server = Server::with_config(&demo_block("log = true"));
    dig(server.addr, &["Frontend.shop.svc.cluster.local", "AAAA"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.stderr();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("Frontend.shop.svc.cluster.local"))
        {
            for part in [
                "client=127.0.0.1:",
                "qtype=\"AAAA\"",
                "rcode=\"NOERROR\"",
                "duration_us=",
            ] {
                assert!(line.contains(part), "{part} missing from {line}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "no query log line:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let quiet = Server::with_config(&demo_block(""));
    dig(quiet.addr, &["frontend.shop.svc.cluster.local", "A"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !quiet.stderr().contains("frontend.shop.svc.cluster.local"),
        "log is off by default"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = TempDir::new();
    let config = dir.write("clusterdns.toml", &demo_block("log = true"));
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("err.log")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.0.join("err.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not JSON: {line}"
        );
        assert!(line.contains("\"level\":"), "{line}");
    }
}

#[test]
fn version_names_the_crate_version_and_git_commit() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let commit = text
        .split("commit ")
        .nth(1)
        .map(|c| c.trim_end_matches([')', '\n']));
    assert!(commit.is_some_and(|c| !c.is_empty()), "{text}");
}

#[tokio::test]
async fn the_query_log_writes_only_the_classes_asked_for() {
    // CoreDNS's `log . { class denial error }`: NXDOMAIN and REFUSED logged, NOERROR not.
    let server = Server::with_config(&demo_block("log = [\"denial\", \"error\"]"));
    let asked = [
        ("frontend.shop.svc.cluster.local.", ResponseCode::NoError),
        ("nosuch.shop.svc.cluster.local.", ResponseCode::NXDomain),
        // No forwarder in the block: nobody answers it.
        ("example.org.", ResponseCode::Refused),
    ];
    for (name, rcode) in asked {
        let m = query(server.addr, name, RecordType::A, Proto::Udp).await;
        assert_eq!(m.metadata.response_code, rcode, "{name}");
    }
    let logged = |name: &str| {
        server
            .stderr()
            .lines()
            .any(|l| l.contains("query") && l.contains(name))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(logged("nosuch.shop") && logged("example.org")) {
        assert!(
            Instant::now() < deadline,
            "not logged:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !logged("frontend.shop"),
        "a success was logged:\n{}",
        server.stderr()
    );
}
