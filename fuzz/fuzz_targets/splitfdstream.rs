//! The splitfdstream reader (`cstor_core::content::splitfdstream::Reader`) and `assemble`, on a stream a
//! hostile peer could send.
//!
//! Whatever the reader accepts must survive a round trip through the writer (the same bytes, the
//! same fd references), and assembling it with two content files must either write exactly the
//! inline bytes plus the named files' contents or fail with `ECORRUPT` (a chunk naming an fd
//! that was not given); anything the reader refuses must be `ECORRUPT`. Never a panic.
#![no_main]

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use cstor_core::content::splitfdstream::{assemble, Chunk, Reader, Writer};
use libfuzzer_sys::fuzz_target;

/// Contents of the content fds 1 and 2 given to `assemble`.
const CONTENT: [&[u8]; 2] = [b"first body", b""];

fuzz_target!(|data: &[u8]| {
    let shown = Path::new("fuzz");
    let chunks = match Reader::new(data, shown).collect::<Result<Vec<_>, _>>() {
        Ok(chunks) => joined(chunks),
        Err(e) => {
            assert_eq!(e.code(), "ECORRUPT", "{e}");
            return;
        }
    };

    let mut writer = Writer::new(Vec::new());
    for chunk in &chunks {
        match chunk {
            Chunk::Inline(bytes) => writer.inline(bytes).unwrap(),
            Chunk::Fd(k) => writer.fd(*k).unwrap(),
        }
    }
    let rewritten = writer.finish().unwrap();
    let again = Reader::new(&rewritten[..], shown)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(joined(again), chunks);

    let content: Vec<File> = CONTENT.iter().map(|bytes| memfd(bytes)).collect();
    let mut out = memfd(b"");
    let result = assemble(&memfd(data), &content, &mut out);
    let expected: Option<Vec<u8>> = chunks
        .iter()
        .map(|chunk| match chunk {
            Chunk::Inline(bytes) => Some(bytes.clone()),
            Chunk::Fd(k) => CONTENT.get(*k as usize - 1).map(|b| b.to_vec()),
        })
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.concat());
    match (result, expected) {
        (Ok(stats), Some(expected)) => {
            assert_eq!(stats.bytes, expected.len() as u64);
            assert_eq!(
                std::fs::read(format!("/proc/self/fd/{}", out.as_raw_fd())).unwrap(),
                expected
            );
        }
        (Err(e), None) => assert_eq!(e.code(), "ECORRUPT", "{e}"),
        (result, expected) => panic!("assemble gave {result:?}, expected {expected:?}"),
    }
});

/// Joins adjacent inline chunks: the writer joins them, a hostile stream need not.
fn joined(chunks: Vec<Chunk>) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for chunk in chunks {
        match (out.last_mut(), chunk) {
            (Some(Chunk::Inline(last)), Chunk::Inline(bytes)) => last.extend_from_slice(&bytes),
            (_, chunk) => out.push(chunk),
        }
    }
    out
}

/// An anonymous memory file holding `bytes`, positioned at its end (`assemble` must not care).
fn memfd(bytes: &[u8]) -> File {
    // SAFETY: memfd_create with a NUL-terminated name; the fd is checked and then owned.
    let fd = unsafe { libc::memfd_create(c"fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd owned by nothing else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes).unwrap();
    file
}
