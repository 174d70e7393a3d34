//! `trawl detect`: every built-in detection on a small fixture with its exact rows, the pack
//! mechanics (skips, failures, --set, --fail-on, --out, --list), and recall and precision on
//! seeded traffic with planted incidents.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use trawl::detect::{self, Pack};
use trawl::engine::{Engine, GeoIp, TimeRange};

use crate::common::{TestLake, row};
use crate::mmdb;

use crate::incidents;

use incidents::{Connection, FIREWALL_HEADER, MONDAY, Request, post};

/// Tuesday 2024-06-04 at this local (Tokyo) time, as Unix seconds.
fn tue(h: i64, m: i64, s: i64) -> i64 {
    MONDAY + 86_400 + h * 3600 + m * 60 + s
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

/// Status ("hits", "clean", "skipped", "failed"), detail, and the hits' rows as text.
type Result1 = (String, String, Vec<Vec<String>>);

fn run(
    lake: &Path,
    pack: &Pack,
    only: &[&str],
    sets: &[&str],
    range: (Option<&str>, Option<&str>),
) -> BTreeMap<String, Result1> {
    run_all(lake, pack, only, sets, range).into_iter().map(|(k, (s, d, hits, _))| (k, (s, d, hits))).collect()
}

/// Status, detail, the hits' rows and every candidate's rows, as text.
type Result2 = (String, String, Vec<Vec<String>>, Vec<Vec<String>>);

fn run_all(
    lake: &Path,
    pack: &Pack,
    only: &[&str],
    sets: &[&str],
    range: (Option<&str>, Option<&str>),
) -> BTreeMap<String, Result2> {
    run_with(lake, pack, only, sets, range, None).into_iter().map(|(k, (_, r))| (k, r)).collect()
}

/// The same with a GeoIP database, and each detection's column names too.
fn run_with(
    lake: &Path,
    pack: &Pack,
    only: &[&str],
    sets: &[&str],
    range: (Option<&str>, Option<&str>),
    geoip: Option<Arc<GeoIp>>,
) -> BTreeMap<String, (Vec<String>, Result2)> {
    let lake = trawl::lake::Lake::open(lake).unwrap();
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let bound = pack.bind(&only, &sets).unwrap();
    trawl::runtime().block_on(async {
        let mut engine = Engine::new(&lake).await.unwrap();
        engine.restrict(&TimeRange::parse(range.0, range.1, lake.tz()).unwrap()).await.unwrap();
        pack.register_lists(&mut engine).unwrap();
        if let Some(g) = geoip {
            engine.set_geoip(g).unwrap();
        }
        let findings = detect::run(&engine, &bound).await;
        let options = FormatOptions::default().with_null("NULL");
        findings
            .into_iter()
            .map(|f| {
                let (status, detail) = f.status();
                let text = |all: bool| {
                    let mut rows: Vec<Vec<String>> = Vec::new();
                    for b in f.rows(all).map(|(_, b)| b).unwrap_or_default() {
                        let fs: Vec<_> = b
                            .columns()
                            .iter()
                            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                            .collect();
                        rows.extend(
                            (0..b.num_rows()).map(|r| fs.iter().map(|f| f.value(r).to_string()).collect()),
                        );
                    }
                    rows
                };
                let (hits, all) = (text(false), text(true));
                let columns = f
                    .rows(true)
                    .map(|(schema, _)| schema.fields().iter().map(|c| c.name().clone()).collect())
                    .unwrap_or_default();
                (f.detection.id.clone(), (columns, (status.to_string(), detail, hits, all)))
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
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["large_uploads"], &[], (None, None));
    let (_, note, hits, all) = &r["large_uploads"];
    // 1.2 GB in a day over a 1 GiB threshold, with nothing earlier to compare with: a candidate
    // at 0.75 x 1200 / 2048, under min_score.
    assert_eq!(
        all,
        &vec![row(&[
            "alice",
            "dropboxapi.com",
            "2024-06-04",
            "0.439",
            "1200.0 MiB in 2 request(s), largest 600.0 MiB; no earlier uploads in the lake to compare with",
            "1258291200",
            "2",
            "629145600",
            "Online storage",
            "2024-06-04T14:00:00",
            "2024-06-04T14:01:00"
        ]),]
    );
    assert!(hits.is_empty());
    assert_eq!(note, "request sizes not logged for 2 rows from squid_combined");
    // A lower daily threshold catches bob too, and alice's day becomes a hit.
    let (_, rows) = rows_of("large_uploads", &["threshold_bytes=10000000"]);
    let who: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[3].as_str())).collect();
    assert_eq!(who, [("alice", "0.75"), ("bob", "0.75")]);
}

#[test]
fn scripted_and_blank_agents_per_client() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["scripted_agents"], &[], (None, None));
    let (_, note, hits, all) = &r["scripted_agents"];
    // Two requests each: volume 0.2 of a tool's 0.9 (blank 0.6).
    assert_eq!(
        all,
        &vec![
            row(&[
                "10.0.0.30",
                "python-requests/2.31.0",
                "UNKNOWN",
                "0.18",
                "tool agent, 2 request(s) to 1 host(s); used by this client on 1 day(s) and by 1 client(s) in the lake",
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
                "0.18",
                "tool agent, 2 request(s) to 1 host(s); used by this client on 1 day(s) and by 1 client(s) in the lake; the agent parser classes it as an HTTP library",
                "2",
                "1",
                "",
                "2024-06-04T09:00:00",
                "2024-06-04T09:05:00"
            ]),
            row(&[
                "10.0.0.8",
                "(blank)",
                "(blank)",
                "0.06",
                "blank agent, 1 request(s) to 1 host(s); used by this client on 1 day(s) and by 1 client(s) in the lake",
                "1",
                "1",
                "",
                "2024-06-04T09:10:00",
                "2024-06-04T09:10:00"
            ]),
        ]
    );
    assert!(hits.is_empty());
    assert_eq!(note, "");
}

#[test]
fn job_sites_by_category_and_list() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["job_sites"], &[], (None, None));
    let (_, note, hits, all) = &r["job_sites"];
    // Three pages on two sites: 3 / 20 x 1.
    assert_eq!(
        all,
        &vec![row(&[
            "carol",
            "2024-06-04",
            "0.15",
            "3 request(s) to 2 job site(s), 12:00-12:09; job-site visits on 0 earlier day(s)",
            "3",
            "bizreach.jp doda.jp",
            "2024-06-04T12:00:00",
            "2024-06-04T12:09:00"
        ]),]
    );
    assert!(hits.is_empty() && note.is_empty());
}

#[test]
fn after_hours_evenings_weekends_and_holidays() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["after_hours"], &[], (None, None));
    let (_, note, hits, all) = &r["after_hours"];
    // A late evening, a Sunday, a public holiday: each without an earlier day to compare with,
    // so without weight (see after_hours_baseline_is_the_persons_own).
    assert_eq!(
        all,
        &vec![
            row(&[
                "dave",
                "2024-06-04",
                "0.0",
                "weekday: 1 requests off hours, 22:30-22:30; active near 22:00 on 0 of 0 earlier days (none in the lake: no baseline)",
                "1",
                "2024-06-04T22:30:00",
                "2024-06-04T22:30:00"
            ]),
            row(&[
                "erin",
                "2024-06-09",
                "0.0",
                "Sunday: 1 requests off hours, 10:00-10:00; active on days off on 0 of 0 earlier days (none in the lake: no baseline)",
                "1",
                "2024-06-09T10:00:00",
                "2024-06-09T10:00:00"
            ]),
            row(&[
                "frank",
                "2024-07-15",
                "0.0",
                "holiday 海の日: 1 requests off hours, 11:00-11:00; active on days off on 0 of 0 earlier days (none in the lake: no baseline)",
                "1",
                "2024-07-15T11:00:00",
                "2024-07-15T11:00:00"
            ]),
        ]
    );
    assert!(hits.is_empty() && note.is_empty());
    // Working hours are parameters: a day starting at 10:00 puts the 09:00 agents out of hours.
    let r = run_all(
        LAKE.lake.root(),
        &Pack::builtin().unwrap(),
        &["after_hours"],
        &["work_start_hour=10"],
        (None, None),
    );
    assert_eq!(r["after_hours"].3.len(), 6, "{:?}", r["after_hours"].3);
}

#[test]
fn beaconing_scores_the_steady_series_only() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["beaconing"], &[], (None, None));
    let (_, note, hits, all) = &r["beaconing"];
    // A perfect 60 s series over 24 minutes is worth 0.5 + 0.5 x 0.4 / 2 of its 1.0: short.
    assert_eq!(
        all,
        &vec![
            row(&[
                "10.0.0.20",
                "c2.example.net",
                "0.6",
                "every 60.0 s (median) for 0.4 h, 25 requests; timing 1.0, sizes 1.0; 1 client(s) in the lake reach this domain",
                "60.0",
                "25",
                "1.0",
                "1.0",
                "2024-06-04T10:00:00",
                "2024-06-04T10:24:00"
            ]),
            row(&[
                "10.0.0.21",
                "news.example.com",
                "0.195",
                "every 13.0 s (median) for 0.8 h, 25 requests; timing 0.1, sizes 0.46; 1 client(s) in the lake reach this domain",
                "13.0",
                "25",
                "0.102",
                "0.457",
                "2024-06-04T10:00:00",
                "2024-06-04T10:47:15"
            ]),
        ]
    );
    assert!(hits.is_empty() && note.is_empty());
    let (_, rows) = rows_of("beaconing", &["full_hours=0.4"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..3], row(&["10.0.0.20", "c2.example.net", "1.0"]));
}

#[test]
fn rare_domains_newest_first() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["rare_domains"], &[], (None, None));
    let (_, note, hits, all) = &r["rare_domains"];
    // The lake's only day: everything is new, nothing has a baseline, so nothing weighs.
    assert_eq!(
        all,
        &vec![
            row(&[
                "qzrt.top",
                "0.0",
                "3 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "3",
                "ghost",
                "2024-06-04T15:00:00",
                "2024-06-04T15:02:00"
            ]),
            row(&[
                "bizreach.jp",
                "0.0",
                "1 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "1",
                "carol",
                "2024-06-04T12:09:00",
                "2024-06-04T12:09:00"
            ]),
            row(&[
                "doda.jp",
                "0.0",
                "2 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "2",
                "carol",
                "2024-06-04T12:00:00",
                "2024-06-04T12:05:00"
            ]),
            row(&[
                "blocked-once.com",
                "0.0",
                "2 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "2",
                "jack",
                "2024-06-04T10:00:00",
                "2024-06-04T12:00:00"
            ]),
            row(&[
                "example.com",
                "0.0",
                "25 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "25",
                "kate",
                "2024-06-04T10:00:00",
                "2024-06-04T10:47:15"
            ]),
            row(&[
                "example.net",
                "0.0",
                "25 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "25",
                "10.0.0.20",
                "2024-06-04T10:00:00",
                "2024-06-04T10:24:00"
            ]),
            row(&[
                "proxy-site.com",
                "0.0",
                "2 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "2",
                "hank",
                "2024-06-04T10:00:00",
                "2024-06-04T10:10:00"
            ]),
            row(&[
                "x.com",
                "0.0",
                "1 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "1",
                "ivan",
                "2024-06-04T10:00:00",
                "2024-06-04T10:00:00"
            ]),
            row(&[
                "github.com",
                "0.0",
                "2 request(s) from 1 client(s) in the whole lake, on 1 day(s), first on 2024-06-04 after 0 day(s) of logs",
                "1",
                "2",
                "10.0.0.9",
                "2024-06-04T09:00:00",
                "2024-06-04T09:05:00"
            ]),
        ]
    );
    assert!(hits.is_empty());
    assert_eq!(note, "no popularity list given (--allow FILE): domains popular worldwide can show as rare");
}

#[test]
fn direct_to_ip_leaves_internal_addresses_out() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["direct_ip"], &[], (None, None));
    let (_, note, hits, all) = &r["direct_ip"];
    // The intranet by address is not a candidate; one fetch of a program is 1 x 1 x 1/3.
    assert_eq!(
        all,
        &vec![row(&[
            "gina",
            "198.51.100.7",
            "0.333",
            "1 request(s) (GET), fetching or sending a file; 1 client(s) in the lake reach this address",
            "1",
            "GET",
            "http://198.51.100.7/a.exe",
            "2024-06-04T16:00:00",
            "2024-06-04T16:00:00"
        ]),]
    );
    assert!(hits.is_empty() && note.is_empty());
}

#[test]
fn blocked_then_allowed_within_the_window() {
    let r =
        run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["blocked_then_allowed"], &[], (None, None));
    let (_, note, hits, all) = &r["blocked_then_allowed"];
    // ivan was never allowed; jack only two hours later.
    assert_eq!(
        all,
        &vec![row(&[
            "hank",
            "www.proxy-site.com",
            "0.333",
            "1 block(s), then 1 allowed within 60 min; nobody else in the lake requested this host",
            "1",
            "1",
            "2024-06-04T10:00:00",
            "2024-06-04T10:10:00",
            "2024-06-04T10:10:00"
        ]),]
    );
    assert!(hits.is_empty() && note.is_empty());
    let r = run_all(
        LAKE.lake.root(),
        &Pack::builtin().unwrap(),
        &["blocked_then_allowed"],
        &["within_minutes=180"],
        (None, None),
    );
    let who: Vec<&str> = r["blocked_then_allowed"].3.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(who, ["hank", "jack"]);
}

#[test]
fn firewall_odd_ports_and_port_scans() {
    let r = run_all(LAKE.lake.root(), &Pack::builtin().unwrap(), &["firewall_odd_ports"], &[], (None, None));
    let (_, note, hits, all) = &r["firewall_odd_ports"];
    assert_eq!(
        all,
        &vec![row(&[
            "10.0.0.40",
            "198.51.100.23",
            "4444",
            "TCP",
            "0.4",
            "2 connection(s) out on TCP 4444; 1 source(s) in the lake use this port outward; this source on 0 earlier day(s)",
            "2",
            "120",
            "2024-06-04T11:00:00",
            "2024-06-04T11:05:00"
        ]),]
    );
    assert!(hits.is_empty() && note.is_empty());
    let r = run_all(
        LAKE.lake.root(),
        &Pack::builtin().unwrap(),
        &["firewall_odd_ports"],
        &["allowed_ports=443,4444"],
        (None, None),
    );
    assert!(r["firewall_odd_ports"].3.is_empty());
    // 24 dropped ports and one allowed on one host: (24 + 0.3) / 40; the one-port probes of
    // 10.0.0.41-43 are no scan.
    let (_, rows) = rows_of("port_scan", &[]);
    assert_eq!(
        rows,
        vec![row(&[
            "10.0.0.66",
            "0.608",
            "vertical scan of 10.0.0.5: 25 ports (1-25), 24 refused or dropped, in 10 min; 0.0 % of these reached on earlier days",
            "vertical",
            "10.0.0.5",
            "25",
            "24",
            "25",
            "2024-06-04T13:00:01",
            "2024-06-04T13:00:25"
        ]),]
    );
}

/// The test's GeoIP database: the fixture's external addresses in the Netherlands.
fn test_geoip(dir: &Path) -> Arc<GeoIp> {
    let path =
        mmdb::file(dir, &[("198.51.100.0/24", mmdb::record(Some("NL"), Some((64500, "Example Transit"))))]);
    Arc::new(GeoIp::open(&[&path]).unwrap())
}

#[test]
fn geoip_adds_country_and_network_beside_the_addresses_a_detection_names() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["firewall_odd_ports", "direct_ip", "port_scan"];
    let pack = Pack::builtin().unwrap();
    let sets = ["port_scan.min_score=0", "min_score=0"];
    let r = run_with(LAKE.lake.root(), &pack, &ids, &sets, (None, None), Some(test_geoip(dir.path())));
    let (columns, (_, _, _, all)) = &r["firewall_odd_ports"];
    assert_eq!(
        columns[..7],
        ["src_ip", "dst_ip", "dst_country", "dst_asn", "dst_org", "dst_port", "protocol"]
    );
    assert_eq!(
        all[0][..7],
        row(&["10.0.0.40", "198.51.100.23", "NL", "64500", "Example Transit", "4444", "TCP"])
    );
    let (columns, (_, _, _, all)) = &r["direct_ip"];
    assert_eq!(columns[..6], ["who", "address", "address_country", "address_asn", "address_org", "score"]);
    assert_eq!(all[0][..6], row(&["gina", "198.51.100.7", "NL", "64500", "Example Transit", "0.333"]));
    // Internal addresses, and a horizontal scan's port in `target`, are in no database.
    let (columns, (_, _, _, all)) = &r["port_scan"];
    assert_eq!(
        *columns,
        [
            "src_ip",
            "src_country",
            "src_asn",
            "src_org",
            "score",
            "why",
            "kind",
            "target",
            "target_country",
            "target_asn",
            "target_org",
            "targets",
            "refused",
            "attempts",
            "first_seen",
            "last_seen"
        ]
    );
    assert_eq!(
        all[0][..11],
        row(&[
            "10.0.0.66",
            "NULL",
            "NULL",
            "NULL",
            "0.608",
            &all[0][5],
            "vertical",
            "10.0.0.5",
            "NULL",
            "NULL",
            "NULL"
        ])
    );
    // A Sigma rule's address columns too.
    let rule = dir.path().join("fw_to_nl.yml");
    std::fs::write(
        &rule,
        "title: t\nlevel: low\nlogsource:\n  category: firewall\ndetection:\n  sel:\n    dst_ip|cidr: 198.51.100.0/24\n    \
         dst_port: 4444\n  condition: sel\n",
    )
    .unwrap();
    let mut sigma_pack = Pack::default();
    detect::sigma::add_to_pack(&mut sigma_pack, &detect::sigma::load(&[rule]).unwrap()).unwrap();
    let r = run_with(LAKE.lake.root(), &sigma_pack, &[], &[], (None, None), Some(test_geoip(dir.path())));
    let (columns, (_, _, hits, _)) = &r["fw_to_nl"];
    assert_eq!(
        columns[..11],
        [
            "src_ip",
            "src_country",
            "src_asn",
            "src_org",
            "ts",
            "dst_ip",
            "dst_country",
            "dst_asn",
            "dst_org",
            "dst_port",
            "score"
        ]
    );
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0][..10],
        row(&[
            "10.0.0.40",
            "NULL",
            "NULL",
            "NULL",
            "2024-06-04T11:00:00",
            "198.51.100.23",
            "NL",
            "64500",
            "Example Transit",
            "4444"
        ])
    );
    // Without a database the rows are as the SQL gives them: no columns of NULL.
    let r = run_with(LAKE.lake.root(), &pack, &ids, &sets, (None, None), None);
    for id in ids {
        let (columns, (status, ..)) = &r[id];
        assert_eq!(status, "hits", "{id}");
        assert!(!columns.iter().any(|c| c.ends_with("_country") || c.ends_with("_org")), "{id}: {columns:?}");
    }
}

#[test]
fn an_enrich_key_naming_no_column_fails_that_detection_and_lint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("odd.sql"),
        "-- title: Odd\n-- severity: low\n-- tables: firewall\n-- enrich: dst\nSELECT src_ip, dst_ip FROM firewall\n",
    )
    .unwrap();
    let pack = Pack::load(dir.path()).unwrap();
    let expected = "`-- enrich: dst`: the SQL returns no column dst (it returns src_ip, dst_ip)";
    for geoip in [None, Some(test_geoip(dir.path()))] {
        let (_, (status, detail, ..)) =
            &run_with(LAKE.lake.root(), &pack, &["odd"], &[], (None, None), geoip)["odd"];
        assert_eq!(status, "failed");
        assert!(detail.ends_with(&format!("odd.sql: {expected}")), "{detail}");
    }
    let lint = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["detect", "--lint", "--no-builtin", "--pack"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(2));
    let (stdout, stderr) = (String::from_utf8_lossy(&lint.stdout), String::from_utf8_lossy(&lint.stderr));
    assert!(stdout.contains(expected), "{stdout}\n{stderr}");
}

#[test]
fn crawler_and_http_library_agents_the_parser_names() {
    let l = TestLake::new("Asia/Tokyo");
    let dir = tempfile::tempdir().unwrap();
    let line = |t: &str, client: &str, agent: &str| {
        format!(
            "{client} - - [04/Jun/2024:{t} +0900] \"GET http://www.example.com/ HTTP/1.1\" 200 512 \"-\" \"{agent}\" \
             TCP_MISS:HIER_DIRECT\n"
        )
    };
    let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let log = line("10:00:00", "10.0.0.50", bot)
        + &line("10:00:30", "10.0.0.50", bot)
        + &line("11:00:00", "10.0.0.51", "PHP/8.2.1");
    std::fs::write(dir.path().join("combined.log"), log).unwrap();
    l.ingest(&[dir.path().to_path_buf()]);
    let r = run_all(l.lake.root(), &Pack::builtin().unwrap(), &["scripted_agents"], &[], (None, None));
    // Neither agent is in the tools pattern: the parser alone names them.
    assert_eq!(
        r["scripted_agents"].3,
        vec![
            row(&[
                "10.0.0.50",
                bot,
                "Googlebot",
                "0.18",
                "crawler agent, 2 request(s) to 1 host(s); used by this client on 1 day(s) and by 1 client(s) in the lake; the agent parser classes it as a crawler",
                "2",
                "1",
                "",
                "2024-06-04T10:00:00",
                "2024-06-04T10:00:30"
            ]),
            row(&[
                "10.0.0.51",
                "PHP/8.2.1",
                "HTTP Library",
                "0.09",
                "tool agent, 1 request(s) to 1 host(s); used by this client on 1 day(s) and by 1 client(s) in the lake; the agent parser classes it as an HTTP library",
                "1",
                "1",
                "",
                "2024-06-04T11:00:00",
                "2024-06-04T11:00:00"
            ]),
        ]
    );
}

#[test]
fn absent_or_empty_tables_skip_with_the_reason() {
    let l = fixture_lake(false);
    let pack = Pack::builtin().unwrap();
    let r = run(l.lake.root(), &pack, &["port_scan", "direct_ip"], &[], (None, None));
    assert_eq!(r["port_scan"].0, "skipped");
    assert_eq!(r["port_scan"].1, "table firewall is empty");
    assert_eq!(r["direct_ip"].0, "clean");
    // Only the holiday's proxy row lies in July; the firewall has nothing then.
    let r = run(
        LAKE.lake.root(),
        &pack,
        &["port_scan", "after_hours"],
        &[],
        (Some("2024-07-01"), Some("2024-07-31")),
    );
    assert_eq!(r["port_scan"].1, "table firewall is empty in the time range");
    let r = run_all(LAKE.lake.root(), &pack, &["after_hours"], &[], (Some("2024-07-01"), Some("2024-07-31")));
    assert_eq!(r["after_hours"].3.len(), 1);
    assert_eq!(r["after_hours"].3[0][0], "frank");
    // An instant as --until is exclusive; a date includes its day.
    let r = run(
        LAKE.lake.root(),
        &pack,
        &["after_hours"],
        &[],
        (Some("2024-06-04"), Some("2024-06-04T22:30:00+09:00")),
    );
    assert_eq!(r["after_hours"].0, "clean");
    let r = run_all(LAKE.lake.root(), &pack, &["after_hours"], &[], (Some("2024-06-04"), Some("2024-06-04")));
    assert_eq!(r["after_hours"].3.len(), 1);
}

#[test]
fn set_errors_name_what_is_known() {
    let pack = Pack::builtin().unwrap();
    let e = pack.bind(&["beaconing".into()], &["min_scor=1".into()]).unwrap_err().to_string();
    assert!(
        e.contains("min_scor")
            && e.contains("beaconing.full_hours, beaconing.min_connections, beaconing.min_score"),
        "{e}"
    );
    let e = pack.bind(&[], &["min_score=high".into()]).unwrap_err().to_string();
    assert!(e.contains("expects a number"), "{e}");
    let e = pack.bind(&["nope".into()], &[]).unwrap_err().to_string();
    assert!(e.contains("no detection \"nope\"") && e.contains("beaconing"), "{e}");
    // ID.KEY sets one detection's parameter only.
    let b =
        pack.bind(&["rare_domains".into(), "job_sites".into()], &["job_sites.min_score=0.7".into()]).unwrap();
    assert_eq!((b[0].min_score, b[1].min_score), (Some(0.5), Some(0.7)));
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
    // Without a score column every row is a hit.
    assert!(vips.contains("┆ 2    ┆ 2          ┆ alice"), "{stdout}");
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
    assert_eq!(code(&["--only", "port_scan", "--fail-on", "high"]).0, Some(3));
    assert_eq!(code(&["--only", "port_scan", "--fail-on", "critical"]).0, Some(0));
    // Candidates below min_score are no hits.
    assert_eq!(code(&["--only", "job_sites", "--fail-on", "low"]).0, Some(0));
    assert_eq!(code(&["--only", "job_sites", "--set", "min_score=0.1", "--fail-on", "medium"]).0, Some(0));
    assert_eq!(code(&["--only", "job_sites", "--set", "min_score=0.1", "--fail-on", "low"]).0, Some(3));
    // A comma list is several --only.
    assert_eq!(code(&["--only", "job_sites,port_scan", "--fail-on", "high"]).0, Some(3));
    let (status, err) = code(&["--only", "job_sites,no_such"]);
    assert_eq!(status, Some(2));
    assert!(err.contains("no detection \"no_such\""), "{err}");
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
            .args(["detect", "--all", "--rows", "0", "--lake"])
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
        "\u{feff}detection,title,severity,hits,candidates,top_entity,first_seen,last_seen,status,note,mitre,seconds"
    );
    // Most important first: hits by severity, then the rest by severity; candidates counted.
    assert!(lines[1].starts_with("port_scan,Port scans,high,1,1,10.0.0.66,"), "{summary}");
    assert!(lines[2].starts_with("beaconing,Beaconing,high,0,2,,"), "{summary}");
    assert!(lines[3].starts_with("large_uploads,Large uploads,high,0,1,,"), "{summary}");
    assert_eq!(lines.len(), 11);
    // --all writes every candidate.
    let beacons = std::fs::read_to_string(out_dir.join("beaconing.csv")).unwrap();
    let beacons: Vec<&str> = beacons.lines().collect();
    assert_eq!(
        beacons[0],
        "\u{feff}client_ip,host,score,why,period_seconds,connections,timing_score,size_score,first_seen,last_seen"
    );
    assert_eq!(beacons.len(), 3);
    assert!(
        beacons[1].starts_with("10.0.0.20,c2.example.net,0.6,\"every 60.0 s (median) for 0.4 h"),
        "{beacons:?}"
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
    assert!(text.contains("threshold_bytes = 1073741824  (bytes per person, domain and day)"), "{text}");
    assert!(text.contains("list tables: job_sites, jp_holidays"), "{text}");

    let out = trawl()
        .args(["query", "--detection", "direct_ip", "--set", "min_score=0.3", "--format", "csv", "--lake"])
        .arg(LAKE.lake.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "who,address,score,why,requests,methods,sample_url,first_seen,last_seen\n\
         gina,198.51.100.7,0.333,\"1 request(s) (GET), fetching or sending a file; 1 client(s) in the lake reach this \
         address\",1,GET,http://198.51.100.7/a.exe,2024-06-04 16:00:00.000,2024-06-04 16:00:00.000\n"
    );
    let out = trawl()
        .args(["query", "--lake"])
        .arg(LAKE.lake.root())
        .arg("SELECT name FROM jp_holidays WHERE date = '2024-07-15'")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "name\n海の日\n");
}

/// The pack over a realistic week (habits, Saturday and late workers, servers round the clock,
/// fan-out, part of the office logged by two proxies, decoys beside each incident): each plant is
/// its detection's first row, no ordinary user or host is a hit, and precision is at least 95 %.
#[test]
fn planted_incidents_top_their_detections() {
    let dir = tempfile::tempdir().unwrap();
    let scale = incidents::Scale { users: 30, mean_gap_s: 1800.0, weeks: 1 };
    let planted = incidents::generate(dir.path(), 7, scale).unwrap();
    let l = TestLake::new("Asia/Tokyo");
    let report = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!(report.totals().rejects, 0);
    let pack = Pack::builtin().unwrap();
    let results = run_all(l.lake.root(), &pack, &[], &[], (None, None));
    // What any incident may rightly be flagged as: its entity, or the domain it involves.
    let all_planted: BTreeSet<&str> =
        planted.iter().flat_map(|p| std::iter::once(p.entity.as_str()).chain(p.domain.as_deref())).collect();
    let mut table = String::from(
        "detection            recall  precision  flagged  candidates  other-plants  noise  (noise flagged)\n",
    );
    for id in results.keys() {
        let expected: BTreeSet<&str> =
            planted.iter().filter(|p| p.detection == id).map(|p| p.entity.as_str()).collect();
        assert!(!expected.is_empty(), "no incident planted for {id}");
        let (status, detail, rows, candidates) = &results[id];
        assert_eq!(status, "hits", "{id}: {detail}");
        let entity = entity_column(&pack, id);
        let flagged: BTreeSet<&str> = rows.iter().map(|r| r[entity].as_str()).collect();
        assert!(
            expected.contains(candidates[0][entity].as_str()),
            "{id}: first row {:?}, planted {expected:?}",
            candidates[0]
        );
        let found = expected.intersection(&flagged).count();
        let noise: Vec<&&str> = flagged.iter().filter(|f| !all_planted.contains(**f)).collect();
        let true_rows = rows.iter().filter(|r| all_planted.contains(r[entity].as_str())).count();
        let recall = found as f64 / expected.len() as f64;
        let precision = true_rows as f64 / rows.len() as f64;
        let other = flagged.len() - found - noise.len();
        table += &format!(
            "{id:<20} {recall:>7.2} {precision:>10.2} {:>8} {:>11} {other:>13} {:>6}  {noise:?}\n",
            flagged.len(),
            candidates.len(),
            noise.len()
        );
        assert_eq!(recall, 1.0, "{id}: planted {expected:?}, flagged {flagged:?}");
        assert!(noise.is_empty(), "{id} flagged ordinary users or hosts {noise:?}:\n{rows:?}");
        assert!(precision >= 0.95, "{id}: precision {precision}");
    }
    // Shown with `cargo test planted -- --nocapture`.
    println!("{table}");
}

fn entity_column(pack: &Pack, id: &str) -> usize {
    // Entities are the first column except where the detection names one.
    match pack.get(id).unwrap().entity.as_deref() {
        None => 0,
        Some(e) => panic!("{id} names entity column {e}; map it here"),
    }
}

/// A lake of the given i-FILTER requests (one file each list) and Squid native lines.
fn lake_of(ifilter: &[Vec<Request>], squid: &[String]) -> TestLake {
    let l = TestLake::new("Asia/Tokyo");
    let dir = tempfile::tempdir().unwrap();
    for (i, reqs) in ifilter.iter().enumerate() {
        let lines: Vec<String> = reqs.iter().map(Request::ifilter_line).collect();
        std::fs::write(dir.path().join(format!("ifilter{i}.log")), lines.join("\n") + "\n").unwrap();
    }
    if !squid.is_empty() {
        std::fs::write(dir.path().join("squid.log"), squid.join("\n") + "\n").unwrap();
    }
    let report = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!(report.totals().rejects, 0);
    l
}

fn scalar(lake: &TestLake, sql: &str) -> String {
    let lake = trawl::lake::Lake::open(lake.lake.root()).unwrap();
    trawl::runtime().block_on(async { engine_scalar(&Engine::new(&lake).await.unwrap(), sql).await })
}

/// The first value of `sql`'s result in `engine`, as text.
async fn engine_scalar(engine: &Engine, sql: &str) -> String {
    let batches = engine.sql(sql).await.unwrap().collect().await.unwrap();
    let options = FormatOptions::default().with_null("NULL");
    ArrayFormatter::try_new(batches[0].column(0).as_ref(), &options).unwrap().value(0).to_string()
}

/// The same requests logged by two i-FILTERs (a second apart) and by a Squid (at completion)
/// count once in proxy_unique and in beaconing; every original row stays in proxy, and a
/// repeat within one source, or a copy with other sizes from the same parser, is its own request.
#[test]
fn overlapping_sources_count_each_request_once() {
    let polls: Vec<Request> = (0..25)
        .map(|i| Request::get(tue(10, 0, 0) + i * 300, "10.0.0.20", None, "https://c2.example.net/poll"))
        .collect();
    let mut copy: Vec<Request> = polls.iter().map(|q| with(q.clone(), |q| q.t += 1)).collect();
    let squid: Vec<String> = polls.iter().map(|q| incidents::squid_line(q, 700)).collect();
    let mut first = polls.clone();
    // Twice in one second from one source: two requests.
    first.push(Request::get(tue(9, 0, 0), "10.0.0.21", Some("kate"), "https://news.example.com/"));
    first.push(Request::get(tue(9, 0, 0), "10.0.0.21", Some("kate"), "https://news.example.com/"));
    // The second i-FILTER logs another request with other sizes at the same second: kept too.
    copy.push(with(
        Request::get(tue(9, 0, 0), "10.0.0.21", Some("kate"), "https://news.example.com/"),
        |q| q.response_bytes = 999,
    ));
    let l = lake_of(&[first, copy], &squid);
    assert_eq!(scalar(&l, "SELECT count(*) FROM proxy"), "78");
    assert_eq!(scalar(&l, "SELECT count(*) FROM proxy_unique"), "28");
    assert_eq!(scalar(&l, "SELECT count(*) FROM proxy_unique WHERE client_ip = '10.0.0.20'"), "25");
    assert_eq!(
        scalar(&l, "SELECT count(DISTINCT source_file) FROM proxy_unique WHERE client_ip = '10.0.0.20'"),
        "1"
    );
    let pack = Pack::builtin().unwrap();
    let r = run(l.lake.root(), &pack, &["beaconing"], &[], (None, None));
    let rows = &r["beaconing"].2;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..3], row(&["10.0.0.20", "c2.example.net", "1.0"]));
    assert_eq!(rows[0][5], "25");
}

/// The per-hour summary covers the time range and its history twin the whole lake; without a
/// range they are one table.
#[test]
fn summaries_cover_the_range_and_their_twins_the_whole_lake() {
    let url = "https://a.example.com/";
    let reqs = vec![
        Request::get(tue(10, 0, 0), "10.0.0.5", Some("ann"), url),
        Request::get(tue(10, 5, 0), "10.0.0.5", Some("ann"), url),
        Request::get(tue(10, 0, 0) + 86_400, "10.0.0.5", Some("ann"), url),
    ];
    let l = lake_of(&[reqs], &[]);
    let sums = "SELECT (SELECT sum(requests) FROM proxy_hours) || ' ' || (SELECT sum(requests) FROM proxy_hours_history)
                || ' ' || (SELECT count(*) FROM proxy_hours_history)";
    assert_eq!(scalar(&l, sums), "3 3 2");
    let lake = trawl::lake::Lake::open(l.lake.root()).unwrap();
    let got = trawl::runtime().block_on(async {
        let mut engine = Engine::new(&lake).await.unwrap();
        let range = TimeRange::parse(Some("2024-06-04"), Some("2024-06-04"), engine.tz()).unwrap();
        engine.restrict(&range).await.unwrap();
        engine_scalar(&engine, sums).await
    });
    assert_eq!(got, "2 3 2");
}

/// Hours wrap at midnight: someone who works until after 23:30 most nights is near 00:10 too.
#[test]
fn after_hours_hours_wrap_at_midnight() {
    let day = |d: i64, h: i64, m: i64| MONDAY + d * 86_400 + h * 3600 + m * 60;
    let url = "https://www.google.com/";
    let mut v = Vec::new();
    for d in 0..3 {
        v.extend((0..10).map(|i| Request::get(day(d, 23, 30) + i * 60, "10.0.0.1", Some("owl"), url)));
    }
    v.extend((0..10).map(|i| Request::get(day(4, 0, 10) + i * 60, "10.0.0.1", Some("owl"), url)));
    let l = lake_of(&[v], &[]);
    let pack = Pack::builtin().unwrap();
    let r = run_all(l.lake.root(), &pack, &["after_hours"], &[], (Some("2024-06-07"), Some("2024-06-07")));
    assert_eq!(
        r["after_hours"].3,
        vec![row(&[
            "owl",
            "2024-06-07",
            "0.15",
            "weekday: 10 requests off hours, 00:10-00:19; active near 00:00 on 3 of 3 earlier days \
             (2024-06-03 to 2024-06-05)",
            "10",
            "2024-06-07T00:10:00",
            "2024-06-07T00:19:00"
        ])]
    );
}

/// The same hour scores high for someone who never works then and low for someone who often does.
#[test]
fn after_hours_baseline_is_the_persons_own() {
    let day = |d: i64, h: i64, m: i64| MONDAY + d * 86_400 + h * 3600 + m * 60;
    let mut v = Vec::new();
    for d in 0..3 {
        for i in 0..10 {
            v.push(Request::get(day(d, 23, 30) + i * 60, "10.0.0.1", Some("owl"), "https://www.google.com/"));
            v.push(Request::get(day(d, 9, 0) + i * 60, "10.0.0.2", Some("lark"), "https://www.google.com/"));
        }
    }
    for i in 0..10 {
        v.push(Request::get(day(3, 23, 30) + i * 60, "10.0.0.1", Some("owl"), "https://www.google.com/"));
        v.push(Request::get(day(3, 23, 30) + i * 60, "10.0.0.2", Some("lark"), "https://www.google.com/"));
    }
    let l = lake_of(&[v], &[]);
    let pack = Pack::builtin().unwrap();
    let r = run_all(l.lake.root(), &pack, &["after_hours"], &[], (Some("2024-06-06"), Some("2024-06-06")));
    let (_, _, hits, all) = &r["after_hours"];
    assert_eq!(
        all,
        &vec![
            row(&[
                "lark",
                "2024-06-06",
                "0.6",
                "weekday: 10 requests off hours, 23:30-23:39; active near 23:00 on 0 of 3 earlier days \
                 (2024-06-03 to 2024-06-05)",
                "10",
                "2024-06-06T23:30:00",
                "2024-06-06T23:39:00"
            ]),
            row(&[
                "owl",
                "2024-06-06",
                "0.15",
                "weekday: 10 requests off hours, 23:30-23:39; active near 23:00 on 3 of 3 earlier days \
                 (2024-06-03 to 2024-06-05)",
                "10",
                "2024-06-06T23:30:00",
                "2024-06-06T23:39:00"
            ]),
        ]
    );
    assert_eq!(hits.len(), 1);
    // A one-day baseline window sees one earlier night of owl's.
    let r = run_all(
        l.lake.root(),
        &pack,
        &["after_hours"],
        &["baseline_days=1"],
        (Some("2024-06-06"), Some("2024-06-06")),
    );
    let all = &r["after_hours"].3;
    assert_eq!((&all[0][..3], all[1][2].as_str()), (&row(&["lark", "2024-06-06", "0.333"])[..], "0.167"));
}
