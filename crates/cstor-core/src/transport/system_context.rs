//! The user's choices that every transport consults, as containers/image's `types.SystemContext`
//! carries them: which registries.conf, auth file, certificate directory and signature policy
//! to use, and whether to verify TLS. Each is what podman's flag of the same meaning sets
//! (`--registries-conf`, `--authfile`, `--cert-dir`, `--signature-policy`, `--tls-verify`); a
//! field left `None` falls back to the environment variable podman reads for it, then to the
//! files containers/image finds by itself.

use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemContext {
    /// registries.conf to read instead of the default (`$CONTAINERS_REGISTRIES_CONF`).
    pub registries_conf: Option<PathBuf>,
    /// The auth file to read first and to write on login (`$REGISTRY_AUTH_FILE`).
    pub auth_file: Option<PathBuf>,
    /// A directory of `*.crt`, `*.cert` and `*.key` files for every registry, instead of
    /// certs.d's per-host directories.
    pub cert_dir: Option<PathBuf>,
    /// `Some(false)` skips TLS verification (and allows plain HTTP) for every registry,
    /// `Some(true)` verifies even registries.conf's `insecure` ones; `None` follows
    /// registries.conf.
    pub tls_verify: Option<bool>,
    /// The policy.json to evaluate instead of the user's or the system's.
    pub signature_policy: Option<PathBuf>,
    /// The registries.d directory to read instead of the user's or the system's.
    pub registries_d: Option<PathBuf>,
}

impl SystemContext {
    /// The registries.conf named explicitly: the option, else `$CONTAINERS_REGISTRIES_CONF`,
    /// else `$REGISTRIES_CONFIG_PATH` (containers/image's `UpdateRegistriesConf`).
    pub(crate) fn registries_conf_path(&self) -> Option<PathBuf> {
        self.registries_conf.clone().or_else(|| {
            std::env::var_os("CONTAINERS_REGISTRIES_CONF")
                .or_else(|| std::env::var_os("REGISTRIES_CONFIG_PATH"))
                .map(PathBuf::from)
        })
    }

    /// The auth file named explicitly: the option, else `$REGISTRY_AUTH_FILE` (as podman's
    /// `--authfile` default).
    pub(crate) fn auth_file_path(&self) -> Option<PathBuf> {
        self.auth_file
            .clone()
            .or_else(|| env_path("REGISTRY_AUTH_FILE"))
    }
}

/// A path from a non-empty environment variable.
pub(crate) fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The home directory containers/storage's `homedir.Get` gives: `$HOME`.
pub(crate) fn home_dir() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}
