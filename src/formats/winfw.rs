//! Windows Defender Firewall logs (`pfirewall.log`), into the `firewall` table.
//!
//! The `#Fields:` header decides the column order (FORMATS.md section 4), so files with more or
//! fewer fields (`pid` on newer Windows) parse, and a header written again mid-file takes effect
//! from there on. Times are local without a zone and are read in the lake's time zone.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::bytes::{Fields, dash_is_none, days_from_civil, parse_i64, parse_u64};
use super::proxy::{append_text, extra_builder};
use super::{Batch, FinishSized, LineMeta, ParseError, Pushed, RowSink};
use crate::localtime::{LocalDays, LocalToUtc};
use crate::schema::{FIREWALL, TableSpec};

/// The field list Windows writes when a file has no `#Fields:` line (before any header is read).
const DEFAULT_FIELDS: &[u8] =
    b"date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn \
    tcpack tcpwin icmptype icmpcode info path";

/// Most fields a `#Fields:` line may name.
const MAX_FIELDS: usize = 32;

/// What one position of a line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Date,
    Time,
    /// A column of the `firewall` table, by index into [`Column`].
    Col(Column),
    /// A field trawl has no column for: kept in `extra` under this name.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Action,
    Protocol,
    SrcIp,
    DstIp,
    SrcPort,
    DstPort,
    Size,
    TcpFlags,
    TcpSyn,
    TcpAck,
    TcpWin,
    IcmpType,
    IcmpCode,
    Info,
    Path,
    Pid,
}

fn slot(name: &[u8]) -> Slot {
    use Column::*;
    let col = match name {
        b"date" => return Slot::Date,
        b"time" => return Slot::Time,
        b"action" => Action,
        b"protocol" => Protocol,
        b"src-ip" => SrcIp,
        b"dst-ip" => DstIp,
        b"src-port" => SrcPort,
        b"dst-port" => DstPort,
        b"size" => Size,
        b"tcpflags" => TcpFlags,
        b"tcpsyn" => TcpSyn,
        b"tcpack" => TcpAck,
        b"tcpwin" => TcpWin,
        b"icmptype" => IcmpType,
        b"icmpcode" => IcmpCode,
        b"info" => Info,
        b"path" => Path,
        b"pid" => Pid,
        other => return Slot::Other(String::from_utf8_lossy(other).into_owned()),
    };
    Slot::Col(col)
}

const E_FIELDS: ParseError = ParseError::new("line", "field count differs from the #Fields header");
const E_DATE: ParseError = ParseError::new("date", "not a date YYYY-MM-DD (or no such day)");

/// Key in `extra` flagging a wall time a DST change skipped (`gap`) or repeated (`overlap`).
pub const DST: &str = "dst";
const E_TIME: ParseError = ParseError::new("time", "not HH:MM:SS");
const E_NUMBER: ParseError = ParseError::new("port/size/tcp/icmp/pid", "not a number or '-'");
const E_HEADER: ParseError = ParseError::new("#Fields", "no date and time fields, or more than 32 fields");

/// Parses `#Fields: ...` into slots.
fn parse_fields(list: &[u8]) -> Result<Vec<Slot>, ParseError> {
    let slots: Vec<Slot> = Fields::new(list).map(slot).collect();
    if slots.len() > MAX_FIELDS || !slots.contains(&Slot::Date) || !slots.contains(&Slot::Time) {
        return Err(E_HEADER);
    }
    Ok(slots)
}

fn parse_date(s: &[u8]) -> Option<i64> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let y = parse_u64(&s[..4])? as i64;
    let m = parse_u64(&s[5..7])? as u32;
    let d = parse_u64(&s[8..10])? as u32;
    // 2024-02-30 would otherwise be read as March 1st.
    ((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d)).then(|| days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_clock(s: &[u8]) -> Option<i64> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (parse_u64(&s[..2])?, parse_u64(&s[3..5])?, parse_u64(&s[6..8])?);
    (h < 24 && m < 60 && sec <= 60).then_some((h * 3600 + m * 60 + sec) as i64)
}

/// Whether a line looks like a firewall entry or header, for sniffing.
pub fn looks_like(line: &[u8]) -> bool {
    if line.starts_with(b"#Software: Microsoft Windows Firewall") || line.starts_with(b"#Fields: date time") {
        return true;
    }
    let mut f = Fields::new(line);
    let (Some(d), Some(t), Some(action)) = (f.next(), f.next(), f.next()) else { return false };
    parse_date(d).is_some()
        && parse_clock(t).is_some()
        && matches!(action, b"ALLOW" | b"DROP" | b"OPEN" | b"CLOSE" | b"OPEN-INBOUND" | b"INFO-EVENTS-LOST")
}

/// Parser and builders for the `firewall` table.
pub struct FirewallSink {
    slots: Vec<Slot>,
    to_utc: LocalToUtc,
    days: LocalDays,
    day_of_row: Vec<i32>,
    source_file: String,
    ts: TimestampMicrosecondBuilder,
    strings: [StringBuilder; 7],
    ints: [Int32Builder; 4],
    longs: [Int64Builder; 5],
    log_host: StringBuilder,
    extra: MapBuilder<StringBuilder, StringBuilder>,
    source_format: StringBuilder,
    source_file_col: StringBuilder,
    source_line: Int64Builder,
}

/// Where each column's values are built: (kind, index) with kind 0 string, 1 int, 2 long.
fn place(c: Column) -> (u8, usize) {
    use Column::*;
    match c {
        Action => (0, 0),
        Protocol => (0, 1),
        SrcIp => (0, 2),
        DstIp => (0, 3),
        TcpFlags => (0, 4),
        Info => (0, 5),
        Path => (0, 6),
        SrcPort => (1, 0),
        DstPort => (1, 1),
        IcmpType => (1, 2),
        IcmpCode => (1, 3),
        Size => (2, 0),
        TcpSyn => (2, 1),
        TcpAck => (2, 2),
        TcpWin => (2, 3),
        Pid => (2, 4),
    }
}

impl FirewallSink {
    pub fn new(days: LocalDays) -> Self {
        FirewallSink {
            slots: parse_fields(DEFAULT_FIELDS).expect("the default field list is valid"),
            to_utc: LocalToUtc::new(days.tz()),
            days,
            day_of_row: Vec::new(),
            source_file: String::new(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            strings: Default::default(),
            ints: Default::default(),
            longs: Default::default(),
            log_host: StringBuilder::new(),
            extra: extra_builder(),
            source_format: StringBuilder::new(),
            source_file_col: StringBuilder::new(),
            source_line: Int64Builder::new(),
        }
    }

    fn column(&mut self, name: &str) -> ArrayRef {
        let c = match name {
            "ts" => return self.ts.finish_sized(),
            "log_host" => return self.log_host.finish_sized(),
            "extra" => return Arc::new(self.extra.finish()),
            "source_format" => return self.source_format.finish_sized(),
            "source_file" => return self.source_file_col.finish_sized(),
            "source_line" => return self.source_line.finish_sized(),
            other => match slot(other.replace('_', "-").as_bytes()) {
                Slot::Col(c) => c,
                _ => unreachable!("schemas/firewall.json names {other:?}, unknown to FirewallSink"),
            },
        };
        match place(c) {
            (0, i) => self.strings[i].finish_sized(),
            (1, i) => self.ints[i].finish_sized(),
            (_, i) => self.longs[i].finish_sized(),
        }
    }
}

impl RowSink for FirewallSink {
    fn table(&self) -> &'static TableSpec {
        &FIREWALL
    }

    fn set_source(&mut self, file: &str) {
        self.source_file.clear();
        self.source_file.push_str(file);
        // Each file declares its own fields; until it does, assume Windows' default list.
        self.slots = parse_fields(DEFAULT_FIELDS).expect("the default field list is valid");
    }

    fn push(&mut self, line: &[u8], meta: LineMeta<'_>) -> Result<Option<Pushed>, ParseError> {
        // A UTF-8 byte-order mark before the first header.
        let line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        if let Some(directive) = line.strip_prefix(b"#") {
            if let Some(list) = directive.strip_prefix(b"Fields:") {
                self.slots = parse_fields(list)?;
            }
            return Ok(None);
        }
        let mut values: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
        let mut n = 0;
        for v in Fields::new(line) {
            if n == self.slots.len() {
                return Err(E_FIELDS);
            }
            values[n] = v;
            n += 1;
        }
        if n != self.slots.len() {
            return Err(E_FIELDS);
        }
        // Validate everything before appending anything, so a bad line leaves no partial row.
        let (mut day, mut secs) = (None, None);
        let mut ints = [None; 4];
        let mut longs = [None; 5];
        for (slot, v) in self.slots.iter().zip(&values) {
            match slot {
                Slot::Date => day = Some(parse_date(v).ok_or(E_DATE)?),
                Slot::Time => secs = Some(parse_clock(v).ok_or(E_TIME)?),
                Slot::Col(c) => match place(*c) {
                    (1, i) => ints[i] = number(v)?.map(|x| x as i32),
                    (2, i) => longs[i] = number(v)?,
                    _ => {}
                },
                Slot::Other(_) => {}
            }
        }
        let (Some(day), Some(secs)) = (day, secs) else { return Err(E_DATE) };
        let (ts, wall) = self.to_utc.read(day * 86_400 + secs);
        let utf8 =
            std::str::from_utf8(line).is_ok() && meta.log_host.is_none_or(|h| std::str::from_utf8(h).is_ok());

        self.ts.append_value(ts);
        self.day_of_row.push(self.days.day(ts));
        let mut strings: [Option<&[u8]>; 7] = [None; 7];
        for (slot, v) in self.slots.iter().zip(&values) {
            match slot {
                Slot::Col(c) => {
                    if let (0, i) = place(*c) {
                        strings[i] = dash_is_none(v);
                    }
                }
                Slot::Other(name) => {
                    self.extra.keys().append_value(name);
                    append_text(self.extra.values(), Some(v), utf8);
                }
                _ => {}
            }
        }
        if let Some(flag) = wall.flag() {
            self.extra.keys().append_value(DST);
            self.extra.values().append_value(flag);
        }
        self.extra.append(true).expect("keys and values appended in pairs");
        for (b, v) in self.strings.iter_mut().zip(strings) {
            append_text(b, v, utf8);
        }
        for (b, v) in self.ints.iter_mut().zip(ints) {
            b.append_option(v);
        }
        for (b, v) in self.longs.iter_mut().zip(longs) {
            b.append_option(v);
        }
        append_text(&mut self.log_host, meta.log_host, utf8);
        self.source_format.append_value("windows_firewall");
        self.source_file_col.append_value(&self.source_file);
        self.source_line.append_value(meta.no as i64);
        Ok(Some(Pushed { ts, lossy: !utf8 }))
    }

    fn len(&self) -> usize {
        self.day_of_row.len()
    }

    fn take_batch(&mut self) -> Batch {
        let columns: Vec<ArrayRef> = FIREWALL.columns.iter().map(|c| self.column(&c.name)).collect();
        let batch = RecordBatch::try_new(FIREWALL.arrow_schema(), columns)
            .expect("FirewallSink appends every column once per row, with the schema's types");
        Batch { batch, days: std::mem::take(&mut self.day_of_row) }
    }
}

/// A number, or NULL for `-`.
fn number(v: &[u8]) -> Result<Option<i64>, ParseError> {
    match dash_is_none(v) {
        None => Ok(None),
        Some(v) => parse_i64(v).map(Some).ok_or(E_NUMBER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::localtime::parse_tz;

    fn sink() -> FirewallSink {
        let mut s = FirewallSink::new(LocalDays::new(parse_tz("UTC").unwrap()));
        s.set_source("pfirewall.log");
        s
    }

    fn meta(no: u64) -> LineMeta<'static> {
        LineMeta { no, log_host: None }
    }

    #[test]
    fn header_with_pid_changes_the_layout() {
        let mut s = sink();
        assert!(s.push(b"#Version: 1.5", meta(1)).unwrap().is_none());
        let fields = b"#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path pid";
        assert!(s.push(fields, meta(2)).unwrap().is_none());
        let p = s.push(
            b"2023-11-20 17:53:54 DROP TCP 192.168.10.30 34.120.208.123 61005 443 0 - 0 0 0 - - - SEND 11188",
            meta(3),
        );
        assert_eq!(p.unwrap().unwrap().ts, 1_700_502_834_000_000);
        // The old 17-field layout no longer fits.
        assert_eq!(
            s.push(b"2023-11-20 17:53:54 DROP TCP 1.2.3.4 5.6.7.8 1 2 0 - 0 0 0 - - - SEND", meta(4))
                .unwrap_err(),
            E_FIELDS
        );
        let b = s.take_batch().batch;
        assert_eq!(b.num_rows(), 1);
        let pid = b.column(FIREWALL.index_of("pid").unwrap());
        assert_eq!(format!("{pid:?}"), "PrimitiveArray<Int64>\n[\n  11188,\n]");
    }

    #[test]
    fn info_events_lost_and_unknown_fields() {
        let mut s = sink();
        assert!(
            s.push(b"2021-06-22 12:48:21 INFO-EVENTS-LOST - - - - - - - - - - - - 7 -", meta(1))
                .unwrap()
                .is_some()
        );
        s.push(b"#Fields: date time action protocol src-ip dst-ip custom", meta(2)).unwrap();
        s.push(b"2021-06-22 12:48:22 ALLOW UDP 1.1.1.1 2.2.2.2 hello", meta(3)).unwrap();
        assert_eq!(s.push(b"2021-13-22 12:48:22 ALLOW UDP 1.1.1.1 2.2.2.2 x", meta(4)).unwrap_err(), E_DATE);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn impossible_dates_reject_and_dst_changes_are_flagged() {
        let mut s = FirewallSink::new(LocalDays::new(parse_tz("Europe/Berlin").unwrap()));
        s.set_source("pfirewall.log");
        let line =
            |d: &str, t: &str| format!("{d} {t} ALLOW TCP 10.0.0.1 10.0.0.2 1 443 0 - 0 0 0 - - - SEND");
        for bad in ["2024-02-30", "2023-02-29", "2024-04-31", "2024-00-10"] {
            assert_eq!(s.push(line(bad, "12:00:00").as_bytes(), meta(1)).unwrap_err(), E_DATE, "{bad}");
        }
        let ts = |s: &mut FirewallSink, d: &str, t: &str| {
            s.push(line(d, t).as_bytes(), meta(2)).unwrap().unwrap().ts
        };
        assert_eq!(ts(&mut s, "2024-02-29", "12:00:00"), 1_709_204_400_000_000);
        // 2024-03-31 02:30 never happened in Berlin (CET +1 until 01:00 UTC): read as +1.
        assert_eq!(ts(&mut s, "2024-03-31", "02:30:00"), 1_711_848_600_000_000);
        assert_eq!(ts(&mut s, "2024-03-31", "03:30:00"), 1_711_848_600_000_000);
        // 2024-10-27 02:30 happened twice: the earlier (CEST +2) instant.
        assert_eq!(ts(&mut s, "2024-10-27", "02:30:00"), 1_729_989_000_000_000);
        assert_eq!(ts(&mut s, "2024-10-27", "01:59:59"), 1_729_987_199_000_000);
        let b = s.take_batch().batch;
        let extra = b.column(FIREWALL.index_of("extra").unwrap());
        let f =
            datafusion::arrow::util::display::ArrayFormatter::try_new(extra.as_ref(), &Default::default())
                .unwrap();
        let shown: Vec<String> = (0..b.num_rows()).map(|i| f.value(i).to_string()).collect();
        assert_eq!(shown, ["{}", "{dst: gap}", "{}", "{dst: overlap}", "{}"]);
    }
}
