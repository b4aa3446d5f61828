//! Forwarding and the cache: the real binary in front of in-process upstreams on loopback.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{Proto, Server, demo_dir, dig, lines, query, raw_udp, request_bytes};
use crate::upstream::{Behaviour, FakeUpstream, NEGATIVE_TTL, bind_pair};

/// One root block forwarding to `to`, with extra `[server.forward]` and `[server.cache]` lines.
pub fn forwarding(to: &[std::net::SocketAddr], forward: &str, cache: Option<&str>) -> Server {
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

    let first_sent = Instant::now();
    let first = query(server.addr, "www.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert!(first.metadata.recursion_available, "RA must be set");
    assert!(!first.metadata.authoritative);
    let mut ips = a_addresses(&first);
    ips.sort();
    assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
    assert!(first.answers.iter().all(|r| r.ttl == 300));

    // The countdown itself is unit-tested on a test clock (src/cache/tests.rs); here: cached
    // answers count down with time, never faster than it passes, and never reach upstream.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let second = query(server.addr, "WWW.Example.ORG.", RecordType::A, Proto::Tcp).await;
        let mut ips = a_addresses(&second);
        ips.sort();
        assert_eq!(ips, ["192.0.2.10", "192.0.2.11"]);
        let ttl = second.answers[0].ttl;
        assert!(
            second.answers.iter().all(|r| r.ttl == ttl),
            "one TTL for the whole entry: {second:?}"
        );
        // The entry is younger than the time since the first query was sent.
        let age = first_sent.elapsed();
        let floor = 299u32.saturating_sub(age.as_secs() as u32);
        assert!(
            (floor..=300).contains(&ttl),
            "cached TTL {ttl} when the entry is at most {age:?} old"
        );
        if ttl < 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cached TTL never counted down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
        "policy = \"sequential\"\ntimeout = \"4s\"",
        None,
    );
    let start = Instant::now();
    let m = query(server.addr, "next.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.50"]);
    // The silent upstream gets its share of the timeout (half: ~2 s), not all of it. The bound
    // is the whole timeout, which leaves ~2 s for a busy machine.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(up.count("next.example.org"), 1);
}

/// Queries `name` A until the answer is no longer the cached one (TTL 1, `ip`), which the
/// upstream (now failing) cannot refresh; returns that answer and how long its query took.
/// Before expiry every answer must be the cached one.
async fn after_expiry(server: &Server, name: &str, ip: &str) -> (Message, Duration) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let asked = Instant::now();
        let m = query(server.addr, name, RecordType::A, Proto::Udp).await;
        let took = asked.elapsed();
        let cached = m.metadata.response_code == ResponseCode::NoError
            && a_addresses(&m) == [ip]
            && m.answers[0].ttl == 1;
        if !cached {
            return (m, took);
        }
        assert!(
            Instant::now() < deadline,
            "{name}: a TTL-1 entry still served after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    // The bound is the forward timeout (1 s), well before the client's own 5 s; 2 s of slack
    // for a busy machine.
    assert!(took < Duration::from_secs(3), "SERVFAIL took {took:?}");
    assert!(
        up.count("unknown.example.org") >= 1,
        "it was tried upstream"
    );

    // Once expired, the entry is served stale after the upstream fails (the window itself is
    // unit-tested in src/cache/tests.rs).
    let (m, took) = after_expiry(&server, "stale.example.org.", "192.0.2.60").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(a_addresses(&m), ["192.0.2.60"], "served stale");
    assert_eq!(m.answers[0].ttl, 30, "RFC 8767 stale TTL");
    assert!(
        up.count("stale.example.org") >= 2,
        "the upstream was asked before serving stale"
    );
    assert!(
        took >= Duration::from_millis(900),
        "served stale only after the upstream timed out: {took:?}"
    );
}

#[tokio::test]
async fn without_serve_stale_an_expired_entry_is_servfail_when_upstreams_fail() {
    let up = FakeUpstream::start();
    up.add_a("gone.example.org", 1, "192.0.2.61");
    let server = forwarding(&[up.addr], "timeout = \"1s\"", Some("min_ttl = 0"));
    let m = query(server.addr, "gone.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.61"]);
    up.set(Behaviour::Silent);
    let (m, _) = after_expiry(&server, "gone.example.org.", "192.0.2.61").await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    assert!(a_addresses(&m).is_empty());
    // (The client may retransmit while the server waits on the upstream: at least one more.)
    assert!(
        up.count("gone.example.org") >= 2,
        "the miss was tried upstream"
    );
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
        "[[server]]\nlisten = [\"{me}\"]\n[server.forward]\nto = [\"{me}\"]\ntimeout = \"4s\"\n"
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
    // Not forwarded at all: at once rather than after the 4 s timeout (the bound leaves 2 s
    // for a busy machine).
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "refused at once: {:?}",
        start.elapsed()
    );
}

#[test]
fn except_zones_are_not_forwarded_and_max_concurrent_refuses_the_excess() {
    let up = FakeUpstream::start();
    up.add_a("slow.example.org", 60, "192.0.2.100");
    up.add_a("x.internal.example", 60, "192.0.2.101");
    up.add_a("excess.example.org", 60, "192.0.2.102");
    // Long enough that the first query surely still holds the one slot when the second comes.
    up.set(Behaviour::Delay(Duration::from_secs(3)));
    let server = forwarding(
        &[up.addr],
        "except = [\"internal.example\"]\nmax_concurrent = 1\ntimeout = \"4s\"",
        None,
    );
    let out = dig(server.addr, &["x.internal.example", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    assert_eq!(up.count("x.internal.example"), 0);

    let addr = server.addr;
    let first = std::thread::spawn(move || dig(addr, &["slow.example.org", "A"]));
    // The first query holds the slot from when the upstream sees it until it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.count("slow.example.org") == 0 {
        assert!(
            Instant::now() < deadline,
            "the first query never went upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = dig(addr, &["excess.example.org", "A"]);
    let first = first.join().unwrap();
    assert!(first.contains("192.0.2.100"), "{first}");
    assert!(second.contains("status: REFUSED"), "{second}");
    // The first query's datagram is sent again while the upstream is slow (retries within
    // the timeout); the excess query never goes upstream at all.
    assert_eq!(
        up.count("excess.example.org"),
        0,
        "the excess never went upstream"
    );
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
    // The cached SERVFAIL is served until it expires (1 s), then the answer is fetched once.
    // (Its exact lifetime is unit-tested in src/cache/tests.rs.)
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = query(
            server.addr,
            "broken.example.org.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        if m.metadata.response_code == ResponseCode::ServFail {
            assert_eq!(up.count("broken.example.org"), 1, "SERVFAIL from cache");
            assert!(
                Instant::now() < deadline,
                "SERVFAIL still cached after 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(a_addresses(&m), ["192.0.2.110"]);
        break;
    }
    assert_eq!(up.count("broken.example.org"), 2);
}

#[tokio::test]
async fn a_popular_entry_is_prefetched_before_it_expires() {
    // TTL 10: the prefetch window (the last 10%) is the second in which a hit reports TTL 1,
    // so a client can see when it is inside it. When (and how often) a prefetch is due is
    // unit-tested in src/cache/tests.rs; here: one happens end to end, and replaces the entry.
    let up = FakeUpstream::start();
    up.add_a("hot.example.org", 10, "192.0.2.120");
    let server = forwarding(&[up.addr], "", Some("min_ttl = 0\nprefetch = 1"));
    let m = query(server.addr, "hot.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.120"]);
    assert_eq!(m.answers[0].ttl, 10);
    // Hit the entry until a hit lands in its last second (a miss answers with TTL 10, so TTL 1
    // is a hit). If the machine stalls through that whole second, the entry expires, is
    // fetched again (a miss), and the next entry is tried.
    let deadline = Instant::now() + Duration::from_secs(45);
    let (in_window, fetched) = loop {
        assert!(
            Instant::now() < deadline,
            "no hit in an entry's last second within 45 s"
        );
        let before = up.count("hot.example.org");
        let m = query(server.addr, "hot.example.org.", RecordType::A, Proto::Udp).await;
        assert_eq!(a_addresses(&m), ["192.0.2.120"]);
        let ttl = m.answers[0].ttl;
        assert!((1..=10).contains(&ttl), "{ttl}");
        if ttl == 1 {
            break (Instant::now(), before);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // That hit sends the refresh upstream: nothing else asks for this name until the client
    // asks again, and the client is quiet now.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.count("hot.example.org") == fetched {
        assert!(
            Instant::now() < deadline,
            "no prefetch within 10 s of a hit in the entry's last second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once the original has expired (at most 1 s after the TTL-1 hit) the refreshed entry
    // answers (given time to arrive): no miss goes upstream.
    let wait = Duration::from_secs(2).saturating_sub(in_window.elapsed());
    tokio::time::sleep(wait.max(Duration::from_millis(500))).await;
    let m = query(server.addr, "hot.example.org.", RecordType::A, Proto::Udp).await;
    assert_eq!(a_addresses(&m), ["192.0.2.120"]);
    assert_eq!(
        up.count("hot.example.org"),
        fetched + 1,
        "one prefetch, and the expired original did not miss"
    );
}

/// `forward FROM …` with FROM narrower than the block (a Corefile's `forward example.org …`
/// in a `.` block): only names under FROM go upstream; the rest find nobody to answer.
#[test]
fn a_from_zone_narrower_than_the_block_forwards_only_its_names() {
    let up = FakeUpstream::start();
    up.add_a("a.example.org", 60, "192.0.2.7");
    up.add_a("a.example.net", 60, "192.0.2.8");
    let dir = crate::harness::TempDir::new();
    let corefile = dir.write(
        "Corefile",
        &format!(
            ".:0 {{\n    bind 127.0.0.1\n    forward Example.ORG. {}\n}}\n",
            up.addr
        ),
    );
    let server = Server::spawn_corefile(dir, &corefile);
    let inside = dig(server.addr, &["a.example.org", "A"]);
    assert!(
        inside.contains("192.0.2.7") && inside.contains("status: NOERROR"),
        "{inside}"
    );
    let outside = dig(server.addr, &["a.example.net", "A"]);
    assert!(outside.contains("status: REFUSED"), "{outside}");
    assert_eq!(up.count("a.example.net"), 0);
    assert_eq!(up.count("a.example.org"), 1);
}
