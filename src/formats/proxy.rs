//! The `proxy` table's row and its Arrow builders, shared by every proxy format.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;

use super::bytes::percent_decode_into;
use super::{Batch, FinishSized, LineMeta, ParseError, Pushed, RowSink};
use crate::localtime::LocalDays;
use crate::schema::{LIST_ITEM, PROXY, TableSpec};
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
    /// User-Agent and Content-Type are form-encoded (`%XX`, `+` for space), as i-FILTER writes them.
    pub form_encoded: bool,
    pub action: Option<&'a [u8]>,
    pub filter_reason: Option<i32>,
    pub rule_id: Option<i32>,
    /// Category ids separated by `/` (`87/127/151`).
    pub categories: Option<&'a [u8]>,
    pub user_group: Option<&'a [u8]>,
    pub client_name: Option<&'a [u8]>,
    pub virus_name: Option<&'a [u8]>,
    pub post_file: Option<&'a [u8]>,
    pub extra: Extra<'a>,
}

/// Most fields without a column of their own that one line can carry into `extra`.
pub const EXTRA_MAX: usize = 24;

/// Named values without a column of their own, kept on the stack.
#[derive(Debug, Clone, Copy)]
pub struct Extra<'a> {
    pairs: [(&'a str, &'a [u8]); EXTRA_MAX],
    len: usize,
}

impl Default for Extra<'_> {
    fn default() -> Self {
        Extra { pairs: [("", &[]); EXTRA_MAX], len: 0 }
    }
}

impl<'a> Extra<'a> {
    /// Adds a value; formats are checked at compile time to need at most [`EXTRA_MAX`].
    pub fn push(&mut self, key: &'a str, value: &'a [u8]) {
        if self.len < EXTRA_MAX {
            self.pairs[self.len] = (key, value);
            self.len += 1;
        }
    }

    /// The values added so far.
    pub fn pairs(&self) -> &[(&'a str, &'a [u8])] {
        &self.pairs[..self.len]
    }
}

/// A proxy format's line parser: bytes in, a borrowed row out, nothing allocated.
pub trait ProxyParser: Send + Sync + 'static {
    /// The value of `source_format` for rows from this parser.
    fn name(&self) -> &str;
    /// Splits one line (terminator stripped) into a row.
    fn parse<'a>(&'a self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError>;
}

/// A [`ProxyParser`] feeding the `proxy` table's builders.
pub struct ProxySink<P> {
    parser: P,
    b: ProxyBuilders,
}

/// Compiled formats are shared by every worker.
impl<T: ProxyParser + ?Sized> ProxyParser for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn parse<'a>(&'a self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError> {
        (**self).parse(line)
    }
}

/// Arrow builders for the `proxy` table.
struct ProxyBuilders {
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
    action: StringBuilder,
    filter_reason: Int32Builder,
    rule_id: Int32Builder,
    categories: ListBuilder<Int32Builder>,
    user_group: StringBuilder,
    client_name: StringBuilder,
    virus_name: StringBuilder,
    post_file: StringBuilder,
    log_host: StringBuilder,
    extra: MapBuilder<StringBuilder, StringBuilder>,
    source_format: StringBuilder,
    source_file_col: StringBuilder,
    source_line: Int64Builder,
}

/// Appends text that is known to be valid UTF-8, or its lossy form.
#[inline]
pub(crate) fn append_text(b: &mut StringBuilder, v: Option<&[u8]>, utf8: bool) {
    match v {
        None => b.append_null(),
        // The whole line was checked once, and fields are cut at ASCII delimiters, so every
        // field of a valid line is valid too.
        Some(v) if utf8 => b.append_value(unsafe { std::str::from_utf8_unchecked(v) }),
        Some(v) => b.append_value(String::from_utf8_lossy(v)),
    }
}

/// A builder for an `extra` column, with the inner names Delta uses.
pub(crate) fn extra_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
}

/// Appends a form-encoded value decoded (`%XX`, `+` as space), or text as it is.
fn append_decoded(b: &mut StringBuilder, v: Option<&[u8]>, encoded: bool, utf8: bool, scratch: &mut Vec<u8>) {
    match v {
        Some(v) if encoded && v.iter().any(|c| *c == b'%' || *c == b'+') => {
            percent_decode_into(v, true, scratch);
            // Decoding can produce any bytes (Shift_JIS, say): check them, whatever the line was.
            let ok = std::str::from_utf8(scratch).is_ok();
            append_text(b, Some(scratch), ok);
        }
        _ => append_text(b, v, utf8),
    }
}

/// A category id; an id that is not a number is stored as NULL inside the list.
fn parse_category(s: &[u8]) -> Option<i32> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    let v = super::bytes::parse_u64(digits).and_then(|v| i32::try_from(v).ok())?;
    Some(if neg { -v } else { v })
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
        ProxySink { parser, b: ProxyBuilders::new(days) }
    }
}

impl ProxyBuilders {
    fn new(days: LocalDays) -> Self {
        ProxyBuilders {
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
            action: StringBuilder::new(),
            filter_reason: Int32Builder::new(),
            rule_id: Int32Builder::new(),
            categories: ListBuilder::new(Int32Builder::new()).with_field(Arc::new(Field::new(
                LIST_ITEM,
                DataType::Int32,
                true,
            ))),
            user_group: StringBuilder::new(),
            client_name: StringBuilder::new(),
            virus_name: StringBuilder::new(),
            post_file: StringBuilder::new(),
            log_host: StringBuilder::new(),
            extra: extra_builder(),
            source_format: StringBuilder::new(),
            source_file_col: StringBuilder::new(),
            source_line: Int64Builder::new(),
        }
    }

    fn append(&mut self, r: &ProxyRow<'_>, utf8: bool, meta: LineMeta<'_>, format: &str) {
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
        append_decoded(&mut self.user_agent, r.user_agent, r.form_encoded, utf8, &mut self.scratch);
        append_text(&mut self.referrer, r.referrer, utf8);
        append_decoded(&mut self.content_type, r.content_type, r.form_encoded, utf8, &mut self.scratch);
        append_text(&mut self.cache_result, r.cache_result, utf8);
        append_text(&mut self.hierarchy, r.hierarchy, utf8);
        append_text(&mut self.server_ip, r.server_ip, utf8);
        append_text(&mut self.action, r.action, utf8);
        self.filter_reason.append_option(r.filter_reason);
        self.rule_id.append_option(r.rule_id);
        match r.categories {
            Some(list) => {
                let values = self.categories.values();
                for id in list.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
                    values.append_option(parse_category(id));
                }
                self.categories.append(true);
            }
            None => self.categories.append(false),
        }
        append_text(&mut self.user_group, r.user_group, utf8);
        append_text(&mut self.client_name, r.client_name, utf8);
        append_text(&mut self.virus_name, r.virus_name, utf8);
        append_text(&mut self.post_file, r.post_file, utf8);
        append_text(&mut self.log_host, meta.log_host, utf8);
        for (k, v) in r.extra.pairs() {
            self.extra.keys().append_value(k);
            append_text(self.extra.values(), Some(v), utf8);
        }
        self.extra.append(true).expect("keys and values appended in pairs");
        self.source_format.append_value(format);
        self.source_file_col.append_value(&self.source_file);
        self.source_line.append_value(meta.no as i64);
    }

    /// Finished arrays by column name: the schema file decides the order.
    fn column(&mut self, name: &str) -> ArrayRef {
        match name {
            "ts" => self.ts.finish_sized(),
            "duration_ms" => self.duration_ms.finish_sized(),
            "client_ip" => self.client_ip.finish_sized(),
            "username" => self.username.finish_sized(),
            "method" => self.method.finish_sized(),
            "url" => self.url.finish_sized(),
            "scheme" => self.scheme.finish_sized(),
            "host" => self.host.finish_sized(),
            "port" => self.port.finish_sized(),
            "path" => self.path.finish_sized(),
            "status" => self.status.finish_sized(),
            "request_bytes" => self.request_bytes.finish_sized(),
            "response_bytes" => self.response_bytes.finish_sized(),
            "user_agent" => self.user_agent.finish_sized(),
            "referrer" => self.referrer.finish_sized(),
            "content_type" => self.content_type.finish_sized(),
            "cache_result" => self.cache_result.finish_sized(),
            "hierarchy" => self.hierarchy.finish_sized(),
            "server_ip" => self.server_ip.finish_sized(),
            "action" => self.action.finish_sized(),
            "filter_reason" => self.filter_reason.finish_sized(),
            "rule_id" => self.rule_id.finish_sized(),
            "categories" => Arc::new(self.categories.finish()),
            "user_group" => self.user_group.finish_sized(),
            "client_name" => self.client_name.finish_sized(),
            "virus_name" => self.virus_name.finish_sized(),
            "post_file" => self.post_file.finish_sized(),
            "log_host" => self.log_host.finish_sized(),
            "extra" => Arc::new(self.extra.finish()),
            "source_format" => self.source_format.finish_sized(),
            "source_file" => self.source_file_col.finish_sized(),
            "source_line" => self.source_line.finish_sized(),
            other => unreachable!("schemas/proxy.json names column {other:?} that ProxySink lacks"),
        }
    }
}

impl<P: ProxyParser> RowSink for ProxySink<P> {
    fn table(&self) -> &'static TableSpec {
        &PROXY
    }

    fn set_source(&mut self, file: &str) {
        self.b.source_file.clear();
        self.b.source_file.push_str(file);
    }

    #[inline]
    fn push(&mut self, line: &[u8], meta: LineMeta<'_>) -> Result<Option<Pushed>, ParseError> {
        let row = self.parser.parse(line)?;
        // The host is cut from the same line, so one check covers both.
        let utf8 =
            std::str::from_utf8(line).is_ok() && meta.log_host.is_none_or(|h| std::str::from_utf8(h).is_ok());
        self.b.append(&row, utf8, meta, self.parser.name());
        Ok(Some(Pushed { ts: row.ts, lossy: !utf8 }))
    }

    fn len(&self) -> usize {
        self.b.day_of_row.len()
    }

    fn take_batch(&mut self) -> Batch {
        let schema = PROXY.arrow_schema();
        let columns: Vec<ArrayRef> = PROXY.columns.iter().map(|c| self.b.column(&c.name)).collect();
        let batch = RecordBatch::try_new(schema, columns)
            .expect("ProxySink appends every column once per row, with the schema's types");
        Batch { batch, days: std::mem::take(&mut self.b.day_of_row) }
    }
}
