//! What each subcommand does with its arguments: glue between the CLI and the library.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};

use crate::cli::{
    CompactArgs, DetectArgs, IngestArgs, LakeArg, PackArgs, QueryArgs, SigmaArgs, SigmaCommand,
    TimeRangeArgs, VerifyArgs,
};
use crate::detect::{self, Finding, Outcome, Pack, sigma};
use crate::engine::{Engine, MemoryLimit, Scheduler, TimeRange};
use crate::formats::logformat;
use crate::ingest::{IngestOptions, IngestReport, ingest};
use crate::lake::Lake;
use crate::output::{CsvBom, OutputFormat, format_for, write_batches, write_file};
use crate::schema::all_tables;

mod case;
mod cluster;
mod hunt;
mod report;

pub use cluster::run_cluster;
pub use hunt::run_hunt;
pub use report::{run_coverage, run_report, run_timeline};

/// `trawl ingest`.
pub fn run_ingest(args: IngestArgs) -> Result<ExitCode> {
    let lake = Lake::open_or_create(&args.lake.lake, args.tz.as_deref())?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut logformats = Vec::new();
    for spec in &args.squid_logformat {
        logformats.push(Arc::new(logformat::from_arg(spec)?));
    }
    for conf in &args.squid_conf {
        let text = std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
        let found = logformat::from_squid_conf(&text).with_context(|| format!("in {}", conf.display()))?;
        if found.is_empty() {
            eprintln!("note: {} defines no custom logformat; its logs use built-in formats", conf.display());
        }
        logformats.extend(found.into_iter().map(Arc::new));
    }
    let opts = IngestOptions {
        paths: args.paths,
        format: args.format,
        logformats,
        jobs,
        progress: !args.quiet && io::stderr().is_terminal(),
        writer_budget: None,
        testing: Default::default(),
    };
    let report = ingest(&lake, &opts)?;
    print_summary(&report, &lake, args.quiet);
    let failed = report.files.iter().any(|f| f.error.is_some());
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

fn print_summary(r: &IngestReport, lake: &Lake, quiet: bool) {
    let t = r.totals();
    let secs = r.elapsed.as_secs_f64();
    let mut err = io::stderr().lock();
    if !quiet && r.files.len() > 1 && r.files.len() <= 50 {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["file", "format", "lines", "rows", "rejects", "note"]);
        for f in &r.files {
            let note = f.error.clone().unwrap_or_default();
            table.add_row([
                f.path.clone(),
                format!("{} {}", f.format, f.compression),
                f.lines.to_string(),
                f.rows.to_string(),
                f.rejects.to_string(),
                note,
            ]);
        }
        let _ = writeln!(err, "{table}");
    }
    let _ = writeln!(
        err,
        "ingested {} file{} into {} (zone {}): {} lines, {} rows, {} rejects, {} blank, {} header, {:.1} MB in {:.2} s ({:.1} MB/s, {:.0} lines/s)",
        r.files.len(),
        if r.files.len() == 1 { "" } else { "s" },
        lake.root().display(),
        lake.meta().time_zone,
        t.lines,
        t.rows,
        t.rejects,
        t.blank_lines,
        t.header_lines,
        t.size as f64 / 1e6,
        secs,
        mb_per_s(t.size, secs),
        t.lines as f64 / secs.max(1e-9),
    );
    if t.rejects > 0 {
        let _ = writeln!(
            err,
            "{} line(s) could not be parsed; they are kept with file, line and reason: \
             trawl query --lake {} \"SELECT source_file, source_line, reason, line FROM rejects\"",
            t.rejects,
            lake.root().display()
        );
    }
    for race in &r.races_lost {
        let _ =
            writeln!(err, "lost a commit race and read again from the lake as the other run left it: {race}");
    }
    if r.orphans_removed > 0 {
        let _ = writeln!(
            err,
            "removed {} Parquet file(s) an earlier, stopped run had written but never committed",
            r.orphans_removed
        );
    }
    if t.lossy_rows > 0 {
        let _ = writeln!(
            err,
            "{} row(s) held bytes that are not UTF-8; their text was stored with U+FFFD",
            t.lossy_rows
        );
    }
    for f in r.files.iter().filter(|f| f.resumed_from.is_some()) {
        let _ = write!(
            err,
            "{}: grew since an earlier read; read from line {} (byte {})",
            f.path, f.first_line, f.start_byte
        );
        let _ = if f.replaced_rows > 0 {
            writeln!(
                err,
                ", replacing the {} row(s) of its last line, read then while cut mid-write",
                f.replaced_rows
            )
        } else {
            writeln!(err)
        };
    }
    for f in r.files.iter().filter(|f| f.error.is_some()) {
        let _ = writeln!(
            err,
            "warning: {}: {} (rows before it were kept)",
            f.path,
            f.error.as_deref().unwrap_or("")
        );
    }
    if !r.skipped.is_empty() && quiet {
        // One line however many: the reasons are in the ledger for whoever asks.
        let _ = writeln!(
            err,
            "skipped {} file(s); why: trawl query --lake {} \"SELECT path, reason FROM ingests WHERE status = \
             'skipped' AND ingested_at = (SELECT max(ingested_at) FROM ingests)\"",
            r.skipped.len(),
            lake.root().display(),
        );
    } else if !r.skipped.is_empty() {
        let _ = writeln!(err, "skipped {} file(s):", r.skipped.len());
        for s in &r.skipped {
            let _ = writeln!(err, "  {}: {}", s.path, s.reason);
        }
    }
}

/// `trawl query`.
pub fn run_query(args: QueryArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let rt = crate::runtime();
    if args.schema {
        print_schema(&lake)?;
        return Ok(ExitCode::SUCCESS);
    }
    let pack = load_pack(&args.pack)?;
    let bound = match &args.detection {
        Some(id) => Some(pack.bind(std::slice::from_ref(id), &args.pack.set)?.remove(0)),
        None if !args.pack.set.is_empty() => {
            bail!("--set gives parameters to a detection: add --detection ID")
        }
        None => None,
    };
    let sql = match (&args.sql, &args.file, &bound) {
        (_, _, Some(b)) => b.sql.clone(),
        (Some(s), _, _) => s.clone(),
        (None, Some(f), _) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None, None) => bail!("give a SQL statement, -f FILE.sql, --detection ID, or --schema"),
    };
    let file_format = match &args.output {
        Some(path) => {
            crate::output::check_destination(path, args.force)
                .with_context(|| format!("writing {}", path.display()))?;
            Some(format_for(path, args.format)?)
        }
        None => None,
    };
    let enrich = hunt::Enrichment::load(&args.enrich)?;
    let result = rt.block_on(async {
        let mut engine = open_engine(
            &lake,
            &args.range,
            &pack,
            args.memory.memory_limit.unwrap_or_default(),
            args.cluster.scheduler().as_ref(),
        )
        .await?;
        enrich.apply(&mut engine)?;
        if let Some(b) = &bound {
            // A detection runs as `trawl detect` runs it: skipped on empty tables, with its notes.
            let finding = detect::run_one(&engine, b, &mut BTreeMap::new()).await;
            for note in &finding.notes {
                eprintln!("note: {note}");
            }
            return match &finding.outcome {
                // Hits only, as `trawl detect` shows them (its --all gives every candidate).
                Outcome::Hits { .. } => Ok(finding.rows(false)),
                Outcome::Skipped(reason) => {
                    eprintln!("{}: skipped: {reason}", b.detection.id);
                    Ok(None)
                }
                Outcome::Failed(message) => Err(anyhow::anyhow!(message.clone())),
            };
        }
        Ok::<_, anyhow::Error>(Some(engine.collect(&sql).await?))
    })?;
    let Some((schema, batches)) = result else { return Ok(ExitCode::SUCCESS) };
    match (&args.output, file_format) {
        (Some(path), Some(format)) => {
            write_file(format, &schema, &batches, path, args.force, args.csv_bom)
                .with_context(|| format!("writing {}", path.display()))?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            eprintln!("wrote {rows} rows to {}", path.display());
        }
        _ => {
            let terminal = io::stdout().is_terminal();
            let format =
                args.format.unwrap_or(if terminal { OutputFormat::Table } else { OutputFormat::Csv });
            let mut out = io::stdout().lock();
            let max = (format == OutputFormat::Table && terminal).then_some(args.max_rows);
            write_batches(format, &schema, &batches, &mut out, max, args.csv_bom)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The built-in pack (unless left out) with each --pack folder laid over it, and --sigma rules.
fn load_pack(args: &PackArgs) -> Result<Pack> {
    let mut pack = if args.no_builtin { Pack::default() } else { Pack::builtin()? };
    for dir in &args.packs {
        pack.overlay(Pack::load(dir)?);
    }
    if !args.sigma.is_empty() {
        let rules = sigma::load(&args.sigma)?;
        let others = sigma::add_to_pack(&mut pack, &rules)?;
        let compiled =
            rules.iter().filter(|r| matches!(r.outcome, sigma::RuleOutcome::Compiled { .. })).count();
        let skipped =
            rules.iter().filter(|r| matches!(r.outcome, sigma::RuleOutcome::Skipped { .. })).count();
        eprintln!(
            "sigma: {} rule file(s): {compiled} compiled, {skipped} skipped (reasons in the summary)",
            rules.len()
        );
        if !others.is_empty() {
            let by: Vec<String> = others.iter().map(|(c, n)| format!("{n} {c}")).collect();
            eprintln!("sigma: not for proxy or firewall logs, so not run: {}", by.join(", "));
        }
    }
    Ok(pack)
}

/// `trawl sigma explain|lint`.
pub fn run_sigma(args: SigmaArgs) -> Result<ExitCode> {
    match args.command {
        SigmaCommand::Explain { rules } => {
            let mut out = io::stdout().lock();
            for (i, path) in rules.iter().enumerate() {
                if !path.is_file() {
                    bail!("{}: not a file (explain takes rule files; lint takes folders)", path.display());
                }
                if i > 0 {
                    writeln!(out)?;
                }
                write!(out, "{}", sigma::explain(&sigma::read(path)))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SigmaCommand::Lint { paths } => lint_sigma(&paths),
    }
}

/// Every rule compiled (or skipped with why) and each compiled one planned against empty tables.
fn lint_sigma(paths: &[std::path::PathBuf]) -> Result<ExitCode> {
    let rules = sigma::load(paths)?;
    let mut pack = Pack::default();
    sigma::add_to_pack(&mut pack, &rules)?;
    let bound = pack.bind(&[], &[])?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    crate::runtime().block_on(async {
        let engine = Engine::offline(crate::localtime::machine_tz()).await?;
        let mut out = io::stdout().lock();
        for r in &rules {
            let (status, kind, detail) = r.status();
            let planned = match bound.iter().find(|b| b.detection.id == r.stem && status == "compiled") {
                Some(b) => detect::lint(&engine, b).await,
                None => Ok(()),
            };
            let (word, key, detail) = match (&planned, status) {
                (Err(e), _) => ("FAIL", "failed".to_string(), e.clone()),
                (Ok(()), "compiled") => ("ok", "compiled".to_string(), String::new()),
                (Ok(()), "skipped") => ("skip", format!("skipped: {kind}"), detail),
                (Ok(()), _) => ("other", "other log source".to_string(), detail),
            };
            if planned.is_err() {
                failed.push(r.stem.clone());
            }
            *counts.entry(key).or_insert(0) += 1;
            writeln!(out, "{word:<5} {:<60} {detail}", r.path)?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let by: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    eprintln!("{} rule file(s): {}", rules.len(), by.join(", "));
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} compiled rule(s) do not plan: {}", failed.len(), failed.join(", "));
        Ok(ExitCode::from(2))
    }
}

/// A session over the lake (on a cluster if one is named), limited to the time range, with the
/// pack's lists as tables.
async fn open_engine(
    lake: &Lake,
    range: &TimeRangeArgs,
    pack: &Pack,
    memory: MemoryLimit,
    cluster: Option<&Scheduler>,
) -> Result<Engine> {
    let range = TimeRange::parse(range.since.as_deref(), range.until.as_deref(), lake.tz())
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut engine = Engine::connect(lake, memory, cluster).await?;
    engine.restrict(&range).await?;
    pack.register_lists(&mut engine)?;
    Ok(engine)
}

/// Creates `dir` and refuses, before anything runs rather than after minutes of queries, to
/// overwrite any of `names` in it without `--force`.
fn prepare_out(dir: &std::path::Path, names: impl Iterator<Item = String>, force: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in names {
        let path = dir.join(name);
        if path.exists() && !force {
            bail!("{} exists: pass --force to overwrite, or choose another --out", path.display());
        }
    }
    Ok(())
}

/// `trawl detect --lint`: every selected detection planned against empty tables of the lake's
/// layout (in the lake's zone when one is given).
fn lint_pack(pack: &Pack, args: &DetectArgs) -> Result<ExitCode> {
    let tz = match &args.lake {
        Some(dir) => Lake::open(dir)?.tz(),
        None => crate::localtime::machine_tz(),
    };
    let bound = pack.bind(&args.only, &args.pack.set)?;
    let failures = crate::runtime().block_on(async {
        let mut engine = Engine::offline(tz).await?;
        pack.register_lists(&mut engine)?;
        let mut failures = Vec::new();
        for b in &bound {
            if let Some(reason) = b.detection.skip_reason() {
                println!("skip  {:<22} {reason}", b.detection.id);
                continue;
            }
            match detect::lint(&engine, b).await {
                Ok(()) => println!("ok    {:<22} {}", b.detection.id, b.detection.file),
                Err(e) => {
                    println!("FAIL  {:<22} {e}", b.detection.id);
                    failures.push(b.detection.id.clone());
                }
            }
        }
        Ok::<_, anyhow::Error>(failures)
    })?;
    if failures.is_empty() {
        eprintln!("{} detection(s) plan cleanly", bound.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} of {} detection(s) do not plan: {}", failures.len(), bound.len(), failures.join(", "));
        Ok(ExitCode::from(2))
    }
}

/// Exit status when a detection at or above `--fail-on` found something.
pub const EXIT_HITS: u8 = 3;

/// `trawl detect`.
pub fn run_detect(args: DetectArgs) -> Result<ExitCode> {
    let pack = load_pack(&args.pack)?;
    if pack.detections.is_empty() && args.replay.is_none() {
        bail!("no detections: --no-builtin needs --pack or --sigma");
    }
    if args.list {
        print_pack(&pack)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.lint {
        return lint_pack(&pack, &args);
    }
    if let Some(file) = &args.replay {
        return case::replay(&args, file);
    }
    let lake_dir = args.lake.as_ref().context("--lake DIR is required (except with --list and --lint)")?;
    let lake = Lake::open(lake_dir)?;
    let bound = pack.bind(&args.only, &args.pack.set)?;
    let ext = args.format.extension();
    if let Some(dir) = &args.out {
        let names = bound.iter().map(|b| format!("{}.{ext}", b.detection.id));
        prepare_out(dir, names.chain(["summary.csv".to_string(), "case.json".to_string()]), args.force)?;
    }
    let enrich = hunt::Enrichment::load(&args.enrich)?;
    let rt = crate::runtime();
    let (mut findings, case) = rt.block_on(async {
        let mut engine = open_engine(
            &lake,
            &args.range,
            &pack,
            args.memory.memory_limit.unwrap_or_default(),
            args.cluster.scheduler().as_ref(),
        )
        .await?;
        enrich.apply(&mut engine)?;
        let findings = detect::run(&engine, &bound).await;
        let case = match &args.out {
            Some(_) => {
                Some(case::case_of(&engine, &lake, &args.range, &args.pack.set, &bound, &findings).await?)
            }
            None => None,
        };
        Ok::<_, anyhow::Error>((findings, case))
    })?;
    detect::sort_findings(&mut findings);
    let summary = summary_batch(&findings)?;
    let mut out = io::stdout().lock();
    let shown = summary.project(&[0, 2, 3, 4, 5, 6, 7, 8, 9])?;
    write_batches(OutputFormat::Table, &shown.schema(), &[shown], &mut out, None, CsvBom::Never)?;
    if args.rows > 0 {
        for f in findings.iter().filter(|f| f.hits() > 0 || (args.all && f.candidates() > 0)) {
            let Some((schema, batches)) = f.rows(args.all) else { continue };
            writeln!(out, "\n{} ({}): {}", f.detection.id, f.detection.severity, f.detection.title)?;
            write_batches(OutputFormat::Table, &schema, &batches, &mut out, Some(args.rows), CsvBom::Never)?;
        }
    }
    out.flush()?;
    if let Some(dir) = &args.out {
        for f in &findings {
            if let Some((schema, batches)) = f.rows(args.all) {
                let path = dir.join(format!("{}.{ext}", f.detection.id));
                write_file(args.format, &schema, &batches, &path, true, args.csv_bom)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        let path = dir.join("summary.csv");
        write_file(OutputFormat::Csv, &summary.schema(), &[summary], &path, true, args.csv_bom)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {} detection files and summary.csv to {}", bound.len(), dir.display());
        if let Some(case) = &case {
            case::write_case(case, &dir.join("case.json"))?;
        }
    }
    let failed: Vec<&str> = findings
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::Failed(_)))
        .map(|f| f.detection.id.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!("trawl: {} detection(s) failed: {} (see the summary)", failed.len(), failed.join(", "));
        return Ok(ExitCode::from(2));
    }
    if let Some(at) = args.fail_on
        && findings.iter().any(|f| f.fails(at))
    {
        return Ok(ExitCode::from(EXIT_HITS));
    }
    Ok(ExitCode::SUCCESS)
}

/// One row per detection: what the terminal shows (a projection) and summary.csv holds.
fn summary_batch(findings: &[Finding<'_>]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&Finding<'_>) -> Option<String>| -> ArrayRef {
        Arc::new(findings.iter().map(f).collect::<StringArray>())
    };
    let span = findings.iter().map(Finding::span).collect::<Vec<_>>();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("detection", text(&|f| Some(f.detection.id.clone()))),
        ("title", text(&|f| Some(f.detection.title.clone()))),
        ("severity", text(&|f| Some(f.detection.severity.to_string()))),
        ("hits", Arc::new(findings.iter().map(|f| f.hits() as i64).collect::<Int64Array>())),
        // Rows below min_score too: what --all would show.
        ("candidates", Arc::new(findings.iter().map(|f| f.candidates() as i64).collect::<Int64Array>())),
        ("top_entity", text(&|f| f.top_entity())),
        (
            "first_seen",
            Arc::new(span.iter().map(|s| s.as_ref().map(|s| s.0.clone())).collect::<StringArray>()),
        ),
        (
            "last_seen",
            Arc::new(span.iter().map(|s| s.as_ref().map(|s| s.1.clone())).collect::<StringArray>()),
        ),
        ("status", text(&|f| Some(f.status().0.to_string()))),
        // Empty rather than NULL: a note is prose, and "NULL" in the terminal summary reads as one.
        ("note", text(&|f| Some(f.status().1))),
        ("mitre", text(&|f| Some(f.detection.mitre.join(" ")))),
        ("seconds", Arc::new(findings.iter().map(|f| f.elapsed.as_secs_f64()).collect::<Float64Array>())),
    ];
    Ok(RecordBatch::try_from_iter(columns)?)
}

fn print_pack(pack: &Pack) -> Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(["detection", "severity", "title", "tables", "mitre", "parameters (--set KEY=VALUE)"]);
    for d in &pack.detections {
        let params: Vec<String> = d
            .params
            .iter()
            .map(|p| {
                if p.description.is_empty() {
                    format!("{} = {}", p.name, p.default)
                } else {
                    format!("{} = {}  ({})", p.name, p.default, p.description)
                }
            })
            .collect();
        table.add_row([
            d.id.clone(),
            d.severity.to_string(),
            d.title.clone(),
            d.tables.join(", "),
            d.mitre.join(" "),
            params.join("\n"),
        ]);
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{table}")?;
    let lists: Vec<&str> = pack.lists.iter().map(|(n, _)| n.as_str()).collect();
    writeln!(out, "{} detections; list tables: {}", pack.detections.len(), lists.join(", "))?;
    Ok(())
}

fn print_schema(lake: &Lake) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "lake {} (time zone {})", lake.root().display(), lake.meta().time_zone)?;
    for spec in all_tables() {
        writeln!(out, "\n{}: {}", spec.table, spec.description)?;
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["column", "type", "meaning"]);
        for c in &spec.columns {
            table.add_row([c.name.clone(), format!("{:?}", c.ty).to_lowercase(), c.doc.clone()]);
        }
        if spec.partition_by_date {
            table.add_row([
                "date".into(),
                "string".into(),
                "Local day YYYY-MM-DD in the lake's zone (partition: filter on it to read less)".to_string(),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    Ok(())
}

/// `trawl compact`.
pub fn run_compact(args: CompactArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let lease = lake.lease()?;
    let rt = crate::runtime();
    let retention = chrono::Duration::hours(i64::from(args.retention_hours));
    let mut err = io::stderr().lock();
    for spec in all_tables() {
        let orphans = rt.block_on(lake.remove_orphans(spec))?;
        let done = rt.block_on(lake.compact(spec, &lease))?;
        // Also when nothing was merged: repairs a list a stopped run left one commit behind, or
        // one naming the old place of a lake that was moved, before vacuum deletes files such a
        // list may still name. Again after: vacuum's own commits must leave them current.
        rt.block_on(lake.write_manifest(spec))?;
        let vacuumed = rt.block_on(lake.vacuum(spec, retention))?;
        rt.block_on(lake.write_manifest(spec))?;
        if done.version.is_none() && orphans.is_empty() && vacuumed == 0 {
            continue;
        }
        let _ = write!(err, "{}:", spec.table);
        if let Some(v) = done.version {
            let _ = write!(
                err,
                " merged {} files into {} ({} rows, version {v});",
                done.files_before, done.files_after, done.rows
            );
        }
        if !orphans.is_empty() {
            let _ = write!(err, " removed {} uncommitted file(s) of stopped runs;", orphans.len());
        }
        let _ = writeln!(
            err,
            " deleted {vacuumed} file(s) removed from the log over {} h ago",
            args.retention_hours
        );
    }
    let _ = writeln!(err, "compacted {}", lake.root().display());
    Ok(ExitCode::SUCCESS)
}

/// `trawl manifest`.
pub fn run_manifest(args: LakeArg) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake)?;
    let rt = crate::runtime();
    let mut err = io::stderr().lock();
    for spec in all_tables() {
        let changed = rt.block_on(lake.write_manifest(spec))?;
        if changed > 0 {
            let _ = writeln!(err, "{}: rewrote {changed} partition list(s)", spec.table);
        }
    }
    let _ = writeln!(err, "the manifests of {} name the live files", lake.root().display());
    Ok(ExitCode::SUCCESS)
}

/// `trawl verify`.
pub fn run_verify(args: VerifyArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let report = crate::verify::verify(&lake, &args.paths)?;
    let mut out = io::stdout().lock();
    if !report.findings.is_empty() {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["finding", "table", "file", "detail"]);
        for f in &report.findings {
            table.add_row([f.problem.name(), &f.scope, &f.path, &f.detail]);
        }
        writeln!(out, "{table}")?;
    }
    let failures = report.findings.iter().filter(|f| f.problem.is_failure()).count();
    writeln!(
        out,
        "{}: {} lake file(s), {:.1} MB re-hashed; {} source file(s) checked; {} problem(s)",
        if failures == 0 { "verified" } else { "VERIFY FAILED" },
        report.lake_files,
        report.lake_bytes as f64 / 1e6,
        report.sources,
        failures,
    )?;
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
