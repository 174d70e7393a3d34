//! The only place that builds a DataFusion session: lake tables, trawl's SQL functions, and the
//! read-only rule for user SQL.

use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::config::ConfigOptions;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::scalar::ScalarValue;

pub mod functions;

pub use functions::reg_domain;

use crate::error::LakeError;
use crate::lake::Lake;
use crate::schema::{DATE_COLUMN, TableSpec, all_tables};

/// Errors from running SQL, with what the user can do about them.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(
        "{message}\n\ntables in this lake: {tables}\n(see columns with: trawl query --lake <LAKE> --schema)"
    )]
    Sql { message: String, tables: String },
    #[error("{0}")]
    ReadOnly(String),
}

/// A session over one lake, with every table registered.
pub struct Engine {
    ctx: SessionContext,
    tables: Vec<String>,
    tz: Tz,
    restricted: bool,
}

impl Engine {
    /// Opens the lake's Delta tables and registers them, with trawl's functions.
    pub async fn new(lake: &Lake) -> Result<Engine, QueryError> {
        Self::with_tables(lake, &all_tables()).await
    }

    /// The same, with only some of the lake's tables: loading a Delta log costs with its size,
    /// and ingest reading its ledger needs none of the data tables.
    pub async fn with_tables(lake: &Lake, specs: &[&TableSpec]) -> Result<Engine, QueryError> {
        let ctx = Self::context()?;
        let mut tables = Vec::new();
        for spec in specs {
            let Some(table) = lake.load_table(spec).await? else {
                continue;
            };
            let delta = |e: deltalake::DeltaTableError| LakeError::delta(&spec.table, e);
            table.update_datafusion_session(&ctx.state()).map_err(delta)?;
            let provider = table.table_provider().await.map_err(|e| QueryError::Sql {
                message: format!("opening table {}: {e}", spec.table),
                tables: String::new(),
            })?;
            ctx.register_table(spec.table.as_str(), provider)
                .map_err(|e| QueryError::Sql { message: e.to_string(), tables: String::new() })?;
            tables.push(spec.table.clone());
        }
        Self::with_builtins(ctx, tables, lake.tz())
    }

    /// A session with every table of the lake layout present but empty: SQL plans against it
    /// exactly as against a lake (`trawl detect --lint` checks packs with no lake at hand).
    pub fn offline(tz: Tz) -> Result<Engine, QueryError> {
        let ctx = Self::context()?;
        let mut tables = Vec::new();
        for spec in all_tables() {
            ctx.register_batch(spec.table.as_str(), RecordBatch::new_empty(spec.table_schema()))
                .map_err(|e| QueryError::Sql { message: e.to_string(), tables: String::new() })?;
            tables.push(spec.table.clone());
        }
        Self::with_builtins(ctx, tables, tz)
    }

    /// The session configuration every engine starts from.
    fn context() -> Result<SessionContext, QueryError> {
        // DATAFUSION_* variables (as datafusion-cli reads them) tune the session without a
        // rebuild, e.g. DATAFUSION_EXECUTION_BATCH_SIZE; target_partitions defaults to the cores.
        let options = ConfigOptions::from_env()
            .map_err(|e| QueryError::Sql { message: e.strip_backtrace(), tables: String::new() })?;
        let config = SessionConfig::from(options).with_information_schema(true);
        Ok(SessionContext::new_with_config(config))
    }

    /// trawl's functions and built-in lookup tables, on top of the lake's tables.
    fn with_builtins(ctx: SessionContext, tables: Vec<String>, tz: Tz) -> Result<Engine, QueryError> {
        functions::register_functions(&ctx, tz);
        let mut engine = Engine { ctx, tables, tz, restricted: false };
        engine.register_batch("ifilter_categories", ifilter_categories())?;
        Ok(engine)
    }

    /// Registers an in-memory table, replacing one of the same name (a pack's own list, say).
    pub fn register_batch(&mut self, name: &str, batch: RecordBatch) -> Result<(), QueryError> {
        let sql = |e: DataFusionError| QueryError::Sql { message: e.to_string(), tables: String::new() };
        self.ctx.deregister_table(name).map_err(sql)?;
        self.ctx.register_batch(name, batch).map_err(sql)?;
        if !self.tables.iter().any(|t| t == name) {
            self.tables.push(name.to_string());
        }
        Ok(())
    }

    /// Limits every time-partitioned table to `range`: each is replaced by a view filtering `ts`
    /// and `date` (which prunes partition files), so SQL over it needs no time conditions.
    pub async fn restrict(&mut self, range: &TimeRange) -> Result<(), QueryError> {
        if range.since.is_none() && range.until.is_none() {
            return Ok(());
        }
        let utc = |us: i64| lit(ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into())));
        let day = |us: i64| lit(local_day(self.tz, us));
        for spec in all_tables().into_iter().filter(|s| s.partition_by_date) {
            let name = spec.table.as_str();
            if !self.tables.iter().any(|t| t == name) {
                continue;
            }
            let mut conditions = Vec::new();
            if let Some(s) = range.since {
                conditions.push(col("ts").gt_eq(utc(s)));
                conditions.push(col(DATE_COLUMN).gt_eq(day(s)));
            }
            if let Some(u) = range.until {
                conditions.push(col("ts").lt(utc(u)));
                conditions.push(col(DATE_COLUMN).lt_eq(day(u - 1)));
            }
            let df = self.ctx.table(name).await.map_err(|e| self.explain(e))?;
            let filter = conditions.into_iter().reduce(Expr::and).expect("at least one bound");
            let view = df.filter(filter).map_err(|e| self.explain(e))?.into_view();
            self.ctx.deregister_table(name).map_err(|e| self.explain(e))?;
            self.ctx.register_table(name, view).map_err(|e| self.explain(e))?;
        }
        self.restricted = true;
        Ok(())
    }

    /// Whether `restrict` limited the tables to a time range.
    pub fn restricted(&self) -> bool {
        self.restricted
    }

    /// The lake's time zone (wall times in results are in it).
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The underlying session (for tests and the detection runner).
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// Names of the registered tables.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Plans a read-only statement: DDL, DML, COPY and SET are refused.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame, QueryError> {
        let options =
            SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        self.ctx.sql_with_options(sql, options).await.map_err(|e| self.explain(e))
    }

    /// Turns a DataFusion error into one that names the tables to pick from.
    pub fn explain(&self, e: DataFusionError) -> QueryError {
        let message = e.strip_backtrace();
        if message.contains("not supported")
            && (message.contains("DDL") || message.contains("DML") || message.contains("Statement"))
        {
            return QueryError::ReadOnly(format!(
                "refused: trawl's SQL is read-only ({message}); use -o FILE to save results"
            ));
        }
        let tables = if self.tables.is_empty() { "(none yet)".to_string() } else { self.tables.join(", ") };
        QueryError::Sql { message, tables }
    }
}

/// A time range over `ts`: `since` inclusive, `until` exclusive, microseconds since the epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    /// Reads `--since`/`--until`: RFC 3339 (`2024-05-01T09:00:00+09:00`), a local
    /// `YYYY-MM-DD HH:MM[:SS]`, or a date `YYYY-MM-DD` in the lake's zone. A date as `until`
    /// includes that whole day.
    pub fn parse(since: Option<&str>, until: Option<&str>, tz: Tz) -> Result<TimeRange, String> {
        let since = since.map(|s| parse_instant(s, tz, false).map_err(|e| format!("--since {s:?}: {e}")));
        let until = until.map(|s| parse_instant(s, tz, true).map_err(|e| format!("--until {s:?}: {e}")));
        let range = TimeRange { since: since.transpose()?, until: until.transpose()? };
        if let (Some(s), Some(u)) = (range.since, range.until)
            && s >= u
        {
            return Err("--since must be before --until".into());
        }
        Ok(range)
    }
}

fn parse_instant(s: &str, tz: Tz, end_of_day: bool) -> Result<i64, String> {
    use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, TimeZone};
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    let local = if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day { d.checked_add_days(Days::new(1)).ok_or("date out of range")? } else { d };
        d.and_hms_opt(0, 0, 0).ok_or("date out of range")?
    } else {
        ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .ok_or("use RFC 3339 (2024-05-01T09:00:00+09:00), YYYY-MM-DD HH:MM[:SS] or YYYY-MM-DD")?
    };
    // A wall time skipped by a DST change is taken at the first instant after the gap.
    let t = tz
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .ok_or("no such local time in the lake's zone")?;
    Ok(t.timestamp_micros())
}

/// The lake-zone date (`YYYY-MM-DD`, as in the `date` partition column) of an instant.
fn local_day(tz: Tz, us: i64) -> String {
    use chrono::TimeZone;
    tz.timestamp_micros(us).single().map(|t| t.date_naive().to_string()).unwrap_or_default()
}

/// i-FILTER's URL categories (`schemas/ifilter-categories.tsv`): id, Japanese and English name.
pub fn ifilter_categories() -> RecordBatch {
    let tsv = include_str!("../../schemas/ifilter-categories.tsv");
    let (mut ids, mut ja, mut en) = (Vec::new(), Vec::new(), Vec::new());
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut f = line.split('\t');
        let (Some(id), Some(j), Some(e)) = (f.next(), f.next(), f.next()) else { continue };
        let Ok(id) = id.trim().parse::<i32>() else { continue };
        ids.push(id);
        ja.push(j.to_string());
        en.push(e.to_string());
    }
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int32Array::from(ids)) as ArrayRef),
        ("name_ja", Arc::new(StringArray::from(ja)) as ArrayRef),
        ("name_en", Arc::new(StringArray::from(en)) as ArrayRef),
    ])
    .expect("three columns of equal length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_table_names_job_sites_storage_and_webmail() {
        let b = ifilter_categories();
        assert_eq!(b.num_rows(), 101);
        let ids = b.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        let ja = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let name = |id: i32| ja.value(ids.iter().position(|v| v == Some(id)).unwrap()).to_string();
        assert_eq!(name(50), "求人情報");
        assert_eq!(name(57), "Webメール");
        assert_eq!(name(83), "オンラインストレージ");
    }
}
