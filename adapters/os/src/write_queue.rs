//! Bytes waiting for a non-blocking stream socket (a worker channel, a raw-server
//! connection): queued as they come, written several buffers per system call until the socket
//! would block, the rest kept for when it is writable again.

use std::collections::VecDeque;
use std::io::{self, Write};

use bytes::Bytes;

/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Queued buffers and their total size.
#[derive(Debug, Default)]
pub struct WriteQueue {
    buffers: VecDeque<Bytes>,
    len: usize,
}

impl WriteQueue {
    pub fn push(&mut self, bytes: Bytes) {
        self.len += bytes.len();
        self.buffers.push_back(bytes);
    }

    /// Bytes queued and not yet written.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// Writes to `sink` until everything is written or it would block.
    pub fn flush_to(&mut self, sink: &mut impl Write) -> io::Result<()> {
        while !self.buffers.is_empty() {
            // On the stack: a flush runs for every reply, and a `Vec` here cost an allocation.
            let mut slices = [io::IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, buffer) in slices.iter_mut().zip(&self.buffers) {
                *slot = io::IoSlice::new(buffer);
                count += 1;
            }
            match sink.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops the first `n` bytes written.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.buffers.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.buffers.pop_front();
            } else {
                let _ = front.split_to(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink taking at most `room` bytes per call, then refusing with `WouldBlock`.
    struct Trickle {
        written: Vec<u8>,
        room: usize,
        calls_left: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            let n = buf.len().min(self.room);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_the_rest_in_order() {
        let mut queue = WriteQueue::default();
        for chunk in [&b"hello "[..], b"queued ", b"world"] {
            queue.push(Bytes::copy_from_slice(chunk));
        }
        assert_eq!(queue.len(), 18);
        let mut sink = Trickle {
            written: Vec::new(),
            room: 4,
            calls_left: 2,
        };
        queue.flush_to(&mut sink).unwrap();
        // The default vectored write takes the first buffer only: 4 bytes, then its last 2.
        assert_eq!(sink.written, b"hello ");
        assert_eq!(queue.len(), 12);
        sink.calls_left = usize::MAX;
        queue.flush_to(&mut sink).unwrap();
        assert_eq!(sink.written, b"hello queued world");
        assert!(queue.is_empty());
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_sink_that_takes_nothing_is_an_error() {
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"x"));
        let mut sink = Trickle {
            written: Vec::new(),
            room: 0,
            calls_left: 1,
        };
        let error = queue.flush_to(&mut sink).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
    }
}
