//! `clusterdns_search_expansion_queries_total{namespace}`: cluster names that do not exist and
//! have the shape a resolver's search list makes (`<x>.<ns>.svc.<zone>`, `<x>.svc.<zone>`,
//! `<x>.<zone>`: everything but `pod.<zone>` names and the reverse zones), counted by the
//! namespace of the asking pod — known from the source address when pods are watched (one
//! ordinary pod at that address), else `unknown`. The first [`NAMESPACES`] namespaces seen get
//! a label of their own, later ones count as `other`: the series stay bounded.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::exposition::Page;
use crate::zone::ClusterZone;
use crate::zone::lookup::{best_zone, relative};

/// Namespaces with a label of their own.
pub const NAMESPACES: usize = 100;

/// The process's counts.
pub static SEARCH_EXPANSIONS: LazyLock<SearchExpansions> = LazyLock::new(SearchExpansions::default);

#[derive(Debug, Default)]
pub struct SearchExpansions {
    by_namespace: DashMap<Box<str>, AtomicU64>,
    /// Namespaces in `by_namespace` (its `len` would lock every shard on each count).
    labelled: AtomicUsize,
    other: AtomicU64,
    unknown: AtomicU64,
}

impl SearchExpansions {
    /// Counts an NXDOMAIN for `qname` (lower-case, no trailing dot) asked from `peer`, if it is
    /// a search expansion's shape.
    pub fn nxdomain(&self, zone: &ClusterZone, qname: &str, peer: IpAddr) {
        if !expansion_shape(zone, qname) {
            return;
        }
        let peer = peer.to_canonical();
        let counted = zone
            .index
            .sole_pod_namespace(peer, |namespace| self.count(namespace));
        if counted.is_none() {
            self.unknown.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count(&self, namespace: &str) {
        if let Some(n) = self.by_namespace.get(namespace) {
            n.fetch_add(1, Ordering::Relaxed);
        } else if self.labelled.load(Ordering::Relaxed) < NAMESPACES {
            match self.by_namespace.entry(namespace.into()) {
                Entry::Occupied(n) => {
                    n.get().fetch_add(1, Ordering::Relaxed);
                }
                Entry::Vacant(slot) => {
                    self.labelled.fetch_add(1, Ordering::Relaxed);
                    slot.insert(AtomicU64::new(1));
                }
            }
        } else {
            self.other.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn write(&self, page: &mut Page) {
        const NAME: &str = "clusterdns_search_expansion_queries_total";
        page.family(
            NAME,
            "counter",
            "Cluster names that do not exist, of the shapes search lists make, by the asking pod's namespace.",
        );
        let mut rows: Vec<(String, u64)> = self
            .by_namespace
            .iter()
            .map(|e| (e.key().to_string(), e.value().load(Ordering::Relaxed)))
            .collect();
        rows.sort();
        rows.push(("other".into(), self.other.load(Ordering::Relaxed)));
        rows.push(("unknown".into(), self.unknown.load(Ordering::Relaxed)));
        for (namespace, n) in rows {
            page.sample(NAME, &[("namespace", &namespace)], n as f64);
        }
    }
}

/// Under a forward cluster zone, not under `pod.<zone>`.
fn expansion_shape(zone: &ClusterZone, qname: &str) -> bool {
    let Some(matched) = best_zone(&zone.config.zones, qname) else {
        return false;
    };
    if crate::config::is_reverse_zone(matched) {
        return false;
    }
    let rel = relative(qname, matched);
    !rel.is_empty() && rel != "pod" && !rel.ends_with(".pod")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespaces_seen_first_get_labels_and_the_rest_count_as_other() {
        let counts = SearchExpansions::default();
        for i in 0..NAMESPACES {
            counts.count(&format!("ns{i}"));
        }
        counts.count("ns0");
        counts.count("late");
        counts.count("later");
        let mut page = Page::default();
        counts.write(&mut page);
        let text = page.finish();
        assert!(
            text.contains("clusterdns_search_expansion_queries_total{namespace=\"ns0\"} 2"),
            "{text}"
        );
        assert!(text.contains("{namespace=\"other\"} 2"), "{text}");
        assert!(!text.contains("namespace=\"late\""), "{text}");
        assert_eq!(counts.by_namespace.len(), NAMESPACES);
    }
}
