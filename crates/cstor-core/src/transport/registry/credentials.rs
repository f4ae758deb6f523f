//! Registry credentials, found and stored where podman finds and stores them (containers/image's
//! `pkg/docker/config`).
//!
//! registries.conf's `credential-helpers` (default `["containers-auth.json"]`) are asked in
//! order; the first with credentials wins. `containers-auth.json` stands for the auth files:
//! `--authfile` / `$REGISTRY_AUTH_FILE` alone when named; otherwise
//! `${XDG_RUNTIME_DIR}/containers/auth.json` (`/run/containers/<uid>/auth.json` without it),
//! `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`, `${DOCKER_CONFIG:-~/.docker}/config.json`
//! and the legacy `~/.dockercfg`. In each file a `credHelpers` entry for the registry sends the
//! question to that helper; otherwise the `auths` entry for the repository, a namespace of it
//! or the registry (`{"auth": base64("user:password"), "identitytoken": …}`), then entries
//! whose URL-shaped keys name the registry. Any other name is a `docker-credential-NAME`
//! helper ([`super::credential_helper`]), asked for the registry. Docker's `credsStore` is not
//! consulted, as containers/image does not consult it.
//!
//! Storing (`cstor login`) goes to the first helper that takes it: the auth file to write is
//! the named one, else the one in `$XDG_RUNTIME_DIR`, rewritten whole (mode 0600, tab-indented
//! as podman writes it) — unless its `credHelpers` names a helper for the registry.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::config::Environment;
use crate::transport::registry::credential_helper;
use crate::transport::registry::registries_conf::AUTH_FILE_HELPER;
use crate::transport::system_context::{env_path, home_dir, SystemContext};
use crate::write::atomic;

/// A user name and password, or an identity token (an OAuth2 refresh token).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ username: {:?}, .. }}", self.username)
    }
}

/// An auth file: what containers/image reads and writes of it.
#[derive(Serialize, Deserialize, Default)]
struct AuthFile {
    #[serde(default, deserialize_with = "null_as_default")]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(
        rename = "credHelpers",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    identitytoken: String,
}

fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An auth file to read; `legacy` for `~/.dockercfg` (the `auths` map alone).
struct AuthPath {
    path: PathBuf,
    legacy: bool,
}

/// The credentials for `name` (`host[:port]/repository`, or a namespace, or a registry).
pub fn find(ctx: &SystemContext, helpers: &[String], name: &str) -> Result<Option<Credentials>> {
    validate_key(name)?;
    let registry = name.split('/').next().unwrap_or(name);
    let mut errors = Vec::new();
    for helper in helpers {
        let found = match helper.as_str() {
            AUTH_FILE_HELPER => find_in_files(ctx, name, registry),
            helper => from_helper(helper, registry),
        };
        match found {
            Ok(Some(credentials)) => return Ok(Some(credentials)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(None),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Remote {
            code: "EACCES",
            message: format!(
                "looking up credentials for {name}: {}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

fn find_in_files(ctx: &SystemContext, key: &str, registry: &str) -> Result<Option<Credentials>> {
    for file in auth_files(ctx) {
        let contents = parse(&file)?;
        if let Some(helper) = contents.cred_helpers.get(registry) {
            return from_helper(helper, registry);
        }
        let keys: Vec<&str> = match file.legacy {
            true => vec![registry],
            false => {
                let mut keys = vec![key];
                let mut rest = key;
                while let Some(slash) = rest.rfind('/') {
                    rest = &rest[..slash];
                    keys.push(rest);
                }
                keys
            }
        };
        let entry = keys
            .iter()
            .find_map(|k| contents.auths.get_key_value(*k))
            .or_else(|| {
                let registry = normalize_registry(registry);
                contents
                    .auths
                    .iter()
                    .find(|(k, _)| normalize_key(k, file.legacy) == registry)
            });
        if let Some((key, entry)) = entry {
            return decode(&file.path, key, entry);
        }
    }
    Ok(None)
}

fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    Ok(
        credential_helper::get(helper, registry)?.map(|answer| match answer.username.as_str() {
            "<token>" => Credentials {
                identity_token: Some(answer.secret),
                ..Credentials::default()
            },
            _ => Credentials {
                username: answer.username,
                password: answer.secret,
                identity_token: None,
            },
        }),
    )
}

/// Stores `username`/`password` for `key` (a registry, or a namespace in one) with the first
/// helper that takes them; returns where they went.
pub fn store(
    ctx: &SystemContext,
    helpers: &[String],
    key: &str,
    username: &str,
    password: &str,
) -> Result<String> {
    let namespaced = validate_key(key)?;
    let mut errors = Vec::new();
    for helper in helpers {
        let stored = match helper.as_str() {
            AUTH_FILE_HELPER => edit_auth_file(ctx, |file| {
                if let Some(helper) = file.cred_helpers.get(key) {
                    if namespaced {
                        return Err(namespace_refused(helper));
                    }
                    credential_helper::store(helper, key, username, password)?;
                    return Ok((false, Some(format!("credential helper: {helper}"))));
                }
                let pair = format!("{username}:{password}");
                let auth = base64::engine::general_purpose::STANDARD.encode(pair);
                let entry = AuthEntry {
                    auth,
                    identitytoken: String::new(),
                };
                file.auths.insert(key.to_owned(), entry);
                Ok((true, None))
            }),
            helper if namespaced => Err(namespace_refused(helper)),
            helper => credential_helper::store(helper, key, username, password)
                .map(|()| format!("credential helper: {helper}")),
        };
        match stored {
            Ok(place) => return Ok(place),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(Error::Remote {
        code: "EACCES",
        message: format!("storing credentials for {key}: {}", errors.join("; ")),
    })
}

/// Removes `key`'s credentials from every helper; `ENOENT` when none had any.
pub fn remove(ctx: &SystemContext, helpers: &[String], key: &str) -> Result<()> {
    let namespaced = validate_key(key)?;
    let mut logged_in = false;
    let mut errors = Vec::new();
    let erase = |helper: &str, logged_in: &mut bool| -> Result<()> {
        if !namespaced && credential_helper::erase(helper, key)? {
            *logged_in = true;
        }
        Ok(())
    };
    for helper in helpers {
        let removed = match helper.as_str() {
            AUTH_FILE_HELPER => edit_auth_file(ctx, |file| {
                let from_helper = match file.cred_helpers.get(key) {
                    Some(helper) => erase(helper, &mut logged_in),
                    None => Ok(()),
                };
                if file.auths.remove(key).is_some() {
                    logged_in = true;
                }
                from_helper.map(|()| (true, None))
            })
            .map(drop),
            helper => erase(helper, &mut logged_in),
        };
        if let Err(e) = removed {
            errors.push(e.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(Error::Remote {
            code: "EACCES",
            message: format!("removing credentials for {key}: {}", errors.join("; ")),
        });
    }
    match logged_in {
        true => Ok(()),
        false => Err(Error::io(
            key,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("not logged into {key}"),
            ),
        )),
    }
}

fn namespace_refused(helper: &str) -> Error {
    Error::InvalidArgument(format!(
        "namespaced key is not supported for credential helper {helper}"
    ))
}

/// Reads the auth file login writes, lets `edit` change it, and writes it back when `edit`
/// says so. Returns `edit`'s description of where the credentials went, or the file.
fn edit_auth_file(
    ctx: &SystemContext,
    edit: impl FnOnce(&mut AuthFile) -> Result<(bool, Option<String>)>,
) -> Result<String> {
    let path = auth_file_to_write(ctx)?;
    let file = AuthPath {
        path: path.clone(),
        legacy: false,
    };
    let mut contents = parse(&file)?;
    let (changed, description) = edit(&mut contents)?;
    if changed {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let dir = cap_std::fs::Dir::open_ambient_dir(&parent, cap_std::ambient_authority())
            .map_err(|e| Error::io(&parent, e))?;
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::InvalidArgument(format!("{} is not a file name", path.display()))
        })?;
        atomic::write_file(&dir, name, &to_json(&contents), 0o600, &path)?;
    }
    Ok(description.unwrap_or_else(|| path.display().to_string()))
}

/// JSON as Go's `json.MarshalIndent(v, "", "\t")` writes it.
fn to_json(contents: &AuthFile) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    contents
        .serialize(&mut serializer)
        .expect("maps of strings serialize");
    out
}

/// The auth file containers/image reads first and login writes (`getPathToAuth`).
fn auth_file_to_write(ctx: &SystemContext) -> Result<PathBuf> {
    if let Some(path) = ctx.auth_file_path() {
        return Ok(path);
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(runtime) if !runtime.exists() => Err(Error::io(
            &runtime,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the directory $XDG_RUNTIME_DIR names does not exist: create it or unset XDG_RUNTIME_DIR",
            ),
        )),
        Some(runtime) => Ok(runtime.join("containers/auth.json")),
        // The user's, in `podman unshare` too (where podman has set XDG_RUNTIME_DIR anyway).
        None => Ok(PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            Environment::current().rootless_uid()
        ))),
    }
}

/// The auth files in the order containers/image reads them (`getAuthFilePaths`).
fn auth_files(ctx: &SystemContext) -> Vec<AuthPath> {
    let file = |path: PathBuf| AuthPath {
        path,
        legacy: false,
    };
    if let Some(path) = ctx.auth_file_path() {
        return vec![file(path)];
    }
    let home = home_dir();
    let mut files = Vec::new();
    // A $XDG_RUNTIME_DIR that does not exist is skipped (podman warns and goes on).
    if let Ok(path) = auth_file_to_write(ctx) {
        files.push(file(path));
    }
    let config = env_path("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
    files.push(file(config.join("containers/auth.json")));
    let docker = env_path("DOCKER_CONFIG").unwrap_or_else(|| home.join(".docker"));
    files.push(file(docker.join("config.json")));
    files.push(AuthPath {
        path: home.join(".dockercfg"),
        legacy: true,
    });
    files
}

/// An auth file's contents; a missing file is an empty one, a file that is not JSON an error.
fn parse(file: &AuthPath) -> Result<AuthFile> {
    let bytes = match std::fs::read(&file.path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuthFile::default()),
        Err(e) => return Err(Error::io(&file.path, e)),
    };
    let bad = |e: serde_json::Error| Error::Config {
        path: file.path.clone(),
        detail: e.to_string(),
    };
    match file.legacy {
        true => Ok(AuthFile {
            auths: serde_json::from_slice::<Option<_>>(&bytes)
                .map_err(bad)?
                .unwrap_or_default(),
            cred_helpers: BTreeMap::new(),
        }),
        false => serde_json::from_slice::<Option<AuthFile>>(&bytes)
            .map(Option::unwrap_or_default)
            .map_err(bad),
    }
}

/// An entry's credentials; one whose `auth` has no `user:` part holds none (Docker writes
/// such entries beside a credential helper).
fn decode(path: &Path, key: &str, entry: &AuthEntry) -> Result<Option<Credentials>> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.trim())
        .map_err(|e| Error::Config {
            path: path.to_owned(),
            detail: format!("the entry for {key} is not base64: {e}"),
        })?;
    let text = String::from_utf8_lossy(&decoded);
    let Some((username, password)) = text.split_once(':') else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        username: username.to_owned(),
        password: password.trim_matches('\0').to_owned(),
        identity_token: Some(entry.identitytoken.clone()).filter(|t| !t.is_empty()),
    }))
}

/// A URL-shaped key (`https://host/v1/`) as the host it names; Docker Hub's names as one.
fn normalize_key(key: &str, legacy: bool) -> String {
    let stripped = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    let host = match legacy || stripped != key {
        true => stripped.split('/').next().unwrap_or(stripped),
        false => stripped,
    };
    normalize_registry(host).to_owned()
}

fn normalize_registry(registry: &str) -> &str {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

/// A key may name a registry, a namespace or a repository, never a URL, tag or digest;
/// `true` when it is more than a registry.
pub(crate) fn validate_key(key: &str) -> Result<bool> {
    let refuse = |why: &str| Err(Error::InvalidArgument(format!("key {key:?} {why}")));
    if key.starts_with("http://") || key.starts_with("https://") {
        return refuse("has an http[s]:// prefix");
    }
    if key.contains('@') {
        return refuse("contains '@'");
    }
    match key.split_once('/') {
        Some((_, rest)) if rest.contains(':') => refuse("has a ':' after host[:port]"),
        Some(_) => Ok(true),
        None if key.is_empty() => refuse("is empty"),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(file: &Path) -> SystemContext {
        SystemContext {
            auth_file: Some(file.to_owned()),
            ..SystemContext::default()
        }
    }

    #[test]
    fn entries_are_found_most_specific_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &file,
            serde_json::json!({
                "auths": {
                    "quay.io": {"auth": b64("reg:pw")},
                    "quay.io/team": {"auth": b64("team:pa:ss\0"), "identitytoken": "tok"},
                    "https://index.docker.io/v1/": {"auth": b64("hub:pw")},
                    "helper.io": {"auth": ""},
                },
                "credsStore": "ignored",
            })
            .to_string(),
        )
        .unwrap();
        let helpers = [AUTH_FILE_HELPER.to_owned()];
        let find = |name: &str| find(&ctx(&file), &helpers, name).unwrap();
        let team = find("quay.io/team/app").unwrap();
        assert_eq!(
            (team.username.as_str(), team.password.as_str()),
            ("team", "pa:ss")
        );
        assert_eq!(team.identity_token.as_deref(), Some("tok"));
        assert_eq!(find("quay.io/other/app").unwrap().username, "reg");
        assert_eq!(find("docker.io/library/alpine").unwrap().username, "hub");
        assert_eq!(find("helper.io/x"), None);
        assert_eq!(find("elsewhere.io/x"), None);
        assert!(validate_key("quay.io/x:1").is_err() && validate_key("a@b").is_err());
        assert!(validate_key("localhost:5000").is_ok_and(|ns| !ns));
    }

    #[test]
    fn login_writes_what_podman_writes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("new/auth.json");
        let helpers = [AUTH_FILE_HELPER.to_owned()];
        let place = store(&ctx(&file), &helpers, "localhost:5000", "user", "pass").unwrap();
        assert_eq!(place, file.display().to_string());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "{\n\t\"auths\": {\n\t\t\"localhost:5000\": {\n\t\t\t\"auth\": \"dXNlcjpwYXNz\"\n\t\t}\n\t}\n}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        remove(&ctx(&file), &helpers, "localhost:5000").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "{\n\t\"auths\": {}\n}"
        );
        assert_eq!(
            remove(&ctx(&file), &helpers, "localhost:5000")
                .unwrap_err()
                .code(),
            "ENOENT"
        );
        std::fs::write(&file, "{not json").unwrap();
        assert_eq!(
            find(&ctx(&file), &helpers, "localhost:5000")
                .unwrap_err()
                .code(),
            "ECONFIG"
        );
    }
}
