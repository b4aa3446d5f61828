//! Fault scenarios: cluster.
