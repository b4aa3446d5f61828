//! Fault scenarios: server.
