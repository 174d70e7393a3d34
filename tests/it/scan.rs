//! Lake tables are read by DataFusion's own Parquet scan over the snapshot's live files: the
//! schema delta-rs's provider showed, no delta-rs node in any plan, only the files a filter on
//! `date` or a time range may match opened, projection and limit in the scan, and plans that
//! travel to a cluster's executors as DataFusion's protobuf.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::datasource::physical_plan::{FileScanConfig, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use trawl::engine::{Engine, TimeRange};

use crate::common::{TestLake, row, squid_lines, testdata};

/// Every table filled: proxy and firewall rows, a reject, the ledger.
fn full_lake() -> TestLake {
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(&[testdata("squid"), testdata("firewall"), testdata("ifilter")]);
    l
}

/// Three UTC days of proxy rows: 2024-05-01 (3), 2024-05-02 (2), 2024-05-04 (4).
fn three_days() -> TestLake {
    let l = TestLake::new("UTC");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, format!("{}{}{}", squid_lines(1, 3), squid_lines(200, 2), squid_lines(400, 4)))
        .unwrap();
    l.ingest(std::slice::from_ref(&log));
    l
}

/// The physical plan DataFusion runs for `sql`.
async fn plan(engine: &Engine, sql: &str) -> Arc<dyn ExecutionPlan> {
    engine.sql(sql).await.unwrap().create_physical_plan().await.unwrap()
}

/// Every node of a plan, depth first.
fn nodes(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut out = vec![Arc::clone(plan)];
    for child in plan.children() {
        out.extend(nodes(child));
    }
    out
}

/// The Parquet files the plan's scans open, by path from the table folder (`date=.../part-...`).
fn files_opened(plan: &Arc<dyn ExecutionPlan>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for node in nodes(plan) {
        let Some(scan) = node.downcast_ref::<DataSourceExec>() else { continue };
        let (config, _) = scan.downcast_to_file_source::<ParquetSource>().expect("a Parquet file scan");
        for group in &config.file_groups {
            for f in group.iter() {
                let path = f.object_meta.location.to_string();
                let at = path.find("/proxy/").map_or(0, |i| i + "/proxy/".len());
                out.insert(path[at..].to_string());
            }
        }
    }
    out
}

/// The plan's first Parquet scan: its file scan and its reader's settings.
fn first_scan(plan: &Arc<dyn ExecutionPlan>) -> (FileScanConfig, ParquetSource) {
    let all = nodes(plan);
    let scan = all.iter().find_map(|n| n.downcast_ref::<DataSourceExec>()).expect("a scan");
    let (config, parquet) = scan.downcast_to_file_source::<ParquetSource>().expect("a Parquet file scan");
    (config.clone(), parquet.clone())
}

/// Just the days of [`files_opened`].
fn days_opened(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let days: BTreeSet<String> =
        files_opened(plan).iter().filter_map(|p| p.split('/').next().map(str::to_string)).collect();
    days.into_iter().collect()
}

#[test]
fn tables_show_the_schema_delta_rs_showed() {
    let l = full_lake();
    trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        for spec in trawl::schema::all_tables() {
            let ours = engine.ctx().table_provider(spec.table.as_str()).await.unwrap().schema();
            let table = l.lake.load_table(spec).await.unwrap().expect("every table has a commit");
            let theirs = table.table_provider().await.unwrap().schema();
            let shape = |s: &datafusion::arrow::datatypes::Schema| -> Vec<String> {
                s.fields()
                    .iter()
                    .map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable()))
                    .collect()
            };
            assert_eq!(shape(&ours), shape(&theirs), "table {}", spec.table);
        }
        let date = engine.ctx().table_provider("proxy").await.unwrap().schema();
        let date = date.field_with_name("date").unwrap();
        assert_eq!(
            (date.data_type().to_string(), date.is_nullable()),
            ("Dictionary(UInt16, Utf8)".into(), false)
        );
    });
}

#[test]
fn plans_hold_datafusion_parquet_scans_and_no_delta_rs_node() {
    let l = full_lake();
    trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        for sql in [
            "SELECT * FROM proxy",
            "SELECT date, count(*) FROM proxy WHERE status >= 400 GROUP BY date",
            "SELECT p.client_ip, f.dst_port FROM proxy p JOIN firewall f ON p.client_ip = f.src_ip",
            "SELECT reason, count(*) FROM rejects GROUP BY reason",
            "SELECT path FROM ingests WHERE status = 'ingested'",
            "SELECT host FROM proxy_unique WHERE date >= '2024-05-01' UNION ALL SELECT host FROM proxy_history",
        ] {
            let plan = plan(&engine, sql).await;
            let all = nodes(&plan);
            let delta: Vec<&str> = all.iter().map(|n| n.name()).filter(|n| n.to_lowercase().contains("delta")).collect();
            assert!(delta.is_empty(), "{sql}: {delta:?}");
            let scans = all.iter().filter(|n| n.downcast_ref::<DataSourceExec>().is_some()).count();
            assert!(scans >= 1, "{sql}: no DataSourceExec in {:?}", all.iter().map(|n| n.name()).collect::<Vec<_>>());
        }
    });
}

#[test]
fn date_filters_and_time_ranges_open_only_the_matching_days() {
    let l = three_days();
    trawl::runtime().block_on(async {
        let mut engine = Engine::new(&l.lake).await.unwrap();
        let all = plan(&engine, "SELECT * FROM proxy").await;
        assert_eq!(days_opened(&all), ["date=2024-05-01", "date=2024-05-02", "date=2024-05-04"]);
        let one = plan(&engine, "SELECT * FROM proxy WHERE date = '2024-05-02'").await;
        assert_eq!(days_opened(&one), ["date=2024-05-02"]);
        let from = plan(&engine, "SELECT * FROM proxy WHERE date >= '2024-05-02'").await;
        assert_eq!(days_opened(&from), ["date=2024-05-02", "date=2024-05-04"]);
        // A time filter alone opens only the files whose Add-action range of ts it meets.
        let late = plan(&engine, "SELECT * FROM proxy WHERE ts >= TIMESTAMP '2024-05-02T00:00:00Z'").await;
        assert_eq!(days_opened(&late), ["date=2024-05-02", "date=2024-05-04"]);
        // A filter stats cannot judge opens every file and is applied to the rows.
        let judged = plan(&engine, "SELECT * FROM proxy WHERE reg_domain(host) = 'example.com'").await;
        assert_eq!(days_opened(&judged).len(), 3);
        let none = plan(&engine, "SELECT * FROM proxy WHERE date = '2023-01-01'").await;
        assert!(files_opened(&none).is_empty());

        // --since/--until restrict every table to the range: one day's file.
        engine
            .restrict(&TimeRange::parse(Some("2024-05-02"), Some("2024-05-02"), l.lake.tz()).unwrap())
            .await
            .unwrap();
        let ranged = plan(&engine, "SELECT count(*) FROM proxy").await;
        assert_eq!(days_opened(&ranged), ["date=2024-05-02"]);
        let (_, batches) = engine.collect("SELECT count(*) FROM proxy").await.unwrap();
        assert_eq!(crate::common::batch_rows(&batches), vec![row(&["2"])]);
        // The history table is never restricted.
        let history = plan(&engine, "SELECT count(*) FROM proxy_history WHERE source_line > 0").await;
        assert_eq!(days_opened(&history).len(), 3);
    });
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE date = '2023-01-01'"), "0");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE reg_domain(host) = 'example.com'"), "9");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE reg_domain(host) = 'example.org'"), "0");
    // Row counts come from the files' stats only where no row can be filtered out.
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), "9");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE date = '2024-05-04'"), "4");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE ts >= TIMESTAMP '2024-05-02T17:20:01Z'"), "5");
    // A table whose snapshot has no files reads as empty.
    assert_eq!(l.scalar("SELECT count(*) FROM firewall"), "0");
    assert_eq!(l.rows("SELECT src_ip FROM firewall WHERE date = '2024-05-01'"), Vec::<Vec<String>>::new());
    assert_eq!(
        l.rows("SELECT date, count(*) FROM proxy WHERE ts >= TIMESTAMP '2024-05-02T00:00:00Z' GROUP BY date ORDER BY date"),
        vec![row(&["2024-05-02", "2"]), row(&["2024-05-04", "4"])]
    );
}

#[test]
fn projection_and_limit_reach_the_scan() {
    let l = three_days();
    trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        let limited =
            plan(&engine, "SELECT client_ip, date FROM proxy WHERE date = '2024-05-04' LIMIT 2").await;
        let (config, _) = first_scan(&limited);
        assert_eq!(config.limit, Some(2));
        let columns: Vec<String> =
            config.projected_schema().unwrap().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(columns, ["client_ip", "date"]);

        // Other filters go into the Parquet reader, which skips row groups and pages by them and
        // filters rows as it decodes: no filter is left above the scan.
        let filtered = plan(&engine, "SELECT client_ip FROM proxy WHERE status = 200").await;
        let all = nodes(&filtered);
        assert!(
            all.iter().all(|n| n.name() != "FilterExec"),
            "{:?}",
            all.iter().map(|n| n.name()).collect::<Vec<_>>()
        );
        let (_, parquet) = first_scan(&filtered);
        let predicate = parquet.filter().expect("the filter reached the reader").to_string();
        assert!(predicate.contains("status") && predicate.contains("200"), "{predicate}");
    });
    assert_eq!(
        l.rows("SELECT client_ip, date FROM proxy WHERE date = '2024-05-04' ORDER BY client_ip LIMIT 2"),
        vec![row(&["10.0.400.0", "2024-05-04"]), row(&["10.0.400.1", "2024-05-04"])]
    );
}

#[test]
fn plans_serialise_to_datafusion_protobuf_and_back_with_their_files() {
    let l = three_days();
    trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        let sql = "SELECT client_ip, count(*) AS n FROM proxy \
                   WHERE date >= '2024-05-02' AND status = 200 GROUP BY client_ip ORDER BY client_ip";
        let plan = plan(&engine, sql).await;
        let bytes = datafusion_proto::bytes::physical_plan_to_bytes(Arc::clone(&plan)).expect("serialisable");
        let back =
            datafusion_proto::bytes::physical_plan_from_bytes(&bytes, &engine.ctx().task_ctx()).unwrap();
        assert_eq!(files_opened(&back), files_opened(&plan));
        assert_eq!(days_opened(&back), ["date=2024-05-02", "date=2024-05-04"]);
        // What an executor would run gives the rows the local plan gives.
        let run = |p: Arc<dyn ExecutionPlan>| {
            let ctx = engine.ctx().task_ctx();
            async move { datafusion::physical_plan::collect(p, ctx).await.unwrap() }
        };
        let (local, remote) = (run(plan).await, run(back).await);
        assert_eq!(crate::common::batch_rows(&remote), crate::common::batch_rows(&local));
        assert_eq!(crate::common::batch_rows(&local).len(), 6);
    });
}

/// Commits `actions` (one JSON object a line) to `table` as its next version, as another Delta
/// engine would.
fn commit_by_another_engine(l: &TestLake, table: &str, actions: &[serde_json::Value]) {
    let log = l.lake.root().join(table).join("_delta_log");
    let versions = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".json")?.parse::<u64>().ok())
        .max()
        .unwrap();
    let text: String = actions.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(log.join(format!("{:020}.json", versions + 1)), text).unwrap();
}

/// Why the engine refuses to open the lake.
fn engine_error(l: &TestLake) -> String {
    trawl::runtime().block_on(async {
        match Engine::new(&l.lake).await {
            Ok(_) => panic!("the engine opened a table it would misread"),
            Err(e) => e.to_string(),
        }
    })
}

#[test]
fn tables_with_reader_features_trawl_cannot_read_are_refused_by_name() {
    let dv = serde_json::json!({
        "storageType": "u", "pathOrInlineDv": "ab^-aqEH.-t@S}K{vb[*k^", "offset": 1,
        "sizeInBytes": 36, "cardinality": 2
    });

    let l = three_days();
    commit_by_another_engine(
        &l,
        "proxy",
        &[serde_json::json!({"protocol": {
            "minReaderVersion": 3, "minWriterVersion": 7,
            "readerFeatures": ["deletionVectors"], "writerFeatures": ["deletionVectors"]
        }})],
    );
    let e = engine_error(&l);
    assert!(e.contains("table proxy ("), "{e}");
    assert!(e.contains("uses the Delta reader feature deletionVectors, which trawl cannot read yet"), "{e}");
    assert!(e.contains("REORG TABLE ... APPLY (PURGE)"), "{e}");

    let l = three_days();
    let file = l.rows("SELECT DISTINCT date FROM proxy ORDER BY date")[0][0].clone();
    let live = trawl::runtime().block_on(async {
        let table = l.lake.load_table(&trawl::schema::PROXY).await.unwrap().unwrap();
        l.lake.live_files(&trawl::schema::PROXY, &table).unwrap()
    });
    let first = live.iter().find(|f| f.day.as_deref() == Some(file.as_str())).unwrap();
    commit_by_another_engine(
        &l,
        "proxy",
        &[serde_json::json!({"add": {
            "path": first.rel_path, "partitionValues": {"date": file}, "size": first.size,
            "modificationTime": 0, "dataChange": true, "deletionVector": dv
        }})],
    );
    let e = engine_error(&l);
    assert!(e.contains(&format!("uses a deletion vector on {}", first.rel_path)), "{e}");
    // Writers refuse it too: compacting the file would bring its deleted rows back for good.
    let log = |l: &TestLake| std::fs::read_dir(l.lake.root().join("proxy/_delta_log")).unwrap().count();
    let before = log(&l);
    for command in ["compact", "verify", "manifest"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args([command, "--lake"])
            .arg(l.lake.root())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{command}: {err}");
        assert!(err.contains(&format!("uses a deletion vector on {}", first.rel_path)), "{command}: {err}");
    }
    assert_eq!(log(&l), before, "nothing was committed");

    let l = three_days();
    let first_commit =
        std::fs::read_to_string(l.lake.root().join("proxy/_delta_log/00000000000000000000.json")).unwrap();
    let mut meta: serde_json::Value = first_commit
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|a| a.get("metaData").is_some())
        .unwrap();
    meta["metaData"]["configuration"]["delta.columnMapping.mode"] = "name".into();
    commit_by_another_engine(&l, "proxy", &[meta]);
    let e = engine_error(&l);
    assert!(e.contains("uses column mapping (delta.columnMapping.mode = name)"), "{e}");
    assert!(e.contains("DROP FEATURE columnMapping"), "{e}");
}
