//! Errors at the library's boundaries, each saying what to do about it.

use std::path::PathBuf;

/// Problems opening, creating or writing the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("no trawl lake at {0}: create one with `trawl ingest <LOGS> --lake {0}`, or check the path")]
    Missing(PathBuf),
    #[error("{path} is not a lake trawl can read: {reason}")]
    BadMeta { path: PathBuf, reason: String },
    #[error(
        "--lake {url}: lakes on {scheme}:// are not supported yet (trawl takes a local or mounted \
         folder, or s3://bucket/prefix): copy the lake to a local disk ({copy}), give that folder as \
         --lake, and copy it back after an ingest or compact if others read it there"
    )]
    ObjectStore { url: String, scheme: String, copy: String },
    #[error("--lake {url} is not a lake folder: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{context}: {reason}")]
    Storage { context: String, reason: String },
    #[error(
        "run {run}'s lease on the lake was last renewed {seconds} s ago (the object store did not answer): \
         another run may take it for a crashed run's and delete this run's files, so nothing more is \
         committed; run it again"
    )]
    LeaseLapsed { run: String, seconds: u64 },
    #[error(
        "the lake at {path} uses time zone {lake}, not {asked}: a lake's zone is fixed when it is \
         created (drop --tz, or ingest into a new lake)"
    )]
    ZoneMismatch { path: PathBuf, lake: String, asked: String },
    #[error("{0}")]
    BadZone(String),
    #[error(
        "another ingest into this lake committed some of the same files to table {table} while this one ran; \
         nothing of this run's was committed to it: run the ingest again to read what is left ({conflict})"
    )]
    Concurrent { table: String, conflict: String },
    #[error(
        "another run removed {path} from table {table} (version {version}) while this one was rewriting \
         it; nothing of this run's was committed to it, so no row is doubled: run it again"
    )]
    ConcurrentRemove { table: String, path: String, version: u64 },
    #[error(
        "committing to table {table} failed and the Delta log does not show whether the commit landed \
         ({reason}); the files it named are kept, and the next ingest or compact removes them if no version \
         names them: run it again"
    )]
    CommitUnknown { table: String, reason: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("writing Parquet {path}: {source}")]
    Parquet { path: PathBuf, source: Box<datafusion::parquet::errors::ParquetError> },
    #[error(
        "table {table} ({path}) uses {feature}, which trawl cannot read yet, so a query would show \
         wrong rows; {fix}"
    )]
    UnreadableFeature { table: String, path: PathBuf, feature: String, fix: String },
    #[error("Delta table {table}: {source}")]
    Delta { table: String, source: Box<deltalake::DeltaTableError> },
}

impl LakeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LakeError::Io { context: context.into(), source }
    }

    /// Wraps a delta-rs error with the table it concerns.
    pub fn delta(table: &str, source: deltalake::DeltaTableError) -> Self {
        LakeError::Delta { table: table.to_string(), source: Box::new(source) }
    }

    /// Wraps a Parquet error with the file it concerns.
    pub fn parquet(path: PathBuf, source: datafusion::parquet::errors::ParquetError) -> Self {
        LakeError::Parquet { path, source: Box::new(source) }
    }
}

/// Problems that stop a whole ingest run (a bad file only stops itself, and is reported).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{path}: {source}")]
    Input { path: PathBuf, source: std::io::Error },
    #[error("no input given: name log files or folders to ingest")]
    NoInput,
    #[error("reading the lake's ingests table to find files already read: {0}")]
    Ledger(String),
}
