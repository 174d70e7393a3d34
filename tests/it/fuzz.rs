//! Property-based fuzzing of every parser: generated lines that look like each format, cut,
//! spliced and sprinkled with hostile bytes, must never panic a parser, and every line pushed
//! must be accounted for as a row, a directive or a reject. The framing layer must cut any
//! bytes into the same lines however the reads are split.
//!
//! `PROPTEST_CASES=<n>` runs more cases (a release run of a few minutes per target is recorded
//! in benches/README.md). Failing inputs are written to `tests/proptest-regressions/fuzz.txt`
//! and replayed first on every later run.

use std::io::{self, Read};

use proptest::prelude::*;
use trawl::formats::logformat::Logformat;
use trawl::formats::{Format, FormatKind, LineMeta};
use trawl::framing::{Line, LineReader};
use trawl::localtime::{LocalDays, parse_tz};

/// Real lines of every format (from testdata), the raw material of the mutations.
const SEEDS: &[&str] = &[
    "1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/209.73.177.115 -",
    "1714521600.123 87 2001:db8::7 TCP_DENIED/403 3912 POST http://upload.example.org/api?x=1 - HIER_NONE/- text/html",
    r#"192.0.2.11 - CORP%5Cbob [30/Apr/2024:23:59:59.250 +0900] "POST http://upload.example.org/api HTTP/1.1" 403 312 "-" "python-requests/2.31.0" TCP_DENIED:HIER_NONE"#,
    r#"192.0.2.11 - - [30/Apr/2024:23:59:59 +0900] "GET /x HTTP/1.1" 200 31"#,
    r#"Sep 19 19:26:56 4872 1000/01/ - - 192.168.1.1 192.168.1.1 - user01 [19/Sep/2017:19:26:56 +0900] 503 0 1207 block 63 87 87/127/151 -1 0 1518 0 group01 - 0 - "GET https://www.youtube.com/sw.js HTTP/1.1" - Chrome text%2Fhtml%3B+charset%3Dutf-8 A667FEFF"#,
    "2023-11-20 17:53:54 DROP TCP 192.168.10.30 34.120.208.123 61005 443 0 - 0 0 0 - - - SEND 11188",
    "2005-04-21 10:31:24 OPEN-INBOUND UDP 10.0.0.3 10.0.0.1 68 67 - - - - - - - -",
    "#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path pid",
    r#"<134>1 2024-06-28T12:20:30Z gw squid - ID47 [x@1 a="b\]c"] logformat=lsc-squid-format duration=1 src_ip=::1"#,
    "<34>Jun 28 12:20:30 proxy01 squid[123]: 1714521600.123 87 10.0.0.7 TCP_MISS/200 3912 GET http://a.example/ - DIRECT/1.2.3.4 -",
];

/// Fragments that steer parsers into their branches.
const TOKENS: &[&str] = &[
    " ",
    "  ",
    "\t",
    "-",
    "\"",
    "[",
    "]",
    "/",
    ":",
    ".",
    "%",
    "+0900",
    "-0000",
    "\\",
    "\0",
    "\u{fffd}",
    "\r",
    "0",
    "9",
    "1714521600",
    ".999",
    "99999999999999999999",
    "65535",
    "65536",
    "-1",
    "TCP_MISS/200",
    "NONE/000",
    "GET",
    "CONNECT",
    "http://",
    "https://h.example:8443/p?q#f",
    "[::1]:443",
    "30/Apr/2024:23:59:59",
    "Feb 29",
    "2024-02-29",
    "23:59:60",
    "#Fields:",
    "#Version:",
    "block",
    "pass",
    "87/127/151",
    "<191>",
    "<999>",
    "1 ",
    "DROP",
    "ALLOW",
    "TCP",
    "ICMP",
    "=",
    "src_ip=",
    "duration=",
];

/// A seed line cut, spliced and overwritten at random places.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<usize>(), 0..4u8, prop::sample::select(TOKENS), any::<u8>());
    (prop::sample::select(SEEDS), prop::collection::vec(edit, 0..6)).prop_map(|(seed, edits)| {
        let mut v = seed.as_bytes().to_vec();
        for (at, op, token, byte) in edits {
            let at = at % (v.len() + 1);
            match op {
                0 => v.truncate(at),
                1 => {
                    v.splice(at..at, token.bytes());
                }
                2 if at < v.len() => v[at] = byte,
                _ => {
                    let end = (at + 1 + byte as usize % 12).min(v.len());
                    v.drain(at..end);
                }
            }
        }
        v
    })
}

/// Lines of tokens: no seed, just the pieces parsers look for, in any order.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat().into_bytes())
}

/// Any line a file could hold (no newline: framing removed it).
fn any_line() -> impl Strategy<Value = Vec<u8>> {
    let raw = prop::collection::vec(any::<u8>(), 0..200);
    prop_oneof![4 => mutated(), 2 => token_soup(), 1 => raw].prop_map(|mut v| {
        v.retain(|b| *b != b'\n');
        v
    })
}

/// Pushes lines through one format's sink: no panic, and every line is a row, a directive or a
/// reject; the batch holds exactly the rows.
fn check_format(format: &Format, lines: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut sink = format.sink(LocalDays::new(parse_tz("Asia/Tokyo").unwrap()));
    sink.set_source("fuzz.log");
    let mut rows = 0usize;
    for (i, line) in lines.iter().enumerate() {
        let (host, payload) = trawl::formats::syslog::unwrap(line);
        if let Ok(Some(_)) = sink.push(payload, LineMeta { no: i as u64 + 1, log_host: host }) {
            rows += 1;
        }
        prop_assert_eq!(sink.len(), rows);
    }
    let batch = sink.take_batch();
    prop_assert_eq!(batch.batch.num_rows(), rows);
    prop_assert!(batch.days.is_empty() || batch.days.len() == rows);
    Ok(())
}

fn logstare() -> Logformat {
    trawl::formats::logformat::from_arg(
        r#"lsc <34>logformat=lsc-squid-format duration=%tr src_ip=%>a user="%[un" local_time=[%tl] url="%ru" http_user_agent="%{User-Agent}>h" status=%>Hs bytes_in=%>st"#,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn squid_native_never_panics(lines in prop::collection::vec(any_line(), 1..20)) {
        check_format(&Format::Builtin(FormatKind::Squid), &lines)?;
    }

    #[test]
    fn squid_common_and_combined_never_panic(lines in prop::collection::vec(any_line(), 1..20)) {
        check_format(&Format::Builtin(FormatKind::SquidCommon), &lines)?;
        check_format(&Format::Builtin(FormatKind::SquidCombined), &lines)?;
    }

    #[test]
    fn ifilter_never_panics(lines in prop::collection::vec(any_line(), 1..20)) {
        check_format(&Format::Builtin(FormatKind::Ifilter), &lines)?;
    }

    #[test]
    fn windows_firewall_never_panics(lines in prop::collection::vec(any_line(), 1..20)) {
        check_format(&Format::Builtin(FormatKind::WindowsFirewall), &lines)?;
    }

    #[test]
    fn a_compiled_logformat_never_panics(lines in prop::collection::vec(any_line(), 1..20)) {
        check_format(&Format::Logformat(std::sync::Arc::new(logstare())), &lines)?;
    }

    /// Any format string either compiles or is refused with an error; what compiles parses any
    /// line without panicking.
    #[test]
    fn any_logformat_definition_compiles_or_is_refused(
        parts in prop::collection::vec(prop::sample::select(&[
            "%ts", ".%03tu", "%tr", "%6tr", "%>a", "%un", "%ul", "%[un", "%Ss", "/%03>Hs", "%<st", "%>st",
            "%rm", "%ru", "%>rm", "%{User-Agent}>h", "%{Referer}>h", "%tl", "%tg", "%{%Y}tl", "%ssl::>sni",
            "%", "%{", "}", "\"", "[", "]", " ", "=", "key=", "<34>", "%%", "%-", "%9999tr", "%{}>h",
        ][..]), 0..14),
        lines in prop::collection::vec(any_line(), 1..8),
    ) {
        if let Ok(lf) = Logformat::compile("fuzz", &parts.concat()) {
            check_format(&Format::Logformat(std::sync::Arc::new(lf)), &lines)?;
        }
    }

    /// The syslog layer only ever removes a header: what it hands on is the line's tail.
    #[test]
    fn syslog_unwrap_returns_a_tail(line in any_line()) {
        let (host, payload) = trawl::formats::syslog::unwrap(&line);
        prop_assert!(line.ends_with(payload));
        if let Some(h) = host {
            prop_assert!(line.windows(h.len().max(1)).any(|w| w == h) || h.is_empty());
        }
    }

    #[test]
    fn url_split_takes_its_parts_from_the_url(url in any_line()) {
        let parts = trawl::urlparts::split_url(&url);
        for part in [parts.scheme, parts.host, parts.path].into_iter().flatten() {
            prop_assert!(url.windows(part.len().max(1)).any(|w| w == part) || part.is_empty());
        }
    }

    /// However reads are split (down to one byte, with interruptions), the lines and their
    /// numbers are those of splitting the whole input at each newline.
    #[test]
    fn framing_is_independent_of_read_sizes(
        data in prop::collection::vec(prop_oneof![8 => any::<u8>(), 2 => Just(b'\n'), 1 => Just(b'\r')], 0..3000),
        reads in prop::collection::vec(1..700usize, 1..20),
        first in 1..1_000_000u64,
    ) {
        let mut want: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        if want.last().is_some_and(|l| l.is_empty()) {
            want.pop();
        }
        let want: Vec<(u64, Vec<u8>)> = want
            .iter()
            .enumerate()
            .map(|(i, l)| (first + i as u64, l.strip_suffix(b"\r").unwrap_or(l).to_vec()))
            .collect();
        let mut r = LineReader::new(Choppy { data: &data, reads, next: 0, interrupt: false }, first);
        let mut got = Vec::new();
        while let Some((no, line)) = r.next_line().unwrap() {
            match line {
                Line::Full(b) => got.push((no, b.to_vec())),
                Line::TooLong(_) => prop_assert!(false, "no line here is over the limit"),
            }
        }
        prop_assert_eq!(got, want);
    }
}

/// A reader that hands out its bytes in the given read sizes, and after each read whose size is
/// a multiple of 3 is interrupted once (never twice in a row: a reader interrupted forever would
/// hang any caller that retries, as it should).
struct Choppy<'a> {
    data: &'a [u8],
    reads: Vec<usize>,
    next: usize,
    interrupt: bool,
}

impl Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.interrupt) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        if self.data.is_empty() {
            return Ok(0);
        }
        let want = self.reads[self.next % self.reads.len()];
        self.next += 1;
        self.interrupt = want.is_multiple_of(3);
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
