//! The forwarder's share of this process's file descriptors, and which socket errors are ours.
//!
//! Every upstream socket (UDP attempt, TCP connection, idle or busy) holds a [`Permit`]; the
//! permits are counted process-wide against a budget derived from the soft `RLIMIT_NOFILE`
//! (`/proc/self/limits`) less a reserve for listeners, client TCP connections, the admin
//! server, manifests and logs. Past the budget an attempt fails locally at once instead of the
//! kernel's `EMFILE` taking the listeners' `accept` down with it.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Failure;

/// Descriptors left to the rest of the process.
const RESERVE: usize = 256;

/// Upstream sockets open now, every forwarder together.
static OPEN: AtomicUsize = AtomicUsize::new(0);
static BUDGET: OnceLock<usize> = OnceLock::new();

/// One upstream socket's place in the budget, given back on drop.
#[derive(Debug)]
pub(super) struct Permit(());

impl Permit {
    pub(super) fn take() -> Result<Permit, Failure> {
        let budget = budget();
        if OPEN.fetch_add(1, Ordering::Relaxed) >= budget {
            OPEN.fetch_sub(1, Ordering::Relaxed);
            return Err(Failure::Local(format!(
                "all {budget} upstream sockets in use (descriptor limit)"
            )));
        }
        Ok(Permit(()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many upstream sockets may be open at once.
pub(super) fn budget() -> usize {
    *BUDGET.get_or_init(|| {
        std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| soft_nofile(&text))
            .map_or(usize::MAX, budget_for)
    })
}

/// The budget under a soft descriptor limit of `soft`.
fn budget_for(soft: usize) -> usize {
    soft.saturating_sub(RESERVE).max(soft / 2)
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text (`usize::MAX` for unlimited).
fn soft_nofile(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

/// An I/O error as a failure: out of descriptors, buffers, memory or local ports is this
/// host's problem ([`Failure::Local`]); anything else (refused, reset, unreachable) is the
/// upstream's.
pub(super) fn classify(what: &str, e: &io::Error) -> Failure {
    let text = format!("{what}: {e}");
    if is_local(e) {
        Failure::Local(text)
    } else {
        Failure::Upstream(text)
    }
}

fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::EADDRNOTAVAIL
                | libc::EADDRINUSE
        )
    ) || e.kind() == io::ErrorKind::OutOfMemory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63356                63356                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(soft_nofile(text), Some(1024));
        let text = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(soft_nofile(text), Some(usize::MAX));
        assert_eq!(soft_nofile("Max processes 10 10 processes\n"), None);
        assert_eq!(
            soft_nofile(&std::fs::read_to_string("/proc/self/limits").unwrap()).map(|n| n > 0),
            Some(true)
        );
    }

    #[test]
    fn the_budget_leaves_a_reserve() {
        assert_eq!(budget_for(1024), 768);
        assert_eq!(budget_for(300), 150);
        assert_eq!(budget_for(1_048_576), 1_048_320);
        assert_eq!(budget_for(usize::MAX), usize::MAX - RESERVE);
    }

    #[test]
    fn running_out_of_descriptors_is_local_and_a_refusal_is_the_upstream() {
        let local = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(matches!(classify("udp socket", &local), Failure::Local(_)));
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert!(matches!(
            classify("udp receive", &refused),
            Failure::Upstream(_)
        ));
    }
}
