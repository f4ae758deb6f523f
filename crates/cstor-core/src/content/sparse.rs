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
//! (An export into a hash, which hands nothing out, checks each entry as it goes instead.)
//!
//! Writing a layer, cstor reads PAX sparse members as podman does (Go's reader, whose rules
//! `pax_sparse`, `read_map_1x0` and `expand` follow): the file gets its real name and size,
//! its data lands at the map's offsets (the holes stay holes on disk), and the tar-split records
//! the expanded file and none of the map — the same layer podman writes, just as unexportable. GNU type `S` members
//! are refused, as podman refuses them.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::content::tarsplit::{Decoder, Entry};
use crate::error::{Error, Result};

const BLOCK: usize = 512;

/// Header bytes kept per member: far above any real header run (a PAX header with long names and
/// xattrs), low enough that a hostile tar-split of endless segments cannot exhaust memory.
const MAX_HEADER_BYTES: usize = 16 << 20;

/// One run of data in a sparse file: `length` bytes at `offset`; the rest is holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fragment {
    pub offset: u64,
    pub length: u64,
}

/// What the PAX records of a sparse member say (Go's `readGNUSparsePAXHeaders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaxSparse {
    /// `GNU.sparse.name`: the real name, in place of the header's `GNUSparseFile.N/...`.
    pub name: Option<Vec<u8>>,
    /// `GNU.sparse.size` (0.x) or `GNU.sparse.realsize` (1.0): the expanded size.
    pub size: Option<u64>,
    /// The map of formats 0.0 and 0.1, from the records; format 1.0 keeps it at the start of the
    /// body ([`read_map_1x0`]).
    pub map: Option<Vec<Fragment>>,
}

fn bad(detail: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("the layer tar has a bad sparse member: {detail}"))
}

fn number(text: &[u8]) -> Result<u64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            bad(format!(
                "{:?} is not a number",
                String::from_utf8_lossy(text)
            ))
        })
}

/// The sparse member the PAX `records` of an entry declare, if they declare one: format 1.0 by
/// `GNU.sparse.major`/`minor`, 0.1 by `GNU.sparse.map`, 0.0 by `GNU.sparse.offset`/`numbytes`
/// pairs (which Go's reader gathers into a map of the same shape). Other versions are not sparse
/// to Go, nor to cstor.
pub(crate) fn pax_sparse(records: &[(Vec<u8>, Vec<u8>)]) -> Result<Option<PaxSparse>> {
    let get = |key: &[u8]| {
        records
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    };
    let pairs: Vec<&[u8]> = records
        .iter()
        .filter(|(k, _)| k == b"GNU.sparse.offset" || k == b"GNU.sparse.numbytes")
        .map(|(_, v)| v.as_slice())
        .collect();
    let map_text = get(b"GNU.sparse.map");
    let is_1x0 = match (get(b"GNU.sparse.major"), get(b"GNU.sparse.minor")) {
        (Some(b"0"), Some(b"0" | b"1")) => false,
        (Some(b"1"), Some(b"0")) => true,
        (Some(_), _) | (_, Some(_)) => return Ok(None),
        (None, None) if map_text.is_some() || !pairs.is_empty() => false,
        (None, None) => return Ok(None),
    };
    let size = match get(b"GNU.sparse.size").or(get(b"GNU.sparse.realsize")) {
        Some(size) => Some(number(size)?),
        None => None,
    };
    let map = if is_1x0 {
        None
    } else {
        let numbers: Vec<&[u8]> = match map_text {
            Some(text) if !text.is_empty() => text.split(|b| *b == b',').collect(),
            Some(_) => Vec::new(),
            None => pairs,
        };
        let count = number(get(b"GNU.sparse.numblocks").unwrap_or(b""))?;
        if numbers.len() as u64 != count.saturating_mul(2) {
            return Err(bad("the map does not hold GNU.sparse.numblocks entries"));
        }
        Some(fragments(numbers.iter().map(|n| number(n)))?)
    };
    Ok(Some(PaxSparse {
        name: get(b"GNU.sparse.name").map(<[u8]>::to_vec),
        size,
        map,
    }))
}

fn fragments(mut numbers: impl Iterator<Item = Result<u64>>) -> Result<Vec<Fragment>> {
    let mut map = Vec::new();
    while let Some(offset) = numbers.next() {
        let length = numbers
            .next()
            .ok_or_else(|| bad("an offset without a length"))?;
        map.push(Fragment {
            offset: offset?,
            length: length?,
        });
    }
    Ok(map)
}

/// Reads a format 1.0 map from the start of the body: decimal lines (the count, then offset and
/// length per fragment) in whole 512-byte blocks, as many blocks as the lines need. Returns the
/// map and the bytes of body it took.
pub(crate) fn read_map_1x0(body: &mut impl Read) -> Result<(Vec<Fragment>, u64)> {
    let mut text = Vec::new();
    let mut block = [0u8; BLOCK];
    let mut newlines = 0u64;
    let mut feed = |text: &mut Vec<u8>, wanted: u64| -> Result<()> {
        while newlines < wanted {
            if text.len() >= MAX_HEADER_BYTES {
                return Err(bad("its sparse map is implausibly long"));
            }
            body.read_exact(&mut block)
                .map_err(|_| bad("the tar ends inside its sparse map"))?;
            newlines += block.iter().filter(|b| **b == b'\n').count() as u64;
            text.extend_from_slice(&block);
        }
        Ok(())
    };
    feed(&mut text, 1)?;
    let mut lines = Vec::new();
    let count = {
        let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
        number(first)?
    };
    feed(&mut text, count.saturating_mul(2).saturating_add(1))?;
    for line in text
        .split(|b| *b == b'\n')
        .skip(1)
        .take((count as usize).saturating_mul(2))
    {
        lines.push(number(line));
    }
    Ok((fragments(lines.into_iter())?, text.len() as u64))
}

/// Checks a map as Go's reader does: fragments in order, not overlapping, within `size`.
pub(crate) fn validate(map: &[Fragment], size: u64) -> Result<()> {
    let mut end = 0u64;
    for fragment in map {
        let this_end = fragment
            .offset
            .checked_add(fragment.length)
            .filter(|e| *e <= size && i64::try_from(*e).is_ok())
            .ok_or_else(|| bad("a fragment lies beyond the file's size"))?;
        if fragment.offset < end {
            return Err(bad("its fragments overlap or are out of order"));
        }
        end = this_end;
    }
    Ok(())
}

/// Writes the expanded file: each fragment's data, read in turn from `body` (the member's
/// remaining bytes, `physical` of them), at its offset in `file`, holes left as holes, `size`
/// in all; returns the CRC-64/GO-ISO of the expanded content, which tar-split records.
pub(crate) fn expand(
    body: &mut impl Read,
    physical: u64,
    file: &File,
    map: &[Fragment],
    size: u64,
    buffer: &mut [u8],
) -> Result<Option<u64>> {
    let data: u64 = map.iter().map(|f| f.length).sum();
    if data != physical {
        return Err(bad(format!(
            "its map covers {data} bytes of data but the tar holds {physical}"
        )));
    }
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso);
    let zeros = vec![0u8; buffer.len()];
    let mut cursor = 0u64;
    let hole_until = |digest: &mut crc_fast::Digest, cursor: &mut u64, offset: u64| {
        while *cursor < offset {
            let n = (offset - *cursor).min(zeros.len() as u64) as usize;
            digest.update(&zeros[..n]);
            *cursor += n as u64;
        }
    };
    for fragment in map {
        hole_until(&mut digest, &mut cursor, fragment.offset);
        let mut left = fragment.length;
        while left > 0 {
            let want = left.min(buffer.len() as u64) as usize;
            body.read_exact(&mut buffer[..want])
                .map_err(|_| bad("the tar ends inside its data"))?;
            digest.update(&buffer[..want]);
            file.write_all_at(&buffer[..want], cursor)
                .map_err(|e| Error::io("sparse file", e))?;
            cursor += want as u64;
            left -= want as u64;
        }
    }
    hole_until(&mut digest, &mut cursor, size);
    file.set_len(size)
        .map_err(|e| Error::io("sparse file", e))?;
    Ok((size > 0).then(|| digest.finalize()))
}

/// Fails with [`Error::Unrebuildable`] at the first member of the tar-split `gzipped` (of layer
/// `layer`) whose tar body tar-split cannot give back.
pub(crate) fn check_rebuildable(gzipped: impl Read, split_path: &Path, layer: &str) -> Result<()> {
    let mut check = RebuildCheck::new(layer);
    for entry in Decoder::new(gzipped, split_path) {
        check.entry(&entry?)?;
    }
    Ok(())
}

/// [`check_rebuildable`] one entry at a time, for a reader of the tar-split that may see a sparse
/// member only once the tar before it is produced: an export into a hash, whose digest an error
/// discards, needs no pass over the tar-split of its own before it starts.
pub(crate) struct RebuildCheck {
    layer: String,
    /// The segments since the previous body: its padding, then this member's header blocks.
    headers: Vec<u8>,
    padding: usize,
}

impl RebuildCheck {
    pub(crate) fn new(layer: &str) -> Self {
        RebuildCheck {
            layer: layer.to_owned(),
            headers: Vec::new(),
            padding: 0,
        }
    }

    /// Takes the next entry; fails at a file entry whose member is sparse.
    pub(crate) fn entry(&mut self, entry: &Entry) -> Result<()> {
        match entry {
            Entry::Segment(bytes) => {
                let room = MAX_HEADER_BYTES.saturating_sub(self.headers.len());
                self.headers
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Entry::File { name, size, .. } => {
                let blocks = self.headers.get(self.padding..).unwrap_or_default();
                if let Some(reason) = sparse_format(blocks) {
                    return Err(Error::Unrebuildable {
                        layer: self.layer.clone(),
                        entry: String::from_utf8_lossy(name).into_owned(),
                        reason: format!(
                            "a sparse file ({reason}), whose sparse map tar-split does not keep"
                        ),
                    });
                }
                self.headers.clear();
                self.padding = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
            }
        }
        Ok(())
    }
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
    const FORMATS: &[u8] =
        include_bytes!("../../../../__test__/fixtures/sparse/sparse-formats.tar");

    #[test]
    fn every_sparse_format_is_told_from_the_headers() {
        assert_eq!(sparse_format(FORMATS), Some("GNU type S"));
        assert_eq!(sparse_format(&FORMATS[3584..]), Some("PAX GNU.sparse 0.0"));
        assert_eq!(sparse_format(&FORMATS[10240..]), Some("PAX GNU.sparse 0.1"));
        assert_eq!(sparse_format(&FORMATS[12800..]), Some("PAX GNU.sparse 1.0"));
        assert_eq!(sparse_format(&FORMATS[15872..]), None);
    }

    fn records(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn pax_records_give_name_size_and_map_as_go_reads_them() {
        let v01 = pax_sparse(&records(&[
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.map", "1,2,5,1"),
            ("GNU.sparse.name", "real"),
            ("GNU.sparse.size", "9"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v01.name.as_deref(), Some(&b"real"[..]));
        assert_eq!(v01.size, Some(9));
        let map = v01.map.unwrap();
        assert_eq!(
            map[1],
            Fragment {
                offset: 5,
                length: 1
            }
        );
        let v00 = pax_sparse(&records(&[
            ("GNU.sparse.numblocks", "1"),
            ("GNU.sparse.offset", "3"),
            ("GNU.sparse.numbytes", "4"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            v00.map.unwrap(),
            vec![Fragment {
                offset: 3,
                length: 4
            }]
        );
        let v10 = pax_sparse(&records(&[
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
        ]));
        assert_eq!(v10.unwrap().unwrap().map, None);
        assert_eq!(
            pax_sparse(&records(&[("GNU.sparse.major", "2")])).unwrap(),
            None
        );
        assert_eq!(pax_sparse(&records(&[("path", "x")])).unwrap(), None);
        let short = [("GNU.sparse.numblocks", "2"), ("GNU.sparse.map", "1,2")];
        assert_eq!(pax_sparse(&records(&short)).unwrap_err().code(), "EINVAL");
    }

    #[test]
    fn bad_maps_and_bodies_are_refused() {
        let frag = |offset, length| Fragment { offset, length };
        assert!(validate(&[frag(0, 2), frag(2, 2)], 4).is_ok());
        assert!(validate(&[frag(2, 2), frag(0, 1)], 4).is_err());
        assert!(validate(&[frag(3, 2)], 4).is_err());
        assert!(validate(&[frag(u64::MAX, 2)], u64::MAX).is_err());
        let mut block = [0u8; 512];
        block[..8].copy_from_slice(b"1\n2\n3\n\0\0");
        assert_eq!(
            read_map_1x0(&mut &block[..]).unwrap(),
            (vec![frag(2, 3)], 512)
        );
        assert!(read_map_1x0(&mut &b"99999999999\n"[..]).is_err());
        let file = tempfile::tempfile().unwrap();
        let mut buffer = [0u8; 4];
        let map = [frag(1, 2), frag(5, 1)];
        let crc = expand(&mut &b"abc"[..], 3, &file, &map, 8, &mut buffer).unwrap();
        let mut expanded = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut expanded).unwrap();
        assert_eq!(expanded, b"\0ab\0\0c\0\0");
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso);
        digest.update(&expanded);
        assert_eq!(crc, Some(digest.finalize()));
        assert!(expand(&mut &b"abcd"[..], 4, &file, &map, 8, &mut buffer).is_err());
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
