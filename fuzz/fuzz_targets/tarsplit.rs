//! The tar-split decoder (`cstor_core::content::tarsplit::Decoder`) on what a hostile store could put in
//! `overlay-layers/<id>.tar-split.gz`.
//!
//! The first input byte picks the form: even, the rest is the NDJSON text, wrapped here in gzip
//! (stored blocks: a compressor's state costs more than the decoding) so that mutations land on
//! the JSON lines where the decoder's own rules are; odd, the rest is the gzip file itself. Either way the decoder must yield entries and then end, or stop with `ECORRUPT`:
//! never panic, loop or allocate without bound.
#![no_main]

use cstor_core::content::tarsplit::{Decoder, Entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let gzipped;
    let input = if form & 1 == 0 {
        gzipped = gzip_stored(rest);
        &gzipped[..]
    } else {
        rest
    };
    for entry in Decoder::new(input, "fuzz.tar-split.gz") {
        match entry {
            Ok(Entry::File { size, crc, .. }) => assert!(size == 0 || crc.is_some()),
            Ok(Entry::Segment(_)) => {}
            Err(e) => {
                assert_eq!(e.code(), "ECORRUPT", "{e}");
                break;
            }
        }
    }
});

/// `bytes` as a gzip member of uncompressed (stored) deflate blocks (RFC 1951 3.2.4, RFC 1952).
fn gzip_stored(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = bytes.chunks(u16::MAX as usize).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let len = block.len() as u16;
        out.push(u8::from(blocks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}
