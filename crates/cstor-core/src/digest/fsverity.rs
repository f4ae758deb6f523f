//! fs-verity digests, computed in user space as the kernel measures a file
//! (Linux `Documentation/filesystems/fsverity.rst`): a Merkle tree of 4 KiB blocks — each level
//! the hashes of the blocks below, zero-padded to whole blocks — whose root hash goes into a
//! 256-byte descriptor (version 1, algorithm, log2 block size, no salt, the file's size); the
//! digest is the hash of that descriptor. composefs names content objects and images by it
//! (`fsverity-sha256-12`, `fsverity-sha512-12`: algorithm and log2 block size).

use std::io::{self, Read};

use sha2::digest::DynDigest;
use sha2::{Sha256, Sha512};

const BLOCK: usize = 4096;

/// The hash an fs-verity digest is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `FS_VERITY_HASH_ALG_*`.
    fn number(self) -> u8 {
        match self {
            Algorithm::Sha256 => 1,
            Algorithm::Sha512 => 2,
        }
    }

    fn hasher(self) -> Box<dyn DynDigest> {
        match self {
            Algorithm::Sha256 => Box::new(Sha256::default()),
            Algorithm::Sha512 => Box::new(Sha512::default()),
        }
    }

    fn hash(self, bytes: &[u8]) -> Vec<u8> {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finalize().to_vec()
    }

    /// Its name in a composefs repository's `meta.json` (4 KiB blocks).
    pub fn repository_name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "fsverity-sha256-12",
            Algorithm::Sha512 => "fsverity-sha512-12",
        }
    }

    /// The algorithm a `meta.json` name stands for.
    pub fn from_repository_name(name: &str) -> Option<Algorithm> {
        match name {
            "fsverity-sha256-12" => Some(Algorithm::Sha256),
            "fsverity-sha512-12" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A Merkle tree built as data arrives: one partial block of hashes per level.
pub struct Hasher {
    algorithm: Algorithm,
    size: u64,
    /// The data block being filled.
    block: Vec<u8>,
    /// Per level: hashes not yet hashed into the level above, and how many it ever held.
    levels: Vec<(Vec<u8>, u64)>,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        Hasher {
            algorithm,
            size: 0,
            block: Vec::with_capacity(BLOCK),
            levels: Vec::new(),
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (BLOCK - self.block.len()).min(bytes.len());
            self.block.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.block.len() == BLOCK {
                let hash = self.algorithm.hash(&self.block);
                self.block.clear();
                self.push(0, hash);
            }
        }
    }

    fn push(&mut self, level: usize, hash: Vec<u8>) {
        if self.levels.len() == level {
            self.levels.push((Vec::with_capacity(BLOCK), 0));
        }
        let (hashes, count) = &mut self.levels[level];
        hashes.extend_from_slice(&hash);
        *count += 1;
        if hashes.len() == BLOCK {
            let hash = self.algorithm.hash(hashes);
            hashes.clear();
            self.push(level + 1, hash);
        }
    }

    /// The digest of everything given.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.block.is_empty() {
            self.block.resize(BLOCK, 0);
            let hash = self.algorithm.hash(&self.block);
            self.push(0, hash);
        }
        let digest_len = self.algorithm.hash(b"").len();
        let mut root = vec![0; digest_len];
        let mut level = 0;
        while level < self.levels.len() {
            let top = level + 1 == self.levels.len();
            let (hashes, count) = &mut self.levels[level];
            if top && *count == 1 {
                root = hashes.clone();
                break;
            }
            if !hashes.is_empty() {
                hashes.resize(BLOCK, 0);
                let hash = self.algorithm.hash(hashes);
                hashes.clear();
                self.push(level + 1, hash);
            }
            level += 1;
        }
        let mut descriptor = [0u8; 256];
        descriptor[0] = 1;
        descriptor[1] = self.algorithm.number();
        descriptor[2] = 12;
        descriptor[8..16].copy_from_slice(&self.size.to_le_bytes());
        descriptor[16..16 + root.len()].copy_from_slice(&root);
        self.algorithm.hash(&descriptor)
    }
}

/// The fs-verity digest of everything `reader` gives.
pub fn digest(algorithm: Algorithm, mut reader: impl Read) -> io::Result<Vec<u8>> {
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0; 1 << 20];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Values C composefs's `composefs-info measure-file` prints for the same contents: one
    /// partial block, one whole block, two levels, three levels. (Not for an empty file: C hashes
    /// a zero block for its root, where the kernel and composefs-rs take an all-zero root.)
    #[test]
    fn sha256_digests_match_composefs_info() {
        let pattern = |len: usize| (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
        let cases = [
            (
                b"hello world\n".to_vec(),
                "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92",
            ),
            (
                pattern(4096),
                "13e9b8848ae484a36acb3f3cac0ceb2f7601e96633d15c92f9bd3dd44e492157",
            ),
            (
                pattern(1_000_000),
                "dbe1b6c44240d0b0642a25e6c1d5e399381c87474f3dcda2f3acb9495fa159d6",
            ),
            (
                pattern(4096 * 129 + 5),
                "bf72f7724860c83f4a0a6e5ffff6e7bac88bad7482b4b23b66b8592274ba5133",
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(
                hex(&digest(Algorithm::Sha256, &data[..]).unwrap()),
                expected,
                "{}",
                data.len()
            );
        }
    }
}
