//! Parser throughput on one core, without Parquet: how much of an ingest is parsing and Arrow
//! building, and how much is everything else (reading, hashing, encoding, writing).
//!
//! `cargo run --release --example parsers -- FILE [FORMAT] [REPS]` reads up to 256 MiB of FILE
//! (plain), then pushes every line through the format's sink REPS times (default 3), taking a
//! batch every 64 Ki rows as ingest does, and prints the best run's lines/s and MB/s. It then
//! writes the last run's batches through the lake's own Parquet writer (a scratch lake in the
//! temp folder) and prints that alone, per MB of the log: what encoding and zstd cost per core.

use std::io::Read;
use std::time::Instant;

use trawl::formats::{Batch, Format, FormatKind, LineMeta};
use trawl::framing::{Line, LineReader};
use trawl::localtime::{LocalDays, parse_tz};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: parsers FILE [squid|squid_common|squid_combined|ifilter|windows_firewall] [REPS]");
        std::process::exit(2);
    };
    let kind = match args.get(1).map(String::as_str).unwrap_or("squid") {
        "squid" => FormatKind::Squid,
        "squid_common" => FormatKind::SquidCommon,
        "squid_combined" => FormatKind::SquidCombined,
        "ifilter" => FormatKind::Ifilter,
        "windows_firewall" => FormatKind::WindowsFirewall,
        other => panic!("unknown format {other}"),
    };
    let reps: usize = args.get(2).map_or(3, |r| r.parse().expect("REPS is a number"));
    let mut data = Vec::new();
    std::fs::File::open(path).expect("readable file").take(256 << 20).read_to_end(&mut data).expect("read");
    let format = Format::Builtin(kind);
    let days = LocalDays::new(parse_tz("Asia/Tokyo").expect("zone"));
    let mut best = f64::MAX;
    let (mut lines, mut rows) = (0u64, 0u64);
    let mut batches: Vec<Batch> = Vec::new();
    for _ in 0..reps {
        batches.clear();
        let mut sink = format.sink(days.clone());
        sink.set_source(path);
        let mut reader = LineReader::new(&data[..], 1);
        (lines, rows) = (0, 0);
        let started = Instant::now();
        while let Some((no, line)) = reader.next_line().expect("in memory") {
            lines += 1;
            let Line::Full(l) = line else { continue };
            let (host, payload) = trawl::formats::syslog::unwrap(l);
            if let Ok(Some(_)) = sink.push(payload, LineMeta { no, log_host: host }) {
                rows += 1;
            }
            if sink.len() >= trawl::ingest::BATCH_ROWS {
                batches.push(sink.take_batch());
            }
        }
        batches.push(sink.take_batch());
        best = best.min(started.elapsed().as_secs_f64());
    }
    let table = format.sink(days.clone()).table();
    println!(
        "{}: {lines} lines ({rows} rows), {:.1} MB: best of {reps} {:.3} s = {:.0} lines/s, {:.1} MB/s on one core",
        format.name(),
        data.len() as f64 / 1e6,
        best,
        lines as f64 / best,
        data.len() as f64 / 1e6 / best
    );
    let scratch = std::env::temp_dir().join(format!("trawl-encode-{}", std::process::id()));
    let lake = trawl::lake::Lake::open_or_create(&scratch, Some("Asia/Tokyo")).expect("scratch lake");
    let lease = lake.lease().expect("lease");
    let mut writer = lake.writer(table, &lease);
    let started = Instant::now();
    for b in batches {
        writer.write(b).expect("write");
    }
    let written = writer.finish().expect("finish");
    let encode = started.elapsed().as_secs_f64();
    let out: u64 = written.iter().map(|f| f.size).sum();
    println!(
        "{}: Parquet encoding alone (lake's writer, zstd): {encode:.3} s = {:.1} MB/s of log on one core, \
         {:.1} MB of Parquet",
        format.name(),
        data.len() as f64 / 1e6 / encode,
        out as f64 / 1e6
    );
    drop(lease);
    let _ = std::fs::remove_dir_all(&scratch);
}
