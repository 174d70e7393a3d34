//! Coverage: per source (file family, log host or format), when it logged and where it went
//! silent, so "no hits" is never mistaken for "no activity". Read through the engine only.

use std::collections::BTreeMap;

use crate::engine::Engine;

use super::{ReportError, column_i64, column_str, query};

/// What a coverage source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// The log host of syslog-wrapped lines, else the folder the file was found in.
    Host,
    /// The file family: the path with rotation and compression suffixes taken off
    /// (`access.log.2.gz` is `access.log`).
    File,
    /// The parser that read the rows (`squid`, `ifilter`, `windows_firewall`, ...).
    Format,
}

/// Rows of one source in one minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    minute: i64,
    rows: u64,
    lo: i64,
    hi: i64,
}

/// One source of rows in one table.
#[derive(Debug, Clone)]
pub struct Source {
    pub table: String,
    pub name: String,
    /// Earliest and latest row, microseconds since the epoch (UTC).
    pub first_us: i64,
    pub last_us: i64,
    pub rows: u64,
    /// Rows per local hour, keyed by the hour's start (UTC microseconds of local-hour starts).
    pub hours: BTreeMap<i64, u64>,
}

/// A silence longer than the threshold between two rows of one source.
#[derive(Debug, Clone)]
pub struct Gap {
    pub table: String,
    pub source: String,
    /// The last row before and the first row after the silence (UTC microseconds).
    pub from_us: i64,
    pub to_us: i64,
    /// Rows other sources logged meanwhile: zero when everything was quiet (a night, a
    /// holiday), many when this source alone went silent.
    pub others_rows: u64,
}

impl Gap {
    /// Length in whole minutes.
    pub fn minutes(&self) -> i64 {
        (self.to_us - self.from_us) / 60_000_000
    }

    /// Whether the other sources went on logging: at least one row per ten minutes of the
    /// silence. A few stray rows in a night (one person working late) do not make a quiet
    /// night a suspect gap; an office's daytime traffic does.
    pub fn others_active(&self) -> bool {
        self.others_rows * 10 >= self.minutes().max(1) as u64
    }

    /// Whether it overlaps the span `[from, to]` (UTC microseconds).
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.from_us < to && from < self.to_us
    }
}

/// Every source and every gap.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub sources: Vec<Source>,
    pub gaps: Vec<Gap>,
}

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 3_600_000_000;

/// Coverage of the engine's `proxy` and `firewall` tables (those present), with gaps over
/// `gap_minutes`.
pub async fn coverage(engine: &Engine, by: By, gap_minutes: u32) -> Result<Coverage, ReportError> {
    let tz = engine.tz();
    let mut per_source: BTreeMap<(String, String), Vec<Bucket>> = BTreeMap::new();
    for table in ["proxy", "firewall"] {
        if !engine.tables().iter().any(|t| t == table) {
            continue;
        }
        let sql = format!(
            "SELECT log_host, source_file, source_format, CAST(ts AS BIGINT) / {MINUTE_US} AS m, count(*) AS n, \
             min(CAST(ts AS BIGINT)) AS lo, max(CAST(ts AS BIGINT)) AS hi \
             FROM {table} WHERE ts IS NOT NULL GROUP BY 1, 2, 3, 4"
        );
        for b in query(engine, &sql).await? {
            let (hosts, files, formats) = (column_str(&b, 0)?, column_str(&b, 1)?, column_str(&b, 2)?);
            let (m, n, lo, hi) =
                (column_i64(&b, 3)?, column_i64(&b, 4)?, column_i64(&b, 5)?, column_i64(&b, 6)?);
            for i in 0..b.num_rows() {
                let file = files[i].as_deref().unwrap_or("");
                let name = match by {
                    By::File => family(file),
                    By::Host => hosts[i].clone().unwrap_or_else(|| folder(file)),
                    By::Format => formats[i].clone().unwrap_or_default(),
                };
                let bucket = Bucket {
                    minute: m[i].unwrap_or(0),
                    rows: n[i].unwrap_or(0) as u64,
                    lo: lo[i].unwrap_or(0),
                    hi: hi[i].unwrap_or(0),
                };
                per_source.entry((table.to_string(), name)).or_default().push(bucket);
            }
        }
    }
    // Several files of one family (or host) share minutes: merge them.
    for buckets in per_source.values_mut() {
        buckets.sort_by_key(|b| b.minute);
        buckets.dedup_by(|later, earlier| {
            if later.minute != earlier.minute {
                return false;
            }
            earlier.rows += later.rows;
            earlier.lo = earlier.lo.min(later.lo);
            earlier.hi = earlier.hi.max(later.hi);
            true
        });
    }
    let mut all: Vec<(i64, u64, usize)> = Vec::new();
    for (k, buckets) in per_source.values().enumerate() {
        all.extend(buckets.iter().map(|b| (b.lo, b.rows, k)));
    }
    all.sort_unstable();
    let gap_us = i64::from(gap_minutes.max(1)) * MINUTE_US;
    let mut out = Coverage::default();
    for (k, ((table, name), buckets)) in per_source.iter().enumerate() {
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else { continue };
        let mut hours = BTreeMap::new();
        for b in buckets {
            *hours.entry(local_hour_start(tz, b.lo)).or_insert(0) += b.rows;
        }
        out.sources.push(Source {
            table: table.clone(),
            name: name.clone(),
            first_us: first.lo,
            last_us: last.hi,
            rows: buckets.iter().map(|b| b.rows).sum(),
            hours,
        });
        for pair in buckets.windows(2) {
            let (from_us, to_us) = (pair[0].hi, pair[1].lo);
            if to_us - from_us <= gap_us {
                continue;
            }
            let start = all.partition_point(|e| e.0 <= from_us);
            let others_rows =
                all[start..].iter().take_while(|e| e.0 < to_us).filter(|e| e.2 != k).map(|e| e.1).sum();
            out.gaps.push(Gap { table: table.clone(), source: name.clone(), from_us, to_us, others_rows });
        }
    }
    Ok(out)
}

/// The start of the local hour holding `us` (zones with half-hour offsets keep local hours).
pub fn local_hour_start(tz: chrono_tz::Tz, us: i64) -> i64 {
    let offset = i64::from(crate::localtime::offset_at(&tz, us.div_euclid(1_000_000))) * 1_000_000;
    (us + offset).div_euclid(HOUR_US) * HOUR_US - offset
}

/// A log's family: its path without compression and rotation suffixes.
pub fn family(path: &str) -> String {
    let mut p = path;
    for ext in [".gz", ".zst", ".zstd", ".bz2", ".xz"] {
        if let Some(s) = p.strip_suffix(ext) {
            p = s;
            break;
        }
    }
    let name_start = p.rfind(['/', '\\']).map_or(0, |i| i + 1);
    let name = &p[name_start..];
    // access.log.3, access.log-20240501, access.log.20240501
    if let Some(cut) = name.rfind(['.', '-'])
        && cut > 0
        && name[cut + 1..].bytes().all(|b| b.is_ascii_digit())
        && !name[cut + 1..].is_empty()
    {
        return p[..name_start + cut].to_string();
    }
    p.to_string()
}

/// The name of the folder a file was found in.
fn folder(path: &str) -> String {
    let trimmed = path.rfind(['/', '\\']).map_or("", |i| &path[..i]);
    trimmed.rsplit(['/', '\\']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_drop_rotation_and_compression() {
        assert_eq!(family("/e/p1/access.log.2.gz"), "/e/p1/access.log");
        assert_eq!(family("/e/p1/access.log-20240501.gz"), "/e/p1/access.log");
        assert_eq!(family("/e/p1/access.log"), "/e/p1/access.log");
        assert_eq!(family("/e/fw/pfirewall.log.old"), "/e/fw/pfirewall.log.old");
        assert_eq!(folder("/e/p1/access.log"), "p1");
    }

    #[test]
    fn local_hours_follow_the_zone() {
        let tz: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        // 2024-06-03 10:15 UTC is 15:45 in India; the hour began at 15:00 IST, 09:30 UTC.
        let us = 1_717_409_700_000_000;
        assert_eq!(local_hour_start(tz, us), 1_717_407_000_000_000);
    }
}
