//! Ingest of the Squid fixtures: counts, chosen lines field by field, rejects, partitions.

use crate::common::{TestLake, row, testdata};

fn squid_lake() -> TestLake {
    let l = TestLake::new("Asia/Tokyo");
    let report = l.ingest(&[testdata("squid")]);
    assert_eq!(report.files.len(), 5, "{:?}", report.skipped);
    l
}

#[test]
fn row_counts_equal_well_formed_lines_per_file() {
    let l = squid_lake();
    let got = l.rows(
        "SELECT regexp_replace(source_file, '^.*testdata/', ''), source_format, count(*) \
         FROM proxy GROUP BY 1, 2 ORDER BY 1",
    );
    assert_eq!(
        got,
        vec![
            row(&["squid/combined/access.log", "squid_combined", "4"]),
            row(&["squid/proxy01/access.log", "squid", "8"]),
            row(&["squid/proxy01/access.log.1", "squid", "30"]),
            row(&["squid/proxy01/access.log.2.gz", "squid", "28"]),
            row(&["squid/proxy02/access.log-20191212", "squid", "12"]),
        ]
    );
}

#[test]
fn report_counts_lines_rows_rejects_and_blank_lines() {
    let l = TestLake::new("UTC");
    let r = l.ingest(&[testdata("squid/proxy02")]);
    let f = &r.files[0];
    assert_eq!((f.lines, f.rows, f.rejects, f.blank_lines, f.lossy_rows), (14, 12, 1, 1, 1));
    assert_eq!(f.format, "squid");
    assert!(f.error.is_none());
}

#[test]
fn junk_line_is_kept_in_rejects_with_file_line_and_reason() {
    let l = squid_lake();
    let got = l.rows(
        "SELECT regexp_replace(source_file, '^.*testdata/', ''), source_line, source_format, reason, line, \
         length(raw) FROM rejects",
    );
    assert_eq!(
        got,
        vec![row(&[
            "squid/proxy02/access.log-20191212",
            "1",
            "squid",
            "field 1 (time): not seconds.millis since the epoch",
            "Unmatched! The rat the cat the dog chased killed ate the malt!",
            "62",
        ])]
    );
}

const COLS: &str = "ts, duration_ms, client_ip, username, method, url, scheme, host, port, path, status, \
    request_bytes, response_bytes, user_agent, referrer, content_type, cache_result, hierarchy, server_ip, \
    source_line, date";

fn line_of(l: &TestLake, file: &str, line: u32) -> Vec<String> {
    let sql = format!("SELECT {COLS} FROM proxy WHERE source_file LIKE '%{file}' AND source_line = {line}");
    let mut rows = l.rows(&sql);
    assert_eq!(rows.len(), 1, "{sql}");
    rows.remove(0)
}

#[test]
fn connect_with_auth_user_and_padded_duration_to_the_millisecond() {
    let l = squid_lake();
    // 1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/209.73.177.115 -
    assert_eq!(
        line_of(&l, "proxy01/access.log.1", 1),
        row(&[
            "2006-09-08T04:21:52.049Z",
            "5006",
            "10.105.21.199",
            "badeyek",
            "CONNECT",
            "login.yahoo.com:443",
            "NULL",
            "login.yahoo.com",
            "443",
            "NULL",
            "200",
            "NULL",
            "19763",
            "NULL",
            "NULL",
            "NULL",
            "TCP_MISS",
            "DIRECT",
            "209.73.177.115",
            "1",
            "2006-09-08",
        ])
    );
    // 1157689321.315      1 ... TCP_HIT/200 1464 GET http://www.goonernews.com/styles.css badeyek NONE/- text/css
    let r = line_of(&l, "proxy01/access.log.1", 4);
    assert_eq!((r[0].as_str(), r[1].as_str()), ("2006-09-08T04:22:01.315Z", "1"));
    assert_eq!((r[17].as_str(), r[18].as_str(), r[15].as_str()), ("NONE", "NULL", "text/css"));
}

#[test]
fn ipv6_client_and_denied_post() {
    let l = squid_lake();
    // 1677971737.789  123 2001:db8::1 TCP_MISS/404 1024 GET http://example.com/missing.html admin HIER_DIRECT/93.184.216.34 text/html
    assert_eq!(
        line_of(&l, "proxy01/access.log", 5),
        row(&[
            "2023-03-04T23:15:37.789Z",
            "123",
            "2001:db8::1",
            "admin",
            "GET",
            "http://example.com/missing.html",
            "http",
            "example.com",
            "80",
            "/missing.html",
            "404",
            "NULL",
            "1024",
            "NULL",
            "NULL",
            "text/html",
            "TCP_MISS",
            "HIER_DIRECT",
            "93.184.216.34",
            "5",
            "2023-03-05",
        ])
    );
    // 1677971738.012  456 172.16.0.1 TCP_DENIED/403 256 POST http://example.com/api/data - HIER_NONE/- application/json
    let r = line_of(&l, "proxy01/access.log", 6);
    assert_eq!(
        (r[3].as_str(), r[4].as_str(), r[10].as_str(), r[16].as_str(), r[17].as_str(), r[18].as_str()),
        ("NULL", "POST", "403", "TCP_DENIED", "HIER_NONE", "NULL")
    );
    // Two spaces before the last field, and a user with '@'.
    assert_eq!(line_of(&l, "proxy01/access.log", 2)[15], "NULL");
    assert_eq!(line_of(&l, "proxy01/access.log", 8)[3], "user@domain.com");
}

#[test]
fn gzip_members_ipv6_loopback_and_dash_user() {
    let l = squid_lake();
    // First member, line 1: 1431966856.793  48016 ::1 TCP_MISS/200 16674 CONNECT 0.docs.google.com:443 - DIRECT/173.194.206.189 -
    let r = line_of(&l, "access.log.2.gz", 1);
    assert_eq!(
        r[..9].to_vec(),
        row(&[
            "2015-05-18T16:34:16.793Z",
            "48016",
            "::1",
            "NULL",
            "CONNECT",
            "0.docs.google.com:443",
            "NULL",
            "0.docs.google.com",
            "443"
        ])
    );
    // Line 21 is the first line of the second gzip member.
    assert_eq!(
        l.scalar("SELECT count(*) FROM proxy WHERE source_file LIKE '%.gz' AND source_line > 20"),
        "8"
    );
}

#[test]
fn crlf_and_missing_final_newline_lose_nothing() {
    let l = squid_lake();
    // The CRLF file's last line has no newline: still a row, with no '\r' in any field.
    let r = line_of(&l, "proxy01/access.log.1", 30);
    assert_eq!(r[15], "text/css");
    assert_eq!(l.scalar("SELECT count(*) FROM proxy WHERE content_type LIKE '%\r%' OR url LIKE '%\r%'"), "0");
}

#[test]
fn wide_duration_padding_hostname_peer_and_status_000() {
    let l = squid_lake();
    // 1576177221.686     3976 203.0.113.1 NONE/000 13564 GET cache_object://localhost/counters - HIER_SINGLE_PARENT/203.0.113.200 model/plain
    let r = line_of(&l, "access.log-20191212", 2);
    assert_eq!((r[1].as_str(), r[10].as_str(), r[16].as_str()), ("3976", "0", "NONE"));
    assert_eq!((r[6].as_str(), r[7].as_str()), ("cache_object", "localhost"));
    // Peer given by name, client given by name.
    assert_eq!(line_of(&l, "access.log-20191212", 8)[18], "content-gateway");
    assert_eq!(line_of(&l, "access.log-20191212", 11)[2], "localhost");
}

#[test]
fn non_utf8_bytes_keep_the_row_lossily() {
    let l = squid_lake();
    let r = line_of(&l, "access.log-20191212", 14);
    assert_eq!(r[5], "http://example.jp/\u{FFFD}e\u{FFFD}X\u{FFFD}g");
    assert_eq!(r[7], "example.jp");
}

#[test]
fn combined_format_fields() {
    let l = squid_lake();
    let r = line_of(&l, "combined/access.log", 3);
    assert_eq!(
        r,
        row(&[
            "2024-04-30T14:59:59.250Z",
            "NULL",
            "192.0.2.11",
            "CORP\\bob",
            "POST",
            "http://upload.example.org/api",
            "http",
            "upload.example.org",
            "80",
            "/api",
            "403",
            "NULL",
            "312",
            "python-requests/2.31.0",
            "NULL",
            "NULL",
            "TCP_DENIED",
            "HIER_NONE",
            "NULL",
            "3",
            "2024-04-30",
        ])
    );
    // "-" agent is logged-but-empty; a quote inside the agent survives.
    assert_eq!(line_of(&l, "combined/access.log", 2)[13], "");
    assert_eq!(line_of(&l, "combined/access.log", 4)[13], "curl/8.4.0 \"evil\" agent");
}

#[test]
fn date_partition_is_the_local_day_in_the_lake_zone() {
    // 2024-04-30 23:59:59.250 JST and 2024-05-01 00:00:00 JST fall on different Tokyo days,
    // though both are April 30th in UTC; 09:00 JST on May 1st is the first May row in UTC.
    let tokyo = squid_lake();
    assert_eq!(
        tokyo.rows(
            "SELECT date, count(*) FROM proxy WHERE source_file LIKE '%combined%' GROUP BY 1 ORDER BY 1"
        ),
        vec![row(&["2024-04-30", "1"]), row(&["2024-05-01", "3"])]
    );
    let utc = TestLake::new("UTC");
    utc.ingest(&[testdata("squid/combined")]);
    assert_eq!(
        utc.rows("SELECT date, count(*) FROM proxy GROUP BY 1 ORDER BY 1"),
        vec![row(&["2024-04-30", "3"]), row(&["2024-05-01", "1"])]
    );
    let dirs: Vec<String> = std::fs::read_dir(tokyo.lake.root().join("proxy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("date="))
        .collect();
    assert!(dirs.contains(&"date=2024-05-01".to_string()), "{dirs:?}");
}

#[test]
fn folder_with_junk_files_lists_what_was_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("sub")).unwrap();
    std::fs::copy(testdata("squid/proxy01/access.log"), logs.join("sub/access.log")).unwrap();
    std::fs::write(logs.join("empty.log"), b"").unwrap();
    std::fs::write(logs.join(".DS_Store"), b"\0\0\0\x01Bud1\0\0\x10\0").unwrap();
    std::fs::write(logs.join("report.pdf"), b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n").unwrap();
    let l = TestLake::new("UTC");
    let r = l.ingest(&[logs]);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].rows, 8);
    let mut skipped: Vec<(String, String)> = r
        .skipped
        .iter()
        .map(|s| (s.path.rsplit('/').next().unwrap().to_string(), s.reason.clone()))
        .collect();
    skipped.sort();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0].0, ".DS_Store");
    assert!(skipped[0].1.contains("not a log format"));
    assert_eq!(skipped[1], ("empty.log".to_string(), "empty file".to_string()));
    assert_eq!(skipped[2].0, "report.pdf");
}

#[test]
fn same_bytes_are_read_once_whatever_the_name() {
    let l = TestLake::new("UTC");
    let first = l.ingest(&[testdata("squid/proxy01")]);
    assert_eq!(first.totals().rows, 66);
    // The same run again adds nothing, and says why for each file.
    let again = l.ingest(&[testdata("squid/proxy01")]);
    assert_eq!((again.files.len(), again.skipped.len()), (0, 3));
    assert!(again.skipped.iter().all(|s| s.reason.starts_with("already read: same bytes (SHA-256) as ")));
    // Rotation renamed access.log to access.log.1 beside a new access.log: only the new file is read.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testdata("squid/proxy01/access.log"), dir.path().join("access.log.1")).unwrap();
    std::fs::copy(testdata("squid/combined/access.log"), dir.path().join("access.log")).unwrap();
    std::fs::copy(testdata("squid/combined/access.log"), dir.path().join("copy-of-access.log")).unwrap();
    let rotated = l.ingest(&[dir.path().to_path_buf()]);
    assert_eq!(rotated.files.len(), 1, "{:?}", rotated.skipped);
    assert_eq!(rotated.totals().rows, 4);
    assert_eq!(l.scalar("SELECT count(*) FROM proxy"), "70");
    assert_eq!(
        l.scalar("SELECT count(*) FROM ingests WHERE status = 'skipped' AND reason LIKE 'already read%'"),
        "5"
    );
    assert_eq!(l.scalar("SELECT count(DISTINCT sha256) FROM ingests WHERE status = 'ingested'"), "4");
}

/// `n` Squid lines spread evenly over `days` days.
fn spread_lines(n: u32, days: u64) -> String {
    let step_ms = days * 86_400_000 / n as u64;
    let mut s = String::with_capacity(n as usize * 120);
    for i in 0..n {
        s.push_str(&format!(
            "{}.{:03} {:>5} 10.1.{}.{} TCP_MISS/200 {} GET http://h{}.example.com/p{i}?q={} - HIER_DIRECT/203.0.113.9 text/html\n",
            1_714_550_400 + i as u64 * step_ms / 1000,
            i as u64 * step_ms % 1000,
            i % 900,
            i % 7,
            i % 200,
            500 + i % 70_000,
            i % 97,
            i.wrapping_mul(2_654_435_761)
        ));
    }
    s
}

#[test]
fn ingest_memory_is_bounded_by_its_settings_not_by_the_input() {
    use trawl::ingest::{BATCH_ROWS, IngestOptions, ingest};
    let budget = 1 << 20;
    let run = |lines: u32, days: u64| {
        let l = TestLake::new("UTC");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        std::fs::write(&log, spread_lines(lines, days)).unwrap();
        let opts = IngestOptions {
            paths: vec![log],
            format: None,
            logformats: Vec::new(),
            jobs: 1,
            progress: false,
            writer_budget: Some(budget),
            testing: Default::default(),
        };
        let r = ingest(&l.lake, &opts).unwrap();
        assert_eq!(r.totals().rows, lines as u64);
        r
    };
    // One full day, then four times the input over four days. Writers without a budget hold
    // every open partition's rows until its file closes: 9.1 MB, then 28 MB. With it: 5.1 MB,
    // then 5.8 MB (a batch split at a day's end lands in two files).
    let (small, large) = (run(100_000, 1), run(400_000, 4));
    for r in [&small, &large] {
        assert!(r.peak_batch_rows <= BATCH_ROWS, "{}", r.peak_batch_rows);
        assert!(
            r.peak_line_buffer_bytes <= trawl::framing::MAX_LINE + (1 << 20),
            "{}",
            r.peak_line_buffer_bytes
        );
        // What one batch adds before the budget check is the only overshoot (64 Ki rows are
        // about 4-5 MB in the writers' own estimate here).
        assert!(
            r.peak_writer_bytes <= budget + (12 << 20),
            "{} over a budget of {budget}",
            r.peak_writer_bytes
        );
    }
    assert_eq!(large.peak_line_buffer_bytes, small.peak_line_buffer_bytes, "the line buffer does not grow");
    assert!(
        large.peak_writer_bytes <= small.peak_writer_bytes * 5 / 4,
        "writer memory is flat as input grows: {} then {}",
        small.peak_writer_bytes,
        large.peak_writer_bytes
    );
}
