//! DNS over TLS served (RFC 7858): the real binary with a `tls://` listen address and
//! `[server.tls]`, certificates made by `openssl` (`dot::make_certificates`: a CA, a server
//! certificate for dns.test and 127.0.0.1, an unrelated CA). Clients: a rustls client here
//! (several queries written at once on one connection) and `kdig +tls`; the same Corefile
//! `tls://` block run by CoreDNS 1.11 answers the same.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use crate::differential::CoreDns;
use crate::dot::{SERVER_NAME, make_certificates, run};
use crate::harness::{
    BIN, Server, TempDir, demo_dir, free_port, http_get, lines, raw_tcp, request_bytes,
};

/// Certificates in a directory of their own (the server's config lives in another).
struct Certs(TempDir);

impl Certs {
    fn new() -> Certs {
        let dir = TempDir::new();
        make_certificates(&dir);
        Certs(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.0.join(name)
    }
}

/// A rustls client trusting the CA certificates of `ca` only.
fn connector(ca: &Path) -> TlsConnector {
    with_client_cert(ca, None)
}

/// A rustls client trusting `ca`, with the client certificate `cert` (PEM, its key beside it
/// as `.key`) when given.
fn with_client_cert(ca: &Path, cert: Option<&Path>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some(cert) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(cert.with_extension("key")).unwrap();
            config.with_client_auth_cert(chain, key).unwrap()
        }
        None => config.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// Writes every request at once on one TLS connection (verified for dns.test against `ca`),
/// then reads as many length-prefixed replies.
async fn pipelined(
    addr: SocketAddr,
    ca: &Path,
    requests: &[Vec<u8>],
) -> std::io::Result<Vec<Vec<u8>>> {
    pipelined_with(addr, &connector(ca), requests).await
}

/// As [`pipelined`], with the client `connector`.
async fn pipelined_with(
    addr: SocketAddr,
    connector: &TlsConnector,
    requests: &[Vec<u8>],
) -> std::io::Result<Vec<Vec<u8>>> {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        let mut out = Vec::new();
        for r in requests {
            out.extend_from_slice(&(r.len() as u16).to_be_bytes());
            out.extend_from_slice(r);
        }
        tls.write_all(&out).await?;
        tls.flush().await?;
        let mut replies = Vec::new();
        for _ in requests {
            let mut len = [0u8; 2];
            tls.read_exact(&mut len).await?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            tls.read_exact(&mut reply).await?;
            replies.push(reply);
        }
        Ok(replies)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("replies within 10 s")
}

/// The questions asked: each request carries its index as its ID.
fn requests(questions: &[(&str, RecordType)]) -> Vec<Vec<u8>> {
    questions
        .iter()
        .enumerate()
        .map(|(i, (name, qtype))| {
            let mut r = request_bytes(name, *qtype, Some(1232));
            r[..2].copy_from_slice(&(i as u16).to_be_bytes());
            r
        })
        .collect()
}

/// `kdig +tls` against `addr`, the certificate verified against `ca` for dns.test.
fn kdig(addr: SocketAddr, ca: &Path, name: &str) -> (bool, String) {
    let output = Command::new("kdig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .arg(format!("+tls-ca={}", ca.display()))
        .arg(format!("+tls-hostname={SERVER_NAME}"))
        .args(["+time=5", "+retry=0", name, "A"])
        .output()
        .expect("kdig must be installed (apt-get install knot-dnsutils)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The records of kdig's answer section, one per line.
fn kdig_answers(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// clusterdns with the demo cluster and a hosts entry, on `tls://127.0.0.1:TLS` and plain
/// `127.0.0.1:PLAIN`, metrics on an admin port.
fn serving(certs: &Certs) -> (Server, SocketAddr, SocketAddr) {
    let (tls, plain) = (free_port(false), free_port(false));
    let server = Server::with_config(&format!(
        "[admin]\nmetrics = \"127.0.0.1:0\"\n\
         [[server]]\nlisten = [\"tls://127.0.0.1:{tls}\", \"127.0.0.1:{plain}\"]\nzones = [\".\"]\n\
         [server.tls]\ncert = {:?}\nkey = {:?}\n\
         [server.hosts]\nentries = [\"192.0.2.7 web.example\"]\nzones = [\"example\"]\n\
         [server.kubernetes]\nmanifests = {:?}\npods = \"insecure\"\n",
        certs.path("server.pem"),
        certs.path("server.key"),
        demo_dir(),
    ));
    (
        server,
        SocketAddr::from(([127, 0, 0, 1], tls)),
        SocketAddr::from(([127, 0, 0, 1], plain)),
    )
}

#[tokio::test]
async fn queries_over_tls_get_the_tcp_answers_pipelined_on_one_connection() {
    let certs = Certs::new();
    let (server, tls, plain) = serving(&certs);
    let questions = [
        ("kubernetes.default.svc.cluster.local", RecordType::A),
        ("web.example", RecordType::A),
        ("nothing.default.svc.cluster.local", RecordType::A),
        ("kubernetes.default.svc.cluster.local", RecordType::AAAA),
        ("web.example", RecordType::A),
    ];
    let requests = requests(&questions);
    let replies = pipelined(tls, &certs.path("ca.pem"), &requests)
        .await
        .expect("answered over TLS");
    // In order, each the byte-for-byte answer the same block gives over plain TCP.
    for (request, reply) in requests.iter().zip(&replies) {
        assert_eq!(reply[..2], request[..2], "the ID, in order");
        assert_eq!(*reply, raw_tcp(plain, request), "{:?}", questions);
    }
    let answers: Vec<Vec<String>> = replies
        .iter()
        .map(|r| lines(&Message::from_vec(r).unwrap().answers))
        .collect();
    assert_eq!(
        answers[0],
        ["kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"]
    );
    assert_eq!(answers[1], ["web.example. 3600 IN A 192.0.2.7"]);
    assert_eq!(replies[2][3] & 0x0f, 3, "NXDOMAIN");
    assert!(answers[3].is_empty(), "NODATA: {:?}", answers[3]);
    assert_eq!(answers[4], answers[1]);

    // kdig, another TLS implementation (GnuTLS).
    let (ok, text) = kdig(
        tls,
        &certs.path("ca.pem"),
        "kubernetes.default.svc.cluster.local",
    );
    assert!(ok, "{text}");
    assert!(text.contains(";; TLS session"), "{text}");
    assert_eq!(
        kdig_answers(&text),
        ["kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"]
    );

    // Counted as CoreDNS counts DoT: server tls://…, proto tcp.
    let (_, metrics) = http_get(server.admin_for("/metrics"), "/metrics");
    let counted = metrics.lines().find(|l| {
        l.starts_with("coredns_dns_requests_total{")
            && l.contains(&format!("server=\"tls://{tls}\""))
            && l.contains("type=\"A\"")
    });
    let counted = counted.unwrap_or_else(|| panic!("no tls:// requests counted:\n{metrics}"));
    assert!(counted.contains("proto=\"tcp\""), "{counted}");
    assert!(counted.ends_with(" 5"), "5 A queries over TLS: {counted}");
}

#[tokio::test]
async fn an_untrusted_certificate_or_plain_dns_gets_nothing_and_serving_goes_on() {
    let certs = Certs::new();
    let (_server, tls, _) = serving(&certs);
    let requests = requests(&[("web.example", RecordType::A)]);

    // A client that trusts another CA refuses the handshake: no answer.
    let e = pipelined(tls, &certs.path("other-ca.pem"), &requests)
        .await
        .expect_err("the certificate does not verify");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    let (ok, text) = kdig(tls, &certs.path("other-ca.pem"), "web.example");
    assert!(!ok, "{text}");
    assert!(!text.contains("192.0.2.7"), "{text}");

    // Plain DNS over TCP on the TLS port: no DNS reply, the connection closed (at most a TLS
    // alert comes back).
    let mut stream = std::net::TcpStream::connect(tls).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = (requests[0].len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&requests[0]);
    stream.write_all(&out).unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    let closed = stream.read_to_end(&mut got);
    assert!(
        closed.is_ok() || started.elapsed() < Duration::from_secs(10),
        "the connection was left open: {closed:?}"
    );
    assert!(
        got.is_empty() || got[0] == 0x15,
        "not a TLS alert: {got:02x?}"
    );

    // Still serving, with the right CA.
    let replies = pipelined(tls, &certs.path("ca.pem"), &requests)
        .await
        .expect("answered over TLS");
    assert_eq!(
        lines(&Message::from_vec(&replies[0]).unwrap().answers),
        ["web.example. 3600 IN A 192.0.2.7"]
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_sighup() {
    let certs = Certs::new();
    let (server, tls, _) = serving(&certs);
    let requests = requests(&[("web.example", RecordType::A)]);
    pipelined(tls, &certs.path("ca.pem"), &requests)
        .await
        .expect("the first certificate verifies against ca.pem");

    // The same key, now certified by the other CA, under the same file name.
    let args = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "other-ca.pem",
        "-CAkey",
        "other-ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "renewed.pem",
    ];
    run(&certs.0, "openssl", &args);
    std::fs::rename(certs.path("renewed.pem"), certs.path("server.pem")).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("tls certificates read again") {
        assert!(
            Instant::now() < deadline,
            "no reload logged:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replies = pipelined(tls, &certs.path("other-ca.pem"), &requests)
        .await
        .expect("the renewed certificate verifies against other-ca.pem");
    assert_eq!(replies.len(), 1);
    pipelined(tls, &certs.path("ca.pem"), &requests)
        .await
        .expect_err("the old CA no longer verifies it");
}

/// `clusterdns check --config` on `config`: its status and stderr.
fn check(config: &str) -> (bool, String) {
    let dir = TempDir::new();
    let path = dir.write("clusterdns.toml", config);
    let output = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_names_the_file_and_key_of_what_is_wrong() {
    let certs = Certs::new();
    let (cert, key) = (certs.path("server.pem"), certs.path("server.key"));
    let block = |listen: &str, tls: &str| {
        format!("[[server]]\nlisten = [{listen}]\nzones = [\".\"]\nwhoami = true\n{tls}")
    };
    let (ok, text) = check(&block(
        "\"tls://127.0.0.1:853\"",
        &format!("[server.tls]\ncert = \"missing.pem\"\nkey = {key:?}\n"),
    ));
    assert!(!ok);
    assert!(
        text.contains("clusterdns.toml: server[0].tls.cert"),
        "{text}"
    );
    assert!(text.contains("missing.pem"), "{text}");

    // The certificate as key: no private key in it.
    let (ok, text) = check(&block(
        "\"tls://127.0.0.1:853\"",
        &format!("[server.tls]\ncert = {cert:?}\nkey = {cert:?}\n"),
    ));
    assert!(!ok);
    assert!(text.contains("server[0].tls.key"), "{text}");

    let (ok, text) = check(&block("\"tls://127.0.0.1:853\"", ""));
    assert!(!ok);
    assert!(
        text.contains("server[0].listen[0]: a tls:// address needs [server.tls]"),
        "{text}"
    );

    // One address, plain in one block and tls:// in another.
    let tls = format!("[server.tls]\ncert = {cert:?}\nkey = {key:?}\n");
    let config = block("\"127.0.0.1:853\"", "").replace("\".\"", "\"a\"")
        + &block("\"tls://127.0.0.1:853\"", &tls).replace("\".\"", "\"b\"");
    let (ok, text) = check(&config);
    assert!(!ok);
    assert!(text.contains("server[1].listen[0]: 127.0.0.1:853 is served with tls:// by one block and without by another"), "{text}");

    let (ok, text) = check(&block("\"tls://127.0.0.1:853\"", &tls));
    assert!(ok, "{text}");
}

/// The same Corefile `tls://` block run by CoreDNS 1.11 and by clusterdns (`--corefile`):
/// the same answers to the same questions over TLS, from this client and from kdig.
#[tokio::test]
async fn a_tls_server_block_answers_as_coredns_1_11_does() {
    let certs = Certs::new();
    let (cert, key) = (certs.path("server.pem"), certs.path("server.key"));
    let corefile = |port: u16| {
        format!(
            "tls://.:{port} {{\n    bind 127.0.0.1\n    tls {} {}\n    hosts {{\n        192.0.2.7 web.example\n    }}\n    \
             template IN A example.org {{\n        match \"^ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]org[.]$\"\n        \
             answer \"{{{{ .Name }}}} 60 IN A {{{{ .Group.a }}}}.{{{{ .Group.b }}}}.{{{{ .Group.c }}}}.{{{{ .Group.d }}}}\"\n    }}\n}}\n",
            cert.display(),
            key.display()
        )
    };
    let coredns = CoreDns::with_corefile(corefile);
    let dir = TempDir::new();
    let file = dir.write("Corefile", &corefile(free_port(false)));
    let ours = Server::spawn_corefile(dir, &file);
    let ca = certs.path("ca.pem");

    let questions = [
        ("web.example", RecordType::A),
        ("ip-10-1-2-3.example.org", RecordType::A),
        ("nothing.example", RecordType::A),
        ("web.example", RecordType::AAAA),
    ];
    let requests = requests(&questions);
    let theirs = pipelined(coredns.addr, &ca, &requests)
        .await
        .expect("CoreDNS answers over TLS");
    let mine = pipelined(ours.addr, &ca, &requests)
        .await
        .expect("clusterdns answers over TLS");
    for ((question, t), m) in questions.iter().zip(&theirs).zip(&mine) {
        let (t, m) = (Message::from_vec(t).unwrap(), Message::from_vec(m).unwrap());
        assert_eq!(m.metadata.id, t.metadata.id, "{question:?}");
        assert_eq!(
            m.metadata.response_code, t.metadata.response_code,
            "{question:?}"
        );
        assert_eq!(lines(&m.answers), lines(&t.answers), "{question:?}");
    }
    assert_eq!(
        lines(&Message::from_vec(&mine[1]).unwrap().answers),
        ["ip-10-1-2-3.example.org. 60 IN A 10.1.2.3"]
    );

    let (ok, text) = kdig(coredns.addr, &ca, "web.example");
    assert!(ok, "{text}");
    let (ok_mine, mine_text) = kdig(ours.addr, &ca, "web.example");
    assert!(ok_mine, "{mine_text}");
    assert_eq!(kdig_answers(&mine_text), kdig_answers(&text));
    assert_eq!(
        kdig_answers(&mine_text),
        ["web.example. 3600 IN A 192.0.2.7"]
    );
}

/// Client certificates for one key: `client.pem` signed by `ca.pem`, `stranger.pem` by
/// `other-ca.pem` (keys `client.key`, `stranger.key`).
fn make_client_certificates(certs: &Certs) {
    certs.0.write(
        "client.ext",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    for (name, ca) in [("client", "ca"), ("stranger", "other-ca")] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let args = [
            "req",
            "-subj",
            "/CN=client",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
        ];
        run(&certs.0, "openssl", &args);
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        let args = [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            &pem,
        ];
        run(&certs.0, "openssl", &args);
    }
}

#[tokio::test]
async fn client_auth_asks_for_needs_and_verifies_client_certificates_as_go_does() {
    let certs = Certs::new();
    make_client_certificates(&certs);
    let ca = certs.path("ca.pem");
    let (client, stranger) = (certs.path("client.pem"), certs.path("stranger.pem"));
    let requests = requests(&[("web.example", RecordType::A)]);
    // Whether a client with no certificate, with one from ca.pem, with one from
    // other-ca.pem is answered.
    for (mode, answered) in [
        ("nocert", [true, true, true]),
        ("request", [true, true, true]),
        ("require", [false, true, true]),
        ("verify_if_given", [true, true, false]),
        ("require_and_verify", [false, true, false]),
    ] {
        let port = free_port(false);
        let server = Server::with_config(&format!(
            "[[server]]\nlisten = [\"tls://127.0.0.1:{port}\"]\nzones = [\".\"]\n\
             [server.tls]\ncert = {:?}\nkey = {:?}\nca = {ca:?}\nclient_auth = \"{mode}\"\n\
             [server.hosts]\nentries = [\"192.0.2.7 web.example\"]\n",
            certs.path("server.pem"),
            certs.path("server.key"),
        ));
        for (cert, expected) in [None, Some(client.as_path()), Some(stranger.as_path())]
            .into_iter()
            .zip(answered)
        {
            let got = pipelined_with(server.addr, &with_client_cert(&ca, cert), &requests).await;
            match (&got, expected) {
                (Ok(replies), true) => assert_eq!(
                    lines(&Message::from_vec(&replies[0]).unwrap().answers),
                    ["web.example. 3600 IN A 192.0.2.7"]
                ),
                (Err(_), false) => {}
                _ => panic!("{mode} with {cert:?}: {got:?}"),
            }
        }
    }
}

/// Waits until the log holds `line` `times` times.
async fn logged(server: &Server, line: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stderr().matches(line).count() < times {
        assert!(
            Instant::now() < deadline,
            "{line:?} not logged {times} times:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reload_turns_an_address_to_tls_and_back() {
    let certs = Certs::new();
    let port = free_port(false);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = |listen: &str, tls: bool| {
        let mut c = format!(
            "[admin]\nreload_interval = 0\n[[server]]\nlisten = [\"{listen}\"]\nzones = [\".\"]\n\
             [server.hosts]\nentries = [\"192.0.2.7 web.example\"]\n"
        );
        if tls {
            c += &format!(
                "[server.tls]\ncert = {:?}\nkey = {:?}\n",
                certs.path("server.pem"),
                certs.path("server.key")
            );
        }
        c
    };
    let server = Server::with_config(&config(&format!("{addr}"), false));
    let request = requests(&[("web.example", RecordType::A)]);
    let plain = raw_tcp(addr, &request[0]);
    let ca = certs.path("ca.pem");

    server
        .dir
        .write("clusterdns.toml", &config(&format!("tls://{addr}"), true));
    server.signal("HUP");
    logged(&server, "config reloaded", 1).await;
    let replies = pipelined(addr, &ca, &request)
        .await
        .expect("TLS after the reload");
    assert_eq!(replies[0], plain, "the same answer, now over TLS");
    assert!(
        crate::harness::raw_udp(addr, &request[0], Duration::from_millis(300)).is_none(),
        "no UDP on a tls:// address"
    );

    // Another change to the block keeps the TLS listener (its router and certificate swapped).
    server.dir.write(
        "clusterdns.toml",
        &config(&format!("tls://{addr}"), true).replace("192.0.2.7", "192.0.2.8"),
    );
    server.signal("HUP");
    logged(&server, "config reloaded", 2).await;
    let replies = pipelined(addr, &ca, &request).await.expect("TLS still");
    assert_eq!(
        lines(&Message::from_vec(&replies[0]).unwrap().answers),
        ["web.example. 3600 IN A 192.0.2.8"]
    );

    server
        .dir
        .write("clusterdns.toml", &config(&format!("{addr}"), false));
    server.signal("HUP");
    logged(&server, "config reloaded", 3).await;
    let back = raw_tcp(addr, &request[0]);
    assert_eq!(
        lines(&Message::from_vec(&back).unwrap().answers),
        ["web.example. 3600 IN A 192.0.2.7"]
    );
}
