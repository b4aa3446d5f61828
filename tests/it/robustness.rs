//! Bad input from clients and upstreams: the right rcode or a silent drop, never a crash, and
//! normal queries keep being answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::{Server, raw_tcp, raw_udp, request_bytes};
use crate::upstream::{Behaviour, FakeUpstream};

const WAIT: Duration = Duration::from_millis(800);

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

fn still_answers(s: &Server) {
    let ok = raw_udp(
        s.addr,
        &request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None),
        WAIT,
    )
    .expect("normal query answered");
    let m = Message::from_vec(&ok).expect("parses");
    assert_eq!(m.answers.len(), 1);
}

/// A header with one question and `name` given as raw wire bytes.
fn with_raw_name(name: &[u8], qtype: u16, qclass: u16, arcount: u16) -> Vec<u8> {
    let mut out = vec![0x55, 0x66, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
    out.extend_from_slice(&arcount.to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    out
}

fn opt(payload: u16, options: &[u8], rdlen: u16) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    o.extend_from_slice(&payload.to_be_bytes());
    o.extend_from_slice(&[0, 0, 0, 0]);
    o.extend_from_slice(&rdlen.to_be_bytes());
    o.extend_from_slice(options);
    o
}

#[test]
fn malformed_names_and_edns_get_formerr() {
    let s = Server::demo();
    // A label length of 64 (0x40: reserved label type).
    let mut name = vec![64];
    name.extend(std::iter::repeat_n(b'a', 64));
    name.push(0);
    let reply = raw_udp(s.addr, &with_raw_name(&name, 1, 1, 0), WAIT).expect("reply");
    assert_eq!(rcode(&reply), 1, "label over 63 octets");
    // A name over 255 octets: five labels of 63.
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63);
        long.extend(std::iter::repeat_n(b'b', 63));
    }
    long.push(0);
    let reply = raw_udp(s.addr, &with_raw_name(&long, 1, 1, 0), WAIT).expect("reply");
    assert_eq!(rcode(&reply), 1, "name over 255 octets");
    // A forward compression pointer (to an offset past itself).
    let reply = raw_udp(s.addr, &with_raw_name(&[0xc0, 40], 1, 1, 0), WAIT).expect("reply");
    assert_eq!(rcode(&reply), 1, "forward pointer");
    // Two OPT records (RFC 6891 §6.1.1).
    let mut two = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    two[11] = 2;
    two.extend(opt(1232, &[], 0));
    two.extend(opt(1232, &[], 0));
    let reply = raw_udp(s.addr, &two, WAIT).expect("reply");
    assert_eq!(rcode(&reply), 1, "two OPT records");
    // An EDNS option whose length runs past the record.
    let mut bad = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    bad[11] = 1;
    bad.extend(opt(1232, &[0, 10, 0, 40, 1, 2], 6));
    let reply = raw_udp(s.addr, &bad, WAIT).expect("reply");
    assert_eq!(rcode(&reply), 1, "bad option length");
    // Two questions.
    let mut q2 = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    let question = q2[12..].to_vec();
    q2[5] = 2;
    q2.extend(question);
    let reply = raw_udp(s.addr, &q2, WAIT).expect("reply");
    assert_eq!(rcode(&reply), 1, "QDCOUNT 2");
    still_answers(&s);
}

#[test]
fn unknown_types_are_nodata_unknown_classes_refused_and_junk_survived() {
    let s = Server::demo();
    let q = request_bytes(
        "frontend.shop.svc.cluster.local.",
        RecordType::Unknown(65280),
        None,
    );
    let m = Message::from_vec(&raw_udp(s.addr, &q, WAIT).expect("reply")).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 0);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1, "NODATA carries the SOA");
    let mut chaos = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    let n = chaos.len();
    chaos[n - 1] = 3; // class CH
    assert_eq!(rcode(&raw_udp(s.addr, &chaos, WAIT).expect("reply")), 5);
    // A 60 KB datagram of junk after a valid header: answered or dropped, never fatal.
    let mut big = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    big.extend(std::iter::repeat_n(0xff, 60_000));
    if let Some(reply) = raw_udp(s.addr, &big, WAIT) {
        assert!(Message::from_vec(&reply).is_ok(), "a reply always parses");
    }
    // Random garbage of every length up to 64 bytes.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..64 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        if let Some(reply) = raw_udp(s.addr, &junk, Duration::from_millis(50)) {
            assert!(Message::from_vec(&reply).is_ok(), "reply to junk parses");
        }
    }
    still_answers(&s);
}

#[test]
fn a_stalled_or_slow_tcp_client_does_not_hold_up_others() {
    let s = Server::demo();
    // Announces 500 bytes, sends 10, then stalls.
    let mut stalled = TcpStream::connect(s.addr).unwrap();
    stalled.write_all(&[1, 244]).unwrap();
    stalled.write_all(&[0; 10]).unwrap();
    // Dribbles a query a byte at a time.
    let query = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let addr = s.addr;
    let slow = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        for b in framed {
            c.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut reply = vec![0; u16::from_be_bytes(len).into()];
        c.read_exact(&mut reply).unwrap();
        reply
    });
    let start = Instant::now();
    for _ in 0..20 {
        let reply = raw_tcp(s.addr, &query);
        assert_eq!(Message::from_vec(&reply).unwrap().answers.len(), 1);
        still_answers(&s);
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "others answered promptly"
    );
    let reply = slow.join().unwrap();
    assert_eq!(
        Message::from_vec(&reply).unwrap().answers.len(),
        1,
        "the slow client too"
    );
    drop(stalled);
}

#[tokio::test]
async fn garbage_or_cut_upstream_replies_become_servfail() {
    use crate::harness::{Proto, query};
    for behaviour in [Behaviour::Garbage, Behaviour::Cut] {
        let up = FakeUpstream::start();
        up.add_a("x.example.org", 60, "192.0.2.1");
        up.set(behaviour);
        let server = Server::with_config(&format!(
            "[[server]]\nlisten = [\"127.0.0.1:0\"]\n[server.forward]\nto = [\"{}\"]\ntimeout = \"1s\"\n",
            up.addr
        ));
        let start = Instant::now();
        let m = query(server.addr, "x.example.org.", RecordType::A, Proto::Udp).await;
        assert_eq!(u16::from(m.metadata.response_code), 2, "{behaviour:?}");
        assert!(start.elapsed() < Duration::from_millis(1800));
        up.set(Behaviour::Answer);
        let m = query(server.addr, "x.example.org.", RecordType::A, Proto::Udp).await;
        assert_eq!(m.answers.len(), 1, "{behaviour:?}: recovers");
    }
}

#[test]
fn rate_limiting_caps_udp_answers_per_prefix_and_slips_truncated_replies() {
    let s = Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nrate_limit = 5\n[server.kubernetes]\nmanifests = {:?}\n",
        crate::harness::demo_dir()
    ));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let query = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    for _ in 0..40 {
        socket.send_to(&query, s.addr).unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..n]).expect("parses");
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        } else {
            full += 1;
        }
    }
    // 40 queries within a second or two: 5 (or 10 across a second boundary) answered, about
    // half the rest slipped as TC, the others dropped.
    assert!((5..=15).contains(&full), "answered {full}");
    assert!(
        truncated >= 10 && full + truncated < 40,
        "slipped {truncated}, answered {full}"
    );
    // TCP is never limited.
    let reply = raw_tcp(s.addr, &query);
    assert_eq!(Message::from_vec(&reply).unwrap().answers.len(), 1);
}

#[test]
fn the_tcp_connection_limit_queues_the_excess_without_blocking_udp() {
    let s = Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\ntcp_connections = 3\n[server.kubernetes]\nmanifests = {:?}\n",
        crate::harness::demo_dir()
    ));
    let query = request_bytes("frontend.shop.svc.cluster.local.", RecordType::A, None);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let ask = |c: &mut TcpStream| -> std::io::Result<Vec<u8>> {
        c.write_all(&framed)?;
        let mut len = [0u8; 2];
        c.read_exact(&mut len)?;
        let mut reply = vec![0; u16::from_be_bytes(len).into()];
        c.read_exact(&mut reply)?;
        Ok(reply)
    };
    // Three connections take every slot (each answered once, then kept open and idle).
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            ask(&mut c).expect("a slot");
            c
        })
        .collect();
    // The fourth is accepted by the kernel but not served while the three stay.
    let mut fourth = TcpStream::connect(s.addr).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(ask(&mut fourth).is_err(), "served beyond the limit");
    still_answers(&s);
    // A slot frees: the queued connection is served.
    drop(held.pop());
    fourth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut len = [0u8; 2];
    fourth
        .read_exact(&mut len)
        .expect("served once a slot is free");
}
