//! `trawl cluster scheduler` and `trawl cluster executor`: the servers of `engine::cluster`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use log::{LevelFilter, Log, Metadata, Record};

use crate::cli::{ClusterArgs, ClusterCommand};
use crate::engine::cluster::{ExecutorOptions, serve_executor, serve_scheduler};

/// Environment variable that sets how much the servers say on stderr.
const LOG_VAR: &str = "TRAWL_LOG";

/// `trawl cluster`.
pub fn run_cluster(args: ClusterArgs) -> Result<ExitCode> {
    init_log()?;
    let rt = crate::runtime();
    match args.command {
        ClusterCommand::Scheduler { bind } => {
            eprintln!("trawl cluster scheduler: listening on {bind} (clients: --cluster df://{bind})");
            rt.block_on(serve_scheduler(bind)).map_err(|e| anyhow!(e))?;
        }
        ClusterCommand::Executor { scheduler, bind, concurrency, work_dir, memory_limit } => {
            let memory = memory_limit.unwrap_or_default();
            eprintln!(
                "trawl cluster executor: serving on {bind} for the scheduler at {}, tasks sharing {} MiB",
                scheduler.addr(),
                memory.bytes() >> 20
            );
            let opts = ExecutorOptions { scheduler, bind, concurrency, work_dir, memory };
            rt.block_on(serve_executor(opts)).map_err(|e| anyhow!(e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ballista's own account of jobs, stages and tasks, on stderr: without it a stalled job says
/// nothing anywhere. `TRAWL_LOG` picks the level (default `info`).
fn init_log() -> Result<()> {
    let level = match std::env::var(LOG_VAR) {
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "off" => LevelFilter::Off,
            "error" => LevelFilter::Error,
            "warn" => LevelFilter::Warn,
            "info" | "" => LevelFilter::Info,
            "debug" => LevelFilter::Debug,
            "trace" => LevelFilter::Trace,
            _ => bail!("{LOG_VAR}={v:?}: give one of off, error, warn, info, debug, trace"),
        },
        Err(_) => LevelFilter::Info,
    };
    static LOGGER: StderrLog = StderrLog;
    // Fails only when a logger is already set, which nothing else in trawl does.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    Ok(())
}

/// One line per record: UTC time, level, where it comes from, what it says.
struct StderrLog;

impl Log for StderrLog {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let line = format!("{now} {:<5} {}: {}\n", record.level(), record.target(), record.args());
        // One write per record, so lines of concurrent tasks do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}
