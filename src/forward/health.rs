//! Health checks, as CoreDNS's `forward` does them: a query that goes unanswered does not count
//! against its upstream, it only starts a check (`. IN NS`, any reply is healthy). Checks
//! repeat every `health_check` until one is answered; `max_fails` failed checks in a row mark
//! the upstream down, an answered one brings it back. "upstream down" and "upstream up" are
//! logged once per transition. With `max_fails = 0` no check runs and nothing is ever down.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Failure, Forwarder, Upstream, udp};
use crate::dns::{WireQuestion, query};

/// Bounds one check (CoreDNS: 1 s read timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// What one check found.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Healthy,
    Unhealthy,
    /// This host could not send it (out of descriptors): nothing learned about the upstream.
    Unknown,
}

impl Forwarder {
    /// A query to `upstream` went unanswered: check it, unless a check already runs.
    pub(super) fn suspect(self: &Arc<Self>, upstream: &Arc<Upstream>) {
        if self.config.max_fails == 0 || upstream.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (this, upstream) = (Arc::downgrade(self), upstream.clone());
        tokio::spawn(check_until_healthy(this, upstream));
    }

    /// One check of `upstream`: over TLS for a `tls://` one (as CoreDNS), over TCP when the
    /// forwarder is `force_tcp`.
    async fn check(&self, upstream: &Arc<Upstream>) -> Verdict {
        let probe = query::health_probe();
        let question = WireQuestion::of(&probe).expect("a question");
        let result = if self.config.force_tcp || upstream.is_tls() {
            match tokio::time::timeout(
                CHECK_TIMEOUT,
                upstream.over_stream(&probe, &question, self.config.expire),
            )
            .await
            {
                Ok(r) => r.map(drop),
                Err(_) => Err(Failure::Upstream("no reply".to_owned())),
            }
        } else {
            let targets = std::slice::from_ref(upstream);
            let deadline = Instant::now() + CHECK_TIMEOUT;
            udp::exchange(targets, &probe, &question, deadline, udp::FIRST_WINDOW, &())
                .await
                .map(drop)
        };
        match result {
            Ok(()) => Verdict::Healthy,
            Err(Failure::Upstream(e)) => {
                tracing::debug!(upstream = %upstream.addr, error = %e, "health check failed");
                Verdict::Unhealthy
            }
            Err(Failure::Local(e)) => {
                tracing::debug!(upstream = %upstream.addr, error = %e, "health check not sent");
                Verdict::Unknown
            }
        }
    }
}

/// Checks at once, then every `health_check` until a check is answered; stops when the
/// forwarder is gone (a reload replaced it).
async fn check_until_healthy(forwarder: Weak<Forwarder>, upstream: Arc<Upstream>) {
    loop {
        let Some(this) = forwarder.upgrade() else {
            return;
        };
        let max_fails = this.config.max_fails;
        match this.check(&upstream).await {
            Verdict::Healthy => {
                if upstream.fails.swap(0, Ordering::Relaxed) >= max_fails {
                    tracing::info!(upstream = %upstream.addr, "upstream up");
                }
                upstream.probing.store(false, Ordering::Release);
                return;
            }
            Verdict::Unhealthy => {
                upstream
                    .metrics
                    .healthcheck_failures
                    .fetch_add(1, Ordering::Relaxed);
                let fails = upstream.fails.fetch_add(1, Ordering::Relaxed) + 1;
                if fails == max_fails {
                    tracing::warn!(upstream = %upstream.addr, fails, "upstream down: health checks failed");
                }
            }
            Verdict::Unknown => {}
        }
        let interval = this.config.health_check;
        drop(this);
        tokio::time::sleep(interval).await;
    }
}
