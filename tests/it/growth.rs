//! Files that grow between ingests, and rotated copies of files already read: each line once.

use std::io::Write;
use std::path::Path;

use crate::common::{TestLake, row, squid_lines};

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

const PER_LINE: &str =
    "SELECT count(*), count(DISTINCT source_line), min(source_line), max(source_line) FROM proxy";

#[test]
fn a_file_that_grew_adds_only_its_new_lines() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, squid_lines(1, 100)).unwrap();
    l.ingest(std::slice::from_ref(&log));
    append(&log, &squid_lines(2, 50));
    let r = l.ingest(std::slice::from_ref(&log));
    assert_eq!(r.files.len(), 1);
    let f = &r.files[0];
    assert_eq!((f.lines, f.rows, f.first_line, f.replaced_rows), (50, 50, 101, 0));
    assert_eq!(l.rows(PER_LINE), vec![row(&["150", "150", "1", "150"])]);
    // Grown again: it picks up after the second read, not the first.
    append(&log, &squid_lines(3, 7));
    let r = l.ingest(std::slice::from_ref(&log));
    assert_eq!((r.files[0].lines, r.files[0].first_line), (7, 151));
    assert_eq!(l.rows(PER_LINE), vec![row(&["157", "157", "1", "157"])]);
    assert_eq!(
        l.rows("SELECT first_line, lines, start_byte > 0, resumed_from IS NOT NULL FROM ingests ORDER BY first_line"),
        vec![row(&["1", "100", "false", "false"]), row(&["101", "50", "true", "true"]), row(&["151", "7", "true", "true"])]
    );
    assert!(l.ingest(std::slice::from_ref(&log)).files.is_empty(), "and nothing new: nothing read");
}

/// Lines 1-10, then line 11 cut at `cut` bytes, without its newline (client 10.0.5.x).
fn cut_log(path: &Path, cut: usize) -> String {
    cut_log_of(path, 5, cut)
}

/// The same, from client `10.0.<tag>.x`: logs that differ.
fn cut_log_of(path: &Path, tag: u32, cut: usize) -> String {
    let eleven = squid_lines(tag, 11);
    let (head, last) = eleven.trim_end().rsplit_once('\n').unwrap();
    std::fs::write(path, format!("{head}\n{}", &last[..cut])).unwrap();
    last.to_string()
}

#[test]
fn a_cut_last_line_is_read_whole_once_the_file_grows_and_its_cut_form_goes() {
    for (cut, cut_is_row) in [(20, false), (110, true)] {
        let l = TestLake::new("UTC");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let eleventh = cut_log(&log, cut);
        let first = l.ingest(std::slice::from_ref(&log));
        assert_eq!(first.files[0].lines, 11, "an unterminated last line is read like any other");
        let cut_rows = l.scalar("SELECT count(*) FROM proxy WHERE source_line = 11");
        let cut_rejects = l.scalar("SELECT count(*) FROM rejects WHERE source_line = 11");
        assert_eq!((cut_rows == "1", cut_rejects == "1"), (cut_is_row, !cut_is_row), "cut at {cut}");

        // The writer finishes the line, then writes two more.
        append(&log, &format!("{}\n{}", &eleventh[cut..], squid_lines(6, 2)));
        let r = l.ingest(std::slice::from_ref(&log));
        let f = &r.files[0];
        assert_eq!((f.first_line, f.lines, f.rows, f.replaced_rows), (11, 3, 3, 1), "cut at {cut}");
        assert_eq!(l.rows(PER_LINE), vec![row(&["13", "13", "1", "13"])], "cut at {cut}");
        assert_eq!(l.scalar("SELECT count(*) FROM rejects"), "0", "cut at {cut}");
        assert_eq!(l.scalar("SELECT content_type FROM proxy WHERE source_line = 11"), "text/html");
        assert_eq!(
            l.scalar("SELECT sum(rows) - sum(replaced_rows) + sum(rejects) FROM ingests"),
            "13",
            "the ledger's counts still add up to the lake's"
        );
    }
}

#[test]
fn a_last_line_that_was_whole_is_kept_when_the_newline_comes_later() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let eleven = squid_lines(5, 11);
    std::fs::write(&log, eleven.trim_end()).unwrap();
    l.ingest(std::slice::from_ref(&log));
    append(&log, &format!("\n{}", squid_lines(6, 2)));
    let r = l.ingest(std::slice::from_ref(&log));
    let f = &r.files[0];
    assert_eq!((f.first_line, f.lines, f.replaced_rows), (12, 2, 0));
    assert_eq!(l.rows(PER_LINE), vec![row(&["13", "13", "1", "13"])]);
}

fn gzip(path: &Path, bytes: &[u8]) {
    let mut enc =
        flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap();
}

#[test]
fn a_rotated_and_gzipped_copy_is_recognised_by_its_content() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, squid_lines(1, 100)).unwrap();
    l.ingest(std::slice::from_ref(&log));
    // logrotate: access.log -> access.log.1 -> access.log.1.gz, same content.
    let gz = dir.path().join("access.log.1.gz");
    gzip(&gz, &std::fs::read(&log).unwrap());
    std::fs::remove_file(&log).unwrap();
    let r = l.ingest(&[dir.path().to_path_buf()]);
    assert!(r.files.is_empty(), "{:?}", r.files);
    assert!(r.skipped[0].reason.contains("decompressed content is the bytes of"), "{:?}", r.skipped);
    assert_eq!(l.rows(PER_LINE), vec![row(&["100", "100", "1", "100"])]);
}

#[test]
fn a_file_that_grew_then_was_rotated_and_gzipped_adds_only_its_new_lines() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    // Read while its last line was being written.
    let eleventh = cut_log(&log, 30);
    l.ingest(std::slice::from_ref(&log));
    append(&log, &format!("{}\n{}", &eleventh[30..], squid_lines(6, 4)));
    let gz = dir.path().join("access.log-20240502.gz");
    gzip(&gz, &std::fs::read(&log).unwrap());
    std::fs::remove_file(&log).unwrap();
    let r = l.ingest(std::slice::from_ref(&gz));
    let f = &r.files[0];
    assert_eq!((f.compression, f.first_line, f.lines, f.rows, f.replaced_rows), ("gzip", 11, 5, 5, 1));
    assert_eq!(l.rows(PER_LINE), vec![row(&["15", "15", "1", "15"])]);
    assert_eq!(l.scalar("SELECT count(*) FROM rejects"), "0");
    // A gzipped log of another name owes nothing to earlier reads.
    let other = dir.path().join("other.log.gz");
    gzip(&other, squid_lines(7, 3).as_bytes());
    assert_eq!(l.ingest(std::slice::from_ref(&other)).files[0].first_line, 1);
}

#[test]
fn a_file_that_grew_then_was_renamed_by_rotation_adds_only_its_new_lines() {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, squid_lines(1, 50)).unwrap();
    l.ingest(std::slice::from_ref(&log));
    append(&log, &squid_lines(2, 10));
    std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
    // Another log name of the same length is not taken for an earlier read of this one.
    std::fs::write(dir.path().join("other.log"), squid_lines(3, 50)).unwrap();
    let r = l.ingest(&[dir.path().to_path_buf()]);
    let first: Vec<(String, u64, u64)> = r
        .files
        .iter()
        .map(|f| (f.path.rsplit('/').next().unwrap().to_string(), f.first_line, f.lines))
        .collect();
    assert_eq!(first, vec![("access.log.1".to_string(), 51, 10), ("other.log".to_string(), 1, 50)]);
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), "110");
}

#[test]
fn two_cut_lines_in_one_parquet_file_are_replaced_without_doubling_it() {
    use trawl::ingest::{IngestOptions, ingest};
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a/access.log"), dir.path().join("b/access.log"));
    std::fs::create_dir_all(a.parent().unwrap()).unwrap();
    std::fs::create_dir_all(b.parent().unwrap()).unwrap();
    let (rest_a, rest_b) = (cut_log_of(&a, 4, 40), cut_log_of(&b, 5, 40));
    // One worker: both files' rows, cut lines included, land in the same Parquet file.
    let one_worker = |paths: Vec<std::path::PathBuf>| IngestOptions {
        paths,
        format: None,
        logformats: Vec::new(),
        jobs: 1,
        progress: false,
        writer_budget: None,
        testing: Default::default(),
    };
    ingest(&l.lake, &one_worker(vec![dir.path().to_path_buf()])).unwrap();
    assert_eq!(l.scalar("SELECT count(*) FROM rejects"), "2");
    append(&a, &format!("{}\n{}", &rest_a[40..], squid_lines(6, 2)));
    append(&b, &format!("{}\n{}", &rest_b[40..], squid_lines(7, 2)));
    let r = ingest(&l.lake, &one_worker(vec![dir.path().to_path_buf()])).unwrap();
    assert_eq!(r.files.iter().map(|f| f.replaced_rows).collect::<Vec<_>>(), [1, 1]);
    // 10 lines each before the cut, the cut line whole, 2 more: 13 per file, each line once.
    assert_eq!(
        l.rows(
            "SELECT count(*), count(DISTINCT source_file || ':' || CAST(source_line AS VARCHAR)) FROM proxy"
        ),
        vec![row(&["26", "26"])]
    );
    assert_eq!(l.scalar("SELECT count(*) FROM rejects"), "0");
}
