//! The only place that builds a DataFusion session: lake tables, trawl's SQL functions, and the
//! read-only rule for user SQL.

use std::net::IpAddr;
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};

use crate::error::LakeError;
use crate::lake::Lake;
use crate::localtime::offset_at;
use crate::schema::all_tables;
use crate::urlparts::split_url;

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
}

impl Engine {
    /// Opens the lake's Delta tables and registers them, with trawl's functions.
    pub async fn new(lake: &Lake) -> Result<Engine, QueryError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config(config);
        let mut tables = Vec::new();
        for spec in all_tables() {
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
        register_functions(&ctx, lake.tz());
        ctx.register_batch("ifilter_categories", ifilter_categories())
            .map_err(|e| QueryError::Sql { message: e.to_string(), tables: String::new() })?;
        tables.push("ifilter_categories".into());
        Ok(Engine { ctx, tables })
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

/// i-FILTER's URL categories (`schemas/ifilter-categories.tsv`): id, Japanese and English name.
pub fn ifilter_categories() -> RecordBatch {
    let tsv = include_str!("../schemas/ifilter-categories.tsv");
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

fn utf8_map(args: &[ColumnarValue], f: impl Fn(&str) -> Option<String>) -> DfResult<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let input = arrays[0]
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| DataFusionError::Execution("expected a string argument".into()))?;
    let out: StringArray = input.iter().map(|v| v.and_then(&f)).collect();
    let out: ArrayRef = Arc::new(out);
    Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

/// Registrable domain by the Public Suffix List: `a.b.example.co.jp` gives `example.co.jp`.
/// IP addresses come back unchanged; names without a known suffix give NULL.
pub fn reg_domain(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() {
        return Some(host);
    }
    psl::domain_str(&host).map(str::to_string)
}

fn register_functions(ctx: &SessionContext, tz: Tz) {
    ctx.register_udf(create_udf(
        "reg_domain",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| utf8_map(args, reg_domain)),
    ));
    ctx.register_udf(create_udf(
        "url_host",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            utf8_map(args, |u| {
                split_url(u.as_bytes()).host.map(|h| String::from_utf8_lossy(h).to_ascii_lowercase())
            })
        }),
    ));
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    ctx.register_udf(create_udf(
        "local_ts",
        vec![utc],
        DataType::Timestamp(TimeUnit::Microsecond, None),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let ts = arrays[0]
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| DataFusionError::Execution("local_ts expects a timestamp".into()))?;
            let out: TimestampMicrosecondArray = ts
                .iter()
                .map(|v| v.map(|us| us + offset_at(&tz, us.div_euclid(1_000_000)) as i64 * 1_000_000))
                .collect();
            let out: ArrayRef = Arc::new(out);
            Ok(if out.len() == 1 && matches!(args[0], ColumnarValue::Scalar(_)) {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
            } else {
                ColumnarValue::Array(out)
            })
        }),
    ));
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

    #[test]
    fn registrable_domains() {
        assert_eq!(reg_domain("a.b.example.co.jp").as_deref(), Some("example.co.jp"));
        assert_eq!(reg_domain("WWW.Example.COM").as_deref(), Some("example.com"));
        assert_eq!(reg_domain("10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(reg_domain("drive.google.com").as_deref(), Some("google.com"));
    }
}
