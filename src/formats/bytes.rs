//! Byte-slice helpers shared by the parsers: field splitting, numbers and times without allocation.

use memchr::memchr;

/// Iterator over fields separated by runs of spaces (Squid pads columns with several).
pub struct Fields<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        Fields { line, pos: 0 }
    }

    /// Byte offset of the next unread field (after skipping spaces).
    pub fn offset(&mut self) -> usize {
        while self.pos < self.line.len() && self.line[self.pos] == b' ' {
            self.pos += 1;
        }
        self.pos
    }

    /// Byte offset just past the field last returned.
    pub fn end(&self) -> usize {
        self.pos
    }

    /// The rest of the line from the next field on, trailing spaces removed.
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.offset();
        trim_end(&self.line[start..])
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.offset();
        if start >= self.line.len() {
            return None;
        }
        let end = memchr(b' ', &self.line[start..]).map_or(self.line.len(), |i| start + i);
        self.pos = end;
        Some(&self.line[start..end])
    }
}

/// Removes trailing spaces and tabs.
pub fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Removes leading and trailing spaces and tabs.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    trim_end(s)
}

/// `-` (and the empty field) mean "no value" in every format we read.
#[inline]
pub fn dash_is_none(s: &[u8]) -> Option<&[u8]> {
    if s == b"-" || s.is_empty() { None } else { Some(s) }
}

/// A header logged as `-` was sent empty or not at all: the value is there, and blank.
#[inline]
pub fn dash_is_empty(s: &[u8]) -> &[u8] {
    if s == b"-" { &s[..0] } else { s }
}

/// An unsigned decimal; `None` on anything else or on overflow.
#[inline]
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

/// An unsigned decimal that must fit in i64, as stored in the lake.
#[inline]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    parse_u64(s).and_then(|v| i64::try_from(v).ok())
}

/// `1157689312.049` (seconds, optional fraction) to microseconds since the Unix epoch.
#[inline]
pub fn parse_epoch_micros(s: &[u8]) -> Option<i64> {
    let (secs, frac) = match memchr(b'.', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let secs = parse_u64(secs)?;
    if frac.len() > 6 || (frac.is_empty() && s.last() == Some(&b'.')) {
        return None;
    }
    let mut micros = 0u64;
    for i in 0..6 {
        let d = match frac.get(i) {
            Some(&b) if b.is_ascii_digit() => (b - b'0') as u64,
            Some(_) => return None,
            None => 0,
        };
        micros = micros * 10 + d;
    }
    let total = secs.checked_mul(1_000_000)?.checked_add(micros)?;
    i64::try_from(total).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
#[inline]
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn month_from_abbr(s: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] =
        [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];
    if s.len() != 3 {
        return None;
    }
    let lower = [s[0].to_ascii_lowercase(), s[1].to_ascii_lowercase(), s[2].to_ascii_lowercase()];
    MONTHS.iter().position(|m| **m == lower).map(|i| i as u32 + 1)
}

fn two_digits(s: &[u8]) -> Option<u32> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some(((a - b'0') * 10 + (b - b'0')) as u32),
        _ => None,
    }
}

/// Apache/Squid `%tl` time, `10/Oct/2000:13:55:36 -0700`, to UTC microseconds.
///
/// Also accepts a one-digit day, milliseconds (`13:55:36.010`), and no space before the zone
/// (`[13/Feb/2014:20:27:27+0900]`, as i-FILTER's documentation prints it).
pub fn parse_clf_time(s: &[u8]) -> Option<i64> {
    let slash = memchr(b'/', s)?;
    let day = parse_u64(&s[..slash]).filter(|d| (1..=31).contains(d))? as u32;
    let s = &s[slash + 1..];
    let slash = memchr(b'/', s)?;
    let month = month_from_abbr(&s[..slash])?;
    let s = &s[slash + 1..];
    let colon = memchr(b':', s)?;
    let year = parse_u64(&s[..colon]).filter(|y| *y <= 9999)? as i64;
    let s = &s[colon + 1..];
    if s.len() < 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, mi, se) = (two_digits(&s[0..2])?, two_digits(&s[3..5])?, two_digits(&s[6..8])?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut s = &s[8..];
    let mut micros = 0i64;
    if let [b'.', rest @ ..] = s {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return None;
        }
        micros = parse_u64(&rest[..n])? as i64 * 10i64.pow(6 - n as u32);
        s = &rest[n..];
    }
    let s = trim(s);
    let offset_secs = match s {
        [sign @ (b'+' | b'-'), zone @ ..] if zone.len() == 4 => {
            let hh = two_digits(&zone[..2])? as i64;
            let mm = two_digits(&zone[2..])? as i64;
            let v = hh * 3600 + mm * 60;
            if *sign == b'-' { -v } else { v }
        }
        b"" | b"Z" | b"GMT" | b"UTC" => 0,
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + h as i64 * 3600 + mi as i64 * 60 + se as i64;
    Some((local - offset_secs) * 1_000_000 + micros)
}

/// Decodes `%XX` escapes (Squid's `%[un`, URL encoding) into `out`; malformed escapes stay as is.
pub fn percent_decode_into(s: &[u8], plus_as_space: bool, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A field as text, for the parsers' unit tests.
#[cfg(test)]
pub(crate) fn text(b: Option<&[u8]>) -> Option<&str> {
    b.map(|b| std::str::from_utf8(b).expect("test fields are UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_skip_runs_of_spaces() {
        let v: Vec<&[u8]> = Fields::new(b"1.0   5 a  b ").collect();
        assert_eq!(v, vec![&b"1.0"[..], b"5", b"a", b"b"]);
    }

    #[test]
    fn epoch_micros() {
        assert_eq!(parse_epoch_micros(b"1157689312.049"), Some(1_157_689_312_049_000));
        assert_eq!(parse_epoch_micros(b"1157689312"), Some(1_157_689_312_000_000));
        assert_eq!(parse_epoch_micros(b"1.5"), Some(1_500_000));
        assert_eq!(parse_epoch_micros(b"1x.5"), None);
        assert_eq!(parse_epoch_micros(b"1."), None);
        assert_eq!(parse_epoch_micros(b"99999999999999999999.1"), None);
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn clf_times() {
        // 2000-10-10 20:55:36 UTC
        assert_eq!(parse_clf_time(b"10/Oct/2000:13:55:36 -0700"), Some(971_211_336_000_000));
        assert_eq!(parse_clf_time(b"10/Oct/2000:13:55:36.010 -0700"), Some(971_211_336_010_000));
        // i-FILTER prints the zone without a space, and days without padding.
        assert_eq!(parse_clf_time(b"13/Feb/2014:20:27:27+0900"), Some(1_392_290_847_000_000));
        assert_eq!(parse_clf_time(b"1/Apr/2014:15:09:08 +0900"), Some(1_396_332_548_000_000));
        assert_eq!(parse_clf_time(b"32/Apr/2014:15:09:08 +0900"), None);
        assert_eq!(parse_clf_time(b"1/Foo/2014:15:09:08 +0900"), None);
        assert_eq!(parse_clf_time(b"1/Apr/2014:15:09"), None);
    }

    #[test]
    fn percent_decoding() {
        let mut out = Vec::new();
        percent_decode_into(b"DOMAIN%5Cuser", false, &mut out);
        assert_eq!(out, b"DOMAIN\\user");
        percent_decode_into(b"a+b%2", true, &mut out);
        assert_eq!(out, b"a b%2");
        percent_decode_into(b"%zz%", false, &mut out);
        assert_eq!(out, b"%zz%");
    }
}
