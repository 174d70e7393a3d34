//! The report page: each section built from the lake through the engine, then put together.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::Engine;

use super::coverage::{By, Coverage, coverage, local_hour_start};
use super::findings::{self, FindingView};
use super::html::{escape, page, rows_of, table};
use super::i18n::Lang;
use super::pseudo::Pseudonymiser;
use super::timeline::{self, Who};
use super::{ReportError, local_time, overview, query, svg};

/// What the case is: shown at the top of the report.
#[derive(Debug, Clone)]
pub struct CaseInfo {
    pub lake: String,
    pub zone: String,
    pub trawl_version: String,
    /// The time range as given, or empty for the whole lake.
    pub range: String,
    pub generated: String,
}

/// How the report is made.
#[derive(Clone)]
pub struct ReportOptions {
    pub lang: Lang,
    pub pseudo: Pseudonymiser,
    /// The person whose timeline the report shows, if any.
    pub who: Option<Who>,
    pub gap_minutes: u32,
    pub by: By,
    /// Rows of each finding shown in the page.
    pub rows: usize,
    /// Events of one table closer than this (seconds) fold into one timeline row.
    pub burst_seconds: i64,
    /// Whether each finding's rows were also written to `<id>.csv`.
    pub csv_written: bool,
}

/// The whole report as one HTML document.
pub async fn render(
    engine: &Engine,
    info: &CaseInfo,
    views: &[FindingView],
    opts: &ReportOptions,
) -> Result<String, ReportError> {
    let lang = opts.lang;
    let cov = coverage(engine, opts.by, opts.gap_minutes).await?;
    let mut sections = vec![header(info, opts, views)];
    sections.push(sources(engine, &cov, opts).await?);
    sections.push(findings_section(engine, views, &cov, opts).await?);
    sections.push(overview::section(engine, lang, &opts.pseudo).await?);
    if let Some(who) = &opts.who {
        sections.push(timeline_section(engine, who, views, opts).await?);
    }
    Ok(page(lang.code(), lang.t("Case report"), &sections))
}

fn header(info: &CaseInfo, opts: &ReportOptions, views: &[FindingView]) -> String {
    let t = |s| opts.lang.t(s);
    let range = if info.range.is_empty() { t("whole lake").to_string() } else { info.range.clone() };
    let mut out = format!("<section id=\"case\"><h1>{}</h1><dl class=\"meta\">", t("Case report"));
    for (k, v) in [
        (t("Lake"), info.lake.as_str()),
        (t("Time zone"), info.zone.as_str()),
        (t("Time range"), range.as_str()),
        (t("Generated"), info.generated.as_str()),
        (t("trawl version"), info.trawl_version.as_str()),
    ] {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    let hits = views.iter().filter(|v| v.hits > 0).count();
    let _ = write!(out, "<dt>{}</dt><dd>{hits} / {}</dd></dl>", t("Findings"), views.len());
    if opts.pseudo.active() {
        let _ = write!(
            out,
            "<p class=\"note\">{}</p>",
            t(
                "Names and internal addresses are pseudonymised with a keyed hash; the key stays with the analyst."
            )
        );
    }
    // The findings at a glance, most important first, each linking to its own part.
    let hits: Vec<&FindingView> = views.iter().filter(|v| v.hits > 0).collect();
    if !hits.is_empty() {
        let _ = write!(
            out,
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            t("severity"),
            t("detection"),
            t("hits"),
            t("top entities")
        );
        for v in hits {
            let who: Vec<String> = v.entities(3).iter().map(|w| opts.pseudo.user(w)).collect();
            let _ = write!(
                out,
                "<tr><td><span class=\"sev sev-{sev}\">{sev}</span></td><td><a href=\"#f-{id}\">{title}</a></td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                v.hits,
                escape(&who.join(", ")),
                sev = escape(&v.severity),
                id = escape(&v.id),
                title = escape(&v.title),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<p>");
    for (id, label) in
        [("sources", "Sources and coverage"), ("findings", "Findings"), ("overview", "Overview")]
    {
        let _ = write!(out, "<a href=\"#{id}\">{}</a> · ", t(label));
    }
    if opts.who.is_some() {
        let _ = write!(out, "<a href=\"#timeline\">{}</a>", t("Timeline"));
    }
    out.push_str("</p></section>");
    out
}

async fn sources(engine: &Engine, cov: &Coverage, opts: &ReportOptions) -> Result<String, ReportError> {
    let lang = opts.lang;
    let t = |s| lang.t(s);
    let p = &opts.pseudo;
    let mut out = format!("<section id=\"sources\"><h2>{}</h2>", t("Sources and coverage"));
    if engine.tables().iter().any(|n| n == "ingests") {
        let batches = query(
            engine,
            "SELECT path, format, compression, size, sha256, local_ts(first_ts) AS first, local_ts(last_ts) AS last, \
             rows, rejects, status, reason FROM ingests ORDER BY path, ingested_at",
        )
        .await?;
        let (_, rows) = batches.first().map(|b| rows_of(&b.schema(), &batches)).unwrap_or_default();
        // An empty cell reads better than NULL for "no reason" and "no time".
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| r.into_iter().map(|v| if v == "NULL" { String::new() } else { v }).collect())
            .collect();
        let (skipped, read): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r[9] == "skipped");
        let mut formats: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &read {
            *formats.entry(r[1].as_str()).or_default() += 1;
        }
        let sum = |i: usize| read.iter().filter_map(|r| r[i].parse::<u64>().ok()).sum::<u64>();
        let formats: Vec<String> = formats.iter().map(|(f, n)| format!("{f} ×{n}")).collect();
        let _ = write!(
            out,
            "<h3>{}</h3><p>{} {}: {} · {} {} · {} {} · {} {} · {} {}</p>",
            t("Files read"),
            read.len(),
            t("files"),
            escape(&formats.join(", ")),
            svg::bytes(sum(3) as f64),
            t("size"),
            sum(7),
            t("rows"),
            sum(8),
            t("rejects"),
            skipped.len(),
            t("skipped"),
        );
        let head: Vec<String> = [
            "file",
            "format",
            "compression",
            "size",
            "SHA-256",
            "first",
            "last",
            "rows",
            "rejects",
            "status",
            "reason",
        ]
        .iter()
        .map(|s| if *s == "SHA-256" { s.to_string() } else { t(s).to_string() })
        .collect();
        out.push_str(&table(&head, &read, usize::MAX, p));
        if !skipped.is_empty() {
            let head = vec![t("file").to_string(), t("reason").to_string()];
            let rows: Vec<Vec<String>> = skipped.iter().map(|r| vec![r[0].clone(), r[10].clone()]).collect();
            let _ = write!(out, "<h3>{}</h3>{}", t("Skipped files"), table(&head, &rows, usize::MAX, p));
        }
    }
    let _ =
        write!(out, "<h3>{}</h3>{}", t("Coverage per source and hour"), coverage_chart(engine, cov, lang));
    let _ = write!(
        out,
        "<p class=\"legend\"><span style=\"background:{}\"></span>{}<span style=\"background:{}\"></span>{}\
         <span style=\"background:{}\"></span>{}</p>",
        svg::BLUE,
        t("rows logged"),
        svg::RED,
        t("no logs while other sources logged"),
        svg::AMBER,
        t("no logs from any source"),
    );
    let _ = write!(out, "<h3>{} (&gt; {} {})</h3>", t("Gaps"), opts.gap_minutes, t("minutes"));
    if cov.gaps.is_empty() {
        let _ = write!(out, "<p>{}</p>", t("No gaps longer than the threshold."));
    } else {
        let mut gaps: Vec<_> = cov.gaps.iter().collect();
        gaps.sort_by_key(|g| (!g.others_active(), g.from_us));
        let head = ["table", "source", "from", "to", "minutes", "rows from other sources meanwhile"]
            .map(|s| t(s).to_string())
            .to_vec();
        let rows: Vec<Vec<String>> = gaps
            .iter()
            .map(|g| {
                vec![
                    g.table.clone(),
                    g.source.clone(),
                    local_time(engine.tz(), g.from_us),
                    local_time(engine.tz(), g.to_us),
                    g.minutes().to_string(),
                    g.others_rows.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&head, &rows, 300, p));
    }
    out.push_str("</section>");
    Ok(out)
}

/// Sources down, local hours (or days, past six weeks) across.
fn coverage_chart(engine: &Engine, cov: &Coverage, lang: Lang) -> String {
    let tz = engine.tz();
    let hour = 3_600_000_000i64;
    let (Some(lo), Some(hi)) =
        (cov.sources.iter().map(|s| s.first_us).min(), cov.sources.iter().map(|s| s.last_us).max())
    else {
        return String::new();
    };
    let start = local_hour_start(tz, lo);
    let step = if hi - lo > 42 * 24 * hour { 24 * hour } else { hour };
    let columns = ((hi - start) / step + 1) as usize;
    let mut ticks = Vec::new();
    let tick_every = if step == hour { 24 * hour } else { 7 * 24 * hour };
    for c in 0..columns {
        let at = start + c as i64 * step;
        let local = local_time(tz, at);
        let midnight = local.get(11..13) == Some("00");
        if midnight && (tick_every == 24 * hour || c % 7 == 0) {
            ticks.push((c, local.get(5..10).unwrap_or("").to_string()));
        }
    }
    let rows: Vec<svg::CoverageRow> = cov
        .sources
        .iter()
        .map(|s| {
            let mut per_col = vec![0u64; columns];
            for (h, n) in &s.hours {
                per_col[((h - start) / step) as usize] += n;
            }
            let max = per_col.iter().cloned().max().unwrap_or(1).max(1) as f64;
            let cells = per_col
                .iter()
                .enumerate()
                .map(|(c, &n)| {
                    let (a, b) = (start + c as i64 * step, start + (c as i64 + 1) * step);
                    let when = local_time(tz, a);
                    if n > 0 {
                        (svg::shade(n as f64 / max), format!("{when}: {n}"))
                    } else if b <= s.first_us || a > s.last_us {
                        (String::new(), String::new())
                    } else {
                        let gap = cov
                            .gaps
                            .iter()
                            .find(|g| g.table == s.table && g.source == s.name && g.overlaps(a, b));
                        match gap {
                            Some(g) if g.others_active() => (svg::RED.to_string(), format!("{when}: 0")),
                            Some(_) => (svg::AMBER.to_string(), format!("{when}: 0")),
                            None => ("#e2e8f0".to_string(), format!("{when}: 0")),
                        }
                    }
                })
                .collect();
            svg::CoverageRow { label: format!("{}: {}", s.table, short(&s.name)), cells }
        })
        .collect();
    svg::coverage(&rows, columns, &ticks, lang.t("Coverage per source and hour"))
}

/// The last two parts of a path: enough to tell sources apart in a chart label.
fn short(name: &str) -> String {
    let parts: Vec<&str> = name.rsplit(['/', '\\']).take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

async fn findings_section(
    engine: &Engine,
    views: &[FindingView],
    cov: &Coverage,
    opts: &ReportOptions,
) -> Result<String, ReportError> {
    let lang = opts.lang;
    let t = |s| lang.t(s);
    let p = &opts.pseudo;
    let tz = engine.tz();
    let mut out = format!("<section id=\"findings\"><h2>{}</h2>", t("Findings"));
    let hits: Vec<&FindingView> = views.iter().filter(|v| v.hits > 0).collect();
    if hits.is_empty() {
        let _ = write!(out, "<p>{}</p>", t("No detection found anything."));
    }
    for v in hits {
        let _ = write!(
            out,
            "<div class=\"finding\" id=\"f-{id}\"><h3><span class=\"sev sev-{sev}\">{sev}</span>{title} \
             <small>({id})</small></h3><p>{desc}</p><p>{} {} · {}</p>",
            t("hits"),
            v.hits,
            escape(&v.mitre.join(" ")),
            id = escape(&v.id),
            sev = escape(&v.severity),
            title = escape(&v.title),
            desc = escape(&v.description),
        );
        for n in &v.notes {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(n));
        }
        let gaps = v.gaps(&cov.gaps, tz);
        let mut seen = Vec::new();
        for (_, g) in &gaps {
            let key = (g.table.as_str(), g.source.as_str(), g.from_us);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let _ = write!(
                out,
                "<p class=\"warn\">⚠ {}: {}: {} {} – {} ({} {}, {} {})</p>",
                t("Gap in the logs during this finding"),
                escape(&g.table),
                escape(&short(&g.source)),
                local_time(tz, g.from_us),
                local_time(tz, g.to_us),
                g.minutes(),
                t("minutes"),
                g.others_rows,
                t("rows from other sources meanwhile"),
            );
        }
        if let Some(chart) = findings::chart(engine, v, lang, p).await? {
            out.push_str(&chart);
        }
        let mut columns = v.columns.clone();
        let mut rows = v.rows.clone();
        if !gaps.is_empty() {
            columns.push("gap".into());
            for (i, r) in rows.iter_mut().enumerate() {
                let mine: Vec<String> = gaps
                    .iter()
                    .filter(|(row, _)| *row == i)
                    .map(|(_, g)| format!("⚠ {} {}", short(&g.source), local_time(tz, g.from_us)))
                    .collect();
                r.push(mine.join("; "));
            }
        }
        out.push_str(&table(&columns, &rows, opts.rows, p));
        let shown = opts.rows.min(v.hits);
        let csv =
            if opts.csv_written { format!(" · {}: {}.csv", t("all rows"), v.id) } else { String::new() };
        let _ = write!(
            out,
            "<p><small>{} {shown} / {}{}</small></p></div>",
            t("first rows"),
            v.hits,
            escape(&csv)
        );
    }
    let rest: Vec<Vec<String>> = views
        .iter()
        .filter(|v| v.hits == 0)
        .map(|v| {
            vec![v.id.clone(), v.title.clone(), t(status_label(&v.status)).to_string(), v.detail.clone()]
        })
        .collect();
    if !rest.is_empty() {
        let head = ["detection", "Findings", "status", "reason"].map(|s| t(s).to_string()).to_vec();
        let _ =
            write!(out, "<h3>{}</h3>{}", t("Detections without hits"), table(&head, &rest, usize::MAX, p));
    }
    out.push_str("</section>");
    Ok(out)
}

/// Status words are the runner's; the label table knows the usual ones.
fn status_label(status: &str) -> &'static str {
    match status {
        "clean" => "clean",
        "skipped" => "skipped",
        "failed" => "failed",
        _ => "status",
    }
}

async fn timeline_section(
    engine: &Engine,
    who: &Who,
    views: &[FindingView],
    opts: &ReportOptions,
) -> Result<String, ReportError> {
    let lang = opts.lang;
    let tz = engine.tz();
    let p = &opts.pseudo;
    let mut events = timeline::events(engine, who).await?;
    timeline::mark(&mut events, &findings::marks(views, tz));
    let names: Vec<String> = who.users.iter().chain(&who.clients).map(|w| p.user(w)).collect();
    let mut out =
        format!("<section id=\"timeline\"><h2>{}: {}</h2>", lang.t("Timeline"), escape(&names.join(", ")));
    let points: Vec<(i64, f64)> = events.iter().map(|e| (e.t_us, 1.0)).collect();
    let (labels, values) = findings::per_hour(tz, &points);
    if !values.is_empty() {
        let title = lang.t("Activity per hour");
        let _ = write!(
            out,
            "<figure><figcaption>{}</figcaption>{}</figure>",
            escape(title),
            svg::bars(&labels, &values, &svg::count, title)
        );
    }
    let entries = timeline::fold(&events, opts.burst_seconds, lang);
    // Pseudonyms are applied by the timeline itself, so the headers can be translated.
    let batch = timeline::to_batch(&entries, tz, p)?;
    let (columns, rows) = rows_of(&batch.schema(), &[batch]);
    let labels = [
        "from",
        "to",
        "table",
        "format",
        "user",
        "events",
        "what",
        "bytes up",
        "bytes down",
        "detections",
        "new",
    ];
    let columns: Vec<String> = columns.iter().zip(labels).map(|(_, l)| lang.t(l).to_string()).collect();
    out.push_str(&table(&columns, &rows, 500, &super::Pseudonymiser::none()));
    let _ = write!(out, "<p><small>{} / {}</small></p></section>", rows.len().min(500), rows.len());
    Ok(out)
}
