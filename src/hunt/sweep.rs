//! The sweep: one scan of each table, each row's hosts, addresses and URLs looked up in the
//! matcher (memoised per distinct value within a batch), hits summed per indicator, table and
//! who; then the result tables.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use futures::StreamExt;

use super::matcher::{Id, Matcher};
use super::{AllowList, HuntError, IocSet, Kind};
use crate::engine::functions::describe_agent;
use crate::engine::{Engine, GeoIp};
use crate::localtime::offset_at;

/// What a logged column is matched as.
#[derive(Debug, Clone, Copy)]
enum Probe {
    Host,
    Ip,
    Url,
}

/// A table the sweep reads: SQL giving `ts, who, bytes_out, bytes_in, blocked, agent` the same
/// way for every table, and the columns indicators are matched against.
struct Source {
    table: &'static str,
    head: &'static str,
    columns: &'static [(&'static str, Probe)],
}

const SOURCES: &[Source] = &[
    Source {
        table: "proxy",
        head: "ts, coalesce(username, client_ip) AS who, request_bytes AS bytes_out, \
               response_bytes AS bytes_in, \
               coalesce(action = 'block' OR cache_result LIKE 'TCP_DENIED%', false) AS blocked, \
               user_agent AS agent",
        columns: &[
            ("host", Probe::Host),
            ("url", Probe::Url),
            ("client_ip", Probe::Ip),
            ("server_ip", Probe::Ip),
        ],
    },
    Source {
        // The log is the local machine's: on SEND lines it is the source, on RECEIVE the destination.
        table: "firewall",
        head: "ts, CASE WHEN path = 'RECEIVE' THEN dst_ip ELSE src_ip END AS who, \
               CASE WHEN path = 'RECEIVE' THEN NULL ELSE size END AS bytes_out, \
               CASE WHEN path = 'RECEIVE' THEN size END AS bytes_in, \
               coalesce(action = 'DROP', false) AS blocked, CAST(NULL AS VARCHAR) AS agent",
        columns: &[("src_ip", Probe::Ip), ("dst_ip", Probe::Ip)],
    },
];

/// Columns of a source's `head`, before the probed ones.
const HEAD: usize = 6;

/// Sums of one indicator's hits in one table by one who.
#[derive(Debug, Clone)]
struct Agg {
    /// Bit per column of the source that matched.
    columns: u8,
    requests: u64,
    first: i64,
    last: i64,
    bytes_out: Option<i64>,
    bytes_in: Option<i64>,
    blocked: u64,
    /// What the user agents were, by `ua_browser`/`ua_os` (a few distinct per who, at most).
    agents: BTreeSet<String>,
}

impl Agg {
    /// No rows yet; `t` seeds first and last seen.
    fn empty(t: i64) -> Agg {
        Agg {
            columns: 0,
            requests: 0,
            first: t,
            last: t,
            bytes_out: None,
            bytes_in: None,
            blocked: 0,
            agents: BTreeSet::new(),
        }
    }

    fn merge(&mut self, o: &Agg) {
        self.columns |= o.columns;
        self.requests += o.requests;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.bytes_out = add_opt(self.bytes_out, o.bytes_out);
        self.bytes_in = add_opt(self.bytes_in, o.bytes_in);
        self.blocked += o.blocked;
        self.agents.extend(o.agents.iter().cloned());
    }
}

fn add_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

/// Hits by (indicator, source) and then by who.
type Aggs = HashMap<(Id, usize), ByWho>;

/// One indicator's sums in one table, per who.
type ByWho = HashMap<String, Agg>;

fn merge_into(into: &mut Aggs, from: Aggs) {
    for (k, whos) in from {
        let slot = into.entry(k).or_default();
        for (who, a) in whos {
            match slot.get_mut(&who) {
                Some(x) => x.merge(&a),
                None => {
                    slot.insert(who, a);
                }
            }
        }
    }
}

/// What a sweep found, as tables to print or write.
#[derive(Debug)]
pub struct Sweep {
    /// One row per indicator that was seen, most requests first.
    pub hits: RecordBatch,
    /// One row per indicator, table and who.
    pub detail: RecordBatch,
    /// The indicators nothing in the lake matched.
    pub no_hits: RecordBatch,
    /// Values of the lists that are not indicators, with file, line and reason.
    pub unread: RecordBatch,
    /// Tables read and their rows.
    pub scanned: Vec<(String, u64)>,
    pub elapsed: Duration,
}

/// Matches every indicator against every table of the engine (restricted to a time range if it
/// was), one scan per table.
pub async fn sweep(
    engine: &Engine,
    set: &IocSet,
    allow: Option<&AllowList>,
    geoip: Option<&GeoIp>,
) -> Result<Sweep, HuntError> {
    let started = Instant::now();
    let matcher = Arc::new(Matcher::new(&set.indicators));
    let mut aggs = Aggs::new();
    let mut scanned = Vec::new();
    for (si, source) in SOURCES.iter().enumerate() {
        if !engine.tables().iter().any(|t| t == source.table) {
            continue;
        }
        let probes: Vec<(usize, Probe)> = source
            .columns
            .iter()
            .enumerate()
            .filter(|(_, (_, p))| match p {
                Probe::Host => matcher.has_domains() || matcher.has_ips(),
                Probe::Ip => matcher.has_ips(),
                Probe::Url => matcher.has_urls(),
            })
            .map(|(i, (_, p))| (i, *p))
            .collect();
        if probes.is_empty() {
            continue;
        }
        let cols: Vec<&str> = probes.iter().map(|(i, _)| source.columns[*i].0).collect();
        let sql = format!("SELECT {}, {} FROM {}", source.head, cols.join(", "), source.table);
        let (found, rows) = scan(engine, &sql, source.table, si, &probes, &matcher).await?;
        merge_into(&mut aggs, found);
        scanned.push((source.table.to_string(), rows));
    }
    let tz = engine.tz();
    let (hits, detail, no_hits) = results(set, &aggs, allow, geoip, tz);
    Ok(Sweep { hits, detail, no_hits, unread: unread_batch(set), scanned, elapsed: started.elapsed() })
}

/// Runs the scan with one task per partition of the plan, each summing on its own.
async fn scan(
    engine: &Engine,
    sql: &str,
    table: &str,
    source: usize,
    probes: &[(usize, Probe)],
    matcher: &Arc<Matcher>,
) -> Result<(Aggs, u64), HuntError> {
    let scan_err = |message: String| HuntError::Scan { table: table.to_string(), message };
    let df = engine.sql(sql).await?;
    let streams = df.execute_stream_partitioned().await.map_err(|e| scan_err(e.strip_backtrace()))?;
    let mut tasks = Vec::new();
    for mut stream in streams {
        let matcher = Arc::clone(matcher);
        let probes = probes.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut aggs = Aggs::new();
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| e.strip_backtrace())?;
                rows += batch.num_rows() as u64;
                scan_batch(&batch, source, &probes, &matcher, &mut aggs)?;
            }
            Ok::<_, String>((aggs, rows))
        }));
    }
    let mut all = Aggs::new();
    let mut rows = 0;
    for t in tasks {
        let (aggs, n) = t.await.map_err(|e| scan_err(e.to_string()))?.map_err(scan_err)?;
        merge_into(&mut all, aggs);
        rows += n;
    }
    Ok((all, rows))
}

fn strings(col: &ArrayRef) -> Result<StringViewArray, String> {
    let c = cast(col, &DataType::Utf8View).map_err(|e| e.to_string())?;
    Ok(c.as_string_view().clone())
}

/// Matches one batch (`ts, who, bytes_out, bytes_in, blocked, probe columns...`) into `aggs`.
fn scan_batch(
    b: &RecordBatch,
    source: usize,
    probes: &[(usize, Probe)],
    matcher: &Matcher,
    aggs: &mut Aggs,
) -> Result<(), String> {
    // (row, indicator, column bit) for every match; most rows have none.
    let mut pairs: Vec<(u32, Id, u8)> = Vec::new();
    let mut found = Vec::new();
    for (j, (col_index, probe)) in probes.iter().enumerate() {
        let values = strings(b.column(HEAD + j))?;
        let mut memo: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut ids: Vec<Id> = Vec::new();
        for (row, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            // URLs are mostly distinct: remembering them would cost more than it saves.
            if let Probe::Url = probe {
                found.clear();
                matcher.url(v, &mut found);
                pairs.extend(found.iter().map(|&id| (row as u32, id, 1 << col_index)));
                continue;
            }
            let (start, end) = *memo.entry(v).or_insert_with(|| {
                found.clear();
                match probe {
                    Probe::Host => matcher.host(v, &mut found),
                    Probe::Ip => matcher.ip(v, &mut found),
                    Probe::Url => matcher.url(v, &mut found),
                }
                let start = ids.len();
                ids.extend_from_slice(&found);
                (start, ids.len())
            });
            for &id in &ids[start..end] {
                pairs.push((row as u32, id, 1 << col_index));
            }
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    pairs.sort_unstable();
    let ts = cast(b.column(0), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
        .map_err(|e| e.to_string())?;
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    let who = strings(b.column(1))?;
    let out = cast(b.column(2), &DataType::Int64).map_err(|e| e.to_string())?;
    let out = out.as_primitive::<Int64Type>();
    let inb = cast(b.column(3), &DataType::Int64).map_err(|e| e.to_string())?;
    let inb = inb.as_primitive::<Int64Type>();
    let blocked = b.column(4).as_boolean();
    let agent = strings(b.column(5))?;
    let mut agent_names: HashMap<&str, String> = HashMap::new();
    let mut i = 0;
    while i < pairs.len() {
        let (row, id, mut mask) = pairs[i];
        i += 1;
        // A row matching one indicator through several columns counts once, with each column.
        while i < pairs.len() && pairs[i].0 == row && pairs[i].1 == id {
            mask |= pairs[i].2;
            i += 1;
        }
        let r = row as usize;
        let t = ts.value(r);
        let who_s = if who.is_valid(r) { who.value(r) } else { "(unknown)" };
        let slot = aggs.entry((id, source)).or_default();
        // Updated in place: a popular indicator matches millions of rows, and building a sum
        // (with its set of agents) per row to merge it cost an allocation or two each.
        if !slot.contains_key(who_s) {
            slot.insert(who_s.to_string(), Agg::empty(t));
        }
        let Some(x) = slot.get_mut(who_s) else { continue };
        x.columns |= mask;
        x.requests += 1;
        x.first = x.first.min(t);
        x.last = x.last.max(t);
        x.bytes_out = add_opt(x.bytes_out, out.is_valid(r).then(|| out.value(r)));
        x.bytes_in = add_opt(x.bytes_in, inb.is_valid(r).then(|| inb.value(r)));
        x.blocked += u64::from(blocked.is_valid(r) && blocked.value(r));
        if agent.is_valid(r) {
            let ua = agent.value(r);
            let name = agent_names.entry(ua).or_insert_with(|| describe_agent(ua));
            if !x.agents.contains(name.as_str()) {
                x.agents.insert(name.clone());
            }
        }
    }
    Ok(())
}

/// The agents, comma-separated; NULL when the table or format logs none.
fn agents_text(agents: &BTreeSet<String>) -> Option<String> {
    (!agents.is_empty()).then(|| agents.iter().cloned().collect::<Vec<_>>().join(", "))
}

/// Names shown in a row's `who` before the rest are counted.
const WHO_SHOWN: usize = 10;

fn local(tz: Tz, us: i64) -> i64 {
    us + i64::from(offset_at(&tz, us.div_euclid(1_000_000))) * 1_000_000
}

fn column_names(source: usize, mask: u8) -> Vec<String> {
    let s = &SOURCES[source];
    s.columns
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (c, _))| format!("{}.{c}", s.table))
        .collect()
}

/// Columns shared by the hits and detail tables, built row by row.
#[derive(Default)]
struct Rows {
    indicator: Vec<String>,
    kind: Vec<&'static str>,
    text: Vec<Vec<Option<String>>>,
    first: Vec<i64>,
    last: Vec<i64>,
    counts: Vec<[u64; 3]>,
    bytes: Vec<[Option<i64>; 2]>,
}

impl Rows {
    fn push(&mut self, ind: &super::Indicator, text: Vec<Option<String>>, a: &Agg) {
        self.indicator.push(ind.key.clone());
        self.kind.push(ind.kind.name());
        self.text.push(text);
        self.first.push(a.first);
        self.last.push(a.last);
        self.counts.push([a.requests, a.requests - a.blocked, a.blocked]);
        self.bytes.push([a.bytes_out, a.bytes_in]);
    }

    /// `indicator, type, <text columns>, first_seen, last_seen, requests, bytes_out, bytes_in,
    /// allowed, blocked`, then `tail` columns.
    fn batch(self, names: &[&str], tz: Tz, tail: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("indicator", Arc::new(StringArray::from(self.indicator))),
            ("type", Arc::new(StringArray::from(self.kind))),
        ];
        for (k, name) in names.iter().enumerate() {
            let col: StringArray = self.text.iter().map(|t| t[k].clone()).collect();
            cols.push((name, Arc::new(col)));
        }
        let ts = |v: &[i64]| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v.iter().map(|&t| local(tz, t)).collect::<Vec<_>>()))
        };
        cols.push(("first_seen", ts(&self.first)));
        cols.push(("last_seen", ts(&self.last)));
        let count =
            |k: usize| -> ArrayRef { Arc::new(self.counts.iter().map(|c| c[k]).collect::<UInt64Array>()) };
        cols.push(("requests", count(0)));
        cols.push(("bytes_out", Arc::new(self.bytes.iter().map(|b| b[0]).collect::<Int64Array>())));
        cols.push(("bytes_in", Arc::new(self.bytes.iter().map(|b| b[1]).collect::<Int64Array>())));
        cols.push(("allowed", count(1)));
        cols.push(("blocked", count(2)));
        cols.extend(tail);
        RecordBatch::try_from_iter(cols).expect("columns of equal length")
    }
}

/// Address an IP or network indicator is looked up by in the GeoIP databases.
fn geo_address(ind: &super::Indicator) -> Option<&str> {
    match ind.kind {
        Kind::Ip => Some(&ind.key),
        Kind::Cidr => ind.key.split('/').next(),
        _ => None,
    }
}

/// The hits, detail and no-hit tables.
fn results(
    set: &IocSet,
    aggs: &Aggs,
    allow: Option<&AllowList>,
    geoip: Option<&GeoIp>,
    tz: Tz,
) -> (RecordBatch, RecordBatch, RecordBatch) {
    let mut by_indicator: HashMap<Id, Vec<(usize, &ByWho)>> = HashMap::new();
    for ((id, source), whos) in aggs {
        by_indicator.entry(*id).or_default().push((*source, whos));
    }
    let hit_ids: Vec<Id> = by_indicator.keys().copied().collect();
    let flags: HashMap<Id, bool> = hit_ids
        .iter()
        .map(|&id| (id, allow.is_some_and(|a| a.covers(&set.indicators[id as usize]))))
        .collect();
    // Hit indicators: not allow-listed first, then most requests, then by value.
    let mut order: Vec<(Id, Agg)> = Vec::new();
    for (&id, parts) in &by_indicator {
        let mut total: Option<Agg> = None;
        for (_, whos) in parts {
            for a in whos.values() {
                match &mut total {
                    Some(t) => t.merge(a),
                    None => total = Some(a.clone()),
                }
            }
        }
        if let Some(t) = total {
            order.push((id, t));
        }
    }
    let ind = |id: Id| &set.indicators[id as usize];
    order.sort_by(|(a, x), (b, y)| {
        (flags[a], std::cmp::Reverse(x.requests), &ind(*a).key).cmp(&(
            flags[b],
            std::cmp::Reverse(y.requests),
            &ind(*b).key,
        ))
    });

    let mut hits = Rows::default();
    let mut detail = Rows::default();
    let mut hit_allow = Vec::new();
    let mut geo: Vec<[Option<String>; 3]> = Vec::new();
    let mut hit_source = Vec::new();
    for (id, total) in &order {
        let i = ind(*id);
        let mut parts = by_indicator[id].clone();
        parts.sort_by_key(|(s, _)| SOURCES[*s].table);
        let tables: Vec<&str> = parts.iter().map(|(s, _)| SOURCES[*s].table).collect();
        let mut columns = Vec::new();
        let mut who: HashMap<&str, u64> = HashMap::new();
        for (s, whos) in &parts {
            let mask = whos.values().fold(0, |m, a| m | a.columns);
            columns.extend(column_names(*s, mask));
            let mut rows: Vec<(&String, &Agg)> = whos.iter().collect();
            rows.sort_by(|(a, x), (b, y)| {
                (std::cmp::Reverse(x.requests), a).cmp(&(std::cmp::Reverse(y.requests), b))
            });
            for (w, a) in rows {
                *who.entry(w.as_str()).or_default() += a.requests;
                detail.push(
                    i,
                    vec![
                        Some(SOURCES[*s].table.to_string()),
                        Some(column_names(*s, a.columns).join(", ")),
                        Some(w.clone()),
                        agents_text(&a.agents),
                    ],
                    a,
                );
            }
        }
        let mut who: Vec<(&str, u64)> = who.into_iter().collect();
        who.sort_by(|a, b| (std::cmp::Reverse(a.1), a.0).cmp(&(std::cmp::Reverse(b.1), b.0)));
        let mut shown: Vec<&str> = who.iter().take(WHO_SHOWN).map(|w| w.0).collect();
        let more = who.len().saturating_sub(WHO_SHOWN);
        let more_text = format!("(+{more} more)");
        if more > 0 {
            shown.push(&more_text);
        }
        hits.push(
            i,
            vec![
                Some(tables.join(", ")),
                Some(columns.join(", ")),
                Some(who.len().to_string()),
                Some(shown.join(" ")),
                agents_text(&total.agents),
            ],
            total,
        );
        hit_allow.push(flags[id]);
        geo.push(geo_of(i, geoip));
        hit_source.push(i.origins.join(" "));
    }

    let mut tail: Vec<(&str, ArrayRef)> = Vec::new();
    if allow.is_some() {
        tail.push(("allowlisted", Arc::new(BooleanArray::from(hit_allow))));
    }
    if geoip.is_some() {
        for (k, name) in ["country", "asn", "org"].into_iter().enumerate() {
            tail.push((name, Arc::new(geo.iter().map(|g| g[k].clone()).collect::<StringArray>())));
        }
    }
    let labels: StringArray = order.iter().map(|(id, _)| ind(*id).label.clone()).collect();
    tail.push(("label", Arc::new(labels)));
    tail.push(("source", Arc::new(StringArray::from(hit_source))));
    let hits = hits.batch(&["tables", "columns", "who_count", "who", "agents"], tz, tail);
    let detail = detail.batch(&["table", "columns", "who", "agents"], tz, Vec::new());

    let seen: BTreeSet<Id> = by_indicator.keys().copied().collect();
    let no_hits = no_hits_batch(set, &seen, allow);
    (hits, detail, no_hits)
}

/// The indicators nothing matched, in list order.
fn no_hits_batch(set: &IocSet, seen: &BTreeSet<Id>, allow: Option<&AllowList>) -> RecordBatch {
    let missing: Vec<&super::Indicator> = set
        .indicators
        .iter()
        .enumerate()
        .filter(|(n, _)| !seen.contains(&(*n as Id)))
        .map(|(_, i)| i)
        .collect();
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        ("indicator", Arc::new(missing.iter().map(|i| Some(i.key.as_str())).collect::<StringArray>())),
        ("type", Arc::new(missing.iter().map(|i| Some(i.kind.name())).collect::<StringArray>())),
    ];
    if let Some(a) = allow {
        cols.push((
            "allowlisted",
            Arc::new(missing.iter().map(|i| Some(a.covers(i))).collect::<BooleanArray>()),
        ));
    }
    cols.push(("label", Arc::new(missing.iter().map(|i| i.label.clone()).collect::<StringArray>())));
    cols.push((
        "source",
        Arc::new(missing.iter().map(|i| Some(i.origins.join(" "))).collect::<StringArray>()),
    ));
    RecordBatch::try_from_iter(cols).expect("columns of equal length")
}

fn geo_of(i: &super::Indicator, geoip: Option<&GeoIp>) -> [Option<String>; 3] {
    match (geoip, geo_address(i)) {
        (Some(g), Some(ip)) => [g.country(ip), g.asn(ip).map(|a| a.to_string()), g.org(ip)],
        _ => [None, None, None],
    }
}

fn unread_batch(set: &IocSet) -> RecordBatch {
    let col = |f: &dyn Fn(&super::Unread) -> &str| -> ArrayRef {
        Arc::new(set.unread.iter().map(|u| Some(f(u))).collect::<StringArray>())
    };
    RecordBatch::try_from_iter([
        ("source", col(&|u| &u.origin)),
        ("value", col(&|u| &u.value)),
        ("reason", col(&|u| &u.reason)),
    ])
    .expect("columns of equal length")
}
