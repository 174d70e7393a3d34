//! `trawl verify`: the lake's files and the original logs, checked against what was recorded
//! when they were written and read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::digest::sha256_file;
use crate::error::LakeError;
use crate::ingest::Recorded;
use crate::lake::Lake;
use crate::schema::{INGESTS, all_tables};

/// What a check found wrong (or worth saying) about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// A lake file whose bytes no longer hash to what was recorded when it was written.
    Modified,
    /// A file the Delta log names that is not on disk.
    Missing,
    /// A Parquet file in a table folder that no version of the table names.
    Extra,
    /// A source whose rows the ledger (`ingests`) and the tables count differently.
    LedgerMismatch,
    /// A lake file written before hashes were recorded: only its size could be checked.
    Unrecorded,
    /// A list of live files for plain-Parquet readers that names other files than the log.
    ManifestStale,
    /// An original log whose bytes differ from every read of that path.
    SourceModified,
    /// An original log that grew after it was read; the bytes read are unchanged.
    SourceGrown,
    /// An original log the lake has no record of reading.
    SourceUnknown,
    /// An original log that ingest found and skipped (not a log, or no format matched).
    SourceSkipped,
}

impl Problem {
    /// Whether this finding makes `verify` fail.
    pub fn is_failure(self) -> bool {
        !matches!(self, Problem::Unrecorded | Problem::SourceGrown | Problem::SourceSkipped)
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Problem::Modified => "modified",
            Problem::Missing => "missing",
            Problem::Extra => "extra",
            Problem::LedgerMismatch => "ledger mismatch",
            Problem::ManifestStale => "manifest stale",
            Problem::Unrecorded => "no recorded hash",
            Problem::SourceModified => "source modified",
            Problem::SourceGrown => "source grew",
            Problem::SourceUnknown => "source not in lake",
            Problem::SourceSkipped => "source skipped",
        }
    }
}

/// One finding, with the file it concerns.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub problem: Problem,
    /// The table, or `source` for original logs.
    pub scope: String,
    pub path: String,
    pub detail: String,
}

/// Everything `verify` checked.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub lake_files: usize,
    pub lake_bytes: u64,
    pub sources: usize,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether any finding is a failure (the command exits non-zero).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.problem.is_failure())
    }
}

/// Re-hashes every file the lake's tables name, looks for files they do not name, and checks
/// each of `sources` (files; folders are walked) against the `ingests` record of its bytes.
pub fn verify(lake: &Lake, sources: &[PathBuf]) -> Result<VerifyReport, LakeError> {
    let rt = crate::runtime();
    let mut report = VerifyReport::default();
    let ledger_runs = rt.block_on(lake.ledger_runs())?;
    for spec in all_tables() {
        let Some(table) = rt.block_on(lake.load_table(spec))? else { continue };
        let live = lake.live_files(spec, &table)?;
        let referenced = rt.block_on(lake.referenced(spec, &table))?;
        let checked: Vec<Option<Finding>> = live
            .par_iter()
            .map(|f| {
                let finding = |problem, detail: String| {
                    Some(Finding { problem, scope: spec.table.clone(), path: f.rel_path.clone(), detail })
                };
                let (size, sha256) = match lake.hash_file(spec, &f.rel_path) {
                    Ok(d) => d,
                    Err(e) => return finding(Problem::Missing, format!("named by the Delta log: {e}")),
                };
                if size != f.size {
                    return finding(
                        Problem::Modified,
                        format!("{size} bytes on disk, {} when written", f.size),
                    );
                }
                match &f.sha256 {
                    Some(want) if *want != sha256 => {
                        finding(Problem::Modified, format!("SHA-256 {sha256} on disk, {want} when written"))
                    }
                    Some(_) => None,
                    None => finding(Problem::Unrecorded, "size matches; no hash was recorded".into()),
                }
            })
            .collect();
        report.lake_files += live.len();
        report.lake_bytes += live.iter().map(|f| f.size).sum::<u64>();
        report.findings.extend(checked.into_iter().flatten());
        for list in rt.block_on(lake.stale_manifests(spec, &table))? {
            report.findings.push(Finding {
                problem: Problem::ManifestStale,
                scope: spec.table.clone(),
                path: list.path,
                detail: format!(
                    "{}: readers of plain Parquet would read other rows than the table holds (a run \
                     stopped after its commit, or the lake was moved); `trawl manifest --lake {}` \
                     rewrites it (a lake copied read-only passes once `trawl manifest` has run on a \
                     writable copy of it: the lists name the place it ran at)",
                    list.detail,
                    lake.root().display()
                ),
            });
        }
        for rel in lake.files_on_disk(spec)? {
            // A run still writing has files no version names yet: not extra, just not done.
            if !referenced.contains(&rel) && !lake.in_progress(&rel) {
                let detail = if !crate::lake::trawl_named(&rel) {
                    "no version of the table names it, nor is it named as trawl names its files: put \
                     there by hand? trawl never deletes it"
                } else if lake.run_of(&rel).is_some_and(|r| ledger_runs.contains(r)) {
                    "no version of the table names it, yet the ingests ledger records the run that \
                     wrote it: a Delta log file was lost or damaged; trawl keeps the file"
                } else {
                    "no version of the table names it: a stopped run's file, removed by the next \
                     ingest or `trawl compact`"
                };
                report.findings.push(Finding {
                    problem: Problem::Extra,
                    scope: spec.table.clone(),
                    path: rel,
                    detail: detail.into(),
                });
            }
        }
    }
    // Counting rows per source reads every file: only worth it when they all hashed right.
    if !report.findings.iter().any(|f| matches!(f.problem, Problem::Modified | Problem::Missing)) {
        check_ledger(lake, &rt, &mut report)?;
    }
    if !sources.is_empty() {
        check_sources(lake, sources, &rt, &mut report)?;
    }
    Ok(report)
}

/// Compares, per source file, the rows and rejects the ledger says it gave (less the cut lines
/// later read whole, counted against the read they were cut in, which a rotated copy's read
/// names in `resumed_from`) with the rows the tables hold of it: a table that lost a commit,
/// or holds rows the ledger never recorded, shows here.
fn check_ledger(
    lake: &Lake,
    rt: &tokio::runtime::Runtime,
    report: &mut VerifyReport,
) -> Result<(), LakeError> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    let err =
        |e: String| LakeError::io("comparing the ingests ledger with the tables", std::io::Error::other(e));
    let mismatches = rt.block_on(async {
        let mut held = Vec::new();
        for spec in all_tables().into_iter().filter(|t| t.table != INGESTS.table) {
            if spec.index_of("source_file").is_some() && lake.load_table(spec).await?.is_some() {
                held.push(format!("SELECT CAST(source_file AS VARCHAR) AS path FROM {}", spec.table));
            }
        }
        if lake.load_table(&INGESTS).await?.is_none() || held.is_empty() {
            return Ok(Vec::new());
        }
        let engine = crate::engine::Engine::new(lake).await.map_err(|e| err(e.to_string()))?;
        let sql = format!(
            "WITH r AS (SELECT CAST(path AS VARCHAR) AS path, sha256, resumed_from, rows + rejects AS n, \
                 coalesce(replaced_rows, 0) AS replaced FROM ingests WHERE status IN ('ingested', 'partial')), \
             p AS (SELECT sha256, min(path) AS path FROM r GROUP BY sha256), \
             l AS (SELECT path, sum(n) AS n FROM (SELECT path, n FROM r UNION ALL \
                 SELECT coalesce(p.path, r.path) AS path, -r.replaced AS n FROM r LEFT JOIN p ON p.sha256 = r.resumed_from) \
                 GROUP BY path), \
             t AS (SELECT path, count(*) AS n FROM ({}) GROUP BY path) \
             SELECT coalesce(l.path, t.path), CAST(coalesce(l.n, 0) AS BIGINT), CAST(coalesce(t.n, 0) AS BIGINT) \
             FROM l FULL JOIN t ON l.path = t.path WHERE coalesce(l.n, 0) <> coalesce(t.n, 0) ORDER BY 1",
            held.join(" UNION ALL ")
        );
        let df = engine.sql(&sql).await.map_err(|e| err(e.to_string()))?;
        let batches = df.collect().await.map_err(|e| err(e.to_string()))?;
        let mut out = Vec::new();
        for b in batches {
            let p = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8).map_err(|e| err(e.to_string()))?;
            let p = p.as_string::<i32>();
            let (l, t) = (b.column(1).as_primitive::<Int64Type>(), b.column(2).as_primitive::<Int64Type>());
            for i in 0..b.num_rows() {
                out.push((p.value(i).to_string(), l.value(i), t.value(i)));
            }
        }
        Ok::<_, LakeError>(out)
    })?;
    for (path, ledger, tables) in mismatches {
        let why = if tables < ledger {
            "a table lacks rows it had committed (a lost or damaged Delta log file?)"
        } else {
            "the tables hold rows the ledger does not record (a run stopped before its ledger commit: \
             the next ingest of the same files completes it)"
        };
        report.findings.push(Finding {
            problem: Problem::LedgerMismatch,
            scope: INGESTS.table.clone(),
            path,
            detail: format!(
                "the ledger records {ledger} rows and rejects of it, the tables hold {tables}: {why}"
            ),
        });
    }
    Ok(())
}

fn check_sources(
    lake: &Lake,
    sources: &[PathBuf],
    rt: &tokio::runtime::Runtime,
    report: &mut VerifyReport,
) -> Result<(), LakeError> {
    let reads = crate::ingest::recorded(lake, rt)
        .map_err(|e| LakeError::io("reading the ingests table", std::io::Error::other(e)))?;
    let mut by_path: HashMap<&str, Vec<&Recorded>> = HashMap::new();
    let mut by_hash: HashMap<&str, &Recorded> = HashMap::new();
    let mut skipped: HashMap<&str, (&str, &Recorded)> = HashMap::new();
    for r in &reads {
        match &r.skipped {
            Some(why) => {
                skipped.insert(r.path.as_str(), (why.as_str(), r));
            }
            None => {
                by_path.entry(r.path.as_str()).or_default().push(r);
                by_hash.insert(r.sha256.as_str(), r);
            }
        }
    }
    let mut files = Vec::new();
    let mut odd = Vec::new();
    for p in sources {
        walk(p, &mut files, &mut odd);
    }
    report.sources += files.len() + odd.len();
    // Opening a named pipe would wait forever for a writer; ingest skipped them the same way.
    report.findings.extend(odd.into_iter().map(|path| Finding {
        problem: Problem::SourceSkipped,
        scope: "source".into(),
        path: path.display().to_string(),
        detail: "not a regular file (pipe, socket or device): not read, as ingest does not read it".into(),
    }));
    let findings: Vec<Option<Finding>> = files
        .par_iter()
        .map(|path| {
            let shown = path.display().to_string();
            let finding = |problem, detail| {
                Some(Finding { problem, scope: "source".into(), path: shown.clone(), detail })
            };
            let earlier = by_path.get(shown.as_str()).map_or(&[][..], Vec::as_slice);
            // A copy skipped as already read has its bytes recorded too: they may have grown since.
            let copy = skipped.get(shown.as_str()).map(|(_, r)| *r).filter(|r| !r.sha256.is_empty());
            let sizes: Vec<u64> = earlier.iter().chain(copy.as_ref()).map(|r| r.size).collect();
            let d = match sha256_file(path, &sizes, |_, _, _| {}) {
                Ok(d) => d,
                Err(e) => return finding(Problem::SourceModified, format!("cannot read: {e}")),
            };
            if by_hash.contains_key(d.sha256.as_str()) {
                return None;
            }
            if let Some(r) =
                earlier.iter().find(|r| d.prefixes.iter().any(|x| x.len == r.size && x.sha256 == r.sha256))
            {
                return finding(
                    Problem::SourceGrown,
                    format!("{} bytes now; the first {} (all that was read) are unchanged", d.size, r.size),
                );
            }
            if earlier.is_empty()
                && let Some(r) = copy
            {
                if d.prefixes.iter().any(|x| x.len == r.size && x.sha256 == r.sha256) {
                    return finding(
                        Problem::SourceGrown,
                        format!(
                            "{} bytes now; the first {}, skipped at ingest as a copy of bytes already read, \
                             are unchanged; what follows is in no table: ingest it",
                            d.size, r.size
                        ),
                    );
                }
                return finding(
                    Problem::SourceModified,
                    format!(
                        "SHA-256 {} ({} bytes); skipped at ingest as a copy of bytes already read, {} ({} bytes)",
                        d.sha256, d.size, r.sha256, r.size
                    ),
                );
            }
            if earlier.is_empty()
                && let Some((why, _)) = skipped.get(shown.as_str())
            {
                return finding(Problem::SourceSkipped, format!("not read at ingest: {why}"));
            }
            if earlier.is_empty() {
                finding(Problem::SourceUnknown, format!("SHA-256 {} matches no file the lake read", d.sha256))
            } else {
                finding(
                    Problem::SourceModified,
                    format!(
                        "SHA-256 {} ({} bytes); read as {} ({} bytes)",
                        d.sha256, d.size, earlier[0].sha256, earlier[0].size
                    ),
                )
            }
        })
        .collect();
    report.findings.extend(findings.into_iter().flatten());
    Ok(())
}

/// Files under `path`, following no folder links (a loop cannot trap the walk); what is neither
/// a file nor a folder (a named pipe, a socket, a device, or a link to one) goes to `odd`.
fn walk(path: &Path, out: &mut Vec<PathBuf>, odd: &mut Vec<PathBuf>) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let Ok(entries) = std::fs::read_dir(path) else {
                out.push(path.to_path_buf());
                return;
            };
            let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            names.sort();
            for n in names {
                walk(&n, out, odd);
            }
        }
        Ok(m) if m.file_type().is_symlink() && path.is_dir() => {}
        Ok(_) if std::fs::metadata(path).is_ok_and(|t| !t.is_file()) => odd.push(path.to_path_buf()),
        // Files, links to files, and paths that cannot be read (reported when hashed).
        _ => out.push(path.to_path_buf()),
    }
}
