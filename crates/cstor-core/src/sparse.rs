//! Sparse tar members: the one kind tar-split cannot rebuild (FORMAT.md, "tar-split").
//!
//! A sparse member's tar body holds only the file's data fragments; where they go is a sparse
//! map in its headers (GNU type `S`, PAX `GNU.sparse.*` records of formats 0.0 and 0.1) or at the
//! start of its body (PAX format 1.0). Go's tar reader expands such a member into the whole file,
//! and tar-split records that: the file entry has the expanded size and CRC, and reassembly writes
//! the expanded bytes where the fragments were — a tar whose sha256 is not the layer's diff
//! digest (Go's `tar-split asm` has the same limit). podman imports PAX sparse members this way
//! (and refuses GNU `S` ones), so such layers exist in real stores.
//!
//! An export must not hand out bytes that silently differ, so before any byte is written the
//! tar-split is scanned: the headers recorded in the segments before each file entry are read as
//! tar headers, and a sparse one stops the export with [`Error::Unrebuildable`] naming the entry.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::tarsplit::{Decoder, Entry};

const BLOCK: usize = 512;

/// Header bytes kept per member: far above any real header run (a PAX header with long names and
/// xattrs), low enough that a hostile tar-split of endless segments cannot exhaust memory.
const MAX_HEADER_BYTES: usize = 16 << 20;

/// Fails with [`Error::Unrebuildable`] at the first member of the tar-split `gzipped` (of layer
/// `layer`) whose tar body tar-split cannot give back.
pub(crate) fn check_rebuildable(gzipped: impl Read, split_path: &Path, layer: &str) -> Result<()> {
    // The segments since the previous body: its padding, then this member's header blocks.
    let mut headers = Vec::new();
    let mut padding = 0;
    for entry in Decoder::new(gzipped, split_path) {
        match entry? {
            Entry::Segment(bytes) => {
                let room = MAX_HEADER_BYTES.saturating_sub(headers.len());
                headers.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Entry::File { name, size, .. } => {
                if let Some(reason) = sparse_format(headers.get(padding..).unwrap_or_default()) {
                    return Err(Error::Unrebuildable {
                        layer: layer.to_owned(),
                        entry: String::from_utf8_lossy(&name).into_owned(),
                        reason: format!(
                            "a sparse file ({reason}), whose sparse map tar-split does not keep"
                        ),
                    });
                }
                headers.clear();
                padding = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
            }
        }
    }
    Ok(())
}

/// The sparse format of the member whose header blocks start `blocks`, if it is sparse: the
/// extension headers (PAX, GNU long names) are walked up to the member's own header.
fn sparse_format(mut blocks: &[u8]) -> Option<&'static str> {
    while blocks.len() >= BLOCK {
        let (block, rest) = blocks.split_at(BLOCK);
        if block.iter().all(|b| *b == 0) {
            return None;
        }
        let header = tar::Header::from_byte_slice(block);
        let size = header.entry_size().ok()?;
        let data_len =
            usize::try_from(size.div_ceil(BLOCK as u64).checked_mul(BLOCK as u64)?).ok()?;
        match block[156] {
            b'S' => return Some("GNU type S"),
            b'x' => {
                let records = rest.get(..usize::try_from(size).ok()?)?;
                if let Some(format) = pax_sparse_format(records) {
                    return Some(format);
                }
            }
            b'g' | b'L' | b'K' => {}
            _ => return None,
        }
        blocks = rest.get(data_len..)?;
    }
    None
}

/// Which PAX sparse format the records of a PAX header declare, if any: 1.0 names its version,
/// 0.1 has a `GNU.sparse.map`, 0.0 only `GNU.sparse.offset`/`numbytes` pairs.
fn pax_sparse_format(records: &[u8]) -> Option<&'static str> {
    let keys: Vec<&[u8]> = tar::PaxExtensions::new(records)
        .map_while(|record| record.ok().map(|r| r.key_bytes()))
        .filter(|key| key.starts_with(b"GNU.sparse."))
        .collect();
    if keys.is_empty() {
        None
    } else if keys.contains(&&b"GNU.sparse.major"[..]) {
        Some("PAX GNU.sparse 1.0")
    } else if keys.contains(&&b"GNU.sparse.map"[..]) {
        Some("PAX GNU.sparse 0.1")
    } else {
        Some("PAX GNU.sparse 0.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's archive/tar test file: a member in each sparse format, then a plain one.
    const FORMATS: &[u8] = include_bytes!("../../../__test__/fixtures/sparse/sparse-formats.tar");

    #[test]
    fn every_sparse_format_is_told_from_the_headers() {
        assert_eq!(sparse_format(FORMATS), Some("GNU type S"));
        assert_eq!(sparse_format(&FORMATS[3584..]), Some("PAX GNU.sparse 0.0"));
        assert_eq!(sparse_format(&FORMATS[10240..]), Some("PAX GNU.sparse 0.1"));
        assert_eq!(sparse_format(&FORMATS[12800..]), Some("PAX GNU.sparse 1.0"));
        assert_eq!(sparse_format(&FORMATS[15872..]), None);
    }

    #[test]
    fn garbage_is_not_sparse_and_does_not_panic() {
        let mut block = [0xffu8; 1536];
        block[156] = b'x';
        assert_eq!(sparse_format(&block), None);
        assert_eq!(sparse_format(&FORMATS[3584..4000]), None);
        assert_eq!(sparse_format(b"short"), None);
    }
}
