//! Views every session has over the lake's tables: the whole history behind a time range, each
//! request once however many sources logged it, and who is a person and who a machine. They are
//! SQL over the tables (nothing is stored, no row of `proxy` is ever removed), registered here
//! once so every detection and every ad-hoc query counts the same way.

use datafusion::execution::context::SessionContext;

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

/// `proxy_unique`: `proxy` with each request once. A row is a copy when a row of the same
/// client, method and URL came from another source (another file, or another syslog sender)
/// earlier or at the same instant (then the source that sorts first is kept), within
/// [`DUPLICATE_WITHIN_SECONDS`] plus the longer of the two durations, and, when both were read by
/// the same parser, with the same sizes (different products count bytes differently).
fn unique_sql() -> String {
    let key = "coalesce(log_host, '') || '|' || source_file";
    let bucket = format!("CAST(floor(date_part('epoch', ts) / {BUCKET_SECONDS}) AS BIGINT)");
    format!(
        "WITH k AS (
          SELECT client_ip, method, url, ts, {key} AS src, source_format, duration_ms,
                 request_bytes, response_bytes, {bucket} AS b
          FROM proxy
        ),
        earlier AS (SELECT *, b AS kb FROM k UNION ALL SELECT *, b + 1 AS kb FROM k)
        SELECT p.* EXCLUDE (src_, b_)
        FROM (SELECT *, {key} AS src_, {bucket} AS b_ FROM proxy) p
        LEFT ANTI JOIN earlier o
          ON o.client_ip = p.client_ip AND o.method = p.method AND o.url = p.url AND o.kb = p.b_
          AND o.src <> p.src_
          AND (o.ts < p.ts OR (o.ts = p.ts AND o.src < p.src_))
          AND date_part('epoch', p.ts) - date_part('epoch', o.ts)
                <= {DUPLICATE_WITHIN_SECONDS} + greatest(coalesce(p.duration_ms, 0), coalesce(o.duration_ms, 0)) / 1000.0
          AND (o.source_format <> p.source_format
               OR ((o.request_bytes IS NOT DISTINCT FROM p.request_bytes)
                   AND (o.response_bytes IS NOT DISTINCT FROM p.response_bytes)))"
    )
}

/// `proxy_actors`: one row per actor (the user name, or the client address when there is none)
/// over the whole lake: days seen, distinct local hours a day on average, and whether that shape
/// is a machine's (busy round the clock) rather than a person's.
fn actors_sql() -> String {
    format!(
        "SELECT who, count(DISTINCT date) AS days, count(*) AS active_hours,
                CAST(count(*) AS DOUBLE) / count(DISTINCT date) AS hours_per_day,
                CAST(count(*) AS DOUBLE) / count(DISTINCT date) >= {MACHINE_HOURS_PER_DAY} AS machine
        FROM (
          SELECT coalesce(username, client_ip) AS who, date, date_part('hour', local_ts(ts)) AS hour
          FROM proxy_history GROUP BY 1, 2, 3
        ) h
        GROUP BY who"
    )
}

/// The derived views and their SQL, in the order they must be registered.
pub fn derived() -> [(&'static str, String); 2] {
    [("proxy_unique", unique_sql()), ("proxy_actors", actors_sql())]
}

/// Registers (or re-registers, after the tables under them changed) the derived views.
pub async fn register(ctx: &SessionContext) -> datafusion::error::Result<()> {
    if !ctx.table_exist("proxy")? {
        return Ok(());
    }
    for (name, sql) in derived() {
        let view = ctx.sql(&sql).await?.into_view();
        ctx.deregister_table(name)?;
        ctx.register_table(name, view)?;
    }
    Ok(())
}
