//! The single integration-test binary: one module per area.

mod cli;
mod common;
mod ingest;
mod query;
