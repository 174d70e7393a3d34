//! Squid's built-in access-log formats: native (`squid`), `common` and `combined`.
//!
//! Field facts are in the corpus's FORMATS.md, section 1 and 2.3.

use memchr::{memchr, memmem, memrchr};

use super::ParseError;
use super::bytes::{
    Fields, dash_is_empty, dash_is_none, parse_clf_time, parse_epoch_micros, parse_i64, trim,
};
use super::proxy::{ProxyParser, ProxyRow};

/// `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt`
#[derive(Debug, Clone, Copy)]
pub struct SquidNative;

const E_TIME: ParseError = ParseError::new("field 1 (time)", "not seconds.millis since the epoch");
const E_DURATION: ParseError = ParseError::new("field 2 (duration)", "not a number of milliseconds");
const E_CLIENT: ParseError = ParseError::new("field 3 (client)", "missing");
const E_CODE: ParseError = ParseError::new("field 4 (result/status)", "not CODE/status");
const E_BYTES: ParseError = ParseError::new("field 5 (bytes)", "not a number");
const E_METHOD: ParseError = ParseError::new("field 6 (method)", "missing");
const E_URL: ParseError = ParseError::new("field 7 (url)", "missing");
const E_HIER: ParseError =
    ParseError::new("field 9 (hierarchy/peer)", "no HIERARCHY/peer field after the user");
const E_CR: ParseError = ParseError::new(
    "line",
    "holds a carriage return (CR) that ends no line: Squid writes none, so the line is kept whole here \
     rather than merged with what follows the CR",
);

/// Key in `extra` of whatever follows `%mt` (`log_mime_hdrs on` puts the headers there).
pub const TRAILING: &str = "trailing";

/// Splits `CODE/rest` on the first `/`.
#[inline]
fn split_slash(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr(b'/', s)?;
    Some((&s[..i], &s[i + 1..]))
}

/// A hierarchy field looks like `HIER_DIRECT/...`, `DIRECT/...`, `TIMEOUT_FIRST_PARENT_MISS/...`.
#[inline]
fn looks_like_hierarchy(s: &[u8]) -> bool {
    match memchr(b'/', s) {
        Some(i) if i > 0 => s[..i].iter().all(|b| b.is_ascii_uppercase() || *b == b'_'),
        _ => false,
    }
}

/// A status code: up to three digits (Squid prints `000` when no reply was sent).
#[inline]
fn parse_status(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 3 {
        return None;
    }
    parse_i64(s).map(|v| v as i32)
}

impl ProxyParser for SquidNative {
    fn name(&self) -> &str {
        "squid"
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError> {
        // A lone CR is no line end (framing strips a CR before LF only), so a CR inside means two
        // records glued together or a damaged one; neither may pass as one row.
        if memchr(b'\r', line).is_some() {
            return Err(E_CR);
        }
        let mut f = Fields::new(line);
        let ts = f.next().and_then(parse_epoch_micros).ok_or(E_TIME)?;
        let duration = f.next().and_then(parse_i64).ok_or(E_DURATION)?;
        let client = f.next().ok_or(E_CLIENT)?;
        let (code, status) = f.next().and_then(split_slash).ok_or(E_CODE)?;
        let status = parse_status(status).ok_or(E_CODE)?;
        if code.is_empty() {
            return Err(E_CODE);
        }
        let bytes = f.next().and_then(parse_i64).ok_or(E_BYTES)?;
        let method = f.next().ok_or(E_METHOD)?;
        let url = f.next().ok_or(E_URL)?;
        // The user (`%[un`) does not encode spaces, so it may span several fields: it runs up
        // to the first field shaped like a hierarchy code.
        let user_start = f.offset();
        let mut user_end = user_start;
        let hier = loop {
            let field = f.next().ok_or(E_HIER)?;
            if looks_like_hierarchy(field) && user_end > user_start {
                break field;
            }
            user_end = f.end();
        };
        let user = trim(&line[user_start..user_end]);
        let (hierarchy, peer) = split_slash(hier).ok_or(E_HIER)?;
        let mime = f.next();
        // Fields after the type (`log_mime_hdrs on` appends bracketed headers) are kept as written.
        let mut extra = super::proxy::Extra::default();
        let trailing = f.rest();
        if !trailing.is_empty() {
            extra.push(TRAILING, trailing);
        }
        Ok(ProxyRow {
            ts,
            duration_ms: Some(duration),
            client_ip: Some(client),
            username: dash_is_none(user),
            username_encoded: true,
            method: Some(method),
            url: Some(url),
            status: Some(status),
            request_bytes: None,
            response_bytes: Some(bytes),
            content_type: mime.and_then(dash_is_none),
            cache_result: Some(code),
            hierarchy: dash_is_none(hierarchy),
            server_ip: dash_is_none(peer),
            extra,
            ..ProxyRow::default()
        })
    }
}

/// `common`: `%>a - %[un [%tl] "%rm %ru HTTP/%rv" %>Hs %<st %Ss:%Sh`;
/// `combined` adds `"%{Referer}>h" "%{User-Agent}>h"` before `%Ss:%Sh`.
#[derive(Debug, Clone, Copy)]
pub struct SquidHttpd {
    combined: bool,
}

impl SquidHttpd {
    pub const COMMON: SquidHttpd = SquidHttpd { combined: false };
    pub const COMBINED: SquidHttpd = SquidHttpd { combined: true };
}

const H_CLIENT: ParseError = ParseError::new("field 1 (client)", "missing");
const H_TIME: ParseError =
    ParseError::new("[time]", "no [dd/Mon/yyyy:hh:mm:ss zone] after client, ident and user");
const H_REQUEST: ParseError = ParseError::new("\"request\"", "no quoted \"METHOD URL VERSION\"");
const H_STATUS: ParseError = ParseError::new("status", "not a number");
const H_BYTES: ParseError = ParseError::new("bytes", "not a number");
const H_TAIL: ParseError = ParseError::new("%Ss:%Sh", "no CODE:HIERARCHY at the end of the line");
const H_AGENT: ParseError =
    ParseError::new("\"referer\" \"user-agent\"", "not two quoted fields before %Ss:%Sh");
const H_EXTRA: ParseError =
    ParseError::new("\"referer\" \"user-agent\"", "quoted fields where common has none");

impl ProxyParser for SquidHttpd {
    fn name(&self) -> &str {
        if self.combined { "squid_combined" } else { "squid_common" }
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError> {
        let line = trim(line);
        let sp = memchr(b' ', line).ok_or(H_CLIENT)?;
        let client = &line[..sp];
        // `- user [time]`: the user may contain spaces, so find the bracket instead.
        let open = memmem::find(&line[sp..], b" [").ok_or(H_TIME)? + sp;
        let close = memchr(b']', &line[open..]).ok_or(H_TIME)? + open;
        let ts = parse_clf_time(&line[open + 2..close]).ok_or(H_TIME)?;
        let ident_user = trim(&line[sp..open]);
        let user = match memchr(b' ', ident_user) {
            Some(i) => trim(&ident_user[i + 1..]),
            None => return Err(H_TIME),
        };
        let rest = &line[close + 1..];
        let rest = rest.strip_prefix(b" \"").ok_or(H_REQUEST)?;
        // The request ends at the quote followed by ` <status>`: URLs may hold quotes.
        let mut end = None;
        let mut from = 0;
        while let Some(q) = memmem::find(&rest[from..], b"\" ") {
            let q = from + q;
            if rest.get(q + 2).is_some_and(u8::is_ascii_digit) {
                end = Some(q);
                break;
            }
            from = q + 1;
        }
        let end = end.ok_or(H_REQUEST)?;
        let request = &rest[..end];
        let m = memchr(b' ', request).ok_or(H_REQUEST)?;
        let method = &request[..m];
        let target = &request[m + 1..];
        let url = match memrchr(b' ', target) {
            Some(v) if target[v + 1..].contains(&b'/') => &target[..v],
            _ => target,
        };
        let mut f = Fields::new(&rest[end + 2..]);
        let status = f.next().and_then(parse_status).ok_or(H_STATUS)?;
        let bytes = f.next().and_then(parse_i64).ok_or(H_BYTES)?;
        let tail = f.rest();
        let last_sp = memrchr(b' ', tail);
        let codes = match last_sp {
            Some(i) => &tail[i + 1..],
            None => tail,
        };
        let colon = memchr(b':', codes).ok_or(H_TAIL)?;
        let (code, hier) = (&codes[..colon], &codes[colon + 1..]);
        if code.is_empty() || code.contains(&b'"') {
            return Err(H_TAIL);
        }
        let (referrer, user_agent) = if self.combined {
            let quoted = &tail[..last_sp.ok_or(H_AGENT)?];
            let inner = quoted.strip_prefix(b"\"").and_then(|q| q.strip_suffix(b"\"")).ok_or(H_AGENT)?;
            // Squid writes both raw inside quotes; a Referer holds no `" "`, a User-Agent might.
            let split = memmem::find(inner, b"\" \"").ok_or(H_AGENT)?;
            (dash_is_none(&inner[..split]), Some(&inner[split + 3..]))
        } else {
            if last_sp.is_some() {
                return Err(H_EXTRA);
            }
            (None, None)
        };
        Ok(ProxyRow {
            ts,
            client_ip: Some(client),
            username: dash_is_none(user),
            username_encoded: true,
            method: Some(method),
            url: Some(url),
            status: Some(status),
            response_bytes: Some(bytes),
            user_agent: user_agent.map(dash_is_empty),
            referrer,
            cache_result: Some(code),
            hierarchy: dash_is_none(hier),
            ..ProxyRow::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::formats::bytes::text as s;

    #[test]
    fn native_padded_duration_and_dash_user() {
        let r = SquidNative
            .parse(b"1431966856.793  48016 ::1 TCP_MISS/200 16674 CONNECT 0.docs.google.com:443 - DIRECT/173.194.206.189 -")
            .unwrap();
        assert_eq!(r.ts, 1_431_966_856_793_000);
        assert_eq!(r.duration_ms, Some(48016));
        assert_eq!(s(r.client_ip), Some("::1"));
        assert_eq!(s(r.username), None);
        assert_eq!(s(r.url), Some("0.docs.google.com:443"));
        assert_eq!(s(r.hierarchy), Some("DIRECT"));
        assert_eq!(s(r.server_ip), Some("173.194.206.189"));
        assert_eq!(r.content_type, None);
    }

    #[test]
    fn native_user_with_space_and_ipv6_peer() {
        let r = SquidNative
            .parse(b"1576177221.686     3828 2001:db8:2ce:1 TCP_CF_NEGATIVE_NEGATIVE_ABORTED/400 16025 COPY cache_object://localhost/counters John Smith HIER_NO_CACHE_DIGEST_DIRECT/2001:db8:2ce:a image/plain")
            .unwrap();
        assert_eq!(s(r.username), Some("John Smith"));
        assert_eq!(s(r.server_ip), Some("2001:db8:2ce:a"));
        assert_eq!(s(r.content_type), Some("image/plain"));
        assert_eq!(r.status, Some(400));
    }

    #[test]
    fn native_rejects_junk_with_the_field() {
        let e = SquidNative.parse(b"Unmatched! The rat the cat").unwrap_err();
        assert_eq!(e, E_TIME);
        let e = SquidNative.parse(b"1.0 5 1.2.3.4 TCP_MISS/abc 1 GET http://x/ - DIRECT/- -").unwrap_err();
        assert_eq!(e, E_CODE);
        let e = SquidNative.parse(b"1.0 5 1.2.3.4 TCP_MISS/200 1 GET http://x/ -").unwrap_err();
        assert_eq!(e, E_HIER);
    }

    #[test]
    fn native_trailing_fields_are_kept_and_a_lone_cr_rejects() {
        let base = "1712000000.000    567 10.0.0.1 TCP_MISS/200 5432 GET http://a.example/1 u1 HIER_DIRECT/1.2.3.4 text/html";
        let r = SquidNative.parse(base.as_bytes()).unwrap();
        assert!(r.extra.pairs().is_empty());
        let mime = format!("{base} [Host: a.example\\r\\n] [HTTP/1.1 200 OK\\r\\n]  ");
        let r = SquidNative.parse(mime.as_bytes()).unwrap();
        assert_eq!(s(r.content_type), Some("text/html"));
        let pairs: Vec<(&str, Option<&str>)> =
            r.extra.pairs().iter().map(|(k, v)| (*k, s(Some(v)))).collect();
        assert_eq!(pairs, [(TRAILING, Some("[Host: a.example\\r\\n] [HTTP/1.1 200 OK\\r\\n]"))]);
        let glued = format!("{base}\r{base}");
        assert_eq!(SquidNative.parse(glued.as_bytes()).unwrap_err(), E_CR);
    }

    #[test]
    fn combined_with_quotes_in_agent() {
        let line = br#"192.0.2.7 - alice [23/Apr/2014:04:00:55 -0400] "GET http://example.com/a?b HTTP/1.1" 200 512 "http://ref.example/" "Mozilla/5.0 "quoted" agent" TCP_MISS:HIER_DIRECT"#;
        let r = SquidHttpd::COMBINED.parse(line).unwrap();
        assert_eq!(r.ts, 1_398_240_055_000_000);
        assert_eq!(s(r.username), Some("alice"));
        assert_eq!(s(r.url), Some("http://example.com/a?b"));
        assert_eq!(s(r.referrer), Some("http://ref.example/"));
        assert_eq!(s(r.user_agent), Some("Mozilla/5.0 \"quoted\" agent"));
        assert_eq!(s(r.cache_result), Some("TCP_MISS"));
        assert_eq!(s(r.hierarchy), Some("HIER_DIRECT"));
        assert!(SquidHttpd::COMMON.parse(line).is_err());
    }

    #[test]
    fn common_line() {
        let line = br#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "CONNECT www.example.com:443 HTTP/1.1" 403 3811 TCP_DENIED:HIER_NONE"#;
        let r = SquidHttpd::COMMON.parse(line).unwrap();
        assert_eq!(s(r.username), None);
        assert_eq!(r.status, Some(403));
        assert_eq!(s(r.url), Some("www.example.com:443"));
        assert_eq!(r.user_agent, None);
        assert!(SquidHttpd::COMBINED.parse(line).is_err());
    }
}
