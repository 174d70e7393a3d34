//! The only place that builds a DataFusion session: lake tables, trawl's SQL functions, the
//! read-only rule for user SQL, and the limits every statement runs under (memory, and the stack
//! that deep expressions need). SQL is planned and run through [`Engine`] only, never on a
//! caller's thread, so no statement can overflow a small stack and abort the process.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::config::ConfigOptions;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::scalar::ScalarValue;

pub mod cluster;
pub mod functions;
pub mod geoip;
pub mod materialize;
pub mod rewrite;
mod tables;
pub mod views;

pub use cluster::Scheduler;
pub use functions::reg_domain;
pub use geoip::GeoIp;

use crate::error::LakeError;
use crate::lake::Lake;
use crate::schema::{DATE_COLUMN, TableSpec, all_tables};
use tables::LakeTable;

/// Errors from running SQL, with what the user can do about them.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(
        "{message}\n\ntables in this lake: {tables}\n(see columns with: trawl query --lake <LAKE> --schema)"
    )]
    Sql { message: String, tables: String },
    #[error("{0}")]
    ReadOnly(String),
    #[error("{}", memory_advice(*limit, *explicit))]
    Memory { limit: u64, explicit: bool },
    /// A cluster that cannot be reached, or a request it cannot serve.
    #[error("{0}")]
    Cluster(String),
    #[error(
        "this SQL has {tokens} tokens, more than the {MAX_SQL_TOKENS} trawl plans in one statement (an \
         expression that long would exhaust the planner's stack): put a long list of values in a pack \
         list (lists/NAME.txt) and match it with `IN (SELECT entry FROM NAME)` or a join"
    )]
    TooLong { tokens: usize },
}

/// Stack of every thread SQL is planned and run on. DataFusion and delta-rs recurse once per
/// operand of a long `OR` chain or `IN` list (delta-rs turns `IN` into `OR`s to prune files),
/// at one to a few KiB a level: a 99,000-item `IN` list (just under [`MAX_SQL_TOKENS`]) plans
/// and runs in 256 MiB even in a debug build. Only the pages a statement touches are committed.
pub const SQL_STACK_BYTES: usize = 256 << 20;

/// Longest statement, in SQL tokens, that is planned; longer ones are refused with advice
/// rather than risking the stack (a 30,000-item indicator list is about 60,000 tokens).
pub const MAX_SQL_TOKENS: usize = 200_000;

/// Share of the machine's memory (or its cgroup's limit) queries may use by default.
const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// What to do when a query hit the memory limit, by where the limit came from.
fn memory_advice(limit: u64, explicit: bool) -> String {
    let size = |b: u64| {
        if b >= 1 << 30 {
            format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
        } else {
            format!("{} MiB", b >> 20)
        }
    };
    let filter = "add a filter (--since/--until, or a condition on date) so it reads less";
    if explicit {
        format!(
            "the query needs more than {}, the --memory-limit given: raise it (--memory-limit {}) or {filter}",
            size(limit),
            size(limit.saturating_mul(2)).replace(' ', "").trim_end_matches("iB")
        )
    } else {
        format!(
            "the query needs more than {}, half of this machine's memory (the default limit): {filter}, \
             or raise --memory-limit (75%, say)",
            size(limit)
        )
    }
}

/// Memory queries may use before operators spill to disk or the query stops with
/// [`QueryError::Memory`]: `None` gives half of the machine's memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryLimit(pub Option<u64>);

impl MemoryLimit {
    /// Reads `--memory-limit`: `8G`, `512M`, `1.5GB`, `2GiB` (units of 1024), or `25%` of the
    /// machine's memory.
    pub fn parse(s: &str) -> Result<MemoryLimit, String> {
        let t = s.trim();
        let bad = || format!("{s:?}: give a size such as 8G, 512M or 1.5G, or a share of memory such as 25%");
        let bytes = if let Some(pct) = t.strip_suffix('%') {
            let p: f64 = pct.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            machine_memory() as f64 * p / 100.0
        } else {
            let upper = t.to_ascii_uppercase();
            let digits = upper.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = upper[digits.len()..].trim_end_matches("IB").trim_end_matches('B');
            let scale: u64 = match unit {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(bad()),
            };
            let v: f64 = digits.trim().parse().map_err(|_| bad())?;
            if !(v.is_finite() && v > 0.0) {
                return Err(bad());
            }
            v * scale as f64
        };
        if bytes < (16 << 20) as f64 {
            return Err(format!("{s:?}: at least 16M, or no query can run"));
        }
        Ok(MemoryLimit(Some(bytes as u64)))
    }

    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        self.0.unwrap_or_else(|| (machine_memory() as f64 * DEFAULT_MEMORY_SHARE) as u64)
    }
}

/// Physical memory, or the cgroup's limit when that is lower (containers); 8 GiB when neither
/// can be read.
fn machine_memory() -> u64 {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let total = read("/proc/meminfo")
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(8 << 30);
    let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .filter_map(|p| read(p)?.trim().parse::<u64>().ok())
        .min();
    cgroup.map_or(total, |c| c.min(total))
}

/// A session over one lake, with every table registered.
pub struct Engine {
    ctx: SessionContext,
    tables: Vec<String>,
    tz: Tz,
    restricted: bool,
    memory: MemoryLimit,
    geoip: Option<Arc<GeoIp>>,
    /// The scheduler statements run on, if not here.
    cluster: Option<Scheduler>,
    /// How long a statement on the cluster may take before it is given up as stalled.
    cluster_timeout: Duration,
    /// On a cluster (and only there), how results computed ahead travel to the executors.
    shipping: Option<Arc<cluster::Shipping>>,
}

/// A statement on a cluster still unfinished after this long is taken as stalled: Ballista's
/// client would otherwise poll the job's status forever.
pub const DEFAULT_CLUSTER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl Engine {
    /// Opens the lake's Delta tables and registers them, with trawl's functions.
    pub async fn new(lake: &Lake) -> Result<Engine, QueryError> {
        Self::with_memory(lake, MemoryLimit::default()).await
    }

    /// The same, with queries limited to `memory`.
    pub async fn with_memory(lake: &Lake, memory: MemoryLimit) -> Result<Engine, QueryError> {
        Self::connect(lake, memory, None).await
    }

    /// The same, with statements run on the Ballista cluster whose scheduler is `cluster` (the
    /// session is planned here, over the same tables; see [`cluster`]), or here when None.
    pub async fn connect(
        lake: &Lake,
        memory: MemoryLimit,
        cluster: Option<&Scheduler>,
    ) -> Result<Engine, QueryError> {
        Self::open(lake, &all_tables(), memory, cluster).await
    }

    /// The same, with only some of the lake's tables: loading a Delta log costs with its size,
    /// and ingest reading its ledger needs none of the data tables.
    pub async fn with_tables(lake: &Lake, specs: &[&TableSpec]) -> Result<Engine, QueryError> {
        Self::open(lake, specs, MemoryLimit::default(), None).await
    }

    async fn open(
        lake: &Lake,
        specs: &[&TableSpec],
        memory: MemoryLimit,
        cluster: Option<&Scheduler>,
    ) -> Result<Engine, QueryError> {
        let ctx = Self::context(memory, cluster).await?;
        // An S3 lake's files are read through the lake's own client (its credentials, endpoint
        // and I/O runtime); tables name them as s3://bucket/key.
        if let Some((url, store)) = lake.object_store() {
            ctx.register_object_store(&url, store);
        }
        let mut tables = Vec::new();
        for spec in specs {
            let Some(table) = lake.load_table(spec).await? else {
                continue;
            };
            let files = lake.scan_files(spec, &table)?;
            let sql = |e: DataFusionError| QueryError::Sql { message: e.to_string(), tables: String::new() };
            let opening = |e: DataFusionError| QueryError::Sql {
                message: format!("opening table {}: {e}", spec.table),
                tables: String::new(),
            };
            let provider: Arc<dyn TableProvider> = Arc::new(LakeTable::new(spec, files).map_err(opening)?);
            // Baselines compare a time range with everything else in the lake, which --since and
            // --until must not hide: `<table>_history` is never restricted.
            if spec.partition_by_date {
                ctx.register_table(views::history_name(&spec.table), provider.clone()).map_err(sql)?;
            }
            ctx.register_table(spec.table.as_str(), provider).map_err(sql)?;
            tables.push(spec.table.clone());
        }
        let mut engine = Self::with_builtins(ctx, tables, lake.tz(), memory, cluster.cloned()).await?;
        engine.shipping = cluster.map(|_| Arc::new(cluster::Shipping::new(lake.scratch())));
        Ok(engine)
    }

    /// A session with every table of the lake layout present but empty: SQL plans against it
    /// exactly as against a lake (`trawl detect --lint` checks packs with no lake at hand).
    pub async fn offline(tz: Tz) -> Result<Engine, QueryError> {
        let memory = MemoryLimit::default();
        let ctx = Self::context(memory, None).await?;
        let mut tables = Vec::new();
        let sql = |e: DataFusionError| QueryError::Sql { message: e.to_string(), tables: String::new() };
        for spec in all_tables() {
            let empty = RecordBatch::new_empty(spec.table_schema());
            if spec.partition_by_date {
                ctx.register_batch(views::history_name(&spec.table), empty.clone()).map_err(sql)?;
            }
            ctx.register_batch(spec.table.as_str(), empty).map_err(sql)?;
            tables.push(spec.table.clone());
        }
        Self::with_builtins(ctx, tables, tz, memory, None).await
    }

    /// The session configuration every engine starts from, for a session here or a cluster's
    /// client.
    async fn context(memory: MemoryLimit, cluster: Option<&Scheduler>) -> Result<SessionContext, QueryError> {
        let sql =
            |e: DataFusionError| QueryError::Sql { message: e.strip_backtrace(), tables: String::new() };
        // DATAFUSION_* variables (as datafusion-cli reads them) tune the session without a
        // rebuild, e.g. DATAFUSION_EXECUTION_BATCH_SIZE; target_partitions defaults to the cores.
        let options = ConfigOptions::from_env().map_err(sql)?;
        let config = SessionConfig::from(options).with_information_schema(true);
        // Sorts, aggregates and joins share the pool fairly and spill to the OS temp folder
        // when it is full; what cannot spill (a cross join's build side) stops the query with
        // the largest consumers named, instead of taking the machine's memory.
        let pool = FairSpillPool::new(usize::try_from(memory.bytes()).unwrap_or(usize::MAX));
        let top = NonZeroUsize::new(3).expect("3 is not zero");
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(TrackConsumersPool::new(pool, top)))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
            )
            .build_arc()
            .map_err(sql)?;
        let Some(scheduler) = cluster else {
            return Ok(SessionContext::new_with_config_rt(config, runtime));
        };
        use ballista::prelude::SessionContextExt;
        scheduler.check_reachable().await.map_err(QueryError::Cluster)?;
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(cluster::config(config))
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        SessionContext::remote_with_state(&scheduler.url(), state).await.map_err(sql)
    }

    /// trawl's functions and built-in lookup tables, on top of the lake's tables.
    async fn with_builtins(
        ctx: SessionContext,
        tables: Vec<String>,
        tz: Tz,
        memory: MemoryLimit,
        cluster: Option<Scheduler>,
    ) -> Result<Engine, QueryError> {
        // After the session is made: Ballista's client resets the function list to its own.
        functions::register_functions(&ctx, tz, None);
        let mut engine = Engine {
            ctx,
            tables,
            tz,
            restricted: false,
            memory,
            geoip: None,
            cluster_timeout: cluster.as_ref().and_then(|s| s.timeout).unwrap_or(DEFAULT_CLUSTER_TIMEOUT),
            cluster,
            shipping: None,
        };
        engine.register_batch("ifilter_categories", ifilter_categories())?;
        // Present and empty until `--allow` lists replace it, so detections can always join it.
        engine.register_batch(ALLOW_DOMAINS, RecordBatch::new_empty(allow_domains_schema()))?;
        views::register(&engine.ctx, false).await.map_err(|e| engine.explain(e))?;
        Ok(engine)
    }

    /// Gives `ip_country`, `ip_asn` and `ip_org` these databases to look addresses up in.
    /// Refused on a cluster, whose executors would find no databases and answer NULL.
    pub fn set_geoip(&mut self, geoip: Arc<GeoIp>) -> Result<(), QueryError> {
        if let Some(s) = &self.cluster {
            return Err(QueryError::Cluster(format!(
                "--geoip databases are read on this machine only, and the executors of the cluster at {} \
                 would answer NULL for every address: run without --cluster to use them",
                s.addr()
            )));
        }
        functions::register_functions(&self.ctx, self.tz, Some(Arc::clone(&geoip)));
        self.geoip = Some(geoip);
        Ok(())
    }

    /// The scheduler statements run on, when they run on a cluster.
    pub fn cluster(&self) -> Option<&Scheduler> {
        self.cluster.as_ref()
    }

    /// The databases `set_geoip` gave, if any: detections and the report add country and
    /// network columns only when there is one to read them from.
    pub fn geoip(&self) -> Option<&GeoIp> {
        self.geoip.as_deref()
    }

    /// Registers an in-memory table, replacing one of the same name (a pack's own list, say).
    pub fn register_batch(&mut self, name: &str, batch: RecordBatch) -> Result<(), QueryError> {
        let sql = |e: DataFusionError| QueryError::Sql { message: e.to_string(), tables: String::new() };
        self.ctx.deregister_table(name).map_err(sql)?;
        self.ctx.register_batch(name, batch).map_err(sql)?;
        if !self.tables.iter().any(|t| t == name) {
            self.tables.push(name.to_string());
        }
        Ok(())
    }

    /// Limits every time-partitioned table to `range`: each is replaced by a view filtering `ts`
    /// and `date` (which prunes partition files), so SQL over it needs no time conditions.
    pub async fn restrict(&mut self, range: &TimeRange) -> Result<(), QueryError> {
        if range.since.is_none() && range.until.is_none() {
            return Ok(());
        }
        let utc = |us: i64| lit(ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into())));
        let day = |us: i64| lit(local_day(self.tz, us));
        for spec in all_tables().into_iter().filter(|s| s.partition_by_date) {
            let name = spec.table.as_str();
            if !self.tables.iter().any(|t| t == name) {
                continue;
            }
            let mut conditions = Vec::new();
            if let Some(s) = range.since {
                conditions.push(col("ts").gt_eq(utc(s)));
                conditions.push(col(DATE_COLUMN).gt_eq(day(s)));
            }
            if let Some(u) = range.until {
                conditions.push(col("ts").lt(utc(u)));
                conditions.push(col(DATE_COLUMN).lt_eq(day(u - 1)));
            }
            let df = self.ctx.table(name).await.map_err(|e| self.explain(e))?;
            let filter = conditions.into_iter().reduce(Expr::and).expect("at least one bound");
            let view = df.filter(filter).map_err(|e| self.explain(e))?.into_view();
            self.ctx.deregister_table(name).map_err(|e| self.explain(e))?;
            self.ctx.register_table(name, view).map_err(|e| self.explain(e))?;
        }
        // The views were planned over the unrestricted tables; plan them again over the range.
        views::register(&self.ctx, true).await.map_err(|e| self.explain(e))?;
        self.restricted = true;
        Ok(())
    }

    /// The lake's time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Whether `restrict` limited the tables to a time range.
    pub fn restricted(&self) -> bool {
        self.restricted
    }

    /// The underlying session (for tests and the detection runner).
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// Names of the registered tables.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Plans a read-only statement: DDL, DML, COPY and SET are refused. The plan is made on a
    /// large-stack thread; prefer [`Engine::collect`] and [`Engine::check`], which also run and
    /// drop it there.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame, QueryError> {
        let ctx = self.ctx.clone();
        let sql = self.admit(sql)?;
        let shipping = self.shipping.clone();
        self.on_sql_thread(async move { Self::plan_once(&ctx, &sql, shipping).await }).await
    }

    /// Plans and runs a read-only statement: its schema and its batches.
    pub async fn collect(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
        let ctx = self.ctx.clone();
        let sql = self.admit(sql)?;
        let shipping = self.shipping.clone();
        self.on_sql_thread(async move {
            let df = Self::plan_once(&ctx, &sql, shipping).await?;
            let schema = df.schema().inner().clone();
            Ok((schema, df.collect().await?))
        })
        .await
    }

    /// The schema of a read-only statement's results, planned and not run.
    pub async fn schema(&self, sql: &str) -> Result<SchemaRef, QueryError> {
        let ctx = self.ctx.clone();
        let sql = self.admit(sql)?;
        self.on_sql_thread(async move { Ok(Self::plan(&ctx, &sql).await?.schema().inner().clone()) }).await
    }

    /// Plans a read-only statement down to a physical plan without running it, so syntax,
    /// unknown tables or columns and type errors show.
    pub async fn check(&self, sql: &str) -> Result<(), QueryError> {
        let ctx = self.ctx.clone();
        let sql = self.admit(sql)?;
        self.on_sql_thread(async move {
            Self::plan(&ctx, &sql).await?.create_physical_plan().await?;
            Ok(())
        })
        .await
    }

    fn options() -> SQLOptions {
        SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> Result<DataFrame, DataFusionError> {
        plan_sql(ctx, sql, Self::options()).await
    }

    /// Plans a statement to be run, with each CTE it reads more than once computed once (on a
    /// cluster, before the statement is sent, shipped as `shipping` says).
    async fn plan_once(
        ctx: &SessionContext,
        sql: &str,
        shipping: Option<Arc<cluster::Shipping>>,
    ) -> Result<DataFrame, DataFusionError> {
        let df = materialize::plan(ctx, sql, Self::options()).await?;
        if let Some(shipping) = shipping {
            materialize::compute_ahead(&ctx.state(), df.logical_plan(), &shipping).await?;
        }
        Ok(df)
    }

    /// Refuses a statement too long to plan safely, before any recursion starts.
    fn admit(&self, sql: &str) -> Result<String, QueryError> {
        use datafusion::sql::sqlparser::dialect::GenericDialect;
        use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
        // Only a statement that could be too long is tokenized (a token is at least a byte).
        if sql.len() > MAX_SQL_TOKENS {
            let mut buf = Vec::new();
            // A statement that does not tokenize fails in the planner, with its message.
            let _ = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location_into_buf(&mut buf);
            let tokens = buf.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).count();
            if tokens > MAX_SQL_TOKENS {
                return Err(QueryError::TooLong { tokens });
            }
        }
        Ok(sql.to_string())
    }

    /// Runs `work` as a task of the runtime, whose threads have [`SQL_STACK_BYTES`] of stack
    /// (see `crate::runtime`), wherever the caller runs; the plan is dropped there too. A panic
    /// in DataFusion becomes this statement's error, not the process's end.
    async fn on_sql_thread<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, DataFusionError>> + Send + 'static,
    ) -> Result<T, QueryError> {
        let mut task = tokio::spawn(work);
        let done = match &self.cluster {
            None => (&mut task).await,
            Some(s) => match tokio::time::timeout(self.cluster_timeout, &mut task).await {
                Ok(done) => done,
                Err(_) => {
                    task.abort();
                    return Err(QueryError::Cluster(format!(
                        "the statement did not finish on the cluster at {} within {} s: either no \
                         executor is registered with the scheduler (start one with `trawl cluster executor \
                         --scheduler {}`) or the job stalled (see the scheduler's and executors' stderr; \
                         run without --cluster to compare)",
                        s.addr(),
                        self.cluster_timeout.as_secs(),
                        s.addr()
                    )));
                }
            },
        };
        match done {
            Ok(r) => r.map_err(|e| self.explain(e)),
            Err(e) => Err(QueryError::Sql {
                message: format!("the query engine failed on this statement: {e}"),
                tables: String::new(),
            }),
        }
    }

    /// On a cluster, sends every result computed ahead as a scratch file, however small (tests
    /// of that path on small lakes).
    #[doc(hidden)]
    pub fn ship_every_result_as_a_file_for_tests(&self) {
        if let Some(s) = &self.shipping {
            s.set_max_rows_bytes(0);
        }
    }

    /// Scratch files this cluster session has written (0 here).
    #[doc(hidden)]
    pub fn scratch_files_written(&self) -> usize {
        self.shipping.as_ref().map_or(0, |s| s.files_written())
    }

    /// Sets how long a statement on the cluster may run before it fails as stalled.
    pub fn set_cluster_timeout(&mut self, timeout: Duration) {
        self.cluster_timeout = timeout;
    }

    /// Turns a DataFusion error into one that names the tables to pick from.
    pub fn explain(&self, e: DataFusionError) -> QueryError {
        if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
            return QueryError::Memory { limit: self.memory.bytes(), explicit: self.memory.0.is_some() };
        }
        let message = e.strip_backtrace();
        if message.contains("not supported")
            && (message.contains("DDL") || message.contains("DML") || message.contains("Statement"))
        {
            return QueryError::ReadOnly(format!(
                "refused: trawl's SQL is read-only ({message}); use -o FILE to save results"
            ));
        }
        let tables = if self.tables.is_empty() { "(none yet)".to_string() } else { self.tables.join(", ") };
        QueryError::Sql { message, tables }
    }
}

/// Parses one statement, reshapes its long `OR`/`AND` chains (see [`rewrite`]), plans it and
/// checks it against `options` (read-only statements only, in trawl).
pub(crate) async fn plan_sql(
    ctx: &SessionContext,
    sql: &str,
    options: SQLOptions,
) -> Result<DataFrame, DataFusionError> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(sql, &dialect)?;
    rewrite::reshape(&mut statement);
    let plan = state.statement_to_plan(statement).await?;
    options.verify_plan(&plan)?;
    ctx.execute_logical_plan(plan).await
}

/// A time range over `ts`: `since` inclusive, `until` exclusive, microseconds since the epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    /// Reads `--since`/`--until`: RFC 3339 (`2024-05-01T09:00:00+09:00`), a local
    /// `YYYY-MM-DD HH:MM[:SS]`, or a date `YYYY-MM-DD` in the lake's zone. A date as `until`
    /// includes that whole day.
    pub fn parse(since: Option<&str>, until: Option<&str>, tz: Tz) -> Result<TimeRange, String> {
        let since = since.map(|s| parse_instant(s, tz, false).map_err(|e| format!("--since {s:?}: {e}")));
        let until = until.map(|s| parse_instant(s, tz, true).map_err(|e| format!("--until {s:?}: {e}")));
        let range = TimeRange { since: since.transpose()?, until: until.transpose()? };
        if let (Some(s), Some(u)) = (range.since, range.until)
            && s >= u
        {
            return Err("--since must be before --until".into());
        }
        Ok(range)
    }
}

fn parse_instant(s: &str, tz: Tz, end_of_day: bool) -> Result<i64, String> {
    use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, TimeZone};
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    let local = if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day { d.checked_add_days(Days::new(1)).ok_or("date out of range")? } else { d };
        d.and_hms_opt(0, 0, 0).ok_or("date out of range")?
    } else {
        ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .ok_or("use RFC 3339 (2024-05-01T09:00:00+09:00), YYYY-MM-DD HH:MM[:SS] or YYYY-MM-DD")?
    };
    // A wall time skipped by a DST change is taken at the first instant after the gap.
    let t = tz
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .ok_or("no such local time in the lake's zone")?;
    Ok(t.timestamp_micros())
}

/// The lake-zone date (`YYYY-MM-DD`, as in the `date` partition column) of an instant.
fn local_day(tz: Tz, us: i64) -> String {
    use chrono::TimeZone;
    tz.timestamp_micros(us).single().map(|t| t.date_naive().to_string()).unwrap_or_default()
}

/// The table of known-benign or popular domains (`--allow` lists): one column, `domain`.
pub const ALLOW_DOMAINS: &str = "allow_domains";

/// Schema of `allow_domains`.
pub fn allow_domains_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    Arc::new(Schema::new(vec![Field::new("domain", DataType::Utf8, false)]))
}

/// i-FILTER's URL categories (`schemas/ifilter-categories.tsv`): id, Japanese and English name.
pub fn ifilter_categories() -> RecordBatch {
    let tsv = include_str!("../../schemas/ifilter-categories.tsv");
    let (mut ids, mut ja, mut en) = (Vec::new(), Vec::new(), Vec::new());
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut f = line.split('\t');
        let (Some(id), Some(j), Some(e)) = (f.next(), f.next(), f.next()) else { continue };
        let Ok(id) = id.trim().parse::<i32>() else { continue };
        ids.push(id);
        ja.push(j.to_string());
        en.push(e.to_string());
    }
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int32Array::from(ids)) as ArrayRef),
        ("name_ja", Arc::new(StringArray::from(ja)) as ArrayRef),
        ("name_en", Arc::new(StringArray::from(en)) as ArrayRef),
    ])
    .expect("three columns of equal length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_read_as_sizes_or_shares() {
        assert_eq!(MemoryLimit::parse("8G"), Ok(MemoryLimit(Some(8 << 30))));
        assert_eq!(MemoryLimit::parse("512m"), Ok(MemoryLimit(Some(512 << 20))));
        assert_eq!(MemoryLimit::parse("1.5GiB"), Ok(MemoryLimit(Some(3 << 29))));
        assert_eq!(MemoryLimit::parse("2GB"), Ok(MemoryLimit(Some(2 << 30))));
        let half = MemoryLimit::parse("50%").unwrap().bytes();
        assert_eq!(half, MemoryLimit::default().bytes());
        for bad in ["lots", "0", "-1G", "150%", "8X", "1K"] {
            assert!(MemoryLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn category_table_names_job_sites_storage_and_webmail() {
        let b = ifilter_categories();
        assert_eq!(b.num_rows(), 101);
        let ids = b.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        let ja = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let name = |id: i32| ja.value(ids.iter().position(|v| v == Some(id)).unwrap()).to_string();
        assert_eq!(name(50), "求人情報");
        assert_eq!(name(57), "Webメール");
        assert_eq!(name(83), "オンラインストレージ");
    }
}
