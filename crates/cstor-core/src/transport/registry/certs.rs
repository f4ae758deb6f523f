//! TLS for one registry host as containers/image sets it up (`dockerCertDir` and
//! `tlsclientconfig.SetupCertificates`):
//!
//! - The directory: `--cert-dir` for every host when given; else the first of
//!   `~/.config/containers/certs.d/HOST[:PORT]`, `/etc/containers/certs.d/HOST[:PORT]` and
//!   `/etc/docker/certs.d/HOST[:PORT]` that exists.
//! - In it, in name order: each `*.crt` adds CAs to the system's; each `*.cert` is a client
//!   certificate whose key is the `*.key` of the same name (one without the other is an error);
//!   the first pair is the one presented.
//! - The system's CAs are Go's on Linux: `$SSL_CERT_FILE`, else the first bundle of the usual
//!   places that exists. Without one, the Mozilla roots rustls ships.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::{Error, Result};
use crate::transport::system_context::{env_path, home_dir, SystemContext};

const USER_CERTS_D: &str = ".config/containers/certs.d";
const SYSTEM_CERTS_D: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// Go's `certFiles` for Linux, in its order.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The directory whose files configure TLS for `host_port` (`docker.io` for Docker Hub).
fn cert_dir(ctx: &SystemContext, host_port: &str) -> PathBuf {
    if let Some(dir) = &ctx.cert_dir {
        return dir.clone();
    }
    let bases = std::iter::once(home_dir().join(USER_CERTS_D))
        .chain(SYSTEM_CERTS_D.iter().map(PathBuf::from));
    let mut last = PathBuf::new();
    for base in bases {
        last = base.join(host_port);
        if last.exists() {
            break;
        }
    }
    last
}

/// The TLS configuration for `host_port`; `verify: false` accepts any certificate (an
/// `insecure` registry, `--tls-verify=false`).
pub(crate) fn tls_config(ctx: &SystemContext, host_port: &str, verify: bool) -> Result<TlsConfig> {
    let dir = cert_dir(ctx, host_port);
    let (cas, client) = read_cert_dir(&dir)?;
    let roots = match (system_roots(), cas.is_empty()) {
        (Some(system), true) => RootCerts::Specific(system.clone()),
        (Some(system), false) => {
            RootCerts::new_with_certs(&system.iter().cloned().chain(cas).collect::<Vec<_>>())
        }
        (None, true) => RootCerts::WebPki,
        (None, false) => RootCerts::new_with_certs(&cas),
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .disable_verification(!verify)
        .build())
}

/// The CAs (`*.crt`) and the first client certificate (`*.cert` + `*.key`) of a directory;
/// nothing when it does not exist or cannot be read for permissions, as containers/image.
fn read_cert_dir(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Ok((Vec::new(), None))
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    names.sort();
    let bad = |path: &Path, detail: String| Error::Config {
        path: path.to_owned(),
        detail,
    };
    let mut cas = Vec::new();
    let mut client = None;
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".crt") {
            let pem = match std::fs::read(&path) {
                Ok(pem) => pem,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            };
            // As Go's AppendCertsFromPEM: what is not a certificate is skipped.
            cas.extend(certificates(&pem));
        } else if let Some(base) = name.strip_suffix(".cert") {
            let key_name = format!("{base}.key");
            if !names.contains(&key_name) {
                return Err(bad(&path, format!("missing key {key_name} for client certificate {name}. Note that CA certificates should use the extension .crt")));
            }
            let pem = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let chain = certificates(&pem);
            if chain.is_empty() {
                return Err(bad(&path, "no PEM certificate in it".into()));
            }
            let key_path = dir.join(&key_name);
            let key_pem = std::fs::read(&key_path).map_err(|e| Error::io(&key_path, e))?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| bad(&key_path, e.to_string()))?;
            check_client_cert(&chain, &key_pem).map_err(|detail| Error::Unsupported {
                what: format!("the client certificate {}: {detail}", path.display()),
            })?;
            client.get_or_insert_with(|| ClientCert::new_with_certs(&chain, key));
        } else if let Some(base) = name.strip_suffix(".key") {
            if !names.contains(&format!("{base}.cert")) {
                return Err(bad(
                    &path,
                    format!("missing client certificate {base}.cert for key {name}"),
                ));
            }
        }
    }
    Ok((cas, client))
}

/// The certificates of a PEM file; whatever else it holds is skipped.
fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

/// Whether rustls takes `chain` and `key` as a client certificate (it refuses X.509 v1
/// certificates, which Go accepts, and keys that do not fit): said here rather than by a panic
/// where the TLS connection is set up.
fn check_client_cert(chain: &[Certificate<'static>], key_pem: &[u8]) -> Result<(), String> {
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The system's CA certificates, read once.
fn system_roots() -> Option<&'static Arc<Vec<Certificate<'static>>>> {
    static ROOTS: OnceLock<Option<Arc<Vec<Certificate<'static>>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let files = env_path("SSL_CERT_FILE")
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
            let pem = files.into_iter().find_map(|f| std::fs::read(f).ok())?;
            let certs = certificates(&pem);
            (!certs.is_empty()).then(|| Arc::new(certs))
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_dirs_pair_certificates_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(read_cert_dir(&d.join("missing")).unwrap().1.is_none());
        std::fs::write(d.join("ca.crt"), "not a certificate").unwrap();
        assert!(read_cert_dir(d).unwrap().0.is_empty());
        std::fs::write(d.join("client.cert"), "").unwrap();
        let err = read_cert_dir(d).unwrap_err();
        assert!(err.to_string().contains("missing key client.key"), "{err}");
        std::fs::remove_file(d.join("client.cert")).unwrap();
        std::fs::write(d.join("client.key"), "").unwrap();
        let err = read_cert_dir(d).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing client certificate client.cert"),
            "{err}"
        );

        let ctx = SystemContext {
            cert_dir: Some(d.to_owned()),
            ..SystemContext::default()
        };
        assert_eq!(cert_dir(&ctx, "x:1"), d);
    }
}
