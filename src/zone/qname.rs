//! Query names relative to a cluster zone, parsed into the shapes the spec and CoreDNS define:
//! `[_port._proto. | endpoint.] service.namespace.(svc|pod)`, plus the apex names
//! `dns-version` and `ns.dns`. Works on borrowed, already lower-cased text: no allocation.

/// `svc` or `pod`: the second label from the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    Svc,
    Pod,
}

/// The shape of a name below a forward cluster zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape<'a> {
    /// The zone itself.
    Apex,
    /// `dns-version.<zone>`: the schema version TXT.
    DnsVersion,
    /// `dns.<zone>`: the empty parent of `ns.dns`.
    Dns,
    /// `ns.dns.<zone>`: the nameserver's address.
    NsDns,
    /// `svc.<zone>` or `pod.<zone>`.
    Branch(Branch),
    /// `<ns>.svc.<zone>` or `<ns>.pod.<zone>`.
    Namespace { branch: Branch, namespace: &'a str },
    /// A service (or, under `pod`, a pod address) with what is asked of it.
    Object {
        branch: Branch,
        namespace: &'a str,
        /// The service name, or under `pod` the dashed pod address.
        name: &'a str,
        /// `name.namespace`: the index key, borrowed from the query.
        key: &'a str,
        selector: Selector<'a>,
    },
    /// Anything else: NXDOMAIN.
    Invalid,
}

/// What a name asks of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    /// The service name itself.
    Service,
    /// `<endpoint>.<service>...`
    Endpoint(&'a str),
    /// `_<port>._<proto>.<service>...`, underscores stripped (CoreDNS also accepts them missing).
    Port { port: &'a str, protocol: &'a str },
}

/// Parses `rel`, the lower-cased query name with the zone and its dot removed (`""` at the apex).
pub fn parse(rel: &str) -> Shape<'_> {
    if rel.is_empty() {
        return Shape::Apex;
    }
    match rel {
        "dns-version" => return Shape::DnsVersion,
        "dns" => return Shape::Dns,
        "ns.dns" => return Shape::NsDns,
        _ => {}
    }
    // Walk labels from the right without allocating.
    let mut rest = rel;
    let mut next = || -> Option<(&str, usize)> {
        if rest.is_empty() {
            return None;
        }
        let (label, start) = match rest.rfind('.') {
            Some(dot) => (&rest[dot + 1..], dot + 1),
            None => (rest, 0),
        };
        rest = &rest[..start.saturating_sub(1)];
        Some((label, start))
    };
    let Some((branch, _)) = next() else {
        return Shape::Invalid;
    };
    let branch = match branch {
        "svc" => Branch::Svc,
        "pod" => Branch::Pod,
        _ => return Shape::Invalid,
    };
    let Some((namespace, ns_start)) = next() else {
        return Shape::Branch(branch);
    };
    let Some((name, name_start)) = next() else {
        return Shape::Namespace { branch, namespace };
    };
    let key = &rel[name_start..ns_start + namespace.len()];
    let first = next();
    let second = next();
    let selector = match (first, second, next()) {
        (None, _, _) => Selector::Service,
        (Some((endpoint, _)), None, _) => Selector::Endpoint(endpoint),
        (Some((protocol, _)), Some((port, _)), None) => Selector::Port {
            port: strip_underscore(port),
            protocol: strip_underscore(protocol),
        },
        _ => return Shape::Invalid,
    };
    Shape::Object {
        branch,
        namespace,
        name,
        key,
        selector,
    }
}

/// [`parse`] for a `multicluster` zone (CoreDNS ≥ 1.12): two labels left of a service are
/// `<endpoint>.<cluster>` unless either starts with `_` (then `_port._proto` as elsewhere).
/// The endpoint selector holds both labels, `hostname.clusterid`, as the index names an
/// imported endpoint.
pub fn parse_multicluster(rel: &str) -> Shape<'_> {
    let shape = parse(rel);
    if let Shape::Object {
        branch: Branch::Svc,
        namespace,
        name,
        key,
        selector: Selector::Port { .. },
    } = shape
    {
        // `rel` is `<first>.<second>.<key>.svc`.
        let prefix = &rel[..rel.len() - key.len() - ".svc".len() - 1];
        let underscored = prefix.split('.').any(|l| l.starts_with('_'));
        if !underscored {
            return Shape::Object {
                branch: Branch::Svc,
                namespace,
                name,
                key,
                selector: Selector::Endpoint(prefix),
            };
        }
    }
    shape
}

pub(crate) fn strip_underscore(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_name_shapes() {
        let svc = |key, name, namespace, selector| Shape::Object {
            branch: Branch::Svc,
            namespace,
            name,
            key,
            selector,
        };
        let cases: &[(&str, Shape<'_>)] = &[
            ("", Shape::Apex),
            ("svc", Shape::Branch(Branch::Svc)),
            ("pod", Shape::Branch(Branch::Pod)),
            ("dns-version", Shape::DnsVersion),
            ("ns.dns", Shape::NsDns),
            (
                "default.svc",
                Shape::Namespace {
                    branch: Branch::Svc,
                    namespace: "default",
                },
            ),
            (
                "web.default.svc",
                svc("web.default", "web", "default", Selector::Service),
            ),
            (
                "web-0.web.default.svc",
                svc("web.default", "web", "default", Selector::Endpoint("web-0")),
            ),
            (
                "_http._tcp.web.default.svc",
                svc(
                    "web.default",
                    "web",
                    "default",
                    Selector::Port {
                        port: "http",
                        protocol: "tcp",
                    },
                ),
            ),
            (
                "http.tcp.web.default.svc",
                svc(
                    "web.default",
                    "web",
                    "default",
                    Selector::Port {
                        port: "http",
                        protocol: "tcp",
                    },
                ),
            ),
            ("a.b.c.web.default.svc", Shape::Invalid),
            ("web.default.other", Shape::Invalid),
            ("other", Shape::Invalid),
            (
                "10-0-0-1.default.pod",
                Shape::Object {
                    branch: Branch::Pod,
                    namespace: "default",
                    name: "10-0-0-1",
                    key: "10-0-0-1.default",
                    selector: Selector::Service,
                },
            ),
        ];
        for (rel, want) in cases {
            assert_eq!(parse(rel), *want, "parse({rel:?})");
        }
    }

    #[test]
    fn multicluster_names_take_endpoint_and_cluster_unless_underscored() {
        let svc = |selector| Shape::Object {
            branch: Branch::Svc,
            namespace: "ns",
            name: "web",
            key: "web.ns",
            selector,
        };
        let port = |port, protocol| svc(Selector::Port { port, protocol });
        let cases: &[(&str, Shape<'_>)] = &[
            (
                "web-0.east.web.ns.svc",
                svc(Selector::Endpoint("web-0.east")),
            ),
            ("_http._tcp.web.ns.svc", port("http", "tcp")),
            ("_http.tcp.web.ns.svc", port("http", "tcp")),
            ("http._tcp.web.ns.svc", port("http", "tcp")),
            ("web-0.web.ns.svc", svc(Selector::Endpoint("web-0"))),
            ("web.ns.svc", svc(Selector::Service)),
            ("a.b.c.web.ns.svc", Shape::Invalid),
        ];
        for (rel, want) in cases {
            assert_eq!(
                parse_multicluster(rel),
                *want,
                "parse_multicluster({rel:?})"
            );
        }
    }
}
