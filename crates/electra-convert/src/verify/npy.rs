//! A small, strict reader for `.npy` arrays and `.npz` archives (numpy's `np.save` / `np.savez`).
//!
//! Only what reference files need is accepted: little-endian `<i8`, `<i4`, `<f4`, `<f8`,
//! C order (`fortran_order: False`), format versions 1.0, 2.0 and 3.0. Everything is validated
//! before any allocation that depends on the file: the data size implied by the header must equal
//! the bytes actually present, computed with checked arithmetic, so a hostile header cannot make
//! us allocate more than the file holds. Nothing here panics on any input.

use std::io::Read;

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `<i8`.
    I64,
    /// `<i4`.
    I32,
    /// `<f4`.
    F32,
    /// `<f8`.
    F64,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::I64 | NpyDtype::F64 => 8,
            NpyDtype::I32 | NpyDtype::F32 => 4,
        }
    }

    /// The numpy name (`int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            NpyDtype::I64 => "int64",
            NpyDtype::I32 => "int32",
            NpyDtype::F32 => "float32",
            NpyDtype::F64 => "float64",
        }
    }
}

/// Values of an array, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    /// int64 values.
    I64(Vec<i64>),
    /// int32 values.
    I32(Vec<i32>),
    /// float32 values.
    F32(Vec<f32>),
    /// float64 values.
    F64(Vec<f64>),
}

/// A decoded n-dimensional array (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimension sizes.
    pub shape: Vec<usize>,
    /// The values.
    pub data: ArrayData,
}

impl Array {
    /// The numpy name of the element type.
    pub fn dtype_name(&self) -> &'static str {
        match self.data {
            ArrayData::I64(_) => "int64",
            ArrayData::I32(_) => "int32",
            ArrayData::F32(_) => "float32",
            ArrayData::F64(_) => "float64",
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            ArrayData::I64(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decode little-endian `bytes` (exactly `product(shape) * size` of them) as `dtype`.
    pub fn from_le_bytes(dtype: NpyDtype, shape: Vec<usize>, bytes: &[u8]) -> Array {
        let data = match dtype {
            NpyDtype::I64 => ArrayData::I64(
                bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            NpyDtype::F64 => ArrayData::F64(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            NpyDtype::I32 => ArrayData::I32(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                    .collect(),
            ),
            NpyDtype::F32 => ArrayData::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                    .collect(),
            ),
        };
        Array { shape, data }
    }
}

/// Why a `.npy` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NpyError(pub String);

const MAGIC: &[u8] = b"\x93NUMPY";
/// Longest header we accept (numpy itself refuses headers over 10 000 bytes by default).
const MAX_HEADER: usize = 1 << 16;
/// Most dimensions we accept.
const MAX_DIMS: usize = 32;

/// Parse one `.npy` file held in memory.
pub fn parse_npy(bytes: &[u8]) -> Result<Array, NpyError> {
    let layout = parse_preamble(bytes)?;
    let data = &bytes[layout.data_offset..];
    if layout.data_len != data.len() {
        return Err(NpyError(format!(
            "shape {:?} of {} needs {} data bytes but the array holds {}",
            layout.shape,
            layout.dtype.name(),
            layout.data_len,
            data.len()
        )));
    }
    Ok(Array::from_le_bytes(layout.dtype, layout.shape, data))
}

/// Where the data of a `.npy` starts and how long it must be, from its magic, version and header.
struct NpyLayout {
    dtype: NpyDtype,
    shape: Vec<usize>,
    data_offset: usize,
    data_len: usize,
}

/// Longest prefix [`parse_preamble`] may need: magic, version, a 4-byte length and the header.
const MAX_PREAMBLE: usize = 12 + MAX_HEADER;

/// Parse the magic, version and header dict; `bytes` needs to hold at least the header.
fn parse_preamble(bytes: &[u8]) -> Result<NpyLayout, NpyError> {
    let err = |m: String| NpyError(m);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("not a .npy array (missing the \\x93NUMPY magic)".into()));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("truncated .npy header length".into()));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        _ => {
            return Err(err(format!(
                ".npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)"
            )))
        }
    };
    if header_len > MAX_HEADER {
        return Err(err(format!(
            ".npy header claims {header_len} bytes (more than {MAX_HEADER})"
        )));
    }
    let header_end = header_start + header_len;
    if header_end > bytes.len() {
        return Err(err(format!(
            ".npy header claims {header_len} bytes but the file has only {} after the preamble",
            bytes.len() - header_start
        )));
    }
    let header = std::str::from_utf8(&bytes[header_start..header_end])
        .map_err(|_| err(".npy header is not valid text".into()))?;
    let header = parse_header(header).map_err(|m| err(format!(".npy header: {m}")))?;
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(format!("shape {:?} overflows", header.shape)))?;
    let data_len = count
        .checked_mul(header.dtype.size())
        .ok_or_else(|| err(format!("shape {:?} overflows", header.shape)))?;
    Ok(NpyLayout {
        dtype: header.dtype,
        shape: header.shape,
        data_offset: header_end,
        data_len,
    })
}

struct Header {
    dtype: NpyDtype,
    shape: Vec<usize>,
}

/// Parse the Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut p = Lexer {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        match key.as_str() {
            "descr" if descr.is_none() => descr = Some(p.string()?),
            "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
            "shape" if shape.is_none() => shape = Some(p.tuple()?),
            "descr" | "fortran_order" | "shape" => return Err(format!("duplicate key '{key}'")),
            other => return Err(format!("unexpected key '{other}'")),
        }
        p.skip_ws();
        if p.eat(b',') {
            continue;
        }
        p.skip_ws();
        p.expect(b'}')?;
        break;
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err("text after the closing brace".into());
    }
    let descr = descr.ok_or("no 'descr'")?;
    let fortran = fortran.ok_or("no 'fortran_order'")?;
    let shape = shape.ok_or("no 'shape'")?;
    if fortran {
        return Err("fortran_order True is not supported (save the array in C order)".into());
    }
    let dtype = match descr.as_str() {
        "<i8" => NpyDtype::I64,
        "<i4" => NpyDtype::I32,
        "<f4" => NpyDtype::F32,
        "<f8" => NpyDtype::F64,
        other => {
            return Err(format!(
                "dtype '{other}' is not supported ('<i8', '<i4', '<f4' and '<f8' are)"
            ))
        }
    };
    Ok(Header { dtype, shape })
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at offset {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != quote {
            if self.s[self.i] == b'\\' {
                return Err("escape sequences are not supported in the header".into());
            }
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err("unterminated string".into());
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(text)
    }

    fn boolean(&mut self) -> Result<bool, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else {
            Err(format!("expected True or False at offset {}", self.i))
        }
    }

    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                break;
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if start == self.i {
                return Err(format!("expected a dimension at offset {start}"));
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let dim: usize = digits
                .parse()
                .map_err(|_| format!("dimension {digits} is too large"))?;
            // Python writes `3L` in old files.
            self.eat(b'L');
            dims.push(dim);
            if dims.len() > MAX_DIMS {
                return Err(format!("more than {MAX_DIMS} dimensions"));
            }
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            self.skip_ws();
            self.expect(b')')?;
            break;
        }
        Ok(dims)
    }
}

/// Most uncompressed bytes we read for one member (the largest reference output we expect,
/// a base generator's logits for a large batch, is far below this).
pub(crate) const MAX_MEMBER_BYTES: u64 = 4 << 30;

/// Read every `<name>.npy` member of an `.npz` archive held in `reader`.
pub fn parse_npz<R: Read + std::io::Seek>(reader: R) -> Result<Vec<(String, Array)>, NpyError> {
    let err = |m: String| NpyError(m);
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| err(format!("not a readable .npz (zip) archive: {e}")))?;
    let mut arrays: Vec<(String, Array)> = Vec::new();
    for index in 0..archive.len() {
        let mut member = archive
            .by_index(index)
            .map_err(|e| err(format!("zip member #{index}: {e}")))?;
        let name = member
            .name()
            .map_err(|e| err(format!("zip member #{index} has an unreadable name: {e}")))?
            .into_owned();
        if member.is_dir() {
            continue;
        }
        let Some(stem) = name.strip_suffix(".npy") else {
            return Err(err(format!(
                "member {name:?} is not a .npy array (an .npz holds only <name>.npy files)"
            )));
        };
        let declared = member.size();
        if declared > MAX_MEMBER_BYTES {
            return Err(err(format!(
                "member {name:?} claims {declared} uncompressed bytes (limit {MAX_MEMBER_BYTES})"
            )));
        }
        // Read the header first and check that the shape it declares accounts for exactly the
        // member's declared size, before reading (and allocating for) the data.
        let mut bytes = Vec::new();
        (&mut member)
            .take(declared.min(MAX_PREAMBLE as u64))
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("member {name:?}: {e}")))?;
        let layout = parse_preamble(&bytes).map_err(|e| err(format!("member {name:?}: {e}")))?;
        let total = (layout.data_offset as u64).checked_add(layout.data_len as u64);
        if total != Some(declared) {
            return Err(err(format!(
                "member {name:?}: its header describes {} bytes ({} of {} {:?}) but the archive declares {declared}",
                total.map_or_else(|| "too many".to_string(), |t| t.to_string()),
                layout.data_len,
                layout.dtype.name(),
                layout.shape
            )));
        }
        // Then the rest, at most one byte more than declared, growing only as data arrives.
        (&mut member)
            .take(declared + 1 - bytes.len() as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("member {name:?}: {e}")))?;
        if bytes.len() as u64 != declared {
            return Err(err(format!(
                "member {name:?} declares {declared} bytes but holds {}",
                bytes.len()
            )));
        }
        let array = parse_npy(&bytes).map_err(|e| err(format!("member {name:?}: {e}")))?;
        if arrays.iter().any(|(n, _)| n == stem) {
            return Err(err(format!("array {stem:?} appears twice")));
        }
        arrays.push((stem.to_string(), array));
    }
    Ok(arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_numpy_headers() {
        let data: Vec<u8> = [1i64, -2, 3, 4, 5, 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(&npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }",
            &data,
        ))
        .unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, ArrayData::I64(vec![1, -2, 3, 4, 5, 6]));

        let s = parse_npy(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            &1.5f32.to_le_bytes(),
        ))
        .unwrap();
        assert_eq!(s.shape, Vec::<usize>::new());
        assert_eq!(s.data, ArrayData::F32(vec![1.5]));

        let one = parse_npy(&npy(
            "{\"shape\": (1,), \"fortran_order\": False, \"descr\": \"<i4\"}",
            &7i32.to_le_bytes(),
        ))
        .unwrap();
        assert_eq!(one.data, ArrayData::I32(vec![7]));
    }

    #[test]
    fn rejects_bad_files() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage".to_vec(), "magic"),
            (
                npy(
                    "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 8],
                ),
                "dtype",
            ),
            (
                npy(
                    "{'descr': '<i8', 'fortran_order': True, 'shape': (1,), }",
                    &[0; 8],
                ),
                "fortran",
            ),
            (
                npy(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 8],
                ),
                "needs 16",
            ),
            (
                npy(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }",
                    &[0; 8],
                ),
                "overflow",
            ),
            (
                npy("{'descr': '<i8', 'fortran_order': False, }", &[0; 8]),
                "shape",
            ),
            (
                npy(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                    &[0; 8],
                ),
                "unexpected key",
            ),
            (b"\x93NUMPY\x01\x00\xff\xff{".to_vec(), "claims"),
            (b"\x93NUMPY\x09\x00\x00\x00".to_vec(), "version"),
        ];
        for (bytes, want) in cases {
            let got = parse_npy(&bytes).unwrap_err().0;
            assert!(got.contains(want), "{got:?} should mention {want:?}");
        }
    }

    #[test]
    fn never_panics_on_truncations() {
        let good = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
            &[0; 16],
        );
        for cut in 0..good.len() {
            let _ = parse_npy(&good[..cut]);
        }
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = parse_npy(&b);
        }
    }
}

#[cfg(test)]
mod npz_tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn npz(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in members {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_stored_and_deflated_archives() {
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let ids = npy_bytes(
                "<i8",
                "(1, 2)",
                &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
            );
            let logits = npy_bytes("<f4", "(1, 2)", &[0, 0, 128, 63, 0, 0, 0, 64]);
            let bytes = npz(&[("input_ids.npy", ids), ("logits.npy", logits)], method);
            let arrays = parse_npz(Cursor::new(bytes)).unwrap();
            assert_eq!(arrays[0].0, "input_ids");
            assert_eq!(arrays[0].1.data, ArrayData::I64(vec![1, 2]));
            assert_eq!(arrays[1].1.data, ArrayData::F32(vec![1.0, 2.0]));
        }
    }

    #[test]
    fn rejects_inconsistent_archives() {
        let stored = zip::CompressionMethod::Stored;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (npz(&[("notes.txt", b"hi".to_vec())], stored), "not a .npy"),
            (
                npz(&[("a.npy", npy_bytes("<i4", "(2,)", &[0; 4]))], stored),
                "archive declares",
            ),
            (
                // The header promises a huge array; the member is tiny.
                npz(
                    &[("a.npy", npy_bytes("<f8", "(1000000000, 1000)", &[0; 8]))],
                    stored,
                ),
                "archive declares",
            ),
            (b"PK\x03\x04garbage".to_vec(), "zip"),
        ];
        for (bytes, want) in cases {
            let got = parse_npz(Cursor::new(bytes)).unwrap_err().0;
            assert!(got.contains(want), "{got:?} should mention {want:?}");
        }
    }
}
