//! SHA-256 of files as they are read: the lake's identity for a source, and the check `verify`
//! repeats.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The hash of a file's bytes, and of some of its prefixes.
#[derive(Debug, Clone, Default)]
pub struct FileDigest {
    /// SHA-256 of every byte read, lower-case hex.
    pub sha256: String,
    /// Bytes read.
    pub size: u64,
    /// `(n, SHA-256 of the first n bytes)` for each asked length the file reached.
    pub prefixes: Vec<(u64, String)>,
}

/// Reads `path` to its end, hashing it and its first `n` bytes for each `n` in `prefixes`;
/// `each` sees every block with its offset (to count lines in the same pass).
pub fn sha256_file(
    path: &Path,
    prefixes: &[u64],
    mut each: impl FnMut(u64, &[u8]),
) -> io::Result<FileDigest> {
    let mut f = File::open(path)?;
    let mut cuts: Vec<u64> = prefixes.iter().copied().filter(|n| *n > 0).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut cuts = cuts.into_iter().peekable();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    let mut out = FileDigest::default();
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let block = &buf[..n];
        let end = pos + n as u64;
        let mut done = 0usize;
        // A prefix ends inside this block: hash up to it, snapshot, go on.
        while let Some(&cut) = cuts.peek()
            && cut <= end
        {
            let at = (cut - pos) as usize;
            hasher.update(&block[done..at]);
            done = at;
            out.prefixes.push((cut, hex(&hasher.clone().finalize())));
            cuts.next();
        }
        hasher.update(&block[done..]);
        each(pos, block);
        pos = end;
    }
    out.sha256 = hex(&hasher.finalize());
    out.size = pos;
    Ok(out)
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
        std::fs::write(&path, &data).unwrap();
        let want = [5u64, 1 << 20, (2 << 20) + 3, data.len() as u64, data.len() as u64 + 9];
        let mut seen = 0u64;
        let d = sha256_file(&path, &want, |off, b| {
            assert_eq!(off, seen);
            seen += b.len() as u64;
        })
        .unwrap();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, sha(&data));
        let expect: Vec<(u64, String)> = want[..4].iter().map(|n| (*n, sha(&data[..*n as usize]))).collect();
        assert_eq!(d.prefixes, expect, "a length past the end has no prefix hash");
    }
}
