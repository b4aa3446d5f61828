//! Fault scenarios: forward.
