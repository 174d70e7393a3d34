//! The `rejects` table's builders: every line no parser could read, kept with where and why.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryBuilder, Int64Builder, StringBuilder};
use datafusion::arrow::record_batch::RecordBatch;

use crate::formats::Batch;
use crate::schema::REJECTS;

/// Raw bytes kept per rejected line; the rest of an enormous line is not worth the lake's space.
pub const RAW_KEEP: usize = 64 << 10;

/// Builders for `rejects`.
#[derive(Default)]
pub struct RejectSink {
    source_file: StringBuilder,
    source_line: Int64Builder,
    source_format: StringBuilder,
    reason: StringBuilder,
    line: StringBuilder,
    raw: BinaryBuilder,
    rows: usize,
}

impl RejectSink {
    /// Keeps one rejected line.
    pub fn push(&mut self, file: &str, line_no: u64, format: &str, reason: &str, raw: &[u8]) {
        let raw = &raw[..raw.len().min(RAW_KEEP)];
        self.source_file.append_value(file);
        self.source_line.append_value(line_no as i64);
        self.source_format.append_value(format);
        self.reason.append_value(reason);
        self.line.append_value(String::from_utf8_lossy(raw));
        self.raw.append_value(raw);
        self.rows += 1;
    }

    /// Rejected lines waiting.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The waiting lines as a batch; the builders start over.
    pub fn take_batch(&mut self) -> Batch {
        let columns: Vec<ArrayRef> = REJECTS
            .columns
            .iter()
            .map(|c| -> ArrayRef {
                match c.name.as_str() {
                    "source_file" => Arc::new(self.source_file.finish()),
                    "source_line" => Arc::new(self.source_line.finish()),
                    "source_format" => Arc::new(self.source_format.finish()),
                    "reason" => Arc::new(self.reason.finish()),
                    "line" => Arc::new(self.line.finish()),
                    "raw" => Arc::new(self.raw.finish()),
                    other => unreachable!("schemas/rejects.json names {other:?}, unknown here"),
                }
            })
            .collect();
        self.rows = 0;
        let batch = RecordBatch::try_new(REJECTS.arrow_schema(), columns)
            .expect("one value per column per rejected line");
        Batch { batch, days: Vec::new() }
    }
}
