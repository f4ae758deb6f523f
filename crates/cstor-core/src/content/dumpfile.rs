//! The composefs dumpfile: a tree as text, one line per path, which C `mkcomposefs --from-file`
//! turns into an image and `composefs-info dump` / `cfsctl oci dump` print.
//!
//! `PATH SIZE MODE NLINK UID GID RDEV MTIME PAYLOAD CONTENT DIGEST XATTR…`, fields separated by
//! one space; a path's second and later hardlinks are `PATH 0 @120000 - - - - 0.0 TARGET - -`.
//! Escapes as composefs-rs writes them (its `dumpfile.rs`, after C `composefs-info`): `\\`,
//! `\n`, `\r`, `\t` and `\xNN` for anything outside `!`..`~`; `-` stands for an empty field and
//! a lone `-` is written `\x2d`; in xattrs `=` is escaped too.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::content::erofs::{Data, Entry, S_IFDIR, S_IFLNK, S_IFMT};

/// Writes `entries` (in the order a dumpfile lists them: a directory, then its contents by name).
pub fn write(entries: &[Entry], out: &mut impl Write) -> io::Result<()> {
    let mut first_paths: HashMap<u64, &[u8]> = HashMap::new();
    let mut line = Vec::with_capacity(256);
    for entry in entries {
        line.clear();
        let inode = &entry.inode;
        let path = [b"/", &entry.path[..]].concat();
        escape(&mut line, &path, false);
        if inode.mode & S_IFMT != S_IFDIR {
            if let Some(target) = first_paths.get(&inode.nid) {
                line.extend_from_slice(b" 0 @120000 - - - - 0.0 ");
                escape(&mut line, &[b"/", *target].concat(), false);
                line.extend_from_slice(b" - -\n");
                out.write_all(&line)?;
                continue;
            }
            first_paths.insert(inode.nid, &entry.path);
        }
        let (payload, content, digest): (&[u8], &[u8], Option<&[u8]>) = match &inode.data {
            Data::Inline(target) if inode.mode & S_IFMT == S_IFLNK => (target, b"", None),
            Data::Inline(content) => (b"", content, None),
            Data::External { payload, verity } => (payload, b"", verity.as_deref()),
            Data::None => (b"", b"", None),
        };
        write!(
            line,
            " {} {:o} {} {} {} {} {}.{} ",
            inode.size,
            inode.mode,
            inode.nlink,
            inode.uid,
            inode.gid,
            inode.rdev,
            inode.mtime,
            inode.mtime_nsec
        )?;
        escape(&mut line, payload, false);
        line.push(b' ');
        escape(&mut line, content, false);
        line.push(b' ');
        match digest {
            Some(digest) => line.extend(digest.iter().flat_map(|b| hex_byte(*b))),
            None => line.push(b'-'),
        }
        for (name, value) in &inode.xattrs {
            line.push(b' ');
            escape_raw(&mut line, name, true);
            line.push(b'=');
            escape_raw(&mut line, value, true);
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

/// An optional field: `-` when empty, a lone `-` escaped.
fn escape(out: &mut Vec<u8>, bytes: &[u8], equals: bool) {
    match bytes {
        b"" => out.push(b'-'),
        b"-" => out.extend_from_slice(b"\\x2d"),
        _ => escape_raw(out, bytes, equals),
    }
}

fn escape_raw(out: &mut Vec<u8>, bytes: &[u8], equals: bool) {
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'=' if equals => out.extend_from_slice(b"\\x3d"),
            b'!'..=b'~' => out.push(b),
            _ => {
                out.extend_from_slice(b"\\x");
                out.extend(hex_byte(b));
            }
        }
    }
}

fn hex_byte(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]
}
