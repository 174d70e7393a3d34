//! Country and network beside the addresses a detection names in its front matter
//! (`-- enrich: dst_ip`): `dst_country`, `dst_asn` and `dst_org` follow `dst_ip` in its rows
//! when the engine has a GeoIP database, and the rows stay as the SQL gave them when it has
//! none (three columns of NULL would only clutter the output). One mechanism for every
//! detection, so no query repeats the lookups, and the databases are read once per distinct
//! address of the hits rather than per row of the lake.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::engine::GeoIp;

/// The names of the columns added for `column`: `dst_ip` gives `dst_country`, `dst_asn`,
/// `dst_org`; a name without `_ip` keeps itself as the prefix (`address_country`).
pub fn added_columns(column: &str) -> [String; 3] {
    let prefix = column.strip_suffix("_ip").unwrap_or(column);
    ["country", "asn", "org"].map(|s| format!("{prefix}_{s}"))
}

/// Checks that every column to enrich is one the SQL returns, and that the added names are new.
pub(super) fn check(columns: &[String], schema: &Schema) -> Result<(), String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for c in columns {
        if !names.contains(&c.as_str()) {
            return Err(format!(
                "`-- enrich: {c}`: the SQL returns no column {c} (it returns {})",
                names.join(", ")
            ));
        }
        if let Some(taken) = added_columns(c).into_iter().find(|a| names.contains(&a.as_str())) {
            return Err(format!(
                "`-- enrich: {c}` adds a column {taken}, which the SQL already returns: rename that one"
            ));
        }
    }
    Ok(())
}

/// One address's answers: country, ASN, organisation.
type Answer = (Option<String>, Option<i64>, Option<String>);

/// The rows with the three columns after each column named, looked up in `geoip`.
pub(super) fn apply(
    geoip: &GeoIp,
    columns: &[String],
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    check(columns, schema)?;
    let mut fields = Vec::new();
    for f in schema.fields() {
        fields.push(f.clone());
        if columns.contains(f.name()) {
            let [country, asn, org] = added_columns(f.name());
            fields.push(Arc::new(Field::new(country, DataType::Utf8, true)));
            fields.push(Arc::new(Field::new(asn, DataType::Int64, true)));
            fields.push(Arc::new(Field::new(org, DataType::Utf8, true)));
        }
    }
    let enriched = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let mut seen: HashMap<String, Answer> = HashMap::new();
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (f, col) in schema.fields().iter().zip(b.columns()) {
            arrays.push(col.clone());
            if columns.contains(f.name()) {
                arrays.extend(lookup(geoip, col, &mut seen).map_err(|e| format!("{}: {e}", f.name()))?);
            }
        }
        out.push(RecordBatch::try_new(enriched.clone(), arrays).map_err(|e| e.to_string())?);
    }
    Ok((enriched, out))
}

/// Country, ASN and organisation of each value of `col` (NULL for what is no address or is in
/// no database: internal ranges, a port in a `target` column).
fn lookup(
    geoip: &GeoIp,
    col: &ArrayRef,
    seen: &mut HashMap<String, Answer>,
) -> Result<[ArrayRef; 3], String> {
    let text = cast(col, &DataType::Utf8).map_err(|e| format!("not text: {e}"))?;
    let text = text.as_string::<i32>();
    let mut country = StringBuilder::with_capacity(text.len(), text.len() * 2);
    let mut asn = Int64Builder::with_capacity(text.len());
    let mut org = StringBuilder::with_capacity(text.len(), text.len() * 16);
    for v in text.iter() {
        let (c, a, o) = match v {
            None => &(None, None, None),
            Some(ip) => seen
                .entry(ip.to_string())
                .or_insert_with(|| (geoip.country(ip), geoip.asn(ip).map(i64::from), geoip.org(ip))),
        };
        country.append_option(c.as_deref());
        asn.append_option(*a);
        org.append_option(o.as_deref());
    }
    Ok([Arc::new(country.finish()), Arc::new(asn.finish()), Arc::new(org.finish())])
}
