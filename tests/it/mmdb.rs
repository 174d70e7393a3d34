//! A minimal writer of MaxMind DB files (format 2.0, IPv6 tree, 24-bit records), enough for
//! country and ASN records, so the tests need no downloaded database.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub enum V {
    Str(&'static str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, V)>),
    Arr(Vec<V>),
}

pub fn record(country: Option<&'static str>, asn: Option<(u32, &'static str)>) -> V {
    let mut m = Vec::new();
    if let Some(c) = country {
        m.push(("country", V::Map(vec![("iso_code", V::Str(c))])));
    }
    if let Some((n, org)) = asn {
        m.push(("autonomous_system_number", V::U32(n)));
        m.push(("autonomous_system_organization", V::Str(org)));
    }
    V::Map(m)
}

fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (first, extra): (usize, Vec<u8>) = match size {
        s if s < 29 => (s, vec![]),
        s if s < 285 => (29, vec![(s - 29) as u8]),
        s => (30, ((s - 285) as u16).to_be_bytes().to_vec()),
    };
    if ty <= 7 {
        out.push(ty << 5 | first as u8);
    } else {
        out.push(first as u8);
        out.push(ty - 7);
    }
    out.extend(extra);
}

fn uint(out: &mut Vec<u8>, ty: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(out, ty, 8 - skip);
    out.extend(&bytes[skip..]);
}

fn encode(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Str(s) => {
            control(out, 2, s.len());
            out.extend(s.as_bytes());
        }
        V::U16(n) => uint(out, 5, u64::from(*n)),
        V::U32(n) => uint(out, 6, u64::from(*n)),
        V::U64(n) => uint(out, 9, *n),
        V::Map(kv) => {
            control(out, 7, kv.len());
            for (k, v) in kv {
                encode(out, &V::Str(k));
                encode(out, v);
            }
        }
        V::Arr(items) => {
            control(out, 11, items.len());
            for i in items {
                encode(out, i);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// The database file holding `networks` (CIDR text, record); IPv4 networks sit under
/// `::/96`, where readers look IPv4 addresses up.
pub fn write(networks: &[(&str, V)]) -> Vec<u8> {
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty; 2]];
    let mut data = Vec::new();
    for (cidr, value) in networks {
        let (addr, len) = cidr.split_once('/').unwrap();
        let len: usize = len.parse().unwrap();
        let (bits, len) = match addr.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => (u128::from(u32::from(a)), len + 96),
            IpAddr::V6(a) => (u128::from(a), len),
        };
        let offset = data.len();
        encode(&mut data, value);
        let mut cur = 0;
        for i in 0..len {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if i == len - 1 {
                nodes[cur][bit] = Rec::Data(offset);
            } else {
                cur = match nodes[cur][bit] {
                    Rec::Node(n) => n,
                    _ => {
                        nodes.push([Rec::Empty; 2]);
                        let n = nodes.len() - 1;
                        nodes[cur][bit] = Rec::Node(n);
                        n
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for r in node {
            let v = match *r {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(off) => count + 16 + off,
            } as u32;
            out.extend(&v.to_be_bytes()[1..]);
        }
    }
    out.extend([0u8; 16]);
    out.extend(data);
    out.extend(b"\xAB\xCD\xEFMaxMind.com");
    let meta = V::Map(vec![
        ("binary_format_major_version", V::U16(2)),
        ("binary_format_minor_version", V::U16(0)),
        ("build_epoch", V::U64(1_717_459_200)),
        ("database_type", V::Str("trawl-test")),
        ("description", V::Map(vec![("en", V::Str("networks for trawl's tests"))])),
        ("ip_version", V::U16(6)),
        ("languages", V::Arr(vec![V::Str("en")])),
        ("node_count", V::U32(count as u32)),
        ("record_size", V::U16(24)),
    ]);
    encode(&mut out, &meta);
    out
}

/// Writes `networks` as `test.mmdb` in `dir` and gives its path.
pub fn file(dir: &Path, networks: &[(&str, V)]) -> PathBuf {
    let path = dir.join("test.mmdb");
    std::fs::write(&path, write(networks)).unwrap();
    path
}
