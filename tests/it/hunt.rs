//! `trawl hunt`: every indicator type and list format against a small lake with exact rows
//! (defanged values, subdomains, CONNECT targets, an IPv6 network, STIX patterns, MISP events,
//! bad lines with their numbers), allow lists in hunt and in `rare_domains`, and the user-agent
//! and GeoIP functions over a database the test writes itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use tempfile::TempDir;
use trawl::detect::{self, Outcome, Pack};
use trawl::engine::{ALLOW_DOMAINS, Engine, GeoIp};
use trawl::hunt::{AllowList, IocSet, ListOptions, Sweep, sweep};

use crate::common::{TestLake, row};
use crate::mmdb;

/// Tuesday 2024-06-04 09:00 in Tokyo (00:00 UTC), plus `m` minutes, as Unix seconds.
fn at(m: u64) -> u64 {
    1_717_459_200 + m * 60
}

/// Squid native lines: one minute apart from 09:00 local.
const PROXY: &[(&str, &str, &str, &str, &str)] = &[
    // client, code/status bytes, method url, user, hierarchy/server
    ("10.0.0.1", "TCP_MISS/200 1500", "GET http://a.evil.example/x", "alice", "HIER_DIRECT/198.51.100.7"),
    ("10.0.0.2", "TCP_TUNNEL/200 5000", "CONNECT b.evil.example:443", "bob", "HIER_DIRECT/198.51.100.8"),
    ("10.0.0.1", "TCP_DENIED/403 300", "GET http://evil.example/dl/payload.exe", "alice", "HIER_NONE/-"),
    ("10.0.0.3", "TCP_MISS/200 800", "GET http://203.0.113.5/gate.php", "-", "HIER_DIRECT/203.0.113.5"),
    (
        "2001:db8:1::20",
        "TCP_MISS/200 700",
        "GET https://www.safe.example/",
        "carol",
        "HIER_DIRECT/2001:db8:beef::1",
    ),
    ("10.0.0.4", "TCP_MISS/200 900", "GET http://notevil.example/", "dave", "HIER_DIRECT/192.0.2.1"),
    ("10.0.0.5", "TCP_MISS/200 1234", "GET http://Stage.Example:80/drop/", "erin", "HIER_DIRECT/192.0.2.2"),
    ("10.0.0.6", "TCP_MISS/200 100", "GET http://www.popular.example/", "frank", "HIER_DIRECT/192.0.2.3"),
];

const FIREWALL: &str = "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n\
    #Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin \
    icmptype icmpcode info path\n\
    2024-06-04 09:10:00 ALLOW TCP 10.0.0.9 198.51.100.7 50000 443 60 - - - - - - - SEND\n\
    2024-06-04 09:11:00 DROP TCP 198.51.100.9 10.0.0.9 4444 3389 40 - - - - - - - RECEIVE\n";

/// Squid combined lines, which log the user agent.
const COMBINED: &str = "10.0.0.7 - grace [04/Jun/2024:09:08:00 +0900] \"GET http://c2.example/beacon HTTP/1.1\" \
    200 321 \"-\" \"curl/8.4.0\" TCP_MISS:HIER_DIRECT\n\
    10.0.0.7 - grace [04/Jun/2024:09:09:00 +0900] \"GET http://c2.example/page HTTP/1.1\" 200 100 \"-\" \
    \"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 \
    Safari/537.36\" TCP_MISS:HIER_DIRECT\n";

static LAKE: LazyLock<TestLake> = LazyLock::new(|| {
    let l = TestLake::new("Asia/Tokyo");
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for (i, (client, code, req, user, hier)) in PROXY.iter().enumerate() {
        log.push_str(&format!("{}.000     12 {client} {code} {req} {user} {hier} text/html\n", at(i as u64)));
    }
    std::fs::write(dir.path().join("access.log"), log).unwrap();
    std::fs::write(dir.path().join("pfirewall.log"), FIREWALL).unwrap();
    std::fs::write(dir.path().join("combined.log"), COMBINED).unwrap();
    let report = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!((report.totals().rows, report.totals().rejects), (12, 0));
    l
});

/// A list file in a fresh folder.
fn list(name: &str, text: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn run_sweep(set: &IocSet, allow: Option<&AllowList>, geoip: Option<Arc<GeoIp>>) -> Sweep {
    // The fixture ingests with a runtime of its own, so it is built before entering this one.
    let lake = &LAKE.lake;
    trawl::runtime().block_on(async {
        let mut engine = Engine::new(lake).await.unwrap();
        if let Some(g) = &geoip {
            engine.set_geoip(Arc::clone(g)).unwrap();
        }
        sweep(&engine, set, allow, geoip.as_deref()).await.unwrap()
    })
}

/// The named columns of a result, each value as printed.
fn cells(b: &RecordBatch, names: &[&str]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let cols: Vec<_> = names
        .iter()
        .map(|n| b.column(b.schema().index_of(n).unwrap_or_else(|_| panic!("no column {n}"))).clone())
        .collect();
    let fs: Vec<_> = cols.iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
    (0..b.num_rows()).map(|r| fs.iter().map(|f| f.value(r).to_string()).collect()).collect()
}

const HIT: &[&str] = &[
    "indicator",
    "type",
    "columns",
    "who",
    "first_seen",
    "last_seen",
    "requests",
    "bytes_out",
    "bytes_in",
    "allowed",
    "blocked",
];

fn load(path: &Path, column: Option<&str>) -> IocSet {
    IocSet::load(&[path], &ListOptions { column: column.map(str::to_string) }).unwrap()
}

#[test]
fn text_list_of_every_type_with_defanged_values_and_a_bad_line() {
    let (_d, path) = list(
        "iocs.txt",
        "# vendor list, 2024-06\n\
         evil[.]example\n\
         198.51.100.0/24   # their hosting range\n\
         203.0.113[.]5\n\
         \n\
         2001:db8:beef::/48\n\
         hxxp://stage[.]example/drop\n\
         http://evil.example/dl/*\n\
         never.example\n\
         not an indicator\n\
         EVIL.example\n",
    );
    let set = load(&path, None);
    let s = run_sweep(&set, None, None);
    let name = path.display().to_string();
    assert_eq!(
        cells(&s.hits, HIT),
        vec![
            row(&[
                "198.51.100.0/24",
                "cidr",
                "firewall.src_ip, firewall.dst_ip, proxy.server_ip",
                "10.0.0.9 alice bob",
                "2024-06-04T09:00:00",
                "2024-06-04T09:11:00",
                "4",
                "60",
                "6540",
                "3",
                "1"
            ]),
            row(&[
                "evil.example",
                "domain",
                "proxy.host",
                "alice bob",
                "2024-06-04T09:00:00",
                "2024-06-04T09:02:00",
                "3",
                "NULL",
                "6800",
                "2",
                "1"
            ]),
            row(&[
                "2001:db8:beef::/48",
                "cidr",
                "proxy.server_ip",
                "carol",
                "2024-06-04T09:04:00",
                "2024-06-04T09:04:00",
                "1",
                "NULL",
                "700",
                "1",
                "0"
            ]),
            row(&[
                "203.0.113.5",
                "ip",
                "proxy.host, proxy.server_ip",
                "10.0.0.3",
                "2024-06-04T09:03:00",
                "2024-06-04T09:03:00",
                "1",
                "NULL",
                "800",
                "1",
                "0"
            ]),
            row(&[
                "http://evil.example/dl/",
                "url_prefix",
                "proxy.url",
                "alice",
                "2024-06-04T09:02:00",
                "2024-06-04T09:02:00",
                "1",
                "NULL",
                "300",
                "0",
                "1"
            ]),
            row(&[
                "http://stage.example/drop",
                "url",
                "proxy.url",
                "erin",
                "2024-06-04T09:06:00",
                "2024-06-04T09:06:00",
                "1",
                "NULL",
                "1234",
                "1",
                "0"
            ]),
        ]
    );
    // A repeated indicator is one row, with every place it was listed.
    assert_eq!(cells(&s.hits, &["source"])[1], [format!("{name}:2 {name}:11")]);
    assert_eq!(
        cells(&s.no_hits, &["indicator", "type", "source"]),
        vec![row(&["never.example", "domain", &format!("{name}:9")])]
    );
    assert_eq!(
        cells(&s.unread, &["source", "value"]),
        vec![row(&[&format!("{name}:10"), "not an indicator"])]
    );
    assert_eq!(s.scanned, [("proxy".to_string(), 10), ("firewall".to_string(), 2)]);
    // Per indicator, table and who: the firewall and proxy sides of the network apart.
    let detail: Vec<Vec<String>> = cells(&s.detail, &["indicator", "table", "columns", "who", "requests"])
        .into_iter()
        .filter(|r| r[0] == "198.51.100.0/24")
        .collect();
    assert_eq!(
        detail,
        vec![
            row(&["198.51.100.0/24", "firewall", "firewall.src_ip, firewall.dst_ip", "10.0.0.9", "2"]),
            row(&["198.51.100.0/24", "proxy", "proxy.server_ip", "alice", "1"]),
            row(&["198.51.100.0/24", "proxy", "proxy.server_ip", "bob", "1"]),
        ]
    );
}

#[test]
fn csv_column_by_name_or_number_with_quoted_values() {
    let (_d, path) = list(
        "iocs.csv",
        "type,indicator,comment\n\
         domain,\"stage[.]example\",\"staging, second stage\"\n\
         ip,1.2.3,typo\n\
         url,\"hxxps://www.safe.example:443/\",\n",
    );
    let set = load(&path, None);
    let keys: Vec<&str> = set.indicators.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["stage.example", "https://www.safe.example"]);
    assert_eq!(set.unread[0].origin, format!("{}:3", path.display()));
    let s = run_sweep(&set, None, None);
    assert_eq!(
        cells(&s.hits, &["indicator", "columns", "who", "requests"]),
        vec![
            row(&["https://www.safe.example", "proxy.url", "carol", "1"]),
            row(&["stage.example", "proxy.host", "erin", "1"])
        ]
    );
    // Headerless (a popularity list's rank,domain) by number.
    let (_d2, ranked) = list("top.csv", "1,popular.example\n2,safe.example\n");
    let keys: Vec<String> = load(&ranked, Some("2")).indicators.into_iter().map(|i| i.key).collect();
    assert_eq!(keys, ["popular.example", "safe.example"]);
    let err = IocSet::load(&[&ranked], &ListOptions::default()).unwrap_err().to_string();
    assert!(err.contains("--column") && err.contains("top.csv"), "{err}");
}

#[test]
fn stix_bundle_patterns_and_what_is_not_read() {
    let (_d, path) = list(
        "bundle.json",
        r#"{
  "type": "bundle",
  "id": "bundle--1",
  "objects": [
    {
      "type": "indicator",
      "id": "indicator--a",
      "name": "stage host or its v6 net",
      "pattern": "[domain-name:value = 'stage.example'] OR [ipv6-addr:value ISSUBSET '2001:db8:beef::/48']",
      "pattern_type": "stix"
    },
    {
      "type": "indicator",
      "id": "indicator--b",
      "pattern": "[domain-name:value = 'x.example' AND ipv4-addr:value = '192.0.2.1']",
      "pattern_type": "stix"
    },
    {
      "type": "indicator",
      "id": "indicator--c",
      "pattern": "[file:hashes.'SHA-256' = 'aa']",
      "pattern_type": "stix"
    },
    {"type": "indicator", "id": "indicator--d", "pattern": "title: x", "pattern_type": "sigma"},
    {"type": "url", "id": "url--e", "value": "http://stage.example/drop/"},
    {"type": "malware", "id": "malware--f", "name": "not an indicator object"}
  ]
}"#,
    );
    let set = load(&path, None);
    assert_eq!(set.files, [(path.display().to_string(), "stix", 6)]);
    let unread: Vec<(String, String)> =
        set.unread.iter().map(|u| (u.origin.clone(), u.reason.clone())).collect();
    let name = path.display().to_string();
    assert_eq!(unread[0].0, format!("{name}:14"));
    assert!(unread[0].1.starts_with("indicator--b: AND is not read"), "{unread:?}");
    assert_eq!(unread[1].0, format!("{name}:24"));
    assert!(unread[1].1.contains("pattern_type sigma"), "{unread:?}");
    assert_eq!(set.skipped.values().copied().collect::<Vec<_>>(), [1]);
    let s = run_sweep(&set, None, None);
    assert_eq!(
        cells(&s.hits, &["indicator", "type", "who", "requests"]),
        vec![
            row(&["2001:db8:beef::/48", "cidr", "carol", "1"]),
            row(&["http://stage.example/drop", "url", "erin", "1"]),
            row(&["stage.example", "domain", "erin", "1"]),
        ]
    );
    assert_eq!(set.indicators[0].label.as_deref(), Some("stage host or its v6 net"));
}

#[test]
fn misp_event_attributes_and_objects() {
    let (_d, path) = list(
        "event.json",
        r#"{"Event": {
  "info": "campaign",
  "Attribute": [
    {"type": "domain", "value": "popular.example", "to_ids": true},
    {"type": "ip-dst|port", "value": "203.0.113.5|80"},
    {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
    {"type": "url", "value": "hxxp://evil[.]example/dl/payload.exe", "comment": "dropper"}
  ],
  "Object": [{"name": "domain-ip", "Attribute": [{"type": "domain|ip", "value": "b.evil.example|198.51.100.8"}]}]
}}"#,
    );
    let set = load(&path, None);
    assert_eq!(
        set.skipped.iter().map(|(k, v)| (k.rsplit(": ").next().unwrap(), *v)).collect::<Vec<_>>(),
        [("MISP md5", 1)]
    );
    let s = run_sweep(&set, None, None);
    assert_eq!(
        cells(&s.hits, &["indicator", "type", "columns", "who", "blocked"]),
        vec![
            row(&["198.51.100.8", "ip", "proxy.server_ip", "bob", "0"]),
            row(&["203.0.113.5", "ip", "proxy.host, proxy.server_ip", "10.0.0.3", "0"]),
            row(&["b.evil.example", "domain", "proxy.host", "bob", "0"]),
            row(&["http://evil.example/dl/payload.exe", "url", "proxy.url", "alice", "1"]),
            row(&["popular.example", "domain", "proxy.host", "frank", "0"]),
        ]
    );
    let url = set.indicators.iter().find(|i| i.kind == trawl::hunt::Kind::Url).unwrap();
    assert_eq!(url.label.as_deref(), Some("dropper"));
    assert_eq!(url.origins, [format!("{}:7", path.display())]);
}

fn warninglist() -> (TempDir, PathBuf) {
    list(
        "top-sites.json",
        r#"{"name": "Top sites", "version": 1, "type": "hostname", "list": ["popular.example", ".safe.example"]}"#,
    )
}

#[test]
fn allow_lists_mark_indicators_and_sort_them_last() {
    let (_d, iocs) = list("iocs.txt", "www.popular.example\nsafe.example\nevil.example\n");
    let (_w, top) = warninglist();
    let allow = AllowList::load(&[&top], &ListOptions::default()).unwrap();
    let s = run_sweep(&load(&iocs, None), Some(&allow), None);
    assert_eq!(
        cells(&s.hits, &["indicator", "requests", "allowlisted"]),
        vec![
            row(&["evil.example", "3", "false"]),
            row(&["safe.example", "1", "true"]),
            row(&["www.popular.example", "1", "true"]),
        ]
    );
}

/// rare_domains with and without a popularity list, on every request of the fixture.
fn rare_domains(allow: Option<&AllowList>) -> (Vec<String>, Vec<String>) {
    let pack = Pack::builtin().unwrap();
    let bound = pack.bind(&["rare_domains".into()], &["min_score=0".into()]).unwrap();
    // The fixture ingests with a runtime of its own, so it is built before entering this one.
    let lake = &LAKE.lake;
    trawl::runtime().block_on(async {
        let mut engine = Engine::new(lake).await.unwrap();
        if let Some(a) = allow {
            engine.register_batch(ALLOW_DOMAINS, a.domains_batch()).unwrap();
        }
        let f = detect::run_one(&engine, &bound[0], &mut Default::default()).await;
        let Outcome::Hits { batches, .. } = &f.outcome else { panic!("{:?}", f.outcome) };
        let domains = batches.iter().flat_map(|b| cells(b, &["domain"])).map(|r| r[0].clone()).collect();
        (domains, f.notes.clone())
    })
}

#[test]
fn rare_domains_leaves_out_popular_domains_and_says_when_no_list_was_given() {
    let (domains, notes) = rare_domains(None);
    assert_eq!(
        domains,
        ["c2.example", "popular.example", "stage.example", "notevil.example", "safe.example"]
    );
    assert_eq!(
        notes,
        ["no popularity list given (--allow FILE): domains popular worldwide can show as rare"]
    );
    let (_w, top) = warninglist();
    let allow = AllowList::load(&[&top], &ListOptions::default()).unwrap();
    let (domains, notes) = rare_domains(Some(&allow));
    assert_eq!(domains, ["c2.example", "stage.example", "notevil.example"]);
    assert_eq!(notes, ["domains on the 2-domain allow list left out"]);
}

#[test]
fn hits_say_which_programs_made_the_requests() {
    let (_d, iocs) = list("iocs.txt", "c2.example\nevil.example\n");
    let s = run_sweep(&load(&iocs, None), None, None);
    assert_eq!(
        cells(&s.hits, &["indicator", "who", "agents", "requests", "bytes_in"]),
        vec![
            row(&["evil.example", "alice bob", "NULL", "3", "6800"]),
            row(&["c2.example", "grace", "Chrome on Windows 10, HTTP Library", "2", "421"]),
        ]
    );
}

#[test]
fn user_agent_functions() {
    let sql = "SELECT ua_browser(a), ua_os(a), ua_device(a), ua_name(a) FROM (VALUES \
        ('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'), \
        ('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1'), \
        ('curl/8.4.0'), ('python-requests/2.31.0'), (''), (NULL)) t(a)";
    assert_eq!(
        LAKE.rows(sql),
        vec![
            row(&["Chrome", "Windows 10", "pc", "Chrome on Windows 10"]),
            row(&["Safari", "iPhone", "smartphone", "Safari on iPhone"]),
            row(&["HTTP Library", "UNKNOWN", "misc", "HTTP Library"]),
            row(&["UNKNOWN", "UNKNOWN", "UNKNOWN", "UNKNOWN"]),
            row(&["UNKNOWN", "UNKNOWN", "UNKNOWN", "(blank)"]),
            row(&["NULL", "NULL", "NULL", "NULL"]),
        ]
    );
}

#[test]
fn geoip_functions_and_hunt_columns_from_a_database_written_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = mmdb::file(
        dir.path(),
        &[
            ("198.51.100.0/24", mmdb::record(Some("NL"), Some((64500, "Example Transit")))),
            ("2001:db8:beef::/48", mmdb::record(Some("JP"), None)),
        ],
    );
    let geoip = Arc::new(GeoIp::open(&[&path]).unwrap());
    let lake = &LAKE.lake;
    let rows = trawl::runtime().block_on(async {
        let mut engine = Engine::new(lake).await.unwrap();
        engine.set_geoip(Arc::clone(&geoip)).unwrap();
        let df = engine
            .sql(
                "SELECT a, ip_country(a) AS c, ip_asn(a) AS n, ip_org(a) AS o FROM (VALUES ('198.51.100.7'), \
                 ('2001:db8:beef::1'), ('192.0.2.1'), ('not-an-ip'), (NULL)) t(a)",
            )
            .await
            .unwrap();
        df.collect().await.unwrap()
    });
    let got: Vec<Vec<String>> = rows.iter().flat_map(|b| cells(b, &["a", "c", "n", "o"])).collect();
    assert_eq!(
        got,
        vec![
            row(&["198.51.100.7", "NL", "64500", "Example Transit"]),
            row(&["2001:db8:beef::1", "JP", "NULL", "NULL"]),
            row(&["192.0.2.1", "NULL", "NULL", "NULL"]),
            row(&["not-an-ip", "NULL", "NULL", "NULL"]),
            row(&["NULL", "NULL", "NULL", "NULL"]),
        ]
    );
    // Without a database the functions exist and know nothing.
    assert_eq!(LAKE.scalar("SELECT ip_country('198.51.100.7')"), "NULL");
    let (_d, iocs) = list("iocs.txt", "198.51.100.0/24\n");
    let s = run_sweep(&load(&iocs, None), None, Some(geoip));
    assert_eq!(
        cells(&s.hits, &["indicator", "country", "asn", "org"]),
        vec![row(&["198.51.100.0/24", "NL", "64500", "Example Transit"])]
    );
    let bad = GeoIp::open(&[&iocs]).unwrap_err().to_string();
    assert!(bad.contains("iocs.txt") && bad.contains(".mmdb"), "{bad}");
}

fn hunt_cli(iocs: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["hunt", "--lake"])
        .arg(LAKE.lake.root())
        .arg("--ioc")
        .arg(iocs)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn cli_lists_hits_and_misses_names_bad_lines_and_writes_files() {
    let (d, iocs) = list("iocs.txt", "evil[.]example\nnever.example\nnot an indicator\n");
    let out = d.path().join("out");
    let run = hunt_cli(&iocs, &out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("1 indicator(s) seen:") && stdout.contains("evil.example"), "{stdout}");
    assert!(
        stdout.contains("1 indicator(s) not seen anywhere in the lake:") && stdout.contains("never.example"),
        "{stdout}"
    );
    assert!(stderr.contains(&format!("{}:3: holds a space", iocs.display())), "{stderr}");
    let hits = std::fs::read_to_string(out.join("hits.csv")).unwrap();
    assert!(
        hits.trim_start_matches('\u{feff}')
            .starts_with("indicator,type,tables,columns,who_count,who,agents,first_seen,last_seen,requests,"),
        "{hits}"
    );
    assert_eq!(hits.lines().count(), 2);
    assert_eq!(std::fs::read_to_string(out.join("no_hits.csv")).unwrap().lines().count(), 2);
    assert_eq!(std::fs::read_to_string(out.join("unread.csv")).unwrap().lines().count(), 2);
    // A second run refuses to overwrite the files.
    let again = hunt_cli(&iocs, &out);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}
