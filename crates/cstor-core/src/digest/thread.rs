//! A SHA-256 computed on a thread of its own, fed whole buffers.
//!
//! Checking a layer's `diff-digest` hashes every byte of its rebuilt tar, and on one thread that
//! hash is most of the work (about 2 GB/s with SHA-NI, against the reads and CRC-64s that produce
//! the bytes). Handing the bytes over in the buffers they were read into lets a second core hash
//! while the first reads and checks the next files, without a copy between them; the buffers come
//! back to be refilled, so memory stays at a few of them.

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Buffers queued for the hashing thread: enough to keep it busy while the writer fills the next,
/// few enough that the queued bytes are still in cache when they are hashed.
const BUFFERS_IN_FLIGHT: usize = 4;

pub struct Sha256Thread {
    to_hasher: Option<SyncSender<Vec<u8>>>,
    returned: Receiver<Vec<u8>>,
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
            hasher: Some(hasher),
        }
    }

    /// Hands `full` over to be hashed next (waiting while [`BUFFERS_IN_FLIGHT`] are queued) and
    /// returns an empty buffer to fill: one the hashing thread is done with when there is one,
    /// with its capacity, else a new one.
    pub fn exchange(&mut self, full: Vec<u8>) -> Vec<u8> {
        let next = self.returned.try_recv().unwrap_or_default();
        if let Some(to_hasher) = &self.to_hasher {
            // Sending fails only if the hashing thread died, which `finish` reports.
            let _ = to_hasher.send(full);
        }
        next
    }

    /// The digest of every buffer handed over, in order, as `sha256:<hex>`.
    pub fn finish(mut self) -> std::io::Result<String> {
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
    fn equals_sha256_of_the_same_bytes_handed_over_in_any_pieces() {
        let bytes: Vec<u8> = (0..5 * (1 << 20) + 12345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let expected = super::super::sha256(&bytes);
        for piece in [1, 4096, (1 << 20) - 1, 3 << 20] {
            let mut hash = Sha256Thread::new();
            let mut buffer = Vec::new();
            for chunk in bytes.chunks(piece) {
                buffer.extend_from_slice(chunk);
                buffer = hash.exchange(buffer);
                assert!(buffer.is_empty(), "a returned buffer comes back empty");
            }
            assert_eq!(hash.finish().unwrap(), expected, "pieces of {piece}");
        }
        assert_eq!(
            Sha256Thread::new().finish().unwrap(),
            super::super::sha256(b"")
        );
    }
}
