//! The composefs EROFS reader (`cstor_core::content::erofs::reader::Image`) on a blob a hostile
//! store could hold in `composefs-data/composefs.blob`.
//!
//! Whatever the reader accepts is a tree — a root first, every other path's parent before it —
//! and anything it refuses is `ECORRUPT`; the writer (`erofs::writer`) writes such a tree or
//! refuses it with `EUNSUPPORTED`, and what it writes reads back. Never a panic, a hang or an
//! unbounded allocation.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use cstor_core::content::erofs::reader::Image;
use cstor_core::content::erofs::writer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let entries = match Image::new(data, Path::new("fuzz")).and_then(|image| image.entries()) {
        Ok(entries) => entries,
        Err(e) => {
            assert_eq!(e.code(), "ECORRUPT", "{e}");
            return;
        }
    };
    assert!(entries[0].path.is_empty());
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for entry in &entries {
        if let Some(slash) = entry.path.iter().rposition(|b| *b == b'/') {
            assert!(seen.contains(&entry.path[..slash]));
        }
        seen.insert(&entry.path);
    }
    match writer::write(&entries, 1) {
        Ok(image) => {
            let again = Image::new(&image, Path::new("fuzz")).and_then(|i| i.entries());
            assert!(again.is_ok(), "{:?}", again.err());
        }
        Err(e) => assert_eq!(e.code(), "EUNSUPPORTED", "{e}"),
    }
});
