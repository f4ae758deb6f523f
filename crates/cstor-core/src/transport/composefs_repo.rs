//! An image written into a composefs repository as composefs-rs 0.9.4 lays one out
//! (`repository.rs`, `repository_format.rs`; `cfsctl oci pull` writes the same): content objects
//! under `objects/XX/REST` by fs-verity digest, each layer's tar as a split stream, the config
//! and manifest as split streams naming their layers (and the config its EROFS image), the
//! EROFS image itself, symlinks naming them (`streams/oci-layer-DIFFID`,
//! `streams/oci-config-DIGEST`, `streams/oci-manifest-DIGEST`, `images/ID`) and the name
//! (`streams/refs/oci/NAME`), so `cfsctl oci …` finds the image by name.
//!
//! Crash-safe as composefs-rs is: every file is written under a temporary name and renamed
//! into place; objects first (content-addressed, harmless if nothing names them), then one
//! `syncfs` of the repository's filesystem, then the streams' symlinks, the image's, and the
//! name last. Objects are not synced one by one (composefs-rs's `ensure_object` does not either,
//! and `Repository::sync` is its `syncfs`): an `fsync` per object made a copy of thousands of
//! files wait on the disk for each. A crash before the `syncfs` can leave an object whose data
//! never reached the disk under its name, which `cfsctl fsck` reports (as it would one of
//! composefs-rs's own). Layer files are reflinked from `diff/`
//! where the filesystem allows, copied otherwise, or hardlinked when asked (`cfsctl`'s own
//! `--local-fetch` falls back to hardlinks; in a secure repository that would turn fs-verity on
//! for the store's own files, for good — cstor writes insecure repositories only).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use ring::digest::{digest as ring_digest, SHA256};

use crate::content::erofs;
use crate::content::export::LayerPart;
use crate::content::splitstream::{ContentType, SplitStream};
use crate::digest::fsverity::{self, Algorithm};
use crate::error::{Error, IoContext, Result};
use crate::extract::clone::Cloner;
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::Store;
use crate::threads;
use crate::transport::copy::Copied;
use crate::tree::composefs_image::{Object, INLINE_MAX};

/// The `meta.json` `cfsctl init` writes (format version 1, EROFS format 1).
fn meta_json(algorithm: Algorithm) -> String {
    format!(
        "{{\n  \"version\": 1,\n  \"algorithm\": \"{}\",\n  \"features\": {{\n    \"compatible\": [],\n    \"read-only-compatible\": [\n      \"v1_erofs\"\n    ],\n    \"incompatible\": []\n  }},\n  \"erofs_formats\": {{\n    \"default\": 1\n  }}\n}}\n",
        algorithm.repository_name()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A composefs repository being written.
struct Repository {
    root: PathBuf,
    algorithm: Algorithm,
    cloner: Cloner,
    /// Objects are hard links to the store's files rather than copies or reflinks.
    hardlink: bool,
    /// Bytes of objects the repository did not have before.
    written: u64,
}

impl Repository {
    /// The algorithm of the repository at `root` if one is there (made by `cfsctl init`: its
    /// `meta.json` names it), read before anything is computed or written.
    fn existing_algorithm(root: &Path) -> Result<Option<Algorithm>> {
        let meta = root.join("meta.json");
        match std::fs::read(&meta) {
            Ok(bytes) => {
                refuse_secure(&meta)?;
                let value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::corrupt(&meta, e.to_string()))?;
                let name = value["algorithm"].as_str().unwrap_or_default();
                let algorithm =
                    Algorithm::from_repository_name(name).ok_or_else(|| Error::Unsupported {
                        what: format!("{}: fs-verity algorithm {name:?}", meta.display()),
                    })?;
                Ok(Some(algorithm))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&meta, e)),
        }
    }

    /// Opens the repository at `root`, or creates it as `cfsctl init` does with `algorithm`.
    fn open_or_create(root: &Path, algorithm: Algorithm, hardlink: bool) -> Result<Repository> {
        let meta = root.join("meta.json");
        if !meta.exists() {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).at(parent)?;
            }
            // 0700 as `cfsctl init` makes it: objects keep no owner or mode of the files they
            // hold (copies are 0644; hard links keep the store file's, setuid bits too), so
            // only the repository's own directory keeps other users out, as the store's does.
            match std::fs::DirBuilder::new().mode(0o700).create(root) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(root, e))
                }
                _ => {}
            }
            write_whole(&meta, meta_json(algorithm).as_bytes())?;
        }
        for dir in ["objects", "streams/refs/oci", "images"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).at(&path)?;
        }
        Ok(Repository {
            root: root.to_owned(),
            algorithm,
            cloner: Cloner::new(true),
            hardlink,
            written: 0,
        })
    }

    /// `objects/XX/REST` for `digest`, relative to the root.
    fn object_path(digest: &[u8]) -> PathBuf {
        let name = hex(digest);
        Path::new("objects").join(&name[..2]).join(&name[2..])
    }

    /// The object's final path, and whether it must still be written (absent).
    fn object_slot(&self, digest: &[u8], size: u64) -> Result<(PathBuf, bool)> {
        let path = self.root.join(Self::object_path(digest));
        // An object is trusted only as the regular file of its size: objects are synced once,
        // before anything names them, so a crash before that may leave one cut short — the
        // next copy writes it again (the rename replaces it, or a symlink planted there).
        let whole = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size);
        if whole {
            return Ok((path, false));
        }
        let dir = path.parent().expect("an object path has a directory");
        std::fs::create_dir_all(dir).at(dir)?;
        Ok((path, true))
    }

    /// Stores `bytes` as an object; its digest.
    fn store_bytes(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let mut hasher = fsverity::Hasher::new(self.algorithm);
        hasher.update(bytes);
        let digest = hasher.finish();
        let (path, absent) = self.object_slot(&digest, bytes.len() as u64)?;
        if absent {
            write_renamed(&path, bytes, false)?;
            self.written += bytes.len() as u64;
        }
        Ok(digest)
    }

    /// Stores the `size` bytes of `file` (a layer's file, `name` in errors), whose fs-verity
    /// digest is `digest`, as an object: reflinked where the filesystem allows, or hardlinked.
    fn store_file(&mut self, file: &mut File, size: u64, name: &Path, digest: &[u8]) -> Result<()> {
        file.rewind().at(name)?;
        let (path, absent) = self.object_slot(digest, size)?;
        if absent {
            let mut cloner = self.cloner;
            store_object(&mut cloner, self.hardlink, file, size, &path)?;
            self.cloner = cloner;
            self.written += size;
        }
        Ok(())
    }

    /// Stores the objects of the image's merged tree (its files over 64 bytes, digests known)
    /// on as many threads as there are cores, before the layer streams name them: the streams
    /// then find them there, and read only the files the merged view hides.
    fn store_objects(&mut self, store: &Store, objects: &[Object]) -> Result<()> {
        let this = &*self;
        let init = || (this.cloner, 0u64);
        let done = threads::each(objects, "copying", init, |(cloner, written), object| {
            let (path, absent) = this.object_slot(&object.digest, object.size)?;
            if absent {
                let mut file = store
                    .dir(object.store_index)
                    .dir
                    .open(&object.path)
                    .at(&object.path)?
                    .into_std();
                store_object(cloner, this.hardlink, &mut file, object.size, &path)?;
                *written += object.size;
            }
            Ok(())
        })?;
        self.written += done.iter().map(|(_, written)| written).sum::<u64>();
        Ok(())
    }

    /// Every object written so far on disk, before anything names them: `syncfs`, as
    /// composefs-rs's `Repository::sync`.
    fn sync(&self) -> Result<()> {
        let dir = File::open(&self.root).at(&self.root)?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(&self.root, e.into()))
    }

    /// Stores a finished split stream; its digest.
    fn store_stream(&mut self, stream: SplitStream) -> Result<Vec<u8>> {
        self.store_bytes(&stream.finish())
    }

    /// Points `link` (relative to the root) at the object `digest`, replacing what it named.
    fn link(&self, link: &Path, target: &Path) -> Result<()> {
        let path = self.root.join(link);
        let temp = temp_path(&path);
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(target, &temp).at(&temp)?;
        std::fs::rename(&temp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            Error::io(&path, e)
        })
    }

    fn link_object(&self, link: &Path, digest: &[u8]) -> Result<()> {
        let depth = link.components().count() - 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        self.link(link, &target.join(Self::object_path(digest)))
    }

    /// A layer's tar as a split stream: the tar-split's headers and padding inline, file bodies
    /// up to 64 bytes inline too, larger ones as objects (what `cfsctl oci pull
    /// containers-storage:` stores).
    /// `known` holds the digests the image's tree already computed, by store file: a file the
    /// merged view shows is not read twice.
    fn store_layer(&mut self, store: &Store, layer: &Layer, known: &Digests) -> Result<Vec<u8>> {
        let mut stream = SplitStream::new(self.algorithm, ContentType::OciLayer);
        let parts = store.layer_parts(layer)?;
        let diff = parts.diff_path().to_owned();
        for part in parts {
            match part? {
                LayerPart::Segment(bytes) => stream.write_inline(&bytes),
                LayerPart::Body {
                    name,
                    size,
                    mut file,
                    ..
                } => {
                    let path = diff.join(&name);
                    if size <= INLINE_MAX {
                        let mut bytes = Vec::with_capacity(size as usize);
                        (&mut file).take(size).read_to_end(&mut bytes).at(&path)?;
                        if bytes.len() as u64 != size {
                            return Err(Error::corrupt(&path, "shorter than its tar header says"));
                        }
                        stream.write_inline(&bytes);
                    } else {
                        let digest = match known.get(&(layer.store_index, path.clone())) {
                            Some(digest) => digest.clone(),
                            None => fsverity::digest(self.algorithm, &file).at(&path)?,
                        };
                        self.store_file(&mut file, size, &path, &digest)?;
                        stream.write_object(&digest, size);
                    }
                }
            }
        }
        self.store_stream(stream)
    }
}

/// A repository whose `meta.json` has fs-verity on (what `cfsctl init` does without
/// `--insecure`) requires fs-verity on every object; cstor does not enable it yet, so it refuses
/// before writing anything rather than leave objects cfsctl would reject.
fn refuse_secure(meta: &Path) -> Result<()> {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    let stat = statx(CWD, meta, AtFlags::empty(), StatxFlags::BASIC_STATS)
        .map_err(|e| Error::io(meta, e.into()))?;
    if stat.stx_attributes.contains(StatxAttributes::VERITY) {
        return Err(Error::Unsupported {
            what: format!(
                "{}: a secure composefs repository (fs-verity on meta.json): cstor writes insecure ones only",
                meta.display()
            ),
        });
    }
    Ok(())
}

/// What of a repository a copy is about to create, removed again when the copy fails: a
/// repository that never held an image is not left behind half-written. An existing one (its
/// `meta.json` there) keeps what the copy added, as composefs-rs's own imports do: objects no
/// name reaches, which `cfsctl gc` collects.
enum Created {
    /// The topmost directory of the path that does not exist yet.
    Tree(PathBuf),
    /// The entries of an existing directory (without `meta.json`) that do not exist yet.
    Entries(Vec<PathBuf>),
}

impl Created {
    fn before(root: &Path) -> Created {
        let missing = |p: &Path| std::fs::symlink_metadata(p).is_err();
        if missing(root) {
            let mut top = root;
            while let Some(parent) = top.parent() {
                if parent.as_os_str().is_empty() || !missing(parent) {
                    break;
                }
                top = parent;
            }
            return Created::Tree(top.to_owned());
        }
        if !missing(&root.join("meta.json")) {
            return Created::Entries(Vec::new());
        }
        let entries = ["meta.json", "objects", "streams", "images"]
            .iter()
            .map(|name| root.join(name))
            .filter(|p| missing(p))
            .collect();
        Created::Entries(entries)
    }

    /// Best effort: the copy's own error is what the caller reports.
    fn remove(&self) {
        let remove = |p: &Path| match std::fs::symlink_metadata(p) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
            Err(_) => Ok(()),
        };
        match self {
            Created::Tree(top) => {
                let _ = remove(top);
            }
            Created::Entries(entries) => {
                for entry in entries {
                    let _ = remove(entry);
                }
            }
        }
    }
}

/// Writes the object `path` (absent) from the `size` bytes of `file` (at its start) through a
/// temporary name: a hard link to it with `hardlink`, else a reflink or a copy.
fn store_object(
    cloner: &mut Cloner,
    hardlink: bool,
    file: &mut File,
    size: u64,
    path: &Path,
) -> Result<()> {
    let temp = temp_path(path);
    let stored = if hardlink {
        link_file(file, &temp)
    } else {
        File::create(&temp).and_then(|mut out| cloner.copy(file, &mut out, size).map(drop))
    };
    // A rename between two names of one file does nothing: the temp name goes after it.
    let renamed = stored.and_then(|()| std::fs::rename(&temp, path));
    let _ = std::fs::remove_file(&temp);
    renamed.map_err(|e| Error::io(path, e))
}

/// A new name `to` for the file `file` has open (the very file, whatever its path is now).
fn link_file(file: &File, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        from.as_str(),
        rustix::fs::CWD,
        to,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(std::io::Error::from)
}

/// The mount `fd` is on (`STATX_MNT_ID`), or its device where the kernel has no mount IDs
/// (before Linux 5.8): a hard link cannot cross mounts, even two of one filesystem.
fn mount_of(fd: impl std::os::fd::AsFd, path: &Path) -> Result<(bool, u64)> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    let stat = statx(
        fd,
        "",
        AtFlags::EMPTY_PATH,
        StatxFlags::MNT_ID | StatxFlags::BASIC_STATS,
    )
    .map_err(|e| Error::io(path, e.into()))?;
    if stat.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
        Ok((true, stat.stx_mnt_id))
    } else {
        Ok((
            false,
            rustix::fs::makedev(stat.stx_dev_major, stat.stx_dev_minor),
        ))
    }
}

/// fs-verity digests of store files, by store directory and path beneath it.
type Digests = HashMap<(usize, PathBuf), Vec<u8>>;

/// A temporary name beside `path`, as composefs-rs's own are hidden (a dot first).
fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".cstor-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into place: the file
/// appears whole or not at all.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    write_renamed(path, bytes, true)
}

/// [`write_whole`], the file synced before its rename when `sync` (an object is not: the
/// repository's `syncfs` covers them all before anything names them).
fn write_renamed(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let temp = temp_path(path);
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.at(path)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(ring_digest(&SHA256, bytes).as_ref()))
}

impl Store {
    /// Writes `image` into the composefs repository at `root` (created when missing, with
    /// `algorithm`; an existing one's `meta.json` decides), named `name` when given; its
    /// objects hard links to the layers' files with `hardlink`.
    pub fn copy_to_composefs(
        &self,
        image: &Image,
        root: &Path,
        name: Option<&str>,
        algorithm: Algorithm,
        hardlink: bool,
    ) -> Result<Copied> {
        if let Some(name) = name {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(Error::InvalidArgument(format!(
                    "composefs image name {name:?}: no '/', not empty, no leading '.'"
                )));
            }
        }
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        let (config_key, config) = self.image_config_bytes(image)?;
        let manifest = self.image_big_data(image, "manifest")?;
        let algorithm = Repository::existing_algorithm(root)?.unwrap_or(algorithm);
        if hardlink {
            self.check_same_mount(&layers, root)?;
        }
        let tree = self.composefs_image(image, algorithm)?;
        let erofs = erofs::writer::write(&tree.entries, 1)?;
        let created = Created::before(root);
        let written = (|| {
            let mut repo = Repository::open_or_create(root, algorithm, hardlink)?;

            repo.store_objects(self, &tree.objects)?;
            let known: Digests = tree
                .objects
                .iter()
                .map(|o| ((o.store_index, o.path.clone()), o.digest.clone()))
                .collect();
            let mut layer_streams = Vec::new();
            for layer in &layers {
                let diff_id =
                    layer
                        .record
                        .diff_digest
                        .clone()
                        .ok_or_else(|| Error::Unsupported {
                            what: format!("layer {} has no uncompressed digest", layer.id()),
                        })?;
                let digest = repo.store_layer(self, layer, &known)?;
                layer_streams.push((diff_id, digest));
            }
            let image_digest = repo.store_bytes(&erofs)?;

            let config_object = repo.store_bytes(&config)?;
            let mut config_stream = SplitStream::new(repo.algorithm, ContentType::OciConfig);
            for (diff_id, digest) in &layer_streams {
                config_stream.add_named_stream(diff_id, digest);
            }
            config_stream.add_named_stream("composefs.image.v1", &image_digest);
            config_stream.write_object(&config_object, config.len() as u64);
            let config_stream = repo.store_stream(config_stream)?;

            let manifest_digest = sha256(&manifest);
            let manifest_object = repo.store_bytes(&manifest)?;
            let mut manifest_stream = SplitStream::new(repo.algorithm, ContentType::OciManifest);
            manifest_stream.add_named_stream(&format!("config:{config_key}"), &config_stream);
            for (diff_id, digest) in &layer_streams {
                manifest_stream.add_named_stream(diff_id, digest);
            }
            manifest_stream.write_object(&manifest_object, manifest.len() as u64);
            let manifest_stream = repo.store_stream(manifest_stream)?;

            repo.sync()?;
            for (diff_id, digest) in &layer_streams {
                repo.link_object(Path::new(&format!("streams/oci-layer-{diff_id}")), digest)?;
            }
            repo.link_object(
                Path::new(&format!("streams/oci-config-{config_key}")),
                &config_stream,
            )?;
            let manifest_link = format!("oci-manifest-{manifest_digest}");
            repo.link_object(
                Path::new("streams").join(&manifest_link).as_path(),
                &manifest_stream,
            )?;
            let id = hex(&image_digest);
            repo.link_object(Path::new("images").join(&id).as_path(), &image_digest)?;
            if let Some(name) = name {
                let link = Path::new("streams/refs/oci").join(name);
                repo.link(&link, &Path::new("../..").join(&manifest_link))?;
            }
            Ok(Copied {
                manifest_digest,
                manifest_size: manifest.len() as u64,
                layers: layers.len(),
                bytes_written: repo.written,
                blobs_reused: 0,
                composefs_id: Some(id),
            })
        })();
        if written.is_err() {
            created.remove();
        }
        written
    }

    /// `EXDEV` before anything is computed or written when a layer's `diff/` is on another
    /// mount than the repository (or, for a new one, the directory it will be made in).
    fn check_same_mount(&self, layers: &[Layer], root: &Path) -> Result<()> {
        let existing = root
            .ancestors()
            .find(|p| p.as_os_str().is_empty() || p.exists())
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let repo_dir = File::open(existing).at(existing)?;
        let repo_mount = mount_of(&repo_dir, existing)?;
        for layer in layers {
            let diff_path = Path::new("overlay").join(layer.id()).join("diff");
            let diff = self
                .dir(layer.store_index)
                .dir
                .open_dir(&diff_path)
                .at(&diff_path)?;
            let mount = mount_of(&diff, &diff_path)?;
            if mount.0 == repo_mount.0 && mount.1 != repo_mount.1 {
                let store = &self.dir(layer.store_index).path;
                return Err(Error::io(
                    root,
                    std::io::Error::new(
                        std::io::ErrorKind::CrossesDevices,
                        format!(
                            "hard links cannot reach it from the store {} (layer {}'s diff/ is on another mount or filesystem)",
                            store.display(),
                            layer.id()
                        ),
                    ),
                ));
            }
        }
        Ok(())
    }
}
