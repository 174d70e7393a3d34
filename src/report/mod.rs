//! The case report: one self-contained HTML file (sources and coverage, findings, overview, a
//! person's timeline), and the timeline and coverage facts as tables. Reads the lake only
//! through the engine; never ingests, never parses logs, never refers to anything outside the
//! HTML file it writes.

use chrono_tz::Tz;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::error::ArrowError;

use crate::engine::{Engine, QueryError};
use crate::output::OutputError;

pub mod coverage;
pub mod findings;
mod html;
pub mod i18n;
mod overview;
pub mod pseudo;
mod render;
mod svg;
pub mod timeline;

pub use coverage::{By, Coverage, coverage};
pub use findings::FindingView;
pub use i18n::Lang;
pub use pseudo::Pseudonymiser;
pub use render::{CaseInfo, ReportOptions, render};

/// Errors building a report, saying what to do about them.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("pseudonym key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("{0}")]
    Usage(String),
}

/// Runs a query to its batches.
async fn query(engine: &Engine, sql: &str) -> Result<Vec<RecordBatch>, ReportError> {
    let df = engine.sql(sql).await?;
    Ok(df.collect().await.map_err(|e| engine.explain(e))?)
}

/// Column `i` as text (any string or display type cast to UTF-8).
fn column_str(b: &RecordBatch, i: usize) -> Result<Vec<Option<String>>, ReportError> {
    let c = cast(b.column(i), &DataType::Utf8)?;
    Ok(c.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
}

/// Column `i` as 64-bit integers (floats are truncated).
fn column_i64(b: &RecordBatch, i: usize) -> Result<Vec<Option<i64>>, ReportError> {
    let c = cast(b.column(i), &DataType::Int64)?;
    let c = c.as_primitive::<Int64Type>();
    Ok((0..c.len()).map(|k| c.is_valid(k).then(|| c.value(k))).collect())
}

/// Values as a SQL list of quoted strings (quotes doubled).
fn sql_list(values: &[String]) -> String {
    values.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect::<Vec<_>>().join(", ")
}

/// A UTC instant as the lake's wall time, `YYYY-MM-DD HH:MM:SS`.
pub fn local_time(tz: Tz, us: i64) -> String {
    use chrono::TimeZone;
    tz.timestamp_micros(us).single().map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A wall time in the lake's zone as written by `local_ts` (`2024-06-04T14:00:00[.123]`) or
/// as `YYYY-MM-DD HH:MM:SS`, to a UTC instant.
pub fn parse_local(tz: Tz, s: &str) -> Option<i64> {
    use chrono::{NaiveDateTime, TimeZone};
    let t = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())?;
    Some(tz.from_local_datetime(&t).earliest()?.timestamp_micros())
}
