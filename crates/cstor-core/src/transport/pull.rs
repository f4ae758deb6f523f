//! Pulling an image into the store, writing what the `containers-storage:` destination of
//! podman 5.8 and skopeo 1.22 writes for the same source: the same layer IDs (a base layer's ID is its diff ID's hex, a
//! child's is `sha256(parentID + "+" + diffIDhex)`), the same records and the same image ID (the
//! config digest's hex), the manifest stored byte for byte with its digest.
//!
//! Sources implement [`ImageSource`]: an OCI layout here ([`OciLayout`]), a docker-archive tar in
//! [`crate::transport::docker_archive`], a root filesystem tar in [`crate::transport::tarball`]. Layers the store
//! already has (by chain ID, in any of its stores) are not fetched again. Each layer is a separate write under the layers lock, as with skopeo,
//! so podman is never blocked for the whole pull; the image record comes last, so a pull killed
//! midway leaves no image, only complete layers that the next pull reuses.

use std::path::Path;

use serde_json::Value;

use crate::digest::{check, sha256};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::images::Platform;
use crate::store::Store;
use crate::transport::registry::registries_conf::RegistriesConf;
use crate::transport::registry::{short_names, Reference, RegistrySource};
use crate::transport::signature::policy::Policy;
use crate::transport::signature::PolicyImage;
use crate::transport::system_context::SystemContext;
use crate::transport::tarball::Tarball;
use crate::transport::{
    descriptor_digest, diff_ids, open_local_source, parse_json, read_limited, ImageSource,
    SourceSpec,
};
use crate::write::image::{Created, NewImage};
use crate::write::layer::NewLayer;

/// What a pull did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "PullResult")]
pub struct Pulled {
    pub image_id: String,
    /// The layer IDs, base first.
    pub layers: Vec<String>,
    /// How many layers were written (the others were in the store already).
    pub layers_written: usize,
    /// Whether an image with this ID was there already (it got the name).
    pub existed: bool,
}

/// How to pull: the name to give the image, the platform to pick from a list, and the user's
/// registry configuration and policy.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The name the image gets; a registry image is named as pulled when absent, as podman
    /// names it.
    pub name: Option<String>,
    pub platform: Option<Platform>,
    pub context: SystemContext,
}

impl Store {
    /// Pulls what `spec` names, as podman pulls it: a name without a transport is a registry
    /// image resolved as a short name ([`short_names`]), each candidate tried in turn; a
    /// registry image comes from the places registries.conf gives (mirrors first); every image
    /// is judged by the signature policy before anything but its manifest (and signatures) is
    /// fetched, and nothing is written before the verdict.
    ///
    /// A mirror that fails once the pull has started (a peer that stopped) is left for the
    /// next place — where containers/image would fail the pull — and the layers it delivered
    /// stay, so the rest comes from the next.
    pub fn pull_image(
        &self,
        spec: &str,
        options: &PullOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Pulled> {
        let ctx = &options.context;
        let policy = Policy::load(ctx)?;
        let candidates = match SourceSpec::parse(spec)? {
            SourceSpec::Local {
                transport,
                path,
                name,
            } => {
                let mut source =
                    open_local_source(transport, path, name, options.platform.as_ref())?;
                let image = match transport {
                    "oci" => PolicyImage::oci(path, spec),
                    _ => PolicyImage::unscoped("docker-archive", spec),
                };
                policy.check(&image, source.as_mut())?;
                return self.pull(source.as_mut(), options.name.as_deref(), progress);
            }
            SourceSpec::Docker(reference) => (reference, false),
            SourceSpec::Name(name) => (name, true),
        };
        let conf = RegistriesConf::load(ctx)?;
        let candidates = match candidates {
            (name, true) => short_names::resolve(name, &conf)?.candidates,
            (reference, false) => vec![Reference::parse(reference)?.policy_identity()],
        };
        let mut errors = Vec::new();
        for candidate in &candidates {
            match self.pull_from_registry(candidate, &conf, &policy, options, progress) {
                Ok(pulled) => return Ok(pulled),
                // A refusal by policy or configuration ends the pull, as it ends podman's.
                Err(e) if candidates.len() == 1 || e.code() == "EUNSUPPORTED" => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        let code = match errors.iter().all(|e| e.code() == errors[0].code()) {
            true => errors[0].code(),
            false => "EREMOTE",
        };
        let listed: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        Err(Error::Remote {
            code,
            message: format!(
                "{} errors occurred while pulling:\n * {}",
                errors.len(),
                listed.join("\n * ")
            ),
        })
    }

    /// `podman import`: the root filesystem tar at `path` as a one-layer image, judged first by
    /// the policy's `tarball` transport (whose images have no scope but `""`), as podman's
    /// import is.
    pub fn import_tarball(
        &self,
        path: &Path,
        options: &PullOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Pulled> {
        let policy = Policy::load(&options.context)?;
        let mut source = Tarball::open(path)?;
        let display = format!("tarball:{}", path.display());
        policy.check(&PolicyImage::unscoped("tarball", &display), &mut source)?;
        self.pull(&mut source, options.name.as_deref(), progress)
    }

    /// One fully qualified reference, from each of its places in turn (`newImageSource`).
    fn pull_from_registry(
        &self,
        candidate: &str,
        conf: &RegistriesConf,
        policy: &Policy,
        options: &PullOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Pulled> {
        let logical = Reference::parse(candidate)?;
        let image = PolicyImage::docker(&logical);
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| image.identity.clone());
        let places = conf.pull_sources(candidate)?;
        let mut failures: Vec<(String, Error)> = Vec::new();
        for place in &places {
            let mut source = match RegistrySource::open(&options.context, conf, place) {
                Ok(source) => source,
                Err(e) => {
                    failures.push((place.reference.clone(), e));
                    continue;
                }
            };
            policy.check(&image, &mut source)?;
            match self.pull(&mut source, Some(&name), progress) {
                Ok(pulled) => return Ok(pulled),
                Err(e) if place.mirror && source.failed_midway() => {
                    failures.push((place.reference.clone(), e))
                }
                Err(e) => return Err(e),
            }
        }
        let (primary, error) = failures
            .pop()
            .ok_or_else(|| Error::InvalidArgument(format!("no place to pull {candidate} from")))?;
        if failures.is_empty() {
            return Err(error);
        }
        let mirrors: Vec<String> = failures
            .iter()
            .map(|(reference, e)| format!("[{reference}: {e}]"))
            .collect();
        Err(Error::Remote {
            code: error.code(),
            message: format!(
                "(Mirrors also failed: {}): {primary}: {error}",
                mirrors.join("\n")
            ),
        })
    }

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
