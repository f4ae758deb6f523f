//! The forms a deletion takes in a layer.
//!
//! A layer tar (and so a tar-split) marks a deleted path `x` with an entry `.wh.x`, and a
//! directory whose lower contents are hidden with an entry `.wh..wh..opq` inside it (the AUFS
//! convention the OCI image spec adopted). containers/storage's overlay driver turns them into what
//! overlayfs reads in `diff/`: a character device 0:0 named `x`, and a `trusted.overlay.opaque`
//! (rootless: `user.overlay.opaque`) xattr `y` on the directory. Newer overlayfs also accepts an
//! empty regular file with an `overlay.whiteout` xattr. cstor reads every one of these forms.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Prefix of a whiteout entry's name in a tar.
pub const PREFIX: &str = ".wh.";

/// The name of the marker entry that makes its directory opaque in a tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Xattrs that say "this directory is opaque" (value `y`), for root and rootless overlay.
pub const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Xattrs that make an empty regular file a whiteout (overlayfs since Linux 6.7).
pub const WHITEOUT_XATTRS: [&str; 2] = ["trusted.overlay.whiteout", "user.overlay.whiteout"];

/// Whether an xattr is overlayfs's own bookkeeping (opaque, origin, redirect, ...) rather than
/// the file's: such xattrs are read for their meaning and never copied.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// What a name in a tar or a `diff/` directory says about deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker<'a> {
    /// `.wh..wh..opq`: the directory holding it is opaque.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Whiteout(&'a OsStr),
    /// An ordinary name.
    None,
}

/// Reads the AUFS-style meaning of a file name (one path component).
pub fn marker(name: &OsStr) -> Marker<'_> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE_MARKER.as_bytes() {
        Marker::Opaque
    } else if let Some(deleted) = bytes.strip_prefix(PREFIX.as_bytes()) {
        if deleted.is_empty() {
            Marker::None
        } else {
            Marker::Whiteout(OsStr::from_bytes(deleted))
        }
    } else {
        Marker::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_markers() {
        assert_eq!(marker(OsStr::new(".wh..wh..opq")), Marker::Opaque);
        assert_eq!(
            marker(OsStr::new(".wh.motd")),
            Marker::Whiteout(OsStr::new("motd"))
        );
        assert_eq!(marker(OsStr::new(".wh.")), Marker::None);
        assert_eq!(marker(OsStr::new("motd")), Marker::None);
        assert!(is_overlay_xattr(b"trusted.overlay.opaque"));
        assert!(!is_overlay_xattr(b"user.comment"));
    }
}
