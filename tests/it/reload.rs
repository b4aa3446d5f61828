//! The manifests source: bad objects are skipped, file changes are picked up while serving.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::harness::{Proto, Server, lines, query};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n";
const WEB: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: app}\nspec: {clusterIP: 10.1.0.1}\n";

#[tokio::test]
async fn malformed_objects_are_skipped_with_a_warning_and_the_rest_is_served() {
    let bad = "apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: app}\nspec: {clusterIP: 10.1.0.999}\n";
    let s = Server::with_manifests(
        &[
            ("ns.yaml", NS),
            ("svc.yaml", &format!("{bad}---\n{WEB}")),
            ("junk.yml", "{ not: [valid"),
        ],
        "",
    );
    let m = query(
        s.addr,
        "web.app.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(
        lines(&m.answers),
        ["web.app.svc.cluster.local. 5 IN A 10.1.0.1"]
    );
    let m = query(
        s.addr,
        "broken.app.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let log = s.stderr();
    assert!(
        log.contains("svc.yaml: Service app/broken: skipped"),
        "{log}"
    );
    assert!(log.contains("junk.yml"), "{log}");
}

/// Polls until `check` holds, for at most 10 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn changed_files_are_reloaded_without_a_restart() {
    let s = Server::with_manifests(&[("ns.yaml", NS), ("web.yaml", WEB)], "");
    let addr = s.addr;
    let m = query(
        addr,
        "web.app.svc.cluster.local.",
        RecordType::A,
        Proto::Udp,
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    // Add a service and change another: both visible shortly after.
    let dir = s.manifests_dir().to_owned();
    std::fs::write(dir.join("api.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: app}\nspec: {clusterIP: 10.1.0.2}\n").unwrap();
    std::fs::write(dir.join("web.yaml"), WEB.replace("10.1.0.1", "10.1.0.9")).unwrap();
    eventually("the new service resolves", async || {
        let m = query(
            addr,
            "api.app.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        m.answers.len() == 1
    })
    .await;
    eventually("the changed service has its new address", async || {
        let m = query(
            addr,
            "web.app.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        lines(&m.answers) == ["web.app.svc.cluster.local. 5 IN A 10.1.0.9"]
    })
    .await;
    // Removing a file removes its objects.
    std::fs::remove_file(dir.join("api.yaml")).unwrap();
    eventually("the removed service is gone", async || {
        let m = query(
            addr,
            "api.app.svc.cluster.local.",
            RecordType::A,
            Proto::Udp,
        )
        .await;
        m.metadata.response_code == ResponseCode::NXDomain
    })
    .await;
}
