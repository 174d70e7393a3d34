//! Chain of custody: `compact` changes no row, `verify` catches what changed, and files a killed
//! run left behind are removed without touching a live run's.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{TestLake, content_digest, squid_lines};

fn trawl(args: &[&str], lake: &Path, more: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl")).args(args).arg("--lake").arg(lake).args(more).output().unwrap()
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Four runs, one small file each, all on the same day: four files in one partition.
fn four_runs(l: &TestLake, logs: &Path) {
    std::fs::create_dir_all(logs).unwrap();
    for tag in 0..4 {
        let p = logs.join(format!("access.log.{tag}"));
        std::fs::write(&p, squid_lines(tag, 300)).unwrap();
        l.ingest(&[p]);
    }
}

#[test]
fn compact_merges_small_files_and_changes_no_row() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    four_runs(&l, dir.path());
    let proxy = l.lake.root().join("proxy");
    assert_eq!(parquet_files(&proxy).len(), 4);
    let before = (content_digest(&l, "proxy"), content_digest(&l, "ingests"));

    let out = trawl(&["compact"], l.lake.root(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("proxy: merged 4 files into 1 (1200 rows"), "{stderr}");
    assert_eq!((content_digest(&l, "proxy"), content_digest(&l, "ingests")), before);
    // The merged-away files stay for readers of older versions until the retention passes.
    assert_eq!(parquet_files(&proxy).len(), 5);
    let out = trawl(&["compact", "--retention-hours", "0"], l.lake.root(), &[]);
    assert!(out.status.success());
    assert_eq!(parquet_files(&proxy).len(), 1);
    assert_eq!((content_digest(&l, "proxy"), content_digest(&l, "ingests")), before);

    // The merged file carries its hash like any other; a second compact has nothing to do.
    let out = trawl(&["verify"], l.lake.root(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = trawl(&["compact"], l.lake.root(), &[]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("merged"));
    // Compaction does not make the sources look new: the same files are still not read twice.
    let again = l.ingest(&[dir.path().to_path_buf()]);
    assert!(again.files.is_empty(), "{:?}", again.skipped);
}

#[test]
fn verify_catches_modified_missing_and_extra_lake_files_and_changed_sources() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    four_runs(&l, &logs);
    let lake = l.lake.root();
    let verify = |more: &[&Path]| {
        let out = trawl(&["verify"], lake, more);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, text) = verify(&[&logs]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("verified: 8 lake file(s)"), "{text}");
    assert!(text.contains("4 source file(s) checked; 0 problem(s)"), "{text}");

    // A source log altered in place (same size, one byte changed).
    let log0 = logs.join("access.log.0");
    let mut bytes = std::fs::read(&log0).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&log0, &bytes).unwrap();
    // A source log that only grew is said, but is not a failure.
    let log1 = logs.join("access.log.1");
    let mut grown = std::fs::read(&log1).unwrap();
    grown.extend_from_slice(squid_lines(9, 2).as_bytes());
    std::fs::write(&log1, &grown).unwrap();
    let (code, text) = verify(&[&logs]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("source modified") && text.contains("access.log.0"), "{text}");
    assert!(text.contains("source grew") && text.contains("access.log.1"), "{text}");
    assert!(text.contains("1 problem(s)"), "{text}");

    // A lake file with one byte changed, one deleted, one put there by hand.
    let files = parquet_files(&lake.join("proxy"));
    let mut b = std::fs::read(&files[0]).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&files[0], &b).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    std::fs::copy(&files[2], files[2].with_file_name("copied-by-hand.parquet")).unwrap();
    let (code, text) = verify(&[]);
    assert_eq!(code, Some(1), "{text}");
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().to_string();
    for (finding, file) in [
        ("modified", name(&files[0])),
        ("missing", name(&files[1])),
        ("extra", "copied-by-hand.parquet".to_string()),
    ] {
        assert!(text.lines().any(|l| l.contains(finding) && l.contains(&file)), "{finding} {file}: {text}");
    }
    assert!(text.contains("VERIFY FAILED") && text.contains("3 problem(s)"), "{text}");
}

#[test]
fn uncommitted_files_of_a_stopped_run_go_and_a_live_runs_stay() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    four_runs(&l, dir.path());
    let day = l.lake.root().join("proxy/date=2024-05-01");
    let committed = parquet_files(&day);
    let live = l.lake.lease().unwrap();
    // Named as runs name their files: part-<run>-<32 hex>.
    let n = "fedcba9876543210fedcba9876543210";
    let live_file = day.join(format!("part-{}-{n}.zstd.parquet", live.id()));
    let dead_file = day.join(format!("part-{}-{n}.zstd.parquet", "0123456789abcdef0123456789abcdef"));
    std::fs::copy(&committed[0], &live_file).unwrap();
    std::fs::copy(&committed[0], &dead_file).unwrap();

    let report = l.ingest(&[dir.path().join("access.log.0")]);
    assert_eq!(report.orphans_removed, 1);
    assert!(!dead_file.exists(), "a killed run's file is removed by the next run");
    assert!(live_file.exists(), "a running run's file is not touched");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), "1200", "neither was ever read");
    drop(live);
    let removed = trawl::runtime().block_on(l.lake.remove_orphans(&trawl::schema::PROXY)).unwrap();
    assert_eq!(removed.len(), 1, "once its run is over, it is an orphan too");
    assert!(!live_file.exists());
}
