//! electra-convert: ELECTRA TensorFlow checkpoints to HuggingFace model directories, with parity proof.
//!
//! The pipeline flows one way: the [`tf_checkpoint`] crate reads TF V2 bundles, [`mapping`] names
//! every variable's HuggingFace destination, [`write`](mod@write) streams a model directory to
//! disk, [`verify`] runs the forward pass in candle, and [`batch`] drives many conversions.
//! [`convert()`] is the one entry point that runs a whole conversion, configured by
//! [`ConvertOptions`]; [`export()`] runs the other way (HuggingFace directories or a released
//! checkpoint to a pretraining checkpoint), configured by [`ExportOptions`].
//!
//! The library never prints, exits or installs signal handlers: progress reaches the caller
//! through [`Progress`], failures as typed errors, and a caller that wants interrupted runs
//! cleaned up calls [`write::remove_staged_outputs`] from its own handler. docs/architecture.md
//! has the map.

pub mod batch;
pub mod convert;
pub mod export;
pub mod kernels;
pub mod mapping;
pub mod options;
pub mod source;
pub mod verify;
pub mod write;

pub use convert::{
    convert, ConvertError, ConvertOutcome, ConvertedModel, FetchTotals, NoProgress, Progress,
    Uploaded,
};
pub use export::{export, AdamSlots, ExportError, ExportOptions, ExportOutcome, ExportSource};
pub use options::{ConvertOptions, ModelKind, OutputDtype};
