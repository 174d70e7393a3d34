//! A compressed source read in a thread of its own, a few blocks ahead of its parser.
//!
//! A compressed file cannot be cut into chunks, so one worker reads it whole; inflating and
//! parsing in that one thread left the other core idle on a single large `.gz`. Here the
//! decoder runs beside the parser, and the order of bytes and errors is kept exactly.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Most bytes the reading thread hands over at once.
const BLOCK: usize = 1 << 20;
/// Its first block: blocks double from here while the stream fills them, so a small file
/// never costs a full block of zeroed memory.
const FIRST_BLOCK: usize = 64 << 10;
/// Blocks it may read ahead of the parser: bounds the memory a source takes to a few MiB.
const AHEAD: usize = 3;

/// What the reading thread sends: a block, the error that ended reading, or the end.
enum Piece {
    Bytes(Vec<u8>),
    Failed(io::Error),
    End,
}

/// A `Read` fed by a thread that reads `inner` ahead.
pub(super) struct ReadAhead {
    rx: Option<Receiver<Piece>>,
    /// Emptied blocks go back to the reading thread, so it allocates only a few.
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    finished: bool,
    reader: Option<JoinHandle<()>>,
}

impl ReadAhead {
    pub(super) fn new(mut inner: Box<dyn Read + Send>) -> io::Result<ReadAhead> {
        let (tx, rx) = sync_channel::<Piece>(AHEAD);
        let (spare, spares) = sync_channel::<Vec<u8>>(AHEAD + 2);
        let reader = std::thread::Builder::new().name("trawl-read-ahead".into()).spawn(move || {
            let mut size = FIRST_BLOCK;
            loop {
                let mut buf = spares.try_recv().unwrap_or_default();
                buf.resize(size, 0);
                let (n, error) = fill(&mut inner, &mut buf);
                buf.truncate(n);
                // A closed channel means the parser stopped: nothing more is wanted.
                if n > 0 && tx.send(Piece::Bytes(buf)).is_err() {
                    return;
                }
                if let Some(e) = error {
                    let _ = tx.send(Piece::Failed(e));
                    return;
                }
                // `fill` stops short only at the end: no further read (nor block) is needed.
                if n < size {
                    let _ = tx.send(Piece::End);
                    return;
                }
                size = (size * 2).min(BLOCK);
            }
        })?;
        Ok(ReadAhead {
            rx: Some(rx),
            spare,
            current: Vec::new(),
            pos: 0,
            finished: false,
            reader: Some(reader),
        })
    }
}

/// Reads into `buf` until it is full, the stream ends or fails; the bytes read come back with
/// the error, so none before it is lost.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            let rx = self.rx.as_ref().expect("receiver lives until drop");
            match rx.recv() {
                Ok(Piece::Bytes(block)) => {
                    let done = std::mem::replace(&mut self.current, block);
                    self.pos = 0;
                    let _ = self.spare.try_send(done);
                }
                Ok(Piece::Failed(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                Ok(Piece::End) => self.finished = true,
                // The thread ended without saying so (it panicked): never a silent end of file.
                Err(_) => {
                    self.finished = true;
                    return Err(io::Error::other("the thread reading the file stopped before its end"));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    /// Waits for the reading thread, so whatever it counted of the file is in before the
    /// worker tallies what was read; closing the channel first stops a thread still ahead.
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `data` in pieces of `step` bytes, then fails if `fail` is set.
    struct Pieces {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        fail: bool,
    }

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.fail { Err(io::Error::other("cut short")) } else { Ok(0) };
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_byte_arrives_in_order() {
        let want = data(3 * BLOCK + 12_345);
        let src = Pieces { data: want.clone(), pos: 0, step: 70_000, fail: false };
        let mut got = Vec::new();
        ReadAhead::new(Box::new(src)).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let want = data(BLOCK + 10);
        let src = Pieces { data: want.clone(), pos: 0, step: 4096, fail: true };
        let mut r = ReadAhead::new(Box::new(src)).unwrap();
        let mut got = vec![0u8; want.len()];
        r.read_exact(&mut got).unwrap();
        assert!(got == want);
        let e = r.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.to_string(), "cut short");
    }

    #[test]
    fn lengths_at_and_around_block_edges_arrive_whole() {
        for len in
            [0, 1, FIRST_BLOCK - 1, FIRST_BLOCK, FIRST_BLOCK + 1, 3 * FIRST_BLOCK, BLOCK, 2 * BLOCK + 1]
        {
            let want = data(len);
            let src = Pieces { data: want.clone(), pos: 0, step: 50_000, fail: false };
            let mut got = Vec::new();
            ReadAhead::new(Box::new(src)).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == want, "length {len}");
        }
    }

    #[test]
    fn a_reader_dropped_early_stops_its_thread() {
        let src = Pieces { data: data(20 * BLOCK), pos: 0, step: BLOCK, fail: false };
        let mut r = ReadAhead::new(Box::new(src)).unwrap();
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(first.to_vec(), data(10));
        drop(r); // joins: returns only because the thread saw the closed channel
    }
}
