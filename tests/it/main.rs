//! The single integration-test binary: one module per area.

mod cli;
mod common;
mod crash;
mod custody;
mod detect;
mod formats;
mod fuzz;
mod growth;
mod hostile;
mod ingest;
mod query;
mod report;
