//! The configuration file: a Corefile-like list of server blocks, in TOML.
//!
//! Two stages: [`RawConfig`] is what serde reads (unknown keys are errors everywhere), then
//! [`RawConfig::validate`] turns it into the typed [`Config`] the rest of the program uses.
//! Every error names the file, the key and what is wrong.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod acl;
pub mod autopath;
pub mod dns64;
pub mod file;
pub mod rewrite;
mod template;
pub mod tls;
pub mod transfer;
pub use acl::{AclAction, AclConfig, AclRule};
pub use file::FileConfig;
pub use template::TemplateConfig;
pub use tls::{ClientAuth, ListenTls};

/// A configuration error: the file, the key (dotted path, `server[0].listen[1]`) and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from (for messages and reloads).
    pub file: PathBuf,
    pub admin: AdminConfig,
    pub servers: Vec<ServerConfig>,
}

/// `[admin]`: the HTTP endpoints. Parsed and validated now; served by the ops issue.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub health: Option<SocketAddr>,
    pub ready: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    /// After SIGTERM, keep answering this long with `/ready` at 503 (CoreDNS `health { lameduck }`).
    pub lameduck: Duration,
    /// How often the config file is checked for changes (0: only on SIGHUP).
    pub reload_interval: Duration,
}

/// One `[[server]]` block: the zones it answers for, where it listens, and its plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Every address the block listens on, `tls://` ones included.
    pub listen: Vec<SocketAddr>,
    /// Those of `listen` given as `tls://`: DNS over TLS (RFC 7858) on TCP only, with `tls`.
    pub tls_listen: Vec<SocketAddr>,
    /// `[server.tls]`: the certificate of the `tls://` addresses (CoreDNS `tls`).
    pub tls: Option<ListenTls>,
    /// Rotate multi-address answers (CoreDNS `loadbalance`).
    pub loadbalance: bool,
    /// Log the queries whose response is of these classes (CoreDNS `log` with `class`).
    pub log: LogClasses,
    /// UDP responses per second per client /24 or /56 (0: unlimited).
    pub rate_limit: u32,
    /// TCP connections served at once per listen address.
    pub tcp_connections: usize,
    /// Largest UDP answer, whatever EDNS size a client asks for (CoreDNS `bufsize`); beyond,
    /// TC. 1232 by default (DNS Flag Day 2020), as unbound and Knot cap theirs.
    pub max_udp_size: u16,
    /// Zones this block serves, lower-case without the trailing dot; `""` is the root.
    pub zones: Vec<String>,
    pub kubernetes: Option<KubernetesConfig>,
    pub forward: Option<ForwardConfig>,
    pub cache: Option<CacheConfig>,
    /// CH-class TXT answers about the server (CoreDNS `chaos`).
    pub chaos: Option<ChaosConfig>,
    pub hosts: Option<HostsConfig>,
    /// Rewrite rules, in order (CoreDNS `rewrite`); empty: none.
    pub rewrite: Vec<rewrite::RewriteRule>,
    /// Access rules by query type and client network (CoreDNS `acl`), one entry per directive.
    pub acl: Vec<AclConfig>,
    /// ANY queries get the RFC 8482 HINFO answer (CoreDNS `any`).
    pub any: bool,
    /// Positive answers lose their authority and additional sections (CoreDNS `minimal`).
    pub minimal: bool,
    /// Names nobody else answers get the client's address and port (CoreDNS `whoami`).
    pub whoami: bool,
    /// Server-side search paths (CoreDNS `autopath`).
    pub autopath: Option<autopath::AutopathConfig>,
    pub k8s_external: Option<K8sExternalConfig>,
    /// `[[server.template]]`, in order (CoreDNS `template`).
    pub template: Vec<TemplateConfig>,
    /// AAAA records synthesized from A records (CoreDNS `dns64`).
    pub dns64: Option<dns64::Dns64Config>,
    /// Zone transfers of the cluster zone (CoreDNS `transfer`).
    pub transfer: Option<transfer::TransferConfig>,
    /// `[[server.file]]`: zones from zone files (CoreDNS `file`).
    pub file: Vec<FileConfig>,
}

/// `[server.k8s_external]`: Services' external addresses under zones of their own (CoreDNS
/// `k8s_external`); needs `[server.kubernetes]` in the same block.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sExternalConfig {
    /// Lower-case, no trailing dot; the block's zones by default.
    pub zones: Vec<String>,
    /// The label of the nameserver names below each zone (`ns1.<apex>.<zone>`).
    pub apex: String,
    pub ttl: u32,
    /// Headless Services (and endpoint names) answer with their endpoints.
    pub headless: bool,
    /// Zones whose NXDOMAIN goes on to the next plugin; `""` (from `"."`) means all.
    pub fallthrough: Vec<String>,
}

/// `[server.hosts]`: names from an `/etc/hosts`-style file and inline entries (CoreDNS
/// `hosts`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostsConfig {
    /// The hosts file (absolute); `None`: the inline entries only.
    pub file: Option<PathBuf>,
    /// Names outside these zones are not served (lower-case, no trailing dot, `""` the root;
    /// CIDR zones expanded). The block's zones by default.
    pub zones: Vec<String>,
    /// Inline lines, `ADDRESS NAME…`, served after the file's.
    pub entries: Vec<String>,
    pub ttl: u32,
    /// No PTR records from the entries (CoreDNS `no_reverse`).
    pub no_reverse: bool,
    /// How often the file is checked for changes (0: never).
    pub reload: Duration,
    /// Zones whose unknown names go on to the next plugin; `""` (from `"."`) means all.
    pub fallthrough: Vec<String>,
}

/// `[server.kubernetes]`: the cluster zone.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesConfig {
    /// Authoritative zones, lower-case without trailing dot (CIDR zones already expanded).
    pub zones: Vec<String>,
    pub source: ClusterSource,
    pub pods: PodMode,
    pub ttl: u32,
    /// Zones whose NXDOMAIN goes on to the next handler; `""` (from `"."`) means all zones.
    pub fallthrough: Vec<String>,
    /// Only these namespaces are exposed; empty means all.
    pub namespaces: Vec<String>,
    pub ignore_empty_service: bool,
    pub endpoint_pod_names: bool,
    /// EndpointSlices are watched and served (CoreDNS `noendpoints` turns this off: headless
    /// Services and endpoint names are then NXDOMAIN).
    pub endpoints: bool,
    /// Label selector for Services, EndpointSlices and Pods (API source, server-side).
    pub labels: Option<String>,
    /// Zones (each one of `zones`, forward) answered from ServiceImports and their
    /// EndpointSlices (Multi-Cluster Services, CoreDNS `multicluster`); empty: none watched.
    pub multicluster: Vec<String>,
    /// How long serving waits for the first sync of the API source.
    pub startup_timeout: std::time::Duration,
}

/// `[server.chaos]`: what `version.bind` and `authors.bind` (class CH) answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosConfig {
    #[serde(default = "default_chaos_version")]
    pub version: String,
    #[serde(default = "default_chaos_authors")]
    pub authors: Vec<String>,
}

fn default_chaos_version() -> String {
    concat!("clusterdns-", env!("CARGO_PKG_VERSION")).into()
}

fn default_chaos_authors() -> Vec<String> {
    vec!["the clusterdns developers".into()]
}

/// Which responses the query log writes, by CoreDNS's response classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogClasses {
    pub success: bool,
    pub denial: bool,
    pub error: bool,
}

impl LogClasses {
    pub const ALL: LogClasses = LogClasses {
        success: true,
        denial: true,
        error: true,
    };

    pub fn any(self) -> bool {
        self.success || self.denial || self.error
    }
}

/// `log = true | false | ["success", "denial", "error", "all"]`.
#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum RawLog {
    #[default]
    Off,
    Switch(bool),
    Classes(Vec<String>),
}

impl RawLog {
    fn validate(self, key: &str) -> Result<LogClasses, FieldError> {
        let names = match self {
            RawLog::Off | RawLog::Switch(false) => return Ok(LogClasses::default()),
            RawLog::Switch(true) => return Ok(LogClasses::ALL),
            RawLog::Classes(names) => names,
        };
        let mut classes = LogClasses::default();
        for (i, name) in names.iter().enumerate() {
            match name.as_str() {
                "success" => classes.success = true,
                "denial" => classes.denial = true,
                "error" => classes.error = true,
                "all" => classes = LogClasses::ALL,
                other => {
                    return Err(field_error(
                        format!("{key}[{i}]"),
                        format!("{other:?} is not a class: success, denial, error or all"),
                    ));
                }
            }
        }
        Ok(classes)
    }
}

impl KubernetesConfig {
    /// Does `other` need the same index and watchers? Only the source, what it watches and how
    /// records are built shape the index; zones, TTL, fallthrough and the like only change
    /// how answers are read from it, so a reload that changes only those keeps the index.
    pub fn same_index(&self, other: &KubernetesConfig) -> bool {
        self.source == other.source
            && self.namespaces == other.namespaces
            && self.labels == other.labels
            && self.endpoint_pod_names == other.endpoint_pod_names
            && self.endpoints == other.endpoints
            && self.multicluster.is_empty() == other.multicluster.is_empty()
            && (self.pods == PodMode::Verified) == (other.pods == PodMode::Verified)
    }
}

/// Where cluster state comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterSource {
    /// A directory of YAML/JSON manifests.
    Manifests(PathBuf),
    /// A plain API URL, e.g. `kubectl proxy`.
    Endpoint(String),
    /// A kubeconfig file and optional context.
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    /// In-cluster service account, then `$KUBECONFIG`.
    InCluster,
}

/// The `pods` option, as CoreDNS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodMode {
    Disabled,
    Insecure,
    Verified,
}

/// `[server.forward]`: upstream resolvers for every name the block does not answer itself
/// (CoreDNS `forward`).
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardConfig {
    pub to: Vec<ForwardTo>,
    pub policy: Policy,
    /// How often a failing upstream is probed with `. IN NS`.
    pub health_check: Duration,
    /// Consecutive failures before an upstream is marked down (0: never).
    pub max_fails: u32,
    /// Idle upstream TCP connections are closed after this long.
    pub expire: Duration,
    pub force_tcp: bool,
    pub prefer_udp: bool,
    /// Most queries in flight upstream at once (0: unbounded); beyond, REFUSED.
    pub max_concurrent: usize,
    /// Only names under this zone are forwarded (CoreDNS `forward FROM`; `""`: every name).
    pub from: String,
    /// Zones never forwarded (lower-case, no trailing dot).
    pub except: Vec<String>,
    /// When every upstream failed, SERVFAIL within this bound.
    pub timeout: Duration,
    /// How `tls://` upstreams are verified and authenticated.
    pub tls: ForwardTls,
}

/// `tls_*` keys of `[server.forward]` (CoreDNS `tls [CERT KEY [CA]]`, `tls_servername`): used
/// by the `tls://` upstreams only. Paths are absolute (resolved against the config's directory).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardTls {
    /// The name the upstreams' certificates must hold, sent as SNI; without it, their IP.
    pub server_name: Option<String>,
    /// CA certificates (PEM) to verify the upstreams with; without it, the system roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM) and its key, when the upstreams ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// How the forwarder orders upstreams for each query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    Random,
    RoundRobin,
    Sequential,
}

/// An upstream: an address, or a resolv.conf whose nameservers are used.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardTo {
    Addr(SocketAddr),
    /// DNS over TLS (RFC 7858): `tls://IP[:PORT]`, port 853 by default.
    Tls(SocketAddr),
    ResolvConf(PathBuf),
}

/// `[server.cache]`: the response cache in front of the forwarder (CoreDNS `cache`).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Entries of up to 512 bytes held at most; a larger answer counts one per 512 bytes
    /// started, so answers take at most `capacity` × 512 bytes (see `cache::UNIT_BYTES`).
    pub capacity: u64,
    /// Clamps for the TTL of positive answers.
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// Upper clamp for NXDOMAIN/NODATA entries (RFC 2308: SOA minimum).
    pub negative_max_ttl: u32,
    /// How long an upstream SERVFAIL is cached (0: not at all).
    pub servfail_ttl: u32,
    /// Hits an entry needs before it is refreshed ahead of expiry (0: no prefetch).
    pub prefetch: u32,
    /// How long past expiry an entry may be served when upstreams fail (RFC 8767; 0: never).
    pub serve_stale: Duration,
    /// Lower clamp for negative entries (CoreDNS `denial … MINTTL`); `None`: `min_ttl`.
    pub negative_min_ttl: Option<u32>,
    /// Hits are served with the TTL the entry was stored with, not the time it has left
    /// (CoreDNS `keepttl`).
    pub keep_ttl: bool,
    /// Only names under these zones are cached (empty: every name the block forwards).
    pub zones: Vec<String>,
    /// Zones whose positive / negative answers are not cached (CoreDNS `disable`).
    pub disable_success: Vec<String>,
    pub disable_denial: Vec<String>,
}

// === raw schema ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    server: Vec<RawServer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    health: Option<String>,
    ready: Option<String>,
    metrics: Option<String>,
    lameduck: Option<RawDuration>,
    reload_interval: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default = "default_listen")]
    listen: Vec<String>,
    #[serde(default = "default_server_zones")]
    zones: Vec<String>,
    #[serde(default = "default_true")]
    loadbalance: bool,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    rate_limit: i64,
    #[serde(default = "default_tcp_connections")]
    tcp_connections: i64,
    #[serde(default = "default_max_udp_size")]
    max_udp_size: i64,
    kubernetes: Option<RawKubernetes>,
    forward: Option<RawForward>,
    cache: Option<RawCache>,
    chaos: Option<ChaosConfig>,
    hosts: Option<RawHosts>,
    #[serde(default)]
    rewrite: Vec<rewrite::RawRule>,
    #[serde(default)]
    acl: Vec<acl::RawAcl>,
    #[serde(default)]
    any: bool,
    #[serde(default)]
    minimal: bool,
    #[serde(default)]
    whoami: bool,
    autopath: Option<autopath::RawAutopath>,
    k8s_external: Option<RawK8sExternal>,
    #[serde(default)]
    template: Vec<template::RawTemplate>,
    dns64: Option<dns64::RawDns64>,
    transfer: Option<transfer::RawTransfer>,
    #[serde(default)]
    file: Vec<file::RawFile>,
    tls: Option<tls::RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawK8sExternal {
    zones: Option<Vec<String>>,
    #[serde(default = "default_k8s_external_apex")]
    apex: String,
    #[serde(default = "default_ttl")]
    ttl: i64,
    #[serde(default)]
    headless: bool,
    #[serde(default)]
    fallthrough: Vec<String>,
}

fn default_k8s_external_apex() -> String {
    "dns".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHosts {
    file: Option<PathBuf>,
    zones: Option<Vec<String>>,
    #[serde(default)]
    entries: Vec<String>,
    #[serde(default = "default_hosts_ttl")]
    ttl: i64,
    #[serde(default)]
    no_reverse: bool,
    reload: Option<RawDuration>,
    #[serde(default)]
    fallthrough: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    #[serde(default = "default_kubernetes_zones")]
    zones: Vec<String>,
    manifests: Option<PathBuf>,
    endpoint: Option<String>,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    #[serde(default = "default_pods")]
    pods: PodMode,
    #[serde(default = "default_ttl")]
    ttl: i64,
    #[serde(default)]
    fallthrough: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    ignore_empty_service: bool,
    #[serde(default)]
    endpoint_pod_names: bool,
    #[serde(default = "default_true")]
    endpoints: bool,
    labels: Option<String>,
    #[serde(default)]
    multicluster: Vec<String>,
    #[serde(default = "default_startup_timeout_secs")]
    startup_timeout_secs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    to: Vec<String>,
    #[serde(default = "default_policy")]
    policy: Policy,
    health_check: Option<RawDuration>,
    #[serde(default = "default_max_fails")]
    max_fails: i64,
    expire: Option<RawDuration>,
    #[serde(default)]
    force_tcp: bool,
    #[serde(default)]
    prefer_udp: bool,
    #[serde(default = "default_max_concurrent")]
    max_concurrent: i64,
    from: Option<String>,
    #[serde(default)]
    except: Vec<String>,
    timeout: Option<RawDuration>,
    tls_servername: Option<String>,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

/// kubeadm's `max_concurrent 1000`: without a bound, a flood of unique names at a slow upstream
/// holds a task and a socket per query until memory and descriptors run out. `0` still means
/// unbounded.
fn default_max_concurrent() -> i64 {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    #[serde(default = "default_cache_capacity")]
    capacity: i64,
    #[serde(default = "default_cache_min_ttl")]
    min_ttl: i64,
    #[serde(default = "default_cache_max_ttl")]
    max_ttl: i64,
    #[serde(default = "default_cache_negative_max_ttl")]
    negative_max_ttl: i64,
    #[serde(default = "default_cache_servfail_ttl")]
    servfail_ttl: i64,
    #[serde(default)]
    prefetch: i64,
    serve_stale: Option<RawDuration>,
    negative_min_ttl: Option<i64>,
    #[serde(default)]
    keepttl: bool,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default)]
    disable_success: Vec<String>,
    #[serde(default)]
    disable_denial: Vec<String>,
}

/// A duration: whole seconds, or a string read by [`parse_duration`] (`"500ms"`, `"2s"`, `"5m"`,
/// `"1h"`, `"1m30s"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(i64),
    Text(String),
}

fn default_tcp_connections() -> i64 {
    1024
}
fn default_true() -> bool {
    true
}
fn default_listen() -> Vec<String> {
    vec!["0.0.0.0:53".to_owned()]
}
fn default_server_zones() -> Vec<String> {
    vec![".".to_owned()]
}
fn default_kubernetes_zones() -> Vec<String> {
    vec![
        "cluster.local".to_owned(),
        "in-addr.arpa".to_owned(),
        "ip6.arpa".to_owned(),
    ]
}
fn default_pods() -> PodMode {
    PodMode::Disabled
}
fn default_ttl() -> i64 {
    5
}
fn default_max_udp_size() -> i64 {
    1232
}

fn default_hosts_ttl() -> i64 {
    3600
}

fn default_startup_timeout_secs() -> i64 {
    5
}
fn default_cache_capacity() -> i64 {
    10_000
}
fn default_cache_max_ttl() -> i64 {
    3600
}
fn default_cache_min_ttl() -> i64 {
    5
}
fn default_cache_negative_max_ttl() -> i64 {
    1800
}
fn default_cache_servfail_ttl() -> i64 {
    5
}
fn default_policy() -> Policy {
    Policy::Random
}
fn default_max_fails() -> i64 {
    2
}

/// The largest `ttl` CoreDNS accepts.
pub const MAX_TTL: u32 = 3600;

impl Config {
    /// Reads and validates a config file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Config::parse(&text, file)
    }

    /// Parses and validates config text; `file` names it in errors and anchors relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message,
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| invalid("(document)".to_owned(), one_line(&e.to_string())))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = match e.path().to_string() {
                p if p == "." || p.is_empty() => "(document)".to_owned(),
                p => p,
            };
            invalid(key, one_line(&e.inner().to_string()))
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        raw.validate(base)
            .map_err(|FieldError { key, message }| invalid(key, message))
            .map(|(admin, servers)| Config {
                file: file.to_owned(),
                admin,
                servers,
            })
    }
}

/// toml's messages span several lines (a source excerpt); keep the one that says what is wrong.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('|')
                && !l
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ' ' || c == '|' || c == '^')
        })
        .collect();
    match lines.as_slice() {
        [] => message.trim().to_owned(),
        [only] => (*only).to_owned(),
        [first, .., last] if first.starts_with("TOML parse error") => {
            format!(
                "{last} ({})",
                first
                    .trim_start_matches("TOML parse error ")
                    .trim_end_matches(':')
            )
        }
        [.., last] => (*last).to_owned(),
    }
}

struct FieldError {
    key: String,
    message: String,
}

fn field_error(key: impl Into<String>, message: impl fmt::Display) -> FieldError {
    FieldError {
        key: key.into(),
        message: message.to_string(),
    }
}

impl RawConfig {
    fn validate(self, base: &Path) -> Result<(AdminConfig, Vec<ServerConfig>), FieldError> {
        let admin = AdminConfig {
            health: optional_addr("admin.health", self.admin.health.as_deref())?,
            ready: optional_addr("admin.ready", self.admin.ready.as_deref())?,
            metrics: optional_addr("admin.metrics", self.admin.metrics.as_deref())?,
            lameduck: duration("admin.lameduck", self.admin.lameduck, "5s")?,
            reload_interval: duration("admin.reload_interval", self.admin.reload_interval, "2s")?,
        };
        if admin.lameduck > Duration::from_secs(300) {
            return Err(field_error("admin.lameduck", "must be at most 300s"));
        }
        if self.server.is_empty() {
            return Err(field_error(
                "server",
                "no [[server]] block: nothing would be served",
            ));
        }
        let servers = self
            .server
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.validate(&format!("server[{i}]"), base))
            .collect::<Result<Vec<_>, _>>()?;
        // CoreDNS refuses the same zone twice on one address: which block answers is ambiguous.
        for (i, a) in servers.iter().enumerate() {
            for b in &servers[..i] {
                if let Some((j, addr)) = a.listen.iter().enumerate().find(|(_, l)| {
                    b.listen.contains(l) && a.tls_listen.contains(l) != b.tls_listen.contains(l)
                }) {
                    return Err(field_error(
                        format!("server[{i}].listen[{j}]"),
                        format!(
                            "{addr} is served with tls:// by one block and without by another: one address, one transport"
                        ),
                    ));
                }
                if let Some(zone) = a.zones.iter().find(|z| b.zones.contains(z))
                    && let Some(addr) = a.listen.iter().find(|l| b.listen.contains(l))
                {
                    let shown = if zone.is_empty() { "." } else { zone };
                    return Err(field_error(
                        format!("server[{i}].zones"),
                        format!("zone {shown:?} is already served on {addr} by an earlier block"),
                    ));
                }
            }
        }
        Ok((admin, servers))
    }
}

impl RawServer {
    fn validate(self, key: &str, base: &Path) -> Result<ServerConfig, FieldError> {
        let (listen, tls_listen, zones) = self.listen_and_zones(key)?;
        let tls = listen_tls(key, base, self.tls, &self.listen, &tls_listen)?;
        let kubernetes = self
            .kubernetes
            .map(|k| k.validate(&format!("{key}.kubernetes"), base))
            .transpose()?;
        let forward = self
            .forward
            .map(|f| f.validate(&format!("{key}.forward"), base))
            .transpose()?;
        let cache = self
            .cache
            .map(|c| c.validate(&format!("{key}.cache")))
            .transpose()?;
        let hosts = self
            .hosts
            .map(|h| h.validate(&format!("{key}.hosts"), base, &zones))
            .transpose()?;
        let rewrite = each(&format!("{key}.rewrite"), self.rewrite, |r, k| {
            r.validate(k)
        })?;
        let acl = each(&format!("{key}.acl"), self.acl, |a, k| {
            a.validate(k, &zones)
        })?;
        let autopath = self
            .autopath
            .map(|a| a.validate(&format!("{key}.autopath"), base, &zones))
            .transpose()?;
        let k8s_external = self
            .k8s_external
            .map(|e| e.validate(&format!("{key}.k8s_external"), &zones, kubernetes.is_some()))
            .transpose()?;
        let template = each(&format!("{key}.template"), self.template, |t, k| {
            t.validate(k, &zones)
        })?;
        let dns64 = self
            .dns64
            .map(|d| d.validate(&format!("{key}.dns64")))
            .transpose()?;
        let transfer = self
            .transfer
            .map(|t| t.validate(&format!("{key}.transfer"), &zones, kubernetes.is_some()))
            .transpose()?;
        let file = each(&format!("{key}.file"), self.file, |f, k| {
            f.validate(k, base, &zones)
        })?;
        let (tcp_connections, max_udp_size, rate_limit) = limits(
            key,
            self.tcp_connections,
            self.max_udp_size,
            self.rate_limit,
        )?;
        Ok(ServerConfig {
            listen,
            tls_listen,
            tls,
            loadbalance: self.loadbalance,
            log: self.log.validate(&format!("{key}.log"))?,
            tcp_connections,
            max_udp_size,
            rate_limit,
            zones,
            kubernetes,
            forward,
            cache,
            chaos: self.chaos,
            hosts,
            rewrite,
            acl,
            any: self.any,
            minimal: self.minimal,
            whoami: self.whoami,
            autopath,
            k8s_external,
            template,
            dns64,
            transfer,
            file,
        })
    }
}

/// The listen addresses given as `tls://`.
type TlsListen = Vec<SocketAddr>;

/// The block's `[server.tls]`, which a `tls://` address needs and only one gives a use.
fn listen_tls(
    key: &str,
    base: &Path,
    raw: Option<tls::RawTls>,
    listen: &[String],
    tls_listen: &TlsListen,
) -> Result<Option<ListenTls>, FieldError> {
    let tls = raw
        .map(|t| t.validate(&format!("{key}.tls"), base))
        .transpose()?;
    match (tls_listen.first(), &tls) {
        (Some(_), None) => {
            let i = listen
                .iter()
                .position(|l| l.starts_with("tls://"))
                .unwrap_or_default();
            Err(field_error(
                format!("{key}.listen[{i}]"),
                "a tls:// address needs [server.tls] (cert and key)",
            ))
        }
        (None, Some(_)) => Err(field_error(
            format!("{key}.tls"),
            "no listen address is tls://: the certificate would serve nothing",
        )),
        _ => Ok(tls),
    }
}

impl RawServer {
    /// The block's addresses (all, and those given as `tls://`) and zones, each list at least
    /// one long.
    fn listen_and_zones(
        &self,
        key: &str,
    ) -> Result<(Vec<SocketAddr>, TlsListen, Vec<String>), FieldError> {
        if self.listen.is_empty() {
            return Err(field_error(
                format!("{key}.listen"),
                "needs at least one address",
            ));
        }
        let mut listen = Vec::new();
        let mut tls_listen = Vec::new();
        for (i, a) in self.listen.iter().enumerate() {
            let key = format!("{key}.listen[{i}]");
            match a.strip_prefix("tls://") {
                Some(rest) => {
                    let addr = listen_addr(&key, rest)?;
                    tls_listen.push(addr);
                    listen.push(addr);
                }
                None => listen.push(listen_addr(&key, a.strip_prefix("dns://").unwrap_or(a))?),
            }
        }
        if self.zones.is_empty() {
            return Err(field_error(
                format!("{key}.zones"),
                "needs at least one zone (\".\" for all names)",
            ));
        }
        Ok((
            listen,
            tls_listen,
            zone_names(&format!("{key}.zones"), &self.zones)?,
        ))
    }
}

/// Each entry of a list of tables validated, its key `key[i]`.
fn each<T, U>(
    key: &str,
    items: Vec<T>,
    validate: impl Fn(T, &str) -> Result<U, FieldError>,
) -> Result<Vec<U>, FieldError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| validate(item, &format!("{key}[{i}]")))
        .collect()
}

/// `tcp_connections`, `max_udp_size`, `rate_limit`, each in its range.
fn limits(key: &str, tcp: i64, udp: i64, rate: i64) -> Result<(usize, u16, u32), FieldError> {
    let tcp = usize::try_from(tcp)
        .ok()
        .filter(|n| (1..=65_536).contains(n))
        .ok_or_else(|| {
            field_error(
                format!("{key}.tcp_connections"),
                "must be between 1 and 65536",
            )
        })?;
    let udp_size = u16::try_from(udp)
        .ok()
        .filter(|n| *n >= 512)
        .ok_or_else(|| {
            field_error(
                format!("{key}.max_udp_size"),
                format!("{udp} is out of range 512..=65535"),
            )
        })?;
    let rate = u32::try_from(rate).map_err(|_| {
        field_error(
            format!("{key}.rate_limit"),
            "must be 0 (off) or a number of responses per second",
        )
    })?;
    Ok((tcp, udp_size, rate))
}

impl RawKubernetes {
    fn validate(self, key: &str, base: &Path) -> Result<KubernetesConfig, FieldError> {
        let zones = kubernetes_zones(key, &self.zones)?;
        let source = self.source(key, base)?;
        let ttl = u32::try_from(self.ttl)
            .ok()
            .filter(|t| *t <= MAX_TTL)
            .ok_or_else(|| {
                field_error(
                    format!("{key}.ttl"),
                    format!("{} is out of range 0..={MAX_TTL}", self.ttl),
                )
            })?;
        let fallthrough = zone_names(&format!("{key}.fallthrough"), &self.fallthrough)?;
        let multicluster = multicluster_zones(key, &self.multicluster, &zones)?;
        let namespaces = self
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                if is_dns_label(ns) {
                    Ok(ns.to_ascii_lowercase())
                } else {
                    Err(field_error(
                        format!("{key}.namespaces[{i}]"),
                        format!("{ns:?} is not a valid namespace name"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let labels = match self.labels {
            Some(l) if !is_label_selector(&l) => {
                return Err(field_error(
                    format!("{key}.labels"),
                    format!("{l:?} is not a label selector (e.g. \"app=dns,tier!=test\")"),
                ));
            }
            other => other,
        };
        let startup_timeout = u64::try_from(self.startup_timeout_secs)
            .map(std::time::Duration::from_secs)
            .map_err(|_| {
                field_error(
                    format!("{key}.startup_timeout_secs"),
                    "must be 0 or more seconds",
                )
            })?;
        Ok(KubernetesConfig {
            labels,
            startup_timeout,
            zones,
            source,
            pods: self.pods,
            ttl,
            fallthrough,
            namespaces,
            ignore_empty_service: self.ignore_empty_service,
            endpoint_pod_names: self.endpoint_pod_names,
            endpoints: self.endpoints,
            multicluster,
        })
    }

    /// The one source of cluster state: manifests, an endpoint, a kubeconfig or in-cluster.
    fn source(&self, key: &str, base: &Path) -> Result<ClusterSource, FieldError> {
        let chosen = [
            self.manifests.as_ref().map(|_| "manifests"),
            self.endpoint.as_ref().map(|_| "endpoint"),
            self.kubeconfig.as_ref().map(|_| "kubeconfig"),
        ];
        let chosen: Vec<&str> = chosen.into_iter().flatten().collect();
        if chosen.len() > 1 {
            return Err(field_error(
                format!("{key}.{}", chosen[1]),
                format!(
                    "conflicts with {key}.{}: give one source of cluster state",
                    chosen[0]
                ),
            ));
        }
        if self.context.is_some() && self.kubeconfig.is_none() {
            return Err(field_error(format!("{key}.context"), "needs kubeconfig"));
        }
        let source = if let Some(dir) = self.manifests.clone() {
            let dir = if dir.is_absolute() {
                dir
            } else {
                base.join(dir)
            };
            if !dir.is_dir() {
                return Err(field_error(
                    format!("{key}.manifests"),
                    format!("{} is not a directory", dir.display()),
                ));
            }
            ClusterSource::Manifests(dir)
        } else if let Some(url) = self.endpoint.clone() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(field_error(
                    format!("{key}.endpoint"),
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            ClusterSource::Endpoint(url)
        } else if let Some(path) = self.kubeconfig.clone() {
            let path = if path.is_absolute() {
                path
            } else {
                base.join(path)
            };
            ClusterSource::Kubeconfig {
                path,
                context: self.context.clone(),
            }
        } else {
            ClusterSource::InCluster
        };
        Ok(source)
    }
}

/// `[server.kubernetes] zones`: names and CIDRs (as their reverse zones); at least one forward
/// zone, never the root.
fn kubernetes_zones(key: &str, given: &[String]) -> Result<Vec<String>, FieldError> {
    if given.is_empty() {
        return Err(field_error(
            format!("{key}.zones"),
            "needs at least one zone",
        ));
    }
    let mut zones = Vec::new();
    for (i, z) in given.iter().enumerate() {
        let k = format!("{key}.zones[{i}]");
        if z.contains('/') {
            zones.extend(cidr_zones(&k, z)?);
        } else {
            zones.push(zone_name(&k, z)?);
        }
    }
    if zones.iter().all(|z| is_reverse_zone(z)) {
        return Err(field_error(
            format!("{key}.zones"),
            "only reverse zones given: at least one forward zone (e.g. \"cluster.local\") is needed",
        ));
    }
    if zones.iter().any(String::is_empty) {
        return Err(field_error(
            format!("{key}.zones"),
            "the root zone \".\" cannot be a cluster zone",
        ));
    }
    Ok(zones)
}

impl RawK8sExternal {
    fn validate(
        self,
        key: &str,
        block: &[String],
        kubernetes: bool,
    ) -> Result<K8sExternalConfig, FieldError> {
        if !kubernetes {
            return Err(field_error(
                key,
                "needs [server.kubernetes] in the same block (its Services are what it serves)",
            ));
        }
        let zones = stage_zone_names(&format!("{key}.zones"), self.zones.as_deref(), block)?;
        let apex = self.apex.trim_end_matches('.').to_ascii_lowercase();
        if apex.is_empty() || apex.split('.').any(|l| !crate::cluster::model::is_label(l)) {
            return Err(field_error(
                format!("{key}.apex"),
                format!("{:?} is not a domain name", self.apex),
            ));
        }
        let ttl = u32::try_from(self.ttl)
            .ok()
            .filter(|t| *t <= 3600)
            .ok_or_else(|| {
                field_error(
                    format!("{key}.ttl"),
                    format!("{} is out of range 0..=3600", self.ttl),
                )
            })?;
        let fallthrough = zone_names(&format!("{key}.fallthrough"), &self.fallthrough)?;
        Ok(K8sExternalConfig {
            zones,
            apex,
            ttl,
            headless: self.headless,
            fallthrough,
        })
    }
}

impl RawHosts {
    fn validate(self, key: &str, base: &Path, block: &[String]) -> Result<HostsConfig, FieldError> {
        let zones = stage_zones(&format!("{key}.zones"), self.zones.as_deref(), block)?;
        if self.file.is_none() && self.entries.is_empty() {
            return Err(field_error(
                key,
                "needs a file, entries, or both (CoreDNS's `hosts` alone reads /etc/hosts: write file = \"/etc/hosts\")",
            ));
        }
        for (i, line) in self.entries.iter().enumerate() {
            crate::plugins::hosts::check_entry(line, &zones)
                .map_err(|why| field_error(format!("{key}.entries[{i}]"), why))?;
        }
        let ttl = u32::try_from(self.ttl)
            .ok()
            .filter(|t| (1..=65_535).contains(t))
            .ok_or_else(|| {
                field_error(
                    format!("{key}.ttl"),
                    format!("{} is out of range 1..=65535", self.ttl),
                )
            })?;
        let fallthrough = zone_names(&format!("{key}.fallthrough"), &self.fallthrough)?;
        Ok(HostsConfig {
            file: self
                .file
                .map(|f| if f.is_absolute() { f } else { base.join(f) }),
            zones,
            entries: self.entries,
            ttl,
            no_reverse: self.no_reverse,
            reload: duration(&format!("{key}.reload"), self.reload, "5s")?,
            fallthrough,
        })
    }
}

/// Zone names (each checked; errors name `key[i]`).
/// `multicluster`: zones the block's kubernetes stage serves (as CoreDNS requires), forward.
fn multicluster_zones(
    key: &str,
    given: &[String],
    zones: &[String],
) -> Result<Vec<String>, FieldError> {
    let names = zone_names(&format!("{key}.multicluster"), given)?;
    for (i, zone) in names.iter().enumerate() {
        let problem = if is_reverse_zone(zone) {
            "is a reverse zone: a multicluster zone holds service names"
        } else if !zones.contains(zone) {
            "is not one of the zones of this kubernetes block (add it to zones)"
        } else {
            continue;
        };
        return Err(field_error(
            format!("{key}.multicluster[{i}]"),
            format!("{zone:?} {problem}; zones = {zones:?}"),
        ));
    }
    Ok(names)
}

fn zone_names(key: &str, given: &[String]) -> Result<Vec<String>, FieldError> {
    given
        .iter()
        .enumerate()
        .map(|(i, z)| zone_name(&format!("{key}[{i}]"), z))
        .collect()
}

/// A stage's `zones`: left out, the block's; given, names and CIDRs; given empty, an error.
fn stage_zones(
    key: &str,
    given: Option<&[String]>,
    block: &[String],
) -> Result<Vec<String>, FieldError> {
    stage_list(key, given, block, zones_or_cidrs)
}

/// A stage's `zones` that takes names only (no CIDRs), likewise.
fn stage_zone_names(
    key: &str,
    given: Option<&[String]>,
    block: &[String],
) -> Result<Vec<String>, FieldError> {
    stage_list(key, given, block, zone_names)
}

fn stage_list(
    key: &str,
    given: Option<&[String]>,
    block: &[String],
    parse: fn(&str, &[String]) -> Result<Vec<String>, FieldError>,
) -> Result<Vec<String>, FieldError> {
    match given {
        None => Ok(block.to_vec()),
        Some([]) => Err(field_error(
            key,
            "needs at least one zone (leave it out for the block's zones)",
        )),
        Some(given) => parse(key, given),
    }
}

/// Zone names and CIDRs (as the reverse zones that cover them).
fn zones_or_cidrs(key: &str, given: &[String]) -> Result<Vec<String>, FieldError> {
    let mut zones = Vec::new();
    for (i, z) in given.iter().enumerate() {
        let k = format!("{key}[{i}]");
        if z.contains('/') {
            zones.extend(cidr_zones(&k, z)?);
        } else {
            zones.push(zone_name(&k, z)?);
        }
    }
    Ok(zones)
}

impl RawForward {
    fn validate(self, key: &str, base: &Path) -> Result<ForwardConfig, FieldError> {
        if self.to.is_empty() {
            return Err(field_error(
                format!("{key}.to"),
                "needs at least one upstream",
            ));
        }
        let to = self
            .to
            .iter()
            .enumerate()
            .map(|(i, t)| forward_to(&format!("{key}.to[{i}]"), t, base))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = self.tls(key, base, &to)?;
        let from = match &self.from {
            Some(zone) => zone_name(&format!("{key}.from"), zone)?,
            None => String::new(),
        };
        let except = zone_names(&format!("{key}.except"), &self.except)?;
        let positive = |name: &str, d: Duration| {
            if d.is_zero() {
                Err(field_error(
                    format!("{key}.{name}"),
                    "must be longer than 0",
                ))
            } else {
                Ok(d)
            }
        };
        let health_check = positive(
            "health_check",
            duration(&format!("{key}.health_check"), self.health_check, "500ms")?,
        )?;
        let expire = positive(
            "expire",
            duration(&format!("{key}.expire"), self.expire, "10s")?,
        )?;
        let timeout = positive(
            "timeout",
            duration(&format!("{key}.timeout"), self.timeout, "2s")?,
        )?;
        if timeout > Duration::from_secs(30) {
            return Err(field_error(
                format!("{key}.timeout"),
                "must be at most 30s: clients give up long before",
            ));
        }
        let max_fails = u32::try_from(self.max_fails)
            .map_err(|_| field_error(format!("{key}.max_fails"), "must be 0 or more"))?;
        let max_concurrent = usize::try_from(self.max_concurrent).map_err(|_| {
            field_error(
                format!("{key}.max_concurrent"),
                "must be 0 (unbounded) or more",
            )
        })?;
        if self.force_tcp && self.prefer_udp {
            return Err(field_error(
                format!("{key}.prefer_udp"),
                "cannot be combined with force_tcp",
            ));
        }
        Ok(ForwardConfig {
            to,
            policy: self.policy,
            health_check,
            max_fails,
            expire,
            force_tcp: self.force_tcp,
            prefer_udp: self.prefer_udp,
            max_concurrent,
            from,
            except,
            timeout,
            tls,
        })
    }

    /// The `tls_*` keys: only with a `tls://` upstream; with one, every file (or the system
    /// roots) readable and usable now.
    fn tls(&self, key: &str, base: &Path, to: &[ForwardTo]) -> Result<ForwardTls, FieldError> {
        let path = |p: &Option<String>| p.as_ref().map(|p| base.join(p));
        let tls = ForwardTls {
            server_name: self.tls_servername.clone(),
            ca: path(&self.tls_ca),
            cert: path(&self.tls_cert),
            key: path(&self.tls_key),
        };
        if !to.iter().any(|t| matches!(t, ForwardTo::Tls(_))) {
            if tls == ForwardTls::default() {
                return Ok(tls);
            }
            return Err(field_error(
                format!("{key}.to"),
                "tls_* keys are set but no upstream is tls://",
            ));
        }
        crate::forward::tls::client_config(&tls)
            .map_err(|e| field_error(format!("{key}.{}", e.key), e.message))?;
        Ok(tls)
    }
}

/// One `to` entry: `IP`, `IP:PORT`, `[IPv6]:PORT`, `tls://` before any of them, or a path.
fn forward_to(key: &str, t: &str, base: &Path) -> Result<ForwardTo, FieldError> {
    if t.starts_with('/') || t.starts_with('.') {
        return Ok(ForwardTo::ResolvConf(base.join(t)));
    }
    let (address, port, wrap): (&str, u16, fn(SocketAddr) -> ForwardTo) =
        match t.strip_prefix("tls://") {
            Some(rest) => (rest, 853, ForwardTo::Tls),
            None => (t.strip_prefix("dns://").unwrap_or(t), 53, ForwardTo::Addr),
        };
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(wrap(SocketAddr::new(ip, port)));
    }
    address.parse::<SocketAddr>().map(wrap).map_err(|_| {
        field_error(
            key,
            format!(
                "{t:?} is neither ip, ip:port, [ipv6]:port (each may start with tls://) nor a resolv.conf path"
            ),
        )
    })
}

/// Reads a [`RawDuration`], or the default when the key is absent.
fn duration(key: &str, value: Option<RawDuration>, default: &str) -> Result<Duration, FieldError> {
    match value {
        None => Ok(parse_duration(default).expect("valid default duration")),
        Some(RawDuration::Seconds(n)) => u64::try_from(n).map(Duration::from_secs).map_err(|_| {
            field_error(key, format!("{n} is not a duration: seconds cannot be negative"))
        }),
        Some(RawDuration::Text(t)) => parse_duration(&t).map_err(|why| {
            field_error(
                key,
                format!(
                    "{t:?} is not a duration ({why}); write seconds, or numbers with units such as 500ms, 2s, 5m, 1h or 1m30s"
                ),
            )
        }),
    }
}

/// The longest duration the text form takes.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// humantime's forms (`"500ms"`, `"1.5s"`, `"5m"`, `"1h"`, `"1m30s"`, `"2 min"`), plus a bare number
/// of seconds (`"5"`, `"0.5"`) and a number with a lone decimal point (`".5s"`, `"5.s"`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // humantime wants a unit, and digits on both sides of a decimal point.
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(split);
    let number = match number.strip_suffix('.') {
        Some(n) if !n.contains('.') => n,
        _ => number,
    };
    let zero = if number.starts_with('.') { "0" } else { "" };
    let unit = if rest.is_empty() && !number.is_empty() {
        "s"
    } else {
        ""
    };
    let d = humantime::parse_duration(&format!("{zero}{number}{rest}{unit}"))
        .map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err("longer than a year".to_owned());
    }
    Ok(d)
}

impl RawCache {
    fn validate(self, key: &str) -> Result<CacheConfig, FieldError> {
        let capacity = u64::try_from(self.capacity)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| {
                field_error(
                    format!("{key}.capacity"),
                    "must be a positive number of entries",
                )
            })?;
        let seconds = |name: &str, v: i64| {
            u32::try_from(v)
                .ok()
                .filter(|s| *s <= 7 * 86_400)
                .ok_or_else(|| {
                    field_error(
                        format!("{key}.{name}"),
                        "must be between 0 and 604800 seconds",
                    )
                })
        };
        let min_ttl = seconds("min_ttl", self.min_ttl)?;
        let max_ttl = seconds("max_ttl", self.max_ttl)?;
        if min_ttl > max_ttl {
            return Err(field_error(
                format!("{key}.min_ttl"),
                format!("{min_ttl} is above max_ttl ({max_ttl})"),
            ));
        }
        let negative_max_ttl = seconds("negative_max_ttl", self.negative_max_ttl)?;
        let servfail_ttl = seconds("servfail_ttl", self.servfail_ttl)?;
        if servfail_ttl > 300 {
            return Err(field_error(
                format!("{key}.servfail_ttl"),
                "must be at most 300 seconds (RFC 2308 §7.1)",
            ));
        }
        let prefetch = u32::try_from(self.prefetch).map_err(|_| {
            field_error(
                format!("{key}.prefetch"),
                "must be 0 (off) or a number of hits",
            )
        })?;
        let serve_stale = duration(&format!("{key}.serve_stale"), self.serve_stale, "0s")?;
        let negative_min_ttl = self
            .negative_min_ttl
            .map(|v| seconds("negative_min_ttl", v))
            .transpose()?;
        Ok(CacheConfig {
            capacity,
            min_ttl,
            max_ttl,
            negative_max_ttl,
            servfail_ttl,
            prefetch,
            serve_stale,
            negative_min_ttl,
            keep_ttl: self.keepttl,
            zones: zones_or_cidrs(&format!("{key}.zones"), &self.zones)?,
            disable_success: zones_or_cidrs(
                &format!("{key}.disable_success"),
                &self.disable_success,
            )?,
            disable_denial: zones_or_cidrs(&format!("{key}.disable_denial"), &self.disable_denial)?,
        })
    }
}

fn optional_addr(key: &str, value: Option<&str>) -> Result<Option<SocketAddr>, FieldError> {
    value.map(|v| listen_addr(key, v)).transpose()
}

/// `ip:port`, `[v6]:port`, or CoreDNS-style `:port` (all IPv4 addresses).
fn listen_addr(key: &str, value: &str) -> Result<SocketAddr, FieldError> {
    let parsed = match value.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
            .ok(),
        None => value.parse::<SocketAddr>().ok(),
    };
    parsed.ok_or_else(|| {
        field_error(
            key,
            format!("{value:?} is not a socket address (ip:port, [ipv6]:port or :port)"),
        )
    })
}

/// Validates and normalises a zone name: lower-case, no trailing dot, `"."` becomes `""`.
fn zone_name(key: &str, value: &str) -> Result<String, FieldError> {
    let trimmed = value.trim_end_matches('.');
    if value == "." || (value.is_empty()) {
        return if value == "." {
            Ok(String::new())
        } else {
            Err(field_error(key, "empty zone name (use \".\" for the root)"))
        };
    }
    if trimmed.len() > 253
        || trimmed
            .split('.')
            .any(|l| !is_dns_label(l) && !is_underscore_label(l))
    {
        return Err(field_error(
            key,
            format!("{value:?} is not a valid zone name"),
        ));
    }
    Ok(trimmed.to_ascii_lowercase())
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A plausible label selector: what the API accepts is checked by the API itself.
fn is_label_selector(s: &str) -> bool {
    !s.trim().is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=!,() ".contains(c))
}

fn is_underscore_label(label: &str) -> bool {
    label.len() <= 63 && label.starts_with('_') && is_dns_label(&label[1..])
}

/// Is this zone (normalised) under in-addr.arpa or ip6.arpa?
pub fn is_reverse_zone(zone: &str) -> bool {
    zone == "in-addr.arpa"
        || zone.ends_with(".in-addr.arpa")
        || zone == "ip6.arpa"
        || zone.ends_with(".ip6.arpa")
}

/// The most reverse zones one CIDR may expand to.
const MAX_CIDR_ZONES: u32 = 256;

/// Expands a CIDR into the reverse zones that cover it (CoreDNS splits at octet/nibble bounds).
fn cidr_zones(key: &str, value: &str) -> Result<Vec<String>, FieldError> {
    let bad = |why: &str| field_error(key, format!("{value:?} is not a usable CIDR zone: {why}"));
    let (ip, len) = value
        .split_once('/')
        .ok_or_else(|| bad("missing /prefix"))?;
    let ip: IpAddr = ip.parse().map_err(|_| bad("bad address"))?;
    let len: u32 = len.parse().map_err(|_| bad("bad prefix length"))?;
    match ip {
        IpAddr::V4(v4) => {
            if len > 32 {
                return Err(bad("prefix longer than 32"));
            }
            let bits = u32::from(v4);
            if len < 32 && bits & (u32::MAX >> len) != 0 {
                return Err(bad("host bits set"));
            }
            let octets = len.div_ceil(8);
            let count = 1u32 << (octets * 8 - len);
            if count > MAX_CIDR_ZONES {
                return Err(bad("expands to too many zones"));
            }
            Ok((0..count)
                .map(|i| {
                    let shift = 32 - octets * 8;
                    let net = if shift >= 32 {
                        bits
                    } else {
                        bits | (i << shift)
                    };
                    let bytes = net.to_be_bytes();
                    let mut labels: Vec<String> = bytes[..octets as usize]
                        .iter()
                        .rev()
                        .map(u8::to_string)
                        .collect();
                    labels.push("in-addr.arpa".to_owned());
                    labels.join(".")
                })
                .collect())
        }
        IpAddr::V6(v6) => {
            if len > 128 {
                return Err(bad("prefix longer than 128"));
            }
            let bits = u128::from(v6);
            if len < 128 && bits & (u128::MAX >> len) != 0 {
                return Err(bad("host bits set"));
            }
            let nibbles = len.div_ceil(4);
            let count = 1u32 << (nibbles * 4 - len);
            if count > MAX_CIDR_ZONES {
                return Err(bad("expands to too many zones"));
            }
            Ok((0..count)
                .map(|i| {
                    let shift = 128 - nibbles * 4;
                    let net = if shift >= 128 {
                        bits
                    } else {
                        bits | (u128::from(i) << shift)
                    };
                    let mut labels: Vec<String> = (0..nibbles)
                        .rev()
                        .map(|n| format!("{:x}", (net >> (124 - n * 4)) & 0xf))
                        .collect();
                    labels.push("ip6.arpa".to_owned());
                    labels.join(".")
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests;
