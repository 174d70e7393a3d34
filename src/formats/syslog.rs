//! Syslog wrappers around any format's line: `<PRI>`, RFC 3164 and RFC 5424 headers.
//!
//! Lines forwarded by syslog reach files as `<134>Jun 28 12:20:30 proxy01 squid[123]: payload`,
//! `<134>1 2024-06-28T12:20:30+09:00 proxy01 squid 123 - - payload`, a bare `<34>payload`, or
//! (as rsyslog writes files) `Jun 28 12:20:30 proxy01 squid[123]: payload` with no PRI. The
//! header is removed before the format's parser sees the line, and the host is kept.

use memchr::memchr;

use super::bytes::Fields;

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
    let ts = f.next()?;
    if !(ts == b"-" || (ts.len() >= 10 && ts[4] == b'-' && ts[..4].iter().all(u8::is_ascii_digit))) {
        return None;
    }
    let host = f.next()?;
    let _app = f.next()?;
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
    let msg = rest.get(after_sd..).unwrap_or_default();
    let msg = msg.strip_prefix(b" ").unwrap_or(msg);
    let msg = msg.strip_prefix("\u{feff}".as_bytes()).unwrap_or(msg);
    Some((dash_host(host), msg))
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
