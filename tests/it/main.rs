//! Integration tests: the real binary, real clients (hickory's client, dig, raw sockets),
//! assertions on the bytes that come back.

mod allow_list;
mod chaos;
mod cli;
mod cluster_zone;
mod corefile;
mod corefile_differential;
mod deploy;
pub mod differential;
mod faults;
mod forward;
mod harness;
mod hosts;
mod kube_api;
mod ops;
mod protocol;
mod reload;
mod resolvers;
mod robustness;
mod template;
mod upstream;
