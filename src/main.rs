//! The `clusterdns` binary: parse the command line, load the config, wire sources → index →
//! server, run until SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

use clusterdns::cache::Cache;
use clusterdns::cluster::kube::{self, WatchOptions};
use clusterdns::cluster::manifests;
use clusterdns::config::{ClusterSource, Config, KubernetesConfig, PodMode, ServerConfig};
use clusterdns::forward::{Forwarder, LoopProbes};
use clusterdns::metrics::{Histogram, PROGRAMMING_BUCKETS};
use clusterdns::server::resolve::Resolver;
use clusterdns::server::{self, Block, Router};
use clusterdns::zone::records::BuildOptions;
use clusterdns::zone::{ClusterZone, Index, IndexOptions, ZoneConfig};

#[derive(Debug, Parser)]
#[command(name = "clusterdns", version, about = "Kubernetes cluster DNS server")]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "/etc/clusterdns/clusterdns.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Validate the configuration and exit: 0 if valid, 2 with the file, key and problem if not.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("clusterdns: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => {
            println!(
                "{}: ok ({} server block(s))",
                config.file.display(),
                config.servers.len()
            );
            ExitCode::SUCCESS
        }
        Command::Run => {
            init_tracing();
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("clusterdns: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Listen addresses shared by several blocks share their sockets.
    let mut by_addr: BTreeMap<SocketAddr, Vec<Block>> = BTreeMap::new();
    let programming = Arc::new(Histogram::new(PROGRAMMING_BUCKETS));
    let mut startup: Vec<(Arc<Index>, Duration)> = Vec::new();
    for (i, server) in config.servers.iter().enumerate() {
        let block = build_block(server, &programming)
            .await
            .with_context(|| format!("{}: server[{i}]", config.file.display()))?;
        if let (Some(zone), Some(k)) = (&block.cluster, &server.kubernetes) {
            startup.push((zone.index.clone(), k.startup_timeout));
        }
        for addr in &server.listen {
            by_addr.entry(*addr).or_default().push(block.clone());
        }
    }
    wait_for_sync(&startup).await;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let loops = Arc::new(LoopProbes::default());
    let mut forwarders: Vec<(Arc<Forwarder>, String)> = Vec::new();
    for (addr, blocks) in by_addr {
        for b in &blocks {
            if let Some(r) = &b.resolver
                && !forwarders.iter().any(|(f, _)| Arc::ptr_eq(f, &r.forwarder))
            {
                forwarders.push((r.forwarder.clone(), b.zones[0].clone()));
            }
        }
        let listener = server::bind(addr).await?;
        // Tests and scripts read the bound address (port 0 picks one) from this line.
        println!("clusterdns: listening on {} (udp, tcp)", listener.addr);
        tracing::info!(addr = %listener.addr, "listening (udp, tcp)");
        server::serve(listener, Router::new(blocks, loops.clone()), workers);
    }
    // Listeners are up: a probe that loops back through an upstream can now be seen.
    for (forwarder, zone) in forwarders {
        tokio::spawn(loops.clone().probe(forwarder, zone));
    }
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    Ok(())
}

/// Holds serving until every cluster zone has synced, or its startup timeout has passed.
async fn wait_for_sync(zones: &[(Arc<Index>, Duration)]) {
    let start = Instant::now();
    for (index, timeout) in zones {
        while !index.is_synced() {
            if start.elapsed() >= *timeout {
                tracing::warn!(
                    "starting server with unsynced Kubernetes API: unknown names get SERVFAIL until it syncs"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn build_block(server: &ServerConfig, programming: &Arc<Histogram>) -> anyhow::Result<Block> {
    let resolver = match &server.forward {
        Some(forward) => {
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
        None => {
            if server.cache.is_some() {
                tracing::warn!(
                    "[server.cache] without [server.forward] caches nothing: cluster answers are never cached"
                );
            }
            None
        }
    };
    let cluster = match &server.kubernetes {
        Some(k) => Some(start_cluster_zone(k, &own_addrs(&server.listen), programming).await?),
        None => None,
    };
    Ok(Block {
        zones: server.zones.clone(),
        cluster,
        resolver,
    })
}

async fn start_cluster_zone(
    k: &KubernetesConfig,
    own_addrs: &[IpAddr],
    programming: &Arc<Histogram>,
) -> anyhow::Result<ClusterZone> {
    let index = Arc::new(Index::new(IndexOptions {
        build: BuildOptions {
            endpoint_pod_names: k.endpoint_pod_names,
        },
        namespaces: k.namespaces.clone(),
        track_pods: k.pods == PodMode::Verified,
    }));
    let primary = k
        .zones
        .iter()
        .find(|z| !clusterdns::config::is_reverse_zone(z))
        .cloned()
        .unwrap_or_default();
    let zone = ClusterZone {
        config: Arc::new(ZoneConfig {
            zones: k.zones.clone(),
            primary: primary.into(),
            ttl: k.ttl,
            pods: k.pods,
            fallthrough: k.fallthrough.clone(),
            ignore_empty_service: k.ignore_empty_service,
            own_addrs: own_addrs.to_vec(),
        }),
        index: index.clone(),
    };
    match &k.source {
        ClusterSource::Manifests(dir) => {
            manifests::spawn(dir.clone(), move |events| index.apply(events));
        }
        source @ (ClusterSource::Endpoint(_)
        | ClusterSource::Kubeconfig { .. }
        | ClusterSource::InCluster) => {
            let client = kube::connect(source).await?;
            let options = WatchOptions {
                namespaces: k.namespaces.clone(),
                labels: k.labels.clone(),
                pods: k.pods == PodMode::Verified,
            };
            kube::spawn(client, options, programming.clone(), move |events| {
                index.apply(events)
            });
        }
    }
    Ok(zone)
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
                "192.0.2.1:53"
            } else {
                "[2001:db8::1]:53"
            }
            .parse()
            .expect("literal address");
            let bind: SocketAddr = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
                .parse()
                .expect("literal address");
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

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
