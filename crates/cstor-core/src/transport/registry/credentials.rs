//! Registry credentials, found where podman and skopeo (containers/image's
//! `pkg/docker/config`) look, in their order: `$REGISTRY_AUTH_FILE`, else
//! `${XDG_RUNTIME_DIR}/containers/auth.json` (`/run/containers/<uid>/auth.json` without it);
//! then `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`; then Docker's
//! `${DOCKER_CONFIG:-~/.docker}/config.json`. The first file holding an entry for the registry
//! wins.
//!
//! An entry is `{"auths": {"KEY": {"auth": base64("user:password")}}}`. KEY is a registry
//! (`quay.io`, `localhost:5000`, Docker's legacy `https://index.docker.io/v1/`) or a namespace
//! in one (`quay.io/team`); the most specific key matching the repository is taken, as
//! containers/image does. Credential helpers (`credHelpers`, `credsStore`) are not run.

use std::path::PathBuf;

use base64::Engine;
use serde_json::Value;

use crate::error::{Error, Result};

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ username: {:?}, .. }}", self.username)
    }
}

/// The credentials stored for `repository` on the registry `domain`, if any.
pub fn find(domain: &str, repository: &str) -> Result<Option<Credentials>> {
    for path in auth_files() {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |detail: String| Error::Config {
            path: path.clone(),
            detail,
        };
        let file: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let Some(auths) = file.get("auths").and_then(Value::as_object) else {
            continue;
        };
        for key in keys(domain, repository) {
            let entry = auths
                .iter()
                .find(|(k, _)| normalize_key(k) == key)
                .map(|(_, v)| v);
            if let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) {
                return decode(auth).map(Some).ok_or_else(|| {
                    bad(format!(
                        "the entry for {key} is not base64 of user:password"
                    ))
                });
            }
        }
    }
    Ok(None)
}

/// The auth files in the order containers/image reads them.
fn auth_files() -> Vec<PathBuf> {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut files = Vec::new();
    match (env("REGISTRY_AUTH_FILE"), env("XDG_RUNTIME_DIR")) {
        (Some(file), _) => files.push(file),
        (None, Some(runtime)) => files.push(runtime.join("containers/auth.json")),
        (None, None) => files.push(PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::getuid().as_raw()
        ))),
    }
    if let Some(config) =
        env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        files.push(config.join("containers/auth.json"));
    }
    if let Some(docker) = env("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker")))
    {
        files.push(docker.join("config.json"));
    }
    files
}

/// The keys an entry for `domain/repository` may have, most specific first.
fn keys(domain: &str, repository: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut path = format!("{domain}/{repository}");
    loop {
        keys.push(path.clone());
        match path.rfind('/') {
            Some(slash) => path.truncate(slash),
            None => break,
        }
    }
    keys
}

/// A key as containers/image compares it: no scheme, Docker Hub's legacy names as `docker.io`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.strip_suffix('/').unwrap_or(key);
    match key {
        "index.docker.io/v1" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.strip_suffix("/v1").unwrap_or(other).to_owned(),
    }
}

fn decode(auth: &str) -> Option<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials {
        username: username.to_owned(),
        password: password.trim_end_matches('\n').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_from_the_repository_to_the_registry() {
        assert_eq!(
            keys("quay.io", "team/app"),
            ["quay.io/team/app", "quay.io/team", "quay.io"]
        );
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://localhost:5000"), "localhost:5000");
        let user = decode("dXNlcjpwYTpzcw==").unwrap();
        assert_eq!(
            (user.username.as_str(), user.password.as_str()),
            ("user", "pa:ss")
        );
        assert!(decode("not base64!").is_none());
    }
}
