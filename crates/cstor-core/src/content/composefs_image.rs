//! An image as composefs sees it: its layers merged into one tree (overlayfs rules: a whiteout
//! deletes, an opaque directory hides what is below, an upper entry replaces a lower one), each
//! regular file larger than [`INLINE_MAX`] a content object named by its fs-verity digest,
//! smaller ones inline — the tree composefs-rs builds when it imports an OCI image
//! (`composefs-oci`), including its OCI transform: the root directory takes `/usr`'s metadata,
//! `/run` is emptied (with `/usr`'s mtime) and only the `security.capability` xattr is kept.
//! Without a `/usr` the root keeps its own metadata (composefs-rs refuses such an image).
//!
//! The records come out in dumpfile order (a directory, then its contents by name), ready for
//! [`crate::content::dumpfile`] and [`crate::content::erofs::writer`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use rustix::fs::FileType;

use crate::content::erofs::{Data, Entry, Inode, S_IFDIR, S_IFMT, S_IFREG};
use crate::content::layer_tree::{as_path, split, walk, walk_composefs, Actual, Walked};
use crate::content::whiteout;
use crate::content::xattr::has_flag;
use crate::digest::fsverity::{self, Algorithm};
use crate::error::{Error, IoContext, Result};
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::lock::read_lock;
use crate::store::overlay::overlay_file;
use crate::store::Store;

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
    /// The composefs tree of `image`, its objects named by `algorithm`'s fs-verity digests.
    pub fn composefs_image(&self, image: &Image, algorithm: Algorithm) -> Result<ComposefsImage> {
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        let mut tree = Tree {
            nodes: vec![Node {
                inode: Inode {
                    mode: S_IFDIR | 0o755,
                    ..Inode::default()
                },
                content: Content::None,
                children: Some(BTreeMap::new()),
            }],
        };
        for layer in &layers {
            let store_dir = &self.dir(layer.store_index).dir;
            let _guard = read_lock(store_dir, Path::new("overlay-layers/layers.lock"))?;
            let walked = if self.is_composefs_layer(layer) {
                walk_composefs(self.composefs_entries(layer)?)
            } else {
                let diff_path = overlay_file(layer.id(), "diff");
                let diff = store_dir.open_dir_nofollow(&diff_path).at(&diff_path)?;
                walk(&diff, &diff_path)?
            };
            tree.apply(layer, walked)?;
        }
        tree.transform_for_oci();
        self.finish(&tree, algorithm)
    }

    /// Records in dumpfile order; regular files inline or named by digest.
    fn finish(&self, tree: &Tree, algorithm: Algorithm) -> Result<ComposefsImage> {
        let mut links = vec![0u32; tree.nodes.len()];
        for node in &tree.nodes {
            for &child in node.children.iter().flat_map(|c| c.values()) {
                links[child] += 1;
            }
        }
        let mut digests: HashMap<usize, Vec<u8>> = HashMap::new();
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
                        let digest = match digests.get(&index) {
                            Some(digest) => digest.clone(),
                            None => {
                                let opened = dir.open(file).at(file)?.into_std();
                                let digest = fsverity::digest(algorithm, &opened).at(file)?;
                                digests.insert(index, digest.clone());
                                digest
                            }
                        };
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

    fn remove(&mut self, key: &[u8]) {
        let (parent, name) = split(key);
        if let Some(parent) = self.lookup(parent) {
            if let Some(children) = &mut self.nodes[parent].children {
                children.remove(name);
            }
        }
    }

    /// Lays one layer over the tree (overlayfs rules; see the module documentation).
    fn apply(&mut self, layer: &Layer, walked: Walked) -> Result<()> {
        let opaque_by_xattr = walked.entries.iter().filter(|(_, a)| {
            FileType::from_raw_mode(a.stat.st_mode) == FileType::Directory
                && has_flag(&a.xattrs, &whiteout::OPAQUE_XATTRS)
        });
        let opaque: Vec<Vec<u8>> = opaque_by_xattr
            .map(|(k, _)| k.clone())
            .chain(walked.aufs_opaque.iter().cloned())
            .collect();
        for key in &opaque {
            if let Some(dir) = self.lookup(key) {
                if let Some(children) = &mut self.nodes[dir].children {
                    children.clear();
                }
            }
        }
        for key in &walked.aufs_whiteouts {
            self.remove(key);
        }
        let diff = overlay_file(layer.id(), "diff");
        let mut links: HashMap<u64, usize> = HashMap::new();
        for (key, actual) in walked.entries {
            let file_type = FileType::from_raw_mode(actual.stat.st_mode);
            let whiteout = (file_type == FileType::CharacterDevice && actual.stat.st_rdev == 0)
                || (file_type == FileType::RegularFile
                    && actual.stat.st_size == 0
                    && has_flag(&actual.xattrs, &whiteout::WHITEOUT_XATTRS));
            if whiteout {
                self.remove(&key);
                continue;
            }
            let (parent_key, name) = split(&key);
            let parent = self
                .lookup(parent_key)
                .filter(|&p| self.nodes[p].children.is_some())
                .ok_or_else(|| {
                    Error::corrupt(
                        diff.join(as_path(&key)),
                        "an entry whose parent is not a directory",
                    )
                })?;
            let is_dir = file_type == FileType::Directory;
            let existing = self.nodes[parent]
                .children
                .as_ref()
                .and_then(|c| c.get(name).copied());
            let inode = inode_of(&actual);
            if is_dir {
                if let Some(dir) = existing.filter(|&e| self.nodes[e].children.is_some()) {
                    self.nodes[dir].inode = inode;
                    continue;
                }
            }
            let ino = actual.stat.st_ino;
            let node = match links.get(&ino) {
                Some(&node) if !is_dir && actual.stat.st_nlink > 1 => node,
                _ => {
                    let content = content_of(layer, &diff, &key, actual);
                    self.nodes.push(Node {
                        inode,
                        content,
                        children: is_dir.then(BTreeMap::new),
                    });
                    let node = self.nodes.len() - 1;
                    if !is_dir && self.nodes[node].inode.nlink > 1 {
                        links.insert(ino, node);
                    }
                    node
                }
            };
            if let Some(children) = &mut self.nodes[parent].children {
                children.insert(name.to_vec(), node);
            }
        }
        Ok(())
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

fn content_of(layer: &Layer, diff: &Path, key: &[u8], actual: Actual) -> Content {
    let file_type = FileType::from_raw_mode(actual.stat.st_mode);
    match (file_type, actual.data) {
        (FileType::Symlink, _) => Content::Inline(actual.target),
        (FileType::RegularFile, Data::External { payload, .. }) => {
            Content::Stored(layer.store_index, diff.join(as_path(&payload)))
        }
        (FileType::RegularFile, Data::Inline(bytes)) => Content::Inline(bytes),
        (FileType::RegularFile, Data::None) if actual.stat.st_size > 0 => {
            Content::Stored(layer.store_index, diff.join(as_path(key)))
        }
        _ => Content::None,
    }
}
