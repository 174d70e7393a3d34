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

use md5::{Digest, Md5};
use url::Url;

use crate::error::LakeError;
use crate::schema::DATE_COLUMN;

use super::LakeFile;
use super::store::Store;

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
            Ok(have) => match differs(want, &have) {
                None => continue,
                Some(d) => d,
            },
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
    let lists = lists(partitioned, live, |rel| abs.join(rel).to_string_lossy().into_owned());
    Ok(lists
        .into_iter()
        .map(|(folder, text)| (if folder.is_empty() { root.clone() } else { root.join(folder) }, text))
        .collect())
}

/// Each list's folder inside the manifest folder (`date=YYYY-MM-DD`, or `""` for a table
/// without dates) with the text it should hold: `line_of` each live file's path, one a line.
fn lists(partitioned: bool, live: &[LakeFile], line_of: impl Fn(&str) -> String) -> BTreeMap<String, String> {
    let mut lists: BTreeMap<String, String> = BTreeMap::new();
    if !partitioned {
        // An empty table still has its (empty) list, as Delta writes it.
        lists.insert(String::new(), String::new());
    }
    for f in live {
        let folder = match (&f.day, partitioned) {
            (Some(day), true) => format!("{DATE_COLUMN}={day}"),
            _ => String::new(),
        };
        let text = lists.entry(folder).or_default();
        text.push_str(&line_of(&f.rel_path));
        text.push('\n');
    }
    lists
}

/// How a list's text `have` differs from the `want`ed one, in words; `None` when it does not.
fn differs(want: &str, have: &str) -> Option<String> {
    if have == want {
        return None;
    }
    let want: BTreeSet<&str> = want.lines().collect();
    let have: BTreeSet<&str> = have.lines().collect();
    let extra = have.difference(&want).count();
    let lacking = want.difference(&have).count();
    Some(match (extra, lacking) {
        (0, 0) => "same files, different text (order, a repeated line or line ends)".to_string(),
        (0, n) => format!("lacks {n} live file(s)"),
        (n, 0) => format!("names {n} file(s) that are not live"),
        (n, m) => format!("names {n} file(s) that are not live and lacks {m} live file(s)"),
    })
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

// On S3 no lock can be held: a list is written only if it is still the version listed before
// the writer read the table's newest version (`If-Match`, or `If-None-Match` when there was
// none), so a list a writer writes replaces only one written before it read its version; a
// writer that meets another's list reads the newest version and tries again. A list a writer
// leaves alone (it already names that version's files) is no such guard: an older writer that
// listed it earlier may still replace it. So a writer that finds a version newer than its own
// once done passes again, and the newest version's writer, which listed last, has the last
// word (see `Lake::write_manifest`).
// A partition whose files are all gone keeps an empty list rather than none: a deletion cannot
// be made conditional, and could delete a newer writer's list of a day that has files again.

/// An S3 table's lists as listed now: each one's folder (as [`lists`] names them) and ETag.
pub(crate) fn s3_seen(store: &Store, table: &str) -> Result<BTreeMap<String, Option<String>>, LakeError> {
    let listed = store.list(&format!("{table}/{DIR}"), &[])?;
    Ok(listed
        .into_iter()
        .filter_map(|l| {
            let folder = if l.rel == FILE { "" } else { l.rel.strip_suffix(&format!("/{FILE}"))? };
            (!folder.contains('/')).then(|| (folder.to_string(), l.e_tag))
        })
        .collect())
}

/// The lists an S3 table's `live` files call for, named by their URLs below `table_url`,
/// with an empty one for each partition in `seen` that has no live file left.
fn s3_lists(
    table_url: &Url,
    partitioned: bool,
    live: &[LakeFile],
    seen: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, String> {
    let mut want = lists(partitioned, live, |rel| {
        table_url.join(rel).map_or_else(|_| format!("{table_url}{rel}"), String::from)
    });
    for folder in seen.keys() {
        want.entry(folder.clone()).or_default();
    }
    want
}

/// Where a list is inside the table folder.
fn list_rel(folder: &str) -> String {
    if folder.is_empty() { format!("{DIR}/{FILE}") } else { format!("{DIR}/{folder}/{FILE}") }
}

/// Writes the lists of S3 table `table` that differ from what `live` calls for, each only if
/// it is still what `seen` listed; how many it wrote, or `None` when another writer changed
/// one meanwhile (then the caller lists again and reads the newest version).
pub(crate) fn s3_write(
    store: &Store,
    table: &str,
    table_url: &Url,
    partitioned: bool,
    live: &[LakeFile],
    seen: &BTreeMap<String, Option<String>>,
) -> Result<Option<usize>, LakeError> {
    let mut written = 0;
    for (folder, text) in s3_lists(table_url, partitioned, live, seen) {
        let e_tag = seen.get(&folder).cloned().flatten();
        if e_tag.as_deref().is_some_and(|t| holds(t, &text)) {
            continue;
        }
        if !store.put_if(&format!("{table}/{}", list_rel(&folder)), text.as_bytes(), e_tag.as_deref())? {
            return Ok(None);
        }
        written += 1;
    }
    Ok(Some(written))
}

/// Whether an object whose ETag is `e_tag` holds `text`: S3 gives an object PUT whole (without
/// KMS encryption) the MD5 of its bytes. Another ETag only costs a write of the same text.
fn holds(e_tag: &str, text: &str) -> bool {
    let md5: String = Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    e_tag.trim_matches('"').eq_ignore_ascii_case(&md5)
}

/// The lists of S3 table `table` that differ from what `live` calls for; reads only. An empty
/// list of a partition without files is current (see above).
pub(crate) fn s3_stale(
    store: &Store,
    table: &str,
    table_url: &Url,
    partitioned: bool,
    live: &[LakeFile],
) -> Result<Vec<StaleList>, LakeError> {
    let seen = s3_seen(store, table)?;
    let mut out = Vec::new();
    for (folder, want) in s3_lists(table_url, partitioned, live, &seen) {
        let path = list_rel(&folder);
        let detail = match store.read(&format!("{table}/{path}"))? {
            None => "missing".to_string(),
            Some(have) => match differs(&want, &String::from_utf8_lossy(&have)) {
                None => continue,
                Some(d) if want.is_empty() => format!("the partition has no live file any more, yet it {d}"),
                Some(d) => d,
            },
        };
        out.push(StaleList { path, detail });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(day: &str, name: &str) -> LakeFile {
        LakeFile {
            rel_path: format!("date={day}/{name}"),
            size: 1,
            rows: Some(1),
            day: Some(day.to_string()),
            sha256: None,
        }
    }

    fn text(store: &Store, folder: &str) -> Option<String> {
        store.read(&format!("proxy/{}", list_rel(folder))).unwrap().map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn an_s3_list_is_replaced_only_by_a_writer_that_saw_it_and_read_a_version_after() {
        let (store, _) = Store::in_memory_s3();
        let url = Url::parse("s3://b/lake/proxy/").unwrap();
        let (d1, d2) = ("2024-05-01", "2024-05-02");
        let (f1, f2) = ("date=2024-05-01", "date=2024-05-02");
        let v1 = vec![file(d1, "a")];
        let v2 = vec![file(d1, "a"), file(d1, "b"), file(d2, "c")];
        let seen = s3_seen(&store, "proxy").unwrap();
        assert_eq!(s3_write(&store, "proxy", &url, true, &v1, &seen).unwrap(), Some(1));
        // A lists, then reads version 1; B lists after it, reads version 2 and writes first.
        let seen_by_a = s3_seen(&store, "proxy").unwrap();
        let seen_by_b = s3_seen(&store, "proxy").unwrap();
        assert_eq!(s3_write(&store, "proxy", &url, true, &v2, &seen_by_b).unwrap(), Some(2));
        // A's older lists are refused, the first one already: nothing of version 1 comes back.
        assert_eq!(s3_write(&store, "proxy", &url, true, &v1, &seen_by_a).unwrap(), None);
        let want_d1 = "s3://b/lake/proxy/date=2024-05-01/a\ns3://b/lake/proxy/date=2024-05-01/b\n";
        assert_eq!(text(&store, f1).as_deref(), Some(want_d1));
        assert_eq!(text(&store, f2).as_deref(), Some("s3://b/lake/proxy/date=2024-05-02/c\n"));
        // A writer that found no list of a day cannot create one another writer created since.
        let saw_none = BTreeMap::new();
        let stale_d2 = vec![file(d2, "old")];
        assert_eq!(s3_write(&store, "proxy", &url, true, &stale_d2, &saw_none).unwrap(), None);
        assert_eq!(text(&store, f2).as_deref(), Some("s3://b/lake/proxy/date=2024-05-02/c\n"));
        assert!(s3_stale(&store, "proxy", &url, true, &v2).unwrap().is_empty());
        let stale = s3_stale(&store, "proxy", &url, true, &v1).unwrap();
        let found: Vec<(&str, &str)> = stale.iter().map(|l| (l.path.as_str(), l.detail.as_str())).collect();
        assert_eq!(
            found,
            [
                ("_symlink_format_manifest/date=2024-05-01/manifest", "names 1 file(s) that are not live"),
                (
                    "_symlink_format_manifest/date=2024-05-02/manifest",
                    "the partition has no live file any more, yet it names 1 file(s) that are not live"
                ),
            ]
        );
        // A day whose files are all gone keeps an empty list, which is current.
        let v3 = vec![file(d1, "b")];
        let seen = s3_seen(&store, "proxy").unwrap();
        assert_eq!(s3_write(&store, "proxy", &url, true, &v3, &seen).unwrap(), Some(2));
        assert_eq!(text(&store, f2).as_deref(), Some(""));
        assert!(s3_stale(&store, "proxy", &url, true, &v3).unwrap().is_empty());
    }

    #[test]
    fn a_list_left_alone_is_no_guard_so_the_newest_writer_s_second_pass_repairs_it() {
        let (store, _) = Store::in_memory_s3();
        let url = Url::parse("s3://b/lake/proxy/").unwrap();
        let f1 = "date=2024-05-01";
        let v4 = vec![file("2024-05-01", "a")];
        let v5 = vec![file("2024-05-01", "a"), file("2024-05-01", "b")];
        let v6 = v4.clone(); // b removed again (a cut-line rewrite, say)
        let seen = s3_seen(&store, "proxy").unwrap();
        assert_eq!(s3_write(&store, "proxy", &url, true, &v4, &seen).unwrap(), Some(1));
        // A (version 5) and B (version 6) list the same lists. B's already hold version 6
        // (on S3 an ETag is its list's MD5, see `holds`), so B writes nothing and is done; A's
        // If-Match then still holds when it lands version 5's list.
        let seen_by_a = s3_seen(&store, "proxy").unwrap();
        assert_eq!(s3_write(&store, "proxy", &url, true, &v5, &seen_by_a).unwrap(), Some(1));
        assert_eq!(s3_stale(&store, "proxy", &url, true, &v6).unwrap().len(), 1);
        // A then finds version 6 newer than its own and passes again, from a fresh listing.
        let seen = s3_seen(&store, "proxy").unwrap();
        assert_eq!(s3_write(&store, "proxy", &url, true, &v6, &seen).unwrap(), Some(1));
        assert_eq!(text(&store, f1).as_deref(), Some("s3://b/lake/proxy/date=2024-05-01/a\n"));
        assert!(s3_stale(&store, "proxy", &url, true, &v6).unwrap().is_empty());
    }

    #[test]
    fn an_etag_that_is_the_md5_of_a_list_holds_it() {
        // MD5 of "a\n", as S3 quotes it.
        assert!(super::holds("\"60b725f10c9c85c70d97880dfe8191b3\"", "a\n"));
        assert!(!super::holds("\"60b725f10c9c85c70d97880dfe8191b3\"", "b\n"));
        assert!(!super::holds("\"60b725f10c9c85c70d97880dfe8191b3-2\"", "a\n"));
    }
}
