//! Write transactions on the main store's metadata, under containers/storage's own locks.
//!
//! A transaction takes the write lock of `layers.lock` and/or `images.lock` — always layers
//! before images before containers, the order `store.go` uses, so cstor and podman never wait on
//! each other in a cycle — reads the records fresh under it, and saves them with
//! [`crate::write::atomic::write_file`], rewriting the lock's last-writer token so that every other
//! process reloads. Additional image stores are read-only to every client and are never written.
//!
//! On taking the layers lock, a transaction finishes what a killed writer left, as podman's
//! layer store does on load: layers still flagged `incomplete` are deleted with their files, and
//! temporary files are removed. Nothing half-written survives the next write.

use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use crate::error::{Error, IoContext, Result};
use crate::store::images::ImageRecord;
use crate::store::layers::LayerRecord;
use crate::store::lock::{LockFile, WriteGuard};
use crate::store::skeleton;
use crate::store::{is_valid_id, read_json_records, Store};
use crate::write::atomic;

pub(crate) const LAYERS_DIR: &str = "overlay-layers";
pub(crate) const IMAGES_DIR: &str = "overlay-images";

/// The flag containers/storage sets on a layer record until the layer is whole.
pub const INCOMPLETE_FLAG: &str = "incomplete";

/// The writable layer records, locked.
pub struct LayersTxn<'s> {
    pub(crate) dir: &'s Dir,
    guard: WriteGuard,
    /// `layers.json`; `volatile-layers.json` is only read (for ID clashes), never rewritten.
    pub records: Vec<LayerRecord>,
    pub volatile_ids: Vec<String>,
}

/// The writable image records, locked.
pub struct ImagesTxn<'s> {
    pub(crate) dir: &'s Dir,
    guard: WriteGuard,
    pub records: Vec<ImageRecord>,
}

impl Store {
    /// The main store's directory, which must be writable, with what containers/storage would
    /// have created in it (an empty root opened without `create` gets it on its first write).
    fn writable_dir(&self) -> Result<&Dir> {
        let main = &self.dirs()[0];
        if main.read_only {
            return Err(Error::Unsupported {
                what: format!("writing to the read-only store {}", main.path.display()),
            });
        }
        skeleton::ensure_graph_root(&main.dir)?;
        Ok(&main.dir)
    }

    /// Takes `overlay-layers/layers.lock` for writing and loads `layers.json`, cleaning up after
    /// killed writers first.
    pub fn begin_layers(&self) -> Result<LayersTxn<'_>> {
        let dir = self.writable_dir()?;
        let lock = LockFile::open_or_create(dir, &Path::new(LAYERS_DIR).join("layers.lock"))?;
        let guard = lock.write()?;
        let records = load::<LayerRecord>(dir, "layers.json")?;
        let volatile_ids = load::<LayerRecord>(dir, "volatile-layers.json")?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut txn = LayersTxn {
            dir,
            guard,
            records,
            volatile_ids,
        };
        txn.recover()?;
        Ok(txn)
    }

    /// Takes `overlay-images/images.lock` for writing and loads `images.json`. Call it after
    /// [`Store::begin_layers`] when both are needed.
    pub fn begin_images(&self) -> Result<ImagesTxn<'_>> {
        let dir = self.writable_dir()?;
        let lock = LockFile::open_or_create(dir, &Path::new(IMAGES_DIR).join("images.lock"))?;
        let guard = lock.write()?;
        atomic::remove_debris(
            &dir.open_dir(IMAGES_DIR).at(IMAGES_DIR)?,
            Path::new(IMAGES_DIR),
        )?;
        let records = load::<ImageRecord>(dir, "images.json")?;
        Ok(ImagesTxn {
            dir,
            guard,
            records,
        })
    }
}

fn load<T: serde::de::DeserializeOwned + HasId>(dir: &Dir, file: &str) -> Result<Vec<T>> {
    let path = Path::new(T::DIR).join(file);
    let records: Vec<T> = read_json_records(dir, &path)?;
    if let Some(bad) = records.iter().find(|r| !is_valid_id(r.id())) {
        return Err(Error::corrupt(
            &path,
            format!("ID {:?} is not a valid ID", bad.id()),
        ));
    }
    Ok(records)
}

/// Records with an ID, kept in one directory of the store.
pub(crate) trait HasId {
    fn id(&self) -> &str;
    const DIR: &'static str;
}

impl HasId for LayerRecord {
    fn id(&self) -> &str {
        &self.id
    }
    const DIR: &'static str = LAYERS_DIR;
}

impl HasId for ImageRecord {
    fn id(&self) -> &str {
        &self.id
    }
    const DIR: &'static str = IMAGES_DIR;
}

/// Saves records as Go's `json.Marshal` lays them out (one line, no spaces), mode 0600.
fn save<T: serde::Serialize + HasId>(
    dir: &Dir,
    file: &str,
    records: &[T],
    guard: &WriteGuard,
) -> Result<()> {
    let shown = Path::new(T::DIR).join(file);
    let bytes =
        serde_json::to_vec(records).map_err(|e| Error::io(&shown, std::io::Error::other(e)))?;
    let sub = dir.open_dir(T::DIR).at(T::DIR)?;
    atomic::write_file(&sub, file, &bytes, 0o600, &shown)?;
    guard.touch()
}

impl LayersTxn<'_> {
    /// Writes `layers.json` and announces the change.
    pub fn save(&self) -> Result<()> {
        save(self.dir, "layers.json", &self.records, &self.guard)
    }

    pub fn get(&self, id: &str) -> Option<&LayerRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut LayerRecord> {
        self.records.iter_mut().find(|r| r.id == id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some() || self.volatile_ids.iter().any(|v| v == id)
    }

    /// Deletes what killed writers left: `incomplete` layers (files, then record) and temporary
    /// files.
    fn recover(&mut self) -> Result<()> {
        atomic::remove_debris(
            &self.dir.open_dir(LAYERS_DIR).at(LAYERS_DIR)?,
            Path::new(LAYERS_DIR),
        )?;
        let doomed: Vec<String> = self
            .records
            .iter()
            .filter(|r| is_incomplete(r))
            .map(|r| r.id.clone())
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        for id in &doomed {
            self.remove_files(id)?;
        }
        self.records.retain(|r| !doomed.contains(&r.id));
        self.save()
    }

    /// Removes a layer's files: its `l/` link, `overlay/<id>` and its tar-split. The record
    /// must already be flagged `incomplete` (or be gone), so a crash midway leaves a layer that
    /// the next writer finishes deleting, never one that looks whole.
    pub(crate) fn remove_files(&self, id: &str) -> Result<()> {
        let layer_dir = PathBuf::from("overlay").join(id);
        if let Ok(link) = self.dir.read_to_string(layer_dir.join("link")) {
            let link = link.trim();
            if !link.is_empty() && link.bytes().all(|b| b.is_ascii_alphanumeric()) {
                match self.dir.remove_file(Path::new("overlay/l").join(link)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(Path::new("overlay/l").join(link), e)),
                }
            }
        }
        match self.dir.remove_dir_all(&layer_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(layer_dir, e)),
        }
        let tar_split = Path::new(LAYERS_DIR).join(format!("{id}.tar-split.gz"));
        match self.dir.remove_file(&tar_split) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(tar_split, e)),
        }
    }

    /// Deletes layers crash-safely: flag them `incomplete` and save, remove their files, then
    /// drop the records and save again.
    pub fn delete(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for record in self.records.iter_mut().filter(|r| ids.contains(&r.id)) {
            record
                .flags
                .insert(INCOMPLETE_FLAG.into(), serde_json::Value::Bool(true));
        }
        self.save()?;
        for id in ids {
            self.remove_files(id)?;
        }
        self.records.retain(|r| !ids.contains(&r.id));
        self.save()
    }
}

impl ImagesTxn<'_> {
    /// Writes `images.json` and announces the change.
    pub fn save(&self) -> Result<()> {
        save(self.dir, "images.json", &self.records, &self.guard)
    }

    /// Index of the record whose ID is exactly `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.records.iter().position(|r| r.id == id)
    }
}

pub(crate) fn is_incomplete(record: &LayerRecord) -> bool {
    record
        .flags
        .get(INCOMPLETE_FLAG)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}
