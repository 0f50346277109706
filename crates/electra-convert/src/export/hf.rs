//! Reading a HuggingFace ELECTRA model directory for export: `config.json` (through the same
//! parser `verify` uses) and the tensors of `model.safetensors` or a sharded
//! `model.safetensors.index.json`.
//!
//! Each safetensors header is parsed and validated by the `safetensors` crate from a memory map
//! that touches only the header pages; the map is dropped at once. Tensor data is then read with
//! positioned reads into a caller's buffer, piece by piece, and converted to float32 on the way
//! (f16 and bf16 widen exactly), so memory stays at one piece (or one kernel, for a transpose)
//! and the resident set does not grow with the size of the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use super::ExportError;
use crate::verify::config::ModelConfig;
use tf_checkpoint::read_exact_at;

/// Buffers saved by older transformers versions that are not weights; skipped, as transformers does.
pub(crate) const IGNORED_SUFFIXES: &[&str] =
    &["embeddings.position_ids", "embeddings.token_type_ids"];

/// One tensor of the directory.
#[derive(Debug, Clone)]
pub(crate) struct HfTensor {
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    file: usize,
    /// Absolute offset of its data in its file (the length follows from dtype and shape,
    /// which the safetensors crate validated against the header's offsets).
    start: u64,
}

impl HfTensor {
    pub(crate) fn num_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// TF spelling of the dtype, as the mapping expects it.
    pub(crate) fn tf_dtype(&self) -> String {
        match self.dtype {
            Dtype::F32 => "float32".into(),
            Dtype::F16 => "float16".into(),
            Dtype::BF16 => "bfloat16".into(),
            Dtype::F64 => "float64".into(),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// An opened model directory.
#[derive(Debug)]
pub(crate) struct HfDir {
    pub dir: PathBuf,
    pub config: ModelConfig,
    /// `architectures[0]` of config.json, if any.
    pub class: Option<String>,
    files: Vec<(PathBuf, File)>,
    pub tensors: BTreeMap<String, HfTensor>,
}

/// Elements per positioned read when streaming.
const PIECE_ELEMS: usize = 1 << 18;

/// The weight files of `dir` (the listing `verify` uses for the same directories).
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    use crate::verify::hf::{listed_weight_files, ShardIndexError};
    match listed_weight_files(dir) {
        Ok(Some(files)) => Ok(files),
        Ok(None) => Err(ExportError::NoWeights {
            dir: dir.to_path_buf(),
            bin: dir.join("pytorch_model.bin").is_file(),
        }),
        Err((path, ShardIndexError::Read(e))) => Err(ExportError::Safetensors {
            path,
            error: e.to_string(),
        }),
        Err((path, ShardIndexError::Invalid(error))) => {
            Err(ExportError::Safetensors { path, error })
        }
    }
}

impl HfDir {
    /// Open `dir`, passed as `--ROLE` (`discriminator` or `generator`).
    pub(super) fn open(dir: &Path, role: &'static str) -> Result<HfDir, ExportError> {
        if !dir.is_dir() {
            return Err(ExportError::NotADirectory {
                path: dir.to_path_buf(),
                role,
            });
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ExportError::NoConfig {
                dir: dir.to_path_buf(),
                role,
            });
        }
        let text = std::fs::read_to_string(&config_path).map_err(|e| ExportError::Config {
            path: config_path.clone(),
            error: e.to_string(),
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ExportError::Config {
                path: config_path.clone(),
                error: format!("not valid JSON: {e}"),
            })?;
        let model_type = value.get("model_type").and_then(|v| v.as_str());
        if model_type != Some("electra") {
            return Err(ExportError::NotElectra {
                dir: dir.to_path_buf(),
                role,
                found: model_type.map_or_else(
                    || "no model_type".to_owned(),
                    |t| format!("model_type {t:?}"),
                ),
            });
        }
        let config =
            ModelConfig::from_json(&config_path, &value).map_err(|e| ExportError::Config {
                path: config_path.clone(),
                error: e.to_string(),
            })?;
        let class = value
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(|a| a.as_str())
            .map(str::to_owned);

        let mut files = Vec::new();
        let mut tensors = BTreeMap::new();
        for path in weight_files(dir)? {
            let bad = |error: String| ExportError::Safetensors {
                path: path.clone(),
                error,
            };
            let file = File::open(&path).map_err(|e| bad(e.to_string()))?;
            // SAFETY: read-only map of a file we only read; only the header pages are touched
            // and the map is dropped before any tensor is read.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| bad(e.to_string()))?;
            let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&map)
                .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
            drop(map);
            let base = 8 + header_len as u64;
            for (name, info) in metadata.tensors() {
                let (s, e) = info.data_offsets;
                let tensor = HfTensor {
                    dtype: info.dtype,
                    shape: info.shape.iter().map(|&d| d as u64).collect(),
                    file: files.len(),
                    start: base + s as u64,
                };
                debug_assert_eq!(
                    (e - s) as u64,
                    tensor.num_elements() * info.dtype.bitsize() as u64 / 8
                );
                if tensors.insert(name.clone(), tensor).is_some() {
                    return Err(bad(format!(
                        "tensor {name:?} is stored in more than one weight file"
                    )));
                }
            }
            files.push((path, file));
        }
        Ok(HfDir {
            dir: dir.to_path_buf(),
            config,
            class,
            files,
            tensors,
        })
    }

    /// The weight file shown in messages (the single file, or the index of a sharded model).
    pub(crate) fn weights_path(&self) -> PathBuf {
        if self.files.len() == 1 {
            self.files[0].0.clone()
        } else {
            self.dir.join("model.safetensors.index.json")
        }
    }

    fn tensor(&self, name: &str) -> &HfTensor {
        // Callers only ask for names taken from `tensors`.
        &self.tensors[name]
    }

    fn width(&self, name: &str) -> Result<u64, ExportError> {
        let t = self.tensor(name);
        match t.dtype {
            Dtype::F32 => Ok(4),
            Dtype::F16 | Dtype::BF16 => Ok(2),
            _ => Err(ExportError::UnsupportedDtype {
                file: self.files[t.file].0.clone(),
                tensor: name.to_owned(),
                dtype: format!("{:?}", t.dtype),
            }),
        }
    }

    /// Number of pieces [`f32_piece`](Self::f32_piece) splits tensor `name` into.
    fn pieces(&self, name: &str) -> u64 {
        self.tensor(name)
            .num_elements()
            .div_ceil(PIECE_ELEMS as u64)
    }

    /// Elements `[k·PIECE_ELEMS, (k+1)·PIECE_ELEMS)` of tensor `name` as little-endian float32
    /// bytes in `out` (`raw` is scratch space for half-precision sources).
    fn f32_piece(
        &self,
        name: &str,
        k: u64,
        raw: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), ExportError> {
        let width = self.width(name)?;
        let t = self.tensor(name);
        let first = k * PIECE_ELEMS as u64;
        let count = (t.num_elements() - first).min(PIECE_ELEMS as u64) as usize;
        let (path, file) = &self.files[t.file];
        let read = |buf: &mut [u8]| {
            read_exact_at(file, buf, t.start + first * width).map_err(|e| ExportError::Read {
                path: path.clone(),
                tensor: name.to_owned(),
                error: e.to_string(),
            })
        };
        if width == 4 {
            out.resize(count * 4, 0);
            return read(out);
        }
        raw.resize(count * 2, 0);
        read(raw)?;
        out.clear();
        let bf16 = t.dtype == Dtype::BF16;
        for c in raw.chunks_exact(2) {
            let v = if bf16 {
                half::bf16::from_le_bytes([c[0], c[1]]).to_f32()
            } else {
                half::f16::from_le_bytes([c[0], c[1]]).to_f32()
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    /// Stream tensor `name` as little-endian float32 bytes to `sink`, in pieces. `raw` and
    /// `out` are reused buffers.
    pub(crate) fn read_f32_pieces(
        &self,
        name: &str,
        raw: &mut Vec<u8>,
        out: &mut Vec<u8>,
        mut sink: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        self.width(name)?;
        for k in 0..self.pieces(name) {
            self.f32_piece(name, k, raw, out)?;
            sink(out)?;
        }
        Ok(())
    }

    /// The whole tensor as float32 bit patterns (for transposing a kernel).
    pub(crate) fn read_f32_words(
        &self,
        name: &str,
        raw: &mut Vec<u8>,
    ) -> Result<Vec<u32>, ExportError> {
        let mut words = Vec::with_capacity(self.tensor(name).num_elements() as usize);
        let mut out = Vec::new();
        self.read_f32_pieces(name, raw, &mut out, |piece| {
            words.extend(
                piece
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            Ok(())
        })?;
        Ok(words)
    }
}

/// Do tensor `a` of `x` and tensor `b` of `y` have the same shape and the same float32 values
/// (bit for bit after widening)? Read piece by piece.
pub(crate) fn same_values(x: &HfDir, a: &str, y: &HfDir, b: &str) -> Result<bool, ExportError> {
    if x.tensor(a).shape != y.tensor(b).shape {
        return Ok(false);
    }
    x.width(a)?;
    y.width(b)?;
    let (mut raw, mut pa, mut pb) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..x.pieces(a) {
        x.f32_piece(a, k, &mut raw, &mut pa)?;
        y.f32_piece(b, k, &mut raw, &mut pb)?;
        if pa != pb {
            return Ok(false);
        }
    }
    Ok(true)
}
