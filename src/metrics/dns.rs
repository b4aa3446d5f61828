//! Per-listener request metrics under CoreDNS's names and labels
//! (`coredns_dns_requests_total`, `…_responses_total`, `…_request_duration_seconds`,
//! `…_request_size_bytes`, `…_response_size_bytes`).
//!
//! Every label combination is a slot in a flat array of atomics fixed when the listener is set
//! up, so counting a query is a handful of relaxed atomic adds: no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::exposition::Page;
use super::{Histogram, LATENCY_BUCKETS, SIZE_BUCKETS};
use crate::dns::Transport;
use crate::dns::name::zone_label;

/// Query types CoreDNS reports by name; the rest are `other`.
const TYPES: &[(u16, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (13, "HINFO"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (50, "NSEC3"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
];
const OTHER_TYPE: usize = TYPES.len();
const TYPE_SLOTS: usize = TYPES.len() + 1;

const RCODES: &[&str] = &[
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
    "BADVERS",
];
const RCODE_SLOTS: usize = 17;

/// Which part of the server wrote the response (CoreDNS's `plugin` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Plugin {
    /// Written by the server itself (FORMERR, REFUSED, NOTIMP, …): CoreDNS leaves it empty.
    None = 0,
    Kubernetes = 1,
    Cache = 2,
    Forward = 3,
    Loop = 4,
    Chaos = 5,
    Hosts = 6,
    K8sExternal = 7,
    Template = 8,
    File = 9,
}
const PLUGINS: &[&str] = &[
    "",
    "kubernetes",
    "cache",
    "forward",
    "loop",
    "chaos",
    "hosts",
    "k8s_external",
    "template",
    "file",
];

impl Plugin {
    /// The `plugin` label (`""` for the server itself).
    pub fn label(self) -> &'static str {
        PLUGINS[self as usize]
    }
}

/// What the handler learned about one query, for counting it.
#[derive(Debug, Clone, Copy)]
pub struct QueryReport {
    /// Index into the listener's zone labels (the last one is `dropped`).
    pub zone: usize,
    pub qtype: u16,
    /// An extended rcode the handler set (BADVERS); otherwise read from the response header.
    pub rcode: u16,
    pub plugin: Plugin,
    /// The block asks for a query log line.
    pub log: crate::config::LogClasses,
}

impl Default for QueryReport {
    fn default() -> Self {
        QueryReport {
            zone: usize::MAX,
            qtype: 0,
            rcode: 0,
            plugin: Plugin::None,
            log: crate::config::LogClasses::default(),
        }
    }
}

#[derive(Debug)]
pub struct DnsMetrics {
    /// `dns://ip:port`, as CoreDNS labels its servers.
    pub server: String,
    /// Zone labels (`cluster.local.`, `.`), then `dropped` for queries no block serves.
    zones: Vec<String>,
    /// [zone][proto][family][type]
    requests: Vec<AtomicU64>,
    /// [zone][rcode][plugin]
    responses: Vec<AtomicU64>,
    /// [zone][type]
    duration: Vec<Histogram>,
    /// [zone][proto]
    request_size: Vec<Histogram>,
    response_size: Vec<Histogram>,
}

/// The rcode a response carries: the handler's extended one, else the header's four bits.
pub fn response_rcode(report: &QueryReport, response: &[u8]) -> u16 {
    if report.rcode > 15 {
        report.rcode
    } else {
        response.get(3).map_or(0, |b| u16::from(b & 0x0f))
    }
}

/// The name of an rcode as CoreDNS's labels and logs spell it.
pub fn rcode_name(rcode: u16) -> &'static str {
    RCODES.get(usize::from(rcode)).copied().unwrap_or("RCODE")
}

/// The name of a query type for labels and logs.
pub fn type_name(qtype: u16) -> &'static str {
    type_label(type_slot(qtype))
}

fn type_slot(qtype: u16) -> usize {
    TYPES
        .iter()
        .position(|(t, _)| *t == qtype)
        .unwrap_or(OTHER_TYPE)
}

fn type_label(slot: usize) -> &'static str {
    TYPES.get(slot).map_or("other", |(_, n)| n)
}

fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl DnsMetrics {
    /// `zones` as configured (lower-case, no trailing dot, `""` for the root).
    pub fn new(server: String, zones: &[String]) -> DnsMetrics {
        let mut labels: Vec<String> = zones.iter().map(|z| zone_label(z)).collect();
        labels.dedup();
        labels.push("dropped".into());
        let z = labels.len();
        DnsMetrics {
            server,
            requests: counters(z * 2 * 2 * TYPE_SLOTS),
            responses: counters(z * RCODE_SLOTS * PLUGINS.len()),
            duration: (0..z * TYPE_SLOTS)
                .map(|_| Histogram::new(LATENCY_BUCKETS))
                .collect(),
            request_size: (0..z * 2)
                .map(|_| Histogram::of_units(SIZE_BUCKETS))
                .collect(),
            response_size: (0..z * 2)
                .map(|_| Histogram::of_units(SIZE_BUCKETS))
                .collect(),
            zones: labels,
        }
    }

    /// Would `new` with these zones give the same labels (so counters can carry over)?
    pub fn same_zones(&self, zones: &[String]) -> bool {
        DnsMetrics::new(String::new(), zones).zones == self.zones
    }

    /// The label index of a configured zone (as given to `new`); `dropped` if unknown.
    pub fn zone_index(&self, zone: &str) -> usize {
        let label = if zone.is_empty() {
            ".".to_owned()
        } else {
            format!("{zone}.")
        };
        self.zones
            .iter()
            .position(|z| *z == label)
            .unwrap_or(self.zones.len() - 1)
    }

    /// Counts one query and its response.
    pub fn observe(
        &self,
        report: &QueryReport,
        proto: Transport,
        ipv6: bool,
        request_len: usize,
        response: Option<&[u8]>,
        elapsed: Duration,
    ) {
        let zone = report.zone.min(self.zones.len() - 1);
        let proto = match proto {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        let t = type_slot(report.qtype);
        let family = usize::from(ipv6);
        self.requests[((zone * 2 + proto) * 2 + family) * TYPE_SLOTS + t]
            .fetch_add(1, Ordering::Relaxed);
        self.request_size[zone * 2 + proto].observe(request_len as f64);
        if let Some(response) = response {
            let len = response.len();
            let rcode = usize::from(response_rcode(report, response)).min(RCODE_SLOTS - 1);
            self.responses[(zone * RCODE_SLOTS + rcode) * PLUGINS.len() + report.plugin as usize]
                .fetch_add(1, Ordering::Relaxed);
            self.response_size[zone * 2 + proto].observe(len as f64);
            self.duration[zone * TYPE_SLOTS + t].observe(elapsed.as_secs_f64());
        }
    }

    /// Writes the families' HELP/TYPE lines (once for all listeners).
    pub fn write_headers(page: &mut Page, family: &str) {
        let (kind, help) = match family {
            "coredns_dns_requests_total" => (
                "counter",
                "Counter of DNS requests made per zone, protocol and family.",
            ),
            "coredns_dns_responses_total" => ("counter", "Counter of response status codes."),
            "coredns_dns_request_duration_seconds" => (
                "histogram",
                "Histogram of the time (in seconds) each request took.",
            ),
            "coredns_dns_request_size_bytes" => (
                "histogram",
                "Size of the EDNS0 UDP buffer in bytes (64K for TCP).",
            ),
            "coredns_dns_response_size_bytes" => {
                ("histogram", "Size of the returned response in bytes.")
            }
            _ => ("untyped", ""),
        };
        page.family(family, kind, help);
    }

    /// The names of the families this writes, in order.
    pub const FAMILIES: &'static [&'static str] = &[
        "coredns_dns_requests_total",
        "coredns_dns_responses_total",
        "coredns_dns_request_duration_seconds",
        "coredns_dns_request_size_bytes",
        "coredns_dns_response_size_bytes",
    ];

    /// Writes this listener's samples of one family (non-zero series only, as CoreDNS does).
    pub fn write(&self, page: &mut Page, family: &str) {
        let s = self.server.as_str();
        let protos = ["udp", "tcp"];
        for (zi, zone) in self.zones.iter().enumerate() {
            let z = zone.as_str();
            match family {
                "coredns_dns_requests_total" => {
                    for (p, proto) in protos.iter().enumerate() {
                        for fam in 0..2 {
                            for t in 0..TYPE_SLOTS {
                                let n = self.requests[((zi * 2 + p) * 2 + fam) * TYPE_SLOTS + t]
                                    .load(Ordering::Relaxed);
                                if n > 0 {
                                    let family_label = if fam == 0 { "1" } else { "2" };
                                    page.sample(
                                        family,
                                        &[
                                            ("server", s),
                                            ("zone", z),
                                            ("view", ""),
                                            ("proto", proto),
                                            ("family", family_label),
                                            ("type", type_label(t)),
                                        ],
                                        n as f64,
                                    );
                                }
                            }
                        }
                    }
                }
                "coredns_dns_responses_total" => {
                    for (r, rcode) in RCODES.iter().enumerate() {
                        for (pi, plugin) in PLUGINS.iter().enumerate() {
                            let n = self.responses[(zi * RCODE_SLOTS + r) * PLUGINS.len() + pi]
                                .load(Ordering::Relaxed);
                            if n > 0 {
                                page.sample(
                                    family,
                                    &[
                                        ("server", s),
                                        ("zone", z),
                                        ("view", ""),
                                        ("rcode", rcode),
                                        ("plugin", plugin),
                                    ],
                                    n as f64,
                                );
                            }
                        }
                    }
                }
                "coredns_dns_request_duration_seconds" => {
                    for t in 0..TYPE_SLOTS {
                        let snap = self.duration[zi * TYPE_SLOTS + t].snapshot();
                        if snap.count > 0 {
                            page.histogram(
                                family,
                                &[
                                    ("server", s),
                                    ("zone", z),
                                    ("view", ""),
                                    ("type", type_label(t)),
                                ],
                                &snap,
                            );
                        }
                    }
                }
                "coredns_dns_request_size_bytes" | "coredns_dns_response_size_bytes" => {
                    let hs = if family == "coredns_dns_request_size_bytes" {
                        &self.request_size
                    } else {
                        &self.response_size
                    };
                    for (p, proto) in protos.iter().enumerate() {
                        let snap = hs[zi * 2 + p].snapshot();
                        if snap.count > 0 {
                            page.histogram(
                                family,
                                &[("server", s), ("zone", z), ("view", ""), ("proto", proto)],
                                &snap,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_lands_in_its_labels() {
        let m = DnsMetrics::new(
            "dns://127.0.0.1:53".into(),
            &["cluster.local".into(), "".into()],
        );
        let report = QueryReport {
            zone: m.zone_index("cluster.local"),
            qtype: 28,
            rcode: 0,
            plugin: Plugin::Kubernetes,
            log: crate::config::LogClasses::default(),
        };
        let response = [0u8, 0, 0x81, 0x83];
        m.observe(
            &report,
            Transport::Udp,
            false,
            40,
            Some(&response),
            Duration::from_millis(1),
        );
        m.observe(
            &report,
            Transport::Udp,
            false,
            40,
            Some(&response),
            Duration::from_millis(1),
        );
        let mut page = Page::default();
        for f in DnsMetrics::FAMILIES {
            DnsMetrics::write_headers(&mut page, f);
            m.write(&mut page, f);
        }
        let text = page.finish();
        assert!(text.contains("coredns_dns_requests_total{server=\"dns://127.0.0.1:53\",zone=\"cluster.local.\",view=\"\",proto=\"udp\",family=\"1\",type=\"AAAA\"} 2\n"), "{text}");
        assert!(text.contains("coredns_dns_responses_total{server=\"dns://127.0.0.1:53\",zone=\"cluster.local.\",view=\"\",rcode=\"NXDOMAIN\",plugin=\"kubernetes\"} 2\n"), "{text}");
        assert!(
            !text.contains("zone=\".\""),
            "zero series are not written: {text}"
        );
        assert_eq!(m.zone_index("nowhere"), 2);
    }
}
