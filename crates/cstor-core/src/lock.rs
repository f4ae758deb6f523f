//! The lock files containers/storage guards its metadata with.
//!
//! podman takes POSIX record locks (`fcntl(F_SETLKW)`, whole file, `F_RDLCK` to read and
//! `F_WRLCK` to write) on `overlay-layers/layers.lock`, `overlay-images/images.lock` and friends
//! (see FORMAT.md, "Locks"). cstor takes the very same locks so a concurrent podman write is never
//! half-read.
//!
//! POSIX record locks belong to the *process*, not the fd: a second `open` + `close` of the same
//! file in this process silently drops every lock the process holds on it, and two threads never
//! block each other. So each lock file is opened once per process — a registry keyed by device and
//! inode hands every user the same open file while any user exists — and a counted in-process
//! state decides when the kernel lock is taken and released. The file is closed when its last
//! user is gone, when this process can hold no lock on it, so a closed store leaves no descriptor
//! behind (its filesystem can be unmounted).

use cap_std::fs::MetadataExt;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

use crate::error::{Error, IoContext, Result};

/// A containers/storage lock file, shared by every user of it in this process.
#[derive(Clone)]
pub struct LockFile {
    shared: Arc<Shared>,
}

struct Shared {
    file: File,
    path: PathBuf,
    /// How many guards in this process hold the kernel read lock.
    readers: Mutex<usize>,
}

/// Holds the lock for reading until dropped.
pub struct ReadGuard {
    shared: Arc<Shared>,
}

type Registry = Mutex<HashMap<(u64, u64), Weak<Shared>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl LockFile {
    /// Opens `name` beneath `dir`, or returns `None` when the store has no such lock file (an
    /// additional image store on read-only media, or a store no one has written yet): there is
    /// then no writer to exclude.
    pub fn open(dir: &Dir, name: &Path) -> Result<Option<LockFile>> {
        let meta = match dir.symlink_metadata(name) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(name, e)),
        };
        if !meta.is_file() {
            return Err(Error::corrupt(name, "lock file is not a regular file"));
        }
        let key = (meta.dev(), meta.ino());
        let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            return Ok(Some(LockFile { shared }));
        }
        registry.retain(|_, shared| shared.strong_count() > 0);
        let mut options = OpenOptions::new();
        options.read(true).follow(FollowSymlinks::No);
        let file = dir.open_with(name, &options).at(name)?.into_std();
        let shared = Arc::new(Shared {
            file,
            path: name.to_owned(),
            readers: Mutex::new(0),
        });
        registry.insert(key, Arc::downgrade(&shared));
        Ok(Some(LockFile { shared }))
    }

    /// Takes the lock for reading: shared with other readers, podman's included; waits while
    /// a writer holds it.
    pub fn read(&self) -> Result<ReadGuard> {
        let mut readers = self.shared.readers();
        if *readers == 0 {
            fcntl_lock(&self.shared.file, libc::F_RDLCK).at(&self.shared.path)?;
        }
        *readers += 1;
        Ok(ReadGuard {
            shared: self.shared.clone(),
        })
    }
}

impl Shared {
    /// The reader count; a panic elsewhere while it was held leaves it valid, so poisoning is
    /// ignored.
    fn readers(&self) -> std::sync::MutexGuard<'_, usize> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes the lock file `name` beneath `dir` for reading, if the store has one (see
/// [`LockFile::open`]).
pub fn read_lock(dir: &Dir, name: &Path) -> Result<Option<ReadGuard>> {
    LockFile::open(dir, name)?
        .map(|lock| lock.read())
        .transpose()
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut readers = self.shared.readers();
        *readers -= 1;
        if *readers == 0 {
            // Unlocking a lock we hold cannot fail for any reason we could act on.
            let _ = fcntl_lock(&self.shared.file, libc::F_UNLCK);
        }
    }
}

/// `fcntl(F_SETLKW)` over the whole file, retried on `EINTR`.
fn fcntl_lock(file: &File, kind: libc::c_int) -> std::io::Result<()> {
    // SAFETY: an all-zero `flock` is a valid value; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    loop {
        // SAFETY: the fd is open for the life of `file` and `lock` is a valid `flock`.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &lock) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;
    use std::process::Command;

    /// Asks a separate process (flock(1) cannot test fcntl locks, so python's fcntl.lockf, which
    /// is fcntl F_SETLK underneath) whether it could take a write lock right now.
    fn other_process_can_write_lock(path: &Path) -> bool {
        let script = "import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n print('free')\nexcept OSError:\n print('held')\n";
        let out = Command::new("python3")
            .args(["-c", script, path.to_str().unwrap()])
            .output()
            .expect("python3 runs");
        String::from_utf8_lossy(&out.stdout).trim() == "free"
    }

    #[test]
    fn read_lock_is_visible_to_other_processes_and_released_by_the_last_reader() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("layers.lock"), b"").unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let lock = LockFile::open(&dir, Path::new("layers.lock"))
            .unwrap()
            .unwrap();
        let again = LockFile::open(&dir, Path::new("layers.lock"))
            .unwrap()
            .unwrap();
        let first = lock.read().unwrap();
        let second = again.read().unwrap();
        let path = tmp.path().join("layers.lock");
        assert!(!other_process_can_write_lock(&path));
        drop(first);
        assert!(!other_process_can_write_lock(&path), "one reader remains");
        drop(second);
        assert!(other_process_can_write_lock(&path));
    }

    #[test]
    fn a_missing_lock_file_means_no_lock_and_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("images.lock")).unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        assert!(LockFile::open(&dir, Path::new("layers.lock"))
            .unwrap()
            .is_none());
        let err = LockFile::open(&dir, Path::new("images.lock"))
            .err()
            .unwrap();
        assert_eq!(err.code(), "ECORRUPT");
    }
}
