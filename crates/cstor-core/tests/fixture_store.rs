//! The core on the fixture stores that podman and skopeo build (`__test__/fixtures/build-stores.sh`):
//! podman 4.3's (`main`, `extra`) and podman 5.8's (`podman5`, with zstd:chunked layers pulled
//! partially).

use std::path::PathBuf;
use std::process::Command;

use cstor_core::content::export::ExportOptions;
use cstor_core::verify::{Kind, VerifyOptions};
use cstor_core::{Store, StoreOptions};

/// The stores podman 4.3 and podman 5.8 wrote with the same images.
const BY_PODMAN: [&str; 2] = ["main", "podman5"];

fn fixtures() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new("bash")
        .arg(repo.join("__test__/fixtures/build-stores.sh"))
        .status()
        .expect("the fixture builder runs");
    assert!(status.success(), "building the fixture stores failed");
    std::env::var_os("CSTOR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".fixtures"))
}

fn open(store: &str) -> Store {
    Store::open(StoreOptions {
        graph_root: fixtures().join(store).join("root"),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn every_layer_chain_agrees_with_its_overlay_lower_file() {
    for name in BY_PODMAN {
        every_layer_chain_agrees_with_its_overlay_lower_file_in(name);
    }
}

fn every_layer_chain_agrees_with_its_overlay_lower_file_in(name: &str) {
    let store = open(name);
    let layers = store.layers().unwrap();
    assert!(layers.len() > 55);
    for layer in &layers {
        let parents: Vec<String> = store.layer_chain(layer.id()).unwrap()[1..]
            .iter()
            .map(|l| l.id().to_owned())
            .collect();
        let lower: Vec<String> = store
            .lower_chain(layer.id())
            .unwrap()
            .iter()
            .map(|l| l.id().to_owned())
            .collect();
        assert_eq!(parents, lower, "layer {}", layer.id());
        let link = store
            .layer_link(layer)
            .unwrap()
            .expect("every layer has a link");
        assert_eq!(store.resolve_link(&link).unwrap().id(), layer.id());
    }
}

#[test]
fn images_resolve_and_read_their_config_through_the_manifest() {
    for name in BY_PODMAN {
        images_resolve_and_read_their_config_through_the_manifest_in(name);
    }
}

fn images_resolve_and_read_their_config_through_the_manifest_in(name: &str) {
    let store = open(name);
    let app = store.image("app").unwrap();
    assert!(app.record.names.contains(&"localhost/app:v1.0".to_owned()));
    let details = store.inspect_image(&app).unwrap();
    assert_eq!(details.platform.os, "linux");
    let diff_ids: Vec<&str> = details.config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let layer_digests: Vec<&str> = details
        .layers
        .iter()
        .rev()
        .map(|l| l.record.diff_digest.as_deref().unwrap())
        .collect();
    assert_eq!(diff_ids, layer_digests);
    let chain = store.image("localhost/chain:55").unwrap();
    assert_eq!(store.image_layers(&chain).unwrap().len(), 55);
}

#[test]
fn a_vfs_store_is_unsupported() {
    let err = Store::open(StoreOptions {
        graph_root: fixtures().join("vfs/root"),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.code(), "EUNSUPPORTED");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn export_to_vec(store: &Store, layer: &cstor_core::Layer, verify: bool) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().unwrap();
    let stats = store
        .export_layer(layer, &mut out, ExportOptions { verify })
        .unwrap();
    let mut bytes = Vec::new();
    out.rewind().unwrap();
    out.read_to_end(&mut bytes).unwrap();
    assert_eq!(stats.bytes, bytes.len() as u64);
    bytes
}

#[test]
fn every_layer_exports_to_its_diff_digest_verified_or_not() {
    for name in BY_PODMAN {
        every_layer_exports_to_its_diff_digest_verified_or_not_in(name);
    }
}

fn every_layer_exports_to_its_diff_digest_verified_or_not_in(name: &str) {
    let store = open(name);
    for layer in store.layers().unwrap() {
        let expected = layer.record.diff_digest.clone().unwrap();
        for verify in [true, false] {
            let tar = export_to_vec(&store, &layer, verify);
            assert_eq!(
                format!("sha256:{}", sha256_hex(&tar)),
                expected,
                "layer {} verify={verify}",
                layer.id()
            );
            assert_eq!(tar.len() as i64, layer.record.diff_size.unwrap());
        }
    }
}

#[test]
fn the_fixture_stores_verify_clean_full_or_quick() {
    for name in ["main", "extra", "podman5"] {
        let store = open(name);
        let layers = store.layers().unwrap();
        for quick in [false, true] {
            let mut reports = 0;
            let report = store
                .verify(None, VerifyOptions { quick }, &mut |_| reports += 1)
                .unwrap();
            // Only podman 5's partial pulls leave notes: mtimes and fifos it does not restore.
            let (notes, others): (Vec<_>, Vec<_>) = report
                .findings
                .iter()
                .partition(|f| f.kind == Kind::LayerMetadataUnrestored);
            assert_eq!(others, Vec::<&_>::new(), "store {name}");
            assert_eq!(notes.is_empty(), name != "podman5", "store {name}");
            assert_eq!(report.layers, layers.len());
            assert_eq!(reports, layers.len() + 1);
            let sizes: i64 = layers.iter().map(|l| l.record.diff_size.unwrap()).sum();
            assert_eq!(report.bytes as i64, if quick { 0 } else { sizes });
        }
    }
}

#[test]
fn every_layers_metadata_matches_its_tar_headers() {
    for name in BY_PODMAN {
        let store = open(name);
        for layer in store.layers().unwrap() {
            let differences = store.compare_layer_metadata(&layer).unwrap();
            let partial = layer.record.toc_digest.is_some();
            assert!(
                differences.iter().all(|d| partial && d.unrestored),
                "store {name}, layer {}: {differences:?}",
                layer.id()
            );
        }
    }
}

/// The store as a source: the stored manifest where its blobs are the layer tars (every fixture
/// image's), the config byte for byte, layers as their uncompressed tars under their diff
/// digests; for other blobs a new OCI manifest, the same bytes every time.
#[test]
fn the_store_serves_an_image_s_blobs_and_manifests() {
    use cstor_core::digest::sha256;
    use cstor_core::transport::store_source::StoreSource;
    use cstor_core::transport::{Descriptor, ImageSource};
    use std::io::Read;

    fn read(source: &mut dyn ImageSource, digest: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut blob = source.blob(digest).unwrap();
        blob.read_to_end(&mut bytes).unwrap();
        bytes
    }

    let store = open("main");
    for name in ["localhost/app:1", "quay.io/cstor/formats:1"] {
        let image = store.image(name).unwrap();
        let mut source = StoreSource::open(&store, &image).unwrap();
        let manifest = source.manifest().unwrap();
        assert_eq!(Some(sha256(&manifest)), image.record.digest, "{name}");
        let config = source.config_descriptor();
        assert_eq!(config.digest, format!("sha256:{}", image.id()));
        assert_eq!(sha256(&read(&mut source, &config.digest)), config.digest);
        let layers: Vec<Descriptor> = source
            .layers()
            .iter()
            .map(StoreSource::layer_descriptor)
            .collect();
        for layer in &layers {
            let tar = read(&mut source, &layer.digest);
            assert_eq!(
                (sha256(&tar), tar.len() as u64),
                (layer.digest.clone(), layer.size)
            );
        }
        let compressed: Vec<Descriptor> = layers
            .iter()
            .map(|l| Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                digest: sha256(l.digest.as_bytes()),
                size: 1,
            })
            .collect();
        let (new, media_type) = source.manifest_for(&compressed, &|_| true);
        assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(source.manifest_for(&compressed, &|_| true).0, new);
        assert_ne!(new, manifest);
        let (refused, _) = source.manifest_for(&layers, &|_| false);
        assert_ne!(refused, manifest);
    }
}

/// Every composefs blob podman 5.8 wrote (through C `mkcomposefs`), read and written again,
/// gives the same bytes: the writer makes the layout decisions C makes.
#[test]
fn every_composefs_blob_podman_wrote_reads_and_rewrites_to_the_same_bytes() {
    use cstor_core::content::erofs::{reader::Image, writer};
    let overlay = fixtures().join("podman5-composefs/root/overlay");
    let mut blobs = 0;
    for dir in std::fs::read_dir(&overlay).unwrap() {
        let blob = dir.unwrap().path().join("composefs-data/composefs.blob");
        let Ok(bytes) = std::fs::read(&blob) else {
            continue;
        };
        let image = Image::new(&bytes, &blob).unwrap();
        let entries = image.entries().unwrap();
        let written = writer::write(&entries, image.composefs_version).unwrap();
        assert!(written == bytes, "{}", blob.display());
        blobs += 1;
    }
    assert_eq!(blobs, 3);
}
