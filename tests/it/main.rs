//! The single integration-test binary: one module per area.

mod cli;
mod common;
mod crash;
mod detect;
mod formats;
mod hostile;
mod ingest;
mod query;
