//! trawl: archived web-proxy and firewall logs into a Delta Lake, and SQL over it.
//!
//! The binary is a thin shell over this library, so tests and benchmarks drive the same code.

pub mod cli;
pub mod commands;
pub mod detect;
pub mod digest;
pub mod engine;
pub mod error;
pub mod formats;
pub mod framing;
pub mod hunt;
pub mod ingest;
pub mod lake;
pub mod localtime;
pub mod output;
pub mod rejects;
pub mod report;
pub mod schema;
pub mod urlparts;
pub mod verify;

/// The async runtime for Delta and DataFusion calls (parsing itself runs on rayon threads).
/// Its threads have the large stack SQL planning needs (see `engine::SQL_STACK_BYTES`).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_stack_size(engine::SQL_STACK_BYTES)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}
