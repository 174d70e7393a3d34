//! The binary as an analyst runs it: summaries on stderr, results on stdout, exit codes.

use std::process::Command;

use crate::common::testdata;

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

#[test]
fn ingest_then_query_csv_and_file_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = trawl()
        .args(["ingest", "--tz", "UTC", "--lake"])
        .arg(&lake)
        .arg(testdata("squid/proxy01"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "ingest prints results nowhere but stderr");
    assert!(stderr.contains("ingested 3 files"), "{stderr}");
    assert!(stderr.contains("66 lines, 66 rows, 0 rejects"), "{stderr}");

    let out = trawl()
        .args(["query", "--lake"])
        .arg(&lake)
        .arg("SELECT status, count(*) AS n FROM proxy GROUP BY status ORDER BY status")
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("status,n\n200,50\n301,1\n"), "{csv}");

    let report = dir.path().join("report.json");
    let status = trawl()
        .args(["query", "--lake"])
        .arg(&lake)
        .args(["SELECT count(*) AS n FROM proxy", "-o"])
        .arg(&report)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "[{\"n\":66}]");
    // No silent overwrite.
    let out =
        trawl().args(["query", "--lake"]).arg(&lake).args(["SELECT 1", "-o"]).arg(&report).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

#[test]
fn missing_lake_and_bad_zone_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        trawl().args(["query", "--lake"]).arg(dir.path().join("nope")).arg("SELECT 1").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("no trawl lake at") && msg.contains("trawl ingest"), "{msg}");

    let out = trawl()
        .args(["ingest", "--tz", "Mars/Base", "--lake"])
        .arg(dir.path().join("l"))
        .arg(testdata("squid/combined"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IANA"));
}
