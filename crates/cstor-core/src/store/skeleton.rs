//! The skeleton of a store: what containers/storage creates in an empty graph root and run root
//! before anything is written (`GetStore`, the overlay driver's `Init`, the layer, image and
//! container stores), so that a store cstor starts is the store podman would have started.
//!
//! Measured against podman 5.8 (Debian sid) on an empty root, libpod's own state (`db.sql`,
//! `libpod/`, `volumes/`) aside:
//!
//! ```text
//! <root>/                  0700      <runroot>/                      0700
//!   storage.lock           0644        overlay/                      0700
//!   userns.lock            0644        overlay-containers/           0700
//!   overlay/               0755        overlay-layers/               0700
//!     l/                   0755          mountpoints.lock            0644
//!     .has-mount-program   0600        overlay-locks/                0700
//!   overlay-containers/    0700
//!     containers.lock      0644
//!   overlay-images/        0700
//!     images.lock          0644
//!   overlay-layers/        0700
//!     layers.lock          0644
//! ```
//!
//! Modes go through the umask, as Go's `MkdirAll` and `OpenFile` do. The run root's
//! `overlay/<feature>-true|false` files are the driver's cache of kernel probes, which cstor does
//! not run: podman probes and records them itself on its next start.

use std::path::Path;

use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt};

use crate::error::{Error, IoContext, Result};
use crate::store::lock::LockFile;

/// The file in which the overlay driver records whether it runs a mount program
/// (fuse-overlayfs): `true` or `false`. It decides how `diff/` records deletions.
pub(crate) const MOUNT_PROGRAM_FLAG: &str = "overlay/.has-mount-program";

/// Filesystems overlayfs cannot use as its upper layer, for which containers/storage's driver
/// requires a mount program: overlayfs itself, aufs, ecryptfs (`graphdriver.FsMagic*`).
const NEEDS_MOUNT_PROGRAM: &[i64] = &[0x794c_7630, 0x6175_6673, 0xf15f];

/// Creates, beneath an opened graph root, what containers/storage creates in it and is missing.
pub(crate) fn ensure_graph_root(root: &Dir) -> Result<()> {
    make_dir(root, "overlay", 0o755)?;
    make_dir(root, "overlay/l", 0o755)?;
    for lock in ["storage.lock", "userns.lock"] {
        LockFile::open_or_create(root, Path::new(lock))?;
    }
    for (dir, lock) in [
        ("overlay-containers", "containers.lock"),
        ("overlay-images", "images.lock"),
        ("overlay-layers", "layers.lock"),
    ] {
        make_dir(root, dir, 0o700)?;
        LockFile::open_or_create(root, &Path::new(dir).join(lock))?;
    }
    record_mount_program(root)
}

/// Creates a run root as containers/storage does (its directories and the mount-count lock).
pub(crate) fn ensure_run_root(path: &Path) -> Result<()> {
    let run = create_root(path)?;
    for dir in [
        "overlay",
        "overlay-containers",
        "overlay-layers",
        "overlay-locks",
    ] {
        make_dir(&run, dir, 0o700)?;
    }
    LockFile::open_or_create(&run, Path::new("overlay-layers/mountpoints.lock"))?;
    Ok(())
}

/// Creates `path` and its missing parents, mode 0700 as `GetStore` creates them, and opens it.
pub(crate) fn create_root(path: &Path) -> Result<Dir> {
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.recursive(true).create(path).at(path)?;
    Dir::open_ambient_dir(path, cap_std::ambient_authority()).at(path)
}

fn make_dir(root: &Dir, name: &str, mode: u32) -> Result<()> {
    let mut builder = DirBuilder::new();
    builder.mode(mode);
    match root.create_dir_with(name, &builder) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if root.symlink_metadata(name).at(name)?.is_dir() {
                Ok(())
            } else {
                Err(Error::corrupt(name, "not a directory"))
            }
        }
        Err(e) => Err(Error::io(name, e)),
    }
}

/// Writes the mount-program flag of a store that has none, under `storage.lock` as the driver's
/// `Init` does: `true` where the graph root's filesystem rules native overlay out, else `false`
/// (a fresh store holds no layer that could say otherwise). cstor writes `diff/` by this flag.
fn record_mount_program(root: &Dir) -> Result<()> {
    if root.exists(MOUNT_PROGRAM_FLAG) {
        return Ok(());
    }
    let lock = LockFile::open_or_create(root, Path::new("storage.lock"))?;
    let _guard = lock.write()?;
    let fs_type = rustix::fs::fstatfs(root)
        .map_err(|e| Error::io(".", e.into()))?
        .f_type as i64;
    let needed = NEEDS_MOUNT_PROGRAM.contains(&fs_type);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    match root.open_with(MOUNT_PROGRAM_FLAG, &options) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(if needed { b"true" } else { b"false" })
                .at(MOUNT_PROGRAM_FLAG)
        }
        // podman (or another cstor) decided meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(MOUNT_PROGRAM_FLAG, e)),
    }
}
