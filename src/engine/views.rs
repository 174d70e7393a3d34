//! Views every session has over the lake's tables: the whole history behind a time range, each
//! request once however many sources logged it, and who is a person and who a machine. They are
//! SQL over the tables (nothing is written to the lake, no row of `proxy` is ever removed; the small
//! ones are computed once per session, in memory), registered here
//! once so every detection and every ad-hoc query counts the same way.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::execution::context::{SQLOptions, SessionContext};

use super::materialize::Materialized;

/// Seconds two sources' timestamps of one request may differ by, beyond the longer of their
/// durations (Squid logs when a request ends, i-FILTER when it starts).
pub const DUPLICATE_WITHIN_SECONDS: f64 = 2.0;

/// Average distinct local hours a day an actor is active in, from which it is a machine: a person
/// working from 08:00 to 20:00 is active in about 12, a server or an update agent in 24.
pub const MACHINE_HOURS_PER_DAY: f64 = 18.0;

/// Name of the history view of a time-partitioned table (`proxy` gives `proxy_history`).
pub fn history_name(table: &str) -> String {
    format!("{table}_history")
}

/// Seconds of the time buckets duplicates are looked for in (this one and the one before), so
/// a request's copies are found by hashing, not by sorting the table: the tolerance below must
/// stay under it.
const BUCKET_SECONDS: i64 = 10;

/// `proxy_copies`: the rows of `proxy` that are copies of a request another source logged, by
/// (`source_file`, `source_line`, `ts`). A row is a copy when a row of the same client, method and
/// URL came from another source (another file, or another syslog sender) earlier or at the same
/// instant (then one of the two, always the same, is kept), within [`DUPLICATE_WITHIN_SECONDS`]
/// plus the longer of the two durations, and, when both were read by the same parser, with the
/// same sizes (different products count bytes differently). The join is on a fingerprint of client, method and URL and a time bucket (integers, not the
/// URLs themselves), over the rows read once (`k` is computed once: see `materialize`); a semi
/// join, so each copy is named once without a DISTINCT over millions of string keys.
fn copies_sql() -> String {
    let src = "fingerprint(log_host, source_file)";
    let bucket = format!("CAST(floor(date_part('epoch', ts) / {BUCKET_SECONDS}) AS BIGINT)");
    format!(
        "WITH k AS (
          SELECT fingerprint(client_ip, method, url) AS r, {src} AS src, ts, source_format,
                 duration_ms, request_bytes, response_bytes, source_file, source_line, {bucket} AS b
          FROM proxy
          WHERE client_ip IS NOT NULL AND method IS NOT NULL AND url IS NOT NULL
        ),
        earlier AS (
          SELECT r, src, ts, source_format, duration_ms, request_bytes, response_bytes, b AS kb FROM k
          UNION ALL
          SELECT r, src, ts, source_format, duration_ms, request_bytes, response_bytes, b + 1 AS kb FROM k
        )
        SELECT p.source_file, p.source_line, p.ts
        FROM k p
        WHERE EXISTS (
          SELECT 1 FROM earlier o
          WHERE o.r = p.r AND o.kb = p.b
          AND o.src <> p.src
          AND (o.ts < p.ts OR (o.ts = p.ts AND o.src < p.src))
          AND date_part('epoch', p.ts) - date_part('epoch', o.ts)
                <= {DUPLICATE_WITHIN_SECONDS} + greatest(coalesce(p.duration_ms, 0), coalesce(o.duration_ms, 0)) / 1000.0
          AND (o.source_format <> p.source_format
               OR ((o.request_bytes IS NOT DISTINCT FROM p.request_bytes)
                   AND (o.response_bytes IS NOT DISTINCT FROM p.response_bytes))))"
    )
}

/// `proxy_unique`: `proxy` with each request once (without the rows of `proxy_copies`).
fn unique_sql() -> String {
    "SELECT p.* FROM proxy p
     LEFT ANTI JOIN proxy_copies c
       ON c.source_file = p.source_file AND c.source_line = p.source_line AND c.ts = p.ts"
        .to_string()
}

/// `proxy_hours`: one row per actor (the user name, or the client address when there is none),
/// partition date and local hour, with its requests and first and last times. Hour-of-day habits
/// (after-hours baselines, who is a machine) read this instead of millions of rows; over `table`
/// (`proxy` for the time range, `proxy_history` for its history twin).
fn hours_sql(table: &str) -> String {
    format!(
        "SELECT coalesce(username, client_ip) AS who, date, date_part('hour', local_ts(ts)) AS hour,
                count(*) AS requests, min(ts) AS first_ts, max(ts) AS last_ts
        FROM {table} GROUP BY 1, 2, 3"
    )
}

/// `proxy_actors`: one row per actor over the whole lake: days seen, distinct local hours a day
/// on average, and whether that shape is a machine's (busy round the clock) rather than a person's.
fn actors_sql() -> String {
    format!(
        "SELECT who, count(DISTINCT date) AS days, count(*) AS active_hours,
                CAST(count(*) AS DOUBLE) / count(DISTINCT date) AS hours_per_day,
                CAST(count(*) AS DOUBLE) / count(DISTINCT date) >= {MACHINE_HOURS_PER_DAY} AS machine
        FROM {} h
        GROUP BY who",
        history_name("proxy_hours")
    )
}

/// How a derived view is kept: as SQL run where it is read, or computed once per session the
/// first time it is read (small results that several detections read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    View,
    Once,
}

/// A derived view: its name, its SQL, how it is kept, and whether it has a history twin
/// (`<name>_history`, the same SQL over the `_history` tables).
pub struct Derived {
    pub name: String,
    pub sql: String,
    pub kept: Kept,
    twin: Option<String>,
}

/// The derived views in the order they must be registered (a twin before the views reading it).
pub fn derived() -> Vec<Derived> {
    let view = |name: &str, sql: String, kept| Derived { name: name.to_string(), sql, kept, twin: None };
    vec![
        view("proxy_copies", copies_sql(), Kept::Once),
        view("proxy_unique", unique_sql(), Kept::View),
        Derived {
            name: "proxy_hours".to_string(),
            sql: hours_sql("proxy"),
            kept: Kept::Once,
            twin: Some(hours_sql(&history_name("proxy"))),
        },
        view("proxy_actors", actors_sql(), Kept::Once),
    ]
}

/// Registers (or re-registers, after the tables under them changed) the derived views. Without a
/// time range a view and its history twin are one table, computed once.
pub async fn register(ctx: &SessionContext, restricted: bool) -> datafusion::error::Result<()> {
    if !ctx.table_exist("proxy")? {
        return Ok(());
    }
    for d in derived() {
        let table = kept_table(ctx, &d.name, &d.sql, d.kept).await?;
        if let Some(twin_sql) = &d.twin {
            let twin_name = history_name(&d.name);
            let twin = if restricted {
                kept_table(ctx, &twin_name, twin_sql, d.kept).await?
            } else {
                Arc::clone(&table)
            };
            ctx.deregister_table(twin_name.as_str())?;
            ctx.register_table(twin_name.as_str(), twin)?;
        }
        ctx.deregister_table(d.name.as_str())?;
        ctx.register_table(d.name.as_str(), table)?;
    }
    Ok(())
}

async fn kept_table(
    ctx: &SessionContext,
    name: &str,
    sql: &str,
    kept: Kept,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    let df = super::materialize::plan(ctx, sql, SQLOptions::new()).await?;
    Ok(match kept {
        Kept::View => df.into_view(),
        Kept::Once => Arc::new(Materialized::new(name, df.into_optimized_plan()?)),
    })
}
