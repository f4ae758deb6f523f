//! Whether an image may be pulled: the user's signature policy ([`policy`], policy.json), the
//! sigstore signatures it can require ([`sigstore`]) and the identities they must claim
//! ([`identity`]). The verdict comes from the manifest and the signatures alone, before any
//! other blob is fetched or anything is written to the store.

mod identity;
pub mod policy;
pub mod sigstore;

use std::path::Path;

use crate::transport::registry::Reference;

/// An image as a policy sees it: its transport, the scopes it falls in, and the Docker
/// reference signatures must claim (containers/image's `ImageReference` policy methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyImage {
    /// `docker`, `oci`, `docker-archive`, `tarball`: policy.json's `transports` keys.
    pub transport: &'static str,
    /// The most specific scope (`PolicyConfigurationIdentity`).
    pub identity: String,
    /// The wider scopes, most specific first (`PolicyConfigurationNamespaces`).
    pub namespaces: Vec<String>,
    /// What the image is pulled as, when it has a Docker reference.
    pub docker_reference: Option<String>,
    /// `transport:name`, for messages.
    pub display: String,
}

impl PolicyImage {
    /// A registry image as the user asked for it (not the mirror it may come from).
    pub fn docker(reference: &Reference) -> PolicyImage {
        let identity = reference.policy_identity();
        PolicyImage {
            transport: "docker",
            namespaces: reference.policy_namespaces(),
            docker_reference: Some(identity.clone()),
            display: format!("docker://{identity}"),
            identity,
        }
    }

    /// An OCI layout: its directory with symlinks resolved, then each parent but `/`.
    pub fn oci(dir: &Path, spec: &str) -> PolicyImage {
        let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        let identity = resolved.to_string_lossy().into_owned();
        let mut namespaces = Vec::new();
        let mut path = identity.as_str();
        while path != "/" && !path.is_empty() {
            namespaces.push(path.to_owned());
            path = &path[..path.rfind('/').unwrap_or(0)];
        }
        PolicyImage {
            transport: "oci",
            identity,
            namespaces,
            docker_reference: None,
            display: spec.to_owned(),
        }
    }

    /// An image of a transport whose images have no scope of their own (`docker-archive`,
    /// `tarball`): only the transport's `""` entry and the default apply.
    pub fn unscoped(transport: &'static str, spec: &str) -> PolicyImage {
        PolicyImage {
            transport,
            identity: String::new(),
            namespaces: Vec::new(),
            docker_reference: None,
            display: spec.to_owned(),
        }
    }
}
