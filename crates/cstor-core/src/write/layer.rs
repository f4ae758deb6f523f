//! Creating a layer from a tar stream, the way podman's `PutLayer` does, step for step:
//!
//! 1. under the layers write lock, a record flagged `incomplete` is saved first, so that a
//!    writer killed at any later point leaves something the next writer (cstor or podman)
//!    recognises as garbage and deletes;
//! 2. the overlay driver's files are made: `overlay/<id>/` with `diff/` (mode of the parent's
//!    `diff/`, 0555 for a base layer), `link` and its `overlay/l/<LINK>` symlink, `work/`,
//!    `merged/`, and `empty/` for a base layer or, for a child, `lower` (the parent's link, then
//!    the parent's `lower`) and `lower-layers` (the same chain by layer ID, which podman 5.8
//!    prefers over `lower` when it mounts);
//! 3. the tar is applied to `diff/` and its tar-split recorded ([`crate::write::apply`]);
//! 4. the data is synced, the tar-split written, and the record saved whole, with digests,
//!    sizes, compression and the uid/gid sets.
//!
//! Any failure removes the files and the record again, as podman does.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt};

use crate::error::{Error, IoContext, Result};
use crate::random;
use crate::store::config::Environment;
use crate::store::layers::{Layer, LayerRecord, MAX_CHAIN_DEPTH};
use crate::store::overlay::LOWER_LAYERS;
use crate::store::skeleton::MOUNT_PROGRAM_FLAG;
use crate::store::{is_valid_id, Store};
use crate::write::apply::{apply_layer, Applied, ApplyOptions, DiffWhiteouts};
use crate::write::atomic;
use crate::write::transaction::{LayersTxn, INCOMPLETE_FLAG, LAYERS_DIR};

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct NewLayer {
    /// The ID; a random one when absent (as `podman import` gets). Pulls use the chain ID.
    pub id: Option<String>,
    pub parent: Option<String>,
    pub names: Vec<String>,
    /// When set, the uncompressed tar must have this digest (a pull's diff ID).
    pub expected_diff_digest: Option<String>,
    /// When set, the bytes read must have this digest (a pull's blob digest).
    pub expected_compressed_digest: Option<String>,
}

const DEFAULT_DIFF_MODE: u32 = 0o555;

impl Store {
    /// Creates a layer from `tar` (plain, gzip or zstd) and returns it.
    pub fn create_layer(&self, new: &NewLayer, tar: impl Read) -> Result<Layer> {
        let mut txn = self.begin_layers()?;
        let record = self.create_layer_in(&mut txn, new, tar)?;
        Ok(Layer {
            record,
            store_index: 0,
            read_only: false,
            volatile: false,
        })
    }

    /// [`Store::create_layer`] inside a layers transaction the caller holds.
    pub(crate) fn create_layer_in(
        &self,
        txn: &mut LayersTxn<'_>,
        new: &NewLayer,
        tar: impl Read,
    ) -> Result<LayerRecord> {
        let id = match &new.id {
            Some(id) if !is_valid_id(id) => {
                return Err(Error::InvalidArgument(format!(
                    "{id:?} is not a valid layer ID"
                )))
            }
            Some(id) if txn.contains(id) => {
                return Err(Error::InvalidArgument(format!(
                    "a layer with ID {id} already exists"
                )))
            }
            Some(id) => id.clone(),
            None => loop {
                let id = random::hex_id();
                if !txn.contains(&id) {
                    break id;
                }
            },
        };
        for name in &new.names {
            if txn.records.iter().any(|r| r.names.contains(name)) {
                return Err(Error::InvalidArgument(format!(
                    "the layer name {name:?} is in use"
                )));
            }
        }
        let parent = match &new.parent {
            Some(parent) => Some(self.parent_layer(txn, parent)?),
            None => None,
        };
        txn.records.push(LayerRecord {
            id: id.clone(),
            names: new.names.clone(),
            parent: parent.as_ref().map(|p| p.id().to_owned()),
            created: Some(crate::time::now_rfc3339()),
            flags: [(INCOMPLETE_FLAG.to_owned(), serde_json::Value::Bool(true))]
                .into_iter()
                .collect(),
            ..Default::default()
        });
        txn.save()?;
        match self.fill_layer(txn, &id, parent.as_ref(), new, tar) {
            Ok(applied) => {
                let record = txn.get_mut(&id).expect("the record was just added");
                record.flags.remove(INCOMPLETE_FLAG);
                record.compressed_diff_digest = Some(applied.compressed_digest);
                record.compressed_size = Some(applied.compressed_size as i64);
                record.diff_digest = Some(applied.diff_digest);
                record.diff_size = Some(applied.diff_size as i64);
                record.compression = Some(applied.compression as i32);
                record.uidset = applied.uids;
                record.gidset = applied.gids;
                let record = record.clone();
                txn.save()?;
                Ok(record)
            }
            Err(e) => {
                // Best effort, as podman's: the `incomplete` record makes the next writer finish
                // the job if this fails too.
                let _ = txn.delete(std::slice::from_ref(&id));
                Err(e)
            }
        }
    }

    /// The parent, in the main store or an additional one, checked for a usable chain.
    fn parent_layer(&self, txn: &LayersTxn<'_>, parent: &str) -> Result<Layer> {
        let layer = match txn.get(parent) {
            Some(record) if !crate::write::transaction::is_incomplete(record) => Layer {
                record: record.clone(),
                store_index: 0,
                read_only: false,
                volatile: false,
            },
            _ => self
                .layers()?
                .into_iter()
                .find(|l| l.id() == parent)
                .ok_or_else(|| Error::NoLayer {
                    reference: parent.to_owned(),
                })?,
        };
        if self.layer_lower_links(&layer)?.len() + 1 >= MAX_CHAIN_DEPTH {
            return Err(Error::InvalidArgument(format!(
                "layer {parent} already has {MAX_CHAIN_DEPTH} layers below it, overlay's limit"
            )));
        }
        Ok(layer)
    }

    fn fill_layer(
        &self,
        txn: &LayersTxn<'_>,
        id: &str,
        parent: Option<&Layer>,
        new: &NewLayer,
        tar: impl Read,
    ) -> Result<Applied> {
        let dir = txn.dir;
        let diff = self.make_layer_dirs(dir, id, parent)?;
        let applied = apply_layer(tar, &diff, apply_options(dir))?;
        check_digest(
            "uncompressed",
            &new.expected_diff_digest,
            &applied.diff_digest,
        )?;
        check_digest(
            "compressed",
            &new.expected_compressed_digest,
            &applied.compressed_digest,
        )?;
        // The record about to say "complete" must not outlive the data after a power cut.
        let handle = diff.open(".").at(layer_path(id))?;
        rustix::fs::syncfs(&handle).map_err(|e| Error::io(layer_path(id), e.into()))?;
        let layers_dir = dir.open_dir(LAYERS_DIR).at(LAYERS_DIR)?;
        let name = format!("{id}.tar-split.gz");
        atomic::write_file(
            &layers_dir,
            &name,
            &applied.tar_split,
            0o600,
            &Path::new(LAYERS_DIR).join(&name),
        )?;
        Ok(applied)
    }

    /// Makes the overlay driver's files for a new layer and returns its open `diff/`.
    fn make_layer_dirs(&self, dir: &Dir, id: &str, parent: Option<&Layer>) -> Result<Dir> {
        let path = layer_path(id);
        let mut private = DirBuilder::new();
        private.mode(0o700);
        let _ = dir.remove_dir_all(&path);
        dir.create_dir_with(&path, &private).at(&path)?;
        let diff_mode = match parent {
            Some(parent) => {
                let parent_diff = layer_path(parent.id()).join("diff");
                let parent_dir = &self.dir(parent.store_index).dir;
                let meta = parent_dir.metadata(&parent_diff).at(&parent_diff)?;
                cap_std::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
            }
            None => DEFAULT_DIFF_MODE,
        };
        let mut diff_builder = DirBuilder::new();
        diff_builder.mode(diff_mode);
        dir.create_dir_with(path.join("diff"), &diff_builder)
            .at(path.join("diff"))?;
        // The umask may have narrowed the mode; the driver's is exact.
        rustix::fs::chmodat(
            dir,
            path.join("diff"),
            rustix::fs::Mode::from_raw_mode(diff_mode),
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| Error::io(path.join("diff"), e.into()))?;
        let diff = dir.open_dir(path.join("diff")).at(path.join("diff"))?;
        let link = loop {
            let link = random::link_name();
            if !dir.exists(Path::new("overlay/l").join(&link)) {
                break link;
            }
        };
        dir.symlink(format!("../{id}/diff"), Path::new("overlay/l").join(&link))
            .at(Path::new("overlay/l").join(&link))?;
        write_small(dir, &path.join("link"), link.as_bytes())?;
        for name in ["work", "merged"] {
            dir.create_dir_with(path.join(name), &private)
                .at(path.join(name))?;
        }
        match parent {
            None => dir
                .create_dir_with(path.join("empty"), &private)
                .at(path.join("empty"))?,
            Some(parent) => {
                let parent_link = self.layer_link(parent)?.ok_or_else(|| {
                    Error::corrupt(
                        layer_path(parent.id()).join("link"),
                        "the parent layer has no link",
                    )
                })?;
                let mut lower = vec![format!("l/{parent_link}")];
                lower.extend(
                    self.layer_lower_links(parent)?
                        .into_iter()
                        .map(|l| format!("l/{l}")),
                );
                write_small(dir, &path.join("lower"), lower.join(":").as_bytes())?;
                let mut lower_layers = vec![parent.id().to_owned()];
                lower_layers.extend(self.layer_lower_ids(parent)?);
                write_small(
                    dir,
                    &path.join(LOWER_LAYERS),
                    lower_layers.join(":").as_bytes(),
                )?;
            }
        }
        Ok(diff)
    }
}

fn layer_path(id: &str) -> PathBuf {
    Path::new("overlay").join(id)
}

/// How a layer is written into this store's `diff/` directories, as containers/storage's driver
/// decides: deletions as the AUFS names when the driver runs a mount program (it says so in
/// `overlay/.has-mount-program`), else overlayfs's own forms, with the `user.` xattr namespace
/// in a user namespace (a rootless store, through `podman unshare`); and whether writes happen
/// in such a namespace ([`crate::store::config::Environment::in_user_namespace`]).
fn apply_options(dir: &Dir) -> ApplyOptions {
    let user_namespace = Environment::current().in_user_namespace();
    let mount_program = dir
        .read_to_string(MOUNT_PROGRAM_FLAG)
        .is_ok_and(|s| s.trim() == "true");
    let whiteouts = if mount_program {
        DiffWhiteouts::Aufs
    } else {
        DiffWhiteouts::Overlay {
            xattr_prefix: if user_namespace { "user." } else { "trusted." },
        }
    };
    ApplyOptions {
        whiteouts,
        user_namespace,
    }
}

fn check_digest(what: &str, expected: &Option<String>, actual: &str) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::InvalidArgument(format!(
            "the layer's {what} digest is {actual}, not the expected {expected}"
        ))),
        _ => Ok(()),
    }
}

/// Writes one of the driver's small files (`link`, `lower`, `lower-layers`), mode 0644.
fn write_small(dir: &Dir, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o644);
    let mut file = dir.open_with(path, &options).at(path)?;
    file.write_all(bytes).at(path)
}
