//! `case.json`: what a detection run was run on and with, so a colleague can run it again and
//! compare (`trawl detect --replay case.json`): the lake, trawl's version, the time range,
//! every detection's SQL and parameter values, each input file's SHA-256, and the hit counts.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;

use super::{Bound, Finding};

/// The case file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub trawl_version: String,
    pub lake: CaseLake,
    pub range: CaseRange,
    /// `--set` arguments as given.
    pub sets: Vec<String>,
    pub detections: Vec<CaseDetection>,
    pub inputs: Vec<CaseInput>,
}

/// Which lake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseLake {
    pub path: String,
    pub layout_version: u32,
    pub zone: String,
}

/// `--since` and `--until` as given (in the lake's zone unless they carry an offset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRange {
    pub since: Option<String>,
    pub until: Option<String>,
}

/// One detection as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDetection {
    pub id: String,
    pub file: String,
    pub sql: String,
    pub notes_sql: Option<String>,
    /// Every parameter's value as substituted (default or `--set`).
    pub params: BTreeMap<String, String>,
    /// hits, clean, skipped or failed.
    pub status: String,
    pub hits: u64,
}

/// One file the lake's `ingests` ledger names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CaseInput {
    pub path: String,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub status: String,
}

impl Case {
    /// The case of `findings`, run from `bound` over `engine`'s lake.
    pub async fn build(
        engine: &Engine,
        lake: CaseLake,
        range: CaseRange,
        sets: &[String],
        bound: &[Bound<'_>],
        findings: &[Finding<'_>],
    ) -> Result<Case, String> {
        let detections = bound
            .iter()
            .map(|b| {
                let f = findings.iter().find(|f| f.detection.id == b.detection.id);
                CaseDetection {
                    id: b.detection.id.clone(),
                    file: b.detection.file.clone(),
                    sql: b.sql.clone(),
                    notes_sql: b.notes_sql.clone(),
                    params: param_values(b, sets),
                    status: f.map_or("not run", |f| f.status().0).to_string(),
                    hits: f.map_or(0, |f| f.hits() as u64),
                }
            })
            .collect();
        Ok(Case {
            trawl_version: env!("CARGO_PKG_VERSION").to_string(),
            lake,
            range,
            sets: sets.to_vec(),
            detections,
            inputs: inputs(engine).await?,
        })
    }

    /// Writes the case as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Reads a case file, saying which file and what is wrong.
    pub fn read(path: &Path) -> Result<Case, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a trawl case file: {e}", path.display()))
    }

    /// What differs between the recorded case and a new run of it, one line each.
    pub fn differences(&self, now: &Case) -> Vec<String> {
        let mut out = Vec::new();
        if self.trawl_version != now.trawl_version {
            out.push(format!("trawl version: {} then, {} now", self.trawl_version, now.trawl_version));
        }
        if self.lake.zone != now.lake.zone || self.lake.layout_version != now.lake.layout_version {
            out.push(format!(
                "lake: zone {} layout {} then, zone {} layout {} now",
                self.lake.zone, self.lake.layout_version, now.lake.zone, now.lake.layout_version
            ));
        }
        for d in &self.detections {
            match now.detections.iter().find(|n| n.id == d.id) {
                None => out.push(format!("{}: not in the pack any more", d.id)),
                Some(n) => {
                    if d.sql != n.sql {
                        out.push(format!("{}: SQL differs", d.id));
                    }
                    if d.status != n.status || d.hits != n.hits {
                        out.push(format!(
                            "{}: {} {} hits then, {} {} hits now",
                            d.id, d.status, d.hits, n.status, n.hits
                        ));
                    }
                }
            }
        }
        let then: BTreeMap<&str, &CaseInput> = self.inputs.iter().map(|i| (i.path.as_str(), i)).collect();
        let now_inputs: BTreeMap<&str, &CaseInput> =
            now.inputs.iter().map(|i| (i.path.as_str(), i)).collect();
        for (path, i) in &then {
            match now_inputs.get(path) {
                None => out.push(format!("input {path}: no longer in the lake")),
                Some(n) if n.sha256 != i.sha256 => out.push(format!("input {path}: SHA-256 differs")),
                Some(_) => {}
            }
        }
        for path in now_inputs.keys().filter(|p| !then.contains_key(*p)) {
            out.push(format!("input {path}: new in the lake since the case"));
        }
        out
    }
}

/// The value each parameter had: the last `--set` that reaches it, else its default.
fn param_values(b: &Bound<'_>, sets: &[String]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> =
        b.detection.params.iter().map(|p| (p.name.clone(), p.default.to_string())).collect();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else { continue };
        let name = match key.trim().split_once('.') {
            Some((id, name)) if id == b.detection.id => name,
            Some(_) => continue,
            None => key.trim(),
        };
        if let Some(v) = out.get_mut(name) {
            *v = value.trim().to_string();
        }
    }
    out
}

/// Every file of the `ingests` ledger, by path and read.
async fn inputs(engine: &Engine) -> Result<Vec<CaseInput>, String> {
    if !engine.tables().iter().any(|t| t == "ingests") {
        return Ok(Vec::new());
    }
    let sql = "SELECT path, sha256, size, status FROM ingests ORDER BY path, ingested_at";
    let df = engine.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| engine.explain(e).to_string())?;
    let mut out = Vec::new();
    for b in batches {
        let text = |i: usize| -> Result<Vec<Option<String>>, String> {
            let c = cast(b.column(i), &DataType::Utf8).map_err(|e| e.to_string())?;
            Ok(c.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
        };
        let (path, sha, status) = (text(0)?, text(1)?, text(3)?);
        let size = cast(b.column(2), &DataType::Int64).map_err(|e| e.to_string())?;
        let size = size.as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push(CaseInput {
                path: path[i].clone().unwrap_or_default(),
                sha256: sha[i].clone(),
                size: size.is_valid(i).then(|| size.value(i)),
                status: status[i].clone().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}
