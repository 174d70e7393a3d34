//! Guards against input that used to crash, hang or mislead: statements too deep for a small
//! stack, unbounded query memory, odd files in a verified folder, forced formats, pack links
//! leaving the pack, and headers or fields a parser used to misread.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{TestLake, row, squid_lines};

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A lake of 20 Squid lines from clients 10.0.1.0 to 10.0.1.19, written by the binary.
fn cli_lake(dir: &Path) -> std::path::PathBuf {
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(logs.join("access.log"), squid_lines(1, 20)).unwrap();
    let lake = dir.join("lake");
    let out = trawl().args(["ingest", "-q", "--tz", "UTC", "--lake"]).arg(&lake).arg(&logs).output().unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    lake
}

const FRONT: &str = "-- title: t\n-- severity: low\n-- tables: proxy\n";

/// `IN` with `n` client addresses, 10.0.1.0 and up: the lake's 20 clients are among them.
fn in_list(n: usize) -> String {
    let items: Vec<String> =
        (0..n).map(|i| format!("'10.{}.{}.{}'", i / 62_500, 1 + (i / 250) % 250, i % 250)).collect();
    format!("{FRONT}SELECT count(*) AS n FROM proxy WHERE client_ip IN ({})\n", items.join(", "))
}

#[test]
fn long_in_lists_plan_and_run_and_overlong_sql_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let lake = cli_lake(dir.path());
    let pack = dir.path().join("pack");
    fs::create_dir_all(&pack).unwrap();
    // 6,000 items overflowed the main thread's 8 MiB stack (exit 134) before planning moved to
    // large-stack threads; 110,000 are over the token limit and must fail alone, with advice.
    fs::write(pack.join("sweep.sql"), in_list(6_000)).unwrap();
    fs::write(pack.join("huge.sql"), in_list(110_000)).unwrap();
    fs::write(pack.join("plain.sql"), format!("{FRONT}SELECT count(*) AS n FROM proxy\n")).unwrap();
    let out = trawl()
        .args(["detect", "--no-builtin", "--rows", "0", "--format", "csv", "--lake"])
        .arg(&lake)
        .arg("--pack")
        .arg(&pack)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1 detection(s) failed: huge"), "{stderr}");
    let summary = fs::read_to_string(dir.path().join("out/summary.csv")).unwrap();
    assert!(summary.contains("this SQL has 220013 tokens, more than the 200000"), "{summary}");
    assert!(summary.contains("IN (SELECT entry FROM NAME)"), "{summary}");
    assert_eq!(fs::read_to_string(dir.path().join("out/sweep.csv")).unwrap(), "n\n20\n");
    assert_eq!(fs::read_to_string(dir.path().join("out/plain.csv")).unwrap(), "n\n20\n");

    let out = trawl().args(["detect", "--lint", "--no-builtin", "--pack"]).arg(&pack).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let verdicts: Vec<String> =
        stdout.lines().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(verdicts, ["FAIL huge", "ok plain", "ok sweep"], "{stdout}");
}

#[test]
fn memory_limit_stops_a_query_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let lake = cli_lake(dir.path());
    // A hash join's build side cannot spill: 2 M rows need more than 16 MiB.
    let join = "SELECT count(*) FROM generate_series(1, 2000000) a JOIN generate_series(1, 2000000) b \
                ON a.value = b.value";
    let out =
        trawl().args(["query", "--memory-limit", "16M", "--lake"]).arg(&lake).arg(join).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "trawl: the query needs more than 16 MiB, the --memory-limit given: raise it (--memory-limit 32M) or \
         add a filter (--since/--until, or a condition on date) so it reads less"
    );
    let out = trawl()
        .args(["query", "--memory-limit", "lots", "--lake"])
        .arg(&lake)
        .arg("SELECT 1")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("give a size such as 8G, 512M or 1.5G, or a share of memory such as 25%"),
        "{stderr}"
    );
    // Within the limit the same session answers.
    let out = trawl()
        .args(["query", "--memory-limit", "64M", "--format", "csv", "--lake"])
        .arg(&lake)
        .arg("SELECT count(*) AS n FROM proxy")
        .output()
        .unwrap();
    assert_eq!(text(&out).0, "n\n20\n");
}

#[test]
fn rfc5424_header_with_a_bsd_tag_is_unwrapped_and_a_broken_one_named() {
    let bare = "1601051005.952  18459 192.168.4.100 TCP_TUNNEL/200 7323 CONNECT ap.lijit.com:443 - \
                HIER_DIRECT/72.251.249.9 -";
    let dir = tempfile::tempdir().unwrap();
    let log = format!(
        "{bare}\n<1>1 2020-09-25T16:23:25+02:00 OPNsense.localdomain (squid-1)[91300]: {bare}\n\
         <1>1 2020-09-25T16:23:25+02:00 OPNsense.localdomain\n"
    );
    fs::write(dir.path().join("access.log"), log).unwrap();
    let l = TestLake::new("UTC");
    let r = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!((r.totals().rows, r.totals().rejects), (2, 1));
    assert_eq!(
        l.rows("SELECT source_line, coalesce(log_host, '(bare)'), client_ip, url, duration_ms FROM proxy ORDER BY 1"),
        [
            row(&["1", "(bare)", "192.168.4.100", "ap.lijit.com:443", "18459"]),
            row(&["2", "OPNsense.localdomain", "192.168.4.100", "ap.lijit.com:443", "18459"]),
        ]
    );
    let distinct = l.scalar(
        "SELECT count(*) FROM (SELECT DISTINCT ts, duration_ms, client_ip, username, method, url, status, \
         response_bytes, content_type, cache_result, hierarchy, server_ip, extra FROM proxy)",
    );
    assert_eq!(distinct, "1");
    assert_eq!(
        l.rows("SELECT source_line, reason FROM rejects"),
        [row(&[
            "3",
            "syslog header: opens as RFC 5424 (<PRI>1 TIMESTAMP) but is neither `HOST APP PROCID MSGID SD MSG` \
             nor `HOST TAG[PID]: MSG`; the payload after it was not read"
        ])]
    );
}
