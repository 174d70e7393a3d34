//! `trawl cluster scheduler` and `trawl cluster executor`: the servers of `engine::cluster`.

use std::process::ExitCode;

use anyhow::{Result, anyhow};

use crate::cli::{ClusterArgs, ClusterCommand};
use crate::engine::cluster::{ExecutorOptions, serve_executor, serve_scheduler};

/// `trawl cluster`.
pub fn run_cluster(args: ClusterArgs) -> Result<ExitCode> {
    let rt = crate::runtime();
    match args.command {
        ClusterCommand::Scheduler { bind } => {
            eprintln!("trawl cluster scheduler: listening on {bind} (clients: --cluster df://{bind})");
            rt.block_on(serve_scheduler(bind)).map_err(|e| anyhow!(e))?;
        }
        ClusterCommand::Executor { scheduler, bind, concurrency, work_dir } => {
            eprintln!("trawl cluster executor: serving on {bind} for the scheduler at {}", scheduler.addr());
            let opts = ExecutorOptions { scheduler, bind, concurrency, work_dir };
            rt.block_on(serve_executor(opts)).map_err(|e| anyhow!(e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
