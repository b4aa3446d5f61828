//! DNS over TLS to upstreams (`tls://`): the real binary forwarding to a real `unbound` that
//! speaks only TLS on its port, with a CA and a server certificate made here by `openssl`.
//! A counting TCP proxy in front of unbound shows how many connections clusterdns opens and
//! what their first bytes are (a TLS ClientHello, never a DNS query).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::differential::CoreDns;
use crate::harness::{Proto, Server, TempDir, lines, query, raw_udp, request_bytes};

/// The name the server certificate holds (with IP 127.0.0.1).
pub(crate) const SERVER_NAME: &str = "dns.test";
/// How many names unbound answers: `n0.example.test` … (192.0.2.N).
const NAMES: usize = 20;

/// Runs a command in `dir`; panics with its stderr when it fails.
pub(crate) fn run(dir: &TempDir, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(&dir.0)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} must be installed (scripts/test.sh installs it): {e}")
        });
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`), a server certificate it signs for dns.test and 127.0.0.1
/// (`server.pem`, `server.key`), and an unrelated CA (`other-ca.pem`).
pub(crate) fn make_certificates(dir: &TempDir) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, subject) in [
        ("ca", "/CN=clusterdns test CA"),
        ("other-ca", "/CN=another CA"),
    ] {
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", subject];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem]);
        args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        args.extend(["-addext", "keyUsage=critical,keyCertSign"]);
        run(dir, "openssl", &args);
    }
    let mut args = vec![
        "req",
        "-subj",
        "/CN=dns.test",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ];
    args.extend(ec);
    run(dir, "openssl", &args);
    dir.write(
        "server.ext",
        "subjectAltName=DNS:dns.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// A free loopback TCP port (unbound takes its port from its config).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `addr`.
fn wait_listening(addr: SocketAddr, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {addr} within 20 s"
        );
        std::thread::yield_now();
    }
}

/// unbound answering `n*.example.test` over DNS over TLS only, on a loopback port.
struct Unbound {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Unbound {
    fn start() -> Unbound {
        let dir = TempDir::new();
        make_certificates(&dir);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut config = format!(
            "server:\n  interface: 127.0.0.1@{port}\n  tls-port: {port}\n  port: {port}\n  do-udp: no\n  do-ip6: no\n\
             \x20 tls-service-key: \"{dir}/server.key\"\n  tls-service-pem: \"{dir}/server.pem\"\n\
             \x20 do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n\
             \x20 use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  access-control: 127.0.0.0/8 allow\n\
             \x20 module-config: \"iterator\"\n  incoming-num-tcp: 64\n  tcp-idle-timeout: 60000\n\
             \x20 local-zone: \".\" static\n  local-zone: \"example.test.\" static\n",
            port = addr.port(),
            dir = dir.0.display(),
        );
        for n in 0..NAMES {
            config.push_str(&format!(
                "  local-data: \"n{n}.example.test. 300 IN A 192.0.2.{n}\"\n"
            ));
        }
        let path = dir.write("unbound.conf", &config);
        let log = std::fs::File::create(dir.0.join("unbound.log")).unwrap();
        let mut child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("unbound must be installed (scripts/test.sh installs it)");
        wait_listening(addr, "unbound", &mut child);
        Unbound { child, addr, dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.0.join(name).display().to_string()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each connection the proxy accepted: the client's first bytes, and the client end.
type Accepted = Arc<Mutex<Vec<(Vec<u8>, TcpStream)>>>;

/// A TCP proxy to `to` that counts connections, keeps each one's first bytes and can cut
/// them all. A UDP socket on its port shows whether anything was sent there in plain text.
struct Proxy {
    addr: SocketAddr,
    udp: UdpSocket,
    /// Each accepted connection's first bytes from the client, and its two ends.
    connections: Accepted,
}

impl Proxy {
    fn start(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let udp = UdpSocket::bind(addr).expect("the UDP port of the proxy's number");
        udp.set_nonblocking(true).unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(upstream) = TcpStream::connect(to) else {
                    return;
                };
                relay(client, upstream, seen.clone());
            }
        });
        Proxy {
            addr,
            udp,
            connections,
        }
    }

    fn first_bytes(&self) -> Vec<Vec<u8>> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// Closes every connection (as an upstream restarting would).
    fn cut_all(&self) {
        for (_, stream) in self.connections.lock().unwrap().iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Nothing was sent to the port over UDP, and every connection began with a TLS
    /// handshake record (0x16, version 3.x), never a DNS length prefix.
    fn assert_only_tls(&self) {
        let mut buf = [0u8; 512];
        assert!(
            self.udp.recv_from(&mut buf).is_err(),
            "a datagram reached the TLS port"
        );
        for first in self.first_bytes() {
            assert_eq!(
                first.get(..2),
                Some(&[0x16, 0x03][..]),
                "not a TLS ClientHello: {first:02x?}"
            );
        }
    }
}

/// Copies both ways; records the client's first bytes before any are passed on.
fn relay(client: TcpStream, upstream: TcpStream, seen: Accepted) {
    let (mut from_client, mut to_upstream) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let (mut from_upstream, mut to_client) = (upstream, client.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut first = [0u8; 16];
        let n = from_client.read(&mut first).unwrap_or(0);
        seen.lock().unwrap().push((first[..n].to_vec(), client));
        if n == 0 || to_upstream.write_all(&first[..n]).is_err() {
            let _ = to_upstream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(std::net::Shutdown::Both);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
}

/// clusterdns forwarding everything to `tls://addr` with extra `[server.forward]` lines.
fn forwarding_over_tls(addr: SocketAddr, extra: &str) -> Server {
    Server::with_config(&format!(
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.forward]\nto = [\"tls://{addr}\"]\n{extra}\n"
    ))
}

/// The A answer's bytes for `n{n}.example.test` as a raw query asks it: the question echoed,
/// one answer pointing at it with TTL 300 and 192.0.2.n.
fn assert_answer_bytes(reply: &[u8], request: &[u8], n: u8) {
    assert_eq!(reply[..2], request[..2], "the client's ID");
    assert_eq!(reply[2] & 0x80, 0x80, "QR");
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    assert_eq!(reply[4..8], [0, 1, 0, 1], "one question, one answer");
    let question_end = request.len() - 11; // the request ends with an OPT record
    assert_eq!(
        reply[12..question_end],
        request[12..question_end],
        "the question"
    );
    let answer = &reply[question_end..question_end + 16];
    assert_eq!(
        answer,
        [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, n],
        "n{n}.example.test 300 IN A 192.0.2.{n}"
    );
}

#[tokio::test]
async fn answers_come_back_over_tls_on_one_shared_connection() {
    let unbound = Unbound::start();
    let proxy = Proxy::start(unbound.addr);
    let server = forwarding_over_tls(
        proxy.addr,
        &format!(
            "tls_ca = {:?}\ntls_servername = \"{SERVER_NAME}\"",
            unbound.file("ca.pem")
        ),
    );

    let request = request_bytes("n7.example.test", RecordType::A, Some(1232));
    let reply = raw_udp(server.addr, &request, Duration::from_secs(5)).expect("a reply");
    assert_answer_bytes(&reply, &request, 7);

    // Queries at once, over UDP and TCP: each answered with its own address, all on the one
    // connection the first query opened (pipelined, matched by ID).
    let queries = (0..NAMES).map(|n| {
        let proto = if n % 2 == 0 { Proto::Udp } else { Proto::Tcp };
        let name = format!("n{n}.example.test.");
        let addr = server.addr;
        async move { (n, query(addr, &name, RecordType::A, proto).await) }
    });
    for (n, answer) in futures_util::future::join_all(queries).await {
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError, "n{n}");
        assert_eq!(
            lines(&answer.answers),
            [format!("n{n}.example.test. 300 IN A 192.0.2.{n}")]
        );
    }
    assert_eq!(
        proxy.first_bytes().len(),
        1,
        "one TLS connection for every query"
    );
    proxy.assert_only_tls();

    // The upstream closes the connection: the next query opens a new one and is answered.
    proxy.cut_all();
    let reply = raw_udp(server.addr, &request, Duration::from_secs(5)).expect("a reply");
    assert_answer_bytes(&reply, &request, 7);
    assert_eq!(
        proxy.first_bytes().len(),
        2,
        "one new connection after the cut"
    );
    proxy.assert_only_tls();
}

#[tokio::test]
async fn without_a_servername_the_certificate_is_verified_against_the_ip() {
    let unbound = Unbound::start();
    let server = forwarding_over_tls(
        unbound.addr,
        &format!("tls_ca = {:?}", unbound.file("ca.pem")),
    );
    let answer = query(server.addr, "n3.example.test.", RecordType::A, Proto::Udp).await;
    assert_eq!(
        lines(&answer.answers),
        ["n3.example.test. 300 IN A 192.0.2.3"]
    );
}

/// A query through `server` fails with SERVFAIL, and the log says why, naming the upstream.
async fn assert_refused_with(server: &Server, upstream: SocketAddr, reason: &str) {
    let answer = query(server.addr, "n1.example.test.", RecordType::A, Proto::Udp).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(answer.answers.is_empty());
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("cannot connect to upstream over TLS"))
        .unwrap_or_else(|| panic!("no TLS failure logged:\n{log}"));
    assert!(line.contains(&upstream.to_string()), "{line}");
    assert!(line.contains(reason), "{line}");
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_is_servfail_and_logged_never_plain_dns() {
    let unbound = Unbound::start();
    let proxy = Proxy::start(unbound.addr);

    let wrong_ca = forwarding_over_tls(
        proxy.addr,
        &format!(
            "tls_ca = {:?}\ntls_servername = \"{SERVER_NAME}\"",
            unbound.file("other-ca.pem")
        ),
    );
    assert_refused_with(&wrong_ca, proxy.addr, "UnknownIssuer").await;

    let wrong_name = forwarding_over_tls(
        proxy.addr,
        &format!(
            "tls_ca = {:?}\ntls_servername = \"other.test\"",
            unbound.file("ca.pem")
        ),
    );
    assert_refused_with(&wrong_name, proxy.addr, "not valid for name").await;

    assert!(
        !proxy.first_bytes().is_empty(),
        "clusterdns tried to connect"
    );
    proxy.assert_only_tls();
}

/// The same Corefile `forward . tls://… { OPTIONS }` served by the real CoreDNS 1.11 and by
/// clusterdns (`--corefile`): the same header flags, records and EDNS (CoreDNS writes the
/// names uncompressed, clusterdns passes unbound's compressed reply on), or SERVFAIL from both.
#[test]
fn a_corefile_forward_over_tls_answers_as_coredns_1_11_does() {
    let unbound = Unbound::start();
    let (ca, other_ca) = (unbound.file("ca.pem"), unbound.file("other-ca.pem"));
    let cases = [
        (format!("tls {ca}\n        tls_servername {SERVER_NAME}"), 0),
        // No servername: both verify the certificate against the upstream's IP.
        (format!("tls {ca}"), 0),
        (format!("tls {ca}\n        tls_servername other.test"), 2),
        (
            format!("tls {other_ca}\n        tls_servername {SERVER_NAME}"),
            2,
        ),
    ];
    let request = request_bytes("n5.example.test", RecordType::A, Some(1232));
    for (options, rcode) in cases {
        let corefile = |port: u16| {
            format!(
                ".:{port} {{\n    bind 127.0.0.1\n    forward . tls://{} {{\n        {options}\n    }}\n}}\n",
                unbound.addr
            )
        };
        let coredns = CoreDns::with_corefile(corefile);
        let dir = TempDir::new();
        let file = dir.write("Corefile", &corefile(0));
        let ours = Server::spawn_corefile(dir, &file);
        // CoreDNS retries a failing upstream for up to 5 s before its SERVFAIL.
        let wait = Duration::from_secs(10);
        let theirs = raw_udp(coredns.addr, &request, wait).expect("CoreDNS replies");
        let mine = raw_udp(ours.addr, &request, wait).expect("clusterdns replies");
        assert_eq!(theirs[3] & 0x0f, rcode, "CoreDNS with {options}");
        // RA on every answer of a forwarding block, its SERVFAIL too (README: differences).
        let without_ra = |m: &[u8]| [&[m[2], m[3] & 0x7f][..], &m[4..12]].concat();
        assert_eq!(
            without_ra(&mine),
            without_ra(&theirs),
            "header, with {options}: {}",
            ours.stderr()
        );
        assert_eq!(mine[3] & 0x80, 0x80, "RA");
        let (mine_m, theirs_m) = (
            Message::from_vec(&mine).unwrap(),
            Message::from_vec(&theirs).unwrap(),
        );
        assert_eq!(
            lines(&mine_m.answers),
            lines(&theirs_m.answers),
            "with {options}"
        );
        assert_eq!(mine_m.edns, theirs_m.edns, "with {options}");
        if rcode == 0 {
            assert_answer_bytes(&mine, &request, 5);
        }
    }
}

#[test]
fn check_names_the_key_of_an_unreadable_ca() {
    let dir = TempDir::new();
    let config = dir.write(
        "clusterdns.toml",
        "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.forward]\nto = [\"tls://127.0.0.1\"]\ntls_ca = \"missing.pem\"\n",
    );
    let output = Command::new(crate::harness::BIN)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("server[0].forward.tls_ca"), "{text}");
    assert!(text.contains("missing.pem"), "{text}");
}
