//! The request pipeline: a server block's plugins as an ordered list of stages, built once
//! from config in CoreDNS's `plugin.cfg` order (whatever order the config lists them in).
//!
//! A stage sees the parsed request and answers ([`Flow::Records`], [`Flow::Rcode`],
//! [`Flow::Written`], [`Flow::Pending`]) or passes on ([`Flow::Next`]). Stages before the one
//! that answered see its records on the way back ([`Pipeline::run`]), as CoreDNS plugins see
//! what the next ones wrote. A plugin that is not configured is not in the list, so it costs
//! nothing. `rewrite` answers [`Flow::Rewritten`]: the caller resumes the stages after it with
//! the new question ([`Pipeline::resume`]).

pub mod cache;
pub mod chaos;
pub mod forward;
pub mod hosts;
pub mod kubernetes;
pub mod loadbalance;
pub mod log;
pub mod loop_detect;
pub mod rewrite;

use std::sync::Arc;

use crate::dns::Request;
use crate::dns::writer::MessageWriter;
use crate::forward::LoopProbes;
use crate::metrics::dns::QueryReport;
use crate::zone::{AnswerBuf, ClusterZone, SoaValues};

pub use forward::{Pending, Resolver};

/// CoreDNS's `plugin.cfg` order, restricted to the plugins clusterdns has. `cache` wraps
/// `forward` (see [`cache`]) rather than standing before `kubernetes`.
pub const ORDER: [&str; 9] = [
    "log",
    "chaos",
    "loadbalance",
    "cache",
    "rewrite",
    "hosts",
    "kubernetes",
    "loop",
    "forward",
];

/// One configured plugin.
#[derive(Debug, Clone)]
pub enum Stage {
    Log(crate::config::LogClasses),
    Chaos(chaos::Chaos),
    LoadBalance,
    Rewrite(rewrite::Rewrite),
    Hosts(hosts::Hosts),
    Kubernetes(kubernetes::Kubernetes),
    Loop(Arc<LoopProbes>),
    Forward(forward::Forward),
}

impl Stage {
    /// The plugin's name, as in [`ORDER`].
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Log(_) => "log",
            Stage::Chaos(_) => "chaos",
            Stage::LoadBalance => "loadbalance",
            Stage::Rewrite(_) => "rewrite",
            Stage::Hosts(_) => "hosts",
            Stage::Kubernetes(_) => "kubernetes",
            Stage::Loop(_) => "loop",
            Stage::Forward(_) => "forward",
        }
    }
}

/// The plugins a block is configured with, before they are put in order.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    pub log: crate::config::LogClasses,
    pub chaos: Option<chaos::Chaos>,
    pub loadbalance: bool,
    pub rewrite: Option<rewrite::Rewrite>,
    pub hosts: Option<hosts::Hosts>,
    pub kubernetes: Option<ClusterZone>,
    /// Forward, with the cache when one is configured.
    pub forward: Option<Arc<Resolver>>,
    /// Where loop probes are recognised (the process-wide set); used with `forward`.
    pub loops: Option<Arc<LoopProbes>>,
}

/// What a stage decided.
pub enum Flow {
    /// Not this stage's: the next one decides.
    Next,
    /// Records in [`Work::answer`], to be written as an authoritative answer.
    Records(Records),
    /// This rcode and no records.
    Rcode(u16),
    /// The whole response is in the writer's buffer (a cache hit).
    Written,
    /// `answers` records already encoded in [`Work::encoded`] (owners pointing at the
    /// question), with this rcode.
    Encoded { rcode: u16, answers: usize },
    /// The answer waits for an upstream.
    Pending(Box<Pending>),
    /// `rewrite` changed the question ([`Work::rewritten`]): the stages from `resume` on answer
    /// the new one, and the answer is turned back for the client. (The rewrite waits in
    /// [`Work`] so that `Flow` stays cheap to drop on the cluster-name path.)
    Rewritten { resume: usize },
}

/// How the records in [`Work::answer`] are written.
#[derive(Debug, Clone, Copy)]
pub struct Records {
    pub rcode: u16,
    /// Label count of the zone the records belong to (a suffix of the question).
    pub zone_labels: usize,
    /// The zone SOA for the authority section (negative answers).
    pub soa: Option<SoaValues>,
}

/// Per-task space the stages write into, reused across queries.
#[derive(Debug, Default)]
pub struct Work {
    pub answer: AnswerBuf,
    /// Records a stage encoded itself (see [`Flow::Encoded`]).
    pub encoded: Vec<u8>,
    pub writer: MessageWriter,
    /// The question name as `rewrite` matches it.
    rewrite_name: String,
    /// What `rewrite` did, for the caller of [`Flow::Rewritten`].
    pub rewritten: Option<rewrite::Rewritten>,
    /// Turns the address records of successive answers (loadbalance).
    rotation: usize,
}

/// A block's stages in order.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    stages: Box<[Stage]>,
}

impl Pipeline {
    /// Puts the configured plugins in [`ORDER`].
    pub fn new(plugins: Plugins) -> Pipeline {
        let mut stages = Vec::new();
        if plugins.log.any() {
            stages.push(Stage::Log(plugins.log));
        }
        if let Some(c) = plugins.chaos {
            stages.push(Stage::Chaos(c));
        }
        if plugins.loadbalance {
            stages.push(Stage::LoadBalance);
        }
        if let Some(r) = plugins.rewrite {
            stages.push(Stage::Rewrite(r));
        }
        if let Some(h) = plugins.hosts {
            stages.push(Stage::Hosts(h));
        }
        if let Some(zone) = plugins.kubernetes {
            stages.push(Stage::Kubernetes(kubernetes::Kubernetes { zone }));
        }
        if let Some(resolver) = plugins.forward {
            if let Some(loops) = plugins.loops {
                stages.push(Stage::Loop(loops));
            }
            stages.push(Stage::Forward(forward::Forward { resolver }));
        }
        Pipeline {
            stages: stages.into(),
        }
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The block's resolver, when it forwards.
    pub fn resolver(&self) -> Option<&Arc<Resolver>> {
        self.stages.iter().find_map(|s| match s {
            Stage::Forward(f) => Some(&f.resolver),
            _ => None,
        })
    }

    /// Recursion is available where the block forwards (the RA bit of every answer).
    pub fn recursion_available(&self) -> bool {
        self.resolver().is_some()
    }

    /// Runs the stages until one answers, then lets the earlier ones see its records.
    /// [`Flow::Next`] means nobody answered; [`Flow::Rewritten`], that the rest is for
    /// [`Pipeline::resume`] with the new question.
    pub fn run(
        &self,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        self.resume(0, request, qname, work, report)
    }

    /// Runs the stages from `first` on (the stages before still see the records).
    pub fn resume(
        &self,
        first: usize,
        request: &Request<'_>,
        qname: &str,
        work: &mut Work,
        report: &mut QueryReport,
    ) -> Flow {
        // Only `chaos` answers class CH: every other stage serves IN alone (CoreDNS would
        // forward a CH query chaos does not answer; here it ends REFUSED). `rewrite` may
        // make it IN.
        let class_in = request.qclass == crate::dns::CLASS_IN;
        for (i, stage) in self.stages.iter().enumerate().skip(first) {
            if !class_in && !matches!(stage, Stage::Chaos(_) | Stage::Log(_) | Stage::Rewrite(_)) {
                continue;
            }
            let flow = match stage {
                Stage::Log(classes) => log::handle(*classes, report),
                Stage::Chaos(c) => c.handle(request, qname, work, report),
                Stage::LoadBalance => Flow::Next,
                Stage::Rewrite(r) => match r.handle(request, qname, work) {
                    Flow::Rewritten { .. } => Flow::Rewritten { resume: i + 1 },
                    other => other,
                },
                Stage::Hosts(h) => h.handle(request, qname, work, report),
                Stage::Kubernetes(k) => k.handle(request, qname, work, report),
                Stage::Loop(probes) => loop_detect::handle(probes, request, qname, report),
                Stage::Forward(f) => f.handle(request, qname, work, report),
            };
            if let Flow::Next = flow {
                continue;
            }
            if let Flow::Records(_) = flow {
                self.on_the_way_back(&self.stages[..i], work);
            }
            return flow;
        }
        Flow::Next
    }

    /// The stages before the one that answered, last first, see its records.
    fn on_the_way_back(&self, earlier: &[Stage], work: &mut Work) {
        for stage in earlier.iter().rev() {
            if let Stage::LoadBalance = stage {
                work.rotation = work.rotation.wrapping_add(1);
                loadbalance::rotate_addresses(&mut work.answer.answers, work.rotation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_plugin_cfg_order_and_only_configured_ones_are_there() {
        let config = crate::config::Config::parse(
            "[[server]]\nlisten = [\"127.0.0.1:53\"]\nzones = [\".\"]\n\
             [server.forward]\nto = [\"127.0.0.1:53\"]\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap();
        let forward = config.servers[0].forward.clone().unwrap();
        let resolver = Arc::new(Resolver {
            forwarder: Arc::new(crate::forward::Forwarder::new(forward).unwrap()),
            cache: None,
        });
        let all = Pipeline::new(Plugins {
            log: crate::config::LogClasses::ALL,
            chaos: Some(chaos::Chaos::new("v".into(), vec![])),
            loadbalance: true,
            rewrite: Some(rewrite::Rewrite::new(Vec::new())),
            hosts: None,
            kubernetes: None,
            forward: Some(resolver),
            loops: Some(Arc::default()),
        });
        let names: Vec<&str> = all.stages().iter().map(Stage::name).collect();
        assert_eq!(
            names,
            ["log", "chaos", "loadbalance", "rewrite", "loop", "forward"]
        );
        let positions: Vec<usize> = names
            .iter()
            .map(|n| ORDER.iter().position(|o| o == n).unwrap())
            .collect();
        assert!(positions.is_sorted(), "{names:?} out of ORDER");
        assert!(all.recursion_available());
        let none = Pipeline::new(Plugins::default());
        assert!(none.stages().is_empty() && !none.recursion_available());
    }
}
