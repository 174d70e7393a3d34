//! The lake as readers other than trawl see it: the symlink-format manifest that names exactly
//! the live files, and the per-file statistics Delta engines skip files by.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use trawl::schema::{TableSpec, all_tables, table};

use crate::common::{TestLake, squid_lines};

/// Every path the table's manifests list (all partitions).
fn manifest_paths(table_dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![table_dir.join("_symlink_format_manifest")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "manifest" {
                out.extend(std::fs::read_to_string(e.path()).unwrap().lines().map(String::from));
            }
        }
    }
    out
}

/// The absolute paths of the files the table's newest version names.
fn live_paths(l: &TestLake, spec: &TableSpec) -> BTreeSet<String> {
    let root = l.lake.root().canonicalize().unwrap().join(&spec.table);
    let Some(t) = trawl::runtime().block_on(l.lake.load_table(spec)).unwrap() else {
        return BTreeSet::new();
    };
    l.lake
        .live_files(spec, &t)
        .unwrap()
        .iter()
        .map(|f| root.join(&f.rel_path).display().to_string())
        .collect()
}

/// Each table's manifests name exactly its live files, and their rows are the table's rows.
fn assert_manifests_are_live(l: &TestLake, step: &str) {
    for spec in all_tables() {
        let listed = manifest_paths(&l.lake.root().join(&spec.table));
        assert_eq!(listed, live_paths(l, spec), "{step}: {}", spec.table);
        let rows: i64 = listed
            .iter()
            .map(|p| {
                let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
                r.metadata().file_metadata().num_rows()
            })
            .sum();
        let count = l.scalar(&format!("SELECT count(*) FROM {}", spec.table));
        assert_eq!(rows.to_string(), count, "{step}: rows of {}'s listed files", spec.table);
    }
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn manifests_name_exactly_the_live_files_through_ingests_a_cut_line_rewrite_and_a_compact() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    // Ten lines, then an eleventh cut in its content type: a row now, replaced once it grows.
    let eleven = squid_lines(5, 11);
    let (head, last) = eleven.trim_end().rsplit_once('\n').unwrap();
    let cut = last.len() - 3;
    std::fs::write(&a, format!("{head}\n{}", &last[..cut])).unwrap();
    std::fs::write(&b, format!("{}not a log line\n", squid_lines(6, 20))).unwrap();
    l.ingest(std::slice::from_ref(&a));
    assert_manifests_are_live(&l, "first ingest");
    l.ingest(std::slice::from_ref(&b));
    assert_manifests_are_live(&l, "second ingest");
    let proxy = table("proxy").unwrap();
    let before = live_paths(&l, proxy);

    append(&a, &format!("{}\n", &last[cut..]));
    let r = l.ingest(std::slice::from_ref(&a));
    assert_eq!(r.files[0].replaced_rows, 1);
    assert_manifests_are_live(&l, "cut-line rewrite");
    let after = live_paths(&l, proxy);
    let gone: Vec<_> = before.difference(&after).collect();
    assert_eq!(gone.len(), 1, "the file holding the cut row was rewritten");
    assert!(Path::new(gone[0]).exists(), "and is still on disk, where a glob would read it");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), "31");

    let out =
        Command::new(env!("CARGO_BIN_EXE_trawl")).args(["compact", "--lake"]).arg(l.lake.root()).output();
    assert!(out.unwrap().status.success());
    assert_manifests_are_live(&l, "compact");
    assert_eq!(manifest_paths(&l.lake.root().join("proxy")).len(), 1, "one merged file for the one day");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), "31");
    assert_eq!(l.scalar("SELECT count(*) FROM rejects"), "1");
    // A table without dates has its one list; a dated table without rows has none.
    let rejects = std::fs::read_to_string(l.lake.root().join("rejects/_symlink_format_manifest/manifest"));
    assert_eq!(rejects.unwrap().lines().count(), 1);
    let fw = std::fs::read_dir(l.lake.root().join("firewall/_symlink_format_manifest")).unwrap();
    assert_eq!(fw.flatten().filter(|e| e.path().is_dir()).count(), 0);
}

/// The stats JSON of every Add action in the table's log, by file name.
fn add_stats(table_dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(table_dir.join("_delta_log")).unwrap().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".json") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(stats) = v["add"]["stats"].as_str() {
                out.push(serde_json::from_str(stats).unwrap());
            }
        }
    }
    out
}

#[test]
fn add_actions_carry_ranges_and_null_counts_that_let_a_time_filter_skip_files() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    // Two days (2024-05-01 and 2024-05-02 UTC), so two files.
    std::fs::write(&log, format!("{}{}", squid_lines(1, 3), squid_lines(200, 2))).unwrap();
    l.ingest(std::slice::from_ref(&log));
    let mut stats = add_stats(&l.lake.root().join("proxy"));
    stats.sort_by_key(|s| s["minValues"]["ts"].as_str().unwrap_or_default().to_string());
    assert_eq!(stats.len(), 2);
    let s = &stats[0];
    assert_eq!(s["numRecords"], 3);
    assert_eq!(s["minValues"]["ts"], "2024-05-01T08:10:00.000Z");
    assert_eq!(s["maxValues"]["ts"], "2024-05-01T08:10:02.002Z");
    assert_eq!((&s["minValues"]["source_line"], &s["maxValues"]["source_line"]), (&1.into(), &3.into()));
    assert_eq!((&s["minValues"]["status"], &s["maxValues"]["status"]), (&200.into(), &200.into()));
    assert_eq!(s["minValues"]["client_ip"], "10.0.1.0");
    assert_eq!((&s["nullCount"]["username"], &s["nullCount"]["ts"]), (&3.into(), &0.into()));
    assert!(s["minValues"].get("url").is_none(), "free text has no statistics, so no range");
    assert_eq!(stats[1]["minValues"]["ts"], "2024-05-02T17:20:00.000Z");

    let plan = l.rows("EXPLAIN SELECT count(*) FROM proxy WHERE ts >= TIMESTAMP '2024-05-02T00:00:00Z'");
    let physical = &plan.iter().find(|r| r[0] == "physical_plan").expect("physical plan")[1];
    assert_eq!(physical.matches(".parquet").count(), 1, "{physical}");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE ts >= TIMESTAMP '2024-05-02T00:00:00Z'"), "2");
}

/// Every file under `dir` with its bytes, by path relative to it.
fn folder_contents(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Puts a table's manifest folder back as `saved` had it: the state a run killed right after
/// its commit, before its lists were rewritten, leaves.
fn restore_manifest(table_dir: &Path, saved: &[(std::path::PathBuf, Vec<u8>)]) {
    let dir = table_dir.join("_symlink_format_manifest");
    std::fs::remove_dir_all(&dir).unwrap();
    for (rel, bytes) in saved {
        std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        std::fs::write(dir.join(rel), bytes).unwrap();
    }
}

/// A lake of five rows of 2024-05-01 (UTC), and a log of four rows of a day of its own,
/// 2024-05-03, not yet ingested (its folder kept alive by the `TempDir`), so its commit changes
/// only that day's list.
fn lake_and_a_new_day() -> (TestLake, tempfile::TempDir, std::path::PathBuf) {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&a, squid_lines(1, 5)).unwrap();
    std::fs::write(&b, squid_lines(250, 4)).unwrap();
    l.ingest(std::slice::from_ref(&a));
    (l, dir, b)
}

#[test]
fn a_list_left_behind_by_a_run_stopped_after_its_commit_is_reported_and_repaired() {
    let (l, _dir, b) = lake_and_a_new_day();
    let proxy_dir = l.lake.root().join("proxy");
    let saved = folder_contents(&proxy_dir.join("_symlink_format_manifest"));
    l.ingest(std::slice::from_ref(&b));
    restore_manifest(&proxy_dir, &saved);
    let trawl = |cmd: &str| {
        Command::new(env!("CARGO_BIN_EXE_trawl")).args([cmd, "--lake"]).arg(l.lake.root()).output().unwrap()
    };

    let out = trawl("verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("manifest stale"), "{stdout}");
    assert!(stdout.contains("_symlink_format_manifest/date=2024-05-03/manifest"), "{stdout}");
    assert!(stdout.contains("missing: readers of plain Parquet would read other rows"), "{stdout}");
    assert!(stdout.contains(&format!("`trawl manifest --lake {}` rewrites it", l.lake.root().display())));
    assert!(!stdout.contains("extra"), "the lists are no data files: {stdout}");
    assert!(stdout.contains("1 problem(s)"), "{stdout}");

    let out = trawl("manifest");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("proxy: rewrote 1 partition list(s)\n"));
    assert_manifests_are_live(&l, "trawl manifest");
    let out = trawl("verify");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // The next ingest repairs it at its start, even one that finds nothing new to commit.
    restore_manifest(&proxy_dir, &saved);
    let r = l.ingest(std::slice::from_ref(&b));
    assert_eq!((r.files.len(), r.skipped.len()), (0, 1), "already read: {r:?}");
    assert!(r.commits.iter().all(|(t, _)| t == "ingests"), "only the ledger's skip: {r:?}");
    assert_manifests_are_live(&l, "an ingest that read nothing");
}

#[test]
fn a_moved_lake_has_every_list_reported_until_trawl_manifest_names_the_new_place() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    let log = dir.path().join("a.log");
    // Two days (2024-05-01 and 2024-05-02 UTC): two proxy lists and ingests' one (rejects' is empty,
    // so the same wherever the lake is).
    std::fs::write(&log, format!("{}{}", squid_lines(1, 3), squid_lines(200, 2))).unwrap();
    let trawl = |args: &[&str], lake: &Path| {
        Command::new(env!("CARGO_BIN_EXE_trawl")).args(args).arg("--lake").arg(lake).output().unwrap()
    };
    assert!(trawl(&["ingest", "-q", "--tz", "UTC", log.to_str().unwrap()], &old).status.success());
    std::fs::rename(&old, &new).unwrap();

    let out = trawl(&["verify"], &new);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches("manifest stale").count(), 3, "{stdout}");
    assert!(stdout.contains("names 1 file(s) that are not live and lacks 1 live file(s)"), "{stdout}");
    assert!(trawl(&["manifest"], &new).status.success());
    assert_manifests_are_live(&TestLake::open(&new), "after a move");
    assert!(trawl(&["verify"], &new).status.success());
}

#[test]
fn verify_reports_a_list_only_if_stale_against_the_newest_version_too() {
    let (l, _dir, b) = lake_and_a_new_day();
    let proxy = table("proxy").unwrap();
    let before = trawl::runtime().block_on(l.lake.load_table(proxy)).unwrap().unwrap();
    // An ingest commits (and rewrites its lists) while verify, holding `before`, hashes files.
    l.ingest(std::slice::from_ref(&b));
    let stale = trawl::runtime().block_on(l.lake.stale_manifests(proxy, &before)).unwrap();
    assert!(stale.is_empty(), "lists of the newer version: {stale:?}");

    // The same files in other text are stale against every version, and said to be.
    let list = l.lake.root().join("proxy/_symlink_format_manifest/date=2024-05-01/manifest");
    let text = std::fs::read_to_string(&list).unwrap();
    std::fs::write(&list, text.replace('\n', "\r\n")).unwrap();
    let stale = trawl::runtime().block_on(l.lake.stale_manifests(proxy, &before)).unwrap();
    let found: Vec<(&str, &str)> = stale.iter().map(|s| (s.path.as_str(), s.detail.as_str())).collect();
    assert_eq!(
        found,
        [(
            "_symlink_format_manifest/date=2024-05-01/manifest",
            "same files, different text (order, a repeated line or line ends)"
        )]
    );
    let report = trawl::verify::verify(&l.lake, &[]).unwrap();
    let details: Vec<&str> = report.findings.iter().map(|f| f.detail.as_str()).collect();
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(details[0].starts_with("same files, different text"), "{details:?}");
    assert!(
        details[0].contains("a lake copied read-only passes once `trawl manifest` has run"),
        "{details:?}"
    );
    assert!(report.failed());
}
