//! Forwarding and the cache: the real binary in front of in-process upstreams on loopback.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{Proto, Server, demo_dir, dig, lines, query, raw_udp, request_bytes};
use crate::upstream::{Behaviour, FakeUpstream, NEGATIVE_TTL, bind_pair};

/// One root block forwarding to `to`, with extra `[server.forward]` and `[server.cache]` lines.
fn forwarding(to: &[std::net::SocketAddr], forward: &str, cache: Option<&str>) -> Server {
    let to: Vec<String> = to
        .iter()
        .map(|a| format!("{a:?}").replace('"', ""))
        .collect();
    let mut config = format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.forward]\nto = {to:?}\n{forward}\n"
    );
    if let Some(cache) = cache {
        config.push_str(&format!("[server.cache]\n{cache}\n"));
    }
    Server::with_config(&config)
}

fn a_addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn answers_are_forwarded_intact_and_the_second_comes_from_cache_with_a_lower_ttl() {
    let up = FakeUpstream::start();
    up.add_a("www.example.org", 300, "192.0.2.10")
        .add_a("www.example.org", 300, "192.0.2.11");
    let server = forwarding(&[up.addr], "", Some(""));

    let first = query(server.addr, "www.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert!(first.metadata.recursion_available, "RA must be set");
    assert!(!first.metadata.authoritative);
    let mut ips = a_addresses(&first);
    ips.sort();
    assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
    assert!(first.answers.iter().all(|r| r.ttl == 300));

    std::thread::sleep(Duration::from_millis(1100));
    let second = query(server.addr, "WWW.Example.ORG.", RecordType::A, Proto::Tcp).await;
    let mut ips = a_addresses(&second);
    ips.sort();
    assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
    let ttl = second.answers[0].ttl;
    assert!((295..300).contains(&ttl), "cached TTL counted down: {ttl}");
    assert_eq!(
        up.count("www.example.org"),
        1,
        "second query must not reach upstream"
    );
}

#[test]
fn the_reply_echoes_the_client_id_and_spelling() {
    let up = FakeUpstream::start();
    up.add_a("mixed.example.org", 60, "192.0.2.20");
    let server = forwarding(&[up.addr], "", Some(""));
    for _ in 0..2 {
        let request = request_bytes("MiXeD.example.ORG", RecordType::A, Some(1232));
        let reply = raw_udp(server.addr, &request, Duration::from_secs(5)).expect("a reply");
        assert_eq!(&reply[..2], &[0x12, 0x34], "client's ID");
        assert_eq!(
            &reply[12..12 + 19],
            &request[12..12 + 19],
            "client's spelling"
        );
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(a_addresses(&m), ["192.0.2.20"]);
        assert!(m.edns.is_some(), "EDNS client gets OPT");
    }
    let without_edns = request_bytes("mixed.example.org", RecordType::A, None);
    let reply = raw_udp(server.addr, &without_edns, Duration::from_secs(5)).expect("a reply");
    let m = Message::from_vec(&reply).unwrap();
    assert!(
        m.edns.is_none(),
        "no OPT for a client without EDNS (RFC 6891 §7)"
    );
    assert_eq!(up.count("mixed.example.org"), 1);
}

#[tokio::test]
async fn nxdomain_and_nodata_are_cached_for_the_soa_minimum() {
    let up = FakeUpstream::start();
    up.add_a("only-a.example.org", 300, "192.0.2.30");
    let server = forwarding(&[up.addr], "", Some(""));
    for _ in 0..3 {
        let m = query(
            server.addr,
            "missing.example.org.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1, "SOA in authority");
        assert!(m.authorities[0].ttl <= NEGATIVE_TTL);
        let m = query(
            server.addr,
            "only-a.example.org.",
            RecordType::AAAA,
            Proto::Udp,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    }
    assert_eq!(up.count("missing.example.org"), 1);
    assert_eq!(up.count("only-a.example.org"), 1);
}

#[tokio::test]
async fn a_truncated_udp_reply_is_retried_over_tcp() {
    let up = FakeUpstream::start();
    up.add_a("big.example.org", 60, "192.0.2.40");
    up.set(Behaviour::TruncateUdp);
    let server = forwarding(&[up.addr], "", None);
    let m = query(server.addr, "big.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.40"]);
    assert!(!m.metadata.truncation);
    let seen = up.seen();
    assert!(
        seen.iter().any(|s| !s.tcp) && seen.iter().any(|s| s.tcp),
        "{seen:?}"
    );
}

#[tokio::test]
async fn one_upstream_down_the_next_answers() {
    let dead = bind_pair(); // bound, never read: a silent upstream
    let up = FakeUpstream::start();
    up.add_a("next.example.org", 60, "192.0.2.50");
    let server = forwarding(
        &[dead.0.local_addr().unwrap(), up.addr],
        "policy = \"sequential\"\ntimeout = \"2s\"",
        None,
    );
    let start = Instant::now();
    let m = query(server.addr, "next.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.50"]);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn all_upstreams_down_is_servfail_within_the_bound_then_stale_with_serve_stale() {
    let up = FakeUpstream::start();
    up.add_a("stale.example.org", 1, "192.0.2.60");
    let server = forwarding(
        &[up.addr],
        "timeout = \"1s\"",
        Some("min_ttl = 0\nserve_stale = \"1h\""),
    );
    let m = query(server.addr, "stale.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.60"]);
    up.set(Behaviour::Silent);
    std::thread::sleep(Duration::from_millis(1200));

    let start = Instant::now();
    let m = query(
        server.addr,
        "unknown.example.org.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    let took = start.elapsed();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(took < Duration::from_millis(1600), "SERVFAIL took {took:?}");

    let m = query(server.addr, "stale.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_addresses(&m), ["192.0.2.60"], "served stale");
    assert_eq!(m.answers[0].ttl, 30, "RFC 8767 stale TTL");
}

#[tokio::test]
async fn without_serve_stale_an_expired_entry_is_servfail_when_upstreams_fail() {
    let up = FakeUpstream::start();
    up.add_a("gone.example.org", 1, "192.0.2.61");
    let server = forwarding(&[up.addr], "timeout = \"1s\"", Some("min_ttl = 0"));
    let m = query(server.addr, "gone.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.61"]);
    up.set(Behaviour::Silent);
    std::thread::sleep(Duration::from_millis(1200));
    let m = query(server.addr, "gone.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn replies_with_a_wrong_id_or_question_are_ignored() {
    let up = FakeUpstream::start();
    up.add_a("target.example.org", 60, "192.0.2.70");
    up.set(Behaviour::SpoofFirst);
    let server = forwarding(&[up.addr], "", Some(""));
    let m = query(
        server.addr,
        "target.example.org.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_addresses(&m), ["192.0.2.70"]);
    // And the spoofed answer did not poison the cache.
    let m = query(
        server.addr,
        "target.example.org.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_addresses(&m), ["192.0.2.70"]);
}

#[test]
fn each_upstream_query_has_a_fresh_id_and_carries_rd_cd_and_do() {
    let up = FakeUpstream::start();
    up.add_a("flags.example.org", 60, "192.0.2.80");
    let server = forwarding(&[up.addr], "", None);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut request = request_bytes("flags.example.org", RecordType::A, Some(1232));
        request[3] |= 0x10; // CD
        let flags_at = request.len() - 4;
        request[flags_at] = 0x80; // DO
        let reply = raw_udp(server.addr, &request, Duration::from_secs(5)).expect("reply");
        assert_eq!(&reply[..2], &[0x12, 0x34]);
        assert_eq!(reply[3] & 0x10, 0x10, "CD echoed to the client");
    }
    for s in up.seen().into_iter().filter(|s| s.qtype == RecordType::A) {
        assert!(
            s.recursion_desired && s.checking_disabled && s.dnssec_ok,
            "{s:?}"
        );
        ids.push(s.id);
    }
    assert_eq!(ids.len(), 3);
    assert!(
        !ids.contains(&0x1234),
        "the client's ID must not go upstream: {ids:?}"
    );
    ids.dedup();
    assert!(ids.len() >= 2, "IDs must differ: {ids:?}");
}

#[tokio::test]
async fn stub_domains_route_to_their_own_upstream_and_the_most_specific_zone_wins() {
    let general = FakeUpstream::start();
    general.add_a("www.example.org", 60, "192.0.2.1");
    general.add_a("host.corp.example", 60, "198.51.100.99");
    let corp = FakeUpstream::start();
    corp.add_a("host.corp.example", 60, "198.51.100.1");
    corp.add_a("deep.lab.corp.example", 60, "198.51.100.2");
    let lab = FakeUpstream::start();
    lab.add_a("deep.lab.corp.example", 60, "198.51.100.3");
    let (reserved, _tcp) = bind_pair();
    let port = reserved.local_addr().unwrap().port();
    drop((reserved, _tcp));
    let config = format!(
        r#"
[[server]]
listen = ["127.0.0.1:{port}"]
[server.forward]
to = ["{}"]

[[server]]
listen = ["127.0.0.1:{port}"]
zones = ["corp.example"]
[server.forward]
to = ["{}"]

[[server]]
listen = ["127.0.0.1:{port}"]
zones = ["lab.corp.example"]
[server.forward]
to = ["{}"]
"#,
        general.addr, corp.addr, lab.addr
    );
    let server = Server::with_config(&config);
    let m = query(server.addr, "host.corp.example.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["198.51.100.1"]);
    let m = query(
        server.addr,
        "deep.lab.corp.example.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_addresses(&m), ["198.51.100.3"]);
    let m = query(server.addr, "www.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.1"]);
    assert_eq!(general.count("host.corp.example"), 0);
}

#[tokio::test]
async fn an_external_name_service_is_followed_upstream() {
    let up = FakeUpstream::start();
    up.add_a("api.payments.example.com", 120, "192.0.2.90");
    let config = format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\n[server.kubernetes]\nmanifests = {:?}\n[server.forward]\nto = [\"{}\"]\n[server.cache]\n",
        demo_dir(),
        up.addr
    );
    let server = Server::with_config(&config);
    let m = query(
        server.addr,
        "payments.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        lines(&m.answers),
        [
            "api.payments.example.com. 120 IN A 192.0.2.90",
            "payments.shop.svc.cluster.local. 5 IN CNAME api.payments.example.com.",
        ]
    );
    // The cluster zone itself is still answered without an upstream.
    let m = query(
        server.addr,
        "frontend.shop.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_addresses(&m), ["10.96.10.10"]);
    assert_eq!(up.count("frontend.shop.svc.cluster.local"), 0);
}

#[tokio::test]
async fn a_forwarding_loop_is_detected_and_the_upstream_is_not_used() {
    let (reserved, tcp) = bind_pair();
    let me = reserved.local_addr().unwrap();
    drop((reserved, tcp));
    let server = Server::with_config(&format!(
        "[[server]]\nlisten = [\"{me}\"]\n[server.forward]\nto = [\"{me}\"]\ntimeout = \"1s\"\n"
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("forwarding loop detected") {
        assert!(
            Instant::now() < deadline,
            "no loop reported; stderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.stderr().contains(&me.to_string()),
        "names the upstream"
    );
    let start = Instant::now();
    let m = query(server.addr, "www.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused at once"
    );
}

#[test]
fn except_zones_are_not_forwarded_and_max_concurrent_refuses_the_excess() {
    let up = FakeUpstream::start();
    up.add_a("slow.example.org", 60, "192.0.2.100");
    up.add_a("x.internal.example", 60, "192.0.2.101");
    up.set(Behaviour::Delay(Duration::from_millis(600)));
    let server = forwarding(
        &[up.addr],
        "except = [\"internal.example\"]\nmax_concurrent = 1",
        None,
    );
    let out = dig(server.addr, &["x.internal.example", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    assert_eq!(up.count("x.internal.example"), 0);

    let addr = server.addr;
    let first = std::thread::spawn(move || dig(addr, &["slow.example.org", "A"]));
    std::thread::sleep(Duration::from_millis(150));
    let second = dig(addr, &["slow.example.org", "A"]);
    let first = first.join().unwrap();
    assert!(first.contains("192.0.2.100"), "{first}");
    assert!(second.contains("status: REFUSED"), "{second}");
}

#[tokio::test]
async fn an_upstream_servfail_is_passed_on_and_cached_only_for_servfail_ttl() {
    let up = FakeUpstream::start();
    up.set(Behaviour::ServFail);
    let server = forwarding(&[up.addr], "", Some("servfail_ttl = 1"));
    for _ in 0..2 {
        let m = query(
            server.addr,
            "broken.example.org.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(
        up.count("broken.example.org"),
        1,
        "second SERVFAIL from cache"
    );
    up.add_a("broken.example.org", 60, "192.0.2.110");
    up.set(Behaviour::Answer);
    std::thread::sleep(Duration::from_millis(1100));
    let m = query(
        server.addr,
        "broken.example.org.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(a_addresses(&m), ["192.0.2.110"]);
}

#[tokio::test]
async fn a_popular_entry_is_prefetched_before_it_expires() {
    let up = FakeUpstream::start();
    up.add_a("hot.example.org", 5, "192.0.2.120");
    let server = forwarding(&[up.addr], "", Some("min_ttl = 0\nprefetch = 1"));
    let start = Instant::now();
    let m = query(server.addr, "hot.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.120"]);
    // Inside the last 10% of the TTL: served from cache, and refreshed behind it.
    std::thread::sleep(Duration::from_millis(4650).saturating_sub(start.elapsed()));
    let m = query(server.addr, "hot.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.120"]);
    std::thread::sleep(Duration::from_millis(5600).saturating_sub(start.elapsed()));
    assert_eq!(up.count("hot.example.org"), 2, "one miss, one prefetch");
    let m = query(server.addr, "hot.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.120"]);
    assert!(
        m.answers[0].ttl >= 3,
        "the refreshed entry: {}",
        m.answers[0].ttl
    );
    assert_eq!(
        up.count("hot.example.org"),
        2,
        "the expired original did not miss"
    );
}
