//! `trawl ingest`: find log files, parse them in parallel into Arrow, write them to the lake.
//!
//! Work is cut into items (a whole compressed file, or a newline-aligned chunk of a large plain
//! file) that a fixed set of rayon workers pull from one queue. Each worker owns its parsers,
//! builders and Parquet writers, so the hot loop shares nothing; memory per worker is bounded by
//! the batch size, the line buffer and the writer's budget, whatever the input size.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memchr::memchr_iter;
use rayon::prelude::*;
use serde::Serialize;

mod readahead;

use crate::digest::{Prefix, hex, read_blocks, sha256_file, sha256_stream};
use crate::error::{IngestError, LakeError};
use crate::formats::logformat::Logformat;
use crate::formats::{Batch, Format, FormatKind, LineMeta, ParseError, Pushed, RowSink, syslog};
use crate::framing::{Line, LineReader};
use crate::lake::{Lake, Lease, TableWriter, WrittenFile};
use crate::localtime::LocalDays;
use crate::rejects::RejectSink;
use crate::schema::{INGESTS, REJECTS, TableSpec};
use sha2::{Digest, Sha256};

/// Rows per record batch handed to the writer.
pub const BATCH_ROWS: usize = 64 * 1024;
/// Plain files larger than this are split into chunks of about this size.
pub const CHUNK_BYTES: u64 = 32 << 20;
/// Decompressed bytes read from each file to recognise its format.
const SNIFF_BYTES: usize = 64 << 10;
/// Lines tried when recognising a format.
const SNIFF_LINES: usize = 50;

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub paths: Vec<PathBuf>,
    /// Forces one format for every file instead of recognising each.
    pub format: Option<FormatKind>,
    /// Compiled Squid `logformat`s to recognise (tried before the built-in formats).
    pub logformats: Vec<Arc<Logformat>>,
    /// Worker threads.
    pub jobs: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Bytes each worker's Parquet writers may buffer per table (default
    /// [`crate::lake::WRITER_BUFFER_BYTES`]).
    pub writer_budget: Option<usize>,
    /// Settings for tests of races; the default leaves the run as it is.
    #[doc(hidden)]
    pub testing: Testing,
}

/// Which pass over a source read a block, for [`Testing::after_block`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStep {
    /// The pass that hashes the file and plans its chunks.
    Hash,
    /// A worker reading lines to parse.
    Parse,
}

/// Called after each block a run reads from a source, with the offset just past it (in the
/// file's bytes on disk, compressed ones included).
#[doc(hidden)]
pub type AfterBlock = Arc<dyn Fn(&Path, ReadStep, u64) + Send + Sync>;

/// Test-only settings: a race test changes a file at a chosen point of the run through
/// `after_block` (instead of polling for it, which a fast reader outruns), acts on the lake
/// once every file is written and before any commit through `before_commit`, and reads files
/// larger than `chunk_bytes` in chunks without writing 32 MiB of them.
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct Testing {
    pub after_block: Option<AfterBlock>,
    pub before_commit: Option<Arc<dyn Fn() + Send + Sync>>,
    pub chunk_bytes: Option<u64>,
}

impl std::fmt::Debug for Testing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testing")
            .field("after_block", &self.after_block.as_ref().map(|_| "set"))
            .field("before_commit", &self.before_commit.as_ref().map(|_| "set"))
            .field("chunk_bytes", &self.chunk_bytes)
            .finish()
    }
}

impl Testing {
    fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.unwrap_or(CHUNK_BYTES)
    }

    fn after(&self, path: &Path, step: ReadStep, offset: u64) {
        if let Some(f) = &self.after_block {
            f(path, step, offset);
        }
    }
}

/// How a file is stored on disk, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Plain,
    Gzip,
    Zstd,
    Bzip2,
}

impl Compression {
    fn from_magic(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            _ => Compression::Plain,
        }
    }

    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// What ingest learned about one source file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileReport {
    pub path: String,
    pub format: String,
    pub compression: &'static str,
    /// Bytes read: those the hash covers.
    pub size: u64,
    /// SHA-256 of the bytes read.
    pub sha256: String,
    pub lines: u64,
    pub blank_lines: u64,
    /// Lines that carry no row by design (`#Fields:` and other directives).
    pub header_lines: u64,
    pub rows: u64,
    pub rejects: u64,
    /// Rows whose text held bytes that are not UTF-8 (stored with replacement characters).
    pub lossy_rows: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// A read error that stopped the file early (rows before it are kept).
    pub error: Option<String>,
    /// Where reading started: 0, or past what an earlier read of the same first bytes took.
    pub start_byte: u64,
    /// Number of the first line read.
    pub first_line: u64,
    /// SHA-256 of the earlier read this one continues (the file grew).
    pub resumed_from: Option<String>,
    /// Rows of the earlier read replaced because its last line had been cut mid-write.
    pub replaced_rows: u64,
}

impl FileReport {
    fn add(&mut self, o: &FileReport) {
        self.lines += o.lines;
        self.blank_lines += o.blank_lines;
        self.header_lines += o.header_lines;
        self.rows += o.rows;
        self.rejects += o.rejects;
        self.lossy_rows += o.lossy_rows;
        self.first_ts = min_opt(self.first_ts, o.first_ts);
        self.last_ts = max_opt(self.last_ts, o.last_ts);
        if self.error.is_none() {
            self.error.clone_from(&o.error);
        }
    }

    fn saw(&mut self, ts: i64) {
        self.first_ts = min_opt(self.first_ts, Some(ts));
        self.last_ts = max_opt(self.last_ts, Some(ts));
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A file that was found but not ingested, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
    /// SHA-256 and size of the bytes of a copy skipped as already read, so `verify` can tell
    /// when it changes or grows later.
    #[serde(skip)]
    pub bytes: Option<(String, u64)>,
}

/// The outcome of a run.
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub files: Vec<FileReport>,
    pub skipped: Vec<Skipped>,
    #[serde(skip)]
    pub elapsed: Duration,
    /// Delta version committed per table.
    pub commits: Vec<(String, u64)>,
    /// Files a stopped run had written but not committed, removed before this one started.
    pub orphans_removed: usize,
    /// Most bytes one worker's Parquet writers for one table buffered at once.
    pub peak_writer_bytes: usize,
    /// Largest line buffer any worker grew.
    pub peak_line_buffer_bytes: usize,
    /// Most rows one batch held.
    pub peak_batch_rows: usize,
    /// Commit races this run lost to another run and ran again after, each as the conflict
    /// was reported (what the other run had committed).
    pub races_lost: Vec<String>,
}

impl IngestReport {
    /// Sum over all ingested files.
    pub fn totals(&self) -> FileReport {
        let mut t = FileReport::default();
        for f in &self.files {
            t.add(f);
            t.size += f.size;
        }
        t
    }
}

/// A log file found and recognised.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    display: String,
    size: u64,
    compression: Compression,
    format: Format,
    /// Tables that already hold this file's rows (from a run stopped between its commits).
    done_tables: Vec<&'static str>,
    /// Rows those tables' commits replaced of earlier reads (cut lines read whole).
    replaced_before: u64,
    /// Set when the file grew since an earlier read: where this read starts.
    resume: Option<Resume>,
}

/// A unit of work: a whole file, or a byte range of a plain file starting at a known line.
#[derive(Debug, Clone)]
struct WorkItem {
    source: usize,
    start: u64,
    end: u64,
    first_line: u64,
    /// Decompressed bytes to pass over before the first line (a compressed file that holds
    /// more than an earlier read of the same log).
    skip: u64,
    /// SHA-256 of a plain file's bytes before an offset (`start`, or the end of an earlier read
    /// when its cut last line is read again), which the worker goes on with over what it reads
    /// from there: a file that changes under its readers is then recorded by the bytes read.
    hash_from: Option<(u64, Sha256)>,
    /// SHA-256 planned of the file's bytes up to `end`, to tell the worker read them unchanged.
    expect: Option<String>,
    /// One chunk of several: its rows go to Parquet files of its own, dropped when an earlier
    /// chunk was not read as planned (the file's record stops there, so a later read has them).
    alone: bool,
}

/// Runs an ingest into `lake`.
pub fn ingest(lake: &Lake, opts: &IngestOptions) -> Result<IngestReport, IngestError> {
    if opts.paths.is_empty() {
        return Err(IngestError::NoInput);
    }
    // Files this run writes carry its lease's id; the lease keeps cleanups off them until the
    // run ends, and a killed run's uncommitted files are removed by the next run.
    let lease = lake.lease()?;
    let mut races_lost = Vec::new();
    loop {
        let mut committed = Vec::new();
        let out = run(lake, opts, &lease, &mut committed);
        if out.is_err() {
            // A run that failed (a full disk, a lost race) takes its uncommitted files with it;
            // those of a commit that may have landed stay for a cleanup that reads the log.
            let mut keep = committed.clone();
            if let Err(IngestError::Lake(LakeError::CommitUnknown { table, .. })) = &out {
                keep.push(table.clone());
            }
            lake.remove_own(&lease, &keep);
        }
        match out {
            // Another run committed some of the same sources first. Every run commits the tables
            // in one order and records every source in each, so the race is lost at the first
            // table, before anything of this run's is committed: reading again from the new state
            // skips what the winner holds (by content) and reads the rest.
            Err(IngestError::Lake(LakeError::Concurrent { table, conflict }))
                if committed.is_empty() && races_lost.len() < RACE_RETRIES =>
            {
                races_lost.push(format!("table {table}: {conflict}"));
            }
            Ok(mut report) => {
                report.races_lost = races_lost;
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Times an ingest that lost a commit race to another run's commit of the same files reads
/// again before it stops: each loss means another run committed, so the lake moved on.
const RACE_RETRIES: usize = 3;

/// The run itself: discover, decide, work, commit; `committed` gets each table it committed.
fn run(
    lake: &Lake,
    opts: &IngestOptions,
    lease: &Lease,
    committed: &mut Vec<String>,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let started_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let run_id = lease.id().to_string();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .expect("thread pool with a positive size");

    let (mut sources, mut skipped) = find_sources(opts, &pool)?;

    // Every decision below is taken against the tables as they are now, and the run commits
    // against these same states, so a run that committed the same sources meanwhile makes ours
    // fail its conflict check instead of doubling rows.
    let rt = crate::runtime();
    let mut orphans_removed = 0;
    let states: HashMap<&'static str, deltalake::DeltaTable> = rt.block_on(async {
        let mut m = HashMap::new();
        for spec in crate::schema::all_tables() {
            // A killed run's uncommitted files: invisible to Delta readers, but not to a glob.
            orphans_removed += lake.remove_orphans(spec).await?.len();
            m.insert(spec.table.as_str(), lake.ensure_table(spec).await?);
            // A run killed between a commit and its list for Parquet readers left that behind.
            lake.write_manifest(spec).await?;
        }
        Ok::<_, LakeError>(m)
    })?;
    let Decided { mut items, live, mut hashes } =
        decide(lake, &rt, &pool, &mut sources, &mut skipped, &opts.testing)?;
    // A run killed between its table commits left some tables holding a source and others not:
    // such a source is read again, and its rows go only to the tables that lack it.
    let data_tables: Vec<&'static TableSpec> =
        crate::schema::all_tables().into_iter().filter(|t| t.table != INGESTS.table).collect();
    let live_idx: Vec<usize> = (0..sources.len()).filter(|i| live[*i]).collect();
    let live_hashes: Vec<String> = live_idx.iter().map(|i| hashes[*i].clone()).collect();
    for spec in &data_tables {
        let held = rt.block_on(lake.sources_held(spec, &states[spec.table.as_str()], &live_hashes))?;
        for (k, h) in held.into_iter().enumerate() {
            if let Some(replaced) = h {
                let s = &mut sources[live_idx[k]];
                s.done_tables.push(spec.table.as_str());
                s.replaced_before += replaced;
            }
        }
    }
    // Largest first, so one big gzip file does not start last and run alone.
    items.sort_by_key(|w| std::cmp::Reverse(w.end - w.start));

    let total_bytes: u64 = items.iter().map(|w| w.end - w.start).sum();
    let pb = progress_bar(opts.progress, total_bytes);
    let queue = Mutex::new(VecDeque::from(items));
    let outs: Vec<Result<WorkerOut, LakeError>> = pool.broadcast(|_| {
        let budget = opts.writer_budget.unwrap_or(crate::lake::WRITER_BUFFER_BYTES);
        let mut w = Worker::new(lake, lease, budget, &opts.testing);
        loop {
            let next = queue.lock().expect("queue lock").pop_front();
            let Some(item) = next else { break };
            w.run(&item, &sources[item.source], &pb)?;
        }
        w.finish()
    });
    pb.finish_and_clear();

    let mut reports: Vec<FileReport> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| FileReport {
            path: s.display.clone(),
            format: s.format.name().to_string(),
            compression: s.compression.name(),
            size: s.size,
            sha256: hashes[i].clone(),
            start_byte: s.resume.as_ref().map_or(0, |r| r.start),
            first_line: s.resume.as_ref().map_or(1, |r| r.first_line),
            resumed_from: s.resume.as_ref().map(|r| r.from_sha256.clone()),
            replaced_rows: s.replaced_before,
            ..FileReport::default()
        })
        .collect();
    let mut written: HashMap<&'static str, Vec<WrittenFile>> = HashMap::new();
    let mut per_source: Vec<Vec<ItemOut>> = sources.iter().map(|_| Vec::new()).collect();
    let mut failure = None;
    let (mut peak_writer_bytes, mut peak_line_buffer_bytes, mut peak_batch_rows) = (0, 0, 0);
    for out in outs {
        match out {
            Ok(o) => {
                peak_writer_bytes = peak_writer_bytes.max(o.peak_writer_bytes);
                peak_line_buffer_bytes = peak_line_buffer_bytes.max(o.peak_line_buffer);
                peak_batch_rows = peak_batch_rows.max(o.peak_batch_rows);
                for item in o.items {
                    per_source[item.source].push(item);
                }
                for (t, f) in o.files {
                    written.entry(t).or_default().extend(f);
                }
            }
            Err(e) => failure = Some(e),
        }
    }
    // A file that changed under its readers is recorded, in the ledger and as the tables'
    // source, by the bytes read from its start: a rotated copy is then read from where they end.
    for (i, items) in per_source.into_iter().enumerate() {
        if what_was_read(&mut reports[i], items, lake, &mut written) {
            hashes[i].clone_from(&reports[i].sha256);
        }
    }
    let by_name = |name: &str| crate::schema::table(name).expect("writers use known tables");
    if let Some(e) = failure {
        for (t, f) in &written {
            lake.discard(by_name(t), f);
        }
        return Err(e.into());
    }
    // A grown file whose earlier read ended in a cut line: that line's row (or reject) is
    // swapped out in the same commit that adds the line read whole.
    // All of a table's lines go in one rewrite, so no file is rewritten twice.
    let mut removes: HashMap<&'static str, Vec<crate::lake::LakeFile>> = HashMap::new();
    // Rows each table's rewrite removed, per source: the table's commit records them too.
    let mut replaced_in: HashMap<(&'static str, usize), u64> = HashMap::new();
    for spec in &data_tables {
        let table = spec.table.as_str();
        let (owners, lines): (Vec<usize>, Vec<(String, i64)>) = live_idx
            .iter()
            .filter(|i| !sources[**i].done_tables.contains(&table))
            .filter_map(|i| sources[*i].resume.as_ref()?.replaces.clone().map(|l| (*i, l)))
            .unzip();
        if lines.is_empty() {
            continue;
        }
        let swap = match lake.without_lines(spec, &states[table], lease, &lines) {
            Ok(s) => s,
            Err(e) => {
                for (t, f) in &written {
                    lake.discard(by_name(t), f);
                }
                return Err(e.into());
            }
        };
        for (i, n) in owners.into_iter().zip(swap.dropped) {
            reports[i].replaced_rows += n;
            *replaced_in.entry((table, i)).or_default() += n;
        }
        removes.insert(table, swap.remove);
        written.entry(table).or_default().extend(swap.add);
    }
    let reports: Vec<FileReport> =
        reports.into_iter().zip(live).filter(|(_, l)| *l).map(|(r, _)| r).collect();

    // The run's own bookkeeping, written like any table and committed last.
    let mut custody = lake.writer(&INGESTS, lease);
    custody
        .write(Batch { batch: ingests_batch(&run_id, started_us, &reports, &skipped), days: Vec::new() })?;
    let custody = custody.finish()?;
    let meta = HashMap::from([(
        "trawl".to_string(),
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "run_id": run_id,
            "sources": reports.iter().map(|r| serde_json::json!({
                "path": r.path, "size": r.size, "format": r.format,
                "lines": r.lines, "rows": r.rows, "rejects": r.rejects,
            })).collect::<Vec<_>>(),
        }),
    )]);
    let mut commits = Vec::new();
    // Every table records every source of the run (rows or not), the ledger last: a table holds a
    // source exactly when its commit for that source happened.
    let mut tables: Vec<(&'static TableSpec, &[WrittenFile])> = data_tables
        .iter()
        .map(|spec| (*spec, written.get(spec.table.as_str()).map_or(&[][..], Vec::as_slice)))
        .collect();
    tables.sort_by_key(|(spec, _)| spec.table.clone());
    tables.push((&INGESTS, &custody));
    if let Some(f) = &opts.testing.before_commit {
        f();
    }
    rt.block_on(async {
        for (spec, files) in tables {
            // A lapsed S3 lease means another run may have deleted this run's files: nothing may
            // name them. Checked before every table, since each commit takes time.
            if let Err(e) = lease.check() {
                lake.discard(spec, files);
                return Err(e);
            }
            let table = spec.table.as_str();
            let recorded: Vec<(String, u64)> = live_idx
                .iter()
                .filter(|i| !sources[**i].done_tables.contains(&table))
                .map(|i| (hashes[*i].clone(), replaced_in.get(&(table, *i)).copied().unwrap_or(0)))
                .collect();
            let removes = removes.get(spec.table.as_str()).map_or(&[][..], Vec::as_slice);
            match lake
                .commit(spec, &states[spec.table.as_str()], files, removes, &recorded, meta.clone())
                .await
            {
                Ok(Some(v)) => {
                    committed.push(spec.table.clone());
                    commits.push((spec.table.clone(), v));
                }
                Ok(None) => {}
                Err(e @ LakeError::CommitUnknown { .. }) => return Err(e),
                Err(e) => {
                    lake.discard(spec, files);
                    return Err(e);
                }
            }
        }
        Ok::<_, LakeError>(())
    })?;

    Ok(IngestReport {
        files: reports,
        skipped,
        elapsed: started.elapsed(),
        commits,
        orphans_removed,
        peak_writer_bytes,
        peak_line_buffer_bytes,
        peak_batch_rows,
        races_lost: Vec::new(),
    })
}

/// Every file under the given paths, recognised (format, compression) or skipped with the reason.
fn find_sources(
    opts: &IngestOptions,
    pool: &rayon::ThreadPool,
) -> Result<(Vec<Source>, Vec<Skipped>), IngestError> {
    // A forced format is the only candidate; otherwise custom logformats first, then built-ins.
    let formats: Vec<Format> = match opts.format {
        Some(k) => vec![Format::Builtin(k)],
        None => opts
            .logformats
            .iter()
            .map(|l| Format::Logformat(l.clone()))
            .chain(FormatKind::ALL.into_iter().map(Format::Builtin))
            .collect(),
    };
    let mut skipped = Vec::new();
    let mut candidates = Vec::new();
    for p in &opts.paths {
        discover(p, &mut candidates, &mut skipped)?;
    }
    let forced = opts.format.is_some();
    let recognised: Vec<Result<Source, Skipped>> =
        pool.install(|| candidates.par_iter().map(|p| recognise(p, &formats, forced)).collect());
    let mut sources = Vec::new();
    for r in recognised {
        match r {
            Ok(s) => sources.push(s),
            Err(s) => skipped.push(s),
        }
    }
    Ok((sources, skipped))
}

/// What a run will read: work items, and per source whether it is read and its hash.
struct Decided {
    items: Vec<WorkItem>,
    live: Vec<bool>,
    hashes: Vec<String>,
}

/// Hashes every source and decides, against what the lake has read before, which to skip (same
/// bytes or content), which to read from where an earlier read stopped (grown), and which whole.
fn decide(
    lake: &Lake,
    rt: &tokio::runtime::Runtime,
    pool: &rayon::ThreadPool,
    sources: &mut [Source],
    skipped: &mut Vec<Skipped>,
    testing: &Testing,
) -> Result<Decided, IngestError> {
    // The same bytes are read once, whatever the file is called now (access.log -> access.log.1),
    // and once per run when a folder holds copies.
    let mut priors = recorded(lake, rt).map_err(IngestError::Ledger)?;
    priors.retain(|r| r.skipped.is_none());
    let mut known: HashMap<String, String> = HashMap::new();
    for r in &priors {
        known.entry(r.sha256.clone()).or_insert_with(|| r.path.clone());
    }
    // A plain file may have grown since it was read: its first bytes are then one of these reads.
    let resumable: HashMap<(u64, &str), &Recorded> = priors
        .iter()
        .filter(|r| r.resumable && r.size > 0)
        .map(|r| ((r.size, r.sha256.as_str()), r))
        .collect();
    let planned: Vec<Result<Planned, Skipped>> = pool.install(|| {
        sources
            .par_iter()
            .enumerate()
            .map(|(i, s)| {
                // Earlier reads of the same log name (access.log, access.log.1, access.log.2.gz)
                // may be where this file began: only those, so a lake of thousands of files does
                // not make each new file hash thousands of prefixes. A compressed file is inflated
                // here only when there is one, so ordinary archives are inflated once.
                let stem = log_stem(&s.display);
                let sizes: Vec<u64> = resumable
                    .values()
                    .filter(|r| log_stem(&r.path) == stem)
                    .filter(|r| s.compression != Compression::Plain || r.size < s.size)
                    .map(|r| r.size)
                    .collect();
                plan(i, s, &sizes, testing)
            })
            .collect()
    });
    let mut items = Vec::new();
    let mut live = vec![true; sources.len()];
    let mut hashes = vec![String::new(); sources.len()];
    for (i, p) in planned.into_iter().enumerate() {
        match p {
            Ok(mut p) => {
                let same = match known.get(&p.sha256) {
                    Some(first) => Some(format!("already read: same bytes (SHA-256) as {first}")),
                    None => p.content.as_ref().and_then(|c| known.get(c)).map(|first| {
                        format!("already read: its decompressed content is the bytes of {first} (SHA-256)")
                    }),
                };
                if let Some(reason) = same {
                    live[i] = false;
                    let bytes = Some((p.sha256.clone(), p.size));
                    skipped.push(Skipped { bytes, path: sources[i].display.clone(), reason });
                    continue;
                }
                // What this run reads is what was hashed, not what `stat` saw before.
                sources[i].size = p.size;
                // The longest earlier read this file starts with: read only what came after.
                let grown_from = p
                    .prefixes
                    .iter()
                    .rev()
                    .find_map(|x| resumable.get(&(x.len, x.sha256.as_str())).map(|r| (*r, x)));
                if let Some((prior, at)) = grown_from {
                    let r = resume_point(prior, at);
                    let s = &sources[i];
                    if s.compression == Compression::Plain {
                        match plan_from(i, s, (&r, at), &p.sha256, testing) {
                            Ok(rest) => p.items = rest,
                            Err(e) => {
                                live[i] = false;
                                let reason = format!("cannot read: {e}");
                                skipped.push(Skipped { bytes: None, path: s.display.clone(), reason });
                                continue;
                            }
                        }
                    } else {
                        for item in &mut p.items {
                            (item.skip, item.first_line) = (r.start, r.first_line);
                        }
                    }
                    sources[i].resume = Some(r);
                }
                known.insert(p.sha256.clone(), sources[i].display.clone());
                items.extend(p.items);
                hashes[i] = p.sha256;
            }
            Err(s) => {
                live[i] = false;
                skipped.push(s);
            }
        }
    }
    Ok(Decided { items, live, hashes })
}

/// One `ingests` row per file found: those read, and those skipped with the reason.
fn ingests_batch(run_id: &str, started_us: i64, files: &[FileReport], skipped: &[Skipped]) -> RecordBatch {
    let n = files.len() + skipped.len();
    // Read files first, then skipped ones, which have no counts, format or hash.
    let text = |of_file: &dyn Fn(&FileReport) -> Option<String>,
                of_skip: &dyn Fn(&Skipped) -> Option<String>| {
        let v: StringArray = files.iter().map(of_file).chain(skipped.iter().map(of_skip)).collect();
        Arc::new(v) as ArrayRef
    };
    let count = |f: fn(&FileReport) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            files.iter().map(|r| Some(f(r) as i64)).chain(skipped.iter().map(|_| None)),
        ))
    };
    let ts = |f: fn(&FileReport) -> Option<i64>| -> ArrayRef {
        let v: Vec<Option<i64>> = files.iter().map(f).chain(skipped.iter().map(|_| None)).collect();
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
    };
    let none = |_: &Skipped| None;
    let columns: Vec<ArrayRef> = INGESTS
        .columns
        .iter()
        .map(|c| match c.name.as_str() {
            "run_id" => text(&|_| Some(run_id.to_string()), &|_| Some(run_id.to_string())),
            "ingested_at" => {
                Arc::new(TimestampMicrosecondArray::from(vec![started_us; n]).with_timezone("UTC"))
            }
            "trawl_version" => {
                let v = env!("CARGO_PKG_VERSION");
                text(&|_| Some(v.to_string()), &|_| Some(v.to_string()))
            }
            "path" => text(&|f| Some(f.path.clone()), &|s| Some(s.path.clone())),
            "status" => {
                text(&|f| Some(if f.error.is_some() { "partial" } else { "ingested" }.to_string()), &|_| {
                    Some("skipped".to_string())
                })
            }
            "reason" => text(&|f| f.error.clone(), &|s| Some(s.reason.clone())),
            "format" => text(&|f| Some(f.format.clone()), &none),
            "compression" => text(&|f| Some(f.compression.to_string()), &none),
            "sha256" => text(&|f| Some(f.sha256.clone()), &|s| s.bytes.as_ref().map(|b| b.0.clone())),
            "size" => Arc::new(Int64Array::from_iter(
                files
                    .iter()
                    .map(|f| Some(f.size as i64))
                    .chain(skipped.iter().map(|s| s.bytes.as_ref().map(|b| b.1 as i64))),
            )),
            "lines" => count(|f| f.lines),
            "start_byte" => count(|f| f.start_byte),
            "first_line" => count(|f| f.first_line),
            "resumed_from" => text(&|f| f.resumed_from.clone(), &none),
            "replaced_rows" => count(|f| f.replaced_rows),
            "rows" => count(|f| f.rows),
            "rejects" => count(|f| f.rejects),
            "blank_lines" => count(|f| f.blank_lines),
            "header_lines" => count(|f| f.header_lines),
            "lossy_rows" => count(|f| f.lossy_rows),
            "first_ts" => ts(|f| f.first_ts),
            "last_ts" => ts(|f| f.last_ts),
            other => unreachable!("schemas/ingests.json names {other:?}, unknown to ingest"),
        })
        .collect();
    RecordBatch::try_new(INGESTS.arrow_schema(), columns).expect("one value per file per column")
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    pb
}

/// Lists the files under `path` (recursively), in a stable order.
fn discover(path: &Path, out: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) -> Result<(), IngestError> {
    let meta = fs::metadata(path).map_err(|e| IngestError::Input { path: path.to_path_buf(), source: e })?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        skipped.push(Skipped {
            bytes: None,
            path: path.display().to_string(),
            reason: "not a regular file (pipe, socket or device): not read".into(),
        });
        return Ok(());
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                skipped.push(Skipped {
                    bytes: None,
                    path: dir.display().to_string(),
                    reason: format!("cannot list folder: {e}"),
                });
                continue;
            }
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names.into_iter().rev() {
            let lmeta = match fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    skipped.push(Skipped {
                        bytes: None,
                        path: p.display().to_string(),
                        reason: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            if lmeta.is_dir() {
                stack.push(p);
            } else if lmeta.file_type().is_symlink() {
                // Links to files are followed; links to folders are not, so a loop cannot trap us.
                match fs::metadata(&p) {
                    Ok(m) if m.is_file() => out.push(p),
                    Ok(m) if m.is_dir() => skipped.push(Skipped {
                        bytes: None,
                        path: p.display().to_string(),
                        reason: "link to a folder: not followed (a link loop cannot trap the walk)".into(),
                    }),
                    Ok(_) => skipped.push(Skipped {
                        bytes: None,
                        path: p.display().to_string(),
                        reason: "link to something that is not a regular file: not read".into(),
                    }),
                    Err(e) => skipped.push(Skipped {
                        bytes: None,
                        path: p.display().to_string(),
                        reason: format!("broken link: {e}"),
                    }),
                }
            } else if lmeta.is_file() {
                out.push(p);
            } else {
                // A named pipe would block the run forever on open; a device is not evidence.
                skipped.push(Skipped {
                    bytes: None,
                    path: p.display().to_string(),
                    reason: "not a regular file (pipe, socket or device): not read".into(),
                });
            }
        }
    }
    // The walk pops in reverse; restore path order for readable reports.
    out.sort();
    Ok(())
}

/// The decompressed bytes of `start..end` (a plain file's range; a gzip file is read whole),
/// counting the bytes read from disk into `pb`.
fn open_stream(
    path: &Path,
    compression: Compression,
    (start, end): (u64, u64),
    pb: &ProgressBar,
    tally: &Tally,
    after: Option<&AfterBlock>,
) -> io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    let (pb, tally) = (pb.clone(), tally.clone());
    let after = after.map(|a| (a.clone(), path.to_path_buf()));
    if compression == Compression::Plain {
        f.seek(SeekFrom::Start(start))?;
        return Ok(Box::new(Counted { inner: f.take(end - start), pb, tally, after, pos: start }));
    }
    // Only the bytes that were hashed, should the file have grown since.
    decoder(compression, Counted { inner: f.take(end), pb, tally, after, pos: 0 })
}

/// The decompressed bytes of a compressed stream. Every decoder reads concatenated members,
/// frames or streams, as `cat a.gz b.gz` makes.
fn decoder<'a>(compression: Compression, r: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
    let buffered = BufReader::with_capacity(256 << 10, r);
    Ok(match compression {
        Compression::Plain => Box::new(buffered),
        Compression::Gzip => Box::new(MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(buffered)),
    })
}

/// Hashes and counts the bytes read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Opens a file, tells its compression and format from its first bytes and lines. A `forced`
/// format (`--format`, the one candidate) is taken without sniffing: lines it cannot read become
/// rejects, so a file whose head is odd (one 70 KB URL) is still read.
fn recognise(path: &PathBuf, formats: &[Format], forced: bool) -> Result<Source, Skipped> {
    let skip = |reason: String| Skipped { bytes: None, path: path.display().to_string(), reason };
    let size = fs::metadata(path).map_err(|e| skip(format!("cannot read: {e}")))?.len();
    if size == 0 {
        return Err(skip("empty file".into()));
    }
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(|e| skip(format!("cannot open: {e}")))?;
    let n = f.read(&mut magic).map_err(|e| skip(format!("cannot read: {e}")))?;
    let compression = Compression::from_magic(&magic[..n]);
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let stream = open_stream(path, compression, (0, size), &ProgressBar::hidden(), &Tally::default(), None)
        .map_err(|e| skip(format!("cannot open: {e}")))?;
    // A damaged stream still has a readable head; what it yields is enough to sniff.
    let _ = stream.take(SNIFF_BYTES as u64).read_to_end(&mut head);
    if head.is_empty() {
        return Err(skip("no data (empty after decompression)".into()));
    }
    let lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(|l| syslog::unwrap(l).1)
        .take(SNIFF_LINES);
    let sniffed = match formats {
        [only] if forced => Some(only.clone()),
        _ => Format::sniff(formats, lines),
    };
    let format = sniffed.ok_or_else(|| {
        skip(
            "not a log format trawl knows (first lines match none); force one with --format, or describe \
             it with --squid-logformat"
                .to_string(),
        )
    })?;
    Ok(Source {
        display: path.display().to_string(),
        path: path.clone(),
        size,
        compression,
        format,
        done_tables: Vec::new(),
        replaced_before: 0,
        resume: None,
    })
}

/// Adds up what the workers read of one source, in file order, keeping the Parquet files to
/// commit in `written`. True when the file is recorded by other bytes than those planned.
///
/// When an item was not read as planned (the file shrank or changed under its readers) and
/// the workers' hash reaches its end, the file is recorded by the bytes read from its first
/// byte to there, and the rows of later chunks are dropped with their files: they lie past
/// what is recorded, so the read that picks up there (the rotated copy's) has them. Nothing is
/// lost and nothing read twice.
fn what_was_read(
    r: &mut FileReport,
    mut items: Vec<ItemOut>,
    lake: &Lake,
    written: &mut HashMap<&'static str, Vec<WrittenFile>>,
) -> bool {
    items.sort_by_key(|it| it.start);
    let short = items.iter().position(|it| !it.as_planned);
    // Bytes read from the file's start that hash to what was read: the record to keep.
    let exact = short.and_then(|k| {
        let it = &items[k];
        let read = it.sha256.clone().filter(|_| it.report.error.is_none())?;
        Some((k, it.start + it.read, read, (it.size_after < it.end).then_some(it.size_after)))
    });
    let keep = exact.as_ref().map_or(items.len(), |(k, ..)| k + 1);
    let mut dropped = 0;
    for (j, it) in items.into_iter().enumerate() {
        if j < keep {
            r.add(&it.report);
            for (t, f) in it.files {
                written.entry(t).or_default().extend(f);
            }
        } else {
            dropped += it.report.rows + it.report.rejects;
            for (t, f) in &it.files {
                lake.discard(crate::schema::table(t).expect("writers use known tables"), f);
            }
        }
    }
    let Some((_, size, sha256, shrank)) = exact else {
        if short.is_some() && r.error.is_none() {
            // No hash reaches the point where reading stopped (a grown file read from the
            // middle): the planned record stays, and the reason says what that means.
            r.error = Some(format!(
                "{CHANGED_WHILE_READ}: it is shorter than planned or its bytes differ; the rows read are \
                 kept, but it is recorded as read whole, so a copy of it is skipped as already read: read \
                 that copy into a new lake to be sure of the rest"
            ));
        }
        return false;
    };
    let what = if let Some(now) = shrank {
        format!("it shrank to {now} bytes (truncated, as copytruncate rotation does?)")
    } else {
        "its bytes differ from those hashed when the run began".to_string()
    };
    let past = if dropped > 0 {
        format!(
            "; {dropped} rows and rejects read past them, in later chunks, are not kept: the copy has them"
        )
    } else {
        String::new()
    };
    r.error = Some(format!(
        "{CHANGED_WHILE_READ}: {what} after {size} of its {} bytes were read from its start; their rows \
         are kept and {READ_RECORDED}, so the rotated copy is read from where this stopped{past}",
        r.size
    ));
    (r.sha256, r.size) = (sha256, size);
    true
}

/// Cuts a source into work items; large plain files into newline-aligned chunks.
///
/// Chunks need their first line number, so this reads the file once, counting newlines
/// (memchr runs at memory speed; parsing is the cost). The same pass hashes the file, and its
/// first `n` bytes for each `n` in `prefixes` (sizes of earlier reads it may have grown from).
fn plan(index: usize, s: &Source, prefixes: &[u64], testing: &Testing) -> Result<Planned, Skipped> {
    let skip =
        |e: io::Error| Skipped { bytes: None, path: s.display.clone(), reason: format!("cannot read: {e}") };
    if s.compression != Compression::Plain && !prefixes.is_empty() {
        // A compressed file that may hold an earlier read of the same log (rotated, then
        // compressed): hash its content too, in the same pass as its bytes on disk.
        let mut raw =
            HashingReader { inner: File::open(&s.path).map_err(skip)?, hasher: Sha256::new(), bytes: 0 };
        let content = sha256_stream(decoder(s.compression, &mut raw).map_err(skip)?, prefixes, |_, _, _| {})
            .map_err(skip)?;
        // Whatever follows the compressed data still belongs to the file's hash.
        io::copy(&mut raw, &mut io::sink()).map_err(skip)?;
        let (sha256, size) = (hex(&raw.hasher.finalize()), raw.bytes);
        let item = WorkItem {
            source: index,
            start: 0,
            end: size,
            first_line: 1,
            skip: 0,
            hash_from: None,
            expect: None,
            alone: false,
        };
        return Ok(Planned {
            items: vec![item],
            sha256,
            size,
            content: Some(content.sha256),
            prefixes: content.prefixes,
        });
    }
    let mut chunks = Chunker::new(index, s, 0, 1, testing.chunk_bytes());
    // Workers hash what they read of a plain file, so the planned hash can be checked.
    chunks.chunk_hash = (s.compression == Compression::Plain).then(|| (0, Sha256::new()));
    let digest = sha256_file(&s.path, prefixes, |pos, block, before| {
        chunks.feed(pos, block, Some(before));
        testing.after(&s.path, ReadStep::Hash, pos + block.len() as u64);
    })
    .map_err(skip)?;
    Ok(Planned {
        items: chunks.finish(digest.size, Some(&digest.sha256)),
        sha256: digest.sha256,
        size: digest.size,
        content: None,
        prefixes: digest.prefixes,
    })
}

/// Cuts the part of a grown plain file not read before (from `r.start`) into work items whose
/// first line is `r.first_line`. Reads only that part; the hash of the earlier read (`at`) goes
/// on over it, so the workers can tell and record what they really read, as from byte 0.
fn plan_from(
    index: usize,
    s: &Source,
    (r, at): (&Resume, &Prefix),
    sha256: &str,
    testing: &Testing,
) -> io::Result<Vec<WorkItem>> {
    let mut chunks = Chunker::new(index, s, r.start, r.first_line, testing.chunk_bytes());
    // Reading starts at the earlier read's end, after the newline there, or at the start of
    // its cut last line (read again whole, the earlier hash covering it already).
    let mut hash = at.state.clone();
    if r.start > at.len {
        hash.update(b"\n");
    }
    let hashed_from = r.start.max(at.len);
    chunks.chunk_hash = Some((hashed_from, hash.clone()));
    let mut f = File::open(&s.path)?;
    f.seek(SeekFrom::Start(r.start))?;
    let mut pos = r.start;
    // Only up to where the file was hashed: bytes appended since belong to the next run.
    read_blocks(f.take(s.size.saturating_sub(r.start)), |block| {
        // The cut line before the earlier end holds no newline, so no chunk ends in it.
        let known = (hashed_from.saturating_sub(pos) as usize).min(block.len());
        chunks.feed(pos, &block[..known], None);
        chunks.feed(pos + known as u64, &block[known..], Some(&hash));
        hash.update(&block[known..]);
        pos += block.len() as u64;
        testing.after(&s.path, ReadStep::Hash, pos);
    })?;
    Ok(chunks.finish(pos, Some(sha256)))
}

/// Newline-aligned chunk boundaries of a plain file, found as its blocks go by.
struct Chunker {
    index: usize,
    chunked: bool,
    chunk_bytes: u64,
    items: Vec<WorkItem>,
    /// Lines seen before the current block, counting from the first line read.
    lines: u64,
    chunk_start: u64,
    chunk_line: u64,
    /// SHA-256 of the bytes before an offset, from which the current chunk's reader hashes.
    chunk_hash: Option<(u64, Sha256)>,
}

impl Chunker {
    fn new(index: usize, s: &Source, start: u64, first_line: u64, chunk_bytes: u64) -> Chunker {
        let chunked = s.compression == Compression::Plain && s.size > chunk_bytes && s.format.splittable();
        Chunker {
            index,
            chunked,
            chunk_bytes,
            items: Vec::new(),
            lines: first_line - 1,
            chunk_start: start,
            chunk_line: first_line,
            chunk_hash: None,
        }
    }

    /// Takes the block at `pos`; `before` is the hash of the bytes before it, when known.
    fn feed(&mut self, pos: u64, block: &[u8], before: Option<&Sha256>) {
        if !self.chunked {
            return;
        }
        // The hash up to each cut, continued through the block once, however many cuts it holds.
        let mut hashing = before.filter(|_| self.chunk_hash.is_some()).map(|b| (b.clone(), 0usize));
        for i in memchr_iter(b'\n', block) {
            self.lines += 1;
            let after = pos + i as u64 + 1;
            if after - self.chunk_start >= self.chunk_bytes {
                let state = hashing.as_mut().map(|(h, done)| {
                    h.update(&block[*done..=i]);
                    *done = i + 1;
                    h.clone()
                });
                self.cut(after, state);
            }
        }
    }

    /// Ends the current chunk at `end`; `state` is the hash of the bytes before `end`.
    fn cut(&mut self, end: u64, state: Option<Sha256>) {
        let expect = state.as_ref().map(|h| hex(&h.clone().finalize()));
        self.items.push(WorkItem {
            source: self.index,
            start: self.chunk_start,
            end,
            first_line: self.chunk_line,
            skip: 0,
            hash_from: self.chunk_hash.take(),
            expect,
            alone: false,
        });
        self.chunk_start = end;
        self.chunk_line = self.lines + 1;
        self.chunk_hash = state.map(|h| (end, h));
    }

    /// The items, given where the file ended and the hash of all its bytes (when this pass
    /// hashed them). A compressed file is read whole by one worker; its `end` only sizes the
    /// progress bar.
    fn finish(mut self, end: u64, sha256: Option<&str>) -> Vec<WorkItem> {
        if !self.chunked || end > self.chunk_start {
            self.cut(end.max(self.chunk_start), None);
            self.items.last_mut().expect("just cut").expect = sha256.map(str::to_string);
        }
        let alone = self.items.len() > 1;
        for item in &mut self.items {
            item.alone = alone;
        }
        self.items
    }
}

/// A source cut into work, with the hash of its bytes and of the prefixes asked for.
struct Planned {
    items: Vec<WorkItem>,
    /// SHA-256 of the bytes on disk.
    sha256: String,
    /// How many bytes that hash covers: what the run reads, however much the file grows meanwhile.
    size: u64,
    /// SHA-256 of the decompressed content, when it was computed (compressed files only).
    content: Option<String>,
    prefixes: Vec<Prefix>,
}

/// Where a file that grew since an earlier read picks up.
#[derive(Debug, Clone)]
struct Resume {
    /// SHA-256 of the earlier read (of the file's first `start`-ish bytes).
    from_sha256: String,
    start: u64,
    first_line: u64,
    /// The earlier read's last line, to be replaced: it had no newline and the file's growth
    /// shows it was cut mid-write. `(source_file as recorded then, line number)`.
    replaces: Option<(String, i64)>,
}

/// Where to go on reading a file whose first `prior.size` bytes were read before.
///
/// The earlier read took a last line without a newline as a whole line. If the file now has a
/// newline right there, that line was whole and reading starts after it; if the line goes on,
/// it was cut mid-write: it is read again whole, and the row made of its cut form is replaced.
fn resume_point(prior: &Recorded, at: &Prefix) -> Resume {
    let whole = |start| Resume {
        from_sha256: prior.sha256.clone(),
        start,
        first_line: prior.last_line + 1,
        replaces: None,
    };
    if at.last_byte == b'\n' {
        return whole(at.len);
    }
    if at.next_byte == Some(b'\n') {
        return whole(at.len + 1);
    }
    Resume {
        from_sha256: prior.sha256.clone(),
        start: at.line_start,
        first_line: prior.last_line,
        replaces: Some((prior.path.clone(), prior.last_line as i64)),
    }
}

/// A log's name without folder, compression and rotation suffixes: `logs/access.log.2.gz`,
/// `access.log-20240501.bz2` and `access.log` all give `access.log`.
fn log_stem(path: &str) -> &str {
    let mut name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    for ext in [".gz", ".zst", ".bz2"] {
        name = name.strip_suffix(ext).unwrap_or(name);
    }
    loop {
        let cut = name.rfind(['.', '-']).filter(|i| {
            let tail = &name[i + 1..];
            !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())
        });
        match cut {
            Some(i) if i > 0 => name = &name[..i],
            _ => return name,
        }
    }
}

/// What the lake's `ingests` table records of one file: a read, or a skip.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// The path as ingest found it.
    pub path: String,
    /// SHA-256 of the bytes read (empty for a skip).
    pub sha256: String,
    pub size: u64,
    /// Number of the last line read (counting from the file's first line).
    pub last_line: u64,
    /// Read to its end from a plain file: a file that grew from it can pick up after it.
    pub resumable: bool,
    /// Why the file was not read, for a skip.
    pub skipped: Option<String>,
}

/// Every file the lake's `ingests` table records: reads (ingested or partial, with a hash) and
/// skips (with the reason). Shared by ingest (what was read before) and verify (what to check).
pub(crate) fn recorded(lake: &Lake, rt: &tokio::runtime::Runtime) -> Result<Vec<Recorded>, String> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    rt.block_on(async {
        let mut out = Vec::new();
        if lake.load_table(&INGESTS).await.map_err(|e| e.to_string())?.is_none() {
            return Ok(out);
        }
        let engine =
            crate::engine::Engine::with_tables(lake, &[&INGESTS]).await.map_err(|e| e.to_string())?;
        let sql = format!("SELECT path, coalesce(sha256, ''), size, CAST(first_line + lines - 1 AS BIGINT), \
                   compression = 'plain' AND (status = 'ingested' OR strpos(coalesce(reason, ''), '{READ_RECORDED}') > 0), \
                   CASE WHEN status = 'skipped' THEN coalesce(reason, 'skipped') END FROM ingests \
                   WHERE status IN ('ingested', 'partial') AND sha256 IS NOT NULL OR status = 'skipped'");
        let df = engine.sql(&sql).await.map_err(|e| e.to_string())?;
        let batches = df.collect().await.map_err(|e| e.to_string())?;
        for b in batches {
            // The reader may hand strings back as views: cast to plain strings to read them.
            let text = |c: usize| {
                datafusion::arrow::compute::cast(b.column(c), &DataType::Utf8).map_err(|e| e.to_string())
            };
            let (p, h, why) = (text(0)?, text(1)?, text(5)?);
            let (p, h, why) = (p.as_string::<i32>(), h.as_string::<i32>(), why.as_string::<i32>());
            let size = b.column(2).as_primitive::<Int64Type>();
            let last = b.column(3).as_primitive::<Int64Type>();
            let resumable = b.column(4).as_boolean();
            for i in 0..b.num_rows() {
                out.push(Recorded {
                    path: p.value(i).to_string(),
                    sha256: h.value(i).to_string(),
                    size: if size.is_null(i) { 0 } else { size.value(i) as u64 },
                    last_line: if last.is_null(i) { 0 } else { last.value(i) as u64 },
                    resumable: !resumable.is_null(i) && resumable.value(i),
                    skipped: (!why.is_null(i)).then(|| why.value(i).to_string()),
                });
            }
        }
        Ok(out)
    })
}

/// Removes any syslog wrapper, then hands the line to the format's parser.
#[inline]
fn push_unwrapped(sink: &mut dyn RowSink, line: &[u8], no: u64) -> Result<Option<Pushed>, ParseError> {
    let (log_host, payload) = syslog::unwrap(line);
    // A header that could not be taken off is the likelier cause of a reject than the payload.
    sink.push(payload, LineMeta { no, log_host }).map_err(|e| syslog::header_problem(line).unwrap_or(e))
}

/// Counts bytes into the progress bar as they are read from disk, and into a tally.
struct Counted<R> {
    inner: R,
    pb: ProgressBar,
    tally: Tally,
    after: Option<(AfterBlock, PathBuf)>,
    /// Offset in the file just past the bytes read.
    pos: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pb.inc(n as u64);
        self.tally.add(&buf[..n]);
        self.pos += n as u64;
        if let Some((f, path)) = &self.after {
            f(path, ReadStep::Parse, self.pos);
        }
        Ok(n)
    }
}

/// The bytes a worker took from disk (and their hash when asked for), to tell afterwards
/// whether it read what was planned: a file truncated under the reader ends early.
#[derive(Clone, Default)]
struct Tally(Arc<Mutex<Counts>>);

#[derive(Default)]
struct Counts {
    hash: Option<Sha256>,
    /// Bytes at the start not hashed: the hash already covers them.
    unhashed: u64,
    bytes: u64,
}

impl Tally {
    /// Counts what is read from `start` on, and goes on with `hash_from` (the hash of the
    /// bytes before its offset) over what is read past that offset.
    fn hashing(start: u64, hash_from: Option<(u64, Sha256)>) -> Tally {
        let (from, hash) = hash_from.map_or((start, None), |(at, h)| (at.max(start), Some(h)));
        Tally(Arc::new(Mutex::new(Counts { hash, unhashed: from - start, bytes: 0 })))
    }

    fn add(&self, bytes: &[u8]) {
        let mut t = self.0.lock().expect("tally lock");
        let pass = (t.unhashed.saturating_sub(t.bytes) as usize).min(bytes.len());
        if let Some(h) = t.hash.as_mut() {
            h.update(&bytes[pass..]);
        }
        t.bytes += bytes.len() as u64;
    }

    /// Bytes read, and the SHA-256 from the file's start to their end if it was kept.
    fn take(&self) -> (u64, Option<String>) {
        let mut t = self.0.lock().expect("tally lock");
        // A read that stopped before the hash's offset: no hash ends where it stopped.
        let reached = t.bytes >= t.unhashed;
        (t.bytes, t.hash.take().filter(|_| reached).map(|h| hex(&h.finalize())))
    }
}

/// How a reason starts when a file changed while it was read; when the read is exact (one
/// worker read it from its first byte) it says so, and that read can be grown from.
const CHANGED_WHILE_READ: &str = "changed while it was read";
const READ_RECORDED: &str = "the bytes read are recorded as read";

struct WorkerOut {
    items: Vec<ItemOut>,
    files: Vec<(&'static str, Vec<WrittenFile>)>,
    peak_writer_bytes: usize,
    peak_line_buffer: usize,
    peak_batch_rows: usize,
}

/// What one worker made of one work item.
struct ItemOut {
    source: usize,
    start: u64,
    end: u64,
    report: FileReport,
    /// Bytes taken from disk.
    read: u64,
    /// SHA-256 of the file from its first byte to the end of what was read (plain files).
    sha256: Option<String>,
    /// Read to its planned end, and (when hashed) unchanged.
    as_planned: bool,
    /// The file's size once the item was read (plain files).
    size_after: u64,
    /// The Parquet files of an item read alone, per table.
    files: Vec<(&'static str, Vec<WrittenFile>)>,
}

/// One thread's parsers, builders and writers.
struct Worker<'a> {
    lake: &'a Lake,
    lease: &'a Lease,
    budget: usize,
    after_block: Option<AfterBlock>,
    peak_line_buffer: usize,
    peak_batch_rows: usize,
    days: LocalDays,
    sinks: Vec<(String, Box<dyn RowSink>)>,
    writers: Vec<(&'static str, TableWriter)>,
    rejects: RejectSink,
    items: Vec<ItemOut>,
    /// Most bytes the writers of an item read alone buffered.
    peak_alone_writer_bytes: usize,
}

impl<'a> Worker<'a> {
    fn new(lake: &'a Lake, lease: &'a Lease, budget: usize, testing: &Testing) -> Self {
        Worker {
            lake,
            lease,
            budget,
            after_block: testing.after_block.clone(),
            peak_line_buffer: 0,
            peak_batch_rows: 0,
            days: LocalDays::new(lake.tz()),
            sinks: Vec::new(),
            writers: Vec::new(),
            rejects: RejectSink::default(),
            items: Vec::new(),
            peak_alone_writer_bytes: 0,
        }
    }

    fn writer(
        writers: &mut Vec<(&'static str, TableWriter)>,
        (lake, lease, budget): (&Lake, &Lease, usize),
        spec: &'static TableSpec,
    ) -> usize {
        match writers.iter().position(|(t, _)| *t == spec.table) {
            Some(i) => i,
            None => {
                writers.push((spec.table.as_str(), lake.writer(spec, lease).with_budget(budget)));
                writers.len() - 1
            }
        }
    }

    fn run(&mut self, item: &WorkItem, src: &Source, pb: &ProgressBar) -> Result<(), LakeError> {
        let mut report = FileReport::default();
        let plain = src.compression == Compression::Plain;
        let tally = Tally::hashing(item.start, item.hash_from.clone().filter(|_| plain));
        let opened = open_stream(
            &src.path,
            src.compression,
            (item.start, item.end),
            pb,
            &tally,
            self.after_block.as_ref(),
        )
        .and_then(|s| {
            // A compressed file is one worker's alone: inflating it in a thread of its own
            // keeps a second core busy when it is the last (or only) file left.
            if plain { Ok(s) } else { Ok(Box::new(readahead::ReadAhead::new(s)?) as Box<dyn Read + Send>) }
        })
        .and_then(|mut s| {
            // Content an earlier read of this log already took.
            let passed = io::copy(&mut (&mut s).take(item.skip), &mut io::sink())?;
            if passed < item.skip {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "shorter than when it was planned"));
            }
            Ok(s)
        });
        let mut files = Vec::new();
        match opened {
            Ok(stream) => files = self.parse(item, src, stream, &mut report)?,
            Err(e) => report.error = Some(format!("cannot open: {e}")),
        }
        let (read, sha256) = tally.take();
        let size_after = if plain { fs::metadata(&src.path).map_or(0, |m| m.len()) } else { 0 };
        let as_planned = report.error.is_none()
            && match (&sha256, &item.expect) {
                (Some(read), Some(planned)) => read == planned,
                // Without a hash, the file must at least still hold the range, whole.
                _ => !plain || (read >= item.end - item.start && size_after >= item.end),
            };
        self.items.push(ItemOut {
            source: item.source,
            start: item.start,
            end: item.end,
            report,
            read,
            sha256,
            as_planned,
            size_after,
            files,
        });
        Ok(())
    }

    /// Reads the item's lines into rows and rejects; an item read alone gets writers of its
    /// own, whose files are returned.
    fn parse(
        &mut self,
        item: &WorkItem,
        src: &Source,
        stream: Box<dyn Read + Send>,
        report: &mut FileReport,
    ) -> Result<Vec<(&'static str, Vec<WrittenFile>)>, LakeError> {
        // Recovering a source some tables already hold: its rows get a sink of their own, so
        // the ones those tables have can be dropped without touching other files' rows. A chunk
        // read alone too, so its rows can be dropped with its files.
        let mut own = (!src.done_tables.is_empty() || item.alone).then(|| src.format.sink(self.days.clone()));
        let sink = match own.as_mut() {
            Some(s) => s,
            None => {
                let si = match self.sinks.iter().position(|(k, _)| k == src.format.name()) {
                    Some(i) => i,
                    None => {
                        self.sinks.push((src.format.name().to_string(), src.format.sink(self.days.clone())));
                        self.sinks.len() - 1
                    }
                };
                &mut self.sinks[si].1
            }
        };
        let mut alone = item.alone.then(|| (Vec::new(), RejectSink::default()));
        let (writers, rejects) = match alone.as_mut() {
            Some((w, r)) => (w, r),
            None => (&mut self.writers, &mut self.rejects),
        };
        sink.set_source(&src.display);
        let keep_rows = !src.done_tables.contains(&sink.table().table.as_str());
        let keep_rejects = !src.done_tables.contains(&REJECTS.table.as_str());
        let wi = Self::writer(writers, (self.lake, self.lease, self.budget), sink.table());
        let ri = Self::writer(writers, (self.lake, self.lease, self.budget), &REJECTS);
        let format = src.format.name();
        let mut lines = LineReader::new(stream, item.first_line);
        loop {
            let (no, line) = match lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    report.error =
                        Some(format!("read error after line {}: {e}", item.first_line + report.lines - 1));
                    break;
                }
            };
            report.lines += 1;
            match line {
                Line::Full(l) if l.iter().all(|b| *b == b' ' || *b == b'\t') => report.blank_lines += 1,
                Line::Full(l) => match push_unwrapped(sink.as_mut(), l, no) {
                    Ok(Some(p)) => {
                        report.rows += 1;
                        report.lossy_rows += p.lossy as u64;
                        report.saw(p.ts);
                    }
                    Ok(None) => report.header_lines += 1,
                    Err(e) => {
                        report.rejects += 1;
                        if keep_rejects {
                            rejects.push(&src.display, no, format, &e.to_string(), l);
                        }
                    }
                },
                Line::TooLong(l) => {
                    report.rejects += 1;
                    let why =
                        format!("line longer than {} bytes; its start is kept", crate::framing::MAX_LINE);
                    if keep_rejects {
                        rejects.push(&src.display, no, format, &why, l);
                    }
                }
            }
            if sink.len() >= BATCH_ROWS {
                let batch = sink.take_batch();
                self.peak_batch_rows = self.peak_batch_rows.max(batch.batch.num_rows());
                if keep_rows {
                    writers[wi].1.write(batch)?;
                }
            }
            if rejects.len() >= BATCH_ROWS {
                writers[ri].1.write(rejects.take_batch())?;
            }
        }
        if let Some(mut s) = own
            && keep_rows
            && !s.is_empty()
        {
            writers[wi].1.write(s.take_batch())?;
        }
        self.peak_line_buffer = self.peak_line_buffer.max(lines.buffer_capacity());
        let mut files = Vec::new();
        if let Some((mut writers, mut rejects)) = alone {
            if !rejects.is_empty() {
                writers[ri].1.write(rejects.take_batch())?;
            }
            for (t, w) in writers {
                self.peak_alone_writer_bytes = self.peak_alone_writer_bytes.max(w.peak_buffered());
                files.push((t, w.finish()?));
            }
        }
        Ok(files)
    }

    fn finish(mut self) -> Result<WorkerOut, LakeError> {
        for (_, sink) in &mut self.sinks {
            if !sink.is_empty() {
                let i = Self::writer(&mut self.writers, (self.lake, self.lease, self.budget), sink.table());
                self.writers[i].1.write(sink.take_batch())?;
            }
        }
        if !self.rejects.is_empty() {
            let i = Self::writer(&mut self.writers, (self.lake, self.lease, self.budget), &REJECTS);
            self.writers[i].1.write(self.rejects.take_batch())?;
        }
        let peak_writer_bytes = self
            .writers
            .iter()
            .map(|(_, w)| w.peak_buffered())
            .max()
            .unwrap_or(0)
            .max(self.peak_alone_writer_bytes);
        let mut files = Vec::new();
        for (t, w) in self.writers {
            files.push((t, w.finish()?));
        }
        Ok(WorkerOut {
            items: self.items,
            files,
            peak_writer_bytes,
            peak_line_buffer: self.peak_line_buffer,
            peak_batch_rows: self.peak_batch_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_share_their_log_stem() {
        for name in [
            "access.log",
            "logs/access.log.1",
            "logs/access.log.2.gz",
            "/var/log/squid/access.log-20240501.bz2",
            "access.log.1.zst",
        ] {
            assert_eq!(log_stem(name), "access.log", "{name}");
        }
        assert_eq!(log_stem("pfirewall.log.old"), "pfirewall.log.old");
        assert_eq!(log_stem("2024-05-01"), "2024");
        assert_eq!(log_stem("access.log0001"), "access.log0001", "i-FILTER numbers its files, not rotations");
    }
}
