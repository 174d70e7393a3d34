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
