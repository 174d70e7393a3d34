//! Nothing lost, nothing doubled: a run stopped between its commits, or killed at any moment.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{TestLake, content_digest, testdata, undo_last_commit};

const FINGERPRINT: &str = "SELECT count(*) AS n, count(DISTINCT source_file || ':' || CAST(source_line AS VARCHAR)) AS d, \
    sum(response_bytes) AS b, sum(source_line) AS l, (SELECT count(*) FROM rejects) AS rn, \
    (SELECT count(DISTINCT source_file || ':' || CAST(source_line AS VARCHAR)) FROM rejects) AS rd FROM proxy";

#[test]
fn a_run_stopped_before_its_ledger_commit_is_completed_not_doubled() {
    let l = TestLake::new("UTC");
    l.ingest(&[testdata("squid")]);
    let clean = l.rows(FINGERPRINT);
    // Undo the run's last commit (the ingests table), as if the process died just before it.
    undo_last_commit(&l, "ingests");
    assert_eq!(l.scalar("SELECT count(*) FROM ingests"), "0");
    let again = l.ingest(&[testdata("squid")]);
    assert_eq!(again.files.len(), 5, "the sources are read again, for the ledger");
    assert_eq!(l.rows(FINGERPRINT), clean, "but proxy and rejects already held them");
    assert_eq!(l.scalar("SELECT count(*) FROM ingests WHERE status = 'ingested'"), "5");
    // And now everything is recorded: a third run reads nothing.
    assert_eq!(l.ingest(&[testdata("squid")]).files.len(), 0);
}

/// Eight files of Squid lines (with a bad line every 97) to give a killed run something to cut.
fn write_input(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in 0..8u64 {
        let mut text = String::new();
        for i in 0..6000u64 {
            let t = 1_714_521_600 + f * 86_400 + i * 7;
            if i % 97 == 0 {
                text.push_str("garbage line\n");
            } else {
                text.push_str(&format!(
                    "{t}.{:03} {:>6} 10.0.{f}.{} TCP_MISS/200 {} GET http://h{}.example.com/p?{i} u{} HIER_DIRECT/203.0.113.9 text/html\n",
                    i % 1000,
                    i % 5000,
                    i % 250,
                    100 + i * 13 % 90_000,
                    i % 41,
                    i % 17
                ));
            }
        }
        std::fs::write(dir.join(format!("access.log.{f}")), text).unwrap();
    }
}

fn ingest_command(input: &Path, lake: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trawl"));
    c.args(["ingest", "--quiet", "--tz", "UTC", "--lake"]).arg(lake).arg(input);
    c
}

fn run_ingest(input: &Path, lake: &Path) -> std::process::Child {
    ingest_command(input, lake).stderr(std::process::Stdio::null()).spawn().unwrap()
}

/// The fingerprint of an existing lake: counts and sums, and a digest of every row's content.
fn fingerprint(lake: &Path) -> Vec<Vec<String>> {
    let l = TestLake::open(lake);
    let mut f = l.rows(FINGERPRINT);
    f.push(vec![content_digest(&l, "proxy"), content_digest(&l, "rejects")]);
    f
}

/// Nothing a killed run wrote is left behind once a later run has gone through: every Parquet
/// file on disk is one the log names, and each still hashes to what was recorded.
fn assert_clean_files(lake: &Path) {
    let l = TestLake::open(lake);
    let report = trawl::verify::verify(&l.lake, &[]).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// Generated input and one clean run over it: (temp dir, input folder, clean fingerprint, run time in ms).
fn clean_run() -> (tempfile::TempDir, std::path::PathBuf, Vec<Vec<String>>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("logs");
    write_input(&input);
    let clean_lake = dir.path().join("clean");
    let started = std::time::Instant::now();
    assert!(run_ingest(&input, &clean_lake).wait().unwrap().success());
    let ms = started.elapsed().as_millis() as u64;
    let clean = fingerprint(&clean_lake);
    assert_eq!(clean[0][0], clean[0][1], "no line twice in a clean run");
    (dir, input, clean, ms)
}

#[test]
fn sigkill_at_any_moment_then_rerun_equals_one_clean_run() {
    let (dir, input, clean, clean_ms) = clean_run();

    // Seeded moments spread over a whole run (start-up, parsing, each commit); every other
    // round kills the recovering run too. Each round starts from an empty lake.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut killed_mid_run = 0;
    for round in 0..6 {
        let lake = dir.path().join(format!("killed-{round}"));
        let kills = if round % 2 == 0 { 1 } else { 2 };
        for _ in 0..kills {
            let mut child = run_ingest(&input, &lake);
            // Within the first three quarters of a clean run's time, so most kills land mid-run
            // even when the machine is busy with other tests.
            std::thread::sleep(Duration::from_millis(next() % (clean_ms * 3 / 4).max(1)));
            let _ = child.kill(); // SIGKILL on Unix
            if !child.wait().unwrap().success() {
                killed_mid_run += 1;
            }
        }
        let rerun = ingest_command(&input, &lake).output().unwrap();
        assert!(rerun.status.success(), "round {round}: {}", String::from_utf8_lossy(&rerun.stderr));
        assert_eq!(fingerprint(&lake), clean, "round {round}");
        assert_clean_files(&lake);
    }
    // A recovering run can be quick and finish before its kill; the first kill of a round rarely is.
    assert!(killed_mid_run >= 4, "only {killed_mid_run} of 9 kills landed before a run ended");
}

#[test]
fn concurrent_ingests_never_read_a_file_twice() {
    let (dir, input, clean, _) = clean_run();
    for round in 0..3 {
        let lake = dir.path().join(format!("shared-{round}"));
        // Create the lake and its tables first (an empty folder is a valid input), so both runs
        // race on committing the same files rather than on creating tables.
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        assert!(run_ingest(&dir.path().join("empty"), &lake).wait().unwrap().success());
        let mut a = run_ingest(&input, &lake);
        let mut b = run_ingest(&input, &lake);
        let (ra, rb) = (a.wait().unwrap(), b.wait().unwrap());
        // The loser of a commit race reads again from the winner's state, so both succeed.
        assert!(ra.success() && rb.success(), "round {round}: both racing runs succeed: {ra} {rb}");
        assert_eq!(fingerprint(&lake), clean, "round {round}, after the race");
        // A later run finds everything read.
        let rerun = ingest_command(&input, &lake).output().unwrap();
        assert!(rerun.status.success(), "round {round}: {}", String::from_utf8_lossy(&rerun.stderr));
        assert_eq!(fingerprint(&lake), clean, "round {round}");
    }
}
