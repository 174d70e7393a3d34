//! trawl's own Parquet scan of a table's live files against delta-rs's table provider, over the
//! same lake, in one session and one run, alternating, so machine noise falls on both alike.
//!
//! `cargo run --example scan -- LAKE [REPS=5]`: for each query, the median seconds of each and
//! their ratio (ours / delta-rs; below 1 is faster), after checking both give the same rows.

use std::time::Instant;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use trawl::engine::Engine;
use trawl::lake::Lake;
use trawl::schema::PROXY;

const QUERIES: &[(&str, &str)] = &[
    ("count", "SELECT count(*) AS n FROM {t}"),
    (
        "per day",
        "SELECT date, count(*) AS n, sum(response_bytes) AS bytes FROM {t} GROUP BY date ORDER BY date",
    ),
    (
        "one day",
        "SELECT host, count(*) AS n FROM {t} WHERE date = '{day}' GROUP BY host ORDER BY n DESC, host LIMIT 10",
    ),
    (
        "ts range",
        "SELECT client_ip, count(*) AS n FROM {t} WHERE ts >= TIMESTAMP '{from}' AND ts < TIMESTAMP '{to}' \
         GROUP BY client_ip ORDER BY n DESC, client_ip LIMIT 10",
    ),
    ("errors", "SELECT status, count(*) AS n FROM {t} WHERE status >= 400 GROUP BY status ORDER BY status"),
    ("like", "SELECT count(*) AS n FROM {t} WHERE url LIKE '%login%'"),
    ("wide", "SELECT * FROM {t} WHERE username = 'user0042' ORDER BY ts, source_line LIMIT 50"),
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let lake = Lake::open(args.next().expect("LAKE").as_ref())?;
    let reps: usize = args.next().map_or(Ok(5), |s| s.parse())?;
    trawl::runtime().block_on(async move {
        let engine = Engine::new(&lake).await?;
        let ctx: &SessionContext = engine.ctx();
        let table = lake.load_table(&PROXY).await?.expect("a proxy table");
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table("delta_proxy", table.table_provider().await?)?;
        let first = |sql: &str| {
            let sql = sql.to_string();
            async move {
                let b = ctx.sql(&sql).await?.collect().await?;
                anyhow::Ok(pretty_format_batches(&b)?.to_string())
            }
        };
        let day = first("SELECT min(date) FROM proxy").await?;
        let day = day.lines().nth(3).unwrap_or_default().trim_matches(|c| c == '|' || c == ' ').to_string();
        let (from, to) = (format!("{day}T03:00:00Z"), format!("{day}T09:00:00Z"));
        println!("{:<10} {:>10} {:>10} {:>7}", "query", "ours s", "delta-rs s", "ratio");
        let mut ratios = Vec::new();
        for (name, template) in QUERIES {
            let sql = |t: &str| {
                template
                    .replace("{t}", t)
                    .replace("{day}", &day)
                    .replace("{from}", &from)
                    .replace("{to}", &to)
            };
            let (ours, theirs) = (sql("proxy"), sql("delta_proxy"));
            let (x, y) = (first(&ours).await?, first(&theirs).await?);
            anyhow::ensure!(x == y, "{name}: results differ\n{x}\n{y}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                for (sql, times) in [(&ours, &mut a), (&theirs, &mut b)] {
                    let t = Instant::now();
                    ctx.sql(sql).await?.collect().await?;
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (a, b) = (median(&mut a), median(&mut b));
            ratios.push(a / b);
            println!("{name:<10} {a:>10.3} {b:>10.3} {:>7.2}", a / b);
        }
        let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        println!("geometric mean of ratios: {geo:.2}");
        anyhow::Ok(())
    })
}
