//! The single integration-test binary: one module per area.

mod cli;
mod cluster;
mod common;
mod crash;
mod custody;
mod detect;
mod formats;
mod fuzz;
mod graduate;
mod growth;
mod guards;
mod hostile;
mod hunt;
// The planted-incident world, shared with the benchmark's `generate` example: one module for all.
#[path = "../../benches/incidents.rs"]
mod incidents;
mod ingest;
mod location;
mod mmdb;
mod output;
mod query;
mod races;
mod readers;
mod report;
mod s3;
mod scan;
mod sigma;
