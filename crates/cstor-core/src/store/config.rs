//! Finding the store the way containers/storage does: `storage.conf`, environment, defaults.
//!
//! The lookup order mirrors containers/storage's `types/options.go`, so `cstor` and podman, run
//! by the same user with the same environment, open the same store:
//!
//! 1. `CONTAINERS_STORAGE_CONF` names the one configuration file to read.
//! 2. Otherwise root reads `/etc/containers/storage.conf`, falling back to
//!    `/usr/share/containers/storage.conf`; a rootless user reads
//!    `$XDG_CONFIG_HOME/containers/storage.conf` (`~/.config/...`) and falls back to the system
//!    files for the driver and additional image stores, never for `graphroot`.
//! 3. Defaults: root `/var/lib/containers/storage` + `/run/containers/storage`; rootless
//!    `$XDG_DATA_HOME/containers/storage` + `$XDG_RUNTIME_DIR/containers`.
//!
//! `CONTAINERS_STORAGE_ROOT`, when set, overrides the graph root (cstor's own variable, for
//! scripts that want one store without writing a configuration file); `STORAGE_DRIVER` overrides
//! the driver as it does for podman.
//!
//! Inside `podman unshare` the process is root in the user's namespace; podman names the user in
//! `_CONTAINERS_ROOTLESS_UID` (so the user's rootless store and configuration are the ones, as
//! for containers/storage) and its store in `CONTAINERS_GRAPHROOT` and `CONTAINERS_RUNROOT`,
//! which are then taken as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where a store lives and how it is configured, as resolved from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The graph root (`--root` in podman).
    pub graph_root: PathBuf,
    /// The run root (`--runroot` in podman); holds container mount state, not images.
    pub run_root: PathBuf,
    /// The graph driver named by the configuration, if any.
    pub driver: Option<String>,
    /// Read-only image stores consulted after the main one.
    pub additional_image_stores: Vec<PathBuf>,
    /// The configuration file that was read, if one was.
    pub config_file: Option<PathBuf>,
}

/// The parts of the process environment that decide where the store is.
///
/// Kept as a value so discovery is a pure function of it and can be tested without touching
/// the real environment.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub vars: HashMap<String, String>,
    pub euid: u32,
    /// Name of the effective user, for `$USER` in `rootless_storage_path`.
    pub user: Option<String>,
    /// The system-wide configuration files, most specific first.
    pub system_config_files: Vec<PathBuf>,
}

impl Environment {
    /// Snapshot of the current process's environment.
    pub fn current() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let vars: HashMap<String, String> = std::env::vars().collect();
        let user = vars.get("USER").cloned();
        Environment {
            vars,
            euid,
            user,
            system_config_files: vec![
                PathBuf::from("/etc/containers/storage.conf"),
                PathBuf::from("/usr/share/containers/storage.conf"),
            ],
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn home(&self) -> PathBuf {
        PathBuf::from(self.var("HOME").unwrap_or("/"))
    }

    /// The user whose store this is: inside `podman unshare` the process is root in the user's
    /// namespace, and podman says who the user is in `_CONTAINERS_ROOTLESS_UID` (what
    /// containers/storage's `GetRootlessUID` reads).
    pub fn rootless_uid(&self) -> u32 {
        self.var("_CONTAINERS_ROOTLESS_UID")
            .and_then(|uid| uid.parse().ok())
            .unwrap_or(self.euid)
    }

    /// Whether the per-user store is the one (containers/storage's `usePerUserStorage`); also
    /// whether the user's registry configuration, credentials and caches are a rootless user's.
    pub fn rootless(&self) -> bool {
        self.rootless_uid() != 0
    }

    /// Whether writes run as podman's do in a user namespace (containers/storage's
    /// `unshare.IsRootless`): a rootless user, in or out of `podman unshare`, or root without
    /// `CAP_SYS_ADMIN`. Such writes cannot make device nodes, use `user.` overlay xattrs, and
    /// can only give files the IDs the namespace maps.
    pub fn in_user_namespace(&self) -> bool {
        self.rootless()
            || self.var("_CONTAINERS_USERNS_CONFIGURED").is_some()
            || !has_cap_sys_admin()
    }
}

/// Whether this process holds `CAP_SYS_ADMIN` (bit 21 of `CapEff` in `/proc/self/status`).
fn has_cap_sys_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|caps| u64::from_str_radix(caps.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 21) != 0)
}

/// `storage.conf` as far as cstor reads it.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    storage: StorageTable,
}

#[derive(Debug, Default, Deserialize)]
struct StorageTable {
    driver: Option<String>,
    graphroot: Option<String>,
    runroot: Option<String>,
    rootless_storage_path: Option<String>,
    #[serde(default)]
    options: OptionsTable,
}

#[derive(Debug, Default, Deserialize)]
struct OptionsTable {
    #[serde(default)]
    additionalimagestores: Vec<String>,
}

/// Resolves the store configuration for `env`, reading at most the configuration files the
/// lookup order names.
pub fn discover(env: &Environment) -> Result<StoreConfig> {
    let (config_file, parsed) = match env.var("CONTAINERS_STORAGE_CONF") {
        Some(path) => {
            let path = PathBuf::from(path);
            let parsed = read_config(&path)?.ok_or_else(|| Error::Config {
                path: path.clone(),
                detail: "CONTAINERS_STORAGE_CONF names a file that does not exist".into(),
            })?;
            (Some(path), parsed)
        }
        None => first_existing_config(&candidate_files(env))?,
    };
    let storage = parsed.storage;

    let graph_root = if let Some(root) = env.var("CONTAINERS_STORAGE_ROOT") {
        PathBuf::from(root)
    } else if let Some(root) = env.var("CONTAINERS_GRAPHROOT") {
        // `podman unshare` names the store podman itself uses (its `--root` included).
        PathBuf::from(root)
    } else if env.rootless() {
        match &storage.rootless_storage_path {
            Some(p) => PathBuf::from(expand_vars(p, env)),
            None => xdg_data_home(env).join("containers/storage"),
        }
    } else {
        storage
            .graphroot
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/containers/storage"))
    };
    let run_root = match (
        env.var("CONTAINERS_RUNROOT"),
        &storage.runroot,
        env.rootless(),
    ) {
        (Some(r), _, _) => PathBuf::from(r),
        (None, Some(r), false) => PathBuf::from(r),
        (None, _, false) => PathBuf::from("/run/containers/storage"),
        (None, _, true) => match env.var("XDG_RUNTIME_DIR") {
            Some(dir) => Path::new(dir).join("containers"),
            None => PathBuf::from(format!(
                "/tmp/containers-user-{}/containers",
                env.rootless_uid()
            )),
        },
    };
    let driver = env
        .var("STORAGE_DRIVER")
        .map(str::to_owned)
        .or(storage.driver)
        .filter(|d| !d.is_empty());
    Ok(StoreConfig {
        graph_root,
        run_root,
        driver,
        additional_image_stores: storage
            .options
            .additionalimagestores
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        config_file,
    })
}

fn candidate_files(env: &Environment) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if env.rootless() {
        let config_home = env
            .var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| env.home().join(".config"));
        files.push(config_home.join("containers/storage.conf"));
    }
    files.extend(env.system_config_files.iter().cloned());
    files
}

fn first_existing_config(files: &[PathBuf]) -> Result<(Option<PathBuf>, ConfigFile)> {
    for file in files {
        if let Some(parsed) = read_config(file)? {
            return Ok((Some(file.clone()), parsed));
        }
    }
    Ok((None, ConfigFile::default()))
}

/// Reads and parses one configuration file; `None` when it does not exist.
fn read_config(path: &Path) -> Result<Option<ConfigFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Config {
                path: path.to_owned(),
                detail: e.to_string(),
            })
        }
    };
    parse_config(&text)
        .map(Some)
        .map_err(|detail| Error::Config {
            path: path.to_owned(),
            detail,
        })
}

fn parse_config(text: &str) -> Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

fn xdg_data_home(env: &Environment) -> PathBuf {
    env.var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| env.home().join(".local/share"))
}

/// Expands `$HOME`, `$UID` and `$USER` (and `~/`) the way containers/storage expands
/// `rootless_storage_path`.
fn expand_vars(path: &str, env: &Environment) -> String {
    let home = env.home();
    let home = home.to_string_lossy();
    let expanded = path
        .replace("$HOME", &home)
        .replace("$UID", &env.rootless_uid().to_string())
        .replace("$USER", env.user.as_deref().unwrap_or(""));
    match expanded.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None => expanded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(euid: u32, vars: &[(&str, &str)]) -> Environment {
        Environment {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            euid,
            user: Some("alice".into()),
            system_config_files: Vec::new(),
        }
    }

    fn write_conf(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("storage.conf");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn explicit_config_file_sets_roots_driver_and_additional_stores() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write_conf(
            dir.path(),
            r#"
[storage]
driver = "overlay"
graphroot = "/srv/g"
runroot = "/srv/r"
[storage.options]
additionalimagestores = ["/ro/a", "/ro/b"]
"#,
        );
        let cfg = discover(&env(
            0,
            &[("CONTAINERS_STORAGE_CONF", conf.to_str().unwrap())],
        ))
        .unwrap();
        assert_eq!(cfg.graph_root, PathBuf::from("/srv/g"));
        assert_eq!(cfg.run_root, PathBuf::from("/srv/r"));
        assert_eq!(cfg.driver.as_deref(), Some("overlay"));
        assert_eq!(
            cfg.additional_image_stores,
            vec![PathBuf::from("/ro/a"), PathBuf::from("/ro/b")]
        );
        assert_eq!(cfg.config_file, Some(conf));
    }

    #[test]
    fn rootless_uses_rootless_storage_path_not_graphroot() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write_conf(
            dir.path(),
            "[storage]\ngraphroot = \"/srv/g\"\nrootless_storage_path = \"$HOME/s/$USER/$UID\"\n",
        );
        let cfg = discover(&env(
            1000,
            &[
                ("CONTAINERS_STORAGE_CONF", conf.to_str().unwrap()),
                ("HOME", "/home/alice"),
                ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ],
        ))
        .unwrap();
        assert_eq!(cfg.graph_root, PathBuf::from("/home/alice/s/alice/1000"));
        assert_eq!(cfg.run_root, PathBuf::from("/run/user/1000/containers"));
    }

    #[test]
    fn rootless_defaults_follow_xdg() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = discover(&env(
            1000,
            &[
                ("HOME", "/home/alice"),
                ("XDG_DATA_HOME", "/data"),
                ("XDG_CONFIG_HOME", dir.path().to_str().unwrap()),
            ],
        ))
        .unwrap();
        assert_eq!(cfg.graph_root, PathBuf::from("/data/containers/storage"));
        assert_eq!(
            cfg.run_root,
            PathBuf::from("/tmp/containers-user-1000/containers")
        );
    }

    #[test]
    fn inside_podman_unshare_the_users_rootless_store_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let config_home = dir.path().join("config");
        std::fs::create_dir_all(config_home.join("containers")).unwrap();
        write_conf(
            &config_home.join("containers"),
            "[storage]\nrootless_storage_path = \"/srv/$UID/storage\"\n",
        );
        // Root in the user's namespace, as `podman unshare` runs its command.
        let vars = [
            ("_CONTAINERS_ROOTLESS_UID", "1000"),
            ("_CONTAINERS_USERNS_CONFIGURED", "done"),
            ("HOME", "/home/alice"),
            ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
        ];
        let unshared = env(0, &vars);
        assert!(unshared.in_user_namespace());
        let cfg = discover(&unshared).unwrap();
        assert_eq!(cfg.graph_root, PathBuf::from("/srv/1000/storage"));
        assert_eq!(
            cfg.run_root,
            PathBuf::from("/tmp/containers-user-1000/containers")
        );
        // podman's own paths, when it names them, are taken as they are.
        let named = [
            ("CONTAINERS_GRAPHROOT", "/home/alice/other"),
            ("CONTAINERS_RUNROOT", "/run/user/1000/other"),
        ];
        let cfg = discover(&env(0, &[&vars[..], &named[..]].concat())).unwrap();
        assert_eq!(cfg.graph_root, PathBuf::from("/home/alice/other"));
        assert_eq!(cfg.run_root, PathBuf::from("/run/user/1000/other"));
    }

    #[test]
    fn storage_root_and_driver_variables_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write_conf(dir.path(), "[storage]\ndriver = \"overlay\"\n");
        let cfg = discover(&env(
            0,
            &[
                ("CONTAINERS_STORAGE_CONF", conf.to_str().unwrap()),
                ("CONTAINERS_STORAGE_ROOT", "/x"),
                ("STORAGE_DRIVER", "vfs"),
            ],
        ))
        .unwrap();
        assert_eq!(cfg.graph_root, PathBuf::from("/x"));
        assert_eq!(cfg.driver.as_deref(), Some("vfs"));
    }

    #[test]
    fn missing_or_malformed_explicit_config_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.conf");
        let err = discover(&env(
            0,
            &[("CONTAINERS_STORAGE_CONF", missing.to_str().unwrap())],
        ))
        .unwrap_err();
        assert_eq!(err.code(), "ECONFIG");
        let bad = write_conf(dir.path(), "[storage\n");
        let err = discover(&env(
            0,
            &[("CONTAINERS_STORAGE_CONF", bad.to_str().unwrap())],
        ))
        .unwrap_err();
        assert_eq!(err.code(), "ECONFIG");
    }
}
