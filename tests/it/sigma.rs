//! Sigma rules over the lake: each modifier, condition shape and escape on small fixture rows
//! with the exact lines hit; skips with their reasons; the community rules compiled or skipped;
//! the CLI (`detect --sigma`, `sigma explain`, `sigma lint`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use trawl::detect::sigma::{self, RuleFile, RuleOutcome};
use trawl::detect::{self, Outcome, Pack};
use trawl::engine::Engine;
use trawl::ingest::{IngestOptions, ingest};

use crate::common::{TestLake, batch_rows, testdata};

use crate::incidents;

const LOGFORMAT: &str =
    "sigma %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt \"%{User-Agent}>h\"";

/// Proxy lines in the custom format: (method, url, status, server, agent). Client of line N is 10.0.0.N.
const PROXY: &[(&str, &str, u16, &str, &str)] = &[
    ("GET", "http://dl.example.com/files/setup.EXE?v=1", 200, "203.0.113.5", "curl/8.4.0"),
    (
        "GET",
        "http://www.example.org/index.html",
        200,
        "10.1.2.3",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    ),
    ("POST", "http://c2.example.net/cross.php?op=1", 404, "198.51.100.7", "CURL/8.4.0"),
    ("GET", "http://c2.example.net/cross.phpXop=2", 200, "198.51.100.7", "Mozilla/5.0"),
    ("GET", "http://h.example.com/a%20b_c", 200, "2001:db8::5", "-"),
    ("GET", "http://h.example.com/aX20bYc", 500, "fe80::1", "Wget/1.21"),
    ("CONNECT", "login.example.com:443", 200, "93.184.216.34", "Mozilla/5.0"),
    ("GET", "http://h.example.com/a\\b", 302, "203.0.113.9", "x  y"),
    ("GET", "http://h.example.com/star*lit", 200, "-", "Mozilla/5.0 (Windows NT 10.0) WindowsPowerShell/5.1"),
    ("GET", "http://API.Telegram.org/bot1/send", 200, "149.154.167.220", "TelegramBot (like TwitterBot)"),
    ("GET", "http://198.51.100.77/invoice.exe", 200, "198.51.100.77", "Mozilla/5.0"),
];

/// Firewall entries: (action, protocol, src, dst, src port, dst port); data line N is file line N + 4.
const FIREWALL: &[(&str, &str, &str, &str, u16, u16)] = &[
    ("ALLOW", "TCP", "10.0.1.1", "198.51.100.23", 50001, 80),
    ("DROP", "TCP", "10.0.1.2", "198.51.100.23", 50002, 80),
    ("ALLOW", "TCP", "10.0.1.3", "198.51.100.23", 50003, 443),
    ("DROP", "UDP", "10.0.1.4", "10.0.0.53", 50004, 53),
    ("ALLOW", "TCP", "69.42.98.86", "10.0.1.5", 443, 50005),
    ("DROP", "TCP", "10.0.1.9", "10.0.0.7", 50006, 21),
    ("DROP", "TCP", "10.0.1.9", "10.0.0.7", 50007, 22),
    ("DROP", "TCP", "10.0.1.9", "10.0.0.7", 50008, 23),
    ("DROP", "TCP", "10.0.1.9", "10.0.0.8", 50009, 25),
];

/// 2024-06-04 11:00 JST.
const T0: u64 = 1_717_466_400;

fn fixture() -> TestLake {
    let l = TestLake::new("Asia/Tokyo");
    let dir = tempfile::tempdir().unwrap();
    let mut custom = String::new();
    for (i, (method, url, status, server, agent)) in PROXY.iter().enumerate() {
        let n = i + 1;
        let hier = if *server == "-" { "HIER_NONE/-".to_string() } else { format!("HIER_DIRECT/{server}") };
        custom += &format!(
            "{}.000     12 10.0.0.{n} TCP_MISS/{status} 512 {method} {url} - {hier} text/html \"{agent}\"\n",
            T0 + n as u64 * 60
        );
    }
    std::fs::write(dir.path().join("c.log"), custom).unwrap();
    // Squid's native format logs no agent: user_agent is NULL for this row.
    std::fs::write(
        dir.path().join("n.log"),
        format!("{}.000     12 10.0.0.99 TCP_MISS/200 512 GET http://dl.example.com/nua.exe - HIER_DIRECT/203.0.113.5 -\n", T0),
    )
    .unwrap();
    let mut fw = String::from(
        "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n\
         #Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin \
         icmptype icmpcode info path\n",
    );
    for (i, (action, proto, src, dst, sp, dp)) in FIREWALL.iter().enumerate() {
        fw += &format!(
            "2024-06-04 11:{:02}:00 {action} {proto} {src} {dst} {sp} {dp} 60 - - - - - - - SEND\n",
            i
        );
    }
    std::fs::write(dir.path().join("f.log"), fw).unwrap();
    let opts = IngestOptions {
        paths: vec![dir.path().to_path_buf()],
        format: None,
        logformats: vec![Arc::new(trawl::formats::logformat::from_arg(LOGFORMAT).unwrap())],
        jobs: 2,
        progress: false,
        writer_budget: None,
        testing: Default::default(),
    };
    let report = ingest(&l.lake, &opts).unwrap();
    assert_eq!(report.totals().rejects, 0);
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), (PROXY.len() + 1).to_string());
    l
}

static LAKE: LazyLock<TestLake> = LazyLock::new(fixture);

fn rule_text(category: &str, detection: &str) -> String {
    format!(
        "title: Test rule\nauthor: Test Author\nlevel: high\nlogsource:\n  category: {category}\ndetection:\n{detection}"
    )
}

fn rule_file(text: &str) -> RuleFile {
    RuleFile { path: "t.yml".into(), stem: "t".into(), outcome: sigma::compile_text(text) }
}

/// Runs a rule and gives the hit lines as `<file letter><line>` (`c3`: custom log line 3),
/// with the rows (formatted) by column name.
fn run(text: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let file = rule_file(text);
    if let RuleOutcome::Skipped { skip, .. } = &file.outcome {
        panic!("skipped: {}: {}", skip.kind, skip.detail);
    }
    let mut pack = Pack::default();
    pack.add(file.detection().unwrap()).unwrap();
    let bound = pack.bind(&[], &[]).unwrap();
    // Built outside the runtime: ingest starts one of its own.
    let lake = &LAKE.lake;
    let finding_rows = trawl::runtime().block_on(async {
        let engine = Engine::new(lake).await.unwrap();
        let f = detect::run(&engine, &bound).await.remove(0);
        let Outcome::Hits { schema, batches, .. } = f.outcome else { panic!("{:?}", f.outcome) };
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        batch_rows(&batches).into_iter().map(|r| names.iter().cloned().zip(r).collect()).collect::<Vec<_>>()
    });
    let mut lines: Vec<String> = finding_rows
        .iter()
        .map(|r: &BTreeMap<String, String>| {
            let file =
                Path::new(&r["source_file"]).file_name().unwrap().to_string_lossy().chars().next().unwrap();
            format!("{file}{}", r["source_line"])
        })
        .collect();
    lines.sort_by_key(|l| (l.chars().next(), l[1..].parse::<u32>().unwrap()));
    (lines, finding_rows)
}

/// The lines a proxy rule's detection block hits.
fn proxy(detection: &str) -> Vec<String> {
    run(&rule_text("proxy", detection)).0
}

fn firewall(detection: &str) -> Vec<String> {
    run(&rule_text("firewall", detection)).0
}

fn skip_of(text: &str) -> (String, String) {
    match rule_file(text).outcome {
        RuleOutcome::Skipped { skip, .. } => (skip.kind.to_string(), skip.detail),
        other => panic!("not skipped: {other:?}"),
    }
}

#[test]
fn sigma_plain_values_equal_the_whole_field_case_insensitively() {
    // curl/8.4.0 and CURL/8.4.0 both; a plain value is not a `contains`.
    assert_eq!(proxy("  sel:\n    c-useragent: 'Curl/8.4.0'\n  condition: sel\n"), ["c1", "c3"]);
    assert_eq!(proxy("  sel:\n    c-useragent: 'curl'\n  condition: sel\n"), Vec::<String>::new());
    // Spaces inside values are significant.
    assert_eq!(proxy("  sel:\n    c-useragent: 'x  y'\n  condition: sel\n"), ["c8"]);
    assert_eq!(proxy("  sel:\n    c-useragent: 'x y'\n  condition: sel\n"), Vec::<String>::new());
    // `cased` keeps case.
    assert_eq!(proxy("  sel:\n    c-useragent|cased: 'CURL/8.4.0'\n  condition: sel\n"), ["c3"]);
    // A list is an OR; numbers compare as numbers.
    assert_eq!(proxy("  sel:\n    sc-status: [404, 500]\n  condition: sel\n"), ["c3", "c6"]);
}

#[test]
fn sigma_contains_startswith_endswith_all() {
    assert_eq!(proxy("  sel:\n    c-useragent|contains: 'windows nt'\n  condition: sel\n"), ["c2", "c9"]);
    assert_eq!(
        proxy("  sel:\n    c-useragent|startswith: 'MOZILLA/5.0 ('\n  condition: sel\n"),
        ["c2", "c9"]
    );
    assert_eq!(proxy("  sel:\n    c-uri|endswith: ['.html', '=2']\n  condition: sel\n"), ["c2", "c4"]);
    assert_eq!(
        proxy("  sel:\n    c-useragent|contains|all: ['windows', 'powershell']\n  condition: sel\n"),
        ["c9"]
    );
    assert_eq!(proxy("  sel:\n    sc-status|gte: 500\n  condition: sel\n"), ["c6"]);
}

#[test]
fn sigma_wildcards_and_escapes() {
    // An unescaped `?` is one character: /cross.php?op= and /cross.phpXop=.
    assert_eq!(proxy("  sel:\n    c-uri|contains: '/cross.php?op='\n  condition: sel\n"), ["c3", "c4"]);
    assert_eq!(proxy("  sel:\n    c-uri|contains: '/cross.php\\?op='\n  condition: sel\n"), ["c3"]);
    // `%` and `_` are literals, and nothing is URL-decoded.
    assert_eq!(proxy("  sel:\n    c-uri|endswith: '/a%20b_c'\n  condition: sel\n"), ["c5"]);
    // `*` inside a value; `\*` a literal star.
    assert_eq!(proxy("  sel:\n    c-uri: 'http://h.example.com/a*c'\n  condition: sel\n"), ["c5", "c6"]);
    assert_eq!(proxy("  sel:\n    c-uri|endswith: 'star\\*lit'\n  condition: sel\n"), ["c9"]);
    assert_eq!(proxy("  sel:\n    c-uri|endswith: 'r\\*'\n  condition: sel\n"), Vec::<String>::new());
    // A backslash: `\\` is one, and `\b` (no special character after it) is itself.
    assert_eq!(proxy("  sel:\n    c-uri|endswith: '/a\\\\b'\n  condition: sel\n"), ["c8"]);
    assert_eq!(proxy("  sel:\n    c-uri|endswith: '/a\\b'\n  condition: sel\n"), ["c8"]);
}

#[test]
fn sigma_re_is_a_case_sensitive_search() {
    assert_eq!(proxy("  sel:\n    c-useragent|re: 'url/8'\n  condition: sel\n"), ["c1"]);
    assert_eq!(proxy("  sel:\n    c-useragent|re: '(?i)url/8'\n  condition: sel\n"), ["c1", "c3"]);
    assert_eq!(proxy("  sel:\n    c-useragent|re|i: '^curl'\n  condition: sel\n"), ["c1", "c3"]);
    assert_eq!(proxy("  sel:\n    cs-host|re: '.{20}'\n  condition: sel\n"), Vec::<String>::new());
    let (kind, detail) = skip_of(&rule_text("proxy", "  sel:\n    c-uri|re: '(?<=a)b'\n  condition: sel\n"));
    assert_eq!(kind, "regex");
    assert!(detail.starts_with("sel: c-uri|re \"(?<=a)b\": "), "{detail}");
}

#[test]
fn sigma_cidr_parses_addresses() {
    // dst_ip is the server the proxy reached; `-` (NULL) and host names never match.
    assert_eq!(
        proxy(
            "  sel:\n    dst_ip|cidr: ['198.51.100.0/24', '203.0.113.0/28', 'fe80::/10']\n  condition: sel\n"
        ),
        ["c1", "c3", "c4", "c6", "c8", "c11", "n1"]
    );
    // A string prefix would take 10.1.2.3 for 10.1.20.0/24; cidr does not.
    assert_eq!(proxy("  sel:\n    dst_ip|cidr: '10.1.20.0/24'\n  condition: sel\n"), Vec::<String>::new());
    assert_eq!(
        firewall("  sel:\n    src_ip|cidr: '10.0.1.8/29'\n  condition: sel\n"),
        ["f10", "f11", "f12", "f13"]
    );
}

#[test]
fn sigma_not_keeps_rows_whose_field_is_null() {
    // n1 has no agent logged (NULL): `not filter` must keep it.
    assert_eq!(
        proxy(
            "  sel:\n    c-uri|endswith: '.exe'\n  filter:\n    c-useragent|contains: 'curl'\n  condition: sel and not filter\n"
        ),
        ["c11", "n1"]
    );
    assert_eq!(
        proxy(
            "  sel:\n    cs-host|endswith: 'example.com'\n  filter:\n    dst_ip|cidr: '2001:db8::/32'\n  condition: sel and not filter\n"
        ),
        ["c1", "c6", "c7", "c8", "c9", "n1"]
    );
}

#[test]
fn sigma_condition_shapes() {
    let sels = "  sel_a:\n    cs-method: POST\n  sel_b:\n    sc-status: 500\n  other:\n    cs-host: 'h.example.com'\n";
    let with = |c: &str| proxy(&format!("{sels}  condition: {c}\n"));
    assert_eq!(with("sel_a or sel_b"), ["c3", "c6"]);
    assert_eq!(with("1 of sel_*"), ["c3", "c6"]);
    assert_eq!(with("all of sel_*"), Vec::<String>::new());
    assert_eq!(with("other and not sel_b"), ["c5", "c8", "c9"]);
    assert_eq!(with("(sel_a or other) and not (sel_b or other)"), ["c3"]);
    assert_eq!(with("1 of them"), ["c3", "c5", "c6", "c8", "c9"]);
    assert_eq!(with("all of them"), Vec::<String>::new());
    assert_eq!(with("other and sel_b"), ["c6"]);
    // A list of maps is an OR of ANDs; an identifier may be called `falsepositives`.
    assert_eq!(
        proxy(
            "  selection:\n    - cs-method: POST\n      sc-status: 404\n    - cs-method: CONNECT\n  \
             falsepositives:\n    - c-uri|contains: 'login'\n  condition: selection and not falsepositives\n"
        ),
        ["c3"]
    );
    let (kind, detail) =
        skip_of(&rule_text("proxy", "  sel:\n    cs-method: GET\n  condition: sel and nope\n"));
    assert_eq!(
        (kind.as_str(), detail.as_str()),
        ("bad condition", "the condition names `nope`, which the detection does not define (it has sel)")
    );
}

#[test]
fn sigma_keywords_search_every_text_column() {
    // In the URL of c4, the agent of c9, the host of c10.
    assert_eq!(
        proxy("  keywords:\n    - 'phpX'\n    - 'POWERSHELL'\n    - 'telegram.org'\n  condition: keywords\n"),
        ["c4", "c9", "c10"]
    );
    // `'|all'`: every keyword, each in any column.
    assert_eq!(proxy("  k:\n    '|all': ['cross', 'CURL/']\n  condition: k\n"), ["c3"]);
}

#[test]
fn sigma_derived_uri_fields() {
    // c-uri is the whole URL as logged; CONNECT logs host:port.
    assert_eq!(proxy("  sel:\n    c-uri: 'login.example.com:443'\n  condition: sel\n"), ["c7"]);
    assert_eq!(proxy("  sel:\n    c-uri-extension: 'exe'\n  condition: sel\n"), ["c1", "c11", "n1"]);
    assert_eq!(proxy("  sel:\n    c-uri-stem: '/files/setup.exe'\n  condition: sel\n"), ["c1"]);
    assert_eq!(proxy("  sel:\n    c-uri-query: ['v=1', 'op=1']\n  condition: sel\n"), ["c1", "c3"]);
    assert_eq!(proxy("  sel:\n    cs-host: 'api.telegram.org'\n  condition: sel\n"), ["c10"]);
    // The rows carry the named fields beside source_file and source_line, and the author.
    let (_, rows) = run(&rule_text(
        "proxy",
        "  sel:\n    c-uri-extension: 'exe'\n    cs-method: GET\n  condition: sel\n",
    ));
    let r = &rows[0];
    assert_eq!(
        (
            r["client_ip"].as_str(),
            r["c-uri-extension"].as_str(),
            r["cs-method"].as_str(),
            r["source_line"].as_str()
        ),
        ("10.0.0.99", "exe", "GET", "1")
    );
    assert_eq!(
        (r["author"].as_str(), r["score"].as_str(), r["why"].as_str()),
        ("Test Author", "1.0", "Test rule (matched sel)")
    );
    assert_eq!(rows[1]["c-uri-extension"], "EXE");
    assert_eq!(rows[2]["c-uri-extension"], "exe");
}

#[test]
fn sigma_null_and_empty_values() {
    // '' is an agent logged blank ('-'); null is one not logged at all.
    assert_eq!(proxy("  sel:\n    c-useragent: ''\n  condition: sel\n"), ["c5"]);
    assert_eq!(proxy("  sel:\n    c-useragent: null\n  condition: sel\n"), ["n1"]);
    assert_eq!(proxy("  sel:\n    dst_ip: null\n    cs-method: GET\n  condition: sel\n"), ["c9"]);
}

#[test]
fn sigma_firewall_values_are_mapped() {
    // accept/forward mean ALLOW; the 2 in the list compares as a string and matches nothing.
    assert_eq!(
        firewall("  sel:\n    action: [forward, accept, 2]\n    dst_port: 80\n  condition: sel\n"),
        ["f5"]
    );
    assert_eq!(firewall("  sel:\n    blocked: 'false'\n  condition: sel\n"), ["f5", "f7", "f9"]);
    assert_eq!(firewall("  sel:\n    action: denied\n    dst_port: [53, 'x']\n  condition: sel\n"), ["f8"]);
    assert_eq!(
        firewall("  sel:\n    - dst_ip: '69.42.98.86'\n    - src_ip: '69.42.98.86'\n  condition: sel\n"),
        ["f9"]
    );
}

#[test]
fn sigma_unlogged_fields_skip_or_leave_out_a_selection() {
    let text = rule_text(
        "proxy",
        "  sel_a:\n    cs-cookie|contains: 'x'\n  sel_b:\n    cs-method: POST\n  condition: 1 of sel_*\n",
    );
    // The rule still means something without sel_a, so it runs and says what it left out.
    let file = rule_file(&text);
    let RuleOutcome::Compiled { compiled, .. } = &file.outcome else { panic!("{:?}", file.outcome) };
    assert_eq!(
        compiled.notes,
        ["sel_a is left out: it needs cs-cookie (no format trawl reads logs request cookies)"]
    );
    assert_eq!(run(&text).0, ["c3"]);
    let (kind, detail) =
        skip_of(&rule_text("proxy", "  sel:\n    cs-cookie: 'x'\n    cs-method: GET\n  condition: sel\n"));
    assert_eq!(
        (kind.as_str(), detail.as_str()),
        ("field not logged", "the condition needs cs-cookie (no format trawl reads logs request cookies)")
    );
    let (kind, detail) = skip_of(&rule_text(
        "proxy",
        "  sel:\n    cs-method: GET\n  filter:\n    cs-version: 'HTTP/1.0'\n  condition: sel and not filter\n",
    ));
    assert_eq!(kind, "field not logged");
    assert!(detail.starts_with("`not filter` needs cs-version"), "{detail}");
    let (kind, detail) = skip_of(&rule_text("proxy", "  sel:\n    c-ua: 'x'\n  condition: sel\n"));
    assert_eq!(
        (kind.as_str(), detail.as_str()),
        ("unmapped field", "sel: field `c-ua` is not in the proxy mapping (schemas/sigma-fields.json)")
    );
}

#[test]
fn sigma_unsupported_modifier_is_skipped_with_reason() {
    let (kind, detail) =
        skip_of(&rule_text("proxy", "  sel:\n    c-uri|base64offset|contains: 'x'\n  condition: sel\n"));
    assert_eq!(kind, "unsupported modifier");
    assert!(
        detail.starts_with("sel: c-uri|base64offset: modifier `base64offset` is not supported"),
        "{detail}"
    );
    let (kind, _) = skip_of("title: t\nlogsource:\n  category: proxy\ndetection:\n  sel: [a\n");
    assert_eq!(kind, "not a rule");
}

#[test]
fn sigma_aggregation_counts_in_windows() {
    let text = rule_text(
        "firewall",
        "  sel:\n    action: denied\n  timeframe: 1h\n  condition: sel | count(dst_port) by src_ip > 3\n",
    );
    let (lines, rows) = run(&text);
    assert_eq!(lines, ["f10"]);
    assert_eq!(
        (rows[0]["src_ip"].as_str(), rows[0]["value"].as_str(), rows[0]["events"].as_str()),
        ("10.0.1.9", "4", "4")
    );
    assert_eq!(rows[0]["window_start"], "2024-06-04T11:00:00");
    assert_eq!(rows[0]["why"], "Test rule (count(dst_port) by src_ip = 4 > 3 in 1h)");
}

/// The community's rules beside the project (DRL 1.1, read from disk): every one compiled or
/// skipped with a reason; the counts are the ones the README gives.
#[test]
fn sigma_community_rules_compile_or_skip_with_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/sigma/rules");
    if !dir.is_dir() {
        eprintln!("skipping: the SigmaHQ rules snapshot is not at {}", dir.display());
        return;
    }
    let rules = sigma::load(&[dir]).unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rules {
        let (status, kind, detail) = r.status();
        assert!(status != "skipped" || !detail.is_empty(), "{}", r.path);
        *counts
            .entry(if kind.is_empty() { status.to_string() } else { format!("{status}: {kind}") })
            .or_insert(0) += 1;
    }
    let counts: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(counts, [("compiled", 61), ("skipped: field not logged", 1)]);
    let mut pack = Pack::default();
    sigma::add_to_pack(&mut pack, &rules).unwrap();
    let bound = pack.bind(&[], &[]).unwrap();
    trawl::runtime().block_on(async {
        let engine = Engine::offline(chrono_tz::Asia::Tokyo).await.unwrap();
        for b in &bound {
            detect::lint(&engine, b).await.unwrap();
        }
    });
}

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

fn sigma_dir() -> PathBuf {
    testdata("sigma")
}

#[test]
fn sigma_detect_cli_writes_a_file_per_rule() {
    let out = tempfile::tempdir().unwrap();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("cookie_only.yml"),
        rule_text("proxy", "  sel:\n    cs-cookie: 'x'\n  condition: sel\n"),
    )
    .unwrap();
    std::fs::write(rules.path().join("windows.yml"), "title: w\nlogsource:\n  category: process_creation\ndetection:\n  s:\n    Image: x\n  condition: s\n").unwrap();
    let o = trawl()
        .args(["detect", "--no-builtin", "--rows", "0", "--lake"])
        .arg(LAKE.lake.root())
        .arg("--sigma")
        .arg(sigma_dir())
        .arg("--sigma")
        .arg(rules.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("sigma: 5 rule file(s): 3 compiled, 1 skipped"), "{stderr}");
    assert!(stderr.contains("not for proxy or firewall logs, so not run: 1 process_creation"), "{stderr}");
    let summary = std::fs::read_to_string(out.path().join("summary.csv")).unwrap();
    let line = |id: &str| {
        summary.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{summary}")).to_string()
    };
    assert!(
        line("proxy_ua_powershell,Windows PowerShell User Agent,medium,1,1,10.0.0.9,").contains(",hits,"),
        "{summary}"
    );
    assert!(
        line("cookie_only").contains(",skipped,field not logged: the condition needs cs-cookie"),
        "{summary}"
    );
    assert!(line("proxy_download_susp_tlds_whitelist").contains(",hits,"), "{summary}");
    let csv = std::fs::read_to_string(out.path().join("proxy_ua_powershell.csv")).unwrap();
    // Files written for spreadsheets open with a byte-order mark.
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert_eq!(lines.next(), Some("client_ip,ts,c-useragent,score,why,author,source_file,source_line"));
    let row = lines.next().unwrap();
    assert!(row.starts_with("10.0.0.9,2024-06-04 11:09:00.000,Mozilla/5.0 (Windows NT 10.0) WindowsPowerShell/5.1,1.0,Windows PowerShell User Agent (matched selection),Florian Roth (Nextron Systems),"), "{row}");
    assert!(row.ends_with("c.log,9"), "{row}");
}

#[test]
fn sigma_explain_and_lint_cli() {
    let rule = sigma_dir().join("proxy_ua_powershell.yml");
    let o = trawl().args(["sigma", "explain"]).arg(&rule).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(text.contains("outcome:  compiled\ntable:    proxy\n"), "{text}");
    assert!(text.contains("  c-useragent      -> user_agent "), "{text}");
    assert!(text.contains("WHERE coalesce(user_agent ILIKE '% WindowsPowerShell/%', FALSE)"), "{text}");
    let o = trawl().args(["sigma", "lint"]).arg(sigma_dir()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "3 rule file(s): 3 compiled");
    let o = trawl().args(["sigma", "lint", "/nonexistent-rules"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// On generated office traffic, the planted PowerShell fetch from a paste site and the download
/// straight from an address are what the community's rules (copied into testdata/) flag.
#[test]
fn sigma_planted_incidents_hit_community_rules() {
    let dir = tempfile::tempdir().unwrap();
    let scale = incidents::Scale { users: 10, mean_gap_s: 300.0, weeks: 1 };
    let planted = incidents::generate(dir.path(), 7, scale).unwrap();
    let l = TestLake::new("Asia/Tokyo");
    l.ingest(&[dir.path().to_path_buf()]);
    let mut pack = Pack::default();
    sigma::add_to_pack(&mut pack, &sigma::load(&[sigma_dir()]).unwrap()).unwrap();
    let bound = pack.bind(&[], &[]).unwrap();
    let found: BTreeMap<String, Vec<String>> = trawl::runtime().block_on(async {
        let engine = Engine::new(&l.lake).await.unwrap();
        let mut out = BTreeMap::new();
        for f in detect::run(&engine, &bound).await {
            let Outcome::Hits { batches, .. } = &f.outcome else { panic!("{:?}", f.outcome) };
            let mut who: Vec<String> = Vec::new();
            for b in batches {
                let col = b.column(0);
                let fmt = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default()).unwrap();
                who.extend((0..b.num_rows()).map(|i| fmt.value(i).to_string()));
            }
            out.insert(f.detection.id.clone(), who);
        }
        out
    });
    let client = &planted.iter().find(|p| p.detection == "proxy_ua_powershell").unwrap().entity;
    let direct = "10.1.0.25";
    // One row per log line: part of the office is logged by two proxies, so a request can be two lines.
    for rule in ["proxy_ua_powershell", "proxy_raw_paste_service_access"] {
        let hits = &found[rule];
        assert!(hits.len() >= 4 && hits.iter().all(|c| c == client), "{rule}: {hits:?}");
    }
    let downloads = &found["proxy_download_susp_tlds_whitelist"];
    assert!(downloads.len() >= 3 && downloads.iter().all(|c| c == direct), "{downloads:?}");
}

/// Thousands of values plan and run: equalities as one IN list, patterns as a balanced OR tree.
#[test]
fn sigma_long_value_lists_do_not_nest_deep() {
    let mut contains = String::from("  sel:\n    c-uri|contains:\n");
    let mut equal = String::from("  eq:\n    c-useragent:\n");
    for i in 0..3000 {
        contains += &format!("      - '/nothing-{i}/'\n");
        equal += &format!("      - 'agent {i}'\n");
    }
    contains += "      - 'cross.phpX'\n";
    equal += "      - 'wget/1.21'\n";
    assert_eq!(proxy(&format!("{contains}{equal}  condition: sel or eq\n")), ["c4", "c6"]);
}
