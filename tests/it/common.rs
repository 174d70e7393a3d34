//! Shared helpers: temporary lakes, ingest and query in one call, rows as strings.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use tempfile::TempDir;
use trawl::engine::Engine;
use trawl::ingest::{IngestOptions, IngestReport, ingest};
use trawl::lake::Lake;

/// A path under `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(rel)
}

/// A lake in a temporary folder; the folder goes when this is dropped.
pub struct TestLake {
    /// Keeps the folder alive as long as the lake.
    _dir: TempDir,
    pub lake: Lake,
}

impl TestLake {
    pub fn new(tz: &str) -> TestLake {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = Lake::open_or_create(&dir.path().join("lake"), Some(tz)).expect("new lake");
        TestLake { _dir: dir, lake }
    }

    /// An existing lake (one a child process wrote, say).
    pub fn open(path: &Path) -> TestLake {
        TestLake { _dir: tempfile::tempdir().expect("temp dir"), lake: Lake::open(path).expect("a lake") }
    }

    /// Ingests paths with two workers, recognising formats.
    pub fn ingest(&self, paths: &[PathBuf]) -> IngestReport {
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        ingest(&self.lake, &ingest_options(&paths)).expect("ingest succeeds")
    }

    /// Runs SQL and returns every row, each value formatted as the CLI prints it (NULL as "NULL").
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        batch_rows(&self.batches(sql))
    }

    /// Runs SQL and returns the batches.
    pub fn batches(&self, sql: &str) -> Vec<RecordBatch> {
        trawl::runtime().block_on(async {
            let engine = Engine::new(&self.lake).await.expect("engine");
            let df = engine.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// A single value.
    pub fn scalar(&self, sql: &str) -> String {
        let rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "{sql} gave {rows:?}");
        rows[0][0].clone()
    }
}

/// Every row of the batches, each value formatted as the CLI prints it (NULL as "NULL").
pub fn batch_rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let f: Vec<_> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for r in 0..b.num_rows() {
            out.push(f.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    out
}

/// Shorthand for a row of string literals.
pub fn row(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

/// SHA-256 over every row of a table, in a fixed order: equal digests mean equal contents.
pub fn content_digest(l: &TestLake, table: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut rows = l.rows(&format!("SELECT * FROM {table}"));
    rows.sort();
    let mut h = Sha256::new();
    for r in &rows {
        for v in r {
            h.update(v.as_bytes());
            h.update([0x1f]);
        }
        h.update([b'\n']);
    }
    format!("{}:{:x}", rows.len(), h.finalize())
}

/// Squid native lines for one day, `n` of them, from client `10.0.<tag>.x`: small distinct logs.
pub fn squid_lines(tag: u32, n: u32) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "{}.{:03} {:>5} 10.0.{tag}.{} TCP_MISS/200 {} GET http://h{}.example.com/p{i} - HIER_DIRECT/203.0.113.9 text/html\n",
            1_714_550_400 + tag * 600 + i,
            i % 1000,
            i % 900,
            i % 200,
            500 + i * 7,
            i % 9
        ));
    }
    s
}

/// Removes a table's latest Delta commit file, as if the run had died just before making it.
pub fn undo_last_commit(l: &TestLake, table: &str) {
    let log = l.lake.root().join(table).join("_delta_log");
    let last = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max()
        .unwrap();
    std::fs::remove_file(last).unwrap();
}

/// Options of an in-process ingest of `paths` with two workers, recognising formats.
pub fn ingest_options(paths: &[&Path]) -> IngestOptions {
    IngestOptions {
        paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        format: None,
        logformats: Vec::new(),
        jobs: 2,
        progress: false,
        writer_budget: None,
        testing: Default::default(),
    }
}
