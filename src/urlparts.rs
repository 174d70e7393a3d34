//! Splitting a logged URL into scheme, host, port and path, without allocating.
//!
//! Used by every proxy parser at ingest and by the `url_host` SQL function, so the lake's
//! `host` column and `url_host(url)` always agree.

use memchr::{memchr, memchr3, memrchr};

/// The parts of a proxy log's URL; all slices borrow from it.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct UrlParts<'a> {
    pub scheme: Option<&'a [u8]>,
    /// Host name or address, as written (not yet lower-cased); IPv6 without brackets.
    pub host: Option<&'a [u8]>,
    /// Explicit port, else the scheme's well-known port.
    pub port: Option<u16>,
    pub path: Option<&'a [u8]>,
}

/// The well-known port of a URL scheme.
pub fn default_port(scheme: &[u8]) -> Option<u16> {
    let p = match scheme.len() {
        2 if scheme.eq_ignore_ascii_case(b"ws") => 80,
        3 if scheme.eq_ignore_ascii_case(b"ftp") => 21,
        3 if scheme.eq_ignore_ascii_case(b"wss") => 443,
        4 if scheme.eq_ignore_ascii_case(b"http") => 80,
        5 if scheme.eq_ignore_ascii_case(b"https") => 443,
        _ => return None,
    };
    Some(p)
}

/// Splits `authority` (`user@host:port`, `[v6]:port`, `host`) into host and explicit port.
fn split_authority(authority: &[u8]) -> (Option<&[u8]>, Option<u16>) {
    let hostport = match memrchr(b'@', authority) {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    if let [b'[', rest @ ..] = hostport {
        let Some(close) = memchr(b']', rest) else {
            return (None, None);
        };
        let port = match &rest[close + 1..] {
            [b':', p @ ..] => parse_port(p),
            _ => None,
        };
        return (non_empty(&rest[..close]), port);
    }
    // A bare IPv6 address (CONNECT 2001:db8::1:443 is ambiguous) or a port that is no number
    // (`error:invalid-request`) keeps the whole text as the host.
    if let Some(i) = memrchr(b':', hostport)
        && memchr(b':', &hostport[..i]).is_none()
        && let Some(port) = parse_port(&hostport[i + 1..])
    {
        return (non_empty(&hostport[..i]), Some(port));
    }
    (non_empty(hostport), None)
}

fn non_empty(s: &[u8]) -> Option<&[u8]> {
    if s.is_empty() { None } else { Some(s) }
}

fn parse_port(s: &[u8]) -> Option<u16> {
    crate::formats::bytes::parse_u64(s).and_then(|p| u16::try_from(p).ok())
}

/// Splits a URL as proxies log it: `scheme://authority/path?query`, or `host:port` for CONNECT.
pub fn split_url(url: &[u8]) -> UrlParts<'_> {
    let Some(sep) = find_scheme_sep(url) else {
        // CONNECT targets and other authority-only forms.
        let (host, port) = split_authority(url);
        return UrlParts { scheme: None, host, port, path: None };
    };
    let scheme = &url[..sep];
    let rest = &url[sep + 3..];
    let auth_end = memchr3(b'/', b'?', b'#', rest).unwrap_or(rest.len());
    let (host, port) = split_authority(&rest[..auth_end]);
    UrlParts {
        scheme: non_empty(scheme),
        host,
        port: port.or_else(|| default_port(scheme)),
        path: non_empty(&rest[auth_end..]),
    }
}

/// Position of `://` when what precedes it is a scheme name (with `_`, as in `cache_object`).
fn find_scheme_sep(url: &[u8]) -> Option<usize> {
    let colon = memchr(b':', url)?;
    let scheme = &url[..colon];
    let valid = !scheme.is_empty()
        && scheme[0].is_ascii_alphabetic()
        && scheme.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_'));
    (valid && url[colon..].starts_with(b"://")).then_some(colon)
}

/// The path of a logged URL's path-and-query without the query: `/a/b.php?x=1` gives `/a/b.php`.
pub fn uri_stem(path: &str) -> &str {
    path.split_once('?').map_or(path, |(stem, _)| stem)
}

/// What follows the first `?`, or None without one.
pub fn uri_query(path: &str) -> Option<&str> {
    path.split_once('?').map(|(_, q)| q)
}

/// The last path segment's extension without the dot, taken before the query:
/// `/d/setup.tar.gz?x` gives `gz`; `/d.x/readme` and `/d/` give None.
pub fn uri_extension(path: &str) -> Option<&str> {
    let stem = uri_stem(path);
    let segment = stem.rsplit('/').next().unwrap_or(stem);
    segment.rsplit_once('.').map(|(_, ext)| ext).filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (Option<&str>, Option<&str>, Option<u16>, Option<&str>) {
        fn s(b: Option<&[u8]>) -> Option<&str> {
            b.map(|b| std::str::from_utf8(b).unwrap())
        }
        let p = split_url(url.as_bytes());
        (s(p.scheme), s(p.host), p.port, s(p.path))
    }

    #[test]
    fn splits_common_forms() {
        assert_eq!(
            parts("http://www.goonernews.com/styles.css"),
            (Some("http"), Some("www.goonernews.com"), Some(80), Some("/styles.css"))
        );
        assert_eq!(parts("login.yahoo.com:443"), (None, Some("login.yahoo.com"), Some(443), None));
        assert_eq!(
            parts("https://u:p@Example.COM:8443?q=1"),
            (Some("https"), Some("Example.COM"), Some(8443), Some("?q=1"))
        );
        assert_eq!(
            parts("http://[2001:db8::1]:8080/x"),
            (Some("http"), Some("2001:db8::1"), Some(8080), Some("/x"))
        );
        assert_eq!(parts("cache_object://localhost/counters").1, Some("localhost"));
        assert_eq!(parts("error:invalid-request"), (None, Some("error:invalid-request"), None, None));
        assert_eq!(parts("2001:db8::1").1, Some("2001:db8::1"));
        assert_eq!(parts("").1, None);
    }

    #[test]
    fn derived_uri_parts() {
        assert_eq!(uri_stem("/a/b.php?x=1?y"), "/a/b.php");
        assert_eq!(uri_query("/a/b.php?x=1?y"), Some("x=1?y"));
        assert_eq!(uri_query("/a"), None);
        assert_eq!(uri_extension("/d/setup.tar.gz?x.exe"), Some("gz"));
        assert_eq!(uri_extension("/d.x/readme"), None);
        assert_eq!(uri_extension("/d/"), None);
        assert_eq!(uri_extension("/d/file."), None);
    }
}
