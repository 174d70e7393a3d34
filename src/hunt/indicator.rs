//! One indicator value: refanged, its kind told from its shape, and normalised to the key it is
//! matched by. Nothing is guessed: a value of no known shape is an error saying why.

use std::fmt;
use std::net::IpAddr;

use crate::urlparts::{default_port, split_url};

/// What an indicator is, which decides the columns it is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A host name: matches itself and every subdomain.
    Domain,
    /// One IPv4 or IPv6 address.
    Ip,
    /// A network, `198.51.100.0/24` or `2001:db8::/32`.
    Cidr,
    /// A whole URL, matched normalised (scheme and host case, default port, trailing slash).
    Url,
    /// A URL ending in `*`: every URL starting with it.
    UrlPrefix,
}

impl Kind {
    /// The name shown in results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Domain => "domain",
            Kind::Ip => "ip",
            Kind::Cidr => "cidr",
            Kind::Url => "url",
            Kind::UrlPrefix => "url_prefix",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An indicator read from a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub kind: Kind,
    /// The normalised value it is matched and shown by: `evil.example`, `2001:db8::/32`,
    /// `http://evil.example/a` (a URL given without a scheme has none here either).
    pub key: String,
    /// Where it was read, `file:line`; several when lists repeat it.
    pub origins: Vec<String>,
    /// A name or comment the list gave it (STIX `name`, MISP `comment`).
    pub label: Option<String>,
}

/// Undoes the usual defanging: `hxxp://`, `example[.]com`, `1.2.3[.]4`, `[:]//`, `[at]`.
pub fn refang(raw: &str) -> String {
    let mut s = raw.trim().to_string();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("[DOT]", "."),
        ("\\.", "."),
        ("[://]", "://"),
        ("[:]", ":"),
        ("[/]", "/"),
        ("[at]", "@"),
        ("[@]", "@"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let lower = s.get(..6).unwrap_or(&s).to_ascii_lowercase();
    for (from, to) in [("hxxps", "https"), ("hxxp", "http"), ("h__p", "http"), ("fxp", "ftp")] {
        if lower.starts_with(from) {
            s.replace_range(..from.len(), to);
            break;
        }
    }
    s
}

/// Reads one value: refangs it, tells its kind and gives the normalised key.
pub fn parse_value(raw: &str) -> Result<(Kind, String), String> {
    let s = refang(raw.trim().trim_matches(|c| c == '"' || c == '\''));
    let s = s.trim();
    if s.is_empty() {
        return Err("empty value".into());
    }
    if s.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err("holds a space: one indicator per line (or choose a CSV column with --column)".into());
    }
    if s.contains("://") || s.contains('/') && !looks_like_cidr(s) {
        return parse_url(s);
    }
    if let Some((addr, len)) = s.split_once('/') {
        return parse_cidr(addr, len);
    }
    if let Some(ip) = parse_ip(s) {
        return Ok((Kind::Ip, ip.to_string()));
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    let name = name.strip_prefix('.').unwrap_or(name);
    if name.contains('*') {
        return Err("a wildcard is read only as a leading `*.` on a domain or a trailing `*` on a URL".into());
    }
    match normalise_domain(name) {
        Some(d) => Ok((Kind::Domain, d)),
        None => Err(format!(
            "not a domain, IP address, network (CIDR) or URL: {}",
            if s.len() > 80 { &s[..s.floor_char_boundary(80)] } else { s }
        )),
    }
}

fn looks_like_cidr(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(a, l)| parse_ip(a).is_some() && !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
}

/// An address as written in logs and lists: IPv6 possibly in brackets; IPv4-mapped IPv6 is
/// taken as the IPv4 address it maps.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    let ip: IpAddr = s.parse().ok()?;
    Some(ip.to_canonical())
}

fn parse_cidr(addr: &str, len: &str) -> Result<(Kind, String), String> {
    let ip = parse_ip(addr).ok_or_else(|| format!("{addr:?} before the / is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|&l| l <= max)
        .ok_or_else(|| format!("prefix length {len:?} is not a number from 0 to {max}"))?;
    let (lo, _) = ip_range(ip, len);
    let network = from_u128(lo, ip.is_ipv4());
    if len == max {
        return Ok((Kind::Ip, network.to_string()));
    }
    Ok((Kind::Cidr, format!("{network}/{len}")))
}

/// An address as a number on one line: IPv4 as IPv4-mapped IPv6, so networks of both families
/// sort together.
pub fn ip_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(v);
    match (v4, v6.to_ipv4_mapped()) {
        (true, Some(a)) => IpAddr::V4(a),
        _ => IpAddr::V6(v6),
    }
}

/// First and last address of `ip/len`, as `ip_u128` numbers.
pub fn ip_range(ip: IpAddr, len: u8) -> (u128, u128) {
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let host_bits = u32::from(bits - len);
    let mask = if host_bits >= 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
    let v = ip_u128(ip);
    (v & !mask, v | mask)
}

/// `cidr` key (as `parse_value` gives it) back to its range.
pub fn cidr_range(key: &str) -> Option<(u128, u128)> {
    let (addr, len) = key.split_once('/')?;
    Some(ip_range(parse_ip(addr)?, len.parse().ok()?))
}

/// A host name lower-cased without its trailing dot, if it is one: labels of letters, digits,
/// `-` and `_`, at least two, the last not all digits.
pub fn normalise_domain(s: &str) -> Option<String> {
    let d = s.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = labels.len() >= 2
        && d.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80)
        })
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(d)
}

fn parse_url(s: &str) -> Result<(Kind, String), String> {
    let (body, prefix) = match s.strip_suffix('*') {
        Some(b) => (b, true),
        None => (s, false),
    };
    if body.contains('*') {
        return Err("a `*` is read only at the end of a URL (a URL prefix)".into());
    }
    let has_scheme = body.contains("://");
    let full = if has_scheme { body.to_string() } else { format!("http://{body}") };
    let key = normalise_url(&full, !prefix).ok_or_else(|| format!("{s:?} is not a URL with a host"))?;
    let key =
        if has_scheme { key } else { key.split_once("://").map_or(key.clone(), |(_, r)| r.to_string()) };
    Ok((if prefix { Kind::UrlPrefix } else { Kind::Url }, key))
}

/// `scheme://host[:port]path?query` with the scheme and host lower-cased, the port left out
/// when it is the scheme's default, the fragment dropped and (when `trim_slash`) a trailing `/`
/// of the path removed. None when the URL has no scheme or no usable host.
pub fn normalise_url(url: &str, trim_slash: bool) -> Option<String> {
    let parts = split_url(url.as_bytes());
    let scheme = std::str::from_utf8(parts.scheme?).ok()?.to_ascii_lowercase();
    let host = std::str::from_utf8(parts.host?).ok()?.to_ascii_lowercase();
    if parse_ip(&host).is_none() && host.bytes().any(|b| b == b'/' || b == b' ') {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(&scheme);
    out.push_str("://");
    if host.contains(':') {
        out.push('[');
        out.push_str(&host);
        out.push(']');
    } else {
        out.push_str(&host);
    }
    if let Some(p) = parts.port
        && Some(p) != default_port(scheme.as_bytes())
    {
        out.push(':');
        out.push_str(&p.to_string());
    }
    let path = parts.path.and_then(|p| std::str::from_utf8(p).ok()).unwrap_or("");
    let path = path.split_once('#').map_or(path, |(p, _)| p);
    let (p, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    out.push_str(if trim_slash { p.trim_end_matches('/') } else { p });
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> (Kind, String) {
        parse_value(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn kinds_are_told_from_the_value() {
        assert_eq!(kind("Evil.Example."), (Kind::Domain, "evil.example".into()));
        assert_eq!(kind("evil[.]example"), (Kind::Domain, "evil.example".into()));
        assert_eq!(kind("*.evil.example"), (Kind::Domain, "evil.example".into()));
        assert_eq!(kind("198.51.100[.]7"), (Kind::Ip, "198.51.100.7".into()));
        assert_eq!(kind("[2001:DB8::1]"), (Kind::Ip, "2001:db8::1".into()));
        assert_eq!(kind("::ffff:198.51.100.7"), (Kind::Ip, "198.51.100.7".into()));
        assert_eq!(kind("198.51.100.9/24"), (Kind::Cidr, "198.51.100.0/24".into()));
        assert_eq!(kind("2001:db8:AB::/48"), (Kind::Cidr, "2001:db8:ab::/48".into()));
        assert_eq!(kind("198.51.100.9/32"), (Kind::Ip, "198.51.100.9".into()));
        assert_eq!(kind("hxxps://Evil[.]Example:443/a/b/"), (Kind::Url, "https://evil.example/a/b".into()));
        assert_eq!(
            kind("http://evil.example:8080/x?q=1#frag"),
            (Kind::Url, "http://evil.example:8080/x?q=1".into())
        );
        assert_eq!(kind("evil.example/dl/"), (Kind::Url, "evil.example/dl".into()));
        assert_eq!(kind("http://evil.example/dl/*"), (Kind::UrlPrefix, "http://evil.example/dl/".into()));
        assert_eq!(kind("http://[2001:db8::1]:80/"), (Kind::Url, "http://[2001:db8::1]".into()));
    }

    #[test]
    fn values_of_no_known_shape_are_refused_with_a_reason() {
        for bad in ["localhost", "1.2.3", "not an ioc", "ev*l.example", "10.0.0.0/33", "http:///x", ""] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
        assert!(parse_value("10.0.0.0/33").unwrap_err().contains("0 to 32"));
    }

    #[test]
    fn ranges_of_both_families() {
        assert_eq!(cidr_range("10.0.0.0/8").map(|(a, b)| b - a), Some((1 << 24) - 1));
        let (lo, hi) = cidr_range("2001:db8::/32").unwrap();
        assert!(
            lo <= ip_u128("2001:db8:ffff::1".parse().unwrap())
                && hi >= ip_u128("2001:db8::".parse().unwrap())
        );
        assert!(hi < ip_u128("2001:db9::".parse().unwrap()));
    }
}
