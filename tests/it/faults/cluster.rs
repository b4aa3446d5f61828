//! Fault scenarios: cluster. The index's writer, PTR owners, SRV deduplication, sync counting,
//! endpoint names, manifests that stop parsing and the API-outage log, each against the real
//! binary (with the fake API server or a manifests directory).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{Server, TempDir, raw_tcp, raw_udp, request_bytes};
use crate::kube_api::FakeApi;

/// Scenarios that measure latency or load a big cluster run one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// One query over UDP (raw socket, so the name's spelling is ours); panics without a reply.
fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let reply = raw_udp(
        addr,
        &request_bytes(name, qtype, Some(1232)),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|| panic!("no reply to {name} {qtype} within 5 s"));
    Message::from_vec(&reply).expect("the reply parses")
}

fn rcode(addr: SocketAddr, name: &str, qtype: RecordType) -> ResponseCode {
    ask(addr, name, qtype).metadata.response_code
}

/// The addresses or PTR targets of an answer, sorted.
fn data_of(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::PTR(p) => Some(p.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn answer(addr: SocketAddr, name: &str, qtype: RecordType) -> Vec<String> {
    data_of(&ask(addr, name, qtype))
}

/// Polls `check` every 50 ms until it holds; panics after `within` with the server's log.
fn until(server: &Server, within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}\nstderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(server: &Server, needle: &str) -> usize {
    server.stderr().matches(needle).count()
}

fn watching(api: &FakeApi, extra: &str) -> Server {
    Server::start(&format!(
        "endpoint = \"http://{}\"\npods = \"insecure\"\n{extra}",
        api.addr
    ))
}

/// The reverse name of an IPv4 address.
fn rev(ip: &str) -> String {
    let mut octets: Vec<&str> = ip.split('.').collect();
    octets.reverse();
    format!("{}.in-addr.arpa", octets.join("."))
}

fn service_json(ns: &str, name: &str, cluster_ip: &str, ports: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{{"clusterIP":"{cluster_ip}","ports":[{ports}]}}}}"#
    )
}

/// An EndpointSlice of `service`; `endpoints` are JSON endpoint objects.
fn slice_json(ns: &str, name: &str, service: &str, family: &str, endpoints: &[String]) -> String {
    format!(
        r#"{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"kubernetes.io/service-name":"{service}"}}}},"addressType":"{family}","endpoints":[{}],"ports":[{{"name":"http","port":80,"protocol":"TCP"}},{{"name":"dns","port":53,"protocol":"UDP"}},{{"name":"dns-tcp","port":53,"protocol":"TCP"}}]}}"#,
        endpoints.join(",")
    )
}

fn endpoint_json(ip: &str, hostname: Option<&str>, pod: Option<&str>) -> String {
    let mut e = format!(r#"{{"addresses":["{ip}"],"conditions":{{"ready":true}}"#);
    if let Some(h) = hostname {
        e.push_str(&format!(r#","hostname":"{h}""#));
    }
    if let Some(p) = pod {
        e.push_str(&format!(r#","targetRef":{{"kind":"Pod","name":"{p}"}}"#));
    }
    e.push('}');
    e
}

fn list_json(items: &[String]) -> String {
    format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(",\n"))
}

const HTTP: &str = r#"{"name":"http","port":80,"protocol":"TCP"}"#;
const HTTP_AND_GRPC: &str =
    r#"{"name":"http","port":80,"protocol":"TCP"},{"name":"grpc","port":9090,"protocol":"TCP"}"#;

/// Slice `k` of the big Service: 1,000 endpoints; in odd rounds its first address moves.
fn big_slice(k: usize, round: usize) -> String {
    let endpoints: Vec<String> = (0..1000)
        .map(|i| {
            let ip = if k == 0 && i == 0 && round % 2 == 1 {
                "10.255.0.1".to_owned()
            } else {
                format!(
                    "10.{}.{}.{}",
                    16 + k / 4,
                    (k % 4) * 4 + i / 250,
                    i % 250 + 1
                )
            };
            endpoint_json(&ip, None, None)
        })
        .collect();
    slice_json("load", &format!("big-{k}"), "big", "IPv4", &endpoints)
}

/// Item 7: a change to a big Service (200,000 endpoints) comes as a Service event and an
/// EndpointSlice event at once, as after an outage every watcher catches up together. Each
/// watcher applied its event on a tokio worker under the index's mutex: one worker rebuilt the
/// Service, the other waited for the mutex, and no query was answered meanwhile. Now sources
/// only send; the index's own thread applies, and queries are answered throughout.
#[test]
fn big_changes_are_applied_without_stalling_the_query_workers() {
    let _one = heavy();
    let dir = TempDir::new();
    let mut items = vec![
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"load"}}"#.to_owned(),
        service_json("load", "probe", "10.96.99.1", HTTP),
        service_json("load", "big", "None", HTTP),
    ];
    items.extend((0..200).map(|k| big_slice(k, 0)));
    let api = FakeApi::start_with(&dir.write("load.json", &list_json(&items)));
    let server = watching(&api, "");
    let (addr, probe_name) = (server.addr, "probe.load.svc.cluster.local");
    let moved = "10-255-0-1.big.load.svc.cluster.local";
    until(&server, Duration::from_secs(120), "the load synced", || {
        rcode(
            addr,
            "10-65-15-250.big.load.svc.cluster.local",
            RecordType::A,
        ) == ResponseCode::NoError
    });
    // Queries every 10 ms from another thread, each timed, until told to stop.
    let stop = AtomicBool::new(false);
    let (slowest, asked) = std::thread::scope(|scope| {
        let prober = scope.spawn(|| {
            let (mut slowest, mut asked) = (Duration::ZERO, 0u32);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let reply = raw_udp(
                    addr,
                    &request_bytes(probe_name, RecordType::A, None),
                    Duration::from_secs(30),
                );
                assert!(reply.is_some(), "a query went unanswered for 30 s");
                slowest = slowest.max(started.elapsed());
                asked += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            (slowest, asked)
        });
        for round in 1..=4 {
            let ports = if round % 2 == 1 { HTTP_AND_GRPC } else { HTTP };
            let change = [
                service_json("load", "big", "None", ports),
                big_slice(0, round),
            ];
            api.control("apply", &list_json(&change));
            // Applied: the moved endpoint has its name (in odd rounds) or not.
            let want = if round % 2 == 1 {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            until(
                &server,
                Duration::from_secs(60),
                "the change applied",
                || rcode(addr, moved, RecordType::A) == want,
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        stop.store(true, Ordering::Relaxed);
        prober.join().expect("the prober")
    });
    eprintln!("4 changes applied: {asked} queries, slowest {slowest:?}");
    for line in server
        .stderr()
        .lines()
        .filter(|l| l.contains("large update"))
    {
        eprintln!("{line}");
    }
    assert!(asked > 20, "queried throughout: {asked}");
    assert!(
        slowest < Duration::from_millis(400),
        "a query waited {slowest:?} while the changes were applied\nstderr:\n{}",
        server.stderr()
    );
}

/// Item 9: updating a Service re-does the PTR records it owns; an address that keeps its owner
/// must never answer NXDOMAIN in between.
#[test]
fn ptr_answers_never_vanish_while_their_service_is_updated() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    let endpoints: Vec<String> = (0..2000)
        .map(|i| endpoint_json(&format!("10.60.{}.{}", i / 250, i % 250 + 1), None, None))
        .collect();
    api.control(
        "apply",
        &list_json(&[
            service_json("shop", "wide", "None", HTTP),
            slice_json("shop", "wide-a", "wide", "IPv4", &endpoints),
        ]),
    );
    let watched = rev("10.60.0.1");
    until(&server, Duration::from_secs(20), "the PTR served", || {
        answer(server.addr, &watched, RecordType::PTR) == ["10-60-0-1.wide.shop.svc.cluster.local."]
    });
    let done = AtomicBool::new(false);
    let (missing, asked) = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Each update changes the Service's entry (its ports), so all 2,000 PTRs are redone.
            for i in 0..40 {
                let ports = if i % 2 == 0 { HTTP_AND_GRPC } else { HTTP };
                api.control("apply", &service_json("shop", "wide", "None", ports));
                std::thread::sleep(Duration::from_millis(50));
            }
            // The last update (only http) is served once SRV for grpc is gone.
            let deadline = Instant::now() + Duration::from_secs(30);
            while rcode(
                server.addr,
                "_grpc._tcp.wide.shop.svc.cluster.local",
                RecordType::SRV,
            ) != ResponseCode::NXDomain
            {
                assert!(Instant::now() < deadline, "the updates were not applied");
                std::thread::sleep(Duration::from_millis(20));
            }
            done.store(true, Ordering::Relaxed);
        });
        let (mut missing, mut asked) = (0, 0);
        while !done.load(Ordering::Relaxed) {
            if rcode(server.addr, &watched, RecordType::PTR) != ResponseCode::NoError {
                missing += 1;
            }
            asked += 1;
        }
        (missing, asked)
    });
    assert!(asked > 100, "queried throughout: {asked}");
    assert_eq!(missing, 0, "PTR queries without an answer, of {asked}");
}

/// Item 10: SRV answers of a dual-stack headless StatefulSet repeat every name (one per family)
/// and every port number used twice (53/UDP, 53/TCP); dropping the repeats took a scan of the
/// answer per record. 10,000 pods, three ports: one query must not cost seconds.
#[test]
fn a_big_dual_stack_srv_answer_is_built_in_linear_time() {
    let _one = heavy();
    let pods = 10_000;
    let family = |v6: bool| -> Vec<String> {
        (0..pods)
            .map(|i| {
                let ip = if v6 {
                    format!("fd00:77::{:x}", i + 1)
                } else {
                    format!("10.77.{}.{}", i / 250, i % 250 + 1)
                };
                endpoint_json(&ip, Some(&format!("db-{i}")), Some(&format!("db-{i}")))
            })
            .collect()
    };
    let dir = TempDir::new();
    let fixture = dir.write(
        "big.json",
        &list_json(&[
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"big"}}"#.to_owned(),
            service_json("big", "db", "None", HTTP),
            slice_json("big", "db-v4", "db", "IPv4", &family(false)),
            slice_json("big", "db-v6", "db", "IPv6", &family(true)),
        ]),
    );
    let api = FakeApi::start_with(&fixture);
    let server = watching(&api, "");
    until(
        &server,
        Duration::from_secs(60),
        "the StatefulSet served",
        || {
            rcode(
                server.addr,
                "db-9999.db.big.svc.cluster.local",
                RecordType::AAAA,
            ) == ResponseCode::NoError
        },
    );
    for name in [
        "db.big.svc.cluster.local",
        "_dns._udp.db.big.svc.cluster.local",
    ] {
        let started = Instant::now();
        let reply = raw_tcp(server.addr, &request_bytes(name, RecordType::SRV, None));
        let elapsed = started.elapsed();
        let m = Message::from_vec(&reply).expect("the reply parses");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        let mut srv: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        assert!(srv.len() > 100, "{name}: {} SRV records", srv.len());
        let first = srv[0].clone();
        srv.sort();
        srv.dedup();
        assert_eq!(srv.len(), m.answers.len(), "{name}: no SRV record twice");
        assert!(
            first.ends_with(" db-0.db.big.svc.cluster.local."),
            "{name}: {first}"
        );
        eprintln!("{name} SRV: {} records in {elapsed:?}", m.answers.len());
        assert!(
            elapsed < Duration::from_secs(3),
            "{name} SRV took {elapsed:?} (the raw TCP read gives up at 5 s)"
        );
    }
}

/// A headless Service in `ns` whose one endpoint has `ip`: it resolves only once both its
/// Service and its EndpointSlice are known.
fn marker(ns: &str, name: &str, ip: &str) -> String {
    list_json(&[
        service_json(ns, name, "None", HTTP),
        slice_json(
            ns,
            &format!("{name}-a"),
            name,
            "IPv4",
            &[endpoint_json(ip, None, None)],
        ),
    ])
}

/// Item 11: with `namespaces = [shop, data]`, shop's watchers re-listing (410) must not count
/// as data's first list: data's names stay SERVFAIL (unknown), not NXDOMAIN, until data syncs.
#[test]
fn a_relist_in_one_namespace_is_not_another_namespace_syncing() {
    let api = FakeApi::start();
    api.control("fail", r#"{"status":500,"path":"/namespaces/data/"}"#);
    let server = watching(
        &api,
        "namespaces = [\"shop\", \"data\"]\nstartup_timeout_secs = 1",
    );
    until(&server, Duration::from_secs(30), "shop served", || {
        answer(
            server.addr,
            "frontend.shop.svc.cluster.local",
            RecordType::A,
        ) == ["10.96.10.10"]
    });
    let postgres = "postgres.data.svc.cluster.local";
    assert_eq!(
        rcode(server.addr, postgres, RecordType::A),
        ResponseCode::ServFail
    );
    for round in 1..=2 {
        // shop's watches learn of the marker only through the re-list a 410 forces.
        let ip = format!("10.244.77.{round}");
        api.control("hold-watches", "");
        api.control("apply", &marker("shop", &format!("relist-{round}"), &ip));
        api.control("compact", "");
        api.control("release-watches", "");
        let name = format!("relist-{round}.shop.svc.cluster.local");
        until(&server, Duration::from_secs(30), "shop re-listed", || {
            answer(server.addr, &name, RecordType::A) == [ip.clone()]
        });
        assert_eq!(
            rcode(server.addr, postgres, RecordType::A),
            ResponseCode::ServFail,
            "round {round}: data has never been listed"
        );
    }
    api.control("recover", "");
    until(&server, Duration::from_secs(60), "data served", || {
        answer(server.addr, postgres, RecordType::A) == ["10.244.1.30", "10.244.2.31"]
    });
    assert_eq!(
        rcode(server.addr, "nosuch.data.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
        "every watcher has listed: a missing name is NXDOMAIN"
    );
}

/// Item 12: with `endpoint_pod_names`, a pod name with dots is not one DNS label. It is refused
/// like one longer than a label (the endpoint keeps its dashed address, a name that resolves),
/// and as pods come and go no PTR record is left behind.
#[test]
fn dotted_pod_names_get_dashed_names_and_churn_leaves_no_ptr_behind() {
    let api = FakeApi::start();
    let server = watching(&api, "endpoint_pod_names = true");
    let slice = |round: usize| {
        let endpoints = [
            endpoint_json(
                &format!("10.9.{round}.1"),
                None,
                Some(&format!("db.v{round}-0")),
            ),
            endpoint_json(
                &format!("10.9.{round}.2"),
                None,
                Some(&format!("db-plain-{round}")),
            ),
        ];
        slice_json("shop", "db-a", "db", "IPv4", &endpoints)
    };
    api.control(
        "apply",
        &list_json(&[service_json("shop", "db", "None", HTTP), slice(0)]),
    );
    until(
        &server,
        Duration::from_secs(20),
        "the endpoints served",
        || rcode(server.addr, &rev("10.9.0.2"), RecordType::PTR) == ResponseCode::NoError,
    );
    assert_eq!(
        answer(server.addr, &rev("10.9.0.1"), RecordType::PTR),
        ["10-9-0-1.db.shop.svc.cluster.local."],
        "a dotted pod name is not a label: the dashed address names the endpoint"
    );
    assert_eq!(
        answer(
            server.addr,
            "10-9-0-1.db.shop.svc.cluster.local",
            RecordType::A
        ),
        ["10.9.0.1"]
    );
    assert_eq!(
        answer(server.addr, &rev("10.9.0.2"), RecordType::PTR),
        ["db-plain-0.db.shop.svc.cluster.local."]
    );
    // Pods replaced three times, under new names and addresses.
    for round in 1..=3 {
        api.control("apply", &slice(round));
        let name = rev(&format!("10.9.{round}.1"));
        until(
            &server,
            Duration::from_secs(20),
            "the new pods served",
            || rcode(server.addr, &name, RecordType::PTR) == ResponseCode::NoError,
        );
    }
    for round in 0..3 {
        for host in [1, 2] {
            let gone = rev(&format!("10.9.{round}.{host}"));
            let m = ask(server.addr, &gone, RecordType::PTR);
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NXDomain,
                "{gone}: left behind: {:?}",
                data_of(&m)
            );
        }
    }
    assert_eq!(
        answer(server.addr, &rev("10.9.3.2"), RecordType::PTR),
        ["db-plain-3.db.shop.svc.cluster.local."]
    );
}

const SHOP_V1: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.50.1, ports: [{name: http, port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\nspec: {clusterIP: 10.96.50.2, ports: [{name: http, port: 80}]}\n";

/// Asks for web and api in shop for `during`: both must answer their address all along.
fn served_throughout(server: &Server, during: Duration, web: &str, api: &str) {
    let deadline = Instant::now() + during;
    while Instant::now() < deadline {
        for (name, want) in [("web", web), ("api", api)] {
            let qname = format!("{name}.shop.svc.cluster.local");
            assert_eq!(
                answer(server.addr, &qname, RecordType::A),
                [want],
                "{qname}\nstderr:\n{}",
                server.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Item 8: a manifest file with a YAML syntax error, or caught half-written, keeps serving its
/// last good objects (the warning names file and line); a directory that cannot be read changes
/// nothing.
#[test]
fn a_manifest_that_stops_parsing_keeps_its_last_good_objects() {
    let server = Server::with_manifests(&[("shop.yaml", SHOP_V1)], "");
    let dir = server.manifests_dir().to_path_buf();
    until(&server, Duration::from_secs(10), "served", || {
        answer(server.addr, "web.shop.svc.cluster.local", RecordType::A) == ["10.96.50.1"]
    });
    let v2 = SHOP_V1.replace("10.96.50.1", "10.96.50.11");
    // A typo, then the new version caught half-written (cut inside the last document).
    for (step, broken) in [
        SHOP_V1.replace(
            "{name: web, namespace: shop}",
            "{name: web, namespace: [shop}",
        ),
        v2[..v2.len() - 30].to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let warned = count(&server, "not valid YAML");
        std::fs::write(dir.join("shop.yaml"), &broken).unwrap();
        until(
            &server,
            Duration::from_secs(10),
            "the broken file read",
            || count(&server, "not valid YAML") > warned,
        );
        served_throughout(&server, Duration::from_secs(3), "10.96.50.1", "10.96.50.2");
        let log = server.stderr();
        assert!(
            log.contains("shop.yaml: not valid YAML: keeping the 3 objects"),
            "step {step}:\n{log}"
        );
        assert!(log.contains("line "), "the warning names the line:\n{log}");
    }
    std::fs::write(dir.join("shop.yaml"), &v2).unwrap();
    until(
        &server,
        Duration::from_secs(10),
        "the fixed file served",
        || answer(server.addr, "web.shop.svc.cluster.local", RecordType::A) == ["10.96.50.11"],
    );
    // The directory goes away (unmounted, renamed): what is served stays.
    let away = dir.with_extension("away");
    std::fs::rename(&dir, &away).unwrap();
    until(
        &server,
        Duration::from_secs(10),
        "the read error logged",
        || count(&server, "cannot read directory") > 0,
    );
    served_throughout(&server, Duration::from_secs(3), "10.96.50.11", "10.96.50.2");
    std::fs::rename(&away, &dir).unwrap();
}

const CHECKOUT: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"checkout","namespace":"shop"},"spec":{"clusterIP":"10.96.10.77","ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#;

/// Item 1b: an outage that starts while the watchers re-list (as after an apiserver restart:
/// 410, then lists fail). Every list attempt starts with the watcher's `Init`, which is no
/// sign of the API: "lost" is logged once, "regained" once, after a list succeeded.
#[test]
fn an_outage_during_a_relist_logs_lost_and_regained_once() {
    let api = FakeApi::start();
    let server = watching(&api, "");
    let frontend = "frontend.shop.svc.cluster.local";
    assert_eq!(
        answer(server.addr, frontend, RecordType::A),
        ["10.96.10.10"]
    );
    // The watches get a 410 when let go; their re-lists then fail (watches would still work).
    api.control("hold-watches", "");
    api.control("apply", CHECKOUT);
    api.control("compact", "");
    api.control("fail", r#"{"status":500,"watches":false}"#);
    api.control("release-watches", "");
    until(&server, Duration::from_secs(20), "'lost' logged", || {
        count(&server, "lost the Kubernetes API") > 0
    });
    // 12 s of outage: the last good zone is served, and the log says nothing more.
    for _ in 0..60 {
        assert_eq!(
            answer(server.addr, frontend, RecordType::A),
            ["10.96.10.10"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = server.stderr();
    assert_eq!(log.matches("lost the Kubernetes API").count(), 1, "{log}");
    assert_eq!(log.matches("Kubernetes API regained").count(), 0, "{log}");
    api.control("recover", "");
    until(
        &server,
        Duration::from_secs(60),
        "the re-list served",
        || {
            answer(
                server.addr,
                "checkout.shop.svc.cluster.local",
                RecordType::A,
            ) == ["10.96.10.77"]
        },
    );
    until(
        &server,
        Duration::from_secs(60),
        "'regained' logged",
        || count(&server, "Kubernetes API regained") > 0,
    );
    std::thread::sleep(Duration::from_secs(1));
    let log = server.stderr();
    assert_eq!(log.matches("lost the Kubernetes API").count(), 1, "{log}");
    assert_eq!(log.matches("Kubernetes API regained").count(), 1, "{log}");
}
