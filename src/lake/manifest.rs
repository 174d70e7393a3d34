//! Delta's symlink-format manifest, for readers that take Parquet files but not the Delta log
//! (DuckDB's `read_parquet`, polars, pyarrow, pandas, Spark's `read.parquet`, Athena, Presto):
//! the live files of a table's newest version, one absolute path a line, laid out as Delta's
//! `GENERATE symlink_format_manifest` lays it out:
//!
//! ```text
//! <table>/_symlink_format_manifest/date=YYYY-MM-DD/manifest   date-partitioned tables
//! <table>/_symlink_format_manifest/manifest                   tables without dates
//! ```
//!
//! Globbing the table's folder instead would also read files a compaction or a cut-line rewrite
//! removed (until vacuum), files of a run that crashed before its commit, and Delta's checkpoint
//! Parquet files. Each manifest is replaced whole by a rename, so a reader sees one partition's
//! old list or its new one; rows never move between partitions, so a reader between two
//! partitions' renames sees each partition as of one version or the next.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::LakeError;
use crate::schema::DATE_COLUMN;

use super::LakeFile;

/// The manifest folder inside a table's folder.
pub(crate) const DIR: &str = "_symlink_format_manifest";
const FILE: &str = "manifest";
/// Temporary files start with a dot: Hadoop-based readers skip such names in a manifest folder.
const TMP_PREFIX: &str = ".manifest.tmp-";

/// Held while a manifest is rewritten, so two commits' rewrites cannot interleave: each writer
/// reads the newest version after taking it, so the last to finish writes the newest list.
pub(crate) struct ManifestLock {
    _file: File,
}

/// Waits for the table's manifest lock.
pub(crate) fn lock(table_dir: &Path) -> Result<ManifestLock, LakeError> {
    let dir = table_dir.join(DIR);
    fs::create_dir_all(&dir).map_err(|e| LakeError::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LakeError::io(format!("opening {}", path.display()), e))?;
    file.lock().map_err(|e| LakeError::io(format!("locking {}", path.display()), e))?;
    Ok(ManifestLock { _file: file })
}

/// Rewrites the manifests of the table in `table_dir` to name exactly `live` (call with the lock
/// held): changed partitions replaced, partitions without files any more removed. Returns how
/// many lists it replaced or removed (0: they were current).
pub(crate) fn write(
    _lock: &ManifestLock,
    table_dir: &Path,
    partitioned: bool,
    live: &[LakeFile],
) -> Result<usize, LakeError> {
    let lists = expected(table_dir, partitioned, live)?;
    let mut changed = 0;
    for (dir, text) in &lists {
        changed += usize::from(replace(dir, text)?);
    }
    Ok(changed + remove_stale(&root_of(table_dir)?, &lists)?)
}

/// A partition's list that does not name what the table's newest version holds.
#[derive(Debug, Clone)]
pub struct StaleList {
    /// The list's path inside the table folder (`_symlink_format_manifest/date=.../manifest`).
    pub path: String,
    /// What is wrong with it, in words.
    pub detail: String,
}

/// The lists of the table in `table_dir` that differ from what [`write`] would write for `live`
/// (missing, naming other files, or of a partition with no live file left); reads only.
pub(crate) fn stale(
    table_dir: &Path,
    partitioned: bool,
    live: &[LakeFile],
) -> Result<Vec<StaleList>, LakeError> {
    let lists = expected(table_dir, partitioned, live)?;
    let root = root_of(table_dir)?;
    let rel = |dir: &Path| {
        let inner = dir.strip_prefix(&root).unwrap_or(dir).join(FILE);
        format!("{DIR}/{}", inner.to_string_lossy().replace('\\', "/"))
    };
    let mut out = Vec::new();
    for (dir, want) in &lists {
        let detail = match fs::read_to_string(dir.join(FILE)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => "missing".to_string(),
            Err(e) => format!("unreadable: {e}"),
            Ok(have) if have == *want => continue,
            Ok(have) => {
                let want: BTreeSet<&str> = want.lines().collect();
                let have: BTreeSet<&str> = have.lines().collect();
                let extra = have.difference(&want).count();
                let lacking = want.difference(&have).count();
                match (extra, lacking) {
                    (0, 0) => "same files, different text (order, a repeated line or line ends)".to_string(),
                    (0, n) => format!("lacks {n} live file(s)"),
                    (n, 0) => format!("names {n} file(s) that are not live"),
                    (n, m) => format!("names {n} file(s) that are not live and lacks {m} live file(s)"),
                }
            }
        };
        out.push(StaleList { path: rel(dir), detail });
    }
    if let Ok(entries) = fs::read_dir(&root) {
        for e in entries.flatten() {
            let dir = e.path();
            if is_partition_dir(&dir) && !lists.contains_key(&dir) && dir.join(FILE).exists() {
                out.push(StaleList {
                    path: rel(&dir),
                    detail: "the partition has no live file any more".into(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The manifest folder of the table in `table_dir`, as an absolute path.
fn root_of(table_dir: &Path) -> Result<PathBuf, LakeError> {
    let abs = table_dir
        .canonicalize()
        .map_err(|e| LakeError::io(format!("resolving {}", table_dir.display()), e))?;
    Ok(abs.join(DIR))
}

/// Each list's folder with the text it should hold: absolute paths of `live`, one a line.
fn expected(
    table_dir: &Path,
    partitioned: bool,
    live: &[LakeFile],
) -> Result<BTreeMap<PathBuf, String>, LakeError> {
    let root = root_of(table_dir)?;
    let abs = root.parent().expect("the manifest folder is inside the table's").to_path_buf();
    let mut lists: BTreeMap<PathBuf, String> = BTreeMap::new();
    if !partitioned {
        // An empty table still has its (empty) list, as Delta writes it.
        lists.insert(root.clone(), String::new());
    }
    for f in live {
        let dir = match (&f.day, partitioned) {
            (Some(day), true) => root.join(format!("{DATE_COLUMN}={day}")),
            _ => root.clone(),
        };
        let text = lists.entry(dir).or_default();
        text.push_str(&abs.join(&f.rel_path).to_string_lossy());
        text.push('\n');
    }
    Ok(lists)
}

fn is_partition_dir(p: &Path) -> bool {
    p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{DATE_COLUMN}=")))
}

/// Replaces `dir/manifest` with `text` unless it holds it already; whether it did.
fn replace(dir: &Path, text: &str) -> Result<bool, LakeError> {
    let path = dir.join(FILE);
    if fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(|e| LakeError::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let ctx = |what: &str| format!("{what} {}", path.display());
    if let Err(e) = fs::write(&tmp, text) {
        let _ = fs::remove_file(&tmp);
        return Err(LakeError::io(ctx("writing"), e));
    }
    fs::rename(&tmp, &path).map_err(|e| LakeError::io(ctx("replacing"), e))?;
    Ok(true)
}

/// Removes partition folders no live file is in, and temporary files of rewrites that stopped
/// (the lock is held, so no rewrite is under way); returns how many folders it removed.
fn remove_stale(root: &Path, lists: &BTreeMap<PathBuf, String>) -> Result<usize, LakeError> {
    let listing = |e| LakeError::io(format!("listing {}", root.display()), e);
    let mut stale_tmp: Vec<PathBuf> = Vec::new();
    let mut removed = 0;
    for e in fs::read_dir(root).map_err(listing)? {
        let e = e.map_err(listing)?;
        let path = e.path();
        if is_partition_dir(&path) {
            if !lists.contains_key(&path) {
                fs::remove_dir_all(&path)
                    .map_err(|e| LakeError::io(format!("removing {}", path.display()), e))?;
                removed += 1;
            } else if let Ok(inner) = fs::read_dir(&path) {
                stale_tmp.extend(inner.flatten().map(|i| i.path()).filter(|p| is_tmp(p)));
            }
        } else if is_tmp(&path) {
            stale_tmp.push(path);
        }
    }
    for p in stale_tmp {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(LakeError::io(format!("removing {}", p.display()), e)),
        }
    }
    Ok(removed)
}

fn is_tmp(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX))
}
