//! Syslog wrappers around any format's line: `<PRI>`, RFC 3164 and RFC 5424 headers.
//!
//! Lines forwarded by syslog reach files as `<134>Jun 28 12:20:30 proxy01 squid[123]: payload`,
//! `<134>1 2024-06-28T12:20:30+09:00 proxy01 squid 123 - - payload`, a bare `<34>payload`, or
//! (as rsyslog writes files) `Jun 28 12:20:30 proxy01 squid[123]: payload` with no PRI. The
//! header is removed before the format's parser sees the line, and the host is kept.
//! OPNsense and pfSense mix the two: an RFC 5424 start with a BSD tag
//! (`<1>1 2020-09-25T16:23:25+02:00 fw.local (squid-1)[91300]: payload`).

use memchr::memchr;

use super::ParseError;
use super::bytes::Fields;

/// What a line that opens like an RFC 5424 header but is not one is rejected for.
pub const E_HEADER: ParseError = ParseError::new(
    "syslog header",
    "opens as RFC 5424 (<PRI>1 TIMESTAMP) but is neither `HOST APP PROCID MSGID SD MSG` nor \
     `HOST TAG[PID]: MSG`; the payload after it was not read",
);

/// The sending host (if the header names one) and the payload.
pub fn unwrap(line: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match strip_pri(line) {
        Some(rest) => {
            if let Some(found) = rfc5424(rest).or_else(|| rfc3164(rest)) {
                return found;
            }
            (None, rest)
        }
        None => rfc3164(line).unwrap_or((None, line)),
    }
}

/// Why a line that failed to parse may have failed in its syslog header rather than its payload:
/// it opens as an RFC 5424 header (`<PRI>1 ` and a timestamp) that [`unwrap`] could not take off.
/// For rejects only (the cold path), so the reason names the header, not a payload field.
pub fn header_problem(line: &[u8]) -> Option<ParseError> {
    let rest = strip_pri(line)?;
    let after = rest.strip_prefix(b"1 ")?;
    let ts = Fields::new(after).next()?;
    (is_5424_time(ts) && rfc5424(rest).is_none()).then_some(E_HEADER)
}

/// `<0>` to `<191>`: the rest of the line after it.
fn strip_pri(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"<")?;
    let close = memchr(b'>', rest)?;
    let digits = &rest[..close];
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(&rest[close + 1..])
}

/// `1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
fn rfc5424(rest: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let rest = rest.strip_prefix(b"1 ")?;
    let mut f = Fields::new(rest);
    if !is_5424_time(f.next()?) {
        return None;
    }
    let host = f.next()?;
    let app = f.next()?;
    let tag_end = f.end();
    // An APP-NAME ending in `:` is a BSD tag in practice (RFC 5424 allows the colon, no sender
    // seen uses it), and reading it as one keeps the payload whole.
    if bsd_tag(app) {
        return Some((dash_host(host), tail(rest, tag_end)));
    }
    standard_5424(rest, f, host)
}

/// `-` or a date-time starting `YYYY-`.
fn is_5424_time(ts: &[u8]) -> bool {
    ts == b"-" || (ts.len() >= 10 && ts[4] == b'-' && ts[..4].iter().all(u8::is_ascii_digit))
}

/// A BSD-style tag in the APP-NAME place: `squid:`, `squid[123]:`, `(squid-1)[91300]:`.
fn bsd_tag(app: &[u8]) -> bool {
    app.len() > 1 && app.len() <= 64 && app.ends_with(b":")
}

/// The message after a header that ends at `end`: one separating space (and a BOM) go.
fn tail(rest: &[u8], end: usize) -> &[u8] {
    let msg = rest.get(end..).unwrap_or_default();
    let msg = msg.strip_prefix(b" ").unwrap_or(msg);
    msg.strip_prefix("\u{feff}".as_bytes()).unwrap_or(msg)
}

/// `PROCID MSGID SD MSG` after `1 TIMESTAMP HOST APP`, as RFC 5424 has it.
fn standard_5424<'a>(
    rest: &'a [u8],
    mut f: Fields<'a>,
    host: &'a [u8],
) -> Option<(Option<&'a [u8]>, &'a [u8])> {
    let _procid = f.next()?;
    let _msgid = f.next()?;
    let sd_start = f.offset();
    let after_sd = if rest.get(sd_start) == Some(&b'-') {
        sd_start + 1
    } else {
        // One or more `[id k="v" ...]` elements; `]` inside values is escaped as `\]`.
        let mut i = sd_start;
        while rest.get(i) == Some(&b'[') {
            let mut j = i + 1;
            loop {
                match rest.get(j) {
                    None => return None,
                    Some(b'\\') => j += 2,
                    Some(b']') => break,
                    Some(_) => j += 1,
                }
            }
            i = j + 1;
        }
        if i == sd_start {
            return None;
        }
        i
    };
    Some((dash_host(host), tail(rest, after_sd)))
}

fn dash_host(h: &[u8]) -> Option<&[u8]> {
    if h == b"-" { None } else { Some(h) }
}

fn is_month(s: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    MONTHS.contains(&s)
}

fn is_clock(s: &[u8]) -> bool {
    s.len() >= 8 && s[2] == b':' && s[5] == b':' && s[..2].iter().chain(&s[3..5]).all(u8::is_ascii_digit)
}

/// `Mmm dd hh:mm:ss HOST TAG: MSG` (or an ISO timestamp instead of the first three fields).
/// The tag's colon is required: a product's own leading timestamp (i-FILTER starts its lines
/// `Apr 1 15:09:09 18051 900/01/`) must never be mistaken for a header, with or without a PRI.
fn rfc3164(rest: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let mut f = Fields::new(rest);
    let first = f.next()?;
    if is_month(first) {
        let day = f.next()?;
        if day.is_empty() || day.len() > 2 || !day.iter().all(u8::is_ascii_digit) || !is_clock(f.next()?) {
            return None;
        }
    } else if !(first.len() >= 19 && first[4] == b'-' && first[10] == b'T') {
        return None;
    }
    let host = f.next()?;
    let tagged = f.next().is_some_and(|t| t.len() > 1 && t.len() <= 64 && t.ends_with(b":"));
    // Only the separator goes: the payload is the message's exact tail, as a bare line would be
    // (found by fuzzing: trailing spaces used to be trimmed here and nowhere else).
    tagged.then(|| (Some(host), trim_start(&rest[f.end()..])))
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(line: &str) -> (Option<&str>, &str) {
        let (h, p) = unwrap(line.as_bytes());
        (h.map(|h| std::str::from_utf8(h).unwrap()), std::str::from_utf8(p).unwrap())
    }

    #[test]
    fn headers_are_removed_and_hosts_kept() {
        assert_eq!(un("<134>Jun 28 12:20:30 proxy01 squid[123]: 1.0 5 a"), (Some("proxy01"), "1.0 5 a"));
        assert_eq!(un("Jun  8 12:20:30 proxy01 squid: 1.0 5 a"), (Some("proxy01"), "1.0 5 a"));
        assert_eq!(
            un("<134>1 2024-06-28T12:20:30+09:00 proxy02 squid 123 - - 1.0 5 a"),
            (Some("proxy02"), "1.0 5 a")
        );
        assert_eq!(
            un(r#"<134>1 2024-06-28T12:20:30Z gw squid - ID47 [x@1 a="b\]c"][y@2] payload here"#),
            (Some("gw"), "payload here")
        );
        assert_eq!(
            un("<34>logformat=lsc-squid-format duration=1"),
            (None, "logformat=lsc-squid-format duration=1")
        );
        assert_eq!(un("2024-06-28T12:20:30+09:00 proxy03 squid[9]: x y"), (Some("proxy03"), "x y"));
    }

    #[test]
    fn rfc5424_start_with_a_bsd_tag_as_opnsense_writes_it() {
        let payload = "1601051005.952  18459 192.168.4.100 TCP_TUNNEL/200 7323 CONNECT ap.lijit.com:443 - \
                       HIER_DIRECT/72.251.249.9 -";
        let line = format!("<1>1 2020-09-25T16:23:25+02:00 OPNsense.localdomain (squid-1)[91300]: {payload}");
        assert_eq!(un(&line), (Some("OPNsense.localdomain"), payload));
        assert_eq!(header_problem(line.as_bytes()), None);
        assert_eq!(un("<13>1 - host squid: a b"), (Some("host"), "a b"));
    }

    #[test]
    fn a_broken_5424_header_is_named_as_the_problem() {
        let bad = "<1>1 2020-09-25T16:23:25+02:00 OPNsense.localdomain";
        assert_eq!(un(bad).1, "1 2020-09-25T16:23:25+02:00 OPNsense.localdomain");
        assert_eq!(header_problem(bad.as_bytes()), Some(E_HEADER));
        // Not a header attempt: a bare PRI before a payload, or no PRI at all.
        assert_eq!(header_problem(b"<34>1 5 10.0.0.1 TCP_MISS/200"), None);
        assert_eq!(header_problem(b"1 2020-09-25T16:23:25+02:00 x"), None);
    }

    #[test]
    fn payload_is_the_exact_tail_trailing_spaces_included() {
        // The fuzzer's find (tests/proptest-regressions/fuzz.txt), made readable.
        let line = "<34>Jun 28 12:20:30 proxy01 squid[123]: 1714521600.123 87 10.0.0.7 TCP_MISS/200 ";
        assert_eq!(un(line), (Some("proxy01"), "1714521600.123 87 10.0.0.7 TCP_MISS/200 "));
    }

    #[test]
    fn product_lines_are_left_alone() {
        let ifilter = "Apr 1 15:09:09 18051 900/01/ 192.168.1.91:8000 192.168.1.24 - username";
        assert_eq!(un(ifilter), (None, ifilter));
        let squid = "1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT a:443 - DIRECT/1.2.3.4 -";
        assert_eq!(un(squid), (None, squid));
        let fw = "2021-06-22 12:48:01 DROP UDP 192.168.178.1 224.0.0.1 - - 36 - - - - - - - RECEIVE";
        assert_eq!(un(fw), (None, fw));
        assert_eq!(un("<x>abc"), (None, "<x>abc"));
        // A bare PRI before a product's own timestamp leaves that timestamp alone.
        assert_eq!(un(&format!("<14>{ifilter}")), (None, ifilter));
    }
}
