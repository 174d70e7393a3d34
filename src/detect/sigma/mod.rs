//! Sigma rules for proxy and firewall logs, compiled to SQL over `proxy` and `firewall` and run
//! by the detection runner like a pack's detections (`parse` reads a rule, `map` is the field
//! mapping in `schemas/sigma-fields.json`, `compile` writes the SQL).
//!
//! Rules are read from disk when trawl runs, never compiled into it (their license asks that
//! authors stay named: every result row carries the rule's `author`). A rule that cannot be
//! compiled whole is skipped with the exact reason, never run half-compiled.

mod compile;
mod map;
mod parse;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use compile::{Compiled, Skip};
pub use parse::Rule;

use super::{DetectError, Detection, Pack, Severity};

/// One rule file and what became of it.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: String,
    /// The file name without `.yml`: the detection's id.
    pub stem: String,
    pub outcome: RuleOutcome,
}

/// A rule compiled, skipped (with why), or for logs trawl does not read.
#[derive(Debug, Clone)]
pub enum RuleOutcome {
    Compiled {
        rule: Box<Rule>,
        compiled: Compiled,
    },
    Skipped {
        rule: Option<Box<Rule>>,
        skip: Skip,
    },
    /// Its `logsource` category (windows, dns, ...) names logs trawl does not ingest.
    OtherSource(String),
}

/// Reads every `.yml`/`.yaml` under the given files and folders (recursively, sorted by path).
/// A path that does not exist is an error; a file that is not a rule is skipped with the reason.
pub fn load(paths: &[PathBuf]) -> Result<Vec<RuleFile>, DetectError> {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| DetectError::Pack {
            file: p.display().to_string(),
            reason: format!("{e} (--sigma takes Sigma rule files or folders of them)"),
        })?;
        if meta.is_dir() {
            walk(p, &mut files, &mut unreadable);
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut rules: Vec<RuleFile> = files.iter().map(|f| read(f)).collect();
    // A folder that cannot be listed may hold rules: say so rather than run without them.
    rules.extend(unreadable.into_iter().map(|(dir, e)| RuleFile {
        stem: dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        path: dir.display().to_string(),
        outcome: RuleOutcome::Skipped {
            rule: None,
            skip: Skip { kind: "unreadable", detail: format!("cannot list this folder: {e}") },
        },
    }));
    Ok(rules)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, unreadable: &mut Vec<(PathBuf, String)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return unreadable.push((dir.to_path_buf(), e.to_string())),
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            walk(&path, out, unreadable);
        } else if kind.is_file() && path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(path);
        }
    }
}

/// Reads and compiles one rule file.
pub fn read(path: &Path) -> RuleFile {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let file =
        RuleFile { path: path.display().to_string(), stem, outcome: RuleOutcome::OtherSource(String::new()) };
    let outcome = match std::fs::read_to_string(path) {
        Ok(text) => compile_text(&text),
        Err(e) => RuleOutcome::Skipped {
            rule: None,
            skip: Skip { kind: "unreadable", detail: format!("cannot read: {e}") },
        },
    };
    RuleFile { outcome, ..file }
}

/// Parses and compiles a rule's text.
pub fn compile_text(text: &str) -> RuleOutcome {
    let rule = match Rule::parse(text) {
        Ok(r) => r,
        Err(e) => return RuleOutcome::Skipped { rule: None, skip: Skip { kind: "not a rule", detail: e.0 } },
    };
    let category = rule.category.clone().unwrap_or_default();
    let Some(cat) = map::category(&category) else {
        return RuleOutcome::OtherSource(if category.is_empty() { "(none)".into() } else { category });
    };
    match compile::compile(&rule, cat) {
        Ok(compiled) => RuleOutcome::Compiled { rule: Box::new(rule), compiled },
        Err(skip) => RuleOutcome::Skipped { rule: Some(Box::new(rule)), skip },
    }
}

fn severity(level: Option<&str>) -> Severity {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("informational") => Severity::Info,
        Some("low") => Severity::Low,
        Some("high") => Severity::High,
        Some("critical") => Severity::Critical,
        _ => Severity::Medium,
    }
}

/// ATT&CK ids from tags: `attack.t1071.001` gives `T1071.001` (groups and software too);
/// tactic names are left out.
fn mitre(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack."))
        .filter(|t| {
            let b = t.as_bytes();
            b.len() > 1 && matches!(b[0], b't' | b'g' | b's' | b'T' | b'G' | b'S') && b[1].is_ascii_digit()
        })
        .map(str::to_ascii_uppercase)
        .collect()
}

impl RuleFile {
    /// The rule as a detection the runner runs (or reports skipped); None for other log sources.
    pub fn detection(&self) -> Option<Detection> {
        let (rule, sql) = match &self.outcome {
            RuleOutcome::OtherSource(_) => return None,
            RuleOutcome::Compiled { rule, compiled } => {
                (Some(rule), Ok((compiled.sql.clone(), notes_sql(&compiled.notes))))
            }
            RuleOutcome::Skipped { rule, skip } => {
                (rule.as_ref(), Err(format!("{}: {}", skip.kind, skip.detail)))
            }
        };
        let title = rule.map_or_else(|| self.stem.clone(), |r| r.title.clone());
        let table =
            rule.and_then(|r| r.category.clone()).and_then(|c| map::category(&c)).map(|c| c.table.clone());
        let mut d = Detection::meta(
            &self.stem,
            &title,
            severity(rule.and_then(|r| r.level.as_deref())),
            &self.path,
            table.into_iter().collect(),
        );
        if let Some(r) = rule {
            d.mitre = mitre(&r.tags);
            let author = if r.author.is_empty() { String::new() } else { format!(" Author: {}.", r.author) };
            d.description = format!(
                "{}{author} Sigma rule {} (DRL 1.1).",
                r.description,
                r.id.as_deref().unwrap_or("without id")
            );
        }
        if let RuleOutcome::Compiled { rule, compiled } = &self.outcome
            && rule.aggregation.is_none()
        {
            d.entity = Some(compiled.entity.clone());
            // Addresses a rule's rows show get country and network as the packs' do.
            let shown = std::iter::once(compiled.entity.as_str())
                .chain(compiled.fields.iter().filter(|(_, m)| m.sql.is_some()).map(|(n, _)| n.as_str()));
            for c in shown.filter(|c| ADDRESS_FIELDS.contains(c)) {
                if !d.enrich.iter().any(|e| e == c) {
                    d.enrich.push(c.to_string());
                }
            }
        }
        Some(Detection::built(d, sql))
    }

    /// `compiled`, `skipped` or `other source`, with the skip's kind and detail.
    pub fn status(&self) -> (&'static str, &str, String) {
        match &self.outcome {
            RuleOutcome::Compiled { .. } => ("compiled", "", String::new()),
            RuleOutcome::Skipped { skip, .. } => ("skipped", skip.kind, skip.detail.clone()),
            RuleOutcome::OtherSource(c) => ("other source", "", format!("logsource category {c}")),
        }
    }
}

/// Sigma fields that hold an address (the proxy's `dst_ip` is its `server_ip`), shown as
/// columns of those names.
const ADDRESS_FIELDS: &[&str] = &["src_ip", "dst_ip"];

/// Caveats as a notes query (the runner shows each row's `note` beside the result).
fn notes_sql(notes: &[String]) -> Option<String> {
    if notes.is_empty() {
        return None;
    }
    let rows: Vec<String> = notes.iter().map(|n| format!("({})", compile::quote(n))).collect();
    Some(format!("SELECT note FROM (VALUES {}) AS t(note)", rows.join(", ")))
}

/// Adds each rule for proxy or firewall logs to the pack (skipped ones too, so the summary
/// lists them with their reason); returns how many rules were for other log sources, by category.
pub fn add_to_pack(pack: &mut Pack, files: &[RuleFile]) -> Result<BTreeMap<String, usize>, DetectError> {
    let mut others = BTreeMap::new();
    for f in files {
        match f.detection() {
            Some(d) => pack.add(d)?,
            None => {
                if let RuleOutcome::OtherSource(c) = &f.outcome {
                    *others.entry(c.clone()).or_insert(0) += 1;
                }
            }
        }
    }
    Ok(others)
}

/// What `trawl sigma explain` prints: the outcome, the mapping the rule used, and its SQL.
pub fn explain(f: &RuleFile) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "rule:     {}", f.path);
    let rule = match &f.outcome {
        RuleOutcome::Compiled { rule, .. } => Some(rule),
        RuleOutcome::Skipped { rule, .. } => rule.as_ref(),
        RuleOutcome::OtherSource(_) => None,
    };
    if let Some(r) = rule {
        let _ = writeln!(out, "title:    {}", r.title);
        let _ = writeln!(out, "author:   {}", r.author);
        let level = r.level.as_deref().unwrap_or("(none)");
        let _ = writeln!(out, "level:    {level} (severity {})", severity(r.level.as_deref()));
        let _ = writeln!(out, "mitre:    {}", mitre(&r.tags).join(" "));
    }
    let (status, kind, detail) = f.status();
    match status {
        "compiled" => {
            let _ = writeln!(out, "outcome:  compiled");
        }
        "other source" => {
            let _ = writeln!(
                out,
                "outcome:  not for trawl: {detail} (trawl maps {})",
                map::category_names().join(", ")
            );
        }
        _ => {
            let _ = writeln!(out, "outcome:  skipped ({kind}): {detail}");
        }
    }
    if let RuleOutcome::Compiled { compiled, .. } = &f.outcome {
        let _ = writeln!(out, "table:    {}\nmapping (schemas/sigma-fields.json):", compiled.table);
        for (name, m) in &compiled.fields {
            let sql = m.sql.as_deref().unwrap_or("(not logged)");
            let _ = writeln!(out, "  {name:<16} -> {sql:<22} {}", m.doc);
            if !m.values.is_empty() {
                let values: Vec<String> = m.values.iter().map(|(from, to)| format!("{from}={to}")).collect();
                let _ = writeln!(out, "  {:<16}    values: {}", "", values.join(" "));
            }
        }
        for n in &compiled.notes {
            let _ = writeln!(out, "note:     {n}");
        }
        let _ = writeln!(out, "sql:\n{}", compiled.sql);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_give_attack_ids() {
        let tags = ["attack.command-and-control", "attack.t1071.001", "attack.g0020", "cve.2023-1"]
            .map(String::from);
        assert_eq!(mitre(&tags), ["T1071.001", "G0020"]);
        assert_eq!(severity(Some("informational")), Severity::Info);
    }
}
