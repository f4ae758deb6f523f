//! The OCI image layout transport (`oci:DIR[:REF]`): `oci-layout`, `index.json` and
//! content-addressed `blobs/sha256/<hex>`, as skopeo reads and writes them.

pub(crate) mod destination;
mod source;

pub use destination::OciLayoutDestination;
pub use source::OciLayout;
