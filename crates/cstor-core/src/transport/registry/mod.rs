//! A registry (`docker://host/repository[:tag|@digest]`) over the OCI distribution API, both
//! ways: [`source`] pulls an image, [`destination`] pushes one. [`client`] speaks HTTP with the
//! registry's authentication (basic, bearer tokens); [`credentials`] finds the user's
//! credentials where podman and skopeo look.

mod client;
pub mod credentials;
mod destination;
mod source;

pub use destination::RegistryDestination;
pub use source::RegistrySource;

use crate::error::{Error, Result};
use crate::store::names::ImageName;

/// What follows `docker://`, split for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as named (`docker.io`, `localhost:5000`): what credentials are stored under.
    pub domain: String,
    /// The host the API lives on (`registry-1.docker.io` for `docker.io`).
    pub host: String,
    /// The repository (`library/alpine` for Docker Hub's official images).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference as containers/image's `docker://` transport does: no domain is
    /// Docker Hub, whose one-component names live in `library/`.
    pub fn parse(reference: &str) -> Result<Reference> {
        let name = ImageName::parse(reference).ok_or_else(|| {
            Error::InvalidArgument(format!("{reference:?} is not an image reference"))
        })?;
        let domain = name.domain.clone().unwrap_or_else(|| "docker.io".into());
        let host = match domain.as_str() {
            "docker.io" => "registry-1.docker.io".to_owned(),
            other => other.to_owned(),
        };
        let repository = match name.domain.as_deref() {
            None if !name.path.contains('/') => format!("library/{}", name.path),
            _ => name.path.clone(),
        };
        Ok(Reference {
            domain,
            host,
            repository,
            tag: name.tag,
            digest: name.digest,
        })
    }

    /// `domain/repository`: where a blob was seen, for a later cross-repository mount.
    pub fn location(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// The tag, or the digest, or `latest`: what a manifest is fetched or stored under.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_containers_image_splits_them() {
        let hub = Reference::parse("alpine").unwrap();
        assert_eq!(
            (
                hub.domain.as_str(),
                hub.host.as_str(),
                hub.repository.as_str()
            ),
            ("docker.io", "registry-1.docker.io", "library/alpine")
        );
        assert_eq!(hub.manifest_reference(), "latest");
        let local = Reference::parse("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(local.location(), "127.0.0.1:5000/team/app");
        assert_eq!(local.manifest_reference(), "1");
        assert_eq!(Reference::parse("Bad Name").unwrap_err().code(), "EINVAL");
    }
}
