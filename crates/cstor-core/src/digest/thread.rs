//! A SHA-256 computed on a thread of its own, fed through `Write`.
//!
//! Checking a layer's `diff-digest` hashes every byte of its rebuilt tar, and on one thread that
//! hash is most of the work (about 2 GB/s with SHA-NI, against the reads and CRC-64s that produce
//! the bytes). Handing the bytes over in 1 MiB buffers lets a second core hash while the first
//! reads and checks the next files; the buffers come back to be refilled, so memory stays at a
//! few of them.

use std::io::Write;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Bytes gathered before a buffer is handed to the hashing thread.
const BUFFER_BYTES: usize = 1 << 20;

/// Buffers in flight: enough to keep the hashing thread busy while the writer fills the next.
const BUFFERS_IN_FLIGHT: usize = 4;

pub struct Sha256Thread {
    to_hasher: Option<SyncSender<Vec<u8>>>,
    returned: Receiver<Vec<u8>>,
    buffer: Vec<u8>,
    hasher: Option<JoinHandle<Sha256>>,
}

impl Sha256Thread {
    pub fn new() -> Self {
        let (to_hasher, from_writer) = sync_channel::<Vec<u8>>(BUFFERS_IN_FLIGHT);
        let (to_writer, returned) = channel();
        let hasher = std::thread::spawn(move || {
            let mut hash = Sha256::new();
            for mut buffer in from_writer {
                hash.update(&buffer);
                buffer.clear();
                // The writer may be gone (dropped early): the buffer is then freed here.
                let _ = to_writer.send(buffer);
            }
            hash
        });
        Sha256Thread {
            to_hasher: Some(to_hasher),
            returned,
            buffer: Vec::with_capacity(BUFFER_BYTES),
            hasher: Some(hasher),
        }
    }

    /// Hands the current buffer over and takes an empty one (a returned one when there is).
    fn hand_over(&mut self) {
        let next = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER_BYTES));
        let full = std::mem::replace(&mut self.buffer, next);
        if let Some(to_hasher) = &self.to_hasher {
            // Sending fails only if the hashing thread died, which `finish` reports.
            let _ = to_hasher.send(full);
        }
    }

    /// The digest of everything written, as `sha256:<hex>`.
    pub fn finish(mut self) -> std::io::Result<String> {
        if !self.buffer.is_empty() {
            self.hand_over();
        }
        self.to_hasher = None;
        let hash = self
            .hasher
            .take()
            .and_then(|h| h.join().ok())
            .ok_or_else(|| std::io::Error::other("the hashing thread failed"))?;
        Ok(super::finish(hash))
    }
}

impl Default for Sha256Thread {
    fn default() -> Self {
        Sha256Thread::new()
    }
}

impl Write for Sha256Thread {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = BUFFER_BYTES - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == BUFFER_BYTES {
            self.hand_over();
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Sha256Thread {
    fn drop(&mut self) {
        self.to_hasher = None;
        if let Some(hasher) = self.hasher.take() {
            let _ = hasher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_sha256_of_the_same_bytes_written_in_any_pieces() {
        let bytes: Vec<u8> = (0..5 * BUFFER_BYTES + 12345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let expected = super::super::sha256(&bytes);
        for piece in [1, 4096, BUFFER_BYTES - 1, 3 * BUFFER_BYTES] {
            let mut hash = Sha256Thread::new();
            for chunk in bytes.chunks(piece) {
                hash.write_all(chunk).unwrap();
            }
            assert_eq!(hash.finish().unwrap(), expected, "pieces of {piece}");
        }
        assert_eq!(
            Sha256Thread::new().finish().unwrap(),
            super::super::sha256(b"")
        );
    }
}
