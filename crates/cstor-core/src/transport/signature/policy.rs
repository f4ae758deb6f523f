//! policy.json, evaluated as containers/image's `signature` package evaluates it before a copy
//! reads anything but the manifest.
//!
//! - The file: `--signature-policy` when given (it must exist), else
//!   `~/.config/containers/policy.json` when it exists, else `/etc/containers/policy.json`. When
//!   neither exists cstor accepts every image (podman would refuse to run at all); a file that
//!   exists must parse.
//! - The requirements for an image: the transport's entry for the image's full identity, then
//!   for each of its namespaces (a registry's repository, namespaces, host, `*.` domains; an
//!   OCI layout's directory and its parents), then the transport's `""`, then `default`. Every
//!   requirement must accept.
//! - `insecureAcceptAnything` accepts; `reject` refuses; `sigstoreSigned` with `keyPath`,
//!   `keyPaths`, `keyData` or `keyDatas` accepts when one of the image's sigstore signatures
//!   verifies ([`super::sigstore`]), names the manifest's digest and a reference its
//!   `signedIdentity` accepts. What cstor cannot check — `signedBy` (GPG, X.509),
//!   `signedBaseLayer`, `sigstoreSigned` with Fulcio, Rekor or PKI — refuses with
//!   `EUNSUPPORTED` naming it, never accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::transport::signature::identity::SignedIdentity;
use crate::transport::signature::sigstore::{self, PublicKey, SIGNATURE_MEDIA_TYPE};
use crate::transport::signature::PolicyImage;
use crate::transport::system_context::{home_dir, SystemContext};
use crate::transport::ImageSource;

const USER_FILE: &str = ".config/containers/policy.json";
const SYSTEM_FILE: &str = "/etc/containers/policy.json";

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Vec<Requirement>,
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

#[derive(Debug, Clone)]
enum Requirement {
    InsecureAcceptAnything,
    Reject,
    SigstoreSigned {
        keys: KeySource,
        identity: SignedIdentity,
    },
    /// A requirement cstor cannot check, named as the refusal will name it.
    Unsupported(String),
}

/// Where a `sigstoreSigned` requirement's public keys are; read when it is evaluated, as
/// containers/image reads them.
#[derive(Debug, Clone)]
enum KeySource {
    Paths(Vec<PathBuf>),
    Data(Vec<Vec<u8>>),
}

impl Policy {
    /// The policy a pull with `ctx` is judged by.
    pub fn load(ctx: &SystemContext) -> Result<Policy> {
        let (path, explicit) = match &ctx.signature_policy {
            Some(path) => (path.clone(), true),
            None => {
                let user = home_dir().join(USER_FILE);
                match user.exists() {
                    true => (user, false),
                    false => (PathBuf::from(SYSTEM_FILE), false),
                }
            }
        };
        match std::fs::read(&path) {
            Ok(bytes) => Policy::parse(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Policy {
                default: vec![Requirement::InsecureAcceptAnything],
                transports: BTreeMap::new(),
            }),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Policy> {
        let bad = |detail: String| Error::Config {
            path: path.to_owned(),
            detail,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        check_keys(object, &["default", "transports"], &[]).map_err(bad)?;
        let default = requirements(
            object
                .get("default")
                .ok_or_else(|| bad("Default policy is missing".into()))?,
        )
        .map_err(bad)?;
        let mut transports = BTreeMap::new();
        match object.get("transports") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (transport, scopes) in map {
                    let scopes = scopes
                        .as_object()
                        .ok_or_else(|| bad(format!("transports.{transport} is not an object")))?;
                    let mut parsed = BTreeMap::new();
                    for (scope, list) in scopes {
                        let list = requirements(list)
                            .map_err(|e| bad(format!("{transport} scope {scope:?}: {e}")))?;
                        parsed.insert(scope.clone(), list);
                    }
                    transports.insert(transport.clone(), parsed);
                }
            }
            Some(_) => return Err(bad("transports is not an object".into())),
        }
        Ok(Policy {
            default,
            transports,
        })
    }

    /// The requirements that apply to `image` (`requirementsForImageRef`).
    fn requirements_for(&self, image: &PolicyImage) -> &[Requirement] {
        if let Some(scopes) = self.transports.get(image.transport) {
            let candidates = std::iter::once(image.identity.as_str())
                .chain(image.namespaces.iter().map(String::as_str))
                .chain(std::iter::once(""));
            for scope in candidates {
                if let Some(found) = scopes.get(scope) {
                    return found;
                }
            }
        }
        &self.default
    }

    /// Accepts `image` or says why not, reading only the manifest and the signatures of
    /// `source`: nothing else of the image is fetched before the verdict.
    pub fn check(&self, image: &PolicyImage, source: &mut dyn ImageSource) -> Result<()> {
        let mut signatures = None;
        for requirement in self.requirements_for(image) {
            match requirement {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => {
                    let why = format!("Running image {} is rejected by policy.", image.display);
                    return Err(denied(why));
                }
                Requirement::Unsupported(what) => {
                    return Err(Error::Unsupported {
                        what: format!(
                            "the signature policy's {what} requirement for {} (cstor cannot check it, so it does not pull the image)",
                            image.display
                        ),
                    })
                }
                Requirement::SigstoreSigned { keys, identity } => {
                    let keys = keys.load()?;
                    let manifest = source.manifest()?;
                    let found = match &signatures {
                        Some(found) => found,
                        None => signatures.insert(source.sigstore_signatures()?),
                    };
                    sigstore_verdict(image, &keys, identity, &manifest, found)?;
                }
            }
        }
        Ok(())
    }
}

/// `prSigstoreSigned.isRunningImageAllowed`: one accepted signature is enough.
fn sigstore_verdict(
    image: &PolicyImage,
    keys: &[PublicKey],
    identity: &SignedIdentity,
    manifest: &[u8],
    signatures: &[sigstore::Signature],
) -> Result<()> {
    let mut rejections = Vec::new();
    for signature in signatures
        .iter()
        .filter(|s| s.media_type == SIGNATURE_MEDIA_TYPE)
    {
        let verdict = sigstore::verify(keys, signature).and_then(|claims| {
            if !sigstore::digest_matches(manifest, &claims.manifest_digest)? {
                return Err(format!(
                    "Signature for digest {} does not match",
                    claims.manifest_digest
                ));
            }
            if !identity.matches(image.docker_reference.as_deref(), &claims.docker_reference) {
                return Err(format!(
                    "Signature for identity {:?} is not accepted",
                    claims.docker_reference
                ));
            }
            Ok(())
        });
        match verdict {
            Ok(()) => return Ok(()),
            Err(why) => rejections.push(why),
        }
    }
    let why = match rejections.len() {
        0 if signatures.is_empty() => "A signature was required, but no signature exists".to_owned(),
        0 => format!(
            "A signature was required, but no signature exists ({} sigstore non-signature attachments)",
            signatures.len()
        ),
        1 => rejections.remove(0),
        _ => format!("None of the signatures were accepted: {}", rejections.join("; ")),
    };
    Err(denied(why))
}

/// A refusal, worded as podman words it.
fn denied(why: String) -> Error {
    Error::Remote {
        code: "EACCES",
        message: format!("Source image rejected: {why}"),
    }
}

impl KeySource {
    fn load(&self) -> Result<Vec<PublicKey>> {
        let pems: Vec<(String, Vec<u8>)> = match self {
            KeySource::Paths(paths) => paths
                .iter()
                .map(|p| {
                    Ok((
                        p.display().to_string(),
                        std::fs::read(p).map_err(|e| Error::io(p, e))?,
                    ))
                })
                .collect::<Result<_>>()?,
            KeySource::Data(data) => data
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("keyData {}", i + 1), d.clone()))
                .collect(),
        };
        pems.iter()
            .map(|(origin, pem)| {
                PublicKey::from_pem(pem).map_err(|e| Error::Unsupported {
                    what: format!("the public key {origin}: {e}"),
                })
            })
            .collect()
    }
}

/// A non-empty requirement list.
fn requirements(value: &Value) -> Result<Vec<Requirement>, String> {
    let list = value
        .as_array()
        .ok_or("a requirement list is not an array")?;
    if list.is_empty() {
        return Err("List of verification policy requirements must not be empty".into());
    }
    list.iter().map(requirement).collect()
}

fn requirement(value: &Value) -> Result<Requirement, String> {
    let object = value.as_object().ok_or("a requirement is not an object")?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or("a requirement has no type")?;
    Ok(match kind {
        "insecureAcceptAnything" => {
            check_keys(object, &["type"], &[])?;
            Requirement::InsecureAcceptAnything
        }
        "reject" => {
            check_keys(object, &["type"], &[])?;
            Requirement::Reject
        }
        "signedBy" => Requirement::Unsupported(format!(
            "signedBy ({})",
            object
                .get("keyType")
                .and_then(Value::as_str)
                .unwrap_or("GPGKeys")
        )),
        "signedBaseLayer" => Requirement::Unsupported("signedBaseLayer".into()),
        "sigstoreSigned" => sigstore_signed(object)?,
        other => return Err(format!("Unknown policy requirement type {other:?}")),
    })
}

fn sigstore_signed(object: &Map<String, Value>) -> Result<Requirement, String> {
    const KEYS: [&str; 4] = ["keyPath", "keyPaths", "keyData", "keyDatas"];
    const OTHERS: [&str; 5] = [
        "fulcio",
        "pki",
        "rekorPublicKeyPath",
        "rekorPublicKeyPaths",
        "rekorPublicKeyData",
    ];
    check_keys(
        object,
        &["type", "signedIdentity", "rekorPublicKeyDatas"],
        &[&KEYS[..], &OTHERS[..]],
    )?;
    let identity = SignedIdentity::parse(object.get("signedIdentity"))?;
    let set: Vec<&str> = KEYS
        .iter()
        .chain(&["fulcio", "pki"])
        .copied()
        .filter(|k| object.contains_key(*k))
        .collect();
    if set.len() != 1 {
        return Err(format!(
            "sigstoreSigned needs exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki; it has {}",
            set.len()
        ));
    }
    if let Some(other) = OTHERS
        .iter()
        .chain(&["rekorPublicKeyDatas"])
        .find(|k| object.contains_key(**k))
    {
        return Ok(Requirement::Unsupported(format!(
            "sigstoreSigned with {other}"
        )));
    }
    let string = |v: &Value| v.as_str().map(str::to_owned).ok_or("not a string");
    let base64 = |v: &Value| -> Result<Vec<u8>, String> {
        let text = v.as_str().ok_or("key data is not a string")?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("key data is not base64: {e}"))
    };
    let strings = |v: &Value| -> Result<Vec<Value>, String> {
        match v.as_array() {
            Some(list) if !list.is_empty() => Ok(list.clone()),
            _ => Err("a list of keys is empty or not a list".into()),
        }
    };
    let keys = match set[0] {
        "keyPath" => KeySource::Paths(vec![string(&object["keyPath"])?.into()]),
        "keyPaths" => KeySource::Paths(
            strings(&object["keyPaths"])?
                .iter()
                .map(|v| string(v).map(PathBuf::from))
                .collect::<Result<_, _>>()?,
        ),
        "keyData" => KeySource::Data(vec![base64(&object["keyData"])?]),
        _ => KeySource::Data(
            strings(&object["keyDatas"])?
                .iter()
                .map(base64)
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Requirement::SigstoreSigned { keys, identity })
}

/// Refuses keys outside `allowed` and the groups of optional ones, as containers/image's
/// strict parser refuses unknown keys.
fn check_keys(
    object: &Map<String, Value>,
    allowed: &[&str],
    optional: &[&[&str]],
) -> Result<(), String> {
    match object.keys().find(|k| {
        !allowed.contains(&k.as_str()) && !optional.iter().any(|group| group.contains(&k.as_str()))
    }) {
        Some(key) => Err(format!("Unknown key {key:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::registry::Reference;

    #[test]
    fn scopes_pick_requirements_most_specific_first() {
        let policy = Policy::parse(
            Path::new("policy.json"),
            br#"{"default": [{"type": "insecureAcceptAnything"}],
                 "transports": {"docker": {
                    "127.0.0.1:5000/team": [{"type": "reject"}],
                    "*.example.com": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"}],
                    "q.io": [{"type": "sigstoreSigned", "keyData": "AAAA", "signedIdentity": {"type": "matchRepository"}}],
                    "f.io": [{"type": "sigstoreSigned", "fulcio": {}, "rekorPublicKeyPath": "/r"}]}}}"#,
        )
        .unwrap();
        let pick = |r: &str| {
            let image = PolicyImage::docker(&Reference::parse(r).unwrap());
            format!("{:?}", policy.requirements_for(&image)[0])
        };
        assert_eq!(pick("127.0.0.1:5000/team/app:1"), "Reject");
        assert_eq!(pick("127.0.0.1:5000/other:1"), "InsecureAcceptAnything");
        assert!(pick("a.example.com/x").starts_with("Unsupported(\"signedBy (GPGKeys)"));
        assert!(pick("q.io/x").starts_with("SigstoreSigned"));
        assert!(pick("f.io/x").contains("sigstoreSigned with fulcio"));

        for bad in [
            r#"{"transports": {}}"#,
            r#"{"default": []}"#,
            r#"{"default": [{"type": "nope"}]}"#,
            r#"{"default": [{"type": "reject", "x": 1}]}"#,
            r#"{"default": [{"type": "insecureAcceptAnything"}], "extra": 1}"#,
            r#"{"default": [{"type": "sigstoreSigned", "keyPath": "/a", "keyData": "AAAA"}]}"#,
            r#"{"default": [{"type": "sigstoreSigned"}]}"#,
            r#"{"default": [{"type": "sigstoreSigned", "keyData": "!!"}]}"#,
            "not json",
        ] {
            let err = Policy::parse(Path::new("p.json"), bad.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "ECONFIG", "{bad}");
        }
    }
}
