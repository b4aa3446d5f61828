//! clusterdns: a Kubernetes cluster DNS server, a drop-in replacement for CoreDNS as kube-dns.
//!
//! # Layout
//!
//! ```text
//!  manifests dir ─► cluster::manifests ─┐
//!  (kube API: planned, cluster::kube)   ├─► ClusterEvent ─► zone::Index ─► zone::lookup ─► Answer
//!                                       │   (slim model)    (concurrent,    (pure, no I/O)
//!                                       │                    incremental)
//!  UDP/TCP ─► server::handler: parse once, pick the server block by zone,
//!             cluster zone → lookup → server::wire writes the response (EDNS, TC)
//! ```
//!
//! - [`config`]: the TOML file, validated into typed values; errors name file and key.
//! - [`cluster`]: sources of cluster state and the slim objects they produce.
//! - [`zone`]: the index, the name grammar and the lookup that implements the spec.
//! - [`server`]: sockets, request validation, response writing.
//!
//! `cluster` knows no DNS, `zone` knows neither Kubernetes API types nor sockets, `server`
//! never imports `cluster`; `main.rs` wires them.

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
