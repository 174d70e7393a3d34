//! The lake on disk: the only module that knows its layout, file names and writer settings.
//!
//! ```text
//! <lake>/trawl.json                               format version and time zone
//! <lake>/<table>/_delta_log/                      Delta Lake log: what exists is what is committed
//! <lake>/<table>/date=YYYY-MM-DD/part-*.parquet   date-partitioned tables
//! <lake>/<table>/part-*.parquet                   tables without dates (rejects)
//! <lake>/_trawl/runs/<run>.lock                   lease of a run that is writing files now
//! <lake>/_trawl/scratch/<session>/                a cluster session's large results (see scratch)
//! ```
//!
//! Workers write Parquet files themselves (streaming, bounded memory, hashed as written); one
//! Delta commit per table then makes a run's files visible all at once, each file's SHA-256 in
//! its Add action's tags, so `trawl verify` can re-hash it later.
//!
//! A data file is named after the run that wrote it (`part-<run>-<n>.zstd.parquet`). A file the
//! Delta log does not name (a killed run's) is removed by [`Lake::remove_orphans`] once its run's
//! lease is over: on disk, no longer locked (the OS drops that lock when the process dies,
//! however it dies); on S3, expired (see [`LEASE_TTL`]).
//!
//! Every byte goes through [`store`], which knows whether the lake is a folder or an S3 prefix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono_tz::Tz;
use datafusion::arrow::array::{BooleanArray, Int32Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use deltalake::DeltaTable;
use deltalake::kernel::{
    Action, Add, ArrayType, DataType as DeltaType, MapType, Remove, StructField, Transaction,
};
use deltalake::protocol::{DeltaOperation, SaveMode};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

mod commit;
mod custody;
mod location;
mod manifest;
mod meta;
mod scratch;
mod stats;
mod store;

pub use custody::trawl_named;
pub use manifest::StaleList;
pub use meta::ZONE_KEY;
pub use scratch::{Scratch, ScratchFile};
pub use stats::{ColumnBounds, FileStats};
use store::{Blob, Sink, Store};
pub use store::{LEASE_TTL, Lease, s3_store, set_lease_ttl_for_tests};

use crate::error::LakeError;
use crate::formats::Batch;
use crate::localtime::{day_from_string, day_string, machine_tz, parse_tz};
use crate::schema::{ColumnType, DATE_COLUMN, TableSpec};

/// Version of the lake layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;
const META_FILE: &str = "trawl.json";

/// Rows per Parquet row group: large enough for fast scans, small enough to skip by statistics.
pub const ROW_GROUP_ROWS: usize = 1 << 20;
/// A file is closed and a new one started past this many rows.
const FILE_ROWS: u64 = 8 << 20;
/// Memory one worker's open Parquet writers may hold (by their own estimate, with what an S3
/// lake's files hold unsent) before the largest upload is sent or the largest row group ends early.
pub const WRITER_BUFFER_BYTES: usize = 96 << 20;
/// Partition files one worker keeps open at once; more dates than this close the least recently
/// used. Each open writer holds encoder state its estimate does not count, so this bounds memory.
const OPEN_FILES: usize = 4;
/// Times a manifest rewrite on S3 reads the newest version again after meeting another
/// writer's list, before it gives up.
const MANIFEST_TRIES: usize = 10;
/// `trawl compact` merges the files of a partition smaller than this.
pub const COMPACT_TARGET_BYTES: u64 = 256 << 20;
/// Delta reader features whose tables trawl's scan reads as written: they change only how the
/// log is kept or typed columns trawl's schemas never hold.
const READER_FEATURES: [&str; 3] = ["v2Checkpoint", "vacuumProtocolCheck", "timestampNtz"];
/// The table property that turns column mapping on.
const COLUMN_MAPPING_MODE: &str = "delta.columnMapping.mode";
const DELETION_VECTORS_FIX: &str = "purge them with the engine that wrote them (in Spark: REORG TABLE ... \
     APPLY (PURGE), then ALTER TABLE ... DROP FEATURE deletionVectors), or ingest the logs into a new lake";
const COLUMN_MAPPING_FIX: &str = "rewrite the table without column mapping with the engine that turned it on \
     (in Spark: ALTER TABLE ... DROP FEATURE columnMapping), or ingest the logs into a new lake";
/// Tag of a file's SHA-256 in its Add action.
const SHA256_TAG: &str = "trawl.sha256";

/// `<lake>/trawl.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LakeMeta {
    pub format_version: u32,
    pub time_zone: String,
    pub created_by: String,
}

/// A lake, opened: a folder or an S3 prefix.
#[derive(Debug, Clone)]
pub struct Lake {
    /// Where it is, as messages show it.
    root: PathBuf,
    store: Store,
    meta: LakeMeta,
    tz: Tz,
}

impl Lake {
    /// Opens an existing lake (`root` as given after `--lake`: a path or a `file:` URL); a clear
    /// error when it is not one, or is on object storage.
    pub fn open(root: &Path) -> Result<Lake, LakeError> {
        Self::open_in(Store::open(&location::resolve(root)?)?)
    }

    fn open_in(store: Store) -> Result<Lake, LakeError> {
        let root = &store.shown();
        let path = store.path_of(META_FILE);
        // The tables' own record of the zone outranks trawl.json (see `meta`).
        let recorded = meta::recorded_zone(&store)?;
        let text = match (store.read(META_FILE)?, &recorded) {
            (Some(t), _) => String::from_utf8_lossy(&t).into_owned(),
            (None, Some((_, zone))) => {
                serde_json::to_string(&meta::create_exclusively(&store, zone)?).expect("plain struct")
            }
            (None, None) => return Err(LakeError::Missing(root.to_path_buf())),
        };
        let bad = |reason: String| LakeError::BadMeta { path: path.clone(), reason };
        let meta: LakeMeta = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some((table, zone)) = recorded
            && zone != meta.time_zone
        {
            return Err(bad(format!(
                "it says time zone {}, but the lake's partitions were cut in {zone}, as table {table} \
                 records in its Delta metadata: trawl.json was edited or replaced; restore it, or \
                 delete it and trawl writes it again from that record",
                meta.time_zone
            )));
        }
        if meta.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "layout version {} (this trawl reads version {FORMAT_VERSION})",
                meta.format_version
            )));
        }
        let tz = parse_tz(&meta.time_zone).map_err(bad)?;
        Ok(Lake { root: root.to_path_buf(), store, meta, tz })
    }

    /// Opens a lake, creating it (with `tz`, else the machine's zone) when the folder has none.
    pub fn open_or_create(root: &Path, tz: Option<&str>) -> Result<Lake, LakeError> {
        let store = Store::open(&location::resolve(root)?)?;
        let root = &store.shown();
        let asked = tz.map(parse_tz).transpose().map_err(LakeError::BadZone)?;
        match Lake::open_in(store.clone()) {
            Ok(lake) => match asked {
                Some(z) if z != lake.tz => Err(LakeError::ZoneMismatch {
                    path: root.to_path_buf(),
                    lake: lake.meta.time_zone.clone(),
                    asked: z.name().to_string(),
                }),
                _ => Ok(lake),
            },
            Err(LakeError::Missing(_)) => {
                if asked.is_none() && meta::has_tables(&store)? {
                    // Tables from before zones were recorded in them: the machine's zone may not be theirs.
                    return Err(LakeError::BadMeta {
                        path: store.path_of(META_FILE),
                        reason: "it is missing, and the lake's tables do not record their time zone: \
                                 restore it, or give --tz with the zone the lake was created in"
                            .into(),
                    });
                }
                let meta = meta::create_exclusively(&store, asked.unwrap_or_else(machine_tz).name())?;
                // Another run may have created the lake first, in another zone.
                let tz = parse_tz(&meta.time_zone)
                    .map_err(|reason| LakeError::BadMeta { path: store.path_of(META_FILE), reason })?;
                match asked {
                    Some(z) if z != tz => Err(LakeError::ZoneMismatch {
                        path: root.to_path_buf(),
                        lake: meta.time_zone.clone(),
                        asked: z.name().to_string(),
                    }),
                    _ => Ok(Lake { root: root.to_path_buf(), store, meta, tz }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The lake's folder (or `s3://bucket/prefix`, for messages).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the lake is on S3 rather than a local or mounted disk.
    pub fn on_s3(&self) -> bool {
        !self.store.is_local()
    }

    /// The bucket's store and URL for a query engine to read an S3 lake's files through.
    pub fn object_store(&self) -> Option<(Url, std::sync::Arc<dyn object_store::ObjectStore>)> {
        self.store.object_store()
    }

    /// The lake's time zone: partitions are local days in it.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// A new scratch folder for a cluster session, removed when the result is dropped.
    pub fn scratch(&self) -> Scratch {
        Scratch::open(&self.store)
    }

    /// The lake's metadata file contents.
    pub fn meta(&self) -> &LakeMeta {
        &self.meta
    }

    /// The table's folder, for messages.
    fn table_dir(&self, spec: &TableSpec) -> PathBuf {
        self.store.path_of(&spec.table)
    }

    /// Where a file of the table is, inside the lake.
    fn in_table(spec: &TableSpec, rel: &str) -> String {
        format!("{}/{rel}", spec.table)
    }

    fn table_url(&self, spec: &TableSpec) -> Result<Url, LakeError> {
        self.store.dir_url(&spec.table)
    }

    /// Whether the table's Delta log holds a commit or checkpoint: a run killed while creating
    /// the table can leave the folder empty, and such a table was never created.
    fn has_commit(&self, spec: &TableSpec) -> Result<bool, LakeError> {
        self.store.holds(&format!("{}/_delta_log", spec.table), |name| {
            name.ends_with(".json") || name.ends_with(".checkpoint.parquet")
        })
    }

    fn delta_err(spec: &TableSpec) -> impl Fn(deltalake::DeltaTableError) -> LakeError + '_ {
        move |source| LakeError::delta(&spec.table, source)
    }

    /// The committed state of a table, or `None` when it was never created.
    pub async fn load_table(&self, spec: &TableSpec) -> Result<Option<DeltaTable>, LakeError> {
        if !self.has_commit(spec)? {
            return Ok(None);
        }
        let url = self.table_url(spec)?;
        let table = deltalake::open_table(url).await.map_err(Self::delta_err(spec))?;
        Ok(Some(table))
    }

    /// Creates the table's Delta log if it does not exist yet, and returns the table.
    pub async fn ensure_table(&self, spec: &TableSpec) -> Result<DeltaTable, LakeError> {
        if let Some(t) = self.load_table(spec).await? {
            return Ok(t);
        }
        let url = self.table_url(spec)?;
        let err = Self::delta_err(spec);
        let table = DeltaTable::try_from_url(url).await.map_err(&err)?;
        let mut columns: Vec<StructField> = spec
            .columns
            .iter()
            .map(|c| StructField::new(c.name.clone(), delta_type(c.ty), c.nullable))
            .collect();
        let mut create = table.create().with_table_name(spec.table.clone());
        if spec.partition_by_date {
            columns.push(StructField::new(DATE_COLUMN, DeltaType::STRING, false));
            create = create.with_partition_columns([DATE_COLUMN]);
        }
        let created = create
            .with_configuration([(meta::ZONE_KEY, Some(self.meta.time_zone.clone()))])
            .with_raise_if_key_not_exists(false)
            .with_columns(columns)
            .with_comment(spec.description.clone())
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(t) => Ok(t),
            // Another run created it at the same moment: use theirs.
            Err(e) => match self.load_table(spec).await {
                Ok(Some(t)) => Ok(t),
                _ => Err(err(e)),
            },
        }
    }

    /// A writer for one worker's share of a table's new files, named after `lease`'s run.
    pub fn writer(&self, spec: &'static TableSpec, lease: &Lease) -> TableWriter {
        TableWriter {
            store: self.store.clone(),
            run: lease.id().to_string(),
            spec,
            props: writer_properties(spec),
            open: Vec::new(),
            done: Vec::new(),
            clock: 0,
            budget: WRITER_BUFFER_BYTES,
            peak: 0,
        }
    }

    /// Makes written files part of the table in one Delta commit; returns the new version.
    ///
    /// `sources` (SHA-256 of the source files) become Delta application transactions in the same commit, so
    /// the table itself records, atomically with the rows, which sources it holds; see
    /// [`Lake::sources_held`]. Each comes with the rows this commit removes of earlier reads of
    /// it (cut lines read whole now), carried in the transaction's version (1 + rows), so a run
    /// that stops before its ledger commit can still be accounted for. `app_metadata` goes to `commitInfo` (informative only: Delta
    /// prunes old commit files, so nothing relies on it).
    ///
    /// `table` is the state the run read when it decided what to read: committing against it
    /// (not a fresh one) makes Delta's conflict check refuse the commit if another run committed
    /// any of the same sources meanwhile.
    pub async fn commit(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        files: &[WrittenFile],
        removes: &[LakeFile],
        sources: &[(String, u64)],
        app_metadata: HashMap<String, serde_json::Value>,
    ) -> Result<Option<u64>, LakeError> {
        if files.is_empty() && sources.is_empty() {
            return Ok(None);
        }
        let mut actions: Vec<Action> =
            removes.iter().map(|f| Action::Remove(f.remove_action(true))).collect();
        actions.extend(files.iter().map(|f| Action::Add(f.add_action(true))));
        let partition_by = spec.partition_by_date.then(|| vec![DATE_COLUMN.to_string()]);
        let txns = sources
            .iter()
            .map(|(s, replaced)| Transaction::new(source_app_id(s), 1 + *replaced as i64))
            .collect();
        let op = DeltaOperation::Write { mode: SaveMode::Append, partition_by, predicate: None };
        self.commit_checked(spec, table, actions, txns, app_metadata, op).await.map(Some)
    }

    /// Rewrites the manifest after a commit made `version`. A failure is said as a warning and
    /// is not an error: the commit stands, and an error here would have the caller discard the
    /// files that commit names. The next ingest, compact or `trawl manifest` repairs the list,
    /// and `verify` reports it stale until then.
    pub(super) async fn manifest_after_commit(
        &self,
        spec: &TableSpec,
        version: u64,
    ) -> Result<u64, LakeError> {
        if let Err(e) = self.write_manifest(spec).await {
            eprintln!(
                "warning: {} is committed (version {version}) but its file list for Parquet readers is \
                 not rewritten ({e}); `trawl manifest --lake {}` rewrites it",
                spec.table,
                self.root.display()
            );
        }
        Ok(version)
    }

    /// Rewrites the table's symlink-format manifest (its live files, for readers of plain
    /// Parquet) from its newest version; returns how many partitions' lists changed. Every
    /// commit does it; ingest at its start, compact before its vacuum deletes old files, and
    /// `trawl manifest` repair a list a run stopped between its commit and this left behind.
    /// On disk a lock orders the writers; on S3 conditional writes do (see `manifest`).
    pub async fn write_manifest(&self, spec: &TableSpec) -> Result<usize, LakeError> {
        if !self.has_commit(spec)? {
            return Ok(0);
        }
        let root = match &self.store {
            Store::Local(root) => root,
            Store::S3(_) => return self.write_manifest_s3(spec).await,
        };
        let dir = root.join(&spec.table);
        let lock = manifest::lock(&dir)?;
        let Some(table) = self.load_table(spec).await? else {
            return Ok(0);
        };
        manifest::write(&lock, &dir, spec.partition_by_date, &self.live_files(spec, &table)?)
    }

    /// [`Lake::write_manifest`] on S3: the lists are listed before the newest version is read,
    /// and written only if still as listed; a writer that meets another's list, which may be of
    /// a newer version, reads again.
    async fn write_manifest_s3(&self, spec: &TableSpec) -> Result<usize, LakeError> {
        let url = self.table_url(spec)?;
        let mut written = 0;
        for attempt in 0..MANIFEST_TRIES {
            let seen = manifest::s3_seen(&self.store, &spec.table)?;
            let Some(table) = self.load_table(spec).await? else { return Ok(0) };
            let live = self.live_files(spec, &table)?;
            let wrote =
                manifest::s3_write(&self.store, &spec.table, &url, spec.partition_by_date, &live, &seen)?;
            if let Some(n) = wrote {
                // A list left alone is no guard against an older writer (see `manifest`): a
                // newer version means another pass, from a fresh listing.
                let newest = table.get_latest_version().await.map_err(Self::delta_err(spec))?;
                if table.version().is_some_and(|v| newest > v) {
                    written += n;
                    continue;
                }
                return Ok(written + n);
            }
            // Writers that meet go on at different moments.
            let pause = 50 * (attempt as u64 + 1) + u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Err(LakeError::io(
            format!("rewriting the file lists of {} for Parquet readers", spec.table),
            io::Error::other(format!(
                "other runs rewrote them {MANIFEST_TRIES} times meanwhile; `trawl manifest --lake {}` \
                 rewrites them once the lake is quieter",
                self.root.display()
            )),
        ))
    }

    /// The lists of the table's manifest that do not name exactly its live files, either as of
    /// `table` or as of the newest version now (what `verify` reports); changes nothing. A run
    /// that committed since `table` was loaded rewrote its lists for its own version: a list is
    /// stale only if it matches neither.
    pub async fn stale_manifests(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
    ) -> Result<Vec<StaleList>, LakeError> {
        let stale = |live: &[LakeFile]| match &self.store {
            Store::Local(root) => manifest::stale(&root.join(&spec.table), spec.partition_by_date, live),
            Store::S3(_) => {
                let url = self.table_url(spec)?;
                manifest::s3_stale(&self.store, &spec.table, &url, spec.partition_by_date, live)
            }
        };
        let then = stale(&self.live_files(spec, table)?)?;
        if then.is_empty() {
            return Ok(then);
        }
        let Some(newest) = self.load_table(spec).await? else { return Ok(then) };
        let now = stale(&self.live_files(spec, &newest)?)?;
        let stale_then: HashSet<&str> = then.iter().map(|l| l.path.as_str()).collect();
        Ok(now.into_iter().filter(|l| stale_then.contains(l.path.as_str())).collect())
    }

    /// Which of `sources` (file hashes) the table held in the state `table` was loaded at, each
    /// with the rows its commit replaced (see [`Lake::commit`]).
    pub async fn sources_held(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        sources: &[String],
    ) -> Result<Vec<Option<u64>>, LakeError> {
        let state = table.snapshot().map_err(Self::delta_err(spec))?;
        let log_store = table.log_store();
        let mut held = Vec::with_capacity(sources.len());
        for s in sources {
            let v = state
                .transaction_version(log_store.as_ref(), source_app_id(s))
                .await
                .map_err(Self::delta_err(spec))?;
            held.push(v.map(|v| v.saturating_sub(1) as u64));
        }
        Ok(held)
    }

    /// Deletes files that were written but will not be committed.
    pub fn discard(&self, spec: &TableSpec, files: &[WrittenFile]) {
        for f in files {
            // Best effort: an orphan left here is invisible to readers of the Delta log.
            let _ = self.store.delete(&Self::in_table(spec, &f.rel_path));
        }
    }

    /// Takes a lease for a run that will write files: while the returned value lives, no
    /// cleanup removes files named after it.
    pub fn lease(&self) -> Result<Lease, LakeError> {
        self.store.lease()
    }

    /// The run whose lease named a data file, if trawl named it.
    pub fn run_of<'a>(&self, rel_path: &'a str) -> Option<&'a str> {
        run_of(rel_path)
    }

    /// Whether a data file belongs to a run that is still going (not committed yet, not orphaned).
    pub fn in_progress(&self, rel_path: &str) -> bool {
        run_of(rel_path).is_some_and(|r| self.run_alive(r))
    }

    /// Whether the run `id` still holds its lease (a live process is writing its files).
    fn run_alive(&self, id: &str) -> bool {
        self.store.lease_alive(id)
    }

    /// Parquet files in the table's folder, by path relative to it, whatever the log says.
    pub fn files_on_disk(&self, spec: &TableSpec) -> Result<Vec<String>, LakeError> {
        // The log, and the lists for Parquet readers: neither holds table data.
        let listed = self.store.list(&spec.table, &["_delta_log", manifest::DIR])?;
        Ok(listed
            .into_iter()
            .map(|l| l.rel)
            .filter(|r| r.rsplit('/').next().is_some_and(|n| n.ends_with(".parquet")))
            .collect())
    }

    /// Size and SHA-256 of a table file's bytes as stored now; the error in words.
    pub fn hash_file(&self, spec: &TableSpec, rel: &str) -> Result<(u64, String), String> {
        self.store.sha256(&Self::in_table(spec, rel))
    }

    /// Files the table's state names: its live files, with size, rows and recorded SHA-256.
    /// Every path that rewrites, lists or vouches for files (compact, cut-line recovery, the
    /// manifests, verify, orphan removal) reads them here, so a table another engine changed in
    /// ways trawl would misread is refused here too: compacting a file with a deletion vector
    /// would bring its deleted rows back for good.
    pub fn live_files(&self, spec: &TableSpec, table: &DeltaTable) -> Result<Vec<LakeFile>, LakeError> {
        let state = table.snapshot().map_err(Self::delta_err(spec))?;
        self.check_readable(spec, state)?;
        let mut out = Vec::new();
        for v in state.log_data().iter() {
            self.check_no_deletion_vector(spec, &v)?;
            // The tags are only reachable through the Add action view.
            #[allow(deprecated)]
            let add = v.add_action();
            let sha256 = add.tags.as_ref().and_then(|t| t.get(SHA256_TAG).cloned().flatten());
            out.push(LakeFile {
                rel_path: v.path().into_owned(),
                size: v.size() as u64,
                rows: v.num_records().map(|n| n as u64),
                day: add.partition_values.get(DATE_COLUMN).cloned().flatten(),
                sha256,
            });
        }
        out.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        Ok(out)
    }

    /// The live files as a reader opens them: where each is, its day, and its Add action's
    /// stats, so a query reads only the files its filters may match. Only the read path uses
    /// this; it never reads the Delta log itself, `table` has.
    pub fn scan_files(&self, spec: &TableSpec, table: &DeltaTable) -> Result<Vec<ScanFile>, LakeError> {
        let base = self.table_url(spec)?;
        let state = table.snapshot().map_err(Self::delta_err(spec))?;
        self.check_readable(spec, state)?;
        let mut out = Vec::new();
        for v in state.log_data().iter() {
            let rel = v.path();
            self.check_no_deletion_vector(spec, &v)?;
            let url = base.join(&rel).map_err(|e| LakeError::BadMeta {
                path: self.table_dir(spec).join(rel.as_ref()),
                reason: format!("the Delta log names a file whose path is no URL ({e}): the log is damaged"),
            })?;
            let day = v.partition_values_map().get(DATE_COLUMN).cloned().flatten();
            if spec.partition_by_date && day.is_none() {
                return Err(LakeError::BadMeta {
                    path: self.table_dir(spec).join(rel.as_ref()),
                    reason: format!(
                        "the Delta log of table {} names this file without its {DATE_COLUMN}: the log is \
                         damaged; run trawl verify --lake {}",
                        spec.table,
                        self.root.display()
                    ),
                });
            }
            out.push(ScanFile {
                url,
                size: v.size() as u64,
                day,
                stats: stats::read_stats(v.stats().as_deref(), spec),
            });
        }
        out.sort_by(|a, b| a.url.as_str().cmp(b.url.as_str()));
        Ok(out)
    }

    /// Refuses a table another engine changed in ways trawl's plain Parquet scan would misread:
    /// a reader version or reader feature it does not handle (deletion vectors would show
    /// deleted rows, column mapping NULL columns).
    fn check_readable(
        &self,
        spec: &TableSpec,
        state: &deltalake::table::state::DeltaTableState,
    ) -> Result<(), LakeError> {
        let protocol = state.protocol();
        let version = protocol.min_reader_version();
        let mapping = state.metadata().configuration().get(COLUMN_MAPPING_MODE).map(String::as_str);
        if !matches!(mapping, None | Some("none")) {
            return Err(self.unreadable(
                spec,
                format!("column mapping ({COLUMN_MAPPING_MODE} = {})", mapping.unwrap_or_default()),
                COLUMN_MAPPING_FIX,
            ));
        }
        if version > 3 {
            return Err(self.unreadable(
                spec,
                format!("Delta reader version {version} (trawl reads up to 3)"),
                "rewrite it with a Delta writer at reader version 3 or below, or ingest the logs into a new lake",
            ));
        }
        for feature in protocol.reader_features().unwrap_or_default() {
            let name = feature.to_string();
            if !READER_FEATURES.contains(&name.as_str()) {
                let fix = match name.as_str() {
                    "deletionVectors" => DELETION_VECTORS_FIX,
                    "columnMapping" => COLUMN_MAPPING_FIX,
                    _ => {
                        "rewrite it without that feature with the engine that added it, or ingest the logs into a new lake"
                    }
                };
                return Err(self.unreadable(spec, format!("the Delta reader feature {name}"), fix));
            }
        }
        Ok(())
    }

    /// Refuses a live file another engine marked rows of as deleted (a deletion vector).
    fn check_no_deletion_vector(
        &self,
        spec: &TableSpec,
        v: &deltalake::kernel::LogicalFileView,
    ) -> Result<(), LakeError> {
        if v.deletion_vector_descriptor().is_some() {
            return Err(self.unreadable(
                spec,
                format!("a deletion vector on {}", v.path()),
                DELETION_VECTORS_FIX,
            ));
        }
        Ok(())
    }

    fn unreadable(&self, spec: &TableSpec, feature: String, fix: &str) -> LakeError {
        LakeError::UnreadableFeature {
            table: spec.table.clone(),
            path: self.table_dir(spec),
            feature,
            fix: fix.to_string(),
        }
    }

    /// Files the log still needs: live ones, and removed ones kept for older versions until
    /// vacuum's retention has passed.
    pub async fn referenced(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
    ) -> Result<HashSet<String>, LakeError> {
        let mut set: HashSet<String> =
            self.live_files(spec, table)?.into_iter().map(|f| f.rel_path).collect();
        let state = table.snapshot().map_err(Self::delta_err(spec))?;
        let tombstones: Vec<String> = state
            .all_tombstones(table.log_store().as_ref())
            .map_ok(|t| t.path().into_owned())
            .try_collect()
            .await
            .map_err(Self::delta_err(spec))?;
        set.extend(tombstones);
        Ok(set)
    }

    /// Deletes Parquet files that no version of the table names and whose run is over (a run
    /// killed before its commit); returns their paths. Files of runs still going are left.
    ///
    /// On S3 each lease lookup is a GET, so the log and the ledger, which a lake of thousands
    /// of files mostly consists of, sift first, and each run's lease is looked up once.
    pub async fn remove_orphans(&self, spec: &TableSpec) -> Result<Vec<String>, LakeError> {
        let on_disk = self.files_on_disk(spec)?;
        if !on_disk.iter().any(|p| trawl_named(p)) {
            return Ok(Vec::new());
        }
        let Some(mut table) = self.load_table(spec).await? else {
            // Files with no log at all were not put there by trawl: not ours to delete.
            return Ok(Vec::new());
        };
        let referenced = self.referenced(spec, &table).await?;
        let unnamed: Vec<String> =
            on_disk.into_iter().filter(|p| trawl_named(p) && !referenced.contains(p)).collect();
        if unnamed.is_empty() {
            return Ok(Vec::new());
        }
        // Only files of runs the ledger does not record (see `custody`).
        let recorded = self.ledger_runs().await?;
        let mut leases = LeaseAnswers::default();
        let dead: Vec<String> = unnamed
            .into_iter()
            .filter(|p| run_of(p).is_none_or(|r| !recorded.contains(r)))
            .filter(|p| run_of(p).is_none_or(|r| !leases.alive(self, r)))
            .collect();
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        // A run seen dead above made its last commit before: the log read now names every file
        // it committed, also one it committed after the first read.
        table.update_state().await.map_err(Self::delta_err(spec))?;
        let referenced = self.referenced(spec, &table).await?;
        let mut removed = Vec::new();
        for rel in dead.into_iter().filter(|p| !referenced.contains(p)) {
            self.store.delete(&Self::in_table(spec, &rel))?;
            removed.push(rel);
        }
        self.store.remove_stale_leases(&leases.0);
        Ok(removed)
    }

    /// Merges each partition's files smaller than [`COMPACT_TARGET_BYTES`] into as few files as
    /// the writer makes, in one commit that changes no row (Delta's optimize: the old files are
    /// removed from the log, their data rewritten unchanged, `dataChange=false`).
    async fn compact_once(&self, spec: &'static TableSpec, lease: &Lease) -> Result<Compacted, LakeError> {
        let mut done = Compacted::default();
        let Some(table) = self.load_table(spec).await? else {
            return Ok(done);
        };
        let mut groups: BTreeMap<Option<String>, Vec<LakeFile>> = BTreeMap::new();
        for f in self.live_files(spec, &table)? {
            if f.size < COMPACT_TARGET_BYTES {
                groups.entry(f.day.clone()).or_default().push(f);
            }
        }
        groups.retain(|_, files| files.len() > 1);
        if groups.is_empty() {
            return Ok(done);
        }
        let mut writer = self.writer(spec, lease);
        let mut rows_in = 0u64;
        let mut removed = Vec::new();
        let rewrite = async {
            for f in groups.values().flatten() {
                let live = self.open_live(spec, f)?;
                let day = live.day;
                for batch in live.batches()? {
                    let batch = batch?;
                    rows_in += batch.num_rows() as u64;
                    writer.write(of_day(batch, day))?;
                }
                removed.push(f.clone());
            }
            Ok::<_, LakeError>(())
        };
        if let Err(e) = rewrite.await {
            self.discard(spec, &writer.finish().unwrap_or_default());
            return Err(e);
        }
        let written = writer.finish()?;
        let rows_out: u64 = written.iter().map(|f| f.rows).sum();
        if rows_out != rows_in {
            self.discard(spec, &written);
            return Err(LakeError::io(
                format!("compacting {}: read {rows_in} rows but wrote {rows_out}", spec.table),
                io::Error::other("row count changed; nothing was committed"),
            ));
        }
        let mut actions: Vec<Action> =
            removed.iter().map(|f| Action::Remove(f.remove_action(false))).collect();
        actions.extend(written.iter().map(|f| Action::Add(f.add_action(false))));
        let op = DeltaOperation::Optimize { predicate: None, target_size: COMPACT_TARGET_BYTES as i64 };
        if let Err(e) = lease.check() {
            self.discard(spec, &written);
            return Err(e);
        }
        match self.commit_checked(spec, &table, actions, Vec::new(), HashMap::new(), op).await {
            Ok(v) => done.version = Some(v),
            // A commit that may have landed names these files: the next cleanup reads the log.
            Err(e @ LakeError::CommitUnknown { .. }) => return Err(e),
            Err(e) => {
                self.discard(spec, &written);
                return Err(e);
            }
        }
        done.files_before = removed.len();
        done.files_after = written.len();
        done.rows = rows_in;
        Ok(done)
    }

    /// Rewrites the live files that hold rows of `lines` (source file, line number) without those
    /// rows; nothing is committed here: the caller puts the swap in its own commit. Row-group
    /// statistics of `source_file` and `source_line` spare reading files that cannot hold them.
    ///
    /// All lines to drop from a table go in one call: two calls could each rewrite the same file
    /// (a worker's file holds many sources' rows), and committing both copies would double it.
    pub fn without_lines(
        &self,
        spec: &'static TableSpec,
        table: &DeltaTable,
        lease: &Lease,
        lines: &[(String, i64)],
    ) -> Result<Rewrite, LakeError> {
        let mut out = Rewrite { dropped: vec![0; lines.len()], ..Rewrite::default() };
        if lines.is_empty() {
            return Ok(out);
        }
        let mut writer = self.writer(spec, lease);
        let result = (|| {
            for f in self.live_files(spec, table)? {
                let live = self.open_live(spec, &f)?;
                if !may_hold(live.builder.metadata(), lines) {
                    continue;
                }
                let day = live.day;
                let mut kept = Vec::new();
                let mut dropped = vec![0u64; lines.len()];
                for batch in live.batches()? {
                    let batch = batch?;
                    let keep = rows_not_in(&batch, lines, &mut dropped);
                    kept.push(filter_record_batch(&batch, &keep).expect("mask has the batch's length"));
                }
                if dropped.iter().all(|n| *n == 0) {
                    continue;
                }
                for batch in kept {
                    writer.write(of_day(batch, day))?;
                }
                for (total, n) in out.dropped.iter_mut().zip(dropped) {
                    *total += n;
                }
                out.remove.push(f);
            }
            Ok(())
        })();
        let written = writer.finish();
        match (result, written) {
            (Ok(()), Ok(w)) => {
                out.add = w;
                Ok(out)
            }
            (Err(e), Ok(w)) => {
                self.discard(spec, &w);
                Err(e)
            }
            // Files of a writer that failed to finish are orphans, removed by the next run.
            (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(e),
        }
    }

    /// A live file opened for rewriting, with the day its partition stands for.
    fn open_live(&self, spec: &TableSpec, f: &LakeFile) -> Result<LiveFile, LakeError> {
        let path = self.store.path_of(&Self::in_table(spec, &f.rel_path));
        let day = f
            .day
            .as_deref()
            .map(|d| {
                day_from_string(d).ok_or_else(|| LakeError::BadMeta {
                    path: self.table_dir(spec),
                    reason: format!("partition date={d} is not a day"),
                })
            })
            .transpose()?;
        let file = self.store.blob(&Self::in_table(spec, &f.rel_path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| LakeError::parquet(path.clone(), e))?
            .with_batch_size(64 * 1024);
        Ok(LiveFile { path, day, builder })
    }

    /// Deletes files the log removed more than `retention` ago (Delta vacuum, tombstones only:
    /// files no log entry names are [`Lake::remove_orphans`]'s, which knows about live runs).
    pub async fn vacuum(&self, spec: &TableSpec, retention: chrono::Duration) -> Result<usize, LakeError> {
        let Some(table) = self.load_table(spec).await? else {
            return Ok(0);
        };
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .await
            .map_err(Self::delta_err(spec))?;
        Ok(metrics.files_deleted.len())
    }
}

/// The run that wrote a data file, from its name (`part-<run>-<n>.zstd.parquet`).
fn run_of(rel_path: &str) -> Option<&str> {
    let name = rel_path.rsplit('/').next()?;
    let rest = name.strip_prefix("part-")?;
    let (run, _) = rest.split_once('-')?;
    (run.len() == 32 && run.bytes().all(|b| b.is_ascii_hexdigit())).then_some(run)
}

/// Whether each run still held its lease when first asked, so a cleanup asks once per run,
/// not once per file. Either answer may be kept: a run found dead never comes back (its lease
/// is over for good), and one found alive keeps its files, which is always safe.
#[derive(Default)]
struct LeaseAnswers(HashMap<String, bool>);

impl LeaseAnswers {
    fn alive(&mut self, lake: &Lake, run: &str) -> bool {
        *self.0.entry(run.to_string()).or_insert_with(|| lake.run_alive(run))
    }
}

/// A live file as a query reads it.
#[derive(Debug, Clone)]
pub struct ScanFile {
    /// Where it is (a `file:` URL today).
    pub url: Url,
    pub size: u64,
    /// Partition (`YYYY-MM-DD`), for date-partitioned tables.
    pub day: Option<String>,
    pub stats: FileStats,
}

/// A file the table's current state names.
#[derive(Debug, Clone)]
pub struct LakeFile {
    /// Path inside the table folder.
    pub rel_path: String,
    pub size: u64,
    pub rows: Option<u64>,
    /// Partition (`YYYY-MM-DD`), for date-partitioned tables.
    pub day: Option<String>,
    /// SHA-256 recorded when the file was written (absent for files from before hashes were kept).
    pub sha256: Option<String>,
}

impl LakeFile {
    /// The Delta Remove action that takes this file out of the table.
    fn remove_action(&self, data_change: bool) -> Remove {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Remove {
            path: self.rel_path.clone(),
            data_change,
            deletion_timestamp: Some(now),
            extended_file_metadata: Some(true),
            size: Some(self.size as i64),
            partition_values: Some(
                self.day.iter().map(|d| (DATE_COLUMN.to_string(), Some(d.clone()))).collect(),
            ),
            ..Remove::default()
        }
    }
}

/// Files to swap in a table so that some rows are gone and every other row stays.
#[derive(Debug, Default)]
pub struct Rewrite {
    pub remove: Vec<LakeFile>,
    pub add: Vec<WrittenFile>,
    /// Rows left out, for each of the lines asked for.
    pub dropped: Vec<u64>,
}

/// A live file being read back to be rewritten.
struct LiveFile {
    path: PathBuf,
    day: Option<i32>,
    builder: ParquetRecordBatchReaderBuilder<Blob>,
}

impl LiveFile {
    /// Its rows, in batches, errors naming the file.
    fn batches(self) -> Result<impl Iterator<Item = Result<RecordBatch, LakeError>>, LakeError> {
        let path = self.path;
        let reader = self.builder.build().map_err(|e| LakeError::parquet(path.clone(), e))?;
        Ok(reader.map(move |b| b.map_err(|e| LakeError::parquet(path.clone(), e.into()))))
    }
}

/// Rows of one partition (or of an unpartitioned table), as writers take them.
fn of_day(batch: RecordBatch, day: Option<i32>) -> Batch {
    let days = day.map_or_else(Vec::new, |d| vec![d; batch.num_rows()]);
    Batch { batch, days }
}

/// What `compact` did to one table.
#[derive(Debug, Default)]
pub struct Compacted {
    pub files_before: usize,
    pub files_after: usize,
    pub rows: u64,
    pub version: Option<u64>,
}

/// The Delta application-transaction id that marks a source as held by a table.
fn source_app_id(file_sha256: &str) -> String {
    format!("trawl-source-{file_sha256}")
}

fn delta_type(ty: ColumnType) -> DeltaType {
    match ty {
        ColumnType::String => DeltaType::STRING,
        ColumnType::Long => DeltaType::LONG,
        ColumnType::Int => DeltaType::INTEGER,
        ColumnType::Timestamp => DeltaType::TIMESTAMP,
        ColumnType::Binary => DeltaType::BINARY,
        ColumnType::IntList => DeltaType::Array(Box::new(ArrayType::new(DeltaType::INTEGER, true))),
        ColumnType::StringMap => {
            DeltaType::Map(Box::new(MapType::new(DeltaType::STRING, DeltaType::STRING, true)))
        }
    }
}

/// zstd level 1, big row groups, page statistics where they prune; no dictionary where values
/// rarely repeat.
///
/// Measured on 1 GB of Squid native log (benches/README.md, A/B medians of 3): zstd 1 against 3
/// is 14% faster for 1% more bytes; no statistics on free text (URLs, agents: filters on them
/// are `LIKE`s that statistics cannot serve) 8% faster; no dictionary on near-unique numbers
/// (times, line numbers, sizes) 10% faster and 5% smaller, since the dictionary only fills up
/// and falls back. Together 18% faster, 4% smaller. Those numbers delta-encoded (times and line
/// numbers rise, sizes are small): 5% less CPU and 6% fewer bytes again, zstd having less to do
/// (second round, 420 MB, A/B in turn), and the same answers as fast.
fn writer_properties(spec: &TableSpec) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_statistics_truncate_length(Some(64))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("trawl {}", env!("CARGO_PKG_VERSION")));
    let present: Vec<&str> =
        FREE_TEXT.iter().chain(NEAR_UNIQUE).copied().filter(|c| spec.index_of(c).is_some()).collect();
    for c in present {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
        if FREE_TEXT.contains(&c) {
            b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
        } else {
            b = b.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
        }
    }
    b.build()
}

/// Long text that is searched with `LIKE`, if at all: no dictionary, no statistics.
const FREE_TEXT: &[&str] = &["url", "path", "user_agent", "referrer", "line", "raw"];
/// Numbers that rarely repeat: statistics (time ranges!) but no dictionary.
const NEAR_UNIQUE: &[&str] = &["ts", "source_line", "duration_ms", "response_bytes", "request_bytes", "size"];

/// A Parquet file written and closed, waiting for its commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenFile {
    /// Path inside the table folder, as the Delta log records it.
    pub rel_path: String,
    /// Local day (partition), for date-partitioned tables.
    pub day: Option<i32>,
    pub size: u64,
    pub rows: u64,
    /// SHA-256 of the file's bytes, computed while writing.
    pub sha256: String,
    /// Delta stats JSON (row count, per-column ranges and null counts), from the file's footer.
    #[serde(default)]
    pub stats: Option<String>,
}

impl WrittenFile {
    /// The Delta Add action for this file, its hash in the tags.
    fn add_action(&self, data_change: bool) -> Add {
        let partition_values = match self.day {
            Some(d) => HashMap::from([(DATE_COLUMN.to_string(), Some(day_string(d)))]),
            None => HashMap::new(),
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Add {
            path: self.rel_path.clone(),
            partition_values,
            size: self.size as i64,
            modification_time: now,
            data_change,
            stats: Some(
                self.stats
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({ "numRecords": self.rows }).to_string()),
            ),
            tags: Some(HashMap::from([(SHA256_TAG.to_string(), Some(self.sha256.clone()))])),
            ..Add::default()
        }
    }
}

/// A `Write` that hashes and counts what passes through it.
struct HashingWriter {
    inner: Sink,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct OpenFile {
    day: Option<i32>,
    rel_path: String,
    writer: ArrowWriter<HashingWriter>,
    rows: u64,
    last_used: u64,
}

/// One worker's Parquet files for one table, one open file per partition it has seen.
pub struct TableWriter {
    store: Store,
    /// Run id that names the files.
    run: String,
    /// Bytes the open writers may buffer before the largest ends its row group early.
    budget: usize,
    /// Most bytes the open writers buffered at once, measured before the budget is enforced.
    peak: usize,
    spec: &'static TableSpec,
    props: WriterProperties,
    open: Vec<OpenFile>,
    done: Vec<WrittenFile>,
    clock: u64,
}

impl TableWriter {
    /// Writes a batch, routing each row to its day's file.
    pub fn write(&mut self, batch: Batch) -> Result<(), LakeError> {
        let Batch { batch, days } = batch;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if days.is_empty() {
            return self.write_to(None, &batch);
        }
        let first = days[0];
        if days.iter().all(|d| *d == first) {
            return self.write_to(Some(first), &batch);
        }
        let mut distinct = days.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let days = Int32Array::from(days);
        for day in distinct {
            let mask: BooleanArray = days.iter().map(|d| Some(d == Some(day))).collect();
            let part = filter_record_batch(&batch, &mask).expect("mask has the batch's length");
            self.write_to(Some(day), &part)?;
        }
        Ok(())
    }

    fn write_to(&mut self, day: Option<i32>, batch: &RecordBatch) -> Result<(), LakeError> {
        self.clock += 1;
        let idx = match self.open.iter().position(|f| f.day == day) {
            Some(i) => i,
            None => {
                if self.open.len() >= OPEN_FILES {
                    let oldest =
                        (0..self.open.len()).min_by_key(|i| self.open[*i].last_used).expect("non-empty");
                    self.close(oldest)?;
                }
                self.start(day)?;
                self.open.len() - 1
            }
        };
        let f = &mut self.open[idx];
        f.last_used = self.clock;
        let (store, spec) = (&self.store, self.spec);
        f.writer
            .write(batch)
            .map_err(|e| LakeError::parquet(store.path_of(&Lake::in_table(spec, &f.rel_path)), e))?;
        f.rows += batch.num_rows() as u64;
        if f.rows >= FILE_ROWS {
            self.close(idx)?;
        }
        self.peak = self.peak.max(self.buffered_bytes());
        self.keep_within_budget()
    }

    /// Bounds memory: sends the largest unsent upload as a part if S3 takes it, else ends the
    /// row group of the file holding the most unwritten bytes (whose encoded bytes then wait
    /// in its upload, sent when that makes a part).
    fn keep_within_budget(&mut self) -> Result<(), LakeError> {
        if self.buffered_bytes() <= self.budget || self.send_largest_upload()? {
            return Ok(());
        }
        if let Some(f) = self.open.iter_mut().max_by_key(|f| f.writer.memory_size()) {
            let path = self.store.path_of(&Lake::in_table(self.spec, &f.rel_path));
            f.writer.flush().map_err(|e| LakeError::parquet(path, e))?;
        }
        if self.buffered_bytes() > self.budget {
            self.send_largest_upload()?;
        }
        Ok(())
    }

    /// Uploads the largest unsent part of the open files, if it is large enough to be a part;
    /// whether that brought the writers within their budget.
    fn send_largest_upload(&mut self) -> Result<bool, LakeError> {
        let Some(f) = self.open.iter_mut().max_by_key(|f| f.writer.inner().inner.unsent()) else {
            return Ok(false);
        };
        let path = self.store.path_of(&Lake::in_table(self.spec, &f.rel_path));
        // Only the bytes already handed to the sink move, in order: the file stays as written.
        if !f
            .writer
            .inner_mut()
            .inner
            .send_early()
            .map_err(|e| LakeError::io(format!("uploading {}", path.display()), e))?
        {
            return Ok(false);
        }
        Ok(self.buffered_bytes() <= self.budget)
    }

    fn start(&mut self, day: Option<i32>) -> Result<(), LakeError> {
        let name = format!("part-{}-{}.zstd.parquet", self.run, uuid::Uuid::new_v4().simple());
        let rel_path = match day {
            Some(d) => format!("{DATE_COLUMN}={}/{name}", day_string(d)),
            None => name,
        };
        let path = self.path_of(&rel_path);
        let file = self.store.sink(&Lake::in_table(self.spec, &rel_path))?;
        let sink = HashingWriter { inner: file, hasher: Sha256::new(), bytes: 0 };
        let writer = ArrowWriter::try_new(sink, self.spec.arrow_schema(), Some(self.props.clone()))
            .map_err(|e| LakeError::parquet(path.clone(), e))?;
        self.open.push(OpenFile { day, rel_path, writer, rows: 0, last_used: self.clock });
        Ok(())
    }

    fn close(&mut self, idx: usize) -> Result<(), LakeError> {
        let f = self.open.swap_remove(idx);
        let path = self.path_of(&f.rel_path);
        let perr = |e| LakeError::parquet(path.clone(), e);
        let mut writer = f.writer;
        writer.flush().map_err(perr)?;
        let stats = stats::delta_stats(writer.flushed_row_groups(), f.rows);
        let sink = writer.into_inner().map_err(perr)?;
        sink.inner.finish().map_err(|e| LakeError::io(format!("writing {}", path.display()), e))?;
        self.done.push(WrittenFile {
            rel_path: f.rel_path,
            day: f.day,
            size: sink.bytes,
            rows: f.rows,
            sha256: crate::digest::hex(&sink.hasher.finalize()),
            stats: Some(stats),
        });
        Ok(())
    }

    /// Where a file of this writer's table is, for messages.
    fn path_of(&self, rel: &str) -> PathBuf {
        self.store.path_of(&Lake::in_table(self.spec, rel))
    }

    /// The same writer with another memory budget (see [`WRITER_BUFFER_BYTES`]).
    pub fn with_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// Most bytes the open files held at once, by the writers' own estimate, before the
    /// budget made the largest flush: the writer's share of a worker's peak memory.
    pub fn peak_buffered(&self) -> usize {
        self.peak
    }

    /// Closes every open file and returns all files this writer produced.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>, LakeError> {
        while !self.open.is_empty() {
            self.close(self.open.len() - 1)?;
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// Memory the open writers hold now, by their own estimate, with what an S3 lake's files
    /// hold unsent (for tests of bounded memory).
    pub fn buffered_bytes(&self) -> usize {
        self.open.iter().map(|f| f.writer.memory_size() + f.writer.inner().inner.unsent()).sum()
    }
}

/// Whether any row group's statistics allow a row of `lines` (no statistics: it may).
fn may_hold(meta: &datafusion::parquet::file::metadata::ParquetMetaData, lines: &[(String, i64)]) -> bool {
    use datafusion::parquet::file::statistics::Statistics;
    let leaf =
        |name: &str| meta.file_metadata().schema_descr().columns().iter().position(|c| c.name() == name);
    let (Some(fi), Some(li)) = (leaf("source_file"), leaf("source_line")) else {
        return true;
    };
    meta.row_groups().iter().any(|rg| {
        lines.iter().any(|(file, line)| {
            let line_ok = match rg.column(li).statistics() {
                Some(Statistics::Int64(s)) => {
                    s.min_opt().is_none_or(|m| m <= line) && s.max_opt().is_none_or(|m| m >= line)
                }
                _ => true,
            };
            let file_ok = match rg.column(fi).statistics() {
                Some(Statistics::ByteArray(s)) => {
                    s.min_opt().is_none_or(|m| m.data() <= file.as_bytes())
                        && s.max_opt().is_none_or(|m| m.data() >= file.as_bytes())
                }
                _ => true,
            };
            line_ok && file_ok
        })
    })
}

/// A mask keeping the rows that are not one of `lines`, counting those left out per line.
fn rows_not_in(batch: &RecordBatch, lines: &[(String, i64)], dropped: &mut [u64]) -> BooleanArray {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    let n = batch.num_rows();
    let (Some(files), Some(nos)) = (batch.column_by_name("source_file"), batch.column_by_name("source_line"))
    else {
        return BooleanArray::from(vec![true; n]);
    };
    let cast = datafusion::arrow::compute::cast(files, &datafusion::arrow::datatypes::DataType::Utf8)
        .expect("source_file is text");
    let files = cast.as_string::<i32>();
    let nos = nos.as_primitive::<Int64Type>();
    (0..n)
        .map(|i| {
            let hit = (!files.is_null(i) && !nos.is_null(i))
                .then(|| lines.iter().position(|(f, l)| nos.value(i) == *l && files.value(i) == f))
                .flatten();
            if let Some(k) = hit {
                dropped[k] += 1;
            }
            Some(hit.is_none())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, new_null_array};
    use datafusion::arrow::datatypes::DataType;
    use object_store::ObjectStoreExt;

    use super::*;
    use crate::schema::PROXY;

    /// `rows` proxy rows whose URLs (`len` bytes each) barely compress, so a day's file holds
    /// megabytes of encoded bytes as an upload buffer would.
    fn noisy_rows(rows: usize, len: usize, seed: &mut u64) -> RecordBatch {
        let schema = PROXY.arrow_schema();
        let mut text = || {
            (0..len)
                .map(|_| {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    (b'0' + (*seed % 64) as u8) as char
                })
                .collect::<String>()
        };
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match (f.name().as_str(), f.data_type()) {
                    ("url", _) => Arc::new(StringArray::from_iter_values((0..rows).map(|_| text()))),
                    (_, DataType::Int64) if !f.is_nullable() => {
                        Arc::new(Int64Array::from_iter_values(0..rows as i64))
                    }
                    (_, DataType::Utf8) if !f.is_nullable() => Arc::new(StringArray::from(vec!["t"; rows])),
                    (_, ty) => new_null_array(ty, rows),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("columns of the schema")
    }

    #[test]
    fn writers_on_s3_count_unsent_uploads_in_their_budget() {
        let (store, objects) = Store::in_memory_s3();
        let budget = 8 << 20;
        let mut w = TableWriter {
            store,
            run: "0".repeat(32),
            spec: &PROXY,
            props: writer_properties(&PROXY),
            open: Vec::new(),
            done: Vec::new(),
            clock: 0,
            budget,
            peak: 0,
        };
        let (mut seed, batch_rows, len) = (0x9e37_79b9_7f4a_7c15u64, 1000, 1024);
        let mut most = 0;
        // Uploads under S3's smallest part cannot be sent early: with a budget this small they
        // alone may pass it, by less than a part per open file.
        let bound = budget.max(OPEN_FILES * store::MIN_PART_BYTES) + batch_rows * len * 2;
        // Four days written in turn, 10 MiB of URLs each: every file's encoded bytes pass the
        // smallest part S3 takes, and unsent they would hold over 3 budgets.
        for round in 0..10 {
            for day in 0..4 {
                let batch = noisy_rows(batch_rows, len, &mut seed);
                w.write(of_day(batch, Some(19_844 + day))).expect("written");
                let unsent: usize = w.open.iter().map(|f| f.writer.inner().inner.unsent()).sum();
                let held: usize = w.open.iter().map(|f| f.writer.memory_size()).sum::<usize>() + unsent;
                most = most.max(held);
                assert!(held <= bound, "round {round}, day {day}: {held} held, over {bound}");
            }
        }
        // The peak the ingest report shows counts the unsent uploads too (taken before the
        // budget is enforced, so it is at least what stayed held).
        assert!(w.peak_buffered() >= most, "{} < {most}", w.peak_buffered());
        let files = w.finish().expect("closed");
        assert_eq!(files.len(), 4);
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 40_000);
        // Each file is whole in the bucket, as hashed while it was written.
        for f in &files {
            let key = object_store::path::Path::from(format!("lake/proxy/{}", f.rel_path));
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let bytes = rt.block_on(async { objects.get(&key).await.unwrap().bytes().await.unwrap() });
            assert_eq!(bytes.len() as u64, f.size);
            assert_eq!(crate::digest::hex(&Sha256::digest(&bytes)), f.sha256);
        }
    }
}
