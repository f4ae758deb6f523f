//! Pulling an image into the store, writing what the `containers-storage:` destination of
//! podman 5.8 and skopeo 1.22 writes for the same source: the same layer IDs (a base layer's ID is its diff ID's hex, a
//! child's is `sha256(parentID + "+" + diffIDhex)`), the same records and the same image ID (the
//! config digest's hex), the manifest stored byte for byte with its digest.
//!
//! Sources implement [`ImageSource`]: an OCI layout here ([`OciLayout`]), a docker-archive tar in
//! [`crate::docker_archive`], a root filesystem tar in [`crate::tarball`]. Layers the store
//! already has (by chain ID, in any of its stores) are not fetched again. Each layer is a separate write under the layers lock, as with skopeo,
//! so podman is never blocked for the whole pull; the image record comes last, so a pull killed
//! midway leaves no image, only complete layers that the next pull reuses.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::image_write::{Created, NewImage};
use crate::images::Platform;
use crate::layer_create::NewLayer;
use crate::progress::Progress;
use crate::store::Store;

/// The largest manifest, config or index a source may hand over.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// Where an image comes from.
pub trait ImageSource {
    /// The manifest (not a list: sources pick the platform) as stored at the source.
    fn manifest(&mut self) -> Result<Vec<u8>>;
    /// A blob (config or layer) by digest, with its size when known.
    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>>;
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image_id: String,
    /// The layer IDs, base first.
    pub layers: Vec<String>,
    /// How many layers were written (the others were in the store already).
    pub layers_written: usize,
    /// Whether an image with this ID was there already (it got the name).
    pub existed: bool,
}

impl Store {
    /// Pulls the image `source` offers into the store, naming it `name` (normalized as podman
    /// does) when given.
    pub fn pull(
        &self,
        source: &mut dyn ImageSource,
        name: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Pulled> {
        let manifest_bytes = source.manifest()?;
        let manifest = parse_json(&manifest_bytes, "manifest")?;
        if manifest.get("manifests").is_some() {
            return Err(Error::InvalidArgument(
                "the source gave a manifest list where an image manifest was expected".into(),
            ));
        }
        let config_digest = descriptor_digest(manifest.get("config"), "config")?;
        let config_bytes = read_limited(source.blob(&config_digest)?, "config")?;
        check(&config_digest, &sha256(&config_bytes), "config")?;
        let config = parse_json(&config_bytes, "config")?;
        let diff_ids = diff_ids(&config);
        let blobs: Vec<String> = match manifest.get("layers").and_then(Value::as_array) {
            Some(layers) => layers
                .iter()
                .map(|l| descriptor_digest(Some(l), "layer"))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        if blobs.len() != diff_ids.len() {
            return Err(Error::InvalidArgument(format!(
                "the manifest lists {} layers but the config {} diff IDs",
                blobs.len(),
                diff_ids.len()
            )));
        }
        let sizes: Vec<u64> = manifest
            .get("layers")
            .and_then(Value::as_array)
            .map(|layers| {
                layers
                    .iter()
                    .map(|l| l.get("size").and_then(Value::as_u64).unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        let total_bytes = sizes.iter().sum();
        let mut report = Progress {
            layer: 0,
            layers: blobs.len(),
            bytes: 0,
            total_bytes,
        };
        let known: Vec<String> = self.layers()?.into_iter().map(|l| l.record.id).collect();
        let mut parent: Option<String> = None;
        let mut ids = Vec::new();
        let mut written = 0;
        for (index, (blob, diff_id)) in blobs.iter().zip(&diff_ids).enumerate() {
            let id = chain_id(parent.as_deref(), diff_id)?;
            report.layer = index;
            progress(report);
            if !known.contains(&id) {
                let new = NewLayer {
                    id: Some(id.clone()),
                    parent: parent.clone(),
                    names: Vec::new(),
                    expected_diff_digest: Some(diff_id.clone()),
                    expected_compressed_digest: Some(blob.clone()),
                };
                let reader = source.blob(blob)?;
                match self.create_layer(&new, reader) {
                    Ok(_) => written += 1,
                    // Another writer (a concurrent pull) made the same layer meanwhile.
                    Err(e) if self.layers()?.iter().any(|l| l.id() == id) => drop(e),
                    Err(e) => return Err(e),
                }
            }
            report.bytes += sizes.get(index).copied().unwrap_or(0);
            ids.push(id.clone());
            parent = Some(id);
        }
        progress(report);
        let manifest_digest = sha256(&manifest_bytes);
        let image_id = config_digest
            .strip_prefix("sha256:")
            .unwrap_or(&config_digest)
            .to_owned();
        let new = NewImage {
            id: Some(image_id.clone()),
            names: name.map(|n| vec![n.to_owned()]).unwrap_or_default(),
            top_layer: parent,
            digest: Some(manifest_digest.clone()),
            created: config
                .get("created")
                .and_then(Value::as_str)
                .map(str::to_owned),
            // containers/image 5.3x (podman 5) records no signature sizes and no empty
            // `signature-<digest>` item for an unsigned image; 5.2x (podman 4.3) did, and reads
            // both.
            metadata: Some("{}".to_owned()),
            big_data: vec![
                (config_digest.clone(), config_bytes),
                (
                    format!("manifest-{manifest_digest}"),
                    manifest_bytes.clone(),
                ),
                ("manifest".to_owned(), manifest_bytes),
            ],
        };
        let created = self.create_image(&new)?;
        Ok(Pulled {
            image_id,
            layers: ids,
            layers_written: written,
            existed: matches!(created, Created::Existing(_)),
        })
    }
}

/// Opens a source named as skopeo names it: `oci:DIR[:REF]`, `docker-archive:FILE[:REF]`,
/// `docker://REFERENCE` (over plain HTTP when `tls_verify` is off).
pub fn open_source(
    spec: &str,
    platform: Option<&Platform>,
    tls_verify: bool,
) -> Result<Box<dyn ImageSource>> {
    if let Some(reference) = spec.strip_prefix("docker://") {
        return Ok(Box::new(crate::registry::Registry::open(
            reference,
            !tls_verify,
        )?));
    }
    match spec.split_once(':') {
        Some(("docker-archive", rest)) => {
            let (file, reference) = match rest.split_once(':') {
                Some((file, reference)) if !reference.is_empty() => (file, Some(reference)),
                _ => (rest, None),
            };
            Ok(Box::new(crate::docker_archive::DockerArchive::open(
                Path::new(file),
                reference,
            )?))
        }
        Some(("oci", rest)) => {
            let (dir, reference) = match rest.split_once(':') {
                Some((dir, reference)) if !reference.is_empty() => (dir, Some(reference)),
                _ => (rest, None),
            };
            Ok(Box::new(OciLayout::open(
                Path::new(dir),
                reference,
                platform,
            )?))
        }
        _ => Err(Error::InvalidArgument(format!(
            "{spec:?}: name a source as oci:DIR[:REF], docker-archive:FILE[:REF] or docker://REFERENCE"
        ))),
    }
}

/// containers/image's layer ID for a layer of a pulled image.
fn chain_id(parent: Option<&str>, diff_id: &str) -> Result<String> {
    let hex = diff_id
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| Error::InvalidArgument(format!("{diff_id:?} is not a sha256 diff ID")))?;
    Ok(match parent {
        None => hex.to_owned(),
        Some(parent) => sha256(format!("{parent}+{hex}").as_bytes())
            .trim_start_matches("sha256:")
            .to_owned(),
    })
}

/// The layer diff IDs an image config lists (`rootfs.diff_ids`), base first.
pub(crate) fn diff_ids(config: &Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `sha256:<hex>` of `bytes`, the digest form every record and manifest uses.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn check(expected: &str, actual: &str, what: &str) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "the {what} has digest {actual}, not {expected} as the manifest says"
        )))
    }
}

fn parse_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidArgument(format!("the {what} is not JSON: {e}")))
}

fn descriptor_digest(descriptor: Option<&Value>, what: &str) -> Result<String> {
    descriptor
        .and_then(|d| d.get("digest"))
        .and_then(Value::as_str)
        .filter(|d| is_sha256(d))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::InvalidArgument(format!("the manifest's {what} has no sha256 digest"))
        })
}

pub(crate) fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub(crate) fn read_limited(reader: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(what, e))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(Error::InvalidArgument(format!(
            "the {what} is implausibly large"
        )));
    }
    Ok(bytes)
}

/// An OCI image layout directory (`oci:DIR[:REF]`), read beneath its root.
pub struct OciLayout {
    dir: Dir,
    path: PathBuf,
    manifest_digest: String,
}

impl OciLayout {
    /// Opens the layout and picks the manifest named `reference` (its
    /// `org.opencontainers.image.ref.name`), or the only one; an index is resolved for
    /// `platform` (default: this machine's linux platform).
    pub fn open(path: &Path, reference: Option<&str>, platform: Option<&Platform>) -> Result<Self> {
        let dir = Dir::open_ambient_dir(path, ambient_authority()).at(path)?;
        let index_bytes = read_limited(
            dir.open("index.json").at(path.join("index.json"))?,
            "index.json",
        )?;
        let index = parse_json(&index_bytes, "index.json")?;
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let candidates: Vec<&Value> = manifests
            .iter()
            .filter(|m| match reference {
                Some(r) => {
                    m.pointer("/annotations/org.opencontainers.image.ref.name")
                        .and_then(Value::as_str)
                        == Some(r)
                }
                None => true,
            })
            .collect();
        let chosen = match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(Error::NoImage {
                    reference: format!("oci:{}:{}", path.display(), reference.unwrap_or("")),
                })
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{} holds several images: name one (oci:DIR:NAME)",
                    path.display()
                )))
            }
        };
        let mut layout = OciLayout {
            dir,
            path: path.to_owned(),
            manifest_digest: descriptor_digest(Some(&chosen), "index entry")?,
        };
        // A nested index (a multi-platform image): pick the instance.
        let bytes = layout.manifest()?;
        let parsed = parse_json(&bytes, "manifest")?;
        if let Some(instances) = parsed.get("manifests").and_then(Value::as_array) {
            let wanted = platform.cloned().unwrap_or_else(host_platform);
            let instance = instances
                .iter()
                .find(|m| {
                    let p = m.get("platform");
                    let field = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_str);
                    field("os") == Some(wanted.os.as_str())
                        && field("architecture") == Some(wanted.architecture.as_str())
                        && (wanted.variant.is_none()
                            || field("variant") == wanted.variant.as_deref())
                })
                .ok_or_else(|| Error::NoImage {
                    reference: format!(
                        "{} for {}/{}",
                        path.display(),
                        wanted.os,
                        wanted.architecture
                    ),
                })?;
            layout.manifest_digest = descriptor_digest(Some(instance), "index entry")?;
        }
        Ok(layout)
    }

    fn blob_path(digest: &str) -> PathBuf {
        Path::new("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }
}

/// The platform podman pulls for by default on this machine.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: None,
    }
}

impl ImageSource for OciLayout {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        let digest = self.manifest_digest.clone();
        let bytes = read_limited(self.blob(&digest)?, "manifest")?;
        check(&digest, &sha256(&bytes), "manifest")?;
        Ok(bytes)
    }

    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if !is_sha256(digest) {
            return Err(Error::InvalidArgument(format!(
                "{digest:?} is not a sha256 digest"
            )));
        }
        let path = Self::blob_path(digest);
        let file = self.dir.open(&path).at(self.path.join(&path))?;
        Ok(Box::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_are_containers_image_s() {
        let base = "sha256:8e5f9b5b3228b9c5f58d045bc9a3e1c9c4d5957135927ab4817216494a8522de";
        assert_eq!(
            chain_id(None, base).unwrap(),
            "8e5f9b5b3228b9c5f58d045bc9a3e1c9c4d5957135927ab4817216494a8522de"
        );
        let child = chain_id(Some("abc"), base).unwrap();
        assert_eq!(child, sha256(format!("abc+{}", &base[7..]).as_bytes())[7..]);
        assert_eq!(chain_id(None, "md5:x").unwrap_err().code(), "EINVAL");
    }
}
