//! A cluster-zone lookup allocates nothing: counted with a wrapping global allocator.
//! (A test binary of its own, so no other test's allocations are counted.)

use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::RecordType;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use clusterdns::cluster::manifests::{Snapshot, parse_text};
use clusterdns::config::PodMode;
use clusterdns::zone::records::BuildOptions;
use clusterdns::zone::{AnswerBuf, ClusterZone, Index, IndexOptions, ZoneConfig, lookup};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn demo_zone() -> ClusterZone {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-cluster");
    let mut snapshot = Snapshot::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        parse_text(
            &std::fs::read_to_string(&file).unwrap(),
            &file,
            &mut snapshot,
        );
    }
    let index = Arc::new(Index::new(IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: false,
        },
        namespaces: Vec::new(),
        track_pods: false,
    }));
    index.apply(snapshot.into_events());
    ClusterZone {
        config: Arc::new(ZoneConfig {
            zones: vec![
                "cluster.local".into(),
                "in-addr.arpa".into(),
                "ip6.arpa".into(),
            ],
            primary: "cluster.local".into(),
            ttl: 5,
            pods: PodMode::Insecure,
            fallthrough: Vec::new(),
            ignore_empty_service: false,
            own_addrs: vec!["127.0.0.1".parse().unwrap()],
        }),
        index,
    }
}

#[test]
fn cluster_zone_lookups_allocate_nothing() {
    let zone = demo_zone();
    let queries: &[(&str, RecordType)] = &[
        ("frontend.shop.svc.cluster.local", RecordType::A),
        ("frontend.shop.svc.cluster.local", RecordType::AAAA),
        ("postgres.data.svc.cluster.local", RecordType::A),
        ("postgres-0.postgres.data.svc.cluster.local", RecordType::A),
        (
            "_postgres._tcp.postgres.data.svc.cluster.local",
            RecordType::SRV,
        ),
        ("storefront.shop.svc.cluster.local", RecordType::A),
        ("nosuch.shop.svc.cluster.local", RecordType::A),
        (
            "frontend.shop.svc.cluster.local.shop.svc.cluster.local",
            RecordType::A,
        ),
        ("10.0.96.10.in-addr.arpa", RecordType::PTR),
        ("10-244-1-10.shop.pod.cluster.local", RecordType::A),
        ("cluster.local", RecordType::SOA),
    ];
    let mut out = AnswerBuf::default();
    // Warm up: the reused buffers grow to their working size once.
    for (name, qtype) in queries {
        lookup(&zone, name, *qtype, &mut out);
    }
    let mut answered = 0;
    let region = Region::new(GLOBAL);
    for _ in 0..100 {
        for (name, qtype) in queries {
            lookup(&zone, name, *qtype, &mut out);
            answered += out.answers.len();
        }
    }
    let stats = region.change();
    assert!(answered > 500, "the lookups answered: {answered}");
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "allocations during 1100 lookups: {stats:?}"
    );
}
