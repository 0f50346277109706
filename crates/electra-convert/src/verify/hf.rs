//! Weights of a HuggingFace model directory (`model.safetensors`, or the shards of
//! `model.safetensors.index.json`), by transformers' state-dict names and torch layout
//! (`Linear.weight` is `[out, in]`).
//!
//! Only the headers are read when the directory is opened; a tensor's bytes are read with
//! positioned reads when the forward pass asks for it, straight into the `f32` buffer that
//! becomes the tensor, and nothing is mapped. So the model's size never shows up in the resident
//! set: only the stage being computed does (see `model.rs`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;

use super::config::{Architecture, ModelConfig};
use super::model::{check_ids, Dense, Dims, Norm, Param, Want, WeightProvider};
use super::VerifyError;
use tf_checkpoint::read_exact_at;

/// Non-parameter buffers that older transformers versions saved; transformers ignores them too.
const IGNORED_SUFFIXES: &[&str] = &["embeddings.position_ids", "embeddings.token_type_ids"];

/// Largest safetensors header read (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Bytes converted per read for non-f32 tensors.
const PIECE: usize = 1 << 20;

/// One weight file: its handle, where its data section starts, and its header.
struct WeightFile {
    path: PathBuf,
    file: File,
    data_start: u64,
}

/// Where one tensor lives.
struct Located {
    file: usize,
    info: TensorInfo,
}

/// A model directory opened for the forward pass.
pub(crate) struct HfWeights {
    file: PathBuf,
    files: Vec<WeightFile>,
    tensors: BTreeMap<String, Located>,
    used: HashSet<String>,
    /// `"electra."` for the head models, `""` for `ElectraModel`.
    prefix: &'static str,
    /// Set when the MLM decoder was re-tied to the word embeddings.
    pub retied: bool,
}

/// Why `model.safetensors.index.json` could not give the list of shards.
#[derive(Debug)]
pub enum ShardIndexError {
    /// The index file could not be read.
    Read(std::io::Error),
    /// The index file is not a usable shard index (the reason).
    Invalid(String),
}

impl std::fmt::Display for ShardIndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardIndexError::Read(error) => write!(f, "cannot read it: {error}"),
            ShardIndexError::Invalid(reason) => write!(f, "{reason}; re-save the model"),
        }
    }
}

/// The weight files of a HuggingFace model directory: `model.safetensors`, or the distinct
/// shards `model.safetensors.index.json` names (refusing names that leave the directory), or
/// `Ok(None)` when it has neither. An error comes with the index file's path. Shared with
/// `export` and `inspect`, which read the same directories.
pub fn listed_weight_files(dir: &Path) -> Result<Option<Vec<PathBuf>>, (PathBuf, ShardIndexError)> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(Some(vec![single]));
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Ok(None);
    }
    let bad = |message: String| (index.clone(), ShardIndexError::Invalid(message));
    let text = std::fs::read_to_string(&index)
        .map_err(|error| (index.clone(), ShardIndexError::Read(error)))?;
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
    Ok(Some(files.into_iter().map(|f| dir.join(f)).collect()))
}

/// Locate the weight file(s) of `dir`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, VerifyError> {
    match listed_weight_files(dir) {
        Ok(Some(files)) => Ok(files),
        Ok(None) => Err(VerifyError::Safetensors {
            path: dir.to_path_buf(),
            message:
                "no model.safetensors (or model.safetensors.index.json) in the model directory; \
                      convert the checkpoint first (pytorch_model.bin is not read)"
                    .into(),
        }),
        Err((path, ShardIndexError::Read(error))) => Err(VerifyError::Io { path, error }),
        Err((path, ShardIndexError::Invalid(message))) => {
            Err(VerifyError::Safetensors { path, message })
        }
    }
}

/// Open one safetensors file and read its header: the 8-byte length, then the JSON, validated
/// like the safetensors crate validates a whole file (offsets contiguous, sizes matching dtype ×
/// shape, the data section exactly filling the rest of the file).
fn open_weight_file(path: &Path) -> Result<(WeightFile, Metadata), VerifyError> {
    let unreadable = |message: String| VerifyError::Safetensors {
        path: path.to_path_buf(),
        message: format!("not a readable safetensors file: {message}"),
    };
    let io = |error| VerifyError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut n = [0u8; 8];
    if len < 8 {
        return Err(unreadable(format!(
            "{len} bytes, shorter than the 8-byte header length"
        )));
    }
    read_exact_at(&file, &mut n, 0).map_err(io)?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES {
        return Err(unreadable(format!(
            "the header claims {n} bytes, more than the {MAX_HEADER_BYTES}-byte limit"
        )));
    }
    if n > len - 8 {
        return Err(unreadable(format!(
            "the header claims {n} bytes, but the file has only {} after the length",
            len - 8
        )));
    }
    let mut header = vec![0u8; n as usize];
    read_exact_at(&file, &mut header, 8).map_err(io)?;
    let metadata: Metadata =
        serde_json::from_slice(&header).map_err(|e| unreadable(format!("invalid header: {e}")))?;
    let data_start = 8 + n;
    let data_len = metadata.data_len() as u64;
    if data_start + data_len != len {
        return Err(unreadable(format!(
            "the header describes {data_len} bytes of tensor data, the file holds {}",
            len - data_start
        )));
    }
    Ok((
        WeightFile {
            path: path.to_path_buf(),
            file,
            data_start,
        },
        metadata,
    ))
}

impl HfWeights {
    /// Read the headers of the weights of `dir` (no tensor data).
    pub(crate) fn open(dir: &Path) -> Result<HfWeights, VerifyError> {
        let paths = weight_files(dir)?;
        let shown = if paths.len() == 1 {
            paths[0].clone()
        } else {
            dir.join("model.safetensors.index.json")
        };
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = BTreeMap::new();
        for path in &paths {
            if !path.is_file() {
                return Err(VerifyError::Safetensors {
                    path: path.clone(),
                    message: "weight file listed in the index does not exist".into(),
                });
            }
            let (file, metadata) = open_weight_file(path)?;
            for (name, info) in metadata.tensors() {
                if let Some(first) = tensors.get(&name).map(|l: &Located| l.file) {
                    return Err(VerifyError::Safetensors {
                        path: shown.clone(),
                        message: format!(
                            "tensor {name} is stored twice, in {} and {}",
                            paths[first].display(),
                            path.display()
                        ),
                    });
                }
                tensors.insert(
                    name,
                    Located {
                        file: files.len(),
                        info: info.clone(),
                    },
                );
            }
            files.push(file);
        }
        Ok(HfWeights {
            file: shown,
            files,
            tensors,
            used: HashSet::new(),
            prefix: "electra.",
            retied: false,
        })
    }

    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Choose the key prefix for `arch` (`ElectraModel` files have none).
    pub(crate) fn set_architecture(&mut self, arch: Architecture) {
        self.prefix = match arch {
            Architecture::Model => {
                if !self.contains("embeddings.word_embeddings.weight")
                    && self.contains("electra.embeddings.word_embeddings.weight")
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
    pub(crate) fn dims(config: &ModelConfig) -> Dims {
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

    /// Keys that no checked parameter claimed (besides ignorable buffers), sorted.
    pub(crate) fn unused_keys(&self) -> Vec<String> {
        self.tensors
            .keys()
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

    /// The stored key of a table parameter (the MLM decoder falls back to the word embeddings).
    fn table_key(&mut self, param: Param) -> String {
        let key = format!("{}.weight", self.base(param));
        if param == Param::GeneratorDecoder && !self.contains(&key) {
            // save_pretrained omits the tied decoder; re-tie it like transformers does.
            self.retied = true;
            return format!("{}.weight", self.base(Param::WordEmbeddings));
        }
        key
    }

    /// The stored keys and shapes behind one request.
    fn stored(&mut self, param: Param, want: Want) -> Vec<(String, Vec<usize>)> {
        match want {
            Want::Table { rows, width } => vec![(self.table_key(param), vec![rows, width])],
            Want::Dense { d_in, d_out } => {
                let base = self.base(param);
                vec![
                    (format!("{base}.weight"), vec![d_out, d_in]),
                    (format!("{base}.bias"), vec![d_out]),
                ]
            }
            Want::Norm { width } => {
                let base = self.base(param);
                vec![
                    (format!("{base}.weight"), vec![width]),
                    (format!("{base}.bias"), vec![width]),
                ]
            }
            Want::Vector { len } => vec![(format!("{}.bias", self.base(param)), vec![len])],
        }
    }

    /// Check `key`'s presence, dtype and shape and mark it used; its location.
    fn locate(&mut self, key: &str, shape: &[usize]) -> Result<(usize, TensorInfo), VerifyError> {
        let located = self
            .tensors
            .get(key)
            .ok_or_else(|| VerifyError::MissingTensor {
                file: self.file.clone(),
                key: key.to_string(),
            })?;
        let info = &located.info;
        match info.dtype {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 => {}
            other => {
                return Err(VerifyError::TensorDtype {
                    file: self.file.clone(),
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        }
        if info.shape != shape {
            return Err(VerifyError::TensorShape {
                file: self.file.clone(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: info.shape.clone(),
            });
        }
        let found = (located.file, info.clone());
        self.used.insert(key.to_string());
        Ok(found)
    }

    /// Read elements `first .. first + count` of a located tensor as f32 into `out` (appended).
    fn read_elements(
        &self,
        key: &str,
        (file, info): &(usize, TensorInfo),
        first: usize,
        count: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), VerifyError> {
        let wf = &self.files[*file];
        let width = info.dtype.bitsize() / 8;
        let offset = wf.data_start + (info.data_offsets.0 + first * width) as u64;
        let failed = |error: std::io::Error| VerifyError::Safetensors {
            path: wf.path.clone(),
            message: format!("cannot read {key}: {error}"),
        };
        let start = out.len();
        if info.dtype == Dtype::F32 && cfg!(target_endian = "little") {
            // The stored bytes are the values: read them into the f32 buffer itself.
            if out.is_empty() {
                // Zeroed pages straight from the allocator (calloc), not a memset.
                *out = tf_checkpoint::zeroed_f32(count);
            } else {
                out.resize(start + count, 0.0);
            }
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[start..]);
            return read_exact_at(&wf.file, bytes, offset).map_err(failed);
        }
        out.reserve(count);
        let mut piece = vec![0u8; PIECE.min(count * width)];
        let per_piece = piece.len() / width;
        let mut done = 0;
        while done < count {
            let n = per_piece.min(count - done);
            let bytes = &mut piece[..n * width];
            read_exact_at(&wf.file, bytes, offset + (done * width) as u64).map_err(failed)?;
            decode_into(info.dtype, bytes, out);
            done += n;
        }
        Ok(())
    }

    /// Load `key` (checked against `shape`) as an f32 tensor.
    fn load(&mut self, key: &str, shape: &[usize]) -> Result<Tensor, VerifyError> {
        let located = self.locate(key, shape)?;
        let count = shape.iter().product();
        let mut values = Vec::new();
        self.read_elements(key, &located, 0, count, &mut values)?;
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(super::model::candle_error)
    }
}

/// Row-major `[rows, cols]` values → a contiguous `[cols, rows]` tensor, transposed in tiles
/// (candle's strided copy, `.t().contiguous()`, moves one element at a time and was a quarter of
/// the check's time). The kernel must be contiguous, not a transposed view: the matmul over a
/// strided operand can round differently (seen on a TF2 fixture), and the numbers must not
/// change.
fn transposed(src: &[f32], rows: usize, cols: usize) -> Result<Tensor, VerifyError> {
    let mut dst = vec![0f32; src.len()];
    crate::kernels::transpose_words(src, rows, cols, &mut dst);
    Tensor::from_vec(dst, (cols, rows), &Device::Cpu).map_err(super::model::candle_error)
}

/// Little-endian stored values as f32, the conversions candle's `to_dtype(F32)` makes.
fn decode_into(dtype: Dtype, bytes: &[u8], out: &mut Vec<f32>) {
    match dtype {
        Dtype::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        Dtype::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        Dtype::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        // F64 (the only other dtype `locate` lets through): rounded to nearest.
        _ => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32),
        ),
    }
}

impl WeightProvider for HfWeights {
    fn has(&self, param: Param) -> bool {
        self.contains(&format!("{}.weight", self.base(param)))
    }

    fn check(&mut self, param: Param, want: Want) -> Result<(), VerifyError> {
        for (key, shape) in self.stored(param, want) {
            self.locate(&key, &shape)?;
        }
        Ok(())
    }

    fn table(&mut self, param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError> {
        let key = self.table_key(param);
        self.load(&key, &[rows, width])
    }

    fn table_rows(
        &mut self,
        param: Param,
        rows: usize,
        width: usize,
        ids: &[u32],
    ) -> Result<Tensor, VerifyError> {
        let key = self.table_key(param);
        let located = self.locate(&key, &[rows, width])?;
        check_ids(ids, rows)?;
        let mut values = Vec::with_capacity(ids.len() * width);
        for &id in ids {
            self.read_elements(&key, &located, id as usize * width, width, &mut values)?;
        }
        Tensor::from_vec(values, (ids.len(), width), &Device::Cpu)
            .map_err(super::model::candle_error)
    }

    fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError> {
        let base = self.base(param);
        let key = format!("{base}.weight");
        let located = self.locate(&key, &[d_out, d_in])?;
        let mut weight = Vec::new();
        self.read_elements(&key, &located, 0, d_out * d_in, &mut weight)?;
        let kernel = transposed(&weight, d_out, d_in)?;
        let bias = self.load(&format!("{base}.bias"), &[d_out])?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// The byte-range reader converts half-precision and f64 weights exactly as candle's
    /// `to_dtype(F32)` did when the file was memory-mapped: every f16 and bf16 bit pattern, and
    /// f64 values that round.
    #[test]
    fn decoding_equals_candles_conversion() {
        let halves: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        for (dtype, candle_dtype) in [(Dtype::F16, DType::F16), (Dtype::BF16, DType::BF16)] {
            let mut ours = Vec::new();
            decode_into(dtype, &halves, &mut ours);
            let theirs = Tensor::from_raw_buffer(&halves, candle_dtype, &[1 << 16], &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "{dtype:?}");
        }
        let doubles = [0.1f64, -1e-40, 3.4e38, 1e300, f64::NAN, 1.0 + f64::EPSILON];
        let bytes: Vec<u8> = doubles.iter().flat_map(|d| d.to_le_bytes()).collect();
        let mut ours = Vec::new();
        decode_into(Dtype::F64, &bytes, &mut ours);
        let theirs = Tensor::from_raw_buffer(&bytes, DType::F64, &[doubles.len()], &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours), bits(&theirs));
    }
}
