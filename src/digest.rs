//! SHA-256 of files as they are read: the lake's identity for a source, and the check `verify`
//! repeats.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The hash of a stream's bytes, and of some of its prefixes.
#[derive(Debug, Clone, Default)]
pub struct FileDigest {
    /// SHA-256 of every byte read, lower-case hex.
    pub sha256: String,
    /// Bytes read.
    pub size: u64,
    /// One per asked length the stream reached, in increasing length.
    pub prefixes: Vec<Prefix>,
}

/// The first `len` bytes of a stream: their hash, and how the line there ends.
#[derive(Debug, Clone)]
pub struct Prefix {
    pub len: u64,
    pub sha256: String,
    /// The hasher that gave `sha256`, to go on hashing what follows.
    pub state: Sha256,
    /// The prefix's last byte.
    pub last_byte: u8,
    /// The byte after the prefix, if the stream goes on.
    pub next_byte: Option<u8>,
    /// Offset where the prefix's last line starts (just after its last newline, or 0).
    pub line_start: u64,
}

/// Reads `path` to its end; see [`sha256_stream`].
pub fn sha256_file(
    path: &Path,
    prefixes: &[u64],
    each: impl FnMut(u64, &[u8], &Sha256),
) -> io::Result<FileDigest> {
    sha256_stream(File::open(path)?, prefixes, each)
}

/// Reads `r` to its end, hashing it and its first `n` bytes for each `n` in `prefixes`;
/// `each` sees every block with its offset (to count lines in the same pass) and the hash of
/// the bytes before it (to continue it at a point inside the block without hashing twice).
pub fn sha256_stream(
    mut r: impl Read,
    prefixes: &[u64],
    mut each: impl FnMut(u64, &[u8], &Sha256),
) -> io::Result<FileDigest> {
    let mut cuts: Vec<u64> = prefixes.iter().copied().filter(|n| *n > 0).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut cuts = cuts.into_iter().peekable();
    let mut hasher = Sha256::new();
    let mut pos = 0u64;
    // Offset just past the last newline seen in earlier blocks.
    let mut line_start = 0u64;
    // The previous block's last byte, for a prefix that ends where a block ends.
    let mut prev_last = 0u8;
    let mut out = FileDigest::default();
    read_blocks(&mut r, |block| {
        let n = block.len();
        let before = hasher.clone();
        if let Some(p) = out.prefixes.last_mut()
            && p.next_byte.is_none()
            && p.len == pos
        {
            p.next_byte = Some(block[0]);
        }
        let end = pos + n as u64;
        let mut done = 0usize;
        // A prefix ends inside this block: hash up to it, snapshot, go on.
        while let Some(&cut) = cuts.peek()
            && cut <= end
        {
            let at = (cut - pos) as usize;
            hasher.update(&block[done..at]);
            done = at;
            let starts = memchr::memrchr(b'\n', &block[..at]).map_or(line_start, |i| pos + i as u64 + 1);
            out.prefixes.push(Prefix {
                len: cut,
                sha256: hex(&hasher.clone().finalize()),
                state: hasher.clone(),
                last_byte: if at > 0 { block[at - 1] } else { prev_last },
                next_byte: block.get(at).copied(),
                line_start: starts,
            });
            cuts.next();
        }
        hasher.update(&block[done..]);
        if let Some(i) = memchr::memrchr(b'\n', block) {
            line_start = pos + i as u64 + 1;
        }
        each(pos, block, &before);
        prev_last = block[n - 1];
        pos = end;
    })?;
    out.sha256 = hex(&hasher.finalize());
    out.size = pos;
    Ok(out)
}

/// Reads `r` to its end in 1 MiB blocks, handing each to `each`; returns the bytes read.
pub fn read_blocks(mut r: impl Read, mut each: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        each(&buf[..n]);
        total += n as u64;
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[test]
    fn prefixes_hash_like_the_files_they_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // Longer than one read block, so a prefix can fall inside a later block.
        let data: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i * 7 % 251) as u8).collect();
        assert!(data.contains(&b'\n'));
        std::fs::write(&path, &data).unwrap();
        // One ends exactly at a block's end, so its next byte comes from the next block.
        let want = [5u64, 1 << 20, (2 << 20) + 3, data.len() as u64, data.len() as u64 + 9];
        let mut seen = 0u64;
        let d = sha256_file(&path, &want, |off, b, before| {
            assert_eq!(off, seen);
            assert_eq!(hex(&before.clone().finalize()), sha(&data[..off as usize]));
            seen += b.len() as u64;
        })
        .unwrap();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, sha(&data));
        let facts = |p: &Prefix| (p.len, p.sha256.clone(), p.last_byte, p.next_byte, p.line_start);
        let expect: Vec<_> = want[..4]
            .iter()
            .map(|n| {
                let n = *n as usize;
                let line_start = data[..n].iter().rposition(|b| *b == b'\n').map_or(0, |i| i as u64 + 1);
                (n as u64, sha(&data[..n]), data[n - 1], data.get(n).copied(), line_start)
            })
            .collect();
        assert_eq!(d.prefixes.iter().map(facts).collect::<Vec<_>>(), expect, "none past the end");
        for p in &d.prefixes {
            assert_eq!(hex(&p.state.clone().finalize()), p.sha256, "the state goes on from the prefix");
        }
    }
}
