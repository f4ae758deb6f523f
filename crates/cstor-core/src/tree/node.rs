//! A built filesystem tree: its entries sorted by path, each directory listing its children, each
//! entry knowing the layer that provides it.

use crate::content::toc::EntryKind;
use crate::tree::glob::Glob;
use crate::tree::source::Bodies;

/// One entry of a tree. Hardlinks are regular files sharing an `ino`, as a mounted image shows
/// them; `Whiteout` entries exist only in a layer's own tree.
#[derive(Debug)]
pub struct Node {
    /// The path without a leading `/`; `""` is the root.
    pub path: Box<str>,
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content bytes of a regular file, target bytes of a symlink, 0 otherwise.
    pub size: u64,
    /// Seconds since the epoch, as tar headers keep them.
    pub mtime: i64,
    /// A symlink's target.
    pub link: Box<str>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// The entry's own xattrs (overlayfs's bookkeeping left out), by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Index of the providing layer in [`FsTree::layers`].
    pub layer: u32,
    /// The tar path whose body is this file's content when it is not `path` (a hardlink's).
    pub body: Option<Box<str>>,
    /// Equal for the names of one hardlink group; distinct otherwise.
    pub ino: u64,
    /// Names of the inode in its layer, as `diff/` (and so the mount) counts them.
    pub nlink: u32,
    /// A directory that hides what the layers below had (layer trees only).
    pub opaque: bool,
    /// A directory's entries, as indices sorted by name.
    pub(crate) children: Vec<u32>,
}

impl Node {
    /// The last component of the path (`""` for the root).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// A layer a tree takes entries from.
#[derive(Debug)]
pub struct TreeLayer {
    pub id: String,
    /// Index into [`crate::store::Store::dirs`].
    pub store_index: usize,
    pub bodies: Bodies,
}

/// A filesystem tree: the merged view of an image, or one layer's own entries.
#[derive(Debug)]
pub struct FsTree {
    /// Sorted by path, so a path is found by binary search and a directory's descendants are
    /// contiguous; index 0 is the root.
    pub(crate) nodes: Vec<Node>,
    /// Base first.
    pub layers: Vec<TreeLayer>,
}

impl FsTree {
    pub fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    /// The entry at exactly `path` (no leading `/`, nothing to resolve).
    pub fn get(&self, path: &str) -> Option<u32> {
        self.nodes
            .binary_search_by(|n| n.path.as_ref().cmp(path))
            .ok()
            .map(|i| i as u32)
    }

    /// The child `name` of the directory `dir`.
    pub fn child(&self, dir: u32, name: &str) -> Option<u32> {
        let children = &self.node(dir).children;
        children
            .binary_search_by(|&c| self.node(c).name().cmp(name))
            .ok()
            .map(|i| children[i])
    }

    /// A directory's entries, sorted by name.
    pub fn children(&self, dir: u32) -> impl Iterator<Item = &Node> {
        self.node(dir).children.iter().map(|&c| self.node(c))
    }

    /// Every entry but the root, in path order, or those some pattern of `globs` matches; with
    /// `after`, only those whose path sorts after it.
    pub fn entries<'a>(
        &'a self,
        globs: &'a [Glob],
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Node> {
        let start = match after {
            Some(after) => self.nodes.partition_point(|n| n.path.as_ref() <= after),
            None => 1,
        };
        self.nodes[start.max(1)..]
            .iter()
            .filter(move |n| globs.is_empty() || globs.iter().any(|g| g.matches(&n.path)))
    }
}
