//! Exports that open cleanly: `query -o` and `detect --out` files as Excel, pandas, pyarrow read
//! them, written whole or not at all.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;

use crate::common::{TestLake, testdata};

static LAKE: LazyLock<TestLake> = LazyLock::new(|| {
    let l = TestLake::new("UTC");
    l.ingest(&[testdata("squid/proxy01"), testdata("squid/combined")]);
    l
});

fn query(args: &[&str], sql: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["query", "--lake"])
        .arg(LAKE.lake.root())
        .args(args)
        .arg(sql)
        .output()
        .unwrap()
}

fn stdout(args: &[&str], sql: &str) -> String {
    let out = query(args, sql);
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Timestamps of three precisions and zones, as the lake and `local_ts` give them.
const TIMES: &str = "SELECT arrow_cast(column1, 'Timestamp(Microsecond, Some(\"UTC\"))') AS ts, \
     arrow_cast(column1, 'Timestamp(Microsecond, None)') AS wall, \
     arrow_cast(column2, 'Timestamp(Microsecond, Some(\"UTC\"))') AS fine \
     FROM (VALUES ('2024-05-01T10:00:39Z', '2024-05-01T10:00:39.000001Z'), \
                  ('2024-05-01T10:00:26.835Z', '2024-05-01T10:00:26Z'))";

#[test]
fn csv_tells_null_from_empty_writes_maps_as_json_and_timestamps_in_one_precision() {
    assert_eq!(
        stdout(
            &["--format", "csv"],
            "SELECT arrow_cast(NULL, 'Utf8') AS n, '' AS e, 'a\"b,c' AS q, \
             map(['c19', 'pid'], ['x', '12']) AS extra, [1, 2] AS l"
        ),
        "n,e,q,extra,l\n,\"\",\"a\"\"b,c\",\"{\"\"c19\"\":\"\"x\"\",\"\"pid\"\":\"\"12\"\"}\",\"[1,2]\"\n"
    );
    // README: user_agent NULL is "not logged" (native format), '' is "logged as -".
    assert_eq!(
        stdout(
            &["--format", "csv"],
            "SELECT user_agent, count(*) AS n FROM proxy GROUP BY 1 ORDER BY 1 NULLS FIRST LIMIT 2"
        ),
        "user_agent,n\n,66\n\"\",1\n"
    );
    assert_eq!(
        stdout(&["--format", "csv"], TIMES),
        "ts,wall,fine\n\
         2024-05-01T10:00:39.000Z,2024-05-01 10:00:39.000,2024-05-01T10:00:39.000001Z\n\
         2024-05-01T10:00:26.835Z,2024-05-01 10:00:26.835,2024-05-01T10:00:26.000000Z\n"
    );
}

#[test]
fn csv_files_start_with_a_bom_for_excel_and_pipes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.csv");
    let sql = "SELECT 'カタカナ' AS k";
    stdout(&["-o", file.to_str().unwrap()], sql);
    assert_eq!(std::fs::read(&file).unwrap(), "\u{feff}k\nカタカナ\n".as_bytes());
    stdout(&["--csv-bom", "never", "--force", "-o", file.to_str().unwrap()], sql);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "k\nカタカナ\n");
    assert_eq!(stdout(&["--format", "csv"], sql), "k\nカタカナ\n");
    assert_eq!(stdout(&["--format", "csv", "--csv-bom", "always"], sql), "\u{feff}k\nカタカナ\n");
}

#[test]
fn json_keeps_keys_whose_value_is_null() {
    assert_eq!(
        stdout(&["--format", "json"], "SELECT 1 AS a, CAST(NULL AS INT) AS b, arrow_cast(NULL, 'Utf8') AS c"),
        "[{\"a\":1,\"b\":null,\"c\":null}]"
    );
    assert_eq!(stdout(&["--format", "ndjson"], "SELECT CAST(NULL AS INT) AS b"), "{\"b\":null}\n");
}

#[test]
fn parquet_exports_are_zstd_with_plain_strings_and_a_plain_date() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.parquet");
    stdout(&["-o", file.to_str().unwrap()], "SELECT date, host, ts FROM proxy");
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
    let types: Vec<DataType> = r.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(types[..2], [DataType::Utf8, DataType::Utf8]);
    let meta = r.metadata();
    assert_eq!(meta.file_metadata().num_rows(), 70);
    for c in meta.row_group(0).columns() {
        assert!(matches!(c.compression(), Compression::ZSTD(_)), "{:?}", c.compression());
    }
}

/// The message of a query that must fail with exit status 2.
fn refused(args: &[&str], sql: &str) -> String {
    let out = query(args, sql);
    assert_eq!(out.status.code(), Some(2), "{sql}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failed_export_leaves_nothing_so_the_retry_needs_no_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("i.parquet");
    // Parquet has no interval type: the writer fails after the file was begun.
    let msg = refused(&["-o", file.to_str().unwrap()], "SELECT interval '1 day' AS i");
    assert!(msg.contains("interval"), "{msg}");
    assert!(names_in(dir.path()).is_empty(), "no partial file, no temporary file");
    stdout(&["-o", file.to_str().unwrap()], "SELECT 1 AS i");
    assert_eq!(names_in(dir.path()), ["i.parquet"]);
}

#[test]
fn unknown_extensions_and_dangling_links_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let xlsx = dir.path().join("x.xlsx");
    let msg = refused(&["-o", xlsx.to_str().unwrap()], "SELECT 1 AS a");
    assert!(msg.contains("x.xlsx") && msg.contains(".csv, .json") && msg.contains("--format"), "{msg}");
    assert!(names_in(dir.path()).is_empty());
    // Told the format, any name will do.
    stdout(&["--format", "csv", "-o", xlsx.to_str().unwrap()], "SELECT 1 AS a");
    assert_eq!(std::fs::read_to_string(&xlsx).unwrap(), "\u{feff}a\n1\n");

    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(dir.path().join("elsewhere.csv"), &link).unwrap();
    assert!(refused(&["-o", link.to_str().unwrap()], "SELECT 1 AS a").contains("does not exist"));
    assert!(!dir.path().join("elsewhere.csv").exists(), "the link's target is not created");
}

#[test]
fn a_reader_that_stops_early_is_success_in_every_format() {
    for format in ["csv", "json", "ndjson", "table"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(["query", "--format", format, "--lake"])
            .arg(LAKE.lake.root())
            .arg("SELECT * FROM generate_series(1, 200000)")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe is closed here, with most of the output unread.
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
