//! Reference files: inputs and expected outputs in `.safetensors` or `.npz`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::model::Batch;
use super::npy::{parse_npz, Array, ArrayData, NpyDtype};
use super::VerifyError;

/// Largest reference file we read into memory.
const MAX_FILE_BYTES: u64 = 8 << 30;

/// Every array of a reference file, by name.
#[derive(Debug, Clone)]
pub struct ReferenceFile {
    /// The file read.
    pub path: PathBuf,
    /// Its arrays by name.
    pub arrays: BTreeMap<String, Array>,
}

/// Read `path` (`.safetensors` or `.npz`, told apart by content, not by extension).
pub fn read_reference(path: &Path) -> Result<ReferenceFile, VerifyError> {
    let bad = |message: String| VerifyError::Reference {
        path: path.to_path_buf(),
        message,
    };
    let io = |error| VerifyError::Io {
        path: path.to_path_buf(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(bad(format!(
            "{} bytes is larger than the {MAX_FILE_BYTES}-byte limit for reference files",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    read_reference_bytes(path, &bytes)
}

/// [`read_reference`] on bytes already in memory; `path` is only used in error messages and
/// kept in the result. The format is told apart by content, exactly as for a file.
///
/// Exists so the `reference` fuzz target (in `fuzz/`) can drive the reader without touching
/// the file system; callers should use [`read_reference`].
#[doc(hidden)]
pub fn read_reference_bytes(path: &Path, bytes: &[u8]) -> Result<ReferenceFile, VerifyError> {
    let bad = |message: String| VerifyError::Reference {
        path: path.to_path_buf(),
        message,
    };
    let arrays = if bytes.starts_with(b"PK") {
        // A .safetensors file whose header length is 0x4b50 modulo 65536 also starts with
        // "PK": if the zip reading fails, accept it as safetensors, else report the zip error.
        match parse_npz(std::io::Cursor::new(bytes)) {
            Ok(arrays) => arrays,
            Err(zip_error) => parse_safetensors(bytes).map_err(|_| bad(zip_error.0))?,
        }
    } else {
        parse_safetensors(bytes).map_err(bad)?
    };
    let mut map = BTreeMap::new();
    for (name, array) in arrays {
        map.insert(name, array);
    }
    Ok(ReferenceFile {
        path: path.to_path_buf(),
        arrays: map,
    })
}

fn parse_safetensors(bytes: &[u8]) -> Result<Vec<(String, Array)>, String> {
    use safetensors::Dtype;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("neither an .npz archive nor a readable .safetensors file ({e})"))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let array = match view.dtype() {
            Dtype::I64 => Array::from_le_bytes(NpyDtype::I64, shape, data),
            Dtype::I32 => Array::from_le_bytes(NpyDtype::I32, shape, data),
            Dtype::F32 => Array::from_le_bytes(NpyDtype::F32, shape, data),
            Dtype::F64 => Array::from_le_bytes(NpyDtype::F64, shape, data),
            Dtype::F16 => Array {
                shape,
                data: ArrayData::F32(
                    data.chunks_exact(2)
                        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect(),
                ),
            },
            Dtype::BF16 => Array {
                shape,
                data: ArrayData::F32(
                    data.chunks_exact(2)
                        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect(),
                ),
            },
            other => {
                return Err(format!(
                    "tensor {name:?} has dtype {other:?}; use int64/int32 for ids and float for outputs"
                ))
            }
        };
        out.push((name, array));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The output names a reference may carry.
pub(crate) const OUTPUT_NAMES: &[&str] = &["logits", "last_hidden_state"];

/// A validated reference: the batch to run and the outputs to compare with.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The inputs to run.
    pub batch: Batch,
    /// `(name, shape, values)` for each expected output present.
    pub expected: Vec<(String, Vec<usize>, Vec<f64>)>,
}

impl ReferenceFile {
    /// Check names, dtypes and shapes and turn the arrays into a [`Reference`].
    pub fn into_reference(self) -> Result<Reference, VerifyError> {
        let path = self.path.clone();
        let bad = |message: String| VerifyError::Reference {
            path: path.clone(),
            message,
        };
        let ids = self.arrays.get("input_ids").ok_or_else(|| {
            bad(format!(
                "no input_ids array (found: {})",
                list(self.arrays.keys())
            ))
        })?;
        let (b, s) = match ids.shape[..] {
            [b, s] if b > 0 && s > 0 => (b, s),
            _ => {
                return Err(bad(format!(
                    "input_ids has shape {:?}; expected [batch, seq] with both > 0",
                    ids.shape
                )))
            }
        };
        let input_ids = integers("input_ids", ids, &[b, s]).map_err(&bad)?;
        let attention_mask = match self.arrays.get("attention_mask") {
            Some(a) => integers("attention_mask", a, &[b, s]).map_err(&bad)?,
            None => vec![1; b * s],
        };
        let token_type_ids = match self.arrays.get("token_type_ids") {
            Some(a) => integers("token_type_ids", a, &[b, s]).map_err(&bad)?,
            None => vec![0; b * s],
        };
        let to_u32 = |name: &str, v: Vec<i64>| -> Result<Vec<u32>, VerifyError> {
            v.iter()
                .enumerate()
                .map(|(i, &x)| {
                    u32::try_from(x).map_err(|_| {
                        bad(format!(
                            "{name}[{}][{}] = {x} is negative or too large",
                            i / s,
                            i % s
                        ))
                    })
                })
                .collect()
        };
        let mask = attention_mask
            .iter()
            .enumerate()
            .map(|(i, &m)| match m {
                0 | 1 => Ok(m as u8),
                _ => Err(bad(format!(
                    "attention_mask[{}][{}] = {m}; only 0 and 1 are allowed",
                    i / s,
                    i % s
                ))),
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let batch = Batch {
            batch: b,
            seq: s,
            input_ids: to_u32("input_ids", input_ids)?,
            attention_mask: mask,
            token_type_ids: to_u32("token_type_ids", token_type_ids)?,
        };

        let mut expected = Vec::new();
        for name in OUTPUT_NAMES {
            if let Some(a) = self.arrays.get(*name) {
                if a.shape.len() < 2 || a.shape[0] != b || a.shape[1] != s {
                    return Err(bad(format!(
                        "{name} has shape {:?}, but input_ids is [{b}, {s}]; expected [{b}, {s}, ...]",
                        a.shape
                    )));
                }
                let values = match &a.data {
                    ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
                    ArrayData::F64(v) => v.clone(),
                    _ => {
                        return Err(bad(format!(
                            "{name} is {}; expected outputs are float32 or float64",
                            a.dtype_name()
                        )))
                    }
                };
                expected.push((name.to_string(), a.shape.clone(), values));
            }
        }
        if expected.is_empty() {
            return Err(bad(format!(
                "no expected outputs: it needs logits and/or last_hidden_state (found: {})",
                list(self.arrays.keys())
            )));
        }
        Ok(Reference { batch, expected })
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn integers(name: &str, a: &Array, shape: &[usize]) -> Result<Vec<i64>, String> {
    if a.shape != shape {
        return Err(format!(
            "{name} has shape {:?}; expected {shape:?} like input_ids",
            a.shape
        ));
    }
    match &a.data {
        ArrayData::I64(v) => Ok(v.clone()),
        ArrayData::I32(v) => Ok(v.iter().map(|&x| x as i64).collect()),
        _ => Err(format!(
            "{name} is {}; expected int64 or int32",
            a.dtype_name()
        )),
    }
}
