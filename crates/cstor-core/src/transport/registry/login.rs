//! `cstor login` / `cstor logout`, as podman's (containers/common's `pkg/auth` over
//! containers/image): login checks the credentials against the registry (`GET /v2/` answered
//! 200, with the registry's TLS settings and `blocked` from registries.conf) before storing
//! them ([`credentials::store`]); logout removes them from every helper and auth file, and
//! says so when there were none.

use crate::error::Result;
use crate::transport::registry::client::Client;
use crate::transport::registry::credentials::{self, Credentials};
use crate::transport::registry::registries_conf::RegistriesConf;
use crate::transport::registry::source::blocked;
use crate::transport::registry::Reference;
use crate::transport::system_context::SystemContext;

/// Logs `username` into `server` (`host[:port]`, or a namespace in it; a URL is cut to its
/// host); returns where the credentials were stored.
pub fn login(ctx: &SystemContext, server: &str, username: &str, password: &str) -> Result<String> {
    let key = credentials_key(server);
    credentials::validate_key(&key)?;
    let conf = RegistriesConf::load(ctx)?;
    let registry = key.split('/').next().unwrap_or(&key).to_owned();
    let insecure = match conf.find_registry(&registry) {
        Some(found) if found.blocked => return Err(blocked(&found.prefix, &conf)),
        Some(found) => found.primary.insecure,
        None => false,
    };
    let offered = Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
        identity_token: None,
    };
    let reference = Reference::registry(&registry);
    Client::connect(ctx, reference, insecure, Some(offered), false)?.check_auth()?;
    credentials::store(ctx, &conf.credential_helpers, &key, username, password)
}

/// Removes the credentials stored for `server`; `ENOENT` when there were none.
pub fn logout(ctx: &SystemContext, server: &str) -> Result<()> {
    let key = credentials_key(server);
    let conf = RegistriesConf::load(ctx)?;
    credentials::remove(ctx, &conf.credential_helpers, &key)
}

/// What credentials are stored under: a URL's `host[:port]`, or the argument as it is.
fn credentials_key(server: &str) -> String {
    match server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
    {
        Some(rest) => rest.split('/').next().unwrap_or(rest).to_owned(),
        None => server.trim_end_matches('/').to_owned(),
    }
}
