//! What is known of blobs outside the store, kept between copies as containers/image's
//! blob-info cache keeps it: which compressed blobs hold a layer's tar (by its diff digest), and
//! where — which registry repositories — each blob was seen. With it a second push of a layer
//! compressed as before knows the blob's digest without compressing again, so a registry that
//! has it is asked with `HEAD` and nothing is sent; and a blob pushed to one repository is
//! mounted into another of the same registry instead of being uploaded again.
//!
//! It is a cache: a missing, unreadable or damaged file is an empty cache and a lost update costs
//! an upload, never a wrong image — every reuse is confirmed by the destination (`HEAD`, a mount)
//! first. The file is `${XDG_CACHE_HOME:-~/.cache}/cstor/blob-info-cache.json`, merged with what
//! is on disk and replaced by rename on each save.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use crate::content::compression::Compression;
use crate::error::IoContext;
use crate::transport::Descriptor;
use crate::write::atomic;

/// Bounds that keep the file small whatever is pushed: entries beyond them are dropped.
const MAX_KEYS: usize = 20_000;
const MAX_PER_KEY: usize = 8;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Entries {
    /// Diff digest → compressed blobs of that tar.
    #[serde(default)]
    compressed: BTreeMap<String, Vec<Compressed>>,
    /// Blob digest → locations (`domain/repository`) that had it, most recent last.
    #[serde(default)]
    locations: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Compressed {
    digest: String,
    size: u64,
    compression: String,
}

/// The cache, loaded once per copy.
#[derive(Debug, Default)]
pub struct BlobInfoCache {
    path: Option<PathBuf>,
    entries: Entries,
    /// Whether something was learnt since the last save.
    changed: bool,
}

impl BlobInfoCache {
    /// The user's cache (see the module documentation); empty when there is no home to keep it.
    pub fn open_default() -> BlobInfoCache {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|home| home.join(".cache")));
        BlobInfoCache::open(dir.map(|d| d.join("cstor/blob-info-cache.json")))
    }

    /// The cache kept in `path`, or one kept nowhere.
    pub fn open(path: Option<PathBuf>) -> BlobInfoCache {
        let entries = path.as_deref().map(load).unwrap_or_default();
        BlobInfoCache {
            path,
            entries,
            changed: false,
        }
    }

    /// The blobs known to hold the tar `diff_digest` compressed with `compression`.
    pub fn compressed(&self, diff_digest: &str, compression: Compression) -> Vec<Descriptor> {
        let known = self.entries.compressed.get(diff_digest);
        known
            .into_iter()
            .flatten()
            .filter(|c| c.compression == compression.name())
            .map(|c| Descriptor {
                media_type: compression.oci_layer_media_type().into(),
                digest: c.digest.clone(),
                size: c.size,
            })
            .collect()
    }

    /// The locations that had the blob `digest`, most recent first.
    pub fn locations(&self, digest: &str) -> Vec<String> {
        let known = self.entries.locations.get(digest);
        known.into_iter().flatten().rev().cloned().collect()
    }

    /// Records that `blob` holds the tar `diff_digest` compressed with `compression`.
    pub fn add_compressed(
        &mut self,
        diff_digest: &str,
        compression: Compression,
        blob: &Descriptor,
    ) {
        let entry = Compressed {
            digest: blob.digest.clone(),
            size: blob.size,
            compression: compression.name().into(),
        };
        add(&mut self.entries.compressed, diff_digest, entry);
        self.changed = true;
    }

    /// Records that `location` has the blob `digest`.
    pub fn add_location(&mut self, digest: &str, location: &str) {
        add(&mut self.entries.locations, digest, location.to_owned());
        self.changed = true;
    }

    /// Writes what was learnt, merged with what other copies saved meanwhile. Failing to is no
    /// error of the copy: the cache only saves work.
    pub fn save(&mut self) {
        let Some(path) = self.path.clone().filter(|_| self.changed) else {
            return;
        };
        self.changed = false;
        let on_disk = load(&path);
        for (key, values) in on_disk.compressed {
            for value in values {
                add_missing(&mut self.entries.compressed, &key, value);
            }
        }
        for (key, values) in on_disk.locations {
            for value in values {
                add_missing(&mut self.entries.locations, &key, value);
            }
        }
        let _ = write(&path, &self.entries);
    }
}

fn load(path: &Path) -> Entries {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Appends `value` under `key` as the most recent, within the bounds.
fn add<T: PartialEq>(map: &mut BTreeMap<String, Vec<T>>, key: &str, value: T) {
    let values = map.entry(key.to_owned()).or_default();
    values.retain(|v| *v != value);
    values.push(value);
    if values.len() > MAX_PER_KEY {
        values.remove(0);
    }
    while map.len() > MAX_KEYS {
        map.pop_first();
    }
}

/// Adds `value` under `key` as the oldest, when it is not there and there is room.
fn add_missing<T: PartialEq>(map: &mut BTreeMap<String, Vec<T>>, key: &str, value: T) {
    if !map.contains_key(key) && map.len() >= MAX_KEYS {
        return;
    }
    let values = map.entry(key.to_owned()).or_default();
    if !values.contains(&value) && values.len() < MAX_PER_KEY {
        values.insert(0, value);
    }
}

/// Replaces the cache file through [`atomic::write_file`], so a concurrent copy reads the old
/// cache or the new one, never a part.
fn write(path: &Path, entries: &Entries) -> crate::Result<()> {
    let dir_path = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| {
            crate::Error::InvalidArgument(format!("{}: not a file name", path.display()))
        })?;
    std::fs::create_dir_all(dir_path).at(dir_path)?;
    let dir = Dir::open_ambient_dir(dir_path, ambient_authority()).at(dir_path)?;
    let bytes = serde_json::to_vec(entries)
        .map_err(std::io::Error::from)
        .at(path)?;
    atomic::write_file(&dir, name, &bytes, 0o600, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_compressed_forms_and_locations_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.json");
        let blob = Descriptor {
            media_type: String::new(),
            digest: "sha256:b".into(),
            size: 7,
        };
        let mut cache = BlobInfoCache::open(Some(path.clone()));
        cache.add_compressed("sha256:d", Compression::Gzip, &blob);
        cache.add_location("sha256:b", "r/one");
        cache.add_location("sha256:b", "r/two");
        cache.save();
        let mut other = BlobInfoCache::open(Some(path.clone()));
        other.add_location("sha256:b", "r/three");
        cache.add_location("sha256:c", "r/one");
        cache.save();
        other.save();
        let reread = BlobInfoCache::open(Some(path));
        let found = reread.compressed("sha256:d", Compression::Gzip);
        assert_eq!(found[0].digest, "sha256:b");
        assert_eq!(
            found[0].media_type,
            Compression::Gzip.oci_layer_media_type()
        );
        assert!(reread.compressed("sha256:d", Compression::Zstd).is_empty());
        assert_eq!(reread.locations("sha256:b"), ["r/three", "r/two", "r/one"]);
        assert_eq!(reread.locations("sha256:c"), ["r/one"]);
        std::fs::write(dir.path().join("bad.json"), "{").unwrap();
        assert!(BlobInfoCache::open(Some(dir.path().join("bad.json")))
            .locations("sha256:b")
            .is_empty());
    }
}
