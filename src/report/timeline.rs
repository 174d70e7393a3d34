//! One person's activity across proxy (every format) and firewall rows, in time order, with
//! bursts folded, detections marked, and what is new after an anchor date.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};

use crate::engine::Engine;

use super::i18n::Lang;
use super::pseudo::Pseudonymiser;
use super::{ReportError, column_i64, column_str, local_time, query, sql_list};

/// Whose activity: user names and client addresses (either may be empty, not both).
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub users: Vec<String>,
    pub clients: Vec<String>,
}

/// A detection hit about someone over a span, to mark their timeline with.
#[derive(Debug, Clone)]
pub struct Mark {
    pub detection: String,
    pub entity: String,
    pub from_us: i64,
    pub to_us: i64,
}

/// One row of the lake about them.
#[derive(Debug, Clone)]
pub struct Event {
    pub t_us: i64,
    pub table: &'static str,
    pub format: String,
    pub user: Option<String>,
    pub client: String,
    /// What happened, in a few words: `POST dropboxapi.com 200`, `DROP TCP 203.0.113.9:4444`.
    pub what: String,
    /// Registrable domain (proxy) or destination address (firewall).
    pub target: Option<String>,
    pub upload: bool,
    pub up: i64,
    pub down: i64,
    pub detections: BTreeSet<String>,
    pub new: Vec<String>,
}

/// A row of the timeline: one event, or a folded burst of them.
#[derive(Debug, Clone)]
pub struct Entry {
    pub from_us: i64,
    pub to_us: i64,
    pub table: &'static str,
    pub formats: BTreeSet<String>,
    pub who: String,
    pub events: usize,
    pub what: String,
    pub up: i64,
    pub down: i64,
    pub detections: BTreeSet<String>,
    pub new: Vec<String>,
}

/// Smallest upload that counts as one when telling what is new (1 MB).
const UPLOAD_BYTES: i64 = 1_000_000;

/// Every proxy and firewall row about `who`, in time order. Firewall rows are those from the
/// client addresses the person used in the proxy logs (and any given with `clients`).
pub async fn events(engine: &Engine, who: &Who) -> Result<Vec<Event>, ReportError> {
    if who.users.is_empty() && who.clients.is_empty() {
        return Err(ReportError::Usage("give --user NAME or --client ADDRESS".into()));
    }
    let has = |t: &str| engine.tables().iter().any(|n| n == t);
    let mut out = Vec::new();
    let mut clients: BTreeSet<String> = who.clients.iter().cloned().collect();
    if has("proxy") {
        let mut cond = Vec::new();
        if !who.users.is_empty() {
            cond.push(format!("username IN ({})", sql_list(&who.users)));
        }
        if !who.clients.is_empty() {
            cond.push(format!("client_ip IN ({})", sql_list(&who.clients)));
        }
        let sql = format!(
            "SELECT CAST(ts AS BIGINT) AS t, source_format, username, client_ip, method, host, reg_domain(host), \
             status, action, request_bytes, response_bytes FROM proxy WHERE {} \
             ORDER BY t, source_file, source_line",
            cond.join(" OR ")
        );
        for b in query(engine, &sql).await? {
            let (t, fmt, user, client) =
                (column_i64(&b, 0)?, column_str(&b, 1)?, column_str(&b, 2)?, column_str(&b, 3)?);
            let (method, host, domain) = (column_str(&b, 4)?, column_str(&b, 5)?, column_str(&b, 6)?);
            let (status, action, up, down) =
                (column_i64(&b, 7)?, column_str(&b, 8)?, column_i64(&b, 9)?, column_i64(&b, 10)?);
            for i in 0..b.num_rows() {
                let client = client[i].clone().unwrap_or_default();
                clients.insert(client.clone());
                let method = method[i].clone().unwrap_or_default();
                let mut what = format!(
                    "{method} {} {}",
                    host[i].as_deref().unwrap_or("?"),
                    status[i].map_or("-".into(), |s| s.to_string())
                );
                if let Some(a) = &action[i] {
                    what = format!("{what} {a}");
                }
                out.push(Event {
                    t_us: t[i].unwrap_or(0),
                    table: "proxy",
                    format: fmt[i].clone().unwrap_or_default(),
                    user: user[i].clone(),
                    client,
                    what,
                    target: domain[i].clone().or_else(|| host[i].clone()),
                    upload: matches!(method.as_str(), "POST" | "PUT") && up[i].unwrap_or(0) >= UPLOAD_BYTES,
                    up: up[i].unwrap_or(0),
                    down: down[i].unwrap_or(0),
                    detections: BTreeSet::new(),
                    new: Vec::new(),
                });
            }
        }
    }
    let clients: Vec<String> = clients.into_iter().filter(|c| !c.is_empty()).collect();
    if has("firewall") && !clients.is_empty() {
        let sql = format!(
            "SELECT CAST(ts AS BIGINT) AS t, source_format, action, protocol, src_ip, dst_ip, dst_port, size \
             FROM firewall WHERE src_ip IN ({}) ORDER BY t, source_file, source_line",
            sql_list(&clients)
        );
        for b in query(engine, &sql).await? {
            let (t, fmt, action, proto) =
                (column_i64(&b, 0)?, column_str(&b, 1)?, column_str(&b, 2)?, column_str(&b, 3)?);
            let (src, dst, port, size) =
                (column_str(&b, 4)?, column_str(&b, 5)?, column_i64(&b, 6)?, column_i64(&b, 7)?);
            for i in 0..b.num_rows() {
                let dst = dst[i].clone().unwrap_or_default();
                let port = port[i].map_or(String::new(), |p| format!(":{p}"));
                out.push(Event {
                    t_us: t[i].unwrap_or(0),
                    table: "firewall",
                    format: fmt[i].clone().unwrap_or_default(),
                    user: None,
                    client: src[i].clone().unwrap_or_default(),
                    what: format!(
                        "{} {} {dst}{port}",
                        action[i].as_deref().unwrap_or("?"),
                        proto[i].as_deref().unwrap_or("?")
                    ),
                    target: Some(dst),
                    upload: false,
                    up: size[i].unwrap_or(0),
                    down: 0,
                    detections: BTreeSet::new(),
                    new: Vec::new(),
                });
            }
        }
    }
    out.sort_by_key(|e| e.t_us);
    Ok(out)
}

/// Marks each event with the detections whose hit names its user or client over a span
/// holding it.
pub fn mark(events: &mut [Event], marks: &[Mark]) {
    for e in events.iter_mut() {
        for m in marks {
            let about = e.user.as_deref() == Some(m.entity.as_str()) || e.client == m.entity;
            if about && m.from_us <= e.t_us && e.t_us <= m.to_us {
                e.detections.insert(m.detection.clone());
            }
        }
    }
}

/// Marks what is new for them from `anchor_us` on: the first visit to a domain, the first
/// upload to a domain, the first night session (22:00-05:00 local), each against what the
/// events before the anchor show.
pub fn mark_new(events: &mut [Event], anchor_us: i64, tz: Tz) {
    let mut seen = BTreeSet::new();
    let mut uploaded = BTreeSet::new();
    let mut night = false;
    for e in events.iter_mut() {
        let hour = local_time(tz, e.t_us).get(11..13).and_then(|h| h.parse::<u32>().ok()).unwrap_or(12);
        let at_night = !(5..22).contains(&hour);
        let target = e.target.clone().unwrap_or_default();
        if e.t_us >= anchor_us {
            if e.table == "proxy" && !seen.contains(&target) {
                e.new.push(format!("first visit {target}"));
            }
            if e.upload && !uploaded.contains(&target) {
                e.new.push(format!("first upload {target}"));
            }
            if at_night && !night {
                e.new.push("first night session".into());
            }
        }
        if e.table == "proxy" {
            seen.insert(target.clone());
        }
        if e.upload {
            uploaded.insert(target);
        }
        night |= at_night;
    }
}

/// Each event as its own row.
pub fn raw(events: &[Event]) -> Vec<Entry> {
    events.iter().map(|e| entry(std::slice::from_ref(e), Lang::En)).collect()
}

/// Events of one table less than `gap_s` seconds apart folded into one row; rows of both
/// tables then merged in time order.
pub fn fold(events: &[Event], gap_s: i64, lang: Lang) -> Vec<Entry> {
    let mut by_table: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_table.entry(e.table).or_default().push(e);
    }
    let mut out = Vec::new();
    for list in by_table.values() {
        let mut start = 0;
        for i in 1..=list.len() {
            if i == list.len() || list[i].t_us - list[i - 1].t_us > gap_s * 1_000_000 {
                let burst: Vec<Event> = list[start..i].iter().map(|e| (*e).clone()).collect();
                out.push(entry(&burst, lang));
                start = i;
            }
        }
    }
    out.sort_by_key(|e| (e.from_us, e.table));
    out
}

fn entry(burst: &[Event], lang: Lang) -> Entry {
    let first = &burst[0];
    let targets: BTreeSet<&str> = burst.iter().filter_map(|e| e.target.as_deref()).collect();
    let what = if burst.len() == 1 {
        first.what.clone()
    } else {
        let (n, d) = (burst.len(), targets.len());
        match (first.table, lang) {
            ("proxy", Lang::En) => format!("{n} requests to {d} domains"),
            ("proxy", Lang::Ja) => format!("{d} ドメインへ {n} 件のリクエスト"),
            (_, Lang::En) => format!("{n} connections to {d} addresses"),
            (_, Lang::Ja) => format!("{d} 宛先へ {n} 件の接続"),
        }
    };
    let who = first.user.clone().unwrap_or_else(|| first.client.clone());
    let mut new: Vec<String> = Vec::new();
    for e in burst {
        for n in &e.new {
            if !new.contains(n) {
                new.push(n.clone());
            }
        }
    }
    Entry {
        from_us: first.t_us,
        to_us: burst[burst.len() - 1].t_us,
        table: first.table,
        formats: burst.iter().map(|e| e.format.clone()).collect(),
        who,
        events: burst.len(),
        what,
        up: burst.iter().map(|e| e.up).sum(),
        down: burst.iter().map(|e| e.down).sum(),
        detections: burst.iter().flat_map(|e| e.detections.iter().cloned()).collect(),
        new,
    }
}

/// The timeline as a table: wall times in the lake's zone, people as the pseudonymiser shows them.
pub fn to_batch(entries: &[Entry], tz: Tz, p: &Pseudonymiser) -> Result<RecordBatch, ReportError> {
    let text = |f: &dyn Fn(&Entry) -> String| -> ArrayRef {
        Arc::new(entries.iter().map(|e| Some(f(e))).collect::<StringArray>())
    };
    let int =
        |f: &dyn Fn(&Entry) -> i64| -> ArrayRef { Arc::new(entries.iter().map(f).collect::<Int64Array>()) };
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
    Ok(RecordBatch::try_from_iter([
        ("start", text(&|e| local_time(tz, e.from_us))),
        ("end", text(&|e| local_time(tz, e.to_us))),
        ("table", text(&|e| e.table.to_string())),
        ("format", text(&|e| join(&e.formats))),
        ("who", text(&|e| p.user(&e.who))),
        ("events", int(&|e| e.events as i64)),
        ("what", text(&|e| p.cell("what", &e.what))),
        ("bytes_up", int(&|e| e.up)),
        ("bytes_down", int(&|e| e.down)),
        ("detections", text(&|e| join(&e.detections))),
        ("new", text(&|e| e.new.join("; "))),
    ])?)
}
