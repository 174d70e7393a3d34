//! `trawl hunt`, and the enrichment flags (`--allow`, `--geoip`) that query and detect share.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::RecordBatch;

use super::prepare_out;
use crate::cli::{EnrichArgs, HuntArgs};
use crate::engine::{ALLOW_DOMAINS, Engine, GeoIp, TimeRange};
use crate::hunt::{AllowList, IocSet, ListOptions, Sweep, Unread, sweep};
use crate::lake::Lake;
use crate::output::CsvBom;
use crate::output::{OutputFormat, write_batches, write_file};

/// Unread list values shown on the terminal before the rest are only counted.
const UNREAD_SHOWN: usize = 20;

/// Allow lists and GeoIP databases, read once before any query runs.
pub(crate) struct Enrichment {
    pub allow: Option<AllowList>,
    pub geoip: Option<Arc<GeoIp>>,
}

impl Enrichment {
    /// Reads what the flags name, reporting allow-list values that are not indicators.
    pub(crate) fn load(args: &EnrichArgs) -> Result<Enrichment> {
        let opts = ListOptions { column: args.column.clone() };
        let allow = if args.allow.is_empty() {
            None
        } else {
            let allow = AllowList::load(&args.allow, &opts)?;
            report_unread("--allow", &allow.set.unread, None);
            Some(allow)
        };
        let geoip = if args.geoip.is_empty() { None } else { Some(Arc::new(GeoIp::open(&args.geoip)?)) };
        Ok(Enrichment { allow, geoip })
    }

    /// Registers `allow_domains` and gives the GeoIP functions their databases.
    pub(crate) fn apply(&self, engine: &mut Engine) -> Result<()> {
        if let Some(a) = &self.allow {
            engine.register_batch(ALLOW_DOMAINS, a.domains_batch())?;
        }
        if let Some(g) = &self.geoip {
            engine.set_geoip(Arc::clone(g))?;
        }
        Ok(())
    }
}

/// Warns, on stderr, of list values that are not indicators.
fn report_unread(what: &str, unread: &[Unread], out: Option<&Path>) {
    if unread.is_empty() {
        return;
    }
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{what}: {} value(s) are not indicators and were not read:", unread.len());
    for u in unread.iter().take(UNREAD_SHOWN) {
        let _ = writeln!(err, "  {}: {}: {:?}", u.origin, u.reason, u.value);
    }
    if unread.len() > UNREAD_SHOWN {
        let rest = unread.len() - UNREAD_SHOWN;
        let _ = match out {
            Some(dir) => writeln!(err, "  ... and {rest} more (all in {})", dir.join("unread.*").display()),
            None => writeln!(err, "  ... and {rest} more (--out DIR writes them all to unread.csv)"),
        };
    }
}

/// Columns of the hits table shown on the terminal (the files hold every column).
const SHOWN: &[&str] = &[
    "indicator",
    "type",
    "columns",
    "who",
    "agents",
    "first_seen",
    "last_seen",
    "requests",
    "bytes_out",
    "bytes_in",
    "allowed",
    "blocked",
    "allowlisted",
    "country",
    "asn",
    "org",
];

fn project(batch: &RecordBatch, names: &[&str]) -> Result<RecordBatch> {
    let schema = batch.schema();
    let idx: Vec<usize> = names.iter().filter_map(|n| schema.index_of(n).ok()).collect();
    Ok(batch.project(&idx)?)
}

/// `trawl hunt`.
pub fn run_hunt(args: HuntArgs) -> Result<ExitCode> {
    let lake = Lake::open(&args.lake.lake)?;
    let opts = ListOptions { column: args.enrich.column.clone() };
    let set = IocSet::load(&args.iocs, &opts)?;
    {
        let mut err = io::stderr().lock();
        for (file, format, n) in &set.files {
            let _ = writeln!(err, "{file}: read as {format}, {n} value(s)");
        }
        for (what, n) in &set.skipped {
            let _ = writeln!(
                err,
                "{what}: {n} entr{} of a kind proxy and firewall logs do not hold, not searched",
                if *n == 1 { "y" } else { "ies" }
            );
        }
    }
    report_unread("--ioc", &set.unread, args.out.as_deref());
    if set.indicators.is_empty() {
        bail!(
            "no indicators were read from {}",
            args.iocs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let enrich = Enrichment::load(&args.enrich)?;
    let ext = args.format.extension();
    const FILES: [&str; 4] = ["hits", "detail", "no_hits", "unread"];
    if let Some(dir) = &args.out {
        prepare_out(dir, FILES.iter().map(|f| format!("{f}.{ext}")), args.force)?;
    }
    let range = TimeRange::parse(args.range.since.as_deref(), args.range.until.as_deref(), lake.tz())
        .map_err(|e| anyhow::anyhow!(e))?;
    let result: Sweep = crate::runtime().block_on(async {
        let mut engine =
            Engine::connect(&lake, Default::default(), args.cluster.scheduler().as_ref()).await?;
        engine.restrict(&range).await?;
        enrich.apply(&mut engine)?;
        Ok::<_, anyhow::Error>(sweep(&engine, &set, enrich.allow.as_ref(), enrich.geoip.as_deref()).await?)
    })?;

    let mut out = io::stdout().lock();
    let hit_count = result.hits.num_rows();
    let shown = project(&result.hits, SHOWN)?;
    if hit_count > 0 {
        writeln!(out, "{hit_count} indicator(s) seen:")?;
        write_batches(
            OutputFormat::Table,
            &shown.schema(),
            &[shown],
            &mut out,
            Some(args.max_rows),
            CsvBom::Never,
        )?;
    }
    let missing = result.no_hits.num_rows();
    if missing > 0 {
        let within = if range.since.is_some() || range.until.is_some() { " in the time range" } else { "" };
        writeln!(out, "\n{missing} indicator(s) not seen anywhere in the lake{within}:")?;
        let b = &result.no_hits;
        write_batches(
            OutputFormat::Table,
            &b.schema(),
            std::slice::from_ref(b),
            &mut out,
            Some(args.max_rows),
            CsvBom::Never,
        )?;
    }
    out.flush()?;
    let scanned: Vec<String> = result.scanned.iter().map(|(t, n)| format!("{t} ({n} rows)")).collect();
    eprintln!(
        "swept {} indicator(s) over {} in {:.2} s: {hit_count} seen, {missing} not seen",
        set.indicators.len(),
        if scanned.is_empty() {
            "no tables (the lake holds no proxy or firewall rows)".to_string()
        } else {
            scanned.join(", ")
        },
        result.elapsed.as_secs_f64(),
    );
    if let Some(dir) = &args.out {
        let batches = [&result.hits, &result.detail, &result.no_hits, &result.unread];
        for (name, b) in FILES.iter().zip(batches) {
            let path = dir.join(format!("{name}.{ext}"));
            write_file(args.format, &b.schema(), std::slice::from_ref(b), &path, true, CsvBom::Auto)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!("wrote {} to {}", FILES.map(|f| format!("{f}.{ext}")).join(", "), dir.display());
    }
    Ok(if set.unread.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
