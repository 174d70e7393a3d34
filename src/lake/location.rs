//! Where a lake is, from what the user typed after `--lake`: a path, a `file:` URL of one, or
//! `s3://bucket/prefix`. Other object stores' URLs are refused before anything is read or
//! created, rather than taken for a relative folder named `gs:`.

use std::path::{Path, PathBuf};

use url::Url;

use crate::error::LakeError;

/// A lake's place, as `--lake` named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on a local or mounted disk.
    Local(PathBuf),
    /// `s3://bucket/prefix/`: always with a trailing slash, so tables join onto it.
    S3(Url),
}

/// The place `arg` names: plain paths as given, `file:` URLs decoded to their path, `s3://`
/// (and `s3a://`) URLs as S3 prefixes; any other URL scheme is an error saying what to do.
pub fn resolve(arg: &Path) -> Result<Location, LakeError> {
    // A path that is not UTF-8 cannot be a URL.
    let Some(text) = arg.to_str() else {
        return Ok(Location::Local(arg.to_path_buf()));
    };
    let Some(scheme) = url_scheme(text) else {
        return Ok(Location::Local(arg.to_path_buf()));
    };
    if scheme.eq_ignore_ascii_case("s3") || scheme.eq_ignore_ascii_case("s3a") {
        return s3_prefix(text).map(Location::S3);
    }
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
    Ok(Location::Local(path.components().collect()))
}

/// `s3://bucket/prefix` as `s3://bucket/prefix/` (`s3a:` is Hadoop's name for the same).
fn s3_prefix(text: &str) -> Result<Url, LakeError> {
    let bad = |reason: &str| LakeError::BadUrl { url: text.to_string(), reason: reason.to_string() };
    let mut url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a lake URL has no query (`?`) or fragment (`#`)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no bucket (s3://bucket/prefix)"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(bad("credentials and endpoints go in AWS_* variables, not in the URL"));
    }
    let path = url.path().trim_end_matches('/').to_string();
    if path.split('/').skip(1).any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(bad("its prefix has an empty, `.` or `..` segment"));
    }
    url.set_path(&format!("{path}/"));
    let text = format!("s3://{}{}", url.host_str().unwrap_or_default(), url.path());
    Url::parse(&text).map_err(|e| bad(&e.to_string()))
}

/// How one copies a lake at `url` to `./lake` with the store's own tool.
fn copy_command(scheme: &str, url: &str) -> String {
    match scheme {
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
            assert_eq!(resolve(Path::new(arg)).unwrap(), Location::Local(PathBuf::from(want)), "{arg}");
        }
    }

    #[test]
    fn s3_urls_resolve_to_prefixes_ending_in_a_slash() {
        for (arg, want) in [
            ("s3://bucket", "s3://bucket/"),
            ("s3://bucket/", "s3://bucket/"),
            ("s3://bucket/cases/7", "s3://bucket/cases/7/"),
            ("S3://bucket/cases/7/", "s3://bucket/cases/7/"),
            ("s3a://bucket/lake", "s3://bucket/lake/"),
        ] {
            match resolve(Path::new(arg)) {
                Ok(Location::S3(url)) => assert_eq!(url.as_str(), want, "{arg}"),
                other => panic!("{arg}: {other:?}"),
            }
        }
        for arg in
            ["s3:///prefix", "s3://bucket/a//b", "s3://bucket/x?versionId=1", "s3://key:secret@bucket/x"]
        {
            assert!(matches!(resolve(Path::new(arg)), Err(LakeError::BadUrl { .. })), "{arg}");
        }
    }

    #[test]
    fn other_object_stores_and_urls_are_refused() {
        for (arg, scheme) in [
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
