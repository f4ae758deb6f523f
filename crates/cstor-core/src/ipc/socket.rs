//! The listening Unix socket of a cstor server: owner-only whatever the umask, or shared with
//! one named group.
//!
//! Whoever can connect to the socket can read every layer of the store, so a root server must
//! not leave it `srwxrwxrwx` under `umask 000`. The socket is bound inside a fresh 0700
//! directory beside `path`, given its mode (0600, or 0660 and the group) there — where no one
//! else can swap the file for a symlink between bind and chmod — starts listening, and only then
//! is renamed to `path` (never over an existing file). So it appears complete, with its final
//! permissions, or not at all.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::fs::{Gid, Mode, RenameFlags, CWD};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::{Error, Result};

/// Connections waiting to be accepted before the kernel refuses more.
const BACKLOG: i32 = 128;

/// Who may connect besides the owner (root may always).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SocketAccess {
    /// Mode 0600.
    #[default]
    Owner,
    /// Mode 0660, group-owned by this group (a name or a numeric ID): its members may connect.
    Group(String),
}

/// Creates a listening Unix socket at `path`, which must not exist.
pub fn listen(path: &Path, access: &SocketAccess) -> Result<UnixListener> {
    let (mode, gid) = match access {
        SocketAccess::Owner => (0o600, None),
        SocketAccess::Group(group) => (0o660, Some(group_id(group)?)),
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let private = private_dir(parent)?;
    let staged = private.join("s");
    let result = (|| {
        let socket = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::io(path, e.into()))?;
        let address = SocketAddrUnix::new(&staged).map_err(|e| {
            Error::InvalidArgument(format!(
                "{}: too long for a Unix socket path ({e})",
                path.display()
            ))
        })?;
        rustix::net::bind(&socket, &address).map_err(|e| Error::io(path, e.into()))?;
        if let Some(gid) = gid {
            rustix::fs::chown(&staged, None, Some(gid)).map_err(|e| {
                Error::io(
                    path,
                    std::io::Error::new(
                        std::io::Error::from(e).kind(),
                        format!("cannot give the socket to group {gid:?}: {e}"),
                    ),
                )
            })?;
        }
        rustix::fs::chmod(&staged, Mode::from_raw_mode(mode))
            .map_err(|e| Error::io(path, e.into()))?;
        rustix::net::listen(&socket, BACKLOG).map_err(|e| Error::io(path, e.into()))?;
        rustix::fs::renameat_with(CWD, &staged, CWD, path, RenameFlags::NOREPLACE)
            .map_err(|e| Error::io(path, e.into()))?;
        Ok(UnixListener::from(socket))
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    result
}

/// A new directory only the caller can enter, beside where the socket goes (so a rename moves
/// the socket into place).
fn private_dir(parent: &Path) -> Result<PathBuf> {
    loop {
        let mut suffix = [0u8; 6];
        crate::random::fill(&mut suffix);
        let name: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let dir = parent.join(format!(".cstor-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(parent, e)),
        }
    }
}

/// The ID of a group given by name or number.
fn group_id(group: &str) -> Result<Gid> {
    if let Ok(id) = group.parse::<u32>() {
        return Ok(Gid::from_raw(id));
    }
    let name = std::ffi::CString::new(group)
        .map_err(|_| Error::InvalidArgument(format!("group name {group:?} contains NUL")))?;
    let mut buffer = vec![0u8; 16 << 10];
    // SAFETY: an all-zero `group` is a valid value for getgrnam_r to fill in.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    loop {
        // SAFETY: every pointer is valid for the call; the buffer's length is passed with it.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buffer.len() < 1 << 24 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() {
            return Err(Error::InvalidArgument(format!("no group named {group:?}")));
        }
        return Ok(Gid::from_raw(entry.gr_gid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// (Under `umask 000` too: `__test__/rpc.test.ts` runs the CLI so, as another user.)
    #[test]
    fn the_socket_is_owner_only_and_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sock");
        let _listener = listen(&path, &SocketAccess::Owner).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600);
        std::os::unix::net::UnixStream::connect(&path).unwrap();
        let again = listen(&path, &SocketAccess::Owner).unwrap_err();
        assert!(again.to_string().contains("exists"), "{again}");
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_group_share_is_0660_and_group_owned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.sock");
        // SAFETY: getgid(2) cannot fail.
        let gid = unsafe { libc::getgid() };
        let _listener = listen(&path, &SocketAccess::Group(gid.to_string())).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid));
        let err = listen(
            &dir.path().join("x.sock"),
            &SocketAccess::Group("no-such-group-cstor".into()),
        )
        .unwrap_err();
        assert_eq!(err.code(), "EINVAL");
    }
}
