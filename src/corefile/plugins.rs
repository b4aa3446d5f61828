//! The plugins with sections of their own: `kubernetes`, `forward` (and the legacy `proxy`),
//! `cache`, `hosts`; and CIDR keys.

use std::net::IpAddr;
use std::time::Duration;

use toml::{Table, Value};

use super::convert::{Out, covers, duration_value, go_duration, zone_of};
use super::grammar::Directive;

/// `[server.kubernetes]`, with the zones it answers and those it lets fall through (what a
/// `cache { disable … }` is checked against).
#[derive(Debug, Clone, PartialEq)]
pub struct Kube {
    pub table: Table,
    pub zones: Vec<String>,
    pub fallthrough: Vec<String>,
}

fn put(t: &mut Table, key: &str, value: impl Into<Value>) {
    t.insert(key.to_owned(), value.into());
}

/// Zones as arguments name them: names, or CIDRs as the reverse zones covering them.
pub(super) fn zones_of(args: &[String]) -> Result<Vec<String>, String> {
    let mut zones = Vec::new();
    for arg in args {
        match cidr_zones(arg)? {
            Some(reverse) => zones.extend(reverse),
            None => zones.push(zone_of(arg)),
        }
    }
    Ok(zones)
}

pub fn kubernetes(d: &Directive, block_zones: &[String], out: &mut Out) -> Option<Kube> {
    let zones = if d.args.is_empty() {
        block_zones.to_vec()
    } else {
        match zones_of(&d.args) {
            Ok(z) => z,
            Err(why) => {
                out.refuse(&d.loc, "kubernetes", why);
                return None;
            }
        }
    };
    if zones.iter().any(|z| z == ".") {
        out.refuse(
            &d.loc,
            "kubernetes",
            "the root zone cannot be a cluster zone: name the cluster domain (kubernetes cluster.local …)",
        );
        return None;
    }
    let mut kube = Kube {
        table: Table::new(),
        zones: zones.clone(),
        fallthrough: Vec::new(),
    };
    put(&mut kube.table, "zones", zones);
    for o in &d.block {
        kubernetes_option(o, &mut kube, out);
    }
    Some(kube)
}

fn kubernetes_option(o: &Directive, kube: &mut Kube, out: &mut Out) {
    let t = &mut kube.table;
    let a = o.args.as_slice();
    match (o.name.as_str(), a) {
        ("endpoint", [url]) => put(t, "endpoint", url.as_str()),
        ("kubeconfig", [file]) => put(t, "kubeconfig", file.as_str()),
        ("kubeconfig", [file, context]) => {
            put(t, "kubeconfig", file.as_str());
            put(t, "context", context.as_str());
        }
        ("namespaces", [_, ..]) => put(t, "namespaces", a.to_vec()),
        ("labels", [_, ..]) => put(t, "labels", a.join(" ")),
        ("pods", [mode]) if ["disabled", "insecure", "verified"].contains(&mode.as_str()) => {
            put(t, "pods", mode.as_str());
        }
        ("endpoint_pod_names", []) => put(t, "endpoint_pod_names", true),
        ("ttl", [n]) if n.parse::<u32>().is_ok_and(|n| n <= 3600) => {
            put(t, "ttl", n.parse::<i64>().unwrap_or(5));
        }
        ("fallthrough", _) => match zones_of(a) {
            Ok(z) => {
                kube.fallthrough = if z.is_empty() { vec![".".into()] } else { z };
                put(t, "fallthrough", kube.fallthrough.clone());
            }
            Err(why) => out.refuse(&o.loc, "kubernetes fallthrough", why),
        },
        ("ignore", [what]) if what == "empty_service" => put(t, "ignore_empty_service", true),
        ("noendpoints", []) => put(t, "endpoints", false),
        // CoreDNS takes no zones as none (not the block's): nothing is multicluster then.
        ("multicluster", []) => out.note(
            &o.loc,
            "kubernetes multicluster",
            "no zones given: no multicluster zone, as in CoreDNS",
        ),
        ("multicluster", _) => match zones_of(a) {
            Ok(z) => match z.iter().find(|m| !kube.zones.contains(m)) {
                // CoreDNS does not start: "is not authoritative for the multicluster zone".
                Some(m) => out.refuse(
                    &o.loc,
                    "kubernetes multicluster",
                    format!("{m} is not one of the plugin's zones {:?}", kube.zones),
                ),
                None => put(t, "multicluster", z),
            },
            Err(why) => out.refuse(&o.loc, "kubernetes multicluster", why),
        },
        ("startup_timeout", [d]) => match go_duration(d) {
            Some(d) => put(t, "startup_timeout_secs", d.as_secs_f64().ceil() as i64),
            None => out.refuse(
                &o.loc,
                "kubernetes startup_timeout",
                format!("{d:?}: not a duration"),
            ),
        },
        ("upstream", _) => out.note(
            &o.loc,
            "kubernetes upstream",
            "ignored, as by CoreDNS since 1.7: CNAME targets are resolved by the client",
        ),
        ("resyncperiod", _) => out.note(
            &o.loc,
            "kubernetes resyncperiod",
            "ignored, as by CoreDNS since 1.7: watches keep the state current",
        ),
        (name, _) => out.refuse(
            &o.loc,
            &format!("kubernetes {name}"),
            "option not implemented or wrong arguments",
        ),
    }
}

/// `forward FROM TO… { options }`, or the legacy `proxy FROM TO… { options }` (removed in
/// CoreDNS 1.6) as the same.
pub fn forward(d: &Directive, block_zones: &[String], out: &mut Out) -> Option<Table> {
    let legacy = d.name == "proxy";
    let Some((from, to)) = d.args.split_first().filter(|(_, to)| !to.is_empty()) else {
        out.refuse(&d.loc, &d.name, "needs FROM and at least one TO");
        return None;
    };
    let from = zone_of(from);
    let narrower = !block_zones.iter().all(|z| covers(&from, z));
    let mut upstreams = Vec::new();
    for t in to {
        let t = t.strip_prefix("dns://").unwrap_or(t);
        match t.split_once("://") {
            Some(("tls", _)) if !legacy => {}
            Some((scheme, _)) => {
                out.refuse(
                    &d.loc,
                    &d.name,
                    format!("{scheme}:// upstreams are not implemented: plain DNS and tls:// only"),
                );
                return None;
            }
            None => {}
        }
        upstreams.push(t.to_owned());
    }
    let any_tls = upstreams.iter().any(|t| t.starts_with("tls://"));
    let mut table = Table::new();
    put(&mut table, "to", upstreams);
    if narrower {
        put(&mut table, "from", from);
    }
    if legacy {
        out.note(
            &d.loc,
            "proxy",
            "removed in CoreDNS 1.6: translated as forward",
        );
    }
    for o in &d.block {
        forward_option(o, legacy, &mut table, out);
    }
    if !any_tls {
        drop_tls_keys(&mut table, d, out);
    }
    Some(table)
}

/// CoreDNS gives its TLS settings to `tls://` upstreams only: without one they do nothing.
fn drop_tls_keys(table: &mut Table, d: &Directive, out: &mut Out) {
    let keys = ["tls_servername", "tls_ca", "tls_cert", "tls_key"];
    let mut dropped = false;
    for key in keys {
        dropped |= table.remove(key).is_some();
    }
    if dropped {
        out.note(
            &d.loc,
            "forward tls",
            "ignored, as by CoreDNS: no upstream is tls://",
        );
    }
}

/// `tls [CERT KEY [CA]]`: none, the system roots; one, the CA; two, a client certificate and
/// key; three, both. A relative path is read from the config file's directory.
fn forward_tls(o: &Directive, t: &mut Table, out: &mut Out) {
    let keys: &[&str] = match o.args.len() {
        0 => &[],
        1 => &["tls_ca"],
        2 => &["tls_cert", "tls_key"],
        _ => &["tls_cert", "tls_key", "tls_ca"],
    };
    for (key, path) in keys.iter().zip(&o.args) {
        if !path.starts_with('/') {
            out.note(
                &o.loc,
                "forward tls",
                format!("{path:?} is read from the config file's directory (CoreDNS: the root directive's, else its working directory)"),
            );
        }
        put(t, key, path.as_str());
    }
}

fn forward_option(o: &Directive, legacy: bool, t: &mut Table, out: &mut Out) {
    let a = o.args.as_slice();
    let subject = format!("{} {}", if legacy { "proxy" } else { "forward" }, o.name);
    let duration = |word: &str| go_duration(word).filter(|d| !d.is_zero());
    match (o.name.as_str(), a) {
        ("except", [_, ..]) => put(
            t,
            "except",
            a.iter().map(|z| zone_of(z)).collect::<Vec<_>>(),
        ),
        ("force_tcp", []) if !legacy => put(t, "force_tcp", true),
        ("prefer_udp", []) if !legacy => put(t, "prefer_udp", true),
        ("expire", [d]) if !legacy && duration(d.as_str()).is_some() => {
            put(
                t,
                "expire",
                duration_value(duration(d.as_str()).unwrap_or_default()),
            );
        }
        ("max_fails", [n]) if n.parse::<u32>().is_ok() => {
            put(t, "max_fails", n.parse::<i64>().unwrap_or(2))
        }
        ("max_concurrent", [n]) if !legacy && n.parse::<u32>().is_ok() => {
            put(t, "max_concurrent", n.parse::<i64>().unwrap_or(0));
        }
        ("health_check", [d]) if !legacy && duration(d.as_str()).is_some() => {
            put(
                t,
                "health_check",
                duration_value(duration(d.as_str()).unwrap_or_default()),
            );
        }
        ("policy", [p]) if ["random", "round_robin", "sequential"].contains(&p.as_str()) => {
            put(t, "policy", p.as_str());
        }
        ("policy", [p]) if legacy && p == "first" => put(t, "policy", "sequential"),
        ("fail_timeout" | "health_check", _) if legacy => {
            out.note(
                &o.loc,
                &subject,
                "ignored: upstreams are health-checked with DNS queries",
            );
        }
        ("protocol", [p]) if legacy && p == "dns" => {}
        ("tls", a) if !legacy && a.len() <= 3 => forward_tls(o, t, out),
        ("tls_servername", [name]) if !legacy => put(t, "tls_servername", name.as_str()),
        _ => out.refuse(
            &o.loc,
            &subject,
            "option not implemented or wrong arguments",
        ),
    }
}

/// `hosts [FILE [ZONES…]] { INLINE…; ttl; no_reverse; reload; fallthrough [ZONES…] }`. Without
/// FILE CoreDNS reads /etc/hosts, so the TOML names it. An inline line CoreDNS would skip (no
/// address, no name) is left out with a note, and so is a name outside the zones.
pub fn hosts(d: &Directive, block_zones: &[String], out: &mut Out) -> Option<Table> {
    let mut table = Table::new();
    let (file, zone_args) = d
        .args
        .split_first()
        .map_or(("/etc/hosts", &[][..]), |(f, z)| (f.as_str(), z));
    if !file.starts_with('/') {
        out.note(
            &d.loc,
            "hosts",
            format!("{file:?} is read from the config file's directory (CoreDNS: its working directory or root)"),
        );
    }
    put(&mut table, "file", file);
    let zones = match zones_of(zone_args) {
        Ok(z) if z.is_empty() => block_zones.to_vec(),
        Ok(z) => {
            put(&mut table, "zones", z.clone());
            z
        }
        Err(why) => {
            out.refuse(&d.loc, "hosts", why);
            return None;
        }
    };
    // As the config holds them: the root is "".
    let zones: Vec<String> = zones
        .into_iter()
        .map(|z| if z == "." { String::new() } else { z })
        .collect();
    let mut entries = Vec::new();
    let mut fallthrough = false;
    for o in &d.block {
        match hosts_option(o, &mut table, out) {
            Some(true) => fallthrough = true,
            Some(false) => {}
            // CoreDNS takes any other line as an entry until `fallthrough`, and fails after.
            None if fallthrough => out.refuse(
                &o.loc,
                &format!("hosts {}", o.name),
                "unknown property: CoreDNS does not start with it",
            ),
            None => entries.extend(hosts_entry(o, &zones, out)),
        }
    }
    if !entries.is_empty() {
        put(&mut table, "entries", entries);
    }
    Some(table)
}

/// `k8s_external [ZONES…] { apex APEX; ttl TTL; headless; fallthrough [ZONES…] }`.
pub fn k8s_external(d: &Directive, block_zones: &[String], out: &mut Out) -> Option<Table> {
    let mut table = Table::new();
    let zones = if d.args.is_empty() {
        block_zones.to_vec()
    } else {
        d.args.iter().map(|z| zone_of(z)).collect()
    };
    put(&mut table, "zones", zones);
    for o in &d.block {
        let a = o.args.as_slice();
        let subject = format!("k8s_external {}", o.name);
        match (o.name.as_str(), a) {
            ("apex", [apex, ..]) => put(&mut table, "apex", apex.trim_end_matches('.')),
            ("ttl", [ttl, ..]) => match ttl.parse::<i64>() {
                Ok(n) if (0..=3600).contains(&n) => put(&mut table, "ttl", n),
                _ => out.refuse(&o.loc, &subject, "expects SECONDS from 0 to 3600"),
            },
            ("headless", _) => put(&mut table, "headless", true),
            ("fallthrough", zones) => {
                let zones: Vec<String> = zones.iter().map(|z| zone_of(z)).collect();
                let all = vec![".".to_owned()];
                put(
                    &mut table,
                    "fallthrough",
                    if zones.is_empty() { all } else { zones },
                );
            }
            ("apex" | "ttl", []) => out.refuse(&o.loc, &subject, "expects an argument"),
            _ => out.refuse(
                &o.loc,
                &subject,
                "unknown property: CoreDNS does not start with it",
            ),
        }
    }
    Some(table)
}

/// A `hosts` option: `Some(true)` for `fallthrough`, `Some(false)` for another, `None` when
/// the line is not an option (an inline entry).
fn hosts_option(o: &Directive, t: &mut Table, out: &mut Out) -> Option<bool> {
    let a = o.args.as_slice();
    let subject = format!("hosts {}", o.name);
    match o.name.as_str() {
        "ttl" => match a.first().and_then(|n| n.parse::<i64>().ok()) {
            Some(n) if (1..=65_535).contains(&n) => put(t, "ttl", n),
            _ => out.refuse(&o.loc, &subject, "expects SECONDS from 1 to 65535"),
        },
        "no_reverse" => put(t, "no_reverse", true),
        "reload" => match a {
            [d] if go_duration(d).is_some() => {
                put(
                    t,
                    "reload",
                    duration_value(go_duration(d).unwrap_or_default()),
                );
            }
            _ => out.refuse(&o.loc, &subject, "expects one DURATION (0 disables)"),
        },
        "fallthrough" => match zones_of(a) {
            Ok(z) => {
                put(
                    t,
                    "fallthrough",
                    if z.is_empty() { vec![".".into()] } else { z },
                );
                return Some(true);
            }
            Err(why) => out.refuse(&o.loc, &subject, why),
        },
        _ => return None,
    }
    Some(false)
}

/// An inline line, as the config takes it: its names outside the zones left out.
fn hosts_entry(o: &Directive, zones: &[String], out: &mut Out) -> Option<String> {
    let words: Vec<&str> = std::iter::once(o.name.as_str())
        .chain(o.args.iter().map(String::as_str))
        .collect();
    let mut kept = vec![words[0]];
    for name in &words[1..] {
        let line = format!("{} {name}", words[0]);
        match crate::plugins::hosts::check_entry(&line, zones) {
            Ok(_) => kept.push(name),
            Err(why) if words.len() > 1 && why.contains("none of the hosts zones") => {
                out.note(
                    &o.loc,
                    "hosts",
                    format!("{name} left out, as CoreDNS leaves it out: {why}"),
                );
            }
            Err(why) => {
                out.note(
                    &o.loc,
                    "hosts",
                    format!("line left out, as CoreDNS skips it: {why}"),
                );
                return None;
            }
        }
    }
    if kept.len() == 1 {
        out.note(
            &o.loc,
            "hosts",
            format!(
                "line {:?} left out, as CoreDNS skips it: not ADDRESS NAME…",
                words.join(" ")
            ),
        );
        return None;
    }
    Some(kept.join(" "))
}

/// CoreDNS's cache defaults: 10000 entries each for answers and denials, TTLs of at least 5 s.
const CAPACITY: u64 = 10_000;
const MIN_TTL: u32 = 5;

/// `success` / `denial`: CAPACITY [TTL [MINTTL]].
#[derive(Debug, Default)]
struct Class {
    capacity: Option<u64>,
    ttl: Option<u32>,
    min: Option<u32>,
}

impl Class {
    fn parse(args: &[String]) -> Option<Class> {
        let (cap, rest) = args.split_first()?;
        if rest.len() > 2 {
            return None;
        }
        let ttl = rest
            .first()
            .map(|t| t.parse::<u32>().ok().filter(|t| *t > 0));
        let min = rest.get(1).map(|t| t.parse::<u32>().ok());
        Some(Class {
            capacity: Some(cap.parse().ok()?),
            ttl: ttl.map(|t| t.ok_or(())).transpose().ok()?,
            min: min.map(|t| t.ok_or(())).transpose().ok()?,
        })
    }
}

/// `cache [TTL] [ZONES…] { … }`. `kube` is the block's cluster zone: cluster answers are never
/// cached, so disabling the cache for names it answers is already so.
pub fn cache(d: &Directive, zones: &[String], kube: Option<&Kube>, out: &mut Out) -> Option<Table> {
    let (ttl, cached) = match cache_args(&d.args, zones) {
        Ok(args) => args,
        Err(why) => {
            out.refuse(&d.loc, "cache", why);
            return None;
        }
    };
    let (mut success, mut denial) = (Class::default(), Class::default());
    let mut table = Table::new();
    if !cached.is_empty() {
        put(&mut table, "zones", cached);
    }
    for o in &d.block {
        let subject = format!("cache {}", o.name);
        match o.name.as_str() {
            "success" | "denial" => match Class::parse(&o.args) {
                Some(c) if o.name == "success" => success = c,
                Some(c) => denial = c,
                None => out.refuse(&o.loc, &subject, "expects CAPACITY [TTL [MINTTL]]"),
            },
            "disable" => disable(o, kube, &mut table, out),
            _ => cache_option(o, &subject, &mut table, out),
        }
    }
    if success.capacity.is_some() || denial.capacity.is_some() {
        let total = success.capacity.unwrap_or(CAPACITY) + denial.capacity.unwrap_or(CAPACITY);
        put(
            &mut table,
            "capacity",
            i64::try_from(total).unwrap_or(i64::MAX),
        );
    }
    if let Some(t) = success.ttl.or(ttl) {
        put(&mut table, "max_ttl", i64::from(t));
    }
    if let Some(t) = denial.ttl.or(ttl) {
        put(&mut table, "negative_max_ttl", i64::from(t));
    }
    // CoreDNS's MINTTL default is 5 for both classes.
    if success.min.is_some() || denial.min.is_some() {
        put(
            &mut table,
            "min_ttl",
            i64::from(success.min.unwrap_or(MIN_TTL)),
        );
        put(
            &mut table,
            "negative_min_ttl",
            i64::from(denial.min.unwrap_or(MIN_TTL)),
        );
    }
    Some(table)
}

/// `[TTL] [ZONES…]`: the TTL and the zones cached, empty when they cover the whole block.
fn cache_args(args: &[String], zones: &[String]) -> Result<(Option<u32>, Vec<String>), String> {
    let (ttl, rest) = match args.split_first() {
        Some((first, rest)) if first.bytes().all(|b| b.is_ascii_digit()) => {
            match first.parse::<u32>() {
                Ok(t) if t > 0 => (Some(t), rest),
                _ => return Err(format!("TTL {first} must be from 1 to 4294967295")),
            }
        }
        _ => (None, args),
    };
    let cached = zones_of(rest)?;
    if cached.is_empty() || zones.iter().all(|z| cached.iter().any(|c| covers(c, z))) {
        Ok((ttl, Vec::new()))
    } else {
        Ok((ttl, cached))
    }
}

/// `disable success|denial [ZONES…]`: the forwarded names under ZONES are not cached for that
/// class (the cluster zone's names never are).
fn disable(o: &Directive, kube: Option<&Kube>, table: &mut Table, out: &mut Out) {
    let (what, zones) = match o.args.split_first() {
        Some((what, zones)) if what == "success" || what == "denial" => (what, zones_of(zones)),
        _ => return out.refuse(&o.loc, "cache disable", "expects success|denial [ZONES…]"),
    };
    let zones = match zones {
        Ok(z) if z.is_empty() => vec![".".to_owned()],
        Ok(z) => z,
        Err(why) => return out.refuse(&o.loc, "cache disable", why),
    };
    let answered = |z: &String| {
        kube.is_some_and(|k| {
            k.zones.iter().any(|kz| covers(kz, z))
                && !k.fallthrough.iter().any(|f| covers(f, z) || covers(z, f))
        })
    };
    // Zones the cluster answers alone need nothing: their answers never enter the cache. A
    // later `disable` of the same class replaces an earlier one, as in CoreDNS.
    let key = format!("disable_{what}");
    let forwarded: Vec<String> = zones.into_iter().filter(|z| !answered(z)).collect();
    if forwarded.is_empty() {
        table.remove(&key);
    } else {
        put(table, &key, forwarded);
    }
}

fn cache_option(o: &Directive, subject: &str, t: &mut Table, out: &mut Out) {
    let a = o.args.as_slice();
    match (o.name.as_str(), a) {
        ("prefetch", [amount, rest @ ..]) if amount.parse::<u32>().is_ok() && rest.len() <= 2 => {
            put(t, "prefetch", amount.parse::<i64>().unwrap_or(0));
            let default = [Some("1m"), Some("10%")];
            if rest
                .iter()
                .zip(default)
                .any(|(given, d)| Some(given.as_str()) != d)
            {
                out.note(&o.loc, subject, "DURATION and PERCENTAGE are not translated: an entry hit AMOUNT times is refreshed in the last 10% of its TTL");
            }
        }
        ("serve_stale", [] | [_] | [_, _]) => {
            let age = a
                .first()
                .map_or(Some(Duration::from_secs(3600)), |w| go_duration(w));
            let Some(age) = age else {
                return out.refuse(&o.loc, subject, "expects [DURATION [REFRESH_MODE]]");
            };
            put(t, "serve_stale", duration_value(age));
            if a.get(1).map(String::as_str) != Some("verify") {
                out.note(&o.loc, subject, "served as REFRESH_MODE verify: a stale entry is served only when every upstream fails");
            }
        }
        ("servfail", [d]) => match go_duration(d).filter(|d| *d <= Duration::from_secs(300)) {
            Some(d) => put(t, "servfail_ttl", d.as_secs_f64().ceil() as i64),
            None => out.refuse(&o.loc, subject, "expects a DURATION up to 5m"),
        },
        ("keepttl", []) => put(t, "keepttl", true),
        _ => out.refuse(&o.loc, subject, "option not implemented or wrong arguments"),
    }
}

/// A CIDR (`10.2.0.0/15`) as the reverse zones that cover it, split at octet (IPv4) or nibble
/// (IPv6) boundaries as CoreDNS does; `None` when `text` is not a CIDR.
pub fn cidr_zones(text: &str) -> Result<Option<Vec<String>>, String> {
    let Some((ip, len)) = text.split_once('/') else {
        return Ok(None);
    };
    let (Ok(ip), Ok(len)) = (ip.parse::<IpAddr>(), len.parse::<u32>()) else {
        return Ok(None);
    };
    if text.starts_with(':') || (text.starts_with('0') && text.contains(':')) {
        return Err(format!("invalid CIDR {text}"));
    }
    let (bits, width, step, suffix) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32, 8, "in-addr.arpa"),
        IpAddr::V6(v6) => (u128::from(v6), 128, 4, "ip6.arpa"),
    };
    if len > width {
        return Err(format!("invalid CIDR {text}: prefix longer than {width}"));
    }
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len) >> (128 - width)
    };
    let network = bits & mask;
    let digits = len.div_ceil(step);
    let count = 1u128 << (digits * step - len);
    let zones = (0..count)
        .map(|i| {
            let net = network | i.checked_shl(width - digits * step).unwrap_or(0);
            let mut labels: Vec<String> = (0..digits)
                .rev()
                .map(|n| {
                    let digit = (net >> (width - (n + 1) * step)) & ((1 << step) - 1);
                    if step == 8 {
                        digit.to_string()
                    } else {
                        format!("{digit:x}")
                    }
                })
                .collect();
            labels.push(suffix.to_owned());
            labels.join(".")
        })
        .collect();
    Ok(Some(zones))
}
