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

/// Runs `pack` alone over `lake`, one CSV per detection into `out`: the exit and stderr.
fn detect_into(lake: &Path, pack: &Path, out: &Path) -> (Output, String) {
    let o = trawl()
        .args(["detect", "--no-builtin", "--rows", "0", "--format", "csv", "--csv-bom", "never", "--lake"])
        .arg(lake)
        .arg("--pack")
        .arg(pack)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = text(&o).1;
    (o, stderr)
}

/// Lints `pack` alone: the exit, the verdict and id of each detection, and stdout.
fn lint(pack: &Path) -> (Output, Vec<String>, String) {
    let o = trawl().args(["detect", "--lint", "--no-builtin", "--pack"]).arg(pack).output().unwrap();
    let stdout = text(&o).0;
    let verdicts =
        stdout.lines().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect();
    (o, verdicts, stdout)
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
    let (out, stderr) = detect_into(&lake, &pack, &dir.path().join("out"));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1 detection(s) failed: huge"), "{stderr}");
    let summary = fs::read_to_string(dir.path().join("out/summary.csv")).unwrap();
    assert!(summary.contains("this SQL has 220013 tokens, more than the 200000"), "{summary}");
    assert!(summary.contains("IN (SELECT entry FROM NAME)"), "{summary}");
    assert_eq!(fs::read_to_string(dir.path().join("out/sweep.csv")).unwrap(), "n\n20\n");
    assert_eq!(fs::read_to_string(dir.path().join("out/plain.csv")).unwrap(), "n\n20\n");

    let (out, verdicts, stdout) = lint(&pack);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert_eq!(verdicts, ["FAIL huge", "ok plain", "ok sweep"], "{stdout}");
}

/// `n` alternatives joined by OR, the `i`th written by `term(i)`.
fn or_chain(n: usize, term: impl Fn(usize) -> String) -> String {
    (0..n).map(term).collect::<Vec<_>>().join(" OR ")
}

#[test]
fn long_or_chains_plan_in_time_and_give_what_their_in_form_gives() {
    let dir = tempfile::tempdir().unwrap();
    let lake = cli_lake(dir.path());
    let pack = dir.path().join("pack");
    fs::create_dir_all(&pack).unwrap();
    // Planned as written, 3,000 equalities took about a minute in a debug build and 1,000
    // LIKEs twelve seconds: an indicator sweep of clients (15 of the lake's 20 among them) and
    // of URL endings (p10 to p19 among them), with a condition around the chain.
    let clients = or_chain(3_000, |i| format!("client_ip = '10.0.{}.{}'", 1 + i / 250, 5 + i % 250));
    let endings = or_chain(1_000, |i| format!("url LIKE '%/p{}'", 10 + i));
    fs::write(pack.join("sweep.sql"), format!("{FRONT}SELECT count(*) AS n FROM proxy WHERE {clients}\n"))
        .unwrap();
    fs::write(
        pack.join("endings.sql"),
        format!("{FRONT}SELECT count(*) AS n FROM proxy WHERE status = 200 AND ({endings})\n"),
    )
    .unwrap();
    let (out, stderr) = detect_into(&lake, &pack, &dir.path().join("out"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(fs::read_to_string(dir.path().join("out/sweep.csv")).unwrap(), "n\n15\n");
    assert_eq!(fs::read_to_string(dir.path().join("out/endings.csv")).unwrap(), "n\n10\n");
    let (out, verdicts, stdout) = lint(&pack);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(verdicts, ["ok endings", "ok sweep"], "{stdout}");
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

#[test]
fn verify_reports_a_named_pipe_instead_of_hanging_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = cli_lake(dir.path());
    let fifo = dir.path().join("logs/pipe.log");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child = trawl()
        .args(["verify", "--lake"])
        .arg(&lake)
        .arg(dir.path().join("logs"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the pipe used to wait forever for a writer; a bound keeps a regression from
    // hanging the suite (it is no measure of speed: verify takes well under a second here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("verify hung on a named pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("source skipped"), "{stdout}");
    assert!(stdout.contains("not a regular file (pipe, socket or device)"), "{stdout}");
    assert!(stdout.contains("2 source file(s) checked; 0 problem(s)"), "{stdout}");
}

#[test]
fn a_forced_format_reads_a_file_whose_head_it_cannot_parse() {
    let dir = tempfile::tempdir().unwrap();
    // A 70 KB URL fills the whole sniffed head: no line of it parses within 64 KiB.
    let long = format!(
        "1714550400.000    5 10.0.0.1 TCP_MISS/200 10 GET http://a.example/{} - HIER_DIRECT/1.2.3.4 text/html\n",
        "x".repeat(70_000)
    );
    fs::write(dir.path().join("access.log"), format!("{long}{}", squid_lines(1, 3))).unwrap();
    let l = TestLake::new("UTC");
    let opts = |format| trawl::ingest::IngestOptions {
        paths: vec![dir.path().to_path_buf()],
        format,
        logformats: Vec::new(),
        jobs: 2,
        progress: false,
        writer_budget: None,
        testing: Default::default(),
    };
    let r = trawl::ingest::ingest(&l.lake, &opts(None)).unwrap();
    assert_eq!((r.files.len(), r.skipped.len()), (0, 1), "sniffing alone skips it");
    let r = trawl::ingest::ingest(&l.lake, &opts(Some(trawl::formats::FormatKind::Squid))).unwrap();
    assert_eq!(r.skipped.len(), 0, "{:?}", r.skipped);
    assert_eq!((r.totals().lines, r.totals().rows, r.totals().rejects), (4, 4, 0));
    assert_eq!(l.scalar("SELECT max(length(url)) FROM proxy"), "70017");
}

#[test]
fn pack_links_that_leave_the_pack_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    fs::create_dir_all(pack.join("lists")).unwrap();
    fs::write(pack.join("d.sql"), format!("{FRONT}SELECT count(*) AS n FROM proxy\n")).unwrap();
    fs::write(dir.path().join("secret.txt"), "root:x:0:0\n").unwrap();
    fs::write(pack.join("lists/inside.txt"), "a.example\n").unwrap();
    // A link that stays inside the pack is fine.
    std::os::unix::fs::symlink(pack.join("lists/inside.txt"), pack.join("lists/alias.txt")).unwrap();
    let ok = trawl().args(["detect", "--list", "--no-builtin", "--pack"]).arg(&pack).output().unwrap();
    assert!(ok.status.success(), "{}", text(&ok).1);
    assert!(text(&ok).0.contains("list tables: alias, inside"), "{}", text(&ok).0);

    std::os::unix::fs::symlink(dir.path().join("secret.txt"), pack.join("lists/shadow.txt")).unwrap();
    let out = trawl().args(["detect", "--list", "--no-builtin", "--pack"]).arg(&pack).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lists/shadow.txt: a link to "), "{stderr}");
    assert!(stderr.contains("secret.txt, outside the pack folder"), "{stderr}");

    // A link to nothing is said, not skipped.
    fs::remove_file(pack.join("lists/shadow.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.txt"), pack.join("lists/gone.txt")).unwrap();
    let out = trawl().args(["detect", "--list", "--no-builtin", "--pack"]).arg(&pack).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("lists/gone.txt: a link to nothing (broken link)"), "{}", text(&out).1);
    fs::remove_file(pack.join("lists/gone.txt")).unwrap();

    // The lists folder itself may not lead out either.
    let outside = dir.path().join("elsewhere");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("x.txt"), "y\n").unwrap();
    fs::rename(pack.join("lists"), dir.path().join("old-lists")).unwrap();
    std::os::unix::fs::symlink(&outside, pack.join("lists")).unwrap();
    let out = trawl().args(["detect", "--list", "--no-builtin", "--pack"]).arg(&pack).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("outside the pack folder"), "{}", text(&out).1);
}

#[test]
fn errors_say_each_cause_once_and_quiet_skips_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out =
        trawl().args(["ingest", "--tz", "UTC", "--lake"]).arg(&lake).arg("/no/such/path").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");

    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(logs.join("access.log"), squid_lines(1, 2)).unwrap();
    for name in ["notes.txt", "readme.md", "empty.log"] {
        fs::write(logs.join(name), if name == "empty.log" { "" } else { "just words\n" }).unwrap();
    }
    let out = trawl().args(["ingest", "-q", "--tz", "UTC", "--lake"]).arg(&lake).arg(&logs).output().unwrap();
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("ingested 1 file into "), "{stderr}");
    assert!(lines[1].starts_with("skipped 3 file(s); why: trawl query --lake "), "{stderr}");
}
