//! Detection packs: saved SQL with front matter and named parameters, and the runner that turns
//! each into hits, a skip (its table is empty) or a failure (its SQL is broken) without stopping
//! the others.
//!
//! A pack is a folder: `<id>.sql` detections at the top, and `lists/<name>.txt|csv` tables the
//! detections can join (`job-sites.txt` becomes table `job_sites`). See README.md for the format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::engine::{Engine, QueryError};

pub mod case;
mod enrich;
pub mod sigma;

pub use enrich::added_columns;

include!(concat!(env!("OUT_DIR"), "/builtin_pack.rs"));

/// How much a detection's hits matter; `--fail-on` compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// A parameter's value; its kind is fixed by the default, and `--set` must give the same kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    /// `80, 443, 8080`: for `IN (${ports})`.
    IntList(Vec<i64>),
    /// Written in front matter as `'text'`; substituted as a quoted SQL string.
    Text(String),
}

impl ParamValue {
    /// Reads a default from front matter: a number, a list of integers, or a `'quoted string'`.
    fn parse_default(s: &str) -> Result<ParamValue, String> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix('\'') {
            let Some(body) = inner.strip_suffix('\'') else {
                return Err(format!("unterminated string {s}"));
            };
            return Ok(ParamValue::Text(body.replace("''", "'")));
        }
        if let Ok(v) = s.parse::<i64>() {
            return Ok(ParamValue::Int(v));
        }
        if let Ok(v) = s.parse::<f64>()
            && v.is_finite()
        {
            return Ok(ParamValue::Float(v));
        }
        if s.contains(',')
            && let Ok(v) = s.split(',').map(|p| p.trim().parse::<i64>()).collect::<Result<Vec<_>, _>>()
        {
            return Ok(ParamValue::IntList(v));
        }
        Err(format!("default {s:?} is not a number, a list of integers (80, 443) or a 'quoted string'"))
    }

    /// Reads a `--set` value as the same kind as this one.
    fn parse_like(&self, s: &str) -> Result<ParamValue, String> {
        let t = s.trim();
        match self {
            ParamValue::Int(_) => t.parse().map(ParamValue::Int).map_err(|_| "expects an integer".into()),
            ParamValue::Float(_) => match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(ParamValue::Float(v)),
                _ => Err("expects a number".into()),
            },
            ParamValue::IntList(_) => t
                .split(',')
                .map(|p| p.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map(ParamValue::IntList)
                .map_err(|_| "expects integers separated by commas (80,443)".into()),
            ParamValue::Text(_) => Ok(ParamValue::Text(s.to_string())),
        }
    }

    /// The value as a SQL literal: numbers as they are, strings quoted with `'` doubled.
    fn sql(&self) -> String {
        match self {
            ParamValue::Int(v) => v.to_string(),
            ParamValue::Float(v) => format!("{v:?}"),
            ParamValue::IntList(v) => v.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
            ParamValue::Text(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Text(s) => write!(f, "'{s}'"),
            other => f.write_str(&other.sql()),
        }
    }
}

/// A named parameter a detection's SQL uses as `${name}`.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub default: ParamValue,
    pub description: String,
}

/// One detection: front matter plus SQL.
#[derive(Debug, Clone)]
pub struct Detection {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub mitre: Vec<String>,
    /// Tables that must hold rows (in the time range) for the detection to run.
    pub tables: Vec<String>,
    pub params: Vec<Param>,
    /// Column naming who or what a hit is about (default: the first).
    pub entity: Option<String>,
    /// Address columns to give country and network columns when a GeoIP database is given.
    pub enrich: Vec<String>,
    /// Where it was read from, for messages.
    pub file: String,
    sql: String,
    notes_sql: Option<String>,
    /// Set for a detection that cannot run (a Sigma rule needing a field no format logs): the
    /// runner reports it skipped with this reason instead of running anything.
    skip: Option<String>,
}

/// Problems with a pack or with the options given for it.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{file}: {reason}")]
    Pack { file: String, reason: String },
    #[error("--set {key}: no selected detection has a parameter {key}; known: {known}")]
    UnknownParam { key: String, known: String },
    #[error("--set {key}={value}: {reason}")]
    BadValue { key: String, value: String, reason: String },
    #[error("--set expects KEY=VALUE or ID.KEY=VALUE, got {0:?}")]
    BadSet(String),
    #[error("no detection {id:?} in the pack; detections: {known}")]
    UnknownDetection { id: String, known: String },
    #[error(transparent)]
    Query(#[from] QueryError),
}

fn pack_err(file: &str, reason: impl Into<String>) -> DetectError {
    DetectError::Pack { file: file.to_string(), reason: reason.into() }
}

const KEYS: &[&str] =
    &["id", "title", "description", "severity", "mitre", "tables", "param", "entity", "enrich"];
/// The parameter giving the lowest `score` a row needs to count as a hit (read by the runner).
pub const MIN_SCORE: &str = "min_score";
/// A line with only this starts the detection's notes query (see README).
const NOTES_MARKER: &str = "-- @notes";

impl Detection {
    /// Parses a detection file; `file` names it in errors, `stem` is the default id.
    pub fn parse(file: &str, stem: &str, text: &str) -> Result<Detection, DetectError> {
        let err = |reason: String| pack_err(file, reason);
        let (mut id, mut title, mut description, mut severity) =
            (stem.to_string(), None, String::new(), None);
        let (mut mitre, mut tables, mut params, mut entity) = (Vec::new(), Vec::new(), Vec::new(), None);
        let mut enrich = Vec::new();
        let mut body_start = text.len();
        let mut last_key = "";
        let mut offset = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let trimmed = line.trim();
            let Some(comment) = trimmed.strip_prefix("--") else {
                if trimmed.is_empty() {
                    offset += line.len();
                    continue;
                }
                body_start = offset;
                break;
            };
            offset += line.len();
            // An indented line (`--   more`) continues the previous key's text, whatever it holds.
            let indented = comment.starts_with("  ");
            let comment = comment.trim();
            let keyed = comment.split_once(':').filter(|(k, _)| {
                !indented && !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            });
            let Some((key, value)) = keyed else {
                // An unkeyed line continues the description; other comments are the author's.
                if last_key == "description" && !comment.is_empty() {
                    description.push(' ');
                    description.push_str(comment);
                }
                continue;
            };
            let value = value.trim();
            let at = |reason: String| err(format!("line {}: {reason}", n + 1));
            match key {
                "id" => id = value.to_string(),
                "title" => title = Some(value.to_string()),
                "description" => {
                    if !description.is_empty() {
                        description.push(' ');
                    }
                    description.push_str(value);
                }
                "severity" => {
                    severity = Some(Severity::parse(value).ok_or_else(|| {
                        at(format!("severity {value:?}: use info, low, medium, high or critical"))
                    })?)
                }
                "mitre" => mitre.extend(list(value)),
                "tables" => tables.extend(list(value)),
                "entity" => entity = Some(value.to_string()),
                "enrich" => {
                    for c in list(value) {
                        if !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                            return Err(at(format!("enrich {c:?}: name a column the SQL returns")));
                        }
                        enrich.push(c);
                    }
                }
                "param" => params.push(parse_param(value).map_err(at)?),
                other => {
                    return Err(at(format!(
                        "unknown front-matter key {other:?} (known: {})",
                        KEYS.join(", ")
                    )));
                }
            }
            last_key = key;
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') || id.is_empty() {
            return Err(err(format!("id {id:?}: use letters, digits, '_' and '-'")));
        }
        let title = title.ok_or_else(|| err("no `-- title:` in the front matter".into()))?;
        let severity = severity.ok_or_else(|| err("no `-- severity:` in the front matter".into()))?;
        if tables.is_empty() {
            return Err(err("no `-- tables:` in the front matter (the tables it reads)".into()));
        }
        let mut seen = BTreeSet::new();
        if let Some(p) = params.iter().find(|p| !seen.insert(p.name.clone())) {
            return Err(err(format!("parameter {} is declared twice", p.name)));
        }
        let body = &text[body_start..];
        let (sql, notes_sql) = match body.split_once(&format!("\n{NOTES_MARKER}\n")) {
            Some((sql, notes)) => (sql.trim().to_string(), Some(notes.trim().to_string())),
            None => (body.trim().to_string(), None),
        };
        if sql.is_empty() {
            return Err(err("no SQL after the front matter".into()));
        }
        let detection = Detection {
            id,
            title,
            description,
            severity,
            mitre,
            tables,
            params,
            entity,
            enrich,
            file: file.to_string(),
            sql: sql.trim_end_matches(';').to_string(),
            notes_sql: notes_sql.map(|s| s.trim_end_matches(';').to_string()),
            skip: None,
        };
        // Substituting the defaults now finds `${typo}`s and declared-but-unused parameters early.
        let none = HashMap::new();
        let values = detection.values(&none);
        let mut used = BTreeSet::new();
        for sql in std::iter::once(&detection.sql).chain(&detection.notes_sql) {
            substitute(sql, &values, &mut used).map_err(err)?;
        }
        // The runner reads min_score itself (it decides which rows are hits), so the SQL need not.
        used.insert(MIN_SCORE.to_string());
        if let Some(p) = detection.params.iter().find(|p| !used.contains(p.name.as_str())) {
            return Err(err(format!(
                "parameter {} is declared but the SQL never uses ${{{}}}",
                p.name, p.name
            )));
        }
        Ok(detection)
    }

    /// A detection built in code (a compiled Sigma rule) rather than read from a pack file; it
    /// has no parameters. `sql` is None with `skip` giving why it cannot run.
    pub fn built(meta: Detection, sql: Result<(String, Option<String>), String>) -> Detection {
        let (sql, notes_sql, skip) = match sql {
            Ok((sql, notes)) => (sql, notes, None),
            Err(reason) => (String::new(), None, Some(reason)),
        };
        Detection { sql, notes_sql, skip, params: Vec::new(), ..meta }
    }

    /// Metadata only, to be completed by [`Detection::built`].
    pub fn meta(id: &str, title: &str, severity: Severity, file: &str, tables: Vec<String>) -> Detection {
        Detection {
            id: id.to_string(),
            title: title.to_string(),
            description: String::new(),
            severity,
            mitre: Vec::new(),
            tables,
            params: Vec::new(),
            entity: None,
            enrich: Vec::new(),
            file: file.to_string(),
            sql: String::new(),
            notes_sql: None,
            skip: None,
        }
    }

    /// Why the detection cannot run, when it cannot.
    pub fn skip_reason(&self) -> Option<&str> {
        self.skip.as_deref()
    }

    fn values<'a>(&'a self, overrides: &'a HashMap<String, ParamValue>) -> HashMap<&'a str, &'a ParamValue> {
        self.params.iter().map(|p| (p.name.as_str(), overrides.get(&p.name).unwrap_or(&p.default))).collect()
    }

    /// The SQL with parameters substituted (defaults, unless overridden).
    pub fn sql_with(&self, overrides: &HashMap<String, ParamValue>) -> (String, Option<String>) {
        let values = self.values(overrides);
        let mut used = BTreeSet::new();
        // Parse checked every name, so substitution cannot fail here.
        let sub = |s: &str, used: &mut BTreeSet<String>| substitute(s, &values, used).unwrap_or_default();
        let sql = sub(&self.sql, &mut used);
        let notes = self.notes_sql.as_deref().map(|n| sub(n, &mut used));
        (sql, notes)
    }
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// `name = default  # description`.
fn parse_param(value: &str) -> Result<Param, String> {
    let (name, rest) = value
        .split_once('=')
        .ok_or_else(|| format!("param {value:?}: write `name = default  # what it is`"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("param name {name:?}: use letters, digits and '_'"));
    }
    let rest = rest.trim();
    // A quoted default may hold '#', so the description starts after its closing quote.
    let split_from = if rest.starts_with('\'') { closing_quote(rest).unwrap_or(rest.len()) } else { 0 };
    let (default, description) = match rest[split_from..].find('#') {
        Some(i) => (&rest[..split_from + i], rest[split_from + i + 1..].trim()),
        None => (rest, ""),
    };
    let default = ParamValue::parse_default(default).map_err(|e| format!("param {name}: {e}"))?;
    Ok(Param { name: name.to_string(), default, description: description.to_string() })
}

/// Index just past the quote closing a `'...'` literal that starts `s` (`''` is an escaped quote).
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Replaces each `${name}` with its value as a SQL literal.
fn substitute(
    sql: &str,
    values: &HashMap<&str, &ParamValue>,
    used: &mut BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| "`${` without a closing `}`".to_string())?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| {
            let mut known: Vec<&str> = values.keys().copied().collect();
            known.sort_unstable();
            format!(
                "the SQL uses ${{{name}}} but declares no such parameter (declared: {})",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })?;
        out.push_str(&value.sql());
        used.insert(name.to_string());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Detections and the list tables they join.
#[derive(Debug, Clone, Default)]
pub struct Pack {
    pub detections: Vec<Detection>,
    pub lists: Vec<(String, RecordBatch)>,
}

impl Pack {
    /// The pack compiled into trawl (`queries/`).
    pub fn builtin() -> Result<Pack, DetectError> {
        Pack::from_files("queries", BUILTIN_FILES.iter().map(|(p, t)| (p.to_string(), t.to_string())))
    }

    /// A pack folder: `*.sql` at its top, `lists/*.txt|csv` beside them; other files are ignored.
    pub fn load(dir: &Path) -> Result<Pack, DetectError> {
        let io = |p: &Path, e: std::io::Error| pack_err(&p.display().to_string(), e.to_string());
        let root = dir.canonicalize().map_err(|e| io(dir, e))?;
        let mut files = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("lists")] {
            let entries = match std::fs::read_dir(&sub) {
                Ok(e) => e,
                Err(e) if sub != dir && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&sub, e)),
            };
            within(&root, &sub)?;
            for entry in entries {
                let path = entry.map_err(|e| io(&sub, e))?.path();
                if !path.is_file() {
                    if path.is_symlink() && !path.exists() {
                        return Err(pack_err(&path.display().to_string(), "a link to nothing (broken link)"));
                    }
                    continue;
                }
                // Only what a pack is made of is read: a README.pdf beside the detections is no error.
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
                let wanted = if sub == dir { ext == "sql" } else { ext == "txt" || ext == "csv" };
                if !wanted {
                    continue;
                }
                within(&root, &path)?;
                let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                files.push((rel, text));
            }
        }
        files.sort();
        let pack = Pack::from_files(&dir.display().to_string(), files)?;
        if pack.detections.is_empty() {
            return Err(pack_err(&dir.display().to_string(), "no .sql detections in this folder"));
        }
        Ok(pack)
    }

    fn from_files(
        origin: &str,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Pack, DetectError> {
        let mut pack = Pack::default();
        for (rel, text) in files {
            let file = format!("{origin}/{rel}");
            let path = Path::new(&rel);
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let ext = path.extension().and_then(|s| s.to_str()).unwrap_or_default();
            let in_lists = rel.starts_with("lists/");
            match ext {
                "sql" if !in_lists => pack.add(Detection::parse(&file, stem, &text)?)?,
                "txt" | "csv" if in_lists => {
                    let batch = parse_list(&file, ext, &text)?;
                    pack.lists.push((stem.replace('-', "_"), batch));
                }
                _ => {}
            }
        }
        Ok(pack)
    }

    /// Adds a detection (one built in code, say); its id must be new to the pack.
    pub fn add(&mut self, d: Detection) -> Result<(), DetectError> {
        if let Some(other) = self.detections.iter().find(|o| o.id == d.id) {
            return Err(pack_err(&d.file, format!("id {} is also used by {}", d.id, other.file)));
        }
        self.detections.push(d);
        Ok(())
    }

    /// Adds another pack's detections and lists; a detection or list with the same name replaces
    /// this pack's (so a copy of a built-in detection, edited, takes its place).
    pub fn overlay(&mut self, other: Pack) {
        for d in other.detections {
            match self.detections.iter_mut().find(|o| o.id == d.id) {
                Some(slot) => *slot = d,
                None => self.detections.push(d),
            }
        }
        for (name, batch) in other.lists {
            self.lists.retain(|(n, _)| *n != name);
            self.lists.push((name, batch));
        }
    }

    /// A detection by id.
    pub fn get(&self, id: &str) -> Result<&Detection, DetectError> {
        self.detections.iter().find(|d| d.id == id).ok_or_else(|| DetectError::UnknownDetection {
            id: id.to_string(),
            known: self.detections.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// The detections named by `only` (all when empty), with `--set` overrides applied.
    pub fn bind(&self, only: &[String], sets: &[String]) -> Result<Vec<Bound<'_>>, DetectError> {
        let selected: Vec<&Detection> = if only.is_empty() {
            self.detections.iter().collect()
        } else {
            only.iter().map(|id| self.get(id)).collect::<Result<_, _>>()?
        };
        let mut overrides: Vec<HashMap<String, ParamValue>> = vec![HashMap::new(); selected.len()];
        for set in sets {
            let (key, value) = set.split_once('=').ok_or_else(|| DetectError::BadSet(set.clone()))?;
            let key = key.trim();
            // `id.key` sets one detection's parameter; `key` sets it wherever it is declared.
            let (only_id, name) = match key.split_once('.') {
                Some((id, name)) => (Some(id), name),
                None => (None, key),
            };
            let mut matched = false;
            for (d, o) in selected.iter().zip(overrides.iter_mut()) {
                if only_id.is_some_and(|id| id != d.id) {
                    continue;
                }
                let Some(p) = d.params.iter().find(|p| p.name == name) else { continue };
                let v = p.default.parse_like(value).map_err(|reason| DetectError::BadValue {
                    key: key.to_string(),
                    value: value.to_string(),
                    reason: format!("{} ({}) {reason}", p.name, d.id),
                })?;
                o.insert(name.to_string(), v);
                matched = true;
            }
            if !matched {
                let known: BTreeSet<String> = selected
                    .iter()
                    .flat_map(|d| d.params.iter().map(move |p| format!("{}.{}", d.id, p.name)))
                    .collect();
                return Err(DetectError::UnknownParam {
                    key: key.to_string(),
                    known: known.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(selected
            .into_iter()
            .zip(overrides)
            .map(|(detection, o)| {
                let (sql, notes_sql) = detection.sql_with(&o);
                let min_score = detection.values(&o).get(MIN_SCORE).and_then(|v| match v {
                    ParamValue::Int(i) => Some(*i as f64),
                    ParamValue::Float(f) => Some(*f),
                    _ => None,
                });
                Bound { detection, sql, notes_sql, min_score }
            })
            .collect())
    }

    /// Registers the pack's lists as tables (replacing built-in lists of the same name).
    pub fn register_lists(&self, engine: &mut Engine) -> Result<(), DetectError> {
        for (name, batch) in &self.lists {
            engine.register_batch(name, batch.clone())?;
        }
        Ok(())
    }
}

/// Refuses a pack file or folder that is, or passes through, a link leading out of the pack:
/// a link in `lists/` to any file the user can read would make it a queryable table.
fn within(root: &Path, path: &Path) -> Result<(), DetectError> {
    let shown = path.display().to_string();
    let real = path.canonicalize().map_err(|e| pack_err(&shown, e.to_string()))?;
    if real.starts_with(root) {
        return Ok(());
    }
    Err(pack_err(
        &shown,
        format!(
            "a link to {}, outside the pack folder {}: refused (copy the file into the pack instead)",
            real.display(),
            root.display()
        ),
    ))
}

/// A list file as a table: `.txt` one `entry` per line (`#` starts a comment), `.csv` a header
/// row naming the columns, then plain comma-separated values (no quoting), all as strings.
fn parse_list(file: &str, ext: &str, text: &str) -> Result<RecordBatch, DetectError> {
    let lines = text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())).filter(|(_, l)| !l.is_empty());
    let (names, rows): (Vec<String>, Vec<Vec<String>>) = if ext == "txt" {
        let rows = lines
            .filter(|(_, l)| !l.starts_with('#'))
            .map(|(_, l)| vec![l.split('#').next().unwrap_or(l).trim().to_string()])
            .collect();
        (vec!["entry".into()], rows)
    } else {
        let mut lines = lines;
        let (_, header) = lines.next().ok_or_else(|| pack_err(file, "empty list: no header row"))?;
        let names: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
        let mut rows = Vec::new();
        for (n, l) in lines {
            let row: Vec<String> = l.split(',').map(|s| s.trim().to_string()).collect();
            if row.len() != names.len() {
                return Err(pack_err(
                    file,
                    format!("line {n}: {} fields, the header names {}", row.len(), names.len()),
                ));
            }
            rows.push(row);
        }
        (names, rows)
    };
    let fields: Vec<Field> = names.iter().map(|n| Field::new(n, DataType::Utf8, false)).collect();
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|i| Arc::new(rows.iter().map(|r| Some(r[i].as_str())).collect::<StringArray>()) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| pack_err(file, e.to_string()))
}

/// A detection with its parameters substituted, ready to run.
#[derive(Debug, Clone)]
pub struct Bound<'a> {
    pub detection: &'a Detection,
    pub sql: String,
    pub notes_sql: Option<String>,
    /// Rows whose `score` is below this are candidates, not hits (None: every row is a hit).
    pub min_score: Option<f64>,
}

/// What running one detection gave.
#[derive(Debug)]
pub enum Outcome {
    /// Every candidate row in the detection's order; `hit[i]` says whether row i (counted over
    /// the batches in order) reaches `min_score`.
    Hits {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        hit: Vec<bool>,
    },
    Skipped(String),
    Failed(String),
}

/// One detection's result, with the summary line derived from it.
#[derive(Debug)]
pub struct Finding<'a> {
    pub detection: &'a Detection,
    pub outcome: Outcome,
    /// Caveats the detection's notes query gave ("request sizes not logged for ...").
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

impl Finding<'_> {
    /// Rows at or above the detection's `min_score` (every row when it has no score; 0 when
    /// skipped or failed).
    pub fn hits(&self) -> usize {
        match &self.outcome {
            Outcome::Hits { hit, .. } => hit.iter().filter(|h| **h).count(),
            _ => 0,
        }
    }

    /// Rows returned, hits or not.
    pub fn candidates(&self) -> usize {
        match &self.outcome {
            Outcome::Hits { hit, .. } => hit.len(),
            _ => 0,
        }
    }

    /// The rows to show: the hits, or with `all` every candidate (None when skipped or failed).
    pub fn rows(&self, all: bool) -> Option<(SchemaRef, Vec<RecordBatch>)> {
        let Outcome::Hits { schema, batches, hit } = &self.outcome else { return None };
        if all {
            return Some((schema.clone(), batches.clone()));
        }
        let mut offset = 0;
        let mut shown = Vec::new();
        for b in batches {
            let mask = BooleanArray::from(hit[offset..offset + b.num_rows()].to_vec());
            offset += b.num_rows();
            // A mask as long as the batch cannot fail to apply.
            if let Ok(f) = filter_record_batch(b, &mask)
                && f.num_rows() > 0
            {
                shown.push(f);
            }
        }
        Some((schema.clone(), shown))
    }

    /// The entity of the first (most important) hit.
    pub fn top_entity(&self) -> Option<String> {
        let (schema, batches) = self.rows(false)?;
        let idx = match &self.detection.entity {
            Some(name) => schema.index_of(name).ok()?,
            None => 0,
        };
        let b = batches.iter().find(|b| b.num_rows() > 0)?;
        let options = FormatOptions::default().with_null("NULL");
        let f = ArrayFormatter::try_new(b.column(idx).as_ref(), &options).ok()?;
        Some(f.value(0).to_string())
    }

    /// Earliest `first_seen` and latest `last_seen` over the hits, as displayed.
    pub fn span(&self) -> Option<(String, String)> {
        let (schema, batches) = self.rows(false)?;
        // Detections of single events (Sigma rules) give each row's time as `ts`.
        let (from, to) =
            if schema.index_of("first_seen").is_ok() { ("first_seen", "last_seen") } else { ("ts", "ts") };
        let first = column_text(&schema, &batches, from).into_iter().min()?;
        let last = column_text(&schema, &batches, to).into_iter().max()?;
        Some((first, last))
    }

    /// Whether this finding should fail a `--fail-on` run.
    pub fn fails(&self, at: Severity) -> bool {
        self.hits() > 0 && self.detection.severity >= at
    }

    /// Status word and detail for the summary: hits, clean, skipped or failed.
    pub fn status(&self) -> (&'static str, String) {
        match &self.outcome {
            Outcome::Hits { .. } if self.hits() > 0 => ("hits", self.notes.join("; ")),
            Outcome::Hits { .. } => ("clean", self.notes.join("; ")),
            Outcome::Skipped(r) => ("skipped", r.clone()),
            Outcome::Failed(m) => ("failed", m.clone()),
        }
    }

    fn rank(&self) -> u8 {
        match (&self.outcome, self.hits()) {
            (Outcome::Hits { .. }, n) if n > 0 => 0,
            (Outcome::Failed(_), _) => 1,
            (Outcome::Hits { .. }, _) => 2,
            (Outcome::Skipped(_), _) => 3,
        }
    }
}

fn column_text(schema: &SchemaRef, batches: &[RecordBatch], name: &str) -> Vec<String> {
    let Ok(idx) = schema.index_of(name) else { return Vec::new() };
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for b in batches {
        let col = b.column(idx);
        let Ok(f) = ArrayFormatter::try_new(col.as_ref(), &options) else { continue };
        out.extend((0..b.num_rows()).filter(|&i| col.is_valid(i)).map(|i| f.value(i).to_string()));
    }
    out
}

/// Most important first: hits by severity then count, then failures, clean runs and skips.
pub fn sort_findings(findings: &mut [Finding<'_>]) {
    findings.sort_by(|a, b| {
        (a.rank(), std::cmp::Reverse(a.detection.severity), std::cmp::Reverse(a.hits()), &a.detection.id).cmp(
            &(
                b.rank(),
                std::cmp::Reverse(b.detection.severity),
                std::cmp::Reverse(b.hits()),
                &b.detection.id,
            ),
        )
    });
}

/// Runs detections one after another; a skip or failure of one never stops the rest.
pub async fn run<'a>(engine: &Engine, bound: &[Bound<'a>]) -> Vec<Finding<'a>> {
    let mut has_rows: BTreeMap<String, Result<bool, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for b in bound {
        out.push(run_one(engine, b, &mut has_rows).await);
    }
    out
}

/// Runs one detection; `has_rows` caches which tables hold rows across calls.
pub async fn run_one<'a>(
    engine: &Engine,
    b: &Bound<'a>,
    has_rows: &mut BTreeMap<String, Result<bool, String>>,
) -> Finding<'a> {
    let started = Instant::now();
    let finding =
        |outcome, notes| Finding { detection: b.detection, outcome, notes, elapsed: started.elapsed() };
    if let Some(reason) = b.detection.skip_reason() {
        return finding(Outcome::Skipped(reason.to_string()), Vec::new());
    }
    for table in &b.detection.tables {
        if !engine.tables().iter().any(|t| t == table) {
            let reason = format!("table {table} is absent (nothing of that kind was ingested)");
            return finding(Outcome::Skipped(reason), Vec::new());
        }
        if !has_rows.contains_key(table) {
            let probe = format!("SELECT 1 FROM {table} LIMIT 1");
            has_rows.insert(table.clone(), collect(engine, &probe).await.map(|(_, b)| !b.is_empty()));
        }
        match &has_rows[table] {
            Ok(true) => {}
            Ok(false) => {
                let within = if engine.restricted() { " in the time range" } else { "" };
                return finding(Outcome::Skipped(format!("table {table} is empty{within}")), Vec::new());
            }
            Err(e) => return finding(Outcome::Failed(format!("reading table {table}: {e}")), Vec::new()),
        }
    }
    let rows = collect(engine, &b.sql).await.and_then(|(schema, batches)| {
        let enrich = &b.detection.enrich;
        let (schema, batches) = match engine.geoip() {
            Some(g) if !enrich.is_empty() => enrich::apply(g, enrich, &schema, batches)?,
            _ => {
                // Checked without a database too, so a misnamed column shows on the first run.
                enrich::check(enrich, &schema)?;
                (schema, batches)
            }
        };
        let hit = hits_of(&schema, &batches, b.min_score)?;
        Ok(Outcome::Hits { schema, batches, hit })
    });
    let outcome = rows.unwrap_or_else(|e| Outcome::Failed(format!("{}: {e}", b.detection.file)));
    let mut notes = Vec::new();
    if let Some(sql) = &b.notes_sql {
        match collect(engine, sql).await {
            Ok((schema, batches)) => notes = column_text(&schema, &batches, "note"),
            Err(e) => notes.push(format!("{} (notes query): {e}", b.detection.file)),
        }
    }
    finding(outcome, notes)
}

/// Which rows are hits: those whose `score` is at least `min_score`; every row when the SQL has
/// no `score` column or the detection no `min_score` (a Sigma rule's match is a hit).
fn hits_of(schema: &SchemaRef, batches: &[RecordBatch], min_score: Option<f64>) -> Result<Vec<bool>, String> {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let (Ok(idx), Some(min)) = (schema.index_of("score"), min_score) else { return Ok(vec![true; rows]) };
    let mut hit = Vec::with_capacity(rows);
    for b in batches {
        let scores = cast(b.column(idx), &DataType::Float64)
            .map_err(|e| format!("column score must be a number: {e}"))?;
        let scores = scores.as_primitive::<Float64Type>();
        hit.extend((0..b.num_rows()).map(|i| scores.is_valid(i) && scores.value(i) >= min));
    }
    Ok(hit)
}

/// Plans a detection and its notes query down to a physical plan without running them, so
/// syntax, unknown tables or columns and type errors show, named with the file.
pub async fn lint(engine: &Engine, b: &Bound<'_>) -> Result<(), String> {
    if b.detection.skip_reason().is_some() {
        return Ok(());
    }
    let queries = std::iter::once(("", &b.sql)).chain(b.notes_sql.iter().map(|n| (" (notes query)", n)));
    for (what, sql) in queries {
        engine.check(sql).await.map_err(|e| format!("{}{what}: {}", b.detection.file, short(&e)))?;
    }
    if !b.detection.enrich.is_empty() {
        let schema =
            engine.schema(&b.sql).await.map_err(|e| format!("{}: {}", b.detection.file, short(&e)))?;
        enrich::check(&b.detection.enrich, &schema).map_err(|e| format!("{}: {e}", b.detection.file))?;
    }
    Ok(())
}

async fn collect(engine: &Engine, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let (schema, batches) = engine.collect(sql).await.map_err(|e| short(&e))?;
    Ok((schema, batches.into_iter().filter(|b| b.num_rows() > 0).collect()))
}

/// DataFusion's message without the engine's advice on listing tables (the summary is one line).
fn short(e: &QueryError) -> String {
    match e {
        QueryError::Sql { message, .. } => message.replace('\n', " "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "-- title: Big things\n-- severity: high\n-- tables: proxy\n\
        -- description: Finds big\n--   things.\n-- param: min = 10  # smallest\n\
        -- param: who = 'o''brien'  # a # in the text\n-- param: ports = 80, 443\n\n\
        SELECT * FROM proxy WHERE n > ${min} AND u = ${who} AND p IN (${ports});\n";

    #[test]
    fn front_matter_and_parameters() {
        let d = Detection::parse("x/big.sql", "big", GOOD).unwrap();
        assert_eq!(d.id, "big");
        assert_eq!(d.severity, Severity::High);
        assert_eq!(d.description, "Finds big things.");
        assert_eq!(d.params[1].description, "a # in the text");
        assert_eq!(d.params[1].default, ParamValue::Text("o'brien".into()));
        assert_eq!(d.params[2].default, ParamValue::IntList(vec![80, 443]));
        let (sql, _) = d.sql_with(&HashMap::new());
        assert_eq!(sql, "SELECT * FROM proxy WHERE n > 10 AND u = 'o''brien' AND p IN (80, 443)");
        let text = ParamValue::Text(String::new()).parse_like("x'; DROP TABLE t; --").unwrap();
        let o = HashMap::from([("who".to_string(), text)]);
        assert!(d.sql_with(&o).0.contains("u = 'x''; DROP TABLE t; --'"));
        assert!(ParamValue::Int(1).parse_like("1 OR 1=1").is_err());
    }

    #[test]
    fn pack_errors_name_the_file_and_what_is_wrong() {
        let e = |text: &str| Detection::parse("p/d.sql", "d", text).unwrap_err().to_string();
        assert!(e("-- severity: high\n-- tables: t\nSELECT 1").contains("p/d.sql: no `-- title:`"));
        assert!(e("-- title: t\n-- severity: huge\n-- tables: t\nSELECT 1").contains("severity \"huge\""));
        assert!(
            e("-- title: t\n-- severity: low\n-- tables: t\n-- sevrity: x\nSELECT 1").contains("sevrity")
        );
        let m = e("-- title: t\n-- severity: low\n-- tables: t\n-- param: a = 1\nSELECT ${b}");
        assert!(m.contains("${b}") && m.contains("declared: a"), "{m}");
        let m = e("-- title: t\n-- severity: low\n-- tables: t\n-- param: a = 1\nSELECT 1");
        assert!(m.contains("never uses ${a}"), "{m}");
    }

    #[test]
    fn builtin_pack_parses_with_its_lists() {
        let pack = Pack::builtin().unwrap();
        assert!(pack.detections.len() >= 10, "{}", pack.detections.len());
        let names: Vec<&str> = pack.lists.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"job_sites") && names.contains(&"jp_holidays"), "{names:?}");
        let holidays = &pack.lists.iter().find(|(n, _)| n == "jp_holidays").unwrap().1;
        let dates = holidays.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let all: Vec<&str> = dates.iter().flatten().collect();
        assert!(all.contains(&"2000-01-01") && !all.contains(&"2030-12-23"));
        assert!(all.contains(&"2019-05-01") && all.contains(&"2030-11-04"));
    }
}
