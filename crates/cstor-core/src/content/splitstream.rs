//! composefs-rs's split streams (crate `composefs` 0.9.4, `splitstream_format.rs`): how a
//! composefs repository keeps an OCI layer's tar, an image's config and its manifest. A stream
//! is a sequence of chunks, each either inline bytes or a content object named by its fs-verity
//! digest, plus named references to other streams (a manifest names its config and layers, a
//! config its layers and its EROFS image). cstor writes them byte for byte as composefs-rs does,
//! so `cfsctl` reads what cstor put in a repository and both agree on every object's digest.
//!
//! The file: a 32-byte header (magic, version 0, the fs-verity algorithm and log2 block size,
//! where the info section lies), an 80-byte info section (where each part lies, a content type,
//! the stream's size once reassembled), then the stream references and object references as
//! flat arrays of digests, the named references (`INDEX:NAME\0`, sorted by name) and the chunks
//! (a little-endian i64: negative, that many inline bytes follow; else an index into the object
//! references), both zstd-compressed at zstd's default level as composefs-rs compresses them.

use std::collections::BTreeMap;
use std::io::Write;

use crate::digest::fsverity::Algorithm;

/// What a stream holds (`content_type`: eight ASCII bytes read as a little-endian u64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// An OCI layer's tar.
    OciLayer,
    /// An OCI image config.
    OciConfig,
    /// An OCI image manifest.
    OciManifest,
}

impl ContentType {
    fn magic(self) -> u64 {
        u64::from_le_bytes(*match self {
            ContentType::OciLayer => b"ocilayer",
            ContentType::OciConfig => b"ociconfg",
            ContentType::OciManifest => b"ocimanif",
        })
    }
}

const MAGIC: &[u8; 11] = b"SplitStream";
/// log2 of the fs-verity block size every object is measured with (4 KiB).
const LG_BLOCKSIZE: u8 = 12;
const HEADER_SIZE: u64 = 32;
const INFO_SIZE: u64 = 80;

/// A split stream being put together; [`SplitStream::finish`] gives the file's bytes, stored in
/// the repository as an object like any other.
#[derive(Debug)]
pub struct SplitStream {
    algorithm: Algorithm,
    content_type: ContentType,
    stream_refs: Vec<Vec<u8>>,
    object_refs: Vec<Vec<u8>>,
    named_refs: BTreeMap<String, usize>,
    /// The chunks, uncompressed.
    chunks: Vec<u8>,
    /// Inline bytes not yet written as a chunk: consecutive inline writes make one chunk.
    inline: Vec<u8>,
    size: u64,
}

/// The index of `digest` in `refs`, added at the end when new (first appearance decides the
/// order, as composefs-rs orders them).
fn index_of(refs: &mut Vec<Vec<u8>>, digest: &[u8]) -> usize {
    match refs.iter().position(|r| r == digest) {
        Some(index) => index,
        None => {
            refs.push(digest.to_vec());
            refs.len() - 1
        }
    }
}

impl SplitStream {
    pub fn new(algorithm: Algorithm, content_type: ContentType) -> SplitStream {
        SplitStream {
            algorithm,
            content_type,
            stream_refs: Vec::new(),
            object_refs: Vec::new(),
            named_refs: BTreeMap::new(),
            chunks: Vec::new(),
            inline: Vec::new(),
            size: 0,
        }
    }

    /// Bytes kept in the stream itself.
    pub fn write_inline(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.inline.extend_from_slice(bytes);
    }

    /// `size` bytes kept as the object `digest`.
    pub fn write_object(&mut self, digest: &[u8], size: u64) {
        self.flush_inline();
        self.size += size;
        let index = index_of(&mut self.object_refs, digest) as i64;
        self.chunks.extend_from_slice(&index.to_le_bytes());
    }

    /// Names the stream `digest` (a config's layer, a manifest's config, a config's image).
    pub fn add_named_stream(&mut self, name: &str, digest: &[u8]) {
        let index = index_of(&mut self.stream_refs, digest);
        self.named_refs.insert(name.to_owned(), index);
    }

    fn flush_inline(&mut self) {
        if !self.inline.is_empty() {
            let length = -(self.inline.len() as i64);
            self.chunks.extend_from_slice(&length.to_le_bytes());
            self.chunks.append(&mut self.inline);
        }
    }

    /// The split stream file.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush_inline();
        let mut names = Vec::new();
        for (name, index) in &self.named_refs {
            names.extend_from_slice(format!("{index}:{name}\0").as_bytes());
        }
        let named = compress(&names);
        let chunks = compress(&self.chunks);
        let stream_refs: Vec<u8> = self.stream_refs.concat();
        let object_refs: Vec<u8> = self.object_refs.concat();

        let stream_refs_start = HEADER_SIZE + INFO_SIZE;
        let object_refs_start = stream_refs_start + stream_refs.len() as u64;
        let named_start = object_refs_start + object_refs.len() as u64;
        let chunks_start = named_start + named.len() as u64;
        let chunks_end = chunks_start + chunks.len() as u64;

        let mut file = Vec::with_capacity(chunks_end as usize);
        file.extend_from_slice(MAGIC);
        file.push(0); // version
        file.extend_from_slice(&0u16.to_le_bytes()); // flags
        file.push(match self.algorithm {
            Algorithm::Sha256 => 1,
            Algorithm::Sha512 => 2,
        });
        file.push(LG_BLOCKSIZE);
        let ranges = [
            (HEADER_SIZE, HEADER_SIZE + INFO_SIZE),
            (stream_refs_start, object_refs_start),
            (object_refs_start, named_start),
            (chunks_start, chunks_end),
            (named_start, chunks_start),
        ];
        for (start, end) in ranges {
            file.extend_from_slice(&start.to_le_bytes());
            file.extend_from_slice(&end.to_le_bytes());
        }
        file.extend_from_slice(&self.content_type.magic().to_le_bytes());
        file.extend_from_slice(&self.size.to_le_bytes());
        file.extend_from_slice(&stream_refs);
        file.extend_from_slice(&object_refs);
        file.extend_from_slice(&named);
        file.extend_from_slice(&chunks);
        file
    }
}

/// zstd at its default level through the streaming encoder (a frame without a content size),
/// as composefs-rs compresses: the same bytes, so the same object digests.
fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 0)
        .expect("a zstd encoder into memory cannot fail");
    encoder
        .write_all(bytes)
        .expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::fsverity::Hasher;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn digest(bytes: &[u8]) -> String {
        let mut hasher = Hasher::new(Algorithm::Sha512);
        hasher.update(bytes);
        hasher.finish().iter().map(|b| format!("{b:02x}")).collect()
    }

    // Digests from the repository `cfsctl` 0.9.4 made with `cfsctl init --insecure` and
    // `cfsctl oci pull containers-storage:localhost/base:1 --local-fetch auto` (the fixture
    // store's one-layer image): the config JSON, the layer stream, the EROFS image, and the
    // config and manifest streams cfsctl wrote from them.
    const CONFIG_JSON: &str = "142c496f459e68b3b3b9c834a2c951fefdad1b1a12a69376f45d79c4394a60260a82eecef751592b51520c3fdfd8f7f8b086a63cda68ce6f6b88c1f49bb95132";
    const MANIFEST_JSON: &str = "2b05d2f9ba32282e7e05e13f9669886d0b377ad0b87bd87c902b1f563288b89374583045cf20198998549a3f3aca75c53ceef8dbbae2c3834b538c53399c30b6";
    const LAYER_STREAM: &str = "6319e0f421f4ff51674eb7f0ccfe2d473836aae389652db38e61aaca01291003b1dc910dc7e62b26af27273d5ba758ca936987f4befc2b3a30e1c66b3220fd77";
    const IMAGE: &str = "7ab1fda36f67ac7a52711da42577f320372a2297c517e2ba4c861224ac6eddd1ce6d1398d666d16c8d69f7b287a471dcbd467987b80f0511720d259f57de8345";
    const CONFIG_STREAM: &str = "c033920c4145e9933ae9bd6e2730b4a8460ede778cd9980fcafe48f428e60a85a174a71d82743040e26648f773ed03203c4d52e1f2067b3f7a01c23dc65d4797";
    const MANIFEST_STREAM: &str = "333f1675e4e7e7514b8fea3fd0dc36d55068346a28e240593101772aa759bde2efccbab76e9fbc231bd3bd40fb109a595dc1fa4fc300300162e565417c84ee6f";
    const DIFF_ID: &str = "sha256:9a71957af2832452304de868256518d47687411b1a05bc74df9cdc0645648949";
    const CONFIG_DIGEST: &str =
        "sha256:9247964235a000059fc45afc56182c65227411e95c1d331c92a407721d0b535d";

    fn config_stream() -> Vec<u8> {
        let mut stream = SplitStream::new(Algorithm::Sha512, ContentType::OciConfig);
        stream.add_named_stream(DIFF_ID, &unhex(LAYER_STREAM));
        stream.add_named_stream("composefs.image.v1", &unhex(IMAGE));
        stream.write_object(&unhex(CONFIG_JSON), 409);
        stream.finish()
    }

    #[test]
    fn config_stream_is_the_one_cfsctl_writes() {
        assert_eq!(digest(&config_stream()), CONFIG_STREAM);
    }

    #[test]
    fn manifest_stream_is_the_one_cfsctl_writes() {
        let mut stream = SplitStream::new(Algorithm::Sha512, ContentType::OciManifest);
        stream.add_named_stream(&format!("config:{CONFIG_DIGEST}"), &unhex(CONFIG_STREAM));
        stream.add_named_stream(DIFF_ID, &unhex(LAYER_STREAM));
        stream.write_object(&unhex(MANIFEST_JSON), 343);
        assert_eq!(digest(&stream.finish()), MANIFEST_STREAM);
    }

    #[test]
    fn inline_writes_make_one_chunk_and_objects_are_referenced_once() {
        let mut stream = SplitStream::new(Algorithm::Sha256, ContentType::OciLayer);
        stream.write_inline(b"head");
        stream.write_inline(b"er");
        stream.write_object(&[1; 32], 5000);
        stream.write_object(&[1; 32], 5000);
        stream.write_inline(b"pad");
        let file = stream.finish();
        assert_eq!(&file[..11], MAGIC);
        assert_eq!(file[14], 1);
        // one object reference, the stream's size reassembled
        let object_refs = u64::from_le_bytes(file[56..64].try_into().unwrap())
            - u64::from_le_bytes(file[48..56].try_into().unwrap());
        assert_eq!(object_refs, 32);
        assert_eq!(
            u64::from_le_bytes(file[104..112].try_into().unwrap()),
            10009
        );
        let start = u64::from_le_bytes(file[64..72].try_into().unwrap()) as usize;
        let chunks = zstd::stream::decode_all(&file[start..]).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&(-6i64).to_le_bytes());
        expected.extend_from_slice(b"header");
        expected.extend_from_slice(&0i64.to_le_bytes());
        expected.extend_from_slice(&0i64.to_le_bytes());
        expected.extend_from_slice(&(-3i64).to_le_bytes());
        expected.extend_from_slice(b"pad");
        assert_eq!(chunks, expected);
    }
}
