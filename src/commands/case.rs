//! `case.json` beside `detect --out` and `report`, and `trawl detect --replay`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{DetectArgs, TimeRangeArgs};
use crate::detect::case::{Case, CaseLake, CaseRange};
use crate::detect::{self, Bound, Finding};
use crate::engine::{Engine, MemoryLimit};
use crate::lake::{FORMAT_VERSION, Lake};

use super::{load_pack, open_engine};

/// The case of a run, from the lake, the range and the `--set`s it was given.
pub(super) async fn case_of(
    engine: &Engine,
    lake: &Lake,
    range: &TimeRangeArgs,
    sets: &[String],
    bound: &[Bound<'_>],
    findings: &[Finding<'_>],
) -> Result<Case> {
    let lake = CaseLake {
        path: lake.root().display().to_string(),
        layout_version: lake.meta().format_version,
        zone: lake.meta().time_zone.clone(),
    };
    let range = CaseRange { since: range.since.clone(), until: range.until.clone() };
    Case::build(engine, lake, range, sets, bound, findings).await.map_err(|e| anyhow::anyhow!(e))
}

/// Writes `case` to `path`, saying where.
pub(super) fn write_case(case: &Case, path: &Path) -> Result<()> {
    case.write(path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {} (re-run it with: trawl detect --replay {})", path.display(), path.display());
    Ok(())
}

/// `trawl detect --replay case.json`: the same detections with the same parameters over the
/// same range, and every difference from the recorded run.
pub(super) fn replay(args: &DetectArgs, file: &Path) -> Result<ExitCode> {
    let recorded = Case::read(file).map_err(|e| anyhow::anyhow!(e))?;
    let lake_dir = args.lake.clone().unwrap_or_else(|| recorded.lake.path.clone().into());
    let lake = Lake::open(&lake_dir)?;
    if lake.meta().format_version != FORMAT_VERSION {
        eprintln!("note: lake layout {} (this trawl writes {FORMAT_VERSION})", lake.meta().format_version);
    }
    let pack = load_pack(&args.pack)?;
    let ids: Vec<String> =
        recorded.detections.iter().filter(|d| pack.get(&d.id).is_ok()).map(|d| d.id.clone()).collect();
    let bound = pack.bind(&ids, &recorded.sets)?;
    let range = TimeRangeArgs { since: recorded.range.since.clone(), until: recorded.range.until.clone() };
    let now = crate::runtime().block_on(async {
        let engine =
            open_engine(&lake, &range, &pack, MemoryLimit::default(), args.cluster.scheduler().as_ref())
                .await?;
        let findings = detect::run(&engine, &bound).await;
        case_of(&engine, &lake, &range, &recorded.sets, &bound, &findings).await
    })?;
    let differences = recorded.differences(&now);
    if differences.is_empty() {
        println!(
            "replayed {} detection(s) over {}: same SQL, same hits, same {} input file(s)",
            now.detections.len(),
            lake.root().display(),
            now.inputs.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for d in &differences {
        println!("{d}");
    }
    println!("{} difference(s) from {}", differences.len(), file.display());
    Ok(ExitCode::from(1))
}
