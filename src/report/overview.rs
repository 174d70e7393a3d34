//! The overview section: requests per day, top users, clients and domains by requests and by
//! bytes each way, user agents by browser and OS, destinations by country and network (with a
//! GeoIP database), denied and blocked requests, i-FILTER categories, status codes.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::engine::Engine;

use super::html::{escape, rows_of, table};
use super::i18n::Lang;
use super::pseudo::{Pseudonymiser, public_ip};
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
    destinations(engine, lang, p, &mut out).await?;
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
    agents(engine, lang, p, &mut out).await?;
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

/// User agents by what woothee reads them as: browser, OS and device, each distinct agent
/// parsed once (the functions run over one row per agent, not per request).
async fn agents(engine: &Engine, lang: Lang, p: &Pseudonymiser, out: &mut String) -> Result<(), ReportError> {
    let t = |s| lang.t(s);
    let by = rows(
        engine,
        "WITH a AS (SELECT user_agent AS ua, count(*) AS n FROM proxy WHERE user_agent IS NOT NULL GROUP BY 1) \
         SELECT CASE WHEN ua = '' THEN '(blank)' ELSE ua_browser(ua) END AS browser, \
         CASE WHEN ua = '' THEN '' ELSE ua_os(ua) END AS os, CASE WHEN ua = '' THEN '' ELSE ua_device(ua) END AS device, \
         sum(n) AS requests, count(*) AS agents FROM a GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3 LIMIT 20",
    )
    .await?;
    let head = [t("browser"), t("OS"), t("device"), t("requests"), t("distinct agents")].map(str::to_string);
    let _ = write!(out, "<h3>{}</h3>{}", t("User agents by browser and OS"), table(&head, &by, 20, p));
    let unlogged = rows(
        engine,
        "SELECT source_format, count(*) FROM proxy WHERE user_agent IS NULL GROUP BY 1 ORDER BY 1",
    )
    .await?;
    if !unlogged.is_empty() {
        let what: Vec<String> = unlogged.iter().map(|r| format!("{} ({})", r[0], r[1])).collect();
        let _ = write!(
            out,
            "<p class=\"note\">{}: {}</p>",
            t("Formats that do not log the agent"),
            escape(&what.join(", "))
        );
    }
    Ok(())
}

/// Counts per destination group: proxy requests, firewall entries, distinct addresses.
type Tally = (i64, i64, i64);

/// Where traffic went, by the country and the network (autonomous system) of each public
/// address: the proxy's `server_ip` and the firewall's `dst_ip`. Needs a GeoIP database; without
/// one the section says so.
async fn destinations(
    engine: &Engine,
    lang: Lang,
    p: &Pseudonymiser,
    out: &mut String,
) -> Result<(), ReportError> {
    let t = |s| lang.t(s);
    let has = |name: &str| engine.tables().iter().any(|n| n == name);
    let Some(geoip) = engine.geoip() else {
        let _ = write!(
            out,
            "<p class=\"note\">{}</p>",
            t("Destinations by country and network need a GeoIP database (--geoip FILE.mmdb).")
        );
        return Ok(());
    };
    let mut parts = Vec::new();
    if has("proxy") {
        parts.push(
            "SELECT server_ip AS ip, count(*) AS p, 0 AS f FROM proxy WHERE server_ip IS NOT NULL GROUP BY 1",
        );
    }
    if has("firewall") {
        parts.push(
            "SELECT dst_ip AS ip, 0 AS p, count(*) AS f FROM firewall WHERE dst_ip IS NOT NULL GROUP BY 1",
        );
    }
    if parts.is_empty() {
        return Ok(());
    }
    let sql = format!("SELECT ip, sum(p), sum(f) FROM ({}) GROUP BY 1", parts.join(" UNION ALL "));
    let mut countries: HashMap<String, Tally> = HashMap::new();
    let mut networks: HashMap<(String, String), Tally> = HashMap::new();
    let unknown = t("unknown");
    for b in query(engine, &sql).await? {
        let (ip, proxy, fw) = (column_str(&b, 0)?, column_i64(&b, 1)?, column_i64(&b, 2)?);
        for i in 0..b.num_rows() {
            let Some(ip) = ip[i].as_deref().filter(|ip| public_ip(ip)) else { continue };
            let (n_p, n_f) = (proxy[i].unwrap_or(0), fw[i].unwrap_or(0));
            let add = |x: &mut Tally| {
                x.0 += n_p;
                x.1 += n_f;
                x.2 += 1;
            };
            add(countries.entry(geoip.country(ip).unwrap_or_else(|| unknown.to_string())).or_default());
            let asn = geoip.asn(ip).map_or_else(|| unknown.to_string(), |a| format!("AS{a}"));
            add(networks.entry((asn, geoip.org(ip).unwrap_or_default())).or_default());
        }
    }
    let sorted = |m: Vec<(Vec<String>, Tally)>| -> Vec<Vec<String>> {
        let mut m = m;
        m.sort_by(|a, b| (b.1.0 + b.1.1).cmp(&(a.1.0 + a.1.1)).then_with(|| a.0.cmp(&b.0)));
        m.into_iter()
            .map(|(mut k, (n_p, n_f, n))| {
                k.extend([n_p.to_string(), n_f.to_string(), n.to_string()]);
                k
            })
            .collect()
    };
    let tail = [t("proxy requests"), t("firewall entries"), t("addresses")].map(str::to_string);
    let _ = write!(out, "<h3>{}</h3><div class=\"cols\">", t("Destinations by country and network"));
    let head: Vec<String> = [t("country").to_string()].into_iter().chain(tail.clone()).collect();
    let rows = sorted(countries.into_iter().map(|(c, n)| (vec![c], n)).collect());
    let _ = write!(out, "<div>{}</div>", table(&head, &rows, TOP, p));
    let head: Vec<String> =
        [t("network"), t("organisation")].map(str::to_string).into_iter().chain(tail).collect();
    let rows = sorted(networks.into_iter().map(|((a, o), n)| (vec![a, o], n)).collect());
    let _ = write!(out, "<div>{}</div></div>", table(&head, &rows, TOP, p));
    Ok(())
}
