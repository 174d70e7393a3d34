//! i-FILTER, Windows Firewall, syslog wrappers, compression and recognition of mixed folders.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::common::{TestLake, row, testdata};

#[test]
fn ifilter_fields_decoded_and_categories_named() {
    let l = TestLake::new("Asia/Tokyo");
    let r = l.ingest(&[testdata("ifilter")]);
    assert_eq!((r.files.len(), r.totals().rows, r.totals().rejects), (2, 3, 0));
    assert_eq!(
        l.rows(
            "SELECT ts, date, duration_ms, client_ip, username, method, url, host, status, response_bytes, \
             request_bytes, action, rule_id, filter_reason, categories, user_group, user_agent, content_type, \
             referrer, server_ip, source_format, extra['version'], extra['hash'] \
             FROM proxy WHERE source_file LIKE '%0001'"
        ),
        vec![row(&[
            "2014-04-01T06:09:08Z", "2014-04-01", "1000", "192.168.1.24", "username", "GET", "http://www.abcd.local",
            "www.abcd.local", "503", "0", "385", "block", "9", "51", "[51]", "default", "Mozilla/5.0",
            "text/html; charset=utf-8", "http://www.abcd.local/search", "192.168.1.91", "ifilter", "900/01/",
            "63EBCF4D",
        ])]
    );
    // Ver.10: a category list, looked up in the bundled category table by any of its ids.
    assert_eq!(
        l.rows(
            "SELECT p.username, c.id, c.name_ja, c.name_en FROM proxy p JOIN ifilter_categories c \
             ON array_has(p.categories, c.id) WHERE p.user_group = 'group01' ORDER BY c.id"
        ),
        vec![
            row(&["user01", "87", "オークション", "Auctions"]),
            row(&["user01", "127", "軍事_防衛関連", "Military / defence"]),
        ]
    );
    assert_eq!(l.scalar("SELECT user_agent FROM proxy WHERE user_group = 'group01'"), "Chrome");
    assert_eq!(l.scalar("SELECT name_ja FROM ifilter_categories WHERE id = 50"), "求人情報");
}

#[test]
fn firewall_columns_ports_pid_and_local_time() {
    let l = TestLake::new("Asia/Tokyo");
    let r = l.ingest(&[testdata("firewall")]);
    let t = r.totals();
    assert_eq!((r.files.len(), t.rows, t.rejects), (4, 40, 1), "{:?}", r.files);
    // The pid variant: 17:53:54 in Tokyo is 08:53:54 UTC.
    assert_eq!(
        l.rows(
            "SELECT ts, date, action, protocol, src_ip, dst_ip, src_port, dst_port, size, tcpflags, tcpsyn, \
             tcpack, tcpwin, icmptype, icmpcode, info, path, pid, source_line \
             FROM firewall WHERE source_file LIKE '%pid.log' ORDER BY source_line"
        ),
        vec![
            row(&[
                "2023-11-20T08:53:54Z",
                "2023-11-20",
                "DROP",
                "TCP",
                "192.168.10.30",
                "34.120.208.123",
                "61005",
                "443",
                "0",
                "NULL",
                "0",
                "0",
                "0",
                "NULL",
                "NULL",
                "NULL",
                "SEND",
                "11188",
                "6"
            ]),
            row(&[
                "2023-11-20T08:53:55Z",
                "2023-11-20",
                "ALLOW",
                "UDP",
                "192.168.10.30",
                "192.168.10.1",
                "53124",
                "53",
                "0",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "SEND",
                "2412",
                "7"
            ]),
            row(&[
                "2023-11-20T08:53:56Z",
                "2023-11-20",
                "ALLOW",
                "TCP",
                "192.168.10.30",
                "203.0.113.50",
                "61010",
                "4444",
                "0",
                "NULL",
                "0",
                "0",
                "0",
                "NULL",
                "NULL",
                "NULL",
                "SEND",
                "7720",
                "8"
            ]),
        ]
    );
    assert_eq!(
        l.rows("SELECT source_line, reason FROM rejects"),
        vec![row(&["9", "line: field count differs from the #Fields header"])]
    );
    // INFO-EVENTS-LOST keeps its count; IGMP stays numeric; ICMPv6 types survive; SYN scans keep sequence numbers.
    assert_eq!(
        l.scalar("SELECT info FROM firewall WHERE action = 'INFO-EVENTS-LOST' AND date = '2021-06-22'"),
        "7"
    );
    assert_eq!(l.scalar("SELECT count(*) FROM firewall WHERE protocol = '2' AND src_port IS NULL"), "2");
    assert_eq!(l.scalar("SELECT icmptype FROM firewall WHERE src_ip = 'fe80::dea6:32ff:fe7b:f184'"), "136");
    assert_eq!(
        l.rows("SELECT ts, tcpflags, tcpsyn, tcpwin FROM firewall WHERE src_ip = '94.232.47.52' ORDER BY ts"),
        // The scanner retried the same SYN three seconds later; both are kept.
        vec![
            row(&["2022-08-12T22:26:52Z", "S", "607837051", "8192"]),
            row(&["2022-08-12T22:26:55Z", "S", "607837051", "8192"])
        ]
    );
    // The 2005 plaso file has no blank line after its header and OPEN/CLOSE lines with '-' size.
    assert_eq!(
        l.scalar("SELECT count(*) FROM firewall WHERE action IN ('OPEN', 'CLOSE') AND size IS NULL AND path IS NULL"),
        "5"
    );
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn syslog_wrapped_lines_equal_bare_ones_but_for_log_host() {
    let squid = "1157689320.327   2864 10.105.21.199 TCP_MISS/200 10182 GET http://www.goonernews.com/ badeyek DIRECT/207.58.145.61 text/html";
    let ifilter = r#"Apr 1 15:09:09 18051 900/01/ 192.168.1.91:8000 192.168.1.24 - username [1/Apr/2014:15:09:08 +0900] 503 0 385 block 9 51 51 -1 -1 default - 0 - "GET http://www.abcd.local HTTP/1.0" http://www.abcd.local/search Mozilla%2F5.0 text%2Fhtml%3B+charset%3Dutf-8 63EBCF4D"#;
    let dir = tempfile::tempdir().unwrap();
    for (name, payload) in [("squid", squid), ("ifilter", ifilter)] {
        let text = format!(
            "{payload}\n<134>Jun 28 12:20:30 proxy01 squid[123]: {payload}\n\
             <134>1 2024-06-28T12:20:30+09:00 proxy02 squid 123 - - {payload}\n\
             Jun 28 12:20:30 proxy03 squid[9]: {payload}\n<14>{payload}\n"
        );
        write(&dir.path().join(format!("{name}/access.log")), text.as_bytes());
    }
    let l = TestLake::new("UTC");
    let r = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!((r.totals().rows, r.totals().rejects), (10, 0));
    for fmt in ["squid", "ifilter"] {
        let hosts = l.rows(&format!(
            "SELECT coalesce(log_host, '(bare)') FROM proxy WHERE source_format = '{fmt}' ORDER BY source_line"
        ));
        assert_eq!(hosts.concat(), ["(bare)", "proxy01", "proxy02", "proxy03", "(bare)"], "{fmt}");
        let distinct = l.scalar(&format!(
            "SELECT count(*) FROM (SELECT DISTINCT ts, duration_ms, client_ip, username, method, url, status, \
             request_bytes, response_bytes, user_agent, content_type, cache_result, hierarchy, server_ip, action, \
             categories, user_group, extra FROM proxy WHERE source_format = '{fmt}')"
        ));
        assert_eq!(distinct, "1", "{fmt}: wrapped rows differ from the bare one");
    }
}

#[test]
fn gzip_zstd_and_bzip2_give_the_same_rows() {
    let plain = fs::read(testdata("squid/proxy01/access.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    write(&dir.path().join("a/access.log.1.gz"), &gz.finish().unwrap());
    write(&dir.path().join("b/access.log.2.zst"), &zstd::encode_all(&plain[..], 3).unwrap());
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&plain).unwrap();
    // Named .log on purpose: compression is told by magic bytes, not by the name.
    write(&dir.path().join("c/access.log"), &bz.finish().unwrap());
    let l = TestLake::new("UTC");
    let r = l.ingest(&[dir.path().to_path_buf()]);
    let kinds: Vec<&str> = r.files.iter().map(|f| f.compression).collect();
    assert_eq!(kinds, ["gzip", "zstd", "bzip2"]);
    assert!(r.files.iter().all(|f| f.rows == 8 && f.rejects == 0), "{:?}", r.files);
    assert_eq!(
        l.scalar("SELECT count(*) FROM (SELECT DISTINCT ts, client_ip, url, status, source_line FROM proxy)"),
        "8"
    );
}

#[test]
fn mixed_folder_every_parser_and_skipped_junk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (from, to) in [
        ("squid/proxy01/access.log.2.gz", "proxy/sq01/access.log.2.gz"),
        ("squid/combined/access.log", "proxy/sq02/access.log"),
        ("ifilter/access.log0000", "filter/access.log0000"),
        ("firewall/pfirewall.log.old", "hosts/pc17/pfirewall.log.old"),
    ] {
        write(&root.join(to), &fs::read(testdata(from)).unwrap());
    }
    write(&root.join("hosts/pc17/notes.pdf"), b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    write(&root.join("hosts/.DS_Store"), b"\0\0\0\x01Bud1\0\0\x10\0\0\0\x08");
    write(&root.join("proxy/empty.log"), b"");
    let l = TestLake::new("UTC");
    let r = l.ingest(&[root.to_path_buf()]);
    let got: Vec<(String, &str)> = r
        .files
        .iter()
        .map(|f| (f.path.strip_prefix(&root.display().to_string()).unwrap().to_string(), f.format.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/filter/access.log0000".to_string(), "ifilter"),
            ("/hosts/pc17/pfirewall.log.old".to_string(), "windows_firewall"),
            ("/proxy/sq01/access.log.2.gz".to_string(), "squid"),
            ("/proxy/sq02/access.log".to_string(), "squid_combined"),
        ]
    );
    assert_eq!(r.totals().rejects, 0);
    let mut skipped: Vec<String> =
        r.skipped.iter().map(|s| s.path.rsplit('/').next().unwrap().to_string()).collect();
    skipped.sort();
    assert_eq!(skipped, [".DS_Store", "empty.log", "notes.pdf"]);
    assert_eq!(
        l.rows("SELECT 'proxy', count(*) FROM proxy UNION ALL SELECT 'firewall', count(*) FROM firewall ORDER BY 1"),
        vec![row(&["firewall", "8"]), row(&["proxy", "34"])]
    );
    // The run's bookkeeping lists every file found, the skipped ones with their reason.
    let base = root.display().to_string();
    assert_eq!(
        l.rows(&format!(
            "SELECT replace(path, '{base}', ''), status, coalesce(reason, '-'), coalesce(format, '-'), \
             coalesce(rows, -1) FROM ingests ORDER BY 1"
        )),
        vec![
            row(&["/filter/access.log0000", "ingested", "-", "ifilter", "2"]),
            row(&[
                "/hosts/.DS_Store",
                "skipped",
                "not a log format trawl knows (first lines match none); force one with --format, or describe it with --squid-logformat",
                "-",
                "-1"
            ]),
            row(&[
                "/hosts/pc17/notes.pdf",
                "skipped",
                "not a log format trawl knows (first lines match none); force one with --format, or describe it with --squid-logformat",
                "-",
                "-1"
            ]),
            row(&["/hosts/pc17/pfirewall.log.old", "ingested", "-", "windows_firewall", "8"]),
            row(&["/proxy/empty.log", "skipped", "empty file", "-", "-1"]),
            row(&["/proxy/sq01/access.log.2.gz", "ingested", "-", "squid", "28"]),
            row(&["/proxy/sq02/access.log", "ingested", "-", "squid_combined", "4"]),
        ]
    );
    assert_eq!(l.scalar("SELECT count(DISTINCT run_id) FROM ingests"), "1");
}

#[test]
fn custom_logformats_from_squid_conf() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["ingest", "--quiet", "--tz", "Asia/Tokyo", "--lake"])
        .arg(&lake)
        .arg("--squid-conf")
        .arg(testdata("squid-custom/squid.conf"))
        .arg(testdata("squid-custom/logstare.log"))
        .arg(testdata("squid-custom/access-extended.log"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("8 rows, 0 rejects"), "{stderr}");
    let l = TestLake::open(&lake);
    // The LogStare example line of FORMATS.md, field by field; bytes_in (%>st) is the upload side.
    assert_eq!(
        l.rows(
            "SELECT source_format, ts, duration_ms, client_ip, server_ip, username, method, url, host, port, \
             referrer, user_agent, status, cache_result, hierarchy, content_type, request_bytes, response_bytes, \
             extra['>p'], extra['st'], extra['<tt'], log_host FROM proxy WHERE source_file LIKE '%logstare.log' \
             AND source_line = 1"
        ),
        vec![row(&[
            "squid_logformat:timefm", "2022-06-28T03:20:30Z", "30059", "::1", "NULL", "NULL", "CONNECT",
            "fef.mx.managex.xxxsoft.com:443", "fef.mx.managex.xxxsoft.com", "443", "NULL", "", "503", "NONE",
            "HIER_NONE", "NULL", "125", "0", "49407", "125", "NULL", "NULL",
        ])]
    );
    // A quoted agent with spaces, a %-encoded user, the sender of a syslog-wrapped line.
    assert_eq!(
        l.rows(
            "SELECT username, request_bytes, extra['ssl::>sni'], substr(user_agent, 1, 11), coalesce(log_host, '-') \
             FROM proxy WHERE source_file LIKE '%logstare.log' AND source_line > 1 ORDER BY source_line"
        ),
        vec![
            row(&["CORP\\tanaka", "2097152", "upload.storage.example.net", "Mozilla/5.0", "-"]),
            row(&["NULL", "312", "NULL", "", "winproxy01"]),
        ]
    );
    assert_eq!(
        l.rows(
            "SELECT count(*), count(DISTINCT user_agent), sum(request_bytes), min(extra['>p']) FROM proxy \
             WHERE source_format = 'squid_logformat:extended'"
        ),
        vec![row(&["5", "1", "2592", "32844"])]
    );
}
