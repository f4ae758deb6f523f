//! The compressions a layer blob can arrive in or be written with, named with the numbers
//! `layers.json` stores in `compression` (containers/storage's `archive.Compression`).
//!
//! Detection and decoding live here once, for every reader of blobs: layer application, the
//! docker-archive and tarball sources; the media types for every writer of OCI blobs.

use std::io::Read;

use crate::error::{Error, Result};

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

    /// The OCI media type of a layer blob with this compression (bzip2 and xz have none).
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        }
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
