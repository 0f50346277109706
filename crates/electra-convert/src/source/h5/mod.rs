//! A small, hardened, pure-Rust reader for the HDF5 subset that Keras 2
//! `save_weights` and transformers' `tf_model.h5` files use.
//!
//! Supported: superblock v0/v1 with 4- or 8-byte addresses; version-1 object headers with
//! continuation blocks; old-style groups (v1 B-tree type 0, SNOD, local heap); attribute
//! messages v1–v3 holding variable-length strings (global heap), fixed-length strings,
//! integers and floats; numeric little-endian datasets (f16/f32/f64, integers) with contiguous
//! or compact layout. Everything else is refused with [`Error::Unsupported`] naming the
//! [`Feature`] and the byte offset. Never-written datasets are refused ([`Feature::Unallocated`])
//! rather than zero-filled.
//!
//! Hardening: all offsets and lengths are checked against the file size before use, B-tree and
//! continuation cycles are detected, dataset sizes must fit in the file, metadata blocks are
//! capped, decoded strings are bounded by the file size, and no input makes the reader panic.
//!
//! ```
//! use electra_convert::source::h5::{keras_weights, H5File};
//!
//! # let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! let file = H5File::open(repo.join("fixtures/forms/h5_disc/tf_model.h5"))?;
//! let mut weights = 0;
//! for layer in keras_weights(&file)?.layers {
//!     for w in layer.weights {
//!         let bytes = file.read_dataset_bytes(&w.info)?;
//!         assert_eq!(bytes.len() as u64, w.info.data_len);
//!         weights += 1;
//!     }
//! }
//! assert_eq!(weights, 43); // the TFElectraForPreTraining fixture's weights
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attr;
mod error;
mod file;
mod gheap;
mod group;
mod header;
mod keras;
mod message;
mod source;
mod superblock;
#[cfg(test)]
mod tests;

pub use attr::{AttrValue, Attribute};
pub use error::{Error, Feature, H5Error, Result};
pub use file::{DatasetInfo, Dtype, Group, H5File, Member, MemberKind};
pub use header::ObjectKind;
pub use keras::{
    keras_weights, string_list_attr, KerasFormat, KerasLayer, KerasWeight, KerasWeights,
};

/// Largest single metadata block read into memory (object header block, heap, B-tree node).
pub const MAX_METADATA_BLOCK: u64 = 64 << 20;
/// Largest total size of one object header's messages, continuation blocks included.
pub const MAX_HEADER_BYTES: u64 = 64 << 20;
/// Most continuation blocks in one object header.
pub const MAX_HEADER_CHUNKS: usize = 4096;
/// Deepest group B-tree accepted (levels).
pub const MAX_BTREE_DEPTH: usize = 32;
/// Highest dataspace rank (HDF5's own limit).
pub const MAX_RANK: usize = 32;
/// Most components in a path.
pub const MAX_PATH_COMPONENTS: usize = 1024;
/// Total metadata bytes one open file may read: this factor × the file size ...
pub const METADATA_WORK_FACTOR: u64 = 32;
/// ... but at least this much.
pub const METADATA_WORK_MIN: u64 = 1 << 30;
/// Most split parts (`name0`, `name1`, ...) of a Keras list attribute.
pub const MAX_SPLIT_ATTRS: usize = 100_000;
