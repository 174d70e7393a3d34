use std::process::ExitCode;

use clap::Parser;
use trawl::cli::{Cli, Command};
use trawl::commands::{
    run_cluster, run_compact, run_coverage, run_detect, run_hunt, run_ingest, run_manifest, run_query,
    run_report, run_sigma, run_timeline, run_verify,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ingest(args) => run_ingest(args),
        Command::Query(args) => run_query(args),
        Command::Compact(args) => run_compact(args),
        Command::Manifest(args) => run_manifest(args),
        Command::Verify(args) => run_verify(args),
        Command::Detect(args) => run_detect(args),
        Command::Sigma(args) => run_sigma(args),
        Command::Hunt(args) => run_hunt(args),
        Command::Report(args) => run_report(args),
        Command::Timeline(args) => run_timeline(args),
        Command::Coverage(args) => run_coverage(args),
        Command::Cluster(args) => run_cluster(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trawl: {}", causes_once(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: a wrapper that names its source in its own text
/// (`{path}: {source}`) would otherwise print that source twice.
fn causes_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if !out.contains(&cause) {
            out.push_str(if out.is_empty() { "" } else { ": " });
            out.push_str(&cause);
        }
    }
    out
}

/// `trawl query ... | head` closing the pipe early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
