//! Hostile bytes never panic a parser: seeded random mutations of real lines, fed to every format.

use trawl::formats::{Format, FormatKind, LineMeta, RowSink};
use trawl::localtime::{LocalDays, parse_tz};

const SEEDS: &[&str] = &[
    "1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/209.73.177.115 -",
    r#"192.0.2.11 - CORP%5Cbob [30/Apr/2024:23:59:59.250 +0900] "POST http://upload.example.org/api HTTP/1.1" 403 312 "-" "python-requests/2.31.0" TCP_DENIED:HIER_NONE"#,
    r#"Sep 19 19:26:56 4872 1000/01/ - - 192.168.1.1 192.168.1.1 - user01 [19/Sep/2017:19:26:56 +0900] 503 0 1207 block 63 87 87/127/151 -1 0 1518 0 group01 - 0 - "GET https://www.youtube.com/sw.js HTTP/1.1" - Chrome text%2Fhtml%3B+charset%3Dutf-8 A667FEFF"#,
    "2023-11-20 17:53:54 DROP TCP 192.168.10.30 34.120.208.123 61005 443 0 - 0 0 0 - - - SEND 11188",
    "#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path pid",
    r#"<134>1 2024-06-28T12:20:30Z gw squid - ID47 [x@1 a="b\]c"] logformat=lsc-squid-format duration=1 src_ip=::1"#,
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(r: &mut Rng, line: &[u8]) -> Vec<u8> {
    let mut v = line.to_vec();
    for _ in 0..1 + r.below(4) {
        let at = r.below(v.len() + 1);
        match r.below(6) {
            0 if !v.is_empty() => {
                v.remove(at.min(v.len() - 1));
            }
            1 => v.insert(at, b"\0 \"[]%:/-\xff\xfe<>#"[r.below(14)]),
            2 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = r.next() as u8;
            }
            3 => v.truncate(at),
            4 => {
                let i = r.below(v.len() + 1);
                let tail: Vec<u8> = v[i.min(v.len())..].to_vec();
                v.extend_from_slice(&tail);
            }
            _ => v.insert(at, b' '),
        }
    }
    v
}

#[test]
fn no_parser_panics_on_mutated_lines() {
    let logstare = trawl::formats::logformat::from_arg(
        r#"timefm <34>logformat=lsc-squid-format duration=%tr src_ip=%>a user="%[un" local_time=[%tl] url="%ru" http_user_agent="%{User-Agent}>h" status=%>Hs bytes_in=%>st"#,
    )
    .unwrap();
    let mut formats: Vec<Format> = FormatKind::ALL.into_iter().map(Format::Builtin).collect();
    formats.push(Format::Logformat(std::sync::Arc::new(logstare)));
    let days = LocalDays::new(parse_tz("Asia/Tokyo").unwrap());
    let mut sinks: Vec<Box<dyn RowSink>> = formats.iter().map(|f| f.sink(days.clone())).collect();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pushed = 0usize;
    for i in 0..20_000u64 {
        let seed = SEEDS[r.below(SEEDS.len())].as_bytes();
        let line = if i % 10 == 0 {
            (0..r.below(300)).map(|_| r.next() as u8).collect()
        } else {
            mutate(&mut r, seed)
        };
        let (host, payload) = trawl::formats::syslog::unwrap(&line);
        for s in &mut sinks {
            if let Ok(Some(_)) = s.push(payload, LineMeta { no: i + 1, log_host: host }) {
                pushed += 1;
            }
            if s.len() >= 4096 {
                // Every batch must still be consistent (equal column lengths, valid types).
                assert!(s.take_batch().batch.num_rows() > 0);
            }
        }
    }
    for s in &mut sinks {
        s.take_batch();
    }
    // The mutations keep many lines valid: the test exercises the append paths, not only rejects.
    assert!(pushed > 2_000, "{pushed}");
}

/// Whether `path` and every folder above it can be read and entered by any user.
fn world_reachable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005))
        && std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005)
}

#[test]
fn hostile_files_each_get_a_message_naming_them_and_the_run_goes_on() {
    use std::io::Write;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::os::unix::process::CommandExt;

    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let good = crate::common::squid_lines(1, 20);
    let w = |name: &str, bytes: &[u8]| std::fs::write(logs.join(name), bytes).unwrap();
    w("good.log", good.as_bytes());
    // A 2 MB line between two good ones: cut, rejected with its start kept, the next line read.
    let mut long = good.lines().next().unwrap().as_bytes().to_vec();
    long.extend(std::iter::repeat_n(b'a', 2 << 20));
    w(
        "long.log",
        &[
            good.lines().nth(1).unwrap().as_bytes(),
            b"\n",
            &long,
            b"\n",
            good.lines().nth(2).unwrap().as_bytes(),
            b"\n",
        ]
        .concat(),
    );
    // NUL bytes inside a line and a line of nothing else.
    let nul = good.lines().nth(3).unwrap().replace("/p3", "/p\x003\x00");
    w("nul.log", format!("{}\n{nul}\n\0\0\0\0\n", good.lines().nth(4).unwrap()).as_bytes());
    w("crlf.log", good.lines().take(3).collect::<Vec<_>>().join("\r\n").as_bytes());
    w("empty.log", b"");
    // A gzip cut in the middle: what came before the cut is kept, the error names the file.
    let many = crate::common::squid_lines(2, 3000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(many.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    w("truncated.log.gz", &gz[..gz.len() / 2]);
    // Unreadable file and folder; a link to its own folder (a loop) and a link to itself.
    w("secret.log", good.as_bytes());
    std::fs::set_permissions(logs.join("secret.log"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::create_dir(logs.join("closed")).unwrap();
    std::fs::write(logs.join("closed/inner.log"), good.as_bytes()).unwrap();
    std::fs::set_permissions(logs.join("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    symlink(".", logs.join("loop")).unwrap();
    symlink("self", logs.join("self")).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(logs.join("pipe")).status().unwrap();
    assert!(fifo.success());

    let lake = tmp.path().join("lake");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"));
    cmd.args(["ingest", "--tz", "UTC", "--lake"]).arg(&lake).arg(&logs);
    // Root reads everything; run as nobody, when nobody can run the binary, to see refusals.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(logs.join("good.log")).unwrap()) == 0;
    let unprivileged = !root || world_reachable(std::path::Path::new(env!("CARGO_BIN_EXE_trawl")));
    if root && unprivileged {
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a file cut short makes the exit status 1: {stderr}");
    let said = |file: &str, what: &str| {
        assert!(stderr.lines().any(|l| l.contains(file) && l.contains(what)), "{file}: {what}\n{stderr}");
    };
    said("truncated.log.gz", "read error after line");
    said("empty.log", "empty file");
    said("loop", "link to a folder: not followed");
    said("self", "broken link");
    said("pipe", "not a regular file");
    if unprivileged {
        said("secret.log", "Permission denied");
        said("closed", "cannot list folder");
    }

    let l = crate::common::TestLake::open(&lake);
    let per_file = |f: &str| {
        l.rows(&format!(
            "SELECT status, lines, rows, rejects, coalesce(reason, '') FROM ingests WHERE path LIKE '%/{f}'"
        ))
    };
    assert_eq!(per_file("good.log")[0][..4], ["ingested", "20", "20", "0"]);
    assert_eq!(per_file("long.log")[0][..4], ["ingested", "3", "2", "1"]);
    assert_eq!(
        l.scalar("SELECT reason || ' ' || CAST(length(raw) AS VARCHAR) FROM rejects WHERE source_file LIKE '%long.log'"),
        "line longer than 1048576 bytes; its start is kept 65536"
    );
    let nul = &per_file("nul.log")[0];
    assert_eq!(nul[..2], ["ingested", "3"]);
    assert_eq!(
        nul[2].parse::<u32>().unwrap() + nul[3].parse::<u32>().unwrap(),
        3,
        "every line counted: {nul:?}"
    );
    assert_eq!(per_file("crlf.log")[0][..4], ["ingested", "3", "3", "0"]);
    let cut = &per_file("truncated.log.gz")[0];
    assert_eq!(cut[0], "partial");
    let (lines, rows) = (cut[1].parse::<u32>().unwrap(), cut[2].parse::<u32>().unwrap());
    assert!(rows > 100 && rows < 3000 && lines >= rows, "rows before the cut are kept: {cut:?}");
    assert_eq!(per_file("empty.log")[0][0], "skipped");
}
