//! A registry (`docker://host/repository[:tag|@digest]`) as an image source, over the OCI
//! distribution API (`/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`).
//!
//! The manifest is stored as the registry serves it, so its digest — and the image skopeo would
//! pull — is the same. A manifest list or OCI index is resolved to this machine's platform, as
//! podman pulls. Anonymous bearer tokens (`WWW-Authenticate: Bearer realm=…`) are fetched when a
//! registry asks for one; credentials are not read. `insecure` speaks plain HTTP, as
//! `--tls-verify=false` lets skopeo do with a local registry.

use std::io::Read;

use serde_json::Value;

use crate::digest::{is_sha256, sha256};
use crate::error::{Error, Result};
use crate::store::names::ImageName;
use crate::transport::{host_platform, read_limited, ImageSource};

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// An image in a registry.
pub struct Registry {
    agent: ureq::Agent,
    base: String,
    repository: String,
    token: Option<String>,
    manifest: Vec<u8>,
}

impl Registry {
    /// Resolves `reference` (what follows `docker://`) to one image manifest.
    pub fn open(reference: &str, insecure: bool) -> Result<Registry> {
        let name = ImageName::parse(reference).ok_or_else(|| {
            Error::InvalidArgument(format!("{reference:?} is not an image reference"))
        })?;
        let domain = match name.domain.as_deref() {
            None | Some("docker.io") => "registry-1.docker.io".to_owned(),
            Some(domain) => domain.to_owned(),
        };
        let repository = match name.domain.as_deref() {
            None if !name.path.contains('/') => format!("library/{}", name.path),
            _ => name.path.clone(),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        let mut registry = Registry {
            agent: config.into(),
            base: format!(
                "{}://{domain}/v2/{repository}",
                if insecure { "http" } else { "https" }
            ),
            repository,
            token: None,
            manifest: Vec::new(),
        };
        let wanted = name
            .digest
            .clone()
            .or(name.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let mut manifest = registry.fetch_manifest(&wanted)?;
        if let Some(digest) = &name.digest {
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
                    reference: format!("{reference} for {}/{}", platform.os, platform.architecture),
                })?
                .to_owned();
            manifest = registry.fetch_manifest(&instance)?;
            if sha256(&manifest) != instance {
                return Err(Error::InvalidArgument(format!(
                    "the registry served a manifest that is not {instance}"
                )));
            }
        }
        registry.manifest = manifest;
        Ok(registry)
    }

    fn fetch_manifest(&mut self, reference: &str) -> Result<Vec<u8>> {
        let url = format!("{}/manifests/{reference}", self.base);
        read_limited(self.get(&url, Some(ACCEPT))?, "manifest")
    }

    /// GETs `url`, fetching an anonymous token once if the registry asks for one.
    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Box<dyn Read + Send + 'static>> {
        for attempt in 0..2 {
            let mut request = self.agent.get(url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let Some(token) = &self.token {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            let response = request.call().map_err(|e| remote(url, e))?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                self.token = Some(self.anonymous_token(&challenge)?);
                continue;
            }
            if status == 404 {
                return Err(Error::NoImage {
                    reference: url.to_owned(),
                });
            }
            if status != 200 {
                return Err(Error::Remote {
                    code: "EREMOTE",
                    message: format!("{url}: HTTP {status}"),
                });
            }
            return Ok(Box::new(response.into_body().into_reader()));
        }
        Err(Error::Remote {
            code: "EACCES",
            message: format!("{url}: the registry refused the anonymous token"),
        })
    }

    /// The token a `Bearer realm="…",service="…",scope="…"` challenge hands out anonymously.
    fn anonymous_token(&self, challenge: &str) -> Result<String> {
        let params = challenge
            .strip_prefix("Bearer ")
            .ok_or_else(|| Error::Remote {
                code: "EACCES",
                message: format!(
                    "{}: the registry wants credentials ({challenge})",
                    self.base
                ),
            })?;
        let field = |key: &str| {
            params.split(',').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_owned())
            })
        };
        let realm = field("realm").ok_or_else(|| Error::Remote {
            code: "EREMOTE",
            message: format!("a bearer challenge without a realm: {challenge}"),
        })?;
        let mut request = self.agent.get(&realm);
        if let Some(service) = field("service") {
            request = request.query("service", &service);
        }
        let scope =
            field("scope").unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let response = request
            .query("scope", &scope)
            .call()
            .map_err(|e| remote(&realm, e))?;
        let body = read_limited(response.into_body().into_reader(), "token")?;
        let json: Value = serde_json::from_slice(&body).unwrap_or_default();
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Remote {
                code: "EREMOTE",
                message: format!("{realm} gave no token"),
            })
    }
}

fn remote(url: &str, e: ureq::Error) -> Error {
    Error::Remote {
        code: "EREMOTE",
        message: format!("{url}: {e}"),
    }
}

impl ImageSource for Registry {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if !is_sha256(digest) {
            return Err(Error::InvalidArgument(format!(
                "{digest:?} is not a sha256 digest"
            )));
        }
        let url = format!("{}/blobs/{digest}", self.base);
        Ok(self.get(&url, None)?)
    }
}
