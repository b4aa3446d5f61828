//! Integration tests: the real binary, real clients (hickory's client, dig, raw sockets),
//! assertions on the bytes that come back.

mod allow_list;
mod autopath;
mod cache_options;
mod chaos;
mod cli;
mod cluster_zone;
mod corefile;
mod corefile_differential;
mod deploy;
pub mod differential;
mod dns64;
mod dot;
mod dot_served;
mod explain;
mod faults;
mod file;
mod forward;
mod harness;
mod hosts;
mod k8s_external;
mod kube_api;
mod multicluster;
mod ops;
mod protocol;
mod reload;
mod resolvers;
mod rewrite;
mod robustness;
pub mod small_plugins;
mod template;
mod transfer;
mod upstream;
