//! Crash-safe file replacement beneath the store root.
//!
//! Every metadata file cstor writes (`layers.json`, `images.json`, a tar-split, a big-data item)
//! goes to a temporary file in the same directory, is fsynced, renamed over the old name and the
//! directory fsynced: a reader — podman included — sees the old file or the new one, never a
//! part, and after a power cut the rename is durable. Temporary names start with `.tmp-` as
//! containers/storage's `AtomicWriteFile` names them; they only exist while their writer holds
//! the store's write lock, so a writer that finds one under the lock knows it is debris of a
//! killed process and removes it ([`remove_debris`]).

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::error::{Error, IoContext, Result};
use crate::random;

/// The prefix of temporary files, as containers/storage uses.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Replaces `name` in `dir` with `bytes` (file mode `mode`), atomically and durably.
pub fn write_file(dir: &Dir, name: &str, bytes: &[u8], mode: u32, shown: &Path) -> Result<()> {
    let temp = format!("{TEMP_PREFIX}{name}-{}", &random::hex_id()[..12]);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(mode);
    let result = (|| {
        let mut file = dir.open_with(&temp, &options)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        dir.rename(&temp, dir, name)
    })();
    if let Err(e) = result {
        let _ = dir.remove_file(&temp);
        return Err(Error::io(shown, e));
    }
    sync_dir(dir, shown)
}

/// Makes the entries of `dir` (a rename, a new file) durable.
pub fn sync_dir(dir: &Dir, shown: &Path) -> Result<()> {
    let handle = dir.open(".").at(shown)?;
    handle.sync_all().at(shown)
}

/// Removes the temporary files a killed writer left in `dir`. Call it only under the write lock
/// that guards `dir`, when no live writer can own one.
pub fn remove_debris(dir: &Dir, shown: &Path) -> Result<()> {
    for entry in dir.entries().at(shown)? {
        let entry = entry.at(shown)?;
        let name = entry.file_name();
        if is_temp(&name) {
            let is_dir = entry.file_type().at(shown)?.is_dir();
            let removed = if is_dir {
                dir.remove_dir_all(&name)
            } else {
                dir.remove_file(&name)
            };
            removed.at(shown.join(&name))?;
        }
    }
    Ok(())
}

fn is_temp(name: &OsStr) -> bool {
    name.as_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    #[test]
    fn replaces_whole_files_and_clears_debris() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        write_file(&dir, "images.json", b"[1]", 0o600, Path::new("x")).unwrap();
        write_file(&dir, "images.json", b"[2]", 0o600, Path::new("x")).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("images.json")).unwrap(),
            b"[2]"
        );
        std::fs::write(tmp.path().join(".tmp-images.json123"), b"half").unwrap();
        remove_debris(&dir, Path::new("x")).unwrap();
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("images.json")]);
    }
}
