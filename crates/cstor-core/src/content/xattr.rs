//! Extended attributes, read fd-relative: of an open file, or of a name in an open directory.
//!
//! Linux offers the no-follow xattr calls (`llistxattr`, `lgetxattr`) only by path, so a name in
//! a directory is reached as `/proc/self/fd/<dir>/<name>`: the open directory stands in for the
//! path that led to it, and the final component is never followed. Read by extraction (to copy a
//! layer's xattrs) and by the metadata check (to compare them with the tar headers).

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use rustix::io::Errno;

use crate::error::{Error, Result};

/// A path naming `name` in the directory `dir`, for the xattr calls Linux only offers by path:
/// `/proc/self/fd/<dir>` stands for the open directory, and the `l*` calls do not follow `name`
/// (`.` names the directory itself).
pub(crate) fn proc_path(dir: &impl AsRawFd, name: &OsStr) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(name);
    path
}

/// Reads all xattrs of an open file, or of `name` in a directory (`.`: the directory itself).
pub(crate) fn read_xattrs(target: Target<'_>, shown: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    use rustix::fs::{fgetxattr, flistxattr, lgetxattr, llistxattr};
    use rustix::fs::{fgetxattr_query, flistxattr_query, lgetxattr_query, llistxattr_query};
    match target {
        Target::Fd(fd) => {
            let fd = fd.as_fd();
            xattrs_with(
                |list| list.map_or_else(|| flistxattr_query(fd), |l| flistxattr(fd, l)),
                |key, value| {
                    value.map_or_else(|| fgetxattr_query(fd, key), |v| fgetxattr(fd, key, v))
                },
                shown,
            )
        }
        Target::At(dir, name) => {
            let path = proc_path(dir, name);
            xattrs_with(
                |list| list.map_or_else(|| llistxattr_query(&path), |l| llistxattr(&path, l)),
                |key, value| {
                    value.map_or_else(|| lgetxattr_query(&path, key), |v| lgetxattr(&path, key, v))
                },
                shown,
            )
        }
    }
}

/// The xattr reading loop over a pair of list/get calls (by fd or by path), each asked for a
/// size first (`None`). A list or value that grows in between fails with ERANGE, an I/O error,
/// rather than coming back cut.
fn xattrs_with(
    list: impl Fn(Option<&mut [u8]>) -> rustix::io::Result<usize>,
    get: impl Fn(&OsStr, Option<&mut [u8]>) -> rustix::io::Result<usize>,
    shown: &Path,
) -> Result<Vec<(OsString, Vec<u8>)>> {
    let io = |e: Errno| Error::io(shown, e.into());
    let size = match list(None) {
        Ok(size) => size,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0; size];
    let got = list(Some(&mut names[..])).map_err(io)?;
    names.truncate(got);
    let mut xattrs = Vec::new();
    for key in names.split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let key = OsStr::from_bytes(key);
        let len = match get(key, None) {
            Ok(len) => len,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(io(e)),
        };
        let mut value = vec![0; len];
        if len > 0 {
            let got = get(key, Some(&mut value[..])).map_err(io)?;
            value.truncate(got);
        }
        xattrs.push((key.to_owned(), value));
    }
    Ok(xattrs)
}

/// Whether `xattrs` hold one of `names` with the value `y`.
pub(crate) fn has_flag(xattrs: &[(OsString, Vec<u8>)], names: &[&str]) -> bool {
    xattrs
        .iter()
        .any(|(k, v)| names.iter().any(|n| k.as_bytes() == n.as_bytes()) && v == b"y")
}

/// Where metadata is read or applied: an open file or directory, or a name in a directory
/// (symlinks, fifos, devices — which cannot be opened for reading or writing metadata).
pub(crate) enum Target<'a> {
    Fd(&'a dyn AsFd),
    At(&'a Dir, &'a OsStr),
}
