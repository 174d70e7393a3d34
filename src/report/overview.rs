//! The overview section: requests per day, top users, clients and domains by requests and by
//! bytes each way, denied and blocked requests, i-FILTER categories, status codes.

use std::fmt::Write as _;

use crate::engine::Engine;

use super::html::{escape, rows_of, table};
use super::i18n::Lang;
use super::pseudo::Pseudonymiser;
use super::{ReportError, column_i64, column_str, query, svg};

const TOP: usize = 10;

/// Display text of every row a query gives.
async fn rows(engine: &Engine, sql: &str) -> Result<Vec<Vec<String>>, ReportError> {
    let batches = query(engine, sql).await?;
    let Some(first) = batches.first() else { return Ok(Vec::new()) };
    Ok(rows_of(&first.schema(), &batches).1)
}

/// The section's HTML.
pub(super) async fn section(engine: &Engine, lang: Lang, p: &Pseudonymiser) -> Result<String, ReportError> {
    let has = |t: &str| engine.tables().iter().any(|n| n == t);
    let t = |s| lang.t(s);
    let mut out = format!("<section id=\"overview\"><h2>{}</h2>", t("Overview"));
    if has("proxy") {
        per_day(engine, "proxy", t("Requests per day"), &mut out).await?;
    }
    if has("firewall") {
        per_day(engine, "firewall", t("Firewall entries per day"), &mut out).await?;
    }
    if !has("proxy") {
        let _ = write!(out, "<p>{}</p></section>", t("No proxy rows in the range."));
        return Ok(out);
    }
    let groups = [
        ("Top users", "coalesce(username, '-')", "user"),
        ("Top clients", "client_ip", "client_ip"),
        ("Top domains", "coalesce(reg_domain(host), host)", "domain"),
    ];
    for (title, expr, column) in groups {
        let sql = format!(
            "SELECT {expr} AS k, count(*) AS n, coalesce(sum(request_bytes), 0) AS up, \
             coalesce(sum(response_bytes), 0) AS down FROM proxy GROUP BY 1"
        );
        let mut all = Vec::new();
        for b in query(engine, &sql).await? {
            let (k, n, up, down) =
                (column_str(&b, 0)?, column_i64(&b, 1)?, column_i64(&b, 2)?, column_i64(&b, 3)?);
            for i in 0..b.num_rows() {
                let k = k[i].clone().unwrap_or_else(|| "NULL".into());
                all.push((k, n[i].unwrap_or(0), up[i].unwrap_or(0), down[i].unwrap_or(0)));
            }
        }
        let _ = write!(out, "<h3>{}</h3><div class=\"cols\">", t(title));
        // The first header stays the column's name: pseudonyms are chosen by it.
        let head = [column, t("requests"), t("bytes up"), t("bytes down")].map(str::to_string).to_vec();
        for (by, key) in [("by requests", 1usize), ("by bytes up", 2), ("by bytes down", 3)] {
            all.sort_by(|a, b| {
                let v = |x: &(String, i64, i64, i64)| [x.1, x.2, x.3][key - 1];
                v(b).cmp(&v(a)).then_with(|| a.0.cmp(&b.0))
            });
            let rows: Vec<Vec<String>> = all
                .iter()
                .take(TOP)
                .map(|(k, n, up, down)| {
                    vec![k.clone(), n.to_string(), svg::bytes(*up as f64), svg::bytes(*down as f64)]
                })
                .collect();
            let _ = write!(out, "<div><h4>{}</h4>{}</div>", t(by), table(&head, &rows, TOP, p));
        }
        out.push_str("</div>");
    }
    let blocked = rows(
        engine,
        "SELECT source_format, coalesce(action, cache_result, CAST(status AS VARCHAR)) AS decision, count(*) AS n \
         FROM proxy WHERE lower(action) LIKE '%block%' OR cache_result LIKE '%DENIED%' OR status IN (403, 407) \
         GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
    )
    .await?;
    let head = [t("format"), t("decision"), t("requests")].map(str::to_string).to_vec();
    let _ = write!(out, "<h3>{}</h3>{}", t("Denied and blocked"), table(&head, &blocked, 50, p));
    if has("firewall") {
        let actions =
            rows(engine, "SELECT action, count(*) FROM firewall GROUP BY 1 ORDER BY 2 DESC, 1").await?;
        let head = ["action".to_string(), t("events").to_string()];
        let _ = write!(out, "<h3>{}</h3>{}", t("Firewall actions"), table(&head, &actions, 50, p));
    }
    let cats = rows(
        engine,
        "SELECT u.id, c.name_ja, c.name_en, count(*) AS n FROM (SELECT unnest(categories) AS id FROM proxy \
         WHERE categories IS NOT NULL) u LEFT JOIN ifilter_categories c ON c.id = u.id \
         GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT 30",
    )
    .await?;
    if !cats.is_empty() {
        let cats: Vec<Vec<String>> = cats
            .into_iter()
            .map(|r| vec![r[0].clone(), format!("{} ({})", r[1], r[2]), r[3].clone()])
            .collect();
        let head = ["id".to_string(), t("category").to_string(), t("requests").to_string()];
        let _ = write!(out, "<h3>{}</h3>{}", t("i-FILTER categories"), table(&head, &cats, 30, p));
    }
    let status =
        rows(engine, "SELECT status, count(*) FROM proxy GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20").await?;
    let head = ["status".to_string(), t("requests").to_string()];
    let _ = write!(out, "<h3>{}</h3>{}</section>", t("Status codes"), table(&head, &status, 20, p));
    Ok(out)
}

async fn per_day(engine: &Engine, table: &str, title: &str, out: &mut String) -> Result<(), ReportError> {
    let sql = format!("SELECT date, count(*) FROM {table} GROUP BY 1 ORDER BY 1");
    let (mut labels, mut values) = (Vec::new(), Vec::new());
    for b in query(engine, &sql).await? {
        let (d, n) = (column_str(&b, 0)?, column_i64(&b, 1)?);
        for i in 0..b.num_rows() {
            labels.push(d[i].clone().unwrap_or_default().get(5..).unwrap_or("").to_string());
            values.push(n[i].unwrap_or(0) as f64);
        }
    }
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption>{}</figure>",
        escape(title),
        svg::bars(&labels, &values, &svg::count, title)
    );
    Ok(())
}
