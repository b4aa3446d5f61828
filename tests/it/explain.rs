//! `clusterdns explain` and `GET /explain`: which stage answered a question with what, and for
//! cluster names the objects behind the records or why the name does not exist, from the real
//! binary on the demo cluster.

use std::process::Command;

use crate::harness::{BIN, Server, demo_dir, http_get};

fn demo_config(admin: &str) -> String {
    format!(
        "{admin}[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.kubernetes]\nmanifests = {:?}\npods = \"verified\"\nfallthrough = [\"in-addr.arpa\", \"ip6.arpa\"]\n",
        demo_dir()
    )
}

fn explain(args: &[&str]) -> String {
    let dir = crate::harness::TempDir::new();
    let config = dir.write("clusterdns.toml", &demo_config(""));
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("explain")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_cli_says_which_stage_answered_and_why() {
    let found = explain(&["frontend.shop.svc.cluster.local"]);
    for says in [
        "question: frontend.shop.svc.cluster.local. A",
        "stages [\"loadbalance\", \"kubernetes\"]",
        "answered by: kubernetes: No Error, authoritative",
        "answer: frontend.shop.svc.cluster.local. 5 A 10.96.10.10",
        "Service shop/frontend: ClusterIP",
        "EndpointSlices [\"frontend-ipv4-abcde\", \"frontend-ipv6-fghij\"]",
    ] {
        assert!(found.contains(says), "{says:?} not in\n{found}");
    }
    let missing = explain(&["nosuch.shop.svc.cluster.local", "aaaa"]);
    assert!(
        missing.contains("answered by: kubernetes: Non-Existent Domain"),
        "{missing}"
    );
    assert!(
        missing.contains("no Service named nosuch in namespace shop: NXDOMAIN"),
        "{missing}"
    );
    let pod = explain(&["10-244-9-9.shop.pod.cluster.local"]);
    assert!(
        pod.contains("pods = \"verified\": no live pod in shop has the address 10.244.9.9"),
        "{pod}"
    );
    let outside = explain(&["www.example.com"]);
    assert!(
        outside.contains("answered by: the server itself: Query Refused"),
        "{outside}"
    );
    let bad = Command::new(BIN)
        .args(["--config", "/nonexistent.toml", "explain", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn the_admin_endpoint_explains_what_the_running_server_answers() {
    let server = Server::with_config(&demo_config("[admin]\nmetrics = \"127.0.0.1:0\"\n"));
    let admin = server.admin_for("/explain");
    let (status, body) = http_get(
        admin,
        "/explain?name=_http._tcp.frontend.shop.svc.cluster.local&type=srv",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("SRV 0 50 80 frontend.shop.svc.cluster.local."),
        "{body}"
    );
    assert!(body.contains("port _http._tcp: SRV records"), "{body}");
    let (status, body) = http_get(admin, "/explain?name=x.svc.cluster.local&type=NOPE");
    assert_eq!(status, 400);
    assert!(body.contains("\"NOPE\" is not a record type"), "{body}");
    let (status, body) = http_get(admin, "/explain?type=A");
    assert_eq!((status, body.trim()), (400, "name=… is missing"));
}

/// `clusterdns_search_expansion_queries_total{namespace}`: cluster names that do not exist, of
/// a search list's shapes, by the asking pod's namespace (from its address), else `unknown`;
/// pod names and names that exist are not counted.
#[test]
fn search_expansions_are_counted_by_the_asking_pods_namespace() {
    use crate::small_plugins::{ask_from, query};
    use hickory_proto::rr::RecordType;
    let dir = crate::harness::TempDir::new();
    for entry in std::fs::read_dir(demo_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        dir.write(
            &format!("manifests/{name}"),
            &std::fs::read_to_string(&path).unwrap(),
        );
    }
    dir.write(
        "manifests/50-client.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: data}\nstatus: {podIP: 127.0.0.2}\n",
    );
    let config = dir.write(
        "clusterdns.toml",
        "[admin]\nmetrics = \"127.0.0.1:0\"\n[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.kubernetes]\nmanifests = \"manifests\"\npods = \"verified\"\n",
    );
    let server = Server::spawn(dir, &config);
    let pod = "127.0.0.2".parse().unwrap();
    let stranger = "127.0.0.9".parse().unwrap();
    for (from, name) in [
        (pod, "api.example.com.data.svc.cluster.local"),
        (pod, "api.example.com.svc.cluster.local"),
        (pod, "api.example.com.cluster.local"),
        (stranger, "api.example.com.data.svc.cluster.local"),
        // Not counted: a name that exists, a pod name.
        (pod, "postgres.data.svc.cluster.local"),
        (pod, "1-2-3-4.data.pod.cluster.local"),
    ] {
        let (reply, _) = ask_from(server.addr, from, &query(name, RecordType::A, None));
        assert!(reply.is_some(), "{name}: no reply");
    }
    let (status, body) = http_get(server.admin_for("/metrics"), "/metrics");
    assert_eq!(status, 200);
    let counted: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("clusterdns_search_expansion_queries_total{"))
        .collect();
    assert_eq!(
        counted,
        [
            "clusterdns_search_expansion_queries_total{namespace=\"data\"} 3",
            "clusterdns_search_expansion_queries_total{namespace=\"other\"} 0",
            "clusterdns_search_expansion_queries_total{namespace=\"unknown\"} 1",
        ],
        "{body}"
    );
}
