//! Every indicator at once, in structures a logged value is looked up in without a pass over the
//! indicators: hash maps of domains (probed with the host and each parent domain), addresses and
//! normalised URLs; networks as a sorted interval list; URL prefixes grouped by their host.

use std::collections::HashMap;

use super::indicator::{Indicator, Kind, cidr_range, ip_u128, normalise_url, parse_ip};
use crate::urlparts::split_url;

/// Index of an indicator in the list the matcher was built from.
pub type Id = u32;

/// Networks sorted by first address, with the largest last address up to each, so a lookup
/// walks back only over networks that can still hold the address (nested ones included).
#[derive(Debug, Default)]
struct Ranges {
    starts: Vec<u128>,
    ends: Vec<u128>,
    max_end: Vec<u128>,
    ids: Vec<Id>,
}

impl Ranges {
    fn build(mut v: Vec<(u128, u128, Id)>) -> Ranges {
        v.sort_unstable();
        let mut r = Ranges::default();
        let mut max = 0;
        for (s, e, id) in v {
            max = max.max(e);
            r.starts.push(s);
            r.ends.push(e);
            r.max_end.push(max);
            r.ids.push(id);
        }
        r
    }

    fn find(&self, x: u128, out: &mut Vec<Id>) {
        let mut i = self.starts.partition_point(|&s| s <= x);
        while i > 0 && self.max_end[i - 1] >= x {
            i -= 1;
            if self.ends[i] >= x {
                out.push(self.ids[i]);
            }
        }
    }
}

/// The indicators, ready for lookups.
#[derive(Debug, Default)]
pub struct Matcher {
    domains: HashMap<String, Id>,
    ips: HashMap<u128, Id>,
    ranges: Ranges,
    urls: HashMap<String, Id>,
    /// Prefixes by the URL head they start with (`http://host[:port]`, or `host[:port]` for
    /// prefixes given without a scheme), each with the rest of the prefix.
    prefixes: HashMap<String, Vec<(String, Id)>>,
    /// Hosts of the URL and prefix indicators: a logged URL on another host is not normalised
    /// at all (most URLs are distinct, so this is most of the work saved).
    url_hosts: std::collections::HashSet<String>,
}

impl Matcher {
    /// Indexes the indicators; ids are their positions in `indicators`.
    pub fn new(indicators: &[Indicator]) -> Matcher {
        let mut m = Matcher::default();
        let mut ranges = Vec::new();
        for (i, ind) in indicators.iter().enumerate() {
            let id = i as Id;
            match ind.kind {
                Kind::Domain => {
                    m.domains.insert(ind.key.clone(), id);
                }
                Kind::Ip => {
                    if let Some(ip) = parse_ip(&ind.key) {
                        m.ips.insert(ip_u128(ip), id);
                    }
                }
                Kind::Cidr => {
                    if let Some((lo, hi)) = cidr_range(&ind.key) {
                        ranges.push((lo, hi, id));
                    }
                }
                Kind::Url => {
                    m.urls.insert(ind.key.clone(), id);
                }
                Kind::UrlPrefix => {
                    let (head, rest) = split_head(&ind.key);
                    m.prefixes.entry(head.to_string()).or_default().push((rest.to_string(), id));
                }
            }
            if matches!(ind.kind, Kind::Url | Kind::UrlPrefix) {
                let full =
                    if ind.key.contains("://") { ind.key.clone() } else { format!("http://{}", ind.key) };
                if let Some(h) = split_url(full.as_bytes()).host {
                    m.url_hosts.insert(String::from_utf8_lossy(h).into_owned());
                }
            }
        }
        m.ranges = Ranges::build(ranges);
        m
    }

    /// Whether any indicator is matched against host names.
    pub fn has_domains(&self) -> bool {
        !self.domains.is_empty()
    }

    /// Whether any indicator is matched against addresses.
    pub fn has_ips(&self) -> bool {
        !self.ips.is_empty() || !self.ranges.starts.is_empty()
    }

    /// Whether any indicator is matched against URLs.
    pub fn has_urls(&self) -> bool {
        !self.urls.is_empty() || !self.prefixes.is_empty()
    }

    /// Indicators a logged host matches: a domain it is or lies under, or, for an address, the
    /// address or a network holding it.
    pub fn host(&self, host: &str, out: &mut Vec<Id>) {
        let host = host.trim_end_matches('.');
        if let Some(ip) = parse_ip(host) {
            self.ip_value(ip_u128(ip), out);
            return;
        }
        if self.domains.is_empty() {
            return;
        }
        let lower;
        let mut name = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        loop {
            if let Some(&id) = self.domains.get(name) {
                out.push(id);
            }
            match name.find('.') {
                Some(i) => name = &name[i + 1..],
                None => break,
            }
        }
    }

    /// Indicators a logged address matches (nothing for values that are no address).
    pub fn ip(&self, s: &str, out: &mut Vec<Id>) {
        if let Some(ip) = parse_ip(s) {
            self.ip_value(ip_u128(ip), out);
        }
    }

    fn ip_value(&self, v: u128, out: &mut Vec<Id>) {
        if let Some(&id) = self.ips.get(&v) {
            out.push(id);
        }
        self.ranges.find(v, out);
    }

    /// Indicators a logged URL matches, whole or by prefix, with or without its scheme.
    pub fn url(&self, url: &str, out: &mut Vec<Id>) {
        let Some(host) = split_url(url.as_bytes()).host else { return };
        let known = match std::str::from_utf8(host) {
            Ok(h) if h.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.url_hosts.contains(&h.to_ascii_lowercase())
            }
            Ok(h) => self.url_hosts.contains(h),
            Err(_) => false,
        };
        if !known {
            return;
        }
        let Some(full) = normalise_url(url, true) else { return };
        let bare = full.split_once("://").map_or(full.as_str(), |(_, r)| r);
        for key in [full.as_str(), bare] {
            if let Some(&id) = self.urls.get(key) {
                out.push(id);
            }
        }
        if self.prefixes.is_empty() {
            return;
        }
        // Prefixes keep their trailing slash, so compare against the URL as logged but normalised
        // without trimming it.
        let Some(untrimmed) = normalise_url(url, false) else { return };
        let bare = untrimmed.split_once("://").map_or(untrimmed.as_str(), |(_, r)| r);
        for candidate in [untrimmed.as_str(), bare] {
            let (head, rest) = split_head(candidate);
            for (p, id) in self.prefixes.get(head).into_iter().flatten() {
                if rest.starts_with(p.as_str()) {
                    out.push(*id);
                }
            }
        }
    }
}

/// `http://host:port` and the rest (`/path?query`) of a normalised URL.
fn split_head(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find(['/', '?']).map_or(url.len(), |i| after_scheme + i);
    (&url[..end], &url[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hunt::indicator::parse_value;

    fn matcher(values: &[&str]) -> Matcher {
        let inds: Vec<Indicator> = values
            .iter()
            .map(|v| {
                let (kind, key) = parse_value(v).unwrap();
                Indicator { kind, key, origins: vec![], label: None }
            })
            .collect();
        Matcher::new(&inds)
    }

    fn hits(f: impl Fn(&mut Vec<Id>)) -> Vec<Id> {
        let mut v = Vec::new();
        f(&mut v);
        v.sort();
        v
    }

    #[test]
    fn domains_match_themselves_and_subdomains_only() {
        let m = matcher(&["evil.example", "b.evil.example"]);
        assert_eq!(hits(|o| m.host("A.B.Evil.Example", o)), [0, 1]);
        assert_eq!(hits(|o| m.host("evil.example.", o)), [0]);
        assert!(hits(|o| m.host("notevil.example", o)).is_empty());
        assert!(hits(|o| m.host("example", o)).is_empty());
    }

    #[test]
    fn addresses_and_nested_networks_of_both_families() {
        let m = matcher(&["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "2001:db8::/32", "192.0.2.0/24"]);
        assert_eq!(hits(|o| m.ip("10.1.2.3", o)), [0, 1, 2]);
        assert_eq!(hits(|o| m.ip("10.200.0.1", o)), [0]);
        assert_eq!(hits(|o| m.ip("::ffff:10.1.9.9", o)), [0, 1]);
        assert_eq!(hits(|o| m.host("2001:db8:1::5", o)), [3]);
        assert!(hits(|o| m.ip("11.0.0.1", o)).is_empty());
        assert!(hits(|o| m.ip("proxy-peer", o)).is_empty());
    }

    #[test]
    fn urls_whole_and_by_prefix() {
        let m = matcher(&["http://evil.example/a/", "evil.example/b", "https://evil.example/dl/*"]);
        assert_eq!(hits(|o| m.url("HTTP://EVIL.example:80/a", o)), [0]);
        assert_eq!(hits(|o| m.url("https://evil.example/b/", o)), [1]);
        assert_eq!(hits(|o| m.url("https://evil.example:443/dl/x.exe", o)), [2]);
        assert!(hits(|o| m.url("https://evil.example/dlx", o)).is_empty());
        assert!(hits(|o| m.url("http://evil.example/a/b", o)).is_empty());
    }
}
