//! A registry (`docker://host/repository[:tag|@digest]`) over the OCI distribution API, both
//! ways, configured as the user configured podman: [`source`] pulls an image from one of the
//! places [`registries_conf`] gives for it (mirrors, then the primary), [`destination`] pushes
//! one. [`short_names`] turns `myapp:1` into the references to try. [`client`] speaks HTTP with
//! the registry's authentication (basic, bearer tokens, identity tokens) and TLS from
//! [`certs`]; [`credentials`] finds and stores the user's credentials where podman does,
//! through [`credential_helper`]s too; [`login`] checks them against a registry first;
//! [`registries_d`] says where sigstore signatures are attached.

mod certs;
mod client;
mod credential_helper;
pub mod credentials;
mod destination;
pub mod login;
pub mod registries_conf;
mod registries_d;
pub mod short_names;
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
        let host = api_host(&domain).to_owned();
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

    /// A registry alone (`podman login`'s target): no repository.
    pub fn registry(domain: &str) -> Reference {
        Reference {
            domain: domain.to_owned(),
            host: api_host(domain).to_owned(),
            repository: String::new(),
            tag: None,
            digest: None,
        }
    }

    /// `domain/repository`: where a blob was seen, for a later cross-repository mount.
    pub fn location(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// `domain/repository`, the name registries.conf and auth files are matched against.
    pub fn name(&self) -> String {
        self.location()
    }

    /// The whole reference: `domain/repository:tag` or `domain/repository@digest` (`latest`
    /// when it has neither), as containers/image's `PolicyConfigurationIdentity`.
    pub fn policy_identity(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}@{digest}", self.name()),
            (None, tag) => format!("{}:{}", self.name(), tag.as_deref().unwrap_or("latest")),
        }
    }

    /// The scopes a policy or registries.d entry may name for it, most specific first
    /// (`DockerReferenceNamespaces`): the repository, its parent namespaces, the registry, then
    /// `*.`-wildcards of the host's parent domains.
    pub fn policy_namespaces(&self) -> Vec<String> {
        let mut scopes = Vec::new();
        let mut name = self.name();
        loop {
            scopes.push(name.clone());
            match name.rfind('/') {
                Some(slash) => name.truncate(slash),
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or("").to_owned();
        while let Some(dot) = host.find('.') {
            host = host[dot + 1..].to_owned();
            scopes.push(format!("*.{host}"));
        }
        scopes
    }

    /// The tag, or the digest, or `latest`: what a manifest is fetched or stored under.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

/// The host a registry's API lives on: Docker Hub's is not `docker.io`.
fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" => "registry-1.docker.io",
        other => other,
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
        assert_eq!(local.policy_identity(), "127.0.0.1:5000/team/app:1");
        assert_eq!(
            local.policy_namespaces(),
            [
                "127.0.0.1:5000/team/app",
                "127.0.0.1:5000/team",
                "127.0.0.1:5000",
                "*.0.0.1",
                "*.0.1",
                "*.1"
            ]
        );
        assert_eq!(Reference::parse("Bad Name").unwrap_err().code(), "EINVAL");
    }
}
