//! A policy's `signedIdentity`: which `docker-reference` a signature may claim for the image
//! being pulled, as containers/image's `policy_reference_match.go` decides. References are
//! compared normalized (`busybox` is `docker.io/library/busybox`), as
//! `reference.ParseNormalizedNamed` gives them.

use serde_json::Value;

use crate::store::names::ImageName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignedIdentity {
    /// The same reference, tag included.
    MatchExact,
    /// The same reference; for a pull by digest, the same repository.
    MatchRepoDigestOrExact,
    /// The same repository.
    MatchRepository,
    /// This reference, whatever is pulled.
    ExactReference(String),
    /// This repository, whatever is pulled.
    ExactRepository(String),
    /// The pulled reference with `prefix` read as `signed_prefix`, then as
    /// `MatchRepoDigestOrExact`.
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

/// A reference normalized, with its tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Normalized {
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Normalized {
    fn parse(reference: &str) -> Option<Normalized> {
        let parsed = ImageName::parse(reference)?;
        let name = match &parsed.domain {
            Some(_) => parsed.repository(),
            None if parsed.path.contains('/') => format!("docker.io/{}", parsed.path),
            None => format!("docker.io/library/{}", parsed.path),
        };
        Some(Normalized {
            name,
            tag: parsed.tag,
            digest: parsed.digest,
        })
    }

    fn name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    fn full(&self) -> String {
        let tag = self
            .tag
            .as_deref()
            .map(|t| format!(":{t}"))
            .unwrap_or_default();
        let digest = self
            .digest
            .as_deref()
            .map(|d| format!("@{d}"))
            .unwrap_or_default();
        format!("{}{tag}{digest}", self.name)
    }
}

impl SignedIdentity {
    /// Parses a `signedIdentity` object; absent, it is `matchRepoDigestOrExact`.
    pub fn parse(value: Option<&Value>) -> Result<SignedIdentity, String> {
        let Some(value) = value else {
            return Ok(SignedIdentity::MatchRepoDigestOrExact);
        };
        let object = value.as_object().ok_or("signedIdentity is not an object")?;
        let field = |name: &str| -> Result<String, String> {
            object
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("signedIdentity needs a string {name:?}"))
        };
        let only = |allowed: &[&str]| -> Result<(), String> {
            match object.keys().find(|k| !allowed.contains(&k.as_str())) {
                Some(key) => Err(format!("unknown key {key:?} in signedIdentity")),
                None => Ok(()),
            }
        };
        let kind = field("type")?;
        let identity = match kind.as_str() {
            "matchExact" => SignedIdentity::MatchExact,
            "matchRepoDigestOrExact" => SignedIdentity::MatchRepoDigestOrExact,
            "matchRepository" => SignedIdentity::MatchRepository,
            "exactReference" => {
                only(&["type", "dockerReference"])?;
                let reference = field("dockerReference")?;
                match Normalized::parse(&reference) {
                    Some(r) if !r.name_only() => SignedIdentity::ExactReference(reference),
                    _ => return Err(format!("invalid dockerReference {reference:?}")),
                }
            }
            "exactRepository" => {
                only(&["type", "dockerRepository"])?;
                let repository = field("dockerRepository")?;
                match Normalized::parse(&repository) {
                    Some(r) if r.name_only() => SignedIdentity::ExactRepository(repository),
                    _ => return Err(format!("invalid dockerRepository {repository:?}")),
                }
            }
            "remapIdentity" => {
                only(&["type", "prefix", "signedPrefix"])?;
                let (prefix, signed_prefix) = (field("prefix")?, field("signedPrefix")?);
                for p in [&prefix, &signed_prefix] {
                    if !valid_remap_prefix(p) {
                        return Err(format!("invalid remapIdentity prefix {p:?}"));
                    }
                }
                SignedIdentity::RemapIdentity {
                    prefix,
                    signed_prefix,
                }
            }
            other => return Err(format!("unknown signedIdentity type {other:?}")),
        };
        if matches!(
            identity,
            SignedIdentity::MatchExact
                | SignedIdentity::MatchRepoDigestOrExact
                | SignedIdentity::MatchRepository
        ) {
            only(&["type"])?;
        }
        Ok(identity)
    }

    /// Whether a signature claiming `signed` is accepted for an image pulled as `intended`
    /// (`None` when the source has no Docker reference, as an OCI layout).
    pub fn matches(&self, intended: Option<&str>, signed: &str) -> bool {
        let Some(signed) = Normalized::parse(signed) else {
            return false;
        };
        let fixed = |reference: &str| Normalized::parse(reference);
        match self {
            SignedIdentity::ExactReference(reference) => {
                fixed(reference).is_some_and(|r| !signed.name_only() && r.full() == signed.full())
            }
            SignedIdentity::ExactRepository(repository) => {
                fixed(repository).is_some_and(|r| r.name == signed.name)
            }
            _ => {
                let Some(intended) = intended.and_then(Normalized::parse) else {
                    return false;
                };
                match self {
                    SignedIdentity::MatchExact => {
                        !intended.name_only()
                            && !signed.name_only()
                            && intended.full() == signed.full()
                    }
                    SignedIdentity::MatchRepository => intended.name == signed.name,
                    SignedIdentity::RemapIdentity {
                        prefix,
                        signed_prefix,
                    } => match remap(&intended, prefix, signed_prefix) {
                        Some(remapped) => repo_digest_or_exact(&remapped, &signed),
                        None => false,
                    },
                    _ => repo_digest_or_exact(&intended, &signed),
                }
            }
        }
    }
}

/// `matchRepoDigestOrExactReferenceValues`.
fn repo_digest_or_exact(intended: &Normalized, signed: &Normalized) -> bool {
    if signed.name_only() {
        return false;
    }
    match (&intended.tag, &intended.digest) {
        (Some(_), _) => signed.full() == intended.full(),
        (None, Some(_)) => signed.name == intended.name,
        (None, None) => false,
    }
}

/// `intended` with `prefix` replaced by `signed_prefix` when its name starts with it at a
/// component boundary; `None` when the result is no reference.
fn remap(intended: &Normalized, prefix: &str, signed_prefix: &str) -> Option<Normalized> {
    let name = &intended.name;
    let applies = name == prefix
        || (name.starts_with(prefix) && name.as_bytes().get(prefix.len()) == Some(&b'/'));
    if !applies {
        return Some(intended.clone());
    }
    let full = intended.full().replacen(prefix, signed_prefix, 1);
    ImageName::parse(&full)
        .filter(|n| n.domain.is_some())
        .and_then(|_| Normalized::parse(&full))
}

/// A `remapIdentity` prefix: a registry, or a repository namespace in one, without tag or
/// digest (`validateIdentityRemappingPrefix`).
fn valid_remap_prefix(prefix: &str) -> bool {
    use crate::transport::registry::registries_conf::is_domain;
    if is_domain(prefix) {
        return true;
    }
    ImageName::parse(prefix).is_some_and(|n| {
        n.domain.is_some() && n.tag.is_none() && n.digest.is_none() && n.repository() == prefix
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_match_as_containers_image_matches_them() {
        let parse = |v: Value| SignedIdentity::parse(Some(&v)).unwrap();
        let default = SignedIdentity::parse(None).unwrap();
        let digest = format!("sha256:{}", "c".repeat(64));
        let tagged = Some("quay.io/a/b:1");
        assert!(default.matches(tagged, "quay.io/a/b:1"));
        assert!(!default.matches(tagged, "quay.io/a/b:2"));
        assert!(!default.matches(tagged, "quay.io/a/b"));
        let by_digest = format!("quay.io/a/b@{digest}");
        assert!(default.matches(Some(&by_digest), "quay.io/a/b:anything"));
        assert!(!default.matches(None, "quay.io/a/b:1"));
        assert!(parse(json!({"type": "matchRepository"})).matches(tagged, "quay.io/a/b:2"));
        assert!(!parse(json!({"type": "matchExact"})).matches(Some(&by_digest), "quay.io/a/b:1"));
        assert!(
            parse(json!({"type": "exactReference", "dockerReference": "busybox:1"}))
                .matches(tagged, "docker.io/library/busybox:1")
        );
        assert!(
            parse(json!({"type": "exactRepository", "dockerRepository": "quay.io/x"}))
                .matches(None, "quay.io/x:9")
        );
        let remap = parse(
            json!({"type": "remapIdentity", "prefix": "mirror.io/a", "signedPrefix": "quay.io/a"}),
        );
        assert!(remap.matches(Some("mirror.io/a/b:1"), "quay.io/a/b:1"));
        assert!(!remap.matches(Some("mirror.io/ab:1"), "quay.io/ab:1"));
        for bad in [
            json!({"type": "matchExact", "extra": 1}),
            json!({"type": "exactReference", "dockerReference": "quay.io/x"}),
            json!({"type": "exactRepository", "dockerRepository": "quay.io/x:1"}),
            json!({"type": "remapIdentity", "prefix": "quay.io/x:1", "signedPrefix": "q.io"}),
            json!({"type": "nope"}),
        ] {
            assert!(SignedIdentity::parse(Some(&bad)).is_err(), "{bad}");
        }
    }
}
