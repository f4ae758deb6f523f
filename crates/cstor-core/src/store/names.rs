//! Resolving what a user types (`alpine`, `alpine:3`, `docker.io/library/alpine:latest`,
//! `localhost/x:1`, `name@sha256:…`, an ID or an ID prefix) to one image of the store.
//!
//! The order follows podman's local lookup (libimage `LookupImage`): a full ID or digest first,
//! then names — fully qualified ones exactly, short ones against the last path components of the
//! stored names, preferring `localhost/` as podman does — and last a unique ID prefix.

use crate::error::{Error, Result};
use crate::store::images::Image;
use crate::store::Store;

/// The default registry of unqualified names, and the namespace of its one-component names
/// (`alpine` is `docker.io/library/alpine`).
const DOCKER_DOMAIN: &str = "docker.io";
const DOCKER_OFFICIAL_NAMESPACE: &str = "library/";
const DEFAULT_TAG: &str = "latest";

/// A parsed image name: `[domain/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The registry host, when the name has one (`localhost`, `quay.io`, `host:5000`).
    pub domain: Option<String>,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageName {
    /// Splits a reference into its parts; `None` when it cannot be an image name (empty parts,
    /// upper-case repository, whitespace, ...).
    pub fn parse(reference: &str) -> Option<ImageName> {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (reference, None),
        };
        if let Some(d) = digest {
            if !is_digest(d) {
                return None;
            }
        }
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !is_tag(t) {
                return None;
            }
        }
        let (domain, path) = match repo.split_once('/') {
            Some((first, path)) if is_domain(first) => (Some(first), path),
            _ => (None, repo),
        };
        if path.is_empty() || !path.split('/').all(is_path_component) {
            return None;
        }
        let (domain, path) = match domain {
            Some(DOCKER_DOMAIN) if !path.contains('/') => (
                Some(DOCKER_DOMAIN),
                format!("{DOCKER_OFFICIAL_NAMESPACE}{path}"),
            ),
            other => (other, path.to_owned()),
        };
        Some(ImageName {
            domain: domain.map(str::to_owned),
            path,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// `domain/path`, or just `path` for a short name.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

/// The name podman stores for what a user typed when tagging (libimage `NormalizeName`): a name
/// without a registry gets `localhost/`, `docker.io/x` becomes `docker.io/library/x`, a name
/// with neither tag nor digest gets `:latest`, and a name with both keeps only the digest.
pub fn normalize(name: &str) -> Result<String> {
    let parsed = ImageName::parse(name)
        .ok_or_else(|| Error::InvalidArgument(format!("{name:?} is not an image name")))?;
    let domain = parsed
        .domain
        .clone()
        .unwrap_or_else(|| "localhost".to_owned());
    let repository = format!("{domain}/{}", parsed.path);
    Ok(match (&parsed.digest, &parsed.tag) {
        (Some(digest), _) => format!("{repository}@{digest}"),
        (None, Some(tag)) => format!("{repository}:{tag}"),
        (None, None) => format!("{repository}:{DEFAULT_TAG}"),
    })
}

fn is_domain(component: &str) -> bool {
    component == "localhost" || component.contains('.') || component.contains(':')
}

fn is_path_component(component: &str) -> bool {
    !component.is_empty()
        && component.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_digest(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(algorithm, hex)| !algorithm.is_empty() && is_hex(hex))
}

/// Whether a stored name (always fully qualified) is in the repository `query` names; a short
/// query matches the trailing path components (`alpine` matches `docker.io/library/alpine`).
fn repository_matches(stored: &ImageName, query: &ImageName) -> bool {
    let repository = stored.repository();
    match &query.domain {
        Some(_) => repository == query.repository(),
        None => repository == query.path || repository.ends_with(&format!("/{}", query.path)),
    }
}

/// Whether a stored name answers a query without a digest: same repository and tag.
fn tag_matches(stored: &ImageName, query: &ImageName) -> bool {
    repository_matches(stored, query)
        && stored.tag.as_deref().unwrap_or(DEFAULT_TAG)
            == query.tag.as_deref().unwrap_or(DEFAULT_TAG)
}

fn parsed(names: &[String]) -> impl Iterator<Item = ImageName> + '_ {
    names.iter().filter_map(|n| ImageName::parse(n))
}

/// Whether `image` answers `query`. With a digest, the image must be known by that digest and
/// have carried a name in that repository, now or in its `names-history` (an image pulled by
/// digest keeps the repository there).
fn answers(image: &Image, query: &ImageName) -> bool {
    let record = &image.record;
    match &query.digest {
        None => parsed(&record.names).any(|stored| tag_matches(&stored, query)),
        Some(digest) => {
            image.all_digests().contains(&digest.as_str())
                && parsed(&record.names)
                    .chain(parsed(&record.names_history))
                    .any(|stored| repository_matches(&stored, query))
        }
    }
}

impl Store {
    /// The image a reference names: full ID, `sha256:` ID or digest, name (short or qualified,
    /// with tag or `@digest`), or unique ID prefix. See [`resolve`].
    pub fn image(&self, reference: &str) -> Result<Image> {
        resolve(&self.images()?, reference).cloned()
    }
}

/// Picks the image `reference` names. See the module documentation for the order.
pub fn resolve<'a>(images: &'a [Image], reference: &str) -> Result<&'a Image> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(Error::InvalidArgument("empty image reference".into()));
    }
    let no_image = || Error::NoImage {
        reference: reference.to_owned(),
    };

    // A full ID, bare or as sha256:<id>, or a digest the image is known by.
    let bare = reference.strip_prefix("sha256:").unwrap_or(reference);
    if bare.len() == 64 && is_hex(bare) {
        if let Some(image) = images.iter().find(|i| i.id() == bare) {
            return Ok(image);
        }
        let digest = format!("sha256:{bare}");
        if let Some(image) = images
            .iter()
            .find(|i| i.all_digests().contains(&digest.as_str()))
        {
            return Ok(image);
        }
        if reference.starts_with("sha256:") {
            return Err(no_image());
        }
    }

    if let Some(query) = ImageName::parse(reference) {
        let mut matches: Vec<&Image> = images.iter().filter(|i| answers(i, &query)).collect();
        if matches.len() > 1 && query.domain.is_none() {
            // podman tries localhost/ before any registry for a short name.
            let mut local_query = query.clone();
            local_query.domain = Some("localhost".into());
            let local: Vec<&Image> = matches
                .iter()
                .copied()
                .filter(|image| answers(image, &local_query))
                .collect();
            if local.len() == 1 {
                matches = local;
            }
        }
        match matches.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(Error::Ambiguous {
                    reference: reference.to_owned(),
                    candidates: many.iter().map(|i| i.id().to_owned()).collect(),
                })
            }
        }
    }

    if is_hex(bare) {
        let matches: Vec<&Image> = images.iter().filter(|i| i.id().starts_with(bare)).collect();
        return match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(no_image()),
            many => Err(Error::Ambiguous {
                reference: reference.to_owned(),
                candidates: many.iter().map(|i| i.id().to_owned()).collect(),
            }),
        };
    }
    Err(no_image())
}

/// `repository@digest` for each repository the image is named in and each digest it is known by,
/// as podman lists `RepoDigests`.
pub fn repo_digests(image: &Image) -> Vec<String> {
    let mut repositories: Vec<String> = Vec::new();
    for name in parsed(&image.record.names) {
        let repository = name.repository();
        if !repositories.contains(&repository) {
            repositories.push(repository);
        }
    }
    let digests = image.all_digests();
    repositories
        .iter()
        .flat_map(|r| digests.iter().map(move |d| format!("{r}@{d}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_like_the_docker_reference_grammar() {
        let n = ImageName::parse("alpine").unwrap();
        assert_eq!((n.domain, n.path.as_str(), n.tag), (None, "alpine", None));
        let n = ImageName::parse("docker.io/alpine:3").unwrap();
        assert_eq!(n.repository(), "docker.io/library/alpine");
        assert_eq!(n.tag.as_deref(), Some("3"));
        let n = ImageName::parse("host:5000/a/b:t@sha256:abcd").unwrap();
        assert_eq!(n.domain.as_deref(), Some("host:5000"));
        assert_eq!(n.path, "a/b");
        assert_eq!(n.digest.as_deref(), Some("sha256:abcd"));
        assert!(ImageName::parse("Alpine").is_none());
        assert!(ImageName::parse("a//b").is_none());
        assert!(ImageName::parse("a:").is_none());
        assert!(ImageName::parse("a@notadigest").is_none());
    }

    #[test]
    fn tags_normalize_as_podman_stores_them() {
        assert_eq!(normalize("x").unwrap(), "localhost/x:latest");
        assert_eq!(normalize("x:1").unwrap(), "localhost/x:1");
        assert_eq!(
            normalize("docker.io/alpine").unwrap(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(normalize("quay.io/a/b:2").unwrap(), "quay.io/a/b:2");
        assert_eq!(normalize("Bad Name").unwrap_err().code(), "EINVAL");
    }
}
