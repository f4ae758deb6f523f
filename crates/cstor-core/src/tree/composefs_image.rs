//! An image as composefs sees it: its layers as stored (each `diff/`, or a composefs layer's
//! blob: [`crate::tree::source`]) stacked by the one merge ([`crate::tree::merge`]), each regular
//! file larger than [`INLINE_MAX`] a content object named by its fs-verity digest,
//! smaller ones inline — the tree composefs-rs builds when it imports an OCI image
//! (`composefs-oci`), including its OCI transform: the root directory takes `/usr`'s metadata,
//! `/run` is emptied (with `/usr`'s mtime) and only the `security.capability` xattr is kept.
//! Without a `/usr` the root keeps its own metadata (composefs-rs refuses such an image).
//!
//! The records come out in dumpfile order (a directory, then its contents by name), ready for
//! [`crate::content::dumpfile`] and [`crate::content::erofs::writer`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use crate::content::erofs::{Data, Entry, Inode, S_IFDIR, S_IFMT, S_IFREG};
use crate::content::layer_tree::{as_path, Actual};
use crate::content::whiteout;
use crate::digest::fsverity::{self, Algorithm};
use crate::error::{IoContext, Result};
use crate::store::images::Image;
use crate::store::overlay::overlay_file;
use crate::store::Store;
use crate::threads;
use crate::tree::merge::Stack;
use crate::tree::source::BlobNames;
use crate::tree::FsTree;

/// Files up to this size are inline in the image (composefs-rs `INLINE_CONTENT_MAX_V0`).
pub const INLINE_MAX: u64 = 64;

/// The only xattr composefs-rs keeps from an OCI image (its `CONTAINER_XATTR_ALLOWLIST`).
const KEPT_XATTRS: [&[u8]; 1] = [b"security.capability"];

/// An image's composefs tree and the content objects it names.
pub struct ComposefsImage {
    pub entries: Vec<Entry>,
    /// Each object once, in the order first named.
    pub objects: Vec<Object>,
}

/// A content object: a file of the store, by its fs-verity digest.
pub struct Object {
    pub digest: Vec<u8>,
    pub size: u64,
    /// Which store directory holds it, and its path beneath it.
    pub store_index: usize,
    pub path: PathBuf,
}

/// Where a file's bytes are.
#[derive(Clone)]
enum Content {
    None,
    Inline(Vec<u8>),
    /// A file beneath a store directory.
    Stored(usize, PathBuf),
}

struct Node {
    inode: Inode,
    content: Content,
    /// A directory's entries by name (a hardlinked file is one node under several names).
    children: Option<BTreeMap<Vec<u8>, usize>>,
}

/// The merged tree, nodes by index; node 0 is the root.
struct Tree {
    nodes: Vec<Node>,
}

impl Store {
    /// The composefs tree of `image`, its objects named by `algorithm`'s fs-verity digests: its
    /// layers as stored, stacked by the one merge of [`crate::tree::merge`].
    pub fn composefs_image(&self, image: &Image, algorithm: Algorithm) -> Result<ComposefsImage> {
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        let mut stack = Stack::merged();
        let mut seen = Vec::with_capacity(layers.len());
        for layer in &layers {
            let stored = self.stored_layer(layer, BlobNames::Markers)?;
            stack.push(layer.id(), layer.store_index, stored.source);
            seen.push(stored.seen);
        }
        let mut tree = Tree::of(&stack.finish(), seen);
        tree.transform_for_oci();
        self.finish(&tree, algorithm)
    }

    /// The fs-verity digest of every stored file too large to be inline, by node, on as many
    /// threads as there are cores (each file is read once, whatever its links).
    fn digests(&self, tree: &Tree, algorithm: Algorithm) -> Result<HashMap<usize, Vec<u8>>> {
        let jobs: Vec<(usize, usize, &PathBuf)> = tree
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| match &node.content {
                Content::Stored(store_index, file)
                    if node.inode.mode & S_IFMT == S_IFREG && node.inode.size > INLINE_MAX =>
                {
                    Some((index, *store_index, file))
                }
                _ => None,
            })
            .collect();
        let digested = threads::each(
            &jobs,
            "digesting",
            Vec::new,
            |done, &(index, store_index, file)| {
                let opened = self.dir(store_index).dir.open(file).at(file)?.into_std();
                done.push((index, fsverity::digest(algorithm, &opened).at(file)?));
                Ok(())
            },
        )?;
        let digests: HashMap<usize, Vec<u8>> = digested.into_iter().flatten().collect();
        Ok(digests)
    }

    /// Records in dumpfile order; regular files inline or named by digest.
    fn finish(&self, tree: &Tree, algorithm: Algorithm) -> Result<ComposefsImage> {
        let mut links = vec![0u32; tree.nodes.len()];
        for node in &tree.nodes {
            for &child in node.children.iter().flat_map(|c| c.values()) {
                links[child] += 1;
            }
        }
        let digests = self.digests(tree, algorithm)?;
        let mut objects = Vec::new();
        let mut seen_objects = std::collections::HashSet::new();
        let mut entries = Vec::new();
        let mut stack = vec![(Vec::new(), 0usize)];
        while let Some((path, index)) = stack.pop() {
            let node = &tree.nodes[index];
            let mut inode = node.inode.clone();
            inode.nid = index as u64;
            if let Some(children) = &node.children {
                let subdirs = children
                    .values()
                    .filter(|&&c| tree.nodes[c].children.is_some())
                    .count();
                inode.nlink = 2 + subdirs as u32;
                inode.size = 0;
                for (name, &child) in children.iter().rev() {
                    let mut child_path = path.clone();
                    if !child_path.is_empty() {
                        child_path.push(b'/');
                    }
                    child_path.extend_from_slice(name);
                    stack.push((child_path, child));
                }
            } else {
                inode.nlink = links[index];
            }
            match &node.content {
                Content::Inline(bytes) => inode.data = Data::Inline(bytes.clone()),
                Content::Stored(store_index, file) if inode.mode & S_IFMT == S_IFREG => {
                    let dir = &self.dir(*store_index).dir;
                    if inode.size <= INLINE_MAX {
                        let mut bytes = Vec::new();
                        std::io::Read::read_to_end(&mut dir.open(file).at(file)?, &mut bytes)
                            .at(file)?;
                        inode.size = bytes.len() as u64;
                        if !bytes.is_empty() {
                            inode.data = Data::Inline(bytes);
                        }
                    } else {
                        let digest = digests[&index].clone();
                        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                        if seen_objects.insert(digest.clone()) {
                            objects.push(Object {
                                digest: digest.clone(),
                                size: inode.size,
                                store_index: *store_index,
                                path: file.clone(),
                            });
                        }
                        inode.data = Data::External {
                            payload: format!("{}/{}", &hex[..2], &hex[2..]).into_bytes(),
                            verity: Some(digest),
                        };
                    }
                }
                _ => {}
            }
            entries.push(Entry { path, inode });
        }
        Ok(ComposefsImage { entries, objects })
    }
}

impl Tree {
    /// The node at `key`, following directories from the root.
    fn lookup(&self, key: &[u8]) -> Option<usize> {
        if key.is_empty() {
            return Some(0);
        }
        let mut node = 0;
        for name in key.split(|b| *b == b'/') {
            node = *self.nodes[node].children.as_ref()?.get(name)?;
        }
        Some(node)
    }

    /// The merged tree with each entry's metadata as stored (`seen`: what each layer's walk saw,
    /// by path); a hardlink group is one node.
    fn of(merged: &FsTree, mut seen: Vec<HashMap<Box<str>, Actual>>) -> Tree {
        let mut nodes = Vec::with_capacity(merged.nodes.len());
        let mut node_of = Vec::with_capacity(merged.nodes.len());
        let mut by_ino: HashMap<u64, usize> = HashMap::new();
        let diffs: Vec<PathBuf> = merged
            .layers
            .iter()
            .map(|layer| overlay_file(&layer.id, "diff"))
            .collect();
        for entry in &merged.nodes {
            if let Some(&node) = by_ino.get(&entry.ino) {
                node_of.push(node);
                continue;
            }
            let layer = &merged.layers[entry.layer as usize];
            let key = entry.body.as_deref().unwrap_or(&entry.path);
            // composefs-rs gives the root its own metadata (see `transform_for_oci`).
            let stored = match entry.path.is_empty() {
                true => None,
                false => seen[entry.layer as usize].remove(key),
            };
            let node = match stored {
                Some(actual) => {
                    let diff = &diffs[entry.layer as usize];
                    Node {
                        inode: inode_of(&actual),
                        content: content_of(layer.store_index, diff, key.as_bytes(), actual),
                        children: entry.is_dir().then(BTreeMap::new),
                    }
                }
                // The root, or a directory no layer lists.
                None => Node {
                    inode: Inode {
                        mode: S_IFDIR | 0o755,
                        ..Inode::default()
                    },
                    content: Content::None,
                    children: Some(BTreeMap::new()),
                },
            };
            by_ino.insert(entry.ino, nodes.len());
            node_of.push(nodes.len());
            nodes.push(node);
        }
        for (entry, &node) in merged.nodes.iter().zip(&node_of) {
            if let Some(children) = &mut nodes[node].children {
                for &child in &entry.children {
                    let name = merged.node(child).name().as_bytes().to_vec();
                    children.insert(name, node_of[child as usize]);
                }
            }
        }
        Tree { nodes }
    }

    /// composefs-rs's OCI transform (see the module documentation).
    fn transform_for_oci(&mut self) {
        let usr = self
            .lookup(b"usr")
            .filter(|&u| self.nodes[u].children.is_some());
        if let Some(usr) = usr {
            let usr = self.nodes[usr].inode.clone();
            let root = &mut self.nodes[0].inode;
            (root.mode, root.uid, root.gid) = (usr.mode, usr.uid, usr.gid);
            (root.mtime, root.mtime_nsec) = (usr.mtime, usr.mtime_nsec);
            root.xattrs = usr.xattrs;
        }
        if let Some(run) = self
            .lookup(b"run")
            .filter(|&r| self.nodes[r].children.is_some())
        {
            if let Some(usr) = usr {
                let (mtime, nsec) = (
                    self.nodes[usr].inode.mtime,
                    self.nodes[usr].inode.mtime_nsec,
                );
                (
                    self.nodes[run].inode.mtime,
                    self.nodes[run].inode.mtime_nsec,
                ) = (mtime, nsec);
            }
            if let Some(children) = &mut self.nodes[run].children {
                children.clear();
            }
        }
        for node in &mut self.nodes {
            node.inode
                .xattrs
                .retain(|(name, _)| KEPT_XATTRS.contains(&name.as_slice()));
        }
    }
}

fn inode_of(actual: &Actual) -> Inode {
    let stat = &actual.stat;
    let xattrs = actual
        .xattrs
        .iter()
        .map(|(k, v)| (k.as_encoded_bytes().to_vec(), v.clone()))
        .filter(|(k, _)| !whiteout::is_overlay_xattr(k))
        .collect();
    let file_type = FileType::from_raw_mode(stat.st_mode);
    Inode {
        mode: stat.st_mode,
        uid: stat.st_uid,
        gid: stat.st_gid,
        size: if file_type == FileType::Symlink {
            actual.target.len() as u64
        } else if file_type == FileType::RegularFile {
            stat.st_size as u64
        } else {
            0
        },
        mtime: stat.st_mtime,
        mtime_nsec: stat.st_mtime_nsec as u32,
        nlink: stat.st_nlink as u32,
        rdev: if matches!(file_type, FileType::CharacterDevice | FileType::BlockDevice) {
            stat.st_rdev as u32
        } else {
            0
        },
        xattrs,
        ..Inode::default()
    }
}

fn content_of(store_index: usize, diff: &Path, key: &[u8], actual: Actual) -> Content {
    let file_type = FileType::from_raw_mode(actual.stat.st_mode);
    match (file_type, actual.data) {
        (FileType::Symlink, _) => Content::Inline(actual.target),
        (FileType::RegularFile, Data::External { payload, .. }) => {
            Content::Stored(store_index, diff.join(as_path(&payload)))
        }
        (FileType::RegularFile, Data::Inline(bytes)) => Content::Inline(bytes),
        (FileType::RegularFile, Data::None) if actual.stat.st_size > 0 => {
            Content::Stored(store_index, diff.join(as_path(key)))
        }
        _ => Content::None,
    }
}
