//! Committing against the state a run read, with trawl's own conflict rules.
//!
//! delta-rs lets an optimize (`dataChange=false`) remove a file a concurrent commit already
//! removed, so two compacts (or a compact and a cut-line rewrite) could each put a copy of the
//! same rows back. Here delta-rs is told never to retry; when the table moved on, the commits
//! that came in between are read and this commit is refused if any of them removed a file this
//! one removes, recorded a source this one records, or changed the table's metadata. Otherwise
//! the commit is tried again on top of them: the check and the write always see the same log.

use std::collections::{HashMap, HashSet};

use deltalake::DeltaTable;
use deltalake::DeltaTableError;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::DeltaOperation;

use super::{Compacted, Lake, Lease};
use crate::error::LakeError;
use crate::schema::TableSpec;

/// Commits raced and lost before giving up: each loss means another commit really came in.
const ATTEMPTS: usize = 64;
/// Times a compact that lost a race is planned again before it reports the race.
const COMPACT_RETRIES: usize = 3;
/// The `commitInfo` key holding the id of the call that made a commit.
pub(super) const COMMIT_ID_KEY: &str = "trawlCommitId";

/// Whether `actions` (one version's) are the commit marked with `id`.
fn carries_id(actions: &[Action], id: &str) -> bool {
    actions.iter().any(|a| match a {
        Action::CommitInfo(ci) => ci.info.get(COMMIT_ID_KEY).and_then(|v| v.as_str()) == Some(id),
        _ => false,
    })
}

impl Lake {
    /// Merges each partition's small files (see `compact_once`). When another run removed one of
    /// the same files first (another compact, a cut-line rewrite), this run's copy is discarded
    /// and the merge planned again from the table as it is now.
    pub async fn compact(&self, spec: &'static TableSpec, lease: &Lease) -> Result<Compacted, LakeError> {
        let mut tries = 0;
        loop {
            match self.compact_once(spec, lease).await {
                Err(LakeError::ConcurrentRemove { .. }) if tries < COMPACT_RETRIES => tries += 1,
                // Its files may be named by a commit that landed: the next cleanup reads the log.
                Err(e @ LakeError::CommitUnknown { .. }) => return Err(e),
                Err(e) => {
                    // Whatever of this table's merge is on disk was never committed.
                    let others: Vec<String> = crate::schema::all_tables()
                        .iter()
                        .filter(|t| t.table != spec.table)
                        .map(|t| t.table.clone())
                        .collect();
                    self.remove_own(lease, &others);
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    /// Commits `actions` against the state `table` was loaded at; see the module's rules.
    ///
    /// Each call marks its commit with an id of its own in `commitInfo` ([`COMMIT_ID_KEY`]): an
    /// attempt whose PUT landed but whose reply was lost (object_store retries a 5xx and then
    /// meets its own file, a timeout) is then found in the log and taken for the success it
    /// was, not for another run's commit. When the log cannot tell (it cannot be read), the
    /// error says the outcome is unknown, and the caller must not delete the files it named.
    pub(super) async fn commit_checked(
        &self,
        spec: &TableSpec,
        table: &DeltaTable,
        actions: Vec<Action>,
        txns: Vec<Transaction>,
        mut metadata: HashMap<String, serde_json::Value>,
        op: DeltaOperation,
    ) -> Result<u64, LakeError> {
        let err = |e| LakeError::delta(&spec.table, e);
        let unknown = |e: &dyn std::fmt::Display| LakeError::CommitUnknown {
            table: spec.table.clone(),
            reason: e.to_string(),
        };
        let commit_id = uuid::Uuid::new_v4().simple().to_string();
        metadata.insert(COMMIT_ID_KEY.to_string(), serde_json::Value::String(commit_id.clone()));
        let removes: HashSet<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove(r) => Some(r.path.as_str()),
                _ => None,
            })
            .collect();
        let sources: HashSet<&str> = txns.iter().map(|t| t.app_id.as_str()).collect();
        let props = CommitProperties::default()
            .with_application_transactions(txns.clone())
            .with_metadata(metadata)
            .with_max_retries(0);
        let mut base = table.clone();
        for _ in 0..ATTEMPTS {
            let snapshot = base.snapshot().map_err(err)?;
            let from = snapshot.version();
            let attempt = CommitBuilder::from(props.clone())
                .with_actions(actions.clone())
                .build(Some(snapshot), base.log_store(), op.clone())
                .await;
            let failed = match attempt {
                Ok(done) => return self.manifest_after_commit(spec, done.version()).await,
                Err(DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) }) => None,
                Err(DeltaTableError::Transaction { source: TransactionError::CommitConflict(c) }) => {
                    return Err(LakeError::Concurrent { table: spec.table.clone(), conflict: c.to_string() });
                }
                Err(e) => Some(e),
            };
            // The version was taken, or the attempt failed without saying whether it landed:
            // the log says which, and who committed meanwhile.
            let log = base.log_store();
            let latest = log.get_latest_version(from).await.map_err(|e| unknown(&e))?;
            let mut since = Vec::new();
            for v in from + 1..=latest {
                let Some(bytes) = log.read_commit_entry(v).await.map_err(|e| unknown(&e))? else { continue };
                since.push((v, deltalake::logstore::get_actions(v, &bytes).map_err(|e| unknown(&e))?));
            }
            if let Some((v, _)) = since.iter().find(|(_, acts)| carries_id(acts, &commit_id)) {
                return self.manifest_after_commit(spec, *v).await;
            }
            if let Some(e) = failed {
                // Not in the log now, but a request cut off by a timeout may still land.
                return Err(unknown(&e));
            }
            // Someone else committed after `base`: judge their commits, then build on them.
            for (v, acts) in since {
                for a in acts {
                    match a {
                        Action::Remove(r) if removes.contains(r.path.as_str()) => {
                            return Err(LakeError::ConcurrentRemove {
                                table: spec.table.clone(),
                                path: r.path,
                                version: v,
                            });
                        }
                        Action::Txn(t) if sources.contains(t.app_id.as_str()) => {
                            return Err(LakeError::Concurrent {
                                table: spec.table.clone(),
                                conflict: format!("version {v} recorded source {}", t.app_id),
                            });
                        }
                        Action::Metadata(_) | Action::Protocol(_) => {
                            return Err(LakeError::Concurrent {
                                table: spec.table.clone(),
                                conflict: format!("version {v} changed the table's metadata"),
                            });
                        }
                        _ => {}
                    }
                }
            }
            base.update_incremental(Some(latest)).await.map_err(err)?;
        }
        Err(LakeError::Concurrent {
            table: spec.table.clone(),
            conflict: format!("{ATTEMPTS} other commits came in while this one tried"),
        })
    }
}
