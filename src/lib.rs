//! electra-convert: ELECTRA TensorFlow checkpoints to HuggingFace model directories, with parity proof.
//!
//! The pipeline flows one way: [`checkpoint`] reads TF V2 bundles, [`mapping`] names every
//! variable's HuggingFace destination, [`write`](mod@write) streams a model directory to disk, [`verify`]
//! runs the forward pass in candle, and [`batch`] drives many conversions. [`convert()`] is the
//! one entry point that runs a whole conversion, configured by [`ConvertOptions`]. [`cli`] and
//! [`commands`] sit on top; nothing below them imports them. docs/architecture.md has the map.

pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod convert;
pub mod exit;
pub mod mapping;
pub mod options;
pub mod verify;
pub mod write;

pub use convert::{convert, ConvertError, ConvertOutcome, ConvertedModel, NoProgress, Progress};
pub use options::{ConvertOptions, ModelKind, OutputDtype};
