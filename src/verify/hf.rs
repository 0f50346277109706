//! Weights of a HuggingFace model directory (`model.safetensors`, memory-mapped), by transformers'
//! state-dict names and torch layout (`Linear.weight` is `[out, in]`).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{Device, Tensor};
use safetensors::Dtype;

use super::config::{Architecture, ModelConfig};
use super::model::{to_f32, Dense, Dims, HeadKind, Norm, Param, WeightProvider};
use super::VerifyError;

/// Non-parameter buffers that older transformers versions saved; transformers ignores them too.
const IGNORED_SUFFIXES: &[&str] = &["embeddings.position_ids", "embeddings.token_type_ids"];

/// A model directory opened for the forward pass.
pub(crate) struct HfWeights {
    file: PathBuf,
    tensors: MmapedSafetensors,
    keys: BTreeSet<String>,
    used: HashSet<String>,
    /// `"electra."` for the head models, `""` for `ElectraModel`.
    prefix: &'static str,
    /// Set when the MLM decoder was re-tied to the word embeddings.
    pub retied: bool,
}

/// Locate the weight file(s) of `dir`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, VerifyError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|error| VerifyError::Io {
            path: index.clone(),
            error,
        })?;
        let bad = |message: String| VerifyError::Safetensors {
            path: index.clone(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let map = value
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
        let mut files = BTreeSet::new();
        for (key, file) in map {
            let file = file
                .as_str()
                .ok_or_else(|| bad(format!("weight_map[{key:?}] is not a file name")))?;
            if file.contains('/') || file.contains('\\') || file == ".." {
                return Err(bad(format!(
                    "weight_map[{key:?}] = {file:?} leaves the directory"
                )));
            }
            files.insert(file.to_string());
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    Err(VerifyError::Safetensors {
        path: dir.to_path_buf(),
        message: "no model.safetensors (or model.safetensors.index.json) in the model directory; \
                  convert the checkpoint first (pytorch_model.bin is not read)"
            .into(),
    })
}

impl HfWeights {
    /// Memory-map the weights of `dir`; `config` decides the key prefix when the
    /// architecture is known.
    pub fn open(dir: &Path) -> Result<HfWeights, VerifyError> {
        let files = weight_files(dir)?;
        let shown = if files.len() == 1 {
            files[0].clone()
        } else {
            dir.join("model.safetensors.index.json")
        };
        for f in &files {
            if !f.is_file() {
                return Err(VerifyError::Safetensors {
                    path: f.clone(),
                    message: "weight file listed in the index does not exist".into(),
                });
            }
        }
        // SAFETY: the mapping is read-only; like every mmap reader we rely on the file not being
        // truncated while the verification runs (the files belong to the model directory the
        // user asked us to check).
        let tensors =
            unsafe { MmapedSafetensors::multi(&files) }.map_err(|e| VerifyError::Safetensors {
                path: shown.clone(),
                message: format!("not a readable safetensors file: {e}"),
            })?;
        let keys = tensors.tensors().into_iter().map(|(k, _)| k).collect();
        Ok(HfWeights {
            file: shown,
            tensors,
            keys,
            used: HashSet::new(),
            prefix: "electra.",
            retied: false,
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Choose the key prefix for `arch` (`ElectraModel` files have none).
    pub fn set_architecture(&mut self, arch: Architecture) {
        self.prefix = match arch {
            Architecture::Model => {
                if !self.keys.contains("embeddings.word_embeddings.weight")
                    && self
                        .keys
                        .contains("electra.embeddings.word_embeddings.weight")
                {
                    "electra."
                } else {
                    ""
                }
            }
            _ => "electra.",
        };
    }

    /// The network shape that `config` describes, for architecture `arch`.
    pub fn dims(config: &ModelConfig) -> Dims {
        Dims {
            vocab: config.vocab_size,
            embedding: config.embedding_size,
            hidden: config.hidden_size,
            intermediate: config.intermediate_size,
            layers: config.num_hidden_layers,
            heads: config.num_attention_heads,
            max_positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size,
            project: config.embedding_size != config.hidden_size,
        }
    }

    pub fn head_kind(arch: Architecture) -> HeadKind {
        match arch {
            Architecture::PreTraining => HeadKind::Discriminator,
            Architecture::MaskedLm => HeadKind::Generator,
            Architecture::Model => HeadKind::None,
        }
    }

    /// Keys that no parameter consumed (besides ignorable buffers), sorted.
    pub fn unused_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| !self.used.contains(*k))
            .filter(|k| !IGNORED_SUFFIXES.iter().any(|s| k.ends_with(s)))
            .cloned()
            .collect()
    }

    /// Base name (without `.weight` / `.bias`) of a parameter.
    fn base(&self, param: Param) -> String {
        let p = self.prefix;
        match param {
            Param::WordEmbeddings => format!("{p}embeddings.word_embeddings"),
            Param::PositionEmbeddings => format!("{p}embeddings.position_embeddings"),
            Param::TokenTypeEmbeddings => format!("{p}embeddings.token_type_embeddings"),
            Param::EmbeddingsLayerNorm => format!("{p}embeddings.LayerNorm"),
            Param::EmbeddingsProject => format!("{p}embeddings_project"),
            Param::Query(l) => format!("{p}encoder.layer.{l}.attention.self.query"),
            Param::Key(l) => format!("{p}encoder.layer.{l}.attention.self.key"),
            Param::Value(l) => format!("{p}encoder.layer.{l}.attention.self.value"),
            Param::AttentionOutput(l) => format!("{p}encoder.layer.{l}.attention.output.dense"),
            Param::AttentionLayerNorm(l) => {
                format!("{p}encoder.layer.{l}.attention.output.LayerNorm")
            }
            Param::Intermediate(l) => format!("{p}encoder.layer.{l}.intermediate.dense"),
            Param::Output(l) => format!("{p}encoder.layer.{l}.output.dense"),
            Param::OutputLayerNorm(l) => format!("{p}encoder.layer.{l}.output.LayerNorm"),
            Param::DiscriminatorDense => "discriminator_predictions.dense".into(),
            Param::DiscriminatorPrediction => "discriminator_predictions.dense_prediction".into(),
            Param::GeneratorDense => "generator_predictions.dense".into(),
            Param::GeneratorLayerNorm => "generator_predictions.LayerNorm".into(),
            Param::GeneratorDecoder | Param::GeneratorBias => "generator_lm_head".into(),
        }
    }

    /// Load `key`, check dtype and shape, return it as f32.
    fn load(&mut self, key: &str, shape: &[usize]) -> Result<Tensor, VerifyError> {
        let view = self
            .tensors
            .get(key)
            .map_err(|_| VerifyError::MissingTensor {
                file: self.file.clone(),
                key: key.to_string(),
            })?;
        match view.dtype() {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 => {}
            other => {
                return Err(VerifyError::TensorDtype {
                    file: self.file.clone(),
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        }
        if view.shape() != shape {
            return Err(VerifyError::TensorShape {
                file: self.file.clone(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let tensor =
            self.tensors
                .load(key, &Device::Cpu)
                .map_err(|e| VerifyError::Safetensors {
                    path: self.file.clone(),
                    message: format!("cannot load {key}: {e}"),
                })?;
        self.used.insert(key.to_string());
        to_f32(tensor)
    }
}

impl WeightProvider for HfWeights {
    fn has(&self, param: Param) -> bool {
        self.keys.contains(&format!("{}.weight", self.base(param)))
    }

    fn table(&mut self, param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError> {
        let mut key = format!("{}.weight", self.base(param));
        if param == Param::GeneratorDecoder && !self.keys.contains(&key) {
            // save_pretrained omits the tied decoder; re-tie it like transformers does.
            key = format!("{}.weight", self.base(Param::WordEmbeddings));
            self.retied = true;
        }
        self.load(&key, &[rows, width])
    }

    fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError> {
        let base = self.base(param);
        let weight = self.load(&format!("{base}.weight"), &[d_out, d_in])?;
        let bias = self.load(&format!("{base}.bias"), &[d_out])?;
        let kernel = weight
            .t()
            .and_then(|t| t.contiguous())
            .map_err(super::model::candle_error)?;
        Ok(Dense { kernel, bias })
    }

    fn norm(&mut self, param: Param, width: usize) -> Result<Norm, VerifyError> {
        let base = self.base(param);
        Ok(Norm {
            gamma: self.load(&format!("{base}.weight"), &[width])?,
            beta: self.load(&format!("{base}.bias"), &[width])?,
        })
    }

    fn vector(&mut self, param: Param, len: usize) -> Result<Tensor, VerifyError> {
        let key = format!("{}.bias", self.base(param));
        self.load(&key, &[len])
    }
}
