//! The user's registry settings, as podman has them: the registries.conf pulls read, and the
//! credentials `podman login` stores. They are the user's files, not the store's; they are
//! operations all the same so that the process that makes a store's pulls answers — for a
//! rootless store the helper in `podman unshare`, whose environment is podman's — and a
//! JSON-RPC client sees the settings and credentials of the server's user, which its pulls use.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::Result;
use crate::ops::{Access, Call, Done, Operation};
use crate::store::Store;
use crate::transport::registry::login;
use crate::transport::registry::registries_conf::RegistriesConf;
use crate::transport::system_context::SystemContext;

/// How to reach registries, each option as podman's flag of the same name sets it; relative
/// paths are the caller's.
#[derive(Debug, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct RegistryOptions {
    /// The registries.conf to read instead of the user's or the system's (`--registries-conf`,
    /// `$CONTAINERS_REGISTRIES_CONF`); its drop-in directories are read as well.
    #[serde(default)]
    pub registries_conf: Option<String>,
    /// The auth file to read credentials from, and login to write them to, instead of those
    /// podman looks at (`--authfile`, `$REGISTRY_AUTH_FILE`).
    #[serde(default)]
    pub auth_file: Option<String>,
    /// A directory of `*.crt` CAs and `*.cert`/`*.key` client certificates for every registry,
    /// instead of certs.d's per-registry directories (`--cert-dir`).
    #[serde(default)]
    pub cert_dir: Option<String>,
    /// `false`: no TLS verification and plain HTTP allowed; `true`: verified even where
    /// registries.conf says `insecure`; unset, registries.conf decides (`--tls-verify`).
    #[serde(default)]
    pub tls_verify: Option<bool>,
}

impl RegistryOptions {
    /// The transports' settings, with the caller's relative paths made absolute.
    pub(super) fn context(self, call: &Call, signature_policy: Option<String>) -> SystemContext {
        let path = |p: Option<String>| p.map(|p| call.path(&p));
        SystemContext {
            registries_conf: path(self.registries_conf),
            auth_file: path(self.auth_file),
            cert_dir: path(self.cert_dir),
            tls_verify: self.tls_verify,
            signature_policy: path(signature_policy),
            registries_d: None,
        }
    }
}

/// The registry configuration pulls use: registries.conf and its drop-ins merged as
/// containers/image merges them (the files read, registries with their mirrors, search
/// registries, short-name mode and aliases, credential helpers).
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct Registries {
    #[serde(default)]
    pub registries_conf: Option<String>,
}

impl Operation for Registries {
    const METHOD: &'static str = "Registries";
    type Output = RegistriesConf;

    fn run(self, _store: &Arc<Store>, call: &mut Call) -> Result<RegistriesConf> {
        let options = RegistryOptions {
            registries_conf: self.registries_conf,
            ..RegistryOptions::default()
        };
        RegistriesConf::load(&options.context(call, None))
    }
}

/// `podman login`: checks `username` and `password` against the registry `server`
/// (`host[:port]`, or a namespace in it) and stores them where podman would — the auth file
/// (mode 0600, as podman writes it) or the credential helper it names. Nothing is stored when
/// the registry refuses them (`EACCES`).
///
/// `Write` access: it changes the user's credentials, which a read-only server must not.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub server: String,
    pub username: String,
    pub password: String,
    #[serde(flatten)]
    pub registry: RegistryOptions,
}

/// Where login stored the credentials: an auth file's path, or `credential helper: NAME`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "LoginResult")]
pub struct LoggedIn {
    pub stored_in: String,
}

impl Operation for Login {
    const METHOD: &'static str = "Login";
    const ACCESS: Access = Access::Write;
    type Output = LoggedIn;

    fn run(self, _store: &Arc<Store>, call: &mut Call) -> Result<LoggedIn> {
        let ctx = self.registry.context(call, None);
        let stored_in = login::login(&ctx, &self.server, &self.username, &self.password)?;
        Ok(LoggedIn { stored_in })
    }
}

/// `podman logout`: removes the credentials stored for `server` from the auth file and the
/// credential helpers; `ENOENT` when there were none.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct Logout {
    pub server: String,
    #[serde(default)]
    pub registries_conf: Option<String>,
    #[serde(default)]
    pub auth_file: Option<String>,
}

impl Operation for Logout {
    const METHOD: &'static str = "Logout";
    const ACCESS: Access = Access::Write;
    type Output = Done;

    fn run(self, _store: &Arc<Store>, call: &mut Call) -> Result<Done> {
        let options = RegistryOptions {
            registries_conf: self.registries_conf,
            auth_file: self.auth_file,
            ..RegistryOptions::default()
        };
        login::logout(&options.context(call, None), &self.server)?;
        Ok(Done {})
    }
}
