//! The `proxy` table's row and its Arrow builders, shared by every proxy format.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::bytes::percent_decode_into;
use super::{Batch, ParseError, Pushed, RowSink};
use crate::localtime::LocalDays;
use crate::schema::{PROXY, TableSpec};
use crate::urlparts::split_url;

/// One proxy request as a parser found it; every slice borrows from the line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProxyRow<'a> {
    pub ts: i64,
    pub duration_ms: Option<i64>,
    pub client_ip: Option<&'a [u8]>,
    pub username: Option<&'a [u8]>,
    /// The user name is %-encoded (Squid's `%[un`) and is decoded on append.
    pub username_encoded: bool,
    pub method: Option<&'a [u8]>,
    pub url: Option<&'a [u8]>,
    pub status: Option<i32>,
    pub request_bytes: Option<i64>,
    pub response_bytes: Option<i64>,
    pub user_agent: Option<&'a [u8]>,
    pub referrer: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub cache_result: Option<&'a [u8]>,
    pub hierarchy: Option<&'a [u8]>,
    pub server_ip: Option<&'a [u8]>,
}

/// A proxy format's line parser: bytes in, a borrowed row out, nothing allocated.
pub trait ProxyParser: Send + Sync + 'static {
    /// The value of `source_format` for rows from this parser.
    fn name(&self) -> &'static str;
    /// Splits one line (terminator stripped) into a row.
    fn parse<'a>(&self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError>;
}

/// Arrow builders for the `proxy` table, fed by one [`ProxyParser`].
pub struct ProxySink<P> {
    parser: P,
    days: LocalDays,
    day_of_row: Vec<i32>,
    source_file: String,
    scratch: Vec<u8>,
    ts: TimestampMicrosecondBuilder,
    duration_ms: Int64Builder,
    client_ip: StringBuilder,
    username: StringBuilder,
    method: StringBuilder,
    url: StringBuilder,
    scheme: StringBuilder,
    host: StringBuilder,
    port: Int32Builder,
    path: StringBuilder,
    status: Int32Builder,
    request_bytes: Int64Builder,
    response_bytes: Int64Builder,
    user_agent: StringBuilder,
    referrer: StringBuilder,
    content_type: StringBuilder,
    cache_result: StringBuilder,
    hierarchy: StringBuilder,
    server_ip: StringBuilder,
    source_format: StringBuilder,
    source_file_col: StringBuilder,
    source_line: Int64Builder,
}

/// Appends text that is known to be valid UTF-8, or its lossy form.
#[inline]
fn append_text(b: &mut StringBuilder, v: Option<&[u8]>, utf8: bool) {
    match v {
        None => b.append_null(),
        // The whole line was checked once, and fields are cut at ASCII delimiters, so every
        // field of a valid line is valid too.
        Some(v) if utf8 => b.append_value(unsafe { std::str::from_utf8_unchecked(v) }),
        Some(v) => b.append_value(String::from_utf8_lossy(v)),
    }
}

/// Appends text lower-cased (host names compare case-insensitively).
fn append_lower(b: &mut StringBuilder, v: Option<&[u8]>, utf8: bool, scratch: &mut Vec<u8>) {
    match v {
        Some(v) if v.iter().any(u8::is_ascii_uppercase) => {
            scratch.clear();
            scratch.extend(v.iter().map(u8::to_ascii_lowercase));
            append_text(b, Some(scratch), utf8);
        }
        _ => append_text(b, v, utf8),
    }
}

impl<P: ProxyParser> ProxySink<P> {
    pub fn new(parser: P, days: LocalDays) -> Self {
        ProxySink {
            parser,
            days,
            day_of_row: Vec::new(),
            source_file: String::new(),
            scratch: Vec::new(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            duration_ms: Int64Builder::new(),
            client_ip: StringBuilder::new(),
            username: StringBuilder::new(),
            method: StringBuilder::new(),
            url: StringBuilder::new(),
            scheme: StringBuilder::new(),
            host: StringBuilder::new(),
            port: Int32Builder::new(),
            path: StringBuilder::new(),
            status: Int32Builder::new(),
            request_bytes: Int64Builder::new(),
            response_bytes: Int64Builder::new(),
            user_agent: StringBuilder::new(),
            referrer: StringBuilder::new(),
            content_type: StringBuilder::new(),
            cache_result: StringBuilder::new(),
            hierarchy: StringBuilder::new(),
            server_ip: StringBuilder::new(),
            source_format: StringBuilder::new(),
            source_file_col: StringBuilder::new(),
            source_line: Int64Builder::new(),
        }
    }

    fn append(&mut self, r: &ProxyRow<'_>, utf8: bool, line_no: u64) {
        self.ts.append_value(r.ts);
        self.day_of_row.push(self.days.day(r.ts));
        self.duration_ms.append_option(r.duration_ms);
        append_text(&mut self.client_ip, r.client_ip, utf8);
        match r.username {
            Some(u) if r.username_encoded && u.contains(&b'%') => {
                percent_decode_into(u, false, &mut self.scratch);
                // Decoding can produce any bytes: check them, whatever the line was.
                let ok = std::str::from_utf8(&self.scratch).is_ok();
                append_text(&mut self.username, Some(&self.scratch), ok);
            }
            u => append_text(&mut self.username, u, utf8),
        }
        append_text(&mut self.method, r.method, utf8);
        append_text(&mut self.url, r.url, utf8);
        let parts = r.url.map(split_url).unwrap_or_default();
        append_lower(&mut self.scheme, parts.scheme, utf8, &mut self.scratch);
        append_lower(&mut self.host, parts.host, utf8, &mut self.scratch);
        self.port.append_option(parts.port.map(i32::from));
        append_text(&mut self.path, parts.path, utf8);
        self.status.append_option(r.status);
        self.request_bytes.append_option(r.request_bytes);
        self.response_bytes.append_option(r.response_bytes);
        append_text(&mut self.user_agent, r.user_agent, utf8);
        append_text(&mut self.referrer, r.referrer, utf8);
        append_text(&mut self.content_type, r.content_type, utf8);
        append_text(&mut self.cache_result, r.cache_result, utf8);
        append_text(&mut self.hierarchy, r.hierarchy, utf8);
        append_text(&mut self.server_ip, r.server_ip, utf8);
        self.source_format.append_value(self.parser.name());
        self.source_file_col.append_value(&self.source_file);
        self.source_line.append_value(line_no as i64);
    }

    /// Finished arrays by column name: the schema file decides the order.
    fn column(&mut self, name: &str) -> ArrayRef {
        match name {
            "ts" => Arc::new(self.ts.finish()),
            "duration_ms" => Arc::new(self.duration_ms.finish()),
            "client_ip" => Arc::new(self.client_ip.finish()),
            "username" => Arc::new(self.username.finish()),
            "method" => Arc::new(self.method.finish()),
            "url" => Arc::new(self.url.finish()),
            "scheme" => Arc::new(self.scheme.finish()),
            "host" => Arc::new(self.host.finish()),
            "port" => Arc::new(self.port.finish()),
            "path" => Arc::new(self.path.finish()),
            "status" => Arc::new(self.status.finish()),
            "request_bytes" => Arc::new(self.request_bytes.finish()),
            "response_bytes" => Arc::new(self.response_bytes.finish()),
            "user_agent" => Arc::new(self.user_agent.finish()),
            "referrer" => Arc::new(self.referrer.finish()),
            "content_type" => Arc::new(self.content_type.finish()),
            "cache_result" => Arc::new(self.cache_result.finish()),
            "hierarchy" => Arc::new(self.hierarchy.finish()),
            "server_ip" => Arc::new(self.server_ip.finish()),
            "source_format" => Arc::new(self.source_format.finish()),
            "source_file" => Arc::new(self.source_file_col.finish()),
            "source_line" => Arc::new(self.source_line.finish()),
            other => unreachable!("schemas/proxy.json names column {other:?} that ProxySink lacks"),
        }
    }
}

impl<P: ProxyParser> RowSink for ProxySink<P> {
    fn table(&self) -> &'static TableSpec {
        &PROXY
    }

    fn set_source(&mut self, file: &str) {
        self.source_file.clear();
        self.source_file.push_str(file);
    }

    #[inline]
    fn push(&mut self, line: &[u8], line_no: u64) -> Result<Pushed, ParseError> {
        let row = self.parser.parse(line)?;
        let utf8 = std::str::from_utf8(line).is_ok();
        self.append(&row, utf8, line_no);
        Ok(Pushed { ts: row.ts, lossy: !utf8 })
    }

    fn len(&self) -> usize {
        self.day_of_row.len()
    }

    fn take_batch(&mut self) -> Batch {
        let schema = PROXY.arrow_schema();
        let columns: Vec<ArrayRef> = PROXY.columns.iter().map(|c| self.column(&c.name)).collect();
        let batch = RecordBatch::try_new(schema, columns)
            .expect("ProxySink appends every column once per row, with the schema's types");
        Batch { batch, days: std::mem::take(&mut self.day_of_row) }
    }
}
