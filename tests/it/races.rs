//! Runs that race each other on one lake, and a lake tampered with between runs: no row doubled,
//! none lost, and what cannot be made right is refused with a message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Barrier;

use trawl::lake::Lake;
use trawl::schema::PROXY;

use crate::common::{TestLake, row, squid_lines};

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
    let whole = squid_lines(10, 30);
    // Cut in its content type: the cut form is still a row.
    let log = write(dir.path(), "cut.log", &whole[..whole.len() - 5]);
    l.ingest(&[log.clone()]);
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
