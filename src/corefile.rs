//! `clusterdns convert-corefile`: a CoreDNS Corefile translated into clusterdns's TOML, for the
//! plugins clusterdns implements. What cannot be translated is reported with its line.

use std::fmt::Write;

/// One directive: its name, arguments and nested block, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub line: usize,
    pub name: String,
    pub args: Vec<String>,
    pub block: Vec<Directive>,
}

/// A server block: its keys (`.:53`, `cluster.local:53`) and directives.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerBlock {
    pub line: usize,
    pub keys: Vec<String>,
    pub directives: Vec<Directive>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    Newline,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let mut chars = raw.chars().peekable();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut Vec<(usize, Token)>| {
            if !word.is_empty() {
                out.push((line, Token::Word(std::mem::take(word))));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' => break,
                '"' => {
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == '"' {
                            closed = true;
                            break;
                        }
                        word.push(q);
                    }
                    if !closed {
                        return Err(ParseError {
                            line,
                            message: "unterminated quote".into(),
                        });
                    }
                }
                '{' => {
                    flush(&mut word, &mut out);
                    out.push((line, Token::Open));
                }
                '}' => {
                    flush(&mut word, &mut out);
                    out.push((line, Token::Close));
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
        out.push((line, Token::Newline));
    }
    Ok(out)
}

/// Parses a Corefile into server blocks.
pub fn parse(text: &str) -> Result<Vec<ServerBlock>, ParseError> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let mut blocks = Vec::new();
    loop {
        while matches!(tokens.get(pos), Some((_, Token::Newline))) {
            pos += 1;
        }
        let Some((line, _)) = tokens.get(pos).cloned() else {
            return Ok(blocks);
        };
        let mut keys = Vec::new();
        while let Some((_, Token::Word(w))) = tokens.get(pos) {
            // Keys may be comma-separated or split over words.
            keys.extend(w.split(',').filter(|k| !k.is_empty()).map(str::to_owned));
            pos += 1;
        }
        match tokens.get(pos) {
            Some((_, Token::Open)) => pos += 1,
            _ => {
                return Err(ParseError {
                    line,
                    message: "expected `{` after the server block keys".into(),
                });
            }
        }
        let directives = parse_directives(&tokens, &mut pos, line)?;
        blocks.push(ServerBlock {
            line,
            keys,
            directives,
        });
    }
}

fn parse_directives(
    tokens: &[(usize, Token)],
    pos: &mut usize,
    open_line: usize,
) -> Result<Vec<Directive>, ParseError> {
    let mut out = Vec::new();
    loop {
        match tokens.get(*pos) {
            None => {
                return Err(ParseError {
                    line: open_line,
                    message: "`{` is never closed".into(),
                });
            }
            Some((_, Token::Newline)) => *pos += 1,
            Some((_, Token::Close)) => {
                *pos += 1;
                return Ok(out);
            }
            Some((line, Token::Open)) => {
                return Err(ParseError {
                    line: *line,
                    message: "unexpected `{`".into(),
                });
            }
            Some((line, Token::Word(name))) => {
                let (line, name) = (*line, name.clone());
                *pos += 1;
                let mut args = Vec::new();
                let mut block = Vec::new();
                loop {
                    match tokens.get(*pos) {
                        Some((_, Token::Word(w))) => {
                            args.push(w.clone());
                            *pos += 1;
                        }
                        Some((_, Token::Open)) => {
                            *pos += 1;
                            block = parse_directives(tokens, pos, line)?;
                            break;
                        }
                        _ => break,
                    }
                }
                out.push(Directive {
                    line,
                    name,
                    args,
                    block,
                });
            }
        }
    }
}

/// The translation: TOML text and the directives left untranslated (`line: reason`).
#[derive(Debug, Default)]
pub struct Conversion {
    pub toml: String,
    pub untranslated: Vec<String>,
}

#[derive(Debug, Default)]
struct Admin {
    health: Option<String>,
    ready: Option<String>,
    metrics: Option<String>,
    lameduck: Option<String>,
    reload: Option<String>,
}

/// CoreDNS's `:port` / `host:port` / duration words as TOML values.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `:8080` → `0.0.0.0:8080`; `localhost:9153` → `127.0.0.1:9153`.
fn admin_addr(word: Option<&String>, default: &str) -> String {
    let w = word.map_or(default, String::as_str);
    if let Some(port) = w.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = w.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        w.to_owned()
    }
}

/// A server key (`dns://cluster.local:5353`, `.:53`, `.`) → zone and port.
fn server_key(key: &str) -> (String, u16) {
    let key = key.strip_prefix("dns://").unwrap_or(key);
    match key.rsplit_once(':') {
        Some((zone, port)) if port.parse::<u16>().is_ok() => {
            (zone.to_owned(), port.parse().unwrap_or(53))
        }
        _ => (key.to_owned(), 53),
    }
}

fn zone_of(z: &str) -> String {
    if z == "." {
        ".".into()
    } else {
        z.trim_end_matches('.').to_ascii_lowercase()
    }
}

/// Converts parsed server blocks.
pub fn convert(blocks: &[ServerBlock]) -> Conversion {
    let mut conv = Conversion::default();
    let mut admin = Admin::default();
    let mut servers = String::new();
    for block in blocks {
        let mut zones = Vec::new();
        let mut port = 53;
        for key in &block.keys {
            let (zone, p) = server_key(key);
            zones.push(zone_of(&zone));
            port = p;
        }
        let mut binds: Vec<String> = Vec::new();
        let mut body = String::new();
        let mut sections = String::new();
        let mut loadbalance = false;
        let mut log = false;
        let mut skip = |d: &Directive, why: &str| {
            conv.untranslated.push(format!(
                "line {}: {} {}: {why}",
                d.line,
                d.name,
                d.args.join(" ")
            ));
        };
        for d in &block.directives {
            match d.name.as_str() {
                "errors" | "loop" => {} // always on in clusterdns
                "health" => {
                    admin.health = Some(admin_addr(d.args.first(), ":8080"));
                    for sub in &d.block {
                        match (sub.name.as_str(), sub.args.first()) {
                            ("lameduck", Some(v)) => admin.lameduck = Some(v.clone()),
                            _ => skip(sub, "unknown health option"),
                        }
                    }
                }
                "ready" => admin.ready = Some(admin_addr(d.args.first(), ":8181")),
                "prometheus" => admin.metrics = Some(admin_addr(d.args.first(), "localhost:9153")),
                "reload" => admin.reload = Some(d.args.first().cloned().unwrap_or("30s".into())),
                "loadbalance" => match d.args.first().map(String::as_str) {
                    None | Some("round_robin") => loadbalance = true,
                    Some(_) => skip(d, "only round_robin is implemented"),
                },
                "log" => {
                    if d.args.is_empty() && d.block.is_empty() {
                        log = true;
                    } else {
                        log = true;
                        skip(
                            d,
                            "log names and formats are not translated; logging every query",
                        );
                    }
                }
                "bind" => binds.extend(d.args.iter().cloned()),
                "kubernetes" => kubernetes(d, &mut sections, &mut skip),
                "forward" => forward(d, &zones, &mut sections, &mut skip),
                "cache" => cache(d, &mut sections, &mut skip),
                _ => skip(d, "plugin not implemented by clusterdns"),
            }
        }
        let listen: Vec<String> = if binds.is_empty() {
            vec![format!(":{port}")]
        } else {
            binds
                .iter()
                .map(|b| {
                    if b.contains(':') {
                        format!("[{b}]:{port}")
                    } else {
                        format!("{b}:{port}")
                    }
                })
                .collect()
        };
        let _ = writeln!(body, "[[server]]");
        let _ = writeln!(body, "listen      = {}", list(&listen));
        let _ = writeln!(body, "zones       = {}", list(&zones));
        let _ = writeln!(body, "loadbalance = {loadbalance}");
        let _ = writeln!(body, "log         = {log}");
        body.push_str(&sections);
        servers.push('\n');
        servers.push_str(&body);
    }
    let mut out =
        String::from("# Converted from a Corefile by `clusterdns convert-corefile`.\n\n[admin]\n");
    for (key, value) in [
        ("health", &admin.health),
        ("ready", &admin.ready),
        ("metrics", &admin.metrics),
        ("lameduck", &admin.lameduck),
        ("reload_interval", &admin.reload),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "{key} = {}", quote(v));
        }
    }
    if admin.reload.is_none() {
        // Without CoreDNS's `reload`, the file is read at start and on SIGHUP only.
        out.push_str("reload_interval = 0\n");
    }
    out.push_str(&servers);
    conv.toml = out;
    conv
}

fn kubernetes(d: &Directive, out: &mut String, skip: &mut impl FnMut(&Directive, &str)) {
    let _ = writeln!(out, "\n[server.kubernetes]");
    if !d.args.is_empty() {
        let zones: Vec<String> = d.args.iter().map(|z| zone_of(z)).collect();
        let _ = writeln!(out, "zones = {}", list(&zones));
    }
    let mut pods_set = false;
    for o in &d.block {
        let a = &o.args;
        match (o.name.as_str(), a.len()) {
            ("endpoint", 1) => {
                let _ = writeln!(out, "endpoint = {}", quote(&a[0]));
            }
            ("kubeconfig", 1) => {
                let _ = writeln!(out, "kubeconfig = {}", quote(&a[0]));
            }
            ("kubeconfig", 2) => {
                let _ = writeln!(
                    out,
                    "kubeconfig = {}\ncontext = {}",
                    quote(&a[0]),
                    quote(&a[1])
                );
            }
            ("namespaces", n) if n > 0 => {
                let _ = writeln!(out, "namespaces = {}", list(a));
            }
            ("labels", n) if n > 0 => {
                let _ = writeln!(out, "labels = {}", quote(&a.join(" ")));
            }
            ("pods", 1) if ["disabled", "insecure", "verified"].contains(&a[0].as_str()) => {
                pods_set = true;
                let _ = writeln!(out, "pods = {}", quote(&a[0]));
            }
            ("endpoint_pod_names", 0) => {
                let _ = writeln!(out, "endpoint_pod_names = true");
            }
            ("ttl", 1) if a[0].parse::<u32>().is_ok() => {
                let _ = writeln!(out, "ttl = {}", a[0]);
            }
            ("fallthrough", 0) => {
                let _ = writeln!(out, "fallthrough = [\".\"]");
            }
            ("fallthrough", _) => {
                let zones: Vec<String> = a.iter().map(|z| zone_of(z)).collect();
                let _ = writeln!(out, "fallthrough = {}", list(&zones));
            }
            ("ignore", 1) if a[0] == "empty_service" => {
                let _ = writeln!(out, "ignore_empty_service = true");
            }
            _ => skip(o, "kubernetes option not implemented"),
        }
    }
    if !pods_set {
        let _ = writeln!(out, "pods = \"disabled\"");
    }
}

fn forward(
    d: &Directive,
    zones: &[String],
    out: &mut String,
    skip: &mut impl FnMut(&Directive, &str),
) {
    let Some((from, to)) = d.args.split_first() else {
        skip(d, "forward needs FROM and TO");
        return;
    };
    if zone_of(from) != "." && !zones.contains(&zone_of(from)) {
        skip(
            d,
            "FROM narrower than the server block: give it a [[server]] block of its own",
        );
        return;
    }
    let _ = writeln!(out, "\n[server.forward]");
    let to: Vec<String> = to
        .iter()
        .map(|t| t.strip_prefix("dns://").unwrap_or(t).to_owned())
        .collect();
    let _ = writeln!(out, "to = {}", list(&to));
    for o in &d.block {
        let a = &o.args;
        match (o.name.as_str(), a.len()) {
            ("except", n) if n > 0 => {
                let zones: Vec<String> = a.iter().map(|z| zone_of(z)).collect();
                let _ = writeln!(out, "except = {}", list(&zones));
            }
            ("force_tcp", 0) => {
                let _ = writeln!(out, "force_tcp = true");
            }
            ("prefer_udp", 0) => {
                let _ = writeln!(out, "prefer_udp = true");
            }
            ("expire", 1) => {
                let _ = writeln!(out, "expire = {}", quote(&a[0]));
            }
            ("max_fails", 1) if a[0].parse::<u32>().is_ok() => {
                let _ = writeln!(out, "max_fails = {}", a[0]);
            }
            ("max_concurrent", 1) if a[0].parse::<u32>().is_ok() => {
                let _ = writeln!(out, "max_concurrent = {}", a[0]);
            }
            ("health_check", 1) => {
                let _ = writeln!(out, "health_check = {}", quote(&a[0]));
            }
            ("policy", 1) if ["random", "round_robin", "sequential"].contains(&a[0].as_str()) => {
                let _ = writeln!(out, "policy = {}", quote(&a[0]));
            }
            _ => skip(o, "forward option not implemented"),
        }
    }
}

fn cache(d: &Directive, out: &mut String, skip: &mut impl FnMut(&Directive, &str)) {
    let _ = writeln!(out, "\n[server.cache]");
    match d.args.first() {
        Some(ttl) if ttl.parse::<u32>().is_ok() => {
            let _ = writeln!(out, "max_ttl = {ttl}\nnegative_max_ttl = {ttl}");
            if d.args.len() > 1 {
                skip(
                    d,
                    "per-zone caching is not implemented; the cache covers the block",
                );
            }
        }
        Some(_) => skip(
            d,
            "per-zone caching is not implemented; the cache covers the block",
        ),
        None => {}
    }
    for o in &d.block {
        let a = &o.args;
        match (o.name.as_str(), a.len()) {
            ("success", n) if (1..=3).contains(&n) => {
                let _ = writeln!(out, "capacity = {}", a[0]);
                if let Some(t) = a.get(1) {
                    let _ = writeln!(out, "max_ttl = {t}");
                }
                if let Some(t) = a.get(2) {
                    let _ = writeln!(out, "min_ttl = {t}");
                }
            }
            ("denial", n) if (1..=3).contains(&n) => {
                if let Some(t) = a.get(1) {
                    let _ = writeln!(out, "negative_max_ttl = {t}");
                }
            }
            ("prefetch", n) if n >= 1 => {
                let _ = writeln!(out, "prefetch = {}", a[0]);
            }
            ("serve_stale", _) => {
                let age = a.first().map_or("1h", String::as_str);
                let _ = writeln!(out, "serve_stale = {}", quote(age));
            }
            ("servfail", 1) => {
                let seconds = a[0].trim_end_matches('s');
                let _ = writeln!(out, "servfail_ttl = {seconds}");
            }
            _ => skip(o, "cache option not implemented"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const KUBEADM: &str = include_str!("../deploy/coredns/Corefile.kubeadm");

    #[test]
    fn the_kubeadm_corefile_converts_completely() {
        let blocks = parse(KUBEADM).unwrap();
        assert_eq!(blocks.len(), 1);
        let c = convert(&blocks);
        assert!(c.untranslated.is_empty(), "{:?}", c.untranslated);
        assert!(c.toml.contains("listen      = [\":53\"]"), "{}", c.toml);
        assert!(
            c.toml
                .contains("fallthrough = [\"in-addr.arpa\", \"ip6.arpa\"]")
        );
        assert!(c.toml.contains("to = [\"/etc/resolv.conf\"]"));
        assert!(c.toml.contains("max_ttl = 30"));
    }

    #[test]
    fn unknown_plugins_are_reported_with_their_line() {
        let blocks =
            parse(".:53 {\n  rewrite name a b\n  hosts {\n    1.2.3.4 x\n  }\n}\n").unwrap();
        let c = convert(&blocks);
        assert_eq!(c.untranslated.len(), 2, "{:?}", c.untranslated);
        assert!(c.untranslated[0].starts_with("line 2: rewrite"));
        assert!(c.untranslated[1].starts_with("line 3: hosts"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            parse(".:53 {\n  cache 30\n").unwrap_err(),
            ParseError {
                line: 1,
                message: "`{` is never closed".into()
            }
        );
        assert_eq!(parse("x y\n").unwrap_err().line, 1);
    }
}
