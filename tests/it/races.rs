//! Runs that race each other on one lake, and a lake tampered with between runs: no row doubled,
//! none lost, and what cannot be made right is refused with a message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock};

use trawl::ingest::{IngestOptions, ReadStep, ingest};
use trawl::lake::Lake;
use trawl::schema::PROXY;

use crate::common::{TestLake, ingest_options as opts, row, squid_lines, undo_last_commit};

/// Compacts every table, as `trawl compact` does, on a runtime of its own.
fn compact_all(lake: &Lake) -> Result<(), String> {
    let lease = lake.lease().map_err(|e| e.to_string())?;
    let rt = trawl::runtime();
    for spec in trawl::schema::all_tables() {
        rt.block_on(lake.compact(spec, &lease)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs `a` and `b` at the same moment, each on its own thread.
fn at_once<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            start.wait();
            a()
        });
        let b = s.spawn(|| {
            start.wait();
            b()
        });
        (a.join().unwrap(), b.join().unwrap())
    })
}

/// `access.log` of `n` lines from client `10.0.<tag>.x`, its last line cut in its content type
/// (so the cut form is still a row, replaced once the line is whole); and the whole text.
fn cut_log(dir: &Path, tag: u32, n: u32) -> (PathBuf, String) {
    let whole = squid_lines(tag, n);
    (write(dir, "access.log", &whole[..whole.len() - 5]), whole)
}

/// (rows, distinct lines) of `proxy`: equal when no line is there twice.
fn counts(l: &TestLake) -> Vec<Vec<String>> {
    l.rows("SELECT count(*), count(DISTINCT source_file || ':' || CAST(source_line AS VARCHAR)) FROM proxy")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn two_compacts_at_once_never_double_a_table() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let mut expected = 0;
    for round in 0..3u32 {
        // One more small file in the same day each round: something for both compacts to merge.
        let log = write(dir.path(), &format!("r{round}.log"), &squid_lines(round, 40));
        l.ingest(&[log]);
        expected += 40;
        let (a, b) = at_once(|| compact_all(&l.lake), || compact_all(&l.lake));
        assert_eq!((a, b), (Ok(()), Ok(())), "round {round}: a compact that lost the race plans again");
        let n = expected.to_string();
        assert_eq!(counts(&l), vec![row(&[&n, &n])], "round {round}");
    }
    let report = trawl::verify::verify(&l.lake, &[]).unwrap();
    assert!(!report.failed(), "{:?}", report.findings);
}

#[test]
fn a_cut_line_rewrite_planned_before_a_compact_is_refused_not_doubled() {
    // The rewrite is planned against the table as it was before the compact committed, as an
    // ingest that read the table, then lost the race to a compact, would commit it.
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = cut_log(dir.path(), 10, 30);
    l.ingest(std::slice::from_ref(&log));
    l.ingest(&[write(dir.path(), "other.log", &squid_lines(20, 30))]);
    let rt = trawl::runtime();
    let before = rt.block_on(l.lake.load_table(&PROXY)).unwrap().unwrap();
    compact_all(&l.lake).unwrap();
    let lease = l.lake.lease().unwrap();
    let cut = vec![(log.display().to_string(), 30)];
    let swap = l.lake.without_lines(&PROXY, &before, &lease, &cut).unwrap();
    assert_eq!((swap.remove.len(), swap.dropped.clone()), (1, vec![1]), "the file holding the cut line");
    let committed = rt.block_on(l.lake.commit(&PROXY, &before, &swap.add, &swap.remove, &[], HashMap::new()));
    let e = committed.expect_err("the file it replaces was compacted away meanwhile");
    assert!(e.to_string().contains("run it again"), "{e}");
    assert_eq!(counts(&l), vec![row(&["60", "60"])]);
}

/// Squid lines with distinct URLs, `n` of them from `first` on, spread over one day.
fn numbered_lines(first: u32, n: u32) -> String {
    let mut s = String::with_capacity(n as usize * 112);
    for i in first..first + n {
        s.push_str(&format!(
            "{}.000    567 10.0.0.{} TCP_MISS/200 5432 GET http://a.example/{i} u1 HIER_DIRECT/1.2.3.4 text/html\n",
            1_712_000_000 + i % 80_000,
            i % 250
        ));
    }
    s
}

const LINES: &str = "SELECT count(*), count(DISTINCT url) FROM proxy";

/// Options that call `at` once, after the first block of `log` that `step` reads to an offset
/// in `offsets`; the returned cell then holds that offset.
fn changing_at(
    log: &Path,
    step: ReadStep,
    offsets: std::ops::Range<u64>,
    at: impl Fn() + Send + Sync + 'static,
) -> (IngestOptions, Arc<OnceLock<u64>>) {
    let done = Arc::new(OnceLock::new());
    let (seen, log) = (done.clone(), log.to_path_buf());
    let once = std::sync::Mutex::new(());
    let mut o = opts(&[&log]);
    o.testing.after_block = Some(Arc::new(move |path: &Path, s: ReadStep, past: u64| {
        if path == log && s == step && offsets.contains(&past) && seen.get().is_none() {
            // The reader waits here (another one at the lock): the file changes at exactly
            // this point of the run.
            let _one = once.lock().unwrap();
            if seen.get().is_none() {
                at();
                seen.set(past).unwrap();
            }
        }
    }));
    (o, done)
}

fn append(log: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
}

#[test]
fn a_log_that_grows_while_it_is_read_is_not_read_again_from_byte_0() {
    const N: u32 = 20_000;
    // It grows while the run hashes it (the run reads what it hashed, the growth included),
    // then while a worker parses it (the run reads what it hashed, the growth is for the next).
    for (step, taken) in [(ReadStep::Hash, N + 2_000), (ReadStep::Parse, N)] {
        let l = TestLake::new("UTC");
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "access.log", &numbered_lines(0, N)).canonicalize().unwrap();
        let grown = log.clone();
        let (o, grew) =
            changing_at(&log, step, 1 << 20..u64::MAX, move || append(&grown, &numbered_lines(N, 2_000)));
        let first = ingest(&l.lake, &o).unwrap();
        assert!(grew.get().is_some(), "{step:?}: the file grew during the run");
        let f = &first.files[0];
        assert_eq!(f.error, None, "{step:?}");
        assert_eq!((f.lines, f.size), (u64::from(taken), numbered_lines(0, taken).len() as u64), "{step:?}");
        l.ingest(std::slice::from_ref(&log));
        let n = (N + 2_000).to_string();
        assert_eq!(l.rows(LINES), vec![row(&[&n, &n])], "{step:?}");
        assert_eq!(l.scalar("SELECT sum(lines) FROM ingests"), n, "{step:?}");
    }
}

#[test]
fn copytruncate_during_an_ingest_loses_nothing() {
    const N: u32 = 30_000;
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let text = numbered_lines(0, N);
    let log = write(dir.path(), "access.log", &text).canonicalize().unwrap();
    let rotated = dir.path().join("access.log.1");
    // Once the worker is past its first MiB, rotate the way logrotate's copytruncate does.
    let (from, to) = (log.clone(), rotated.clone());
    let (o, cut) = changing_at(&log, ReadStep::Parse, 1 << 20..u64::MAX, move || {
        std::fs::copy(&from, &to).unwrap();
        std::fs::OpenOptions::new().write(true).open(&from).unwrap().set_len(0).unwrap();
    });
    let first = ingest(&l.lake, &o).unwrap();
    let f = &first.files[0];
    let why = f.error.as_deref().expect("a file truncated under its reader is partial");
    assert!(why.starts_with("changed while it was read: it shrank to 0 bytes"), "{why}");
    // What is recorded is what the worker had read when the file was cut, its last line too.
    let read = &text.as_bytes()[..*cut.get().unwrap() as usize];
    let lines = read.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert_eq!((f.size, f.lines), (read.len() as u64, lines));
    assert_eq!(l.scalar("SELECT status FROM ingests"), "partial");
    // The rotated copy holds the rest: it is read from where the first run stopped.
    std::fs::write(&log, numbered_lines(N, 10)).unwrap();
    let second = l.ingest(&[log.clone(), rotated.clone()]);
    assert!(second.files.iter().all(|f| f.error.is_none()), "{:?}", second.files);
    let n = (N + 10).to_string();
    assert_eq!(l.rows(LINES), vec![row(&[&n, &n])]);
    assert_eq!(findings(&l), Vec::new(), "the replaced cut line counts against the read it was cut in");
    assert!(l.ingest(&[log, rotated]).files.is_empty(), "and nothing is left to read");
}

#[test]
fn copytruncate_while_a_large_file_is_read_in_chunks_loses_nothing_and_doubles_nothing() {
    const N: u32 = 30_000;
    const CHUNK: u64 = 1 << 20;
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let text = numbered_lines(0, N);
    let log = write(dir.path(), "access.log", &text).canonicalize().unwrap();
    let rotated = dir.path().join("access.log.1");
    // The worker reading the first chunk is stopped a block in until another worker has read
    // past two chunks, then the file is rotated: rows past the first chunk's cut exist.
    let far = Arc::new(AtomicBool::new(false));
    let (seen, from, to) = (far.clone(), log.clone(), rotated.clone());
    let cut = Arc::new(OnceLock::new());
    let cut_at = cut.clone();
    let mut o = opts(&[&log]);
    o.testing.chunk_bytes = Some(CHUNK);
    o.testing.after_block = Some(Arc::new(move |path: &Path, step: ReadStep, past: u64| {
        if path != from || step != ReadStep::Parse {
            return;
        }
        if past >= 2 * CHUNK {
            seen.store(true, Ordering::SeqCst);
        } else if past < CHUNK && cut_at.get().is_none() {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !seen.load(Ordering::SeqCst) {
                assert!(std::time::Instant::now() < until, "no worker got past two chunks");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            std::fs::copy(&from, &to).unwrap();
            std::fs::OpenOptions::new().write(true).open(&from).unwrap().set_len(0).unwrap();
            cut_at.set(past).unwrap();
        }
    }));
    let first = ingest(&l.lake, &o).unwrap();
    let f = &first.files[0];
    let why = f.error.as_deref().expect("a file truncated under its readers is partial");
    assert!(why.starts_with("changed while it was read: it shrank to 0 bytes"), "{why}");
    assert!(why.contains("rows and rejects read past them, in later chunks, are not kept"), "{why}");
    // Recorded: the bytes from its start to where the first chunk's reader was cut off.
    let read = &text.as_bytes()[..*cut.get().unwrap() as usize];
    let lines = read.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert_eq!((f.size, f.lines, f.rows + f.rejects), (read.len() as u64, lines, lines));
    let kept = "SELECT (SELECT count(*) FROM proxy) + (SELECT count(*) FROM rejects)";
    assert_eq!(l.scalar(kept), lines.to_string(), "no row of a later chunk is kept");
    std::fs::write(&log, numbered_lines(N, 10)).unwrap();
    let second = l.ingest(&[log.clone(), rotated.clone()]);
    assert!(second.files.iter().all(|f| f.error.is_none()), "{:?}", second.files);
    let n = (N + 10).to_string();
    assert_eq!(l.rows(LINES), vec![row(&[&n, &n])]);
    assert_eq!(findings(&l), Vec::new());
}

#[test]
fn copytruncate_while_a_grown_file_is_read_from_the_middle_loses_nothing() {
    const CHUNK: u64 = 1 << 20;
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let text = numbered_lines(0, 30_000);
    // Read once with its last line cut mid-write, then grown: the next read starts at that line.
    let earlier = numbered_lines(0, 5_000);
    let log = write(dir.path(), "access.log", &earlier[..earlier.len() - 5]).canonicalize().unwrap();
    l.ingest(std::slice::from_ref(&log));
    std::fs::write(&log, &text).unwrap();
    let start = numbered_lines(0, 4_999).len() as u64;
    let rotated = dir.path().join("access.log.1");
    let (from, to) = (log.clone(), rotated.clone());
    let (mut o, cut) = changing_at(&log, ReadStep::Parse, start + (256 << 10)..start + CHUNK, move || {
        std::fs::copy(&from, &to).unwrap();
        std::fs::OpenOptions::new().write(true).open(&from).unwrap().set_len(0).unwrap();
    });
    o.testing.chunk_bytes = Some(CHUNK);
    let grown = ingest(&l.lake, &o).unwrap();
    let f = &grown.files[0];
    let cut = *cut.get().unwrap();
    let why = f.error.as_deref().expect("a file truncated under its readers is partial");
    assert!(why.contains("the bytes read are recorded as read"), "{why}");
    // Recorded as if read from byte 0 to the cut: the earlier read and this one's bytes.
    let read = &text.as_bytes()[..cut as usize];
    let lines = read.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert_eq!((f.start_byte, f.first_line, f.size), (start, 5_000, cut));
    assert_eq!(f.first_line + f.lines - 1, lines);
    std::fs::write(&log, numbered_lines(30_000, 10)).unwrap();
    let last = l.ingest(&[log.clone(), rotated.clone()]);
    assert!(last.files.iter().all(|f| f.error.is_none()), "{:?}", last.files);
    assert_eq!(l.rows(LINES), vec![row(&["30010", "30010"])]);
    assert_eq!(findings(&l), Vec::new());
}

/// The findings of `verify` without source paths, as (problem, table, file, detail).
fn findings(l: &TestLake) -> Vec<(String, String, String, String)> {
    let report = trawl::verify::verify(&l.lake, &[]).unwrap();
    report
        .findings
        .iter()
        .map(|f| (f.problem.name().into(), f.scope.clone(), f.path.clone(), f.detail.clone()))
        .collect()
}

#[test]
fn a_lost_delta_log_file_keeps_its_data_files_and_verify_says_so() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.log", &squid_lines(1, 30));
    l.ingest(std::slice::from_ref(&a));
    let before = l.lake.files_on_disk(&PROXY).unwrap();
    undo_last_commit(&l, "proxy");
    l.ingest(&[write(dir.path(), "b.log", &squid_lines(2, 20))]);
    let after = l.lake.files_on_disk(&PROXY).unwrap();
    assert!(before.iter().all(|f| after.contains(f)), "{before:?} kept in {after:?}");
    let found = findings(&l);
    assert_eq!(found.len(), 2, "{found:?}");
    let (problem, table, path, detail) = &found[0];
    assert_eq!((problem.as_str(), table.as_str(), path.as_str()), ("extra", "proxy", before[0].as_str()));
    assert!(detail.contains("the ingests ledger records the run that wrote it"), "{detail}");
    let (problem, table, path, detail) = &found[1];
    assert_eq!(
        (problem.as_str(), table.as_str(), path.as_str()),
        ("ledger mismatch", "ingests", a.to_str().unwrap())
    );
    assert!(
        detail.starts_with("the ledger records 30 rows and rejects of it, the tables hold 0"),
        "{detail}"
    );
}

#[test]
fn ingest_deletes_only_files_named_as_trawl_names_them() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    l.ingest(&[write(dir.path(), "a.log", &squid_lines(1, 30))]);
    let live = l.lake.files_on_disk(&PROXY).unwrap();
    let day = live[0].split('/').next().unwrap();
    let proxy = l.lake.root().join("proxy");
    let by_hand = [format!("{day}/evidence.parquet"), format!("{day}/part-00000-5d1c.c000.snappy.parquet")];
    for f in &by_hand {
        std::fs::copy(proxy.join(&live[0]), proxy.join(f)).unwrap();
    }
    l.ingest(&[write(dir.path(), "b.log", &squid_lines(2, 20))]);
    for f in &by_hand {
        assert!(proxy.join(f).exists(), "{f} is not trawl's to delete");
    }
    let found = findings(&l);
    let extra: Vec<&str> = found.iter().filter(|f| f.0 == "extra").map(|f| f.2.as_str()).collect();
    assert_eq!(extra, vec![by_hand[0].as_str(), by_hand[1].as_str()]);
    assert!(found.iter().all(|f| f.3.contains("put there by hand")), "{found:?}");
}

#[test]
fn first_ingests_with_different_zones_cannot_both_create_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let root = dir.path().join(format!("lake-{round}"));
        // Eight runs at once, half of them asking for another zone.
        let start = Barrier::new(8);
        let opened: Vec<(&str, Result<String, String>)> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|k| {
                    let (root, start) = (&root, &start);
                    s.spawn(move || {
                        let zone = if k % 2 == 0 { "Asia/Tokyo" } else { "UTC" };
                        start.wait();
                        let lake = Lake::open_or_create(root, Some(zone));
                        (zone, lake.map(|l| l.meta().time_zone.clone()).map_err(|e| e.to_string()))
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let on_disk = Lake::open(&root).unwrap().meta().time_zone.clone();
        for (asked, got) in opened {
            match got {
                Ok(zone) => {
                    assert_eq!((asked, zone.as_str()), (on_disk.as_str(), on_disk.as_str()), "round {round}")
                }
                Err(e) => assert!(
                    asked != on_disk && e.contains("a lake's zone is fixed when it is created"),
                    "round {round}: {asked} refused with {e}"
                ),
            }
        }
    }
}

#[test]
fn trawl_json_is_checked_against_the_zone_the_tables_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    Lake::open_or_create(&root, Some("Asia/Tokyo")).unwrap();
    let l = TestLake::open(&root);
    l.ingest(&[write(dir.path(), "a.log", &squid_lines(1, 5))]);
    let meta = root.join("trawl.json");
    let original = std::fs::read_to_string(&meta).unwrap();

    // Edited: refused, saying which zone the partitions are in.
    std::fs::write(&meta, original.replace("Asia/Tokyo", "UTC")).unwrap();
    let e = Lake::open(&root).unwrap_err().to_string();
    assert!(e.contains("it says time zone UTC, but the lake's partitions were cut in Asia/Tokyo"), "{e}");

    // Deleted: written again from the tables' record, not in the machine's zone.
    std::fs::remove_file(&meta).unwrap();
    let e = Lake::open_or_create(&root, Some("Europe/Paris")).unwrap_err().to_string();
    assert!(e.contains("uses time zone Asia/Tokyo, not Europe/Paris"), "{e}");
    assert_eq!(Lake::open_or_create(&root, None).unwrap().meta().time_zone, "Asia/Tokyo");
    assert!(std::fs::read_to_string(&meta).unwrap().contains("\"time_zone\": \"Asia/Tokyo\""));
}

#[test]
fn a_run_stopped_after_a_cut_line_rewrite_still_counts_the_replaced_row() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let (log, whole) = cut_log(dir.path(), 5, 11);
    l.ingest(std::slice::from_ref(&log));
    std::fs::write(&log, &whole).unwrap();
    assert_eq!(l.ingest(std::slice::from_ref(&log)).files[0].replaced_rows, 1);
    // Killed after the table commits and before the ledger's: the rerun completes the ledger.
    undo_last_commit(&l, "ingests");
    let rerun = l.ingest(std::slice::from_ref(&log));
    assert_eq!((rerun.files[0].rows, rerun.files[0].replaced_rows), (1, 1));
    assert_eq!(
        l.rows(
            "SELECT sum(rows) - sum(replaced_rows) + sum(rejects), (SELECT count(*) FROM proxy) FROM ingests"
        ),
        vec![row(&["11", "11"])]
    );
    assert_eq!(findings(&l), Vec::new());
}

#[test]
fn a_skipped_copy_that_grows_later_is_noticed_by_verify() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    write(&logs, "a.log", &squid_lines(1, 10));
    let copy = write(&logs, "b.log", &squid_lines(1, 10));
    let r = l.ingest(std::slice::from_ref(&logs));
    assert_eq!((r.files.len(), r.skipped.len()), (1, 1));
    let mut f = std::fs::OpenOptions::new().append(true).open(&copy).unwrap();
    std::io::Write::write_all(&mut f, squid_lines(2, 3).as_bytes()).unwrap();
    let report = trawl::verify::verify(&l.lake, &[logs]).unwrap();
    let found: Vec<(&str, &str)> =
        report.findings.iter().map(|f| (f.problem.name(), f.path.as_str())).collect();
    assert_eq!(found, vec![("source grew", copy.to_str().unwrap())]);
    assert!(report.findings[0].detail.contains("skipped at ingest as a copy of bytes already read"));
}

#[test]
fn a_run_that_fails_takes_its_uncommitted_files_with_it() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    l.ingest(&[write(dir.path(), "a.log", &squid_lines(1, 30))]);
    let tables = ["firewall", "proxy", "rejects", "ingests"];
    let before: Vec<Vec<String>> =
        trawl::schema::all_tables().iter().map(|t| l.lake.files_on_disk(t).unwrap()).collect();
    // The firewall table's next commit cannot be written: the run fails after writing its files.
    let log = l.lake.root().join("firewall/_delta_log");
    let next = std::fs::read_dir(&log)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    std::fs::create_dir_all(log.join(format!("{next:020}.json")).join("blocked")).unwrap();
    let failed = ingest(&l.lake, &opts(&[&write(dir.path(), "b.log", &squid_lines(2, 30))]));
    assert!(failed.is_err(), "{:?}", failed.map(|r| r.commits));
    let after: Vec<Vec<String>> =
        trawl::schema::all_tables().iter().map(|t| l.lake.files_on_disk(t).unwrap()).collect();
    assert_eq!(after, before, "no file of the failed run is left in {tables:?}");
}

#[test]
fn the_zone_record_survives_delta_log_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    Lake::open_or_create(&root, Some("Asia/Tokyo")).unwrap();
    let l = TestLake::open(&root);
    l.ingest(&[write(dir.path(), "a.log", &squid_lines(1, 5))]);
    // As Delta's log cleanup leaves a table: a checkpoint, and no first commit file.
    let rt = trawl::runtime();
    for spec in trawl::schema::all_tables() {
        let table = rt.block_on(l.lake.load_table(spec)).unwrap().unwrap();
        rt.block_on(deltalake::checkpoints::create_checkpoint(&table, None)).unwrap();
        std::fs::remove_file(root.join(&spec.table).join(format!("_delta_log/{:020}.json", 0))).unwrap();
    }
    let meta = root.join("trawl.json");
    std::fs::write(&meta, std::fs::read_to_string(&meta).unwrap().replace("Asia/Tokyo", "UTC")).unwrap();
    let e = Lake::open(&root).unwrap_err().to_string();
    assert!(e.contains("the lake's partitions were cut in Asia/Tokyo"), "{e}");
}
