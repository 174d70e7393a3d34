//! A parsed rule to one SQL query over its table, with Sigma's semantics: case-insensitive
//! plain and wildcard values, `re` as written, a missing field never matching (so `not` keeps
//! rows whose field is NULL), and value lists as flat `IN` lists or balanced `OR` trees.

use std::collections::BTreeSet;

use super::map::{Category, FieldMap, FieldType};
use super::parse::{AggFunc, Aggregation, Condition, Item, Rule, Search};

/// A rule compiled to SQL.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub table: String,
    pub sql: String,
    /// Caveats shown beside the rule's result (a selection left out, windows not sliding).
    pub notes: Vec<String>,
    /// The Sigma fields the rule uses and how each was mapped, for `trawl sigma explain`.
    pub fields: Vec<(String, &'static FieldMap)>,
    pub entity: String,
}

/// Why a rule is not run: a short kind (for counts) and the exact detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub kind: &'static str,
    pub detail: String,
}

fn skip<T>(kind: &'static str, detail: impl Into<String>) -> Result<T, Skip> {
    Err(Skip { kind, detail: detail.into() })
}

/// A boolean SQL expression, folded as it is built, rendered with balanced `AND`/`OR` trees.
#[derive(Debug, Clone, PartialEq)]
enum Sql {
    Leaf(String),
    And(Vec<Sql>),
    Or(Vec<Sql>),
    Not(Box<Sql>),
    Const(bool),
}

fn join(parts: Vec<Sql>, and: bool) -> Sql {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Sql::Const(b) if b == and => {}
            Sql::Const(b) => return Sql::Const(b),
            Sql::And(v) if and => out.extend(v),
            Sql::Or(v) if !and => out.extend(v),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Sql::Const(and),
        1 => out.remove(0),
        _ if and => Sql::And(out),
        _ => Sql::Or(out),
    }
}

fn all(parts: Vec<Sql>) -> Sql {
    join(parts, true)
}

fn any(parts: Vec<Sql>) -> Sql {
    join(parts, false)
}

fn not(s: Sql) -> Sql {
    match s {
        Sql::Const(b) => Sql::Const(!b),
        Sql::Not(inner) => *inner,
        other => Sql::Not(Box::new(other)),
    }
}

impl Sql {
    fn render(&self) -> String {
        match self {
            Sql::Leaf(s) => s.clone(),
            Sql::Const(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Sql::Not(inner) => format!("NOT {}", inner.render_grouped()),
            Sql::And(v) => balanced(v, "AND"),
            Sql::Or(v) => balanced(v, "OR"),
        }
    }

    fn render_grouped(&self) -> String {
        match self {
            Sql::And(_) | Sql::Or(_) => self.render(),
            other => format!("({})", other.render()),
        }
    }
}

/// `a OR b OR c OR d` as `((a OR b) OR (c OR d))`: a thousand values nest ten deep, not a
/// thousand, so neither the SQL parser nor the planner recurses far.
fn balanced(v: &[Sql], op: &str) -> String {
    if v.len() == 1 {
        return v[0].render_grouped();
    }
    let (l, r) = v.split_at(v.len() / 2);
    format!("({} {op} {})", balanced(l, op), balanced(r, op))
}

/// A SQL string literal: the value as it is, quotes doubled.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A quoted SQL identifier (Sigma field names hold `-`).
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A piece of a Sigma value: a literal character or a wildcard.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Lit(char),
    Many,
    One,
}

/// Sigma's wildcards: `*` any run, `?` one character; `\*`, `\?` and `\\` are literals, and a
/// backslash before anything else is itself.
fn pieces(s: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    Piece::Lit(n)
                }
                _ => Piece::Lit('\\'),
            },
            '*' => Piece::Many,
            '?' => Piece::One,
            c => Piece::Lit(c),
        });
    }
    out
}

/// Pieces as a LIKE pattern: `%` and `_` for the wildcards, `\` before literal `%`, `_`, `\`.
fn like_pattern(p: &[Piece]) -> String {
    let mut out = String::new();
    for piece in p {
        match piece {
            Piece::Many => out.push('%'),
            Piece::One => out.push('_'),
            Piece::Lit(c) => {
                if matches!(c, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(*c);
            }
        }
    }
    out
}

/// Pieces as one alternative of an unanchored regular expression: anchored only at an end the
/// value does not leave open with a wildcard.
fn regex_alternative(p: &[Piece]) -> String {
    let start = usize::from(p.first() == Some(&Piece::Many));
    let end = p.len() - usize::from(p.len() > start && p.last() == Some(&Piece::Many));
    let mut out = String::new();
    if start == 0 {
        out.push('^');
    }
    for piece in &p[start..end] {
        match piece {
            Piece::Many => out.push_str(".*"),
            Piece::One => out.push('.'),
            Piece::Lit(c) => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    if end == p.len() {
        out.push('$');
    }
    out
}

const MODIFIERS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "re",
    "cidr",
    "cased",
    "exists",
    "lt",
    "lte",
    "gt",
    "gte",
    "i",
    "m",
    "s",
];

/// How the values of one item are compared.
struct Mods {
    contains: bool,
    starts: bool,
    ends: bool,
    all: bool,
    re: bool,
    cidr: bool,
    cased: bool,
    exists: bool,
    cmp: Option<&'static str>,
    re_flags: String,
}

impl Mods {
    fn parse(item: &Item, search: &str) -> Result<Mods, Skip> {
        let mut m = Mods {
            contains: false,
            starts: false,
            ends: false,
            all: false,
            re: false,
            cidr: false,
            cased: false,
            exists: false,
            cmp: None,
            re_flags: String::new(),
        };
        for name in &item.modifiers {
            match name.as_str() {
                "contains" => m.contains = true,
                "startswith" => m.starts = true,
                "endswith" => m.ends = true,
                "all" => m.all = true,
                "re" => m.re = true,
                "cidr" => m.cidr = true,
                "cased" => m.cased = true,
                "exists" => m.exists = true,
                "lt" => m.cmp = Some("<"),
                "lte" => m.cmp = Some("<="),
                "gt" => m.cmp = Some(">"),
                "gte" => m.cmp = Some(">="),
                f @ ("i" | "m" | "s") => m.re_flags.push_str(f),
                other => {
                    let field = item.field.as_deref().unwrap_or("(keywords)");
                    return skip(
                        "unsupported modifier",
                        format!(
                            "{search}: {field}|{other}: modifier `{other}` is not supported (supported: {})",
                            MODIFIERS.join(", ")
                        ),
                    );
                }
            }
        }
        if !m.re_flags.is_empty() && !m.re {
            return skip("unsupported modifier", format!("{search}: flags |{} without |re", m.re_flags));
        }
        Ok(m)
    }

    fn wrap(&self, p: Vec<Piece>) -> Vec<Piece> {
        let mut out = Vec::with_capacity(p.len() + 2);
        if self.contains || self.ends {
            out.push(Piece::Many);
        }
        out.extend(p);
        if self.contains || self.starts {
            out.push(Piece::Many);
        }
        out
    }
}

/// What compiling a rule's searches found along the way.
struct Ctx<'r> {
    rule: &'r Rule,
    cat: &'static Category,
    /// Sigma fields used, with their mapping, in the order met.
    used: Vec<(String, &'static FieldMap)>,
}

/// A search identifier compiled, with the fields it needs that no format logs.
struct Compiled1 {
    sql: Sql,
    lost: Vec<String>,
}

impl Ctx<'_> {
    fn field(&mut self, name: &str, search: &str) -> Result<&'static FieldMap, Skip> {
        let category = self.rule.category.as_deref().unwrap_or_default();
        let Some(m) = self.cat.fields.get(name) else {
            return skip(
                "unmapped field",
                format!(
                    "{search}: field `{name}` is not in the {category} mapping (schemas/sigma-fields.json)"
                ),
            );
        };
        if !self.used.iter().any(|(n, _)| n == name) {
            self.used.push((name.to_string(), m));
        }
        Ok(m)
    }

    fn search(&mut self, name: &str, s: &Search) -> Result<Compiled1, Skip> {
        let mut lost = Vec::new();
        let mut alts = Vec::new();
        for items in &s.alternatives {
            let mut parts = Vec::new();
            for item in items {
                parts.push(self.item(name, item, &mut lost)?);
            }
            alts.push(all(parts));
        }
        Ok(Compiled1 { sql: any(alts), lost })
    }

    fn item(&mut self, search: &str, item: &Item, lost: &mut Vec<String>) -> Result<Sql, Skip> {
        let m = Mods::parse(item, search)?;
        if item.values.is_empty() {
            return skip("bad rule", format!("{search}: an empty value list"));
        }
        let Some(field) = &item.field else { return self.keywords(search, item, &m) };
        let map = self.field(field, search)?;
        let Some(expr) = &map.sql else {
            lost.push(format!("{field} ({})", map.doc));
            return Ok(Sql::Const(false));
        };
        if m.exists {
            let want = item.values.iter().any(|v| v.text().is_some_and(|t| t.eq_ignore_ascii_case("true")));
            return Ok(Sql::Leaf(format!("{expr} IS {}NULL", if want { "NOT " } else { "" })));
        }
        let mut nulls = Vec::new();
        let mut leaves = Vec::new();
        let mut equal = Vec::new();
        let mut patterns = Vec::new();
        let numeric = map.ty == FieldType::Int;
        for v in &item.values {
            let Some(raw) = v.text() else {
                nulls.push(Sql::Leaf(format!("{expr} IS NULL")));
                continue;
            };
            // Vendor vocabularies: a rule's `accept` is what pfirewall.log writes as ALLOW.
            let text = map.values.get(&raw.to_lowercase()).cloned().unwrap_or(raw);
            if let Some(op) = m.cmp {
                let Ok(n) = text.trim().parse::<f64>() else {
                    return skip("bad rule", format!("{search}: {field}|{op}: {text:?} is not a number"));
                };
                if !numeric {
                    return skip("bad rule", format!("{search}: {field} is text; {op} compares numbers"));
                }
                leaves.push(Sql::Leaf(format!("{expr} {op} {n}")));
            } else if m.re {
                let pattern = if m.re_flags.is_empty() { text } else { format!("(?{}){text}", m.re_flags) };
                if let Err(e) = regex::Regex::new(&pattern) {
                    let first = e.to_string().lines().last().unwrap_or_default().to_string();
                    return skip("regex", format!("{search}: {field}|re {pattern:?}: {first}"));
                }
                leaves.push(Sql::Leaf(format!(
                    "regexp_like({}, {})",
                    text_expr(expr, numeric),
                    quote(&pattern)
                )));
            } else if m.cidr {
                if let Err(e) = crate::engine::functions::parse_cidr(&text) {
                    return skip("bad rule", format!("{search}: {field}|cidr: {e}"));
                }
                leaves.push(Sql::Leaf(format!("cidr_match({}, {})", text_expr(expr, numeric), quote(&text))));
            } else if numeric && !m.contains && !m.starts && !m.ends && text.trim().parse::<i64>().is_ok() {
                let n = text.trim().to_string();
                if !equal.contains(&n) {
                    equal.push(n);
                }
            } else {
                let p = m.wrap(pieces(&text));
                let t = text_expr(expr, numeric);
                if p.iter().any(|p| !matches!(p, Piece::Lit(_))) {
                    patterns.push(p);
                } else {
                    let lit: String = p
                        .iter()
                        .filter_map(|p| if let Piece::Lit(c) = p { Some(*c) } else { None })
                        .collect();
                    let lit = if m.cased { quote(&lit) } else { quote(&lit.to_lowercase()) };
                    if numeric {
                        // A word among numbers compares as text, never as a failed cast.
                        leaves.push(Sql::Leaf(format!("{t} = {lit}")));
                    } else if !equal.contains(&lit) {
                        equal.push(lit);
                    }
                }
            }
        }
        let t = text_expr(expr, numeric);
        let like = |p: &[Piece]| {
            let op = if m.cased { "LIKE" } else { "ILIKE" };
            Sql::Leaf(format!("{t} {op} {}", quote(&like_pattern(p))))
        };
        if m.all || patterns.len() == 1 {
            leaves.extend(patterns.iter().map(|p| like(p)));
        } else if !patterns.is_empty() {
            // Several patterns on one field are one regular expression: one pass over each value,
            // and no tree at all however long the list (the regex engine matches the
            // alternatives together).
            let flags = if m.cased { "(?s)" } else { "(?is)" };
            let alts: Vec<String> = patterns.iter().map(|p| regex_alternative(p)).collect();
            leaves.push(Sql::Leaf(format!(
                "regexp_like({t}, {})",
                quote(&format!("{flags}(?:{})", alts.join("|")))
            )));
        }
        let lhs = if numeric || m.cased { expr.clone() } else { format!("lower({expr})") };
        // Equalities in one flat IN list (no tree at all); with |all each must hold.
        if m.all {
            leaves.extend(equal.into_iter().map(|e| Sql::Leaf(format!("{lhs} = {e}"))));
            let matched = all(leaves);
            return Ok(any(vec![coalesce(matched)].into_iter().chain(nulls).collect()));
        }
        match equal.len() {
            0 => {}
            1 => leaves.push(Sql::Leaf(format!("{lhs} = {}", equal[0]))),
            _ => leaves.push(Sql::Leaf(format!("{lhs} IN ({})", equal.join(", ")))),
        }
        let matched = if leaves.is_empty() { Sql::Const(false) } else { coalesce(any(leaves)) };
        Ok(any(std::iter::once(matched).chain(nulls).collect()))
    }

    /// Field-less values: each is searched (as `contains`) in every text column of the row.
    fn keywords(&mut self, search: &str, item: &Item, m: &Mods) -> Result<Sql, Skip> {
        if m.re || m.cidr || m.cmp.is_some() || m.exists || m.starts || m.ends {
            return skip(
                "unsupported modifier",
                format!("{search}: keywords take only |all, |contains and |cased"),
            );
        }
        let op = if m.cased { "LIKE" } else { "ILIKE" };
        let mut per_value = Vec::new();
        for v in &item.values {
            let Some(text) = v.text() else { continue };
            let mut p = vec![Piece::Many];
            p.extend(pieces(&text));
            p.push(Piece::Many);
            let pattern = quote(&like_pattern(&p));
            let cols =
                self.cat.keyword_columns.iter().map(|c| Sql::Leaf(format!("{c} {op} {pattern}"))).collect();
            per_value.push(coalesce(any(cols)));
        }
        Ok(if m.all { all(per_value) } else { any(per_value) })
    }
}

fn text_expr(expr: &str, numeric: bool) -> String {
    if numeric { format!("CAST({expr} AS VARCHAR)") } else { expr.to_string() }
}

/// NULL (a field the row lacks) counts as no match, so `NOT` keeps such rows.
fn coalesce(s: Sql) -> Sql {
    match s {
        Sql::Const(_) => s,
        other => Sql::Leaf(format!("coalesce({}, FALSE)", other.render())),
    }
}

/// Glob over identifier names: `*` any run, `?` one character.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The condition over compiled searches; `positive` is false under an odd number of `not`s.
struct CondCtx<'a> {
    searches: &'a [(String, Compiled1)],
    /// Identifiers met outside any `not`, for the `why` column.
    positive_ids: Vec<String>,
    notes: Vec<String>,
}

impl CondCtx<'_> {
    fn id(&mut self, name: &str, positive: bool) -> Result<Sql, Skip> {
        let Some((_, s)) = self.searches.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = self.searches.iter().map(|(n, _)| n.as_str()).collect();
            return skip(
                "bad condition",
                format!(
                    "the condition names `{name}`, which the detection does not define (it has {})",
                    known.join(", ")
                ),
            );
        };
        if !s.lost.is_empty() {
            let lost = s.lost.join(", ");
            if !positive {
                return skip(
                    "field not logged",
                    format!(
                        "`not {name}` needs {lost}: without it the rule would report what its author excluded"
                    ),
                );
            }
            self.notes.push(format!("{name} is left out: it needs {lost}"));
        }
        if positive && s.sql != Sql::Const(false) && !self.positive_ids.iter().any(|n| n == name) {
            self.positive_ids.push(name.to_string());
        }
        Ok(s.sql.clone())
    }

    fn names(&self, pattern: &str) -> Result<Vec<String>, Skip> {
        // `them` (`*`) leaves out identifiers starting with `_`, as the specification says.
        let names: Vec<String> = self
            .searches
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| glob(pattern, n) && !(pattern == "*" && n.starts_with('_')))
            .collect();
        if names.is_empty() {
            return skip(
                "bad condition",
                format!("the condition's `{pattern}` matches no search identifier"),
            );
        }
        Ok(names)
    }

    fn cond(&mut self, c: &Condition, positive: bool) -> Result<Sql, Skip> {
        Ok(match c {
            Condition::Id(n) => self.id(n, positive)?,
            Condition::Not(inner) => not(self.cond(inner, !positive)?),
            Condition::And(v) => all(v.iter().map(|c| self.cond(c, positive)).collect::<Result<_, _>>()?),
            Condition::Or(v) => any(v.iter().map(|c| self.cond(c, positive)).collect::<Result<_, _>>()?),
            Condition::OneOf(p) => {
                let names = self.names(p)?;
                any(names.iter().map(|n| self.id(n, positive)).collect::<Result<_, _>>()?)
            }
            Condition::AllOf(p) => {
                let names = self.names(p)?;
                all(names.iter().map(|n| self.id(n, positive)).collect::<Result<_, _>>()?)
            }
        })
    }
}

/// Compiles a rule for its category's table, or says exactly why it cannot be run.
pub fn compile(rule: &Rule, cat: &'static Category) -> Result<Compiled, Skip> {
    let mut ctx = Ctx { rule, cat, used: Vec::new() };
    let mut searches = Vec::new();
    for (name, s) in &rule.searches {
        searches.push((name.clone(), ctx.search(name, s)?));
    }
    let mut cc = CondCtx { searches: &searches, positive_ids: Vec::new(), notes: Vec::new() };
    let cond = cc.cond(&rule.condition, true)?;
    if cond == Sql::Const(false) {
        let lost: BTreeSet<&String> = searches.iter().flat_map(|(_, s)| &s.lost).collect();
        let lost: Vec<&str> = lost.into_iter().map(String::as_str).collect();
        return skip("field not logged", format!("the condition needs {}", lost.join(", ")));
    }
    let mut notes = cc.notes;
    let title = &rule.title;
    let mut fields = ctx.used.clone();
    for f in &rule.fields {
        if let Some(m) = cat.fields.get(f)
            && !fields.iter().any(|(n, _)| n == f)
        {
            fields.push((f.clone(), m));
        }
    }
    let table = &cat.table;
    let sql = match &rule.aggregation {
        None => {
            let why = match cc.positive_ids.as_slice() {
                [] => quote(title),
                [one] => quote(&format!("{title} (matched {one})")),
                many => {
                    let cases: Vec<String> = many
                        .iter()
                        .map(|n| {
                            let s = &searches.iter().find(|(m, _)| m == n).map(|(_, s)| &s.sql);
                            let s = s.map_or_else(|| "FALSE".into(), Sql::render);
                            format!("CASE WHEN {s} THEN {} END", quote(n))
                        })
                        .collect();
                    format!(
                        "{} || concat_ws(', ', {}) || ')'",
                        quote(&format!("{title} (matched ")),
                        cases.join(", ")
                    )
                }
            };
            let mut cols = vec![cat.entity.clone(), "local_ts(ts) AS ts".to_string()];
            // The entity column already shows a field of its own name (firewall `src_ip`).
            let shown = fields.iter().filter(|(n, m)| !(*n == cat.entity && m.sql.as_deref() == Some(n)));
            cols.extend(shown.filter_map(|(n, m)| Some(format!("{} AS {}", m.sql.as_ref()?, ident(n)))));
            cols.extend([
                "1.0 AS score".to_string(),
                format!("{why} AS why"),
                format!("{} AS author", quote(&rule.author)),
                "source_file".into(),
                "source_line".into(),
            ]);
            format!(
                "SELECT {}\nFROM {table}\nWHERE {}\nORDER BY ts, source_file, source_line",
                cols.join(",\n  "),
                cond.render()
            )
        }
        Some(agg) => {
            let (sql, note) = aggregate(rule, cat, agg, &cond)?;
            notes.push(note);
            sql
        }
    };
    Ok(Compiled { table: table.clone(), sql, notes, fields, entity: cat.entity.clone() })
}

/// `timeframe: 1m` as a SQL interval.
fn interval(tf: &str) -> Option<String> {
    let tf = tf.trim();
    let (n, unit) = tf.split_at(tf.find(|c: char| !c.is_ascii_digit())?);
    let n: u32 = n.parse().ok()?;
    let unit = match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "M" => "month",
        "y" => "year",
        _ => return None,
    };
    Some(format!("INTERVAL '{n} {unit}'"))
}

/// A Sigma 1.x `| count() by x > N` as a grouped query over fixed windows of the timeframe.
fn aggregate(
    rule: &Rule,
    cat: &'static Category,
    agg: &Aggregation,
    cond: &Sql,
) -> Result<(String, String), Skip> {
    let field = |name: &str| -> Result<(String, FieldType), Skip> {
        match cat.fields.get(name) {
            Some(FieldMap { sql: Some(s), ty, .. }) => Ok((s.clone(), *ty)),
            Some(m) => skip("field not logged", format!("the aggregation needs {name} ({})", m.doc)),
            None => skip("unmapped field", format!("the aggregation's field `{name}` is not in the mapping")),
        }
    };
    let numeric = |name: &str| -> Result<String, Skip> {
        let (s, ty) = field(name)?;
        if ty != FieldType::Int {
            return skip("bad rule", format!("the aggregation adds up {name}, which is text"));
        }
        Ok(s)
    };
    let (value, what) = match &agg.func {
        AggFunc::Count(None) => ("count(*)".to_string(), "count()".to_string()),
        AggFunc::Count(Some(f)) => (format!("count(DISTINCT {})", field(f)?.0), format!("count({f})")),
        AggFunc::Sum(f) => (format!("sum({})", numeric(f)?), format!("sum({f})")),
        AggFunc::Min(f) => (format!("min({})", numeric(f)?), format!("min({f})")),
        AggFunc::Max(f) => (format!("max({})", numeric(f)?), format!("max({f})")),
        AggFunc::Avg(f) => (format!("avg({})", numeric(f)?), format!("avg({f})")),
    };
    let window = match &rule.timeframe {
        Some(tf) => Some(interval(tf).ok_or_else(|| Skip {
            kind: "bad rule",
            detail: format!("timeframe {tf:?}: expected a number and s, m, h, d, M or y"),
        })?),
        None => None,
    };
    let mut cols = Vec::new();
    let mut groups = Vec::new();
    if let Some(by) = &agg.by {
        cols.push(format!("{} AS {}", field(by)?.0, ident(by)));
        groups.push((cols.len()).to_string());
    }
    if let Some(w) = &window {
        cols.push(format!("local_ts(date_bin({w}, ts)) AS window_start"));
        groups.push((cols.len()).to_string());
    }
    let threshold = agg.threshold;
    let by_text = agg.by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
    let tf_text = rule.timeframe.as_ref().map(|t| format!(" in {t}")).unwrap_or_default();
    let why = format!(
        "{} || CAST({value} AS VARCHAR) || {}",
        quote(&format!("{} ({what}{by_text} = ", rule.title)),
        quote(&format!(" {} {threshold}{tf_text})", agg.op))
    );
    cols.extend([
        format!("{value} AS value"),
        "count(*) AS events".into(),
        "local_ts(min(ts)) AS first_seen".into(),
        "local_ts(max(ts)) AS last_seen".into(),
        "1.0 AS score".into(),
        format!("{why} AS why"),
        format!("{} AS author", quote(&rule.author)),
        "first_value(source_file ORDER BY ts, source_line) AS source_file".into(),
        "first_value(source_line ORDER BY ts, source_line) AS source_line".into(),
    ]);
    let group_by =
        if groups.is_empty() { String::new() } else { format!("\nGROUP BY {}", groups.join(", ")) };
    let sql = format!(
        "SELECT {}\nFROM {}\nWHERE {}{group_by}\nHAVING {value} {} {threshold}\nORDER BY value DESC",
        cols.join(",\n  "),
        cat.table,
        cond.render(),
        agg.op
    );
    let note = match &rule.timeframe {
        Some(tf) => format!(
            "{what}{by_text} counted in fixed {tf} windows, not sliding ones; the first line of each group is named"
        ),
        None => format!("{what}{by_text} over the whole time range; the first line of each group is named"),
    };
    Ok((sql, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes_become_like_patterns() {
        assert_eq!(like_pattern(&pieces(r"a*b?c")), "a%b_c");
        assert_eq!(like_pattern(&pieces(r"\?x\*y\\")), r"?x*y\\");
        assert_eq!(like_pattern(&pieces(r"100%_\d")), r"100\%\_\\d");
        assert_eq!(pieces(r"\\*"), vec![Piece::Lit('\\'), Piece::Many]);
    }

    #[test]
    fn pattern_lists_become_one_regex() {
        assert_eq!(regex_alternative(&pieces("*a.b?*")), "a\\.b.");
        assert_eq!(regex_alternative(&pieces("a*")), "^a");
        assert_eq!(regex_alternative(&pieces("*a")), "a$");
        assert_eq!(regex_alternative(&pieces(r"x\*(y")), r"^x\*\(y$");
        assert_eq!(regex_alternative(&pieces("*")), "$");
    }

    #[test]
    fn long_lists_nest_logarithmically() {
        let leaves: Vec<Sql> = (0..1024).map(|i| Sql::Leaf(format!("x{i}"))).collect();
        let text = any(leaves).render();
        let mut depth = 0i32;
        let mut max = 0;
        for c in text.chars() {
            depth += i32::from(c == '(') - i32::from(c == ')');
            max = max.max(depth);
        }
        // log2(1024) levels of grouping, plus the parentheses around each leaf.
        assert_eq!(max, 11, "{}", &text[..80]);
    }

    #[test]
    fn constants_fold() {
        let x = || Sql::Leaf("x".into());
        assert_eq!(all(vec![x(), Sql::Const(false)]), Sql::Const(false));
        assert_eq!(any(vec![x(), Sql::Const(false)]), x());
        assert_eq!(not(not(x())), x());
        assert!(glob("selection_*", "selection_a") && !glob("selection_*", "filter"));
        assert_eq!(interval("5m").as_deref(), Some("INTERVAL '5 minute'"));
    }
}
