//! Table schemas, read from the JSON files in `schemas/`: the one place a column is declared.
//!
//! Arrow schemas (for the Parquet files), Delta schemas (for the table log) and the column
//! docs in `trawl query --schema` are all derived from these files.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

/// Name of the Hive partition column every date-partitioned table carries.
pub const DATE_COLUMN: &str = "date";

/// A column's logical type; each maps to one Arrow and one Delta type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Long,
    Int,
    Timestamp,
    Binary,
    /// A list of 32-bit integers (i-FILTER category ids).
    IntList,
    /// String keys to string values (fields without a column of their own).
    StringMap,
}

impl ColumnType {
    /// The Arrow type used in record batches and Parquet files.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Long => DataType::Int64,
            ColumnType::Int => DataType::Int32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Binary => DataType::Binary,
            // Inner field names are the ones Delta's Arrow conversion uses, so files and log agree.
            ColumnType::IntList => DataType::List(Arc::new(Field::new(LIST_ITEM, DataType::Int32, true))),
            ColumnType::StringMap => DataType::Map(map_entries(), false),
        }
    }
}

/// Name of a list's item field in the files we write.
pub const LIST_ITEM: &str = "element";

/// The entries field of a string-to-string map, named as Delta names it.
pub fn map_entries() -> FieldRef {
    let kv = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    Arc::new(Field::new("key_value", DataType::Struct(kv), false))
}

/// One column of a table, as declared in `schemas/<table>.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(default = "yes")]
    pub nullable: bool,
    pub doc: String,
}

fn yes() -> bool {
    true
}

/// A table of the lake: its columns and whether it is partitioned by local date.
#[derive(Debug, Deserialize)]
pub struct TableSpec {
    pub table: String,
    pub description: String,
    pub partition_by_date: bool,
    pub columns: Vec<ColumnSpec>,
    #[serde(skip)]
    arrow: Option<SchemaRef>,
}

impl TableSpec {
    fn parse(json: &str) -> TableSpec {
        // The JSON is compiled in and covered by tests, so a parse failure is a build defect.
        let mut spec: TableSpec = serde_json::from_str(json).expect("schemas/*.json is valid");
        let fields: Vec<Field> =
            spec.columns.iter().map(|c| Field::new(&c.name, c.ty.arrow(), c.nullable)).collect();
        spec.arrow = Some(Arc::new(Schema::new(fields)));
        spec
    }

    /// Schema of the data files (without the partition column, which lives in the path).
    pub fn arrow_schema(&self) -> SchemaRef {
        self.arrow.clone().expect("set in parse")
    }

    /// Schema readers see: the file columns plus `date` for partitioned tables.
    pub fn table_schema(&self) -> SchemaRef {
        let file = self.arrow_schema();
        if !self.partition_by_date {
            return file;
        }
        let mut fields: Vec<Field> = file.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(DATE_COLUMN, DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }

    /// Position of a column in the file schema.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// The `proxy` table: every web-proxy request.
pub static PROXY: LazyLock<TableSpec> =
    LazyLock::new(|| TableSpec::parse(include_str!("../schemas/proxy.json")));

/// The `rejects` table: every line no parser could read.
pub static REJECTS: LazyLock<TableSpec> =
    LazyLock::new(|| TableSpec::parse(include_str!("../schemas/rejects.json")));

/// The `firewall` table: Windows Defender Firewall entries.
pub static FIREWALL: LazyLock<TableSpec> =
    LazyLock::new(|| TableSpec::parse(include_str!("../schemas/firewall.json")));

/// The `ingests` table: one row per file each run found.
pub static INGESTS: LazyLock<TableSpec> =
    LazyLock::new(|| TableSpec::parse(include_str!("../schemas/ingests.json")));

/// Every table trawl writes, in the order `trawl query` lists them.
pub fn all_tables() -> [&'static TableSpec; 4] {
    [&PROXY, &FIREWALL, &REJECTS, &INGESTS]
}

/// A table by name.
pub fn table(name: &str) -> Option<&'static TableSpec> {
    all_tables().into_iter().find(|t| t.table == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_parse_and_names_are_snake_case() {
        for t in all_tables() {
            assert!(!t.columns.is_empty(), "{}", t.table);
            for c in &t.columns {
                assert!(
                    c.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                        && c.name.as_bytes()[0].is_ascii_lowercase(),
                    "{}.{}",
                    t.table,
                    c.name
                );
            }
        }
        assert_eq!(PROXY.table_schema().fields().last().unwrap().name(), "date");
        assert_eq!(REJECTS.table_schema().fields().len(), REJECTS.columns.len());
    }
}
