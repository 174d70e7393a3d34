//! What the lake may delete, and what `verify` compares: the `ingests` ledger's runs, and the
//! names trawl gives its files.
//!
//! Cleanup must never delete a file of a run the ledger records: such a run committed, so a
//! file of it that no version names means the Delta log was damaged (a lost commit file), not
//! that the run stopped. Nor a file trawl did not name: that was put there by hand.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Lake, Lease};
use crate::error::LakeError;
use crate::schema::INGESTS;

impl Lake {
    /// Deletes the files `lease`'s run wrote in every table but `committed` (those its commits
    /// made part of a table): a run that fails leaves the disk as it found it, so a retry after
    /// a full disk does not find it fuller. Best effort: what is left is an orphan for later.
    pub fn remove_own(&self, lease: &Lease, committed: &[String]) {
        for spec in crate::schema::all_tables() {
            if committed.contains(&spec.table) {
                continue;
            }
            for rel in self.files_on_disk(spec).unwrap_or_default() {
                if super::run_of(&rel) == Some(lease.id()) {
                    let _ = self.store.delete(&Lake::in_table(spec, &rel));
                }
            }
        }
    }

    /// Run ids the `ingests` ledger records: runs whose every table commit happened.
    pub async fn ledger_runs(&self) -> Result<HashSet<String>, LakeError> {
        let mut runs = HashSet::new();
        let Some(table) = self.load_table(&INGESTS).await? else {
            return Ok(runs);
        };
        for f in self.live_files(&INGESTS, &table)? {
            let rel = Lake::in_table(&INGESTS, &f.rel_path);
            let path = self.store.path_of(&rel);
            let perr = |e| LakeError::parquet(path.clone(), e);
            let file = self.store.blob(&rel)?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), ["run_id"]);
            for batch in builder.with_projection(mask).build().map_err(perr)? {
                let batch = batch.map_err(|e| perr(e.into()))?;
                let ids = cast(batch.column(0), &DataType::Utf8).map_err(|e| perr(e.into()))?;
                let ids = ids.as_string::<i32>();
                runs.extend((0..ids.len()).filter(|i| !ids.is_null(*i)).map(|i| ids.value(i).to_string()));
            }
        }
        Ok(runs)
    }
}

/// Whether a table file is named as trawl's runs name theirs:
/// `part-<32 hex run>-<32 hex>.zstd.parquet`, in a partition folder or not.
pub fn trawl_named(rel_path: &str) -> bool {
    let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    name.strip_prefix("part-")
        .and_then(|r| r.strip_suffix(".zstd.parquet"))
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(run, n)| hex32(run) && hex32(n))
}

#[cfg(test)]
mod tests {
    use super::trawl_named;

    #[test]
    fn only_names_trawl_gives_are_trawl_named() {
        let run = "0123456789abcdef0123456789abcdef";
        assert!(trawl_named(&format!("date=2024-05-01/part-{run}-{run}.zstd.parquet")));
        assert!(trawl_named(&format!("part-{run}-{run}.zstd.parquet")));
        for other in [
            "evidence.parquet".to_string(),
            format!("date=2024-05-01/part-{run}-1.zstd.parquet"),
            format!("part-{run}-{run}.snappy.parquet"),
            format!("part-{run}-{run}.zstd.parquet.copy"),
            "part-00000-5d1c.c000.snappy.parquet".to_string(),
        ] {
            assert!(!trawl_named(&other), "{other}");
        }
    }
}
