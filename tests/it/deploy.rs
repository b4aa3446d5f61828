//! The shipped files: Kubernetes manifests parsed strictly into k8s-openapi types, the
//! ConfigMap's TOML validated by the binary, cross-references between them, the Dockerfile,
//! and the Corefile converter against the shipped config.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::harness::{BIN, TempDir};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// Every YAML document of a file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// Deserializes into `T` and back: any field `T` does not know is lost on the way, so a
/// difference means an unknown (misspelt, misplaced) field.
fn strict<T: DeserializeOwned + serde::Serialize>(doc: &Value, file: &Path) -> T {
    let typed: T =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let back = serde_json::to_value(&typed).unwrap();
    let mut diffs = Vec::new();
    compare(doc, &back, String::new(), &mut diffs);
    assert!(
        diffs.is_empty(),
        "{}: fields the API type does not know: {diffs:?}",
        file.display()
    );
    typed
}

fn compare(original: &Value, round_trip: &Value, path: String, diffs: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => compare(v, w, format!("{path}.{k}"), diffs),
                    None => diffs.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                compare(v, w, format!("{path}[{i}]"), diffs);
            }
        }
        // Int-or-string fields come back as either; compare their text.
        (a, b) if a.to_string().trim_matches('"') == b.to_string().trim_matches('"') => {}
        (a, b) => diffs.push(format!("{path}: {a} became {b}")),
    }
}

struct Shipped {
    config_map: ConfigMap,
    deployment: Deployment,
    service: Service,
    role: ClusterRole,
    binding: ClusterRoleBinding,
    account: ServiceAccount,
    pdb: PodDisruptionBudget,
}

fn shipped() -> Shipped {
    let one = |name: &str| {
        let file = deploy(&format!("kubernetes/{name}"));
        let docs = documents(&file);
        assert_eq!(docs.len(), 1, "{name}");
        (docs[0].clone(), file)
    };
    let (d, f) = one("configmap.yaml");
    let config_map = strict(&d, &f);
    let (d, f) = one("deployment.yaml");
    let deployment = strict(&d, &f);
    let (d, f) = one("service.yaml");
    let service = strict(&d, &f);
    let (d, f) = one("clusterrole.yaml");
    let role = strict(&d, &f);
    let (d, f) = one("clusterrolebinding.yaml");
    let binding = strict(&d, &f);
    let (d, f) = one("serviceaccount.yaml");
    let account = strict(&d, &f);
    let (d, f) = one("pdb.yaml");
    let pdb = strict(&d, &f);
    Shipped {
        config_map,
        deployment,
        service,
        role,
        binding,
        account,
        pdb,
    }
}

/// Runs `clusterdns check` on a TOML text; returns its output on failure.
fn check(toml: &str) -> Result<(), String> {
    let dir = TempDir::new();
    let file = dir.write("clusterdns.toml", toml);
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn config_toml(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("clusterdns.toml"))
        .expect("clusterdns.toml key")
        .clone()
}

#[test]
fn every_manifest_parses_strictly_and_the_kustomization_lists_them() {
    let s = shipped();
    assert_eq!(s.account.metadata.namespace.as_deref(), Some("kube-system"));
    let subject = &s.binding.subjects.as_ref().unwrap()[0];
    assert_eq!(subject.name, s.account.metadata.name.clone().unwrap());
    assert_eq!(
        s.binding.role_ref.name,
        s.role.metadata.name.clone().unwrap()
    );
    let template = s
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(template.service_account_name, s.account.metadata.name);
    let pdb_selector = s.pdb.spec.unwrap().selector.unwrap().match_labels.unwrap();
    let pod_labels = s
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert!(
        pdb_selector
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v))
    );

    // Variants and the node-local DaemonSet parse too.
    let variant = deploy("kubernetes/clusterrole-pods-verified.yaml");
    for doc in documents(&variant) {
        match doc["kind"].as_str() {
            Some("ClusterRole") => drop(strict::<ClusterRole>(&doc, &variant)),
            Some("ClusterRoleBinding") => drop(strict::<ClusterRoleBinding>(&doc, &variant)),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ds = deploy("node-local/daemonset.yaml");
    let daemonset: DaemonSet = strict(&documents(&ds)[0], &ds);
    assert!(daemonset.spec.unwrap().template.spec.unwrap().host_network == Some(true));
    let cm = deploy("node-local/configmap.yaml");
    let node_local: ConfigMap = strict(&documents(&cm)[0], &cm);
    check(&config_toml(&node_local)).expect("node-local config is valid");

    for dir in ["kubernetes", "node-local"] {
        let k = documents(&deploy(&format!("{dir}/kustomization.yaml")))[0].clone();
        let listed: BTreeSet<String> = k["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        let on_disk: BTreeSet<String> = std::fs::read_dir(deploy(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| {
                n.ends_with(".yaml") && n != "kustomization.yaml" && !n.contains("-verified")
            })
            .collect();
        assert_eq!(listed, on_disk, "{dir}/kustomization.yaml");
    }
}

#[test]
fn the_configmap_passes_check_and_the_probes_use_its_admin_ports() {
    let s = shipped();
    let toml = config_toml(&s.config_map);
    check(&toml).expect("shipped config is valid");
    let value: toml::Value = toml::from_str(&toml).unwrap();
    let port = |key: &str| -> i32 {
        value["admin"][key]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let pod = s
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .clone()
        .unwrap();
    let container = &pod.containers[0];
    let probe_port = |p: &Option<k8s_openapi::api::core::v1::Probe>| match &p
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
    {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => *n,
        other => panic!("named probe port {other:?}"),
    };
    assert_eq!(probe_port(&container.liveness_probe), port("health"));
    assert_eq!(probe_port(&container.readiness_probe), port("ready"));
    assert_eq!(
        container
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/health")
    );
    assert_eq!(
        container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/ready")
    );
    let ports: BTreeSet<(i32, String)> = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.container_port, p.protocol.clone().unwrap_or("TCP".into())))
        .collect();
    for needed in [(53, "UDP"), (53, "TCP"), (port("metrics"), "TCP")] {
        assert!(
            ports.contains(&(needed.0, needed.1.to_owned())),
            "{needed:?} not exposed"
        );
    }
    // The config is mounted where the args point.
    let args = container.args.clone().unwrap();
    let mount = &container.volume_mounts.as_ref().unwrap()[0];
    assert_eq!(
        args,
        ["--config", &format!("{}/clusterdns.toml", mount.mount_path)]
    );
    let volume = &pod.volumes.as_ref().unwrap()[0];
    assert_eq!(
        volume.config_map.as_ref().unwrap().name,
        s.config_map.metadata.name.clone().unwrap()
    );
    // Hardening the issue asks for.
    let sc = container.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(
        caps.add.as_deref(),
        Some(&["NET_BIND_SERVICE".to_owned()][..])
    );
    let pod_sc = pod.security_context.as_ref().unwrap();
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert_eq!(
        pod_sc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    assert_eq!(pod.dns_policy.as_deref(), Some("Default"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    assert_eq!(s.deployment.spec.as_ref().unwrap().replicas, Some(2));
    let resources = container.resources.as_ref().unwrap();
    assert!(resources.requests.as_ref().unwrap().contains_key("memory"));
    assert!(resources.limits.as_ref().unwrap().contains_key("memory"));
}

#[test]
fn the_cluster_role_grants_exactly_list_and_watch_on_what_the_code_watches() {
    let s = shipped();
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in s.role.rules.unwrap() {
        for group in rule.api_groups.clone().unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                granted
                    .entry((group.clone(), resource))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    // src/cluster/kube.rs: Namespaces, Services, EndpointSlices (Pods only when verified).
    let expected: BTreeMap<(String, String), BTreeSet<String>> = [
        ("", "namespaces"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
    ]
    .into_iter()
    .map(|(g, r)| {
        (
            (g.to_owned(), r.to_owned()),
            ["list".to_owned(), "watch".to_owned()].into(),
        )
    })
    .collect();
    assert_eq!(granted, expected);
}

#[test]
fn the_kube_dns_service_selects_the_deployment_pods() {
    let s = shipped();
    assert_eq!(s.service.metadata.name.as_deref(), Some("kube-dns"));
    assert_eq!(s.service.metadata.namespace.as_deref(), Some("kube-system"));
    assert_eq!(
        s.service
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get("k8s-app")
            .map(String::as_str),
        Some("kube-dns")
    );
    let spec = s.service.spec.unwrap();
    let selector = spec.selector.unwrap();
    let deployment = s.deployment.spec.unwrap();
    let labels = deployment.template.metadata.unwrap().labels.unwrap();
    assert!(!selector.is_empty());
    for (k, v) in &selector {
        assert_eq!(labels.get(k), Some(v), "selector {k}={v}");
    }
    let match_labels = deployment.selector.match_labels.unwrap();
    assert!(match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let ports: BTreeSet<(i32, String)> = spec
        .ports
        .unwrap()
        .iter()
        .map(|p| (p.port, p.protocol.clone().unwrap()))
        .collect();
    assert_eq!(
        ports,
        [(53, "UDP".into()), (53, "TCP".into()), (9153, "TCP".into())].into()
    );
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
}

#[test]
fn the_dockerfile_final_stage_runs_as_non_root() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let stages: Vec<&str> = text.split("\nFROM ").collect();
    assert!(stages.len() >= 2, "multi-stage");
    let last = stages.last().unwrap();
    let user = last
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap().trim();
    assert!(uid != "root" && uid != "0", "USER {user}");
    assert!(
        uid.parse::<u32>().is_ok_and(|n| n > 0),
        "numeric non-root UID: {user}"
    );
    for port in ["53/udp", "53/tcp", "8080", "8181", "9153"] {
        assert!(last.contains(port), "EXPOSE {port}");
    }
    assert!(last.contains("cargo build --release") || text.contains("cargo build --release"));
    let ignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore"))
            .unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}

fn convert(corefile: &str) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("convert-corefile")
        .arg(deploy(&format!("coredns/{corefile}")))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_converted_kubeadm_corefile_is_the_shipped_config() {
    let (ok, toml, stderr) = convert("Corefile.kubeadm");
    assert!(ok, "incomplete translation: {stderr}");
    check(&toml).expect("converted config is valid");
    let shipped: toml::Value = toml::from_str(&config_toml(&shipped().config_map)).unwrap();
    let converted: toml::Value = toml::from_str(&toml).unwrap();
    assert_eq!(converted, shipped, "converted:\n{toml}");
}

#[test]
fn a_stub_domain_becomes_its_own_server_block() {
    let (ok, toml, stderr) = convert("Corefile.stub-domain");
    assert!(ok, "{stderr}");
    check(&toml).expect("valid");
    let v: toml::Value = toml::from_str(&toml).unwrap();
    let servers = v["server"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        servers[1]["zones"].as_array().unwrap()[0].as_str(),
        Some("corp.example")
    );
    assert_eq!(
        servers[1]["forward"]["to"],
        toml::Value::Array(vec!["10.150.0.1".into(), "10.150.0.2:5353".into()])
    );
    assert_eq!(servers[1]["forward"]["policy"].as_str(), Some("sequential"));
}

#[test]
fn untranslatable_directives_are_listed_with_their_line_and_fail_the_exit_code() {
    let dir = TempDir::new();
    let corefile = dir.write(
        "Corefile",
        ".:53 {\n    errors\n    rewrite edns0 local set 0xffee abcd\n    kubernetes cluster.local {\n        namespace_labels team=a\n    }\n    forward . 8.8.8.8\n}\n",
    );
    let out = Command::new(BIN)
        .arg("convert-corefile")
        .arg(&corefile)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("Corefile:3: not translated: rewrite"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Corefile:5: not translated: kubernetes namespace_labels"),
        "{stderr}"
    );
    check(&String::from_utf8(out.stdout).unwrap()).expect("what was translated is valid");
    let broken = dir.write("Broken", ".:53 {\n    cache 30\n");
    let out = Command::new(BIN)
        .arg("convert-corefile")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Broken:1: `{` is never closed"));
}

#[test]
fn the_strict_check_catches_a_misspelt_field() {
    let doc: Value = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"selectr": {"a": "b"}, "ports": [{"port": 53}]}
    });
    let caught = std::panic::catch_unwind(|| {
        strict::<Service>(&doc, Path::new("inline.yaml"));
    });
    assert!(caught.is_err(), "an unknown field must fail");
}
