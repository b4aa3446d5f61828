//! The zone tests' fixtures: a cluster written as manifests, built into a zone.

use std::path::Path;
use std::sync::Arc;

use super::{ClusterZone, Index, IndexOptions, ZoneConfig};
use crate::cluster::manifests::{Snapshot, parse_text};

/// An index of the objects in the YAML `fixtures` (which must read without a warning).
pub(crate) fn index_from(fixtures: &[&str], options: IndexOptions) -> Index {
    let mut snapshot = Snapshot::default();
    for (i, text) in fixtures.iter().enumerate() {
        parse_text(text, Path::new(&format!("fixture-{i}.yaml")), &mut snapshot);
    }
    assert!(snapshot.warnings.is_empty(), "{:?}", snapshot.warnings);
    let index = Index::new(options);
    index.apply(snapshot.into_events());
    index
}

/// A zone of `config` over the objects in the YAML `fixtures`.
pub(crate) fn zone_from(
    fixtures: &[&str],
    options: IndexOptions,
    config: ZoneConfig,
) -> ClusterZone {
    ClusterZone {
        config: Arc::new(config),
        index: Arc::new(index_from(fixtures, options)),
    }
}
