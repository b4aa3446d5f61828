//! clusterdns: a Kubernetes cluster DNS server, a drop-in replacement for CoreDNS as kube-dns.
//!
//! # Data flow
//!
//! ```text
//!  kube API ─► cluster::kube (kube-runtime watchers) ─┐
//!  manifests dir ─► cluster::manifests (+ reload)     ├─► ClusterEvent ─► zone::Index
//!                                                     │   (slim model)    (one writer, readers
//!                                                     │                    never wait long)
//!  UDP (recvmmsg batches) / TCP ─► server ─► dns::Request::parse (once, no allocation)
//!    └► server::handler::Router picks the block (most specific zone)
//!       └► plugins::Pipeline, the block's stages in CoreDNS's plugin.cfg order:
//!            log → chaos → loadbalance → [cache] → rewrite → hosts → kubernetes → loop → forward
//!            (kubernetes: zone::lookup, pure; forward: cache, then forward::Forwarder)
//!       └► dns::writer (EDNS, compression, truncation) ─► the socket
//! ```
//!
//! A stage answers, or passes on; the stages before the one that answered see its records on
//! the way back (loadbalance rotates them). `cache` wraps `forward` only: cluster answers never
//! enter it. `rewrite` hands the stages after it a new question (the handler resumes the
//! pipeline with it) and turns their answer back for the client, also when it comes later from
//! an upstream. A plugin that is not configured is not in the list and costs nothing; the
//! cluster-name path allocates nothing (`tests/alloc.rs`).
//!
//! # Modules
//!
//! - `src/main.rs`: command line (run, check,
//!   convert-corefile), signals, allocator tuning.
//! - [`app`]: wiring: config → sources → indexes → blocks → listeners; reload keeps what did
//!   not change.
//! - [`config`]: the TOML file, validated into typed values; errors name file and key
//!   (`config::rewrite`: the rewrite rules, regexes compiled once).
//! - [`corefile`]: the Corefile grammar (imports, snippets, env), node-local placeholders and
//!   the conversion to TOML, for `--corefile` (in memory, at every reload) and
//!   `convert-corefile`.
//! - [`k8s`]: slim serde mirrors of the API objects DNS reads.
//! - [`cluster`]: sources of cluster state (API watchers, manifests) and the slim model.
//! - [`zone`]: the index, the name grammar, the record builders and the pure lookup that
//!   implements the spec.
//! - [`dns`]: the wire format, once: constants, the parsed request, bare replies, query
//!   building, label walking, the response writer.
//! - [`plugins`]: the request pipeline and one module per stage (`rewrite`: rules, the
//!   rewritten request, the answer turned back).
//! - [`server`]: sockets (UDP batches, TCP), routing to a block, rate limiting.
//! - [`forward`]: the upstream pool, health checks that decide down/up, UDP exchange with
//!   retransmission within the timeout, TCP, a descriptor budget; `reply` walks upstream
//!   replies once to check, truncate and re-serve them.
//! - [`cache`]: the moka response cache of forwarded answers.
//! - [`admin`]: `/health`, `/ready`, `/metrics` on hyper.
//! - [`metrics`]: atomic histograms, per-listener DNS metrics, text exposition.
//!
//! `cluster` knows no DNS; `zone` knows neither Kubernetes API types nor sockets; `dns` does
//! no I/O; `server` never imports `cluster`; `app.rs` and `main.rs` wire them.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod forward;
pub mod k8s;
pub mod metrics;
pub mod plugins;
pub mod server;
pub mod zone;
