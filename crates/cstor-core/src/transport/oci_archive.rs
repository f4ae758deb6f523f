//! An OCI layout in a tar (`oci-archive:FILE[:NAME]`), as skopeo's oci-archive destination
//! writes it: `oci-layout`, `blobs/sha256/<hex>` and an `index.json` naming the one image by its
//! `org.opencontainers.image.ref.name`. The archive is written whole and replaces the file
//! (see [`super::archive_file`]).

use std::path::Path;

use crate::error::Result;
use crate::transport::archive_file::{ArchiveFile, MemberStyle};
use crate::transport::oci_layout::destination::{
    blob_name, empty_index, index_entry, BLOBS, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION,
};
use crate::transport::{
    BlobWriter, Descriptor, ImageDestination, ImageManifest, OCI_INDEX_TYPE, OCI_MANIFEST_TYPE,
};

/// An oci-archive being written.
pub struct OciArchiveDestination {
    archive: ArchiveFile,
    ref_name: Option<String>,
}

impl OciArchiveDestination {
    /// Starts the archive `path`, replaced when it exists, naming the image `ref_name` in it.
    pub fn create(path: &Path, ref_name: Option<&str>) -> Result<OciArchiveDestination> {
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let style = MemberStyle {
            file_mode: 0o644,
            mtime,
        };
        let mut archive = ArchiveFile::create(path, style)?;
        archive.add_dir("blobs/")?;
        archive.add_dir(&format!("{BLOBS}/"))?;
        archive.add(LAYOUT_FILE, LAYOUT_VERSION)?;
        Ok(OciArchiveDestination {
            archive,
            ref_name: ref_name.map(str::to_owned),
        })
    }
}

impl ImageDestination for OciArchiveDestination {
    fn accepts_manifest(&self, media_type: &str) -> bool {
        media_type == OCI_MANIFEST_TYPE || media_type == OCI_INDEX_TYPE
    }

    fn reuse_blob(&mut self, blob: &Descriptor, _elsewhere: &[String]) -> Result<bool> {
        Ok(self.archive.has(&blob_name(blob)))
    }

    fn new_blob(&mut self, _size: Option<u64>) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(self.archive.new_blob(blob_name)?))
    }

    fn commit(&mut self, manifest: &ImageManifest<'_>) -> Result<()> {
        let mut index = empty_index();
        index["manifests"] = vec![index_entry(manifest, self.ref_name.as_deref())].into();
        let archive = &mut self.archive;
        let descriptor = Descriptor {
            media_type: manifest.media_type.to_owned(),
            digest: manifest.digest.to_owned(),
            size: manifest.bytes.len() as u64,
        };
        if !archive.has(&blob_name(&descriptor)) {
            archive.add(&blob_name(&descriptor), manifest.bytes)?;
        }
        archive.add(INDEX_FILE, index.to_string().as_bytes())?;
        archive.commit()
    }
}
