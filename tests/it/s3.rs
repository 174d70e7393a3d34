//! Lakes on S3, against a real S3 server on localhost: moto's (`python3 -m pip install
//! 'moto[server]'`), started here and killed at the end. Where moto is not installed, each test
//! says it skipped and why.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{squid_lines, testdata};

/// A moto S3 server on a free local port, killed when dropped.
pub(crate) struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts one, or says why it cannot (moto or boto3 not installed, or it did not come up).
    fn start() -> Result<Moto, String> {
        let probe = Command::new("python3").args(["-c", "import moto.server, boto3"]).output();
        if !probe.is_ok_and(|o| o.status.success()) {
            return Err("moto[server] is not installed (python3 -m pip install 'moto[server]')".into());
        }
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting moto: {e}"))?;
        let moto = Moto { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("moto did not listen on port {port} within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (object_store cannot) with a plain HTTP request, which moto takes unsigned.
    pub(crate) fn bucket(&self, name: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let head = format!(
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "creating bucket {name}: {reply}");
    }

    /// Runs Python with `s3`, a signed boto3 client of this server (boto3 comes with moto); its stdout.
    pub(crate) fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3, botocore\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='testing', \
             aws_secret_access_key='testing', region_name='us-east-1')\n{code}\n",
            self.endpoint()
        );
        let out = Command::new("python3").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{code}: {}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    }

    /// trawl with the variables a user sets for this server, and dummy credentials.
    fn trawl(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trawl"));
        c.args(args);
        self.aws_env(&mut c);
        c
    }

    /// The variables a user sets for this server, and dummy credentials.
    pub(crate) fn aws_env(&self, c: &mut Command) {
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ALLOW_HTTP", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server, or `None` after saying why the test is skipped.
pub(crate) fn moto(test: &str) -> Option<Moto> {
    match Moto::start() {
        Ok(m) => Some(m),
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}\n{}", String::from_utf8_lossy(&out.stdout));
    stderr
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Local trawl, same arguments.
fn trawl_local(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl")).args(args).output().unwrap()
}

const COUNTS: &str = "SELECT (SELECT count(*) FROM proxy) AS proxy, (SELECT count(*) FROM firewall) AS firewall, \
     (SELECT count(*) FROM rejects) AS rejects, (SELECT count(*) FROM ingests WHERE status = 'ingested') AS ingested";
const PER_DAY: &str =
    "SELECT date, count(*) AS n, sum(response_bytes) AS bytes FROM proxy GROUP BY date ORDER BY date";

#[test]
fn moto_refuses_a_second_create_of_one_key() {
    let Some(moto) = moto("moto_refuses_a_second_create_of_one_key") else { return };
    moto.bucket("conditional");
    // delta-rs commits each version with If-None-Match: *; a server that ignores it would let two
    // writers both commit one version, and one commit would be lost. Signed requests, as
    // object_store sends them (boto3 comes with moto).
    let script = "codes = []\n\
         for body in (b'first', b'second'):\n\
         \x20   try:\n\
         \x20       codes.append(s3.put_object(Bucket='conditional', Key='k', Body=body, IfNoneMatch='*')['ResponseMetadata']['HTTPStatusCode'])\n\
         \x20   except botocore.exceptions.ClientError as e:\n\
         \x20       codes.append(e.response['ResponseMetadata']['HTTPStatusCode'])\n\
         print(codes, s3.get_object(Bucket='conditional', Key='k')['Body'].read().decode())";
    assert_eq!(moto.boto(script), "[200, 412] first\n");
}

#[test]
fn an_s3_lake_holds_what_a_local_lake_holds_through_ingest_query_detect_compact_and_verify() {
    let Some(moto) = moto("an_s3_lake_holds_what_a_local_lake_holds") else { return };
    moto.bucket("evidence");
    let s3 = "s3://evidence/cases/7";
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    let local = local.to_str().unwrap();
    let (data, conf) = (testdata(""), testdata("squid-custom/squid.conf"));
    let (data, conf) = (data.to_str().unwrap(), conf.to_str().unwrap());
    let ingest =
        |lake| ["ingest", "--quiet", "--tz", "Asia/Tokyo", "--squid-conf", conf, "--lake", lake, data];
    let (li, si) = (ingest(local), ingest(s3));
    ok(&trawl_local(&li), "local ingest");
    ok(&moto.trawl(&si), "S3 ingest");

    let query = |lake: &str, sql: &str, on_s3: bool| {
        let a = ["query", "--format", "csv", "--lake", lake, sql];
        let out = if on_s3 { moto.trawl(&a) } else { trawl_local(&a) };
        ok(&out, sql);
        stdout(&out)
    };
    let counts = query(local, COUNTS, false);
    assert_eq!(query(s3, COUNTS, true), counts);
    let lines: Vec<&str> = counts.lines().collect();
    assert_eq!(lines[0], "proxy,firewall,rejects,ingested");
    assert!(!lines[1].starts_with("0,"), "the local lake has rows: {counts}");
    assert_eq!(query(s3, PER_DAY, true), query(local, PER_DAY, false));

    // The same files again add nothing.
    ok(&moto.trawl(&si), "second S3 ingest");
    assert_eq!(query(s3, COUNTS, true), counts);

    // Detections over the S3 lake find exactly what they find locally.
    for id in ["scripted_agents", "direct_ip", "blocked_then_allowed"] {
        let a = |lake| ["query", "--format", "csv", "--detection", id, "--lake", lake];
        let want = trawl_local(&a(local));
        let got = moto.trawl(&a(s3));
        assert_eq!(stdout(&got), stdout(&want), "{id}: {}", String::from_utf8_lossy(&got.stderr));
    }
    let detect = moto.trawl(&["detect", "--lake", s3]);
    ok(&detect, "detect on S3");

    // verify, compact, verify: every file hashes right, nothing extra, the rows unchanged.
    let verified = moto.trawl(&["verify", "--lake", s3]);
    ok(&verified, "verify on S3");
    let compacted = ok(&moto.trawl(&["compact", "--lake", s3]), "compact on S3");
    assert!(compacted.contains("ingests: merged 2 files into 1"), "{compacted}");
    assert_eq!(query(s3, COUNTS, true), counts);
    assert_eq!(query(s3, PER_DAY, true), query(local, PER_DAY, false));
    ok(&moto.trawl(&["verify", "--lake", s3]), "verify after compact");

    // A live file changed in the bucket is found. Every rejects file is overwritten: the files
    // compact replaced are still there (kept for older versions) and one of them is live.
    let victims = moto.boto(
        "keys = [o['Key'] for o in s3.list_objects_v2(Bucket='evidence', Prefix='cases/7/rejects/')['Contents']]\n\
         keys = [k for k in keys if k.endswith('.parquet')]\n\
         for key in keys:\n\
         \x20   s3.put_object(Bucket='evidence', Key=key, Body=b'not parquet')\n\
         print(len(keys))",
    );
    assert_ne!(victims.trim(), "0", "rejects has files");
    let tampered = moto.trawl(&["verify", "--lake", s3]);
    assert_eq!(tampered.status.code(), Some(1), "{}", stdout(&tampered));
    assert!(stdout(&tampered).contains("modified"), "{}", stdout(&tampered));
}

/// `n` Squid lines with URLs unique to `tag`, in `dir/name`.
fn log(dir: &Path, name: &str, tag: u32, n: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = squid_lines(tag, n).replace("example.com/p", &format!("example.com/t{tag}/p"));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_processes_ingesting_overlapping_files_into_one_s3_lake_read_every_line_once() {
    let Some(moto) = moto("two_processes_ingesting_overlapping_files_into_one_s3_lake") else { return };
    moto.bucket("shared");
    let dir = tempfile::tempdir().unwrap();
    let mut races = 0;
    for round in 0..3u32 {
        let lake = format!("s3://shared/round{round}");
        // Created first (an empty folder is valid input), so the runs race on their commits.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        ok(
            &moto.trawl(&["ingest", "--quiet", "--tz", "UTC", "--lake", &lake, empty.to_str().unwrap()]),
            "create",
        );
        // a = {1, 2, 3}, b = {2, 3, 4} (2 and 3 the same bytes under other names), each 400 lines.
        let (a, b) = (dir.path().join(format!("a{round}")), dir.path().join(format!("b{round}")));
        for t in [1, 2, 3] {
            log(&a, &format!("access{t}.log"), round * 10 + t, 400);
        }
        for t in [2, 3, 4] {
            log(&b, &format!("proxy-{t}.log"), round * 10 + t, 400);
        }
        let spawn = |input: &Path| {
            moto.command(&["ingest", "--quiet", "--tz", "UTC", "--lake", &lake, input.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
        let ea = ok(&oa, "first racing ingest");
        let eb = ok(&ob, "second racing ingest");
        let raced = [&ea, &eb].iter().filter(|e| e.contains("lost a commit race")).count();
        eprintln!("round {round}: {raced} run(s) lost a commit race and read again");
        races += raced;
        let out = moto.trawl(&[
            "query",
            "--format",
            "csv",
            "--lake",
            &lake,
            "SELECT count(*) AS n, count(DISTINCT url) AS urls, \
             (SELECT count(*) FROM ingests WHERE status = 'ingested') AS reads FROM proxy",
        ]);
        ok(&out, "count");
        // Four distinct files of 400 lines: each line once, each file read once.
        assert_eq!(stdout(&out), "n,urls,reads\n1600,1600,4\n", "round {round}");
        ok(&moto.trawl(&["verify", "--lake", &lake]), "verify after the race");
    }
    // Else the runs went one after the other and the retry was never exercised (each round
    // races in practice: both runs start together and read the same tables).
    assert!(races >= 1, "no run lost a commit race in 3 rounds");
}

#[test]
fn s3_errors_say_what_to_set() {
    let Some(moto) = moto("s3_errors_say_what_to_set") else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = log(&dir.path().join("logs"), "access.log", 1, 3);
    let input = input.to_str().unwrap();
    let out = moto.trawl(&["ingest", "--tz", "UTC", "--lake", "s3://no-such-bucket/lake", input]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bucket no-such-bucket does not exist"), "{stderr}");
    // Every command says so, not that there is no lake there.
    for args in [
        vec!["query", "--lake", "s3://no-such-bucket/lake", "SELECT 1"],
        vec!["verify", "--lake", "s3://no-such-bucket/lake"],
        vec!["detect", "--lake", "s3://no-such-bucket/lake"],
        vec!["compact", "--lake", "s3://no-such-bucket/lake"],
    ] {
        let out = moto.trawl(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("bucket no-such-bucket does not exist"), "{args:?}: {stderr}");
    }

    // Nothing listens on port 1.
    let out = moto
        .command(&["ingest", "--tz", "UTC", "--lake", "s3://any/lake", input])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the S3 endpoint (http://127.0.0.1:1) could not be reached: check AWS_ENDPOINT_URL"),
        "{stderr}"
    );

    let home = tempfile::tempdir().unwrap();
    let out = moto
        .command(&["query", "--lake", "s3://any/lake", "SELECT 1"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{stderr}"
    );

    // A profile in ~/.aws/credentials is read when no variable gives keys.
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = nope\n\n[case]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    moto.bucket("profiled");
    let out = moto
        .command(&["ingest", "--quiet", "--tz", "UTC", "--lake", "s3://profiled/lake", input])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", home.path())
        .env("AWS_PROFILE", "case")
        .output()
        .unwrap();
    ok(&out, "ingest with a profile");
}

/// Runs `child`, an ignored test of this binary, in a process of its own with this server's
/// settings in its environment: the library reads them there as trawl does, and this process
/// never changes its environment under other tests' threads.
fn in_child(moto: &Moto, child: &str, lake: &str) -> String {
    run_child(moto, &format!("s3::{child}"), &[("TRAWL_TEST_S3_LAKE", lake)])
}

/// Runs the ignored test `test` (its whole path) alone in a child process with this server's
/// settings and `env`, and gives what it printed; fails, saying it, unless the test passed.
pub(crate) fn run_child(moto: &Moto, test: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"]).envs(env.iter().copied());
    moto.aws_env(&mut cmd);
    let out = cmd.output().unwrap();
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test}: {text}");
    assert!(text.contains("1 passed"), "{test} ran: {text}");
    text
}

/// Deletes every object below `prefix` of `bucket`, as another run does with a lease it takes for
/// lapsed; from a child, whose environment names the server.
fn delete_below(bucket: &str, prefix: &str) {
    let script = format!(
        "import boto3, os\ns3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'], \
         aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')\n\
         keys = [o['Key'] for o in s3.list_objects_v2(Bucket='{bucket}', Prefix='{prefix}').get('Contents', [])]\n\
         for k in keys:\n    s3.delete_object(Bucket='{bucket}', Key=k)\nprint(len(keys))\n"
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "1\n", "one run's lease was there to delete");
}

#[test]
fn a_run_whose_s3_lease_was_taken_over_commits_nothing() {
    let Some(moto) = moto("a_run_whose_s3_lease_was_taken_over_commits_nothing") else { return };
    moto.bucket("leases");
    let lake = "s3://leases/taken";
    in_child(&moto, "child_run_whose_lease_is_deleted_before_its_commit", lake);
    // The tables exist (created before the run read anything) and hold nothing of the run's.
    let out = moto.trawl(&["query", "--format", "csv", "--lake", lake, COUNTS]);
    ok(&out, "count");
    assert_eq!(stdout(&out), "proxy,firewall,rejects,ingested\n0,0,0,0\n");
    let parquet = moto.boto(
        "print(sum(o['Key'].endswith('.parquet') for o in s3.list_objects_v2(Bucket='leases', Prefix='taken/').get('Contents', [])))",
    );
    assert_eq!(parquet, "0\n", "the refused run took its files with it");
}

#[test]
#[ignore = "run by a_run_whose_s3_lease_was_taken_over_commits_nothing, in a process with S3 settings"]
fn child_run_whose_lease_is_deleted_before_its_commit() {
    let lake_url = std::env::var("TRAWL_TEST_S3_LAKE").unwrap();
    // Renewed every 0.4 s; a run refuses to commit 2 s after its last renewal.
    trawl::lake::set_lease_ttl_for_tests(Duration::from_secs(4));
    let lake = trawl::lake::Lake::open_or_create(Path::new(&lake_url), Some("UTC")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = log(&dir.path().join("a"), "access.log", 1, 50);
    let mut o = crate::common::ingest_options(&[&input]);
    let prefix = format!("{}/_trawl/runs/", lake_url.trim_start_matches("s3://leases/"));
    o.testing.before_commit = Some(std::sync::Arc::new(move || {
        // Another run took the lease for lapsed (the network was down) and deleted it; a
        // renewal then comes through. It must not bring the lease back to life.
        delete_below("leases", &prefix);
        std::thread::sleep(Duration::from_millis(1500));
    }));
    let err = trawl::ingest::ingest(&lake, &o).expect_err("a run whose lease was taken over commits nothing");
    let text = err.to_string();
    assert!(text.contains("lease on the lake was last renewed"), "{text}");
}

#[test]
fn a_live_run_keeps_its_s3_files_past_the_lease_ttl_while_another_cleans_up() {
    let Some(moto) = moto("a_live_run_keeps_its_s3_files_past_the_lease_ttl") else { return };
    moto.bucket("live");
    let lake = "s3://live/lake";
    in_child(&moto, "child_run_outliving_its_lease_ttl_before_its_commit", lake);
    let out = moto.trawl(&[
        "query",
        "--format",
        "csv",
        "--lake",
        lake,
        "SELECT count(*) AS n, count(DISTINCT url) AS urls, \
         (SELECT count(*) FROM ingests WHERE status = 'ingested') AS reads FROM proxy",
    ]);
    ok(&out, "count");
    assert_eq!(stdout(&out), "n,urls,reads\n100,100,2\n");
    ok(&moto.trawl(&["verify", "--lake", lake]), "verify");
}

#[test]
#[ignore = "run by a_live_run_keeps_its_s3_files_past_the_lease_ttl_while_another_cleans_up, in a process with S3 settings"]
fn child_run_outliving_its_lease_ttl_before_its_commit() {
    let lake_url = std::env::var("TRAWL_TEST_S3_LAKE").unwrap();
    // Renewed every 0.2 s: a lease not renewed would expire 2 s after the run began.
    trawl::lake::set_lease_ttl_for_tests(Duration::from_secs(2));
    let lake = trawl::lake::Lake::open_or_create(Path::new(&lake_url), Some("UTC")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = log(&dir.path().join("a"), "access.log", 1, 50);
    let b = log(&dir.path().join("b"), "access.log", 2, 50);
    let (url, b) = (lake_url.clone(), b.to_str().unwrap().to_string());
    let mut o = crate::common::ingest_options(&[&a]);
    o.testing.before_commit = Some(std::sync::Arc::new(move || {
        // Past the TTL, with this run's files written and uncommitted, another run cleans up.
        std::thread::sleep(Duration::from_secs(3));
        let other = Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(["ingest", "--tz", "UTC", "--lake", &url, &b])
            .output()
            .unwrap();
        assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stderr));
        assert!(
            !String::from_utf8_lossy(&other.stderr).contains("never committed"),
            "{}",
            String::from_utf8_lossy(&other.stderr)
        );
    }));
    let report = trawl::ingest::ingest(&lake, &o).expect("a live run commits after another's cleanup");
    assert_eq!(report.files.len(), 1);
}

/// A proxy in front of a server: forwards each request (one per connection), and answers with
/// what `fault` returns for its head instead of the server's reply, if anything.
struct Faulty {
    port: u16,
}

/// Given a request's head, a reply to send instead of the server's.
type Fault = dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync;

impl Faulty {
    fn start(upstream: u16, fault: std::sync::Arc<Fault>) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let fault = std::sync::Arc::clone(&fault);
                std::thread::spawn(move || {
                    let mut req = Vec::new();
                    let mut byte = [0u8; 1];
                    while !req.ends_with(b"\r\n\r\n") {
                        if client.read(&mut byte).unwrap_or(0) == 0 {
                            return;
                        }
                        req.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&req).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    client.read_exact(&mut body).unwrap();
                    let head = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                    let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                    up.write_all(head.as_bytes()).unwrap();
                    up.write_all(&body).unwrap();
                    let mut reply = Vec::new();
                    let _ = up.read_to_end(&mut reply);
                    let reply = fault(&head).unwrap_or(reply);
                    let _ = client.write_all(&reply);
                });
            }
        });
        Faulty { port }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The request line's method and path (without the query).
fn method_and_path(head: &str) -> (&str, &str) {
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default();
    (method, words.next().unwrap_or_default().split('?').next().unwrap_or_default())
}

#[test]
fn a_commit_whose_reply_was_lost_is_taken_for_the_run_s_own() {
    let Some(moto) = moto("a_commit_whose_reply_was_lost_is_taken_for_the_run_s_own") else { return };
    moto.bucket("lossy");
    let lake = "s3://lossy/lake";
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    ok(&moto.trawl(&["ingest", "--quiet", "--tz", "UTC", "--lake", lake, empty.to_str().unwrap()]), "create");
    let input = log(&dir.path().join("logs"), "access.log", 1, 40);
    // proxy's commit lands, its reply is lost; object_store sends it again and meets its own file.
    let puts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&puts);
    let proxy = Faulty::start(
        moto.port,
        std::sync::Arc::new(move |head: &str| {
            let (method, path) = method_and_path(head);
            let commit =
                method == "PUT" && path.ends_with("/lake/proxy/_delta_log/00000000000000000001.json");
            (commit && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0).then(|| {
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec()
            })
        }),
    );
    let out = moto
        .command(&["ingest", "--tz", "UTC", "--lake", lake, input.to_str().unwrap()])
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .output()
        .unwrap();
    let stderr = ok(&out, "ingest whose proxy commit's reply was lost");
    assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 2, "sent, lost, sent again: {stderr}");
    assert!(!stderr.contains("lost a commit race"), "{stderr}");
    let out = moto.trawl(&["query", "--format", "csv", "--lake", lake, COUNTS]);
    ok(&out, "count");
    assert_eq!(stdout(&out), "proxy,firewall,rejects,ingested\n40,0,0,1\n");
    ok(&moto.trawl(&["verify", "--lake", lake]), "verify: every committed file is there");
}

#[test]
fn a_prefix_with_a_space_keeps_the_log_and_the_lake_s_own_objects_together() {
    let Some(moto) = moto("a_prefix_with_a_space_keeps_the_log_and_the_lake_s_own_objects_together") else {
        return;
    };
    moto.bucket("spaced");
    let dir = tempfile::tempdir().unwrap();
    let input = log(&dir.path().join("logs"), "access.log", 1, 30);
    let lake = "s3://spaced/case 7";
    ok(&moto.trawl(&["ingest", "--quiet", "--tz", "UTC", "--lake", lake, input.to_str().unwrap()]), "ingest");
    // trawl.json, the leases and the Parquet files under the same key prefix as the Delta log.
    let tops = moto.boto(
        "print(sorted({o['Key'].split('/')[0] for o in s3.list_objects_v2(Bucket='spaced')['Contents']}))",
    );
    assert_eq!(tops, "['case 7']\n");
    let out = moto.trawl(&["query", "--format", "csv", "--lake", lake, COUNTS]);
    ok(&out, "count");
    assert_eq!(stdout(&out), "proxy,firewall,rejects,ingested\n30,0,0,1\n");
    ok(&moto.trawl(&["verify", "--lake", lake]), "verify");
}

#[test]
fn a_listing_the_server_refuses_is_an_error_not_an_empty_lake() {
    let Some(moto) = moto("a_listing_the_server_refuses_is_an_error_not_an_empty_lake") else { return };
    moto.bucket("guarded");
    let dir = tempfile::tempdir().unwrap();
    let input = log(&dir.path().join("logs"), "access.log", 1, 20);
    let lake = "s3://guarded/lake";
    ok(&moto.trawl(&["ingest", "--quiet", "--tz", "UTC", "--lake", lake, input.to_str().unwrap()]), "ingest");
    // Objects can be read, but every listing is refused (a policy without s3:ListBucket).
    let proxy = Faulty::start(
        moto.port,
        std::sync::Arc::new(|head: &str| {
            let listing = head.starts_with("GET /guarded?")
                && head.lines().next().is_some_and(|l| l.contains("list-type"));
            listing.then(|| {
                let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
                format!("HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .into_bytes()
            })
        }),
    );
    for args in [vec!["verify", "--lake", lake], vec!["query", "--lake", lake, "SELECT count(*) FROM proxy"]]
    {
        let out = moto.command(&args).env("AWS_ENDPOINT_URL", proxy.endpoint()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}{}", stdout(&out));
        assert!(stderr.contains("listing s3://guarded/lake/"), "{args:?}: {stderr}");
        assert!(stderr.contains("the credentials were refused"), "{args:?}: {stderr}");
    }
}

/// Squid lines of `tag`, `per_day` on each of `days` days from 2024-05-01 (UTC), in `dir/name`.
fn days_log(dir: &Path, name: &str, tag: u32, days: u32, per_day: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for d in 0..days {
        for i in 0..per_day {
            text.push_str(&format!(
                "{}.000 {:>5} 10.0.{tag}.{} TCP_MISS/200 {} GET http://h{tag}.example.com/d{d}/p{i} - \
                 HIER_DIRECT/203.0.113.9 text/html\n",
                1_714_521_600 + d * 86_400 + tag * 60 + i,
                i % 900,
                i % 200,
                500 + i * 7,
            ));
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn cleanup_at_ingest_start_reads_each_run_s_lease_once() {
    let Some(moto) = moto("cleanup_at_ingest_start_reads_each_run_s_lease_once") else { return };
    moto.bucket("sifted");
    let lake = "s3://sifted/lake";
    let dir = tempfile::tempdir().unwrap();
    // Two committed runs, 20 day files each in proxy.
    for tag in [1, 2] {
        let input = days_log(&dir.path().join(format!("in{tag}")), "access.log", tag, 20, 3);
        let args = ["ingest", "--quiet", "--tz", "UTC", "--lake", lake, input.to_str().unwrap()];
        ok(&moto.trawl(&args), "ingest");
    }
    // Three runs' uncommitted files, 10 each: one run still live, one whose lease lapsed, one
    // whose lease is gone (taken for lapsed by an earlier cleanup).
    let (live, lapsed, gone) = ("a".repeat(32), "b".repeat(32), "c".repeat(32));
    let script = format!(
        "import json, time\nnow = int(time.time() * 1000)\n\
         for run, expires in (('{live}', now + 3600_000), ('{lapsed}', now - 60_000)):\n\
         \x20   body = json.dumps({{'run': run, 'written_unix_ms': expires - 600_000, 'expires_unix_ms': expires}})\n\
         \x20   s3.put_object(Bucket='sifted', Key=f'lake/_trawl/runs/{{run}}.lease', Body=body.encode())\n\
         for run in ('{live}', '{lapsed}', '{gone}'):\n\
         \x20   for i in range(10):\n\
         \x20       s3.put_object(Bucket='sifted', Key=f'lake/proxy/date=2024-05-{{i + 1:02}}/part-{{run}}-{{i:032x}}.zstd.parquet', Body=b'x')\n\
         print('ok')"
    );
    assert_eq!(moto.boto(&script), "ok\n");
    let parquet_of = |run: &str| {
        moto.boto(&format!(
            "print(sum('part-{run}-' in o['Key'] for o in s3.list_objects_v2(Bucket='sifted', Prefix='lake/proxy/')['Contents']))"
        ))
    };
    let committed = moto.boto(
        "print(sum(o['Key'].endswith('.parquet') for o in s3.list_objects_v2(Bucket='sifted', Prefix='lake/proxy/')['Contents']))",
    );
    assert_eq!(committed, "70\n", "40 committed files and 30 uncommitted in proxy");

    let lease_gets = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&lease_gets);
    let proxy = Faulty::start(
        moto.port,
        std::sync::Arc::new(move |head: &str| {
            let (method, path) = method_and_path(head);
            if method == "GET" && path.ends_with(".lease") {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            None
        }),
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = moto
        .command(&["ingest", "--tz", "UTC", "--lake", lake, empty.to_str().unwrap()])
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .output()
        .unwrap();
    let stderr = ok(&out, "ingest that cleans up");
    assert!(
        stderr.contains("removed 20 Parquet file(s) an earlier, stopped run had written but never committed"),
        "{stderr}"
    );
    // One GET per run with uncommitted files, and one for this run's own lease, listed among
    // the leases a cleanup removes when lapsed (the other two were answered already).
    assert_eq!(lease_gets.load(std::sync::atomic::Ordering::SeqCst), 4, "{stderr}");
    assert_eq!(parquet_of(&live), "10\n", "the live run keeps its files");
    assert_eq!(parquet_of(&lapsed), "0\n");
    assert_eq!(parquet_of(&gone), "0\n");
    let leases = moto.boto(
        "print(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='sifted', Prefix='lake/_trawl/runs/').get('Contents', [])))",
    );
    assert_eq!(leases, format!("['lake/_trawl/runs/{live}.lease']\n"));
    let out = moto.trawl(&["query", "--format", "csv", "--lake", lake, COUNTS]);
    ok(&out, "count");
    assert_eq!(stdout(&out), "proxy,firewall,rejects,ingested\n120,0,0,2\n");
}

/// Each manifest list of `table` below `root` (a folder, or `bucket/prefix` on the server) by
/// its path inside the table, with its lines, the lake's place taken off each.
fn manifests(moto: &Moto, root: &str, table: &str) -> Vec<(String, Vec<String>)> {
    let local = !root.contains("://");
    let listing = if local {
        let dir = Path::new(root).join(table).join("_symlink_format_manifest");
        let mut found = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()) {
                if e.is_dir() {
                    stack.push(e);
                } else if e.file_name().unwrap() == "manifest" {
                    let rel =
                        e.strip_prefix(Path::new(root).join(table)).unwrap().to_str().unwrap().to_string();
                    found.push((rel, std::fs::read_to_string(&e).unwrap()));
                }
            }
        }
        found
    } else {
        let (bucket, prefix) = root.trim_start_matches("s3://").split_once('/').unwrap();
        let out = moto.boto(&format!(
            "import json\nkeys = [o['Key'] for o in s3.list_objects_v2(Bucket='{bucket}', \
             Prefix='{prefix}/{table}/_symlink_format_manifest/').get('Contents', [])]\n\
             print(json.dumps([[k[len('{prefix}/{table}/'):], s3.get_object(Bucket='{bucket}', Key=k)['Body'].read().decode()] for k in keys]))"
        ));
        serde_json::from_str::<Vec<(String, String)>>(&out).unwrap()
    };
    let base = if local {
        format!("{}/{table}/", std::fs::canonicalize(root).unwrap().display())
    } else {
        format!("{root}/{table}/")
    };
    let mut lists: Vec<(String, Vec<String>)> = listing
        .into_iter()
        .map(|(rel, text)| {
            let lines = text
                .lines()
                .map(|l| {
                    l.strip_prefix(&base).unwrap_or_else(|| panic!("{l} is not below {base}")).to_string()
                })
                .collect();
            (rel, lines)
        })
        .collect();
    lists.sort();
    lists
}

/// Each list with how many files it names: what two lakes fed the same input share (file
/// names carry run ids).
fn shape(lists: &[(String, Vec<String>)]) -> Vec<(String, usize)> {
    lists.iter().map(|(rel, lines)| (rel.clone(), lines.len())).collect()
}

#[test]
fn s3_manifests_name_the_live_files_as_a_local_lake_s_do() {
    let Some(moto) = moto("s3_manifests_name_the_live_files_as_a_local_lake_s_do") else { return };
    moto.bucket("listed");
    let s3 = "s3://listed/lake";
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    let local = local.to_str().unwrap();
    let inputs: Vec<PathBuf> =
        (1..=2).map(|t| days_log(&dir.path().join(format!("in{t}")), "access.log", t, 3, 4)).collect();
    for input in &inputs {
        let args = |lake| ["ingest", "--quiet", "--tz", "UTC", "--lake", lake, input.to_str().unwrap()];
        ok(&trawl_local(&args(local)), "local ingest");
        ok(&moto.trawl(&args(s3)), "S3 ingest");
    }
    // Two runs, three days: two files a day, in every list as on disk.
    let days: Vec<(String, usize)> =
        (1..=3).map(|d| (format!("_symlink_format_manifest/date=2024-05-0{d}/manifest"), 2)).collect();
    assert_eq!(shape(&manifests(&moto, s3, "proxy")), days);
    assert_eq!(shape(&manifests(&moto, local, "proxy")), days);
    let ingests = vec![("_symlink_format_manifest/manifest".to_string(), 2)];
    assert_eq!(shape(&manifests(&moto, s3, "ingests")), ingests);
    assert_eq!(shape(&manifests(&moto, local, "ingests")), ingests);
    ok(&moto.trawl(&["verify", "--lake", s3]), "verify: the lists name the live files");

    // After a compact, one file a day, the replaced ones named no more.
    let before = manifests(&moto, s3, "proxy");
    ok(&moto.trawl(&["compact", "--lake", s3]), "compact on S3");
    ok(&trawl_local(&["compact", "--lake", local]), "compact on disk");
    let after = manifests(&moto, s3, "proxy");
    let one_a_day: Vec<(String, usize)> = days.iter().map(|(rel, _)| (rel.clone(), 1)).collect();
    assert_eq!(shape(&after), one_a_day);
    assert_eq!(shape(&manifests(&moto, local, "proxy")), one_a_day);
    for ((_, old), (_, new)) in before.iter().zip(&after) {
        assert!(old.iter().all(|f| !new.contains(f)), "{old:?} then {new:?}");
    }
    ok(&moto.trawl(&["verify", "--lake", s3]), "verify after compact");

    // A list changed in the bucket is found, and `trawl manifest` puts it right.
    let key = "lake/proxy/_symlink_format_manifest/date=2024-05-02/manifest";
    moto.boto(&format!(
        "s3.put_object(Bucket='listed', Key='{key}', Body=s3.get_object(Bucket='listed', Key='{key}')['Body'].read() + b'{s3}/proxy/date=2024-05-02/gone.parquet\\n')"
    ));
    let stale = moto.trawl(&["verify", "--lake", s3]);
    assert_eq!(stale.status.code(), Some(1), "{}", stdout(&stale));
    assert!(stdout(&stale).contains("manifest stale"), "{}", stdout(&stale));
    let repaired = ok(&moto.trawl(&["manifest", "--lake", s3]), "manifest on S3");
    assert!(repaired.contains("proxy: rewrote 1 partition list(s)"), "{repaired}");
    assert_eq!(manifests(&moto, s3, "proxy"), after);
    // Current lists are left alone (their ETags are the MD5 of what they should hold).
    let again = ok(&moto.trawl(&["manifest", "--lake", s3]), "manifest again");
    assert!(!again.contains("rewrote"), "{again}");
    ok(&moto.trawl(&["verify", "--lake", s3]), "verify after the repair");
}

#[test]
fn moto_refuses_a_write_if_match_names_an_older_version() {
    let Some(moto) = moto("moto_refuses_a_write_if_match_names_an_older_version") else { return };
    moto.bucket("matched");
    // Manifests on S3 rest on If-Match: a list changed since it was read is not overwritten.
    let script = "first = s3.put_object(Bucket='matched', Key='k', Body=b'v1')['ETag']\n\
         codes = []\n\
         for body in (b'v2', b'v3'):\n\
         \x20   try:\n\
         \x20       codes.append(s3.put_object(Bucket='matched', Key='k', Body=body, IfMatch=first)['ResponseMetadata']['HTTPStatusCode'])\n\
         \x20   except botocore.exceptions.ClientError as e:\n\
         \x20       codes.append(e.response['ResponseMetadata']['HTTPStatusCode'])\n\
         print(codes, s3.get_object(Bucket='matched', Key='k')['Body'].read().decode())";
    assert_eq!(moto.boto(script), "[200, 412] v2\n");
}
