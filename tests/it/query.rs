//! SQL over the lake: partition pruning, trawl's functions, clear errors.

use crate::common::{TestLake, row, testdata};

fn lake() -> TestLake {
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(&[testdata("squid")]);
    l
}

#[test]
fn date_filter_reads_only_that_partitions_files() {
    let l = lake();
    let total_files = l.scalar("SELECT count(DISTINCT date) FROM proxy");
    assert_eq!(total_files, "11");
    let plan = l.rows("EXPLAIN SELECT max(url) FROM proxy WHERE date = '2024-05-01'");
    let physical = &plan.iter().find(|r| r[0] == "physical_plan").expect("physical plan")[1];
    let files: Vec<&str> = physical.matches(".parquet").collect();
    assert_eq!(files.len(), 1, "{physical}");
    assert!(physical.contains("date=2024-05-01/"), "{physical}");
}

#[test]
fn reg_domain_url_host_and_local_ts() {
    let l = lake();
    assert_eq!(
        l.rows(
            "SELECT reg_domain(host), url_host(url), local_ts(ts), date_part('hour', local_ts(ts)) \
             FROM proxy WHERE source_file LIKE '%combined%' AND source_line = 1"
        ),
        vec![row(&["example.co.jp", "www.example.co.jp", "2024-05-01T08:59:59", "8"])]
    );
    assert_eq!(l.scalar("SELECT reg_domain('a.b.example.co.jp')"), "example.co.jp");
    assert_eq!(l.scalar("SELECT url_host('https://User@WWW.Example.com:8443/x')"), "www.example.com");
}

#[test]
fn sql_errors_name_the_tables() {
    let l = lake();
    let err = trawl::runtime().block_on(async {
        let e = trawl::engine::Engine::new(&l.lake).await.unwrap();
        match e.sql("SELECT nope FROM proxy").await {
            Ok(df) => df.collect().await.map(|_| ()).map_err(|x| e.explain(x)),
            Err(x) => Err(x),
        }
    });
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("nope"), "{msg}");
    assert!(
        msg.contains("tables in this lake: proxy, firewall, rejects, ingests, ifilter_categories"),
        "{msg}"
    );
}

#[test]
fn writes_are_refused() {
    let l = lake();
    let msg = trawl::runtime().block_on(async {
        let e = trawl::engine::Engine::new(&l.lake).await.unwrap();
        let mut msgs = Vec::new();
        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "INSERT INTO proxy SELECT * FROM proxy",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "SET datafusion.execution.batch_size = 1",
        ] {
            msgs.push(e.sql(sql).await.err().map(|x| x.to_string()).unwrap_or_default());
        }
        msgs
    });
    for m in msg {
        assert!(m.starts_with("refused: trawl's SQL is read-only"), "{m}");
    }
}
