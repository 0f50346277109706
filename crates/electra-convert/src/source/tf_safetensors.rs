//! A `model.safetensors` written by transformers' TF classes (`save_pretrained(...,
//! safe_serialization=True)`): metadata `{"format": "tf"}`, keys the Keras names without the
//! model-name component (`electra/encoder/layer_._0/attention/self/query/kernel:0`), kernels
//! `[in, out]`. Presented as a one-shard bundle over the file, the same way as `tf_model.h5`
//! ([`super::keras`]): one entry per tensor at its byte range after the header, its CRC32C
//! computed on open.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use tf_checkpoint::{read_exact_at, DType, ShardFile};

use super::keras::{entry, in_memory_bundle};
use super::{Form, Source, SourceError};

/// The file name transformers writes.
pub const FILE: &str = "model.safetensors";

/// Largest safetensors header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// Bytes read at a time while checksumming.
const CRC_CHUNK: u64 = 8 << 20;

/// `path` (a `model.safetensors`, or a directory holding one) if its metadata says `format: tf`.
pub fn detect(path: &Path) -> Option<PathBuf> {
    let file = if path.is_dir() {
        path.join(FILE)
    } else {
        path.to_path_buf()
    };
    if !file.is_file() || !file.to_string_lossy().ends_with(".safetensors") {
        return None;
    }
    let (header, _) = read_header(&file).ok()?;
    let format = header.get("__metadata__")?.get("format")?.as_str()?;
    (format == "tf").then_some(file)
}

fn bad(path: &Path, detail: impl Into<String>) -> SourceError {
    SourceError::Keras {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The header object and where the data starts.
fn read_header(path: &Path) -> Result<(serde_json::Value, u64), SourceError> {
    let f = File::open(path).map_err(|e| bad(path, e.to_string()))?;
    let len = f.metadata().map_err(|e| bad(path, e.to_string()))?.len();
    let mut n = [0u8; 8];
    read_exact_at(&f, &mut n, 0).map_err(|e| bad(path, format!("no safetensors header: {e}")))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n > len.saturating_sub(8) {
        return Err(bad(
            path,
            format!("the safetensors header claims {n} bytes; the file has {len}"),
        ));
    }
    let mut buf = vec![0u8; n as usize];
    read_exact_at(&f, &mut buf, 8).map_err(|e| bad(path, e.to_string()))?;
    let value: serde_json::Value = serde_json::from_slice(&buf)
        .map_err(|e| bad(path, format!("the safetensors header is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(bad(path, "the safetensors header is not a JSON object"));
    }
    Ok((value, 8 + n))
}

fn dtype_of(s: &str) -> Option<(DType, u64)> {
    Some(match s {
        "F32" => (DType::Float32, 4),
        "F16" => (DType::Float16, 2),
        "BF16" => (DType::BFloat16, 2),
        "F64" => (DType::Float64, 8),
        "I64" => (DType::Int64, 8),
        "I32" => (DType::Int32, 4),
        _ => return None,
    })
}

/// Open a TF-format `model.safetensors`.
pub fn open(path: &Path) -> Result<Source, SourceError> {
    let (header, base) = read_header(path)?;
    let file = File::open(path).map_err(|e| bad(path, e.to_string()))?;
    let data_len = file.metadata().map_err(|e| bad(path, e.to_string()))?.len() - base;
    let mut tensors: BTreeMap<String, (DType, Vec<u64>, u64, u64)> = BTreeMap::new();
    for (key, t) in header.as_object().into_iter().flatten() {
        if key == "__metadata__" {
            continue;
        }
        let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let Some((dtype, size)) = dtype_of(dtype) else {
            return Err(bad(path, format!("`{key}`: unsupported dtype `{dtype}`")));
        };
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let offsets: Option<Vec<u64>> = t
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let (Some(shape), Some(offsets)) = (shape, offsets) else {
            return Err(bad(
                path,
                format!("`{key}`: no valid shape or data_offsets"),
            ));
        };
        let [start, end] = offsets[..] else {
            return Err(bad(
                path,
                format!("`{key}`: data_offsets is not [start, end]"),
            ));
        };
        let count = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|c| c.checked_mul(size));
        if start > end || end > data_len || count != Some(end - start) {
            return Err(bad(
                path,
                format!(
                    "`{key}`: bytes {start}..{end} do not hold shape {shape:?} inside the {data_len} data bytes"
                ),
            ));
        }
        let name = key.strip_suffix(":0").unwrap_or(key).to_owned();
        if tensors
            .insert(name.clone(), (dtype, shape, start, end - start))
            .is_some()
        {
            return Err(bad(path, format!("`{name}` is stored twice")));
        }
    }
    if tensors.is_empty() {
        return Err(bad(path, "the file holds no tensors"));
    }
    let mut entries = Vec::with_capacity(tensors.len());
    for (name, (dtype, shape, offset, len)) in tensors {
        let mut crc = 0u32;
        let mut done = 0u64;
        let mut buf = Vec::new();
        while done < len {
            let n = (len - done).min(CRC_CHUNK);
            buf.resize(n as usize, 0);
            read_exact_at(&file, &mut buf, base + offset + done)
                .map_err(|e| bad(path, format!("reading `{name}`: {e}")))?;
            crc = crc32c::crc32c_append(crc, &buf);
            done += n;
        }
        entries.push((name, entry(dtype, &shape, 0, offset, len, crc)));
    }
    let shards = vec![ShardFile {
        id: 0,
        path: path.to_path_buf(),
        base,
        len: None,
    }];
    let checkpoint = in_memory_bundle(path, shards, &entries)?;
    Ok(Source::new(
        checkpoint,
        Form::TfSafetensors,
        super::directory_of(path),
        path.display().to_string(),
        Vec::new(),
    ))
}
