//! sha256 digests in the `sha256:<hex>` form that every record, manifest and descriptor uses,
//! and a pass-through that digests and counts a stream, so a blob is hashed while it moves
//! instead of being read twice.

pub mod fsverity;
pub mod thread;

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    finish(Sha256::new_with_prefix(bytes))
}

/// `sha256:<hex>` of everything `hash` was fed.
pub fn finish(hash: Sha256) -> String {
    format!("sha256:{:x}", hash.finalize())
}

/// Whether `digest` is a well-formed `sha256:` digest (64 lower-case hex digits, as the OCI
/// spec's registered algorithm requires), so it can name a file or URL path safely.
pub fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Refuses bytes whose digest `actual` is not the `expected` one the manifest names.
pub fn check(expected: &str, actual: &str, what: &str) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "the {what} has digest {actual}, not {expected} as the manifest says"
        )))
    }
}

/// A reader or writer that digests (sha256) and counts the bytes passing through it.
pub struct Hashing<T> {
    inner: T,
    hash: Sha256,
    count: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything that passed, and the wrapped reader or writer.
    pub fn finish(self) -> (String, u64, T) {
        (finish(self.hash), self.count, self.inner)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_what_passes() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256(b""), empty);
        let mut reader = Hashing::new(&b"abc"[..]);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let mut writer = Hashing::new(Vec::new());
        writer.write_all(b"abc").unwrap();
        let (read, n, _) = reader.finish();
        let (written, m, bytes) = writer.finish();
        assert_eq!((read.as_str(), n), (written.as_str(), m));
        assert_eq!(read, sha256(b"abc"));
        assert_eq!(bytes, b"abc");
        assert!(is_sha256(empty) && !is_sha256("sha256:E3B0") && !is_sha256(&empty[1..]));
    }
}
