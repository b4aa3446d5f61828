use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/tmp/test.toml"))
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("config should be rejected")
        .to_string()
}

const MINIMAL: &str =
    "[[server]]\nlisten = [\"127.0.0.1:5353\"]\n[server.kubernetes]\nmanifests = \"/tmp\"\n";

#[test]
fn embedded_default_config_parses() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/clusterdns.toml");
    let config = Config::load(&file).expect("config/clusterdns.toml is valid");
    let k = config.servers[0].kubernetes.as_ref().unwrap();
    assert_eq!(k.zones, ["cluster.local", "in-addr.arpa", "ip6.arpa"]);
    assert_eq!(k.pods, PodMode::Insecure);
    assert!(
        matches!(&k.source, ClusterSource::Manifests(dir) if dir.ends_with("config/demo-cluster"))
    );
    assert_eq!(
        config.servers[0].listen,
        ["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn defaults_match_coredns() {
    let config = parse(MINIMAL).unwrap();
    let server = &config.servers[0];
    assert_eq!(server.zones, [""]);
    let k = server.kubernetes.as_ref().unwrap();
    assert_eq!(k.ttl, 5);
    assert_eq!(k.pods, PodMode::Disabled);
    assert!(k.fallthrough.is_empty() && k.namespaces.is_empty());
    assert!(!k.ignore_empty_service && !k.endpoint_pod_names);
}

#[test]
fn unknown_key_names_file_and_key_path() {
    let e = error(&format!("{MINIMAL}bogus = 1\n"));
    assert!(
        e.starts_with(
            "/tmp/test.toml: server[0].kubernetes.bogus: unknown field `bogus`, expected one of"
        ),
        "{e}"
    );
    let e = error("[admin]\nhealthz = \"127.0.0.1:1\"\n");
    assert!(
        e.contains("admin") && e.contains("unknown field `healthz`"),
        "{e}"
    );
}

#[test]
fn bad_listen_address_names_the_entry() {
    let e = error("[[server]]\nlisten = [\"127.0.0.1:53\", \"localhost:53\"]\n");
    assert_eq!(
        e,
        "/tmp/test.toml: server[0].listen[1]: \"localhost:53\" is not a socket address (ip:port, [ipv6]:port or :port)"
    );
}

#[test]
fn coredns_style_port_only_listen_is_all_ipv4() {
    let config = parse("[[server]]\nlisten = [\":53\", \"[::1]:5353\"]\n").unwrap();
    assert_eq!(
        config.servers[0].listen,
        [
            "0.0.0.0:53".parse::<SocketAddr>().unwrap(),
            "[::1]:5353".parse().unwrap()
        ]
    );
}

#[test]
fn bad_zone_name_is_rejected() {
    let e = error("[[server]]\nzones = [\"bad zone\"]\n");
    assert_eq!(
        e,
        "/tmp/test.toml: server[0].zones[0]: \"bad zone\" is not a valid zone name"
    );
    let e = error(&MINIMAL.replace(
        "[server.kubernetes]\n",
        "[server.kubernetes]\nzones = [\"a..b\"]\n",
    ));
    assert!(e.contains("server[0].kubernetes.zones[0]"), "{e}");
}

#[test]
fn missing_manifests_directory_is_an_error() {
    let e = error("[[server]]\n[server.kubernetes]\nmanifests = \"/nonexistent/dir\"\n");
    assert_eq!(
        e,
        "/tmp/test.toml: server[0].kubernetes.manifests: /nonexistent/dir is not a directory"
    );
}

#[test]
fn relative_manifests_path_is_relative_to_the_config_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = Config::parse(
        "[[server]]\n[server.kubernetes]\nmanifests = \"demo-cluster\"\n",
        &dir.join("x.toml"),
    )
    .unwrap();
    let k = config.servers[0].kubernetes.as_ref().unwrap();
    assert_eq!(k.source, ClusterSource::Manifests(dir.join("demo-cluster")));
}

#[test]
fn two_sources_conflict() {
    let e = error(
        "[[server]]\n[server.kubernetes]\nmanifests = \"/tmp\"\nendpoint = \"http://127.0.0.1:8001\"\n",
    );
    assert_eq!(
        e,
        "/tmp/test.toml: server[0].kubernetes.endpoint: conflicts with server[0].kubernetes.manifests: give one source of cluster state"
    );
}

#[test]
fn ttl_out_of_range_is_rejected() {
    let e = error(&format!("{MINIMAL}ttl = 3601\n"));
    assert_eq!(
        e,
        "/tmp/test.toml: server[0].kubernetes.ttl: 3601 is out of range 0..=3600"
    );
    assert!(error(&format!("{MINIMAL}ttl = -1\n")).contains("out of range"));
    assert_eq!(
        parse(&format!("{MINIMAL}ttl = 0\n")).unwrap().servers[0]
            .kubernetes
            .as_ref()
            .unwrap()
            .ttl,
        0
    );
}

#[test]
fn bad_pods_mode_is_rejected() {
    let e = error(&format!("{MINIMAL}pods = \"sometimes\"\n"));
    assert!(
        e.contains("server[0].kubernetes.pods") && e.contains("unknown variant"),
        "{e}"
    );
}

#[test]
fn reverse_only_zone_list_is_rejected() {
    let e = error(&MINIMAL.replace(
        "[server.kubernetes]\n",
        "[server.kubernetes]\nzones = [\"in-addr.arpa\"]\n",
    ));
    assert!(e.contains("only reverse zones"), "{e}");
}

#[test]
fn cidr_zones_expand_to_reverse_zones() {
    let k = |zones: &str| {
        parse(&MINIMAL.replace(
            "[server.kubernetes]\n",
            &format!("[server.kubernetes]\nzones = [\"cluster.local\", {zones}]\n"),
        ))
        .map(|c| c.servers[0].kubernetes.clone().unwrap().zones)
    };
    assert_eq!(
        k("\"10.0.0.0/8\"").unwrap(),
        ["cluster.local", "10.in-addr.arpa"]
    );
    let z = k("\"10.0.0.0/17\"").unwrap();
    assert_eq!(z.len(), 1 + 128);
    assert_eq!(z[1], "0.0.10.in-addr.arpa");
    assert_eq!(z[128], "127.0.10.in-addr.arpa");
    assert_eq!(
        k("\"fd00::/12\"").unwrap(),
        ["cluster.local", "0.d.f.ip6.arpa"]
    );
    assert!(
        k("\"10.0.0.1/8\"")
            .unwrap_err()
            .to_string()
            .contains("host bits set")
    );
}

#[test]
fn no_server_block_is_an_error() {
    assert_eq!(
        error(""),
        "/tmp/test.toml: server: no [[server]] block: nothing would be served"
    );
}

#[test]
fn forward_upstreams_accept_addresses_and_resolv_conf() {
    let config = parse("[[server]]\n[server.forward]\nto = [\"10.0.0.2\", \"[fd00::53]:5353\", \"/etc/resolv.conf\"]\n").unwrap();
    assert_eq!(
        config.servers[0].forward.as_ref().unwrap().to,
        [
            ForwardTo::Addr("10.0.0.2:53".parse().unwrap()),
            ForwardTo::Addr("[fd00::53]:5353".parse().unwrap()),
            ForwardTo::ResolvConf("/etc/resolv.conf".into()),
        ]
    );
    assert!(
        error("[[server]]\n[server.forward]\nto = [\"dns.example\"]\n")
            .contains("server[0].forward.to[0]")
    );
}

#[test]
fn syntax_error_reports_the_position() {
    let e = error("[[server]\n");
    assert!(e.starts_with("/tmp/test.toml: (document):"), "{e}");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn api_source_options_are_validated() {
    let config = parse("[[server]]\n[server.kubernetes]\nendpoint = \"http://127.0.0.1:8001\"\nlabels = \"app=web,tier!=test\"\nstartup_timeout_secs = 0\n").unwrap();
    let k = config.servers[0].kubernetes.as_ref().unwrap();
    assert_eq!(
        k.source,
        ClusterSource::Endpoint("http://127.0.0.1:8001".into())
    );
    assert_eq!(k.labels.as_deref(), Some("app=web,tier!=test"));
    assert_eq!(k.startup_timeout, std::time::Duration::ZERO);
    assert!(
        error("[[server]]\n[server.kubernetes]\nlabels = \"\"\n")
            .contains("server[0].kubernetes.labels")
    );
    assert!(
        error("[[server]]\n[server.kubernetes]\nendpoint = \"127.0.0.1:8001\"\n")
            .contains("not an http:// or https:// URL")
    );
    assert!(
        error("[[server]]\n[server.kubernetes]\ncontext = \"prod\"\n")
            .contains("server[0].kubernetes.context: needs kubeconfig")
    );
}

#[test]
fn durations_take_every_form_the_configs_use() {
    let ms = |n| Duration::from_millis(n);
    for (text, want) in [
        ("500ms", ms(500)),
        ("2s", ms(2_000)),
        ("1m", ms(60_000)),
        ("2h", ms(7_200_000)),
        ("1.5s", ms(1_500)),
        ("0s", Duration::ZERO),
        // A bare number is seconds, like the integer form.
        ("5", ms(5_000)),
        ("0.5", ms(500)),
        ("0", Duration::ZERO),
        // What the hand-written parser took: a lone decimal point, surrounding blanks.
        (".5s", ms(500)),
        ("5.s", ms(5_000)),
        (" 2s ", ms(2_000)),
        // Go's (CoreDNS Corefile) compound form.
        ("1m30s", ms(90_000)),
        ("1h 30m", ms(5_400_000)),
        ("365d", Duration::from_secs(365 * 86_400)),
    ] {
        assert_eq!(parse_duration(text), Ok(want), "{text:?}");
    }
}

#[test]
fn durations_reject_what_is_not_one() {
    for (text, why) in [
        ("", "empty"),
        ("s", "expected number"),
        ("5x", "unknown time unit \"x\""),
        ("-1s", "expected number"),
        ("1.5.s", "invalid character"),
        ("1..s", "invalid character"),
        ("2y", "longer than a year"),
        ("366d", "longer than a year"),
    ] {
        let e = parse_duration(text).expect_err(text);
        assert!(e.contains(why), "{text:?}: {e}");
    }
}

#[test]
fn duration_keys_are_read_and_errors_name_file_and_key() {
    let config = parse(
        "[admin]\nlameduck = \"1500ms\"\nreload_interval = 0\n[[server]]\n[server.forward]\nto = [\"10.0.0.2\"]\nhealth_check = \"1m30s\"\nexpire = 20\ntimeout = \"2.5s\"\n[server.cache]\nserve_stale = \"1h\"\n",
    )
    .unwrap();
    assert_eq!(config.admin.lameduck, Duration::from_millis(1_500));
    assert_eq!(config.admin.reload_interval, Duration::ZERO);
    let f = config.servers[0].forward.as_ref().unwrap();
    assert_eq!(f.health_check, Duration::from_secs(90));
    assert_eq!(f.expire, Duration::from_secs(20));
    assert_eq!(f.timeout, Duration::from_millis(2_500));
    let c = config.servers[0].cache.as_ref().unwrap();
    assert_eq!(c.serve_stale, Duration::from_secs(3_600));

    let e = error("[[server]]\n[server.forward]\nto = [\"10.0.0.2\"]\ntimeout = \"5x\"\n");
    assert!(
        e.starts_with("/tmp/test.toml: server[0].forward.timeout: \"5x\" is not a duration (unknown time unit \"x\""),
        "{e}"
    );
    let e = error("[admin]\nlameduck = -1\n");
    assert!(
        e.starts_with("/tmp/test.toml: admin.lameduck: -1 is not a duration"),
        "{e}"
    );
    let e = error("[[server]]\n[server.cache]\nserve_stale = \"2y\"\n");
    assert!(
        e.starts_with("/tmp/test.toml: server[0].cache.serve_stale: \"2y\" is not a duration (longer than a year)"),
        "{e}"
    );
}

#[test]
fn k8s_external_defaults_and_errors_name_the_key() {
    let config = parse(&format!("{MINIMAL}[server.k8s_external]\n")).unwrap();
    let e = config.servers[0].k8s_external.as_ref().unwrap();
    assert_eq!(e.zones, [""]);
    assert_eq!((e.apex.as_str(), e.ttl, e.headless), ("dns", 5, false));
    assert!(e.fallthrough.is_empty());
    let without = "[[server]]\nlisten = [\"127.0.0.1:5353\"]\n[server.k8s_external]\n";
    assert!(
        error(without).contains("server[0].k8s_external: needs [server.kubernetes]"),
        "{}",
        error(without)
    );
    let ttl = error(&format!("{MINIMAL}[server.k8s_external]\nttl = 3601\n"));
    assert!(ttl.contains("server[0].k8s_external.ttl"), "{ttl}");
    let apex = error(&format!("{MINIMAL}[server.k8s_external]\napex = \"a b\"\n"));
    assert!(apex.contains("server[0].k8s_external.apex"), "{apex}");
}

#[test]
fn transfer_defaults_and_errors_name_the_key() {
    use crate::config::transfer::TransferPeer;
    let config = parse(&format!(
        "{MINIMAL}[server.transfer]\nto = [\"*\", \"10.0.0.1:5300\", \"[fd00::1]:53\", \"fd00::2\"]\n"
    ))
    .unwrap();
    let t = config.servers[0].transfer.as_ref().unwrap();
    assert_eq!(t.zones, [""], "the block's zones");
    let ip = |s: &str| TransferPeer::Ip(s.parse().unwrap());
    assert_eq!(
        t.to,
        [
            TransferPeer::Any,
            ip("10.0.0.1"),
            ip("fd00::1"),
            ip("fd00::2")
        ]
    );
    let none = error(&format!("{MINIMAL}[server.transfer]\n"));
    assert!(
        none.contains("server[0].transfer.to: needs at least one"),
        "{none}"
    );
    let net = error(&format!(
        "{MINIMAL}[server.transfer]\nto = [\"10.0.0.0/8\"]\n"
    ));
    assert!(net.contains("server[0].transfer.to[0]"), "{net}");
    let without = "[[server]]\nlisten = [\"127.0.0.1:5353\"]\n[server.transfer]\nto = [\"*\"]\n";
    assert!(
        error(without).contains("server[0].transfer: needs [server.kubernetes]"),
        "{}",
        error(without)
    );
}

#[test]
fn forward_tls_upstreams_and_keys_are_validated() {
    let config = parse("[[server]]\n[server.forward]\nto = [\"tls://10.0.0.2\", \"tls://[fd00::53]:8853\", \"10.0.0.3\"]\ntls_servername = \"dns.example\"\n").unwrap();
    let forward = config.servers[0].forward.as_ref().unwrap();
    assert_eq!(
        forward.to,
        [
            ForwardTo::Tls("10.0.0.2:853".parse().unwrap()),
            ForwardTo::Tls("[fd00::53]:8853".parse().unwrap()),
            ForwardTo::Addr("10.0.0.3:53".parse().unwrap()),
        ]
    );
    assert_eq!(forward.tls.server_name.as_deref(), Some("dns.example"));
    let e = error(
        "[[server]]\n[server.forward]\nto = [\"tls://10.0.0.2\"]\ntls_ca = \"missing-ca.pem\"\n",
    );
    assert!(e.contains("server[0].forward.tls_ca"), "{e}");
    assert!(e.contains("/tmp/missing-ca.pem"), "{e}");
    let e =
        error("[[server]]\n[server.forward]\nto = [\"tls://10.0.0.2\"]\ntls_cert = \"/c.pem\"\n");
    assert!(e.contains("server[0].forward.tls_key"), "{e}");
    let e = error(
        "[[server]]\n[server.forward]\nto = [\"10.0.0.2\"]\ntls_servername = \"dns.example\"\n",
    );
    assert!(
        e.contains("server[0].forward.to") && e.contains("no upstream is tls://"),
        "{e}"
    );
    let e = error(
        "[[server]]\n[server.forward]\nto = [\"tls://10.0.0.2\"]\ntls_servername = \"not a name\"\n",
    );
    assert!(e.contains("server[0].forward.tls_servername"), "{e}");
}

#[test]
fn multicluster_zones_must_be_forward_zones_of_the_block() {
    let k = |lines: &str| {
        parse(&MINIMAL.replace(
            "[server.kubernetes]\n",
            &format!("[server.kubernetes]\n{lines}\n"),
        ))
        .map(|c| c.servers[0].kubernetes.clone().unwrap())
    };
    let ok = k(
        "zones = [\"cluster.local\", \"ClusterSet.local.\", \"in-addr.arpa\"]\nmulticluster = [\"clusterset.local.\"]",
    )
    .unwrap();
    assert_eq!(ok.multicluster, ["clusterset.local"]);
    assert!(k("").unwrap().multicluster.is_empty());
    let e = k("multicluster = [\"clusterset.local\"]")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server[0].kubernetes.multicluster[0]") && e.contains("not one of the zones"),
        "{e}"
    );
    let e = k("zones = [\"cluster.local\", \"in-addr.arpa\"]\nmulticluster = [\"in-addr.arpa\"]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a reverse zone"), "{e}");
}

#[test]
fn tls_listen_needs_its_certificate_and_the_certificate_a_tls_listen() {
    let e =
        error("[[server]]\nlisten = [\"127.0.0.1:53\", \"tls://127.0.0.1:853\"]\nwhoami = true\n");
    assert_eq!(
        e,
        "/tmp/test.toml: server[0].listen[1]: a tls:// address needs [server.tls] (cert and key)"
    );
    let e = error(
        "[[server]]\nlisten = [\"127.0.0.1:53\"]\nwhoami = true\n[server.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
    );
    // The files are read first: the missing one is what is reported.
    assert!(
        e.starts_with("/tmp/test.toml: server[0].tls.cert: /nonexistent/c.pem: "),
        "{e}"
    );
    let e =
        error("[[server]]\nlisten = [\"tls://127.0.0.1:853\"]\n[server.tls]\nkey = \"k.pem\"\n");
    assert_eq!(e, "/tmp/test.toml: server[0].tls.cert: is required");
    let e = error(
        "[[server]]\nlisten = [\"tls://127.0.0.1:853\"]\n[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_auth = \"maybe\"\n",
    );
    assert!(
        e.contains("server[0].tls.client_auth") && e.contains("unknown variant `maybe`"),
        "{e}"
    );
    // `dns://` is plain DNS, as in a Corefile key.
    let config = parse("[[server]]\nlisten = [\"dns://127.0.0.1:53\"]\n").unwrap();
    assert_eq!(
        config.servers[0].listen,
        ["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
    );
    assert!(config.servers[0].tls_listen.is_empty() && config.servers[0].tls.is_none());
    let e = error("[[server]]\nlisten = [\"tls://localhost:853\"]\n");
    assert!(
        e.starts_with(
            "/tmp/test.toml: server[0].listen[0]: \"localhost:853\" is not a socket address"
        ),
        "{e}"
    );
}
