//! `autopath @kubernetes` with `pods verified`: the real binary (`--corefile`) and a real
//! CoreDNS 1.11 on the same Corefile, cluster (the fake API with pods at loopback addresses)
//! and upstream, asked from pod addresses: first search-path expansions of cluster names,
//! external names and names that exist nowhere, and the same from addresses that are no
//! pod. Where clusterdns does better (an IP two pods hold, a host-network pod) its answer is
//! checked alone. The upstream count shows the point: one query upstream instead of a walk.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::kube_api::FakeApi;
use crate::small_plugins::{Pair, ask_from, describe, query};
use crate::upstream::FakeUpstream;

const SHOP_POD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Held by two pods in two namespaces (an IP reused during churn).
const SHARED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// A host-network pod alone at its node's address.
const HOST_NET: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
const NO_POD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

fn pods() -> String {
    let pod = |ns: &str, name: &str, ip: IpAddr, host: bool| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{{"hostNetwork":{host}}},"status":{{"podIP":"{ip}"}}}}"#
        )
    };
    format!(
        r#"{{"kind":"List","items":[{},{},{},{}]}}"#,
        pod("shop", "client", SHOP_POD, false),
        pod("default", "old", SHARED, false),
        pod("data", "new", SHARED, false),
        pod("kube-system", "node-agent", HOST_NET, true),
    )
}

fn corefile(port: u16, api: SocketAddr, upstream: SocketAddr) -> String {
    format!(
        ".:{port} {{\n    bind 127.0.0.1\n    autopath @kubernetes\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        endpoint http://{api}\n        pods verified\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {upstream}\n}}\n"
    )
}

/// The reply to `name` A from `from`, described (`None`: no reply).
fn answer(server: SocketAddr, from: IpAddr, name: &str, qtype: RecordType) -> Option<String> {
    let (reply, port) = ask_from(server, from, &query(name, qtype, Some(true)));
    reply.map(|r| describe(&r, port, true))
}

/// Waits until `server` knows the shop pod (`pods verified` answers its address name).
fn wait_for_pods(server: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = answer(
            server,
            SHOP_POD,
            "127-0-0-2.shop.pod.cluster.local",
            RecordType::A,
        );
        if reply
            .as_deref()
            .is_some_and(|r| r.contains("No Error") && r.contains("127.0.0.2"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{server} never saw the pods: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn search_expansions_from_pods_are_answered_as_by_coredns() {
    let api = FakeApi::start();
    api.control("apply", &pods());
    let up = FakeUpstream::start();
    up.add_a("www.example.com", 300, "192.0.2.1");
    let pair = Pair::start(|port| corefile(port, api.addr, up.addr));
    wait_for_pods(pair.coredns.addr);
    wait_for_pods(pair.ours.addr);

    let questions = [
        // An external name: walked to the bare name, forwarded once.
        ("www.example.com.shop.svc.cluster.local", RecordType::A),
        ("www.example.com.shop.svc.cluster.local", RecordType::AAAA),
        // A Service in another namespace, found at `svc.<zone>`; the pod's own namespace.
        ("kubernetes.default.shop.svc.cluster.local", RecordType::A),
        ("cart.shop.svc.cluster.local", RecordType::A),
        (
            "frontend.shop.svc.cluster.local.shop.svc.cluster.local",
            RecordType::A,
        ),
        // Nowhere: the cluster's NXDOMAIN for the name asked.
        ("nosuch.invalid.shop.svc.cluster.local", RecordType::A),
        // Not a first expansion of this pod's path.
        ("www.example.com.svc.cluster.local", RecordType::A),
        ("www.example.com.data.svc.cluster.local", RecordType::A),
    ];
    // RA is set on every answer of a block that forwards here, cluster answers included (the
    // README's differences): not compared.
    let no_ra = |reply: Option<String>| reply.map(|r| r.replace(" ra]", "]"));
    let mut differences = Vec::new();
    for from in [SHOP_POD, NO_POD] {
        for (name, qtype) in questions {
            let theirs = no_ra(answer(pair.coredns.addr, from, name, qtype));
            let mine = no_ra(answer(pair.ours.addr, from, name, qtype));
            if theirs != mine {
                differences.push(format!(
                    "{name} {qtype} from {from}:\n  CoreDNS:    {theirs:?}\n  clusterdns: {mine:?}"
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // The answers themselves: a CNAME from the name asked, then what the name found has.
    let ours = |from, name| answer(pair.ours.addr, from, name, RecordType::A).unwrap();
    let external = ours(SHOP_POD, "www.example.com.shop.svc.cluster.local");
    assert!(
        external.contains("No Error")
            && external.contains(
                "an [www.example.com.shop.svc.cluster.local. 300 IN CNAME www.example.com. | www.example.com. 300 IN A 192.0.2.1]"
            ),
        "{external}"
    );
    let service = ours(SHOP_POD, "kubernetes.default.shop.svc.cluster.local");
    assert!(
        service.contains("kubernetes.default.shop.svc.cluster.local. 5 IN CNAME kubernetes.default.svc.cluster.local.")
            && service.contains("IN A 10.96.0.1"),
        "{service}"
    );
    // Better than CoreDNS: an IP two pods hold, or a host-network pod's, is nobody's.
    for from in [SHARED, HOST_NET] {
        let reply = ours(from, "www.example.com.default.svc.cluster.local");
        assert!(
            reply.contains("Non-Existent Domain") && !reply.contains("CNAME"),
            "{from}: {reply}"
        );
        let reply = ours(from, "www.example.com.kube-system.svc.cluster.local");
        assert!(
            reply.contains("Non-Existent Domain") && !reply.contains("CNAME"),
            "{from}: {reply}"
        );
    }
    // The first search domain itself: CoreDNS cannot trim it off the name and answers
    // SERVFAIL; here it is answered as asked (the namespace exists: NODATA).
    let domain = "shop.svc.cluster.local";
    let theirs = answer(pair.coredns.addr, SHOP_POD, domain, RecordType::A).unwrap();
    assert!(theirs.contains("Server Failure"), "{theirs}");
    let mine = ours(SHOP_POD, domain);
    assert!(
        mine.contains("No Error") && mine.contains("an []"),
        "{mine}"
    );
    // Only the bare name went upstream from clusterdns: the expansions stayed in the cluster.
    let before = up.count("www.example.com");
    ours(SHOP_POD, "www.example.com.shop.svc.cluster.local");
    assert_eq!(up.count("www.example.com"), before + 1);
    assert_eq!(up.count("www.example.com.shop.svc.cluster.local"), 0);
}
