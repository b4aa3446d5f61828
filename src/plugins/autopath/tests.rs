use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::cluster::ClusterEvent;
use crate::cluster::model::{ClusterObject, Pod};
use crate::dns::{Request, Transport};
use crate::zone::{Index, IndexOptions, ZoneConfig};

fn cluster(pods: PodMode) -> ClusterZone {
    let index = Index::new(IndexOptions {
        track_pods: true,
        ..Default::default()
    });
    let pod = |ns: &str, name: &str, ip: &str| {
        ClusterEvent::Upsert(ClusterObject::Pod(Pod {
            namespace: ns.into(),
            name: name.into(),
            ip: Some(ip.parse().unwrap()),
            terminating: false,
            host_network: false,
        }))
    };
    index.apply([
        pod("team-a", "web", "127.0.0.2"),
        pod("team-a", "old", "127.0.0.3"),
        pod("team-b", "new", "127.0.0.3"),
    ]);
    ClusterZone {
        config: Arc::new(ZoneConfig {
            zones: vec!["cluster.local".into(), "in-addr.arpa".into()],
            primary: "cluster.local".into(),
            ttl: 5,
            pods,
            fallthrough: vec![],
            ignore_empty_service: false,
            multicluster: Vec::new(),
            own_addrs: vec![],
        }),
        index: Arc::new(index),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn a_pods_first_search_domain_expansion_walks_its_path_then_the_host_domains_then_bare() {
    let zone = cluster(PodMode::Verified);
    let host = ["corp.example".to_owned()];
    let names = pod_path(
        &zone,
        &host,
        ip("127.0.0.2"),
        "api.example.com.team-a.svc.cluster.local",
    );
    assert_eq!(
        names.unwrap(),
        [
            "api.example.com.team-a.svc.cluster.local",
            "api.example.com.svc.cluster.local",
            "api.example.com.cluster.local",
            "api.example.com.corp.example",
            "api.example.com",
        ]
    );
    // Over IPv6 as an IPv4-mapped address, the same pod.
    assert!(
        pod_path(
            &zone,
            &host,
            ip("::ffff:127.0.0.2"),
            "x.team-a.svc.cluster.local"
        )
        .is_some()
    );
}

#[test]
fn anything_else_is_answered_as_asked() {
    let zone = cluster(PodMode::Verified);
    let path = |peer: &str, name: &str| pod_path(&zone, &[], ip(peer), name);
    // Another namespace's search domain: not this pod's first expansion.
    assert_eq!(
        path("127.0.0.2", "api.example.com.team-b.svc.cluster.local"),
        None
    );
    // The second and third search domains, a Service name, the namespace itself.
    assert_eq!(path("127.0.0.2", "api.example.com.svc.cluster.local"), None);
    assert_eq!(path("127.0.0.2", "api.example.com.cluster.local"), None);
    assert_eq!(path("127.0.0.2", "team-a.svc.cluster.local"), None);
    // Not a pod; an IP two pods hold during churn (coredns#2842).
    assert_eq!(path("127.0.0.9", "x.team-a.svc.cluster.local"), None);
    assert_eq!(path("127.0.0.3", "x.team-a.svc.cluster.local"), None);
    assert_eq!(path("127.0.0.3", "x.team-b.svc.cluster.local"), None);
    // Outside the cluster zones.
    assert_eq!(path("127.0.0.2", "x.team-a.svc.example.org"), None);
}

#[test]
fn kubernetes_search_needs_pods_verified_as_in_coredns() {
    let config = AutopathConfig {
        zones: vec![String::new()],
        search: SearchPath::Kubernetes { host: vec![] },
    };
    assert!(Autopath::new(&config, Some(&cluster(PodMode::Insecure))).is_none());
    assert!(Autopath::new(&config, None).is_none());
    assert!(Autopath::new(&config, Some(&cluster(PodMode::Verified))).is_some());
}

#[test]
fn a_fixed_path_is_the_same_for_every_client() {
    let domains = ["a.example".to_owned(), "b.example".to_owned()];
    assert_eq!(
        fixed_path(&domains, "host.a.example").unwrap(),
        ["host.a.example", "host.b.example", "host"]
    );
    assert_eq!(fixed_path(&domains, "host.b.example"), None);
    assert_eq!(fixed_path(&domains, "a.example"), None, "the domain itself");
    assert_eq!(fixed_path(&domains, "xa.example"), None, "a label boundary");
}

fn query_for(name: &str) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

fn answer(question: &str, owner: &str, ttl: u32, rcode: u8) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(question).unwrap(),
        RecordType::A,
    ));
    if !owner.is_empty() {
        let a = RData::A(A("192.0.2.1".parse().unwrap()));
        m.add_answer(Record::from_rdata(Name::from_ascii(owner).unwrap(), ttl, a));
    }
    let mut bytes = m.to_vec().unwrap();
    bytes[3] = (bytes[3] & 0xf0) | rcode;
    bytes
}

#[test]
fn the_found_answer_gets_the_clients_question_and_a_cname_to_it() {
    let asked = "API.example.com.team-a.svc.cluster.local.";
    let bytes = query_for(asked);
    let request = Request::parse(&bytes, Transport::Udp, &mut String::new()).unwrap();
    let client = request.client();
    let found = cnamer(
        &answer("api.example.com.", "api.example.com.", 30, 0),
        &client,
    );
    let m = Message::from_vec(&found).unwrap();
    assert_eq!(
        m.queries[0].name().to_ascii(),
        asked,
        "the client's spelling"
    );
    let records: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
        .collect();
    assert_eq!(
        records,
        [
            "API.example.com.team-a.svc.cluster.local. 30 api.example.com.",
            "api.example.com. 30 192.0.2.1",
        ]
    );
    // An answer already owned by the name asked (any case), or none: no CNAME.
    let same = cnamer(
        &answer(asked, "api.example.com.team-a.svc.cluster.local.", 5, 0),
        &client,
    );
    assert_eq!(Message::from_vec(&same).unwrap().answers.len(), 1);
    let nodata = cnamer(&answer("api.example.com.", "", 0, 0), &client);
    assert!(Message::from_vec(&nodata).unwrap().answers.is_empty());
}

#[test]
fn only_nxdomain_walks_on() {
    assert!(goes_on(&answer("a.", "", 0, 3)));
    assert!(!goes_on(&answer("a.", "", 0, 0)));
    assert!(!goes_on(&answer("a.", "", 0, 2)), "SERVFAIL is the answer");
}
