//! `trawl.json` made safe: created exclusively, and checked against the zone each Delta table
//! records in its metadata (`configuration`, key [`ZONE_KEY`]) when it is created.
//!
//! Two first ingests racing with different zones cannot both win: each writes a file of its own
//! and hard-links it to `trawl.json`, which fails when the name exists; the loser reads back what
//! won. An edited `trawl.json` is refused; a deleted one is recreated only from the tables' record.

use std::fs;
use std::io::{self, BufRead};
use std::path::Path;

use super::{FORMAT_VERSION, LakeMeta, META_FILE};
use crate::error::LakeError;
use crate::schema::all_tables;

/// Key of the lake's time zone in each table's Delta metadata `configuration`.
pub const ZONE_KEY: &str = "trawl.timeZone";

/// The zone the lake's tables record, with the table that says so; tables that disagree are an
/// error. `None` for a lake whose tables predate the record, or that has none yet.
pub(super) fn recorded_zone(root: &Path) -> Result<Option<(String, String)>, LakeError> {
    let mut found: Option<(String, String)> = None;
    for spec in all_tables() {
        let Some(zone) = table_zone(&root.join(&spec.table))? else { continue };
        match &found {
            Some((t, z)) if *z != zone => {
                return Err(LakeError::BadMeta {
                    path: root.to_path_buf(),
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
fn table_zone(dir: &Path) -> Result<Option<String>, LakeError> {
    let first = dir.join("_delta_log").join(format!("{:020}.json", 0));
    let file = match fs::File::open(&first) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return zone_from_checkpoint(dir),
        Err(e) => return Err(LakeError::io(format!("reading {}", first.display()), e)),
    };
    for line in io::BufReader::new(file).lines() {
        let line = line.map_err(|e| LakeError::io(format!("reading {}", first.display()), e))?;
        let Ok(action) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if let Some(zone) = action.pointer("/metaData/configuration").and_then(|c| c.get(ZONE_KEY)) {
            return Ok(zone.as_str().map(str::to_string));
        }
    }
    Ok(None)
}

/// The zone of a table whose first commit file Delta's log cleanup removed (it keeps the
/// metadata in a checkpoint): delta-rs reads it, on a thread of its own so that this works from
/// inside an async caller too.
fn zone_from_checkpoint(dir: &Path) -> Result<Option<String>, LakeError> {
    if !dir.join("_delta_log").is_dir() {
        return Ok(None);
    }
    let bad = |reason: String| LakeError::BadMeta { path: dir.to_path_buf(), reason };
    let abs = dir.canonicalize().map_err(|e| LakeError::io(format!("resolving {}", dir.display()), e))?;
    let url = url::Url::from_directory_path(&abs)
        .map_err(|()| bad("path cannot be written as a file URL".into()))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
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
pub(super) fn has_tables(root: &Path) -> bool {
    all_tables().iter().any(|t| root.join(&t.table).join("_delta_log").is_dir())
}

/// Writes `trawl.json` for `zone` unless one exists; returns the one on disk afterwards (ours,
/// or the one another run created first).
pub(super) fn create_exclusively(root: &Path, zone: &str) -> Result<LakeMeta, LakeError> {
    let meta = LakeMeta {
        format_version: FORMAT_VERSION,
        time_zone: zone.to_string(),
        created_by: format!("trawl {}", env!("CARGO_PKG_VERSION")),
    };
    fs::create_dir_all(root).map_err(|e| LakeError::io(format!("creating {}", root.display()), e))?;
    let path = root.join(META_FILE);
    let tmp = root.join(format!("{META_FILE}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let json = serde_json::to_string_pretty(&meta).expect("plain struct");
    let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
    fs::write(&tmp, json.as_bytes()).map_err(|e| LakeError::io(ctx("writing", &tmp), e))?;
    // The link is made whole or not at all, and never replaces: a reader sees no half file.
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(meta),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(&path).map_err(|e| LakeError::io(ctx("reading", &path), e))?;
            serde_json::from_str(&text).map_err(|e| LakeError::BadMeta { path, reason: e.to_string() })
        }
        Err(e) => Err(LakeError::io(ctx("creating", &path), e)),
    }
}
