//! The store as a source of an image's blobs, as containers/image's `containers-storage:` source
//! offers them: the config byte for byte (its digest is the image ID, so every copy keeps the
//! ID), each layer as the export engine rebuilds it — the uncompressed tar, named by its diff
//! digest — and a manifest naming exactly those blobs.
//!
//! The store keeps no compressed blobs. The manifest podman stored is offered as it is when the
//! blobs it names are those very tars (images podman built, or pulled from an uncompressed
//! layout or a docker-archive), so the image keeps its manifest digest; otherwise a new OCI
//! manifest is made for them, the same bytes every time, so its digest is stable.

use std::io::{Cursor, Read};

use serde_json::{json, Value};

use crate::content::compression::Compression;
use crate::content::reader::LayerReader;
use crate::digest::{is_sha256, sha256};
use crate::error::{Error, Result};
use crate::store::images::{Image, Platform};
use crate::store::layers::Layer;
use crate::store::Store;
use crate::transport::{
    manifest_media_type, Descriptor, ImageSource, OCI_CONFIG_TYPE, OCI_MANIFEST_TYPE,
};

/// An image of the store, read as a source of blobs.
pub struct StoreSource<'s> {
    store: &'s Store,
    image: Image,
    config: Vec<u8>,
    config_digest: String,
    /// Base first.
    layers: Vec<Layer>,
    /// The stored manifest, when every blob it names is one this source serves byte for byte.
    stored_manifest: Option<(Vec<u8>, String)>,
}

impl<'s> StoreSource<'s> {
    /// Reads the image's config (checked against its digest) and layer chain.
    pub fn open(store: &'s Store, image: &Image) -> Result<StoreSource<'s>> {
        let (config_digest, config) = store.image_config_bytes(image)?;
        if sha256(&config) != config_digest {
            return Err(Error::corrupt(
                format!("image {} config", image.id()),
                format!(
                    "config hashes to {}, stored as {config_digest}",
                    sha256(&config)
                ),
            ));
        }
        let mut layers = store.image_layers(image)?;
        layers.reverse();
        for layer in &layers {
            if !layer.record.diff_digest.as_deref().is_some_and(is_sha256) {
                return Err(Error::corrupt(
                    "overlay-layers/layers.json",
                    format!("layer {} has no diff digest", layer.id()),
                ));
            }
        }
        let mut source = StoreSource {
            store,
            image: image.clone(),
            config,
            config_digest,
            layers,
            stored_manifest: None,
        };
        source.stored_manifest = store
            .image_big_data_if_present(image, "manifest")?
            .and_then(|bytes| {
                let media_type = source.servable(&bytes)?;
                Some((bytes, media_type))
            });
        Ok(source)
    }

    pub fn store(&self) -> &'s Store {
        self.store
    }

    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Refuses an image whose platform is not `wanted` (`os/arch[/variant]`). A store keeps the
    /// layers of the one platform podman pulled from a manifest list, so a copy checks rather
    /// than selects.
    pub fn check_platform(&self, wanted: &str) -> Result<()> {
        let have = self.platform().map(|p| {
            let mut name = format!("{}/{}", p.os, p.architecture);
            if let Some(variant) = &p.variant {
                name = format!("{name}/{variant}");
            }
            name
        });
        let matches = have.as_deref().is_some_and(|have| {
            have == wanted
                || (wanted.matches('/').count() == 1 && have.starts_with(&format!("{wanted}/")))
        });
        if matches {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "image {} is {}, not {wanted}: the store holds one platform's layers per image",
            self.image.id(),
            have.as_deref().unwrap_or("of no stated platform")
        )))
    }

    /// The config exactly as stored.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    pub fn config_descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: OCI_CONFIG_TYPE.into(),
            digest: self.config_digest.clone(),
            size: self.config.len() as u64,
        }
    }

    /// The platform the config declares, when it is JSON.
    pub fn platform(&self) -> Option<Platform> {
        serde_json::from_slice(&self.config)
            .map(|config| Platform::of_config(&config))
            .ok()
    }

    /// The image's layers, base first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// A layer's tar as this source serves it: uncompressed, named by its diff digest.
    pub fn layer_descriptor(layer: &Layer) -> Descriptor {
        Descriptor {
            media_type: Compression::None.oci_layer_media_type().into(),
            digest: layer.record.diff_digest.clone().unwrap_or_default(),
            size: layer.record.diff_size.unwrap_or(0).max(0) as u64,
        }
    }

    /// The layer whose tar is the blob `digest`, if any.
    pub fn layer_of_blob(&self, digest: &str) -> Option<&Layer> {
        self.layers
            .iter()
            .find(|l| l.record.diff_digest.as_deref() == Some(digest))
    }

    /// The manifest naming these layer blobs (base first) and the config, with its media type:
    /// the stored one when it names exactly these blobs and its type is `accepted`, else a new
    /// OCI manifest.
    pub fn manifest_for(
        &self,
        layers: &[Descriptor],
        accepted: &dyn Fn(&str) -> bool,
    ) -> (Vec<u8>, String) {
        let uncompressed: Vec<Descriptor> =
            self.layers.iter().map(Self::layer_descriptor).collect();
        if let Some((bytes, media_type)) = &self.stored_manifest {
            if same_blobs(layers, &uncompressed) && accepted(media_type) {
                return (bytes.clone(), media_type.clone());
            }
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_TYPE,
            "config": self.config_descriptor().to_json(),
            "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        (manifest.to_string().into_bytes(), OCI_MANIFEST_TYPE.into())
    }

    /// The stored manifest's media type when the blobs it names are the config and the layer
    /// tars in order (digests and sizes); media types may differ — containers/image's
    /// docker-archive source names uncompressed tars `tar.gzip`, and its readers go by content.
    fn servable(&self, bytes: &[u8]) -> Option<String> {
        let manifest: Value = serde_json::from_slice(bytes).ok()?;
        let config = manifest.get("config")?;
        let same_config = config.get("digest")?.as_str()? == self.config_digest
            && config.get("size")?.as_u64()? == self.config.len() as u64;
        let layers = manifest
            .get("layers")?
            .as_array()?
            .iter()
            .map(|l| {
                Some(Descriptor {
                    media_type: String::new(),
                    digest: l.get("digest")?.as_str()?.to_owned(),
                    size: l.get("size")?.as_u64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let uncompressed: Vec<Descriptor> =
            self.layers.iter().map(Self::layer_descriptor).collect();
        (same_config && same_blobs(&layers, &uncompressed))
            .then(|| manifest_media_type(&manifest).to_owned())
    }
}

/// Whether two lists of descriptors name the same blobs, whatever their media types say.
fn same_blobs(a: &[Descriptor], b: &[Descriptor]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.digest == b.digest && a.size == b.size)
}

impl ImageSource for StoreSource<'_> {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        let layers: Vec<Descriptor> = self.layers.iter().map(Self::layer_descriptor).collect();
        Ok(self.manifest_for(&layers, &|_| true).0)
    }

    /// The config, or a layer's tar as the export rebuilds it; whoever reads it checks the
    /// digest (a pull does, against the manifest).
    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if digest == self.config_digest {
            return Ok(Box::new(Cursor::new(self.config.as_slice())));
        }
        let layer = self.layer_of_blob(digest).ok_or_else(|| {
            Error::InvalidArgument(format!("image {} has no blob {digest}", self.image.id()))
        })?;
        Ok(Box::new(LayerReader::new(self.store.layer_parts(layer)?)))
    }
}
