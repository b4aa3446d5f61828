//! Corefiles: every distribution's stock Corefile in `tests/corefiles/` (alone and with the
//! custom files it imports), the NodeLocal DNSCache placeholders, the binary run straight from
//! a Corefile (`--corefile`) reloading when an imported file changes, and the deploy variant
//! that mounts the cluster's `coredns` ConfigMap.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::harness::{BIN, Proto, TempDir, lines, query};
use crate::upstream::FakeUpstream;

fn corefiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corefiles")
}

/// The binary with the node-local flags and environment every run gets.
fn clusterdns(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "--localip",
        "169.254.20.10",
        "--upstreamsvc",
        "kube-dns-upstream",
    ])
    .env("KUBE_DNS_UPSTREAM_SERVICE_HOST", "10.96.0.10")
    .args(args);
    c
}

fn run(path: &Path, args: &[&str]) -> Output {
    clusterdns(args).arg(path).output().unwrap()
}

/// `(file relative to dir:line, plugin)` of every `not translated` line.
fn refused(stderr: &str, dir: &Path) -> BTreeSet<(String, String)> {
    let prefix = format!("clusterdns: {}/", dir.display());
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.split_once(": not translated: "))
        .map(|(loc, what)| {
            let plugin = what.split([':', ' ']).next().unwrap();
            (loc.to_owned(), plugin.to_owned())
        })
        .collect()
}

/// The unimplemented plugins of each stock Corefile, with their lines.
const EXPECTED: &[(&str, &[(usize, &str)])] = &[
    ("aks.Corefile", &[]),
    ("eks.Corefile", &[]),
    ("gardener.Corefile", &[]),
    ("k0s.Corefile", &[]),
    ("k3s.Corefile", &[]),
    ("kops-dns-none.Corefile", &[]),
    ("kops.Corefile", &[]),
    ("kubeadm.Corefile", &[]),
    ("kubespray-nodelocaldns.Corefile", &[]),
    ("kubespray.Corefile", &[]),
    ("microk8s.Corefile", &[]),
    ("minikube.Corefile", &[]),
    ("nodelocaldns.Corefile", &[]),
    ("openshift-forwarders.Corefile", &[]),
    ("openshift.Corefile", &[]),
    ("rke2.Corefile", &[]),
    ("talos.Corefile", &[]),
    ("typhoon.Corefile", &[]),
    ("vcluster.Corefile", &[]),
];

/// Converts `path`, then checks the outcome: exit 0 and a TOML `check` accepts when nothing is
/// refused, else exit 1 naming exactly `expected`; `--corefile … check` agrees either way.
fn converts_as_expected(path: &Path, dir: &Path, expected: &BTreeSet<(String, String)>) {
    let name = path.display();
    let out = run(path, &["convert-corefile"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(&refused(&stderr, dir), expected, "{name}: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(i32::from(!expected.is_empty())),
        "{name}: {stderr}"
    );
    let checked = run(path, &["check", "--corefile"]);
    let check_err = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert_eq!(&refused(&check_err, dir), expected, "{name}: {check_err}");
    if expected.is_empty() {
        assert!(checked.status.success(), "{name}: {check_err}");
        let tmp = TempDir::new();
        let toml = tmp.write("clusterdns.toml", &String::from_utf8(out.stdout).unwrap());
        let toml_check = Command::new(BIN)
            .args(["check", "--config"])
            .arg(&toml)
            .output()
            .unwrap();
        assert!(
            toml_check.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&toml_check.stderr)
        );
    } else {
        assert_eq!(checked.status.code(), Some(1), "{name}: {check_err}");
    }
}

fn expected_of(file: &str, list: &[(usize, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(line, plugin)| (format!("{file}:{line}"), (*plugin).to_owned()))
        .collect()
}

#[test]
fn every_stock_corefile_converts_or_names_exactly_what_is_not_implemented() {
    let dir = corefiles();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".Corefile") && n != "gardener-nodelocaldns.Corefile")
        .collect();
    let listed: BTreeSet<String> = EXPECTED.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(on_disk, listed, "every Corefile has an expectation");
    for (file, list) in EXPECTED {
        converts_as_expected(&dir.join(file), &dir, &expected_of(file, list));
    }
}

/// A Corefile copied beside a `custom/` directory holding `custom` (the coredns-custom
/// ConfigMap as mounted), its absolute `/etc/coredns/custom` imports pointed there.
fn with_custom(corefile: &str, custom: &str) -> TempDir {
    let dir = TempDir::new();
    let text = std::fs::read_to_string(corefiles().join(corefile)).unwrap();
    let custom_dir = dir.0.join("custom");
    dir.write(
        "Corefile",
        &text.replace("/etc/coredns/custom", &custom_dir.display().to_string()),
    );
    for entry in std::fs::read_dir(corefiles().join(custom)).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        dir.write(
            &format!("custom/{name}"),
            &std::fs::read_to_string(entry.path()).unwrap(),
        );
    }
    dir
}

#[test]
fn stock_corefiles_with_their_custom_imports() {
    type Refusals = &'static [(&'static str, usize, &'static str)];
    let cases: &[(&str, &str, Refusals)] = &[
        ("aks.Corefile", "aks-custom", &[]),
        ("k3s.Corefile", "k3s-custom", &[]),
        ("gardener.Corefile", "gardener-custom", &[]),
    ];
    for (corefile, custom, refusals) in cases {
        let dir = with_custom(corefile, custom);
        let expected = refusals
            .iter()
            .map(|(f, l, p)| (format!("{f}:{l}"), (*p).to_owned()))
            .collect();
        converts_as_expected(&dir.0.join("Corefile"), &dir.0, &expected);
    }
    // The imported server blocks are there: k3s's stub domain forwards to its resolvers.
    let dir = with_custom("k3s.Corefile", "k3s-custom");
    let out = run(&dir.0.join("Corefile"), &["convert-corefile"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    let servers = toml["server"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        servers[0]["log"].as_bool(),
        Some(true),
        "log.override applies"
    );
    assert_eq!(
        servers[1]["zones"].as_array().unwrap()[0].as_str(),
        Some("corp.example.com")
    );
}

#[test]
fn node_local_corefiles_get_node_caches_substitutions() {
    let dir = corefiles();
    let file = dir.join("nodelocaldns.Corefile");
    let out = run(&file, &["--dns-server", "10.96.0.10", "convert-corefile"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    let first = &toml["server"][0];
    assert_eq!(
        first["zones"].as_array().unwrap()[0].as_str(),
        Some("cluster.local")
    );
    let listen: Vec<&str> = first["listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listen, ["169.254.20.10:53", "10.96.0.10:53"]);
    assert_eq!(
        first["forward"]["to"].as_array().unwrap()[0].as_str(),
        Some("10.96.0.10")
    );
    assert_eq!(toml["admin"]["health"].as_str(), Some("169.254.20.10:8080"));
    assert_eq!(
        toml["server"][3]["forward"]["to"].as_array().unwrap()[0].as_str(),
        Some("/etc/resolv.conf")
    );
    // Without the Service's address, the error names the line and where the value comes from.
    let out = Command::new(BIN)
        .args(["--localip", "169.254.20.10", "convert-corefile"])
        .arg(&file)
        .env_remove("KUBE_DNS_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "clusterdns: {}:12: __PILLAR__CLUSTER__DNS__ needs $KUBE_DNS_SERVICE_HOST",
            file.display()
        )),
        "{stderr}"
    );
    // Gardener's node-local Corefile imports a file its sidecar writes: missing, it is an
    // error (not a glob); present, the Corefile converts.
    let gardener = dir.join("gardener-nodelocaldns.Corefile");
    let out = run(&gardener, &["convert-corefile"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "clusterdns: {}:53: import generated-config/custom-server-block.server: no such file or snippet",
            gardener.display()
        )
    );
    let tmp = TempDir::new();
    tmp.write("Corefile", &std::fs::read_to_string(&gardener).unwrap());
    tmp.write(
        "generated-config/custom-server-block.server",
        "# written by the sidecar\n",
    );
    converts_as_expected(&tmp.0.join("Corefile"), &tmp.0, &BTreeSet::new());
}

/// The binary run with `--corefile`, killed on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
    stderr: PathBuf,
}

impl Running {
    fn start(corefile: &Path, dir: &TempDir) -> Running {
        let stderr = dir.0.join("stderr.log");
        let mut child = clusterdns(&["--corefile"])
            .arg(corefile)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let addr = stdout.lines().map_while(Result::ok).find_map(|l| {
            l.strip_prefix("clusterdns: listening on ")
                .and_then(|r| r.split_whitespace().next())
                .map(|a| a.parse().unwrap())
        });
        let Some(addr) = addr else {
            panic!(
                "no listening address: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        Running {
            child,
            addr,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn web(addr: SocketAddr) -> Vec<String> {
    lines(
        &query(addr, "web.example.", RecordType::A, Proto::Udp)
            .await
            .answers,
    )
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_corefile_serves_and_an_edit_of_an_imported_file_reloads_it() {
    let (a, b) = (FakeUpstream::start(), FakeUpstream::start());
    a.add_a("web.example.", 60, "192.0.2.1");
    b.add_a("web.example.", 60, "192.0.2.2");
    let dir = TempDir::new();
    dir.write("upstream.conf", &format!("forward . {}\n", a.addr));
    let corefile = dir.write(
        "Corefile",
        "# an import inside the block\n.:0 {\n    bind 127.0.0.1\n    import upstream.conf\n    reload 2s\n}\n",
    );
    let s = Running::start(&corefile, &dir);
    assert_eq!(web(s.addr).await, ["web.example. 60 IN A 192.0.2.1"]);
    dir.write("upstream.conf", &format!("forward . {}\n", b.addr));
    eventually("the edited import applies", async || {
        web(s.addr).await == ["web.example. 60 IN A 192.0.2.2"]
    })
    .await;
    // An edit clusterdns cannot take is refused with its line; the running config serves on.
    dir.write(
        "upstream.conf",
        &format!("forward . {}\nacl {{\n    permit\n}}\n", a.addr),
    );
    let refused = format!(
        "{}:3: not translated: acl permit",
        dir.0.join("upstream.conf").display()
    );
    eventually("the reload is refused", async || {
        s.stderr().contains(&refused)
    })
    .await;
    assert_eq!(web(s.addr).await, ["web.example. 60 IN A 192.0.2.2"]);
}

#[tokio::test]
async fn a_key_without_bind_listens_on_ipv4_and_ipv6_on_one_port() {
    let up = FakeUpstream::start();
    up.add_a("web.example.", 60, "192.0.2.1");
    // A port free on both families, for UDP and TCP.
    let port = crate::harness::free_port(true);
    let dir = TempDir::new();
    let corefile = dir.write(
        "Corefile",
        &format!(".:{port} {{\n    forward . {}\n}}\n", up.addr),
    );
    let s = Running::start(&corefile, &dir);
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let answers = web(addr.parse().unwrap()).await;
        assert_eq!(
            answers,
            ["web.example. 60 IN A 192.0.2.1"],
            "{addr}: {}",
            s.stderr()
        );
    }
}

#[test]
fn a_broken_import_stops_the_start_naming_the_imported_file() {
    let dir = TempDir::new();
    dir.write("broken.conf", "log\ncache {\n");
    let corefile = dir.write("Corefile", ".:0 {\n    import broken.conf\n}\n");
    let out = clusterdns(&["--corefile"]).arg(&corefile).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "clusterdns: {}:2: `{{` is never closed",
            dir.0.join("broken.conf").display()
        )
    );
}

/// Applies a JSON patch's `replace` operations.
fn patch(doc: &mut Value, ops: &Value) {
    for op in ops.as_array().unwrap() {
        assert_eq!(op["op"], "replace");
        let path = op["path"].as_str().unwrap();
        *doc.pointer_mut(path).unwrap_or_else(|| panic!("no {path}")) = op["value"].clone();
    }
}

#[test]
fn the_corefile_deploy_variant_mounts_the_coredns_configmap() {
    use k8s_openapi::api::apps::v1::Deployment;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let yaml = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let k: Value = serde_saphyr::from_str(&yaml("kubernetes-corefile/kustomization.yaml")).unwrap();
    assert_eq!(k["resources"], serde_json::json!(["../kubernetes"]));
    let mut deployment: Value =
        serde_saphyr::from_str(&yaml("kubernetes/deployment.yaml")).unwrap();
    let patches = k["patches"].as_array().unwrap();
    let ops = patches
        .iter()
        .find(|p| p["target"]["kind"] == "Deployment")
        .unwrap();
    let ops: Value = serde_saphyr::from_str(ops["patch"].as_str().unwrap()).unwrap();
    patch(&mut deployment, &ops);
    let d: Deployment = serde_json::from_value(deployment).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert_eq!(args, ["--corefile", "/etc/coredns/Corefile"]);
    let mounts = container.volume_mounts.clone().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == "config" && m.mount_path == "/etc/coredns")
    );
    let volumes = pod.volumes.unwrap();
    let config = volumes.iter().find(|v| v.name == "config").unwrap();
    assert_eq!(config.config_map.as_ref().unwrap().name, "coredns");
    let custom = volumes.iter().find(|v| v.name == "custom").unwrap();
    assert_eq!(custom.config_map.as_ref().unwrap().optional, Some(true));
    // kubeadm's Corefile runs in it, with the probes on its health and ready ports.
    let out = run(&corefiles().join("kubeadm.Corefile"), &["convert-corefile"]);
    let toml: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    let port = |probe: &Option<k8s_openapi::api::core::v1::Probe>| match &probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
    {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
        other => panic!("{other:?}"),
    };
    let admin_port = |key: &str| {
        toml["admin"][key]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(port(&container.liveness_probe), admin_port("health"));
    assert_eq!(port(&container.readiness_probe), admin_port("ready"));
}
