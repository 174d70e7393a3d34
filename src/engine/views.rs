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

/// `proxy_unique`: `proxy` with each request once. A row repeats the one before it (ordered by
/// time within the same client, method and URL) when that row came from another source (another
/// file, or another syslog sender), lies within [`DUPLICATE_WITHIN_SECONDS`] plus the longer
/// duration, and, when both were read by the same parser, has the same sizes.
fn unique_sql() -> String {
    format!(
        "SELECT * EXCLUDE (source_key, prev_ts, prev_source, prev_format, prev_duration, prev_request, prev_response)
        FROM (
          SELECT *,
            coalesce(log_host, '') || '|' || source_file AS source_key,
            lag(ts) OVER w AS prev_ts,
            lag(coalesce(log_host, '') || '|' || source_file) OVER w AS prev_source,
            lag(source_format) OVER w AS prev_format,
            lag(duration_ms) OVER w AS prev_duration,
            lag(request_bytes) OVER w AS prev_request,
            lag(response_bytes) OVER w AS prev_response
          FROM proxy
          WINDOW w AS (PARTITION BY client_ip, method, url ORDER BY ts, source_file, source_line)
        ) p
        WHERE prev_ts IS NULL
           OR prev_source = source_key
           OR date_part('epoch', ts) - date_part('epoch', prev_ts)
                > {DUPLICATE_WITHIN_SECONDS} + greatest(coalesce(duration_ms, 0), coalesce(prev_duration, 0)) / 1000.0
           OR (prev_format = source_format
               AND ((request_bytes IS DISTINCT FROM prev_request) OR (response_bytes IS DISTINCT FROM prev_response)))"
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
