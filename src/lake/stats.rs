//! Per-file statistics for Delta Add actions, in Delta's stats JSON (`numRecords`, `minValues`,
//! `maxValues`, `nullCount`), taken from the row groups a writer flushed: Delta engines skip
//! files by them (a filter on `ts` reads only the files whose range it meets).
//!
//! Only top-level integer, timestamp and text columns get a range; a column without Parquet
//! statistics (free text, see `writer_properties`) gets none, which readers take as "may hold
//! anything". Every range is a bound, never narrower than the data: Delta records timestamps in
//! milliseconds, so a minimum is rounded down and a maximum up.

use datafusion::parquet::basic::{LogicalType, TimeUnit};
use datafusion::parquet::file::metadata::RowGroupMetaData;
use datafusion::parquet::file::statistics::Statistics;
use datafusion::parquet::schema::types::ColumnDescriptor;
use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value, json};

use crate::schema::{ColumnType, TableSpec};

/// The stats JSON of a file of `rows` rows made of `row_groups`.
pub(crate) fn delta_stats(row_groups: &[RowGroupMetaData], rows: u64) -> String {
    let Some(first) = row_groups.first() else {
        return json!({ "numRecords": rows }).to_string();
    };
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for (i, col) in first.schema_descr().columns().iter().enumerate() {
        // Leaves of lists and maps would need nested stats objects; nothing filters them by range.
        if col.path().parts().len() != 1 {
            continue;
        }
        let Some(stats) = row_groups.iter().map(|rg| rg.column(i).statistics()).collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let name = col.name().to_string();
        if let Some(n) = stats.iter().map(|s| s.null_count_opt()).sum::<Option<u64>>() {
            nulls.insert(name.clone(), json!(n));
        }
        // A row group of nulls only has no range and narrows nothing; one whose range is
        // missing for another reason leaves the column without a range.
        let mut ranges = Vec::new();
        for (rg, s) in row_groups.iter().zip(&stats) {
            match range(col, s) {
                Some(r) => ranges.push(r),
                None if s.null_count_opt() == Some(rg.num_rows() as u64) => {}
                None => {
                    ranges.clear();
                    break;
                }
            }
        }
        let lo = ranges.iter().map(|r| &r.0).min();
        let hi = ranges.iter().map(|r| &r.1).max();
        if let (Some(lo), Some(hi)) = (lo, hi) {
            min.insert(name.clone(), lo.to_json(false));
            max.insert(name, hi.to_json(true));
        }
    }
    json!({ "numRecords": rows, "minValues": min, "maxValues": max, "nullCount": nulls }).to_string()
}

/// What a file's Add action says of its rows: readers skip files by it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStats {
    /// `numRecords`.
    pub rows: Option<u64>,
    /// One entry per column of the table's files, in schema order.
    pub columns: Vec<ColumnBounds>,
}

/// A column's range and null count in one file; `None` where the stats do not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnBounds {
    /// A value no greater than any in the column, typed as the file column is.
    pub min: Option<ScalarValue>,
    /// A value no smaller than any in the column.
    pub max: Option<ScalarValue>,
    pub nulls: Option<u64>,
}

/// Reads a stats JSON (as [`delta_stats`] writes it, or any Delta writer) against the table's
/// columns. Stats that do not parse say nothing: a reader then reads the file.
pub(crate) fn read_stats(json: Option<&str>, spec: &TableSpec) -> FileStats {
    let unknown = || FileStats { rows: None, columns: vec![ColumnBounds::default(); spec.columns.len()] };
    let Some(Ok(v)) = json.map(serde_json::from_str::<Value>) else {
        return unknown();
    };
    let of = |key: &str, name: &str| v.get(key).and_then(|m| m.get(name));
    let columns = spec
        .columns
        .iter()
        .map(|c| ColumnBounds {
            min: of("minValues", &c.name).and_then(|x| bound(c.ty, x, false)),
            max: of("maxValues", &c.name).and_then(|x| bound(c.ty, x, true)),
            nulls: of("nullCount", &c.name).and_then(Value::as_u64),
        })
        .collect();
    FileStats { rows: v.get("numRecords").and_then(Value::as_u64), columns }
}

/// A stats value as a bound of a column of type `ty`.
fn bound(ty: ColumnType, v: &Value, upper: bool) -> Option<ScalarValue> {
    match ty {
        ColumnType::Long => Some(ScalarValue::Int64(Some(v.as_i64()?))),
        ColumnType::Int => Some(ScalarValue::Int32(Some(i32::try_from(v.as_i64()?).ok()?))),
        ColumnType::String => Some(ScalarValue::Utf8(Some(v.as_str()?.to_string()))),
        ColumnType::Timestamp => {
            let us = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?.timestamp_micros();
            // Delta keeps milliseconds, and other writers truncate to them: a maximum covers
            // the whole millisecond it names.
            let us = if upper { us.checked_add(999)? } else { us };
            Some(ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into())))
        }
        ColumnType::Binary | ColumnType::IntList | ColumnType::StringMap => None,
    }
}

/// A column value as statistics order it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    Int(i64),
    /// Microseconds since the epoch, UTC.
    Micros(i64),
    Text(String),
}

impl Bound {
    /// The value as Delta writes it; `upper` rounds a timestamp up to the millisecond.
    fn to_json(&self, upper: bool) -> Value {
        match self {
            Bound::Int(v) => json!(v),
            Bound::Text(s) => json!(s),
            Bound::Micros(us) => {
                let ms = if upper {
                    us.div_euclid(1000) + i64::from(us.rem_euclid(1000) != 0)
                } else {
                    us.div_euclid(1000)
                };
                match chrono::DateTime::from_timestamp_millis(ms) {
                    Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
                    None => Value::Null,
                }
            }
        }
    }
}

/// One row group's (min, max) of a column, when its type is one Delta ranges are kept for.
fn range(col: &ColumnDescriptor, s: &Statistics) -> Option<(Bound, Bound)> {
    let logical = col.logical_type_ref();
    match (s, logical) {
        (Statistics::Int32(v), None | Some(LogicalType::Integer { .. })) => {
            Some((Bound::Int(i64::from(*v.min_opt()?)), Bound::Int(i64::from(*v.max_opt()?))))
        }
        (Statistics::Int64(v), None | Some(LogicalType::Integer { .. })) => {
            Some((Bound::Int(*v.min_opt()?), Bound::Int(*v.max_opt()?)))
        }
        (Statistics::Int64(v), Some(LogicalType::Timestamp(t))) if t.is_adjusted_to_u_t_c => {
            let (lo, hi) = (*v.min_opt()?, *v.max_opt()?);
            let (lo, hi) = match t.unit {
                TimeUnit::MILLIS => (lo.checked_mul(1000)?, hi.checked_mul(1000)?),
                TimeUnit::MICROS => (lo, hi),
                // Rounded outwards, so the range still holds every value.
                TimeUnit::NANOS => {
                    (lo.div_euclid(1000), hi.div_euclid(1000) + i64::from(hi.rem_euclid(1000) != 0))
                }
            };
            Some((Bound::Micros(lo), Bound::Micros(hi)))
        }
        (Statistics::ByteArray(v), Some(LogicalType::String)) => {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
            Some((Bound::Text(text(v.min_opt()?.data())?), Bound::Text(text(v.max_opt()?.data())?)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit as ArrowUnit};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;

    use super::*;

    /// Stats of one file written from `batches` (one row group each).
    fn stats_of(batches: &[RecordBatch]) -> Value {
        let mut w = ArrowWriter::try_new(Vec::new(), batches[0].schema(), None).unwrap();
        for b in batches {
            w.write(b).unwrap();
            w.flush().unwrap();
        }
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        serde_json::from_str(&delta_stats(w.flushed_row_groups(), rows)).unwrap()
    }

    fn batch(ts: Vec<Option<i64>>, user: Vec<Option<&str>>, line: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into())), true),
            Field::new("username", DataType::Utf8, true),
            Field::new("source_line", DataType::Int64, false),
        ]));
        let ts = TimestampMicrosecondArray::from(ts).with_timezone("UTC");
        RecordBatch::try_new(
            schema,
            vec![Arc::new(ts), Arc::new(StringArray::from(user)), Arc::new(Int64Array::from(line))],
        )
        .unwrap()
    }

    #[test]
    fn ranges_span_every_row_group_and_round_timestamps_outwards() {
        let a = batch(vec![Some(1_000_500), Some(2_000_000)], vec![Some("bob"), None], vec![7, 9]);
        // A row group whose times are all null narrows nothing.
        let b = batch(vec![None, None], vec![Some("alice"), None], vec![3, 4]);
        let c = batch(vec![Some(5_000_001)], vec![None], vec![12]);
        let s = stats_of(&[a, b, c]);
        assert_eq!(s["numRecords"], 5);
        assert_eq!(s["minValues"]["ts"], "1970-01-01T00:00:01.000Z");
        assert_eq!(s["maxValues"]["ts"], "1970-01-01T00:00:05.001Z");
        assert_eq!(
            (&s["minValues"]["username"], &s["maxValues"]["username"]),
            (&json!("alice"), &json!("bob"))
        );
        assert_eq!((&s["minValues"]["source_line"], &s["maxValues"]["source_line"]), (&json!(3), &json!(12)));
        assert_eq!(s["nullCount"], json!({ "ts": 2, "username": 3, "source_line": 0 }));
    }

    #[test]
    fn stats_read_back_as_bounds_that_cover_each_millisecond() {
        let a = batch(vec![Some(1_000_500), Some(2_000_000)], vec![Some("bob"), None], vec![7, 9]);
        let json = {
            let mut w = ArrowWriter::try_new(Vec::new(), a.schema(), None).unwrap();
            w.write(&a).unwrap();
            w.flush().unwrap();
            delta_stats(w.flushed_row_groups(), 2)
        };
        let spec = &crate::schema::PROXY;
        let s = read_stats(Some(&json), spec);
        assert_eq!(s.rows, Some(2));
        assert_eq!(s.columns.len(), spec.columns.len());
        let col = |name: &str| &s.columns[spec.index_of(name).unwrap()];
        let utc = |us| ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into()));
        // 1.0005 s is written as 1.000 (down) and 2.000 s as 2.000; read back, the maximum
        // covers all of its millisecond.
        assert_eq!(
            (col("ts").min.clone(), col("ts").max.clone()),
            (Some(utc(1_000_000)), Some(utc(2_000_999)))
        );
        assert_eq!(col("username").min, Some(ScalarValue::Utf8(Some("bob".into()))));
        assert_eq!(col("username").nulls, Some(1));
        assert_eq!(col("source_line").max, Some(ScalarValue::Int64(Some(9))));
        assert_eq!(*col("url"), ColumnBounds::default(), "a column the file lacks has no stats");
        assert_eq!(
            read_stats(Some("not json"), spec),
            FileStats { rows: None, columns: vec![ColumnBounds::default(); spec.columns.len()] }
        );
        assert_eq!(read_stats(None, spec).rows, None);
    }

    #[test]
    fn a_file_without_row_groups_counts_its_rows_only() {
        assert_eq!(delta_stats(&[], 0), r#"{"numRecords":0}"#);
    }
}
