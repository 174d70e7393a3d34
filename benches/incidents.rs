//! Seeded office traffic with planted incidents, one per built-in detection: the ground truth
//! for measuring the detection pack (recall and precision) and for timing it on large lakes.
//!
//! Shared by the integration tests (`#[path]` from `tests/it/main.rs`) and the benchmark
//! generator (`cargo run --example generate -- --incidents ...`). Proxy traffic is written as
//! i-FILTER Ver.9 lines (it logs request sizes, agents, categories and block decisions), firewall
//! traffic as a Windows Firewall log; local times are Japan time (+09:00).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// SplitMix64: tiny, fast, and good enough for synthetic traffic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Between lo and hi inclusive.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    /// Exponentially distributed with this mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Proleptic Gregorian date of a day number (days since 1970-01-01).
pub fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/// Japan time, the zone the lines are written in.
pub const JST: i64 = 9 * 3600;

/// One proxy request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Unix seconds (UTC).
    pub t: i64,
    pub client: String,
    /// `None` logs as `-`.
    pub user: Option<String>,
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    /// i-FILTER's decision: allow or block.
    pub action: &'static str,
    pub response_bytes: u64,
    pub request_bytes: u64,
    /// Category ids, `/`-separated as i-FILTER logs them.
    pub categories: String,
    /// Already %-encoded as i-FILTER writes it; `-` for a blank agent.
    pub agent: String,
}

impl Request {
    /// A plain allowed GET with a browser's agent.
    pub fn get(t: i64, client: &str, user: Option<&str>, url: &str) -> Request {
        Request {
            t,
            client: client.to_string(),
            user: user.map(str::to_string),
            method: "GET",
            url: url.to_string(),
            status: 200,
            action: "allow",
            response_bytes: 4096,
            request_bytes: 400,
            categories: "115".into(),
            agent: CHROME.into(),
        }
    }

    /// The request as an i-FILTER Ver.9 access-log line (without the newline).
    pub fn ifilter_line(&self) -> String {
        let local = self.t + JST;
        let (y, m, d) = civil(local.div_euclid(86_400));
        let s = local.rem_euclid(86_400);
        let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
        let mon = MON[m as usize - 1];
        let mut line = String::with_capacity(300);
        let _ = write!(
            line,
            "{mon} {d:02} {h:02}:{mi:02}:{se:02} 4242 900/01/ 203.0.113.9:80 {} - {} \
             [{d:02}/{mon}/{y}:{h:02}:{mi:02}:{se:02} +0900] {} {} {} {} 63 51 {} -1 -1 default - 0 - \
             \"{} {} HTTP/1.1\" - {} text%2Fhtml 0000BEEF",
            self.client,
            self.user.as_deref().unwrap_or("-"),
            self.status,
            self.response_bytes,
            self.request_bytes,
            self.action,
            self.categories,
            self.method,
            self.url,
            self.agent,
        );
        line
    }
}

/// One Windows Firewall entry.
#[derive(Debug, Clone)]
pub struct Connection {
    pub t: i64,
    pub action: &'static str,
    pub protocol: &'static str,
    pub src: String,
    pub dst: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub size: u32,
}

impl Connection {
    /// The entry as a `pfirewall.log` line in local time (without the newline).
    pub fn line(&self) -> String {
        let local = self.t + JST;
        let (y, m, d) = civil(local.div_euclid(86_400));
        let s = local.rem_euclid(86_400);
        format!(
            "{y}-{m:02}-{d:02} {:02}:{:02}:{:02} {} {} {} {} {} {} {} - - - - - - - SEND",
            s / 3600,
            s / 60 % 60,
            s % 60,
            self.action,
            self.protocol,
            self.src,
            self.dst,
            self.src_port,
            self.dst_port,
            self.size
        )
    }
}

/// Header a Windows Firewall log starts with.
pub const FIREWALL_HEADER: &str = "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n\
    #Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin \
    icmptype icmpcode info path\n";

pub const CHROME: &str = "Mozilla%2F5.0+%28Windows+NT+10.0%3B+Win64%3B+x64%29+AppleWebKit%2F537.36+%28KHTML%2C+like+Gecko%29+Chrome%2F124.0.0.0+Safari%2F537.36";
const FIREFOX: &str =
    "Mozilla%2F5.0+%28Windows+NT+10.0%3B+Win64%3B+x64%3B+rv%3A125.0%29+Gecko%2F20100101+Firefox%2F125.0";
const CRYPTOAPI: &str = "Microsoft-CryptoAPI%2F10.0";
const POWERSHELL: &str =
    "Mozilla%2F5.0+%28Windows+NT%3B+Windows+NT+10.0%3B+ja-JP%29+WindowsPowerShell%2F5.1.19041.4170";

/// Sites everyone uses, with an i-FILTER category each (none of them job sites).
const POPULAR: &[(&str, &str)] = &[
    ("www.google.com", "115"),
    ("www.yahoo.co.jp", "114"),
    ("news.yahoo.co.jp", "95"),
    ("www.nikkei.com", "95"),
    ("outlook.office365.com", "57"),
    ("teams.microsoft.com", "107"),
    ("login.microsoftonline.com", "111"),
    ("www.amazon.co.jp", "88"),
    ("github.com", "111"),
    ("api.github.com", "111"),
    ("stackoverflow.com", "64"),
    ("www.youtube.com", "85"),
    ("ja.wikipedia.org", "114"),
    ("slack.com", "102"),
    ("www.dropbox.com", "83"),
    ("content.dropboxapi.com", "83"),
    ("cdn.jsdelivr.net", "123"),
    ("fonts.googleapis.com", "123"),
    ("www.jma.go.jp", "126"),
    ("portal.corp-intra.co.jp", "111"),
];
/// Blocked by category every time (advertising), never let through.
const BLOCKED: &str = "ads.tracker-network.com";
const TAIL: usize = 300;

/// The first day of the generated week, Monday 2024-06-03 00:00 JST, as Unix seconds.
pub const MONDAY: i64 = 1_717_340_400;
const DAY: i64 = 86_400;

/// A planted incident: the detection that should find it and the entity it should name (the
/// value of the detection's entity column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    pub detection: &'static str,
    pub entity: String,
    /// The registrable domain it involves, which other detections (rare domains) may rightly name.
    pub domain: Option<String>,
}

/// How much noise: users, and mean seconds between one user's requests while at work.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub users: usize,
    pub mean_gap_s: f64,
    /// Weeks of traffic (the incidents are planted in the first).
    pub weeks: i64,
}

fn client_of(user: usize) -> String {
    format!("10.1.{}.{}", user / 200, 10 + user % 200)
}

/// A user's habits: when their day starts and ends, and which of them work late or on Saturdays.
struct Habit {
    start_h: f64,
    end_h: f64,
    /// Works until about 21:00-22:30 on most days.
    late: bool,
    /// Works some Saturdays, late morning to mid-afternoon.
    saturday: bool,
}

fn habit(u: usize, r: &mut Rng) -> Habit {
    Habit {
        start_h: 8.4 + r.unit() * 1.0,
        end_h: 17.4 + r.unit() * 1.4,
        late: u % 29 == 5,
        saturday: u % 10 == 4,
    }
}

/// Where a request is also logged: part of the office goes through two proxies, so the same
/// request appears twice (a second i-FILTER, or a Squid logging its completion).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Second {
    None,
    IFilter,
    Squid,
}

fn second_of(client: &str) -> Second {
    let last: u32 = client.rsplit('.').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    if client.starts_with("10.1.9.") {
        return Second::IFilter;
    }
    match last % 3 {
        0 => Second::IFilter,
        1 => Second::Squid,
        _ => Second::None,
    }
}

/// Internet hosts a page load fans out to (ads, CDNs, analytics), all on 443.
const FANOUT: u64 = 60;
/// Servers and service accounts that run round the clock.
const SERVERS: usize = 6;

fn server_ip(i: usize) -> String {
    format!("10.1.200.{}", 10 + i)
}

/// A user's working day: popular sites, the shared long tail, their own habitual sites, the
/// intranet by address, blocked ads, small POSTs; firewall traffic beside it, with page loads
/// fanning out to dozens of internet hosts.
#[allow(clippy::too_many_arguments)]
fn workday(
    r: &mut Rng,
    u: usize,
    from: i64,
    to: i64,
    mean_gap_s: f64,
    proxy: &mut Vec<Request>,
    fw: &mut Vec<Connection>,
) {
    let client = client_of(u);
    let user = format!("user{u:02}");
    let agent = if u.is_multiple_of(3) { FIREFOX } else { CHROME };
    let mut t = from;
    while t < to {
        let pick = r.below(1000);
        let mut q = Request::get(t, &client, Some(&user), "");
        if pick < 10 {
            q.url = format!("http://shop{}.tail-example.jp/item/{}", r.below(TAIL as u64), r.below(999));
        } else if pick < 16 {
            // Their own sites, read every day: rare in the office, but a habit.
            q.url = format!("https://www.u{u}-blog{}.jp/{}", r.below(2), r.below(50));
        } else if pick < 20 {
            q.url = "http://10.1.0.5/portal/index.html".into();
        } else if pick < 35 {
            q.url = format!("https://{BLOCKED}/px?id={}", r.below(1 << 20));
            q.action = "block";
            q.status = 503;
            q.categories = "125".into();
        } else if pick < 45 {
            // Video: most allowed, some pages blocked by category for everyone.
            q.url = format!("https://www.youtube.com/watch?v={}", r.below(5000));
            q.categories = "85".into();
            if r.below(10) == 0 {
                q.action = "block";
                q.status = 503;
            }
        } else if pick < 47 {
            // Conferencing media relays, reached by address from every desk.
            q.url = format!("https://52.112.0.{}/relay", r.below(8) + 1);
            q.categories = "107".into();
        } else {
            let i = ((r.unit().powi(2)) * POPULAR.len() as f64) as usize;
            let (host, cat) = POPULAR[i.min(POPULAR.len() - 1)];
            q.url = format!("https://{host}/{}", r.below(100_000));
            q.categories = cat.into();
            if pick < 100 {
                q.method = "POST";
                q.request_bytes = r.range(500, 60_000) as u64;
            }
        }
        if q.action != "block" {
            q.response_bytes = (r.unit().powi(3) * 2_000_000.0) as u64 + 300;
        } else {
            q.response_bytes = 1200;
        }
        q.agent = if r.below(50) == 0 { CRYPTOAPI.into() } else { agent.into() };
        proxy.push(q);
        let conn = |t, dst: String, port, proto, r: &mut Rng| Connection {
            t,
            action: "ALLOW",
            protocol: proto,
            src: client.clone(),
            dst,
            src_port: r.range(49_152, 65_000) as u16,
            dst_port: port,
            size: r.range(60, 1500) as u32,
        };
        if r.below(4) == 0 {
            let (dst, port) = match r.below(10) {
                0..=5 => (format!("203.0.113.{}", r.below(250) + 1), 443),
                6 => (format!("203.0.113.{}", r.below(250) + 1), 80),
                7 => ("10.1.0.2".to_string(), 53),
                8 => ("10.1.0.5".to_string(), 445),
                _ => ("10.1.0.2".to_string(), 123),
            };
            let proto = if port == 53 || port == 123 { "UDP" } else { "TCP" };
            fw.push(conn(t, dst, port, proto, r));
        }
        if r.below(40) == 0 {
            // A news page: thirty to sixty internet hosts on 443 within seconds.
            for k in 0..r.range(30, FANOUT as i64) {
                fw.push(conn(
                    t + k / 4,
                    format!("198.18.{}.{}", r.below(4), r.below(250) + 1),
                    443,
                    "TCP",
                    r,
                ));
            }
        }
        if r.below(30) == 0 {
            fw.push(conn(t, format!("52.112.0.{}", r.below(8) + 1), 3478, "UDP", r));
        }
        t += r.exp(mean_gap_s).max(1.0) as i64;
    }
}

/// Noise: each user works weekdays in their own hours (some late, some on Saturdays, now and then
/// a day off), servers and service accounts run round the clock, and every workstation's
/// inventory agent checks in once a day.
fn noise(r: &mut Rng, scale: Scale, proxy: &mut Vec<Request>, fw: &mut Vec<Connection>) {
    let habits: Vec<Habit> = (0..scale.users).map(|u| habit(u, r)).collect();
    for week in 0..scale.weeks {
        for day in 0..7 {
            let day0 = MONDAY + (week * 7 + day) * DAY;
            let hour = |h: f64| day0 + (h * 3600.0) as i64;
            for (u, h) in habits.iter().enumerate() {
                if day < 5 {
                    if r.below(25) == 0 {
                        continue; // a day off
                    }
                    let jitter = |r: &mut Rng| (r.unit() - 0.5) * 0.5;
                    let end = if h.late && r.below(5) != 0 { 21.0 + r.unit() * 1.5 } else { h.end_h };
                    let (from, to) = (hour(h.start_h + jitter(r)), hour(end + jitter(r)));
                    workday(r, u, from, to, scale.mean_gap_s, proxy, fw);
                    let mut q = Request::get(
                        hour(h.start_h + 0.1),
                        &client_of(u),
                        None,
                        "https://inventory.corp-intra.co.jp/checkin",
                    );
                    q.agent = "Go-http-client%2F1.1".into();
                    proxy.push(q);
                } else if day == 5 && h.saturday && r.below(3) != 0 {
                    let from = hour(10.0 + r.unit());
                    workday(r, u, from, from + 4 * 3600, scale.mean_gap_s * 2.0, proxy, fw);
                }
            }
            servers(r, day0, proxy, fw);
        }
    }
}

/// A day of the machines: update polls every 15 minutes from each server, a monitoring server
/// checking internal hosts on 445 every hour with python-requests beside it, and the backup
/// service account uploading about 1.5 GB at night.
fn servers(r: &mut Rng, day0: i64, proxy: &mut Vec<Request>, fw: &mut Vec<Connection>) {
    for i in 0..SERVERS {
        let client = server_ip(i);
        let mut t = day0 + r.range(0, 899);
        while t < day0 + DAY {
            let mut q = Request::get(t, &client, None, "https://update.vendor-cdn.com/v1/check");
            q.agent = CRYPTOAPI.into();
            q.response_bytes = r.range(900, 1100) as u64;
            q.categories = "111".into();
            proxy.push(q);
            t += 900 + r.range(-20, 20);
        }
    }
    let monitor = server_ip(0);
    for h in 0..24 {
        let t = day0 + h * 3600 + r.range(0, 60);
        for k in 0..40u64 {
            fw.push(Connection {
                t: t + k as i64,
                action: "ALLOW",
                protocol: "TCP",
                src: monitor.clone(),
                dst: format!("10.1.0.{}", 20 + k),
                src_port: r.range(49_152, 65_000) as u16,
                dst_port: 445,
                size: 120,
            });
        }
        let mut q = Request::get(t, &monitor, Some("svc-monitor"), "https://status.corp-intra.co.jp/api");
        q.agent = "python-requests%2F2.31.0".into();
        proxy.push(q);
        // The backup agent reports to its console every hour, whether it uploads or not.
        proxy.push(Request::get(
            t + 5,
            &server_ip(1),
            Some("svc-backup"),
            "https://backup.corp-cloud.jp/status",
        ));
        if (1..=4).contains(&h) {
            for k in 0..4 {
                let mut q = post(
                    day0 + h * 3600 + k * 600,
                    &server_ip(1),
                    Some("svc-backup"),
                    "https://backup.corp-cloud.jp/put",
                    r.range(90 << 20, 100 << 20) as u64,
                    "83",
                );
                q.method = "PUT";
                proxy.push(q);
            }
        }
    }
}

pub fn post(t: i64, client: &str, user: Option<&str>, url: &str, bytes: u64, cats: &str) -> Request {
    let mut q = Request::get(t, client, user, url);
    q.method = "POST";
    q.request_bytes = bytes;
    q.categories = cats.into();
    q
}

/// The request as Squid's native `access.log` line: logged when it completed, `elapsed_ms` after
/// it started, with the response size plus headers (Squid does not log the upload size).
pub fn squid_line(q: &Request, elapsed_ms: u64) -> String {
    let done = q.t * 1000 + elapsed_ms as i64;
    let code = if q.action == "block" { "TCP_DENIED" } else { "TCP_MISS" };
    format!(
        "{}.{:03} {elapsed_ms:>6} {} {code}/{} {} {} {} {} HIER_DIRECT/203.0.113.9 text/html",
        done / 1000,
        done % 1000,
        q.client,
        q.status,
        q.response_bytes + 310,
        q.method,
        q.url,
        q.user.as_deref().unwrap_or("-"),
    )
}

/// Writes `dir/proxy/access.log` (i-FILTER), the second proxies' copies of part of the office
/// (`dir/proxy2/access.log`, i-FILTER, and `dir/squid/access.log`, Squid native) and
/// `dir/firewall/pfirewall.log`, and returns the planted incidents.
pub fn generate(dir: &Path, seed: u64, scale: Scale) -> io::Result<Vec<Planted>> {
    let mut r = Rng(seed);
    let mut proxy = Vec::new();
    let mut fw = Vec::new();
    noise(&mut r, scale, &mut proxy, &mut fw);
    let planted = plant(&mut r, &mut proxy, &mut fw);
    proxy.sort_by_key(|q| q.t);
    fw.sort_by_key(|c| c.t);
    for sub in ["proxy", "proxy2", "squid", "firewall"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let open = |p: &str| io::Result::Ok(io::BufWriter::new(std::fs::File::create(dir.join(p))?));
    let (mut main, mut copy, mut squid) =
        (open("proxy/access.log")?, open("proxy2/access.log")?, open("squid/access.log")?);
    for q in &proxy {
        writeln!(main, "{}", q.ifilter_line())?;
        match second_of(&q.client) {
            Second::IFilter => {
                // The second i-FILTER logs the same request up to a second later.
                let mut c = q.clone();
                c.t += r.below(2) as i64;
                writeln!(copy, "{}", c.ifilter_line())?;
            }
            Second::Squid => writeln!(squid, "{}", squid_line(q, r.range(20, 1500) as u64))?,
            Second::None => {}
        }
    }
    for w in [&mut main, &mut copy, &mut squid] {
        w.flush()?;
    }
    let mut w = open("firewall/pfirewall.log")?;
    w.write_all(FIREWALL_HEADER.as_bytes())?;
    for c in &fw {
        writeln!(w, "{}", c.line())?;
    }
    w.flush()?;
    Ok(planted)
}

fn plant(r: &mut Rng, proxy: &mut Vec<Request>, fw: &mut Vec<Connection>) -> Vec<Planted> {
    let at = |day: i64, h: i64, m: i64| MONDAY + day * DAY + h * 3600 + m * 60;
    let mut planted = Vec::new();
    let mut plant = |detection, entity: &str, domain: Option<&str>| {
        planted.push(Planted { detection, entity: entity.to_string(), domain: domain.map(str::to_string) })
    };

    // Tuesday afternoon: ~2 GB to online storage in 20 uploads of 100-110 MB.
    plant("large_uploads", "exfil.tanaka", Some("dropboxapi.com"));
    let mut t = at(1, 14, 0);
    for _ in 0..20 {
        let mut q = Request::get(
            t,
            "10.1.9.10",
            Some("exfil.tanaka"),
            "https://content.dropboxapi.com/2/files/upload",
        );
        q.method = "POST";
        q.request_bytes = r.range(100 << 20, 110 << 20) as u64;
        q.categories = "83".into();
        proxy.push(q);
        t += r.range(240, 420);
    }

    // Wednesday 10:00-18:00: a server polls its command host every 60 s (±2 s), steady sizes.
    plant("beaconing", "10.1.9.20", Some("sync-telemetry.net"));
    let mut t = at(2, 10, 0);
    while t < at(2, 18, 0) {
        let mut q = Request::get(t, "10.1.9.20", None, "https://cdn.sync-telemetry.net/api/v2/poll");
        q.response_bytes = r.range(480, 520) as u64;
        q.request_bytes = r.range(290, 310) as u64;
        q.categories = "123".into();
        proxy.push(q);
        t += 60 + r.range(-2, 2);
    }

    // Thursday lunch: job hunting.
    plant("job_sites", "user07", Some("doda.jp"));
    plant("job_sites", "user07", Some("bizreach.jp"));
    for i in 0..24 {
        let (url, cat) = if i % 2 == 0 {
            (format!("https://doda.jp/DodaFront/View/JobSearchDetail/j_jid__{}/", 3_000_000 + i), "50")
        } else {
            (format!("https://www.bizreach.jp/job/{}/", 900 + i), "50")
        };
        let mut q = Request::get(at(3, 12, 10) + i * 90, &client_of(7), Some("user07"), &url);
        q.categories = cat.into();
        proxy.push(q);
    }

    // Sunday 03:00-03:40.
    plant("after_hours", "user11", None);
    for i in 0..30 {
        let (host, _) = POPULAR[(i % 6) as usize];
        proxy.push(Request::get(
            at(6, 3, 0) + i * 80,
            &client_of(11),
            Some("user11"),
            &format!("https://{host}/"),
        ));
    }

    // Two build servers fetch with tools: curl and python-requests.
    plant("scripted_agents", "10.1.9.30", None);
    plant("scripted_agents", "10.1.9.31", None);
    for (client, agent, n) in
        [("10.1.9.30", "curl%2F8.4.0", 40), ("10.1.9.31", "python-requests%2F2.31.0", 25)]
    {
        // Run by hand, at irregular times: scripted, but not a beacon.
        let mut t = at(1, 10, 0);
        for i in 0..n {
            let mut q = Request::get(t, client, None, &format!("https://api.github.com/repos/x/{i}"));
            q.agent = agent.into();
            proxy.push(q);
            t += r.range(5, 900);
        }
    }

    // A download straight from an address.
    plant("direct_ip", "user15", None);
    series(proxy, at(2, 15, 30), 20, 3, 15, "http://198.51.100.77/invoice.exe");

    // Blocked three times at 11:00, allowed from 11:20 (an exception was granted).
    plant("blocked_then_allowed", "user19", Some("freeproxy-gate.com"));
    for i in 0..8 {
        let mut q = Request::get(
            at(1, 11, 0) + i * 60,
            &client_of(19),
            Some("user19"),
            "https://www.freeproxy-gate.com/",
        );
        q.categories = "121".into();
        if i < 3 {
            q.action = "block";
            q.status = 503;
        } else {
            q.t += 20 * 60;
        }
        proxy.push(q);
    }

    // Friday afternoon: one machine fetches from a domain nobody else has ever used.
    plant("rare_domains", "qzrt-paste.top", Some("qzrt-paste.top"));
    series(proxy, at(4, 15, 0), 45, 6, 3, "https://cdn.qzrt-paste.top/raw/a8f3");

    // Thursday 13:00: a scan of one internal server's low ports, most dropped.
    plant("port_scan", "10.1.9.66", None);
    for p in 1..=120u16 {
        fw.push(Connection {
            t: at(3, 13, 0) + i64::from(p) / 2,
            action: if p % 10 == 0 { "ALLOW" } else { "DROP" },
            protocol: "TCP",
            src: "10.1.9.66".into(),
            dst: "10.1.0.5".into(),
            src_port: 50_000 + p,
            dst_port: p,
            size: 52,
        });
    }

    // Tuesday: a workstation talks to an outside host on 4444.
    plant("firewall_odd_ports", "10.1.9.40", None);
    for i in 0..12 {
        fw.push(Connection {
            t: at(1, 16, 0) + i * 300,
            action: "ALLOW",
            protocol: "TCP",
            src: "10.1.9.40".into(),
            dst: "198.51.100.23".into(),
            src_port: 51_000 + i as u16,
            dst_port: 4444,
            size: 1400,
        });
    }
    decoys(r, proxy);

    // Wednesday morning: PowerShell on a workstation fetches a script from a raw paste site (what
    // the community's Sigma rules for PowerShell agents and paste services look for).
    let client = "10.1.9.70".to_string();
    plant("proxy_ua_powershell", &client, Some("paste.ee"));
    plant("proxy_raw_paste_service_access", &client, Some("paste.ee"));
    for i in 0..4 {
        let mut q = Request::get(
            at(2, 10, 5) + i * 40,
            &client,
            Some("ps.yamada"),
            &format!("https://paste.ee/r/Xk3v{i}"),
        );
        q.agent = POWERSHELL.into();
        proxy.push(q);
    }
    planted
}

/// Ordinary activity that looks like each incident from afar: none of it should be a hit.
fn decoys(r: &mut Rng, proxy: &mut Vec<Request>) {
    let at = |day: i64, h: i64, m: i64| MONDAY + day * DAY + h * 3600 + m * 60;
    // One big video upload; and a person who syncs about 1.2 GB to the office cloud every day.
    let mut q =
        post(at(1, 15, 0), &client_of(20), Some("user20"), "https://www.youtube.com/upload", 300 << 20, "85");
    q.agent = CHROME.into();
    proxy.push(q);
    for day in 0..5 {
        for k in 0..12 {
            proxy.push(post(
                at(day, 17, k),
                &client_of(21),
                Some("user21"),
                "https://corp-my.sharepoint.com/upload",
                r.range(95 << 20, 105 << 20) as u64,
                "83",
            ));
        }
    }
    // A web page's keep-alive: every 30 s for a quarter of an hour.
    series(proxy, at(2, 11, 0), 30, 30, 22, "https://chat.widget-example.com/ping");
    // ... on a chat widget two colleagues also opened once.
    for u in [27, 28] {
        series(proxy, at(0, 10, u as i64), 0, 1, u, "https://www.widget-example.com/");
    }
    // One click on a job advert.
    let mut q =
        Request::get(at(3, 12, 30), &client_of(23), Some("user23"), "https://doda.jp/DodaFront/View/Ad/");
    q.categories = "50".into();
    proxy.push(q);
    // A Sunday morning's e-mail check.
    series(proxy, at(6, 11, 0), 60, 6, 24, "https://outlook.office365.com/mail");
    // One look at an address someone pasted; two requests to a site nobody else uses.
    series(proxy, at(2, 15, 40), 0, 1, 25, "http://198.51.100.200/");
    series(proxy, at(4, 15, 10), 30, 2, 26, "https://www.one-off-example.org/");
}

/// `n` requests for `url` by user `u` from their desk, `step` seconds apart from `t0`.
fn series(proxy: &mut Vec<Request>, t0: i64, step: i64, n: i64, u: usize, url: &str) {
    let user = format!("user{u:02}");
    proxy.extend((0..n).map(|i| Request::get(t0 + i * step, &client_of(u), Some(&user), url)));
}
