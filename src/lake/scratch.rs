//! Scratch files of a cluster session: results computed once that are too large to travel
//! inside every plan that reads them, written where the cluster's executors read the lake.
//!
//! ```text
//! <lake>/_trawl/scratch/<unix seconds>-<uuid>/<n>-<name>.parquet
//! ```
//!
//! They sit outside every table (no Delta log names them, no cleanup of a table's folder sees
//! them) and are removed when the session ends. A session that died leaves its folder behind,
//! which a later session removes once it is [`STALE_AFTER`] old, by the time in its name.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use url::Url;

use super::store::Store;
use crate::error::LakeError;

/// Where scratch folders are, inside the lake.
const SCRATCH_DIR: &str = "_trawl/scratch";

/// A scratch folder this old belongs to a session that died (the longest statement a cluster
/// runs is bounded far below it: see `engine::DEFAULT_CLUSTER_TIMEOUT`).
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One session's scratch folder; the files written into it are removed when it is dropped.
#[derive(Debug)]
pub struct Scratch {
    store: Store,
    /// `_trawl/scratch/<session>`.
    dir: String,
    written: Mutex<Vec<String>>,
}

/// A scratch file as a scan reads it.
#[derive(Debug, Clone)]
pub struct ScratchFile {
    pub url: Url,
    pub size: u64,
    pub rows: u64,
}

impl Scratch {
    /// A new session's folder in the lake behind `store`, after removing the folders of
    /// sessions that died (best effort: a lake this process may not write to still answers
    /// queries; writing a scratch file then fails with the reason).
    pub(super) fn open(store: &Store) -> Scratch {
        remove_stale(store, SystemTime::now());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Random: clients on several machines may share an S3 lake, and none may meet another's.
        let dir = format!("{SCRATCH_DIR}/{now}-{}", uuid::Uuid::new_v4().simple());
        Scratch { store: store.clone(), dir, written: Mutex::new(Vec::new()) }
    }

    /// How many files the session has written.
    pub fn files_written(&self) -> usize {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Writes `batches` (each of `schema`) as a new Parquet file named after `name`.
    pub fn write(
        &self,
        name: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<ScratchFile, LakeError> {
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
        let rel = {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            // Numbered: a view computed again (after a new time range) never overwrites the
            // file an earlier plan may still name.
            let rel = format!("{}/{}-{safe}.parquet", self.dir, written.len());
            written.push(rel.clone());
            rel
        };
        let path = self.store.path_of(&rel);
        let perr = |e| LakeError::parquet(path.clone(), e);
        // Read once or twice by the session's own statements: fast to write over small.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
            .build();
        let sink = Counted { inner: self.store.sink(&rel)?, bytes: 0 };
        let mut writer = ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(perr)?;
        for b in batches {
            writer.write(b).map_err(perr)?;
        }
        let sink = writer.into_inner().map_err(perr)?;
        let size = sink.bytes;
        sink.inner.finish().map_err(|e| LakeError::io(format!("writing {}", path.display()), e))?;
        let (folder, file) = rel.rsplit_once('/').expect("rel has a folder");
        let url = self.store.dir_url(folder)?.join(file).map_err(|e| LakeError::BadUrl {
            url: path.display().to_string(),
            reason: format!("a scratch file's name is no URL: {e}"),
        })?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        Ok(ScratchFile { url, size, rows })
    }
}

/// A writer that counts the bytes through it (the file's size, without asking the store).
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let written = std::mem::take(self.written.get_mut().unwrap_or_else(|e| e.into_inner()));
        for rel in written {
            let _ = self.store.delete(&rel);
        }
        self.store.remove_empty_folder(&self.dir);
    }
}

/// Removes the files of sessions whose folder name says they began [`STALE_AFTER`] before `now`.
fn remove_stale(store: &Store, now: SystemTime) {
    let Ok(listed) = store.list(SCRATCH_DIR, &[]) else { return };
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut folders = Vec::new();
    for l in listed {
        let Some((folder, _)) = l.rel.split_once('/') else { continue };
        let began = folder.split('-').next().and_then(|s| s.parse::<u64>().ok());
        if began.is_some_and(|t| t + STALE_AFTER.as_secs() < now) {
            let _ = store.delete(&format!("{SCRATCH_DIR}/{}", l.rel));
            folders.push(folder.to_string());
        }
    }
    folders.dedup();
    for f in folders {
        store.remove_empty_folder(&format!("{SCRATCH_DIR}/{f}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let b =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        (schema, b)
    }

    #[test]
    fn a_sessions_files_are_readable_while_it_lives_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local(dir.path().to_path_buf());
        let (schema, b) = batch();
        let scratch = Scratch::open(&store);
        let file = scratch.write("__trawl_cte_7_k", &schema, std::slice::from_ref(&b)).unwrap();
        let path = file.url.to_file_path().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file.size);
        let read = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
        assert_eq!(read, vec![b]);
        drop(scratch);
        assert!(!path.exists());
        assert!(store.list(SCRATCH_DIR, &[]).unwrap().is_empty());
        assert!(!path.parent().unwrap().exists(), "the session's folder is removed too");
    }

    #[test]
    fn a_dead_sessions_folder_is_removed_once_a_day_old_and_a_live_ones_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local(dir.path().to_path_buf());
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let old = format!("{SCRATCH_DIR}/{}-aa/0-a.parquet", secs - STALE_AFTER.as_secs() - 60);
        let young = format!("{SCRATCH_DIR}/{}-bb/0-a.parquet", secs - 60);
        for rel in [&old, &young] {
            let mut s = store.sink(rel).unwrap();
            std::io::Write::write_all(&mut s, b"x").unwrap();
            s.finish().unwrap();
        }
        remove_stale(&store, now);
        let left: Vec<String> = store.list(SCRATCH_DIR, &[]).unwrap().into_iter().map(|l| l.rel).collect();
        assert_eq!(left, vec![young.strip_prefix(&format!("{SCRATCH_DIR}/")).unwrap().to_string()]);
        assert!(!dir.path().join(old).parent().unwrap().exists());
    }
}
