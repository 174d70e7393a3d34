//! `trawl report`, `timeline`, `coverage`: exact timeline and coverage rows across proxy (two
//! formats) and firewall, and the report over the planted-incident week: self-contained, every
//! planted incident in its findings, a planted gap in its coverage, pseudonyms that hold.

use std::path::Path;
use std::process::Command;

use trawl::engine::Engine;
use trawl::report::timeline::{self, Mark, Who};
use trawl::report::{By, FindingView, Lang, Pseudonymiser, coverage, local_time};

use crate::common::{TestLake, row};
use crate::mmdb;

use crate::incidents;

use incidents::{Connection, FIREWALL_HEADER, MONDAY, Request};

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

/// Tuesday 2024-06-04 at this Tokyo time, as Unix seconds.
fn tue(h: i64, m: i64, s: i64) -> i64 {
    MONDAY + 86_400 + h * 3600 + m * 60 + s
}

/// tanaka on 10.1.0.17 in Squid's native format and in i-FILTER's, and that client in the firewall log.
fn two_formats_and_firewall(dir: &Path) {
    let squid = |t: i64, method: &str, url: &str, bytes: u64| {
        format!(
            "{t}.000    120 10.1.0.17 TCP_MISS/200 {bytes} {method} {url} tanaka HIER_DIRECT/93.184.216.34 text/html\n"
        )
    };
    let mut native = String::new();
    native += &squid(tue(14, 0, 0), "GET", "http://example.com/a", 5120);
    native += &squid(tue(14, 1, 0), "GET", "http://news.example.org/b", 2048);
    native += &squid(tue(14, 20, 0), "GET", "http://example.com/c", 100);
    // Someone else, to show the timeline keeps to its person.
    native += &format!(
        "{}.000     80 10.1.0.99 TCP_MISS/200 300 GET http://example.com/x suzuki HIER_DIRECT/93.184.216.34 text/html\n",
        tue(14, 5, 0)
    );
    std::fs::create_dir_all(dir.join("squid")).unwrap();
    std::fs::write(dir.join("squid/access.log"), native).unwrap();
    let mut up = Request::get(tue(14, 2, 0), "10.1.0.17", Some("tanaka"), "https://www.dropbox.com/upload");
    up.method = "POST";
    up.request_bytes = 3_000_000;
    std::fs::create_dir_all(dir.join("ifilter")).unwrap();
    std::fs::write(dir.join("ifilter/access.log"), up.ifilter_line() + "\n").unwrap();
    let fw = |t: i64, dst: &str, port: u16| Connection {
        t,
        action: "ALLOW",
        protocol: "TCP",
        src: "10.1.0.17".into(),
        dst: dst.into(),
        src_port: 50_000,
        dst_port: port,
        size: 60,
    };
    let mut log = FIREWALL_HEADER.to_string();
    for c in [fw(tue(14, 0, 30), "203.0.113.5", 443), fw(tue(14, 0, 40), "10.1.0.5", 445)] {
        log += &(c.line() + "\n");
    }
    std::fs::create_dir_all(dir.join("firewall")).unwrap();
    std::fs::write(dir.join("firewall/pfirewall.log"), log).unwrap();
}

fn strings(batch: &datafusion::arrow::array::RecordBatch) -> Vec<Vec<String>> {
    let schema = batch.schema();
    let options = datafusion::arrow::util::display::FormatOptions::default();
    let f: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| datafusion::arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    assert_eq!(schema.fields().len(), f.len());
    (0..batch.num_rows()).map(|r| f.iter().map(|f| f.value(r).to_string()).collect()).collect()
}

/// Expected rows written one a line, values separated by `|` (wall times in Tokyo).
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.trim().split('|').map(str::to_string).collect()).collect()
}

#[test]
fn timeline_folds_bursts_across_two_formats_and_the_firewall_marks_and_news() {
    let dir = tempfile::tempdir().unwrap();
    two_formats_and_firewall(dir.path());
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(&[dir.path().to_path_buf()]);
    let tz = l.lake.tz();
    let who = Who { users: vec!["tanaka".into()], clients: Vec::new() };
    let mut events = trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        timeline::events(&engine, &who).await.unwrap()
    });
    let mark = Mark {
        detection: "large_uploads".into(),
        entity: "tanaka".into(),
        from_us: tue(14, 2, 0) * 1_000_000,
        to_us: tue(14, 2, 0) * 1_000_000,
    };
    timeline::mark(&mut events, &[mark]);
    timeline::mark_new(&mut events, tue(14, 1, 30) * 1_000_000, tz);
    let raw = strings(&timeline::to_batch(&timeline::raw(&events), tz, &Pseudonymiser::none()).unwrap());
    assert_eq!(
        raw,
        table(
            "2024-06-04 14:00:00|2024-06-04 14:00:00|proxy|squid|tanaka|1|GET example.com 200|0|5120||
             2024-06-04 14:00:30|2024-06-04 14:00:30|firewall|windows_firewall|10.1.0.17|1|ALLOW TCP 203.0.113.5:443|60|0||
             2024-06-04 14:00:40|2024-06-04 14:00:40|firewall|windows_firewall|10.1.0.17|1|ALLOW TCP 10.1.0.5:445|60|0||
             2024-06-04 14:01:00|2024-06-04 14:01:00|proxy|squid|tanaka|1|GET news.example.org 200|0|2048||
             2024-06-04 14:02:00|2024-06-04 14:02:00|proxy|ifilter|tanaka|1|POST www.dropbox.com 200 allow|3000000|4096|\
             large_uploads|first visit dropbox.com; first upload dropbox.com
             2024-06-04 14:20:00|2024-06-04 14:20:00|proxy|squid|tanaka|1|GET example.com 200|0|100||"
        )
    );
    let folded = timeline::fold(&events, 300, Lang::En);
    assert_eq!(
        strings(&timeline::to_batch(&folded, tz, &Pseudonymiser::none()).unwrap()),
        table(
            "2024-06-04 14:00:00|2024-06-04 14:02:00|proxy|ifilter squid|tanaka|3|3 requests to 3 domains|3000000|11264|\
             large_uploads|first visit dropbox.com; first upload dropbox.com
             2024-06-04 14:00:30|2024-06-04 14:00:40|firewall|windows_firewall|10.1.0.17|2|2 connections to 2 addresses|120|0||
             2024-06-04 14:20:00|2024-06-04 14:20:00|proxy|squid|tanaka|1|GET example.com 200|0|100||"
        )
    );
    // The command: the same folded rows, as CSV.
    let out = trawl()
        .args(["timeline", "--lake"])
        .arg(l.lake.root())
        .args(["--user", "tanaka", "--format", "csv", "--no-builtin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "start,end,table,format,who,events,what,bytes_up,bytes_down,detections,new");
    assert_eq!(
        lines[2],
        "2024-06-04 14:00:30,2024-06-04 14:00:40,firewall,windows_firewall,10.1.0.17,2,2 connections to 2 addresses,120,0,\"\",\"\""
    );
    assert_eq!(lines.len(), 4, "{csv}");
}

#[test]
fn coverage_per_file_and_format_with_gaps_and_what_others_logged() {
    let dir = tempfile::tempdir().unwrap();
    two_formats_and_firewall(dir.path());
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(&[dir.path().to_path_buf()]);
    let tz = l.lake.tz();
    let root = dir.path().display().to_string();
    let (by_file, by_format) = trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        (coverage(&engine, By::File, 10).await.unwrap(), coverage(&engine, By::Format, 10).await.unwrap())
    });
    let sources: Vec<Vec<String>> = by_file
        .sources
        .iter()
        .map(|s| {
            vec![
                s.table.clone(),
                s.name.replace(&root, ""),
                local_time(tz, s.first_us),
                local_time(tz, s.last_us),
                s.rows.to_string(),
                s.hours.len().to_string(),
            ]
        })
        .collect();
    assert_eq!(
        sources,
        table(
            "firewall|/firewall/pfirewall.log|2024-06-04 14:00:30|2024-06-04 14:00:40|2|1
             proxy|/ifilter/access.log|2024-06-04 14:02:00|2024-06-04 14:02:00|1|1
             proxy|/squid/access.log|2024-06-04 14:00:00|2024-06-04 14:20:00|4|1"
        )
    );
    let gaps: Vec<Vec<String>> = by_file
        .gaps
        .iter()
        .map(|g| {
            vec![
                g.source.replace(&root, ""),
                local_time(tz, g.from_us),
                local_time(tz, g.to_us),
                g.minutes().to_string(),
                g.others_rows.to_string(),
            ]
        })
        .collect();
    // 14:05 (suzuki) to 14:20 in the Squid log: 15 minutes, while i-FILTER and the firewall logged nothing.
    assert_eq!(
        gaps,
        vec![row(&["/squid/access.log", "2024-06-04 14:05:00", "2024-06-04 14:20:00", "15", "0"])]
    );
    // A finding on proxy rows whose span holds the silence is told so; one on firewall rows is not.
    let finding = |table: &str, from: &str, to: &str| FindingView {
        id: "x".into(),
        title: String::new(),
        description: String::new(),
        severity: "high".into(),
        mitre: Vec::new(),
        tables: vec![table.into()],
        status: "hits".into(),
        detail: String::new(),
        hits: 2,
        columns: vec!["who".into(), "first_seen".into(), "last_seen".into()],
        rows: vec![
            row(&["tanaka", "2024-06-04T13:00:00", "2024-06-04T14:04:00"]),
            row(&["tanaka", from, to]),
        ],
        schema: None,
        batches: Vec::new(),
        entity: 0,
        notes: Vec::new(),
    };
    let overlapping = finding("proxy", "2024-06-04T14:10:00", "2024-06-04T14:30:00");
    let hit_rows: Vec<usize> = overlapping.gaps(&by_file.gaps, tz).iter().map(|(r, _)| *r).collect();
    assert_eq!(hit_rows, vec![1]);
    assert!(
        finding("firewall", "2024-06-04T14:10:00", "2024-06-04T14:30:00").gaps(&by_file.gaps, tz).is_empty()
    );
    let formats: Vec<(String, u64)> = by_format.sources.iter().map(|s| (s.name.clone(), s.rows)).collect();
    assert_eq!(
        formats,
        vec![("windows_firewall".to_string(), 2), ("ifilter".to_string(), 1), ("squid".to_string(), 4)]
    );
    let out = trawl()
        .args(["coverage", "--lake"])
        .arg(l.lake.root())
        .args(["--by", "format", "--gap-minutes", "10", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "table,source,first,last,rows,hours_with_rows,gaps,gap_minutes\n\
         firewall,windows_firewall,2024-06-04 14:00:30,2024-06-04 14:00:40,2,1,0,0\n\
         proxy,ifilter,2024-06-04 14:02:00,2024-06-04 14:02:00,1,1,0,0\n\
         proxy,squid,2024-06-04 14:00:00,2024-06-04 14:20:00,4,1,1,15\n"
    );
}

/// Where the HTML could reach outside itself.
fn external_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for needle in ["http://", "https://", "@import", "url(", "<script", "<link", "<img", "<iframe", "<object"]
    {
        if html.contains(needle) {
            found.push(needle.to_string());
        }
    }
    for attr in ["src=", "href=", "xlink:href="] {
        for (i, _) in html.match_indices(attr) {
            let value = &html[i + attr.len()..html.len().min(i + attr.len() + 40)];
            if !value.starts_with("\"#") {
                found.push(format!("{attr}{value}"));
            }
        }
    }
    found
}

#[test]
fn report_over_the_planted_week_is_self_contained_shows_every_incident_and_the_planted_gap() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let scale = incidents::Scale { users: 25, mean_gap_s: 150.0, weeks: 1 };
    let planted = incidents::generate(&logs, 7, scale).unwrap();
    // The firewall log loses Wednesday 10:00-12:59 while the proxy goes on logging.
    let fw = logs.join("firewall/pfirewall.log");
    let text = std::fs::read_to_string(&fw).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !["10", "11", "12"].iter().any(|h| l.starts_with(&format!("2024-06-05 {h}:"))))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(kept.len() < text.len());
    std::fs::write(&fw, kept).unwrap();
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(std::slice::from_ref(&logs));
    let html_path = dir.path().join("case.html");
    let csv_dir = dir.path().join("case");
    let out = trawl()
        .args(["report", "--lake"])
        .arg(l.lake.root())
        .args(["--lang", "ja", "--user", "exfil.tanaka", "-o"])
        .arg(&html_path)
        .arg("--out")
        .arg(&csv_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(external_references(&html), Vec::<String>::new());
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"ja\">"));
    assert!(html.contains("<h2>検知結果</h2>") && html.contains("<h2>ログの出所と網羅性</h2>"));
    // The report runs the built-in pack; plants for community Sigma rules are not its findings.
    for p in planted.iter().filter(|p| !p.detection.starts_with("proxy_")) {
        assert!(
            html.contains(&format!("id=\"f-{}\"", p.detection)),
            "{} is not among the findings",
            p.detection
        );
        assert!(csv_dir.join(format!("{}.csv", p.detection)).exists(), "{}.csv", p.detection);
    }
    // The planted gap: found by coverage, listed and drawn in red in the report.
    let cov = trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        coverage(&engine, By::File, 60).await.unwrap()
    });
    let tz = l.lake.tz();
    let gap = cov
        .gaps
        .iter()
        .find(|g| g.table == "firewall" && local_time(tz, g.from_us).starts_with("2024-06-05 09:"))
        .expect("the planted firewall gap");
    assert!(local_time(tz, gap.to_us).starts_with("2024-06-05 13:0"), "{}", local_time(tz, gap.to_us));
    assert!(gap.minutes() >= 180 && gap.others_rows > 100 && gap.others_active(), "{gap:?}");
    let listed = format!("<td>{}</td><td>{}</td>", local_time(tz, gap.from_us), local_time(tz, gap.to_us));
    assert!(html.contains(&listed), "gap not listed");
    assert!(html.contains("<title>2024-06-05 11:00:00: 0</title>"), "gap hour not drawn");
    assert!(html.contains("id=\"timeline\""));
    // The beacon's chart counts each poll once, as the detection does, though two proxies log it.
    assert!(html.contains("≈ 60 s)"), "the planted beacon's period");

    // Pseudonymised: nobody's name or internal address in the page or the CSV files; the same
    // pseudonym in both.
    let key = dir.path().join("case.key");
    std::fs::write(&key, "a key of more than sixteen bytes\n").unwrap();
    let shared = dir.path().join("shared.html");
    let shared_csv = dir.path().join("shared");
    let out = trawl()
        .args(["report", "--lake"])
        .arg(l.lake.root())
        .args(["--lang", "en", "--only", "large_uploads", "--user", "exfil.tanaka", "--pseudonymise"])
        .arg(&key)
        .arg("-o")
        .arg(&shared)
        .arg("--out")
        .arg(&shared_csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&shared).unwrap();
    let csv = std::fs::read_to_string(shared_csv.join("large_uploads.csv")).unwrap();
    let tanaka = Pseudonymiser::from_key(b"a key of more than sixteen bytes".to_vec()).user("exfil.tanaka");
    for text in [&html, &csv] {
        assert!(!text.contains("exfil.tanaka") && !text.contains("user07"), "a name is left");
        assert!(!text.contains(",10.1.") && !text.contains(">10.1."), "an internal address is left");
        assert!(text.contains(&tanaka), "{tanaka} missing");
    }
}

#[test]
fn case_json_records_the_run_and_replay_shows_what_changed() {
    let (dir, l) = fixture_lake();
    let out = dir.path().join("out");
    let run = trawl()
        .args(["detect", "--lake"])
        .arg(l.lake.root())
        .args([
            "--only",
            "large_uploads",
            "--only",
            "direct_ip",
            "--set",
            "single_request_bytes=1000000",
            "--set",
            "large_uploads.min_score=0",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let case = trawl::detect::case::Case::read(&out.join("case.json")).unwrap();
    assert_eq!(case.lake.zone, "Asia/Tokyo");
    assert_eq!(case.lake.layout_version, trawl::lake::FORMAT_VERSION);
    let ids: Vec<(&str, &str, u64)> =
        case.detections.iter().map(|d| (d.id.as_str(), d.status.as_str(), d.hits)).collect();
    assert_eq!(ids, vec![("large_uploads", "hits", 1), ("direct_ip", "clean", 0)]);
    let up = &case.detections[0];
    assert_eq!(up.params["single_request_bytes"], "1000000");
    assert_eq!(up.params["threshold_bytes"], "1073741824");
    assert!(up.sql.contains("> 1000000"), "{}", up.sql);
    let inputs: Vec<(String, usize)> = case
        .inputs
        .iter()
        .map(|i| {
            (
                i.path.rsplit('/').take(2).collect::<Vec<_>>().join("<"),
                i.sha256.as_deref().unwrap_or("").len(),
            )
        })
        .collect();
    assert_eq!(
        inputs,
        vec![
            ("pfirewall.log<firewall".to_string(), 64),
            ("access.log<ifilter".to_string(), 64),
            ("access.log<squid".to_string(), 64)
        ]
    );
    let replay = || trawl().args(["detect", "--replay"]).arg(out.join("case.json")).output().unwrap();
    let same = replay();
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
    assert_eq!(
        String::from_utf8_lossy(&same.stdout).lines().next().unwrap(),
        format!(
            "replayed 2 detection(s) over {}: same SQL, same hits, same 3 input file(s)",
            l.lake.root().display()
        )
    );
    // A file added to the lake since: named, and the exit status says something differs.
    let more = dir.path().join("more/access.log");
    std::fs::create_dir_all(more.parent().unwrap()).unwrap();
    // The next day: large_uploads sums a person's uploads per domain and day, so this is a row of its own.
    let mut big =
        Request::get(tue(15, 30, 0) + 86_400, "10.1.0.17", Some("tanaka"), "https://www.dropbox.com/upload");
    big.method = "POST";
    big.request_bytes = 2_000_000;
    std::fs::write(&more, big.ifilter_line() + "\n").unwrap();
    l.ingest(std::slice::from_ref(&more));
    let changed = replay();
    assert_eq!(changed.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&changed.stdout),
        format!(
            "large_uploads: hits 1 hits then, hits 2 hits now\ninput {}: new in the lake since the case\n\
             2 difference(s) from {}\n",
            more.display(),
            out.join("case.json").display()
        )
    );
}

/// The fixture of `two_formats_and_firewall` in `<dir>/logs`, ingested into a Tokyo lake.
fn fixture_lake() -> (tempfile::TempDir, TestLake) {
    let dir = tempfile::tempdir().unwrap();
    two_formats_and_firewall(&dir.path().join("logs"));
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(&[dir.path().join("logs")]);
    (dir, l)
}

/// Runs `trawl report` over the lake with these arguments, writing `html`, and gives the page.
fn report_html(l: &TestLake, args: &[&str], html: &Path) -> String {
    let out = trawl()
        .args(["report", "--lake"])
        .arg(l.lake.root())
        .args(args)
        .arg("-o")
        .arg(html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(html).unwrap()
}

/// The section of the page with this id, from its opening tag to its end.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<section id=\"{id}\">")).unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").map_or(html.len(), |e| start + e);
    &html[start..end]
}

#[test]
fn report_shows_agents_by_browser_destinations_by_country_and_enriched_findings() {
    let (dir, l) = fixture_lake();
    let db = mmdb::file(
        dir.path(),
        &[
            ("203.0.113.0/24", mmdb::record(Some("JP"), Some((64500, "Example Transit")))),
            ("93.184.216.0/24", mmdb::record(Some("US"), Some((15133, "Edgecast")))),
        ],
    );
    // 443 made odd, so the firewall's one egress is a finding to enrich.
    let odd =
        ["--lang", "en", "--only", "firewall_odd_ports", "--set", "allowed_ports=80", "--set", "min_score=0"];
    let report = |name: &str, extra: &[&str]| {
        let args: Vec<&str> = odd.iter().chain(extra).copied().collect();
        report_html(&l, &args, &dir.path().join(name))
    };
    let html = report("geo.html", &["--geoip", db.to_str().unwrap()]);
    let overview = section(&html, "overview");
    let agents = overview.split("<h3>User agents by browser and OS</h3>").nth(1).unwrap();
    assert!(
        agents.starts_with(
            "<table><thead><tr><th>browser</th><th>OS</th><th>device</th><th>requests</th><th>distinct agents</th></tr>\
             </thead><tbody><tr><td>Chrome</td><td>Windows 10</td><td>pc</td><td class=\"n\">1</td><td class=\"n\">1</td></tr>\
             </tbody></table><p class=\"note\">Formats that do not log the agent: squid (4)</p>"
        ),
        "{agents}"
    );
    let places = overview.split("<h3>Destinations by country and network</h3>").nth(1).unwrap();
    // Squid's four rows went to 93.184.216.34; i-FILTER's one to an address of 203.0.113.0/24,
    // as did the firewall's one public connection (10.1.0.5 is internal, so left out): proxy
    // requests, firewall entries, addresses.
    let (us, jp) = (
        "<td class=\"n\">4</td><td class=\"n\">0</td><td class=\"n\">1</td>",
        "<td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">2</td>",
    );
    let by_country = format!(
        "<th>country</th><th>proxy requests</th><th>firewall entries</th><th>addresses</th></tr></thead><tbody>\
         <tr><td>US</td>{us}</tr><tr><td>JP</td>{jp}</tr></tbody>"
    );
    let by_network = format!(
        "<th>network</th><th>organisation</th><th>proxy requests</th><th>firewall entries</th><th>addresses</th></tr>\
         </thead><tbody><tr><td>AS15133</td><td>Edgecast</td>{us}</tr><tr><td>AS64500</td><td>Example Transit</td>{jp}</tr></tbody>"
    );
    assert!(places.contains(&by_country) && places.contains(&by_network), "{places}");
    let finding = section(&html, "findings");
    assert!(
        finding.contains(
            "<th>src_ip</th><th>dst_ip</th><th>dst_country</th><th>dst_asn</th><th>dst_org</th><th>dst_port</th>"
        ) && finding.contains(
            "<td>10.1.0.17</td><td>203.0.113.5</td><td>JP</td><td class=\"n\">64500</td><td>Example Transit</td>\
             <td class=\"n\">443</td>"
        ),
        "{finding}"
    );
    // Without a database: no such columns, and the overview says what would show them.
    let html = report("plain.html", &[]);
    assert!(!section(&html, "findings").contains("dst_country"));
    assert!(section(&html, "overview").contains(
        "<p class=\"note\">Destinations by country and network need a GeoIP database (--geoip FILE.mmdb).</p>"
    ));
    let ja = report_html(
        &l,
        &["--lang", "ja", "--no-builtin", "--geoip", db.to_str().unwrap()],
        &dir.path().join("ja.html"),
    );
    assert!(
        ja.contains("<h3>ブラウザー・OS 別のユーザーエージェント</h3>")
            && ja.contains("<h3>国・ネットワーク別の接続先</h3>")
    );
}

#[test]
fn report_runs_sigma_rules_and_shows_their_hits() {
    let (dir, l) = fixture_lake();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("proxy_dropbox_upload.yml"),
        "title: Upload to Dropbox\nlevel: high\nlogsource:\n  category: proxy\ndetection:\n  sel:\n    \
         cs-method: POST\n    cs-host|endswith: dropbox.com\n  condition: sel\n",
    )
    .unwrap();
    let args = ["--lang", "en", "--no-builtin", "--user", "tanaka", "--sigma", rules.to_str().unwrap()];
    let html = report_html(&l, &args, &dir.path().join("case.html"));
    let findings = section(&html, "findings");
    assert!(
        findings.contains(
            "<div class=\"finding\" id=\"f-proxy_dropbox_upload\"><h3><span class=\"sev sev-high\">high</span>\
             Upload to Dropbox <small>(proxy_dropbox_upload)</small></h3>"
        ),
        "{findings}"
    );
    // The one hit: tanaka's POST from 10.1.0.17, its wall time in the lake's zone.
    assert!(
        findings.contains(
            "<tr><td>10.1.0.17</td><td>2024-06-04T14:02:00</td><td>POST</td><td>www.dropbox.com</td>\
             <td class=\"n\">1.0</td><td>Upload to Dropbox (matched sel)</td>"
        ),
        "{findings}"
    );
    assert!(findings.contains("<p><small>first rows 1 / 1</small></p>"), "{findings}");
    // The rule's hit is about tanaka's address at that instant: marked on their timeline.
    let timeline = section(&html, "timeline");
    assert!(timeline.contains("<td>proxy_dropbox_upload</td>"), "{timeline}");
}
