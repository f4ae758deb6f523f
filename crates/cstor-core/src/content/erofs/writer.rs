//! Writing a tree of [`Entry`] records as the composefs EROFS image C `mkcomposefs` writes.
//!
//! Byte for byte what composefs 1.0.8's `lcfs-writer-erofs.c` writes for the same dumpfile —
//! the image ID (its fs-verity digest) depends on every byte, so the layout decisions are its:
//! inodes in breadth-first order (children by name), numbered in that order; compact inodes for
//! those whose mtime is the tree's oldest and whose ids, link count and size fit; tails packed
//! after their inode unless they would cross a block (then padding, or a block of their own);
//! directories inlined only up to half a block; xattrs used more than once shared, in a table
//! sorted in descending order; overlayfs's xattrs added (redirect and metacopy for external
//! files, escaped whiteouts, an opaque root holding the 256 real whiteouts `00`…`ff`), and a
//! file's own `trusted.overlay.*` xattrs escaped. `min_version` is `mkcomposefs --min-version`:
//! 0 writes format 0 unless the tree holds a whiteout (then 1, as C does), 1 always 1.
//!
//! The input is what the reader gives (see [`super::reader`]): the root first, every path after
//! its parent, hardlinks as entries sharing a nid (the first is the inode, the others link to
//! it). What C would refuse is an `EUNSUPPORTED` error naming the path.

use std::collections::HashMap;

use super::*;
use crate::error::{Error, Result};

/// Longest inline content C `mkcomposefs` accepts (`LCFS_INLINE_CONTENT_MAX`).
pub const INLINE_CONTENT_MAX: usize = 5000;
/// An external file's chunk table must fit one block (`LCFS_MAX_NONINLINE_CHUNKS`).
const MAX_CHUNKS: u64 = 1024;
/// At most this many shared xattrs per inode (`EROFS_XATTR_LONG_PREFIX`).
const MAX_SHARED_PER_INODE: usize = 0x80;
/// Largest xattr value (`e_value_size` is 16 bits).
const MAX_XATTR_VALUE: usize = u16::MAX as usize;
const XATTR_FILTER_SEED: u32 = 0x25bb_e08f;
const NULL_ADDR: [u8; 4] = [0xff; 4];

struct Node {
    /// Index of the entry it came from (for its path in errors); `None` for a root whiteout.
    entry: Option<usize>,
    inode: Inode,
    parent: usize,
    /// Directories: every name in it, `.` and `..` included, sorted by bytes.
    children: Vec<Dirent>,
    /// C's running count of the inode's xattr space for what `mkcomposefs` adds. It starts at
    /// zero (C clones the tree first and the clone does not copy it) and is reduced by the
    /// escaped name's length when an escaped xattr is replaced, so it can wrap — and then C
    /// refuses the next xattr with `ERANGE`. Kept so cstor refuses the same trees.
    xattr_space: usize,
    layout: Layout,
}

struct Dirent {
    name: Vec<u8>,
    node: usize,
    /// A hardlink, `.` or `..`: the inode is written where its own entry is.
    link: bool,
}

#[derive(Default, Clone)]
struct Layout {
    ino: u32,
    nid: u64,
    compact: bool,
    n_blocks: u64,
    tail: usize,
    ipad: usize,
    xattr_size: usize,
    /// Per xattr (in sorted order): its offset in the shared table, if it is shared.
    shared: Vec<Option<usize>>,
}

/// Writes the image of `entries` (see the module documentation).
pub fn write(entries: &[Entry], min_version: u32) -> Result<Vec<u8>> {
    let mut tree = Tree::build(entries)?;
    let version = if min_version < 1 && tree.nodes.iter().any(|n| is_whiteout(&n.inode)) {
        1
    } else {
        min_version
    };
    tree.rewrite_for_overlay(version)?;
    let order = tree.order();
    tree.write(&order, version)
}

fn kind(inode: &Inode) -> u32 {
    inode.mode & S_IFMT
}

fn is_whiteout(inode: &Inode) -> bool {
    kind(inode) == S_IFCHR && inode.rdev == 0
}

/// Per-inode xattr space C allows for what it adds (`LCFS_INODE_EXTERNAL_XATTR_MAX`).
const XATTR_SPACE: usize = (u16::MAX / 2) as usize;
/// C's per-xattr reckoning: a worst-case entry header and alignment, and the body header.
const XATTR_ENTRY_RECKONED: usize = 2 * XATTR_ENTRY_HEADER_SIZE - 1;

/// The EROFS prefix index and the rest of an xattr name.
fn prefix_of(name: &[u8]) -> (u8, &[u8]) {
    XATTR_PREFIXES
        .iter()
        .find_map(|(index, prefix)| name.strip_prefix(*prefix).map(|rest| (*index, rest)))
        .unwrap_or((0, name))
}

fn xattr_entry_size(name: &[u8], value: &[u8]) -> usize {
    (XATTR_ENTRY_HEADER_SIZE + prefix_of(name).1.len() + value.len()).next_multiple_of(4)
}

/// `chunkbits` and the chunk count of an external file of `size` bytes.
fn chunking(size: u64) -> (u32, u64) {
    let bits = (64 - size.saturating_sub(1).leading_zeros()).clamp(BLOCK_BITS, BLOCK_BITS + 31);
    (bits, size.div_ceil(1 << bits))
}

struct Tree<'a> {
    entries: &'a [Entry],
    nodes: Vec<Node>,
}

impl<'a> Tree<'a> {
    fn unsupported(&self, node: usize, why: &str) -> Error {
        let path = self.nodes[node]
            .entry
            .map(|e| String::from_utf8_lossy(&self.entries[e].path).into_owned())
            .unwrap_or_default();
        Error::Unsupported {
            what: format!("/{path}: {why}"),
        }
    }

    fn build(entries: &'a [Entry]) -> Result<Tree<'a>> {
        let bad = |path: &[u8], why: &str| Error::Unsupported {
            what: format!("/{}: {why}", String::from_utf8_lossy(path)),
        };
        entries
            .first()
            .filter(|e| e.path.is_empty() && kind(&e.inode) == S_IFDIR)
            .ok_or_else(|| bad(b"", "the tree does not start with its root directory"))?;
        let node = |entry: usize, parent: usize| Node {
            entry: Some(entry),
            inode: entries[entry].inode.clone(),
            parent,
            children: Vec::new(),
            xattr_space: 0,
            layout: Layout::default(),
        };
        let mut tree = Tree {
            entries,
            nodes: vec![node(0, 0)],
        };
        let mut dirs: HashMap<&[u8], usize> = HashMap::from([(&b""[..], 0)]);
        let mut inodes: HashMap<u64, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate().skip(1) {
            let (parent_path, name) = match entry.path.iter().rposition(|b| *b == b'/') {
                Some(slash) => (&entry.path[..slash], &entry.path[slash + 1..]),
                None => (&b""[..], &entry.path[..]),
            };
            if name.is_empty() || name.len() > 255 || name == b"." || name == b".." {
                return Err(bad(&entry.path, "not a name composefs can hold"));
            }
            let parent = *dirs.get(parent_path).ok_or_else(|| {
                bad(
                    &entry.path,
                    "its parent directory comes after it, or is none",
                )
            })?;
            let is_dir = kind(&entry.inode) == S_IFDIR;
            let (target, link) = match inodes.get(&entry.inode.nid) {
                Some(&first) if !is_dir => (first, true),
                _ => {
                    tree.nodes.push(node(index, parent));
                    let new = tree.nodes.len() - 1;
                    if is_dir {
                        dirs.insert(&entry.path, new);
                    } else {
                        inodes.insert(entry.inode.nid, new);
                    }
                    (new, false)
                }
            };
            tree.nodes[parent].children.push(Dirent {
                name: name.to_vec(),
                node: target,
                link,
            });
        }
        for i in 0..tree.nodes.len() {
            if kind(&tree.nodes[i].inode) == S_IFDIR {
                let parent = tree.nodes[i].parent;
                let children = &mut tree.nodes[i].children;
                children.push(Dirent {
                    name: b".".to_vec(),
                    node: i,
                    link: true,
                });
                children.push(Dirent {
                    name: b"..".to_vec(),
                    node: parent,
                    link: true,
                });
                children.sort_by(|a, b| a.name.cmp(&b.name));
                if children.windows(2).any(|w| w[0].name == w[1].name) {
                    return Err(tree.unsupported(i, "a name appears twice in this directory"));
                }
            }
        }
        Ok(tree)
    }

    /// Sets (or replaces) an xattr `mkcomposefs` adds, reckoning its space as C does.
    fn set_xattr(&mut self, i: usize, name: &[u8], value: &[u8]) -> Result<()> {
        let node = &mut self.nodes[i];
        if let Some(at) = node.inode.xattrs.iter().position(|(k, _)| k == name) {
            let (_, old) = node.inode.xattrs.swap_remove(at);
            node.xattr_space = if node.inode.xattrs.is_empty() {
                0
            } else {
                node.xattr_space
                    .wrapping_sub(XATTR_ENTRY_RECKONED + name.len() + old.len())
            };
        }
        let mut entry = XATTR_ENTRY_RECKONED + name.len() + value.len();
        if node.inode.xattrs.is_empty() {
            entry += XATTR_BODY_HEADER_SIZE;
        }
        if node.xattr_space.wrapping_add(entry) > XATTR_SPACE {
            return Err(self.unsupported(
                i,
                "C mkcomposefs refuses the xattrs it would add here (ERANGE: a replaced escaped \
                 overlay xattr)",
            ));
        }
        node.xattr_space = node.xattr_space.wrapping_add(entry);
        node.inode.xattrs.push((name.to_vec(), value.to_vec()));
        Ok(())
    }

    /// What `mkcomposefs` adds for overlayfs (see the module documentation).
    fn rewrite_for_overlay(&mut self, version: u32) -> Result<()> {
        for i in 0..self.nodes.len() {
            for (name, _) in &mut self.nodes[i].inode.xattrs {
                if let Some(rest) = name.strip_prefix(OVERLAY_PREFIX) {
                    *name = [ESCAPE_PREFIX, rest].concat();
                }
            }
        }
        for i in 0..self.nodes.len() {
            let parent = self.nodes[i].parent;
            let inode = &self.nodes[i].inode;
            if let Data::External { payload, verity } = inode.data.clone() {
                if kind(inode) == S_IFREG && inode.size > 0 {
                    let metacopy = match verity {
                        // version, length, flags, FS_VERITY_HASH_ALG_SHA256 or _SHA512, digest
                        Some(digest) => {
                            let algorithm = if digest.len() == 64 { 2 } else { 1 };
                            let len = 4 + digest.len() as u8;
                            [&[0, len, 0, algorithm][..], &digest].concat()
                        }
                        None => Vec::new(),
                    };
                    self.set_xattr(i, METACOPY, &metacopy)?;
                    if !payload.is_empty() {
                        self.set_xattr(i, REDIRECT, &[b"/", &payload[..]].concat())?;
                    }
                }
            }
            if is_whiteout(&self.nodes[i].inode) {
                let inode = &mut self.nodes[i].inode;
                inode.size = 0;
                inode.mode = S_IFREG | (inode.mode & !S_IFMT);
                inode.data = Data::None;
                self.set_xattr(i, ESCAPED_WHITEOUT, b"")?;
                self.set_xattr(i, USER_WHITEOUT, b"")?;
                self.set_xattr(parent, ESCAPED_WHITEOUTS, b"")?;
                self.set_xattr(parent, USER_WHITEOUTS, b"")?;
                if version >= 1 {
                    self.set_xattr(parent, ESCAPED_OPAQUE, b"x")?;
                    self.set_xattr(parent, USER_OPAQUE, b"x")?;
                }
            }
        }
        self.set_xattr(0, OPAQUE, b"y")?;
        let root = self.nodes[0].inode.clone();
        let selinux = root
            .xattrs
            .iter()
            .find(|(k, _)| k == b"security.selinux")
            .cloned();
        for byte in 0..=255u8 {
            let name = format!("{byte:02x}").into_bytes();
            if self.nodes[0].children.iter().any(|d| d.name == name) {
                continue;
            }
            self.nodes.push(Node {
                entry: None,
                inode: Inode {
                    mode: S_IFCHR | 0o644,
                    uid: root.uid,
                    gid: root.gid,
                    mtime: root.mtime,
                    mtime_nsec: root.mtime_nsec,
                    nlink: 1,
                    ..Inode::default()
                },
                parent: 0,
                children: Vec::new(),
                xattr_space: 0,
                layout: Layout::default(),
            });
            let node = self.nodes.len() - 1;
            if let Some((key, value)) = &selinux {
                self.set_xattr(node, key, value)?;
            }
            self.nodes[0].children.push(Dirent {
                name,
                node,
                link: false,
            });
        }
        self.nodes[0].children.sort_by(|a, b| a.name.cmp(&b.name));
        for i in 0..self.nodes.len() {
            for (name, value) in &self.nodes[i].inode.xattrs {
                if name.is_empty() || name.len() > 255 || value.len() > MAX_XATTR_VALUE {
                    return Err(self.unsupported(i, "an xattr too large for EROFS"));
                }
            }
            let reckoned: usize = self.nodes[i]
                .inode
                .xattrs
                .iter()
                .map(|(k, v)| XATTR_ENTRY_RECKONED + k.len() + v.len())
                .sum();
            if reckoned + XATTR_BODY_HEADER_SIZE > XATTR_SPACE {
                return Err(self.unsupported(i, "more xattrs than composefs takes for one file"));
            }
            let inode = &self.nodes[i].inode;
            if let Data::External {
                verity: Some(digest),
                ..
            } = &inode.data
            {
                if digest.len() != 32 && digest.len() != 64 {
                    return Err(
                        self.unsupported(i, "an fs-verity digest neither SHA-256 nor SHA-512")
                    );
                }
            }
            if kind(inode) == S_IFREG && matches!(inode.data, Data::External { .. }) {
                if chunking(inode.size).1 > MAX_CHUNKS {
                    return Err(self.unsupported(i, "a file too large for one chunk table"));
                }
            } else if let Data::Inline(bytes) = &inode.data {
                let limit = if kind(inode) == S_IFLNK {
                    BLOCK_SIZE
                } else {
                    INLINE_CONTENT_MAX
                };
                if bytes.len() > limit || bytes.len() as u64 != inode.size {
                    return Err(self.unsupported(i, "inline data of the wrong size"));
                }
            }
        }
        Ok(())
    }

    /// The inodes breadth first, children by name (hardlinks, `.` and `..` skipped).
    fn order(&self) -> Vec<usize> {
        let mut order = vec![0];
        let mut next = 0;
        while next < order.len() {
            let node = order[next];
            order.extend(
                self.nodes[node]
                    .children
                    .iter()
                    .filter(|d| !d.link)
                    .map(|d| d.node),
            );
            next += 1;
        }
        order
    }

    fn write(&mut self, order: &[usize], version: u32) -> Result<Vec<u8>> {
        // The tree's metadata as `lcfs_compute_tree` settles it.
        let mut min_mtime = (self.nodes[0].inode.mtime, self.nodes[0].inode.mtime_nsec);
        let mut has_acl = false;
        for (ino, &i) in order.iter().enumerate() {
            if kind(&self.nodes[i].inode) == S_IFDIR {
                let subdirs = self.nodes[i]
                    .children
                    .iter()
                    .filter(|d| !d.link && kind(&self.nodes[d.node].inode) == S_IFDIR)
                    .count();
                self.nodes[i].inode.nlink = 2 + subdirs as u32;
            }
            let node = &mut self.nodes[i];
            node.inode.xattrs.sort_by(|a, b| a.0.cmp(&b.0));
            min_mtime = min_mtime.min((node.inode.mtime, node.inode.mtime_nsec));
            node.layout.ino = ino as u32;
            has_acl |=
                node.inode.xattrs.iter().any(|(k, _)| {
                    k == b"system.posix_acl_access" || k == b"system.posix_acl_default"
                });
        }
        let (shared_table, shared_size) = self.share_xattrs(order);
        let inodes_end = self.lay_out(order, min_mtime)?;
        let data_start = (inodes_end + shared_size).next_multiple_of(BLOCK_SIZE);
        let n_data_blocks: u64 = order.iter().map(|&i| self.nodes[i].layout.n_blocks).sum();
        let root_nid = u16::try_from(self.nodes[0].layout.nid)
            .map_err(|_| self.unsupported(0, "the root inode lies beyond what EROFS can name"))?;

        let mut out = Vec::with_capacity(data_start + n_data_blocks as usize * BLOCK_SIZE);
        out.extend_from_slice(&COMPOSEFS_MAGIC.to_le_bytes());
        out.extend_from_slice(&COMPOSEFS_HEADER_VERSION.to_le_bytes());
        out.extend_from_slice(&u32::from(has_acl).to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.resize(SUPER_OFFSET, 0);
        out.extend_from_slice(&EROFS_MAGIC.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // checksum
        out.extend_from_slice(&(FEATURE_COMPAT_MTIME | FEATURE_COMPAT_XATTR_FILTER).to_le_bytes());
        out.push(BLOCK_BITS as u8);
        out.push(0); // extslots
        out.extend_from_slice(&root_nid.to_le_bytes());
        out.extend_from_slice(&(order.len() as u64).to_le_bytes());
        out.extend_from_slice(&(min_mtime.0 as u64).to_le_bytes());
        out.extend_from_slice(&min_mtime.1.to_le_bytes());
        let blocks = (data_start / BLOCK_SIZE) as u64 + n_data_blocks;
        out.extend_from_slice(&(blocks as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // meta_blkaddr: right after the superblock
        out.extend_from_slice(&((inodes_end / BLOCK_SIZE) as u32).to_le_bytes());
        out.resize(SUPER_OFFSET + SUPER_SIZE, 0);

        let mut data_end = data_start;
        for &i in order {
            self.write_inode(&mut out, i, inodes_end, &mut data_end);
        }
        out.resize(out.len().next_multiple_of(SLOT_SIZE), 0);
        for (name, value) in &shared_table {
            write_xattr(&mut out, name, value);
        }
        out.resize(out.len().next_multiple_of(BLOCK_SIZE), 0);
        for &i in order {
            self.write_dirents(&mut out, i, true, false);
            self.write_blocks(&mut out, i);
        }
        Ok(out)
    }

    /// Marks the xattrs used by more than one inode as shared; returns the table (sorted in
    /// descending order, as C sorts it) and its size.
    fn share_xattrs(&mut self, order: &[usize]) -> (Vec<Xattr>, usize) {
        let mut counts: HashMap<(&[u8], &[u8]), usize> = HashMap::new();
        for &i in order {
            for (k, v) in &self.nodes[i].inode.xattrs {
                *counts.entry((k, v)).or_default() += 1;
            }
        }
        let mut table: Vec<Xattr> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((k, v), _)| (k.to_vec(), v.to_vec()))
            .collect();
        table.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.len().cmp(&a.1.len()))
                .then(b.1.cmp(&a.1))
        });
        let mut offsets = HashMap::new();
        let mut size = 0;
        for (k, v) in &table {
            offsets.insert((k.clone(), v.clone()), size);
            size += xattr_entry_size(k, v);
        }
        for &i in order {
            let node = &mut self.nodes[i];
            let mut n_shared = 0;
            node.layout.shared = node
                .inode
                .xattrs
                .iter()
                .map(|(k, v)| match offsets.get(&(k.clone(), v.clone())) {
                    Some(&offset) if n_shared < MAX_SHARED_PER_INODE => {
                        n_shared += 1;
                        Some(offset)
                    }
                    _ => None,
                })
                .collect();
        }
        (table, size)
    }

    /// Places every inode (`compute_erofs_inodes`); returns where the inodes end.
    fn lay_out(&mut self, order: &[usize], min_mtime: (i64, u32)) -> Result<usize> {
        let mut pos = SUPER_OFFSET + SUPER_SIZE;
        for &i in order {
            let (n_blocks, tail) = self.data_size(i);
            let node = &mut self.nodes[i];
            let inode = &node.inode;
            let size = if kind(inode) == S_IFDIR {
                n_blocks * BLOCK_SIZE as u64 + tail as u64
            } else {
                inode.size
            };
            let compact = (inode.mtime, inode.mtime_nsec) == min_mtime
                && inode.nlink <= u32::from(u16::MAX)
                && inode.uid <= u32::from(u16::MAX)
                && inode.gid <= u32::from(u16::MAX)
                && size <= u64::from(u32::MAX);
            let inode_size = if compact {
                COMPACT_INODE_SIZE
            } else {
                EXTENDED_INODE_SIZE
            };
            let n_shared = node.layout.shared.iter().flatten().count();
            let unshared: usize = inode
                .xattrs
                .iter()
                .zip(&node.layout.shared)
                .filter(|(_, s)| s.is_none())
                .map(|((k, v), _)| xattr_entry_size(k, v))
                .sum();
            let xattr_size = if inode.xattrs.is_empty() {
                0
            } else {
                (XATTR_BODY_HEADER_SIZE + n_shared * 4 + unshared).next_multiple_of(4)
            };
            let layout = &mut node.layout;
            (
                layout.n_blocks,
                layout.tail,
                layout.compact,
                layout.xattr_size,
            ) = (n_blocks, tail, compact, xattr_size);
            let start = pos.next_multiple_of(SLOT_SIZE);
            let extra = tail_padding(kind(&node.inode), layout, start, inode_size + xattr_size);
            layout.ipad = start - pos + extra;
            pos = start + extra;
            layout.nid = (pos / SLOT_SIZE) as u64;
            pos += inode_size + xattr_size + layout.tail;
        }
        Ok(pos.next_multiple_of(SLOT_SIZE))
    }

    /// Blocks and inline tail of a node's data, before padding decisions.
    fn data_size(&self, i: usize) -> (u64, usize) {
        let inode = &self.nodes[i].inode;
        match (kind(inode), &inode.data) {
            (S_IFDIR, _) => {
                let (mut n_blocks, mut block) = (0, 0);
                for dirent in &self.nodes[i].children {
                    let len = DIRENT_SIZE + dirent.name.len();
                    if block + len > BLOCK_SIZE {
                        n_blocks += 1;
                        block = 0;
                    }
                    block += len;
                }
                // Never more than half a block inline.
                if block > BLOCK_SIZE / 2 {
                    (n_blocks + 1, 0)
                } else {
                    (n_blocks, block)
                }
            }
            (S_IFLNK, Data::Inline(target)) => (0, target.len()),
            (S_IFREG, Data::Inline(content)) => {
                let (blocks, tail) = (content.len() / BLOCK_SIZE, content.len() % BLOCK_SIZE);
                if tail > BLOCK_SIZE / 2 {
                    (blocks as u64 + 1, 0)
                } else {
                    (blocks as u64, tail)
                }
            }
            (S_IFREG, Data::External { .. }) if inode.size > 0 => {
                (0, chunking(inode.size).1 as usize * 4)
            }
            _ => (0, 0),
        }
    }

    fn write_inode(&self, out: &mut Vec<u8>, i: usize, inodes_end: usize, data_end: &mut usize) {
        let node = &self.nodes[i];
        let (inode, layout) = (&node.inode, &node.layout);
        out.resize(out.len() + layout.ipad, 0);
        let kind = kind(inode);
        let external =
            kind == S_IFREG && matches!(inode.data, Data::External { .. }) && inode.size > 0;
        let mut datalayout = if layout.tail > 0 {
            LAYOUT_FLAT_INLINE
        } else {
            LAYOUT_FLAT_PLAIN
        };
        let size = match kind {
            S_IFDIR => layout.n_blocks * BLOCK_SIZE as u64 + layout.tail as u64,
            S_IFREG => inode.size,
            S_IFLNK if layout.n_blocks == 0 => layout.tail as u64,
            S_IFLNK => inode.size,
            _ => 0,
        };
        let mut raw_u: u32 = 0;
        if matches!(kind, S_IFDIR | S_IFREG | S_IFLNK) && layout.n_blocks > 0 {
            raw_u = (*data_end / BLOCK_SIZE) as u32;
            *data_end += BLOCK_SIZE * layout.n_blocks as usize;
        }
        if kind == S_IFCHR || kind == S_IFBLK {
            raw_u = inode.rdev;
        }
        if external {
            datalayout = LAYOUT_CHUNK_BASED;
            let (bits, _) = chunking(inode.size);
            raw_u = (raw_u & 0xffff_0000) | (bits - BLOCK_BITS);
        }
        let xattr_icount = if layout.xattr_size == 0 {
            0
        } else {
            ((layout.xattr_size - XATTR_BODY_HEADER_SIZE) / 4 + 1) as u16
        };
        let format = (datalayout << 1) | u16::from(!layout.compact);
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&xattr_icount.to_le_bytes());
        out.extend_from_slice(&(inode.mode as u16).to_le_bytes());
        if layout.compact {
            out.extend_from_slice(&(inode.nlink as u16).to_le_bytes());
            out.extend_from_slice(&(size as u32).to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&raw_u.to_le_bytes());
            out.extend_from_slice(&layout.ino.to_le_bytes());
            out.extend_from_slice(&(inode.uid as u16).to_le_bytes());
            out.extend_from_slice(&(inode.gid as u16).to_le_bytes());
            out.extend_from_slice(&[0; 4]);
        } else {
            out.extend_from_slice(&[0; 2]);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&raw_u.to_le_bytes());
            out.extend_from_slice(&layout.ino.to_le_bytes());
            out.extend_from_slice(&inode.uid.to_le_bytes());
            out.extend_from_slice(&inode.gid.to_le_bytes());
            out.extend_from_slice(&(inode.mtime as u64).to_le_bytes());
            out.extend_from_slice(&inode.mtime_nsec.to_le_bytes());
            out.extend_from_slice(&inode.nlink.to_le_bytes());
            out.extend_from_slice(&[0; 16]);
        }
        if layout.xattr_size > 0 {
            out.extend_from_slice(&name_filter(&inode.xattrs).to_le_bytes());
            out.push(layout.shared.iter().flatten().count() as u8);
            out.extend_from_slice(&[0; 7]);
            for offset in layout.shared.iter().flatten() {
                let id = (inodes_end % BLOCK_SIZE + offset) / 4;
                out.extend_from_slice(&(id as u32).to_le_bytes());
            }
            for ((name, value), shared) in inode.xattrs.iter().zip(&layout.shared) {
                if shared.is_none() {
                    write_xattr(out, name, value);
                }
            }
        }
        match (&inode.data, kind) {
            (_, S_IFDIR) => self.write_dirents(out, i, false, true),
            (Data::Inline(target), S_IFLNK) if layout.n_blocks == 0 => {
                out.extend_from_slice(target)
            }
            (Data::Inline(content), S_IFREG) if layout.tail > 0 => {
                out.extend_from_slice(&content[content.len() - layout.tail..])
            }
            _ if external && layout.tail > 0 => {
                for _ in 0..layout.tail / 4 {
                    out.extend_from_slice(&NULL_ADDR);
                }
            }
            _ => {}
        }
    }

    /// A directory's dirents: its full blocks, or its inline tail (`write_erofs_dentries`).
    fn write_dirents(&self, out: &mut Vec<u8>, i: usize, blocks: bool, tail: bool) {
        let node = &self.nodes[i];
        if kind(&node.inode) != S_IFDIR {
            return;
        }
        let children = &node.children;
        let (mut block, mut written, mut first) = (0, 0, 0);
        for (index, dirent) in children.iter().enumerate() {
            let len = DIRENT_SIZE + dirent.name.len();
            if block + len > BLOCK_SIZE {
                if blocks {
                    self.write_dirent_chunk(out, &children[first..index], BLOCK_SIZE);
                }
                written += 1;
                block = 0;
                first = index;
            }
            block += len;
        }
        if written < node.layout.n_blocks {
            if blocks {
                self.write_dirent_chunk(out, &children[first..], BLOCK_SIZE);
            }
            block = 0;
            first = children.len();
        }
        if tail && block > 0 {
            self.write_dirent_chunk(out, &children[first..], 1);
        }
    }

    fn write_dirent_chunk(&self, out: &mut Vec<u8>, dirents: &[Dirent], align: usize) {
        let mut name_offset = dirents.len() * DIRENT_SIZE;
        for dirent in dirents {
            let target = &self.nodes[dirent.node];
            out.extend_from_slice(&target.layout.nid.to_le_bytes());
            out.extend_from_slice(&(name_offset as u16).to_le_bytes());
            out.push(file_type(kind(&target.inode)));
            out.push(0);
            name_offset += dirent.name.len();
        }
        for dirent in dirents {
            out.extend_from_slice(&dirent.name);
        }
        out.resize(out.len().next_multiple_of(align), 0);
    }

    /// A file's or symlink's data that is not inline: at most one block (see the limits).
    fn write_blocks(&self, out: &mut Vec<u8>, i: usize) {
        let node = &self.nodes[i];
        if node.layout.n_blocks == 0 {
            return;
        }
        match (&node.inode.data, kind(&node.inode)) {
            (Data::External { .. }, S_IFREG) => {
                for _ in 0..MAX_CHUNKS {
                    out.extend_from_slice(&NULL_ADDR);
                }
            }
            (Data::Inline(bytes), S_IFREG | S_IFLNK) => {
                let len = (node.inode.size as usize).min(BLOCK_SIZE).min(bytes.len());
                out.extend_from_slice(&bytes[..len]);
                out.resize(out.len().next_multiple_of(BLOCK_SIZE), 0);
            }
            _ => {}
        }
    }
}

/// Padding before an inode so that its tail does not cross a block; may move the tail into a
/// block of its own (`compute_erofs_inode_padding_for_tail`).
fn tail_padding(kind: u32, layout: &mut Layout, pos: usize, non_tail: usize) -> usize {
    let total = non_tail + layout.tail;
    if kind == S_IFLNK {
        // A symlink's inode and target stay in one block; a target that cannot gets a block.
        if total / BLOCK_SIZE > 0 {
            layout.n_blocks += 1;
            layout.tail = 0;
        }
        if pos / BLOCK_SIZE != (pos + total - 1) / BLOCK_SIZE {
            return pos.next_multiple_of(BLOCK_SIZE) - pos;
        }
        return 0;
    }
    let remainder = BLOCK_SIZE - (pos + non_tail) % BLOCK_SIZE;
    if remainder >= layout.tail {
        return 0;
    }
    let pad = remainder.next_multiple_of(SLOT_SIZE);
    if layout.tail <= BLOCK_SIZE - (pos + non_tail + pad) % BLOCK_SIZE {
        return pad;
    }
    layout.n_blocks += 1;
    layout.tail = 0;
    pos.next_multiple_of(BLOCK_SIZE) - pos
}

fn write_xattr(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let (index, suffix) = prefix_of(name);
    out.push(suffix.len() as u8);
    out.push(index);
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(suffix);
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn file_type(kind: u32) -> u8 {
    match kind {
        S_IFREG => FT_REG_FILE,
        S_IFDIR => FT_DIR,
        S_IFCHR => FT_CHRDEV,
        S_IFBLK => FT_BLKDEV,
        S_IFIFO => FT_FIFO,
        S_IFSOCK => FT_SOCK,
        S_IFLNK => FT_SYMLINK,
        _ => 0,
    }
}

/// The inode's xattr name bloom filter: a clear bit for each name's hash.
fn name_filter(xattrs: &[Xattr]) -> u32 {
    let bits = xattrs.iter().fold(0u32, |bits, (name, _)| {
        let (index, suffix) = prefix_of(name);
        bits | 1 << (xxh32(suffix, XATTR_FILTER_SEED.wrapping_add(u32::from(index))) & 31)
    });
    !bits
}

/// xxHash32, which EROFS uses for the xattr name filter.
fn xxh32(input: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    let round = |acc: u32, lane: u32| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    };
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut rest = input;
    let mut h = if input.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 16 {
            for (lane, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, word(&rest[lane * 4..]));
            }
            rest = &rest[16..];
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(input.len() as u32);
    while rest.len() >= 4 {
        h = h
            .wrapping_add(word(rest).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &byte in rest {
        h = h
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh32_matches_the_reference_values() {
        assert_eq!(xxh32(b"", 0), 0x02cc_5d05);
        assert_eq!(xxh32(b"a", 0), 0x550d_7456);
        assert_eq!(
            xxh32(b"Nobody inspects the spammish repetition", 0),
            0xe229_3b2f
        );
    }
}
