//! EROFS as composefs uses it: the on-disk layout both the reader and the writer follow.
//!
//! A composefs image is an uncompressed EROFS filesystem (Linux `fs/erofs/erofs_fs.h`) with a
//! 32-byte composefs header in front of the superblock (C composefs `lcfs-erofs.h`): 4 KiB
//! blocks; inodes in 32-byte slots after the superblock, a node id (nid) being a slot number;
//! directories as blocks of dirents; extended attributes inline after an inode or shared in a
//! table after the inodes. A regular file's content is either inline (small files: tail-packed
//! after the inode) or *external*: a chunk-based inode with no blocks at all, whose content
//! overlayfs finds through the `trusted.overlay.redirect` xattr (a content object's path) —
//! the "data-only lower layer" composefs mounts beneath the EROFS.
//!
//! [`reader`] turns an image into plain per-entry records ([`Entry`]); [`writer`] writes the
//! image C `mkcomposefs` writes for such records.

pub mod reader;
pub mod writer;

/// The composefs header's magic, ahead of the EROFS superblock.
pub const COMPOSEFS_MAGIC: u32 = 0xd078_629a;
/// The composefs header's `version` (the header layout; `composefs_version` is the format's).
pub const COMPOSEFS_HEADER_VERSION: u32 = 1;
/// The EROFS superblock's magic.
pub const EROFS_MAGIC: u32 = 0xe0f5_e1e2;
/// Where the superblock starts.
pub const SUPER_OFFSET: usize = 1024;
/// The superblock's size.
pub const SUPER_SIZE: usize = 128;
pub const BLOCK_BITS: u32 = 12;
pub const BLOCK_SIZE: usize = 1 << BLOCK_BITS;
/// Inode slots: a nid times this is an inode's offset in the metadata area.
pub const SLOT_SIZE: usize = 32;
pub const COMPACT_INODE_SIZE: usize = 32;
pub const EXTENDED_INODE_SIZE: usize = 64;
pub const DIRENT_SIZE: usize = 12;
/// `erofs_xattr_ibody_header`: name filter, shared count, reserved.
pub const XATTR_BODY_HEADER_SIZE: usize = 12;
/// `erofs_xattr_entry`: name length, prefix index, value size.
pub const XATTR_ENTRY_HEADER_SIZE: usize = 4;

/// `i_format` data layouts (bits 1..3).
pub const LAYOUT_FLAT_PLAIN: u16 = 0;
pub const LAYOUT_FLAT_INLINE: u16 = 2;
pub const LAYOUT_CHUNK_BASED: u16 = 4;

pub const FEATURE_COMPAT_MTIME: u32 = 0x2;
pub const FEATURE_COMPAT_XATTR_FILTER: u32 = 0x4;

/// Dirent file types.
pub const FT_REG_FILE: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_CHRDEV: u8 = 3;
pub const FT_BLKDEV: u8 = 4;
pub const FT_FIFO: u8 = 5;
pub const FT_SOCK: u8 = 6;
pub const FT_SYMLINK: u8 = 7;

/// Xattr name prefixes by EROFS index, as C composefs 1.0.8 uses them (it never uses `lustre.`,
/// index 5, so a `lustre.*` name is stored whole under index 0).
pub const XATTR_PREFIXES: [(u8, &[u8]); 5] = [
    (1, b"user."),
    (2, b"system.posix_acl_access"),
    (3, b"system.posix_acl_default"),
    (4, b"trusted."),
    (6, b"security."),
];

/// The full prefix an index stands for (the reader accepts `lustre.` too).
pub fn xattr_prefix(index: u8) -> Option<&'static [u8]> {
    match index {
        0 => Some(b""),
        5 => Some(b"lustre."),
        _ => XATTR_PREFIXES
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, p)| *p),
    }
}

/// An xattr's full name and value.
pub type Xattr = (Vec<u8>, Vec<u8>);

/// One file of an image, as the reader gives it and the writer takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path beneath the root, components joined by `/` (empty for the root itself).
    pub path: Vec<u8>,
    pub inode: Inode,
}

/// An inode's metadata and data at the level of a composefs dumpfile: xattrs by full name as the
/// file has them (what the image adds for overlayfs — redirect, metacopy, escapes, whiteout
/// stubs — is not among them, see [`reader`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inode {
    /// The node id: entries with the same nid are hardlinks of one inode.
    pub nid: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub nlink: u32,
    pub rdev: u32,
    pub xattrs: Vec<Xattr>,
    pub data: Data,
}

/// Where an inode's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Data {
    /// None (empty file, directory, device, fifo, socket).
    #[default]
    None,
    /// In the image: a small file's content or a symlink's target.
    Inline(Vec<u8>),
    /// Outside it: an external file, a content object overlayfs finds through the
    /// `trusted.overlay.redirect` xattr the image stores.
    External {
        /// The object's path beneath the object directory (the dumpfile's payload, no `/`).
        payload: Vec<u8>,
        /// Its fs-verity digest (SHA-256, or SHA-512 in composefs-rs's sha512 repositories),
        /// when the image asks overlayfs to check it.
        verity: Option<Vec<u8>>,
    },
}

/// overlayfs's xattrs, and the escaped forms composefs keeps a file's own under.
pub const OVERLAY_PREFIX: &[u8] = b"trusted.overlay.";
pub const ESCAPE_PREFIX: &[u8] = b"trusted.overlay.overlay.";
pub const REDIRECT: &[u8] = b"trusted.overlay.redirect";
pub const METACOPY: &[u8] = b"trusted.overlay.metacopy";
pub const OPAQUE: &[u8] = b"trusted.overlay.opaque";
pub const ESCAPED_WHITEOUT: &[u8] = b"trusted.overlay.overlay.whiteout";
pub const ESCAPED_WHITEOUTS: &[u8] = b"trusted.overlay.overlay.whiteouts";
pub const ESCAPED_OPAQUE: &[u8] = b"trusted.overlay.overlay.opaque";
pub const USER_WHITEOUT: &[u8] = b"user.overlay.whiteout";
pub const USER_WHITEOUTS: &[u8] = b"user.overlay.whiteouts";
pub const USER_OPAQUE: &[u8] = b"user.overlay.opaque";

/// `st_mode` type bits.
pub const S_IFMT: u32 = 0o170_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFCHR: u32 = 0o020_000;
pub const S_IFBLK: u32 = 0o060_000;
pub const S_IFIFO: u32 = 0o010_000;
pub const S_IFSOCK: u32 = 0o140_000;
