//! registries.conf as containers/image's `sysregistriesv2` reads it, so a pull goes where
//! podman's would: the same file, the same drop-ins in the same order, the same merge and the
//! same validation.
//!
//! - The file: `--registries-conf` / `$CONTAINERS_REGISTRIES_CONF` when named (it must exist);
//!   else `~/.config/containers/registries.conf` when it exists, with only the user's drop-in
//!   directory; else `/etc/containers/registries.conf` (may be missing) with the system's
//!   drop-ins, then the user's. `~` is `$HOME`, for root too.
//! - Drop-ins: `*.conf` regular files of `registries.conf.d/`, each directory in name order,
//!   v2 format only. A `[[registry]]` replaces the one with the same `prefix`;
//!   `unqualified-search-registries`, `credential-helpers` and `short-name-mode` replace the
//!   earlier value when present (an empty list too); `[aliases]` merge name by name, and an
//!   alias set to `""` removes an earlier one.
//! - v1 files (`[registries.search]`, `[registries.insecure]`, `[registries.block]`) are
//!   converted as containers/image converts them; a file mixing v1 and v2 is refused.
//! - A registry's `prefix` defaults to its `location`; `*.example.com` matches subdomains. The
//!   longest matching prefix wins. Mirrors come first for a pull, then the primary, filtered by
//!   `pull-from-mirror` (`all`, `digest-only`, `tag-only`) or the registry's
//!   `mirror-by-digest-only`.
//!
//! Unknown keys are ignored, as containers/image ignores them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::store::names::ImageName;
use crate::transport::system_context::{home_dir, SystemContext};

const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
const SYSTEM_DIR: &str = "/etc/containers/registries.conf.d";
const USER_FILE: &str = ".config/containers/registries.conf";
const USER_DIR: &str = ".config/containers/registries.conf.d";

/// The name `credential-helpers` uses for the auth files themselves.
pub const AUTH_FILE_HELPER: &str = "containers-auth.json";

/// Where a registry is reached: a primary location or one of its mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(rename = "RegistryEndpoint")]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// `host[:port][/namespace]`.
    pub location: String,
    /// TLS unverified, and plain HTTP allowed.
    pub insecure: bool,
    /// For a mirror: `all`, `digest-only` or `tag-only` (absent: all, unless the registry has
    /// `mirror-by-digest-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub pull_from_mirror: Option<String>,
}

/// A `[[registry]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(rename = "RegistryConfig")]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    /// What references it applies to: `host[:port][/namespace…]` or `*.domain`.
    pub prefix: String,
    #[serde(flatten)]
    pub primary: Endpoint,
    pub mirrors: Vec<Endpoint>,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
}

/// How a short name with several unqualified-search registries resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ShortNameMode {
    /// Try every candidate in order.
    Disabled,
    /// Prompt on a terminal, else try every candidate.
    Permissive,
    /// Prompt on a terminal, else refuse.
    Enforcing,
}

/// A short-name alias and the file that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(rename = "ShortNameAlias")]
pub struct Alias {
    /// The fully qualified repository, or `None` when a later file reset it with `""`.
    pub value: Option<String>,
    pub origin: PathBuf,
}

/// The merged configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RegistriesConf {
    /// The files read, in order (the main file first, when it exists).
    pub files: Vec<PathBuf>,
    /// Sorted by prefix, one per prefix.
    pub registries: Vec<Registry>,
    pub unqualified_search_registries: Vec<String>,
    /// The file that set `unqualified-search-registries`, for messages.
    pub unqualified_search_registries_origin: Option<PathBuf>,
    pub short_name_mode: ShortNameMode,
    pub aliases: BTreeMap<String, Alias>,
    /// `containers-auth.json` (the auth files) and `docker-credential-NAME` helpers, in order.
    pub credential_helpers: Vec<String>,
}

/// One place to try a pull from, with the reference rewritten for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    pub endpoint: Endpoint,
    /// `host[:port]/repository[:tag][@digest]` at that endpoint.
    pub reference: String,
    /// Whether this is a mirror (not the registry's own location).
    pub mirror: bool,
}

/// The files containers/image reads, found as its `newConfigWrapper` finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigFiles {
    pub main: PathBuf,
    /// Whether `main` was named explicitly (then it must exist).
    pub explicit: bool,
    pub dirs: Vec<PathBuf>,
}

impl ConfigFiles {
    pub fn find(ctx: &SystemContext, home: &Path) -> ConfigFiles {
        let user_file = home.join(USER_FILE);
        let user_dir = home.join(USER_DIR);
        if let Some(main) = ctx.registries_conf_path() {
            return ConfigFiles {
                main,
                explicit: true,
                dirs: vec![SYSTEM_DIR.into(), user_dir],
            };
        }
        if user_file.exists() {
            return ConfigFiles {
                main: user_file,
                explicit: false,
                dirs: vec![user_dir],
            };
        }
        ConfigFiles {
            main: SYSTEM_FILE.into(),
            explicit: false,
            dirs: vec![SYSTEM_DIR.into(), user_dir],
        }
    }
}

impl RegistriesConf {
    /// The configuration a pull with `ctx` uses.
    pub fn load(ctx: &SystemContext) -> Result<RegistriesConf> {
        RegistriesConf::load_files(&ConfigFiles::find(ctx, &home_dir()))
    }

    pub(crate) fn load_files(files: &ConfigFiles) -> Result<RegistriesConf> {
        let mut conf = match std::fs::read_to_string(&files.main) {
            Ok(text) => {
                let mut conf = Parsed::parse(&files.main, &text, false)?.into_conf();
                conf.files.push(files.main.clone());
                conf
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !files.explicit => {
                Parsed::default().into_conf()
            }
            Err(e) => return Err(Error::io(&files.main, e)),
        };
        for path in drop_ins(&files.dirs)? {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                // Removed between the listing and the read: containers/image skips it too.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            };
            conf.merge(Parsed::parse(&path, &text, true)?);
            conf.files.push(path);
        }
        if conf.credential_helpers.is_empty() {
            conf.credential_helpers = vec![AUTH_FILE_HELPER.to_owned()];
        }
        Ok(conf)
    }

    /// A drop-in's settings over these.
    fn merge(&mut self, update: Parsed) {
        let mut by_prefix: BTreeMap<String, Registry> = std::mem::take(&mut self.registries)
            .into_iter()
            .map(|r| (r.prefix.clone(), r))
            .collect();
        for registry in update.registries {
            by_prefix.insert(registry.prefix.clone(), registry);
        }
        self.registries = by_prefix.into_values().collect();
        if let Some(search) = update.unqualified_search_registries {
            self.unqualified_search_registries = search;
            self.unqualified_search_registries_origin = Some(update.path);
        }
        if let Some(helpers) = update.credential_helpers {
            self.credential_helpers = helpers;
        }
        if let Some(mode) = update.short_name_mode {
            self.short_name_mode = mode;
        }
        self.aliases.extend(update.aliases);
    }

    /// The registry whose prefix matches `name` (`host[:port]/repository`, or a reference with
    /// a tag or digest) longest, as `FindRegistry`.
    pub fn find_registry(&self, name: &str) -> Option<&Registry> {
        self.registries
            .iter()
            .filter(|r| prefix_match(name, &r.prefix).is_some())
            .max_by(|a, b| {
                // Equal lengths: the first in prefix order, as containers/image keeps it.
                a.prefix
                    .len()
                    .cmp(&b.prefix.len())
                    .then(b.prefix.cmp(&a.prefix))
            })
    }

    /// Where to pull `reference` (fully qualified, with a tag or a digest) from, in order:
    /// the mirrors that apply, then the primary — or the reference itself when no registry
    /// matches.
    pub fn pull_sources(&self, reference: &str) -> Result<Vec<PullSource>> {
        let Some(registry) = self.find_registry(reference) else {
            return Ok(vec![PullSource {
                endpoint: Endpoint {
                    location: reference.to_owned(),
                    insecure: false,
                    pull_from_mirror: None,
                },
                reference: reference.to_owned(),
                mirror: false,
            }]);
        };
        let digested = reference.contains('@');
        let mirrors = registry.mirrors.iter().filter(|mirror| {
            if registry.mirror_by_digest_only {
                return digested;
            }
            match mirror.pull_from_mirror.as_deref() {
                Some("digest-only") => digested,
                Some("tag-only") => !digested,
                _ => true,
            }
        });
        let mut sources = Vec::new();
        for mirror in mirrors {
            sources.push(PullSource {
                reference: rewrite(reference, &registry.prefix, &mirror.location)?,
                endpoint: mirror.clone(),
                mirror: true,
            });
        }
        sources.push(PullSource {
            reference: rewrite(reference, &registry.prefix, &registry.primary.location)?,
            endpoint: registry.primary.clone(),
            mirror: false,
        });
        Ok(sources)
    }
}

/// `reference` with `prefix` replaced by `location` (`rewriteReference`); a wildcard prefix
/// without a location leaves it as it is.
fn rewrite(reference: &str, prefix: &str, location: &str) -> Result<String> {
    let matched = prefix_match(reference, prefix).ok_or_else(|| {
        Error::InvalidArgument(format!("invalid prefix {prefix:?} for {reference:?}"))
    })?;
    if location.is_empty() {
        return Ok(reference.to_owned());
    }
    let rewritten = format!("{location}{}", &reference[matched..]);
    match ImageName::parse(&rewritten) {
        Some(name) if name.domain.is_some() => Ok(rewritten),
        _ => Err(Error::InvalidArgument(format!(
            "rewriting {reference:?} for {location:?} gives {rewritten:?}, not a reference"
        ))),
    }
}

/// The length of `prefix`'s match in `reference` (`refMatchingPrefix`): the whole prefix,
/// followed by the end, `:`, `/` or `@`; for `*.domain`, a subdomain in the first component.
fn prefix_match(reference: &str, prefix: &str) -> Option<usize> {
    let end = match prefix.strip_prefix('*') {
        Some(suffix) => {
            let at = reference.find(suffix)?;
            if reference[..at].contains('/') {
                return None;
            }
            at + suffix.len()
        }
        None if reference.starts_with(prefix) => prefix.len(),
        None => return None,
    };
    match reference.as_bytes().get(end) {
        None | Some(b':' | b'/' | b'@') => Some(end),
        _ => None,
    }
}

/// The `*.conf` files of the drop-in directories, each directory in name order.
fn drop_ins(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut here = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            let name = entry.file_name();
            if !file_type.is_dir() && name.to_string_lossy().ends_with(".conf") {
                here.push(entry.path());
            }
        }
        here.sort();
        files.extend(here);
    }
    Ok(files)
}

/// One file, validated: what it sets, `None` where it says nothing.
#[derive(Default)]
struct Parsed {
    path: PathBuf,
    registries: Vec<Registry>,
    unqualified_search_registries: Option<Vec<String>>,
    credential_helpers: Option<Vec<String>>,
    short_name_mode: Option<ShortNameMode>,
    aliases: BTreeMap<String, Alias>,
}

#[derive(Deserialize, Default)]
struct RawFile {
    registry: Option<Vec<RawRegistry>>,
    #[serde(rename = "unqualified-search-registries")]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(rename = "credential-helpers")]
    credential_helpers: Option<Vec<String>>,
    #[serde(rename = "short-name-mode")]
    short_name_mode: Option<String>,
    #[serde(rename = "additional-layer-store-auth-helper")]
    additional_layer_store_auth_helper: Option<String>,
    aliases: Option<BTreeMap<String, String>>,
    /// The v1 format.
    registries: Option<RawV1>,
}

#[derive(Deserialize, Default)]
struct RawRegistry {
    prefix: Option<String>,
    location: Option<String>,
    insecure: Option<bool>,
    blocked: Option<bool>,
    mirror: Option<Vec<RawMirror>>,
    #[serde(rename = "mirror-by-digest-only")]
    mirror_by_digest_only: Option<bool>,
    #[serde(rename = "pull-from-mirror")]
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawMirror {
    location: Option<String>,
    insecure: Option<bool>,
    #[serde(rename = "pull-from-mirror")]
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawV1 {
    search: Option<RawV1List>,
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize, Default)]
struct RawV1List {
    registries: Option<Vec<String>>,
}

impl RawV1 {
    fn lists(&self) -> [Option<&Vec<String>>; 3] {
        [&self.search, &self.insecure, &self.block].map(|l| l.as_ref()?.registries.as_ref())
    }
}

impl Parsed {
    fn parse(path: &Path, text: &str, drop_in: bool) -> Result<Parsed> {
        let bad = |detail: String| Error::Config {
            path: path.to_owned(),
            detail,
        };
        let mut raw: RawFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let v1 = raw.registries.take().unwrap_or_default();
        if v1.lists().iter().any(Option::is_some) {
            if drop_in {
                return Err(bad("a drop-in must be in the v2 format, this is v1".into()));
            }
            let v2_set = raw.registry.is_some()
                || raw.unqualified_search_registries.is_some()
                || raw.credential_helpers.is_some()
                || raw
                    .short_name_mode
                    .as_deref()
                    .is_some_and(|m| !m.is_empty())
                || raw
                    .additional_layer_store_auth_helper
                    .as_deref()
                    .is_some_and(|h| !h.is_empty())
                || raw.aliases.is_some();
            if v2_set {
                return Err(bad("it mixes the v1 and v2 formats".into()));
            }
            raw = v1.into_v2();
        }
        let mut parsed = Parsed {
            path: path.to_owned(),
            registries: validate_registries(raw.registry.unwrap_or_default()).map_err(bad)?,
            credential_helpers: raw.credential_helpers,
            ..Parsed::default()
        };
        if let Some(search) = raw.unqualified_search_registries {
            let mut checked = Vec::new();
            for entry in search {
                let location = parse_location(&entry).map_err(bad)?;
                if !is_domain(&location) {
                    return Err(bad(format!(
                        "invalid unqualified-search-registries entry {entry:?}"
                    )));
                }
                checked.push(location);
            }
            parsed.unqualified_search_registries = Some(checked);
        }
        parsed.short_name_mode = match raw.short_name_mode.as_deref() {
            None | Some("") => None,
            Some("disabled") => Some(ShortNameMode::Disabled),
            Some("permissive") => Some(ShortNameMode::Permissive),
            Some("enforcing") => Some(ShortNameMode::Enforcing),
            Some(other) => return Err(bad(format!("invalid short-name mode {other:?}"))),
        };
        parsed.aliases = parse_aliases(path, raw.aliases.unwrap_or_default()).map_err(bad)?;
        Ok(parsed)
    }

    fn into_conf(self) -> RegistriesConf {
        let origin = self
            .unqualified_search_registries
            .is_some()
            .then(|| self.path.clone());
        RegistriesConf {
            files: Vec::new(),
            registries: self.registries,
            unqualified_search_registries: self.unqualified_search_registries.unwrap_or_default(),
            unqualified_search_registries_origin: origin,
            short_name_mode: self.short_name_mode.unwrap_or(ShortNameMode::Permissive),
            aliases: self.aliases,
            credential_helpers: self.credential_helpers.unwrap_or_default(),
        }
    }
}

impl RawV1 {
    /// The v2 equivalent (`ConvertToV2`): blocked registries first, then insecure ones, each
    /// once.
    fn into_v2(self) -> RawFile {
        let mut registries: Vec<RawRegistry> = Vec::new();
        let lists = |l: Option<RawV1List>| l.and_then(|l| l.registries).unwrap_or_default();
        for (location, blocked) in lists(self.block)
            .into_iter()
            .map(|l| (l, true))
            .chain(lists(self.insecure).into_iter().map(|l| (l, false)))
        {
            let trimmed = location.trim_end_matches('/').to_owned();
            let index = match registries
                .iter()
                .position(|r| r.location.as_deref() == Some(trimmed.as_str()))
            {
                Some(index) => index,
                None => {
                    registries.push(RawRegistry {
                        location: Some(location.clone()),
                        prefix: Some(location),
                        ..RawRegistry::default()
                    });
                    registries.len() - 1
                }
            };
            let registry = &mut registries[index];
            registry.location = Some(trimmed);
            match blocked {
                true => registry.blocked = Some(true),
                false => registry.insecure = Some(true),
            }
        }
        RawFile {
            registry: Some(registries),
            unqualified_search_registries: self.search.and_then(|l| l.registries),
            ..RawFile::default()
        }
    }
}

/// `postProcessRegistries`: locations and prefixes checked and trimmed, mirrors checked,
/// conflicting duplicates refused, one registry per prefix (the first), sorted by prefix.
fn validate_registries(raw: Vec<RawRegistry>) -> Result<Vec<Registry>, String> {
    let mut registries = Vec::new();
    for raw in raw {
        let location = parse_location(raw.location.as_deref().unwrap_or(""))?;
        let prefix = match raw.prefix.as_deref().unwrap_or("") {
            "" if location.is_empty() => {
                return Err("a [[registry]] sets neither location nor prefix".into())
            }
            "" => location.clone(),
            prefix => {
                let prefix = parse_location(prefix)?;
                if !prefix.starts_with("*.") && location.is_empty() {
                    return Err(format!(
                        "registry {prefix:?} has no location and its prefix is not *.domain"
                    ));
                }
                if prefix.starts_with("*.") && prefix.contains(['/', '@', ':']) {
                    return Err(format!(
                        "wildcard prefix {prefix:?} must be like *.example.com"
                    ));
                }
                prefix
            }
        };
        if raw
            .pull_from_mirror
            .as_deref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(format!(
                "pull-from-mirror is set on the registry {prefix:?}, not on a mirror"
            ));
        }
        let by_digest = raw.mirror_by_digest_only.unwrap_or(false);
        let mut mirrors = Vec::new();
        for mirror in raw.mirror.unwrap_or_default() {
            let location = parse_location(mirror.location.as_deref().unwrap_or(""))?;
            if location.is_empty() {
                return Err(format!("a mirror of {prefix:?} has no location"));
            }
            let pull_from_mirror = mirror.pull_from_mirror.filter(|p| !p.is_empty());
            if let Some(value) = &pull_from_mirror {
                if by_digest {
                    return Err(format!("registry {prefix:?} sets mirror-by-digest-only and its mirror {location:?} pull-from-mirror"));
                }
                if !["all", "digest-only", "tag-only"].contains(&value.as_str()) {
                    return Err(format!(
                        "unsupported pull-from-mirror {value:?} for mirror {location:?}"
                    ));
                }
            }
            mirrors.push(Endpoint {
                location,
                insecure: mirror.insecure.unwrap_or(false),
                pull_from_mirror,
            });
        }
        registries.push(Registry {
            prefix,
            primary: Endpoint {
                location,
                insecure: raw.insecure.unwrap_or(false),
                pull_from_mirror: None,
            },
            mirrors,
            blocked: raw.blocked.unwrap_or(false),
            mirror_by_digest_only: by_digest,
        });
    }
    let key = |r: &Registry| match r.primary.location.as_str() {
        "" => r.prefix.clone(),
        location => location.to_owned(),
    };
    for (i, a) in registries.iter().enumerate() {
        for b in registries[i + 1..].iter().filter(|b| key(b) == key(a)) {
            for (what, differ) in [
                ("insecure", a.primary.insecure != b.primary.insecure),
                ("blocked", a.blocked != b.blocked),
            ] {
                if differ {
                    return Err(format!(
                        "registry {:?} is defined more than once with conflicting {what:?} settings",
                        a.primary.location
                    ));
                }
            }
        }
    }
    let mut unique: BTreeMap<String, Registry> = BTreeMap::new();
    for registry in registries {
        unique.entry(registry.prefix.clone()).or_insert(registry);
    }
    Ok(unique.into_values().collect())
}

/// A location or prefix without trailing slashes; URLs are refused.
fn parse_location(input: &str) -> Result<String, String> {
    let trimmed = input.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(format!(
            "invalid location {input:?}: URI schemes are not supported"
        ));
    }
    Ok(trimmed.to_owned())
}

/// `[aliases]`: every name a short name without tag or digest, every value a fully qualified
/// repository without tag or digest, or `""` (a reset).
fn parse_aliases(
    path: &Path,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, Alias>, String> {
    let mut aliases = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in raw {
        if let Err(e) = check_short_name(&name) {
            errors.push(e);
        }
        let value = match value.as_str() {
            "" => None,
            value => match alias_value(value) {
                Ok(value) => Some(value),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
        };
        aliases.insert(
            name,
            Alias {
                value,
                origin: path.to_owned(),
            },
        );
    }
    match errors.is_empty() {
        true => Ok(aliases),
        false => Err(errors.join("; ")),
    }
}

/// An alias's name: a repository without a registry, tag or digest (`validateShortName`).
pub(crate) fn check_short_name(name: &str) -> Result<(), String> {
    match ImageName::parse(name) {
        Some(parsed) if parsed.tag.is_some() || parsed.digest.is_some() => Err(format!(
            "invalid short name {name:?}: it has a tag or digest"
        )),
        Some(parsed) if parsed.domain.is_some() => {
            Err(format!("invalid short name {name:?}: it names a registry"))
        }
        Some(_) => Ok(()),
        None => Err(format!("cannot parse short name {name:?}")),
    }
}

/// An alias's value, normalized (`docker.io/x` is `docker.io/library/x`).
pub(crate) fn alias_value(value: &str) -> Result<String, String> {
    match ImageName::parse(value) {
        Some(parsed) if parsed.tag.is_some() || parsed.digest.is_some() => {
            Err(format!("invalid alias {value:?}: it has a tag or digest"))
        }
        Some(parsed) if parsed.domain.is_some() => Ok(parsed.repository()),
        _ => Err(format!(
            "invalid alias {value:?}: it must name a registry and a repository"
        )),
    }
}

/// docker/reference's domain: dot-separated labels of letters, digits and inner hyphens (or a
/// bracketed IPv6 address), with an optional `:port`.
pub(crate) fn is_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => (host, Some(port)),
        _ => (s, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(main: &Path, dirs: &[&Path]) -> Result<RegistriesConf> {
        RegistriesConf::load_files(&ConfigFiles {
            main: main.to_owned(),
            explicit: true,
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        })
    }

    #[test]
    fn mirrors_come_first_as_pull_from_mirror_allows() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "registries.conf",
            r#"
unqualified-search-registries = ["example.com"]
[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true
[[registry.mirror]]
location = "mirror-1.local/bar"
[[registry.mirror]]
location = "mirror-2.local/mirror/for/bar"
insecure = true
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "mirror-3.local"
pull-from-mirror = "tag-only"
[[registry]]
location = "blocked.example.com"
blocked = true
"#,
        );
        let conf = load(&main, &[]).unwrap();
        assert_eq!(conf.credential_helpers, [AUTH_FILE_HELPER]);
        assert_eq!(conf.short_name_mode, ShortNameMode::Permissive);
        assert!(conf.find_registry("example.com/foobar/x").is_none());
        assert!(
            conf.find_registry("blocked.example.com/a:1")
                .unwrap()
                .blocked
        );

        let tagged = conf.pull_sources("example.com/foo/app:1").unwrap();
        let refs: Vec<_> = tagged.iter().map(|s| s.reference.as_str()).collect();
        assert_eq!(
            refs,
            [
                "mirror-1.local/bar/app:1",
                "mirror-3.local/app:1",
                "internal.example.com/bar/app:1"
            ]
        );
        assert!(tagged[2].endpoint.insecure && !tagged[2].mirror);
        let digest = format!("sha256:{}", "a".repeat(64));
        let digested = conf
            .pull_sources(&format!("example.com/foo/app@{digest}"))
            .unwrap();
        let refs: Vec<_> = digested.iter().map(|s| s.reference.clone()).collect();
        assert_eq!(
            refs,
            [
                format!("mirror-1.local/bar/app@{digest}"),
                format!("mirror-2.local/mirror/for/bar/app@{digest}"),
                format!("internal.example.com/bar/app@{digest}"),
            ]
        );
        let other = conf.pull_sources("quay.io/a/b:1").unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].reference, "quay.io/a/b:1");
    }

    #[test]
    fn drop_ins_replace_and_merge_as_containers_image_does() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "registries.conf",
            "unqualified-search-registries = [\"a.io\", \"b.io\"]\nshort-name-mode = \"enforcing\"\n[aliases]\nx = \"a.io/x\"\ny = \"docker.io/y\"\n[[registry]]\nlocation = \"a.io\"\n",
        );
        let system = dir.path().join("system");
        let user = dir.path().join("user");
        write(
            &system,
            "10-b.conf",
            "[[registry]]\nlocation = \"a.io\"\ninsecure = true\n[aliases]\nx = \"\"\n",
        );
        write(&system, "20-c.conf", "unqualified-search-registries = []\n");
        write(&system, "ignored.toml", "this is not toml");
        write(&user, "05-d.conf", "credential-helpers = [\"pass\", \"containers-auth.json\"]\nshort-name-mode = \"disabled\"\n");
        let conf = load(&main, &[&system, &user]).unwrap();
        assert_eq!(conf.files.len(), 4);
        assert!(conf.registries[0].primary.insecure);
        assert!(conf.unqualified_search_registries.is_empty());
        assert_eq!(
            conf.unqualified_search_registries_origin.as_deref(),
            Some(system.join("20-c.conf").as_path())
        );
        assert_eq!(conf.short_name_mode, ShortNameMode::Disabled);
        assert_eq!(conf.credential_helpers, ["pass", AUTH_FILE_HELPER]);
        assert_eq!(conf.aliases["x"].value, None);
        assert_eq!(
            conf.aliases["y"].value.as_deref(),
            Some("docker.io/library/y")
        );

        write(
            &user,
            "06-v1.conf",
            "[registries.search]\nregistries = [\"a.io\"]\n",
        );
        assert_eq!(load(&main, &[&user]).unwrap_err().code(), "ECONFIG");
    }

    #[test]
    fn v1_files_convert_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = write(
            dir.path(),
            "v1.conf",
            "[registries.search]\nregistries = [\"s.io\"]\n[registries.insecure]\nregistries = [\"i.io\", \"b.io\"]\n[registries.block]\nregistries = [\"b.io/\"]\n",
        );
        let conf = load(&v1, &[]).unwrap();
        assert_eq!(conf.unqualified_search_registries, ["s.io"]);
        let blocked = conf.find_registry("b.io/x").unwrap();
        assert!(blocked.blocked && blocked.primary.insecure);
        assert!(conf.find_registry("i.io/x").unwrap().primary.insecure);

        for bad in [
            "[registries.search]\nregistries = [\"s.io\"]\n[[registry]]\nlocation = \"a.io\"\n",
            "[[registry]]\nlocation = \"https://a.io\"\n",
            "[[registry]]\nprefix = \"a.io/x\"\n",
            "[[registry]]\nprefix = \"*.a.io/x\"\n",
            "[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n",
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"\n",
            "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"all\"\n",
            "[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"b.io\"\nlocation = \"a.io\"\ninsecure = true\n",
            "unqualified-search-registries = [\"not a domain\"]\n",
            "short-name-mode = \"sometimes\"\n",
            "[aliases]\n\"quay.io/x\" = \"quay.io/x\"\n",
            "[aliases]\nx = \"x\"\n",
            "[aliases]\nx = \"quay.io/x:1\"\n",
            "[[registry]\n",
        ] {
            let path = write(dir.path(), "bad.conf", bad);
            assert_eq!(load(&path, &[]).unwrap_err().code(), "ECONFIG", "{bad}");
        }
        assert_eq!(
            load(&dir.path().join("missing.conf"), &[])
                .unwrap_err()
                .code(),
            "ENOENT"
        );
    }

    #[test]
    fn prefixes_match_as_ref_matching_prefix() {
        assert_eq!(prefix_match("example.com/foo", "example.com"), Some(11));
        assert_eq!(
            prefix_match("example.com:5000/foo", "example.com"),
            Some(11)
        );
        assert_eq!(prefix_match("example.com.evil/foo", "example.com"), None);
        assert_eq!(prefix_match("a.example.com/foo", "*.example.com"), Some(13));
        assert_eq!(prefix_match("x/a.example.com/foo", "*.example.com"), None);
        assert_eq!(prefix_match("example.com/foo", "*.example.com"), None);
        assert!(is_domain("localhost:5000") && is_domain("[::1]:5000") && is_domain("a-b.c"));
        assert!(!is_domain("-a.b") && !is_domain("a..b") && !is_domain("a:") && !is_domain(""));
    }
}
