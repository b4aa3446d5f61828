//! Fault scenarios (issue "Survive what takes cluster DNS down today"): each reproduces a way
//! cluster DNS was taken down, bounded in time and count, and checks it no longer is.

mod cluster;
mod forward;
mod reload;
mod server;
