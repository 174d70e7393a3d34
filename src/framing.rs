//! Cutting a byte stream into lines: one reused buffer, memchr, no allocation per line.
//!
//! CRLF and a last line without a newline are handled here, once, for every format. A line
//! longer than [`MAX_LINE`] is not buffered whole: its first bytes are returned flagged as too
//! long and the rest is skipped, so hostile input cannot grow memory without bound.

use std::io::{self, Read};

use memchr::memchr;

/// Longest line kept whole; longer ones are rejected with their first [`MAX_LINE`] bytes.
pub const MAX_LINE: usize = 1 << 20;
const READ_SIZE: usize = 256 << 10;

/// One framed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, terminator removed.
    Full(&'a [u8]),
    /// A line over [`MAX_LINE`] bytes: only its start.
    TooLong(&'a [u8]),
}

/// Reads lines from any `Read`, numbering them from `first_line`.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of `buf[start..end]` already searched for a newline.
    scanned: usize,
    eof: bool,
    skipping: bool,
    next_no: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, first_line: u64) -> Self {
        LineReader {
            inner,
            buf: vec![0; READ_SIZE * 2],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            skipping: false,
            next_no: first_line,
        }
    }

    /// Bytes the buffer holds now (bounded by about `MAX_LINE + READ_SIZE`).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.len()
    }

    /// The next line and its number, `None` at the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        loop {
            if let Some(i) = memchr(b'\n', &self.buf[self.start + self.scanned..self.end]) {
                let line_end = self.start + self.scanned + i;
                let line_start = self.start;
                self.start = line_end + 1;
                self.scanned = 0;
                if self.skipping {
                    // The tail of an over-long line, already reported.
                    self.skipping = false;
                    continue;
                }
                return Ok(Some(self.emit(line_start, line_end, false)));
            }
            self.scanned = self.end - self.start;
            if self.eof {
                if self.start == self.end || self.skipping {
                    return Ok(None);
                }
                let (s, e) = (self.start, self.end);
                self.start = self.end;
                self.scanned = 0;
                return Ok(Some(self.emit(s, e, false)));
            }
            if self.skipping {
                self.start = 0;
                self.end = 0;
                self.scanned = 0;
            } else if self.end - self.start >= MAX_LINE {
                let s = self.start;
                self.skipping = true;
                self.start = self.end;
                self.scanned = 0;
                return Ok(Some(self.emit(s, s + MAX_LINE, true)));
            }
            self.fill()?;
        }
    }

    fn emit(&mut self, s: usize, mut e: usize, too_long: bool) -> (u64, Line<'_>) {
        let no = self.next_no;
        self.next_no += 1;
        if !too_long && e > s && self.buf[e - 1] == b'\r' {
            e -= 1;
        }
        let bytes = &self.buf[s..e];
        (no, if too_long { Line::TooLong(bytes) } else { Line::Full(bytes) })
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_SIZE {
            let want = (self.end + READ_SIZE).max(self.buf.len() * 2).min(MAX_LINE + READ_SIZE * 2);
            self.buf.resize(want.max(self.end + READ_SIZE), 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut r = LineReader::new(input, 1);
        let mut out = Vec::new();
        while let Some((n, l)) = r.next_line().unwrap() {
            match l {
                Line::Full(b) => out.push((n, b.to_vec(), false)),
                Line::TooLong(b) => out.push((n, b.to_vec(), true)),
            }
        }
        out
    }

    #[test]
    fn crlf_blank_and_cut_last_line() {
        let got = lines(b"a\r\n\nb\nlast");
        assert_eq!(
            got,
            vec![
                (1, b"a".to_vec(), false),
                (2, b"".to_vec(), false),
                (3, b"b".to_vec(), false),
                (4, b"last".to_vec(), false)
            ]
        );
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn over_long_line_is_cut_and_skipped_with_bounded_buffer() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nnext\n");
        let mut r = LineReader::new(&input[..], 1);
        let (n, l) = r.next_line().unwrap().unwrap();
        assert_eq!(n, 1);
        assert!(matches!(l, Line::TooLong(b) if b.len() == MAX_LINE));
        let (n, l) = r.next_line().unwrap().unwrap();
        assert_eq!((n, l), (2, Line::Full(b"next")));
        assert!(r.next_line().unwrap().is_none());
        assert!(r.buffer_capacity() <= MAX_LINE + 2 * READ_SIZE);
    }
}
