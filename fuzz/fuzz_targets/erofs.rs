//! The composefs EROFS reader (`cstor_core::content::erofs::reader::Image`) on a blob a hostile
//! store could hold in `composefs-data/composefs.blob`.
//!
//! Whatever the reader accepts is a tree — a root first, every other path's parent before it —
//! and anything it refuses is `ECORRUPT`. Never a panic, a hang or an unbounded allocation.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use cstor_core::content::erofs::reader::Image;
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
});
