//! Real resolvers against the real binary: glibc (`getent`), musl (`getaddrinfo` in a static
//! program built with musl-gcc), `nslookup` and `dig +search`, inside a network namespace the
//! test creates, with clusterdns on port 53 and a pod-like resolv.conf
//! (`search shop.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5`).
//! A second clusterdns in the namespace plays the upstream for an external name.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::{Server, TempDir, demo_dir};

/// A network namespace with loopback up and its own resolv.conf; removed on drop.
struct Netns {
    name: String,
    etc: PathBuf,
}

impl Netns {
    fn create() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cdns-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip(8) from iproute2 must be installed");
        assert!(
            out.status.success(),
            "cannot create a network namespace (these tests need root or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns {
            etc: PathBuf::from("/etc/netns").join(&name),
            name,
        };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns.run(&["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"]);
        // A global IPv4 and IPv6 address (a veth pair kept inside the namespace): glibc's
        // AI_ADDRCONFIG asks for AAAA only when such an IPv6 address exists, as in a
        // dual-stack pod.
        ns.run(&[
            "ip", "link", "add", "pod0", "type", "veth", "peer", "name", "pod1",
        ]);
        ns.run(&["ip", "addr", "add", "10.244.9.9/24", "dev", "pod0"]);
        ns.run(&[
            "ip",
            "addr",
            "add",
            "fd00:244::9/64",
            "dev",
            "pod0",
            "nodad",
        ]);
        ns.run(&["ip", "link", "set", "pod0", "up"]);
        ns.run(&["ip", "link", "set", "pod1", "up"]);
        // `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc: this is the pod's resolv.conf.
        std::fs::create_dir_all(&ns.etc).unwrap();
        std::fs::write(
            ns.etc.join("resolv.conf"),
            "nameserver 127.0.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:2\n",
        )
        .unwrap();
        ns
    }

    fn wrapper(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Runs a command in the namespace: (success, stdout).
    fn exec(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn run(&self, args: &[&str]) {
        let (ok, out) = self.exec(args);
        assert!(ok, "{args:?}: {out}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// The servers: the upstream (`corp.example` zone with web.prod → 10.200.0.5) on 127.0.0.2:53
/// and clusterdns on 127.0.0.1:53 serving the demo cluster and forwarding the rest.
fn start(ns: &Netns) -> (Server, Server) {
    let upstream = start_upstream(ns);
    let dir = TempDir::new();
    let config = dir.write(
        "clusterdns.toml",
        &format!(
            "[[server]]\nlisten = [\"127.0.0.1:53\"]\n[server.kubernetes]\nmanifests = {:?}\npods = \"insecure\"\nfallthrough = [\"in-addr.arpa\", \"ip6.arpa\"]\n[server.forward]\nto = [\"127.0.0.2\"]\n[server.cache]\n",
            demo_dir()
        ),
    );
    let server = Server::spawn_in(dir, &config, &ns.wrapper());
    (server, upstream)
}

/// The upstream: the `corp.example` zone with web.prod → 10.200.0.5, on 127.0.0.2:53.
fn start_upstream(ns: &Netns) -> Server {
    let up_dir = TempDir::new();
    up_dir.write(
        "manifests/web.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prod}\nspec:\n  clusterIP: 10.200.0.5\n  ports: [{name: http, port: 80}]\n",
    );
    let up_config = up_dir.write(
        "clusterdns.toml",
        "[[server]]\nlisten = [\"127.0.0.2:53\"]\nzones = [\"corp.example\"]\n[server.kubernetes]\nzones = [\"corp.example\"]\nmanifests = \"manifests\"\n",
    );
    Server::spawn_in(up_dir, &up_config, &ns.wrapper())
}

/// clusterdns on 127.0.0.1:53 as [`start`] runs it, with the demo cluster plus a pod of `shop`
/// at 127.0.0.1 (the resolvers' source address), `pods = "verified"`, every query logged, and
/// `autopath @kubernetes` when asked (no host search domains).
fn start_logged(ns: &Netns, autopath: bool) -> Server {
    let dir = TempDir::new();
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
        "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: shop}\nstatus: {podIP: 127.0.0.1}\n",
    );
    dir.write("node-resolv.conf", "nameserver 127.0.0.2\n");
    let autopath = if autopath {
        "[server.autopath]\nfrom = \"@kubernetes\"\nresolv_conf = \"node-resolv.conf\"\n"
    } else {
        ""
    };
    let config = dir.write(
        "clusterdns.toml",
        &format!(
            "[[server]]\nlisten = [\"127.0.0.1:53\"]\nlog = true\n[server.kubernetes]\nmanifests = \"manifests\"\npods = \"verified\"\nfallthrough = [\"in-addr.arpa\", \"ip6.arpa\"]\n[server.forward]\nto = [\"127.0.0.2\"]\n[server.cache]\n{autopath}"
        ),
    );
    Server::spawn_in(dir, &config, &ns.wrapper())
}

/// Queries the server logged for names starting `prefix`, once a marker query sent after them
/// (`marker` must be new) shows in the log: a query is logged right after its answer is sent.
fn logged(ns: &Netns, server: &Server, prefix: &str, marker: &str) -> usize {
    ns.exec(&["dig", "+short", "+tries=1", marker]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let marker = format!("name=\"{marker}.\"");
    while !server.stderr().contains(&marker) {
        assert!(
            std::time::Instant::now() < deadline,
            "the marker query was never logged"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let needle = format!("name=\"{prefix}");
    server
        .stderr()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// `autopath`: the search walk of an external name and of a Service in another namespace is
/// done by the server: a resolver with `ndots:5` sends one query per address type instead of
/// one per search domain, and gets the same addresses. Counts and times are printed for the
/// README.
#[test]
fn autopath_answers_the_first_search_expansion_for_glibc_and_musl() {
    let build = TempDir::new();
    let program = musl_gai(&build);
    let musl = program.to_str().unwrap();
    let cases = [
        ("web.prod.svc.corp.example", "10.200.0.5"),
        ("kube-dns.kube-system", "10.96.0.10"),
    ];
    let mut counts = Vec::new();
    for autopath in [false, true] {
        let ns = Netns::create();
        let _upstream = start_upstream(&ns);
        let server = start_logged(&ns, autopath);
        for (name, address) in cases {
            for (client, args) in [
                ("glibc", vec!["getent", "ahosts", name]),
                ("musl", vec![musl, name]),
            ] {
                let marker =
                    |step: &str| format!("{step}-{client}-{}.marker.invalid", counts.len());
                let before = logged(&ns, &server, name, &marker("before"));
                let started = std::time::Instant::now();
                let (_, out) = ns.exec(&args);
                let took = started.elapsed();
                assert!(
                    out.lines().any(|l| l.starts_with(address)),
                    "{client} {name} (autopath {autopath}): {out}\n{}",
                    server.stderr()
                );
                let sent = logged(&ns, &server, name, &marker("after")) - before;
                eprintln!("autopath {autopath}: {client} {name}: {sent} queries, {took:?}");
                counts.push((autopath, client, name, sent));
            }
        }
    }
    for (client, name) in [
        ("glibc", cases[0].0),
        ("musl", cases[0].0),
        ("glibc", cases[1].0),
        ("musl", cases[1].0),
    ] {
        let sent = |on: bool| {
            counts
                .iter()
                .find(|(a, c, n, _)| *a == on && *c == client && *n == name)
                .map(|c| c.3)
                .unwrap()
        };
        // Without: A and AAAA for each search domain that applies, then the name itself.
        assert!(
            sent(false) >= 4,
            "{client} {name} without autopath: {}",
            sent(false)
        );
        // With: the first expansion, once per address type.
        assert_eq!(sent(true), 2, "{client} {name} with autopath");
    }
}

/// What each resolver must return: name → the set of addresses (empty: not found).
const CASES: &[(&str, &[&str])] = &[
    ("frontend", &["10.96.10.10", "fd00:10:96::a"]),
    ("frontend.shop", &["10.96.10.10", "fd00:10:96::a"]),
    (
        "frontend.shop.svc.cluster.local",
        &["10.96.10.10", "fd00:10:96::a"],
    ),
    (
        "frontend.shop.svc.cluster.local.",
        &["10.96.10.10", "fd00:10:96::a"],
    ),
    ("postgres.data", &["10.244.1.30", "10.244.2.31"]),
    ("postgres-0.postgres.data", &["10.244.1.30"]),
    // IPv4-only: AAAA must be NODATA, or musl stops its search walk with nothing.
    ("cart", &["10.96.10.20"]),
    ("kube-dns.kube-system", &["10.96.0.10"]),
    // ExternalName to a cluster name.
    ("storefront", &["10.96.10.10", "fd00:10:96::a"]),
    // Outside the cluster: through the forwarder to the upstream.
    ("web.prod.svc.corp.example", &["10.200.0.5"]),
    ("nosuch", &[]),
    ("nosuch.shop.svc.cluster.local", &[]),
];

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn glibc_musl_nslookup_and_dig_resolve_like_against_coredns() {
    let ns = Netns::create();
    let (server, _upstream) = start(&ns);

    // glibc: getent ahosts (getaddrinfo, A and AAAA) and getent hosts (gethostbyname).
    for (name, expected) in CASES {
        let (ok, out) = ns.exec(&["getent", "ahosts", name]);
        let got: BTreeSet<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        assert_eq!(
            got,
            set(expected),
            "glibc getent ahosts {name}:\n{out}\n{}",
            server.stderr()
        );
        assert_eq!(ok, !expected.is_empty(), "getent exit status for {name}");
    }
    let (_, out) = ns.exec(&["getent", "hosts", "cart"]);
    assert!(out.starts_with("10.96.10.20 "), "getent hosts cart: {out}");

    // musl: a static getaddrinfo program.
    let build = TempDir::new();
    let program = musl_gai(&build);
    for (name, expected) in CASES {
        let (_, out) = ns.exec(&[program.to_str().unwrap(), name]);
        let got: BTreeSet<String> = out
            .lines()
            .filter(|l| !l.starts_with("ERR"))
            .map(str::to_owned)
            .collect();
        assert_eq!(got, set(expected), "musl getaddrinfo {name}:\n{out}");
        if expected.is_empty() {
            assert!(
                out.contains("ERR"),
                "musl reports not found for {name}: {out}"
            );
        }
    }

    // nslookup and dig +search use the same resolv.conf.
    let (_, out) = ns.exec(&["nslookup", "frontend"]);
    assert!(
        out.contains("frontend.shop.svc.cluster.local") && out.contains("10.96.10.10"),
        "nslookup frontend:\n{out}"
    );
    let (_, out) = ns.exec(&["nslookup", "nosuch"]);
    assert!(out.contains("can't find nosuch"), "nslookup nosuch:\n{out}");
    let (_, out) = ns.exec(&["nslookup", "nosuch.shop.svc.cluster.local."]);
    assert!(
        out.contains("NXDOMAIN"),
        "nslookup of a missing cluster name:\n{out}"
    );
    let (_, out) = ns.exec(&["dig", "+search", "+short", "postgres.data"]);
    let got: BTreeSet<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(
        got,
        set(&["10.244.1.30", "10.244.2.31"]),
        "dig +search:\n{out}"
    );
    let (_, out) = ns.exec(&["dig", "+search", "+short", "cart", "AAAA"]);
    assert_eq!(out.trim(), "", "cart has no AAAA: {out}");
}

/// The static musl getaddrinfo program ([`GAI_C`]) built in `build`.
fn musl_gai(build: &TempDir) -> PathBuf {
    let source = build.write("gai.c", GAI_C);
    let program = build.0.join("gai");
    let out = Command::new("musl-gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .expect(
            "musl-gcc must be installed (apt-get install musl-tools); scripts/test.sh installs it",
        );
    assert!(
        out.status.success(),
        "musl-gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    program
}

const GAI_C: &str = r#"
#include <stdio.h>
#include <string.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    struct addrinfo hints, *res, *p;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[1], NULL, &hints, &res);
    if (rc != 0) {
        printf("ERR %s\n", gai_strerror(rc));
        return 2;
    }
    for (p = res; p; p = p->ai_next) {
        char buf[INET6_ADDRSTRLEN];
        void *addr = p->ai_family == AF_INET
            ? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
            : (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
        inet_ntop(p->ai_family, addr, buf, sizeof buf);
        printf("%s\n", buf);
    }
    freeaddrinfo(res);
    return 0;
}
"#;
