//! One printer for query and detection results: a table on a terminal, files for reports.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use comfy_table::{ContentArrangement, Table, modifiers::UTF8_ROUND_CORNERS, presets::UTF8_FULL};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::ArrowWriter;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

impl OutputFormat {
    /// The format a file name asks for, by its extension.
    pub fn from_path(path: &Path) -> Option<OutputFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" => OutputFormat::Csv,
            "json" => OutputFormat::Json,
            "ndjson" | "jsonl" => OutputFormat::Ndjson,
            "parquet" => OutputFormat::Parquet,
            "txt" => OutputFormat::Table,
            _ => return None,
        })
    }

    /// The extension of a file written in this format.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Table => "txt",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Ndjson => "ndjson",
            OutputFormat::Parquet => "parquet",
        }
    }
}

/// Errors writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    #[error("{0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    #[error("{0} exists: pass --force to overwrite it")]
    Exists(String),
    #[error("Parquet is binary: write it to a file with -o results.parquet")]
    ParquetToTerminal,
}

/// Writes `batches` in `format`; `max_rows` limits only the terminal table.
pub fn write_batches(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut dyn Write,
    max_rows: Option<usize>,
) -> Result<(), OutputError> {
    match format {
        OutputFormat::Table => write_table(schema, batches, out, max_rows),
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(out);
            if batches.is_empty() {
                w.write(&flatten_nested(&RecordBatch::new_empty(schema.clone()))?)?;
            }
            for b in batches {
                w.write(&flatten_nested(b)?)?;
            }
            Ok(())
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                // The JSON writer prints nothing for no rows; an empty array is still valid JSON.
                w.into_inner().write_all(b"[]")?;
            }
            Ok(())
        }
        OutputFormat::Ndjson => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            Ok(())
        }
        OutputFormat::Parquet => Err(OutputError::ParquetToTerminal),
    }
}

/// Writes results to `path` (refusing to overwrite unless `force`).
pub fn write_file(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    path: &Path,
    force: bool,
) -> Result<(), OutputError> {
    if path.exists() && !force {
        return Err(OutputError::Exists(path.display().to_string()));
    }
    let file = File::create(path)?;
    if format == OutputFormat::Parquet {
        let mut w = ArrowWriter::try_new(file, schema.clone(), None)?;
        for b in batches {
            w.write(b)?;
        }
        w.close()?;
        return Ok(());
    }
    let mut buf = io::BufWriter::new(file);
    write_batches(format, schema, batches, &mut buf, None)?;
    buf.flush()?;
    Ok(())
}

/// CSV has no lists or maps: such columns are written as their display text (`[87, 127]`).
fn flatten_nested(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.data_type().is_nested() {
            let fmt = ArrayFormatter::try_new(c.as_ref(), &options)?;
            let text: StringArray =
                (0..c.len()).map(|i| c.is_valid(i).then(|| fmt.value(i).to_string())).collect();
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn write_table(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut dyn Write,
    max_rows: Option<usize>,
) -> Result<(), OutputError> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL).apply_modifier(UTF8_ROUND_CORNERS);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(schema.fields().iter().map(|f| f.name().clone()));
    let options = FormatOptions::default().with_null("NULL");
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let limit = max_rows.unwrap_or(usize::MAX);
    let mut shown = 0;
    'outer: for b in batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..b.num_rows() {
            if shown == limit {
                break 'outer;
            }
            table.add_row(formatters.iter().map(|f| f.value(row).to_string()));
            shown += 1;
        }
    }
    writeln!(out, "{table}")?;
    if shown < total {
        writeln!(out, "{total} rows, first {shown} shown (export all with -o FILE.csv)")?;
    } else {
        writeln!(out, "{total} row{}", if total == 1 { "" } else { "s" })?;
    }
    Ok(())
}
