//! Digital Arts i-FILTER access logs (Ver.9 29-column and Ver.10 default layouts).
//!
//! Field facts and their sources are in the corpus's FORMATS.md, section 3. The bracketed access
//! start time (with its zone) is the row's `ts`; the year-less write time at the start of the line
//! only gives `duration_ms`. Fields whose meaning the vendor's public documents do not give are
//! kept in `extra` under their column number, never dropped.

use memchr::{memchr, memrchr};

use super::ParseError;
use super::bytes::{Fields, dash_is_empty, dash_is_none, days_from_civil, parse_clf_time, parse_i64};
use super::proxy::{Extra, ProxyParser, ProxyRow};

/// The i-FILTER access-log parser; the layout is told per line by its field count.
#[derive(Debug, Clone, Copy)]
pub struct IFilter;

const E_PREFIX: ParseError = ParseError::new(
    "columns 1-11",
    "not `Mon d hh:mm:ss pid version ... user [start time]` (9 fields before the time for Ver.9, 11 for Ver.10)",
);
const E_TIME: ParseError = ParseError::new("[start time]", "not [d/Mon/yyyy:hh:mm:ss +zone]");
const E_MIDDLE: ParseError = ParseError::new(
    "status .. group",
    "not `status size size action object reason categories ... group - n -` before the request",
);
const E_STATUS: ParseError = ParseError::new("status", "not a number");
const E_SIZE: ParseError = ParseError::new("size", "not a number");
const E_REQUEST: ParseError = ParseError::new("\"request\"", "no quoted \"METHOD URL VERSION\"");
const E_TAIL: ParseError =
    ParseError::new("referer user-agent content-type hash", "not 4 fields after the request");

/// `Sep 19 19:26:56` in the year and zone of the start time, as UTC microseconds.
fn write_time(mon: &[u8], day: &[u8], clock: &[u8], start_us: i64, zone_secs: i64) -> Option<i64> {
    let day: u32 = super::bytes::parse_u64(day)?.try_into().ok()?;
    let month = b"JanFebMarAprMayJunJulAugSepOctNovDec".chunks(3).position(|m| m == mon)? as u32 + 1;
    if clock.len() != 8 || clock[2] != b':' || clock[5] != b':' {
        return None;
    }
    let n = |s: &[u8]| super::bytes::parse_u64(s).map(|v| v as i64);
    let (h, m, s) = (n(&clock[0..2])?, n(&clock[3..5])?, n(&clock[6..8])?);
    let start_secs = start_us.div_euclid(1_000_000) + zone_secs;
    let (year, _, _) = super::bytes::civil_from_days(start_secs.div_euclid(86_400));
    let at =
        |y: i64| (days_from_civil(y, month, day) * 86_400 + h * 3600 + m * 60 + s - zone_secs) * 1_000_000;
    // Written after the start: a December start written on January 1st belongs to the next year.
    let t = at(year);
    Some(if t < start_us - 86_400_000_000 { at(year + 1) } else { t })
}

/// The `+0900` of a bracketed time, in seconds.
fn zone_of(time: &[u8]) -> i64 {
    let Some(i) = memrchr(b'+', time).or_else(|| memrchr(b'-', time).filter(|i| time.len() - i == 5)) else {
        return 0;
    };
    let z = &time[i + 1..];
    let v = match (parse_i64(z.get(..2).unwrap_or_default()), parse_i64(z.get(2..4).unwrap_or_default())) {
        (Some(h), Some(m)) => h * 3600 + m * 60,
        _ => 0,
    };
    if time[i] == b'-' { -v } else { v }
}

/// Names for the prefix fields kept in `extra`, by layout.
const V9_PREFIX: [&str; 6] = ["write_time", "pid", "version", "connect_to", "", ""];
const V10_PREFIX: [&str; 6] = ["write_time", "pid", "version", "upstream_proxy", "connect_to", "source_ip"];

impl ProxyParser for IFilter {
    fn name(&self) -> &str {
        "ifilter"
    }

    fn parse<'a>(&'a self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError> {
        let open = memchr(b'[', line).ok_or(E_PREFIX)?;
        let close = memchr(b']', &line[open..]).ok_or(E_TIME)? + open;
        let prefix: [&[u8]; 11] = {
            let mut f = Fields::new(&line[..open]);
            let mut p: [&[u8]; 11] = [&[]; 11];
            let mut n = 0;
            for field in f.by_ref() {
                if n == 11 {
                    return Err(E_PREFIX);
                }
                p[n] = field;
                n += 1;
            }
            match n {
                // Ver.9: mon day time pid version connect_to client name user
                9 => [p[0], p[1], p[2], p[3], p[4], b"", b"", p[5], p[6], p[7], p[8]],
                // Ver.10: mon day time pid version upstream connect_to source client name user
                11 => p,
                _ => return Err(E_PREFIX),
            }
        };
        let v10 = !prefix[5].is_empty() || !prefix[6].is_empty();
        let time = &line[open + 1..close];
        let ts = parse_clf_time(time).ok_or(E_TIME)?;
        let write = write_time(prefix[0], prefix[1], prefix[2], ts, zone_of(time));

        let q1 = memchr(b'"', &line[close..]).ok_or(E_REQUEST)? + close;
        let q2 = memrchr(b'"', &line[q1 + 1..]).ok_or(E_REQUEST)? + q1 + 1;
        let mut mid: [&[u8]; 16] = [&[]; 16];
        let mut n = 0;
        for field in Fields::new(&line[close + 1..q1]) {
            if n == mid.len() {
                return Err(E_MIDDLE);
            }
            mid[n] = field;
            n += 1;
        }
        // status size size action object reason categories [numbers...] group virus ? post_file
        if n < 11 {
            return Err(E_MIDDLE);
        }
        let status = parse_i64(mid[0]).ok_or(E_STATUS)?;
        let size_a = parse_i64(mid[1]).ok_or(E_SIZE)?;
        let size_b = parse_i64(mid[2]).ok_or(E_SIZE)?;
        let request = &line[q1 + 1..q2];
        let sp = memchr(b' ', request).ok_or(E_REQUEST)?;
        let method = &request[..sp];
        let target = &request[sp + 1..];
        let url = match memrchr(b' ', target) {
            Some(v) if target[v + 1..].starts_with(b"HTTP/") => &target[..v],
            _ => target,
        };
        let mut tail = Fields::new(&line[q2 + 1..]);
        let referer = tail.next().ok_or(E_TAIL)?;
        let agent = tail.next().ok_or(E_TAIL)?;
        let content_type = tail.next().ok_or(E_TAIL)?;
        let hash = tail.next().ok_or(E_TAIL)?;
        if tail.next().is_some() {
            return Err(E_TAIL);
        }

        let mut extra = Extra::default();
        let names = if v10 { &V10_PREFIX } else { &V9_PREFIX };
        let write_text = &line[..prefix[2].as_ptr() as usize - line.as_ptr() as usize + prefix[2].len()];
        extra.push(names[0], write_text);
        extra.push(names[1], prefix[3]);
        extra.push(names[2], prefix[4]);
        if v10 {
            extra.push(names[3], prefix[5]);
            extra.push(names[4], prefix[6]);
            extra.push(names[5], prefix[7]);
        } else {
            extra.push(names[3], prefix[7]);
        }
        // Numbered after the vendor's column count for this layout (Ver.9 status is column 12).
        const COL: [&str; 16] = [
            "c12", "c13", "c14", "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25",
            "c26", "c27",
        ];
        const COL10: [&str; 16] = [
            "c14", "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25", "c26", "c27",
            "c28", "c29",
        ];
        let cols = if v10 { &COL10 } else { &COL };
        for (i, v) in mid[7..n - 4].iter().enumerate() {
            extra.push(cols[7 + i], v);
        }
        extra.push(cols[n - 2], mid[n - 2]);
        extra.push("hash", hash);

        let connect_to = if v10 { prefix[6] } else { prefix[7] };
        let server_ip = dash_is_none(connect_to).map(|c| match memrchr(b':', c) {
            Some(i) if memchr(b':', &c[..i]).is_none() => &c[..i],
            _ => c,
        });
        Ok(ProxyRow {
            ts,
            duration_ms: write.map(|w| (w - ts) / 1000).filter(|d| *d >= 0),
            client_ip: dash_is_none(prefix[8]),
            client_name: dash_is_none(prefix[9]),
            username: dash_is_none(prefix[10]),
            method: Some(method),
            url: Some(url),
            status: Some(status as i32),
            // The issue's field list gives response then request size; FORMATS.md section 3.1
            // marks the pair as inferred (a blocked GET: 0 bytes back, a few hundred sent).
            response_bytes: Some(size_a),
            request_bytes: Some(size_b),
            action: dash_is_none(mid[3]),
            rule_id: parse_i64(mid[4]).map(|v| v as i32),
            filter_reason: parse_i64(mid[5]).map(|v| v as i32),
            categories: dash_is_none(mid[6]),
            user_group: dash_is_none(mid[n - 4]),
            virus_name: dash_is_none(mid[n - 3]),
            post_file: dash_is_none(mid[n - 1]),
            referrer: dash_is_none(referer),
            user_agent: Some(dash_is_empty(agent)),
            content_type: dash_is_none(content_type),
            form_encoded: true,
            server_ip,
            extra,
            ..ProxyRow::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::formats::bytes::text as s;

    #[test]
    fn ver9_line() {
        let line = br#"Apr 1 15:09:09 18051 900/01/ 192.168.1.91:8000 192.168.1.24 - username [1/Apr/2014:15:09:08 +0900] 503 0 385 block 9 51 51 -1 -1 default - 0 - "GET http://www.abcd.local HTTP/1.0" http://www.abcd.local/search Mozilla%2F5.0 text%2Fhtml%3B+charset%3Dutf-8 63EBCF4D"#;
        let r = IFilter.parse(line).unwrap();
        assert_eq!(r.ts, 1_396_332_548_000_000);
        assert_eq!(r.duration_ms, Some(1000));
        assert_eq!(s(r.client_ip), Some("192.168.1.24"));
        assert_eq!(s(r.username), Some("username"));
        assert_eq!(s(r.url), Some("http://www.abcd.local"));
        assert_eq!((r.status, r.response_bytes, r.request_bytes), (Some(503), Some(0), Some(385)));
        assert_eq!(
            (s(r.action), r.rule_id, r.filter_reason, s(r.categories)),
            (Some("block"), Some(9), Some(51), Some("51"))
        );
        assert_eq!(s(r.user_group), Some("default"));
        assert_eq!(s(r.server_ip), Some("192.168.1.91"));
        assert_eq!(s(r.user_agent), Some("Mozilla%2F5.0"));
        let extra: Vec<(&str, &str)> =
            r.extra.pairs().iter().map(|(k, v)| (*k, std::str::from_utf8(v).unwrap())).collect();
        assert_eq!(
            extra,
            vec![
                ("write_time", "Apr 1 15:09:09"),
                ("pid", "18051"),
                ("version", "900/01/"),
                ("connect_to", "192.168.1.91:8000"),
                ("c19", "-1"),
                ("c20", "-1"),
                ("c23", "0"),
                ("hash", "63EBCF4D"),
            ]
        );
    }

    #[test]
    fn ver10_line_and_zone_without_space() {
        let line = br#"Sep 19 19:26:56 4872 1000/01/ - - 192.168.1.1 192.168.1.1 - user01 [19/Sep/2017:19:26:56 +0900] 503 0 1207 block 63 87 87/127/151 -1 0 1518 0 group01 - 0 - "GET https://www.youtube.com/sw.js HTTP/1.1" - Chrome text%2Fhtml%3B+charset%3Dutf-8 A667FEFF"#;
        let r = IFilter.parse(line).unwrap();
        assert_eq!(s(r.categories), Some("87/127/151"));
        assert_eq!((r.rule_id, r.filter_reason), (Some(63), Some(87)));
        assert_eq!(s(r.user_group), Some("group01"));
        assert_eq!(s(r.url), Some("https://www.youtube.com/sw.js"));
        assert_eq!(r.server_ip, None);
        assert_eq!(r.duration_ms, Some(0));
        let line = br#"Feb 13 20:27:27 15620 900/01/ 192.168.1.91:8000 192.168.1.24 - username [13/Feb/2014:20:27:27+0900] 503 0 385 block 63 51 51 -1 -1 default - 0 - "GET http://www.abc.local HTTP/1.0" http://www.abc.local Mozilla%2F5.0 text%2Fhtml%3B+charset%3Dutf-8 63EBCF4D"#;
        assert_eq!(IFilter.parse(line).unwrap().ts, 1_392_290_847_000_000);
    }

    #[test]
    fn squid_lines_are_not_ifilter() {
        assert!(IFilter.parse(b"1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT a:443 - DIRECT/1.2.3.4 -").is_err());
    }
}
