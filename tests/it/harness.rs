//! Starts the real `clusterdns` binary on 127.0.0.1:0 and talks to it with real clients.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

pub const BIN: &str = env!("CARGO_BIN_EXE_clusterdns");

/// The repository's demo cluster.
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-cluster")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clusterdns-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Admin listeners: address and the paths it serves (from the startup lines).
    pub admin: Vec<(SocketAddr, String)>,
    pub dir: TempDir,
    manifests: Option<TempDir>,
}

impl Server {
    /// Starts the binary with `kubernetes` as the body of `[server.kubernetes]`.
    pub fn start(kubernetes: &str) -> Server {
        let dir = TempDir::new();
        let config = format!(
            "[[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n[server.kubernetes]\n{kubernetes}\n"
        );
        let path = dir.write("clusterdns.toml", &config);
        Server::spawn(dir, &path)
    }

    /// Starts the binary with a whole config file.
    pub fn with_config(config: &str) -> Server {
        let dir = TempDir::new();
        let path = dir.write("clusterdns.toml", config);
        Server::spawn(dir, &path)
    }

    /// The demo cluster with the embedded default's options.
    pub fn demo() -> Server {
        Server::start(&format!(
            "manifests = {:?}\npods = \"insecure\"\nfallthrough = [\"in-addr.arpa\", \"ip6.arpa\"]\n",
            demo_dir()
        ))
    }

    /// Manifests written to a fresh directory, plus extra `[server.kubernetes]` lines.
    pub fn with_manifests(files: &[(&str, &str)], options: &str) -> Server {
        let manifests = TempDir::new();
        for (name, text) in files {
            manifests.write(name, text);
        }
        let mut server = Server::start(&format!("manifests = {:?}\n{options}", manifests.0));
        server.manifests = Some(manifests);
        server
    }

    /// Where `with_manifests` put the files (to change them while the server runs).
    pub fn manifests_dir(&self) -> &Path {
        &self.manifests.as_ref().expect("started with_manifests").0
    }

    pub fn spawn(dir: TempDir, config: &Path) -> Server {
        Server::spawn_in(dir, config, &[])
    }

    /// Starts the binary under a wrapper command (`ip netns exec NAME`).
    pub fn spawn_in(dir: TempDir, config: &Path, wrapper: &[&str]) -> Server {
        Server::launch(dir, "--config", config, wrapper)
    }

    /// Starts the binary on a Corefile (`--corefile`).
    pub fn spawn_corefile(dir: TempDir, corefile: &Path) -> Server {
        Server::launch(dir, "--corefile", corefile, &[])
    }

    fn launch(dir: TempDir, flag: &str, config: &Path, wrapper: &[&str]) -> Server {
        let stderr = std::fs::File::create(dir.0.join("stderr.log")).expect("stderr log");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .arg(flag)
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start clusterdns");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut admin = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.0.join("stderr.log")).unwrap_or_default();
                panic!("clusterdns did not report a listening address within 30 s; stderr:\n{log}");
            };
            if let Some(rest) = line.strip_prefix("clusterdns: admin on http://")
                && let Some((a, routes)) = rest.split_once(' ')
            {
                admin.push((a.parse().expect("admin address"), routes.to_owned()));
            }
            if let Some(addr) = line
                .strip_prefix("clusterdns: listening on ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                break addr.parse::<SocketAddr>().expect("bound address");
            }
        };
        Server {
            child,
            addr,
            admin,
            dir,
            manifests: None,
        }
    }

    /// The admin address serving `path` (`/health`, `/ready`, `/metrics`).
    pub fn admin_for(&self, path: &str) -> SocketAddr {
        self.admin
            .iter()
            .find(|(_, routes)| {
                routes
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '/')
                    .any(|r| r == path)
            })
            .unwrap_or_else(|| panic!("no admin listener for {path}: {:?}", self.admin))
            .0
    }

    /// Sends a signal (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// One query through hickory's client over UDP or TCP, with EDNS.
pub async fn query(addr: SocketAddr, name: &str, qtype: RecordType, proto: Proto) -> Message {
    query_opts(addr, name, qtype, proto, true).await
}

pub async fn query_opts(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    proto: Proto,
    edns: bool,
) -> Message {
    let name = Name::from_str(name).expect("valid name");
    let provider = TokioRuntimeProvider::new();
    let timeout = Duration::from_secs(5);
    let response = match proto {
        Proto::Udp => {
            let stream = UdpClientStream::builder(addr, provider)
                .with_timeout(Some(timeout))
                .build();
            let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
            tokio::spawn(bg);
            if !edns {
                client.disable_edns();
            }
            client.query(name, DNSClass::IN, qtype).await
        }
        Proto::Tcp => {
            let (stream, sender) = TcpClientStream::new(addr, None, Some(timeout), provider);
            let (mut client, bg) =
                Client::<TokioRuntimeProvider>::new(stream.await.expect("tcp connect"), sender);
            tokio::spawn(bg);
            if !edns {
                client.disable_edns();
            }
            client.query(name, DNSClass::IN, qtype).await
        }
    };
    response.expect("a response").into_message()
}

/// Records as sorted zone lines: `name ttl IN TYPE rdata`.
pub fn lines(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name,
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
        })
        .collect();
    out.sort();
    out
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("admin connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("admin response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP response {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends raw bytes over UDP and returns the reply, or `None` if nothing came within `wait`.
pub fn raw_udp(addr: SocketAddr, request: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(request, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Sends raw bytes over TCP (with the length prefix) and returns one reply.
pub fn raw_tcp(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = (request.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(request);
    stream.write_all(&out).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).unwrap();
    reply
}

/// Builds a query's bytes by hand (so the name's case is exactly as given): ID 0x1234, RD,
/// one question of class IN, and an OPT record when `edns_payload` is given.
pub fn request_bytes(name: &str, qtype: RecordType, edns_payload: Option<u16>) -> Vec<u8> {
    let arcount = u16::from(edns_payload.is_some());
    let mut out = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
    out.extend_from_slice(&arcount.to_be_bytes());
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&u16::from(qtype).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if let Some(payload) = edns_payload {
        out.push(0); // root owner
        out.extend_from_slice(&41u16.to_be_bytes()); // OPT
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]); // ext-rcode, version, flags
        out.extend_from_slice(&[0, 0]); // no options
    }
    out
}

/// Runs `dig` against the server; fails loudly when dig is not installed.
pub fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+time=5", "+tries=1"])
        .args(args)
        .output()
        .expect("dig must be installed (apt-get install bind9-dnsutils); .ci/run installs it");
    assert!(
        output.status.success(),
        "dig {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A port free for UDP and TCP on 127.0.0.1 (and `[::]` when `dual_stack`), picked at random
/// below the ephemeral range: a port the kernel picked (`:0`) and released can be taken at once
/// by any client socket's local port, and busy tests make many.
pub fn free_port(dual_stack: bool) -> u16 {
    for _ in 0..1000 {
        let port: u16 = rand::random_range(10_000..32_000);
        let host = if dual_stack { "::" } else { "127.0.0.1" };
        let udp = std::net::UdpSocket::bind((host, port));
        let tcp = std::net::TcpListener::bind((host, port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no free port in 1000 tries");
}
