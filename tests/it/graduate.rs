//! Other engines read the lake as README's "Graduating" section says: Spark, DuckDB and polars
//! through the tables' manifests, delta-rs's Python package through the Delta log
//! (`tests/graduate.py`), each counting exactly trawl's rows, per table and per day, before and
//! after a compact that leaves the merged files on disk. A reader that is not installed here
//! is skipped, and the test says so.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use trawl::schema::{all_tables, table};

use crate::common::{TestLake, squid_lines, testdata};

fn trawl(args: &[&str], lake: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl")).args(args).arg("--lake").arg(lake).output().unwrap();
    assert!(out.status.success(), "trawl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// What trawl counts: `{table: {"rows": n, "days": {date: n}}}`, as graduate.py prints it.
fn trawl_counts(lake: &Path) -> Value {
    let l = TestLake::open(lake);
    let mut out = serde_json::Map::new();
    for spec in all_tables() {
        let t = &spec.table;
        let rows: u64 = l.scalar(&format!("SELECT count(*) FROM {t}")).parse().unwrap();
        let mut days = serde_json::Map::new();
        if spec.partition_by_date {
            for r in l.rows(&format!("SELECT date, count(*) FROM {t} GROUP BY date")) {
                days.insert(r[0].clone(), json!(r[1].parse::<u64>().unwrap()));
            }
        }
        out.insert(t.clone(), json!({"rows": rows, "days": days}));
    }
    Value::Object(out)
}

/// Checks every reader graduate.py found against trawl's counts; returns how many it checked.
fn compare(step: &str, answer: &str, want: &Value) -> usize {
    let answer: Value = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{step}: {e}: {answer}"));
    for (reader, why) in answer["skipped"].as_object().unwrap() {
        eprintln!("{step}: skipped {reader}: {}", why.as_str().unwrap());
    }
    let counts = answer["counts"].as_object().unwrap();
    for (reader, got) in counts {
        assert_eq!(got, want, "{step}: {reader} counts other rows than trawl");
    }
    counts.len()
}

#[test]
fn spark_duckdb_polars_and_deltalake_count_trawls_rows_before_and_after_a_compact() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let conf = testdata("squid-custom/squid.conf");
    let data = testdata("");
    trawl(
        &[
            "ingest",
            "-q",
            "--tz",
            "Asia/Tokyo",
            "--squid-conf",
            conf.to_str().unwrap(),
            data.to_str().unwrap(),
        ],
        &lake,
    );
    // Two more runs on one day of testdata's: that day has three small files to merge.
    for tag in [1, 2] {
        let log = dir.path().join(format!("extra{tag}.log"));
        std::fs::write(&log, squid_lines(tag, 20)).unwrap();
        trawl(&["ingest", "-q", log.to_str().unwrap()], &lake);
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graduate.py");
    // Spark's log goes to a file, shown when something fails.
    let log = dir.path().join("graduate.log");
    let child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let Ok(mut child) = child else {
        eprintln!("skipped: python3 is not installed, so no other engine is checked");
        return;
    };
    let mut ask = child.stdin.take().unwrap();
    let mut answers = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut read_lake = |step: &str| {
        writeln!(ask, "{}", lake.display()).unwrap();
        answers.next().unwrap_or_else(|| panic!("{step}: graduate.py stopped:\n{}", log_text())).unwrap()
    };

    let before = trawl_counts(&lake);
    assert_eq!(before["proxy"]["days"]["2024-05-01"], json!(43), "3 of testdata, 20 and 20 more");
    let checked = compare("after three ingests", &read_lake("ingests"), &before);

    trawl(&["compact"], &lake);
    let l = TestLake::open(&lake);
    let proxy = table("proxy").unwrap();
    let t = trawl::runtime().block_on(l.lake.load_table(proxy)).unwrap().unwrap();
    let (live, on_disk) =
        (l.lake.live_files(proxy, &t).unwrap().len(), l.lake.files_on_disk(proxy).unwrap().len());
    assert_eq!(on_disk, live + 3, "the three merged files stay on disk a week, where a glob would read them");
    assert_eq!(trawl_counts(&lake), before, "a compact changes no row");
    compare("after a compact", &read_lake("compact"), &before);

    drop(ask);
    assert!(child.wait().unwrap().success(), "graduate.py failed:\n{}", log_text());
    eprintln!("{checked} other reader(s) counted trawl's rows");
}
