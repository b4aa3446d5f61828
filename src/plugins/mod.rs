//! The request pipeline: a server block's plugins as an ordered list of stages, built once
//! from config in CoreDNS's `plugin.cfg` order (whatever order the config lists them in).
//!
//! A stage sees the parsed request and answers ([`Flow::Records`], [`Flow::Rcode`],
//! [`Flow::Written`], [`Flow::Pending`], [`Flow::Denied`], [`Flow::Drop`]) or passes on
//! ([`Flow::Next`]). Stages before the one that answered see its answer on the way back
//! ([`Pipeline::run`]), as CoreDNS plugins see what the next ones wrote. A plugin that is not
//! configured is not in the list, so it costs nothing. `rewrite` answers [`Flow::Rewritten`]
//! (and `autopath`, `dns64` their own flows): the caller resumes the stages after it with the
//! new question ([`Pipeline::resume`]).

pub mod acl;
pub mod any;
pub mod autopath;
pub mod cache;
pub mod chaos;
pub mod dns64;
pub mod file;
pub mod forward;
pub mod hosts;
pub mod k8s_external;
pub mod kubernetes;
pub mod loadbalance;
pub mod log;
pub mod loop_detect;
pub mod minimal;
pub mod rewrite;
pub mod template;
pub mod transfer;
pub mod whoami;

use std::sync::Arc;

use hickory_proto::op::Message;

use crate::dns::Request;
use crate::dns::writer::MessageWriter;
use crate::forward::LoopProbes;
use crate::metrics::dns::QueryReport;
use crate::zone::{AnswerBuf, ClusterZone, SoaValues};

pub use forward::{Pending, Resolver};

/// CoreDNS's `plugin.cfg` order, restricted to the plugins clusterdns has. `cache` wraps
/// `forward` (see [`cache`]) rather than standing before `kubernetes`.
pub const ORDER: &[&str] = &[
    "log",
    "dns64",
    "acl",
    "any",
    "chaos",
    "loadbalance",
    "cache",
    "rewrite",
    "autopath",
    "minimal",
    "template",
    "transfer",
    "hosts",
    "k8s_external",
    "kubernetes",
    "file",
    "loop",
    "forward",
    "whoami",
];

/// One configured plugin.
#[derive(Debug, Clone)]
pub enum Stage {
    Log(crate::config::LogClasses),
    Dns64(dns64::Dns64),
    Acl(acl::Acl),
    Any,
    Chaos(chaos::Chaos),
    LoadBalance,
    Rewrite(rewrite::Rewrite),
    Minimal,
    Autopath(autopath::Autopath),
    Template(template::Templates),
    Transfer(transfer::Transfer),
    Hosts(hosts::Hosts),
    K8sExternal(k8s_external::K8sExternal),
    Kubernetes(kubernetes::Kubernetes),
    File(file::File),
    Loop(Arc<LoopProbes>),
    Forward(forward::Forward),
    Whoami(whoami::Whoami),
}

impl Stage {
    /// The plugin's name, as in [`ORDER`].
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Log(_) => "log",
            Stage::Dns64(_) => "dns64",
            Stage::Acl(_) => "acl",
            Stage::Any => "any",
            Stage::Chaos(_) => "chaos",
            Stage::LoadBalance => "loadbalance",
            Stage::Rewrite(_) => "rewrite",
            Stage::Minimal => "minimal",
            Stage::Autopath(_) => "autopath",
            Stage::Template(_) => "template",
            Stage::Transfer(_) => "transfer",
            Stage::Hosts(_) => "hosts",
            Stage::K8sExternal(_) => "k8s_external",
            Stage::Kubernetes(_) => "kubernetes",
            Stage::File(_) => "file",
            Stage::Loop(_) => "loop",
            Stage::Forward(_) => "forward",
            Stage::Whoami(_) => "whoami",
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
    pub autopath: Option<autopath::Autopath>,
    pub template: Option<template::Templates>,
    pub hosts: Option<hosts::Hosts>,
    pub kubernetes: Option<ClusterZone>,
    /// Zones from zone files (CoreDNS `file`).
    pub file: Option<file::File>,
    /// Served from the `kubernetes` zone's index; ignored without one.
    pub k8s_external: Option<Arc<crate::config::K8sExternalConfig>>,
    /// Transfers of the `kubernetes` zone; ignored without one.
    pub transfer: Option<Arc<crate::config::transfer::TransferConfig>>,
    /// Forward, with the cache when one is configured.
    pub forward: Option<Arc<Resolver>>,
    /// Where loop probes are recognised (the process-wide set); used with `forward`.
    pub loops: Option<Arc<LoopProbes>>,
    pub acl: Option<acl::Acl>,
    pub any: bool,
    pub minimal: bool,
    pub whoami: bool,
    pub dns64: Option<dns64::Dns64>,
}

/// What a stage decided.
pub enum Flow {
    /// Not this stage's: the next one decides.
    Next,
    /// Records in [`Work::answer`], to be written as an authoritative answer.
    Records(Records),
    /// This rcode and no records.
    Rcode(u16),
    /// Records encoded in [`Work::encoded`] (each ending where [`template::Scratch::ends`]
    /// says), `counts` of them in the answer, authority and additional sections, written as an
    /// authoritative answer with this rcode.
    Sections { rcode: u16, counts: [u16; 3] },
    /// As [`Flow::Sections`], NOERROR and not authoritative: a referral (`file` below a
    /// delegation).
    Referral { counts: [u16; 3] },
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
    /// No reply at all (acl `drop`).
    Drop,
    /// This rcode, no records, and an extended DNS error (RFC 8914) when the client sent EDNS.
    Denied { rcode: u16, ede: u16 },
    /// `autopath` found a search-path expansion: the stages after it answer each name of
    /// the walk in turn (see [`autopath`]).
    Search(Box<autopath::Walk>),
    /// `dns64` takes an AAAA question: the stages after it answer, and the answer may be
    /// replaced by one synthesized from the A answer (see [`dns64`]).
    Dns64(Box<dns64::Translate>),
    /// A zone transfer: these whole messages, sent in order on the TCP connection.
    Transfer(Vec<Vec<u8>>),
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
    pub template: template::Scratch,
    /// What `rewrite` did, for the caller of [`Flow::Rewritten`].
    pub rewritten: Option<rewrite::Rewritten>,
    /// Turns the address records of successive answers (loadbalance).
    rotation: usize,
}

/// A block's stages in order.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    stages: Box<[Stage]>,
    /// Questions of other classes than IN get past the door (CoreDNS opens it where `chaos` or
    /// `forward` is configured); else they end REFUSED.
    other_classes: bool,
    /// A `transfer` stage is here: AXFR and IXFR questions go through the stages.
    transfers: bool,
}

impl Pipeline {
    /// Puts the configured plugins in [`ORDER`].
    pub fn new(plugins: Plugins) -> Pipeline {
        let mut stages = Vec::new();
        if plugins.log.any() {
            stages.push(Stage::Log(plugins.log));
        }
        if let Some(d) = plugins.dns64 {
            stages.push(Stage::Dns64(d));
        }
        if let Some(a) = plugins.acl {
            stages.push(Stage::Acl(a));
        }
        if plugins.any {
            stages.push(Stage::Any);
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
        if let Some(a) = plugins.autopath {
            stages.push(Stage::Autopath(a));
        }
        if plugins.minimal {
            stages.push(Stage::Minimal);
        }
        if let Some(t) = plugins.template {
            stages.push(Stage::Template(t));
        }
        if let (Some(config), Some(zone)) = (plugins.transfer, &plugins.kubernetes) {
            let zone = zone.clone();
            stages.push(Stage::Transfer(transfer::Transfer { config, zone }));
        }
        if let Some(h) = plugins.hosts {
            stages.push(Stage::Hosts(h));
        }
        if let (Some(config), Some(zone)) = (plugins.k8s_external, &plugins.kubernetes) {
            let external = k8s_external::K8sExternal::new(config, zone.clone());
            stages.push(Stage::K8sExternal(external));
        }
        if let Some(zone) = plugins.kubernetes {
            stages.push(Stage::Kubernetes(kubernetes::Kubernetes { zone }));
        }
        if let Some(f) = plugins.file {
            stages.push(Stage::File(f));
        }
        if let Some(resolver) = plugins.forward {
            if let Some(loops) = plugins.loops {
                stages.push(Stage::Loop(loops));
            }
            stages.push(Stage::Forward(forward::Forward { resolver }));
        }
        if plugins.whoami {
            stages.push(Stage::Whoami(whoami::Whoami::default()));
        }
        let other_classes = stages
            .iter()
            .any(|s| matches!(s, Stage::Chaos(_) | Stage::Forward(_)));
        let transfers = stages.iter().any(|s| matches!(s, Stage::Transfer(_)));
        Pipeline {
            stages: stages.into(),
            other_classes,
            transfers,
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

    /// The block's cluster zone, when it has `kubernetes`.
    pub fn cluster_zone(&self) -> Option<&ClusterZone> {
        self.stages.iter().find_map(|s| match s {
            Stage::Kubernetes(k) => Some(&k.zone),
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
        // Only `chaos` and `template` answer class CH, and `acl`, `any` and `rewrite` (which may make it IN)
        // see it first: every other stage serves IN alone (CoreDNS would forward a CH query
        // chaos does not answer; here it ends REFUSED). Without chaos or forward, CoreDNS
        // refuses CH at the door, as here.
        let class_in = request.qclass == crate::dns::CLASS_IN;
        if !class_in && !self.other_classes {
            return Flow::Next;
        }
        // Only `transfer` serves AXFR and IXFR: without it they end REFUSED, as CoreDNS's
        // kubernetes plugin answers them.
        let xfr = transfer::is_transfer(request.qtype);
        if xfr && !self.transfers {
            return Flow::Next;
        }
        for (i, stage) in self.stages.iter().enumerate().skip(first) {
            if !class_in
                && !matches!(
                    stage,
                    Stage::Chaos(_)
                        | Stage::Log(_)
                        | Stage::Acl(_)
                        | Stage::Any
                        | Stage::Rewrite(_)
                        | Stage::Template(_)
                )
            {
                continue;
            }
            let mut flow = match stage {
                Stage::Log(classes) => log::handle(*classes, report),
                Stage::Dns64(d) => match d.handle(request) {
                    Flow::Dns64(mut translate) => {
                        translate.resume = i + 1;
                        Flow::Dns64(translate)
                    }
                    other => other,
                },
                Stage::Acl(a) => a.handle(request, qname),
                Stage::Any => any::handle(request, work),
                Stage::Chaos(c) => c.handle(request, qname, work, report),
                Stage::Rewrite(r) => match r.handle(request, qname, work) {
                    Flow::Rewritten { .. } => Flow::Rewritten { resume: i + 1 },
                    other => other,
                },
                Stage::Autopath(a) => match a.handle(request, qname) {
                    Flow::Search(mut walk) => {
                        walk.resume = i + 1;
                        Flow::Search(walk)
                    }
                    other => other,
                },
                Stage::LoadBalance | Stage::Minimal => Flow::Next,
                Stage::Template(t) => t.handle(request, qname, work, report),
                Stage::Transfer(t) => match t.handle(request, qname, &mut work.writer) {
                    // No later stage serves transfers.
                    Flow::Next if xfr => return Flow::Next,
                    other => other,
                },
                Stage::Hosts(h) => h.handle(request, qname, work, report),
                Stage::K8sExternal(e) => e.handle(request, qname, work, report),
                Stage::Kubernetes(k) => k.handle(request, qname, work, report),
                Stage::File(f) => f.handle(request, qname, work, report),
                Stage::Loop(probes) => loop_detect::handle(probes, request, qname, report),
                Stage::Forward(f) => f.handle(request, qname, work, report),
                Stage::Whoami(w) => w.handle(request, qname, work),
            };
            if let Flow::Next = flow {
                continue;
            }
            if i > 0 {
                self.on_the_way_back(&self.stages[..i], &mut flow, work);
            }
            return flow;
        }
        Flow::Next
    }

    /// The stages before the one that answered, last first, see what it answered: loadbalance
    /// turns records, minimal strips positive answers (records, `file` and `template`
    /// sections, cache hits, upstream replies).
    fn on_the_way_back(&self, earlier: &[Stage], flow: &mut Flow, work: &mut Work) {
        for stage in earlier.iter().rev() {
            match (stage, &mut *flow) {
                (Stage::LoadBalance, Flow::Records(_)) => {
                    work.rotation = work.rotation.wrapping_add(1);
                    loadbalance::rotate_addresses(&mut work.answer.answers, work.rotation);
                }
                (Stage::Minimal, Flow::Records(records)) => {
                    minimal::records(records, &mut work.answer);
                }
                (Stage::Minimal, Flow::Sections { rcode, counts }) => {
                    minimal::sections(*rcode, counts, work);
                }
                (Stage::Minimal, Flow::Written) => minimal::strip(&mut work.writer.buf),
                (Stage::Minimal, Flow::Pending(_)) => {
                    if let Flow::Pending(pending) = std::mem::replace(flow, Flow::Next) {
                        *flow = Flow::Pending(Box::new(Pending::Minimal(pending)));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Encodes a response another stage made or changed (hickory-proto) within the client's size:
/// additional records go first, then authority records, then answers with TC set (as the
/// writer truncates).
pub(crate) fn encode_within(mut message: Message, limit: usize) -> Option<Vec<u8>> {
    loop {
        let bytes = message.to_vec().ok()?;
        if bytes.len() <= limit {
            return Some(bytes);
        }
        if message.additionals.pop().is_some() || message.authorities.pop().is_some() {
            continue;
        }
        if message.answers.pop().is_none() {
            return Some(bytes);
        }
        message.metadata.truncation = true;
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
            autopath: None,
            template: Some(
                template::Templates::new(&[crate::config::TemplateConfig {
                    class: 1,
                    rtype: 28,
                    zones: vec![String::new()],
                    matches: vec![],
                    answer: vec![],
                    authority: vec![],
                    additional: vec![],
                    rcode: 0,
                    fallthrough: vec![],
                }])
                .unwrap(),
            ),
            hosts: None,
            kubernetes: None,
            file: None,
            k8s_external: None,
            transfer: None,
            forward: Some(resolver),
            loops: Some(Arc::default()),
            acl: acl::Acl::new(&[crate::config::AclConfig {
                zones: vec![String::new()],
                rules: vec![crate::config::AclRule {
                    action: crate::config::AclAction::Block,
                    types: None,
                    nets: None,
                }],
            }]),
            any: true,
            minimal: true,
            whoami: true,
            dns64: None,
        });
        let names: Vec<&str> = all.stages().iter().map(Stage::name).collect();
        assert_eq!(
            names,
            [
                "log",
                "acl",
                "any",
                "chaos",
                "loadbalance",
                "rewrite",
                "minimal",
                "template",
                "loop",
                "forward",
                "whoami"
            ]
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
