//! Where a lake's bytes live: the one place that turns a lake location into storage. A local
//! folder goes through `std::fs`, whose exclusive links, renames and file locks give the local
//! guarantees; `s3://bucket/prefix` goes through object_store's S3 client, where every PUT of a
//! whole object is atomic and `PutMode::Create` (`If-None-Match: *`) fails when the key exists.
//!
//! Nothing here knows the lake's layout: callers name objects by their path inside the lake
//! (`proxy/_delta_log`, `trawl.json`). Run leases live here too, since what a lease can rest on
//! is a property of the storage: an OS file lock on disk, an expiring object on S3.

use std::collections::HashMap;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use datafusion::parquet::file::reader::{ChunkReader, Length};
use deltalake::logstore::{
    DeltaIOStorageBackend, IORuntime, LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef,
    StorageConfig, default_logstore, logstore_factories, object_store_factories,
};
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};
use url::Url;

use super::location::Location;
use crate::error::LakeError;

mod profile;

/// Where run leases are kept, inside the lake.
pub(crate) const RUNS_DIR: &str = "_trawl/runs";
/// An S3 run lease not renewed for this long is taken for a crashed run's: cleanups may then
/// delete the files named after it.
pub const LEASE_TTL: Duration = Duration::from_secs(10 * 60);
/// The lease TTL in force (ms): [`LEASE_TTL`] unless a test shortened it. A run renews its lease
/// every tenth of it and stops committing once its last renewal is half of it old: by the time
/// its commit lands, another run could take its lease for lapsed and delete its files.
static LEASE_TTL_MS: AtomicU64 = AtomicU64::new(LEASE_TTL.as_millis() as u64);

/// Shortens S3 leases in this process, so a test can see one lapse in seconds.
#[doc(hidden)]
pub fn set_lease_ttl_for_tests(ttl: Duration) {
    LEASE_TTL_MS.store(ttl.as_millis().max(10) as u64, Ordering::Relaxed);
}

fn lease_ttl_ms() -> u64 {
    LEASE_TTL_MS.load(Ordering::Relaxed)
}

fn lease_renew() -> Duration {
    Duration::from_millis(lease_ttl_ms() / 10)
}

fn lease_safe_ms() -> u64 {
    lease_ttl_ms() / 2
}
/// Parquet bytes buffered before a part of a multipart upload is sent (S3 takes parts of 5 MiB
/// and more, up to 10,000 of them: 160 GB per file at this size).
const PART_BYTES: usize = 16 << 20;
/// The smallest part S3 takes (all but the last part of an upload): a buffer this full may be
/// sent early, to keep a writer within its memory budget.
pub(crate) const MIN_PART_BYTES: usize = 5 << 20;

/// A lake's storage; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    Local(PathBuf),
    S3(Arc<S3Lake>),
}

/// A lake under an S3 prefix.
#[derive(Debug)]
pub(crate) struct S3Lake {
    /// The bucket's store, rooted at the bucket (as DataFusion resolves `s3://bucket/key`).
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix/`.
    url: Url,
    /// `prefix`, the key every object of the lake starts with: decoded from the URL as delta-rs
    /// decodes its table URLs (`from_url_path`), so the log and trawl's own objects share it.
    prefix: ObjPath,
}

/// An object or file of the lake, found by listing.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Path below the folder listed, `/`-separated.
    pub rel: String,
    /// Its version, on S3: the ETag, as conditional writes name it.
    pub e_tag: Option<String>,
}

impl Store {
    /// The storage `location` names; an S3 lake's client is configured from the environment.
    pub(crate) fn open(location: &Location) -> Result<Store, LakeError> {
        match location {
            Location::Local(p) => Ok(Store::Local(p.clone())),
            Location::S3(url) => {
                let bucket = url.host_str().unwrap_or_default().to_string();
                register_delta_factories();
                let store = bucket_store(&bucket, url)?;
                let prefix = ObjPath::from_url_path(url.path()).map_err(|e| LakeError::BadUrl {
                    url: url.to_string(),
                    reason: format!("its path is no S3 key prefix: {e}"),
                })?;
                Ok(Store::S3(Arc::new(S3Lake { store, url: url.clone(), prefix })))
            }
        }
    }

    /// An S3 lake held in memory, for tests of what writers keep before they upload.
    #[cfg(test)]
    pub(crate) fn in_memory_s3() -> (Store, Arc<dyn ObjectStore>) {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let lake = S3Lake {
            store: Arc::clone(&store),
            url: Url::parse("s3://b/lake/").expect("a URL"),
            prefix: ObjPath::from("lake"),
        };
        (Store::S3(Arc::new(lake)), store)
    }

    /// The lake's place as messages show it: the folder, or `s3://bucket/prefix`.
    pub(crate) fn shown(&self) -> PathBuf {
        match self {
            Store::Local(p) => p.clone(),
            Store::S3(s) => PathBuf::from(s.url.as_str().trim_end_matches('/')),
        }
    }

    /// Where `rel` is, for messages (a path on disk, or an `s3://` URL).
    pub(crate) fn path_of(&self, rel: &str) -> PathBuf {
        match self {
            Store::Local(p) => p.join(rel),
            Store::S3(s) => PathBuf::from(format!("{}{rel}", s.url)),
        }
    }

    /// Whether the lake is on a local or mounted disk.
    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Store::Local(_))
    }

    /// The bucket's store and its URL (`s3://bucket`), for a query engine to read files through;
    /// `None` for a local lake (DataFusion knows `file://`).
    pub(crate) fn object_store(&self) -> Option<(Url, Arc<dyn ObjectStore>)> {
        match self {
            Store::Local(_) => None,
            Store::S3(s) => {
                let url = Url::parse(&format!("s3://{}", s.url.host_str().unwrap_or_default())).ok()?;
                Some((url, Arc::clone(&s.store)))
            }
        }
    }

    /// The URL of folder `rel` (a Delta table's), ending in `/`. On disk the folder is created,
    /// since a `file:` URL must name an existing, absolute path.
    pub(crate) fn dir_url(&self, rel: &str) -> Result<Url, LakeError> {
        match self {
            Store::Local(root) => {
                let dir = root.join(rel);
                fs::create_dir_all(&dir)
                    .map_err(|e| LakeError::io(format!("creating {}", dir.display()), e))?;
                let abs = dir
                    .canonicalize()
                    .map_err(|e| LakeError::io(format!("resolving {}", dir.display()), e))?;
                Url::from_directory_path(&abs).map_err(|()| LakeError::BadMeta {
                    path: abs.clone(),
                    reason: "path cannot be written as a file URL".into(),
                })
            }
            Store::S3(s) => {
                s.url.join(&format!("{}/", rel.trim_end_matches('/'))).map_err(|e| LakeError::BadUrl {
                    url: s.url.to_string(),
                    reason: format!("{rel} cannot be joined onto it: {e}"),
                })
            }
        }
    }

    /// The bytes of `rel`, or `None` when it does not exist.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, LakeError> {
        match self {
            Store::Local(root) => {
                let path = root.join(rel);
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(LakeError::io(format!("reading {}", path.display()), e)),
                }
            }
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                let got = block(async move {
                    match store.get(&key).await {
                        Ok(r) => r.bytes().await.map(Some),
                        // No bucket is no lake either, but the user must hear which is missing.
                        Err(e @ object_store::Error::NotFound { .. }) if !no_such_bucket(&e) => Ok(None),
                        Err(e) => Err(e),
                    }
                });
                got.map(|b| b.map(|b| b.to_vec())).map_err(|e| s.error("reading", rel, e))
            }
        }
    }

    /// Writes `rel` unless it exists, whole or not at all; whether this call created it.
    pub(crate) fn create_new(&self, rel: &str, bytes: &[u8]) -> Result<bool, LakeError> {
        match self {
            Store::Local(root) => {
                let path = root.join(rel);
                let dir = path.parent().unwrap_or(root);
                fs::create_dir_all(dir)
                    .map_err(|e| LakeError::io(format!("creating {}", dir.display()), e))?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = dir.join(format!("{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
                let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
                fs::write(&tmp, bytes).map_err(|e| LakeError::io(ctx("writing", &tmp), e))?;
                // The link is made whole or not at all, and never replaces: a reader sees no half file.
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(LakeError::io(ctx("creating", &path), e)),
                }
            }
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                let payload = PutPayload::from(bytes.to_vec());
                match block(async move { store.put_opts(&key, payload, PutMode::Create.into()).await }) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                    Err(e) => Err(s.error("creating", rel, e)),
                }
            }
        }
    }

    /// Writes `rel` on S3 only if it is still the version `e_tag` names (`If-Match`), or, for
    /// `None`, only if it does not exist (`If-None-Match: *`); whether it did: `false` when
    /// another writer changed it since it was read. Local lakes lock instead: refused there.
    pub(crate) fn put_if(&self, rel: &str, bytes: &[u8], e_tag: Option<&str>) -> Result<bool, LakeError> {
        let Store::S3(s) = self else {
            return Err(LakeError::io(
                format!("writing {}", self.path_of(rel).display()),
                io::Error::other("conditional writes are for S3; local lakes lock"),
            ));
        };
        let (store, key) = (Arc::clone(&s.store), s.key(rel));
        let mode = match e_tag {
            Some(t) => PutMode::Update(UpdateVersion { e_tag: Some(t.to_string()), version: None }),
            None => PutMode::Create,
        };
        let payload = PutPayload::from(bytes.to_vec());
        match block(async move { store.put_opts(&key, payload, mode.into()).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                Ok(false)
            }
            Err(e) => Err(s.error("writing", rel, e)),
        }
    }

    /// Whether folder `rel` directly holds a file whose name passes `wanted` (on S3: any object
    /// below the prefix; the listing stops at the first that passes). A folder that does not
    /// exist holds nothing; a listing that fails is an error, never taken for an empty folder.
    pub(crate) fn holds(
        &self,
        rel: &str,
        wanted: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<bool, LakeError> {
        match self {
            Store::Local(root) => {
                let dir = root.join(rel);
                let err = |e| LakeError::io(format!("listing {}", dir.display()), e);
                let entries = match fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(err(e)),
                };
                for e in entries {
                    if wanted(&e.map_err(err)?.file_name().to_string_lossy()) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                let found = block(async move {
                    let mut list = store.list(Some(&key));
                    while let Some(meta) = list.next().await {
                        if meta?.location.filename().is_some_and(&wanted) {
                            return Ok(true);
                        }
                    }
                    Ok::<_, object_store::Error>(false)
                });
                found.map_err(|e| s.error("listing", rel, e))
            }
        }
    }

    /// Whether folder `rel` exists (on S3, where folders are only key prefixes: holds anything).
    pub(crate) fn has_folder(&self, rel: &str) -> Result<bool, LakeError> {
        match self {
            Store::Local(root) => Ok(root.join(rel).is_dir()),
            Store::S3(_) => self.holds(rel, |_| true),
        }
    }

    /// Every file below folder `rel`, by path relative to it, leaving out the subfolders named
    /// in `skip` (and what is below them); sorted. A folder that does not exist holds nothing.
    pub(crate) fn list(&self, rel: &str, skip: &[&str]) -> Result<Vec<Listed>, LakeError> {
        let mut out = match self {
            Store::Local(root) => list_local(&root.join(rel), skip)?,
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                let base = format!("{key}/");
                let found: Result<Vec<(String, Option<String>)>, object_store::Error> = block(async move {
                    let mut out = Vec::new();
                    let mut list = store.list(Some(&key));
                    while let Some(meta) = list.next().await {
                        let meta = meta?;
                        out.push((meta.location.to_string(), meta.e_tag));
                    }
                    Ok::<_, object_store::Error>(out)
                });
                let found = found.map_err(|e| s.error("listing", rel, e))?;
                found
                    .into_iter()
                    .filter_map(|(k, e_tag)| k.strip_prefix(&base).map(|r| (r.to_string(), e_tag)))
                    .filter(|(r, _)| !skip.iter().any(|d| r.split('/').rev().skip(1).any(|seg| seg == *d)))
                    .map(|(rel, e_tag)| Listed { rel, e_tag })
                    .collect()
            }
        };
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Deletes `rel`; one that is gone already is no error.
    pub(crate) fn delete(&self, rel: &str) -> Result<(), LakeError> {
        match self {
            Store::Local(root) => {
                let path = root.join(rel);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(LakeError::io(format!("removing {}", path.display()), e)),
                }
            }
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                match block(async move { store.delete(&key).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(s.error("deleting", rel, e)),
                }
            }
        }
    }

    /// Removes folder `rel` if nothing is left in it; on S3, where folders are only key
    /// prefixes, there is nothing to remove.
    pub(crate) fn remove_empty_folder(&self, rel: &str) {
        if let Store::Local(root) = self {
            let _ = fs::remove_dir(root.join(rel));
        }
    }

    /// A new file at `rel` to write into; it exists under that name only once [`Sink::finish`]
    /// returns on S3 (a run killed meanwhile leaves an unfinished upload, which no listing shows).
    pub(crate) fn sink(&self, rel: &str) -> Result<Sink, LakeError> {
        match self {
            Store::Local(root) => {
                let path = root.join(rel);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| LakeError::io(format!("creating {}", parent.display()), e))?;
                }
                let file = File::create(&path)
                    .map_err(|e| LakeError::io(format!("creating {}", path.display()), e))?;
                Ok(Sink::File(BufWriter::with_capacity(1 << 20, file)))
            }
            Store::S3(s) => Ok(Sink::S3(S3Sink {
                store: Arc::clone(&s.store),
                key: s.key(rel),
                buf: Vec::new(),
                upload: None,
            })),
        }
    }

    /// `rel` opened for a Parquet reader: the file on disk, the whole object from S3.
    pub(crate) fn blob(&self, rel: &str) -> Result<Blob, LakeError> {
        match self {
            Store::Local(root) => {
                let path = root.join(rel);
                let file =
                    File::open(&path).map_err(|e| LakeError::io(format!("opening {}", path.display()), e))?;
                Ok(Blob::File(file))
            }
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                block(async move { store.get(&key).await?.bytes().await })
                    .map(Blob::Bytes)
                    .map_err(|e| s.error("reading", rel, e))
            }
        }
    }

    /// Size and SHA-256 (hex) of `rel`'s bytes; the error in words (a file that is gone says so).
    pub(crate) fn sha256(&self, rel: &str) -> Result<(u64, String), String> {
        match self {
            Store::Local(root) => crate::digest::sha256_file(&root.join(rel), &[], |_, _, _| {})
                .map(|d| (d.size, d.sha256))
                .map_err(|e| e.to_string()),
            Store::S3(s) => {
                let (store, key) = (Arc::clone(&s.store), s.key(rel));
                let hashed = block(async move {
                    let mut stream = store.get(&key).await?.into_stream();
                    let (mut hasher, mut size) = (Sha256::new(), 0u64);
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk?;
                        size += chunk.len() as u64;
                        hasher.update(&chunk);
                    }
                    Ok::<_, object_store::Error>((size, crate::digest::hex(&hasher.finalize())))
                });
                hashed.map_err(|e| match e {
                    object_store::Error::NotFound { .. } => "not found in the bucket".to_string(),
                    e => s.error("reading", rel, e).to_string(),
                })
            }
        }
    }

    /// Takes a lease for a new run: while it lives, no cleanup removes files named after it.
    pub(crate) fn lease(&self) -> Result<Lease, LakeError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match self {
            Store::Local(root) => {
                let dir = root.join(RUNS_DIR);
                fs::create_dir_all(&dir)
                    .map_err(|e| LakeError::io(format!("creating {}", dir.display()), e))?;
                let path = dir.join(format!("{id}.lock"));
                // Locked under a temporary name, then renamed: a lease visible under its final name is
                // always locked while its run lives (the lock belongs to the open file, not the name).
                let tmp = dir.join(format!("{id}.lock.tmp"));
                let ctx = |what: &str, p: &Path| format!("{what} run lease {}", p.display());
                let file = File::create(&tmp).map_err(|e| LakeError::io(ctx("creating", &tmp), e))?;
                file.lock().map_err(|e| LakeError::io(ctx("locking", &tmp), e))?;
                fs::rename(&tmp, &path).map_err(|e| LakeError::io(ctx("naming", &path), e))?;
                Ok(Lease { id, kind: LeaseKind::File { path, _file: file } })
            }
            Store::S3(s) => ObjectLease::take(s, &id).map(|l| Lease { id, kind: LeaseKind::Object(l) }),
        }
    }

    /// Whether run `id` still holds its lease: on disk, its file is locked (the OS drops the lock
    /// when the process dies, however it dies); on S3, its lease object has not expired.
    pub(crate) fn lease_alive(&self, id: &str) -> bool {
        match self {
            Store::Local(root) => {
                let path = root.join(RUNS_DIR).join(format!("{id}.lock"));
                let Ok(f) = File::open(&path) else {
                    return false;
                };
                // Locking succeeds only when no process holds it; our probe lock ends with `f`.
                !matches!(f.try_lock(), Ok(()))
            }
            Store::S3(_) => match self.read(&format!("{RUNS_DIR}/{id}.lease")) {
                Ok(Some(body)) => lease_expiry(&body).is_none_or(|t| t > now_ms()),
                Ok(None) => false,
                // Unreadable now: keep its files rather than guess.
                Err(_) => true,
            },
        }
    }

    /// Removes the leases of runs that are over (killed runs leave theirs); `known` holds runs
    /// already asked about (alive or not), whose leases on S3 are not read again.
    pub(crate) fn remove_stale_leases(&self, known: &HashMap<String, bool>) {
        match self {
            Store::Local(root) => {
                let Ok(entries) = fs::read_dir(root.join(RUNS_DIR)) else { return };
                for e in entries.flatten() {
                    if let Ok(f) = File::open(e.path())
                        && f.try_lock().is_ok()
                    {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
            Store::S3(_) => {
                for l in self.list(RUNS_DIR, &[]).unwrap_or_default() {
                    let Some(id) = l.rel.strip_suffix(".lease") else { continue };
                    if !known.get(id).copied().unwrap_or_else(|| self.lease_alive(id)) {
                        let _ = self.delete(&format!("{RUNS_DIR}/{}", l.rel));
                    }
                }
            }
        }
    }
}

impl S3Lake {
    /// The key of `rel` inside the bucket.
    fn key(&self, rel: &str) -> ObjPath {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.prefix.clone(), |key, part| key.join(part))
    }

    /// An S3 error as the user can act on it: what failed, where, and what to set.
    fn error(&self, what: &str, rel: &str, e: object_store::Error) -> LakeError {
        let bucket = self.url.host_str().unwrap_or_default();
        LakeError::Storage { context: format!("{what} {}{rel}", self.url), reason: explain(bucket, &e) }
    }
}

/// An S3 error's text with every source's that adds to it (object_store's messages already
/// hold most of their sources' text).
fn error_text(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Whether S3 answered with one of `codes` (its error code, in the reply's body).
fn s3_code(e: &object_store::Error, codes: &[&str]) -> bool {
    let text = error_text(e);
    codes.iter().any(|c| text.contains(&format!("<Code>{c}</Code>")))
}

/// Whether S3 answered that the bucket does not exist.
fn no_such_bucket(e: &object_store::Error) -> bool {
    s3_code(e, &["NoSuchBucket"])
}

/// Whether the request never got an answer: no connection, a timeout, a request cut off.
fn unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Request
                    | HttpErrorKind::Interrupted
            );
        }
        source = s.source();
    }
    false
}

/// What to do about an S3 error, by its kind (and S3's error code for a missing bucket).
fn explain(bucket: &str, e: &object_store::Error) -> String {
    let text = error_text(e);
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS's endpoint for the region".into());
    let hint = if no_such_bucket(e) {
        format!(
            "bucket {bucket} does not exist there: create it (`aws s3 mb s3://{bucket}`), or check its name and AWS_REGION"
        )
    } else if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || s3_code(
        e,
        &["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"],
    ) {
        // A refused listing comes back as a generic error: S3's code in the body tells.
        "the credentials were refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) \
         or AWS_PROFILE, and that they may read and write the bucket"
            .to_string()
    } else if unreachable(e) {
        format!(
            "the S3 endpoint ({endpoint}) could not be reached: check AWS_ENDPOINT_URL and the network \
             (a plain http:// endpoint also needs AWS_ALLOW_HTTP=true)"
        )
    } else {
        String::new()
    };
    if hint.is_empty() { text } else { format!("{text}; {hint}") }
}

/// The store of the bucket an `s3://` (or `s3a://`) URL names, configured as a lake there is:
/// for a cluster's servers, which meet a lake's files only through the plans they are sent.
pub fn s3_store(url: &Url) -> Result<Arc<dyn ObjectStore>, LakeError> {
    bucket_store(url.host_str().unwrap_or_default(), url)
}

/// A bucket's name and its store.
type BucketStore = (String, Arc<dyn ObjectStore>);

/// The store of one bucket, configured from the standard AWS variables and profile files; built
/// once per bucket and process, every request run on delta-rs's IO runtime (see [`io_runtime`]).
fn bucket_store(bucket: &str, url: &Url) -> Result<Arc<dyn ObjectStore>, LakeError> {
    static STORES: OnceLock<Mutex<Vec<BucketStore>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    let mut stores = stores.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = stores.iter().find(|(b, _)| b == bucket) {
        return Ok(Arc::clone(s));
    }
    let settings = profile::settings();
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in &settings.options {
        builder = builder.with_config(*key, value);
    }
    if !settings.has_credentials {
        return Err(LakeError::Storage {
            context: format!("opening {url}"),
            reason: "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                     AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE naming a profile in \
                     ~/.aws/credentials; on EC2 set AWS_METADATA_ENDPOINT=http://169.254.169.254 to use \
                     the instance's role; for a public bucket, AWS_SKIP_SIGNATURE=true"
                .into(),
        });
    }
    let s3 = builder.build().map_err(|e| LakeError::Storage {
        context: format!("configuring S3 for {url}"),
        reason: format!(
            "{}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials",
            error_text(&e)
        ),
    })?;
    let store: Arc<dyn ObjectStore> =
        Arc::new(DeltaIOStorageBackend::new(s3, IORuntime::RT(io_runtime().handle().clone())));
    stores.push((bucket.to_string(), Arc::clone(&store)));
    Ok(store)
}

/// The runtime every S3 request runs on. trawl's commands make runtimes of their own, one after
/// another; a connection pooled by a runtime that has ended is dead, so the store's requests
/// all go to this one, which lives as long as the process.
fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trawl-s3")
            .enable_all()
            .build()
            .expect("a tokio runtime can be built")
    })
}

/// Runs `f` on the IO runtime and waits for it, from synchronous code or from inside another
/// runtime (where blocking that runtime's thread is what a synchronous caller does anyway).
fn block<F>(f: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(|| io_runtime().block_on(f)).join().expect("no panic in S3 I/O"))
    } else {
        io_runtime().block_on(f)
    }
}

/// Teaches delta-rs `s3://` without its `s3` feature (which builds the AWS SDK): the bucket's
/// store as above, and delta-rs's default log store, which commits each version with
/// `PutMode::Create`, sent by object_store as `If-None-Match: *`, so two writers of one version
/// cannot both succeed.
fn register_delta_factories() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for scheme in ["s3://", "s3a://"] {
            let scheme = Url::parse(scheme).expect("a scheme URL");
            object_store_factories().insert(scheme.clone(), Arc::new(S3Factory));
            logstore_factories().insert(scheme, Arc::new(S3LogStores));
        }
    });
}

struct S3Factory;

impl ObjectStoreFactory for S3Factory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> deltalake::DeltaResult<(ObjectStoreRef, object_store::path::Path)> {
        let bucket = url.host_str().unwrap_or_default();
        let store =
            bucket_store(bucket, url).map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        let path = object_store::path::Path::from_url_path(url.path())
            .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        Ok((store, path))
    }
}

struct S3LogStores;

impl LogStoreFactory for S3LogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

/// Where a new file's bytes go.
pub(crate) enum Sink {
    File(BufWriter<File>),
    S3(S3Sink),
}

/// A file being uploaded: one PUT when it stays under [`PART_BYTES`], a multipart upload else.
pub(crate) struct S3Sink {
    store: Arc<dyn ObjectStore>,
    key: ObjPath,
    buf: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
}

impl S3Sink {
    fn send_part(&mut self) -> io::Result<()> {
        let part = PutPayload::from(std::mem::take(&mut self.buf));
        if self.upload.is_none() {
            let (store, key) = (Arc::clone(&self.store), self.key.clone());
            self.upload =
                Some(block(async move { store.put_multipart(&key).await }).map_err(io::Error::other)?);
        }
        let upload = self.upload.as_mut().expect("started above");
        block(upload.put_part(part)).map_err(io::Error::other)
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::S3(s) => {
                s.buf.extend_from_slice(buf);
                if s.buf.len() >= PART_BYTES {
                    s.send_part()?;
                }
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            // Parts go up when full; finish sends the rest.
            Sink::S3(_) => Ok(()),
        }
    }
}

impl Sink {
    /// Bytes written but held in memory until they are uploaded: an S3 file's unsent part (on
    /// disk none beyond the file's fixed 1 MiB buffer, which is not counted).
    pub(crate) fn unsent(&self) -> usize {
        match self {
            Sink::File(_) => 0,
            Sink::S3(s) => s.buf.len(),
        }
    }

    /// Uploads the unsent bytes as a part now if S3 takes a part that small; whether it did.
    pub(crate) fn send_early(&mut self) -> io::Result<bool> {
        match self {
            Sink::S3(s) if s.buf.len() >= MIN_PART_BYTES => s.send_part().map(|()| true),
            _ => Ok(false),
        }
    }

    /// Makes the file whole under its name.
    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Sink::File(mut f) => f.flush(),
            Sink::S3(mut s) => {
                if s.upload.is_none() {
                    let (store, key) = (Arc::clone(&s.store), s.key.clone());
                    let body = PutPayload::from(std::mem::take(&mut s.buf));
                    return block(async move { store.put(&key, body).await })
                        .map(|_| ())
                        .map_err(io::Error::other);
                }
                if !s.buf.is_empty() {
                    s.send_part()?;
                }
                let mut upload = s.upload.take().expect("checked above");
                let done = block(async { upload.complete().await });
                if done.is_err() {
                    let _ = block(async { upload.abort().await });
                }
                done.map(|_| ()).map_err(io::Error::other)
            }
        }
    }
}

/// A lake file opened for a Parquet reader.
pub(crate) enum Blob {
    File(File),
    Bytes(Bytes),
}

impl Length for Blob {
    fn len(&self) -> u64 {
        match self {
            Blob::File(f) => f.len(),
            Blob::Bytes(b) => b.len() as u64,
        }
    }
}

impl ChunkReader for Blob {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        Ok(match self {
            Blob::File(f) => Box::new(f.get_read(start)?),
            Blob::Bytes(b) => Box::new(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        match self {
            Blob::File(f) => f.get_bytes(start, length),
            Blob::Bytes(b) => b.get_bytes(start, length),
        }
    }
}

/// A run's claim on the files named after it; dropping it ends the claim.
#[derive(Debug)]
pub struct Lease {
    id: String,
    kind: LeaseKind,
}

#[derive(Debug)]
enum LeaseKind {
    /// `<lake>/_trawl/runs/<run>.lock`, locked while the run lives.
    File { path: PathBuf, _file: File },
    /// `<lake>/_trawl/runs/<run>.lease` on S3, renewed while the run lives.
    Object(ObjectLease),
}

impl Lease {
    /// The run's identifier, as file names and the `ingests` table carry it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Refuses to go on when an S3 lease was not renewed lately (the network failed), or was
    /// found deleted or replaced by another run (which took it for a crashed run's and may have
    /// deleted this run's files): nothing that names them may be committed. Once refused, always
    /// refused: a renewal that gets through later cannot bring back files already deleted. A
    /// lease on disk holds as long as the process.
    pub fn check(&self) -> Result<(), LakeError> {
        let LeaseKind::Object(l) = &self.kind else { return Ok(()) };
        let since = now_ms().saturating_sub(l.renewed.load(Ordering::Relaxed));
        if since > lease_safe_ms() {
            l.lapsed.store(true, Ordering::Relaxed);
        }
        if l.lapsed.load(Ordering::Relaxed) {
            return Err(LakeError::LeaseLapsed { run: self.id.clone(), seconds: since / 1000 });
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match &mut self.kind {
            LeaseKind::File { path, .. } => {
                let _ = fs::remove_file(&*path);
            }
            LeaseKind::Object(l) => l.end(),
        }
    }
}

/// An S3 lease: an object holding its expiry, created with `PutMode::Create` and rewritten by a
/// thread of its own every tenth of the TTL until the run ends, each time only if it is still
/// the version this run wrote last (`If-Match`), so a lease another run deleted stays deleted.
#[derive(Debug)]
struct ObjectLease {
    store: Arc<dyn ObjectStore>,
    key: ObjPath,
    /// When the lease was last written (ms since the epoch).
    renewed: Arc<AtomicU64>,
    /// Set for good once the lease may have been taken over (see [`Lease::check`]).
    lapsed: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl ObjectLease {
    fn take(s: &S3Lake, id: &str) -> Result<ObjectLease, LakeError> {
        let rel = format!("{RUNS_DIR}/{id}.lease");
        let (store, key) = (Arc::clone(&s.store), s.key(&rel));
        let written = now_ms();
        let body = lease_body(id, written);
        let (st, k) = (Arc::clone(&store), key.clone());
        let put = block(async move { st.put_opts(&k, PutPayload::from(body), PutMode::Create.into()).await })
            .map_err(|e| s.error("creating run lease", &rel, e))?;
        let mut current = UpdateVersion { e_tag: put.e_tag, version: put.version };
        let renewed = Arc::new(AtomicU64::new(written));
        let lapsed = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let (st, k, r, l, run) =
            (Arc::clone(&store), key.clone(), Arc::clone(&renewed), Arc::clone(&lapsed), id.to_string());
        let beat = std::thread::Builder::new()
            .name("trawl-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(lease_renew()) {
                    let at = now_ms();
                    // Past this, another run may already have taken the lease for lapsed: a
                    // renewal now would hide that, and the files it deleted, from `check`.
                    if at.saturating_sub(r.load(Ordering::Relaxed)) > lease_safe_ms() {
                        l.store(true, Ordering::Relaxed);
                        return;
                    }
                    let (st, k, body) = (Arc::clone(&st), k.clone(), lease_body(&run, at));
                    let mode = PutMode::Update(current.clone());
                    match block(async move { st.put_opts(&k, PutPayload::from(body), mode.into()).await }) {
                        Ok(put) => {
                            current = UpdateVersion { e_tag: put.e_tag, version: put.version };
                            r.store(at, Ordering::Relaxed);
                        }
                        // Deleted or rewritten by another run: it took the lease for lapsed.
                        Err(
                            object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
                        ) => {
                            l.store(true, Ordering::Relaxed);
                            return;
                        }
                        // Tried again next beat; `check` refuses once renewals failed for long.
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| LakeError::io("starting the run lease's renewal thread", e))?;
        Ok(ObjectLease { store, key, renewed, lapsed, stop: Some(stop), beat: Some(beat) })
    }

    fn end(&mut self) {
        drop(self.stop.take());
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        let _ = block(async move { store.delete(&key).await });
    }
}

fn lease_body(run: &str, written_ms: u64) -> Vec<u8> {
    let expires = written_ms + lease_ttl_ms();
    serde_json::json!({ "run": run, "written_unix_ms": written_ms, "expires_unix_ms": expires })
        .to_string()
        .into_bytes()
}

/// The expiry a lease object records (ms since the epoch), if it is readable.
fn lease_expiry(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body).ok()?.get("expires_unix_ms")?.as_u64()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Files below `dir` on disk, by path relative to it, leaving out subfolders named in `skip`.
fn list_local(dir: &Path, skip: &[&str]) -> Result<Vec<Listed>, LakeError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LakeError::io(format!("listing {}", d.display()), e)),
        };
        for e in entries {
            let e = e.map_err(|e| LakeError::io(format!("listing {}", d.display()), e))?;
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() {
                if !skip.iter().any(|s| name == *s) {
                    stack.push(p);
                }
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(Listed { rel: rel.to_string_lossy().replace('\\', "/"), e_tag: None });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_bodies_carry_their_expiry() {
        let body = lease_body("abc", 1_000);
        assert_eq!(lease_expiry(&body), Some(1_000 + LEASE_TTL.as_millis() as u64));
        assert_eq!(lease_expiry(b"not json"), None);
    }

    #[test]
    fn keys_join_the_prefix_and_the_path_inside_the_lake() {
        let lake = |prefix: &str| S3Lake {
            store: Arc::new(object_store::memory::InMemory::new()),
            url: Url::parse("s3://b/").unwrap(),
            prefix: ObjPath::from_url_path(prefix).unwrap(),
        };
        assert_eq!(lake("cases/7").key("proxy/_delta_log").as_ref(), "cases/7/proxy/_delta_log");
        assert_eq!(lake("cases/7").key("").as_ref(), "cases/7");
        assert_eq!(lake("").key("trawl.json").as_ref(), "trawl.json");
        // The URL's escapes are decoded once, as delta-rs decodes a table URL's path.
        assert_eq!(lake("/case%207/").key("trawl.json").as_ref(), "case 7/trawl.json");
        let delta_root = ObjPath::from_url_path("/case%207/proxy/").unwrap();
        assert_eq!(lake("/case%207/").key("proxy"), delta_root);
    }
}
