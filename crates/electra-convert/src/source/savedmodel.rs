//! TensorFlow SavedModels (TF Hub / Kaggle, Model Garden's `export_tfhub --export_type=model`):
//! a directory with `saved_model.pb` and the weights in `variables/variables.{index,data-*}`,
//! an ordinary object-based V2 bundle whose keys are positional
//! (`variables/K/.ATTRIBUTES/VARIABLE_VALUE`) and resolved through its object graph. The
//! vocabulary is `assets/vocab.txt`; Model Garden's export stores `do_lower_case` as a bool
//! variable; `keras_metadata.pb`, when present, carries the Keras encoder's config.

use std::path::{Path, PathBuf};

use tf_checkpoint::{Checkpoint, DType};

use super::keras_metadata::{self, EncoderMetadata};
use super::{Form, Source, SourceError};

/// The key Model Garden's `export_tfhub` stores the tokenizer's lower-casing flag under.
pub const DO_LOWER_CASE_KEY: &str = "do_lower_case/.ATTRIBUTES/VARIABLE_VALUE";

/// The largest `keras_metadata.pb` read (TF Hub encoders' are tens of kB to a few MB).
const MAX_METADATA_BYTES: u64 = 64 << 20;

/// A directory holding `saved_model.pb`, or `saved_model.pb` itself: the SavedModel directory.
pub fn saved_model_dir(path: &Path) -> Option<PathBuf> {
    if path.is_dir() && path.join("saved_model.pb").is_file() {
        return Some(path.to_path_buf());
    }
    if path.file_name().is_some_and(|n| n == "saved_model.pb") && path.is_file() {
        return Some(super::directory_of(path));
    }
    None
}

/// What a SavedModel adds to its weights.
#[derive(Clone, Debug, Default)]
pub struct SavedModelFacts {
    /// `assets/vocab.txt`, when present.
    pub vocab: Option<PathBuf>,
    /// The `do_lower_case` bool variable, when present.
    pub do_lower_case: Option<bool>,
    /// The encoder's Keras config from `keras_metadata.pb`, when present and readable.
    pub keras: Option<EncoderMetadata>,
}

fn problem(dir: &Path, problem: impl Into<String>) -> SourceError {
    SourceError::SavedModel {
        dir: dir.to_path_buf(),
        problem: problem.into(),
    }
}

/// Open the SavedModel at `dir` (which holds `saved_model.pb`).
pub fn open(dir: &Path) -> Result<Source, SourceError> {
    let variables = dir.join("variables");
    let index = variables.join("variables.index");
    if !index.is_file() {
        return Err(problem(
            dir,
            format!(
                "it has saved_model.pb but no {} (its weights); the SavedModel is incomplete — copy its whole `variables/` directory",
                index.display()
            ),
        ));
    }
    let checkpoint = Checkpoint::open_prefix(&variables.join("variables"))?;
    // Every data shard must be there and the right size before anything is planned.
    checkpoint.check_shards()?;
    if checkpoint
        .get(tf_checkpoint::object_graph::OBJECT_GRAPH_KEY)
        .is_none()
    {
        return Err(problem(
            dir,
            "its variables/ bundle has no object graph (`_CHECKPOINTABLE_OBJECT_GRAPH`), which every TF2 SavedModel's variables carry; variables/ does not belong to this saved_model.pb",
        ));
    }
    let do_lower_case = match checkpoint.get(DO_LOWER_CASE_KEY) {
        None => None,
        Some(info) => {
            if info.dtype != DType::Bool || info.num_elements() != 1 {
                return Err(problem(
                    dir,
                    format!(
                        "`{DO_LOWER_CASE_KEY}` is a {} tensor of shape {:?}, not the bool scalar export_tfhub writes",
                        info.dtype.tf_name(),
                        info.shape
                    ),
                ));
            }
            let bytes = checkpoint.read_bytes(DO_LOWER_CASE_KEY)?;
            Some(bytes.first().is_some_and(|b| *b != 0))
        }
    };
    let vocab = Some(dir.join("assets").join("vocab.txt")).filter(|p| p.is_file());
    let meta_path = dir.join("keras_metadata.pb");
    let keras = if meta_path.is_file() {
        let len = std::fs::metadata(&meta_path)
            .map_err(|e| problem(dir, format!("{}: {e}", meta_path.display())))?
            .len();
        if len > MAX_METADATA_BYTES {
            return Err(problem(
                dir,
                format!(
                    "keras_metadata.pb is {len} bytes, more than the {MAX_METADATA_BYTES} read"
                ),
            ));
        }
        let bytes = std::fs::read(&meta_path)
            .map_err(|e| problem(dir, format!("{}: {e}", meta_path.display())))?;
        let nodes = keras_metadata::decode(&bytes)
            .map_err(|e| problem(dir, format!("keras_metadata.pb is unreadable: {e}")))?;
        let found = keras_metadata::encoder(&nodes);
        if let Some(k) = &found {
            check_encoder(dir, k)?;
        }
        found
    } else {
        None
    };
    let location = dir.display().to_string();
    let facts = SavedModelFacts {
        vocab,
        do_lower_case,
        keras,
    };
    Ok(Source::new(
        checkpoint,
        Form::SavedModel,
        dir.to_path_buf(),
        location,
        Vec::new(),
    )
    .with_saved_model(facts))
}

/// Refuse what keras_metadata.pb says is not a post-LN BERT encoder with a known activation.
fn check_encoder(dir: &Path, k: &EncoderMetadata) -> Result<(), SourceError> {
    if !keras_metadata::is_bert_encoder(&k.class_name) {
        return Err(problem(
            dir,
            format!(
                "keras_metadata.pb says its first weighted layer (`{}`) is a Keras `{}`, not a Model Garden BertEncoder; electra-convert reads SavedModels of ELECTRA/BERT encoders",
                k.node_path, k.class_name
            ),
        ));
    }
    if k.norm_first {
        return Err(problem(
            dir,
            "its BertEncoder has `norm_first: true` (pre-LayerNorm), which transformers' ELECTRA cannot represent",
        ));
    }
    if let Some(act) = &k.inner_activation {
        if keras_metadata::hidden_act(act).is_none() {
            return Err(problem(
                dir,
                format!("its BertEncoder's inner_activation `{act}` has no transformers hidden_act equivalent"),
            ));
        }
    }
    Ok(())
}
