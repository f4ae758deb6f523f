//! Reading files of an image's merged view or of one layer, in place: the operations behind
//! `image.fs` and `layer.fs`, shaped after `node:fs` (`stat`, `readdir`, `readlink`, the content
//! of a file as an open fd, xattrs, and a walk of the tree with glob patterns), and comparing
//! two images' trees as `podman image diff` does, and analyzing an image's layers as dive does.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::content::toc::EntryKind;
use crate::error::{Error, FsCode, Result};
use crate::ops::{Base64, Call, Operation};
use crate::store::Store;
use crate::tree::analyze::Analysis;
use crate::tree::diff::Change;
use crate::tree::glob::Glob;
use crate::tree::resolve::Follow;
use crate::tree::{FsTree, Node};

/// Which tree: an image's merged view (`image`) or a layer's own entries (`layer`).
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct FsSource {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub layer: Option<String>,
}

impl FsSource {
    fn tree(&self, store: &Store) -> Result<Arc<FsTree>> {
        match (&self.image, &self.layer) {
            (Some(image), None) => store.image_tree(&store.image(image)?),
            (None, Some(layer)) => store.layer_tree(&store.layer(layer)?),
            _ => Err(Error::InvalidArgument(
                "name exactly one of image and layer".to_owned(),
            )),
        }
    }
}

/// A path in a tree: absolute or relative to its root.
#[derive(Debug, Deserialize, TS)]
pub struct FsPath {
    #[serde(flatten)]
    #[ts(flatten)]
    pub source: FsSource,
    pub path: String,
}

impl FsPath {
    /// The tree and the entry the path names.
    fn resolve(&self, store: &Store, follow: Follow) -> Result<(Arc<FsTree>, u32)> {
        let tree = self.source.tree(store)?;
        let node = tree.resolve(&self.path, follow)?;
        Ok((tree, node))
    }
}

fn follow(follow: Option<bool>) -> Follow {
    if follow.unwrap_or(true) {
        Follow::Last
    } else {
        Follow::NotLast
    }
}

/// `S_IFMT` bits of an entry type; a whiteout is what `diff/` has for one, a device 0:0.
fn file_type_bits(kind: EntryKind) -> u32 {
    match kind {
        EntryKind::Dir => libc::S_IFDIR,
        EntryKind::Reg | EntryKind::Hardlink => libc::S_IFREG,
        EntryKind::Symlink => libc::S_IFLNK,
        EntryKind::Char | EntryKind::Whiteout => libc::S_IFCHR,
        EntryKind::Block => libc::S_IFBLK,
        EntryKind::Fifo => libc::S_IFIFO,
    }
}

/// An entry's metadata, as `lstat` of the mounted image gives it (`mode` with the type bits).
#[derive(Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct FsStats {
    /// The entry's path from the image root, `/` first: `realpath` when symlinks were followed.
    pub path: String,
    #[serde(rename = "type")]
    #[ts(type = "'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo' | 'whiteout'")]
    pub kind: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content bytes of a file, target bytes of a symlink, 0 for the rest.
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub nlink: u32,
    /// Equal for the names of one hardlink group.
    pub ino: u64,
    pub rdev: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// The ID of the layer that provides the entry.
    pub layer: String,
}

impl FsStats {
    fn new(tree: &FsTree, node: &Node) -> FsStats {
        FsStats {
            path: format!("/{}", node.path),
            kind: node.kind.as_str().to_owned(),
            mode: file_type_bits(node.kind) | node.mode,
            uid: node.uid,
            gid: node.gid,
            size: node.size,
            mtime: node.mtime,
            nlink: node.nlink,
            ino: node.ino,
            rdev: libc::makedev(node.dev_major, node.dev_minor),
            link_target: (node.kind == EntryKind::Symlink).then(|| node.link.to_string()),
            layer: tree.layers[node.layer as usize].id.clone(),
        }
    }
}

/// An entry's metadata; `follow` (default true) follows a final symlink, as `stat` does.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct FsStat {
    #[serde(flatten)]
    #[ts(flatten)]
    pub at: FsPath,
    #[serde(default)]
    pub follow: Option<bool>,
}

impl Operation for FsStat {
    const METHOD: &'static str = "FsStat";
    type Output = FsStats;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<FsStats> {
        let (tree, node) = self.at.resolve(store, follow(self.follow))?;
        Ok(FsStats::new(&tree, tree.node(node)))
    }
}

/// A directory's entries, sorted by name.
#[derive(Debug, Deserialize, TS)]
pub struct FsReaddir {
    #[serde(flatten)]
    #[ts(flatten)]
    pub at: FsPath,
}

#[derive(Debug, Serialize, Deserialize, TS)]
pub struct FsDirent {
    pub name: String,
    #[serde(rename = "type")]
    #[ts(type = "'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo' | 'whiteout'")]
    pub kind: String,
}

impl Operation for FsReaddir {
    const METHOD: &'static str = "FsReaddir";
    type Output = Vec<FsDirent>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<FsDirent>> {
        let (tree, dir) = self.at.resolve(store, Follow::Last)?;
        if !tree.node(dir).is_dir() {
            return Err(Error::Fs {
                code: FsCode::NotDir,
                path: self.at.path,
            });
        }
        Ok(tree
            .children(dir)
            .map(|n| FsDirent {
                name: n.name().to_owned(),
                kind: n.kind.as_str().to_owned(),
            })
            .collect())
    }
}

/// A symlink's target (`EINVAL` for anything else).
#[derive(Debug, Deserialize, TS)]
pub struct FsReadlink {
    #[serde(flatten)]
    #[ts(flatten)]
    pub at: FsPath,
}

impl Operation for FsReadlink {
    const METHOD: &'static str = "FsReadlink";
    type Output = String;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<String> {
        let (tree, node) = self.at.resolve(store, Follow::NotLast)?;
        match tree.node(node).kind {
            EntryKind::Symlink => Ok(tree.node(node).link.to_string()),
            _ => Err(Error::Fs {
                code: FsCode::Invalid,
                path: self.at.path,
            }),
        }
    }
}

/// A file's content: the result comes with one fd, read-only on the body in the owning layer's
/// `diff/` (none for an empty file). `EISDIR` for a directory.
#[derive(Debug, Deserialize, TS)]
pub struct FsOpen {
    #[serde(flatten)]
    #[ts(flatten)]
    pub at: FsPath,
}

#[derive(Debug, Serialize, Deserialize, TS)]
pub struct FsOpened {
    /// Content bytes; the fd comes when this is not 0.
    pub size: u64,
}

impl Operation for FsOpen {
    const METHOD: &'static str = "FsOpen";
    type Output = FsOpened;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<FsOpened> {
        let (tree, node) = self.at.resolve(store, Follow::Last)?;
        let size = tree.node(node).size;
        if size > 0 || tree.node(node).kind != EntryKind::Reg {
            call.reply_fd(tree.open_body(store, node, &self.at.path)?);
        }
        Ok(FsOpened { size })
    }
}

/// An entry's extended attributes (overlayfs's own left out), values in base64; `follow`
/// (default true) as for [`FsStat`].
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct FsXattrs {
    #[serde(flatten)]
    #[ts(flatten)]
    pub at: FsPath,
    #[serde(default)]
    pub follow: Option<bool>,
    /// Only this one: `ENODATA` when the entry lacks it.
    #[serde(default)]
    pub name: Option<String>,
}

impl Operation for FsXattrs {
    const METHOD: &'static str = "FsXattrs";
    type Output = BTreeMap<String, Base64>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<BTreeMap<String, Base64>> {
        let (tree, node) = self.at.resolve(store, follow(self.follow))?;
        let all = tree
            .node(node)
            .xattrs
            .iter()
            .map(|(k, v)| (k.clone(), Base64(v.clone())));
        match self.name {
            None => Ok(all.collect()),
            Some(name) => {
                let found: BTreeMap<_, _> = all.filter(|(k, _)| *k == name).collect();
                if found.is_empty() {
                    return Err(Error::Fs {
                        code: FsCode::NoData,
                        path: self.at.path,
                    });
                }
                Ok(found)
            }
        }
    }
}

/// The entries of the tree in path order (the root left out), or those whose path (no leading
/// `/`) one of the glob patterns of `match` matches: `*`, `?`, `[a-z]` within a component, `**`
/// across components. A page at a time when asked: at most `limit` entries, those after the
/// path `after` — so a caller streams a tree of any size holding one page (the tree itself is
/// built once and kept while the store is unchanged).
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct FsEntries {
    #[serde(flatten)]
    #[ts(flatten)]
    pub source: FsSource,
    #[serde(default, rename = "match")]
    #[ts(rename = "match")]
    pub patterns: Option<Vec<String>>,
    /// Only entries whose path (with or without its leading `/`) sorts after this one.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many entries.
    #[serde(default)]
    pub limit: Option<u32>,
}

impl Operation for FsEntries {
    const METHOD: &'static str = "FsEntries";
    type Output = Vec<FsStats>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<FsStats>> {
        let tree = self.source.tree(store)?;
        let globs = self
            .patterns
            .unwrap_or_default()
            .iter()
            .map(|p| Glob::new(p))
            .collect::<Result<Vec<_>>>()?;
        let limit = self.limit.map_or(usize::MAX, |l| l as usize);
        Ok(tree
            .entries(
                &globs,
                self.after.as_deref().map(|a| a.trim_start_matches('/')),
            )
            .take(limit)
            .map(|n| FsStats::new(&tree, n))
            .collect())
    }
}

/// What `podman image diff image [base]` prints: `A`, `C` and `D` paths, sorted; without `base`,
/// against the image's top layer's parent, as podman compares.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ImageDiff {
    pub image: String,
    #[serde(default)]
    pub base: Option<String>,
}

impl Operation for ImageDiff {
    const METHOD: &'static str = "ImageDiff";
    type Output = Vec<Change>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<Change>> {
        let image = store.image(&self.image)?;
        let base = self.base.map(|b| store.image(&b)).transpose()?;
        store.image_diff(&image, base.as_ref())
    }
}

/// What each layer adds, changes and removes, and the image's wasted bytes and efficiency as
/// dive computes them.
#[derive(Debug, Deserialize, TS)]
pub struct AnalyzeImage {
    pub image: String,
}

impl Operation for AnalyzeImage {
    const METHOD: &'static str = "AnalyzeImage";
    type Output = Analysis;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Analysis> {
        store.analyze_image(&store.image(&self.image)?)
    }
}
