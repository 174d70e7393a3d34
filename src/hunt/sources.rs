//! Indicator files: plain text, CSV, STIX 2.1 bundles, MISP events and attribute lists, MISP
//! warninglists and plain JSON lists. Each value becomes an indicator or an `Unread` naming its
//! file and line; entries of kinds proxy and firewall logs cannot hold (file hashes, e-mail
//! addresses) are counted as `Skipped` by type.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::HuntError;
use super::indicator::{Indicator, Kind, parse_value};

/// How to read the lists.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// CSV column holding the values: a header name, or a 1-based number.
    pub column: Option<String>,
}

/// A value that is not an indicator, with where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// `file:line`.
    pub origin: String,
    pub value: String,
    pub reason: String,
}

/// Everything read from a set of list files.
#[derive(Debug, Clone, Default)]
pub struct IocSet {
    /// Distinct indicators, in the order first read.
    pub indicators: Vec<Indicator>,
    pub unread: Vec<Unread>,
    /// Entries of types the logs cannot hold, counted by `file: type`.
    pub skipped: BTreeMap<String, usize>,
    /// Per file: its path, the format it was read as, and the values it gave.
    pub files: Vec<(String, &'static str, usize)>,
    index: HashMap<(Kind, String), usize>,
}

impl IocSet {
    /// Reads each file, told apart by extension and content.
    pub fn load(paths: &[impl AsRef<Path>], opts: &ListOptions) -> Result<IocSet, HuntError> {
        let mut set = IocSet::default();
        for p in paths {
            set.load_file(p.as_ref(), opts)?;
        }
        Ok(set)
    }

    fn load_file(&mut self, path: &Path, opts: &ListOptions) -> Result<(), HuntError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| HuntError::Read { path: name.clone(), source: e })?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let before = self.read_values();
        let mut file = FileReader { set: self, name: &name };
        let format = if ext == "csv" {
            file.csv(text, opts)?;
            "csv"
        } else if ext == "json" || text.trim_start().starts_with(['{', '[']) {
            let value: Value = serde_json::from_str(text).map_err(|e| HuntError::Format {
                path: name.clone(),
                reason: format!("line {}, column {}: not valid JSON: {e}", e.line(), e.column()),
            })?;
            file.json(text, &value)?
        } else {
            file.text(text);
            "text"
        };
        let count = self.read_values() - before;
        self.files.push((name, format, count));
        Ok(())
    }

    fn read_values(&self) -> usize {
        self.indicators.iter().map(|i| i.origins.len()).sum::<usize>()
            + self.unread.len()
            + self.skipped.values().sum::<usize>()
    }

    /// Adds a value; a repeat of an indicator already read adds only where it was seen.
    fn add(&mut self, origin: String, value: &str, label: Option<String>) {
        match parse_value(value) {
            Ok((kind, key)) => self.add_parsed(origin, kind, key, label),
            Err(reason) => self.unread.push(Unread { origin, value: value.trim().to_string(), reason }),
        }
    }

    fn add_parsed(&mut self, origin: String, kind: Kind, key: String, label: Option<String>) {
        match self.index.get(&(kind, key.clone())) {
            Some(&i) => self.indicators[i].origins.push(origin),
            None => {
                self.index.insert((kind, key.clone()), self.indicators.len());
                self.indicators.push(Indicator { kind, key, origins: vec![origin], label });
            }
        }
    }
}

/// Reads one file into the set.
struct FileReader<'a> {
    set: &'a mut IocSet,
    name: &'a str,
}

/// Column names taken as the indicator column when `--column` is not given.
const VALUE_COLUMNS: &[&str] =
    &["indicator", "ioc", "value", "observable", "domain", "hostname", "host", "url", "ip", "address"];

impl FileReader<'_> {
    fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.name)
    }

    fn unread(&mut self, line: usize, value: &str, reason: impl Into<String>) {
        let origin = self.at(line);
        self.set.unread.push(Unread { origin, value: value.to_string(), reason: reason.into() });
    }

    fn skip(&mut self, what: &str) {
        *self.set.skipped.entry(format!("{}: {what}", self.name)).or_default() += 1;
    }

    /// One value a line; `#` starts a comment (at the start, or after a space, since URLs may
    /// hold `#`); hosts-file lines (`0.0.0.0 evil.example`) give their name.
    fn text(&mut self, text: &str) {
        for (n, line) in text.lines().enumerate() {
            let mut v = line.trim();
            if let Some(i) = v.find(" #").or_else(|| v.find("\t#")) {
                v = v[..i].trim_end();
            }
            if v.is_empty() || v.starts_with('#') {
                continue;
            }
            if let Some((addr, name)) = v.split_once(char::is_whitespace)
                && matches!(addr, "0.0.0.0" | "127.0.0.1" | "::" | "::1")
                && !name.trim().contains(char::is_whitespace)
            {
                v = name.trim();
            }
            let origin = self.at(n + 1);
            self.set.add(origin, v, None);
        }
    }

    fn csv(&mut self, text: &str, opts: &ListOptions) -> Result<(), HuntError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let bad = |reason: String| HuntError::Format { path: self.name.to_string(), reason };
        let Some(first) = records.next() else { return Ok(()) };
        let first = first.map_err(|e| bad(e.to_string()))?;
        let header: Vec<String> = first.iter().map(|h| h.to_ascii_lowercase()).collect();
        let by_name = |name: &str| header.iter().position(|h| h == &name.to_ascii_lowercase());
        let (column, first_is_header) = match opts.column.as_deref() {
            Some(c) => match c.parse::<usize>() {
                Ok(n) if n >= 1 => {
                    // A numbered column may have a header: the first row is one when its value
                    // there is no indicator.
                    let head = first.get(n - 1).map(parse_value);
                    (n - 1, matches!(head, Some(Err(_))))
                }
                _ => (
                    by_name(c).ok_or_else(|| {
                        bad(format!("no column {c:?}; the header names: {}", header.join(", ")))
                    })?,
                    true,
                ),
            },
            None => (
                VALUE_COLUMNS.iter().find_map(|c| by_name(c)).ok_or_else(|| {
                    bad(format!(
                        "which column holds the indicators? pass --column NAME or --column N \
                         (the header names: {})",
                        header.join(", ")
                    ))
                })?,
                true,
            ),
        };
        let mut rows = Vec::new();
        if !first_is_header {
            rows.push(Ok(first));
        }
        rows.extend(records);
        for rec in rows {
            let rec = rec.map_err(|e| bad(e.to_string()))?;
            let line = rec.position().map_or(0, |p| p.line() as usize);
            match rec.get(column) {
                Some("") => {}
                Some(v) => {
                    let origin = self.at(line);
                    self.set.add(origin, v, None);
                }
                None => self.unread(line, "", format!("no column {} on this line", column + 1)),
            }
        }
        Ok(())
    }

    /// A JSON document: a STIX bundle, a MISP event or attribute list, a MISP warninglist, or a
    /// list of values.
    fn json(&mut self, text: &str, doc: &Value) -> Result<&'static str, HuntError> {
        let mut lines = LineFinder::new(text);
        let obj = doc.as_object();
        let get = |k: &str| obj.and_then(|o| o.get(k));
        if get("type").and_then(Value::as_str) == Some("bundle") || get("objects").is_some() {
            for o in get("objects").and_then(Value::as_array).into_iter().flatten() {
                self.stix_object(o, &mut lines);
            }
            return Ok("stix");
        }
        if get("Event").is_some() || get("response").is_some() || get("Attribute").is_some() {
            self.misp(doc, &mut lines);
            return Ok("misp");
        }
        if let Some(list) = get("list").and_then(Value::as_array) {
            let kind = get("type").and_then(Value::as_str).unwrap_or("string");
            for v in list {
                let line = lines.line_of(v);
                let s = v.as_str().unwrap_or_default();
                if matches!(kind, "regex" | "substring") {
                    self.unread(line, s, format!("warninglist type {kind} is not read (only exact values)"));
                } else {
                    let origin = self.at(line);
                    self.set.add(origin, s, None);
                }
            }
            return Ok("misp_warninglist");
        }
        if let Some(items) = doc.as_array() {
            for v in items {
                match v {
                    Value::String(s) => {
                        let origin = self.at(lines.line_of(v));
                        self.set.add(origin, s, None);
                    }
                    Value::Object(o) if o.contains_key("pattern") => self.stix_object(v, &mut lines),
                    Value::Object(o) if o.contains_key("Event") => self.misp(v, &mut lines),
                    Value::Object(_) => self.misp_attribute(v, &mut lines),
                    other => {
                        let line = lines.line_of(other);
                        self.unread(line, &other.to_string(), "not a string or an object with a value");
                    }
                }
            }
            return Ok("json");
        }
        Err(HuntError::Format {
            path: self.name.to_string(),
            reason: "not a STIX 2.1 bundle, a MISP event or attribute list, a MISP warninglist, or a \
                     JSON list of values"
                .into(),
        })
    }

    fn stix_object(&mut self, o: &Value, lines: &mut LineFinder<'_>) {
        let ty = o.get("type").and_then(Value::as_str).unwrap_or_default();
        let id = o.get("id").and_then(Value::as_str).unwrap_or_default();
        match ty {
            "indicator" => {
                let line = lines.line_of_str(id);
                let pattern = o.get("pattern").and_then(Value::as_str).unwrap_or_default();
                let pattern_type = o.get("pattern_type").and_then(Value::as_str).unwrap_or("stix");
                if pattern_type != "stix" {
                    self.unread(
                        line,
                        pattern,
                        format!("{id}: pattern_type {pattern_type} is not read (only stix)"),
                    );
                    return;
                }
                if o.get("revoked").and_then(Value::as_bool) == Some(true) {
                    self.skip("revoked STIX indicator");
                    return;
                }
                let label = o.get("name").and_then(Value::as_str).map(str::to_string);
                match stix_pattern(pattern) {
                    Ok(values) => {
                        for (object, value) in values {
                            if !STIX_OBJECTS.contains(&object.as_str()) {
                                self.skip(&format!("STIX {object}"));
                                continue;
                            }
                            let origin = self.at(line);
                            self.set.add(origin, &value, label.clone());
                        }
                    }
                    Err(reason) => self.unread(line, pattern, format!("{id}: {reason}")),
                }
            }
            "domain-name" | "ipv4-addr" | "ipv6-addr" | "url" => {
                let line = lines.line_of_str(id);
                let value = o.get("value").and_then(Value::as_str).unwrap_or_default();
                let origin = self.at(line);
                self.set.add(origin, value, None);
            }
            _ => {}
        }
    }

    fn misp(&mut self, doc: &Value, lines: &mut LineFinder<'_>) {
        let event = |e: &Value, this: &mut Self, lines: &mut LineFinder<'_>| {
            for a in e.get("Attribute").and_then(Value::as_array).into_iter().flatten() {
                this.misp_attribute(a, lines);
            }
            for obj in e.get("Object").and_then(Value::as_array).into_iter().flatten() {
                for a in obj.get("Attribute").and_then(Value::as_array).into_iter().flatten() {
                    this.misp_attribute(a, lines);
                }
            }
        };
        let mut docs: Vec<&Value> = Vec::new();
        match doc.get("response") {
            Some(Value::Array(items)) => docs.extend(items),
            Some(r) => docs.push(r),
            None => docs.push(doc),
        }
        for d in docs {
            event(d.get("Event").unwrap_or(d), self, lines);
        }
    }

    /// A MISP attribute `{type, value, comment}`: network types are read, others counted.
    fn misp_attribute(&mut self, a: &Value, lines: &mut LineFinder<'_>) {
        let value = a.get("value").and_then(Value::as_str).unwrap_or_default();
        let line = lines.line_of_str(value);
        let label = a.get("comment").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_string);
        let ty = a.get("type").and_then(Value::as_str);
        let parts: Vec<&str> = match ty {
            None | Some("domain" | "hostname" | "ip-src" | "ip-dst" | "url" | "link" | "uri") => vec![value],
            Some("domain|ip") => value.split('|').collect(),
            Some("ip-src|port" | "ip-dst|port" | "hostname|port") => {
                vec![value.split('|').next().unwrap_or_default()]
            }
            Some(other) => {
                self.skip(&format!("MISP {other}"));
                return;
            }
        };
        for p in parts {
            let origin = self.at(line);
            self.set.add(origin, p, label.clone());
        }
    }
}

/// STIX object types whose values logs hold.
const STIX_OBJECTS: &[&str] = &["domain-name", "ipv4-addr", "ipv6-addr", "url", "network-traffic"];

/// The `(object type, value)` comparisons of a STIX pattern made of `=` / `IN` / `ISSUBSET`
/// comparisons joined by `OR`; anything else (AND, FOLLOWEDBY, LIKE, MATCHES, NOT, qualifiers) is
/// refused rather than read as something it does not say.
fn stix_pattern(pattern: &str) -> Result<Vec<(String, String)>, String> {
    let tokens = stix_tokens(pattern)?;
    let mut out = Vec::new();
    let mut i = 0;
    let mut expect_comparison = true;
    while i < tokens.len() {
        let t = &tokens[i];
        match t {
            Tok::Open | Tok::Close => i += 1,
            Tok::Word(w) if !expect_comparison && w.eq_ignore_ascii_case("OR") => {
                expect_comparison = true;
                i += 1;
            }
            Tok::Word(path) if expect_comparison => {
                let (object, prop) =
                    path.split_once(':').ok_or_else(|| format!("{path:?} is not object:property"))?;
                let readable = prop == "value" || prop.ends_with("_ref.value");
                let op = match tokens.get(i + 1) {
                    Some(Tok::Word(op)) => op.to_ascii_uppercase(),
                    _ => return Err(format!("no operator after {path}")),
                };
                let mut j = i + 2;
                let mut values = Vec::new();
                match (op.as_str(), tokens.get(j)) {
                    ("=" | "ISSUBSET", Some(Tok::Str(s))) => {
                        values.push(s.clone());
                        j += 1;
                    }
                    ("IN", Some(Tok::Open)) => {
                        j += 1;
                        while let Some(Tok::Str(s)) = tokens.get(j) {
                            values.push(s.clone());
                            j += 1;
                            if matches!(tokens.get(j), Some(Tok::Word(c)) if c == ",") {
                                j += 1;
                            }
                        }
                        if tokens.get(j) != Some(&Tok::Close) {
                            return Err("IN ( ... ) is not closed".into());
                        }
                        j += 1;
                    }
                    _ => {
                        return Err(format!(
                            "operator {op} is not read (only =, IN and ISSUBSET joined by OR)"
                        ));
                    }
                }
                if STIX_OBJECTS.contains(&object) && !readable {
                    return Err(format!(
                        "{path} is not read (only :value of domain-name, ipv4-addr, ipv6-addr, url)"
                    ));
                }
                let object = if object == "network-traffic" { "ipv4-addr" } else { object };
                out.extend(values.into_iter().map(|v| (object.to_string(), v)));
                expect_comparison = false;
                i = j;
            }
            Tok::Word(w) => {
                return Err(format!(
                    "{w} is not read (only comparisons joined by OR: each part of an AND must hold together)"
                ));
            }
            Tok::Str(s) => return Err(format!("unexpected '{s}'")),
        }
    }
    if out.is_empty() {
        return Err("no comparison in the pattern".into());
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Str(String),
}

fn stix_tokens(p: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' | '(' => out.push(Tok::Open),
            ']' | ')' => out.push(Tok::Close),
            ',' => out.push(Tok::Word(",".into())),
            '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => return Err("a quoted value is not closed".into()),
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_whitespace() => {}
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    // A quoted key inside a path (`file:hashes.'SHA-256'`) is part of the word.
                    if n == '\'' && w.ends_with('.') {
                        chars.next();
                        w.push('\'');
                        for q in chars.by_ref() {
                            w.push(q);
                            if q == '\'' {
                                break;
                            }
                        }
                        continue;
                    }
                    if n.is_whitespace() || matches!(n, '[' | ']' | '(' | ')' | '\'' | ',') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// Finds the line a JSON value was written on, searching forward from the last one found (the
/// values come in document order).
struct LineFinder<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> LineFinder<'a> {
    fn new(text: &'a str) -> Self {
        LineFinder { text, pos: 0, line: 1 }
    }

    fn line_of(&mut self, v: &Value) -> usize {
        match v {
            Value::String(s) => self.line_of_str(s),
            other => self.seek(&other.to_string()),
        }
    }

    fn line_of_str(&mut self, s: &str) -> usize {
        self.seek(&serde_json::to_string(s).unwrap_or_default())
    }

    fn seek(&mut self, needle: &str) -> usize {
        if needle.is_empty() {
            return self.line;
        }
        if let Some(i) = self.text[self.pos..].find(needle) {
            let end = self.pos + i;
            self.line += memchr::memchr_iter(b'\n', &self.text.as_bytes()[self.pos..end]).count();
            self.pos = end;
        }
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stix_patterns_of_or_joined_comparisons() {
        let p = stix_pattern(
            "[domain-name:value = 'evil.example' OR ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        );
        assert_eq!(
            p.unwrap(),
            vec![
                ("domain-name".into(), "evil.example".into()),
                ("ipv4-addr".into(), "198.51.100.0/24".into())
            ]
        );
        let p = stix_pattern(
            "([url:value = 'http://a.example/it\\'s'] OR [ipv6-addr:value IN ('2001:db8::1', '2001:db8::2')])",
        );
        assert_eq!(p.unwrap().len(), 3);
        assert!(
            stix_pattern("[domain-name:value = 'a.example' AND ipv4-addr:value = '1.2.3.4']")
                .unwrap_err()
                .contains("AND")
        );
        assert!(stix_pattern("[domain-name:value LIKE '%.example']").unwrap_err().contains("LIKE"));
        assert_eq!(stix_pattern("[file:hashes.MD5 = 'abc']").unwrap(), vec![("file".into(), "abc".into())]);
        assert!(stix_pattern("[url:scheme = 'http']").unwrap_err().contains("url:scheme"));
    }
}
