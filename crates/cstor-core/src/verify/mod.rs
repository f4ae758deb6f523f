//! Checking a store for damage (`cstor verify`).
//!
//! The checks are those of containers/storage's `Check` (`check.go`, behind `podman system
//! check` from podman 5 on; Debian's podman 4.3 has none), and the kinds of finding carry the
//! names of its errors where it has one. Each layer's `diff/` is compared with its tar headers
//! (the [`crate::verify::metadata`]: type, mode, owner, mtime, size, link target, xattrs, one
//! finding per path); unless the check is quick, its tar is also rebuilt from its tar-split and
//! `diff/` by the export code — every body checked against its CRC-64, the whole tar against
//! `diff-digest` and `diff-size`. Each image's big-data items are checked against
//! `big-data-sizes` and `big-data-digests`; each parent, image top layer, overlay `link`,
//! `lower` entry and `l/` symlink against what it names.
//!
//! A quick check reads no file content: structure and metadata only. (podman 5.8's `--quick`
//! does less: it neither hashes layers nor compares their trees.)
//!
//! Damage is a [`Finding`], not an `Err`: a check goes on past it, so one run reports everything.
//! Only metadata without which nothing can be checked (`layers.json`, `images.json`,
//! `containers.json`) ends it with an error.

pub mod metadata;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::content::export::ExportOptions;
use crate::digest::thread::Sha256Thread;
use crate::error::Error;
use crate::progress::Progress;
use crate::store::images::{big_data_path, Image};
use crate::store::layers::Layer;
use crate::store::overlay::{link_target, overlay_file, DRIVER_ENTRIES};
use crate::store::{Store, StoreDir};
use crate::verify::metadata::Difference;
use crate::Result;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Damage: podman would fail on it, or the store no longer holds what its metadata says.
    Error,
    /// Leftovers that harm nothing but that podman does not leave: dangling links, directories
    /// no layer record names, layers whose content cannot be checked.
    Warning,
    /// Normal but worth knowing: layers no image or container uses (podman keeps them until
    /// they are pruned).
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What a finding is about. Where containers/storage's check has an error for it, the name is
/// that error's (`ErrLayerMissing` → `layer-missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
#[ts(rename = "FindingKind")]
pub enum Kind {
    /// A layer's parent has no record in `layers.json`.
    LayerMissing,
    /// A layer's parent chain comes back to a layer it passed.
    LayerParentCycle,
    /// A layer record whose `overlay/<id>/diff` directory is gone.
    LayerDirMissing,
    /// A body in `diff/` is missing, resized or fails the CRC-64 its tar-split recorded.
    LayerContentModified,
    /// An entry of `diff/` differs from the layer's tar header: type, mode, owner, mtime, size,
    /// link target, device, xattrs, opacity; or is missing, or was added. podman's check reports
    /// these as "layer content modified" too.
    LayerMetadataModified,
    /// A difference from the tar headers that podman's own partial (zstd:chunked) pulls leave:
    /// directory and symlink mtimes not restored, fifos not made.
    LayerMetadataUnrestored,
    /// The rebuilt tar does not hash to `diff-digest`.
    LayerIncorrectContentDigest,
    /// The rebuilt tar is not `diff-size` bytes long.
    LayerIncorrectContentSize,
    /// The layer has no tar-split to check its content against, or one that cannot rebuild its
    /// tar (a sparse member).
    LayerContentUnverifiable,
    /// The layer's `link` file is missing or names no `l/` symlink, or one leading elsewhere.
    LayerLinkMissing,
    /// The layer's `lower` file names links that are missing or do not lead to its parents.
    LayerLowerIncorrect,
    /// An `overlay/l/` symlink whose target is gone (or was never a layer's `diff`).
    LinkDangling,
    /// A directory under `overlay/` that no layer record names.
    LayerUnaccounted,
    /// A layer that no image or container uses.
    LayerUnreferenced,
    /// A layer of an image (its top layer or one of its parents) has no record.
    ImageLayerMissing,
    /// A big-data item of an image has no file.
    ImageDataMissing,
    /// A big-data item is not the size `big-data-sizes` records.
    ImageDataIncorrectSize,
    /// A big-data item does not hash to the digest `big-data-digests` records.
    ImageDataIncorrectDigest,
    /// Something a check needed could not be read (permissions, I/O errors).
    Unreadable,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::LayerMissing => "layer-missing",
            Kind::LayerParentCycle => "layer-parent-cycle",
            Kind::LayerDirMissing => "layer-dir-missing",
            Kind::LayerContentModified => "layer-content-modified",
            Kind::LayerMetadataModified => "layer-metadata-modified",
            Kind::LayerMetadataUnrestored => "layer-metadata-unrestored",
            Kind::LayerIncorrectContentDigest => "layer-incorrect-content-digest",
            Kind::LayerIncorrectContentSize => "layer-incorrect-content-size",
            Kind::LayerContentUnverifiable => "layer-content-unverifiable",
            Kind::LayerLinkMissing => "layer-link-missing",
            Kind::LayerLowerIncorrect => "layer-lower-incorrect",
            Kind::LinkDangling => "link-dangling",
            Kind::LayerUnaccounted => "layer-unaccounted",
            Kind::LayerUnreferenced => "layer-unreferenced",
            Kind::ImageLayerMissing => "image-layer-missing",
            Kind::ImageDataMissing => "image-data-missing",
            Kind::ImageDataIncorrectSize => "image-data-incorrect-size",
            Kind::ImageDataIncorrectDigest => "image-data-incorrect-digest",
            Kind::Unreadable => "unreadable",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Kind::LayerContentUnverifiable | Kind::LinkDangling | Kind::LayerUnaccounted => {
                Severity::Warning
            }
            Kind::LayerUnreferenced | Kind::LayerMetadataUnrestored => Severity::Info,
            _ => Severity::Error,
        }
    }
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    /// What it is about: a layer ID, an image ID, an `l/` link name or an `overlay/` entry.
    pub subject: String,
    /// For a finding about one path of a layer: that path (as the tar names it, no `./`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

/// How much to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Structure and metadata only: no file content is read, no tar rebuilt.
    pub quick: bool,
}

/// Everything a check found, and how much it looked at.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// In the order the checks ran: images, store-wide leftovers, then layer by layer.
    pub findings: Vec<Finding>,
    pub images: usize,
    pub layers: usize,
    /// Bytes of layer tar rebuilt and hashed.
    pub bytes: u64,
}

impl VerifyReport {
    /// Whether nothing of [`Severity::Error`] was found.
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

impl Store {
    /// Checks the whole store, or with `image` only that image: its big data and the records,
    /// links and content of its layers (store-wide leftovers are then not looked for).
    pub fn verify(
        &self,
        image: Option<&Image>,
        options: VerifyOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<VerifyReport> {
        let layers = self.layers()?;
        let images = match image {
            Some(image) => vec![image.clone()],
            None => self.images()?,
        };
        let mut check = Checker {
            store: self,
            by_id: layers.iter().map(|l| (l.id(), l)).collect(),
            findings: Vec::new(),
            options,
        };
        let mut used = HashSet::new();
        for image in &images {
            check.image_data(image);
            used.extend(check.image_layers(image));
        }
        if image.is_none() {
            for container in self.containers()? {
                used.extend(check.chain(&container.layer).0.iter().map(|l| l.id()));
            }
            for layer in layers.iter().filter(|l| !used.contains(l.id())) {
                check.report(
                    Kind::LayerUnreferenced,
                    layer.id(),
                    "no image or container uses this layer",
                );
            }
            for (index, store_dir) in self.dirs().iter().enumerate() {
                check.overlay_dir(index, store_dir);
            }
        }
        let subjects: Vec<&Layer> = layers
            .iter()
            .filter(|l| image.is_none() || used.contains(l.id()))
            .collect();
        let size = |layer: &Layer| layer.record.diff_size.unwrap_or(0).max(0) as u64;
        let mut report = Progress {
            layer: 0,
            layers: subjects.len(),
            bytes: 0,
            total_bytes: subjects.iter().map(|l| size(l)).sum(),
        };
        let mut hashed = 0;
        for (index, layer) in subjects.iter().enumerate() {
            report.layer = index;
            progress(report);
            hashed += check.layer(layer);
            report.bytes += size(layer);
        }
        progress(report);
        Ok(VerifyReport {
            findings: check.findings,
            images: images.len(),
            layers: subjects.len(),
            bytes: hashed,
        })
    }
}

/// How a walk down parent links ended.
enum ChainEnd {
    /// At a base layer.
    Base,
    /// At a parent ID with no record.
    Missing(String),
    /// At a layer the walk had passed already.
    Cycle(String),
}

struct Checker<'a> {
    store: &'a Store,
    by_id: HashMap<&'a str, &'a Layer>,
    findings: Vec<Finding>,
    options: VerifyOptions,
}

impl<'a> Checker<'a> {
    fn report(&mut self, kind: Kind, subject: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: kind.severity(),
            kind,
            subject: subject.to_owned(),
            path: None,
            message: message.into(),
        });
    }

    /// Records a failed read: damage the store's files show (corrupt or missing) as `kind`,
    /// anything else (permissions, I/O) as [`Kind::Unreadable`].
    fn failed(&mut self, kind: Kind, subject: &str, error: Error) {
        let damage = match &error {
            Error::Corrupt { .. } | Error::InvalidArgument(_) => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        };
        let message = match &error {
            Error::Corrupt { path, detail } => format!("{}: {detail}", path.display()),
            other => other.to_string(),
        };
        self.report(
            if damage { kind } else { Kind::Unreadable },
            subject,
            message,
        );
    }

    /// The layers from `top` down its parent links, top first, and how the walk ended.
    fn chain(&self, top: &str) -> (Vec<&'a Layer>, ChainEnd) {
        let mut chain: Vec<&'a Layer> = Vec::new();
        let mut next = top.to_owned();
        loop {
            let Some(&layer) = self.by_id.get(next.as_str()) else {
                return (chain, ChainEnd::Missing(next));
            };
            if chain.iter().any(|l| l.id() == layer.id()) {
                return (chain, ChainEnd::Cycle(next));
            }
            chain.push(layer);
            match layer.record.parent.as_deref().filter(|p| !p.is_empty()) {
                Some(parent) => next = parent.to_owned(),
                None => return (chain, ChainEnd::Base),
            }
        }
    }

    /// The IDs of an image's layers, reporting the first one that has no record.
    fn image_layers(&mut self, image: &Image) -> Vec<&'a str> {
        let Some(top) = image.record.layer.as_deref().filter(|t| !t.is_empty()) else {
            return Vec::new();
        };
        let (chain, end) = self.chain(top);
        if let ChainEnd::Missing(id) = end {
            let message = match chain.last() {
                None => format!("top layer {id} has no record in layers.json"),
                Some(child) => format!(
                    "layer {id}, the parent of {}, has no record in layers.json",
                    child.id()
                ),
            };
            self.report(Kind::ImageLayerMissing, image.id(), message);
        }
        chain.iter().map(|l| l.id()).collect()
    }

    /// Each big-data item against its recorded size and digest. The digest containers/storage
    /// records is the sha256 of the file's bytes, manifests (`manifest`, `manifest-<digest>`)
    /// included; only a schema 1 signed manifest, digested without its signatures, would differ.
    fn image_data(&mut self, image: &Image) {
        for key in &image.record.big_data_names {
            let path = big_data_path(image, key);
            let bytes = match self.store.image_big_data_if_present(image, key) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    let message = format!("big-data item {key:?} ({}) is missing", path.display());
                    self.report(Kind::ImageDataMissing, image.id(), message);
                    continue;
                }
                Err(e) => {
                    self.failed(Kind::ImageDataIncorrectSize, image.id(), e);
                    continue;
                }
            };
            if let Some(&size) = image.record.big_data_sizes.get(key) {
                if size != bytes.len() as i64 {
                    let message = format!(
                        "big-data item {key:?} is {} bytes, images.json records {size}",
                        bytes.len()
                    );
                    self.report(Kind::ImageDataIncorrectSize, image.id(), message);
                }
            }
            if let Some(expected) = image.record.big_data_digests.get(key) {
                let actual = crate::digest::sha256(&bytes);
                if expected.starts_with("sha256:") && *expected != actual {
                    let message = format!(
                        "big-data item {key:?} hashes to {actual}, images.json records {expected}"
                    );
                    self.report(Kind::ImageDataIncorrectDigest, image.id(), message);
                }
            }
        }
    }

    /// `l/` symlinks whose layer directory is gone, and `overlay/` directories no record names.
    fn overlay_dir(&mut self, index: usize, store_dir: &StoreDir) {
        let shown = store_dir.path.display().to_string();
        for link in self.entries(store_dir, Path::new("overlay/l"), &shown) {
            match link_target(store_dir, &link) {
                Ok(id) if store_dir.dir.is_dir(overlay_file(&id, "diff")) => {}
                Ok(id) => {
                    let message = format!("l/{link} leads to {id}/diff, which does not exist");
                    self.report(Kind::LinkDangling, &link, message);
                }
                Err(e) => self.failed(Kind::LinkDangling, &link, e),
            }
        }
        let known: HashSet<&str> = self
            .by_id
            .values()
            .filter(|l| l.store_index == index)
            .map(|l| l.id())
            .collect();
        for entry in self.entries(store_dir, Path::new("overlay"), &shown) {
            let is_layer_like =
                !DRIVER_ENTRIES.contains(&entry.as_str()) && !entry.starts_with('.');
            if is_layer_like
                && !known.contains(entry.as_str())
                && store_dir.dir.is_dir(Path::new("overlay").join(&entry))
            {
                let message = format!(
                    "overlay/{entry} in {shown} is no layer's: layers.json has no record of it"
                );
                self.report(Kind::LayerUnaccounted, &entry, message);
            }
        }
    }

    /// The names in a directory of the store, sorted; none when it does not exist.
    fn entries(&mut self, store_dir: &StoreDir, path: &Path, shown: &str) -> Vec<String> {
        let entries = match store_dir.dir.read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.failed(Kind::Unreadable, shown, Error::io(path, e));
                return Vec::new();
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every check of one layer; returns the bytes of tar it rebuilt.
    fn layer(&mut self, layer: &'a Layer) -> u64 {
        let (chain, end) = self.chain(layer.id());
        match &end {
            ChainEnd::Missing(parent) if chain.len() == 1 => {
                let message = format!("parent {parent} has no record in layers.json");
                self.report(Kind::LayerMissing, layer.id(), message);
            }
            ChainEnd::Cycle(id) => {
                let message = format!("the parent chain comes back to {id}");
                self.report(Kind::LayerParentCycle, layer.id(), message);
            }
            _ => {}
        }
        let store_dir = self.store.dir(layer.store_index);
        let diff = overlay_file(layer.id(), "diff");
        match store_dir.dir.symlink_metadata(&diff) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                let message = format!("{} is not a directory", diff.display());
                self.report(Kind::LayerDirMissing, layer.id(), message);
                return 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let message = format!("{} does not exist", diff.display());
                self.report(Kind::LayerDirMissing, layer.id(), message);
                return 0;
            }
            Err(e) => {
                self.failed(Kind::Unreadable, layer.id(), Error::io(diff, e));
                return 0;
            }
        }
        self.link(layer, store_dir);
        let parents: Option<Vec<&str>> =
            matches!(end, ChainEnd::Base).then(|| chain[1..].iter().map(|l| l.id()).collect());
        self.lower(layer, store_dir, parents.as_deref());
        // A container's layer has no `diff-digest`, nor headers to compare with.
        let compared = layer.record.diff_digest.is_some();
        if self.options.quick {
            if compared {
                let differences = self.store.compare_layer_metadata(layer);
                self.metadata(layer, differences);
            }
            return 0;
        }
        // The metadata comparison (a walk of diff/) runs beside the content check (reads and
        // hashes), at a lower priority: the hash is the longest part, and should keep its core.
        let store = self.store;
        let (differences, bytes) = std::thread::scope(|scope| {
            let differences = compared.then(|| {
                scope.spawn(|| {
                    yield_to_hashing();
                    store.compare_layer_metadata(layer)
                })
            });
            let bytes = self.content(layer);
            let differences = differences.map(|thread| {
                thread.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        layer.id(),
                        std::io::Error::other("the metadata check panicked"),
                    ))
                })
            });
            (differences, bytes)
        });
        if let Some(differences) = differences {
            self.metadata(layer, differences);
        }
        bytes
    }

    /// Reports each path of `diff/` that differs from the layer's tar headers. A layer without
    /// a tar-split, or with a sparse member (whose headers cannot be told from the tar-split), is
    /// reported by the content check, or here when that does not run.
    fn metadata(&mut self, layer: &Layer, differences: Result<Vec<Difference>>) {
        let differences = match differences.map_err(unverifiable) {
            Ok(differences) => differences,
            Err(Ok(reason)) => {
                if self.options.quick {
                    self.report(Kind::LayerContentUnverifiable, layer.id(), reason);
                }
                return;
            }
            Err(Err(e)) => return self.failed(Kind::LayerMetadataModified, layer.id(), e),
        };
        let diff = overlay_file(layer.id(), "diff");
        for difference in differences {
            let kind = if difference.unrestored {
                Kind::LayerMetadataUnrestored
            } else {
                Kind::LayerMetadataModified
            };
            let message = format!(
                "{}: {}",
                diff.join(&difference.path).display(),
                difference.describe()
            );
            self.report(kind, layer.id(), message);
            if let Some(finding) = self.findings.last_mut() {
                finding.path = Some(difference.path.to_string_lossy().into_owned());
            }
        }
    }

    /// The layer's `link` names an `l/` symlink that leads back to it.
    fn link(&mut self, layer: &Layer, store_dir: &StoreDir) {
        let link = match self.store.layer_link(layer) {
            Ok(Some(link)) => link,
            Ok(None) => {
                let message = format!(
                    "{} does not exist",
                    overlay_file(layer.id(), "link").display()
                );
                self.report(Kind::LayerLinkMissing, layer.id(), message);
                return;
            }
            Err(e) => return self.failed(Kind::LayerLinkMissing, layer.id(), e),
        };
        match link_target(store_dir, &link) {
            Ok(id) if id == layer.id() => {}
            Ok(id) => {
                let message = format!("its link l/{link} leads to layer {id}");
                self.report(Kind::LayerLinkMissing, layer.id(), message);
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let message = format!("its link file names l/{link}, which does not exist");
                self.report(Kind::LayerLinkMissing, layer.id(), message);
            }
            Err(e) => self.failed(Kind::LayerLinkMissing, layer.id(), e),
        }
    }

    /// Every `lower` entry is a link to an existing `diff/` and, when the parent chain is whole
    /// (`parents`), the links lead to the parents in order: what the overlay mount will stack.
    fn lower(&mut self, layer: &Layer, store_dir: &StoreDir, parents: Option<&[&str]>) {
        let links = match self.store.layer_lower_links(layer) {
            Ok(links) => links,
            Err(e) => return self.failed(Kind::LayerLowerIncorrect, layer.id(), e),
        };
        for (index, link) in links.iter().enumerate() {
            let problem = match link_target(store_dir, link) {
                Ok(id) if !store_dir.dir.is_dir(overlay_file(&id, "diff")) => format!(
                    "lower entry {} is l/{link}, which leads to {id}/diff, which does not exist",
                    index + 1
                ),
                Ok(id) => match parents {
                    Some(parents) if parents.get(index) != Some(&id.as_str()) => format!(
                        "lower entry {} is l/{link}, which leads to {id}, not to the parent chain's {}",
                        index + 1,
                        parents.get(index).unwrap_or(&"end")
                    ),
                    _ => continue,
                },
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    format!("lower entry {} is l/{link}, which does not exist", index + 1)
                }
                Err(e) => return self.failed(Kind::LayerLowerIncorrect, layer.id(), e),
            };
            return self.report(Kind::LayerLowerIncorrect, layer.id(), problem);
        }
        if let Some(parents) = parents.filter(|p| p.len() != links.len()) {
            let message = format!(
                "lower stacks {} layers, the parent chain has {}",
                links.len(),
                parents.len()
            );
            self.report(Kind::LayerLowerIncorrect, layer.id(), message);
        }
    }

    /// Rebuilds the layer's tar with every body's CRC checked and compares its digest and size
    /// with the record; returns the bytes rebuilt. A layer with no `diff-digest` was created
    /// empty and is written in place — a container's read-write layer — so it has nothing
    /// recorded to be checked against (and no tar-split).
    fn content(&mut self, layer: &Layer) -> u64 {
        let Some(expected) = layer.record.diff_digest.as_deref() else {
            return 0;
        };
        let mut hash = Sha256Thread::new();
        let exported =
            self.store
                .export_layer_to_hash(layer, &mut hash, ExportOptions { verify: true });
        let stats = match exported {
            Ok(stats) => stats,
            Err(e) => {
                match unverifiable(e) {
                    Ok(reason) => self.report(Kind::LayerContentUnverifiable, layer.id(), reason),
                    Err(e) => self.failed(Kind::LayerContentModified, layer.id(), e),
                }
                return 0;
            }
        };
        let digest = match hash.finish() {
            Ok(digest) => digest,
            Err(e) => {
                self.failed(Kind::Unreadable, layer.id(), Error::io(layer.id(), e));
                return 0;
            }
        };
        if expected != digest {
            let message = format!(
                "the tar rebuilt from tar-split and diff/ hashes to {digest}, layers.json records {expected}"
            );
            self.report(Kind::LayerIncorrectContentDigest, layer.id(), message);
        }
        if let Some(expected) = layer.record.diff_size {
            if expected != stats.bytes as i64 {
                let message = format!(
                    "the tar rebuilt from tar-split and diff/ is {} bytes, layers.json records {expected}",
                    stats.bytes
                );
                self.report(Kind::LayerIncorrectContentSize, layer.id(), message);
            }
        }
        stats.bytes
    }
}

/// Why a layer's content cannot be checked, when `error` says it cannot: it has no tar-split, or
/// one that cannot rebuild its tar (a sparse member). Any other error comes back as it is.
fn unverifiable(error: Error) -> std::result::Result<String, Error> {
    match error {
        Error::Unsupported { what } => Ok(what),
        unrebuildable @ Error::Unrebuildable { .. } => Ok(unrebuildable.to_string()),
        other => Err(other),
    }
}

/// Lowers the calling thread's priority (nice 10) for the rest of its life, threads it starts
/// included. The SHA-256 of a layer's tar is one sequential stream and the longest part of a full
/// check; with the metadata walk beside it on a machine of few cores, giving the hash and the
/// reads that feed it the first claim on the CPU shortens the whole check. Failure (a policy
/// that forbids it) only leaves the priority as it was.
fn yield_to_hashing() {
    // SAFETY: setpriority on this thread's own ID (PRIO_PROCESS with a TID acts on that thread
    // on Linux); no memory is involved.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}
