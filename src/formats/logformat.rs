//! Any Squid `logformat`, compiled once into a parse plan (no regular expression per line).
//!
//! `logformat <name> <format>` (FORMATS.md section 2) becomes a list of steps: literal text to
//! match, and fields whose value runs up to the next literal. Squid's codes map to `proxy`
//! columns; a code with no column of its own goes to `extra` under its code, never dropped.

use memchr::memmem::Finder;

use super::ParseError;
use super::bytes::{
    dash_is_empty, dash_is_none, parse_clf_time, parse_epoch_micros, parse_i64, parse_u64, trim,
};
use super::proxy::{EXTRA_MAX, Extra, ProxyParser, ProxyRow};

/// Where a field's value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Seconds,
    Millis,
    ClfTime,
    Duration,
    ClientIp,
    ClientName,
    Username { encoded: bool },
    Method,
    Url,
    Status,
    RequestBytes,
    ResponseBytes,
    UserAgent,
    Referrer,
    ContentType,
    CacheResult,
    Hierarchy,
    ServerIp,
    Extra,
}

/// A column and how strongly a code claims it (the highest claim wins; others go to `extra`).
fn target_of(code: &str, arg: Option<&str>, encoding: Option<u8>) -> (Target, u8) {
    use Target::*;
    let header = |h: &str| arg.is_some_and(|a| a.eq_ignore_ascii_case(h));
    match code {
        "ts" => (Seconds, 9),
        "tu" => (Millis, 9),
        "tl" | "tg" if arg.is_none() => (ClfTime, 8),
        "tr" => (Duration, 9),
        ">a" => (ClientIp, 9),
        ">A" => (ClientName, 9),
        "un" => (Username { encoded: encoding == Some(b'[') }, 9),
        "ul" => (Username { encoded: encoding == Some(b'[') }, 8),
        "ue" | "us" => (Username { encoded: encoding == Some(b'[') }, 7),
        "ui" => (Username { encoded: encoding == Some(b'[') }, 6),
        "rm" => (Method, 9),
        ">rm" => (Method, 8),
        "<rm" => (Method, 7),
        "ru" => (Url, 9),
        ">ru" => (Url, 8),
        ">Hs" => (Status, 9),
        "Hs" => (Status, 8),
        "<Hs" => (Status, 7),
        ">st" => (RequestBytes, 9),
        "<st" => (ResponseBytes, 9),
        ">h" | "ha" if header("User-Agent") => (UserAgent, 9),
        ">h" | "ha" if header("Referer") => (Referrer, 9),
        "mt" => (ContentType, 9),
        "Ss" => (CacheResult, 9),
        "Sh" => (Hierarchy, 9),
        "<a" => (ServerIp, 9),
        _ => (Extra, 0),
    }
}

#[derive(Debug)]
enum Step {
    /// Text that must appear here; a run of spaces in it matches one or more spaces.
    Literal(Vec<u8>),
    Field {
        target: Target,
        name: String,
        prio: u8,
    },
}

/// A compiled `logformat`.
#[derive(Debug)]
pub struct Logformat {
    /// `squid_logformat:<name>`, the rows' `source_format`.
    source_format: String,
    steps: Vec<Step>,
    /// For each field step, a finder for the literal that ends it (None: runs to the end).
    finders: Vec<Option<Finder<'static>>>,
}

/// Problems in a `logformat` definition, found when it is compiled.
#[derive(Debug, thiserror::Error)]
pub enum LogformatError {
    #[error("logformat {name}: {problem}")]
    Bad { name: String, problem: String },
}

/// The codes trawl recognises by name, longest first so `>rm` wins over `rm`.
const CODES: &[&str] = &[
    "ssl::bump_mode",
    "ssl::>sni",
    "ssl::>cert_subject",
    "ssl::>cert_issuer",
    "ssl::<cert_subject",
    "ssl::<cert_issuer",
    "ssl::<cert_errors",
    "ssl::>received_hello_version",
    "ssl::>negotiated_version",
    "ssl::>negotiated_cipher",
    "transport::>connection_id",
    "master_xaction",
    "err_detail",
    "err_code",
    "note",
    ">eui",
    ">la",
    ">lp",
    "<la",
    "<lp",
    ">rm",
    "<rm",
    ">ru",
    "<ru",
    ">rs",
    ">rd",
    ">rP",
    ">Hs",
    "<Hs",
    ">st",
    "<st",
    ">sh",
    "<sh",
    "<bs",
    "<pt",
    "<tt",
    ">ha",
    ">qos",
    "<qos",
    ">nfmark",
    "<nfmark",
    ">a",
    ">A",
    ">p",
    "<a",
    "<A",
    "<p",
    ">h",
    "<h",
    "la",
    "lp",
    "ts",
    "tu",
    "tl",
    "tg",
    "tr",
    "dt",
    "tS",
    "un",
    "ul",
    "ue",
    "ui",
    "us",
    "et",
    "ea",
    "rm",
    "ru",
    "rp",
    "rv",
    "Hs",
    "mt",
    "st",
    "Ss",
    "Sh",
    "sn",
    "ha",
    "rG",
];

impl Logformat {
    /// Compiles `format` (the text after `logformat <name> `).
    pub fn compile(name: &str, format: &str) -> Result<Logformat, LogformatError> {
        let bad = |problem: String| LogformatError::Bad { name: name.to_string(), problem };
        let mut steps: Vec<Step> = Vec::new();
        let mut literal = Vec::new();
        let b = format.as_bytes();
        let mut i = 0;
        // A `<PRI>` the format writes itself is removed with any syslog header before parsing.
        if let Some(rest) = format.strip_prefix('<')
            && let Some(end) = rest.find('>')
            && end <= 3
            && rest[..end].bytes().all(|c| c.is_ascii_digit())
        {
            i = end + 2;
        }
        while i < b.len() {
            if b[i] != b'%' {
                literal.push(b[i]);
                i += 1;
                continue;
            }
            i += 1;
            if b.get(i) == Some(&b'%') {
                literal.push(b'%');
                i += 1;
                continue;
            }
            let encoding = match b.get(i) {
                Some(c @ (b'"' | b'[' | b'#' | b'/' | b'\'')) => {
                    i += 1;
                    Some(*c)
                }
                _ => None,
            };
            if b.get(i) == Some(&b'-') {
                i += 1;
            }
            while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                i += 1;
            }
            let mut arg = None;
            let take_arg = |i: &mut usize| -> Result<Option<String>, LogformatError> {
                if b.get(*i) != Some(&b'{') {
                    return Ok(None);
                }
                let end = format[*i..].find('}').ok_or_else(|| bad(format!("unclosed {{ at byte {i}")))? + *i;
                let a = format[*i + 1..end].to_string();
                *i = end + 1;
                Ok(Some(a))
            };
            if let Some(a) = take_arg(&mut i)? {
                arg = Some(a);
            }
            let code = CODES.iter().find(|c| format[i..].starts_with(*c)).ok_or_else(|| {
                bad(format!("unknown format code at `%{}`", &format[i..format.len().min(i + 12)]))
            })?;
            i += code.len();
            if arg.is_none() {
                arg = take_arg(&mut i)?;
            }
            if !literal.is_empty() {
                steps.push(Step::Literal(std::mem::take(&mut literal)));
            } else if matches!(steps.last(), Some(Step::Field { .. })) {
                return Err(bad(format!("%{code} follows another field with nothing between them")));
            }
            let (target, prio) = target_of(code, arg.as_deref(), encoding);
            let name = match &arg {
                Some(a) => format!("{code}{{{a}}}"),
                None => code.to_string(),
            };
            steps.push(Step::Field { target, name, prio });
        }
        if !literal.is_empty() {
            steps.push(Step::Literal(literal));
        }
        resolve_claims(&mut steps).map_err(bad)?;
        let finders = (0..steps.len())
            .map(|k| match (&steps[k], steps.get(k + 1)) {
                (Step::Field { .. }, Some(Step::Literal(l))) => Some(Finder::new(first_run(l)).into_owned()),
                _ => None,
            })
            .collect();
        Ok(Logformat { source_format: format!("squid_logformat:{name}"), steps, finders })
    }
}

/// The part of a literal used to find where the field before it ends: up to its first space
/// run (kept), so `" http_referrer="` is found whole and a padding run is found by one space.
fn first_run(l: &[u8]) -> &[u8] {
    if l.first() == Some(&b' ') { &l[..1] } else { l }
}

/// One column per code: the strongest claim keeps it, the others become `extra` fields.
fn resolve_claims(steps: &mut [Step]) -> Result<(), String> {
    let claims: Vec<(usize, Target, u8)> = steps
        .iter()
        .enumerate()
        .filter_map(|(k, s)| match s {
            Step::Field { target, prio, .. } => Some((k, *target, *prio)),
            _ => None,
        })
        .collect();
    for &(k, target, prio) in &claims {
        if target == Target::Extra {
            continue;
        }
        let same = |t: Target| std::mem::discriminant(&t) == std::mem::discriminant(&target);
        let beaten = claims.iter().any(|&(j, t, p)| j != k && same(t) && (p > prio || (p == prio && j < k)));
        if beaten && let Step::Field { target, .. } = &mut steps[k] {
            *target = Target::Extra;
        }
    }
    let has_time =
        steps.iter().any(|s| matches!(s, Step::Field { target: Target::Seconds | Target::ClfTime, .. }));
    if !has_time {
        return Err("no time code: the format needs %ts (with %tu) or %tl/%tg with its default layout".into());
    }
    let extras = steps.iter().filter(|s| matches!(s, Step::Field { target: Target::Extra, .. })).count();
    if extras > EXTRA_MAX {
        return Err(format!("{extras} fields without a column; at most {EXTRA_MAX} are supported"));
    }
    Ok(())
}

const E_LITERAL: ParseError = ParseError::new("logformat", "text between fields does not match the format");
const E_TIME: ParseError = ParseError::new("time (%ts/%tl)", "not a time");
const E_NUMBER: ParseError = ParseError::new("number field", "not a number");

/// Matches a literal at the start of `s`; a space run in the literal takes one or more spaces.
fn match_literal(s: &[u8], lit: &[u8]) -> Option<usize> {
    let (mut i, mut j) = (0, 0);
    while j < lit.len() {
        if lit[j] == b' ' {
            if s.get(i) != Some(&b' ') {
                return None;
            }
            while s.get(i) == Some(&b' ') {
                i += 1;
            }
            while lit.get(j) == Some(&b' ') {
                j += 1;
            }
        } else {
            if s.get(i) != Some(&lit[j]) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    Some(i)
}

fn number(v: &[u8]) -> Result<Option<i64>, ParseError> {
    match dash_is_none(trim(v)) {
        None => Ok(None),
        Some(v) => parse_i64(v).map(Some).ok_or(E_NUMBER),
    }
}

impl ProxyParser for Logformat {
    fn name(&self) -> &str {
        &self.source_format
    }

    fn parse<'a>(&'a self, line: &'a [u8]) -> Result<ProxyRow<'a>, ParseError> {
        let mut row = ProxyRow::default();
        let mut extra = Extra::default();
        let (mut secs, mut millis, mut clf) = (None, None, None);
        let mut pos = 0;
        for (k, step) in self.steps.iter().enumerate() {
            match step {
                Step::Literal(l) => pos += match_literal(&line[pos..], l).ok_or(E_LITERAL)?,
                Step::Field { target, name, .. } => {
                    let rest = &line[pos..];
                    let end = match &self.finders[k] {
                        Some(f) => f.find(rest).ok_or(E_LITERAL)?,
                        None => rest.len(),
                    };
                    pos += end;
                    let raw = trim(&rest[..end]);
                    let v = dash_is_none(raw);
                    use Target::*;
                    match target {
                        Seconds => secs = v.and_then(parse_epoch_micros),
                        Millis => millis = v.and_then(parse_u64),
                        ClfTime => clf = v.and_then(parse_clf_time),
                        Duration => row.duration_ms = number(raw)?,
                        ClientIp => row.client_ip = v,
                        ClientName => row.client_name = v,
                        Username { encoded } => {
                            row.username = v;
                            row.username_encoded = *encoded;
                        }
                        Method => row.method = v,
                        Url => row.url = v,
                        Status => row.status = number(raw)?.map(|s| s as i32),
                        RequestBytes => row.request_bytes = number(raw)?,
                        ResponseBytes => row.response_bytes = number(raw)?,
                        UserAgent => row.user_agent = Some(dash_is_empty(raw)),
                        Referrer => row.referrer = v,
                        ContentType => row.content_type = v,
                        CacheResult => row.cache_result = v,
                        Hierarchy => row.hierarchy = v,
                        ServerIp => row.server_ip = v,
                        Extra => {
                            if let Some(v) = v {
                                extra.push(name, v);
                            }
                        }
                    }
                }
            }
        }
        row.ts = match (secs, clf) {
            (Some(s), _) => s + millis.map_or(0, |m| m.min(999) as i64 * 1000),
            (None, Some(t)) => t,
            (None, None) => return Err(E_TIME),
        };
        row.extra = extra;
        Ok(row)
    }
}

/// `logformat <name> <format>` definitions in a squid.conf (continuation lines are not used by
/// Squid for logformat); the built-in names are skipped, trawl reads those natively.
pub fn from_squid_conf(text: &str) -> Result<Vec<Logformat>, LogformatError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("logformat") else { continue };
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        let rest = rest.trim_start();
        let Some((name, format)) = rest.split_once([' ', '\t']) else { continue };
        if matches!(name, "squid" | "common" | "combined" | "referrer" | "useragent" | "icap_squid") {
            continue;
        }
        out.push(Logformat::compile(name, format.trim_start())?);
    }
    Ok(out)
}

/// `--squid-logformat '<name> <format>'`.
pub fn from_arg(arg: &str) -> Result<Logformat, LogformatError> {
    let arg = arg.trim().strip_prefix("logformat ").unwrap_or(arg.trim());
    match arg.split_once(' ') {
        Some((name, format)) => Logformat::compile(name, format.trim_start()),
        None => Err(LogformatError::Bad {
            name: arg.to_string(),
            problem: "give a name and a format: --squid-logformat 'myformat %ts.%03tu %>a ...'".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGSTARE: &str = r#"timefm <34>logformat=lsc-squid-format duration=%tr src_ip=%>a src_port=%>p dest_ip=%<a dest_port=%<p user_ident="%[ui" user="%[un" local_time=[%tl] http_method=%rm request_method_from_client=%<rm request_method_to_server=%>rm url="%ru" http_referrer="%{Referer}>h" http_user_agent="%{User-Agent}>h" status=%>Hs vendor_action=%Ss dest_status=%Sh total_time_milliseconds=%<tt http_content_type="%mt" bytes=%st bytes_in=%>st bytes_out=%<st sni="%ssl::>sni""#;
    const LOGSTARE_LINE: &str = r#"logformat=lsc-squid-format duration=30059 src_ip=::1 src_port=49407 dest_ip=- dest_port=- user_ident="-" user="-" local_time=[28/Jun/2022:12:20:30 +0900] http_method=CONNECT request_method_from_client=CONNECT request_method_to_server=CONNECT url="fef.mx.managex.xxxsoft.com:443" http_referrer="-" http_user_agent="-" status=503 vendor_action=NONE dest_status=HIER_NONE total_time_milliseconds=- http_content_type="-" bytes=125 bytes_in=125 bytes_out=0 sni="-""#;

    use crate::formats::bytes::text as s;

    #[test]
    fn logstare_key_value_line() {
        let f = from_arg(LOGSTARE).unwrap();
        let r = f.parse(LOGSTARE_LINE.as_bytes()).unwrap();
        assert_eq!(r.ts, 1_656_386_430_000_000);
        assert_eq!(r.duration_ms, Some(30059));
        assert_eq!(s(r.client_ip), Some("::1"));
        assert_eq!((r.server_ip, r.username), (None, None));
        assert_eq!(s(r.method), Some("CONNECT"));
        assert_eq!(s(r.url), Some("fef.mx.managex.xxxsoft.com:443"));
        assert_eq!((r.referrer, s(r.user_agent)), (None, Some("")));
        assert_eq!(r.status, Some(503));
        assert_eq!((s(r.cache_result), s(r.hierarchy)), (Some("NONE"), Some("HIER_NONE")));
        assert_eq!((r.request_bytes, r.response_bytes), (Some(125), Some(0)));
        assert_eq!(r.content_type, None);
        let extra: Vec<(&str, &str)> =
            r.extra.pairs().iter().map(|(k, v)| (*k, std::str::from_utf8(v).unwrap())).collect();
        assert_eq!(extra, vec![(">p", "49407"), ("<rm", "CONNECT"), (">rm", "CONNECT"), ("st", "125"),]);
        assert_eq!(f.name(), "squid_logformat:timefm");
    }

    #[test]
    fn agent_with_spaces_and_quotes_in_a_quoted_field() {
        let f = from_arg(LOGSTARE).unwrap();
        let line = LOGSTARE_LINE
            .replace(r#"http_user_agent="-""#, r#"http_user_agent="Mozilla/5.0 (X11; "Linux")""#)
            .replace(r#"user="-""#, r#"user="CORP%5Calice""#);
        let r = f.parse(line.as_bytes()).unwrap();
        assert_eq!(s(r.user_agent), Some(r#"Mozilla/5.0 (X11; "Linux")"#));
        assert_eq!(s(r.username), Some("CORP%5Calice"));
        assert!(r.username_encoded);
    }

    #[test]
    fn native_format_as_a_logformat_matches_the_native_parser() {
        let f = from_arg("native %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt").unwrap();
        let line = b"1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/209.73.177.115 -";
        let a = f.parse(line).unwrap();
        let b = super::super::squid::SquidNative.parse(line).unwrap();
        assert_eq!(
            format!(
                "{:?}",
                (
                    a.ts,
                    a.duration_ms,
                    a.client_ip,
                    a.status,
                    a.response_bytes,
                    a.method,
                    a.url,
                    a.username,
                    a.hierarchy,
                    a.server_ip,
                    a.content_type,
                    a.cache_result
                )
            ),
            format!(
                "{:?}",
                (
                    b.ts,
                    b.duration_ms,
                    b.client_ip,
                    b.status,
                    b.response_bytes,
                    b.method,
                    b.url,
                    b.username,
                    b.hierarchy,
                    b.server_ip,
                    b.content_type,
                    b.cache_result
                )
            )
        );
        assert!(f.parse(b"not a line").is_err());
    }

    #[test]
    fn bad_formats_are_explained() {
        assert!(from_arg("x %>a %ru").unwrap_err().to_string().contains("no time code"));
        assert!(from_arg("x %ts%tr").unwrap_err().to_string().contains("nothing between"));
        assert!(from_arg("x %ts %zz").unwrap_err().to_string().contains("unknown format code"));
        let conf = "logformat squid %ts\nlogformat mine %ts.%03tu %>a\naccess_log /var/log/a.log mine\n";
        assert_eq!(from_squid_conf(conf).unwrap().len(), 1);
    }
}
