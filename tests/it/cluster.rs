//! `--cluster`: a Ballista scheduler and two executors on this machine (`trawl cluster ...`,
//! children of the test, killed when it ends however it ends) run the built-in detection pack
//! and ad-hoc SQL over a lake of a planted-incident week and give exactly the local results.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use trawl::detect::{self, Outcome, Pack};
use trawl::engine::{Engine, MemoryLimit, Scheduler};

use crate::common::{TestLake, batch_rows};
use crate::incidents;

/// The servers of one test; killed on drop, so a failing assertion leaves none behind. Their
/// stderr goes to files (a pipe nobody reads would fill and stall them).
struct Servers {
    children: Vec<Child>,
    scheduler: Scheduler,
    work: tempfile::TempDir,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Servers {
    fn log_path(&self, name: &str) -> PathBuf {
        self.work.path().join(format!("{name}.log"))
    }

    /// Starts `trawl cluster ARGS` logging to `name`.log and waits until it listens on `port`.
    fn spawn(&mut self, name: &str, args: &[&str], port: u16, env: &dyn Fn(&mut Command)) {
        let log = File::create(self.log_path(name)).unwrap();
        let mut cmd = trawl();
        env(&mut cmd);
        let child = cmd.args(["cluster"]).args(args).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.children.push(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.children.last_mut().unwrap().try_wait().unwrap() {
                panic!("{name} stopped ({status}): {}", self.log(name));
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{name} not listening on {port} after 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Tasks executor `i` says it finished.
    fn tasks_done(&self, i: usize) -> usize {
        self.log(&format!("executor-{i}")).matches("Finished task").count()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

/// A scheduler and `executors` executors of two task slots each.
fn start(executors: usize) -> Servers {
    start_with(executors, &|_| {})
}

/// The same, with `env` applied to each server's command.
fn start_with(executors: usize, env: &dyn Fn(&mut Command)) -> Servers {
    let port = free_port();
    let scheduler = Scheduler::parse(&format!("df://127.0.0.1:{port}")).unwrap();
    let mut servers = Servers { children: Vec::new(), scheduler, work: tempfile::tempdir().unwrap() };
    servers.spawn("scheduler", &["scheduler", "--bind", &format!("127.0.0.1:{port}")], port, env);
    for i in 0..executors {
        let own = free_port();
        let dir = servers.work.path().join(format!("executor-{i}"));
        let args = [
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{port}"),
            "--bind",
            &format!("127.0.0.1:{own}"),
            "--concurrency",
            "2",
            "--memory-limit",
            "1G",
            "--work-dir",
            dir.to_str().unwrap(),
        ];
        servers.spawn(&format!("executor-{i}"), &args, own, env);
    }
    servers
}

/// Runs `cmd` with stdout to a file, killing it after `patience`: a hang fails the test
/// instead of holding the suite.
fn output_within(mut cmd: Command, patience: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child =
        cmd.stdout(File::create(&out).unwrap()).stderr(File::create(&err).unwrap()).spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > patience {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {patience:?}: {}", std::fs::read_to_string(&err).unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() }
}

/// The planted-incident week (proxy and firewall), in Tokyo.
fn week_lake() -> TestLake {
    let dir = tempfile::tempdir().unwrap();
    let scale = incidents::Scale { users: 12, mean_gap_s: 1800.0, weeks: 1 };
    incidents::generate(dir.path(), 7, scale).unwrap();
    let l = TestLake::new("Asia/Tokyo");
    assert_eq!(l.ingest(&[dir.path().to_path_buf()]).totals().rejects, 0);
    l
}

/// Ad-hoc statements: GROUP BYs, joins, trawl's functions, a pack list, a derived view, and a
/// join with an aggregate over a lake table.
const QUERIES: &[&str] = &[
    "SELECT date, count(*) AS n, count(DISTINCT client_ip) AS clients, sum(response_bytes) AS bytes \
     FROM proxy GROUP BY date",
    "SELECT reg_domain(host) AS d, url_host(url) AS h, count(*) AS n FROM proxy GROUP BY 1, 2",
    "SELECT date_part('hour', local_ts(ts)) AS hour, min(local_ts(ts)) AS first, count(*) AS n \
     FROM proxy GROUP BY 1",
    "SELECT p.client_ip, f.dst_port FROM proxy p JOIN firewall f \
     ON p.client_ip = f.src_ip AND p.date = f.date",
    "SELECT p.host, p.ts FROM proxy p JOIN job_sites j ON reg_domain(p.host) = j.entry",
    "SELECT client_ip, count(*) AS n FROM proxy_unique GROUP BY 1",
    "SELECT p.client_ip, p.host, t.n FROM proxy p JOIN \
     (SELECT client_ip, count(*) AS n FROM proxy GROUP BY 1 HAVING count(*) > 10) t USING (client_ip) \
     WHERE p.response_bytes > 100000",
];

/// A statement on a cluster that has not finished in this long has hung: fail, do not wait.
const PATIENCE: Duration = Duration::from_secs(300);

/// What one engine answers: each of [`QUERIES`]' rows, and each detection of the built-in pack
/// as its status line and its candidate rows with whether each is a hit, all sorted (the
/// order is DataFusion's sort either way; rows tied on a detection's sort key may come in
/// either order).
struct Answers {
    queries: Vec<Vec<Vec<String>>>,
    pack: Vec<(String, String, Vec<Vec<String>>)>,
    /// Results computed ahead that the session sent as scratch files.
    scratch_files: usize,
}

fn answers(lake: &Path, cluster: Option<&Scheduler>) -> Answers {
    answers_shipped(lake, cluster, false)
}

/// The same, on a cluster with every result computed ahead sent as a scratch file when `files`
/// (as a multi-GB lake's `proxy_copies` is), not inside the plans.
fn answers_shipped(lake: &Path, cluster: Option<&Scheduler>, files: bool) -> Answers {
    let lake = trawl::lake::Lake::open(lake).unwrap();
    let pack = Pack::builtin().unwrap();
    let bound = pack.bind(&[], &[]).unwrap();
    trawl::runtime().block_on(async {
        let mut engine = Engine::connect(&lake, MemoryLimit::default(), cluster).await.unwrap();
        engine.set_cluster_timeout(PATIENCE);
        if files {
            engine.ship_every_result_as_a_file_for_tests();
        }
        pack.register_lists(&mut engine).unwrap();
        let mut queries = Vec::new();
        for sql in QUERIES {
            let (_, batches) = engine.collect(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let mut rows = batch_rows(&batches);
            rows.sort();
            queries.push(rows);
        }
        let mut findings = Vec::new();
        for f in detect::run(&engine, &bound).await {
            let (status, detail) = f.status();
            let mut rows = match &f.outcome {
                Outcome::Hits { batches, hit, .. } => batch_rows(batches)
                    .into_iter()
                    .zip(hit)
                    .map(|(mut r, h)| {
                        r.push(h.to_string());
                        r
                    })
                    .collect(),
                Outcome::Skipped(_) | Outcome::Failed(_) => Vec::new(),
            };
            rows.sort();
            let line = format!("{status} {detail} hits={} notes={:?}", f.hits(), f.notes);
            findings.push((f.detection.id.clone(), line, rows));
        }
        Answers { queries, pack: findings, scratch_files: engine.scratch_files_written() }
    })
}

#[test]
fn a_scheduler_and_two_executors_give_the_local_results_of_the_pack_and_ad_hoc_sql() {
    let started = Instant::now();
    let l = week_lake();
    let servers = start(2);
    let here = answers(l.lake.root(), None);
    for (sql, rows) in QUERIES.iter().zip(&here.queries) {
        assert!(!rows.is_empty(), "{sql} gives rows");
    }
    let scratch = l.lake.root().join("_trawl/scratch");
    for files in [false, true] {
        let there = answers_shipped(l.lake.root(), Some(&servers.scheduler), files);
        let hits = same_answers(&here, &there, files);
        // The planted week gives each scored detection something to compare.
        assert!(hits > 20, "{hits} candidate rows over the pack");
        assert_eq!(there.scratch_files > 0, files, "scratch files written only when asked for");
        // The folder is made by the first file written into it, and each session removes its own.
        assert_eq!(scratch.exists(), files);
        if files {
            assert_eq!(
                std::fs::read_dir(&scratch).unwrap().count(),
                0,
                "the session's scratch files are gone"
            );
        }
    }
    for i in 0..2 {
        assert!(
            servers.tasks_done(i) > 0,
            "executor {i} ran no task: {}",
            servers.log(&format!("executor-{i}"))
        );
    }

    // The same through the command line, in the order the statement gives.
    let sql = "SELECT reg_domain(host) AS d, count(*) AS n, min(local_ts(ts)) AS first FROM proxy \
               GROUP BY 1 ORDER BY n DESC, d";
    let query = |cluster: Option<&str>| {
        let mut cmd = trawl();
        cmd.args(["query", "--format", "csv", "--lake"]).arg(l.lake.root()).arg(sql);
        if let Some(c) = cluster {
            cmd.args(["--cluster", c, "--cluster-timeout", "5m"]);
        }
        let out = output_within(cmd, PATIENCE);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let local = query(None);
    assert!(local.lines().count() > 5, "{local}");
    assert_eq!(query(Some(&servers.scheduler.url())), local);
    println!("cluster test: {:.1} s", started.elapsed().as_secs_f64());
}

/// Asserts the cluster's answers are the local ones (`files`: results computed ahead went as
/// scratch files); gives the pack's candidate rows.
fn same_answers(here: &Answers, there: &Answers, files: bool) -> usize {
    let how = if files { "on the cluster, results computed ahead sent as files" } else { "on the cluster" };
    for ((sql, here), there) in QUERIES.iter().zip(&here.queries).zip(&there.queries) {
        assert_eq!(there, here, "{sql} {how}");
    }
    assert_eq!(there.pack.len(), here.pack.len());
    let mut hits = 0;
    for ((id, line, rows), there) in here.pack.iter().zip(&there.pack) {
        assert!(!line.starts_with("failed"), "{id} here: {line}");
        assert_eq!((&there.0, &there.1), (id, line), "{id} {how}");
        assert_eq!(&there.2, rows, "{id}'s rows {how}");
        hits += rows.len();
    }
    hits
}

#[test]
fn executors_read_a_lake_on_s3_with_the_same_settings_as_the_client() {
    let Some(moto) = crate::s3::moto("executors_read_a_lake_on_s3_with_the_same_settings_as_the_client")
    else {
        return;
    };
    moto.bucket("cluster");
    let lake = "s3://cluster/case 7";
    let testdata = crate::common::testdata("");
    let out = moto.command(&["ingest", "--lake", lake]).arg(&testdata).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let servers = start_with(2, &|c| moto.aws_env(c));
    let sql = "SELECT date, count(*) AS n, sum(response_bytes) AS bytes, count(DISTINCT reg_domain(host)) AS domains \
               FROM proxy GROUP BY date ORDER BY date";
    let query = |cluster: Option<&str>| {
        let mut cmd = moto.command(&["query", "--format", "csv", "--lake", lake, sql]);
        if let Some(c) = cluster {
            cmd.args(["--cluster", c, "--cluster-timeout", "5m"]);
        }
        let out = output_within(cmd, PATIENCE);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let here = query(None);
    assert!(here.lines().count() > 3, "{here}");
    assert_eq!(query(Some(&servers.scheduler.url())), here, "{}", servers.log("executor-0"));
    assert!(servers.tasks_done(0) + servers.tasks_done(1) > 0);

    // The pack and the queries with every result computed ahead sent as a scratch file in the
    // bucket, in a child process with the S3 settings (tests share this one's environment).
    let child = "cluster::child_pack_on_s3_with_every_result_as_a_scratch_file";
    let scheduler = servers.scheduler.url();
    crate::s3::run_child(&moto, child, &[("TRAWL_TEST_S3_LAKE", lake), ("TRAWL_TEST_SCHEDULER", &scheduler)]);
    let left = moto.boto(
        "print(len(s3.list_objects_v2(Bucket='cluster', Prefix='case 7/_trawl/scratch/').get('Contents', [])))",
    );
    assert_eq!(left, "0\n", "the session removed its scratch files from the bucket");
}

#[test]
#[ignore = "run by executors_read_a_lake_on_s3_with_the_same_settings_as_the_client, with S3 settings"]
fn child_pack_on_s3_with_every_result_as_a_scratch_file() {
    let lake = PathBuf::from(std::env::var("TRAWL_TEST_S3_LAKE").unwrap());
    let scheduler = Scheduler::parse(&std::env::var("TRAWL_TEST_SCHEDULER").unwrap()).unwrap();
    let here = answers(&lake, None);
    let there = answers_shipped(&lake, Some(&scheduler), true);
    same_answers(&here, &there, true);
    assert!(there.scratch_files > 0, "results went as scratch files");
}

#[test]
fn an_unreachable_scheduler_is_named_with_how_to_start_one() {
    let l = TestLake::new("Asia/Tokyo");
    let port = free_port();
    let out = trawl()
        .args(["query", "--lake"])
        .arg(l.lake.root())
        .args(["--cluster", &format!("df://127.0.0.1:{port}"), "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no Ballista scheduler reachable at 127.0.0.1:{port}")), "{err}");
    assert!(err.contains(&format!("trawl cluster scheduler --bind 127.0.0.1:{port}")), "{err}");
    let out = trawl()
        .args(["cluster", "executor", "--scheduler", &format!("127.0.0.1:{port}"), "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no Ballista scheduler reachable at 127.0.0.1:{port}")), "{err}");
}

#[test]
fn a_statement_on_a_scheduler_without_executors_fails_after_the_timeout_naming_why() {
    let l = week_lake();
    let servers = start(0);
    let mut cmd = trawl();
    cmd.args(["query", "--lake"]).arg(l.lake.root());
    cmd.args([
        "--cluster",
        &servers.scheduler.url(),
        "--cluster-timeout",
        "3s",
        "SELECT count(*) FROM proxy",
    ]);
    let out = output_within(cmd, PATIENCE);
    assert_eq!(out.status.code(), Some(2));
    let addr = servers.scheduler.addr();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the statement did not finish on the cluster at {addr} within 3 s: either no executor is \
             registered with the scheduler (start one with `trawl cluster executor --scheduler {addr}`) \
             or the job stalled (see the scheduler's and executors' stderr; run without --cluster to compare)"
        )),
        "{err}"
    );
}
