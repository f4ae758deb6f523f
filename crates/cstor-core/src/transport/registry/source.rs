//! A registry image as a source (`docker://host/repository[:tag|@digest]`):
//! `/v2/<name>/manifests/<reference>` and `/v2/<name>/blobs/<digest>`.
//!
//! The manifest is stored as the registry serves it, so its digest — and the image skopeo would
//! pull — is the same. A manifest list or OCI index is resolved to this machine's platform, as
//! podman pulls. Credentials are those podman would use ([`super::credentials`]).

use std::io::Read;

use serde_json::Value;
use ureq::http::Method;

use crate::digest::{is_sha256, sha256};
use crate::error::{Error, Result};
use crate::transport::registry::client::{unexpected, Client};
use crate::transport::registry::Reference;
use crate::transport::{host_platform, read_limited, ImageSource};

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// An image in a registry.
pub struct RegistrySource {
    client: Client,
    manifest: Vec<u8>,
}

impl RegistrySource {
    /// Resolves `reference` (what follows `docker://`) to one image manifest; `insecure` speaks
    /// plain HTTP.
    pub fn open(reference: &str, insecure: bool) -> Result<RegistrySource> {
        let reference = Reference::parse(reference)?;
        let wanted = reference.manifest_reference().to_owned();
        let digest = reference.digest.clone();
        let mut source = RegistrySource {
            client: Client::new(reference, insecure, false)?,
            manifest: Vec::new(),
        };
        let mut manifest = source.fetch_manifest(&wanted)?;
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
            manifest = source.fetch_manifest(&instance)?;
            if sha256(&manifest) != instance {
                return Err(Error::InvalidArgument(format!(
                    "the registry served a manifest that is not {instance}"
                )));
            }
        }
        source.manifest = manifest;
        Ok(source)
    }

    fn fetch_manifest(&mut self, reference: &str) -> Result<Vec<u8>> {
        let url = self.client.url(&format!("manifests/{reference}"));
        read_limited(self.get(&url, &[("Accept", ACCEPT)])?, "manifest")
    }

    fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> Result<Box<dyn Read + Send>> {
        let response = self.client.send(Method::GET, url, headers, &[])?;
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
        Ok(self.get(&url, &[])?)
    }
}
