//! A registry image as a source, reached at one of the places registries.conf gives for it (a
//! mirror or the primary, [`PullSource`]): `/v2/<name>/manifests/<reference>` and
//! `/v2/<name>/blobs/<digest>`.
//!
//! The manifest is stored as the endpoint serves it, so its digest — and the image skopeo would
//! pull — is the same. A manifest list or OCI index is resolved to this machine's platform, as
//! podman pulls. Credentials, TLS and `blocked` are those of the endpoint's own reference, as
//! containers/image's `newImageSourceAttempt` looks them up. Sigstore signatures are the layers
//! of the `sha256-<digest>.sig` manifest beside the image, when registries.d enables
//! `use-sigstore-attachments` for the endpoint.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use ureq::http::Method;

use crate::digest::{is_sha256, sha256};
use crate::error::{Error, Result};
use crate::transport::registry::client::{header, unexpected, Client};
use crate::transport::registry::registries_conf::{PullSource, RegistriesConf};
use crate::transport::registry::{credentials, registries_d, Reference};
use crate::transport::signature::sigstore::Signature;
use crate::transport::system_context::SystemContext;
use crate::transport::{host_platform, read_limited, ImageSource, OCI_MANIFEST_TYPE};

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest signature payload fetched (containers/image's `MaxSignatureBodySize`).
const MAX_SIGNATURE_BYTES: u64 = 4 << 20;

/// An image in a registry.
pub struct RegistrySource {
    client: Client,
    manifest: Vec<u8>,
    sigstore_attachments: bool,
    /// Set when a request or a body read failed on the way: the endpoint went away.
    failed: Arc<AtomicBool>,
}

impl RegistrySource {
    /// Resolves `at`'s reference to one image manifest at its endpoint.
    pub fn open(
        ctx: &SystemContext,
        conf: &RegistriesConf,
        at: &PullSource,
    ) -> Result<RegistrySource> {
        let reference = Reference::parse(&at.reference)?;
        if let Some(registry) = conf.find_registry(&reference.name()) {
            if registry.blocked {
                return Err(blocked(&registry.prefix, conf));
            }
        }
        let found = credentials::find(ctx, &conf.credential_helpers, &reference.name())?;
        let sigstore_attachments = registries_d::use_sigstore_attachments(ctx, &reference)?;
        let wanted = reference.manifest_reference().to_owned();
        let digest = reference.digest.clone();
        let mut source = RegistrySource {
            client: Client::connect(ctx, reference, at.endpoint.insecure, found, false)?,
            manifest: Vec::new(),
            sigstore_attachments,
            failed: Arc::new(AtomicBool::new(false)),
        };
        let mut manifest = source.fetch_manifest(&wanted)?.0;
        if let Some(digest) = &digest {
            if &sha256(&manifest) != digest {
                return Err(Error::InvalidArgument(format!(
                    "the registry served a manifest that is not {digest}"
                )));
            }
        }
        let parsed: Value = serde_json::from_slice(&manifest)
            .map_err(|e| Error::InvalidArgument(format!("the manifest is not JSON: {e}")))?;
        if let Some(instances) = parsed.get("manifests").and_then(Value::as_array) {
            let platform = host_platform();
            let instance = instances
                .iter()
                .find(|m| {
                    let field =
                        |k: &str| m.pointer(&format!("/platform/{k}")).and_then(Value::as_str);
                    field("os") == Some(platform.os.as_str())
                        && field("architecture") == Some(platform.architecture.as_str())
                })
                .and_then(|m| m.get("digest").and_then(Value::as_str))
                .ok_or_else(|| Error::NoImage {
                    reference: format!(
                        "{} for {}/{}",
                        source.client.reference.location(),
                        platform.os,
                        platform.architecture
                    ),
                })?
                .to_owned();
            manifest = source.fetch_manifest(&instance)?.0;
            if sha256(&manifest) != instance {
                return Err(Error::InvalidArgument(format!(
                    "the registry served a manifest that is not {instance}"
                )));
            }
        }
        source.manifest = manifest;
        Ok(source)
    }

    /// Whether a request or a transfer failed after the source was opened: its endpoint went
    /// away midway (a peer that stopped), so another may serve the rest.
    pub fn failed_midway(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// A manifest and its media type.
    fn fetch_manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String)> {
        let url = self.client.url(&format!("manifests/{reference}"));
        let response = self
            .client
            .send(Method::GET, &url, &[("Accept", ACCEPT)], &[])?;
        if response.status().as_u16() != 200 {
            return Err(unexpected(&url, response));
        }
        let media_type = header(&response, "content-type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let body = read_limited(response.into_body().into_reader(), "manifest")?;
        Ok((body, media_type))
    }

    fn get(&mut self, url: &str) -> Result<Box<dyn Read + Send>> {
        let response = self.client.send(Method::GET, url, &[], &[])?;
        if response.status().as_u16() != 200 {
            return Err(unexpected(url, response));
        }
        Ok(Box::new(response.into_body().into_reader()))
    }
}

impl ImageSource for RegistrySource {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if !is_sha256(digest) {
            return Err(Error::InvalidArgument(format!(
                "{digest:?} is not a sha256 digest"
            )));
        }
        let url = self.client.url(&format!("blobs/{digest}"));
        match self.get(&url) {
            Ok(inner) => Ok(Box::new(Watched {
                inner,
                failed: self.failed.clone(),
            })),
            Err(e) => {
                if e.code() == "EREMOTE" {
                    self.failed.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// The sigstore attachments of the manifest (`sha256-<hex>.sig`, an OCI manifest whose
    /// layers are payloads with the signature in an annotation), as
    /// `appendSignaturesFromSigstoreAttachments`: none when the tag does not exist.
    fn sigstore_signatures(&mut self) -> Result<Vec<Signature>> {
        if !self.sigstore_attachments {
            return Ok(Vec::new());
        }
        let digest = sha256(&self.manifest);
        let tag = format!("{}.sig", digest.replacen(':', "-", 1));
        let (manifest, media_type) = match self.fetch_manifest(&tag) {
            Ok(found) => found,
            Err(e) if e.code() == "ENOIMAGE" => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if media_type != OCI_MANIFEST_TYPE {
            return Err(Error::InvalidArgument(format!(
                "the sigstore attachment manifest {tag} has the MIME type {media_type:?}"
            )));
        }
        let manifest: Value = serde_json::from_slice(&manifest).map_err(|e| {
            Error::InvalidArgument(format!("the sigstore attachment manifest {tag}: {e}"))
        })?;
        let mut signatures = Vec::new();
        let layers = manifest.get("layers").and_then(Value::as_array);
        for layer in layers.into_iter().flatten() {
            let field = |k: &str| layer.get(k).and_then(Value::as_str).unwrap_or("");
            let digest = field("digest");
            if !is_sha256(digest) {
                return Err(Error::InvalidArgument(format!(
                    "a sigstore attachment of {tag} has the digest {digest:?}"
                )));
            }
            let url = self.client.url(&format!("blobs/{digest}"));
            let mut payload = Vec::new();
            self.get(&url)?
                .take(MAX_SIGNATURE_BYTES + 1)
                .read_to_end(&mut payload)
                .map_err(|e| Error::io(&url, e))?;
            if payload.len() as u64 > MAX_SIGNATURE_BYTES || sha256(&payload) != digest {
                return Err(Error::InvalidArgument(format!(
                    "the sigstore attachment {digest} of {tag} is not what its digest says"
                )));
            }
            let annotations = layer
                .get("annotations")
                .and_then(Value::as_object)
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            signatures.push(Signature {
                media_type: field("mediaType").to_owned(),
                payload,
                annotations,
            });
        }
        Ok(signatures)
    }
}

/// A blob body that records a failed read: the endpoint went away midway.
struct Watched {
    inner: Box<dyn Read + Send>,
    failed: Arc<AtomicBool>,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })
    }
}

/// containers/image's refusal of a `blocked` registry.
pub(crate) fn blocked(prefix: &str, conf: &RegistriesConf) -> Error {
    let files: Vec<String> = conf.files.iter().map(|f| f.display().to_string()).collect();
    Error::Remote {
        code: "EACCES",
        message: format!("registry {prefix} is blocked in {}", files.join(", ")),
    }
}
