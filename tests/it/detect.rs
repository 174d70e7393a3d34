//! `trawl detect`: every built-in detection on a small fixture with its exact rows, the pack
//! mechanics (skips, failures, --set, --fail-on, --out, --list), and recall and precision on
//! seeded traffic with planted incidents.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use trawl::detect::{self, Outcome, Pack};
use trawl::engine::{Engine, TimeRange};

use crate::common::{TestLake, row};

#[path = "../../benches/incidents.rs"]
mod incidents;

use incidents::{Connection, FIREWALL_HEADER, MONDAY, Request};

/// Tuesday 2024-06-04 at this local (Tokyo) time, as Unix seconds.
fn tue(h: i64, m: i64, s: i64) -> i64 {
    MONDAY + 86_400 + h * 3600 + m * 60 + s
}

fn post(t: i64, client: &str, user: Option<&str>, url: &str, bytes: u64, cats: &str) -> Request {
    let mut q = Request::get(t, client, user, url);
    q.method = "POST";
    q.request_bytes = bytes;
    q.categories = cats.into();
    q
}

fn with(mut q: Request, f: impl FnOnce(&mut Request)) -> Request {
    f(&mut q);
    q
}

fn proxy_fixture() -> Vec<Request> {
    let mut v = vec![
        // Large uploads: alice sends 2 x 600 MiB to storage; bob 50 MiB.
        post(tue(14, 0, 0), "10.0.0.1", Some("alice"), "https://content.dropboxapi.com/up", 600 << 20, "83"),
        post(tue(14, 1, 0), "10.0.0.1", Some("alice"), "https://content.dropboxapi.com/up", 600 << 20, "83"),
        post(tue(14, 2, 0), "10.0.0.2", Some("bob"), "https://content.dropboxapi.com/up", 50 << 20, "83"),
        // Scripted and blank agents.
        with(Request::get(tue(9, 0, 0), "10.0.0.9", None, "https://api.github.com/a"), |q| {
            q.agent = "curl%2F8.4.0".into()
        }),
        with(Request::get(tue(9, 5, 0), "10.0.0.9", None, "https://api.github.com/b"), |q| {
            q.agent = "curl%2F8.4.0".into()
        }),
        with(Request::get(tue(9, 10, 0), "10.0.0.8", None, "https://www.google.com/"), |q| {
            q.agent = "-".into()
        }),
        // Job sites: by category, and by the bundled list.
        with(Request::get(tue(12, 0, 0), "10.0.0.3", Some("carol"), "https://doda.jp/j/1"), |q| {
            q.categories = "50".into()
        }),
        with(Request::get(tue(12, 5, 0), "10.0.0.3", Some("carol"), "https://doda.jp/j/2"), |q| {
            q.categories = "50".into()
        }),
        Request::get(tue(12, 9, 0), "10.0.0.3", Some("carol"), "https://www.bizreach.jp/"),
        // After hours: a late evening, a Sunday, a public holiday (Marine Day, Monday 2024-07-15).
        Request::get(tue(22, 30, 0), "10.0.0.4", Some("dave"), "https://www.google.com/"),
        Request::get(MONDAY + 6 * 86_400 + 10 * 3600, "10.0.0.5", Some("erin"), "https://www.google.com/"),
        Request::get(MONDAY + 42 * 86_400 + 11 * 3600, "10.0.0.6", Some("frank"), "https://www.google.com/"),
        // Rare domain: one client, three requests.
        Request::get(tue(15, 0, 0), "10.0.0.7", Some("ghost"), "https://x.qzrt.top/1"),
        Request::get(tue(15, 1, 0), "10.0.0.7", Some("ghost"), "https://x.qzrt.top/2"),
        Request::get(tue(15, 2, 0), "10.0.0.7", Some("ghost"), "https://x.qzrt.top/3"),
        // Direct to IP; the intranet by address is not reported.
        Request::get(tue(16, 0, 0), "10.0.0.10", Some("gina"), "http://198.51.100.7/a.exe"),
        Request::get(tue(16, 1, 0), "10.0.0.10", Some("gina"), "http://10.0.0.5/intranet"),
        // Blocked then allowed within the hour (hank); blocked and never allowed (ivan); allowed
        // two hours later (jack).
        with(Request::get(tue(10, 0, 0), "10.0.0.11", Some("hank"), "https://www.proxy-site.com/"), |q| {
            q.action = "block";
            q.status = 503;
        }),
        Request::get(tue(10, 10, 0), "10.0.0.11", Some("hank"), "https://www.proxy-site.com/"),
        with(Request::get(tue(10, 0, 0), "10.0.0.12", Some("ivan"), "https://ads.x.com/"), |q| {
            q.action = "block";
            q.status = 503;
        }),
        with(Request::get(tue(10, 0, 0), "10.0.0.13", Some("jack"), "https://www.blocked-once.com/"), |q| {
            q.action = "block";
            q.status = 503;
        }),
        Request::get(tue(12, 0, 0), "10.0.0.13", Some("jack"), "https://www.blocked-once.com/"),
    ];
    // Beaconing: every 60 s exactly with the same sizes; beside it, irregular browsing.
    for i in 0..25 {
        v.push(Request::get(tue(10, 0, 0) + i * 60, "10.0.0.20", None, "https://c2.example.net/poll"));
    }
    let gaps = [1, 5, 30, 200, 2, 7, 90, 400, 3, 11, 60, 1, 900, 4, 25, 300, 2, 8, 45, 600, 1, 15, 120, 5];
    let mut t = tue(10, 0, 0);
    for (i, g) in std::iter::once(&0).chain(gaps.iter()).enumerate() {
        t += g;
        let q = Request::get(t, "10.0.0.21", Some("kate"), &format!("https://news.example.com/{i}"));
        v.push(with(q, |q| q.response_bytes = 1000 + (i as u64 * 7919) % 50_000));
    }
    v
}

fn firewall_fixture() -> Vec<Connection> {
    let c = |t, action, src: &str, dst: &str, port| Connection {
        t,
        action,
        protocol: "TCP",
        src: src.into(),
        dst: dst.into(),
        src_port: 50_000,
        dst_port: port,
        size: 60,
    };
    let mut v = vec![
        c(tue(11, 0, 0), "ALLOW", "10.0.0.40", "198.51.100.23", 4444),
        c(tue(11, 5, 0), "ALLOW", "10.0.0.40", "198.51.100.23", 4444),
        c(tue(11, 0, 0), "ALLOW", "10.0.0.41", "203.0.113.5", 443),
        c(tue(11, 0, 0), "ALLOW", "10.0.0.42", "10.0.0.5", 8080),
        c(tue(11, 0, 0), "DROP", "10.0.0.43", "198.51.100.23", 6667),
    ];
    for p in 1..=25 {
        v.push(c(
            tue(13, 0, 0) + i64::from(p),
            if p == 22 { "ALLOW" } else { "DROP" },
            "10.0.0.66",
            "10.0.0.5",
            p,
        ));
    }
    v
}

/// A Tokyo lake holding the fixture: i-FILTER, two Squid combined lines, a firewall log.
fn fixture_lake(with_firewall: bool) -> TestLake {
    let l = TestLake::new("Asia/Tokyo");
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = proxy_fixture().iter().map(Request::ifilter_line).collect();
    std::fs::write(dir.path().join("ifilter.log"), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.path().join("combined.log"),
        "10.0.0.30 - - [04/Jun/2024:09:00:00 +0900] \"GET http://www.google.com/ HTTP/1.1\" 200 512 \"-\" \
         \"python-requests/2.31.0\" TCP_MISS:HIER_DIRECT\n\
         10.0.0.30 - - [04/Jun/2024:09:00:05 +0900] \"POST http://www.google.com/ HTTP/1.1\" 200 512 \"-\" \
         \"python-requests/2.31.0\" TCP_MISS:HIER_DIRECT\n",
    )
    .unwrap();
    if with_firewall {
        let fw: Vec<String> = firewall_fixture().iter().map(Connection::line).collect();
        std::fs::write(dir.path().join("pfirewall.log"), format!("{FIREWALL_HEADER}{}\n", fw.join("\n")))
            .unwrap();
    }
    let report = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!(report.totals().rejects, 0);
    l
}

static LAKE: LazyLock<TestLake> = LazyLock::new(|| fixture_lake(true));

/// Status ("hits", "clean", "skipped", "failed"), detail, and every row as text.
type Result1 = (String, String, Vec<Vec<String>>);

fn run(
    lake: &Path,
    pack: &Pack,
    only: &[&str],
    sets: &[&str],
    range: (Option<&str>, Option<&str>),
) -> BTreeMap<String, Result1> {
    let lake = trawl::lake::Lake::open(lake).unwrap();
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let bound = pack.bind(&only, &sets).unwrap();
    trawl::runtime().block_on(async {
        let mut engine = Engine::new(&lake).await.unwrap();
        engine.restrict(&TimeRange::parse(range.0, range.1, lake.tz()).unwrap()).await.unwrap();
        pack.register_lists(&mut engine).unwrap();
        let findings = detect::run(&engine, &bound).await;
        let options = FormatOptions::default().with_null("NULL");
        findings
            .into_iter()
            .map(|f| {
                let (status, detail) = f.status();
                let mut rows = Vec::new();
                if let Outcome::Hits { batches, .. } = &f.outcome {
                    for b in batches {
                        let fs: Vec<_> = b
                            .columns()
                            .iter()
                            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                            .collect();
                        rows.extend(
                            (0..b.num_rows()).map(|r| fs.iter().map(|f| f.value(r).to_string()).collect()),
                        );
                    }
                }
                (f.detection.id.clone(), (status.to_string(), detail, rows))
            })
            .collect()
    })
}

fn rows_of(id: &str, sets: &[&str]) -> (String, Vec<Vec<String>>) {
    let pack = Pack::builtin().unwrap();
    let mut r = run(LAKE.lake.root(), &pack, &[id], sets, (None, None));
    let (_, detail, rows) = r.remove(id).unwrap();
    (detail, rows)
}

#[test]
fn large_uploads_per_day_and_single_with_category_and_unlogged_note() {
    let (note, rows) = rows_of("large_uploads", &[]);
    let cat = "Online storage";
    assert_eq!(
        rows,
        vec![
            row(&[
                "alice",
                "dropboxapi.com",
                "2024-06-04",
                "day total",
                "1258291200",
                "2",
                cat,
                "2024-06-04T14:00:00",
                "2024-06-04T14:01:00"
            ]),
            row(&[
                "alice",
                "dropboxapi.com",
                "2024-06-04",
                "single request",
                "629145600",
                "1",
                cat,
                "2024-06-04T14:00:00",
                "2024-06-04T14:00:00"
            ]),
            row(&[
                "alice",
                "dropboxapi.com",
                "2024-06-04",
                "single request",
                "629145600",
                "1",
                cat,
                "2024-06-04T14:01:00",
                "2024-06-04T14:01:00"
            ]),
        ]
    );
    assert_eq!(note, "request sizes not logged for 2 rows from squid_combined");
    // A lower daily threshold catches bob too; single requests stay over 100 MiB.
    let (_, rows) = rows_of("large_uploads", &["threshold_bytes=10000000"]);
    let who: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[3].as_str())).collect();
    assert_eq!(
        who,
        [
            ("alice", "day total"),
            ("bob", "day total"),
            ("alice", "single request"),
            ("alice", "single request")
        ]
    );
}

#[test]
fn scripted_and_blank_agents_per_client() {
    let (note, rows) = rows_of("scripted_agents", &[]);
    assert_eq!(
        rows,
        vec![
            row(&[
                "10.0.0.30",
                "python-requests/2.31.0",
                "UNKNOWN",
                "2",
                "1",
                "",
                "2024-06-04T09:00:00",
                "2024-06-04T09:00:05"
            ]),
            row(&[
                "10.0.0.9",
                "curl/8.4.0",
                "HTTP Library",
                "2",
                "1",
                "",
                "2024-06-04T09:00:00",
                "2024-06-04T09:05:00"
            ]),
            row(&[
                "10.0.0.8",
                "(blank)",
                "UNKNOWN",
                "1",
                "1",
                "",
                "2024-06-04T09:10:00",
                "2024-06-04T09:10:00"
            ]),
        ]
    );
    assert_eq!(note, "");
}

#[test]
fn job_sites_by_category_and_list() {
    let (_, rows) = rows_of("job_sites", &[]);
    assert_eq!(
        rows,
        vec![row(&[
            "carol",
            "2024-06-04",
            "3",
            "bizreach.jp doda.jp",
            "2024-06-04T12:00:00",
            "2024-06-04T12:09:00"
        ])]
    );
}

#[test]
fn after_hours_evenings_weekends_and_holidays() {
    let (_, rows) = rows_of("after_hours", &[]);
    assert_eq!(
        rows,
        vec![
            row(&["dave", "2024-06-04", "outside hours", "1", "2024-06-04T22:30:00", "2024-06-04T22:30:00"]),
            row(&["erin", "2024-06-09", "weekend", "1", "2024-06-09T10:00:00", "2024-06-09T10:00:00"]),
            row(&[
                "frank",
                "2024-07-15",
                "holiday 海の日",
                "1",
                "2024-07-15T11:00:00",
                "2024-07-15T11:00:00"
            ]),
        ]
    );
    // Working hours are parameters: a day starting at 10:00 puts the 09:00 agents out of hours.
    let (_, rows) = rows_of("after_hours", &["work_start_hour=10"]);
    assert_eq!(rows.len(), 6, "{rows:?}");
}

#[test]
fn beaconing_scores_the_steady_series_only() {
    let (_, rows) = rows_of("beaconing", &[]);
    assert_eq!(
        rows,
        vec![row(&[
            "10.0.0.20",
            "c2.example.net",
            "1.0",
            "60.0",
            "25",
            "1.0",
            "1.0",
            "2024-06-04T10:00:00",
            "2024-06-04T10:24:00"
        ])]
    );
    let (_, rows) = rows_of("beaconing", &["min_score=0"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][..2], row(&["10.0.0.21", "news.example.com"]));
    let score: f64 = rows[1][2].parse().unwrap();
    assert!(score < 0.6, "irregular browsing scored {score}");
}

#[test]
fn rare_domains_newest_first() {
    let (_, rows) = rows_of("rare_domains", &[]);
    assert_eq!(
        rows,
        vec![
            row(&["qzrt.top", "1", "3", "ghost", "2024-06-04T15:00:00", "2024-06-04T15:02:00"]),
            row(&["example.com", "1", "25", "kate", "2024-06-04T10:00:00", "2024-06-04T10:47:15"]),
            row(&["example.net", "1", "25", "10.0.0.20", "2024-06-04T10:00:00", "2024-06-04T10:24:00"]),
        ]
    );
}

#[test]
fn direct_to_ip_leaves_internal_addresses_out() {
    let (_, rows) = rows_of("direct_ip", &[]);
    assert_eq!(
        rows,
        vec![row(&[
            "gina",
            "198.51.100.7",
            "1",
            "GET",
            "http://198.51.100.7/a.exe",
            "2024-06-04T16:00:00",
            "2024-06-04T16:00:00"
        ])]
    );
}

#[test]
fn blocked_then_allowed_within_the_window() {
    let (_, rows) = rows_of("blocked_then_allowed", &[]);
    assert_eq!(
        rows,
        vec![row(&[
            "hank",
            "www.proxy-site.com",
            "1",
            "1",
            "2024-06-04T10:00:00",
            "2024-06-04T10:10:00",
            "2024-06-04T10:10:00"
        ])]
    );
    let (_, rows) = rows_of("blocked_then_allowed", &["within_minutes=180"]);
    let who: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(who, ["hank", "jack"]);
}

#[test]
fn firewall_odd_ports_and_port_scans() {
    let (_, rows) = rows_of("firewall_odd_ports", &[]);
    assert_eq!(
        rows,
        vec![row(&[
            "10.0.0.40",
            "198.51.100.23",
            "4444",
            "TCP",
            "2",
            "120",
            "2024-06-04T11:00:00",
            "2024-06-04T11:05:00"
        ])]
    );
    let (_, rows) = rows_of("firewall_odd_ports", &["allowed_ports=443,4444"]);
    assert!(rows.is_empty(), "{rows:?}");
    let (_, rows) = rows_of("port_scan", &[]);
    assert_eq!(
        rows,
        vec![row(&["10.0.0.66", "25", "1", "25", "24", "2024-06-04T13:00:01", "2024-06-04T13:00:25"])]
    );
}

#[test]
fn absent_or_empty_tables_skip_with_the_reason() {
    let l = fixture_lake(false);
    let pack = Pack::builtin().unwrap();
    let r = run(l.lake.root(), &pack, &["port_scan", "direct_ip"], &[], (None, None));
    assert_eq!(r["port_scan"].0, "skipped");
    assert_eq!(r["port_scan"].1, "table firewall is empty");
    assert_eq!(r["direct_ip"].0, "hits");
    // Only the holiday's proxy row lies in July; the firewall has nothing then.
    let r = run(
        LAKE.lake.root(),
        &pack,
        &["port_scan", "after_hours"],
        &[],
        (Some("2024-07-01"), Some("2024-07-31")),
    );
    assert_eq!(r["port_scan"].1, "table firewall is empty in the time range");
    assert_eq!(r["after_hours"].2.len(), 1);
    assert_eq!(r["after_hours"].2[0][0], "frank");
    // An instant as --until is exclusive; a date includes its day.
    let r = run(
        LAKE.lake.root(),
        &pack,
        &["after_hours"],
        &[],
        (Some("2024-06-04"), Some("2024-06-04T22:30:00+09:00")),
    );
    assert_eq!(r["after_hours"].0, "clean");
    let r = run(LAKE.lake.root(), &pack, &["after_hours"], &[], (Some("2024-06-04"), Some("2024-06-04")));
    assert_eq!(r["after_hours"].2.len(), 1);
}

#[test]
fn set_errors_name_what_is_known() {
    let pack = Pack::builtin().unwrap();
    let e = pack.bind(&["beaconing".into()], &["min_scor=1".into()]).unwrap_err().to_string();
    assert!(e.contains("min_scor") && e.contains("beaconing.min_connections, beaconing.min_score"), "{e}");
    let e = pack.bind(&[], &["min_score=high".into()]).unwrap_err().to_string();
    assert!(e.contains("expects a number"), "{e}");
    let e = pack.bind(&["nope".into()], &[]).unwrap_err().to_string();
    assert!(e.contains("no detection \"nope\"") && e.contains("beaconing"), "{e}");
    // ID.KEY sets one detection's parameter only.
    let b = pack
        .bind(&["rare_domains".into(), "job_sites".into()], &["job_sites.min_requests=7".into()])
        .unwrap();
    assert!(b[0].sql.contains(">= 3") && b[1].sql.contains(">= 7"));
}

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

fn write_pack(dir: &Path) {
    std::fs::create_dir_all(dir.join("lists")).unwrap();
    std::fs::write(
        dir.join("broken.sql"),
        "-- title: Broken\n-- severity: critical\n-- tables: proxy\nSELECT no_such_column FROM proxy\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("vips.sql"),
        "-- title: VIP activity\n-- severity: info\n-- tables: proxy\n\
         -- param: min = 1  # fewest requests\n\
         SELECT username, count(*) AS requests FROM proxy JOIN vips ON username = entry \
         GROUP BY 1 HAVING count(*) >= ${min} ORDER BY 1\n",
    )
    .unwrap();
    std::fs::write(dir.join("lists/vips.txt"), "# people to watch\nalice\ncarol\n").unwrap();
}

#[test]
fn cli_broken_detection_fails_alone_and_pack_lists_are_tables() {
    let dir = tempfile::tempdir().unwrap();
    write_pack(dir.path());
    let out = trawl()
        .args(["detect", "--no-builtin", "--rows", "0", "--lake"])
        .arg(LAKE.lake.root())
        .arg("--pack")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("broken.sql") && stdout.contains("no_such_column"), "{stdout}");
    assert!(stderr.contains("1 detection(s) failed: broken"), "{stderr}");
    let vips = stdout.lines().find(|l| l.contains("vips")).unwrap();
    assert!(vips.contains("┆ 2    ┆ alice"), "{stdout}");
}

#[test]
fn cli_lint_plans_every_detection_without_a_lake() {
    let out = trawl().args(["detect", "--lint"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 10, "{stdout}");

    // A pack's list is a table to plan against; a broken detection fails with its file and column.
    let dir = tempfile::tempdir().unwrap();
    write_pack(dir.path());
    let out = trawl().args(["detect", "--lint", "--no-builtin", "--pack"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let broken = stdout.lines().find(|l| l.starts_with("FAIL  broken")).expect(&stdout);
    assert!(broken.contains("broken.sql") && broken.contains("no_such_column"), "{broken}");
    assert!(stdout.lines().any(|l| l.starts_with("ok    vips")), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 2 detection(s) do not plan: broken"));
}

#[test]
fn cli_fail_on_exit_codes_and_set_errors() {
    let code = |args: &[&str]| {
        let out = trawl()
            .args(["detect", "--rows", "0", "--lake"])
            .arg(LAKE.lake.root())
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    assert_eq!(code(&["--only", "beaconing", "--fail-on", "high"]).0, Some(3));
    assert_eq!(code(&["--only", "beaconing", "--fail-on", "critical"]).0, Some(0));
    assert_eq!(code(&["--only", "job_sites", "--fail-on", "medium"]).0, Some(0));
    assert_eq!(code(&["--only", "job_sites", "--fail-on", "low"]).0, Some(3));
    let (status, err) = code(&["--set", "treshold_bytes=1"]);
    assert_eq!(status, Some(2));
    assert!(err.contains("treshold_bytes") && err.contains("large_uploads.threshold_bytes"), "{err}");
}

#[test]
fn cli_out_writes_a_file_per_detection_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let run = || {
        trawl()
            .args(["detect", "--rows", "0", "--lake"])
            .arg(LAKE.lake.root())
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(
        lines[0],
        "detection,title,severity,hits,top_entity,first_seen,last_seen,status,note,mitre,seconds"
    );
    // Most important first: high severity with hits, then by count.
    assert!(lines[1].starts_with("large_uploads,Large uploads,high,3,alice,"), "{summary}");
    assert!(lines[2].starts_with("beaconing,Beaconing,high,1,10.0.0.20,"), "{summary}");
    assert!(lines[3].starts_with("port_scan,Port scans,high,1,10.0.0.66,"), "{summary}");
    assert_eq!(lines.len(), 11);
    let beacons = std::fs::read_to_string(out_dir.join("beaconing.csv")).unwrap();
    assert_eq!(
        beacons,
        "client_ip,host,score,period_seconds,connections,timing_score,size_score,first_seen,last_seen\n\
         10.0.0.20,c2.example.net,1.0,60.0,25,1.0,1.0,2024-06-04T10:00:00,2024-06-04T10:24:00\n"
    );
    let again = run();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn cli_list_and_query_detection() {
    let out = trawl().args(["detect", "--list"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "large_uploads",
        "scripted_agents",
        "job_sites",
        "after_hours",
        "beaconing",
        "rare_domains",
        "firewall_odd_ports",
        "port_scan",
        "direct_ip",
        "blocked_then_allowed",
    ] {
        assert!(text.contains(id), "{id} missing from\n{text}");
    }
    assert!(text.contains("threshold_bytes = 1073741824  (bytes per user, domain and day)"), "{text}");
    assert!(text.contains("list tables: job_sites, jp_holidays"), "{text}");

    let out = trawl()
        .args(["query", "--detection", "direct_ip", "--format", "csv", "--lake"])
        .arg(LAKE.lake.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "who,address,requests,methods,sample_url,first_seen,last_seen\n\
         gina,198.51.100.7,1,GET,http://198.51.100.7/a.exe,2024-06-04T16:00:00,2024-06-04T16:00:00\n"
    );
    let out = trawl()
        .args(["query", "--lake"])
        .arg(LAKE.lake.root())
        .arg("SELECT name FROM jp_holidays WHERE date = '2024-07-15'")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "name\n海の日\n");
}

/// The pack over a week of office traffic with one planted incident per detection: each plant is
/// its detection's top hit, and no ordinary user is flagged by the user-level detections.
#[test]
fn planted_incidents_top_their_detections() {
    let dir = tempfile::tempdir().unwrap();
    let scale = incidents::Scale { users: 25, mean_gap_s: 150.0, weeks: 1 };
    let planted = incidents::generate(dir.path(), 7, scale).unwrap();
    let l = TestLake::new("Asia/Tokyo");
    let report = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!(report.totals().rejects, 0);
    let pack = Pack::builtin().unwrap();
    let results = run(l.lake.root(), &pack, &[], &[], (None, None));
    // What any incident may rightly be flagged as: its entity, or the domain it involves.
    let all_planted: BTreeSet<&str> =
        planted.iter().flat_map(|p| std::iter::once(p.entity.as_str()).chain(p.domain.as_deref())).collect();
    let mut report = String::from(
        "detection            recall  precision  flagged  other-plants  noise  (noise flagged)\n",
    );
    for id in results.keys() {
        let expected: BTreeSet<&str> =
            planted.iter().filter(|p| p.detection == id).map(|p| p.entity.as_str()).collect();
        assert!(!expected.is_empty(), "no incident planted for {id}");
        let (status, detail, rows) = &results[id];
        assert_eq!(status, "hits", "{id}: {detail}");
        let entity = entity_column(&pack, id);
        let flagged: BTreeSet<&str> = rows.iter().map(|r| r[entity].as_str()).collect();
        assert!(
            expected.contains(rows[0][entity].as_str()),
            "{id}: top hit {:?}, planted {expected:?}",
            rows[0]
        );
        let found = expected.intersection(&flagged).count();
        let noise: Vec<&&str> = flagged.iter().filter(|f| !all_planted.contains(**f)).collect();
        let recall = found as f64 / expected.len() as f64;
        let precision = found as f64 / flagged.len() as f64;
        let other = flagged.len() - found - noise.len();
        report += &format!(
            "{id:<20} {recall:>7.2} {precision:>10.2} {:>8} {other:>13} {:>6}  {noise:?}\n",
            flagged.len(),
            noise.len()
        );
        assert_eq!(recall, 1.0, "{id}: planted {expected:?}, flagged {flagged:?}");
        if ["large_uploads", "job_sites", "after_hours", "direct_ip", "blocked_then_allowed"]
            .contains(&id.as_str())
        {
            assert!(noise.is_empty(), "{id} flagged ordinary users {noise:?}");
        }
    }
    // Shown with `cargo test planted -- --nocapture`; the figures go in the pack's notes.
    println!("{report}");
}

fn entity_column(pack: &Pack, id: &str) -> usize {
    // Entities are the first column except where the detection names one.
    match pack.get(id).unwrap().entity.as_deref() {
        None => 0,
        Some(e) => panic!("{id} names entity column {e}; map it here"),
    }
}
