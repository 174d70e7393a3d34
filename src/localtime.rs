//! The lake's time zone: local calendar days for partitioning, and local wall time for SQL.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use crate::formats::bytes::civil_from_days;

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

/// `YYYY-MM-DD` of a day number, as the partition directories spell it.
pub fn day_string(day: i32) -> String {
    let (y, m, d) = civil_from_days(day as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn bad_zone_is_explained() {
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("IANA"));
    }
}
