//! The `clusterdns` binary: parse the command line, load the config, wire sources → index →
//! server, run until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};

use clusterdns::admin::{self, Readiness, Registry, Routes};
use clusterdns::app::{Reloaded, Running, Shared};
use clusterdns::config::Config;
use clusterdns::corefile::{self, ConfigSource};
use clusterdns::forward::LoopProbes;
use clusterdns::metrics::{Histogram, PROGRAMMING_BUCKETS};
use clusterdns::server::InFlight;

/// `clusterdns --version`: the crate version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CLUSTERDNS_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "clusterdns", version = VERSION, about = "Kubernetes cluster DNS server")]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "/etc/clusterdns/clusterdns.toml"
    )]
    config: PathBuf,
    /// Run from a CoreDNS Corefile instead: converted in memory at start and at every reload
    /// (imports re-read). Anything clusterdns does not implement is refused with its line.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "config")]
    corefile: Option<PathBuf>,
    #[command(flatten)]
    node_local: corefile::NodeLocal,
    /// Log format on stderr: human-readable text, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Validate the configuration and exit: 0 if valid, 2 with the file, key and problem if not.
    Check,
    /// Print the clusterdns TOML equivalent of a CoreDNS Corefile. Directives that cannot be
    /// translated are listed on stderr with their line; the exit code is 0 only when the
    /// translation is complete (1 when something was left out, 2 on a syntax error).
    ConvertCorefile {
        /// The Corefile to read.
        corefile: PathBuf,
    },
    /// Ask one question of the configured server without serving (the cluster listed and
    /// synced first) and say which stage answered it with what, and for a cluster name which
    /// objects made the records or why the name does not exist. Forwarded names are not sent.
    Explain {
        /// The name to ask.
        name: String,
        /// The record type.
        #[arg(default_value = "A")]
        qtype: String,
        /// The client address the question comes from (acl, autopath, whoami).
        #[arg(long, default_value = "127.0.0.1")]
        from: std::net::IpAddr,
    },
}

fn main() -> ExitCode {
    tune_malloc();
    spawn_memory_trimmer();
    let cli = Cli::parse();
    let vars = match cli.node_local.vars() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("clusterdns: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::ConvertCorefile { corefile }) = &cli.command {
        return convert_corefile(corefile, &vars);
    }
    let source = match cli.corefile.clone() {
        Some(path) => ConfigSource::Corefile { path, vars },
        None => ConfigSource::Toml(cli.config.clone()),
    };
    let config = match source.load() {
        Ok(loaded) => {
            for n in &loaded.notes {
                eprintln!("clusterdns: {}: note: {}", n.loc, n.text);
            }
            loaded.config
        }
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("clusterdns: {line}");
            }
            return ExitCode::from(e.exit_code());
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
        Command::ConvertCorefile { .. } => unreachable!("handled before loading the config"),
        Command::Explain { name, qtype, from } => explain(config, &name, &qtype, from),
        Command::Run => {
            init_tracing(cli.log_format);
            match run(config, source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "cannot serve");
                    eprintln!("clusterdns: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn convert_corefile(path: &std::path::Path, vars: &corefile::Vars) -> ExitCode {
    let options = corefile::Options { ipv6: true };
    let conversion = match corefile::convert_file(path, vars, options).0 {
        Ok(c) => c,
        Err(e) => {
            eprintln!("clusterdns: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", conversion.toml);
    for n in &conversion.notes {
        eprintln!("clusterdns: {}: note: {}", n.loc, n.text);
    }
    for n in &conversion.untranslated {
        eprintln!("clusterdns: {}: not translated: {}", n.loc, n.text);
    }
    if conversion.untranslated.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// `clusterdns explain`: one report per listen address.
fn explain(config: Config, name: &str, qtype: &str, from: std::net::IpAddr) -> ExitCode {
    let Ok(qtype) = qtype
        .to_ascii_uppercase()
        .parse::<hickory_proto::rr::RecordType>()
    else {
        eprintln!("clusterdns: {qtype:?} is not a record type");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clusterdns: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shared = Shared {
        readiness: Arc::new(Readiness::default()),
        registry: Arc::new(Registry::new(Arc::new(Histogram::new(PROGRAMMING_BUCKETS)))),
        loops: Arc::new(LoopProbes::default()),
        in_flight: Arc::new(InFlight::default()),
        workers: 1,
        explainer: Arc::default(),
    };
    let offline = match runtime.block_on(clusterdns::app::Offline::build(&config, &shared)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("clusterdns: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    for (addr, router) in &offline.routers {
        println!("listen: {addr}");
        print!(
            "{}",
            router.explain(name, qtype, std::net::SocketAddr::new(from, 0))
        );
    }
    drop(offline);
    runtime.shutdown_background();
    ExitCode::SUCCESS
}

fn run(config: Config, source: ConfigSource) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(serve(config, source))
}

async fn serve(config: Config, source: ConfigSource) -> anyhow::Result<()> {
    // Before anything can report ready: a SIGTERM from then on must reach the lame duck, not
    // the default action (exit at once).
    let mut hangup = signal(SignalKind::hangup()).context("install SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let shared = Arc::new(Shared {
        readiness: Arc::new(Readiness::default()),
        registry: Arc::new(Registry::new(Arc::new(Histogram::new(PROGRAMMING_BUCKETS)))),
        loops: Arc::new(LoopProbes::default()),
        in_flight: Arc::new(InFlight::default()),
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        explainer: Arc::default(),
    });
    // Admin first: probes get 503 (not connection refused) while the sources sync.
    let admin_addrs = admin_routes(&config);
    for (listener, routes) in admin::bind(&admin_addrs).await? {
        if let Ok(addr) = listener.local_addr() {
            println!("clusterdns: admin on http://{addr} ({})", routes.describe());
        }
        tokio::spawn(admin::serve(
            listener,
            routes,
            shared.readiness.clone(),
            shared.registry.clone(),
            shared.explainer.clone(),
        ));
    }
    let mut last_text = source.snapshot();
    let mut running = Running::start(config, shared.clone()).await?;
    tracing::info!(file = %source.path().display(), "serving");

    let interval = running.config.admin.reload_interval;
    let mut ticker = tokio::time::interval(if interval.is_zero() {
        Duration::from_secs(3600)
    } else {
        interval
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                last_text = source.snapshot();
                reload(&mut running, &shared, &source, &admin_addrs).await;
            }
            _ = all_synced(running.deferred_indexes()), if running.has_deferred() => {
                match running.apply_deferred().await {
                    Ok(()) => tracing::info!(file = %source.path().display(), "config reloaded: its new cluster source synced"),
                    Err(e) => tracing::error!(error = format!("{e:#}"), "config reload failed; the running config keeps serving"),
                }
            }
            _ = ticker.tick(), if !interval.is_zero() => {
                // Reading through the path follows the symlinks a ConfigMap volume swaps; a
                // Corefile's snapshot holds every file it imports.
                let text = source.snapshot();
                if text != last_text {
                    last_text = text;
                    reload(&mut running, &shared, &source, &admin_addrs).await;
                }
            }
        }
    }
    let lameduck = running.config.admin.lameduck;
    running.shutdown(lameduck).await;
    Ok(())
}

/// Resolves once every index has synced.
async fn all_synced(indexes: Vec<Arc<clusterdns::zone::Index>>) {
    while !indexes.iter().all(|i| i.is_synced()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Validates and applies the config file; an invalid one leaves the running config serving.
async fn reload(
    running: &mut Running,
    shared: &Shared,
    source: &ConfigSource,
    admin_addrs: &[(SocketAddr, Routes)],
) {
    let config = match source.load() {
        Ok(loaded) => {
            for n in &loaded.notes {
                tracing::warn!(note = %n, "translated from the Corefile with a difference");
            }
            loaded.config
        }
        Err(e) => {
            shared
                .registry
                .reload_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(error = %e, "config reload rejected; the running config keeps serving");
            return;
        }
    };
    if config == running.config {
        // Back to what serves: a reload still waiting for its sources is dropped.
        if running.drop_deferred() {
            tracing::info!("config back to the running one; the reload that waited is dropped");
        } else {
            tracing::info!("config unchanged");
        }
        if running.config.servers.iter().any(|s| s.tls.is_some()) {
            match running.reload_certificates() {
                Ok(n) => tracing::info!(addresses = n, "tls certificates read again"),
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "tls certificates could not be read again; the running ones keep serving"
                ),
            }
        }
        return;
    }
    if admin_routes(&config) != admin_addrs {
        tracing::warn!("admin addresses changed: they take effect at the next restart");
    }
    match running.reload(config).await {
        Ok(Reloaded::Applied) => {
            tracing::info!(file = %source.path().display(), "config reloaded")
        }
        Ok(Reloaded::Deferred) => {}
        Err(e) => {
            shared
                .registry
                .reload_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                error = format!("{e:#}"),
                "config reload failed; the running config keeps serving"
            );
        }
    }
}

/// The admin addresses and what each serves (endpoints sharing an address share a listener).
fn admin_routes(config: &Config) -> Vec<(SocketAddr, Routes)> {
    let mut out: Vec<(SocketAddr, Routes)> = Vec::new();
    let admin = &config.admin;
    for (addr, pick) in [(admin.health, 0), (admin.ready, 1), (admin.metrics, 2)] {
        let Some(addr) = addr else { continue };
        let i = match out.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                out.push((addr, Routes::default()));
                out.len() - 1
            }
        };
        let routes = &mut out[i].1;
        match pick {
            0 => routes.health = true,
            1 => routes.ready = true,
            _ => routes.metrics = true,
        }
    }
    out
}

/// Two glibc allocator parameters, for memory that stays where the index is:
/// - glibc raises its mmap threshold each time a large block is freed (up to 32 MiB); from then
///   on the API client's list pages and other big transient buffers come from the heap and
///   leave holes there that are never given back (measured: 5 MiB more RSS after syncing 10k
///   Services / 100k endpoints, and varying from run to run). A fixed threshold keeps blocks
///   over 128 KiB in their own mappings, returned to the system when freed.
/// - One arena: the watchers decode list pages on the runtime's threads while the index writer
///   builds entries on its own; with an arena per thread the freed pages of one are never
///   reused by the other (10k Services / 100k endpoints: 77 MiB RSS after sync, 56 MiB with one
///   arena). The cluster-name path allocates nothing, so the shared lock is not on it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; it is called first thing in main,
    // before any other thread exists or anything is allocated concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// How often freed memory is handed back to the system.
const MEMORY_TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// glibc keeps the memory freed after a burst in its arenas: a flood of 64,000 forwarded
/// queries left RSS 6.4 MiB up for good (9.6 → 16.0 MiB), and `malloc_trim` gave it back
/// (→ 10.5 MiB). A thread of its own trims every 10 s, so no query worker ever waits on it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn spawn_memory_trimmer() {
    let trimmer = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(MEMORY_TRIM_INTERVAL);
                // SAFETY: malloc_trim only returns free memory to the system; it is
                // thread-safe (it takes each arena's lock) and touches no live allocation.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
    if let Err(e) = trimmer {
        tracing::warn!(error = %e, "cannot start the memory trimmer; RSS may stay up after bursts");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn spawn_memory_trimmer() {}
