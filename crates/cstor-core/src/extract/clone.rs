//! Copying a file's content the cheapest way the filesystems allow.
//!
//! A reflink (`FICLONE`) shares the source's extents: instant, and no extra space until either
//! side is written — the point of extracting on btrfs or XFS with `reflink=1`. Elsewhere
//! `copy_file_range` copies inside the kernel; a `read`/`write` loop is the last resort (other
//! filesystems, old kernels).
//!
//! `copy_file_range` itself shares extents where it can (the kernel tries a remap first within
//! one btrfs or XFS filesystem), so when reflinks are refused the kernel copy is `sendfile`,
//! which always writes blocks of its own.

use std::fs::File;
use std::io::{Read, Write};

use rustix::fs::{copy_file_range, ioctl_ficlone, sendfile};
use rustix::io::Errno;

/// How a file's content got to its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    Reflink,
    KernelCopy,
    UserCopy,
}

/// The methods still worth trying: one refused for a pair of filesystems stays refused, so the
/// next file goes straight to the one that worked.
#[derive(Debug, Clone, Copy)]
pub struct Cloner {
    /// Sharing extents is allowed (`FICLONE`, and `copy_file_range`, which may share too).
    share: bool,
    reflink: bool,
    kernel_copy: bool,
}

/// Errors meaning "not between these files", as opposed to a real I/O failure.
fn unsupported(e: Errno) -> bool {
    matches!(
        e,
        Errno::XDEV | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS | Errno::NOTTY | Errno::PERM
    )
}

impl Cloner {
    pub fn new(allow_reflink: bool) -> Self {
        Cloner {
            share: allow_reflink,
            reflink: allow_reflink,
            kernel_copy: true,
        }
    }

    /// Gives `dst` (empty, open for writing) the `len` bytes of `src`.
    pub fn copy(
        &mut self,
        src: &mut File,
        dst: &mut File,
        len: u64,
    ) -> std::io::Result<CopyMethod> {
        if self.reflink {
            match ioctl_ficlone(&*dst, &*src) {
                Ok(()) => return Ok(CopyMethod::Reflink),
                Err(e) if unsupported(e) => self.reflink = false,
                Err(e) => return Err(e.into()),
            }
        }
        if self.kernel_copy {
            let mut done = 0;
            while done < len {
                let want = (len - done) as usize;
                let moved = if self.share {
                    copy_file_range(&*src, None, &*dst, None, want)
                } else {
                    sendfile(&*dst, &*src, None, want)
                };
                match moved {
                    Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => done += n as u64,
                    Err(Errno::INTR) => {}
                    // Refused before any byte moved: the file positions are untouched.
                    Err(e) if done == 0 && unsupported(e) => {
                        self.kernel_copy = false;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if done == len {
                return Ok(CopyMethod::KernelCopy);
            }
        }
        let copied = std::io::copy(&mut src.take(len), dst)?;
        if copied != len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        dst.flush()?;
        Ok(CopyMethod::UserCopy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    #[test]
    fn copies_content_whatever_the_method() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("src"), &content).unwrap();
        for allow_reflink in [true, false] {
            let mut src = File::open(dir.path().join("src")).unwrap();
            let dst_path = dir.path().join(format!("dst-{allow_reflink}"));
            let mut dst = File::create(&dst_path).unwrap();
            let method = Cloner::new(allow_reflink)
                .copy(&mut src, &mut dst, content.len() as u64)
                .unwrap();
            if !allow_reflink {
                assert_ne!(method, CopyMethod::Reflink);
            }
            dst.seek(SeekFrom::Start(0)).unwrap();
            assert_eq!(std::fs::read(&dst_path).unwrap(), content);
        }
    }
}
