//! Results computed once per statement or session instead of once per reference.
//!
//! DataFusion inlines a common table expression (and a view) at every place that names it, so a
//! CTE the rest of a detection reads twice is computed twice, scans and all; DuckDB materialises
//! such CTEs. [`split_ctes`] finds the CTEs a statement reads more than once and [`Materialized`]
//! is the table that stands in for each: computed the first time a plan scans it, then kept in
//! memory reserved from the session's pool. A result that does not fit the pool is not kept: every
//! scan then computes it again, as inlining would, so materialising never turns a query that
//! worked into one that runs out of memory.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::error::Result;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Statement, TableAlias, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

use super::cluster::Shipping;
use crate::lake::ScratchFile;

/// A table computed from `plan` the first time it is scanned and kept for the later scans.
#[derive(Debug)]
pub struct Materialized {
    name: String,
    plan: LogicalPlan,
    schema: SchemaRef,
    held: OnceCell<Held>,
}

/// What is kept of a materialised result once computed.
#[derive(Debug)]
enum Held {
    /// Its batches, with the pool memory they hold.
    Rows { batches: Vec<RecordBatch>, _reservation: MemoryReservation },
    /// A Parquet file a cluster's executors read, for a result too large to travel inside
    /// every plan that reads it (see `cluster`).
    File(ScratchFile),
    /// Nothing: it outgrew the memory pool, and every scan computes it again.
    Nothing,
}

impl Materialized {
    /// A table named `name` (in the memory pool's reports) standing in for `plan`, which must be
    /// optimized: only then does its schema have the types its batches will have (coercions are
    /// made by the analyzer).
    pub fn new(name: &str, plan: LogicalPlan) -> Materialized {
        let schema = plan.schema().inner().clone();
        Materialized { name: name.to_string(), plan, schema, held: OnceCell::new() }
    }

    /// Its name, as the memory pool's reports and a scratch file's name show it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The plan it stands in for (a cluster inlines it when its rows are not at hand: see
    /// `cluster`).
    pub(crate) fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// Its rows, once computed and kept in memory.
    pub(crate) fn kept(&self) -> Option<&[RecordBatch]> {
        match self.held.get()? {
            Held::Rows { batches, .. } => Some(batches),
            _ => None,
        }
    }

    /// The scratch file its rows were written to, on a cluster.
    pub(crate) fn file(&self) -> Option<&ScratchFile> {
        match self.held.get()? {
            Held::File(f) => Some(f),
            _ => None,
        }
    }

    /// Runs the plan and keeps its batches, or nothing when they outgrow the memory pool.
    async fn compute(&self, state: &dyn Session) -> Result<Held> {
        let reservation = MemoryConsumer::new(format!("materialized {}", self.name))
            .register(&state.runtime_env().memory_pool);
        let physical = state.create_physical_plan(&self.plan).await?;
        let mut stream = execute_stream(physical, state.task_ctx())?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = compact(batch?)?;
            if reservation.try_grow(batch.get_array_memory_size()).is_err() {
                return Ok(Held::Nothing);
            }
            batches.push(batch);
        }
        Ok(Held::Rows { batches, _reservation: reservation })
    }

    /// Computes it for a cluster session: rows too large to travel inside a plan are written
    /// to the session's scratch folder and their memory given back.
    async fn compute_for_cluster(&self, state: &dyn Session, shipping: &Shipping) -> Result<Held> {
        match self.compute(state).await? {
            Held::Rows { batches, .. } if !shipping.ships_in_plan(&batches) => {
                let batches = batches.iter().map(|b| conform(&self.schema, b)).collect::<Result<Vec<_>>>()?;
                match shipping.scratch().write(&self.name, &self.schema, &batches) {
                    Ok(file) => Ok(Held::File(file)),
                    // A lake this client may only read still answers: each stage reading the
                    // result computes it again instead.
                    Err(e) => {
                        eprintln!(
                            "warning: {} ({} rows) is computed again wherever it is read on the cluster: \
                             writing it for the executors failed: {e}",
                            self.name,
                            batches.iter().map(|b| b.num_rows()).sum::<usize>()
                        );
                        Ok(Held::Nothing)
                    }
                }
            }
            held => Ok(held),
        }
    }
}

/// `batch` under `schema`: a computed result's batches can differ from its plan's schema (a
/// dictionary-encoded lake column the plan declares as plain strings, or the other way round),
/// which a local scan tolerates and an IPC decoder or a Parquet file's readers do not.
pub(crate) fn conform(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| match c.data_type() == f.data_type() {
            true => Ok(c.clone()),
            false => datafusion::arrow::compute::cast(c, f.data_type()),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Computes every [`Materialized`] table `plan` reads, and those they read, that is not yet: on a
/// cluster nothing scans them on the client, so without this a plan would carry each as its
/// plan, computed again in every stage that reads it (a detection reading `proxy_copies` three
/// times paid its self-join three times, on every detection). Each runs through `state`, so on
/// a cluster it runs there, once per session; its rows then travel with the plans that read it,
/// or, when too many for that, as a file in the session's scratch folder of the lake.
pub(crate) async fn compute_ahead(
    state: &dyn Session,
    plan: &LogicalPlan,
    shipping: &Shipping,
) -> Result<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::source_as_provider;
    let mut found: Vec<Arc<dyn TableProvider>> = Vec::new();
    plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(scan) = p
            && let Ok(provider) = source_as_provider(&scan.source)
            && provider.downcast_ref::<Materialized>().is_some()
        {
            found.push(provider);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for provider in found {
        let m = provider.downcast_ref::<Materialized>().expect("kept only if Materialized");
        if m.held.initialized() {
            continue;
        }
        Box::pin(compute_ahead(state, &m.plan, shipping)).await?;
        m.held.get_or_try_init(|| m.compute_for_cluster(state, shipping)).await?;
    }
    Ok(())
}

/// The batch with only the bytes its rows use: string views read from Parquet point into whole
/// pages, which kept as they are would hold (and count) each page once per batch that uses it.
fn compact(batch: RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, AsArray};
    use datafusion::arrow::datatypes::DataType;
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => c.clone(),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

#[async_trait]
impl TableProvider for Materialized {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match self.held.get_or_try_init(|| self.compute(state)).await? {
            Held::Rows { batches, .. } => {
                let source = MemorySourceConfig::try_new(
                    std::slice::from_ref(batches),
                    self.schema.clone(),
                    projection.cloned(),
                )?;
                Ok(DataSourceExec::from_data_source(source))
            }
            // A scratch file is for the executors; a client planning here computes it again.
            Held::File(_) | Held::Nothing => {
                let physical = state.create_physical_plan(&self.plan).await?;
                match projection {
                    None => Ok(physical),
                    Some(columns) => project(physical, columns),
                }
            }
        }
    }
}

/// The chosen columns of a plan's output, in the order asked.
fn project(plan: Arc<dyn ExecutionPlan>, columns: &[usize]) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::projection::ProjectionExec;
    let schema = plan.schema();
    let exprs = columns
        .iter()
        .map(|&i| {
            let name = schema.field(i).name().clone();
            (Arc::new(Column::new(&name, i)) as _, name)
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// Plans `sql` with each CTE it reads more than once computed once ([`split_ctes`]); SQL whose
/// split form does not plan is planned as written, so the planner's message is about the SQL the
/// user wrote.
pub async fn plan(ctx: &SessionContext, sql: &str, options: SQLOptions) -> Result<DataFrame> {
    let Some(split) = split_ctes(sql) else { return super::plan_sql(ctx, sql, options).await };
    let mut registered = Vec::new();
    let planned = async {
        for (name, cte) in &split.ctes {
            let plan = super::plan_sql(ctx, cte, options).await?.into_optimized_plan()?;
            ctx.register_table(name, Arc::new(Materialized::new(name, plan)))?;
            registered.push(name);
        }
        super::plan_sql(ctx, &split.statement, options).await
    }
    .await;
    // The plan holds the tables it reads; their names are not needed past planning.
    for name in registered {
        ctx.deregister_table(name)?;
    }
    match planned {
        Ok(df) => Ok(df),
        Err(_) => super::plan_sql(ctx, sql, options).await,
    }
}

/// A statement split into the CTEs worth computing once and what reads them.
#[derive(Debug)]
pub struct Split {
    /// (table name to register, SQL of the CTE's query) in the order they must be planned.
    pub ctes: Vec<(String, String)>,
    /// The statement reading those tables in place of the CTEs.
    pub statement: String,
}

/// Names of materialised CTEs are unique per process, so statements planned at once never meet.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The CTEs of a query's top-level WITH that the rest of it reads more than once, each rewritten
/// as a statement of its own (with the earlier CTEs it needs), and the query reading them under
/// their new names. None when there is nothing to gain (no such CTE, not a plain query, a
/// recursive WITH, or SQL this parser does not read: the planner then says what is wrong).
pub fn split_ctes(sql: &str) -> Option<Split> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    let [Statement::Query(query)] = statements.as_mut_slice() else { return None };
    let mut with = query.with.take()?;
    if with.recursive {
        return None;
    }
    let names: Vec<String> = with.cte_tables.iter().map(|c| c.alias.name.value.to_lowercase()).collect();
    // References to each CTE from the CTEs after it and from the body (a name before its CTE is
    // another table's).
    let mut counts = vec![0usize; names.len()];
    for (k, name) in names.iter().enumerate() {
        if !with.cte_tables[k].alias.columns.is_empty() {
            continue;
        }
        let mut count = Count { name, n: 0 };
        for cte in &with.cte_tables[k + 1..] {
            let _ = Visit::visit(&*cte.query, &mut count);
        }
        let _ = Visit::visit(&**query, &mut count);
        counts[k] = count.n;
    }
    if counts.iter().all(|&n| n < 2) {
        return None;
    }
    let mut ctes = Vec::new();
    let mut kept = Vec::new();
    let mut tables = std::mem::take(&mut with.cte_tables).into_iter().enumerate().collect::<Vec<_>>();
    for k in 0..tables.len() {
        if counts[k] < 2 {
            kept.push(tables[k].1.clone());
            continue;
        }
        let table = format!("__trawl_cte_{}_{}", NEXT.fetch_add(1, Ordering::Relaxed), names[k]);
        let mut rename = Rename { from: &names[k], to: &table };
        for (_, later) in &mut tables[k + 1..] {
            let _ = VisitMut::visit(&mut *later.query, &mut rename);
        }
        let _ = VisitMut::visit(&mut **query, &mut rename);
        // The CTE's own statement carries the kept CTEs before it, which it may read.
        let mut own = (*tables[k].1.query).clone();
        if !kept.is_empty() {
            let mut inner = own.with.take().unwrap_or_else(|| {
                let mut w = with.clone();
                w.cte_tables.clear();
                w
            });
            inner.cte_tables.splice(0..0, kept.iter().cloned());
            own.with = Some(inner);
        }
        ctes.push((table, own.to_string()));
    }
    if !kept.is_empty() {
        with.cte_tables = kept;
        query.with = Some(with);
    }
    Some(Split { ctes, statement: query.to_string() })
}

/// Whether a table factor names the CTE `name` (unquoted names are case-insensitive).
fn names_cte(relation: &ObjectName, name: &str) -> bool {
    match relation.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => {
            if id.quote_style.is_some() {
                id.value == name
            } else {
                id.value.to_lowercase() == name
            }
        }
        _ => false,
    }
}

struct Count<'a> {
    name: &'a str,
    n: usize,
}

impl Visitor for Count<'_> {
    type Break = ();
    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if names_cte(relation, self.name) {
            self.n += 1;
        }
        ControlFlow::Continue(())
    }
}

/// Points references to a CTE at its materialised table, keeping the name they were read by.
struct Rename<'a> {
    from: &'a str,
    to: &'a str,
}

impl VisitorMut for Rename<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = factor
            && names_cte(name, self.from)
        {
            if alias.is_none() {
                *alias = Some(TableAlias {
                    explicit: true,
                    name: Ident::new(self.from),
                    columns: vec![],
                    at: None,
                });
            }
            *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(self.to))]);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cte_read_twice_is_split_out_and_read_under_its_old_name() {
        let s = split_ctes(
            "WITH a AS (SELECT x FROM t), b AS (SELECT x FROM a), c AS (SELECT x FROM a) \
             SELECT * FROM b JOIN c ON b.x = c.x WHERE a_col IN (SELECT x FROM c)",
        )
        .expect("a and c are read twice");
        assert_eq!(s.ctes.len(), 2);
        let (a, a_sql) = &s.ctes[0];
        assert!(a.starts_with("__trawl_cte_") && a.ends_with("_a"), "{a}");
        assert_eq!(a_sql, "SELECT x FROM t");
        let (c, c_sql) = &s.ctes[1];
        // It carries the CTEs kept before it (b here, which it does not read: planning it is free).
        assert_eq!(c_sql, &format!("WITH b AS (SELECT x FROM {a} AS a) SELECT x FROM {a} AS a"));
        assert_eq!(
            s.statement,
            format!(
                "WITH b AS (SELECT x FROM {a} AS a) SELECT * FROM b JOIN {c} AS c ON b.x = c.x \
                 WHERE a_col IN (SELECT x FROM {c} AS c)"
            )
        );
    }

    #[test]
    fn a_materialised_cte_carries_the_kept_ctes_it_reads() {
        let s =
            split_ctes("WITH k AS (SELECT 1 AS x), m AS (SELECT x FROM k) SELECT * FROM m, m AS n").unwrap();
        assert_eq!(s.ctes.len(), 1);
        assert_eq!(s.ctes[0].1, "WITH k AS (SELECT 1 AS x) SELECT x FROM k");
        let m = &s.ctes[0].0;
        assert_eq!(s.statement, format!("WITH k AS (SELECT 1 AS x) SELECT * FROM {m} AS m, {m} AS n"));
    }

    #[test]
    fn nothing_is_split_when_every_cte_is_read_once_or_the_sql_is_not_a_query() {
        assert!(split_ctes("WITH a AS (SELECT 1) SELECT * FROM a").is_none());
        assert!(split_ctes("SELECT 1").is_none());
        assert!(split_ctes("WITH RECURSIVE a AS (SELECT 1) SELECT * FROM a, a AS b").is_none());
        assert!(split_ctes("WITH a(x) AS (SELECT 1) SELECT * FROM a, a AS b").is_none());
        assert!(split_ctes("SELEC nonsense").is_none());
    }
}
