//! Server blocks → clusterdns TOML: the keys become `listen` and `zones`, the plugins clusterdns
//! implements become their sections, and everything else is reported with its file and line:
//! `untranslated` (the conversion is incomplete) or `notes` (translated, with a difference
//! worth knowing).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use super::grammar::{Directive, Loc, ServerBlock};
use super::plugins::{self, Kube};

/// What the conversion may ask of the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A block without `bind` listens on `[::]` as well as `0.0.0.0`, as CoreDNS's dual-stack
    /// wildcard does. Off where the kernel has no IPv6.
    pub ipv6: bool,
}

/// Something about one directive, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub loc: Loc,
    pub text: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.text)
    }
}

/// The TOML, what could not be translated, and what was translated with a difference.
#[derive(Debug, Default)]
pub struct Conversion {
    pub toml: String,
    pub untranslated: Vec<Issue>,
    pub notes: Vec<Issue>,
}

/// Where issues are collected.
#[derive(Debug, Default)]
pub(super) struct Out {
    untranslated: Vec<Issue>,
    notes: Vec<Issue>,
}

impl Out {
    /// Not translated: `subject` (a plugin, or `plugin option`) and why.
    pub(super) fn refuse(&mut self, loc: &Loc, subject: &str, why: impl fmt::Display) {
        self.untranslated.push(Issue {
            loc: loc.clone(),
            text: format!("{subject}: {why}"),
        });
    }

    pub(super) fn note(&mut self, loc: &Loc, subject: &str, what: impl fmt::Display) {
        self.notes.push(Issue {
            loc: loc.clone(),
            text: format!("{subject}: {what}"),
        });
    }
}

/// `[admin]`: one address per endpoint for the whole process, as CoreDNS shares them.
#[derive(Debug, Default)]
struct Admin {
    health: Option<(String, Loc)>,
    ready: Option<(String, Loc)>,
    metrics: Option<(String, Loc)>,
    lameduck: Option<Duration>,
    reload: Option<Duration>,
}

/// What one server block's directives translate to.
#[derive(Debug, Default)]
struct Plan {
    /// `log`: `true` for every query, or the response classes to log.
    log: Option<Value>,
    loadbalance: bool,
    binds: Vec<IpAddr>,
    max_udp_size: Option<u16>,
    /// `chaos [VERSION] [AUTHORS…]` as `[server.chaos]`.
    chaos: Option<toml::Table>,
    kubernetes: Option<Kube>,
    forward: Option<Table>,
    cache: Option<Table>,
    hosts: Option<Table>,
    /// `rewrite`: one rule per directive, in order.
    rewrite: Vec<Table>,
    /// One table per `acl` directive, in order.
    acl: Vec<Table>,
    any: bool,
    minimal: bool,
    whoami: bool,
    autopath: Option<Table>,
    k8s_external: Option<Table>,
    /// `template` directives, in order, as `[[server.template]]`.
    templates: Vec<Table>,
    /// One table per `file` directive, in order.
    files: Vec<Table>,
    dns64: Option<Table>,
    transfer: Option<Table>,
    /// `tls CERT KEY [CA]`: `[server.tls]` of the tables with `tls://` addresses.
    tls: Option<(Table, Loc)>,
}

/// Converts parsed server blocks; `source` names the Corefile in the TOML's header.
pub fn convert(blocks: &[ServerBlock], source: &Path, options: Options) -> Conversion {
    let mut out = Out::default();
    let mut admin = Admin::default();
    let mut servers = Vec::new();
    for block in blocks {
        servers.extend(server_block(block, &mut admin, &mut out, options));
    }
    let mut doc = Table::new();
    doc.insert("admin".into(), Value::Table(admin_table(&admin)));
    doc.insert(
        "server".into(),
        Value::Array(servers.into_iter().map(Value::Table).collect()),
    );
    Conversion {
        toml: format!(
            "# Converted from {} by clusterdns.\n\n{doc}",
            source.display()
        ),
        untranslated: out.untranslated,
        notes: out.notes,
    }
}

fn admin_table(admin: &Admin) -> Table {
    let mut t = Table::new();
    for (key, value) in [
        ("health", &admin.health),
        ("ready", &admin.ready),
        ("metrics", &admin.metrics),
    ] {
        if let Some((addr, _)) = value {
            t.insert(key.into(), addr.clone().into());
        }
    }
    if let Some(d) = admin.lameduck {
        t.insert("lameduck".into(), duration_value(d));
    }
    // Without `reload` CoreDNS never re-reads its Corefile; clusterdns still does on SIGHUP.
    t.insert(
        "reload_interval".into(),
        admin.reload.map_or(Value::Integer(0), duration_value),
    );
    t
}

/// A duration as the config reads it: `"5s"`, `"1500ms"`.
pub(super) fn duration_value(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs()).into()
    } else {
        format!("{}ms", d.as_millis().max(1)).into()
    }
}

/// A port a block key listens on, and whether it is `tls://`.
type Port = (u16, bool);

/// One Corefile server block: one `[[server]]` per set of ports that serve the same zones
/// (usually one: `.:53 .:30053` listens on both ports).
fn server_block(block: &ServerBlock, admin: &mut Admin, out: &mut Out, o: Options) -> Vec<Table> {
    let mut ports: Vec<(Port, Vec<String>)> = Vec::new();
    let mut tls_key = None;
    for key in &block.keys {
        match parse_key(&key.text) {
            Ok((zones, port, tls)) => {
                if tls && tls_key.is_none() {
                    tls_key = Some(key);
                }
                let port = (port, tls);
                let i = match ports.iter().position(|(p, _)| *p == port) {
                    Some(i) => i,
                    None => {
                        ports.push((port, Vec::new()));
                        ports.len() - 1
                    }
                };
                for zone in zones {
                    if !ports[i].1.contains(&zone) {
                        ports[i].1.push(zone);
                    }
                }
            }
            Err(why) => out.refuse(&key.loc, &format!("server key {}", key.text), why),
        }
    }
    let mut zones: Vec<String> = Vec::new();
    for zone in ports.iter().flat_map(|(_, z)| z) {
        if !zones.contains(zone) {
            zones.push(zone.clone());
        }
    }
    let mut plan = plan(block, &zones, admin, out);
    match (tls_key, &plan.tls) {
        (Some(key), None) => {
            out.refuse(
                &key.loc,
                &format!("server key {}", key.text),
                "tls:// without the tls plugin: CoreDNS 1.11 serves unencrypted DNS over TCP on it; clusterdns needs tls CERT KEY",
            );
            ports.retain(|((_, tls), _)| !tls);
        }
        (None, Some((_, loc))) => {
            out.note(
                loc,
                "tls",
                "ignored, as by CoreDNS: no server key of the block is tls://",
            );
            plan.tls = None;
        }
        _ => {}
    }
    let mut groups: Vec<(Vec<Port>, Vec<String>)> = Vec::new();
    for (port, zones) in ports {
        match groups.iter_mut().find(|(_, z)| *z == zones) {
            Some((ps, _)) => ps.push(port),
            None => groups.push((vec![port], zones)),
        }
    }
    groups
        .iter()
        .map(|(ports, zones)| server_table(&plan, ports, zones, o))
        .collect()
}

fn server_table(plan: &Plan, ports: &[Port], zones: &[String], o: Options) -> Table {
    let hosts: Vec<String> = if plan.binds.is_empty() {
        let mut h = vec!["0.0.0.0".to_owned()];
        if o.ipv6 {
            h.push("[::]".to_owned());
        }
        h
    } else {
        plan.binds
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            })
            .collect()
    };
    let listen: Vec<String> = ports
        .iter()
        .flat_map(|(p, tls)| {
            let scheme = if *tls { "tls://" } else { "" };
            hosts.iter().map(move |h| format!("{scheme}{h}:{p}"))
        })
        .collect();
    let mut t = Table::new();
    t.insert("listen".into(), listen.into());
    if let Some((tls, _)) = &plan.tls
        && ports.iter().any(|(_, tls)| *tls)
    {
        t.insert("tls".into(), Value::Table(tls.clone()));
    }
    t.insert("zones".into(), zones.to_vec().into());
    t.insert("loadbalance".into(), plan.loadbalance.into());
    t.insert(
        "log".into(),
        plan.log.clone().unwrap_or(Value::Boolean(false)),
    );
    put_table(&mut t, "chaos", plan.chaos.as_ref());
    if let Some(size) = plan.max_udp_size {
        t.insert("max_udp_size".into(), i64::from(size).into());
    }
    put_table(
        &mut t,
        "kubernetes",
        plan.kubernetes.as_ref().map(|k| &k.table),
    );
    put_table(&mut t, "forward", plan.forward.as_ref());
    put_table(&mut t, "cache", plan.cache.as_ref());
    put_table(&mut t, "hosts", plan.hosts.as_ref());
    put_table(&mut t, "autopath", plan.autopath.as_ref());
    put_tables(&mut t, "rewrite", &plan.rewrite);
    put_tables(&mut t, "acl", &plan.acl);
    for (key, on) in [
        ("any", plan.any),
        ("minimal", plan.minimal),
        ("whoami", plan.whoami),
    ] {
        if on {
            t.insert(key.into(), Value::Boolean(true));
        }
    }
    put_table(&mut t, "k8s_external", plan.k8s_external.as_ref());
    put_tables(&mut t, "file", &plan.files);
    put_tables(&mut t, "template", &plan.templates);
    put_table(&mut t, "dns64", plan.dns64.as_ref());
    put_table(&mut t, "transfer", plan.transfer.as_ref());
    t
}

/// `key = { … }` when the block has that stage.
fn put_table(t: &mut Table, key: &str, table: Option<&Table>) {
    if let Some(table) = table {
        t.insert(key.into(), Value::Table(table.clone()));
    }
}

/// `[[key]]` tables, when the block has any.
fn put_tables(t: &mut Table, key: &str, tables: &[Table]) {
    if !tables.is_empty() {
        let list = tables.iter().cloned().map(Value::Table).collect();
        t.insert(key.into(), Value::Array(list));
    }
}

/// The block's directives, translated. `cache` comes last: whether its `disable` is already
/// true of clusterdns depends on the block's `kubernetes`, wherever that is written.
fn plan(block: &ServerBlock, zones: &[String], admin: &mut Admin, out: &mut Out) -> Plan {
    let mut plan = Plan::default();
    let (mut cache, mut autopath) = (None, None);
    for d in &block.directives {
        match d.name.as_str() {
            "cache" if cache.is_none() => cache = Some(d),
            "autopath" if autopath.is_none() => autopath = Some(d),
            "kubernetes" | "forward" | "proxy" | "cache" | "hosts" | "autopath"
            | "k8s_external" | "transfer" | "dns64"
                if twice(&plan, d, cache, autopath) =>
            {
                out.refuse(&d.loc, &d.name, "given twice in one server block");
            }
            "kubernetes" => plan.kubernetes = plugins::kubernetes(d, zones, out),
            "forward" | "proxy" => plan.forward = plugins::forward(d, zones, out),
            "hosts" => plan.hosts = plugins::hosts(d, zones, out),
            "rewrite" => plan.rewrite.extend(super::rewrite::rule(d, out)),
            "k8s_external" if plan.kubernetes.is_none() && !has_kubernetes(block, d) => {
                out.refuse(&d.loc, &d.name, "needs kubernetes in the same server block");
            }
            "k8s_external" => plan.k8s_external = plugins::k8s_external(d, zones, out),
            "template" => plan.templates.extend(super::template::template(d, out)),
            "file" => plan.files.extend(super::file::file(d, out)),
            "dns64" => plan.dns64 = super::dns64::dns64(d, out),
            "transfer" if plan.kubernetes.is_none() && !has_kubernetes(block, d) => {
                out.refuse(&d.loc, &d.name, "needs kubernetes in the same server block (the only zone clusterdns transfers)");
            }
            "transfer" => plan.transfer = super::transfer::transfer(d, out),
            "tls" if plan.tls.is_some() => {
                out.refuse(
                    &d.loc,
                    &d.name,
                    "given twice in one server block (CoreDNS: TLS already configured)",
                );
            }
            "tls" => plan.tls = super::tls::tls(d, out).map(|t| (t, d.loc.clone())),
            _ => directive(d, &mut plan, admin, out),
        }
    }
    if let Some(d) = cache {
        plan.cache = plugins::cache(d, zones, plan.kubernetes.as_ref(), out);
    }
    if let Some(d) = autopath {
        plan.autopath = super::autopath::autopath(d, plan.kubernetes.as_ref(), out);
    }
    plan
}

/// Is there a `kubernetes` directive in the block (before or after `d`)?
fn has_kubernetes(block: &ServerBlock, d: &Directive) -> bool {
    block
        .directives
        .iter()
        .any(|k| k.name == "kubernetes" && !std::ptr::eq(k, d))
}

fn twice(
    plan: &Plan,
    d: &Directive,
    cache: Option<&Directive>,
    autopath: Option<&Directive>,
) -> bool {
    match d.name.as_str() {
        "kubernetes" => plan.kubernetes.is_some(),
        "forward" | "proxy" => plan.forward.is_some(),
        "hosts" => plan.hosts.is_some(),
        "autopath" => autopath.is_some(),
        "k8s_external" => plan.k8s_external.is_some(),
        "transfer" => plan.transfer.is_some(),
        "dns64" => plan.dns64.is_some(),
        _ => cache.is_some(),
    }
}

/// The plugins that are a key or two, and those clusterdns does not implement.
fn directive(d: &Directive, plan: &mut Plan, admin: &mut Admin, out: &mut Out) {
    let name = d.name.as_str();
    match name {
        // clusterdns always logs errors and always probes for loops.
        "errors" if !d.args.is_empty() || !d.block.is_empty() => out.note(
            &d.loc,
            name,
            "options are not translated: every error is logged as it happens",
        ),
        "errors" | "loop" => {}
        "debug" => out.note(&d.loc, name, "ignored: set RUST_LOG=debug for debug logs"),
        "pprof" => out.note(
            &d.loc,
            name,
            "ignored: there is no Go profiler here (profile with perf; latency is in /metrics)",
        ),
        "health" => health(d, admin, out),
        "ready" => admin_addr(&mut admin.ready, d, ":8181", out),
        "prometheus" => admin_addr(&mut admin.metrics, d, "localhost:9153", out),
        "reload" => reload(d, admin, out),
        "loadbalance" => match (d.args.as_slice(), d.block.is_empty()) {
            ([], true) => plan.loadbalance = true,
            ([policy], true) if policy == "round_robin" => plan.loadbalance = true,
            _ => out.refuse(
                &d.loc,
                name,
                "only round_robin, without options, is implemented",
            ),
        },
        "log" => plan.log = Some(log(d, out)),
        "bind" => bind(d, plan, out),
        "bufsize" => plan.max_udp_size = bufsize(d, out),
        "chaos" => plan.chaos = Some(chaos(d, out)),
        "acl" => plan.acl.extend(super::acl::acl(d, out)),
        // CoreDNS's `any` reads no arguments and ignores whatever follows it.
        "any" if !d.args.is_empty() || !d.block.is_empty() => {
            out.note(&d.loc, name, "arguments are ignored, as by CoreDNS");
            plan.any = true;
        }
        "any" => plan.any = true,
        "minimal" | "whoami" if !d.args.is_empty() || !d.block.is_empty() => {
            out.refuse(
                &d.loc,
                name,
                "takes no arguments (CoreDNS does not start with them)",
            );
        }
        "minimal" => plan.minimal = true,
        "whoami" => plan.whoami = true,
        "federation" => out.refuse(
            &d.loc,
            name,
            "removed in CoreDNS 1.7 (it served kubefed DNS records); not implemented",
        ),
        _ => out.refuse(&d.loc, name, "plugin not implemented by clusterdns"),
    }
}

/// `chaos [VERSION] [AUTHORS…]`: without a version CoreDNS answers its own; clusterdns answers
/// its own too (noted).
fn chaos(d: &Directive, out: &mut Out) -> toml::Table {
    let mut t = toml::Table::new();
    match d.args.split_first() {
        Some((version, authors)) => {
            t.insert("version".into(), Value::String(version.clone()));
            if !authors.is_empty() {
                let authors = authors.iter().cloned().map(Value::String).collect();
                t.insert("authors".into(), Value::Array(authors));
            }
        }
        None => out.note(
            &d.loc,
            "chaos",
            "version.bind answers clusterdns's version, not CoreDNS's",
        ),
    }
    t
}

/// `log [NAMES…] [FORMAT] { class CLASSES… }`: the classes are kept; names other than the
/// root and a format are noted (clusterdns logs whole blocks, with its own fields).
fn log(d: &Directive, out: &mut Out) -> Value {
    if d.args.iter().any(|a| a != ".") {
        out.note(
            &d.loc,
            "log",
            "names and format are not translated: the whole block is logged, in clusterdns's format (client, name, type, rcode, size, duration)",
        );
    }
    let mut classes = Vec::new();
    for sub in &d.block {
        match sub.name.as_str() {
            "class" if !sub.args.is_empty() => {
                for class in &sub.args {
                    if ["success", "denial", "error", "all"].contains(&class.as_str()) {
                        classes.push(Value::String(class.clone()));
                    } else {
                        out.refuse(&sub.loc, "log", format!("unknown class {class:?}"));
                    }
                }
            }
            _ => out.refuse(&sub.loc, "log", format!("unknown option {:?}", sub.name)),
        }
    }
    if classes.is_empty() {
        Value::Boolean(true)
    } else {
        Value::Array(classes)
    }
}

fn health(d: &Directive, admin: &mut Admin, out: &mut Out) {
    admin_addr(&mut admin.health, d, ":8080", out);
    for o in &d.block {
        match (o.name.as_str(), o.args.as_slice()) {
            ("lameduck", [v]) => match go_duration(v) {
                Some(t) if t <= Duration::from_secs(300) => admin.lameduck = Some(t),
                _ => out.refuse(
                    &o.loc,
                    "health lameduck",
                    format!("{v:?}: a duration up to 300s"),
                ),
            },
            _ => out.refuse(
                &o.loc,
                &format!("health {}", o.name),
                "option not implemented",
            ),
        }
    }
}

/// `health`, `ready`, `prometheus`: one address each for the process.
fn admin_addr(slot: &mut Option<(String, Loc)>, d: &Directive, default: &str, out: &mut Out) {
    let word = match d.args.as_slice() {
        [] => default,
        [one] => one.as_str(),
        _ => return out.refuse(&d.loc, &d.name, "takes one address"),
    };
    if d.name != "health" && !d.block.is_empty() {
        return out.refuse(&d.loc, &d.name, "options are not implemented");
    }
    let addr = match listen_address(word) {
        Ok(a) => a,
        Err(why) => return out.refuse(&d.loc, &d.name, why),
    };
    match slot.as_ref() {
        Some((have, at)) if *have != addr => out.refuse(
            &d.loc,
            &d.name,
            format!("clusterdns serves it on one address for all blocks: {have} ({at}) and {addr} differ"),
        ),
        Some(_) => {}
        None => *slot = Some((addr, d.loc.clone())),
    }
}

/// `:8080` → `0.0.0.0:8080`, `localhost:9153` → `127.0.0.1:9153`, `ip:port` as is.
fn listen_address(word: &str) -> Result<String, String> {
    let addr = if let Some(port) = word.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = word.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        word.to_owned()
    };
    match addr.parse::<SocketAddr>() {
        Ok(a) => Ok(a.to_string()),
        Err(_) => Err(format!(
            "{word:?} is not an address to listen on (ip:port, [ipv6]:port or :port)"
        )),
    }
}

/// `reload [INTERVAL [JITTER]]`: the interval at which the Corefile and its imports are
/// compared (the jitter only spreads CoreDNS replicas' reads).
fn reload(d: &Directive, admin: &mut Admin, out: &mut Out) {
    let interval = match d.args.first() {
        None => Some(Duration::from_secs(30)),
        Some(word) => go_duration(word).filter(|t| *t >= Duration::from_secs(2)),
    };
    match interval {
        Some(t) if d.args.len() <= 2 && d.block.is_empty() => {
            admin.reload = Some(admin.reload.map_or(t, |r| r.min(t)));
        }
        _ => out.refuse(
            &d.loc,
            "reload",
            "expects [INTERVAL [JITTER]], INTERVAL at least 2s",
        ),
    }
}

/// `bufsize [SIZE]`: the largest UDP answer (CoreDNS's default SIZE is 1232, clusterdns's
/// `max_udp_size` default too, so only another size is written).
fn bufsize(d: &Directive, out: &mut Out) -> Option<u16> {
    let size = match d.args.as_slice() {
        [] => Some(1232),
        [n] => n.parse::<u16>().ok().filter(|n| (512..=4096).contains(n)),
        _ => None,
    };
    match size {
        Some(1232) => None,
        Some(n) => Some(n),
        None => {
            out.refuse(&d.loc, "bufsize", "expects one SIZE from 512 to 4096");
            None
        }
    }
}

/// `bind ADDRESS|INTERFACE… { except ADDRESS|INTERFACE… }`.
fn bind(d: &Directive, plan: &mut Plan, out: &mut Out) {
    if d.args.is_empty() {
        return out.refuse(&d.loc, "bind", "needs an address or an interface");
    }
    let mut except = Vec::new();
    for o in &d.block {
        match o.name.as_str() {
            "except" if !o.args.is_empty() => except.extend(resolve(&o.args, &o.loc, out)),
            _ => out.refuse(
                &o.loc,
                &format!("bind {}", o.name),
                "option not implemented",
            ),
        }
    }
    for ip in resolve(&d.args, &d.loc, out) {
        if !except.contains(&ip) && !plan.binds.contains(&ip) {
            plan.binds.push(ip);
        }
    }
}

fn resolve(words: &[String], loc: &Loc, out: &mut Out) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for word in words {
        match addresses_of(word) {
            Ok((found, skipped)) => {
                if skipped > 0 {
                    out.note(
                        loc,
                        "bind",
                        format!("{word}: link-local IPv6 addresses skipped"),
                    );
                }
                ips.extend(found);
            }
            Err(why) => out.refuse(loc, "bind", why),
        }
    }
    ips
}

/// An IP address, or the addresses of the interface so named (link-local IPv6 ones, which
/// need a scope, are skipped and counted).
fn addresses_of(word: &str) -> Result<(Vec<IpAddr>, usize), String> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Ok((vec![ip], 0));
    }
    let not_found =
        || format!("{word:?} is neither an IP address nor an interface of this machine");
    let interfaces = nix::ifaddrs::getifaddrs().map_err(|_| not_found())?;
    let (mut found, mut skipped, mut seen) = (Vec::new(), 0, false);
    for entry in interfaces.filter(|i| i.interface_name == word) {
        seen = true;
        let Some(addr) = entry.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            if v6.ip().is_unicast_link_local() {
                skipped += 1;
                continue;
            }
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        found.push(ip);
    }
    if seen {
        Ok((found, skipped))
    } else {
        Err(not_found())
    }
}

/// A server block key → its zones (a CIDR gives the reverse zones that cover it), port, and
/// whether it is `tls://` (DNS over TLS, port 853 by default).
pub(super) fn parse_key(key: &str) -> Result<(Vec<String>, u16, bool), String> {
    let (rest, tls) = match key.split_once("://") {
        None => (key, false),
        Some(("dns", rest)) => (rest, false),
        Some(("tls", rest)) => (rest, true),
        Some((scheme @ ("quic" | "grpc" | "https" | "https3" | "unix"), _)) => {
            return Err(format!(
                "{scheme}:// is not implemented: clusterdns serves DNS over UDP, TCP and TLS"
            ));
        }
        Some((scheme, _)) => return Err(format!("unknown scheme {scheme}://")),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((_, "")) => return Err("nothing after the last `:`".into()),
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("port {port} is out of range"))?;
            (host, port)
        }
        _ => (rest, if tls { 853 } else { 53 }),
    };
    if let Some(zones) = plugins::cidr_zones(host)? {
        return Ok((zones, port, tls));
    }
    Ok((vec![zone_of(host)], port, tls))
}

/// A zone as the config writes it: lower-case, no trailing dot, `.` for the root.
pub(super) fn zone_of(zone: &str) -> String {
    match zone.trim_end_matches('.') {
        "" => ".".to_owned(),
        z => z.to_ascii_lowercase(),
    }
}

/// Is `child` (normalised) `parent` or under it?
pub(super) fn covers(parent: &str, child: &str) -> bool {
    parent == "." || child == parent || child.ends_with(&format!(".{parent}"))
}

/// Go's `time.ParseDuration` for what Corefiles hold: `5s`, `1m30s`, `500ms`, `1.5h`, `0`.
pub(super) fn go_duration(text: &str) -> Option<Duration> {
    match text {
        "" => return None,
        "0" => return Some(Duration::ZERO),
        _ => {}
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|n| *n > 0)?;
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests;
