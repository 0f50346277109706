//! electra-convert: ELECTRA TensorFlow checkpoints to HuggingFace model directories, with parity proof.
//!
//! The pipeline flows one way: [`checkpoint`] reads TF V2 bundles, [`mapping`] names every
//! variable's HuggingFace destination, [`write`] streams a model directory to disk, [`verify`]
//! runs the forward pass in candle, and [`batch`] drives many conversions. [`export`] runs the
//! other way: HuggingFace directories (or a released checkpoint) to a pretraining checkpoint. [`cli`] and
//! [`commands`] sit on top.

pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod export;
pub mod mapping;
pub mod verify;
pub mod write;
