//! Fault scenarios: the server's sockets. TCP clients that send queries and never read; UDP
//! answers as amplifiers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::{Server, TempDir, raw_udp, request_bytes};

/// A headless Service with 200 ready endpoints: its A answer is about 3.3 kB.
fn big_headless() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: big}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: many, namespace: big}\nspec: {clusterIP: None, ports: [{name: http, port: 80}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: many-0, namespace: big, labels: {kubernetes.io/service-name: many}}\naddressType: IPv4\nports: [{name: http, port: 80}]\nendpoints:\n",
    );
    for i in 0..200 {
        text.push_str(&format!("- addresses: [10.50.{}.{}]\n", i / 100, i % 100));
    }
    text
}

const BIG: &str = "many.big.svc.cluster.local.";

fn server(server_options: &str) -> (Server, TempDir) {
    let manifests = TempDir::new();
    manifests.write("big.yaml", &big_headless());
    let s = Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n{server_options}\n\
         [server.kubernetes]\nmanifests = {:?}\n",
        manifests.0
    ));
    (s, manifests)
}

/// A client from `source` that pipelines big queries and never reads: it writes until the
/// server stops reading (its writes then block), and keeps the connection open.
fn hog(addr: SocketAddr, source: &str) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let bind: SocketAddr = format!("{source}:0").parse().ok()?;
    socket.bind(&bind.into()).ok()?;
    socket.connect(&addr.into()).ok()?;
    let mut stream: TcpStream = socket.into();
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let query = request_bytes(BIG, RecordType::A, None);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let batch: Vec<u8> = framed.repeat(500);
    // Bounded: at most 40 batches (20,000 queries, about 66 MB of answers never read).
    for _ in 0..40 {
        if stream.write_all(&batch).is_err() {
            break;
        }
    }
    Some(stream)
}

/// One TCP query from 127.0.0.1; the answer count, or `None` if no answer came within `wait`.
fn tcp_answers(addr: SocketAddr, name: &str, wait: Duration) -> Option<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, wait).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    let query = request_bytes(name, RecordType::A, None);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut reply = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).ok()?;
    Some(Message::from_vec(&reply).ok()?.answers.len())
}

#[test]
fn clients_that_never_read_cannot_take_every_tcp_slot() {
    let (s, _manifests) = server("tcp_connections = 16");
    let addr = s.addr;
    // 16 hogs from one address, as many as there are slots.
    let hogs: Vec<TcpStream> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(move || hog(addr, "127.0.0.2")))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(!hogs.is_empty(), "the hogs connected");
    let start = Instant::now();
    let answered = tcp_answers(addr, BIG, Duration::from_secs(8));
    assert_eq!(
        answered,
        Some(200),
        "another client is answered while the hogs hold their share (took {:?})",
        start.elapsed()
    );
    drop(hogs);
}

#[test]
fn a_blocked_tcp_write_gives_its_slot_back_after_the_idle_timeout() {
    let (s, _manifests) = server("tcp_connections = 1");
    let hog = hog(s.addr, "127.0.0.2").expect("the hog connected");
    // The hog holds the only slot with a write blocked; the server gives up on it after its
    // 10 s idle timeout and this client is served then (generous bound: a busy machine).
    let start = Instant::now();
    let mut answered = None;
    while answered.is_none() && start.elapsed() < Duration::from_secs(40) {
        answered = tcp_answers(s.addr, BIG, Duration::from_secs(15));
    }
    assert_eq!(answered, Some(200), "served after {:?}", start.elapsed());
    drop(hog);
}

#[test]
fn udp_answers_are_capped_at_1232_bytes_whatever_edns_size_is_asked() {
    let (s, _manifests) = server("");
    // A 60-byte query asking for 65,000 bytes: an amplifier if answered in full.
    let query = request_bytes(BIG, RecordType::A, Some(65000));
    let reply = raw_udp(s.addr, &query, Duration::from_secs(5)).expect("a reply");
    assert!(reply.len() <= 1232, "{} bytes", reply.len());
    let m = Message::from_vec(&reply).unwrap();
    assert!(m.metadata.truncation, "TC: the client retries over TCP");
    // Configured larger, the client's size is honoured up to it.
    let (s, _manifests) = server("max_udp_size = 4096");
    let reply = raw_udp(s.addr, &query, Duration::from_secs(5)).expect("a reply");
    let m = Message::from_vec(&reply).unwrap();
    assert!(
        !m.metadata.truncation && m.answers.len() == 200,
        "{} bytes",
        reply.len()
    );
}
