//! Parquet for other tools: zstd, and plain Arrow types (no string views, no dictionaries), so
//! readers without kernels for those (pyarrow's filters, Sail) read every column.

use std::fs::File;
use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::OutputError;

/// Writes `batches` into `file` and syncs it.
pub(super) fn write(schema: &SchemaRef, batches: &[RecordBatch], file: File) -> Result<(), OutputError> {
    let fields: Vec<FieldRef> = schema.fields().iter().map(plain_field).collect();
    let plain = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let level = ZstdLevel::try_new(3)?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(level)).build();
    let mut w = ArrowWriter::try_new(file, plain.clone(), Some(props))?;
    for b in batches {
        let columns = b
            .columns()
            .iter()
            .zip(plain.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
            .collect::<Result<Vec<_>, _>>()?;
        w.write(&RecordBatch::try_new(plain.clone(), columns)?)?;
    }
    w.into_inner()?.sync_all()?;
    Ok(())
}

fn plain_field(f: &FieldRef) -> FieldRef {
    Arc::new(f.as_ref().clone().with_data_type(plain_type(f.data_type())))
}

/// The type without views or dictionaries, at any depth.
fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => plain_type(values),
        DataType::List(f) => DataType::List(plain_field(f)),
        DataType::LargeList(f) => DataType::LargeList(plain_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(plain_field(f), *n),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(plain_field).collect()),
        DataType::Map(f, sorted) => DataType::Map(plain_field(f), *sorted),
        other => other.clone(),
    }
}
