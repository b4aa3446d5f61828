use std::path::Path;

use toml::Value;

use super::*;
use crate::config::Config;
use crate::corefile::grammar::{Vars, parse_text};

const DUAL: Options = Options { ipv6: true };

fn conv_with(text: &str, options: Options) -> Conversion {
    let blocks = parse_text(text, Path::new("Corefile"), &Vars::default()).unwrap();
    convert(&blocks, Path::new("Corefile"), options)
}

fn conv(text: &str) -> Conversion {
    conv_with(text, DUAL)
}

/// The converted TOML as a value, after checking that it is valid.
fn valid(c: &Conversion) -> Value {
    if let Err(e) = Config::parse(&c.toml, Path::new("/etc/coredns/Corefile")) {
        panic!("{e}\n{}", c.toml);
    }
    c.toml.parse::<toml::Table>().map(Value::Table).unwrap()
}

fn complete(text: &str) -> Value {
    let c = conv(text);
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    valid(&c)
}

fn issues(list: &[Issue]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn kubeadms_corefile_converts_completely() {
    let text = include_str!("../../../tests/corefiles/kubeadm.Corefile");
    let c = conv(text);
    assert!(c.untranslated.is_empty() && c.notes.is_empty(), "{c:?}");
    let v = valid(&c);
    let admin = &v["admin"];
    assert_eq!(admin["health"].as_str(), Some("0.0.0.0:8080"));
    assert_eq!(admin["ready"].as_str(), Some("0.0.0.0:8181"));
    assert_eq!(admin["metrics"].as_str(), Some("0.0.0.0:9153"));
    assert_eq!(admin["lameduck"].as_str(), Some("5s"));
    assert_eq!(admin["reload_interval"].as_str(), Some("30s"));
    let s = &v["server"][0];
    assert_eq!(strings(&s["listen"]), ["0.0.0.0:53", "[::]:53"]);
    assert_eq!(strings(&s["zones"]), ["."]);
    assert_eq!(s["loadbalance"].as_bool(), Some(true));
    let k = &s["kubernetes"];
    assert_eq!(
        strings(&k["zones"]),
        ["cluster.local", "in-addr.arpa", "ip6.arpa"]
    );
    assert_eq!(strings(&k["fallthrough"]), ["in-addr.arpa", "ip6.arpa"]);
    assert_eq!(
        (k["pods"].as_str(), k["ttl"].as_integer()),
        (Some("insecure"), Some(30))
    );
    assert_eq!(strings(&s["forward"]["to"]), ["/etc/resolv.conf"]);
    assert_eq!(s["forward"]["max_concurrent"].as_integer(), Some(1000));
    let cache = s["cache"].as_table().unwrap();
    assert_eq!(cache.len(), 2, "{cache:?}");
    assert_eq!(cache["max_ttl"].as_integer(), Some(30));
    assert_eq!(cache["negative_max_ttl"].as_integer(), Some(30));
}

#[test]
fn a_cache_ttl_and_a_denial_ttl_make_one_key_each() {
    let v = complete(".:53 {\n  forward . 1.1.1.1\n  cache 900 {\n    denial 9984 30\n  }\n}\n");
    let cache = &v["server"][0]["cache"];
    assert_eq!(cache["max_ttl"].as_integer(), Some(900));
    assert_eq!(cache["negative_max_ttl"].as_integer(), Some(30));
    assert_eq!(cache["capacity"].as_integer(), Some(19_984));
    let v = complete(
        ".:53 {\n  forward . 1.1.1.1\n  cache {\n    success 9984 30 10\n    denial 9984 5 10\n    prefetch 10\n    serve_stale 1h verify\n    servfail 2s\n  }\n}\n",
    );
    let cache = &v["server"][0]["cache"];
    assert_eq!(cache["capacity"].as_integer(), Some(19_968));
    assert_eq!(cache["max_ttl"].as_integer(), Some(30));
    assert_eq!(cache["negative_max_ttl"].as_integer(), Some(5));
    assert_eq!(cache["min_ttl"].as_integer(), Some(10));
    assert_eq!(cache["prefetch"].as_integer(), Some(10));
    assert_eq!(cache["serve_stale"].as_str(), Some("3600s"));
    assert_eq!(cache["servfail_ttl"].as_integer(), Some(2));
}

#[test]
fn cache_zones_keepttl_minttls_and_disable_translate() {
    let c = conv(
        ".:53 {\n  forward . 1.1.1.1\n  cache 30 example.org {\n  }\n}\nb:53 {\n  forward . 1.1.1.1\n  cache {\n    keepttl\n    success 1 10 1\n    denial 1 10 2\n    serve_stale\n    prefetch 5 5m 20%\n    disable success\n    disable denial x.b\n    disable denial a.b c.b\n  }\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let v = valid(&c);
    let (first, second) = (&v["server"][0]["cache"], &v["server"][1]["cache"]);
    assert_eq!(strings(&first["zones"]), ["example.org"]);
    assert_eq!(first["max_ttl"].as_integer(), Some(30));
    assert_eq!(second.get("zones"), None, "b covers the whole block");
    assert_eq!(second["keepttl"].as_bool(), Some(true));
    assert_eq!(second["min_ttl"].as_integer(), Some(1));
    assert_eq!(second["negative_min_ttl"].as_integer(), Some(2));
    assert_eq!(strings(&second["disable_success"]), ["."]);
    assert_eq!(strings(&second["disable_denial"]), ["a.b", "c.b"]);
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
    assert!(
        c.notes[0]
            .to_string()
            .starts_with("Corefile:12: cache serve_stale: served as REFRESH_MODE verify")
    );
    assert!(
        c.notes[1]
            .to_string()
            .starts_with("Corefile:13: cache prefetch: DURATION and PERCENTAGE")
    );
}

#[test]
fn disabling_the_cache_for_the_cluster_zone_is_already_so_unless_it_falls_through() {
    let kubeadm = ".:53 {\n  kubernetes cluster.local in-addr.arpa ip6.arpa {\n    fallthrough in-addr.arpa ip6.arpa\n  }\n  forward . 1.1.1.1\n  cache 30 {\n    disable success cluster.local\n    disable denial cluster.local\n  }\n}\n";
    let v = complete(kubeadm);
    assert_eq!(v["server"][0]["cache"].get("disable_success"), None);
    let v = complete(&kubeadm.replace("fallthrough in-addr.arpa ip6.arpa", "fallthrough"));
    let cache = &v["server"][0]["cache"];
    assert_eq!(strings(&cache["disable_success"]), ["cluster.local"]);
    assert_eq!(strings(&cache["disable_denial"]), ["cluster.local"]);
    let v = complete(&kubeadm.replace("success cluster.local", "success example.org"));
    assert_eq!(
        strings(&v["server"][0]["cache"]["disable_success"]),
        ["example.org"]
    );
}

#[test]
fn several_keys_listen_on_every_port_they_name() {
    let v = complete(".:53 .:30053 {\n  forward . 1.1.1.1\n}\n");
    let servers = v["server"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(
        strings(&servers[0]["listen"]),
        ["0.0.0.0:53", "[::]:53", "0.0.0.0:30053", "[::]:30053"]
    );
    assert_eq!(strings(&servers[0]["zones"]), ["."]);
    let v = complete("cluster.local:53 in-addr.arpa:53 {\n  forward . 1.1.1.1\n}\n");
    assert_eq!(
        strings(&v["server"][0]["zones"]),
        ["cluster.local", "in-addr.arpa"]
    );
    // Different zones on different ports stay apart, as CoreDNS serves them.
    let v = complete("a.example:53 b.example:5353 {\n  forward . 1.1.1.1\n}\n");
    let servers = v["server"].as_array().unwrap();
    assert_eq!(strings(&servers[0]["listen"]), ["0.0.0.0:53", "[::]:53"]);
    assert_eq!(strings(&servers[1]["zones"]), ["b.example"]);
    assert_eq!(
        strings(&servers[1]["listen"]),
        ["0.0.0.0:5353", "[::]:5353"]
    );
    let v = complete_v4("dns://.:53 {\n  forward . 1.1.1.1\n}\n");
    assert_eq!(strings(&v["server"][0]["listen"]), ["0.0.0.0:53"]);
}

fn complete_v4(text: &str) -> Value {
    let c = conv_with(text, Options { ipv6: false });
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    valid(&c)
}

#[test]
fn cidr_keys_become_the_reverse_zones_that_cover_them() {
    let v = complete("172.31.0.0/16:1053 {\n  forward . 1.1.1.1\n}\n");
    assert_eq!(strings(&v["server"][0]["zones"]), ["31.172.in-addr.arpa"]);
    assert_eq!(
        strings(&v["server"][0]["listen"]),
        ["0.0.0.0:1053", "[::]:1053"]
    );
    let v = complete("10.2.0.0/15:9254 {\n  forward . 1.1.1.1\n}\n");
    assert_eq!(
        strings(&v["server"][0]["zones"]),
        ["2.10.in-addr.arpa", "3.10.in-addr.arpa"]
    );
    assert_eq!(
        plugins::cidr_zones("fd00:1::/30").unwrap().unwrap(),
        [
            "0.0.0.0.0.0.d.f.ip6.arpa",
            "1.0.0.0.0.0.d.f.ip6.arpa",
            "2.0.0.0.0.0.d.f.ip6.arpa",
            "3.0.0.0.0.0.d.f.ip6.arpa"
        ]
    );
    assert_eq!(
        plugins::cidr_zones("10.0.0.1/32").unwrap().unwrap(),
        ["1.0.0.10.in-addr.arpa"]
    );
    assert_eq!(
        plugins::cidr_zones("0.0.0.0/0").unwrap().unwrap(),
        ["in-addr.arpa"]
    );
    assert_eq!(plugins::cidr_zones("example.org").unwrap(), None);
}

#[test]
fn keys_with_other_transports_or_bad_ports_are_refused() {
    let c = conv("quic://.:853 {\n  forward . 1.1.1.1\n}\n.:99999 {\n}\n.: {\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:1: server key quic://.:853: quic:// is not implemented: clusterdns serves DNS over UDP, TCP and TLS",
            "Corefile:4: server key .:99999: port 99999 is out of range",
            "Corefile:6: server key .:: nothing after the last `:`",
        ]
    );
}

#[test]
fn bind_takes_addresses_and_interfaces() {
    let v = complete(
        "cluster.local:53 {\n  bind 169.254.20.10 10.96.0.10 fd00::10 {\n    except 10.96.0.10\n  }\n  bind 169.254.20.10\n  forward . 10.96.0.10\n}\n",
    );
    assert_eq!(
        strings(&v["server"][0]["listen"]),
        ["169.254.20.10:53", "[fd00::10]:53"]
    );
    let v = complete(".:53 {\n  bind lo\n  forward . 1.1.1.1\n}\n");
    assert!(
        strings(&v["server"][0]["listen"]).contains(&"127.0.0.1:53"),
        "{v}"
    );
    let c = conv(".:53 {\n  bind no-such-interface0\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:2: bind: \"no-such-interface0\" is neither an IP address nor an interface of this machine"
        ]
    );
}

#[test]
fn plugins_clusterdns_does_not_implement_are_named_with_their_line() {
    let c = conv(
        ".:53 {\n  acl {\n    bogus\n  }\n  rewrite cname exact a. b.\n  federation cluster.local {\n    prod prod.example\n  }\n  whoami x\n  kubernetes cluster.local {\n    namespace_labels team=a\n    upstream\n    resyncperiod 30s\n  }\n  forward . 1.1.1.1 {\n    next NXDOMAIN\n  }\n}\n",
    );
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:3: acl bogus: unexpected token \"bogus\"; expected allow, block, filter or drop",
            "Corefile:5: rewrite: cname rules are not implemented by clusterdns",
            "Corefile:6: federation: removed in CoreDNS 1.7 (it served kubefed DNS records); not implemented",
            "Corefile:9: whoami: takes no arguments (CoreDNS does not start with them)",
            "Corefile:11: kubernetes namespace_labels: option not implemented or wrong arguments",
            "Corefile:16: forward next: option not implemented or wrong arguments",
        ]
    );
    assert_eq!(
        issues(&c.notes),
        [
            "Corefile:12: kubernetes upstream: ignored, as by CoreDNS since 1.7: CNAME targets are resolved by the client",
            "Corefile:13: kubernetes resyncperiod: ignored, as by CoreDNS since 1.7: watches keep the state current",
        ]
    );
}

#[test]
fn the_small_plugins() {
    let c = conv(
        ".:5353 {\n  bufsize 1232\n  errors {\n  }\n  log . {\n    class error\n  }\n  health 127.0.0.1:8099 {\n    lameduck 20s\n  }\n  prometheus 127.0.0.1:9153\n  reload 10s 5s\n  loadbalance round_robin\n  proxy . 1.1.1.1 {\n    policy first\n  }\n}\nb.example:5353 {\n  bufsize 4096\n  prometheus 127.0.0.1:9153\n  forward . 1.1.1.1\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    valid(&c);
    assert_eq!(
        issues(&c.notes),
        ["Corefile:14: proxy: removed in CoreDNS 1.6: translated as forward"]
    );
    let v: Value = c.toml.parse::<toml::Table>().map(Value::Table).unwrap();
    assert_eq!(v["admin"]["health"].as_str(), Some("127.0.0.1:8099"));
    assert_eq!(v["admin"]["lameduck"].as_str(), Some("20s"));
    assert_eq!(v["admin"]["reload_interval"].as_str(), Some("10s"));
    assert!(v["admin"].get("ready").is_none());
    let (a, b) = (&v["server"][0], &v["server"][1]);
    // `log . { class error }`: only errors are logged, as by CoreDNS.
    assert_eq!(strings(&a["log"]), ["error"]);
    assert_eq!(a["loadbalance"].as_bool(), Some(true));
    assert_eq!(a["forward"]["policy"].as_str(), Some("sequential"));
    assert!(a.get("max_udp_size").is_none(), "1232 is the default");
    assert_eq!(b["max_udp_size"].as_integer(), Some(4096));
    assert_eq!(b["loadbalance"].as_bool(), Some(false));
}

#[test]
fn admin_addresses_are_one_per_process() {
    let c = conv(".:53 {\n  prometheus :9153\n}\nb:53 {\n  prometheus :9253\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:5: prometheus: clusterdns serves it on one address for all blocks: 0.0.0.0:9153 (Corefile:2) and 0.0.0.0:9253 differ"
        ]
    );
    let v = complete(".:53 {\n  forward . 1.1.1.1\n}\n");
    assert_eq!(v["admin"]["reload_interval"].as_integer(), Some(0));
}

#[test]
fn kubernetes_and_forward_take_their_zones_from_the_block() {
    let v = complete("cluster.local:53 {\n  kubernetes\n}\n");
    assert_eq!(
        strings(&v["server"][0]["kubernetes"]["zones"]),
        ["cluster.local"]
    );
    let c = conv(".:53 {\n  kubernetes {\n  }\n  forward . https://1.1.1.1\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:2: kubernetes: the root zone cannot be a cluster zone: name the cluster domain (kubernetes cluster.local …)",
            "Corefile:4: forward: https:// upstreams are not implemented: plain DNS and tls:// only",
        ]
    );
    let v = complete(".:53 {\n  forward Example.org. 1.1.1.1\n}\n");
    assert_eq!(
        v["server"][0]["forward"]["from"].as_str(),
        Some("example.org")
    );
    let v =
        complete("example.org:53 {\n  forward example.org dns://10.0.0.1:5353 [fd00::1]:53\n}\n");
    assert_eq!(
        strings(&v["server"][0]["forward"]["to"]),
        ["10.0.0.1:5353", "[fd00::1]:53"]
    );
}

#[test]
fn go_durations() {
    let d = |s| go_duration(s);
    assert_eq!(d("5s"), Some(Duration::from_secs(5)));
    assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
    assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(d("0"), Some(Duration::ZERO));
    assert_eq!((d("5"), d("s"), d("5x"), d("")), (None, None, None, None));
    assert_eq!(
        duration_value(Duration::from_millis(1500)).as_str(),
        Some("1500ms")
    );
}

#[test]
fn log_classes_are_kept_and_names_or_formats_noted() {
    let c = conv(
        ".:53 {\n  log . \"{common}\" {\n    class denial error\n  }\n  forward . 1.1.1.1\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let v: Value = c.toml.parse::<toml::Table>().map(Value::Table).unwrap();
    assert_eq!(strings(&v["server"][0]["log"]), ["denial", "error"]);
    assert_eq!(
        issues(&c.notes).len(),
        1,
        "the format is noted: {:?}",
        c.notes
    );
    let c = conv(".:53 {\n  log {\n    class loud\n  }\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        ["Corefile:3: log: unknown class \"loud\""]
    );
    let v = complete(".:53 {\n  log\n  forward . 1.1.1.1\n}\n");
    assert_eq!(v["server"][0]["log"].as_bool(), Some(true));
}

#[test]
fn chaos_keeps_its_version_and_authors() {
    let v = complete(".:53 {\n  chaos CoreDNS-1.11.1 alice bob\n  forward . 1.1.1.1\n}\n");
    let chaos = &v["server"][0]["chaos"];
    assert_eq!(chaos["version"].as_str(), Some("CoreDNS-1.11.1"));
    assert_eq!(strings(&chaos["authors"]), ["alice", "bob"]);
    let c = conv(".:53 {\n  chaos\n  forward . 1.1.1.1\n}\n");
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    assert_eq!(issues(&c.notes).len(), 1, "{:?}", c.notes);
}

#[test]
fn minikubes_and_k3ss_hosts_convert_completely() {
    let v = complete(include_str!("../../../tests/corefiles/minikube.Corefile"));
    let h = &v["server"][0]["hosts"];
    assert_eq!(h["file"].as_str(), Some("/etc/hosts"));
    assert_eq!(
        strings(&h["entries"]),
        ["192.168.49.1 host.minikube.internal"]
    );
    assert_eq!(strings(&h["fallthrough"]), ["."]);
    assert_eq!(h.as_table().unwrap().len(), 3, "{h:?}");
    let v = complete(include_str!("../../../tests/corefiles/k3s.Corefile"));
    let h = &v["server"][0]["hosts"];
    assert_eq!(h["file"].as_str(), Some("/etc/coredns/NodeHosts"));
    assert_eq!(h["ttl"].as_integer(), Some(60));
    assert_eq!(h["reload"].as_str(), Some("15s"));
    assert_eq!(strings(&h["fallthrough"]), ["."]);
    let v = complete(include_str!(
        "../../../tests/corefiles/kops-dns-none.Corefile"
    ));
    let h = &v["server"][0]["hosts"];
    assert_eq!(strings(&h["zones"]), ["example.k8s.local"]);
    assert_eq!(h["ttl"].as_integer(), Some(30));
}

#[test]
fn hosts_options_inline_lines_and_what_coredns_would_skip_or_refuse() {
    let c = conv(
        "example.org:53 {\n  hosts extra.hosts example.org 10.0.0.0/8 {\n    10.0.0.1 a.example.org b.example.net\n    10.0.0 bad.example.org\n    lonely\n    no_reverse\n    reload 0\n    ttl 90\n    fallthrough 10.0.0.0/8\n  }\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let v = valid(&c);
    let h = &v["server"][0]["hosts"];
    assert_eq!(h["file"].as_str(), Some("extra.hosts"));
    assert_eq!(strings(&h["zones"]), ["example.org", "10.in-addr.arpa"]);
    assert_eq!(strings(&h["entries"]), ["10.0.0.1 a.example.org"]);
    assert_eq!(h["no_reverse"].as_bool(), Some(true));
    assert_eq!(h["reload"].as_str(), Some("0s"));
    assert_eq!(h["ttl"].as_integer(), Some(90));
    assert_eq!(strings(&h["fallthrough"]), ["10.in-addr.arpa"]);
    let notes = issues(&c.notes);
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(notes[0].starts_with(
        "Corefile:2: hosts: \"extra.hosts\" is read from the config file's directory"
    ));
    assert!(notes[1].starts_with("Corefile:3: hosts: b.example.net left out"));
    assert!(
        notes[2].starts_with("Corefile:4: hosts: line left out, as CoreDNS skips it: \"10.0.0\"")
    );
    assert!(notes[3].starts_with("Corefile:5: hosts: line \"lonely\" left out"));
    let c =
        conv(".:53 {\n  hosts {\n    fallthrough\n    10.0.0.1 a\n    ttl 0\n  }\n  hosts\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:4: hosts 10.0.0.1: unknown property: CoreDNS does not start with it",
            "Corefile:5: hosts ttl: expects SECONDS from 1 to 65535",
            "Corefile:7: hosts: given twice in one server block",
        ]
    );
}

#[test]
fn k8s_external_options_and_what_coredns_would_refuse() {
    let v = complete(
        ".:53 {\n  kubernetes cluster.local\n  k8s_external example.org. Other.Test {\n    apex ext\n    ttl 30\n    headless\n    fallthrough\n  }\n}\n",
    );
    let e = &v["server"][0]["k8s_external"];
    assert_eq!(strings(&e["zones"]), ["example.org", "other.test"]);
    assert_eq!(e["apex"].as_str(), Some("ext"));
    assert_eq!(e["ttl"].as_integer(), Some(30));
    assert_eq!(e["headless"].as_bool(), Some(true));
    assert_eq!(strings(&e["fallthrough"]), ["."]);
    // Without zones: the block's.
    let v = complete("example.org {\n  k8s_external\n  kubernetes cluster.local\n}\n");
    assert_eq!(
        strings(&v["server"][0]["k8s_external"]["zones"]),
        ["example.org"]
    );
    let c = conv(
        ".:53 {\n  k8s_external example.org\n}\n.:54 {\n  kubernetes cluster.local\n  k8s_external {\n    ttl 3601\n    nope\n  }\n  k8s_external\n}\n",
    );
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:2: k8s_external: needs kubernetes in the same server block",
            "Corefile:7: k8s_external ttl: expects SECONDS from 0 to 3600",
            "Corefile:8: k8s_external nope: unknown property: CoreDNS does not start with it",
            "Corefile:10: k8s_external: given twice in one server block",
        ]
    );
}

#[test]
fn dns64_converts_its_prefix_and_options_as_coredns_reads_them() {
    let server = |v: &Value| v["server"][0]["dns64"].clone();
    let plain = complete(".:53 {\n  dns64\n}\n");
    assert_eq!(server(&plain).as_table().map(toml::Table::len), Some(0));
    let long = complete(
        ".:53 {\n  dns64 {\n    prefix 2001:db8::/64\n    translate_all\n    allow_ipv4\n  }\n}\n",
    );
    assert_eq!(server(&long)["prefix"].as_str(), Some("2001:db8::/64"));
    assert_eq!(server(&long)["translate_all"].as_bool(), Some(true));
    assert_eq!(server(&long)["allow_ipv4"].as_bool(), Some(true));
    // After a PREFIX argument CoreDNS reads each line as `dns64 [PREFIX]`.
    let c = conv(
        ".:53 {\n  dns64 64:ff9b::/96 {\n    prefix 2001:db8::/32\n    translate_all\n  }\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let table = server(&valid(&c));
    assert_eq!(table["prefix"].as_str(), Some("2001:db8::/32"));
    assert!(table.get("translate_all").is_none());
    assert_eq!(issues(&c.notes).len(), 1, "{:?}", c.notes);
    assert!(issues(&c.notes)[0].starts_with("Corefile:4: dns64 translate_all: ignored"));
    let c = conv(".:53 {\n  dns64 64:ff9b::/72\n  dns64 a b\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:2: dns64: \"64:ff9b::/72\": the length must be 32, 40, 48, 56, 64 or 96",
            "Corefile:3: dns64: takes one PREFIX at most",
        ]
    );
}

#[test]
fn transfer_converts_and_what_coredns_would_refuse() {
    let v = complete(
        ".:53 {\n  kubernetes cluster.local\n  transfer Cluster.Local. {\n    to 10.0.0.1 [fd00::1]:5300\n    to *\n  }\n}\n",
    );
    let t = &v["server"][0]["transfer"];
    assert_eq!(strings(&t["zones"]), ["cluster.local"]);
    assert_eq!(strings(&t["to"]), ["10.0.0.1", "[fd00::1]:5300", "*"]);
    let v =
        complete(".:53 {\n  transfer {\n    to 127.0.0.1\n  }\n  kubernetes cluster.local\n}\n");
    assert!(v["server"][0]["transfer"].get("zones").is_none());
    let c = conv(
        ".:53 {\n  transfer {\n    to *\n  }\n}\n.:54 {\n  kubernetes cluster.local\n  transfer {\n    to 10.0.0.0/8\n  }\n  transfer\n}\n.:55 {\n  kubernetes cluster.local\n  transfer {\n    source 10.0.0.1\n  }\n}\n.:56 {\n  kubernetes cluster.local\n  transfer\n}\n",
    );
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:2: transfer: needs kubernetes in the same server block (the only zone clusterdns transfers)",
            "Corefile:9: transfer to: \"10.0.0.0/8\" is not * or an IP address with an optional port (networks are not accepted, as in CoreDNS)",
            "Corefile:11: transfer: needs a `to` line (as CoreDNS)",
            "Corefile:16: transfer source: unknown option (CoreDNS 1.11 has only `to`)",
            "Corefile:21: transfer: needs a `to` line (as CoreDNS)",
        ]
    );
}

#[test]
fn forward_tls_upstreams_and_their_options_translate() {
    let c = conv(
        ".:53 {\n  forward . tls://10.0.0.1 tls://[fd00::1]:8853 {\n    tls_servername dns.example\n    tls cert.pem key.pem /etc/ca.pem\n  }\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let v = c.toml.parse::<toml::Table>().map(Value::Table).unwrap();
    let forward = &v["server"][0]["forward"];
    assert_eq!(
        strings(&forward["to"]),
        ["tls://10.0.0.1", "tls://[fd00::1]:8853"]
    );
    assert_eq!(forward["tls_servername"].as_str(), Some("dns.example"));
    assert_eq!(forward["tls_cert"].as_str(), Some("cert.pem"));
    assert_eq!(forward["tls_key"].as_str(), Some("key.pem"));
    assert_eq!(forward["tls_ca"].as_str(), Some("/etc/ca.pem"));
    let notes = issues(&c.notes);
    assert!(
        notes.iter().any(|n| n.starts_with(
            "Corefile:4: forward tls: \"cert.pem\" is read from the config file's directory"
        )),
        "{notes:?}"
    );
    // One argument is the CA.
    let c = conv(".:53 {\n  forward . tls://10.0.0.1 {\n    tls /etc/ca.pem\n  }\n}\n");
    let v = c.toml.parse::<toml::Table>().map(Value::Table).unwrap();
    assert_eq!(
        v["server"][0]["forward"]["tls_ca"].as_str(),
        Some("/etc/ca.pem")
    );
    assert!(v["server"][0]["forward"].get("tls_cert").is_none());
    // Without a tls:// upstream CoreDNS uses none of it.
    let c = conv(
        ".:53 {\n  forward . 10.0.0.1 {\n    tls /etc/ca.pem\n    tls_servername x.example\n  }\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let v = valid(&c);
    assert!(v["server"][0]["forward"].get("tls_ca").is_none());
    assert!(v["server"][0]["forward"].get("tls_servername").is_none());
    assert_eq!(
        issues(&c.notes),
        ["Corefile:2: forward tls: ignored, as by CoreDNS: no upstream is tls://"]
    );
    // Four arguments, as CoreDNS, are refused.
    let c = conv(".:53 {\n  forward . tls://10.0.0.1 {\n    tls a b c d\n  }\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        ["Corefile:3: forward tls: option not implemented or wrong arguments"]
    );
}

#[test]
fn tls_server_blocks_listen_with_their_certificate() {
    let c = conv("tls://.:853 {\n  tls cert.pem key.pem ca.pem\n  forward . 1.1.1.1\n}\n");
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    // Relative paths: read from the config's directory, said once per file.
    assert_eq!(c.notes.len(), 3, "{:?}", c.notes);
    assert!(
        issues(&c.notes)[0]
            .starts_with("Corefile:2: tls: \"cert.pem\" is read from the config file's directory"),
        "{:?}",
        c.notes
    );
    let v = c.toml.parse::<toml::Table>().map(Value::Table).unwrap();
    let server = &v["server"][0];
    assert_eq!(
        strings(&server["listen"]),
        ["tls://0.0.0.0:853", "tls://[::]:853"]
    );
    assert_eq!(strings(&server["zones"]), ["."]);
    assert_eq!(server["tls"]["cert"].as_str(), Some("cert.pem"));
    assert_eq!(server["tls"]["key"].as_str(), Some("key.pem"));
    assert_eq!(server["tls"]["ca"].as_str(), Some("ca.pem"));
    assert!(server["tls"].get("client_auth").is_none());
    assert_eq!(strings(&server["forward"]["to"]), ["1.1.1.1"]);

    // A port of its own, client_auth, and a plain key beside it in the same block.
    let c = conv(
        "tls://cluster.local:8853 cluster.local:53 {\n  tls /c.pem /k.pem {\n    client_auth require_and_verify\n  }\n  whoami\n}\n",
    );
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    let v = c.toml.parse::<toml::Table>().map(Value::Table).unwrap();
    let server = &v["server"][0];
    assert_eq!(
        strings(&server["listen"]),
        [
            "tls://0.0.0.0:8853",
            "tls://[::]:8853",
            "0.0.0.0:53",
            "[::]:53"
        ]
    );
    assert_eq!(
        server["tls"]["client_auth"].as_str(),
        Some("require_and_verify")
    );
}

#[test]
fn tls_keys_without_the_plugin_and_the_plugin_without_them() {
    // CoreDNS 1.11 serves unencrypted TCP on a tls:// key without `tls`: refused here.
    let c = conv("tls://.:853 {\n  whoami\n}\n");
    assert_eq!(
        issues(&c.untranslated),
        [
            "Corefile:1: server key tls://.:853: tls:// without the tls plugin: CoreDNS 1.11 serves unencrypted DNS over TCP on it; clusterdns needs tls CERT KEY"
        ]
    );
    // CoreDNS loads `tls` in a plain block and uses it for nothing.
    let c = conv(".:53 {\n  tls /c.pem /k.pem\n  whoami\n}\n");
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    assert_eq!(
        issues(&c.notes),
        ["Corefile:2: tls: ignored, as by CoreDNS: no server key of the block is tls://"]
    );
    let v = valid(&c);
    assert!(v["server"][0].get("tls").is_none());
    // What CoreDNS does not start with, and what clusterdns does not implement.
    for (text, why) in [
        ("tls /c.pem", "Corefile:2: tls: expects CERT KEY [CA]"),
        (
            "tls /c.pem /k.pem {\n client_auth maybe\n }",
            "Corefile:3: tls client_auth: expects one of",
        ),
        (
            "tls /c.pem /k.pem {\n keylog /tmp/k\n }",
            "Corefile:3: tls keylog: not implemented",
        ),
        (
            "tls /c.pem /k.pem\n tls /c.pem /k.pem",
            "Corefile:3: tls: given twice",
        ),
    ] {
        let c = conv(&format!("tls://.:853 {{\n {text}\n whoami\n}}\n"));
        let refused = issues(&c.untranslated);
        assert!(
            refused.first().is_some_and(|r| r.starts_with(why)),
            "{text}: {refused:?}"
        );
    }
}

#[test]
fn debug_and_pprof_are_accepted_with_a_note() {
    let c = conv(".:53 {\n  debug\n  pprof localhost:6053\n  forward . 1.1.1.1\n}\n");
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    valid(&c);
    let notes = issues(&c.notes);
    assert!(
        notes[0].starts_with("Corefile:2: debug: ignored: set RUST_LOG=debug"),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("Corefile:3: pprof: ignored: there is no Go profiler"),
        "{notes:?}"
    );
}

#[test]
fn noendpoints_turns_the_endpointslice_watch_off() {
    let v = complete(".:53 {\n  kubernetes cluster.local {\n    noendpoints\n  }\n}\n");
    assert_eq!(
        v["server"][0]["kubernetes"]["endpoints"].as_bool(),
        Some(false)
    );
}

#[test]
fn multicluster_converts_to_its_zones_which_must_be_the_blocks() {
    let v = complete(
        ".:53 {\n  kubernetes cluster.local clusterset.local {\n    multicluster clusterset.local.\n  }\n}\n",
    );
    let k = &v["server"][0]["kubernetes"];
    assert_eq!(strings(&k["multicluster"]), ["clusterset.local"]);
    assert_eq!(strings(&k["zones"]), ["cluster.local", "clusterset.local"]);

    // Not a zone of the plugin: refused with its line, as CoreDNS does not start.
    let c =
        conv(".:53 {\n  kubernetes cluster.local {\n    multicluster clusterset.local\n  }\n}\n");
    let refused = issues(&c.untranslated);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("Corefile:3: ")
            && refused[0].contains("kubernetes multicluster")
            && refused[0].contains("clusterset.local is not one of the plugin's zones"),
        "{refused:?}"
    );

    // No zones: none, as in CoreDNS, with a note.
    let c = conv(".:53 {\n  kubernetes cluster.local {\n    multicluster\n  }\n}\n");
    assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
    assert!(
        valid(&c)["server"][0]["kubernetes"]
            .get("multicluster")
            .is_none()
    );
    assert!(issues(&c.notes)[0].contains("kubernetes multicluster"));
}
