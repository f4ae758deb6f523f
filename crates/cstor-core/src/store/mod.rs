//! An opened store: the graph root as a directory capability, plus its additional image stores.
//!
//! Every read of the store goes through a [`cap_std::fs::Dir`] opened once here, so no path taken
//! from the store's own metadata (a layer ID, a link, a big-data name) can reach outside it: cap-std
//! resolves each one beneath the root with `openat2(RESOLVE_BENEATH)` semantics and refuses `..`
//! and absolute symlinks that would escape.

pub mod config;
pub mod containers;
pub mod images;
pub mod layers;
pub mod lock;
pub mod names;
pub mod overlay;
pub mod skeleton;

use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::error::{Error, IoContext, Result};
use config::StoreConfig;

/// The graph drivers whose stores cstor recognises but does not read (their `<driver>-layers`
/// directory tells them apart from an overlay store).
const OTHER_DRIVERS: &[&str] = &["vfs", "btrfs", "zfs", "devicemapper", "aufs"];

/// How to open a store: the graph root and, optionally, what `storage.conf` adds.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub graph_root: PathBuf,
    pub run_root: Option<PathBuf>,
    /// The configured driver; anything but `overlay` (or `overlay2`, its old alias) is refused.
    pub driver: Option<String>,
    pub additional_image_stores: Vec<PathBuf>,
    /// Create the store when the graph root is missing or empty, as podman and skopeo do: the
    /// directories and lock files containers/storage makes ([`crate::store::skeleton`]), in the run
    /// root too when one is given.
    pub create: bool,
}

impl From<StoreConfig> for StoreOptions {
    fn from(config: StoreConfig) -> Self {
        StoreOptions {
            graph_root: config.graph_root,
            run_root: Some(config.run_root),
            driver: config.driver,
            additional_image_stores: config.additional_image_stores,
            create: false,
        }
    }
}

/// One directory holding `overlay/`, `overlay-layers/` and `overlay-images/`: the main graph root
/// or an additional image store.
#[derive(Debug)]
pub struct StoreDir {
    pub path: PathBuf,
    pub dir: Dir,
    /// Additional image stores are read-only to every client, podman included.
    pub read_only: bool,
}

/// An opened containers-storage store (overlay driver).
#[derive(Debug)]
pub struct Store {
    run_root: Option<PathBuf>,
    /// The main store first, then the additional image stores in configuration order: lookups
    /// take the first match, as containers/storage does.
    dirs: Vec<StoreDir>,
}

impl Store {
    /// Opens the store at `options.graph_root` (creating it first with `options.create`); fails
    /// with `ENOSTORE` when there is none and with `EUNSUPPORTED` when it belongs to another
    /// graph driver.
    pub fn open(options: StoreOptions) -> Result<Store> {
        if let Some(driver) = options.driver.as_deref() {
            if driver != "overlay" && driver != "overlay2" {
                return Err(unsupported_driver(driver, &options.graph_root));
            }
        }
        if options.create {
            skeleton::create_root(&options.graph_root)
                .map_err(|e| missing(&options.graph_root, e))?;
        }
        let main = open_store_dir(&options.graph_root, false)?;
        if options.create {
            skeleton::ensure_graph_root(&main.dir)?;
            if let Some(run_root) = &options.run_root {
                skeleton::ensure_run_root(run_root)?;
            }
        }
        let mut dirs = vec![main];
        for path in &options.additional_image_stores {
            dirs.push(open_store_dir(path, true)?);
        }
        Ok(Store {
            run_root: options.run_root,
            dirs,
        })
    }

    pub fn graph_root(&self) -> &Path {
        &self.dirs[0].path
    }

    pub fn run_root(&self) -> Option<&Path> {
        self.run_root.as_deref()
    }

    /// The main store followed by the additional image stores.
    pub fn dirs(&self) -> &[StoreDir] {
        &self.dirs
    }

    pub(crate) fn dir(&self, index: usize) -> &StoreDir {
        &self.dirs[index]
    }
}

fn open_store_dir(path: &Path, read_only: bool) -> Result<StoreDir> {
    let dir = Dir::open_ambient_dir(path, ambient_authority())
        .map_err(|e| missing(path, Error::io(path, e)))?;
    if !dir.exists("overlay-layers") && !dir.exists("overlay-images") {
        for driver in OTHER_DRIVERS {
            if dir.exists(format!("{driver}-layers")) {
                return Err(unsupported_driver(driver, path));
            }
        }
    }
    // Fail now, with the real reason, if the root cannot be listed at all.
    dir.entries().at(path)?;
    Ok(StoreDir {
        path: path.to_owned(),
        dir,
        read_only,
    })
}

/// `ENOSTORE` for a root that is not there or not a directory; other errors as they are.
fn missing(path: &Path, error: Error) -> Error {
    match error {
        Error::Io { source, .. }
            if matches!(
                source.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::EEXIST)
            ) =>
        {
            Error::NoStore {
                path: path.to_owned(),
            }
        }
        other => other,
    }
}

fn unsupported_driver(driver: &str, root: &Path) -> Error {
    Error::Unsupported {
        what: format!(
            "graph driver {driver:?} at {}: cstor reads overlay stores only",
            root.display()
        ),
    }
}

/// Whether `id` can be used as one path component of the store: containers/storage IDs are
/// 64 hex digits in practice, but any name it could have written is accepted; anything that could
/// name another directory (`..`, `/`, NUL, an empty string) is not.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The largest metadata file cstor will read into memory (`layers.json`, `images.json`, a
/// manifest or config): far above anything podman writes, low enough that a hostile store cannot
/// exhaust memory.
pub(crate) const MAX_METADATA_BYTES: u64 = 256 << 20;

/// Reads a whole metadata file beneath `dir`; `None` when it does not exist.
pub(crate) fn read_metadata_file(dir: &Dir, path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match dir.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .at(path)?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(Error::corrupt(path, "metadata file is implausibly large"));
    }
    Ok(Some(bytes))
}

/// Parses a JSON array of records such as `layers.json`; a missing file is an empty store.
pub(crate) fn read_json_records<T: serde::de::DeserializeOwned>(
    dir: &Dir,
    path: &Path,
) -> Result<Vec<T>> {
    match read_metadata_file(dir, path)? {
        None => Ok(Vec::new()),
        Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, e.to_string()))
        }
    }
}
