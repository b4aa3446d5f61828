//! `multicluster`: the real binary answering the clusterset zone from ServiceImports and the
//! EndpointSlices labelled with them, watched through the fake API server (and read from a
//! manifests directory, and configured from a Corefile); without the ServiceImport resource it
//! warns once and serves the rest.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{Proto, Server, TempDir, dig, lines, query};
use crate::kube_api::{FakeApi, eventually};

/// Two clusters, `east` and `west`, exporting into `ns1`; a local Service of the same name as
/// an import; an import with a bad ClusterSetIP.
const CLUSTER: &str = r#"{"kind":"List","items":[
 {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns1"}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"ns1"},
  "spec":{"clusterIP":"10.96.5.5","clusterIPs":["10.96.5.5"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
 {"apiVersion":"multicluster.x-k8s.io/v1alpha1","kind":"ServiceImport","metadata":{"name":"web","namespace":"ns1"},
  "spec":{"type":"ClusterSetIP","ips":["10.100.0.10"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
 {"apiVersion":"multicluster.x-k8s.io/v1alpha1","kind":"ServiceImport","metadata":{"name":"db","namespace":"ns1"},
  "spec":{"type":"Headless","ports":[{"name":"pg","port":5432,"protocol":"TCP"}]}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"db-east","namespace":"ns1",
  "labels":{"multicluster.kubernetes.io/service-name":"db","multicluster.kubernetes.io/source-cluster":"east"}},
  "addressType":"IPv4","endpoints":[{"addresses":["10.1.0.2"],"hostname":"db-0","conditions":{"ready":true}}],
  "ports":[{"name":"pg","port":5432,"protocol":"TCP"}]},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"db-west","namespace":"ns1",
  "labels":{"multicluster.kubernetes.io/service-name":"db","multicluster.kubernetes.io/source-cluster":"west"}},
  "addressType":"IPv4","endpoints":[{"addresses":["10.2.0.2"],"hostname":"db-0","conditions":{"ready":true}},
   {"addresses":["10.2.0.3"],"hostname":"db-1","conditions":{"ready":false}}],
  "ports":[{"name":"pg","port":5432,"protocol":"TCP"}]},
 {"apiVersion":"multicluster.x-k8s.io/v1alpha1","kind":"ServiceImport","metadata":{"name":"bad","namespace":"ns1"},
  "spec":{"type":"ClusterSetIP","ips":["10.100.0.999"]}}
]}"#;

const ZONES: &str = "zones = [\"cluster.local\", \"clusterset.local\"]\n";

fn fake(extra: &[&str]) -> (FakeApi, TempDir) {
    let dir = TempDir::new();
    let fixture = dir.write("cluster.json", CLUSTER);
    (FakeApi::start_with_args(&fixture, extra), dir)
}

fn watching(api: &FakeApi) -> Server {
    Server::start(&format!(
        "endpoint = \"http://{}\"\n{ZONES}multicluster = [\"clusterset.local\"]\n",
        api.addr
    ))
}

async fn ask(server: &Server, name: &str, qtype: RecordType) -> Message {
    query(server.addr, name, qtype, Proto::Udp).await
}

fn answer_lines(m: &Message) -> Vec<String> {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(m.metadata.authoritative);
    lines(&m.answers)
}

/// NXDOMAIN or NODATA with the clusterset zone's SOA.
fn assert_negative(m: &Message, rcode: ResponseCode) {
    assert_eq!(m.metadata.response_code, rcode, "{m:?}");
    assert!(m.answers.is_empty(), "{:?}", lines(&m.answers));
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].name.to_string(), "clusterset.local.");
    assert!(matches!(&m.authorities[0].data, RData::SOA(s) if s.minimum == 5));
}

#[tokio::test]
async fn imports_answer_the_clusterset_zone_through_the_api() {
    let (api, _dir) = fake(&[]);
    let server = watching(&api);

    let web = ask(&server, "web.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_eq!(
        answer_lines(&web),
        ["web.ns1.svc.clusterset.local. 5 IN A 10.100.0.10"]
    );
    // The cluster zone still answers the local Service.
    let local = ask(&server, "web.ns1.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        answer_lines(&local),
        ["web.ns1.svc.cluster.local. 5 IN A 10.96.5.5"]
    );
    // Headless: the ready endpoints of both clusters.
    let db = ask(&server, "db.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_eq!(
        answer_lines(&db),
        [
            "db.ns1.svc.clusterset.local. 5 IN A 10.1.0.2",
            "db.ns1.svc.clusterset.local. 5 IN A 10.2.0.2"
        ]
    );
    // The same hostname in two clusters: each cluster's name answers its own.
    for (cluster, ip) in [("east", "10.1.0.2"), ("west", "10.2.0.2")] {
        let name = format!("db-0.{cluster}.db.ns1.svc.clusterset.local.");
        let m = ask(&server, &name, RecordType::A).await;
        assert_eq!(answer_lines(&m), [format!("{name} 5 IN A {ip}")]);
    }
    let srv = ask(
        &server,
        "_pg._tcp.db.ns1.svc.clusterset.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(
        answer_lines(&srv),
        [
            "_pg._tcp.db.ns1.svc.clusterset.local. 5 IN SRV 0 50 5432 db-0.east.db.ns1.svc.clusterset.local.",
            "_pg._tcp.db.ns1.svc.clusterset.local. 5 IN SRV 0 50 5432 db-0.west.db.ns1.svc.clusterset.local."
        ]
    );
    assert_eq!(
        lines(&srv.additionals),
        [
            "db-0.east.db.ns1.svc.clusterset.local. 5 IN A 10.1.0.2",
            "db-0.west.db.ns1.svc.clusterset.local. 5 IN A 10.2.0.2"
        ]
    );

    // Absent names, a not-ready endpoint, the endpoint without its cluster: NXDOMAIN; an
    // existing name of another type: NODATA.
    for name in [
        "nothere.ns1.svc.clusterset.local.",
        "db-1.west.db.ns1.svc.clusterset.local.",
        "db-0.db.ns1.svc.clusterset.local.",
        "_http._tcp.db.ns1.svc.clusterset.local.",
    ] {
        let m = ask(&server, name, RecordType::A).await;
        assert_negative(&m, ResponseCode::NXDomain);
    }
    let nodata = ask(&server, "web.ns1.svc.clusterset.local.", RecordType::AAAA).await;
    assert_negative(&nodata, ResponseCode::NoError);

    // The import with a bad IP is skipped with a warning naming it; the rest is served.
    let bad = ask(&server, "bad.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_negative(&bad, ResponseCode::NXDomain);
    let log = server.stderr();
    let warning = log
        .lines()
        .find(|l| l.contains("skipping invalid object") && l.contains("ns1/bad"))
        .unwrap_or_else(|| panic!("no warning about ns1/bad:\n{log}"));
    assert!(
        warning.contains("WARN") && warning.contains("ServiceImport"),
        "{warning}"
    );
    assert!(warning.contains("10.100.0.999"), "{warning}");

    // dig sees the same bytes.
    let text = dig(
        server.addr,
        &["+short", "web.ns1.svc.clusterset.local", "A"],
    );
    assert_eq!(text.trim(), "10.100.0.10");
}

#[tokio::test]
async fn imports_and_their_slices_follow_the_api() {
    let (api, _dir) = fake(&[]);
    let server = watching(&api);
    api.control(
        "apply",
        r#"{"apiVersion":"multicluster.x-k8s.io/v1alpha1","kind":"ServiceImport","metadata":{"name":"cache","namespace":"ns1"},
            "spec":{"type":"ClusterSetIP","ips":["10.100.0.20"]}}"#,
    );
    eventually(
        &server,
        "cache.ns1.svc.clusterset.local.",
        Duration::from_secs(10),
        "the new import",
        |m| m.answers.len() == 1,
    )
    .await;
    // A third cluster joins the headless import.
    api.control(
        "apply",
        r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"db-north","namespace":"ns1",
            "labels":{"multicluster.kubernetes.io/service-name":"db","multicluster.kubernetes.io/source-cluster":"north"}},
            "addressType":"IPv4","endpoints":[{"addresses":["10.3.0.2"],"hostname":"db-0"}],
            "ports":[{"name":"pg","port":5432,"protocol":"TCP"}]}"#,
    );
    eventually(
        &server,
        "db-0.north.db.ns1.svc.clusterset.local.",
        Duration::from_secs(10),
        "the north cluster's endpoint",
        |m| m.answers.len() == 1,
    )
    .await;
    api.control(
        "delete",
        r#"{"kind":"ServiceImport","namespace":"ns1","name":"web"}"#,
    );
    eventually(
        &server,
        "web.ns1.svc.clusterset.local.",
        Duration::from_secs(10),
        "the deleted import gone",
        |m| m.metadata.response_code == ResponseCode::NXDomain,
    )
    .await;
    let local = ask(&server, "web.ns1.svc.cluster.local.", RecordType::A).await;
    assert_eq!(local.answers.len(), 1, "the Service stays");
}

#[tokio::test]
async fn with_noendpoints_only_the_slices_of_imports_are_watched() {
    let (api, _dir) = fake(&[]);
    let server = Server::start(&format!(
        "endpoint = \"http://{}\"\n{ZONES}multicluster = [\"clusterset.local\"]\nendpoints = false\n",
        api.addr
    ));
    let db = ask(&server, "db.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_eq!(answer_lines(&db).len(), 2, "both clusters' endpoints");
    let slices: Vec<String> = api
        .requests()
        .split('"')
        .filter(|r| r.contains("/endpointslices"))
        .map(str::to_owned)
        .collect();
    assert!(!slices.is_empty());
    for request in &slices {
        assert!(
            request.contains("labelSelector=multicluster.kubernetes.io%2Fservice-name"),
            "{request}"
        );
    }
}

#[tokio::test]
async fn without_the_service_import_resource_the_rest_is_served_with_one_warning() {
    let (api, _dir) = fake(&["--no-mcs"]);
    let server = watching(&api);
    let local = ask(&server, "web.ns1.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        answer_lines(&local),
        ["web.ns1.svc.cluster.local. 5 IN A 10.96.5.5"]
    );
    // Synced, not waiting for the missing kind: absent names are NXDOMAIN, not SERVFAIL.
    let absent = ask(&server, "nothere.ns1.svc.cluster.local.", RecordType::A).await;
    assert_eq!(absent.metadata.response_code, ResponseCode::NXDomain);
    // The imported slices are still read, but no import names them.
    let db = ask(&server, "db.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_negative(&db, ResponseCode::NXDomain);
    let zone = ask(&server, "ns1.svc.clusterset.local.", RecordType::A).await;
    assert_negative(&zone, ResponseCode::NoError);

    assert!(api.requests().contains("/serviceimports"));
    let log = server.stderr();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no ServiceImport resource"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(!log.contains("lost the Kubernetes API"), "{log}");
}

#[tokio::test]
async fn forbidden_service_imports_are_one_warning_naming_the_missing_rule() {
    let (api, _dir) = fake(&[]);
    api.control("fail", r#"{"status":403,"path":"/serviceimports"}"#);
    let server = watching(&api);
    let db = ask(&server, "db.ns1.svc.cluster.local.", RecordType::A).await;
    assert_eq!(db.metadata.response_code, ResponseCode::NXDomain, "synced");
    let log = server.stderr();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("ServiceImport"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("grant list and watch on serviceimports.multicluster.x-k8s.io"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn a_manifests_directory_holds_imports_too() {
    let yaml = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ns1}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: web, namespace: ns1}
spec: {type: ClusterSetIP, ips: ["fd00:100::10"], ports: [{name: http, port: 80, protocol: TCP}]}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: bad, namespace: ns1}
spec: {type: ClusterSetIP, ips: [not-an-ip]}
"#;
    let server = Server::with_manifests(
        &[("imports.yaml", yaml)],
        &format!("{ZONES}multicluster = [\"clusterset.local\"]\n"),
    );
    let m = ask(&server, "web.ns1.svc.clusterset.local.", RecordType::AAAA).await;
    assert_eq!(
        answer_lines(&m),
        ["web.ns1.svc.clusterset.local. 5 IN AAAA fd00:100::10"]
    );
    let srv = ask(
        &server,
        "_http._tcp.web.ns1.svc.clusterset.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(
        answer_lines(&srv),
        [
            "_http._tcp.web.ns1.svc.clusterset.local. 5 IN SRV 0 100 80 web.ns1.svc.clusterset.local."
        ]
    );
    let bad = ask(&server, "bad.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_negative(&bad, ResponseCode::NXDomain);
    let log = server.stderr();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("ServiceImport ns1/bad")
            && l.contains("not-an-ip")),
        "{log}"
    );
}

#[tokio::test]
async fn a_corefile_with_multicluster_serves_the_clusterset_zone() {
    let (api, dir) = fake(&[]);
    let corefile = dir.write(
        "Corefile",
        &format!(
            ".:0 {{\n    bind 127.0.0.1\n    kubernetes cluster.local clusterset.local {{\n        endpoint http://{}\n        multicluster clusterset.local\n    }}\n}}\n",
            api.addr
        ),
    );
    let server = Server::spawn_corefile(TempDir::new(), &corefile);
    let m = ask(&server, "web.ns1.svc.clusterset.local.", RecordType::A).await;
    assert_eq!(
        answer_lines(&m),
        ["web.ns1.svc.clusterset.local. 5 IN A 10.100.0.10"]
    );
    let local = ask(&server, "web.ns1.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        answer_lines(&local),
        ["web.ns1.svc.cluster.local. 5 IN A 10.96.5.5"]
    );
}
