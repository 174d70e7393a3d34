//! CSV that spreadsheets and data frames read back as it was: NULL is an empty field and `''` a
//! quoted empty one (`user_agent` NULL is "not logged", `''` "logged as -"); lists, maps and
//! structs are JSON; each timestamp column has one precision (milliseconds, or finer when a
//! value needs it), so pandas parses the column and no value is cut.

use std::fmt::Write as _;
use std::io::{self, Write};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    DataType, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampNanosecondType,
};
use datafusion::arrow::json::writer::{EncoderOptions, NullableEncoder, make_encoder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::OutputError;

/// Writes a header and every row.
pub(super) fn write(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut dyn Write,
) -> Result<(), OutputError> {
    let mut w = io::BufWriter::with_capacity(1 << 16, out);
    let mut line = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        field(&mut line, f.name());
    }
    line.push(b'\n');
    w.write_all(&line)?;
    let formats: Vec<Option<String>> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| timestamp_format(f.data_type(), batches.iter().map(|b| b.column(i).as_ref())))
        .collect();
    let json = EncoderOptions::default().with_explicit_nulls(true);
    let mut text = String::new();
    for b in batches {
        let options: Vec<FormatOptions> = formats
            .iter()
            .map(|f| match f {
                Some(f) => FormatOptions::default()
                    .with_timestamp_format(Some(f.as_str()))
                    .with_timestamp_tz_format(Some(f.as_str())),
                None => FormatOptions::default(),
            })
            .collect();
        let mut columns = Vec::with_capacity(b.num_columns());
        for ((c, f), o) in b.columns().iter().zip(schema.fields()).zip(&options) {
            let nulls = c.logical_nulls();
            let kind = if c.data_type().is_nested() {
                Kind::Json(make_encoder(f, c.as_ref(), &json)?)
            } else {
                Kind::Text(ArrayFormatter::try_new(c.as_ref(), o)?)
            };
            columns.push(Column { nulls, kind });
        }
        for row in 0..b.num_rows() {
            line.clear();
            for (i, c) in columns.iter_mut().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                if c.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    continue;
                }
                text.clear();
                match &mut c.kind {
                    Kind::Text(f) => {
                        let _ = write!(text, "{}", f.value(row));
                    }
                    Kind::Json(e) => {
                        let mut bytes = Vec::new();
                        e.encode(row, &mut bytes);
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                field(&mut line, &text);
            }
            line.push(b'\n');
            w.write_all(&line)?;
        }
    }
    w.flush()?;
    Ok(())
}

struct Column<'a> {
    nulls: Option<NullBuffer>,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Text(ArrayFormatter<'a>),
    Json(NullableEncoder<'a>),
}

/// Appends one field, quoted when it is empty (so it is not NULL) or holds a separator, a quote
/// or a line break.
fn field(line: &mut Vec<u8>, value: &str) {
    if !value.is_empty() && !value.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        line.extend_from_slice(value.as_bytes());
        return;
    }
    line.push(b'"');
    for b in value.bytes() {
        if b == b'"' {
            line.push(b'"');
        }
        line.push(b);
    }
    line.push(b'"');
}

/// The chrono format for a timestamp column, with the same number of fraction digits in every
/// row (3, or 6 or 9 when some value has finer parts).
fn timestamp_format<'a>(ty: &DataType, columns: impl Iterator<Item = &'a dyn Array>) -> Option<String> {
    let DataType::Timestamp(unit, tz) = ty else { return None };
    let mut digits = 3;
    for c in columns {
        let fine = match unit {
            TimeUnit::Second | TimeUnit::Millisecond => 3,
            TimeUnit::Microsecond => {
                let v = c.as_primitive::<TimestampMicrosecondType>();
                if v.iter().flatten().any(|x| x % 1000 != 0) { 6 } else { 3 }
            }
            TimeUnit::Nanosecond => {
                let v = c.as_primitive::<TimestampNanosecondType>();
                if v.iter().flatten().any(|x| x % 1000 != 0) {
                    9
                } else if v.iter().flatten().any(|x| x % 1_000_000 != 0) {
                    6
                } else {
                    3
                }
            }
        };
        digits = digits.max(fine);
    }
    // Instants in ISO 8601; wall times (no zone, as `local_ts` gives) with a space, the form
    // Excel and LibreOffice take for a date and time.
    let (sep, zone) = match tz.as_deref() {
        None => (" ", ""),
        Some("UTC" | "Etc/UTC" | "+00:00" | "Z") => ("T", "Z"),
        Some(_) => ("T", "%:z"),
    };
    Some(format!("%Y-%m-%d{sep}%H:%M:%S%.{digits}f{zone}"))
}
