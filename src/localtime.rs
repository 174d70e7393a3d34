//! The lake's time zone: local calendar days for partitioning, and local wall time for SQL.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use crate::formats::bytes::{civil_from_days, days_from_civil};

/// Parses an IANA zone name (`Asia/Tokyo`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?}: use an IANA name such as Asia/Tokyo, Europe/Berlin or UTC")
    })
}

/// The machine's zone, or UTC when it cannot be told.
pub fn machine_tz() -> Tz {
    iana_time_zone::get_timezone().ok().and_then(|n| n.parse().ok()).unwrap_or(Tz::UTC)
}

/// UTC offset in seconds at a UTC instant.
pub fn offset_at(tz: &Tz, utc_secs: i64) -> i32 {
    match tz.timestamp_opt(utc_secs, 0).single() {
        Some(t) => t.offset().fix().local_minus_utc(),
        None => 0,
    }
}

/// Maps UTC microseconds to the local day number (days since 1970-01-01 in the zone).
///
/// Caches one 15-minute window: zone offsets change only on quarter-hour boundaries, and log
/// lines come roughly in time order, so almost every row is a cache hit.
#[derive(Clone)]
pub struct LocalDays {
    tz: Tz,
    lo: i64,
    hi: i64,
    day: i32,
}

const WINDOW_US: i64 = 15 * 60 * 1_000_000;

impl LocalDays {
    pub fn new(tz: Tz) -> Self {
        LocalDays { tz, lo: 0, hi: 0, day: 0 }
    }

    /// Local day number of a UTC instant in microseconds.
    #[inline]
    pub fn day(&mut self, utc_us: i64) -> i32 {
        if utc_us >= self.lo && utc_us < self.hi {
            return self.day;
        }
        let secs = utc_us.div_euclid(1_000_000);
        let offset = offset_at(&self.tz, secs) as i64;
        let local_us = utc_us + offset * 1_000_000;
        let day = local_us.div_euclid(86_400 * 1_000_000);
        let window = utc_us.div_euclid(WINDOW_US) * WINDOW_US;
        let day_lo = day * 86_400 * 1_000_000 - offset * 1_000_000;
        self.lo = window.max(day_lo);
        self.hi = (window + WINDOW_US).min(day_lo + 86_400 * 1_000_000);
        self.day = day as i32;
        self.day
    }

    /// The zone this mapper uses.
    pub fn tz(&self) -> Tz {
        self.tz
    }
}

/// Reads zone-less local wall times (Windows Firewall logs) as UTC, in one zone.
///
/// Caches the offset of the last local hour seen; only hours with a DST change are looked at
/// second by second. A wall time that occurs twice (the hour the clocks go back) is read as the
/// earlier instant; one that never occurs (the hour skipped forward) with the offset in force
/// before the change. Both are told to the caller as a [`Wall`], so rows can say so.
#[derive(Clone)]
pub struct LocalToUtc {
    tz: Tz,
    hour: i64,
    offset: i64,
    /// The cached hour holds a DST change: read each second on its own.
    changes: bool,
}

/// How a local wall time maps to an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wall {
    /// Exactly one instant.
    Single,
    /// Skipped by a DST change (clocks went forward over it): read with the earlier offset.
    Gap,
    /// Occurs twice (clocks went back over it): read as the earlier instant.
    Overlap,
}

impl Wall {
    /// How `extra['dst']` names it on a row (`None` for a plain wall time).
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Wall::Single => None,
            Wall::Gap => Some("gap"),
            Wall::Overlap => Some("overlap"),
        }
    }
}

impl LocalToUtc {
    pub fn new(tz: Tz) -> Self {
        LocalToUtc { tz, hour: i64::MIN, offset: 0, changes: false }
    }

    /// UTC microseconds of a local time given as seconds since 1970-01-01 00:00 local.
    pub fn utc_micros(&mut self, local_secs: i64) -> i64 {
        self.read(local_secs).0
    }

    /// The same, and whether the wall time was skipped or repeated by a DST change.
    pub fn read(&mut self, local_secs: i64) -> (i64, Wall) {
        let hour = local_secs.div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            let (offset, wall) = self.resolve(hour * 3600);
            let (end_offset, end_wall) = self.resolve(hour * 3600 + 3599);
            self.offset = offset;
            self.changes = wall != Wall::Single || end_wall != Wall::Single || end_offset != offset;
        }
        if !self.changes {
            return ((local_secs - self.offset) * 1_000_000, Wall::Single);
        }
        let (offset, wall) = self.resolve(local_secs);
        ((local_secs - offset) * 1_000_000, wall)
    }

    /// The offset (seconds east of UTC) a local second is read with, and how it maps.
    fn resolve(&self, local_secs: i64) -> (i64, Wall) {
        let naive = chrono::DateTime::from_timestamp(local_secs, 0).map(|d| d.naive_utc());
        match naive.map(|n| self.tz.offset_from_local_datetime(&n)) {
            Some(chrono::LocalResult::Single(o)) => (o.fix().local_minus_utc() as i64, Wall::Single),
            Some(chrono::LocalResult::Ambiguous(o, _)) => (o.fix().local_minus_utc() as i64, Wall::Overlap),
            // In a gap: the offset of the wall time an hour earlier, before the clocks moved.
            _ => {
                let before = chrono::DateTime::from_timestamp(local_secs - 3600, 0).map(|d| d.naive_utc());
                let o = before.and_then(|n| self.tz.offset_from_local_datetime(&n).earliest());
                (o.map_or(0, |o| o.fix().local_minus_utc() as i64), Wall::Gap)
            }
        }
    }
}

/// `YYYY-MM-DD` of a day number, as the partition directories spell it.
pub fn day_string(day: i32) -> String {
    let (y, m, d) = civil_from_days(day as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of a `YYYY-MM-DD` partition value (inverse of [`day_string`]).
pub fn day_from_string(s: &str) -> Option<i32> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (day_string(day as i32) == s).then_some(day as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_read_back_to_day_numbers() {
        for day in [-1, 0, 11_017, 19_844, 20_000] {
            assert_eq!(day_from_string(&day_string(day)), Some(day));
        }
        assert_eq!(day_from_string("2024-02-30"), None);
        assert_eq!(day_from_string("2024-2-3"), None);
        assert_eq!(day_from_string("date"), None);
    }

    #[test]
    fn tokyo_day_turns_at_local_midnight() {
        let mut m = LocalDays::new(parse_tz("Asia/Tokyo").unwrap());
        // 2024-05-01 14:59:59 UTC is 23:59:59 JST; one second later is May 2nd in Tokyo.
        let t = 1_714_575_599_000_000;
        assert_eq!(day_string(m.day(t)), "2024-05-01");
        assert_eq!(day_string(m.day(t + 1_000_000)), "2024-05-02");
        assert_eq!(day_string(m.day(t)), "2024-05-01");
    }

    #[test]
    fn dst_change_moves_the_boundary() {
        let mut m = LocalDays::new(parse_tz("Europe/Berlin").unwrap());
        // 2024-03-31: CET -> CEST at 01:00 UTC. 22:30 UTC that day is 00:30 April 1st local.
        assert_eq!(day_string(m.day(1_711_924_200_000_000)), "2024-04-01");
        // 2024-03-30 23:30 UTC is 00:30 March 31st (still CET).
        assert_eq!(day_string(m.day(1_711_841_400_000_000)), "2024-03-31");
    }

    #[test]
    fn local_wall_time_to_utc() {
        let mut c = LocalToUtc::new(parse_tz("Asia/Tokyo").unwrap());
        // 2021-06-22 12:48:01 JST is 03:48:01 UTC.
        let local = crate::formats::bytes::days_from_civil(2021, 6, 22) * 86_400 + 12 * 3600 + 48 * 60 + 1;
        assert_eq!(c.utc_micros(local), 1_624_333_681_000_000);
    }

    #[test]
    fn bad_zone_is_explained() {
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("IANA"));
    }
}
