//! Findings as the report sees them. `from_detect` is the one place that reads the detection
//! runner's types, so a change to them is met here alone; the charts that explain a finding
//! are drawn from the lake through the engine.

use chrono_tz::Tz;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::detect::Finding;
use crate::engine::Engine;

use super::coverage::{Gap, local_hour_start};
use super::html::rows_of;
use super::i18n::Lang;
use super::pseudo::Pseudonymiser;
use super::timeline::Mark;
use super::{ReportError, column_i64, parse_local, query, sql_list, svg};

/// One detection's result, in the report's terms.
#[derive(Debug, Clone)]
pub struct FindingView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    pub mitre: Vec<String>,
    pub tables: Vec<String>,
    /// hits, clean, skipped or failed, and its detail (the reason, the notes).
    pub status: String,
    pub detail: String,
    pub hits: usize,
    pub columns: Vec<String>,
    /// Every hit as display text, most important first.
    pub rows: Vec<Vec<String>>,
    /// The rows as the runner gave them (for CSV files).
    pub schema: Option<SchemaRef>,
    pub batches: Vec<RecordBatch>,
    /// Index of the column naming who a hit is about.
    pub entity: usize,
    pub notes: Vec<String>,
}

/// The report's view of each finding, in the order given.
pub fn from_detect(findings: &[Finding<'_>]) -> Vec<FindingView> {
    findings
        .iter()
        .map(|f| {
            let (status, detail) = f.status();
            // Hits only (rows at or above the detection's min_score), as `trawl detect` shows them.
            let (schema, batches) = match f.rows(false) {
                Some((schema, batches)) => (Some(schema), batches),
                None => (None, Vec::new()),
            };
            let (columns, rows) = schema.as_ref().map(|s| rows_of(s, &batches)).unwrap_or_default();
            let entity =
                f.detection.entity.as_ref().and_then(|e| columns.iter().position(|c| c == e)).unwrap_or(0);
            FindingView {
                id: f.detection.id.clone(),
                title: f.detection.title.clone(),
                description: f.detection.description.clone(),
                severity: f.detection.severity.to_string(),
                mitre: f.detection.mitre.clone(),
                tables: f.detection.tables.clone(),
                status: status.to_string(),
                detail,
                hits: f.hits(),
                columns,
                rows,
                schema,
                batches,
                entity,
                notes: f.notes.clone(),
            }
        })
        .collect()
}

impl FindingView {
    /// Values of a column by name, per row.
    pub fn column(&self, name: &str) -> Option<Vec<&str>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i].as_str()).collect())
    }

    /// The span `[first_seen, last_seen]` of each row, as UTC instants, where both are given;
    /// a detection of single events (a Sigma rule) gives each row's `ts` as both ends.
    pub fn spans(&self, tz: Tz) -> Vec<Option<(i64, i64)>> {
        let ends = match (self.column("first_seen"), self.column("last_seen")) {
            (Some(first), Some(last)) => Some((first, last)),
            _ => self.column("ts").map(|ts| (ts.clone(), ts)),
        };
        let Some((first, last)) = ends else {
            return vec![None; self.rows.len()];
        };
        first.iter().zip(last).map(|(a, b)| Some((parse_local(tz, a)?, parse_local(tz, b)?))).collect()
    }

    /// The first `n` distinct entities, most important first.
    pub fn entities(&self, n: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.rows {
            let v = &r[self.entity];
            if v != "NULL" && !out.contains(v) {
                out.push(v.clone());
            }
            if out.len() == n {
                break;
            }
        }
        out
    }

    /// Gaps in the sources of this detection's tables that overlap one of its hits.
    pub fn gaps<'g>(&self, gaps: &'g [Gap], tz: Tz) -> Vec<(usize, &'g Gap)> {
        let mut out = Vec::new();
        for (row, span) in self.spans(tz).into_iter().enumerate() {
            let Some((from, to)) = span else { continue };
            for g in gaps.iter().filter(|g| self.tables.contains(&g.table) && g.overlaps(from, to)) {
                out.push((row, g));
            }
        }
        out
    }
}

/// Timeline marks: who each hit is about and when.
pub fn marks(views: &[FindingView], tz: Tz) -> Vec<Mark> {
    let mut out = Vec::new();
    for v in views {
        for (row, span) in v.rows.iter().zip(v.spans(tz)) {
            if let Some((from_us, to_us)) = span {
                out.push(Mark { detection: v.id.clone(), entity: row[v.entity].clone(), from_us, to_us });
            }
        }
    }
    out
}

/// The chart that explains a detection's hits, for the detections where a picture helps.
pub async fn chart(
    engine: &Engine,
    v: &FindingView,
    lang: Lang,
    p: &Pseudonymiser,
) -> Result<Option<String>, ReportError> {
    let tz = engine.tz();
    let has = |t: &str| engine.tables().iter().any(|n| n == t);
    let who = v.entities(5);
    if who.is_empty() || v.hits == 0 {
        return Ok(None);
    }
    let shown: Vec<String> = who.iter().map(|w| p.user(w)).collect();
    // Proxy charts count as the detections do, each request once (proxy_unique): a poll logged by
    // two proxies a second apart would otherwise draw a beacon's period as 1 s.
    match v.id.as_str() {
        "after_hours" if has("proxy") => {
            let sql = format!(
                "SELECT CAST(date_part('dow', local_ts(ts)) AS BIGINT), CAST(date_part('hour', local_ts(ts)) AS BIGINT), \
                 count(*) FROM proxy_unique WHERE coalesce(username, client_ip) IN ({}) GROUP BY 1, 2",
                sql_list(&who)
            );
            let mut counts = [[0u64; 24]; 7];
            for b in query(engine, &sql).await? {
                let (d, h, n) = (column_i64(&b, 0)?, column_i64(&b, 1)?, column_i64(&b, 2)?);
                for i in 0..b.num_rows() {
                    if let (Some(d), Some(h), Some(n)) = (d[i], h[i], n[i])
                        && (0..7).contains(&d)
                        && (0..24).contains(&h)
                    {
                        counts[d as usize][h as usize] += n as u64;
                    }
                }
            }
            let title = format!("{}: {}", lang.t("Requests by hour of week"), shown.join(", "));
            Ok(Some(titled(&title, svg::heatmap(&counts, lang.weekdays(), &title))))
        }
        "large_uploads" if has("proxy") => {
            let sql = format!(
                "SELECT CAST(ts AS BIGINT) AS t, request_bytes FROM proxy_unique WHERE coalesce(username, client_ip) = {} \
                 AND method IN ('POST', 'PUT') AND request_bytes IS NOT NULL",
                sql_list(&who[..1])
            );
            let mut points = Vec::new();
            for b in query(engine, &sql).await? {
                let (t, n) = (column_i64(&b, 0)?, column_i64(&b, 1)?);
                points.extend((0..b.num_rows()).filter_map(|i| Some((t[i]?, n[i]? as f64))));
            }
            let (labels, values) = per_hour(tz, &points);
            let title = format!("{}: {}", lang.t("Bytes uploaded per hour"), shown[0]);
            Ok(Some(titled(&title, svg::bars(&labels, &values, &svg::bytes, &title))))
        }
        "beaconing" if has("proxy") => {
            let (Some(client), Some(host)) = (v.column("client_ip"), v.column("host")) else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT CAST(ts AS BIGINT) AS t FROM proxy_unique WHERE client_ip = {} AND host = {} ORDER BY 1",
                sql_list(&[client[0].to_string()]),
                sql_list(&[host[0].to_string()])
            );
            let mut ts = Vec::new();
            for b in query(engine, &sql).await? {
                ts.extend(column_i64(&b, 0)?.into_iter().flatten());
            }
            let mut gaps: Vec<f64> = ts.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e6).collect();
            if gaps.is_empty() {
                return Ok(None);
            }
            gaps.sort_by(f64::total_cmp);
            let period = gaps[gaps.len() / 2];
            let top = gaps[(gaps.len() * 95 / 100).min(gaps.len() - 1)].max(period * 2.0).max(1.0);
            let bins = 30;
            let mut values = vec![0.0; bins];
            for g in &gaps {
                values[((g / top * bins as f64) as usize).min(bins - 1)] += 1.0;
            }
            let labels: Vec<String> =
                (0..bins).map(|i| format!("{:.0}s", top * i as f64 / bins as f64)).collect();
            let title = format!(
                "{}: {} → {} ({} ≈ {period:.0} s)",
                lang.t("Intervals between connections"),
                p.user(client[0]),
                host[0],
                lang.t("repeat period")
            );
            Ok(Some(titled(&title, svg::bars(&labels, &values, &svg::count, &title))))
        }
        "port_scan" | "firewall_odd_ports" if has("firewall") => {
            let span = v.spans(tz).into_iter().flatten().next();
            let within = span.map_or(String::new(), |(a, b)| {
                format!(" AND CAST(ts AS BIGINT) BETWEEN {} AND {}", a - 600_000_000, b + 600_000_000)
            });
            let sql = format!(
                "SELECT CAST(ts AS BIGINT) AS t, dst_port FROM firewall WHERE src_ip = {} AND dst_port IS NOT NULL{within} \
                 ORDER BY 1 LIMIT 5000",
                sql_list(&who[..1])
            );
            let mut points = Vec::new();
            for b in query(engine, &sql).await? {
                let (t, port) = (column_i64(&b, 0)?, column_i64(&b, 1)?);
                points.extend((0..b.num_rows()).filter_map(|i| Some((t[i]? as f64, port[i]? as f64))));
            }
            if points.is_empty() {
                return Ok(None);
            }
            let title = format!("{}: {}", lang.t("Destination ports over time"), shown[0]);
            // Minutes and seconds for a burst, days and hours for a longer series.
            let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
            let cut = if hi - lo < 7_200e6 { 11..19 } else { 5..16 };
            let x = |t: f64| super::local_time(tz, t as i64).get(cut.clone()).unwrap_or("").to_string();
            Ok(Some(titled(&title, svg::scatter(&points, &x, &title))))
        }
        _ => Ok(None),
    }
}

/// Sums per local hour from the first to the last point (days when that is over two weeks).
pub(super) fn per_hour(tz: Tz, points: &[(i64, f64)]) -> (Vec<String>, Vec<f64>) {
    let (Some(lo), Some(hi)) = (points.iter().map(|p| p.0).min(), points.iter().map(|p| p.0).max()) else {
        return (Vec::new(), Vec::new());
    };
    let hour = 3_600_000_000i64;
    let step = if hi - lo > 14 * 24 * hour { 24 * hour } else { hour };
    let start = local_hour_start(tz, lo);
    let n = ((hi - start) / step + 1) as usize;
    let mut values = vec![0.0; n];
    for (t, v) in points {
        values[((t - start) / step) as usize] += v;
    }
    let labels = (0..n)
        .map(|i| {
            let s = super::local_time(tz, start + i as i64 * step);
            if step == hour { s.get(5..13).unwrap_or("").to_string() + "h" } else { s[..10].to_string() }
        })
        .collect();
    (labels, values)
}

fn titled(title: &str, svg: String) -> String {
    format!("<figure><figcaption>{}</figcaption>{svg}</figure>", super::html::escape(title))
}
