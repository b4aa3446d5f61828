//! An in-process upstream resolver on 127.0.0.1 (UDP and TCP on one port) whose answers and
//! misbehaviour the test controls, and which records every query it receives.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// How the upstream behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Answer,
    /// Receives and never answers.
    Silent,
    /// Over UDP: an empty reply with TC set; over TCP: the full answer.
    TruncateUdp,
    /// Before the real reply: one with a wrong ID, one with the right ID for another name,
    /// both carrying 203.0.113.66 (a poisoning attempt).
    SpoofFirst,
    /// Answers SERVFAIL.
    ServFail,
    /// Answers after this long.
    Delay(Duration),
    /// Replies with the query's ID and question followed by garbage.
    Garbage,
    /// Replies with the real answer cut off in the middle of its records.
    Cut,
    /// Over UDP, drops the first datagram of each question (name and type) and answers the
    /// ones after it, as a busy upstream that lost a packet.
    DropFirst,
    /// Answers only the health check (`. IN NS`); never any other query.
    OnlyHealthChecks,
}

/// One query as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub name: String,
    pub qtype: RecordType,
    pub tcp: bool,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub dnssec_ok: bool,
    pub id: u16,
}

#[derive(Default)]
struct State {
    /// (lower-case name with trailing dot, type) → (ttl, address)
    a: HashMap<String, Vec<(u32, std::net::Ipv4Addr)>>,
    seen: Vec<Seen>,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: Arc<AtomicBool>,
}

/// The SOA every negative answer carries: TTL 120, MINIMUM 60 (so negative TTL 60).
pub const NEGATIVE_TTL: u32 = 60;

impl FakeUpstream {
    pub fn start() -> FakeUpstream {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        let upstream = FakeUpstream {
            addr,
            state: Arc::default(),
            behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
            stop: Arc::default(),
        };
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (state, behaviour, stop) = (
            upstream.state.clone(),
            upstream.behaviour.clone(),
            upstream.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                let request = buf[..len].to_vec();
                let (udp, state, behaviour) =
                    (udp.try_clone().unwrap(), state.clone(), behaviour.clone());
                std::thread::spawn(move || {
                    for reply in respond(&request, false, &state, &behaviour) {
                        let _ = udp.send_to(&reply, peer);
                    }
                });
            }
        });
        let (state, behaviour, stop) = (
            upstream.state.clone(),
            upstream.behaviour.clone(),
            upstream.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let (state, behaviour) = (state.clone(), behaviour.clone());
                std::thread::spawn(move || {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut request).is_err() {
                            return;
                        }
                        for reply in respond(&request, true, &state, &behaviour) {
                            let mut out = (reply.len() as u16).to_be_bytes().to_vec();
                            out.extend_from_slice(&reply);
                            if stream.write_all(&out).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        upstream
    }

    /// Adds an A record (name with or without the trailing dot).
    pub fn add_a(&self, name: &str, ttl: u32, ip: &str) -> &Self {
        let key = absolute(name);
        self.state
            .lock()
            .unwrap()
            .a
            .entry(key)
            .or_default()
            .push((ttl, ip.parse().unwrap()));
        self
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// How many queries for `name` (any case) it has received.
    pub fn count(&self, name: &str) -> usize {
        let name = absolute(name);
        self.seen()
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(&name))
            .count()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A UDP socket and a TCP listener on the same loopback port.
pub fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
            return (udp, tcp);
        }
    }
    panic!("no free loopback port for UDP and TCP");
}

fn absolute(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn respond(
    request: &[u8],
    tcp: bool,
    state: &Mutex<State>,
    behaviour: &Mutex<Behaviour>,
) -> Vec<Vec<u8>> {
    let Ok(query) = Message::from_vec(request) else {
        return Vec::new();
    };
    let Some(q) = query.queries.first().cloned() else {
        return Vec::new();
    };
    let name = q.name().to_ascii();
    let earlier = state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| !s.tcp && s.name == name && s.qtype == q.query_type())
        .count();
    state.lock().unwrap().seen.push(Seen {
        name: name.clone(),
        qtype: q.query_type(),
        tcp,
        recursion_desired: query.metadata.recursion_desired,
        checking_disabled: query.metadata.checking_disabled,
        dnssec_ok: query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        id: query.metadata.id,
    });
    let behaviour = *behaviour.lock().unwrap();
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    if let Some(e) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.flags_mut().dnssec_ok = e.flags().dnssec_ok;
        reply.set_edns(edns);
    }
    match behaviour {
        Behaviour::Silent => return Vec::new(),
        Behaviour::DropFirst if !tcp && earlier == 0 => return Vec::new(),
        Behaviour::OnlyHealthChecks if !(name == "." && q.query_type() == RecordType::NS) => {
            return Vec::new();
        }
        Behaviour::ServFail => {
            reply.metadata.response_code = ResponseCode::ServFail;
            return vec![reply.to_vec().unwrap()];
        }
        Behaviour::TruncateUdp if !tcp => {
            reply.metadata.truncation = true;
            return vec![reply.to_vec().unwrap()];
        }
        Behaviour::Delay(d) => std::thread::sleep(d),
        _ => {}
    }
    let lower = name.to_ascii_lowercase();
    let records = state.lock().unwrap().a.get(&lower).cloned();
    match records {
        Some(list) if q.query_type() == RecordType::A => {
            for (ttl, ip) in list {
                reply.add_answer(Record::from_rdata(q.name().clone(), ttl, RData::A(A(ip))));
            }
        }
        Some(_) => {
            reply.add_authority(soa());
        }
        None => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.add_authority(soa());
        }
    }
    let mut replies = Vec::new();
    if behaviour == Behaviour::SpoofFirst {
        let mut spoof = Message::new(
            query.metadata.id.wrapping_add(1),
            MessageType::Response,
            OpCode::Query,
        );
        spoof.add_query(q.clone());
        spoof.add_answer(Record::from_rdata(
            q.name().clone(),
            3600,
            RData::A(A("203.0.113.66".parse().unwrap())),
        ));
        replies.push(spoof.to_vec().unwrap());
        let mut other = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        let wrong = Name::from_str("other.example.").unwrap();
        other.add_query(hickory_proto::op::Query::query(
            wrong.clone(),
            RecordType::A,
        ));
        other.add_answer(Record::from_rdata(
            q.name().clone(),
            3600,
            RData::A(A("203.0.113.66".parse().unwrap())),
        ));
        replies.push(other.to_vec().unwrap());
    }
    let bytes = reply.to_vec().unwrap();
    match behaviour {
        Behaviour::Garbage => {
            // Name::len is the dotted length; on the wire a name is one octet longer.
            let question_end = 12 + q.name().len() + 1 + 4;
            let mut junk = bytes[..question_end].to_vec();
            junk[7] = 3; // three answers announced
            junk.extend_from_slice(&[0xc0, 0xff, 0xfe, 0x01, 0x02]);
            replies.push(junk);
        }
        Behaviour::Cut => replies.push(bytes[..bytes.len() - 3].to_vec()),
        _ => replies.push(bytes),
    }
    replies
}

fn soa() -> Record {
    Record::from_rdata(
        Name::from_str("example.").unwrap(),
        120,
        RData::SOA(SOA::new(
            Name::from_str("ns.example.").unwrap(),
            Name::from_str("hostmaster.example.").unwrap(),
            1,
            7200,
            1800,
            86400,
            NEGATIVE_TTL,
        )),
    )
}
