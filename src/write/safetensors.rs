//! Streaming safetensors writer.
//!
//! The header is computed from the plan alone (names, shapes, output dtype), then the tensors
//! are read from the checkpoint one at a time, transposed and converted on the fly, and appended.
//! Peak memory is about one tensor.
//!
//! The byte layout follows what the `safetensors` library (and so transformers'
//! `save_pretrained`) produces for tensors of a single dtype: an 8-byte little-endian header
//! length, compact JSON with `__metadata__` first and then the tensors in byte-wise name order
//! (the order of their data), padded with spaces to a multiple of 8 bytes.

use std::borrow::Cow;
use std::io::Write;

use half::{bf16, f16};
use serde_json::{json, Map, Value};

use crate::cli::OutputDtype;
use crate::mapping::{Entry, Transform};

use super::WriteError;

/// safetensors dtype name.
pub fn dtype_name(dtype: OutputDtype) -> &'static str {
    match dtype {
        OutputDtype::F32 => "F32",
        OutputDtype::F16 => "F16",
        OutputDtype::Bf16 => "BF16",
    }
}

pub fn element_size(dtype: OutputDtype) -> u64 {
    match dtype {
        OutputDtype::F32 => 4,
        OutputDtype::F16 | OutputDtype::Bf16 => 2,
    }
}

/// The complete header (length prefix excluded, padding included) and the data size.
pub fn header(entries: &[Entry], dtype: OutputDtype) -> (Vec<u8>, u64) {
    let mut map = Map::new();
    map.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0u64;
    for e in entries {
        let len = e.num_elements() * element_size(dtype);
        map.insert(
            e.hf.clone(),
            json!({"dtype": dtype_name(dtype), "shape": e.hf_shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut bytes = serde_json::to_vec(&Value::Object(map)).expect("header JSON");
    let padded = bytes.len().next_multiple_of(8);
    bytes.resize(padded, b' ');
    (bytes, offset)
}

/// Total file size for these entries.
pub fn file_size(entries: &[Entry], dtype: OutputDtype) -> u64 {
    let (h, data) = header(entries, dtype);
    8 + h.len() as u64 + data
}

/// f32 → f16 exactly as torch's `.to(torch.float16)` on CPU: round to nearest even, overflow to
/// ±inf, NaN keeps its sign and top payload bits with the quiet bit set.
pub fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// f32 → bf16 exactly as torch's `.to(torch.bfloat16)` on CPU for non-scalar tensors: round to
/// nearest even; every NaN becomes 0xFFFF (what torch's vectorised conversion produces;
/// `half` would keep sign and payload instead).
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    if x.is_nan() {
        0xFFFF
    } else {
        bf16::from_f32(x).to_bits()
    }
}

/// Turn one source tensor (little-endian f32 bytes in TF layout) into output bytes.
pub fn convert_tensor<'a>(
    entry: &Entry,
    src: Cow<'a, [u8]>,
    dtype: OutputDtype,
) -> Result<Cow<'a, [u8]>, WriteError> {
    let n = entry.num_elements() as usize;
    if src.len() != n * 4 {
        return Err(WriteError::SourceSize {
            tensor: entry.tf.clone(),
            got: src.len() as u64,
            expected: n as u64 * 4,
        });
    }
    let value = |i: usize| -> [u8; 4] { src[4 * i..4 * i + 4].try_into().expect("4 bytes") };
    let out_size = element_size(dtype) as usize;
    let emit = |out: &mut Vec<u8>, b: [u8; 4]| match dtype {
        OutputDtype::F32 => out.extend_from_slice(&b),
        OutputDtype::F16 => {
            out.extend_from_slice(&f32_to_f16_bits(f32::from_le_bytes(b)).to_le_bytes())
        }
        OutputDtype::Bf16 => {
            out.extend_from_slice(&f32_to_bf16_bits(f32::from_le_bytes(b)).to_le_bytes())
        }
    };
    match entry.transform {
        Transform::Copy if dtype == OutputDtype::F32 => Ok(src),
        Transform::Copy => {
            let mut out = Vec::with_capacity(n * out_size);
            for i in 0..n {
                emit(&mut out, value(i));
            }
            Ok(Cow::Owned(out))
        }
        Transform::Transpose => {
            // TF [rows, cols] → HF [cols, rows].
            let (rows, cols) = (entry.tf_shape[0] as usize, entry.tf_shape[1] as usize);
            let mut out = Vec::with_capacity(n * out_size);
            for c in 0..cols {
                for r in 0..rows {
                    emit(&mut out, value(r * cols + c));
                }
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// Where the tensors' values come from: little-endian f32 bytes of a checkpoint variable in TF
/// layout.
pub trait TensorSource {
    fn f32_le_bytes(&self, tf_name: &str) -> Result<Cow<'_, [u8]>, WriteError>;
}

impl TensorSource for crate::checkpoint::Checkpoint {
    fn f32_le_bytes(&self, tf_name: &str) -> Result<Cow<'_, [u8]>, WriteError> {
        let read_error = |e: crate::checkpoint::CheckpointError| WriteError::Read {
            tensor: tf_name.to_owned(),
            error: e.to_string(),
        };
        let info = self.get(tf_name).ok_or_else(|| WriteError::Read {
            tensor: tf_name.to_owned(),
            error: "not in the checkpoint".to_owned(),
        })?;
        if info.dtype == crate::checkpoint::DType::Float32 {
            self.read_bytes(tf_name).map_err(read_error)
        } else {
            let values = self.read_f32(tf_name).map_err(read_error)?;
            Ok(Cow::Owned(
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ))
        }
    }
}

/// Stream a complete safetensors file into `out`, calling `progress` with each chunk's size.
pub fn write_safetensors<W: Write>(
    out: &mut W,
    entries: &[Entry],
    source: &dyn TensorSource,
    dtype: OutputDtype,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, WriteError> {
    let (header, data_len) = header(entries, dtype);
    let io = |e: std::io::Error| WriteError::Io {
        path: "model.safetensors".into(),
        error: e.to_string(),
    };
    out.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(&header).map_err(io)?;
    progress(8 + header.len() as u64);
    let mut written = 0u64;
    for entry in entries {
        let src = source.f32_le_bytes(&entry.tf)?;
        let bytes = convert_tensor(entry, src, dtype)?;
        out.write_all(&bytes).map_err(io)?;
        written += bytes.len() as u64;
        progress(bytes.len() as u64);
    }
    debug_assert_eq!(written, data_len);
    Ok(8 + header.len() as u64 + written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(transform: Transform, tf_shape: &[u64]) -> Entry {
        let hf_shape = match transform {
            Transform::Copy => tf_shape.to_vec(),
            Transform::Transpose => tf_shape.iter().rev().copied().collect(),
        };
        Entry {
            tf: "t".into(),
            hf: "h".into(),
            transform,
            tf_shape: tf_shape.to_vec(),
            hf_shape,
            dtype: "float32".into(),
        }
    }

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn transpose_is_row_major() {
        let src = bytes(&[1., 2., 3., 4., 5., 6.]); // [2, 3]
        let out = convert_tensor(
            &entry(Transform::Transpose, &[2, 3]),
            Cow::Owned(src),
            OutputDtype::F32,
        )
        .unwrap();
        assert_eq!(out.as_ref(), bytes(&[1., 4., 2., 5., 3., 6.]).as_slice());
    }

    #[test]
    fn copy_f32_borrows() {
        let src = bytes(&[1., 2.]);
        let out = convert_tensor(
            &entry(Transform::Copy, &[2]),
            Cow::Borrowed(&src),
            OutputDtype::F32,
        )
        .unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
    }

    #[test]
    fn half_conversions_match_torch() {
        // Values checked against torch 2.x `.to(torch.float16/bfloat16)` on CPU.
        let cases: &[(u32, u16, u16)] = &[
            (0x7fc00000, 0x7e00, 0xffff),
            (0xffc00000, 0xfe00, 0xffff),
            (0xff812345, 0xfe09, 0xffff),
            (0x7f800000, 0x7c00, 0x7f80),
            (0x477ff000, 0x7c00, 0x4780),
            (0x477fe000, 0x7bff, 0x4780),
            (0x33800000, 0x0001, 0x3380),
            (0x33000001, 0x0001, 0x3300),
            (0x3f808000, 0x3c04, 0x3f80),
            (0x3f818000, 0x3c0c, 0x3f82),
        ];
        for &(x, h, b) in cases {
            let x = f32::from_bits(x);
            assert_eq!(f32_to_f16_bits(x), h, "f16 of {x:e}");
            assert_eq!(f32_to_bf16_bits(x), b, "bf16 of {x:e}");
        }
    }

    #[test]
    fn header_is_padded_to_eight() {
        let (h, data) = header(&[entry(Transform::Copy, &[3])], OutputDtype::F16);
        assert_eq!(h.len() % 8, 0);
        assert_eq!(data, 6);
        let text = String::from_utf8(h).unwrap();
        assert!(text.starts_with(
            r#"{"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}"#
        ));
    }
}
