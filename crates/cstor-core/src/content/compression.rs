//! The compressions a layer blob can arrive in or be written with, named with the numbers
//! `layers.json` stores in `compression` (containers/storage's `archive.Compression`).
//!
//! Detection, decoding and encoding live here once: decoding for every reader of blobs (layer
//! application, the docker-archive and tarball sources), encoding and the media types for every
//! writer of blobs (the copy to any destination).

use std::io::{self, Read, Write};

use crate::content::parallel_gzip::ParallelGzEncoder;
use crate::error::{Error, Result};

/// The deflate level of gzip layers: zlib-rs at 3 gives blobs a little smaller than
/// skopeo's and podman's (pgzip at its default) on the benchmark image, at several times the
/// speed of zlib's default 6.
pub const GZIP_LEVEL: u32 = 3;

/// The zstd level podman and skopeo compress with by default.
const ZSTD_LEVEL: i32 = 3;

/// Compression threads: every core the process may run on.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A layer blob's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Bzip2 = 1,
    Gzip = 2,
    Xz = 3,
    Zstd = 4,
}

impl Compression {
    /// Recognises a compressed stream by its magic bytes, as containers/storage's
    /// `DetectCompression` does.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// The uncompressed bytes of `reader`. Only what registries and podman produce today
    /// (gzip, zstd, plain) is read; bzip2 and xz layers are `Unsupported`, naming `what`.
    pub fn decoder<'a>(self, reader: impl Read + 'a, what: &str) -> Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            // Multi-member: pigz and parallel writers join gzip members, and Go reads them all.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(reader).map_err(|e| Error::io(what, e))?)
            }
            Compression::Bzip2 | Compression::Xz => {
                return Err(Error::Unsupported {
                    what: format!("{self:?} compressed {what} (gzip and zstd are read)"),
                })
            }
        })
    }

    /// A compressor writing this compression of what it is given into `out`; `finish` ends the
    /// stream. Only gzip, zstd and plain are written, as podman pushes.
    pub fn encoder<'a>(self, out: impl Write + 'a) -> Result<Box<dyn Encoder + 'a>> {
        Ok(match self {
            Compression::None => Box::new(Plain(out)),
            Compression::Gzip => Box::new(ParallelGzEncoder::new(out, GZIP_LEVEL, threads())),
            Compression::Zstd => Box::new(
                zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
                    .and_then(|mut e| e.multithread(threads() as u32).map(|()| e))
                    .map_err(|e| Error::io("zstd", e))?,
            ),
            Compression::Bzip2 | Compression::Xz => {
                return Err(Error::Unsupported {
                    what: format!("writing {self:?} compressed layers"),
                })
            }
        })
    }

    /// The compression a copy is asked for by name: `none`, `gzip` or `zstd`.
    pub fn for_writing(name: &str) -> Result<Compression> {
        match name {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Error::InvalidArgument(format!(
                "compression must be none, gzip or zstd, not {other:?}"
            ))),
        }
    }

    /// The name podman's options and messages use (`--compression-format gzip`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Bzip2 => "bzip2",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The OCI media type of a layer blob with this compression (bzip2 and xz have none).
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// A compressor (or none) in front of a writer: written to, then finished, which writes the end
/// of the compressed stream.
pub trait Encoder: Write {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// No compression: bytes pass as they are.
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Encoder for Plain<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Encoder for ParallelGzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        ParallelGzEncoder::finish(*self).map(drop)
    }
}

impl<W: Write> Encoder for zstd::stream::write::Encoder<'static, W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        zstd::stream::write::Encoder::finish(*self).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"./etc"), Compression::None);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let err = Compression::Xz.decoder(&b""[..], "layer").err().unwrap();
        assert_eq!(err.code(), "EUNSUPPORTED");
    }
}
