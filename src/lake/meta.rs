//! `trawl.json` made safe: created exclusively, and checked against the zone each Delta table
//! records in its metadata (`configuration`, key [`ZONE_KEY`]) when it is created.
//!
//! Two first ingests racing with different zones cannot both win: `trawl.json` is created only
//! if absent (on disk a file of its own hard-linked into place, on S3 a PUT with `If-None-Match`),
//! and the loser reads back what won. An edited `trawl.json` is refused; a deleted one is
//! recreated only from the tables' record.

use super::store::Store;
use super::{FORMAT_VERSION, LakeMeta, META_FILE};
use crate::error::LakeError;
use crate::schema::all_tables;

/// Key of the lake's time zone in each table's Delta metadata `configuration`.
pub const ZONE_KEY: &str = "trawl.timeZone";

/// The zone the lake's tables record, with the table that says so; tables that disagree are an
/// error. `None` for a lake whose tables predate the record, or that has none yet.
pub(super) fn recorded_zone(store: &Store) -> Result<Option<(String, String)>, LakeError> {
    let mut found: Option<(String, String)> = None;
    for spec in all_tables() {
        let Some(zone) = table_zone(store, &spec.table)? else { continue };
        match &found {
            Some((t, z)) if *z != zone => {
                return Err(LakeError::BadMeta {
                    path: store.shown(),
                    reason: format!(
                        "table {t} records time zone {z} and table {} records {zone}: the lake was put \
                         together from two lakes",
                        spec.table
                    ),
                });
            }
            Some(_) => {}
            None => found = Some((spec.table.clone(), zone)),
        }
    }
    Ok(found)
}

/// The zone one table's creating commit recorded (the first commit holds the table's metadata;
/// trawl never changes it afterwards).
fn table_zone(store: &Store, table: &str) -> Result<Option<String>, LakeError> {
    let first = format!("{table}/_delta_log/{:020}.json", 0);
    let Some(bytes) = store.read(&first)? else {
        return zone_from_checkpoint(store, table);
    };
    for line in String::from_utf8_lossy(&bytes).lines() {
        let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let Some(zone) = action.pointer("/metaData/configuration").and_then(|c| c.get(ZONE_KEY)) {
            return Ok(zone.as_str().map(str::to_string));
        }
    }
    Ok(None)
}

/// The zone of a table whose first commit file Delta's log cleanup removed (it keeps the
/// metadata in a checkpoint): delta-rs reads it, on a thread of its own so that this works from
/// inside an async caller too.
fn zone_from_checkpoint(store: &Store, table: &str) -> Result<Option<String>, LakeError> {
    if !has_log(store, table)? {
        return Ok(None);
    }
    let url = store.dir_url(table)?;
    let name = table.to_string();
    let loaded = std::thread::scope(|s| {
        s.spawn(|| crate::runtime().block_on(deltalake::open_table(url)))
            .join()
            .expect("no panic loading a table")
    });
    let table = loaded.map_err(|e| LakeError::delta(&name, e))?;
    let state = table.snapshot().map_err(|e| LakeError::delta(&name, e))?;
    Ok(state.table_config().unknown_properties.get(ZONE_KEY).cloned())
}

/// Whether the folder already holds Delta tables (a lake whose `trawl.json` is gone).
pub(super) fn has_tables(store: &Store) -> Result<bool, LakeError> {
    for t in all_tables() {
        if has_log(store, &t.table)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the table has a Delta log folder.
fn has_log(store: &Store, table: &str) -> Result<bool, LakeError> {
    store.has_folder(&format!("{table}/_delta_log"))
}

/// Writes `trawl.json` for `zone` unless one exists; returns the one on disk afterwards (ours,
/// or the one another run created first).
pub(super) fn create_exclusively(store: &Store, zone: &str) -> Result<LakeMeta, LakeError> {
    let meta = LakeMeta {
        format_version: FORMAT_VERSION,
        time_zone: zone.to_string(),
        created_by: format!("trawl {}", env!("CARGO_PKG_VERSION")),
    };
    let json = serde_json::to_string_pretty(&meta).expect("plain struct");
    if store.create_new(META_FILE, json.as_bytes())? {
        return Ok(meta);
    }
    let path = store.path_of(META_FILE);
    let text = store.read(META_FILE)?.ok_or_else(|| LakeError::BadMeta {
        path: path.clone(),
        reason: "it existed a moment ago and is gone: another run is deleting the lake?".into(),
    })?;
    serde_json::from_slice(&text).map_err(|e| LakeError::BadMeta { path, reason: e.to_string() })
}
