//! Progress of long work over an image's layers (extraction, copies), reported to a callback.

/// Where a long job over layers stands.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The layer being worked on (0 = base) and how many there are.
    pub layer: usize,
    pub layers: usize,
    /// Bytes done, out of the layers' recorded uncompressed sizes (which count tar headers too,
    /// so an extraction's content `bytes` ends somewhat below `total_bytes`).
    pub bytes: u64,
    pub total_bytes: u64,
}
