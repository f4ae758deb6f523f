//! The docker-archive transport (`docker-archive:FILE[:NAME]`): the tar `docker save` and
//! `podman save` write — `manifest.json` naming a config file and one uncompressed tar per
//! layer. [`source`] reads one; [`destination`] writes one.

mod destination;
mod source;

pub use destination::DockerArchiveDestination;
pub use source::DockerArchive;
