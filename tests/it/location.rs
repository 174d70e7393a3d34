//! Where `--lake` points: a folder or a `file:` URL of one work everywhere (and `s3://`, see
//! `s3.rs`); other object stores' URLs are refused by every command, with what to do, before
//! anything is created.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::squid_lines;

/// Runs trawl in `cwd`, so a lake mistaken for a relative folder would show up there.
fn trawl_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl")).current_dir(cwd).args(args).output().unwrap()
}

#[test]
fn a_file_url_lake_is_the_folder_it_names_for_ingest_query_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, squid_lines(1, 5)).unwrap();
    // A space in the folder's name is `%20` in its URL.
    let lake = dir.path().join("case 7").join("lake");
    let url = url::Url::from_directory_path(&lake).unwrap().to_string();
    assert!(url.starts_with("file:///") && url.contains("case%207"), "{url}");
    let cwd = tempfile::tempdir().unwrap();

    let out = trawl_in(cwd.path(), &["ingest", "--tz", "UTC", "--lake", &url, log.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("ingested 1 file into {} (zone UTC)", lake.display())), "{stderr}");
    assert!(lake.join("trawl.json").is_file());
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "nothing made in the working folder");

    let count = "SELECT count(*) AS n FROM proxy";
    for given in [url.as_str(), lake.to_str().unwrap(), url.trim_end_matches('/')] {
        let out = trawl_in(cwd.path(), &["query", "--format", "csv", "--lake", given, count]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n5\n", "{given}");
    }
    let out = trawl_in(cwd.path(), &["verify", "--lake", &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn other_object_stores_lakes_are_refused_by_every_command_and_nothing_is_created() {
    let cwd = tempfile::tempdir().unwrap();
    let log = cwd.path().join("access.log");
    std::fs::write(&log, squid_lines(1, 3)).unwrap();
    let iocs = cwd.path().join("iocs.txt");
    std::fs::write(&iocs, "evil.example\n").unwrap();
    let (log, iocs) = (log.to_str().unwrap(), iocs.to_str().unwrap());
    let commands: [&[&str]; 11] = [
        &["ingest", "--tz", "UTC", log],
        &["query", "SELECT 1"],
        &["detect"],
        &["detect", "--lint"],
        &["hunt", "--ioc", iocs],
        &["compact"],
        &["verify"],
        &["manifest"],
        &["report", "-o", "case.html"],
        &["timeline", "--user", "tanaka"],
        &["coverage"],
    ];
    let gs = "gs://evidence-bucket/cases/7";
    for args in commands {
        let out = trawl_in(cwd.path(), &[args, &["--lake", gs]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "--lake {gs}: lakes on gs:// are not supported yet (trawl takes a local or mounted folder, \
                 or s3://bucket/prefix): copy the lake to a local disk (e.g. `gcloud storage rsync \
                 --recursive {gs} ./lake`), give that folder as --lake"
            )),
            "{args:?}: {stderr}"
        );
    }
    for (url, hint) in [
        ("abfss://fs@acct.dfs.core.windows.net/lake", "lakes on abfss:// are not supported yet"),
        ("az://container/lake", "`azcopy sync <container URL> ./lake`"),
        ("https://example.com/lake", "lakes on https:// are not supported yet"),
        ("s3:///no-bucket", "it names no bucket"),
        ("file://fileserver/share/lake", "names no folder on this machine"),
    ] {
        let out = trawl_in(cwd.path(), &["ingest", "--tz", "UTC", "--lake", url, log]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains(hint), "{url}: {stderr}");
    }
    let mut left: Vec<String> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    left.sort();
    assert_eq!(left, ["access.log", "iocs.txt"], "no `gs:` folder, no report, no lake");
}
