//! Images: the records of `overlay-images/images.json` and their big-data files (manifest,
//! config, signatures).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::layers::{is_unset, parent_chain, Layer};
use crate::store::lock::read_lock;
use crate::store::{is_valid_id, read_json_records, read_metadata_file, Store};

/// A record of `images.json`, field names as containers/storage writes them, serialized in
/// Go's order with its `omitempty`s; unknown fields are kept in `extra` so a rewrite loses
/// nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageRecord {
    pub id: String,
    #[serde(skip_serializing_if = "is_unset")]
    pub digest: Option<String>,
    /// Newer containers/storage writes this list; 1.43 derives it from `digest` and the manifest
    /// big data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names_history: Vec<String>,
    /// The top layer; absent for an image with no layers.
    #[serde(skip_serializing_if = "is_unset")]
    pub layer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapped_layers: Vec<String>,
    #[serde(skip_serializing_if = "is_unset")]
    pub metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub big_data_names: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub big_data_sizes: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub big_data_digests: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub flags: serde_json::Map<String, serde_json::Value>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An image of the store, with where it lives.
#[derive(Debug, Clone)]
pub struct Image {
    pub record: ImageRecord,
    /// Index into [`Store::dirs`]: 0 is the main store.
    pub store_index: usize,
    pub read_only: bool,
}

impl Image {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Every digest the image is known by: `digest` first, then `digests`, without repeats.
    pub fn all_digests(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.record
            .digest
            .iter()
            .chain(self.record.digests.iter())
            .map(String::as_str)
            .filter(|d| !d.is_empty() && seen.insert(*d))
            .collect()
    }
}

/// OS, architecture and variant of an image, from its config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform an image config declares.
    pub fn of_config(config: &serde_json::Value) -> Platform {
        Platform {
            os: json_str(config, "os").unwrap_or_default(),
            architecture: json_str(config, "architecture").unwrap_or_default(),
            variant: json_str(config, "variant"),
        }
    }
}

/// Everything `cstor image inspect` shows: the record plus what its big data and layers say.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub image: Image,
    pub manifest: serde_json::Value,
    pub config: serde_json::Value,
    pub platform: Platform,
    /// The image's layers, top first, base last.
    pub layers: Vec<Layer>,
    /// Bytes of layer content plus big data, as podman's image size counts it.
    pub size: i64,
}

const IMAGES_DIR: &str = "overlay-images";
const MANIFEST_KEY: &str = "manifest";

/// The file name containers/storage stores a big-data item under: the key itself when every byte
/// is in `[.0-9a-z]`, otherwise `=` followed by the standard base64 of the key, so that keys such
/// as `sha256:…` never put a `:` or `/` into a file name.
pub fn big_data_file_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_owned()
    } else {
        format!(
            "={}",
            base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
        )
    }
}

impl Store {
    /// Every image of the main store and the additional image stores; an ID present in several
    /// stores is reported once, from the first.
    pub fn images(&self) -> Result<Vec<Image>> {
        let mut seen = HashSet::new();
        let mut images = Vec::new();
        for (index, store_dir) in self.dirs().iter().enumerate() {
            let dir = &store_dir.dir;
            let _guard = read_lock(dir, Path::new("overlay-images/images.lock"))?;
            let path = Path::new(IMAGES_DIR).join("images.json");
            for record in read_json_records::<ImageRecord>(dir, &path)? {
                if !is_valid_id(&record.id) {
                    return Err(Error::corrupt(
                        &path,
                        format!("image ID {:?} is not a valid ID", record.id),
                    ));
                }
                if seen.insert(record.id.clone()) {
                    images.push(Image {
                        record,
                        store_index: index,
                        read_only: store_dir.read_only,
                    });
                }
            }
        }
        Ok(images)
    }

    /// One big-data item of an image, read under the images lock.
    pub fn image_big_data(&self, image: &Image, key: &str) -> Result<Vec<u8>> {
        required(image, key, self.image_big_data_if_present(image, key)?)
    }

    /// One big-data item of an image, `None` when its file is missing.
    pub(crate) fn image_big_data_if_present(
        &self,
        image: &Image,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        let dir = &self.dir(image.store_index).dir;
        let _guard = read_lock(dir, Path::new("overlay-images/images.lock"))?;
        self.big_data_held(image, key)
    }

    /// One big-data item, read by a caller that holds the images lock already (a write
    /// transaction: taking it again in this process would wait for ourselves).
    fn big_data_held(&self, image: &Image, key: &str) -> Result<Option<Vec<u8>>> {
        read_metadata_file(&self.dir(image.store_index).dir, &big_data_path(image, key))
    }

    /// The image's own manifest (the `manifest` big-data item).
    pub fn image_manifest(&self, image: &Image) -> Result<serde_json::Value> {
        big_data_json(image, MANIFEST_KEY, &|key| {
            self.image_big_data_if_present(image, key)
        })
    }

    /// The image's config (see [`config_key`] for how it is found).
    pub fn image_config(&self, image: &Image) -> Result<serde_json::Value> {
        let read = |key: &str| self.image_big_data_if_present(image, key);
        let key = config_key(image, &read)?;
        big_data_json(image, &key, &read)
    }

    /// [`Store::image_config`] for a caller that holds the images lock (a write transaction).
    pub(crate) fn image_config_held(&self, image: &Image) -> Result<serde_json::Value> {
        let read = |key: &str| self.big_data_held(image, key);
        let key = config_key(image, &read)?;
        big_data_json(image, &key, &read)
    }

    /// The config exactly as stored, with its digest (which is its big-data key).
    pub fn image_config_bytes(&self, image: &Image) -> Result<(String, Vec<u8>)> {
        let key = config_key(image, &|key| self.image_big_data_if_present(image, key))?;
        let bytes = self.image_big_data(image, &key)?;
        Ok((key, bytes))
    }

    /// Layers of an image, top first, base last, through `parent` links.
    pub fn image_layers(&self, image: &Image) -> Result<Vec<Layer>> {
        let layers = self.layers()?;
        let by_id: HashMap<&str, &Layer> = layers.iter().map(|l| (l.id(), l)).collect();
        image_chain(&by_id, image)
    }

    /// The size of each image as podman reports it, loading the layers once for all of them.
    pub fn image_sizes(&self, images: &[Image]) -> Result<Vec<i64>> {
        let layers = self.layers()?;
        let by_id: HashMap<&str, &Layer> = layers.iter().map(|l| (l.id(), l)).collect();
        images
            .iter()
            .map(|image| Ok(image_size(image, &image_chain(&by_id, image)?)))
            .collect()
    }

    /// Manifest, config, platform, layers and size of an image in one call.
    pub fn inspect_image(&self, image: &Image) -> Result<ImageDetails> {
        let manifest = self.image_manifest(image)?;
        let config = self.image_config(image)?;
        let layers = self.image_layers(image)?;
        let platform = Platform::of_config(&config);
        Ok(ImageDetails {
            image: image.clone(),
            manifest,
            config,
            platform,
            size: image_size(image, &layers),
            layers,
        })
    }
}

/// A big-data item the image's record names, which must be there.
fn required(image: &Image, key: &str, bytes: Option<Vec<u8>>) -> Result<Vec<u8>> {
    bytes.ok_or_else(|| {
        Error::corrupt(
            big_data_path(image, key),
            format!("image {} has no big-data item {key:?}", image.id()),
        )
    })
}

/// Reads a big-data item of one image, `None` when its file is missing.
type BigDataReader<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>> + 'a;

/// The key of the image's config, found through its manifest's `config.digest`, never by
/// assuming that the image ID is the config digest. When `manifest` is a list, the per-instance
/// `manifest-<digest>` items are tried in order.
fn config_key(image: &Image, read: &BigDataReader<'_>) -> Result<String> {
    let manifest = big_data_json(image, MANIFEST_KEY, read)?;
    if let Some(digest) = config_digest(&manifest) {
        return Ok(digest.to_owned());
    }
    for key in &image.record.big_data_names {
        if !key.starts_with("manifest-") {
            continue;
        }
        let instance = big_data_json(image, key, read)?;
        if let Some(digest) = config_digest(&instance) {
            if image.record.big_data_names.iter().any(|k| k == digest) {
                return Ok(digest.to_owned());
            }
        }
    }
    Err(Error::corrupt(
        big_data_path(image, MANIFEST_KEY),
        format!(
            "image {} has no manifest naming a stored config",
            image.id()
        ),
    ))
}

fn big_data_json(image: &Image, key: &str, read: &BigDataReader<'_>) -> Result<serde_json::Value> {
    let bytes = required(image, key, read(key)?)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(big_data_path(image, key), e.to_string()))
}

fn image_chain(by_id: &HashMap<&str, &Layer>, image: &Image) -> Result<Vec<Layer>> {
    let Some(top) = image.record.layer.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    parent_chain(by_id, top).map_err(|e| match e {
        Error::NoLayer { reference } => Error::corrupt(
            Path::new(IMAGES_DIR).join("images.json"),
            format!(
                "image {} names top layer {reference}, which does not exist",
                image.id()
            ),
        ),
        other => other,
    })
}

/// Layer bytes (uncompressed) plus big-data bytes: the sum podman shows as an image's size.
fn image_size(image: &Image, chain: &[Layer]) -> i64 {
    let layer_bytes: i64 = chain.iter().filter_map(|l| l.record.diff_size).sum();
    let big_data_bytes: i64 = image.record.big_data_sizes.values().sum();
    layer_bytes + big_data_bytes
}

/// Where an image's big-data item lives, relative to its store.
pub(crate) fn big_data_path(image: &Image, key: &str) -> PathBuf {
    Path::new(IMAGES_DIR)
        .join(image.id())
        .join(big_data_file_name(key))
}

fn config_digest(manifest: &serde_json::Value) -> Option<&str> {
    manifest.get("config")?.get("digest")?.as_str()
}

fn json_str(value: &serde_json::Value, key: &str) -> Option<String> {
    value.get(key)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_data_names_match_containers_storage() {
        assert_eq!(big_data_file_name("manifest"), "manifest");
        // Both taken from a store written by podman 4.3.
        assert_eq!(
            big_data_file_name(
                "sha256:c3547b71949eff30c4ac3cf8b704c0d68a41c900259398b83d1010d3084dab01"
            ),
            "=c2hhMjU2OmMzNTQ3YjcxOTQ5ZWZmMzBjNGFjM2NmOGI3MDRjMGQ2OGE0MWM5MDAyNTkzOThiODNkMTAxMGQzMDg0ZGFiMDE="
        );
        assert_eq!(
            big_data_file_name(
                "signature-18f603268038e635c1dc3cc8d71728adba001c06be2d9457a8fc1bb80a69a375"
            ),
            "=c2lnbmF0dXJlLTE4ZjYwMzI2ODAzOGU2MzVjMWRjM2NjOGQ3MTcyOGFkYmEwMDFjMDZiZTJkOTQ1N2E4ZmMxYmI4MGE2OWEzNzU="
        );
    }
}
