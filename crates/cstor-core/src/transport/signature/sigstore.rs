//! Sigstore signatures checked against public keys, as containers/image's
//! `VerifySigstorePayload` checks them (the format `skopeo copy --sign-by-sigstore-private-key`
//! and cosign write):
//!
//! - A signature is a payload (the layer of a `.sig` attachment, media type
//!   `application/vnd.dev.cosign.simplesigning.v1+json`) and the base64 of a signature over
//!   it in the annotation `dev.cosignproject.cosign/signature`.
//! - The signature is verified over the payload with SHA-256: ECDSA (P-256, P-384; ASN.1 DER
//!   signatures), RSA PKCS#1 v1.5, or Ed25519 — with ring, rustls's own provider. Keys are PEM
//!   `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1) blocks.
//! - Only then is the payload read, strictly: `{"critical": {"type": "cosign container image
//!   signature", "image": {"docker-manifest-digest": D}, "identity": {"docker-reference": R}},
//!   "optional": {…} | null}`, no other field, none twice. D must be the manifest's digest, and
//!   R must satisfy the policy's `signedIdentity`.

use std::collections::BTreeMap;

use base64::Engine;
use ring::signature::{self as ring_signature, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest;

/// The media type of a signature attachment.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const SIGNATURE_TYPE: &str = "cosign container image signature";

/// A sigstore attachment as fetched: untrusted until [`verify`] says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub media_type: String,
    pub payload: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// A public key a signature can be verified with.
pub(crate) struct PublicKey {
    algorithm: &'static dyn VerificationAlgorithm,
    bytes: Vec<u8>,
}

impl PublicKey {
    /// The first PEM block of `pem` as a key (`cryptoutils.UnmarshalPEMToPublicKey`).
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, String> {
        let (label, der) = first_pem_block(pem).ok_or("no PEM block in it")?;
        match label.as_str() {
            "PUBLIC KEY" => from_spki(&der),
            "RSA PUBLIC KEY" | "PKCS1 PUBLIC KEY" => Ok(PublicKey {
                algorithm: &ring_signature::RSA_PKCS1_2048_8192_SHA256,
                bytes: der,
            }),
            other => Err(format!("unknown public key PEM type {other:?}")),
        }
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

/// A SubjectPublicKeyInfo: `SEQUENCE { SEQUENCE { OID, parameters }, BIT STRING }`.
fn from_spki(der: &[u8]) -> Result<PublicKey, String> {
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    let bad = || "not a DER SubjectPublicKeyInfo".to_owned();
    let (spki, rest) = der_element(der, 0x30).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(bad());
    }
    let (algorithm, rest) = der_element(spki, 0x30).ok_or_else(bad)?;
    let (bits, rest) = der_element(rest, 0x03).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(bad());
    }
    let (oid, parameters) = der_element(algorithm, 0x06).ok_or_else(bad)?;
    let key = match bits.split_first() {
        Some((0, key)) => key.to_vec(),
        _ => return Err(bad()),
    };
    let curve = der_element(parameters, 0x06).map(|(curve, _)| curve);
    let algorithm: &'static dyn VerificationAlgorithm = match (oid, curve) {
        (EC, Some(P256)) => &ring_signature::ECDSA_P256_SHA256_ASN1,
        (EC, Some(P384)) => &ring_signature::ECDSA_P384_SHA256_ASN1,
        (EC, _) => return Err("an ECDSA key on a curve other than P-256 and P-384".into()),
        (RSA, _) => &ring_signature::RSA_PKCS1_2048_8192_SHA256,
        (ED25519, _) => &ring_signature::ED25519,
        _ => return Err("a key of an algorithm other than ECDSA, RSA and Ed25519".into()),
    };
    Ok(PublicKey {
        algorithm,
        bytes: key,
    })
}

/// One DER element of `tag` at the start of `input`: its contents and what follows.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, mut rest) = rest.split_first()?;
    let length = match length {
        0..=0x7f => length as usize,
        0x81..=0x84 => {
            let count = (length & 0x7f) as usize;
            let (bytes, after) = rest.split_at_checked(count)?;
            rest = after;
            bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize)
        }
        _ => return None,
    };
    rest.split_at_checked(length)
}

/// The label and bytes of the first `-----BEGIN …-----` block (Go's `pem.Decode`).
fn first_pem_block(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let after = &text[start + 11..];
    let label_end = after.find("-----")?;
    let label = &after[..label_end];
    let body = &after[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let base64: String = body[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.trim().chars())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()?;
    Some((label.to_owned(), der))
}

/// The claims of a verified payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub manifest_digest: String,
    pub docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    optional: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    identity: Identity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

/// The claims of `signature` once its signature verifies with one of `keys`; why not, when
/// not.
pub(crate) fn verify(keys: &[PublicKey], signature: &Signature) -> Result<Claims, String> {
    let encoded = signature
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| format!("missing {SIGNATURE_ANNOTATION} annotation"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("base64 decoding: {e}"))?;
    if !keys
        .iter()
        .any(|key| key.verifies(&signature.payload, &raw))
    {
        return Err("cryptographic signature verification failed".into());
    }
    let payload: Payload = serde_json::from_slice(&signature.payload)
        .map_err(|e| format!("invalid signature payload: {e}"))?;
    match &payload.optional {
        Value::Null => {}
        Value::Object(optional) => {
            if optional.get("creator").is_some_and(|c| !c.is_string()) {
                return Err("optional.creator is not a string".into());
            }
            if let Some(timestamp) = optional.get("timestamp") {
                if !timestamp.as_f64().is_some_and(|t| t.fract() == 0.0) {
                    return Err("optional.timestamp is not an integer".into());
                }
            }
        }
        _ => return Err("optional is not an object".into()),
    }
    if payload.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "unrecognized signature type {:?}",
            payload.critical.kind
        ));
    }
    Ok(Claims {
        manifest_digest: payload.critical.image.docker_manifest_digest,
        docker_reference: payload.critical.identity.docker_reference,
    })
}

/// Whether `digest` (`algorithm:hex`) is the digest of `manifest` (`manifest.MatchesDigest`).
pub(crate) fn digest_matches(manifest: &[u8], digest: &str) -> Result<bool, String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("invalid docker-manifest-digest {digest:?}"))?;
    let actual = match algorithm {
        "sha256" => hex_of(&sha2::Sha256::digest(manifest)),
        "sha384" => hex_of(&sha2::Sha384::digest(manifest)),
        "sha512" => hex_of(&sha2::Sha512::digest(manifest)),
        _ => return Err(format!("invalid docker-manifest-digest {digest:?}")),
    };
    if hex.len() != actual.len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid docker-manifest-digest {digest:?}"));
    }
    Ok(hex == actual)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    /// A P-256 key pair and its public key as the PEM `skopeo generate-sigstore-key` writes.
    fn key_pair() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut spki = vec![0x30, 0x59, 0x30, 0x13, 0x06, 0x07];
        spki.extend([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08]);
        spki.extend([
            0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ]);
        spki.extend(pair.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &b64[..64],
            &b64[64..]
        );
        (pair, pem.into_bytes())
    }

    fn signed(pair: &EcdsaKeyPair, payload: &str) -> Signature {
        let raw = pair.sign(&SystemRandom::new(), payload.as_bytes()).unwrap();
        let annotation = base64::engine::general_purpose::STANDARD.encode(raw.as_ref());
        Signature {
            media_type: SIGNATURE_MEDIA_TYPE.into(),
            payload: payload.as_bytes().to_vec(),
            annotations: [(SIGNATURE_ANNOTATION.to_owned(), annotation)].into(),
        }
    }

    #[test]
    fn signatures_verify_with_their_key_only() {
        let (pair, pem) = key_pair();
        let (other, other_pem) = key_pair();
        let key = PublicKey::from_pem(&pem).unwrap();
        let digest = format!("sha256:{}", hex_of(&sha2::Sha256::digest(b"{}")));
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/app:1"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"creator":"x","timestamp":1}}}}"#
        );
        let claims = verify(&[key], &signed(&pair, &payload)).unwrap();
        assert_eq!(claims.docker_reference, "127.0.0.1:5000/app:1");
        assert_eq!(digest_matches(b"{}", &claims.manifest_digest), Ok(true));
        assert_eq!(digest_matches(b"{ }", &claims.manifest_digest), Ok(false));

        let key = || PublicKey::from_pem(&pem).unwrap();
        let wrong = PublicKey::from_pem(&other_pem).unwrap();
        assert!(verify(&[wrong], &signed(&pair, &payload))
            .unwrap_err()
            .contains("verification failed"));
        assert!(verify(&[key()], &signed(&other, &payload)).is_err());
        let extra = payload.replace(r#""optional""#, r#""extra":1,"optional""#);
        assert!(verify(&[key()], &signed(&pair, &extra))
            .unwrap_err()
            .contains("unknown field"));
        let twice = payload.replace(r#""type":"#, r#""type":"x","type":"#);
        assert!(verify(&[key()], &signed(&pair, &twice)).is_err());
        let other_type = payload.replace("cosign container image signature", "x");
        assert!(verify(&[key()], &signed(&pair, &other_type)).is_err());
        let mut unsigned = signed(&pair, &payload);
        unsigned.annotations.clear();
        assert!(verify(&[key()], &unsigned).is_err());
        assert!(PublicKey::from_pem(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        assert!(PublicKey::from_pem(b"garbage").is_err());
    }
}
