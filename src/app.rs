//! The running server: config → sources → indexes → blocks → listeners, and the changes a
//! reload makes to them. A reload keeps what did not change: a block whose `[server.kubernetes]`
//! is unchanged keeps its index and source (no re-list), one whose forward/cache is unchanged
//! keeps its cache, and a listen address still in use keeps its sockets (the new router is
//! swapped in between queries).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::admin::{Readiness, Registry, ResolverMetrics};
use crate::cache::Cache;
use crate::cluster::kube::{self, WatchOptions};
use crate::cluster::manifests;
use crate::config::{ClusterSource, Config, KubernetesConfig, PodMode, ServerConfig};
use crate::dns::name::zone_label;
use crate::forward::{Forwarder, LoopProbes};
use crate::metrics::Histogram;
use crate::metrics::dns::DnsMetrics;
use crate::plugins::hosts::Hosts;
use crate::plugins::{Plugins, Resolver};
use crate::server::ratelimit::RateLimiter;
use crate::server::{self, Block, InFlight, Router, Serving};
use crate::zone::records::BuildOptions;
use crate::zone::{ClusterZone, Index, IndexOptions, ZoneConfig};

/// The TLS server configuration of a `tls://` address.
type TlsConfig = Arc<rustls::ServerConfig>;

/// Longest wait for in-flight queries at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What lives as long as the process, across reloads.
#[derive(Debug)]
pub struct Shared {
    pub readiness: Arc<Readiness>,
    pub registry: Arc<Registry>,
    pub loops: Arc<LoopProbes>,
    pub in_flight: Arc<InFlight>,
    /// UDP sockets (and receive tasks) per listen address.
    pub workers: usize,
    /// The routers `GET /explain` asks.
    pub explainer: Arc<crate::admin::Explainer>,
}

/// Stops a cluster source when the last block using it goes.
#[derive(Debug)]
struct SourceGuard {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A block as built from its config, with what a reload may keep: its cluster zone and the
/// source feeding it, its resolver (forwarder and cache).
struct BuiltBlock {
    config: ServerConfig,
    block: Block,
    cluster: Option<ClusterZone>,
    resolver: Option<Arc<Resolver>>,
    source: Option<Arc<SourceGuard>>,
    /// The TLS server configuration of its `tls://` addresses, files read at this build.
    tls: Option<Arc<rustls::ServerConfig>>,
}

struct Listening {
    serving: Serving,
    metrics: Arc<DnsMetrics>,
    rate_limit: Option<Arc<RateLimiter>>,
}

pub struct Running {
    pub config: Config,
    blocks: Vec<BuiltBlock>,
    listeners: BTreeMap<SocketAddr, Listening>,
    shared: Arc<Shared>,
    /// A reload whose new cluster sources have not synced yet: the running config serves
    /// until they have.
    deferred: Option<(Config, Vec<BuiltBlock>)>,
}

/// The routers a config would serve, built and synced without binding anything
/// (`clusterdns explain`); the sources stop when it is dropped.
pub struct Offline {
    _blocks: Vec<BuiltBlock>,
    pub routers: Vec<(SocketAddr, Router)>,
}

impl Offline {
    pub async fn build(config: &Config, shared: &Shared) -> anyhow::Result<Offline> {
        let blocks = build_blocks(config, &[], shared).await?;
        if !wait_for_sync(&blocks, &[]).await {
            warn_unsynced();
        }
        let routers = by_address(&blocks)
            .into_iter()
            .map(|(addr, (here, tls))| {
                let zones: Vec<String> = here.iter().flat_map(|b| b.zones.clone()).collect();
                let label = server_label(addr, tls.is_some());
                let metrics = Arc::new(DnsMetrics::new(label, &zones));
                (addr, Router::new(here, metrics))
            })
            .collect();
        Ok(Offline {
            _blocks: blocks,
            routers,
        })
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    Applied,
    /// New cluster sources are still syncing; [`Running::apply_deferred`] swaps them in once
    /// [`Running::deferred_indexes`] have synced.
    Deferred,
}

impl Running {
    /// Starts every source, waits (bounded) for them to sync, then binds and serves.
    pub async fn start(config: Config, shared: Arc<Shared>) -> anyhow::Result<Running> {
        let blocks = build_blocks(&config, &[], &shared).await?;
        shared.readiness.set_zones(indexes(&blocks));
        if !wait_for_sync(&blocks, &[]).await {
            warn_unsynced();
        }
        let mut running = Running {
            config,
            blocks: Vec::new(),
            listeners: BTreeMap::new(),
            shared,
            deferred: None,
        };
        running.install(blocks).await?;
        Ok(running)
    }

    /// Applies a new (valid) config. On error nothing changes. New cluster sources sync before
    /// they replace the old ones: while a synced zone serves, a source that has not synced
    /// within its startup timeout (the API is away) defers the reload instead of turning
    /// answers into SERVFAIL, however long that takes.
    pub async fn reload(&mut self, config: Config) -> anyhow::Result<Reloaded> {
        if self
            .deferred
            .as_ref()
            .is_some_and(|(waiting, _)| *waiting == config)
        {
            return Ok(Reloaded::Deferred);
        }
        // A newer config replaces one still syncing (its sources stop).
        self.deferred = None;
        let blocks = build_blocks(&config, &self.blocks, &self.shared).await?;
        let old: Vec<*const Index> = self
            .blocks
            .iter()
            .filter_map(|b| b.cluster.as_ref())
            .map(|c| Arc::as_ptr(&c.index))
            .collect();
        let synced = wait_for_sync(&blocks, &old).await;
        let serving_synced = self
            .blocks
            .iter()
            .any(|b| b.cluster.as_ref().is_some_and(|c| c.index.is_synced()));
        if !synced && serving_synced {
            tracing::info!(
                "config reload waits for its new cluster source to sync; the running config keeps serving until then"
            );
            self.deferred = Some((config, blocks));
            return Ok(Reloaded::Deferred);
        }
        if !synced {
            warn_unsynced();
        }
        self.install(blocks).await?;
        self.config = config;
        Ok(Reloaded::Applied)
    }

    /// Reads the certificates of the `tls://` addresses again (a reload whose config did not
    /// change: a renewed certificate under the same file names); new connections get them.
    /// On an error nothing changes. How many addresses took new ones.
    pub fn reload_certificates(&mut self) -> anyhow::Result<usize> {
        let mut fresh = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some(tls) = &b.config.tls {
                let config = crate::tls::server_config(tls).map_err(|e| {
                    anyhow::anyhow!("server[{i}]: [server.tls] {}: {}", e.key, e.message)
                })?;
                fresh.push((i, config));
            }
        }
        for (i, config) in fresh {
            self.blocks[i].tls = Some(config);
        }
        // The first block's configuration on an address, as at install.
        let mut swapped = 0;
        for (addr, (_, tls)) in by_address(&self.blocks) {
            if let (Some(tls), Some(l)) = (tls, self.listeners.get(&addr)) {
                l.serving.replace_tls(tls);
                swapped += 1;
            }
        }
        Ok(swapped)
    }

    pub fn has_deferred(&self) -> bool {
        self.deferred.is_some()
    }

    /// Drops a deferred reload (its new sources stop); whether there was one.
    pub fn drop_deferred(&mut self) -> bool {
        self.deferred.take().is_some()
    }

    /// The new indexes a deferred reload waits for (empty when nothing is deferred).
    pub fn deferred_indexes(&self) -> Vec<Arc<Index>> {
        self.deferred
            .as_ref()
            .map_or_else(Vec::new, |(_, blocks)| indexes(blocks))
    }

    /// Installs the deferred reload (call once [`Running::deferred_indexes`] synced).
    pub async fn apply_deferred(&mut self) -> anyhow::Result<()> {
        let Some((config, blocks)) = self.deferred.take() else {
            return Ok(());
        };
        self.install(blocks).await?;
        self.config = config;
        Ok(())
    }

    /// Binds what is new, swaps routers on addresses that stay, closes addresses that went.
    async fn install(&mut self, blocks: Vec<BuiltBlock>) -> anyhow::Result<()> {
        let by_addr = by_address(&blocks);
        let switched = |addr: &SocketAddr, tls: bool| {
            self.listeners
                .get(addr)
                .is_some_and(|old| old.serving.is_tls() != tls)
        };
        // Bind every new address first: if one fails, the running config stays untouched.
        let mut bound = BTreeMap::new();
        for (addr, (_, tls)) in &by_addr {
            if !self.listeners.contains_key(addr) {
                let listener = bind(*addr, tls.is_some(), self.shared.workers).await?;
                bound.insert(*addr, listener);
            }
        }
        // An address that changes transport (plain ↔ tls://) cannot keep its sockets: the old
        // ones are closed (and waited for) before the port is bound again.
        let switching: Vec<(SocketAddr, bool)> = (by_addr.iter())
            .filter(|(addr, (_, tls))| switched(addr, tls.is_some()))
            .map(|(addr, (_, tls))| (*addr, tls.is_some()))
            .collect();
        for (addr, tls) in switching {
            let old = self.listeners.remove(&addr).expect("present");
            old.serving.close().await;
            tracing::info!(%addr, "transport changed: listening again");
            bound.insert(addr, bind(addr, tls, self.shared.workers).await?);
        }
        let mut listeners = BTreeMap::new();
        let mut announce = Vec::new();
        for (addr, (blocks_here, tls)) in by_addr {
            let old = self.listeners.remove(&addr);
            let new = bound.remove(&addr);
            if let Some(listener) = &new {
                announce.push((listener.addr, tls.is_some()));
            }
            let listening = self.listening(blocks_here, old, new, tls);
            listeners.insert(addr, listening);
        }
        for (addr, _) in std::mem::take(&mut self.listeners) {
            tracing::info!(%addr, "no longer listening");
        }
        self.listeners = listeners;

        let fresh: Vec<(Arc<Forwarder>, String)> = blocks
            .iter()
            .filter_map(|b| b.resolver.as_ref().map(|r| (r, &b.block.zones[0])))
            .filter(|(r, _)| {
                !self
                    .blocks
                    .iter()
                    .filter_map(|o| o.resolver.as_ref())
                    .any(|o| Arc::ptr_eq(&o.forwarder, &r.forwarder))
            })
            .map(|(r, z)| (r.forwarder.clone(), z.clone()))
            .collect();
        self.blocks = blocks;
        self.shared.readiness.set_zones(indexes(&self.blocks));
        self.shared.registry.set(
            self.listeners.values().map(|l| l.metrics.clone()).collect(),
            resolver_metrics(&self.blocks),
        );
        self.shared.explainer.set(
            (self.listeners.values())
                .map(|l| (l.serving.addr, l.serving.router()))
                .collect(),
        );
        self.shared.readiness.set_listeners_bound();
        for (addr, tls) in announce {
            let how = if tls { "tls" } else { "udp, tcp" };
            // Tests and scripts read the bound address (port 0 picks one) from this line.
            println!("clusterdns: listening on {addr} ({how})");
            tracing::info!(%addr, "listening ({how})");
        }
        // Listeners are up: a probe that loops back through an upstream can now be seen.
        for (forwarder, zone) in fresh {
            tokio::spawn(self.shared.loops.clone().probe(forwarder, zone));
        }
        Ok(())
    }

    /// The router for the blocks on one address, swapped into its old listener or serving a
    /// newly bound one. Metrics and the rate limiter's counts carry over while unchanged.
    fn listening(
        &self,
        blocks_here: Vec<Block>,
        old: Option<Listening>,
        new: Option<server::Listener>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Listening {
        let zones: Vec<String> = blocks_here.iter().flat_map(|b| b.zones.clone()).collect();
        // Labelled with the bound address (port 0 picks one).
        let label = match (&old, &new) {
            (Some(l), _) => server_label(l.serving.addr, tls.is_some()),
            (None, Some(l)) => server_label(l.addr, tls.is_some()),
            (None, None) => unreachable!("every new address was bound"),
        };
        let metrics = match &old {
            Some(l) if l.metrics.same_zones(&zones) => l.metrics.clone(),
            _ => Arc::new(DnsMetrics::new(label, &zones)),
        };
        let rate = blocks_here.iter().map(|b| b.rate_limit).find(|r| *r > 0);
        let tcp_connections = blocks_here
            .iter()
            .map(|b| b.tcp_connections)
            .max()
            .unwrap_or(server::MAX_TCP_CONNECTIONS);
        let mut router = Router::new(blocks_here, metrics.clone());
        router.rate_limit = rate.map(|r| match &old {
            Some(l) if l.rate_limit.as_ref().is_some_and(|x| x.per_second() == r) => {
                l.rate_limit.clone().expect("checked")
            }
            _ => Arc::new(RateLimiter::new(r)),
        });
        let rate_limit = router.rate_limit.clone();
        let serving = match (old, new) {
            (Some(l), _) => {
                l.serving.replace(router);
                // Certificates read again at this reload: new connections get them.
                if let Some(tls) = tls {
                    l.serving.replace_tls(tls);
                }
                l.serving
            }
            (None, Some(listener)) => server::serve(
                listener,
                router,
                self.shared.in_flight.clone(),
                tcp_connections,
                tls,
            ),
            (None, None) => unreachable!("every new address was bound"),
        };
        Listening {
            serving,
            metrics,
            rate_limit,
        }
    }

    /// SIGTERM: `/ready` turns 503 at once, answers go on for `lameduck`, then the listeners
    /// close and in-flight queries drain (bounded).
    pub async fn shutdown(mut self, lameduck: Duration) {
        self.shared.readiness.set_shutting_down();
        tracing::info!(?lameduck, "shutting down: lame duck, still answering");
        tokio::time::sleep(lameduck).await;
        for (_, mut l) in std::mem::take(&mut self.listeners) {
            l.serving.stop();
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.shared.in_flight.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(left = self.shared.in_flight.get(), "stopped");
    }
}

/// The blocks on each address, with the TLS configuration of a `tls://` one (the first
/// block's there: CoreDNS's `tls` is per server block, config checks keep one transport per
/// address).
fn by_address(blocks: &[BuiltBlock]) -> BTreeMap<SocketAddr, (Vec<Block>, Option<TlsConfig>)> {
    let mut by_addr: BTreeMap<SocketAddr, (Vec<Block>, Option<TlsConfig>)> = BTreeMap::new();
    for b in blocks {
        for addr in &b.config.listen {
            let entry = by_addr.entry(*addr).or_default();
            entry.0.push(b.block.clone());
            if b.config.tls_listen.contains(addr) && entry.1.is_none() {
                entry.1 = b.tls.clone();
            }
        }
    }
    by_addr
}

/// The `server` label of an address's metrics, as CoreDNS writes it (`dns://…`, `tls://…`).
fn server_label(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "tls" } else { "dns" };
    format!("{scheme}://{addr}")
}

/// Binds an address (TCP only for `tls://`).
async fn bind(addr: SocketAddr, tls: bool, workers: usize) -> anyhow::Result<server::Listener> {
    let bound = if tls {
        server::bind_tls(addr)
    } else {
        server::bind(addr, workers).await
    };
    Ok(bound?)
}

fn indexes(blocks: &[BuiltBlock]) -> Vec<Arc<Index>> {
    blocks
        .iter()
        .filter_map(|b| b.cluster.as_ref().map(|c| c.index.clone()))
        .collect()
}

fn resolver_metrics(blocks: &[BuiltBlock]) -> Vec<ResolverMetrics> {
    blocks
        .iter()
        .filter_map(|b| {
            let r = b.resolver.as_ref()?;
            let zones: Vec<String> = b.block.zones.iter().map(|z| zone_label(z)).collect();
            Some(ResolverMetrics {
                server: server_label(
                    b.config.listen[0],
                    b.config.tls_listen.contains(&b.config.listen[0]),
                ),
                zones: zones.join(" "),
                cache: r.cache.as_ref().map(|c| c.metrics.clone()),
                forwarder: r.forwarder.clone(),
            })
        })
        .collect()
}

/// Holds until every new cluster zone has synced, or its startup timeout has passed; whether
/// they all synced.
async fn wait_for_sync(blocks: &[BuiltBlock], reused: &[*const Index]) -> bool {
    let start = Instant::now();
    let mut synced = true;
    for b in blocks {
        let (Some(zone), Some(k)) = (&b.cluster, &b.config.kubernetes) else {
            continue;
        };
        if reused.contains(&Arc::as_ptr(&zone.index)) {
            continue;
        }
        while !zone.index.is_synced() {
            if start.elapsed() >= k.startup_timeout {
                synced = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    synced
}

fn warn_unsynced() {
    tracing::warn!(
        "serving before the Kubernetes API synced: unknown names get SERVFAIL until it does"
    );
}

/// Builds every block of `config`, reusing the cluster zones and resolvers of `previous` blocks
/// whose configuration of them is unchanged.
async fn build_blocks(
    config: &Config,
    previous: &[BuiltBlock],
    shared: &Shared,
) -> anyhow::Result<Vec<BuiltBlock>> {
    let mut out = Vec::new();
    for (i, server) in config.servers.iter().enumerate() {
        let built = build_block(server, previous, shared)
            .await
            .with_context(|| format!("{}: server[{i}]", config.file.display()))?;
        out.push(built);
    }
    Ok(out)
}

async fn build_block(
    server: &ServerConfig,
    previous: &[BuiltBlock],
    shared: &Shared,
) -> anyhow::Result<BuiltBlock> {
    let resolver = block_resolver(server, previous)?;
    let (cluster, source) = block_cluster(server, previous, shared).await?;
    let hosts = match server.hosts.clone() {
        // Reading a large hosts file takes a while: off the async workers.
        Some(h) => Some(tokio::task::spawn_blocking(move || Hosts::start(&h)).await?),
        None => None,
    };
    // Read at every build, so a reload picks up a renewed certificate.
    let tls = server
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()
        .map_err(|e| anyhow::anyhow!("[server.tls] {}: {}", e.key, e.message))?;
    let file_configs = server.file.clone();
    let file =
        tokio::task::spawn_blocking(move || crate::plugins::file::File::start(&file_configs))
            .await??;
    let plugins = Plugins {
        log: server.log,
        chaos: server
            .chaos
            .as_ref()
            .map(|c| crate::plugins::chaos::Chaos::new(c.version.clone(), c.authors.clone())),
        loadbalance: server.loadbalance,
        rewrite: (!server.rewrite.is_empty())
            .then(|| crate::plugins::rewrite::Rewrite::new(server.rewrite.clone())),
        autopath: server.autopath.as_ref().and_then(|a| {
            let stage = crate::plugins::autopath::Autopath::new(a, cluster.as_ref());
            if stage.is_none() {
                tracing::warn!(zones = ?server.zones, "autopath @kubernetes searches nothing without kubernetes pods = \"verified\" in the block (as in CoreDNS)");
            }
            stage
        }),
        template: crate::plugins::template::Templates::configured(&server.template)?,
        hosts,
        kubernetes: cluster.clone(),
        file,
        k8s_external: server.k8s_external.clone().map(Arc::new),
        transfer: server.transfer.clone().map(Arc::new),
        forward: resolver.clone(),
        loops: Some(shared.loops.clone()),
        acl: crate::plugins::acl::Acl::new(&server.acl),
        any: server.any,
        minimal: server.minimal,
        whoami: server.whoami,
        dns64: server.dns64.as_ref().map(crate::plugins::dns64::Dns64::new),
    };
    Ok(BuiltBlock {
        config: server.clone(),
        block: Block {
            rate_limit: server.rate_limit,
            tcp_connections: server.tcp_connections,
            max_udp_size: usize::from(server.max_udp_size),
            ..Block::new(server.zones.clone(), plugins)
        },
        cluster,
        resolver,
        source,
        tls,
    })
}

/// The block's forwarder and cache: the previous block's when both are configured the same.
fn block_resolver(
    server: &ServerConfig,
    previous: &[BuiltBlock],
) -> anyhow::Result<Option<Arc<Resolver>>> {
    let kept = previous
        .iter()
        .find(|b| b.config.forward == server.forward && b.config.cache == server.cache)
        .and_then(|b| b.resolver.clone());
    Ok(match (&server.forward, kept) {
        (Some(_), Some(kept)) => Some(kept),
        (Some(forward), None) => {
            let forwarder = Forwarder::new(forward.clone()).context("[server.forward]")?;
            tracing::info!(
                upstreams = ?forwarder.upstreams.iter().map(|u| u.addr).collect::<Vec<_>>(),
                "forwarding"
            );
            Some(Arc::new(Resolver {
                forwarder: Arc::new(forwarder),
                cache: server.cache.clone().map(|c| Arc::new(Cache::new(c))),
            }))
        }
        (None, _) => {
            if server.cache.is_some() {
                tracing::warn!(
                    "[server.cache] without [server.forward] caches nothing: cluster answers are never cached"
                );
            }
            None
        }
    })
}

/// The block's cluster zone and the source feeding it: the previous block's index and
/// watchers when they would be the same (no re-list), with the answers' settings as now
/// configured.
async fn block_cluster(
    server: &ServerConfig,
    previous: &[BuiltBlock],
    shared: &Shared,
) -> anyhow::Result<(Option<ClusterZone>, Option<Arc<SourceGuard>>)> {
    let Some(k) = &server.kubernetes else {
        return Ok((None, None));
    };
    let kept = previous.iter().find(|b| {
        b.config
            .kubernetes
            .as_ref()
            .is_some_and(|old| old.same_index(k))
            && b.cluster.is_some()
    });
    Ok(match kept {
        Some(kept) => {
            let index = kept.cluster.as_ref().expect("checked").index.clone();
            let config = Arc::new(zone_config(k, &own_addrs(&server.listen)));
            (Some(ClusterZone { config, index }), kept.source.clone())
        }
        None => {
            let (zone, guard) =
                start_cluster_zone(k, &own_addrs(&server.listen), &shared.registry.programming)
                    .await?;
            (Some(zone), Some(Arc::new(guard)))
        }
    })
}

async fn start_cluster_zone(
    k: &KubernetesConfig,
    own_addrs: &[IpAddr],
    programming: &Arc<Histogram>,
) -> anyhow::Result<(ClusterZone, SourceGuard)> {
    let index = Arc::new(Index::new(IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: k.endpoint_pod_names,
        },
        namespaces: k.namespaces.clone(),
        track_pods: k.pods == PodMode::Verified,
        no_endpoints: !k.endpoints,
        multicluster: !k.multicluster.is_empty(),
    }));
    let zone = ClusterZone {
        config: Arc::new(zone_config(k, own_addrs)),
        index: index.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    // Sources only send: the index's one writer applies, on a thread of its own.
    let sink = crate::zone::index::spawn_writer(index).context("start the index writer")?;
    let tasks = match &k.source {
        ClusterSource::Manifests(dir) => {
            manifests::spawn(dir.clone(), stop.clone(), sink)
                .context("start the manifests source")?;
            Vec::new()
        }
        source @ (ClusterSource::Endpoint(_)
        | ClusterSource::Kubeconfig { .. }
        | ClusterSource::InCluster) => {
            let client = kube::connect(source).await?;
            let options = WatchOptions {
                namespaces: k.namespaces.clone(),
                labels: k.labels.clone(),
                pods: k.pods == PodMode::Verified,
                endpoints: k.endpoints,
                multicluster: !k.multicluster.is_empty(),
            };
            kube::spawn(client, options, programming.clone(), sink)
        }
    };
    Ok((zone, SourceGuard { stop, tasks }))
}

/// How the zone answers from its index: what a reload may change without a new index.
fn zone_config(k: &KubernetesConfig, own_addrs: &[IpAddr]) -> ZoneConfig {
    let primary = k
        .zones
        .iter()
        .find(|z| !crate::config::is_reverse_zone(z))
        .cloned()
        .unwrap_or_default();
    ZoneConfig {
        zones: k.zones.clone(),
        primary: primary.into(),
        ttl: k.ttl,
        pods: k.pods,
        fallthrough: k.fallthrough.clone(),
        ignore_empty_service: k.ignore_empty_service,
        multicluster: k.multicluster.clone(),
        own_addrs: own_addrs.to_vec(),
    }
}

/// The server's own addresses for NS answers: the listen IPs; for a wildcard listen address,
/// `$POD_IP` (downward API) or the address of the interface that routes outward.
fn own_addrs(listen: &[SocketAddr]) -> Vec<IpAddr> {
    let mut addrs = Vec::new();
    for addr in listen {
        let ip = addr.ip();
        let found: Vec<IpAddr> = if !ip.is_unspecified() {
            vec![ip]
        } else if let Some(pod_ips) = std::env::var("POD_IP").ok().filter(|v| !v.is_empty()) {
            pod_ips
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        } else {
            // connect() on UDP sends nothing; it only picks the route and so the source address.
            let probe: SocketAddr = if ip.is_ipv4() {
                SocketAddr::from(([192, 0, 2, 1], 53))
            } else {
                SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 53))
            };
            let bind: SocketAddr = if ip.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            UdpSocket::bind(bind)
                .and_then(|s| s.connect(probe).and_then(|_| s.local_addr()))
                .map(|a| vec![a.ip()])
                .unwrap_or_default()
        };
        for ip in found {
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
    }
    addrs
}
