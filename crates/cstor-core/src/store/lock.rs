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
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::error::{Error, IoContext, Result};

/// The size of the "last writer" token at the start of a lock file: containers/storage compares
/// these 64 bytes to learn whether another process changed the store since it last looked.
pub const TOKEN_BYTES: usize = 64;

/// A containers/storage lock file, shared by every user of it in this process.
#[derive(Clone)]
pub struct LockFile {
    shared: Arc<Shared>,
}

struct Shared {
    file: File,
    path: PathBuf,
    /// Whether `file` is open for writing, which `F_WRLCK` and the token need.
    writable: bool,
    /// Who in this process holds the kernel lock; threads wait on `changed` for their turn.
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
}

/// Holds the lock for reading until dropped.
pub struct ReadGuard {
    shared: Arc<Shared>,
}

/// Holds the lock for writing until dropped.
pub struct WriteGuard {
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
        match dir.symlink_metadata(name) {
            Ok(_) => Self::open_existing(dir, name).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(name, e)),
        }
    }

    /// Opens `name` beneath `dir` for writing, creating it (mode 0644, as containers/storage
    /// does) when the store has none yet.
    pub fn open_or_create(dir: &Dir, name: &Path) -> Result<LockFile> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .create(true)
            .mode(0o644)
            .follow(FollowSymlinks::No);
        match dir.open_with(name, &options) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(name, e)),
        }
        let lock = Self::open_existing(dir, name)?;
        if !lock.shared.writable {
            return Err(Error::io(
                name,
                std::io::Error::from_raw_os_error(libc::EACCES),
            ));
        }
        Ok(lock)
    }

    fn open_existing(dir: &Dir, name: &Path) -> Result<LockFile> {
        let meta = dir.symlink_metadata(name).at(name)?;
        if !meta.is_file() {
            return Err(Error::corrupt(name, "lock file is not a regular file"));
        }
        let key = (meta.dev(), meta.ino());
        let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            return Ok(LockFile { shared });
        }
        registry.retain(|_, shared| shared.strong_count() > 0);
        // Read-write when permitted, so one open file serves readers and writers alike; a
        // read-only store (or a reader without write permission) still gets shared locks.
        let mut options = OpenOptions::new();
        options.read(true).write(true).follow(FollowSymlinks::No);
        let (file, writable) = match dir.open_with(name, &options) {
            Ok(file) => (file, true),
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(libc::EROFS) =>
            {
                let mut options = OpenOptions::new();
                options.read(true).follow(FollowSymlinks::No);
                (dir.open_with(name, &options).at(name)?, false)
            }
            Err(e) => return Err(Error::io(name, e)),
        };
        let shared = Arc::new(Shared {
            file: file.into_std(),
            path: name.to_owned(),
            writable,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        registry.insert(key, Arc::downgrade(&shared));
        Ok(LockFile { shared })
    }

    /// Takes the lock for reading: shared with other readers, podman's included; waits while
    /// a writer holds it.
    pub fn read(&self) -> Result<ReadGuard> {
        let mut state = self.shared.wait_until(|s| !s.writer);
        if state.readers == 0 {
            fcntl_lock(&self.shared.file, libc::F_RDLCK).at(&self.shared.path)?;
        }
        state.readers += 1;
        Ok(ReadGuard {
            shared: self.shared.clone(),
        })
    }

    /// Takes the lock for writing, exclusive of every reader and writer in any process; waits
    /// until they are gone.
    pub fn write(&self) -> Result<WriteGuard> {
        if !self.shared.writable {
            return Err(Error::io(
                &self.shared.path,
                std::io::Error::from_raw_os_error(libc::EACCES),
            ));
        }
        let mut state = self.shared.wait_until(|s| !s.writer && s.readers == 0);
        fcntl_lock(&self.shared.file, libc::F_WRLCK).at(&self.shared.path)?;
        state.writer = true;
        Ok(WriteGuard {
            shared: self.shared.clone(),
        })
    }

    /// The last-writer token as it is now: compare two readings to learn whether anyone wrote
    /// in between. Read under the lock, as containers/storage does.
    pub fn token(&self) -> Result<[u8; TOKEN_BYTES]> {
        let mut token = [0u8; TOKEN_BYTES];
        let mut filled = 0;
        while filled < TOKEN_BYTES {
            match self
                .shared
                .file
                .read_at(&mut token[filled..], filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.shared.path, e)),
            }
        }
        Ok(token)
    }
}

impl WriteGuard {
    /// Records a write: a fresh last-writer token (UnixNano, a per-process counter, the pid and
    /// random bytes, laid out as containers/storage's `newLastWriterID`), so every other
    /// process — podman included — reloads the metadata it had cached.
    pub fn touch(&self) -> Result<()> {
        self.shared
            .file
            .write_all_at(&new_token(), 0)
            .at(&self.shared.path)
    }
}

/// A token no other writer has written: time, counter and pid tell writers apart on one machine,
/// the random tail across pid namespaces.
fn new_token() -> [u8; TOKEN_BYTES] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut token = [0u8; TOKEN_BYTES];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    token[0..8].copy_from_slice(&nanos.to_le_bytes());
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    token[8..16].copy_from_slice(&counter.to_le_bytes());
    token[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    crate::random::fill(&mut token[20..]);
    token
}

impl Shared {
    /// Waits until `ready` holds for the in-process state and returns it locked. A panic
    /// elsewhere while the state was held leaves it valid, so poisoning is ignored.
    fn wait_until(&self, ready: impl Fn(&State) -> bool) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !ready(&state) {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut state = self.shared.state();
        state.readers -= 1;
        if state.readers == 0 {
            // Unlocking a lock we hold cannot fail for any reason we could act on.
            let _ = fcntl_lock(&self.shared.file, libc::F_UNLCK);
            self.shared.changed.notify_all();
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        let _ = fcntl_lock(&self.shared.file, libc::F_UNLCK);
        state.writer = false;
        self.shared.changed.notify_all();
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
