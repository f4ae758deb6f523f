//! Reading a composefs EROFS image into [`Entry`] records, path by path.
//!
//! The records are the tree a dumpfile describes, as C `composefs-info dump` gives it: what
//! `mkcomposefs` added for overlayfs is taken back out — `trusted.overlay.redirect` and
//! `trusted.overlay.metacopy` become an external file's payload and digest, an escaped
//! `trusted.overlay.overlay.*` xattr gets its name back, a regular file marked
//! `trusted.overlay.overlay.whiteout` is the character device 0:0 it was, the markers of
//! directories holding whiteouts go, and the 256 real whiteouts `00`…`ff` in the root (which
//! make the image's root opaque to a lower layer) are skipped.
//!
//! The image comes from the store, so it is hostile input: every offset is checked against the
//! image before it is read, a directory met twice (a cycle, or a directory hardlinked) and a
//! tree deeper than [`MAX_DEPTH`] are errors, and the walk keeps its own stack. Each directory
//! is read once, so the work is bounded by the image's size. Errors are `ECORRUPT` naming the
//! image (`shown`) and what was wrong.

use std::collections::HashSet;
use std::path::Path;

use super::*;
use crate::error::{Error, Result};

/// Deeper than any path Linux can name (`PATH_MAX` 4096 holds at most 2048 components).
pub const MAX_DEPTH: usize = 2048;

/// The image's superblock fields the reader needs.
struct Super {
    root_nid: u64,
    build_time: i64,
    build_time_nsec: u32,
    meta_start: usize,
    xattr_start: usize,
}

/// An image being read.
pub struct Image<'a> {
    bytes: &'a [u8],
    sb: Super,
    shown: &'a Path,
    /// The header's `composefs_version`.
    pub composefs_version: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

impl<'a> Image<'a> {
    /// Checks the composefs header and the EROFS superblock.
    pub fn new(bytes: &'a [u8], shown: &'a Path) -> Result<Image<'a>> {
        let corrupt = |detail: String| Error::corrupt(shown, detail);
        if bytes.len() < SUPER_OFFSET + SUPER_SIZE {
            return Err(corrupt(format!(
                "{} bytes: too short for a composefs image",
                bytes.len()
            )));
        }
        if u32_at(bytes, 0) != COMPOSEFS_MAGIC || u32_at(bytes, 4) != COMPOSEFS_HEADER_VERSION {
            return Err(corrupt("not a composefs image (header magic)".into()));
        }
        let sb = &bytes[SUPER_OFFSET..SUPER_OFFSET + SUPER_SIZE];
        if u32_at(sb, 0) != EROFS_MAGIC {
            return Err(corrupt("not an EROFS image (superblock magic)".into()));
        }
        if u32::from(sb[12]) != BLOCK_BITS {
            return Err(corrupt(format!("block size 2^{}, not 4096", sb[12])));
        }
        let incompat = u32_at(sb, 80);
        // Chunk-based files are the only incompatible feature composefs uses.
        if incompat & !0x4 != 0 {
            return Err(corrupt(format!(
                "EROFS features {incompat:#x} (compression, devices...) composefs never writes"
            )));
        }
        let block = |n: u32| (n as usize).checked_mul(BLOCK_SIZE);
        let (Some(meta_start), Some(xattr_start)) = (block(u32_at(sb, 40)), block(u32_at(sb, 44)))
        else {
            return Err(corrupt("block addresses out of range".into()));
        };
        Ok(Image {
            bytes,
            sb: Super {
                root_nid: u64::from(u16_at(sb, 14)),
                build_time: u64_at(sb, 24) as i64,
                build_time_nsec: u32_at(sb, 32),
                meta_start,
                xattr_start,
            },
            shown,
            composefs_version: u32_at(bytes, 12),
        })
    }

    fn corrupt(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.shown, detail.into())
    }

    /// `len` bytes at `at`, or an error naming `what`.
    fn slice(&self, at: usize, len: usize, what: &str) -> Result<&'a [u8]> {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or_else(|| self.corrupt(format!("{what} at {at}+{len} is past the image's end")))
    }

    /// Every entry, a directory before its contents, names in the image's (byte) order.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let root = self.inode(self.sb.root_nid)?;
        if root.inode.mode & S_IFMT != S_IFDIR {
            return Err(self.corrupt("the root is not a directory"));
        }
        let mut seen_dirs = HashSet::from([self.sb.root_nid]);
        let mut out = Vec::new();
        // (path, depth, the directory's children still to visit, in reverse).
        let mut stack = vec![(Vec::new(), 0usize, self.dirents(&root)?)];
        out.push(Entry {
            path: Vec::new(),
            inode: root.inode,
        });
        while let Some((dir, depth, children)) = stack.last_mut() {
            let Some((name, nid)) = children.pop() else {
                stack.pop();
                continue;
            };
            let mut path = dir.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            let depth = *depth + 1;
            let read = self.inode(nid)?;
            if read.real_whiteout {
                continue;
            }
            if read.inode.mode & S_IFMT == S_IFDIR {
                if depth > MAX_DEPTH {
                    return Err(self.corrupt(format!("directories nest deeper than {MAX_DEPTH}")));
                }
                if !seen_dirs.insert(nid) {
                    return Err(self.corrupt(format!(
                        "directory {} is reached twice (nid {nid}): a cycle",
                        String::from_utf8_lossy(&path)
                    )));
                }
                let children = self.dirents(&read)?;
                stack.push((path.clone(), depth, children));
            }
            out.push(Entry {
                path,
                inode: read.inode,
            });
        }
        Ok(out)
    }

    /// Reads the inode `nid`: metadata, xattrs and inline data (a directory's raw blocks stay in
    /// `dir_data` for [`Image::dirents`]).
    fn inode(&self, nid: u64) -> Result<ReadInode> {
        let at = usize::try_from(nid)
            .ok()
            .and_then(|n| n.checked_mul(SLOT_SIZE))
            .and_then(|o| o.checked_add(self.sb.meta_start))
            .ok_or_else(|| self.corrupt(format!("nid {nid} out of range")))?;
        let head = self.slice(at, COMPACT_INODE_SIZE, "an inode")?;
        let format = u16_at(head, 0);
        let extended = format & 1 == 1;
        let layout = (format >> 1) & 0x7;
        let xattr_icount = u16_at(head, 2);
        let mut inode = Inode {
            nid,
            mode: u32::from(u16_at(head, 4)),
            ..Inode::default()
        };
        let (isize, raw_blkaddr) = if extended {
            let e = self.slice(at, EXTENDED_INODE_SIZE, "an inode")?;
            inode.size = u64_at(e, 8);
            inode.uid = u32_at(e, 24);
            inode.gid = u32_at(e, 28);
            inode.mtime = u64_at(e, 32) as i64;
            inode.mtime_nsec = u32_at(e, 40);
            inode.nlink = u32_at(e, 44);
            (EXTENDED_INODE_SIZE, u32_at(e, 16))
        } else {
            inode.nlink = u32::from(u16_at(head, 6));
            inode.size = u64::from(u32_at(head, 8));
            inode.uid = u32::from(u16_at(head, 24));
            inode.gid = u32::from(u16_at(head, 26));
            inode.mtime = self.sb.build_time;
            inode.mtime_nsec = self.sb.build_time_nsec;
            (COMPACT_INODE_SIZE, u32_at(head, 16))
        };
        let kind = inode.mode & S_IFMT;
        if kind == S_IFCHR || kind == S_IFBLK {
            inode.rdev = raw_blkaddr;
        }
        let xattr_size = if xattr_icount == 0 {
            0
        } else {
            XATTR_BODY_HEADER_SIZE + (usize::from(xattr_icount) - 1) * 4
        };
        let stored = if xattr_size > 0 {
            self.xattrs(at + isize, xattr_size)?
        } else {
            Vec::new()
        };
        let tail_at = at + isize + xattr_size;
        let mut dir_data = Vec::new();
        match (kind, layout) {
            (S_IFREG, LAYOUT_CHUNK_BASED) if inode.size > 0 => {
                inode.data = Data::External {
                    payload: Vec::new(),
                    verity: None,
                };
            }
            (S_IFREG, LAYOUT_CHUNK_BASED) => {}
            (S_IFREG | S_IFLNK | S_IFDIR, LAYOUT_FLAT_PLAIN | LAYOUT_FLAT_INLINE) => {
                let size = usize::try_from(inode.size)
                    .ok()
                    .filter(|s| *s <= self.bytes.len())
                    .ok_or_else(|| self.corrupt(format!("nid {nid}: size {}", inode.size)))?;
                let tail = if layout == LAYOUT_FLAT_INLINE {
                    size % BLOCK_SIZE
                } else {
                    0
                };
                let blocks = size - tail;
                let start = (raw_blkaddr as usize)
                    .checked_mul(BLOCK_SIZE)
                    .ok_or_else(|| self.corrupt(format!("nid {nid}: block address")))?;
                let mut data = if blocks > 0 {
                    self.slice(start, blocks, "file blocks")?.to_vec()
                } else {
                    Vec::new()
                };
                data.extend_from_slice(self.slice(tail_at, tail, "inline data")?);
                if kind == S_IFDIR {
                    dir_data = data;
                } else if size > 0 {
                    inode.data = Data::Inline(data);
                }
            }
            (S_IFREG | S_IFLNK | S_IFDIR, _) => {
                return Err(self.corrupt(format!("nid {nid}: data layout {layout}")));
            }
            _ => {}
        }
        // Before the xattrs are read: an escaped whiteout becomes a device too.
        let real_whiteout = kind == S_IFCHR && inode.rdev == 0;
        for (name, value) in stored {
            unescape(&mut inode, name, value);
        }
        Ok(ReadInode {
            inode,
            dir_data,
            real_whiteout,
        })
    }

    /// The xattrs of the `size` bytes at `at` (the inode's xattr body), by full name.
    fn xattrs(&self, at: usize, size: usize) -> Result<Vec<Xattr>> {
        let body = self.slice(at, size, "xattrs")?;
        let shared = usize::from(body[4]);
        let mut out = Vec::new();
        let ids = self.slice(at + XATTR_BODY_HEADER_SIZE, shared * 4, "shared xattr ids")?;
        let mut pos = XATTR_BODY_HEADER_SIZE + shared * 4;
        while pos + XATTR_ENTRY_HEADER_SIZE <= size {
            let (xattr, len) = self.xattr(at + pos)?;
            out.push(xattr);
            pos += len;
        }
        if pos > size {
            return Err(self.corrupt(format!("xattrs at {at} overrun their {size} bytes")));
        }
        for id in ids.chunks_exact(4) {
            let offset = (u32_at(id, 0) as usize)
                .checked_mul(4)
                .and_then(|o| o.checked_add(self.sb.xattr_start))
                .ok_or_else(|| self.corrupt("shared xattr id out of range"))?;
            out.push(self.xattr(offset)?.0);
        }
        Ok(out)
    }

    /// One xattr entry at `at`, and its size padded to 4 bytes.
    fn xattr(&self, at: usize) -> Result<(Xattr, usize)> {
        let head = self.slice(at, XATTR_ENTRY_HEADER_SIZE, "an xattr")?;
        let (name_len, index) = (usize::from(head[0]), head[1]);
        let value_len = usize::from(u16_at(head, 2));
        let prefix = xattr_prefix(index)
            .ok_or_else(|| self.corrupt(format!("xattr at {at}: prefix index {index}")))?;
        let body = self.slice(
            at + XATTR_ENTRY_HEADER_SIZE,
            name_len + value_len,
            "an xattr",
        )?;
        let mut name = prefix.to_vec();
        name.extend_from_slice(&body[..name_len]);
        let len = (XATTR_ENTRY_HEADER_SIZE + name_len + value_len).next_multiple_of(4);
        Ok(((name, body[name_len..].to_vec()), len))
    }

    /// A directory's entries but `.` and `..`, reversed (the walk pops them in order).
    fn dirents(&self, dir: &ReadInode) -> Result<Vec<(Vec<u8>, u64)>> {
        let mut out = Vec::new();
        for block in dir.dir_data.chunks(BLOCK_SIZE) {
            if block.len() < DIRENT_SIZE {
                return Err(self.corrupt(format!("nid {}: a short directory block", dir.inode.nid)));
            }
            let first = usize::from(u16_at(block, 8));
            if first % DIRENT_SIZE != 0 || first == 0 || first > block.len() {
                return Err(
                    self.corrupt(format!("nid {}: dirent table size {first}", dir.inode.nid))
                );
            }
            let count = first / DIRENT_SIZE;
            for i in 0..count {
                let d = i * DIRENT_SIZE;
                let nid = u64_at(block, d);
                let start = usize::from(u16_at(block, d + 8));
                let end = if i + 1 < count {
                    usize::from(u16_at(block, d + DIRENT_SIZE + 8))
                } else {
                    // The last name runs to the block's end or a NUL.
                    let rest = block.get(start..).unwrap_or_default();
                    start + rest.iter().position(|b| *b == 0).unwrap_or(rest.len())
                };
                let name = block
                    .get(start..end)
                    .filter(|n| !n.is_empty() && n.len() <= 255)
                    .ok_or_else(|| {
                        self.corrupt(format!(
                            "nid {}: dirent name at {start}..{end}",
                            dir.inode.nid
                        ))
                    })?;
                if name == b"." || name == b".." {
                    continue;
                }
                if name.contains(&b'/') || name.contains(&0) {
                    return Err(self.corrupt(format!(
                        "nid {}: entry name {:?}",
                        dir.inode.nid,
                        String::from_utf8_lossy(name)
                    )));
                }
                out.push((name.to_vec(), nid));
            }
        }
        out.reverse();
        Ok(out)
    }
}

struct ReadInode {
    inode: Inode,
    dir_data: Vec<u8>,
    /// A character device 0:0 as stored (not escaped): one of the whiteouts `mkcomposefs`
    /// puts in the root.
    real_whiteout: bool,
}

/// Files one stored xattr under its meaning (see the module documentation).
fn unescape(inode: &mut Inode, name: Vec<u8>, value: Vec<u8>) {
    let regular = inode.mode & S_IFMT == S_IFREG;
    match name.as_slice() {
        REDIRECT => {
            if let Data::External { payload, .. } = &mut inode.data {
                *payload = value.strip_prefix(b"/").unwrap_or(&value).to_vec();
            }
        }
        METACOPY => {
            if let Data::External { verity, .. } = &mut inode.data {
                *verity = value.get(4..).filter(|d| !d.is_empty()).map(<[u8]>::to_vec);
            }
        }
        ESCAPED_WHITEOUT if regular => {
            inode.mode = (inode.mode & !S_IFMT) | S_IFCHR;
            inode.rdev = 0;
            inode.size = 0;
            inode.data = Data::None;
        }
        ESCAPED_WHITEOUTS | USER_WHITEOUT | USER_WHITEOUTS => {}
        _ => {
            if let Some(rest) = name.strip_prefix(ESCAPE_PREFIX) {
                let mut original = OVERLAY_PREFIX.to_vec();
                original.extend_from_slice(rest);
                inode.xattrs.push((original, value));
            } else if !name.starts_with(OVERLAY_PREFIX) {
                inode.xattrs.push((name, value));
            }
        }
    }
}
