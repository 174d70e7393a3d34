//! The field mapping from Sigma's names to trawl's columns, read from `schemas/sigma-fields.json`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// How one Sigma field is found in a table.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldMap {
    /// SQL over the table's columns; None when no format trawl reads logs the field.
    pub sql: Option<String>,
    #[serde(rename = "type", default)]
    pub ty: FieldType,
    pub doc: String,
    /// Rule value (lower-case) to the value the logs hold.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// Whether a field compares as text or as an integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    #[default]
    String,
    Int,
}

/// One Sigma log source category and the table it reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    pub table: String,
    /// The column a hit is about (the summary's top entity).
    pub entity: String,
    /// Text columns a field-less keyword is searched in.
    pub keyword_columns: Vec<String>,
    pub fields: BTreeMap<String, FieldMap>,
}

#[derive(Debug, Deserialize)]
struct Mapping {
    categories: BTreeMap<String, Category>,
}

static MAPPING: LazyLock<Mapping> = LazyLock::new(|| {
    // Compiled in and covered by tests, so a parse failure is a build defect.
    serde_json::from_str(include_str!("../../../schemas/sigma-fields.json"))
        .expect("sigma-fields.json is valid")
});

/// The mapping of a log source category (`proxy`, `firewall`), if trawl reads that kind of log.
pub fn category(name: &str) -> Option<&'static Category> {
    MAPPING.categories.get(name)
}

/// The categories trawl maps, for messages.
pub fn category_names() -> Vec<&'static str> {
    MAPPING.categories.keys().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    /// Every column the mapping names exists in its table, so a rename in `schemas/` shows here.
    #[test]
    fn mapping_names_real_columns() {
        for name in category_names() {
            let c = category(name).unwrap();
            let spec = schema::table(&c.table).unwrap();
            let has = |col: &str| spec.index_of(col).is_some();
            assert!(has(&c.entity), "{name}: {}", c.entity);
            for col in &c.keyword_columns {
                assert!(has(col), "{name}: {col}");
            }
            for (field, m) in &c.fields {
                let Some(sql) = &m.sql else { continue };
                let col = sql.rsplit('(').next().unwrap().trim_end_matches(')');
                assert!(has(col), "{name}.{field}: {sql}");
                assert!(m.values.keys().all(|k| *k == k.to_lowercase()), "{name}.{field}");
            }
        }
    }
}
