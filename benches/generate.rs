//! Seeded generator of realistic proxy logs for benchmarks and large tests.
//!
//! `cargo run --release --example generate -- --out DIR --bytes 1G [--files 8] [--seed 42] [--gzip]
//!  [--format squid|ifilter|firewall] [--incidents]`
//!
//! `--incidents` writes office traffic with planted incidents instead (`benches/incidents.rs`:
//! i-FILTER proxy and Windows Firewall logs, one incident per built-in detection), with as many
//! users as make about `--bytes` of proxy log.
//!
//! Thousands of users on their own client addresses, Zipf-distributed domains, rotated files
//! covering consecutive days, and a small share of malformed lines (which
//! trawl must reject and count). Same seed, same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

#[path = "incidents.rs"]
mod incidents;

use incidents::{Rng, civil};

/// Samples ranks 0..n with probability proportional to 1/(rank+1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 0..n {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    fn sample(&self, r: &mut Rng) -> usize {
        let u = r.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

const TLDS: &[&str] = &["com", "co.jp", "jp", "net", "org", "ne.jp", "io", "de"];
const WORDS: &[&str] = &[
    "news", "mail", "cdn", "static", "api", "shop", "media", "cloud", "portal", "search", "img", "video",
    "docs", "drive", "update", "ads", "login", "app", "data", "files",
];
const TYPES: &[&str] =
    &["text/html", "image/png", "image/jpeg", "application/javascript", "text/css", "application/json", "-"];

fn parse_bytes(s: &str) -> u64 {
    let (num, mult) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        _ => (s, 1),
    };
    num.parse::<f64>().map(|n| (n * mult as f64) as u64).unwrap_or_else(|_| panic!("bad size {s}"))
}

struct Args {
    out: PathBuf,
    bytes: u64,
    files: usize,
    seed: u64,
    gzip: bool,
    format: String,
    incidents: bool,
}

fn args() -> Args {
    let mut a = Args {
        out: PathBuf::from("benches/data"),
        bytes: 1 << 30,
        files: 8,
        seed: 42,
        gzip: false,
        format: "squid".into(),
        incidents: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--out" => a.out = PathBuf::from(v()),
            "--bytes" => a.bytes = parse_bytes(&v()),
            "--files" => a.files = v().parse().expect("--files N"),
            "--seed" => a.seed = v().parse().expect("--seed N"),
            "--gzip" => a.gzip = true,
            "--format" => a.format = v(),
            "--incidents" => a.incidents = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() -> std::io::Result<()> {
    let a = args();
    std::fs::create_dir_all(&a.out)?;
    if a.incidents {
        // A user makes about 36,000 / 30 = 1,200 requests of ~330 bytes a working day, 5 days a week.
        let users = (a.bytes / (5 * 1_200 * 330)).max(25) as usize;
        let scale = incidents::Scale { users, mean_gap_s: 30.0, weeks: 1 };
        let planted = incidents::generate(&a.out, a.seed, scale)?;
        eprintln!(
            "wrote {users} users' week to {} with {} planted incidents:",
            a.out.display(),
            planted.len()
        );
        for p in planted {
            eprintln!("  {}: {}", p.detection, p.entity);
        }
        return Ok(());
    }
    let mut r = Rng(a.seed);
    let users: Vec<String> = (0..5000).map(|i| format!("user{i:04}")).collect();
    let domains: Vec<String> = (0..20_000)
        .map(|i| {
            let w = WORDS[i % WORDS.len()];
            format!("{w}.site{}.{}", i / WORDS.len(), TLDS[i % TLDS.len()])
        })
        .collect();
    let zipf = Zipf::new(domains.len(), 1.1);
    let per_file = a.bytes / a.files as u64;
    // 2024-05-01 00:00 UTC; files cover consecutive days, as rotated logs do.
    let start = 1_714_521_600u64;
    let mut total_lines = 0u64;
    let mut total_bytes = 0u64;
    for f in 0..a.files {
        let name = if a.gzip { format!("access.log.{f}.gz") } else { format!("access.log.{f}") };
        let path = a.out.join(&name);
        let file = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let mut w: Box<dyn Write> = if a.gzip {
            Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else {
            Box::new(file)
        };
        let mut written = 0u64;
        if a.format == "firewall" {
            let header = "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n#Fields: date time \
                          action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype \
                          icmpcode info path pid\n\n";
            w.write_all(header.as_bytes())?;
            written += header.len() as u64;
        }
        let mut t_ms = (start + f as u64 * 86_400) * 1000;
        let mut line = Vec::with_capacity(512);
        while written < per_file {
            t_ms += r.below(25);
            line.clear();
            let u = r.below(users.len() as u64) as usize;
            let client = format!("10.{}.{}.{}", 1 + u / 65_536, (u / 256) % 256, u % 256);
            if r.below(10_000) == 0 {
                // Malformed: a truncated line, as a crashed writer leaves.
                writeln!(line, "{}.{:03} {:>6} {client} TCP_MISS/2", t_ms / 1000, t_ms % 1000, r.below(900))?;
            } else {
                let d = &domains[zipf.sample(&mut r)];
                match a.format.as_str() {
                    "ifilter" => ifilter_line(&mut line, &mut r, t_ms, &client, &users[u], d)?,
                    "firewall" => firewall_line(&mut line, &mut r, t_ms, &client)?,
                    _ => squid_line(&mut line, &mut r, t_ms, &client, &users[u], d)?,
                }
            }
            w.write_all(&line)?;
            written += line.len() as u64;
            total_lines += 1;
            total_bytes += line.len() as u64;
        }
        w.flush()?;
    }
    eprintln!(
        "wrote {total_lines} lines, {total_bytes} bytes (before compression) in {} files to {}",
        a.files,
        a.out.display()
    );
    Ok(())
}

fn squid_line(
    line: &mut Vec<u8>,
    r: &mut Rng,
    t_ms: u64,
    client: &str,
    user_name: &str,
    d: &str,
) -> std::io::Result<()> {
    let connect = r.below(100) < 35;
    let user = if r.below(100) < 80 { user_name } else { "-" };
    let (code, status) = match r.below(100) {
        0..=69 => ("TCP_MISS", 200),
        70..=79 => ("TCP_HIT", 200),
        80..=86 => ("TCP_REFRESH_UNMODIFIED", 304),
        87..=92 => ("TCP_MISS", 404),
        93..=95 => ("TCP_DENIED", 403),
        96..=97 => ("TCP_MISS_ABORTED", 0),
        _ => ("TCP_MISS", 302),
    };
    let bytes = (r.unit().powi(3) * 2_000_000.0) as u64 + 200;
    let dur = (r.unit().powi(2) * 5_000.0) as u64;
    let server = format!("203.0.{}.{}", r.below(256), r.below(256));
    if connect {
        write!(
            line,
            "{}.{:03} {dur:>6} {client} {code}/{status:03} {bytes} CONNECT {d}:443 {user} HIER_DIRECT/{server} -",
            t_ms / 1000,
            t_ms % 1000
        )?;
    } else {
        let method = if r.below(100) < 8 { "POST" } else { "GET" };
        let ty = TYPES[r.below(TYPES.len() as u64) as usize];
        write!(
            line,
            "{}.{:03} {dur:>6} {client} {code}/{status:03} {bytes} {method} http://{d}/{}/{}?id={} {user} HIER_DIRECT/{server} {ty}",
            t_ms / 1000,
            t_ms % 1000,
            WORDS[r.below(WORDS.len() as u64) as usize],
            r.below(100_000),
            r.below(1_000_000),
        )?;
    }
    line.push(b'\n');
    Ok(())
}

const AGENTS: &[&str] = &[
    "Mozilla%2F5.0+%28Windows+NT+10.0%3B+Win64%3B+x64%29+AppleWebKit%2F537.36+%28KHTML%2C+like+Gecko%29+Chrome%2F124.0.0.0+Safari%2F537.36",
    "Mozilla%2F5.0+%28Windows+NT+10.0%3B+Win64%3B+x64%3B+rv%3A125.0%29+Gecko%2F20100101+Firefox%2F125.0",
    "Microsoft-CryptoAPI%2F10.0",
];

fn ifilter_line(
    line: &mut Vec<u8>,
    r: &mut Rng,
    t_ms: u64,
    client: &str,
    user: &str,
    d: &str,
) -> std::io::Result<()> {
    const MON: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // Local time in +0900: the generator only needs consistent, plausible fields.
    let secs = t_ms / 1000 + 9 * 3600;
    let days = (secs / 86_400) as i64;
    let (y, m, dd) = civil(days);
    let (h, mi, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let blocked = r.below(100) < 5;
    let (action, status) = if blocked { ("block", 503) } else { ("allow", 200) };
    let cat = 33 + r.below(100);
    let ua = AGENTS[r.below(AGENTS.len() as u64) as usize];
    writeln!(
        line,
        "{} {dd} {h:02}:{mi:02}:{s:02} {} 900/01/ 203.0.113.{}:80 {client} - {user} [{dd}/{}/{y}:{h:02}:{mi:02}:{s:02} +0900] {status} {} {} {action} {} {} {cat} -1 -1 default - 0 - \"GET http://{d}/{}?id={} HTTP/1.1\" - {ua} text%2Fhtml%3B+charset%3Dutf-8 {:08X}",
        MON[m as usize - 1],
        1000 + r.below(30_000),
        r.below(256),
        MON[m as usize - 1],
        (r.unit().powi(3) * 2_000_000.0) as u64,
        200 + r.below(1500),
        r.below(100),
        r.below(100),
        r.below(100_000),
        r.below(1_000_000),
        r.next() as u32,
    )
}

fn firewall_line(line: &mut Vec<u8>, r: &mut Rng, t_ms: u64, client: &str) -> std::io::Result<()> {
    let secs = t_ms / 1000 + 9 * 3600;
    let (y, m, d) = civil((secs / 86_400) as i64);
    let (h, mi, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let (action, proto) = match r.below(10) {
        0..=5 => ("ALLOW", "TCP"),
        6..=7 => ("ALLOW", "UDP"),
        _ => ("DROP", "TCP"),
    };
    writeln!(
        line,
        "{y}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} {action} {proto} {client} 203.0.{}.{} {} {} 0 - 0 0 0 - - - SEND {}",
        r.below(256),
        r.below(256),
        49_152 + r.below(16_000),
        [443, 80, 53, 445, 3389][r.below(5) as usize],
        1000 + r.below(9000),
    )
}
