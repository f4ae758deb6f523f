//! The one copy routine: an image from the store to any [`ImageDestination`] — an OCI layout, a
//! registry, an archive — as containers/image's `copy.Image` is one routine for every pair.
//!
//! Each layer is read once: the export engine rebuilds its tar (CRC-checked) into a hash of the
//! uncompressed bytes, the compressor, a hash of the blob and the destination's writer, so both
//! digests are known when the last byte has passed (uncompressed, one hash is both). The blob
//! is kept under its digest only when the uncompressed hash is the layer's diff digest; a
//! damaged layer leaves nothing behind.
//!
//! Before a layer is compressed, the blobs already known to hold it are offered to the
//! destination — the uncompressed tar, the compressed blobs of earlier copies
//! ([`BlobInfoCache`]), the blob the layer was pulled as — with the places each was seen, so a
//! registry that has one (or can mount one) gets nothing sent. The config goes byte for byte, so
//! the image ID stays, and the manifest goes last, so the image appears whole or not at all.

use std::io::Write;
use std::path::Path;

use crate::content::compression::Compression;
use crate::content::export::ExportOptions;
use crate::digest::{is_sha256, sha256, Hashing};
use crate::error::{into_core_error, Error, Result};
use crate::progress::Progress;
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::names::ImageName;
use crate::store::Store;
use crate::transport::blob_info_cache::BlobInfoCache;
use crate::transport::store_source::StoreSource;
use crate::transport::{Descriptor, ImageDestination, ImageManifest};

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// How layer blobs are compressed (a destination may keep them uncompressed regardless).
    pub compression: Compression,
    /// `os/architecture[/variant]` the image must be (see [`StoreSource::check_platform`]).
    pub platform: Option<String>,
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "CopyResult")]
pub struct Copied {
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub layers: usize,
    /// Bytes of layer blobs written (not those the destination had).
    pub bytes_written: u64,
    /// Layer blobs the destination had already, or mounted.
    pub blobs_reused: usize,
    /// A composefs repository destination: the image's composefs ID (what
    /// `cfsctl oci compute-id` prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub composefs_id: Option<String>,
}

impl Store {
    /// Copies `image` to the destination `open` opens — only once the image was read and
    /// checked, so a refused copy leaves no trace at the destination.
    pub fn copy_to(
        &self,
        image: &Image,
        open: impl FnOnce() -> Result<Box<dyn ImageDestination>>,
        options: &CopyOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Copied> {
        let source = StoreSource::open(self, image)?;
        if let Some(wanted) = &options.platform {
            source.check_platform(wanted)?;
        }
        let mut destination = open()?;
        let mut cache = BlobInfoCache::open_default();
        copy_image(
            &source,
            destination.as_mut(),
            &mut cache,
            options.compression,
            progress,
        )
    }
}

/// Copies the image `source` reads to `destination`, layers compressed as asked (or as the
/// destination keeps them), learning and using what `cache` knows of blobs.
pub fn copy_image(
    source: &StoreSource<'_>,
    destination: &mut dyn ImageDestination,
    cache: &mut BlobInfoCache,
    compression: Compression,
    progress: &mut dyn FnMut(Progress),
) -> Result<Copied> {
    let platform = source.platform();
    let compression = destination.layer_compression(compression);
    let location = destination.location();
    let pulled_from = name_locations(source.image());
    let layers = source.layers();
    let total_bytes = layers
        .iter()
        .map(|l| StoreSource::layer_descriptor(l).size)
        .sum();
    let mut report = Progress {
        layer: 0,
        layers: layers.len(),
        bytes: 0,
        total_bytes,
    };
    let mut copied = Copied {
        manifest_digest: String::new(),
        manifest_size: 0,
        layers: layers.len(),
        bytes_written: 0,
        blobs_reused: 0,
        composefs_id: None,
    };
    let mut blobs = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        report.layer = index;
        progress(report);
        let uncompressed = StoreSource::layer_descriptor(layer);
        let before = report.bytes;
        report.bytes += uncompressed.size;
        let known = known_blobs(layer, &uncompressed, compression, cache, &pulled_from);
        let mut reused = None;
        for (blob, elsewhere) in known {
            if destination.reuse_blob(&blob, &elsewhere)? {
                reused = Some(blob);
                break;
            }
        }
        let blob = match reused {
            Some(blob) => {
                copied.blobs_reused += 1;
                blob
            }
            None => {
                let reporting = Reporting {
                    report: Progress {
                        bytes: before,
                        ..report
                    },
                    progress: &mut *progress,
                    unreported: 0,
                };
                let (blob, new) = copy_layer(
                    source.store(),
                    layer,
                    &uncompressed,
                    compression,
                    destination,
                    reporting,
                )?;
                if new {
                    copied.bytes_written += blob.size;
                } else {
                    copied.blobs_reused += 1;
                }
                if compression != Compression::None {
                    cache.add_compressed(&uncompressed.digest, compression, &blob);
                }
                blob
            }
        };
        if let Some(location) = &location {
            cache.add_location(&blob.digest, location);
        }
        cache.save();
        blobs.push(blob);
    }
    let config = source.config_descriptor();
    if !destination.reuse_blob(&config, &cache.locations(&config.digest))? {
        let mut blob = destination.new_blob(Some(config.size))?;
        blob.write_all(source.config())
            .map_err(|e| into_core_error(e, |e| Error::io("<config>", e)))?;
        blob.finish(&config)?;
    }
    if let Some(location) = &location {
        cache.add_location(&config.digest, location);
        cache.save();
    }
    let (manifest, media_type) = source.manifest_for(&blobs, &|t| destination.accepts_manifest(t));
    let digest = sha256(&manifest);
    destination.commit(&ImageManifest {
        bytes: &manifest,
        media_type: &media_type,
        digest: &digest,
        config: &config,
        layers: &blobs,
        platform: platform.as_ref(),
    })?;
    copied.manifest_digest = digest;
    copied.manifest_size = manifest.len() as u64;
    progress(report);
    Ok(copied)
}

/// The blobs known to hold `layer`'s tar in `compression`, each with the places it was seen:
/// the tar itself when uncompressed; else the blobs of earlier copies, and the blob the layer
/// was pulled as (seen where the image's names point).
fn known_blobs(
    layer: &Layer,
    uncompressed: &Descriptor,
    compression: Compression,
    cache: &BlobInfoCache,
    pulled_from: &[String],
) -> Vec<(Descriptor, Vec<String>)> {
    let mut blobs = match compression {
        Compression::None => vec![uncompressed.clone()],
        _ => cache.compressed(&uncompressed.digest, compression),
    };
    let pulled = layer
        .record
        .compressed_diff_digest
        .as_deref()
        .filter(|d| is_sha256(d) && *d != uncompressed.digest)
        .filter(|_| layer.record.compression == Some(compression as i32));
    if let Some(digest) = pulled {
        if !blobs.iter().any(|b| b.digest == digest) {
            blobs.push(Descriptor {
                media_type: compression.oci_layer_media_type().into(),
                digest: digest.to_owned(),
                size: layer.record.compressed_size.unwrap_or(0).max(0) as u64,
            });
        }
    }
    blobs
        .into_iter()
        .map(|blob| {
            let mut elsewhere = cache.locations(&blob.digest);
            if Some(blob.digest.as_str()) == pulled {
                elsewhere.extend(pulled_from.iter().cloned());
            }
            (blob, elsewhere)
        })
        .collect()
}

/// `domain/repository` of each of the image's names: where its pulled blobs came from.
fn name_locations(image: &Image) -> Vec<String> {
    image
        .record
        .names
        .iter()
        .filter_map(|name| ImageName::parse(name))
        .filter_map(|name| Some(format!("{}/{}", name.domain?, name.path)))
        .collect()
}

/// Streams one layer into a new blob of `destination`, reporting its progress; returns the
/// blob's descriptor and whether it was new there.
fn copy_layer(
    store: &Store,
    layer: &Layer,
    uncompressed: &Descriptor,
    compression: Compression,
    destination: &mut dyn ImageDestination,
    mut reporting: Reporting<'_>,
) -> Result<(Descriptor, bool)> {
    let size = (compression == Compression::None).then_some(uncompressed.size);
    let mut blob = destination.new_blob(size)?;
    let mut export = |tar: &mut dyn Write| {
        let mut tar = reporting.around(tar);
        store.export_layer_to_writer(layer, &mut tar, ExportOptions::default())
    };
    let (diff_digest, digest, size) = if compression == Compression::None {
        // The blob is the tar: one hash serves as both digests.
        let mut tar = Hashing::new(&mut blob);
        export(&mut tar)?;
        let (digest, size, _) = tar.finish();
        (digest.clone(), digest, size)
    } else {
        let mut hashed_blob = Hashing::new(&mut blob);
        let mut tar = Hashing::new(compression.encoder(&mut hashed_blob)?);
        export(&mut tar)?;
        let (diff_digest, _, encoder) = tar.finish();
        encoder
            .finish()
            .map_err(|e| into_core_error(e, |e| Error::io("<output>", e)))?;
        let (digest, size, _) = hashed_blob.finish();
        (diff_digest, digest, size)
    };
    if diff_digest != uncompressed.digest {
        return Err(Error::corrupt(
            Path::new("overlay-layers").join(format!("{}.tar-split.gz", layer.id())),
            format!(
                "layer tar hashes to {diff_digest}, layers.json records {}",
                uncompressed.digest
            ),
        ));
    }
    let descriptor = Descriptor {
        media_type: compression.oci_layer_media_type().into(),
        digest,
        size,
    };
    let new = blob.finish(&descriptor)?;
    Ok((descriptor, new))
}

/// How often progress is reported while a layer streams: a multi-GB layer moves the bar.
const PROGRESS_BYTES: u64 = 32 << 20;

/// The progress of the layer being copied, and where it goes.
struct Reporting<'p> {
    report: Progress,
    progress: &'p mut dyn FnMut(Progress),
    unreported: u64,
}

impl<'p> Reporting<'p> {
    /// A writer into `inner` that counts what passes and reports every [`PROGRESS_BYTES`].
    fn around<'a>(&'a mut self, inner: &'a mut dyn Write) -> ReportingWriter<'a, 'p> {
        ReportingWriter {
            reporting: self,
            inner,
        }
    }
}

struct ReportingWriter<'a, 'p> {
    reporting: &'a mut Reporting<'p>,
    inner: &'a mut dyn Write,
}

impl Write for ReportingWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let reporting = &mut *self.reporting;
        reporting.report.bytes += n as u64;
        reporting.unreported += n as u64;
        if reporting.unreported >= PROGRESS_BYTES {
            reporting.unreported = 0;
            (reporting.progress)(reporting.report);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
