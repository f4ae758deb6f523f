//! Decoding tar-split metadata (`overlay-layers/<id>.tar-split.gz`), the record containers/storage
//! keeps of a layer's original tar so the exact bytes can be rebuilt (FORMAT.md, "tar-split").
//!
//! The file is gzip of newline-delimited JSON. Each line is either a *segment* — raw tar bytes
//! (headers, padding, end-of-archive blocks), base64 in `payload` — or a *file* entry naming a body
//! to take from the layer's `diff/` with its size and CRC-64/GO-ISO. The decoder streams: it holds
//! one line at a time, so memory does not grow with the layer.
//!
//! It accepts what Go's tar-split writes (`name_raw` for non-UTF-8 names, `size` and `payload`
//! omitted when empty) and refuses anything else with `ECORRUPT` naming the entry position.
//! [`Encoder`] writes the same format when cstor creates a layer.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use base64::Engine;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A segment line longer than this is not something tar-split writes (its segments are tar
/// headers and padding, a few KiB even with long PAX records).
const MAX_LINE_BYTES: u64 = 64 << 20;

const SEGMENT_TYPE: u8 = 2;
const FILE_TYPE: u8 = 1;

/// One entry of a tar-split stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Raw tar bytes, copied to the output verbatim.
    Segment(Vec<u8>),
    /// A file body: `size` bytes of `diff/<name>`, whose CRC-64/GO-ISO is `crc` (absent for
    /// empty bodies). Header-only members (directories, links, devices) have `size` 0.
    File {
        name: Vec<u8>,
        size: u64,
        crc: Option<u64>,
    },
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "type")]
    kind: u8,
    name: Option<String>,
    name_raw: Option<String>,
    #[serde(default)]
    size: i64,
    payload: Option<String>,
    position: i64,
}

/// Streams the entries of a tar-split file.
pub struct Decoder<R: Read> {
    lines: BufReader<MultiGzDecoder<R>>,
    path: PathBuf,
    next_position: i64,
    line: Vec<u8>,
}

impl<R: Read> Decoder<R> {
    /// `path` only names the file in errors.
    pub fn new(gzipped: R, path: impl Into<PathBuf>) -> Self {
        Decoder {
            lines: BufReader::with_capacity(256 << 10, MultiGzDecoder::new(gzipped)),
            path: path.into(),
            next_position: 0,
            line: Vec::new(),
        }
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> Error {
        Error::corrupt(
            &self.path,
            format!("tar-split entry {}: {detail}", self.next_position),
        )
    }

    /// The next entry, or `None` at the end of the stream.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.line.clear();
        let read = (&mut self.lines)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(|e| self.corrupt(format!("unreadable gzip stream: {e}")))?;
        if read == 0 {
            return Ok(None);
        }
        if read as u64 > MAX_LINE_BYTES {
            return Err(self.corrupt("line is implausibly long"));
        }
        let raw: RawEntry = serde_json::from_slice(&self.line)
            .map_err(|e| self.corrupt(format!("bad JSON: {e}")))?;
        if raw.position != self.next_position {
            return Err(self.corrupt(format!("position {} out of sequence", raw.position)));
        }
        let entry = match raw.kind {
            SEGMENT_TYPE => Entry::Segment(self.base64(raw.payload.as_deref().unwrap_or(""))?),
            FILE_TYPE => self.file_entry(raw)?,
            other => return Err(self.corrupt(format!("unknown entry type {other}"))),
        };
        self.next_position += 1;
        Ok(Some(entry))
    }

    fn file_entry(&self, raw: RawEntry) -> Result<Entry> {
        let name = match (&raw.name_raw, raw.name) {
            (Some(encoded), _) => self.base64(encoded)?,
            (None, Some(name)) => name.into_bytes(),
            (None, None) => return Err(self.corrupt("file entry without a name")),
        };
        let size = u64::try_from(raw.size).map_err(|_| self.corrupt("negative size"))?;
        let crc = match raw.payload.as_deref() {
            None | Some("") => None,
            Some(encoded) => {
                let bytes: [u8; 8] = self
                    .base64(encoded)?
                    .try_into()
                    .map_err(|_| self.corrupt("CRC payload is not 8 bytes"))?;
                Some(u64::from_be_bytes(bytes))
            }
        };
        if size > 0 && crc.is_none() {
            return Err(self.corrupt("file body without a CRC"));
        }
        Ok(Entry::File { name, size, crc })
    }

    fn base64(&self, encoded: &str) -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| self.corrupt(format!("bad base64: {e}")))
    }
}

impl<R: Read> Iterator for Decoder<R> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// One line as Go's tar-split packer writes it: `payload` is always present (`null` for a file
/// without a body), `name`/`size` only when set.
#[derive(Serialize)]
struct OutEntry<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_raw: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    size: u64,
    payload: Option<String>,
    position: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Writes tar-split entries (uncompressed NDJSON; wrap the writer in gzip for a
/// `.tar-split.gz`), numbering positions and refusing a second file entry for one path, as
/// tar-split's packer does (containers/storage then refuses the layer).
pub struct Encoder<W: Write> {
    out: W,
    position: u64,
    seen: HashSet<Vec<u8>>,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W) -> Self {
        Encoder {
            out,
            position: 0,
            seen: HashSet::new(),
        }
    }

    /// Raw tar bytes to copy verbatim on reassembly. Nothing is recorded for no bytes, as Go's
    /// tar-split records a segment only when it has some (an archive that ends right after its
    /// end blocks has no trailing one).
    pub fn segment(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.write(&OutEntry {
            kind: SEGMENT_TYPE,
            name: None,
            name_raw: None,
            size: 0,
            payload: Some(payload),
            position: self.position,
        })
    }

    /// A member whose body (`size` bytes, CRC-64/GO-ISO `crc`) reassembly takes from the layer's
    /// files. A name that is not UTF-8 goes to `name_raw`, which JSON can carry intact.
    pub fn file(&mut self, name: &[u8], size: u64, crc: Option<u64>) -> Result<()> {
        if !self.seen.insert(clean(name)) {
            return Err(Error::InvalidArgument(format!(
                "the tar has two entries for {:?}; containers/storage refuses such layers",
                String::from_utf8_lossy(name)
            )));
        }
        let (name, name_raw) = match std::str::from_utf8(name) {
            Ok(name) => (Some(name), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(name)),
            ),
        };
        let payload =
            crc.map(|crc| base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes()));
        self.write(&OutEntry {
            kind: FILE_TYPE,
            name,
            name_raw,
            size,
            payload,
            position: self.position,
        })
    }

    /// The writer, once every entry is written.
    pub fn finish(self) -> W {
        self.out
    }

    fn write(&mut self, entry: &OutEntry<'_>) -> Result<()> {
        serde_json::to_writer(&mut self.out, entry)
            .map_err(|e| Error::io("tar-split", std::io::Error::other(e)))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::io("tar-split", e))?;
        self.position += 1;
        Ok(())
    }
}

/// The path a tar name stands for, as Go's `filepath.Clean` would compare it: no `.` components,
/// no repeated or trailing slashes.
fn clean(name: &[u8]) -> Vec<u8> {
    let absolute = name.first() == Some(&b'/');
    let parts: Vec<&[u8]> = name
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    let mut out = if absolute { b"/".to_vec() } else { Vec::new() };
    out.extend(parts.join(&b'/'));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(text: &str) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    fn decode(text: &str) -> Result<Vec<Entry>> {
        Decoder::new(&gzip(text)[..], "t.tar-split.gz").collect()
    }

    #[test]
    fn decodes_segments_files_and_raw_names() {
        // Lines in the shape Go tar-split writes (taken from a podman-made store).
        let entries = decode(concat!(
            "{\"type\":2,\"payload\":\"aGVhZGVy\",\"position\":0}\n",
            "{\"type\":1,\"name\":\"d/\",\"payload\":null,\"position\":1}\n",
            "{\"type\":1,\"name\":\"etc/x\",\"size\":2,\"payload\":\"uQlWx3WkEAE=\",\"position\":2}\n",
            "{\"type\":1,\"name_raw\":\"/w==\",\"size\":0,\"position\":3}\n",
        ))
        .unwrap();
        assert_eq!(entries[0], Entry::Segment(b"header".to_vec()));
        assert_eq!(
            entries[1],
            Entry::File {
                name: b"d/".to_vec(),
                size: 0,
                crc: None
            }
        );
        assert_eq!(
            entries[2],
            Entry::File {
                name: b"etc/x".to_vec(),
                size: 2,
                crc: Some(0xb90956c775a41001)
            }
        );
        assert_eq!(
            entries[3],
            Entry::File {
                name: vec![0xff],
                size: 0,
                crc: None
            }
        );
    }

    #[test]
    fn refuses_what_tar_split_never_writes() {
        for bad in [
            "{\"type\":3,\"position\":0}\n",
            "{\"type\":2,\"payload\":\"!!\",\"position\":0}\n",
            "{\"type\":2,\"payload\":\"\",\"position\":1}\n",
            "{\"type\":1,\"name\":\"x\",\"size\":-1,\"position\":0}\n",
            "{\"type\":1,\"name\":\"x\",\"size\":5,\"position\":0}\n",
            "{\"type\":1,\"size\":0,\"position\":0}\n",
            "not json\n",
        ] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.code(), "ECORRUPT", "{bad}");
            assert!(err.to_string().contains("entry 0"), "{err}");
        }
    }

    #[test]
    fn a_truncated_gzip_stream_is_corrupt() {
        let mut data = gzip(
            "{\"type\":2,\"payload\":\"aGVhZGVy\",\"position\":0}\n"
                .repeat(100)
                .as_str(),
        );
        data.truncate(data.len() / 2);
        let err = Decoder::new(&data[..], "t")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert_eq!(err.code(), "ECORRUPT");
    }

    #[test]
    fn the_encoder_writes_what_the_decoder_reads_and_refuses_duplicate_paths() {
        let mut encoder = Encoder::new(Vec::new());
        encoder.segment(b"header").unwrap();
        encoder.file(b"./a", 9, Some(0xb90956c775a41001)).unwrap();
        encoder.file(b"b\xff", 0, None).unwrap();
        encoder.segment(b"").unwrap();
        assert_eq!(encoder.file(b"a/", 0, None).unwrap_err().code(), "EINVAL");
        let text = String::from_utf8(encoder.finish()).unwrap();
        assert!(text.starts_with("{\"type\":2,\"payload\":\"aGVhZGVy\",\"position\":0}\n"));
        assert!(text.contains(
            "{\"type\":1,\"name\":\"./a\",\"size\":9,\"payload\":\"uQlWx3WkEAE=\",\"position\":1}"
        ));
        let entries: Vec<Entry> = Decoder::new(&gzip(&text)[..], "t")
            .collect::<Result<_>>()
            .unwrap();
        // The empty segment is not recorded, as in Go's tar-split.
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[2],
            Entry::File {
                name: b"b\xff".to_vec(),
                size: 0,
                crc: None
            }
        );
    }
}
