//! A layer's content: its tar rebuilt bit for bit from the tar-split and `diff/`, and what is
//! built on that tar — a `Read + Seek` view for tar parsers, tables of contents, comparisons,
//! the splitfdstream form — plus the forms a deletion and a compression take in a layer.

pub mod composefs;
pub mod compression;
pub mod dumpfile;
pub mod erofs;
pub mod export;
pub(crate) mod layer_tree;
pub mod parallel_gzip;
pub mod reader;
pub mod sparse;
pub mod splitfdstream;
pub mod splitstream;
pub mod tardiff;
pub mod tarsplit;
pub mod toc;
pub mod whiteout;
pub(crate) mod xattr;
