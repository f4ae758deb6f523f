//! Short names (`myapp:1`, `team/app`) resolved as podman resolves them for a pull
//! (containers/image's `pkg/shortnames`), to the fully qualified references to try in order:
//!
//! 1. A name with a registry (`quay.io/x`, `localhost/x`, `host:5000/x`) is itself, with
//!    `:latest` when it has neither tag nor digest.
//! 2. An alias — from the short-name alias cache podman records choices in
//!    (`/var/cache/containers/short-name-aliases.conf` for root,
//!    `${XDG_CACHE_HOME:-~/.cache}/containers/short-name-aliases.conf` otherwise), then from
//!    registries.conf's `[aliases]` — is the one candidate, with the name's tag or digest.
//! 3. Otherwise each `unqualified-search-registries` entry gives a candidate. With more than
//!    one, `short-name-mode` decides: `disabled` and `permissive` try them all in order;
//!    `enforcing` refuses, naming them. podman would prompt on a terminal; cstor is a library
//!    and never prompts, so it acts as podman does without one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::config::Environment;
use crate::store::lock;
use crate::store::names::ImageName;
use crate::transport::registry::registries_conf::{
    alias_value, check_short_name, Alias, RegistriesConf, ShortNameMode,
};
use crate::transport::system_context::{env_path, home_dir};

const CACHE_FILE: &str = "containers/short-name-aliases.conf";

/// The references a name may be pulled from, in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Fully qualified, each with a tag or a digest.
    pub candidates: Vec<String>,
    /// How they were found (`Resolved "x" as an alias (FILE)`), for messages; `None` for a
    /// name that was qualified already.
    pub description: Option<String>,
}

/// Resolves `name` with `conf`'s aliases and search registries and the alias cache.
pub fn resolve(name: &str, conf: &RegistriesConf) -> Result<Resolved> {
    resolve_with_cache(name, conf, &cached_aliases(&cache_path())?)
}

pub(crate) fn resolve_with_cache(
    name: &str,
    conf: &RegistriesConf,
    cache: &BTreeMap<String, Alias>,
) -> Result<Resolved> {
    let parsed = ImageName::parse(name)
        .ok_or_else(|| Error::InvalidArgument(format!("{name:?} is not an image reference")))?;
    let with_tag = |repository: &str| match (&parsed.tag, &parsed.digest) {
        (None, None) => format!("{repository}:latest"),
        (tag, digest) => format!(
            "{repository}{}{}",
            tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default(),
            digest
                .as_deref()
                .map(|d| format!("@{d}"))
                .unwrap_or_default()
        ),
    };
    if parsed.domain.is_some() {
        return Ok(Resolved {
            candidates: vec![with_tag(&parsed.repository())],
            description: None,
        });
    }
    let alias = cache
        .get(&parsed.path)
        .or_else(|| conf.aliases.get(&parsed.path));
    if let Some(Alias {
        value: Some(value),
        origin,
    }) = alias
    {
        return Ok(Resolved {
            candidates: vec![with_tag(value)],
            description: Some(format!(
                "Resolved {:?} as an alias ({})",
                parsed.path,
                origin.display()
            )),
        });
    }
    let origin = conf
        .unqualified_search_registries_origin
        .as_deref()
        .map(|p| p.display().to_string());
    if conf.unqualified_search_registries.is_empty() {
        return Err(Error::InvalidArgument(match origin {
            Some(origin) => format!("short-name {name:?} did not resolve to an alias and no unqualified-search registries are defined in {origin:?}"),
            None => format!("short-name {name:?} did not resolve to an alias and no containers-registries.conf(5) was found"),
        }));
    }
    let mut candidates = Vec::new();
    for registry in &conf.unqualified_search_registries {
        let qualified = ImageName::parse(&format!("{registry}/{}", parsed.path))
            .filter(|n| n.domain.is_some())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{registry}/{name} is not a reference (unqualified-search registry {registry:?})"
                ))
            })?;
        candidates.push(with_tag(&qualified.repository()));
    }
    if candidates.len() > 1 && conf.short_name_mode == ShortNameMode::Enforcing {
        return Err(Error::Ambiguous {
            reference: format!("{name} (short-name-mode is enforcing and cstor does not prompt)"),
            candidates,
        });
    }
    Ok(Resolved {
        candidates,
        description: Some(format!(
            "Resolving {:?} using unqualified-search registries ({})",
            parsed.path,
            origin.unwrap_or_default()
        )),
    })
}

/// Where podman records the short names a user chose at its prompt: the user's cache for a
/// rootless user, in `podman unshare` too (`_CONTAINERS_ROOTLESS_UID`).
fn cache_path() -> PathBuf {
    if !Environment::current().rootless() {
        return Path::new("/var/cache").join(CACHE_FILE);
    }
    env_path("XDG_CACHE_HOME")
        .unwrap_or_else(|| home_dir().join(".cache"))
        .join(CACHE_FILE)
}

#[derive(Deserialize, Default)]
struct CacheFile {
    aliases: Option<BTreeMap<String, String>>,
}

/// The alias cache's entries, read under its lock file (`<file>.lock`, which podman takes for
/// writing while it rewrites the file in place); none when there is no cache.
pub(crate) fn cached_aliases(path: &Path) -> Result<BTreeMap<String, Alias>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(BTreeMap::new());
    };
    let dir = match cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority()) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut lock_name = name.to_owned();
    lock_name.push(".lock");
    let _guard = lock::read_lock(&dir, Path::new(&lock_name))?;
    let text = match dir.read_to_string(name) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |detail: String| Error::Config {
        path: path.to_owned(),
        detail,
    };
    let file: CacheFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut aliases = BTreeMap::new();
    for (name, value) in file.aliases.unwrap_or_default() {
        check_short_name(&name).map_err(bad)?;
        let value = match value.as_str() {
            "" => None,
            value => Some(alias_value(value).map_err(bad)?),
        };
        let origin = path.to_owned();
        aliases.insert(name, Alias { value, origin });
    }
    Ok(aliases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::registry::registries_conf::ConfigFiles;

    fn conf(text: &str) -> (tempfile::TempDir, RegistriesConf) {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("registries.conf");
        std::fs::write(&main, text).unwrap();
        let files = ConfigFiles {
            main,
            explicit: true,
            dirs: Vec::new(),
        };
        let conf = RegistriesConf::load_files(&files).unwrap();
        (dir, conf)
    }

    #[test]
    fn short_names_resolve_as_podman_resolves_them() {
        let (dir, two) = conf(
            "unqualified-search-registries = [\"a.io\", \"docker.io\"]\n[aliases]\napp = \"quay.io/team/app\"\nold = \"\"\n",
        );
        let none = BTreeMap::new();
        let resolve = |name: &str, conf: &RegistriesConf| resolve_with_cache(name, conf, &none);
        assert_eq!(
            resolve("app:1", &two).unwrap().candidates,
            ["quay.io/team/app:1"]
        );
        assert_eq!(
            resolve("localhost:5000/x", &two).unwrap(),
            Resolved {
                candidates: vec!["localhost:5000/x:latest".into()],
                description: None
            }
        );
        assert_eq!(
            resolve("old", &two).unwrap().candidates,
            ["a.io/old:latest", "docker.io/library/old:latest"]
        );
        let digest = format!("sha256:{}", "b".repeat(64));
        assert_eq!(
            resolve(&format!("ns/x@{digest}"), &two).unwrap().candidates,
            [
                format!("a.io/ns/x@{digest}"),
                format!("docker.io/ns/x@{digest}")
            ]
        );

        let (_d, enforcing) = conf(
            "unqualified-search-registries = [\"a.io\", \"b.io\"]\nshort-name-mode = \"enforcing\"\n",
        );
        let err = resolve("x", &enforcing).unwrap_err();
        assert_eq!(err.code(), "EAMBIGUOUS");
        assert!(
            err.to_string().contains("a.io/x:latest, b.io/x:latest"),
            "{err}"
        );
        let (_d, one) =
            conf("unqualified-search-registries = [\"a.io\"]\nshort-name-mode = \"enforcing\"\n");
        assert_eq!(resolve("x", &one).unwrap().candidates, ["a.io/x:latest"]);
        let (_d, empty) = conf("");
        assert_eq!(resolve("x", &empty).unwrap_err().code(), "EINVAL");

        // The cache wins over registries.conf, under its lock file.
        let cache = dir.path().join("cache/short-name-aliases.conf");
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        std::fs::write(&cache, "[aliases]\n  app = \"b.io/app\"\n").unwrap();
        std::fs::write(dir.path().join("cache/short-name-aliases.conf.lock"), "").unwrap();
        let cached = cached_aliases(&cache).unwrap();
        assert_eq!(
            resolve_with_cache("app", &two, &cached).unwrap().candidates,
            ["b.io/app:latest"]
        );
        assert!(cached_aliases(&dir.path().join("nowhere/x.conf"))
            .unwrap()
            .is_empty());
        std::fs::write(&cache, "[aliases]\n\"b.io/app\" = \"b.io/app\"\n").unwrap();
        assert_eq!(cached_aliases(&cache).unwrap_err().code(), "ECONFIG");
    }
}
