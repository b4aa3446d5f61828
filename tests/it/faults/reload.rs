//! Fault scenarios: a config edit while the Kubernetes API is away.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::{Proto, Server, TempDir, http_get, query};
use crate::kube_api::{FakeApi, eventually};

fn config(api: &FakeApi, kubernetes_extra: &str) -> String {
    format!(
        "[admin]\nready = \"127.0.0.1:0\"\nreload_interval = \"200ms\"\n\
         [[server]]\nlisten = [\"127.0.0.1:0\"]\nzones = [\".\"]\n\
         [server.kubernetes]\nendpoint = \"http://{}\"\npods = \"insecure\"\n{kubernetes_extra}\n",
        api.addr
    )
}

fn ttl_of(m: &Message) -> Option<u32> {
    m.answers.first().map(|r| r.ttl)
}

const FRONTEND: &str = "frontend.shop.svc.cluster.local.";
const POSTGRES: &str = "postgres.data.svc.cluster.local.";

#[tokio::test]
async fn a_config_edit_during_an_api_outage_keeps_every_answer() {
    let api = FakeApi::start();
    let dir = TempDir::new();
    let path = dir.write("clusterdns.toml", &config(&api, "ttl = 5"));
    let s = Server::spawn(dir, &path);
    eventually(&s, FRONTEND, Duration::from_secs(20), "served", |m| {
        ttl_of(m) == Some(5)
    })
    .await;
    let ready = s.admin_for("/ready");

    api.control("fail", r#"{"status":500}"#);
    // Only the TTL changes: the index and its watchers stay, the new TTL is served at once.
    s.dir.write("clusterdns.toml", &config(&api, "ttl = 17"));
    eventually(&s, FRONTEND, Duration::from_secs(20), "the new TTL", |m| {
        m.metadata.response_code == ResponseCode::NoError && ttl_of(m) == Some(17)
    })
    .await;
    assert_eq!(
        http_get(ready, "/ready").0,
        200,
        "ready while the API is away"
    );

    // What the index holds changes: the new source cannot sync while the API is away, so the
    // old index keeps serving (every namespace), for longer than the startup timeout.
    s.dir.write(
        "clusterdns.toml",
        &config(
            &api,
            "ttl = 17\nnamespaces = [\"shop\"]\nstartup_timeout_secs = 1",
        ),
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        for name in [FRONTEND, POSTGRES] {
            let m = query(s.addr, name, RecordType::A, Proto::Udp).await;
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{name} after {:?}\nstderr:\n{}",
                start.elapsed(),
                s.stderr()
            );
        }
        assert_eq!(http_get(ready, "/ready").0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        s.stderr().contains("waits for its new cluster source"),
        "{}",
        s.stderr()
    );

    // The API is back: the new source syncs and the reload applies (only `shop` now).
    api.control("recover", "");
    eventually(
        &s,
        POSTGRES,
        Duration::from_secs(30),
        "NXDOMAIN outside the namespaces",
        |m| m.metadata.response_code == ResponseCode::NXDomain,
    )
    .await;
    let m = query(s.addr, FRONTEND, RecordType::A, Proto::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(http_get(ready, "/ready").0, 200);
}
