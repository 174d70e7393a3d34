//! Where a lake is, from what the user typed after `--lake`: a path, or a `file:` URL of one.
//!
//! Every lake lives on a local (or mounted) disk for now: run leases rely on the OS's file
//! locks and metadata on hard links. An object-storage URL is refused before anything is
//! read or created, rather than taken for a relative folder named `s3:`.

use std::path::{Path, PathBuf};

use url::Url;

use crate::error::LakeError;

/// The local folder `arg` names: plain paths as given, `file:` URLs decoded to their path;
/// any other URL scheme is an error saying what to do.
pub fn resolve(arg: &Path) -> Result<PathBuf, LakeError> {
    // A path that is not UTF-8 cannot be a URL.
    let Some(text) = arg.to_str() else {
        return Ok(arg.to_path_buf());
    };
    let Some(scheme) = url_scheme(text) else {
        return Ok(arg.to_path_buf());
    };
    if !scheme.eq_ignore_ascii_case("file") {
        let scheme = scheme.to_ascii_lowercase();
        let copy = copy_command(&scheme, text);
        return Err(LakeError::ObjectStore { url: text.to_string(), scheme, copy });
    }
    let bad = |reason: &str| LakeError::BadUrl { url: text.to_string(), reason: reason.to_string() };
    let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a lake URL has no query (`?`) or fragment (`#`)"));
    }
    // `to_file_path` refuses a host other than `localhost`: a file on another machine.
    let path = url
        .to_file_path()
        .map_err(|()| bad("it names no folder on this machine (file:///absolute/path, or a plain path)"))?;
    // `file:///srv/lake/` and `file:///srv/lake` are one folder, and messages show it as such.
    Ok(path.components().collect())
}

/// How one copies a lake at `url` to `./lake` with the store's own tool.
fn copy_command(scheme: &str, url: &str) -> String {
    match scheme {
        "s3" | "s3a" => format!("e.g. `aws s3 sync {url} ./lake`"),
        "gs" => format!("e.g. `gcloud storage rsync --recursive {url} ./lake`"),
        "az" | "abfs" | "abfss" | "adl" => "e.g. `azcopy sync <container URL> ./lake`".to_string(),
        _ => "with the tool of the store that holds it".to_string(),
    }
}

/// The scheme of `text` when it is written as a URL (`scheme:` then `//`, or `file:` then an
/// absolute path as Delta writes it), else `None`. A Windows drive (`C:\lake`) is no scheme.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once(':')?;
    let shaped = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let url_like = rest.starts_with("//") || (scheme.eq_ignore_ascii_case("file") && rest.starts_with('/'));
    (shaped && url_like).then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_and_file_urls_resolve_to_local_folders() {
        for (arg, want) in [
            ("lake", "lake"),
            ("./cases/lake", "./cases/lake"),
            ("/srv/lake", "/srv/lake"),
            ("C:\\lakes\\one", "C:\\lakes\\one"),
            ("weird:name", "weird:name"),
            ("file:///srv/lake", "/srv/lake"),
            ("file:///srv/lake/", "/srv/lake"),
            ("FILE:///srv/lake", "/srv/lake"),
            ("file://localhost/srv/lake", "/srv/lake"),
            ("file:/srv/lake", "/srv/lake"),
            ("file:///srv/my%20lake", "/srv/my lake"),
        ] {
            assert_eq!(resolve(Path::new(arg)).unwrap(), PathBuf::from(want), "{arg}");
        }
    }

    #[test]
    fn object_storage_and_other_urls_are_refused() {
        for (arg, scheme) in [
            ("s3://bucket/prefix", "s3"),
            ("S3://bucket/prefix", "s3"),
            ("s3a://bucket/prefix", "s3a"),
            ("gs://bucket/lake", "gs"),
            ("az://container/lake", "az"),
            ("abfss://fs@account.dfs.core.windows.net/lake", "abfss"),
            ("https://example.com/lake", "https"),
            ("hdfs://namenode/lake", "hdfs"),
        ] {
            match resolve(Path::new(arg)) {
                Err(LakeError::ObjectStore { url, scheme: s, .. }) => {
                    assert_eq!((url.as_str(), s.as_str()), (arg, scheme));
                }
                other => panic!("{arg}: {other:?}"),
            }
        }
        for arg in ["file://fileserver/share/lake", "file:///srv/lake?x=1"] {
            assert!(matches!(resolve(Path::new(arg)), Err(LakeError::BadUrl { .. })), "{arg}");
        }
    }
}
