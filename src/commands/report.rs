//! `trawl report`, `trawl timeline`, `trawl coverage`: glue between the CLI and `report`.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};

use crate::cli::{CoverageArgs, ReportArgs, TimeRangeArgs, TimelineArgs};
use crate::detect;
use crate::engine::{Engine, MemoryLimit, TimeRange};
use crate::lake::Lake;
use crate::output::{CsvBom, OutputFormat, write_batches, write_file};
use crate::report::timeline::{self, Who};
use crate::report::{self, CaseInfo, Lang, Pseudonymiser, ReportOptions, local_time};

use super::{load_pack, open_engine};

fn pseudonymiser(key: Option<&Path>) -> Result<Pseudonymiser> {
    Ok(match key {
        Some(k) => Pseudonymiser::from_key_file(k)?,
        None => Pseudonymiser::none(),
    })
}

/// `trawl report`.
pub fn run_report(args: ReportArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let case_path = args.output.with_extension("json");
    for path in [&args.output, &case_path] {
        if path.exists() && !args.force {
            bail!("{} exists: pass --force to overwrite, or choose another -o", path.display());
        }
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pseudo = pseudonymiser(args.pseudonymise.as_deref())?;
    let pack = load_pack(&args.pack)?;
    let bound = pack.bind(&args.only, &args.pack.set)?;
    if let Some(dir) = &args.out {
        // Refuse before running rather than after minutes of queries.
        for b in &bound {
            let path = dir.join(format!("{}.csv", b.detection.id));
            if path.exists() && !args.force {
                bail!("{} exists: pass --force to overwrite, or choose another --out", path.display());
            }
        }
    }
    let who = (!args.user.is_empty() || !args.client.is_empty())
        .then(|| Who { users: args.user.clone(), clients: args.client.clone() });
    let opts = ReportOptions {
        lang: args.lang.unwrap_or_else(Lang::from_env),
        pseudo: pseudo.clone(),
        who,
        gap_minutes: args.coverage.gap_minutes,
        by: args.coverage.by,
        rows: args.rows,
        burst_seconds: 300,
        csv_written: args.out.is_some(),
    };
    let enrich = super::hunt::Enrichment::load(&args.enrich)?;
    let started = std::time::Instant::now();
    let rt = crate::runtime();
    let (html, views, case) = rt.block_on(async {
        let mut engine = open_engine(&lake, &args.range, &pack, MemoryLimit::default(), None).await?;
        enrich.apply(&mut engine)?;
        let mut findings = detect::run(&engine, &bound).await;
        detect::sort_findings(&mut findings);
        let views = report::findings::from_detect(&findings);
        let info = CaseInfo {
            lake: lake.root().display().to_string(),
            zone: lake.meta().time_zone.clone(),
            trawl_version: env!("CARGO_PKG_VERSION").to_string(),
            range: range_text(&args.range),
            generated: local_time(lake.tz(), chrono::Utc::now().timestamp_micros()),
        };
        let html = report::render(&engine, &info, &views, &opts).await?;
        let case =
            super::case::case_of(&engine, &lake, &args.range, &args.pack.set, &bound, &findings).await?;
        Ok::<_, anyhow::Error>((html, views, case))
    })?;
    super::case::write_case(&case, &case_path)?;
    std::fs::write(&args.output, html).with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(dir) = &args.out {
        for v in views.iter().filter(|v| v.hits > 0) {
            let Some(schema) = &v.schema else { continue };
            let batches = v.batches.iter().map(|b| pseudo.batch(b)).collect::<Result<Vec<_>, _>>()?;
            let schema = batches.first().map_or(schema.clone(), RecordBatch::schema);
            let path = dir.join(format!("{}.csv", v.id));
            write_file(OutputFormat::Csv, &schema, &batches, &path, true, CsvBom::Auto)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let hits = views.iter().filter(|v| v.hits > 0).count();
    eprintln!(
        "wrote {} ({hits} of {} detections with hits) in {:.1} s",
        args.output.display(),
        views.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn range_text(range: &TimeRangeArgs) -> String {
    match (&range.since, &range.until) {
        (None, None) => String::new(),
        (s, u) => format!("{} – {}", s.as_deref().unwrap_or("…"), u.as_deref().unwrap_or("…")),
    }
}

/// Prints a batch to stdout: table on a terminal, else CSV, unless a format is asked for.
fn print(batch: RecordBatch, format: Option<OutputFormat>) -> Result<()> {
    let terminal = io::stdout().is_terminal();
    let format = format.unwrap_or(if terminal { OutputFormat::Table } else { OutputFormat::Csv });
    let mut out = io::stdout().lock();
    write_batches(format, &batch.schema(), &[batch], &mut out, None, CsvBom::Never)?;
    out.flush()?;
    Ok(())
}

/// `--window 30d` or `12h` in microseconds.
fn window_us(s: &str) -> Result<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().with_context(|| format!("--window {s:?}: use days (30d) or hours (12h)"))?;
    match unit {
        "d" => Ok(n * 86_400_000_000),
        "h" => Ok(n * 3_600_000_000),
        _ => bail!("--window {s:?}: use days (30d) or hours (12h)"),
    }
}

/// `trawl timeline`.
pub fn run_timeline(args: TimelineArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let tz = lake.tz();
    let pseudo = pseudonymiser(args.pseudonymise.as_deref())?;
    let pack = load_pack(&args.pack)?;
    let bound = pack.bind(&[], &args.pack.set)?;
    let (range, anchor) = match &args.anchor {
        Some(a) => {
            let at = TimeRange::parse(Some(a), None, tz)
                .map_err(|e| anyhow::anyhow!(e.replace("--since", "--anchor")))?;
            let at = at.since.context("an anchor time")?;
            let w = window_us(&args.window)?;
            (TimeRange { since: Some(at - w), until: Some(at + w) }, Some(at))
        }
        None => (
            TimeRange::parse(args.range.since.as_deref(), args.range.until.as_deref(), tz)
                .map_err(|e| anyhow::anyhow!(e))?,
            None,
        ),
    };
    let who = Who { users: args.user.iter().cloned().collect(), clients: args.client.clone() };
    let rt = crate::runtime();
    let entries = rt.block_on(async {
        let mut engine = Engine::new(&lake).await?;
        engine.restrict(&range).await?;
        pack.register_lists(&mut engine)?;
        let mut findings = detect::run(&engine, &bound).await;
        detect::sort_findings(&mut findings);
        let views = report::findings::from_detect(&findings);
        let mut events = timeline::events(&engine, &who).await?;
        timeline::mark(&mut events, &report::findings::marks(&views, tz));
        if let Some(at) = anchor {
            timeline::mark_new(&mut events, at, tz);
        }
        Ok::<_, anyhow::Error>(if args.raw {
            timeline::raw(&events)
        } else {
            timeline::fold(&events, args.burst_seconds, Lang::from_env())
        })
    })?;
    if entries.is_empty() {
        eprintln!("no proxy or firewall rows for {} in the range", who_text(&who));
    }
    print(timeline::to_batch(&entries, tz, &pseudo)?, args.format)?;
    Ok(ExitCode::SUCCESS)
}

fn who_text(who: &Who) -> String {
    who.users.iter().chain(&who.clients).cloned().collect::<Vec<_>>().join(", ")
}

/// `trawl coverage`.
pub fn run_coverage(args: CoverageArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let tz = lake.tz();
    let range = TimeRange::parse(args.range.since.as_deref(), args.range.until.as_deref(), tz)
        .map_err(|e| anyhow::anyhow!(e))?;
    let rt = crate::runtime();
    let cov = rt.block_on(async {
        let mut engine = Engine::new(&lake).await?;
        engine.restrict(&range).await?;
        Ok::<_, anyhow::Error>(report::coverage(&engine, args.coverage.by, args.coverage.gap_minutes).await?)
    })?;
    let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let int = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let batch = if args.gaps {
        let g = &cov.gaps;
        RecordBatch::try_from_iter([
            ("table", text(g.iter().map(|g| g.table.clone()).collect())),
            ("source", text(g.iter().map(|g| g.source.clone()).collect())),
            ("from", text(g.iter().map(|g| local_time(tz, g.from_us)).collect())),
            ("to", text(g.iter().map(|g| local_time(tz, g.to_us)).collect())),
            ("minutes", int(g.iter().map(|g| g.minutes()).collect())),
            ("others_rows", int(g.iter().map(|g| g.others_rows as i64).collect())),
        ])?
    } else {
        let s = &cov.sources;
        let gaps = |s: &report::coverage::Source| -> Vec<&report::coverage::Gap> {
            cov.gaps.iter().filter(|g| g.table == s.table && g.source == s.name).collect()
        };
        RecordBatch::try_from_iter([
            ("table", text(s.iter().map(|s| s.table.clone()).collect())),
            ("source", text(s.iter().map(|s| s.name.clone()).collect())),
            ("first", text(s.iter().map(|s| local_time(tz, s.first_us)).collect())),
            ("last", text(s.iter().map(|s| local_time(tz, s.last_us)).collect())),
            ("rows", int(s.iter().map(|s| s.rows as i64).collect())),
            ("hours_with_rows", int(s.iter().map(|s| s.hours.len() as i64).collect())),
            ("gaps", int(s.iter().map(|s| gaps(s).len() as i64).collect())),
            ("gap_minutes", int(s.iter().map(|s| gaps(s).iter().map(|g| g.minutes()).sum()).collect())),
        ])?
    };
    print(batch, args.format)?;
    Ok(ExitCode::SUCCESS)
}
