//! Log formats: one parser module per format, behind [`RowSink`], chosen by [`FormatKind`].

pub mod bytes;
pub mod ifilter;
pub mod logformat;
pub mod proxy;
pub mod squid;
pub mod syslog;
pub mod winfw;

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use crate::localtime::LocalDays;

/// Finishes a builder's array and leaves it with room for as many values as it just held.
///
/// Arrow's `finish` hands its buffers over and starts again from none, so every batch regrew
/// each column by doubling and copying (reallocations were 3% of an ingest's time). Batches
/// are of a steady size, so the last one's is the best guess for the next.
pub(crate) trait FinishSized {
    /// The finished array; the builder is empty and sized for as many values again.
    fn finish_sized(&mut self) -> datafusion::arrow::array::ArrayRef;
}

impl FinishSized for datafusion::arrow::array::StringBuilder {
    fn finish_sized(&mut self) -> datafusion::arrow::array::ArrayRef {
        use datafusion::arrow::array::ArrayBuilder;
        let (items, bytes) = (ArrayBuilder::len(self), self.values_slice().len());
        let array = Arc::new(self.finish());
        *self = Self::with_capacity(items, bytes);
        array
    }
}

impl<T: datafusion::arrow::datatypes::ArrowPrimitiveType> FinishSized
    for datafusion::arrow::array::PrimitiveBuilder<T>
{
    fn finish_sized(&mut self) -> datafusion::arrow::array::ArrayRef {
        use datafusion::arrow::array::{Array, ArrayBuilder};
        let items = ArrayBuilder::len(self);
        let array = Arc::new(self.finish());
        // The builder keeps its data type (a time zone, say); only its buffers start anew.
        *self = Self::with_capacity(items).with_data_type(array.data_type().clone());
        array
    }
}
use crate::schema::TableSpec;

/// Why a line could not be read; static text so rejecting a line allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// The field that failed, as the format's documentation names it.
    pub field: &'static str,
    /// What was wrong with it.
    pub problem: &'static str,
}

impl ParseError {
    pub const fn new(field: &'static str, problem: &'static str) -> Self {
        ParseError { field, problem }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ParseError {}

/// What a successful push reports back, for the per-file statistics.
#[derive(Debug, Clone, Copy)]
pub struct Pushed {
    /// The row's timestamp, UTC microseconds.
    pub ts: i64,
    /// The line held bytes that are not UTF-8; its text columns were stored lossily.
    pub lossy: bool,
}

/// Where a line came from, beyond its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineMeta<'a> {
    /// 1-based line number in the decompressed file.
    pub no: u64,
    /// The sending host, when the line came wrapped in a syslog header.
    pub log_host: Option<&'a [u8]>,
}

/// Rows ready for the lake, with each row's local day for partitioning.
pub struct Batch {
    pub batch: RecordBatch,
    /// Local day per row (empty for tables not partitioned by date).
    pub days: Vec<i32>,
}

/// A format's parser bound to Arrow builders: lines in, record batches out.
pub trait RowSink: Send {
    /// The table these rows go to.
    fn table(&self) -> &'static TableSpec;
    /// Names the file the next lines come from (stored in `source_file`).
    fn set_source(&mut self, file: &str);
    /// Parses one line (terminator and any syslog header stripped). `Ok(None)` is a line that
    /// holds no row by design (a `#Fields:` header). On `Err` nothing was appended.
    fn push(&mut self, line: &[u8], meta: LineMeta<'_>) -> Result<Option<Pushed>, ParseError>;
    /// Rows appended since the last [`RowSink::take_batch`].
    fn len(&self) -> usize;
    /// True when no rows are waiting.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows so far as one batch; the builders start over empty.
    fn take_batch(&mut self) -> Batch;
}

/// Every format trawl reads: the one place that matches on format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatKind {
    /// Squid's native `access.log` (`logformat squid`).
    Squid,
    /// Squid's `logformat common` (Apache common plus `%Ss:%Sh`).
    #[value(name = "squid_common")]
    SquidCommon,
    /// Squid's `logformat combined` (with Referer and User-Agent).
    #[value(name = "squid_combined")]
    SquidCombined,
    /// Digital Arts i-FILTER access log (Ver.9 and Ver.10 layouts).
    Ifilter,
    /// Windows Defender Firewall `pfirewall.log`.
    #[value(name = "windows_firewall")]
    WindowsFirewall,
}

impl FormatKind {
    /// Every format, in the order sniffing tries them.
    pub const ALL: [FormatKind; 5] = [
        FormatKind::Squid,
        FormatKind::SquidCombined,
        FormatKind::SquidCommon,
        FormatKind::Ifilter,
        FormatKind::WindowsFirewall,
    ];

    /// The name stored in `source_format` and accepted by `--format`.
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Squid => "squid",
            FormatKind::SquidCommon => "squid_common",
            FormatKind::SquidCombined => "squid_combined",
            FormatKind::Ifilter => "ifilter",
            FormatKind::WindowsFirewall => "windows_firewall",
        }
    }

    /// Whether a file may be cut into chunks parsed apart: not when lines depend on a header.
    pub fn splittable(self) -> bool {
        !matches!(self, FormatKind::WindowsFirewall)
    }

    /// A sink that parses this format into its table.
    pub fn sink(self, days: LocalDays) -> Box<dyn RowSink> {
        match self {
            FormatKind::Squid => Box::new(proxy::ProxySink::new(squid::SquidNative, days)),
            FormatKind::SquidCommon => Box::new(proxy::ProxySink::new(squid::SquidHttpd::COMMON, days)),
            FormatKind::SquidCombined => Box::new(proxy::ProxySink::new(squid::SquidHttpd::COMBINED, days)),
            FormatKind::Ifilter => Box::new(proxy::ProxySink::new(ifilter::IFilter, days)),
            FormatKind::WindowsFirewall => Box::new(winfw::FirewallSink::new(days)),
        }
    }

    /// Whether one line parses in this format, for sniffing.
    fn accepts(self, line: &[u8]) -> bool {
        use proxy::ProxyParser;
        match self {
            FormatKind::Squid => squid::SquidNative.parse(line).is_ok(),
            FormatKind::SquidCommon => squid::SquidHttpd::COMMON.parse(line).is_ok(),
            FormatKind::SquidCombined => squid::SquidHttpd::COMBINED.parse(line).is_ok(),
            FormatKind::Ifilter => ifilter::IFilter.parse(line).is_ok(),
            FormatKind::WindowsFirewall => winfw::looks_like(line),
        }
    }
}

/// A format a file can be read in: a built-in one, or a compiled Squid `logformat`.
#[derive(Debug, Clone)]
pub enum Format {
    Builtin(FormatKind),
    Logformat(Arc<logformat::Logformat>),
}

impl Format {
    /// The value of `source_format` for its rows.
    pub fn name(&self) -> &str {
        use proxy::ProxyParser;
        match self {
            Format::Builtin(k) => k.name(),
            Format::Logformat(l) => l.name(),
        }
    }

    /// Whether a file in this format may be cut into chunks parsed apart.
    pub fn splittable(&self) -> bool {
        match self {
            Format::Builtin(k) => k.splittable(),
            Format::Logformat(_) => true,
        }
    }

    /// A sink that parses this format into its table.
    pub fn sink(&self, days: LocalDays) -> Box<dyn RowSink> {
        match self {
            Format::Builtin(k) => k.sink(days),
            Format::Logformat(l) => Box::new(proxy::ProxySink::new(l.clone(), days)),
        }
    }

    fn accepts(&self, line: &[u8]) -> bool {
        use proxy::ProxyParser;
        match self {
            Format::Builtin(k) => k.accepts(line),
            Format::Logformat(l) => l.parse(line).is_ok(),
        }
    }

    /// Picks, among `candidates`, the format that reads most of a file's first lines (the
    /// earlier candidate on a tie); `None` when none reads any.
    pub fn sniff<'a>(candidates: &[Format], lines: impl Iterator<Item = &'a [u8]> + Clone) -> Option<Format> {
        let mut best = None;
        let mut best_hits = 0;
        for f in candidates {
            let hits = lines.clone().filter(|l| f.accepts(l)).count();
            if hits > best_hits {
                best = Some(f.clone());
                best_hits = hits;
            }
        }
        best
    }
}

impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
