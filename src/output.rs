//! One printer for query and detection results: a table on a terminal, files for reports.

mod csv;
mod parquet;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use comfy_table::{ContentArrangement, Table, modifiers::UTF8_ROUND_CORNERS, presets::UTF8_FULL};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder as JsonWriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

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

/// Extensions `-o` recognises, as error messages list them.
const KNOWN_EXTENSIONS: &str = ".csv, .json, .ndjson (or .jsonl), .parquet, .txt (a table)";

/// Whether CSV starts with a UTF-8 byte-order mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CsvBom {
    /// In files (Excel, notably in Japanese, reads UTF-8 without one as the local code page),
    /// not into pipes (tools there would take it for part of the first column's name).
    #[default]
    Auto,
    Always,
    Never,
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Errors writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    // Not transparent: a broken pipe is found by its io::Error in the chain of sources.
    #[error("writing results")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    #[error("{0} exists: pass --force to overwrite it")]
    Exists(String),
    #[error("Parquet is binary: write it to a file with -o results.parquet")]
    ParquetToTerminal,
    #[error("cannot tell the format of {0} from its name: use one of {KNOWN_EXTENSIONS}, or pass --format")]
    UnknownExtension(String),
    #[error(
        "{path} is a link to {target}, which does not exist: write to the target itself, or remove the link"
    )]
    DanglingLink { path: String, target: String },
}

/// The format to write `path` in: `asked`, else the one its extension names (an unknown one is an
/// error, not CSV by default: `-o x.xlsx` must not give a CSV file named like a workbook).
pub fn format_for(path: &Path, asked: Option<OutputFormat>) -> Result<OutputFormat, OutputError> {
    match asked {
        Some(f) => Ok(f),
        None => OutputFormat::from_path(path)
            .ok_or_else(|| OutputError::UnknownExtension(path.display().to_string())),
    }
}

/// Writes `batches` in `format`; `max_rows` limits only the terminal table. CSV into a stream
/// gets a byte-order mark only with [`CsvBom::Always`].
pub fn write_batches(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut dyn Write,
    max_rows: Option<usize>,
    bom: CsvBom,
) -> Result<(), OutputError> {
    match format {
        OutputFormat::Table => write_table(schema, batches, out, max_rows),
        OutputFormat::Csv => {
            if bom == CsvBom::Always {
                out.write_all(BOM)?;
            }
            csv::write(schema, batches, out)
        }
        OutputFormat::Json => {
            // Null keys kept: readers build columns from the keys they see (pandas.read_json
            // would drop a column that is null in every row).
            let mut w = JsonWriterBuilder::new().with_explicit_nulls(true).build::<_, JsonArray>(out);
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
            let mut w = JsonWriterBuilder::new().with_explicit_nulls(true).build::<_, LineDelimited>(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            Ok(())
        }
        OutputFormat::Parquet => Err(OutputError::ParquetToTerminal),
    }
}

/// Writes results to `path`: refusing to overwrite unless `force`, and through a temporary file
/// in the same folder renamed at the end, so a failed write leaves no partial file behind.
pub fn write_file(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    path: &Path,
    force: bool,
    bom: CsvBom,
) -> Result<(), OutputError> {
    let target = destination(path, force)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = write_new(format, schema, batches, &tmp, bom);
    let placed = written.and_then(|()| place(&tmp, &target, force));
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed
}

/// Refuses early what [`write_file`] would refuse (an existing file without `force`, a dangling
/// link), so a long query is not run for nothing.
pub fn check_destination(path: &Path, force: bool) -> Result<(), OutputError> {
    destination(path, force).map(|_| ())
}

/// The file `path` stands for: a link's target when it has one; a dangling link is refused
/// (writing would create a file wherever it points).
fn destination(path: &Path, force: bool) -> Result<PathBuf, OutputError> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(real) => real,
            Err(_) => {
                let to = fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string());
                return Err(OutputError::DanglingLink { path: path.display().to_string(), target: to });
            }
        },
        _ => path.to_path_buf(),
    };
    if target.exists() && !force {
        return Err(OutputError::Exists(path.display().to_string()));
    }
    Ok(target)
}

/// Writes a new file at `tmp`.
fn write_new(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    tmp: &Path,
    bom: CsvBom,
) -> Result<(), OutputError> {
    let file = File::create_new(tmp)?;
    if format == OutputFormat::Parquet {
        return parquet::write(schema, batches, file);
    }
    let mut buf = io::BufWriter::new(file);
    if format == OutputFormat::Csv && bom != CsvBom::Never {
        buf.write_all(BOM)?;
    }
    write_batches(format, schema, batches, &mut buf, None, CsvBom::Never)?;
    buf.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
    Ok(())
}

/// Puts the finished `tmp` at `target`; without `force`, never over a file that appeared meanwhile.
fn place(tmp: &Path, target: &Path, force: bool) -> Result<(), OutputError> {
    if force {
        return Ok(fs::rename(tmp, target)?);
    }
    match fs::hard_link(tmp, target) {
        Ok(()) => Ok(fs::remove_file(tmp)?),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(OutputError::Exists(target.display().to_string()))
        }
        // A file system without hard links: the check before writing has to do.
        Err(_) if !target.exists() => Ok(fs::rename(tmp, target)?),
        Err(e) => Err(e.into()),
    }
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
