//! clusterdns: a Kubernetes cluster DNS server, a drop-in replacement for CoreDNS as kube-dns.
//!
//! # Data flow
//!
//! ```text
//!  kube API ─► cluster::kube (kube-runtime watchers) ─┐
//!  manifests dir ─► cluster::manifests (+ reload)     ├─► ClusterEvent ─► zone::Index
//!                                                     │   (slim model)    (one writer, readers
//!                                                     │                    never wait long)
//!  UDP (recvmmsg batches) / TCP / TLS ─► server ─► dns::Request::parse (once, no allocation)
//!    └► server::handler::Router picks the block (most specific zone)
//!       └► plugins::Pipeline, the block's stages in CoreDNS's plugin.cfg order:
//!            log → dns64 → acl → any → chaos → loadbalance → [cache] → rewrite → autopath
//!            → minimal → template → transfer → hosts → k8s_external → kubernetes → file
//!            → loop → forward → whoami (kubernetes: zone::lookup, pure; k8s_external:
//!            Services' external addresses from the same index; forward: cache, then
//!            forward::Forwarder)
//!       └► dns::writer (EDNS, compression, truncation) ─► the socket (a zone transfer:
//!          several messages, written in order on the TCP connection)
//! ```
//!
//! A stage answers, or passes on; the stages before the one that answered see its answer on
//! the way back (loadbalance rotates records; minimal strips records, cache hits and upstream
//! replies alike). `acl`, `autopath`, `dns64`, `template` and `whoami` read the client's address
//! (`Request::peer`). `cache` wraps `forward` only: cluster answers never enter it. A plugin
//! that is not configured is not in the list and costs nothing; the cluster-name path allocates
//! nothing (`tests/alloc.rs`). `rewrite` hands the stages after it a new question (the handler
//! resumes the pipeline with it) and turns their answer back for the client, also when it
//! comes later from an upstream.
//!
//! # Modules
//!
//! - `src/main.rs`: command line (run, check, convert-corefile, explain), signals, allocator
//!   tuning.
//! - [`app`]: wiring: config → sources → indexes → blocks → listeners; reload keeps what did
//!   not change.
//! - [`config`]: the TOML file, validated into typed values; errors name file and key
//!   (`config::rewrite`: the rewrite rules, regexes compiled once; `config::tls`:
//!   `[server.tls]`, its files read at validation).
//! - [`corefile`]: the Corefile grammar (imports, snippets, env), node-local placeholders and
//!   the conversion to TOML, for `--corefile` (in memory, at every reload) and
//!   `convert-corefile`.
//! - [`k8s`]: slim serde mirrors of the API objects DNS reads.
//! - [`cluster`]: sources of cluster state (API watchers, manifests) and the slim model.
//! - [`zone`]: the index, the name grammar, the record builders and the pure lookup that
//!   implements the spec; `zone::explain` says why a cluster name answers what it does;
//!   `zone::transfer` lists a zone's records for AXFR; `zone::external` keeps Services'
//!   external addresses (for `k8s_external`); `zone::multicluster` answers the service names
//!   of `multicluster` zones from ServiceImports (Multi-Cluster Services, KEP-1645), which the
//!   index keeps apart (`zone::index::imports`) and the kube source watches only then;
//!   `zone::index::reverse` keeps the PTR owners per address family, `zone::index::slices`
//!   the EndpointSlices linked to each Service or import.
//! - [`dns`]: the wire format, once: constants, the parsed request, bare replies, query
//!   building, label walking, the response writer.
//! - [`plugins`]: the request pipeline and one module per stage (`acl`, `any`, `minimal`,
//!   `whoami` among them; `rewrite`: rules, the rewritten request, the answer turned back;
//!   `file` serves zone files (`plugins/file/{parse,zone}.rs`); `template` renders its records
//!   from a Go-template subset and reads them with hickory-proto's zone-text parsers; `dns64`
//!   asks the A question of the whole server again through `server::handler`; `autopath`
//!   walks a pod's search path; `k8s_external` answers Services' external addresses;
//!   `transfer` answers AXFR/IXFR).
//! - [`server`]: sockets (UDP batches, TCP, DNS over TLS on `tls://` addresses: the TCP
//!   connection loop over a tokio-rustls stream), routing to a block (`handler`: the walks of
//!   the stages that ask other questions — rewrite, autopath, dns64 — and `explain`), rate
//!   limiting.
//! - [`tls`]: TLS material read once for both ends (PEM certificates, keys, CAs, system roots)
//!   and the server configuration of `tls://` listen addresses (`client_auth`).
//! - [`forward`]: the upstream pool, health checks that decide down/up, UDP exchange with
//!   retransmission within the timeout on each upstream's pooled sockets (`pool`: random
//!   ports rotated, one reader task per socket, no socket per query; `waiters`: queries
//!   waiting by message ID), TCP, DNS over TLS
//!   (rustls; one pipelined connection per `tls://` upstream), a descriptor budget; `reply` walks upstream
//!   replies once to check, truncate and re-serve them.
//! - [`cache`]: the moka response cache of forwarded answers (keys hashed with foldhash).
//! - [`admin`]: `/health`, `/ready`, `/metrics`, `/explain` on hyper.
//! - [`metrics`]: atomic histograms, per-listener DNS metrics, text exposition;
//!   `metrics::expansions` counts search-path expansions by the asking pod's namespace.
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
pub mod tls;
pub mod zone;
