//! How lake tables are registered: each table's live files, as the lake lists them from its Delta
//! snapshot, read by DataFusion's own Parquet scan, each file carrying its `date`. A plan then
//! holds only DataFusion's nodes, which a cluster's executors can be sent; nothing here reads the
//! Delta log or knows the lake's layout.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{Column, ColumnStatistics, DFSchema, Statistics};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, ParquetSource, wrap_partition_type_in_dict,
    wrap_partition_value_in_dict,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::object_store::ObjectMeta;
use datafusion::object_store::path::Path;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::scalar::ScalarValue;

use crate::lake::ScanFile;
use crate::schema::{DATE_COLUMN, TableSpec};

/// A lake table as a plain Parquet scan of the live files of one Delta snapshot.
#[derive(Debug)]
pub(crate) struct LakeTable {
    /// The table of the lake layout it is (`proxy`, ...), which gives its schema.
    table: String,
    /// What queries see: the file columns, then `date` for partitioned tables.
    schema: SchemaRef,
    /// The file columns, as queries see them.
    file_schema: SchemaRef,
    /// `date`, or nothing.
    partition_cols: Vec<FieldRef>,
    /// The store the files are in (`file://` for a lake on disk).
    store: ObjectStoreUrl,
    /// Every live file, with its `date` and its Add action's stats.
    files: Vec<PartitionedFile>,
}

/// The type a column of the files is read as: strings and bytes as views, as DataFusion reads
/// Parquet by default (and as delta-rs's provider showed them, which SQL and exports rely on).
fn read_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        other => other.clone(),
    }
}

impl LakeTable {
    /// The table of `spec` over `files`.
    pub(crate) fn new(spec: &TableSpec, files: Vec<ScanFile>) -> Result<LakeTable> {
        let store = match files.first() {
            Some(f) => ObjectStoreUrl::parse(&f.url[..url::Position::BeforePath])?,
            None => ObjectStoreUrl::local_filesystem(),
        };
        let file_schema = file_schema(spec);
        let files = files
            .iter()
            .map(|f| scan_file(f, &file_schema, spec.partition_by_date))
            .collect::<Result<Vec<_>>>()?;
        LakeTable::from_parts(spec, store, files)
    }

    /// The table of `spec` over files already in DataFusion's form (as a cluster receives them).
    pub(crate) fn from_parts(
        spec: &TableSpec,
        store: ObjectStoreUrl,
        files: Vec<PartitionedFile>,
    ) -> Result<LakeTable> {
        let file_schema = file_schema(spec);
        let partition_cols: Vec<FieldRef> = if spec.partition_by_date {
            vec![Arc::new(Field::new(DATE_COLUMN, wrap_partition_type_in_dict(DataType::Utf8), false))]
        } else {
            Vec::new()
        };
        let schema = table_schema(&file_schema, &partition_cols).table_schema().clone();
        Ok(LakeTable { table: spec.table.clone(), schema, file_schema, partition_cols, store, files })
    }

    /// A computed result kept as Parquet files (a cluster session's scratch files: see
    /// `cluster`), read as the table `name` with `schema`; nothing of the lake layout applies.
    pub(crate) fn of_result(
        name: &str,
        schema: SchemaRef,
        store: ObjectStoreUrl,
        files: Vec<PartitionedFile>,
    ) -> LakeTable {
        LakeTable {
            table: name.to_string(),
            file_schema: Arc::clone(&schema),
            schema,
            partition_cols: Vec::new(),
            store,
            files,
        }
    }

    /// The lake table it is, the store its files are in and the files, with their days and stats.
    pub(crate) fn parts(&self) -> (&str, &ObjectStoreUrl, &[PartitionedFile]) {
        (&self.table, &self.store, &self.files)
    }

    /// Whether `filter` reads only `date`, so that choosing files by their day applies it exactly.
    fn on_date(&self, filter: &Expr) -> bool {
        let names: Vec<&str> = self.partition_cols.iter().map(|f| f.name().as_str()).collect();
        !names.is_empty() && expr_applicable_for_cols(&names, filter)
    }

    /// For each file, whether its `date` passes `filter`: evaluated once over each distinct
    /// day, as SQL evaluates it over rows (NULL does not pass), then mapped back to the files.
    fn days_passing(&self, state: &dyn Session, filter: Expr) -> Result<BooleanArray> {
        let schema = Arc::new(Schema::new(self.partition_cols.clone()));
        let physical = state.create_physical_expr(filter, &DFSchema::try_from(Arc::clone(&schema))?)?;
        let (days, index) = distinct(self.files.iter().map(|f| &f.partition_values));
        let columns = (0..self.partition_cols.len())
            .map(|c| ScalarValue::iter_to_array(days.iter().map(|d| d[c].clone())))
            .collect::<Result<Vec<_>>>()?;
        let values = RecordBatch::try_new(schema, columns)?;
        let passed = physical.evaluate(&values)?.into_array(days.len())?;
        Ok(take(&passed, &index, None)?.as_boolean().clone())
    }

    /// The files a scan with `filters` must open: those whose `date` passes the filters on it
    /// (exactly), and of those the ones whose stats may hold a row the other filters keep.
    pub(crate) fn files_for(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<PartitionedFile>> {
        let on_date = conjunction(filters.iter().filter(|f| self.on_date(f)).cloned());
        let files = match on_date {
            Some(on_date) if !self.files.is_empty() => {
                let keep = self.days_passing(state, on_date)?;
                self.files
                    .iter()
                    .zip(keep.iter())
                    .filter(|(_, k)| *k == Some(true))
                    .map(|(f, _)| f.clone())
                    .collect()
            }
            _ => self.files.clone(),
        };
        // Skipping by stats only saves work: a filter they cannot judge (a function call, say),
        // or one that fails here, keeps every file, and the scan still applies it to the rows.
        let table = DFSchema::try_from(Arc::clone(&self.schema))?;
        let keep = conjunction(filters.iter().cloned())
            .and_then(|p| state.create_physical_expr(p, &table).ok())
            .and_then(|p| PruningPredicateBuilder::new().with_file_schema(Arc::clone(&self.schema)).build(p))
            .and_then(|p| p.prune(&FileRanges { files: &files, schema: &self.schema }).ok());
        Ok(match keep {
            Some(keep) => files.into_iter().zip(keep).filter_map(|(f, k)| k.then_some(f)).collect(),
            None => files,
        })
    }
}

/// The file columns as queries read them.
fn file_schema(spec: &TableSpec) -> SchemaRef {
    let fields: Vec<Field> = spec
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(read_type(f.data_type())))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Each distinct item once, in order of first sight, and for every item the index of its own.
/// Arrays built from the distinct values alone stay within a dictionary's keys (`date` is
/// `Dictionary(UInt16, _)`, and building one gives every entry a key of its own), however many
/// files share a day.
fn distinct<T: Hash + Eq + Clone>(items: impl Iterator<Item = T>) -> (Vec<T>, UInt32Array) {
    let mut seen: HashMap<T, u32> = HashMap::new();
    let mut values = Vec::new();
    let index = items
        .map(|item| {
            *seen.entry(item.clone()).or_insert_with(|| {
                values.push(item);
                (values.len() - 1) as u32
            })
        })
        .collect();
    (values, index)
}

/// The file columns and partition columns as DataFusion's file scans take them.
fn table_schema(file_schema: &SchemaRef, partition_cols: &[FieldRef]) -> TableSchema {
    TableSchema::builder(Arc::clone(file_schema)).with_table_partition_cols(partition_cols.to_vec()).build()
}

/// The file at `url` of `size` bytes as DataFusion's scan takes it (the time is unknown and
/// unused: which version to read is the file list's business, not the store's).
pub(crate) fn file_at(url: &url::Url, size: u64) -> Result<PartitionedFile> {
    let meta = ObjectMeta {
        location: Path::from_url_path(url.path())?,
        size,
        last_modified: chrono::DateTime::UNIX_EPOCH,
        e_tag: None,
        version: None,
    };
    Ok(PartitionedFile::new_from_meta(meta))
}

/// One live file as DataFusion's scan takes it.
fn scan_file(f: &ScanFile, file_schema: &Schema, dated: bool) -> Result<PartitionedFile> {
    let mut file = file_at(&f.url, f.size)?;
    if dated {
        file.partition_values = vec![wrap_partition_value_in_dict(ScalarValue::Utf8(f.day.clone()))];
    }
    let bound = |v: &Option<ScalarValue>, t: &DataType| match v.as_ref().map(|v| v.cast_to(t)) {
        // Ranges are bounds, not the column's exact extremes: never an answer to min() or max().
        Some(Ok(v)) => Precision::Inexact(v),
        _ => Precision::Absent,
    };
    let columns = file_schema
        .fields()
        .iter()
        .zip(&f.stats.columns)
        .map(|(field, b)| {
            ColumnStatistics::new_unknown()
                .with_null_count(b.nulls.map_or(Precision::Absent, |n| Precision::Exact(n as usize)))
                .with_min_value(bound(&b.min, field.data_type()))
                .with_max_value(bound(&b.max, field.data_type()))
        })
        .collect();
    let stats = Statistics {
        num_rows: f.stats.rows.map_or(Precision::Absent, |n| Precision::Exact(n as usize)),
        total_byte_size: Precision::Inexact(f.size as usize),
        column_statistics: columns,
    };
    // Adds `date`'s statistics (exactly its one value), so they must come after its value.
    Ok(file.with_statistics(Arc::new(stats)))
}

/// The files' statistics as pruning reads them, one container per file. Ranges are bounds
/// (see [`scan_file`]), which is all pruning needs.
struct FileRanges<'a> {
    files: &'a [PartitionedFile],
    schema: &'a Schema,
}

impl FileRanges<'_> {
    fn column(&self, column: &Column) -> Option<(usize, &DataType)> {
        let i = self.schema.index_of(column.name()).ok()?;
        Some((i, self.schema.field(i).data_type()))
    }

    fn values(
        &self,
        column: &Column,
        pick: impl Fn(&ColumnStatistics) -> &Precision<ScalarValue>,
    ) -> Option<ArrayRef> {
        let (i, ty) = self.column(column)?;
        let null = ScalarValue::try_from(ty).ok()?;
        let mut any = false;
        let values = self.files.iter().map(|f| {
            let v = f
                .statistics
                .as_ref()
                .and_then(|s| s.column_statistics.get(i))
                .and_then(|c| pick(c).get_value());
            any |= v.is_some();
            v.cloned().unwrap_or_else(|| null.clone())
        });
        let (distinct, index) = distinct(values);
        let array = ScalarValue::iter_to_array(distinct).ok()?;
        let array = take(&array, &index, None).ok()?;
        any.then_some(array)
    }
}

impl PruningStatistics for FileRanges<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |c| &c.min_value)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |c| &c.max_value)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let (i, _) = self.column(column)?;
        let counts: UInt64Array = self
            .files
            .iter()
            .map(|f| {
                let c = f.statistics.as_ref()?.column_statistics.get(i)?;
                c.null_count.get_value().map(|&n| n as u64)
            })
            .collect();
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let rows: UInt64Array = self
            .files
            .iter()
            .map(|f| f.statistics.as_ref()?.num_rows.get_value().map(|&n| n as u64))
            .collect();
        Some(Arc::new(rows))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters on `date` alone are exact (a file is read or not by its day); the others are
    /// also applied above the scan, and pushed into the Parquet reader by DataFusion.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.on_date(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.files_for(state, filters)?;
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let stats =
            Statistics::try_merge_iter(files.iter().filter_map(|f| f.statistics.as_deref()), &self.schema)?;
        let table_schema = table_schema(&self.file_schema, &self.partition_cols);
        let options = TableParquetOptions {
            global: state.config_options().execution.parquet.clone(),
            ..Default::default()
        };
        let store = state.runtime_env().object_store(&self.store)?;
        let metadata_cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        // Filters DataFusion pushes into the scan are evaluated while decoding (late
        // materialisation), as delta-rs's reader did, besides pruning row groups and pages.
        let source = ParquetSource::new(table_schema)
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                store,
                metadata_cache,
            )))
            .with_pushdown_filters(true);
        let config = FileScanConfigBuilder::new(self.store.clone(), Arc::new(source))
            .with_file_groups(vec![FileGroup::new(files)])
            .with_statistics(stats)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::lake::{ColumnBounds, FileStats};
    use crate::schema::FIREWALL;

    /// More files than a `UInt16` dictionary has keys, over 100 days (no disk: only the list).
    fn many_files() -> LakeTable {
        let files = (0..70_000u32)
            .map(|i| ScanFile {
                url: url::Url::parse(&format!("file:///lake/firewall/part-{i:05}.parquet")).unwrap(),
                size: 1,
                day: Some(format!("2024-{:02}-{:02}", 1 + (i % 100) / 28, 1 + (i % 100) % 28)),
                stats: FileStats {
                    rows: Some(1),
                    columns: vec![ColumnBounds::default(); FIREWALL.columns.len()],
                },
            })
            .collect();
        LakeTable::new(&FIREWALL, files).unwrap()
    }

    #[test]
    fn date_filters_over_more_files_than_dictionary_keys() {
        let table = many_files();
        let state = SessionContext::new().state();
        // Day 30 of the cycle is 2024-02-03 (1 + 30/28 = 2, 1 + 30%28 = 3).
        let picked = table.files_for(&state, &[col(DATE_COLUMN).eq(lit("2024-02-03"))]).unwrap();
        let names: Vec<u32> = picked
            .iter()
            .map(|f| f.object_meta.location.filename().unwrap()[5..10].parse().unwrap())
            .collect();
        let expected: Vec<u32> = (0..70_000).filter(|i| i % 100 == 30).collect();
        assert_eq!(names, expected);
        let later = table.files_for(&state, &[col(DATE_COLUMN).gt_eq(lit("2024-04-01"))]).unwrap();
        // Cycle days 84..=99 fall in April: 16 of every 100 files.
        assert_eq!(later.len(), 16 * 700);
    }

    #[test]
    fn date_ranges_for_pruning_over_more_files_than_dictionary_keys() {
        let table = many_files();
        let ranges = FileRanges { files: &table.files, schema: &table.schema };
        let min = ranges.min_values(&Column::from_name(DATE_COLUMN)).expect("a range per file");
        assert_eq!(min.len(), 70_000);
        let day = ScalarValue::try_from_array(&min, 69_999).unwrap();
        assert_eq!(day, wrap_partition_value_in_dict(ScalarValue::from("2024-04-16")));
    }
}
