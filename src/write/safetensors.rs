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
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};

use half::{bf16, f16};
use serde_json::{json, Map, Value};

use crate::mapping::Entry;
use crate::options::OutputDtype;

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

/// Edge of the square tiles the transpose walks. Measured on this project's kernels
/// ([768,768], [768,3072], [3072,768] f32) 8 beat 16, 32 and 64: the source rows of a
/// [768,3072] kernel are 12 KiB apart, a multiple of 4 KiB, so every row of a tile lands in the
/// same L1 set and a tile taller than the cache's associativity (8) evicts itself.
const TILE: usize = 8;

/// Bytes per piece when a tensor is copied without transposing: big enough that the `write`
/// syscalls cost nothing, small enough to stay in L2 between read, checksum and write.
pub const COPY_CHUNK: usize = 1 << 20;

/// `dst[c * rows + r] = f(src[r * cols + c])` for a row-major `[rows, cols]` matrix `src`: its
/// transpose, element-wise mapped. Walks the matrix in `TILE`×`TILE` tiles so that both the
/// strided reads and the sequential writes stay in cache (the naive order misses on every read
/// of a large kernel).
///
/// Panics unless `src` and `dst` both hold `rows * cols` elements.
pub fn transpose_map<S: Copy, D: Copy>(
    src: &[S],
    rows: usize,
    cols: usize,
    dst: &mut [D],
    f: impl Fn(S) -> D,
) {
    assert_eq!(src.len(), rows * cols, "transpose source size");
    assert_eq!(dst.len(), rows * cols, "transpose destination size");
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for c in c0..c1 {
                let column = &mut dst[c * rows + r0..c * rows + r1];
                for (k, d) in column.iter_mut().enumerate() {
                    *d = f(src[(r0 + k) * cols + c]);
                }
            }
        }
    }
}

fn to_f16(b: [u8; 4]) -> [u8; 2] {
    f32_to_f16_bits(f32::from_le_bytes(b)).to_le_bytes()
}

fn to_bf16(b: [u8; 4]) -> [u8; 2] {
    f32_to_bf16_bits(f32::from_le_bytes(b)).to_le_bytes()
}

fn map_into<D: Copy>(
    src: &[[u8; 4]],
    transpose: Option<(usize, usize)>,
    dst: &mut [D],
    f: impl Fn([u8; 4]) -> D,
) {
    match transpose {
        Some((rows, cols)) => transpose_map(src, rows, cols, dst, f),
        None => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f(s);
            }
        }
    }
}

/// Little-endian f32 bytes `src` (a whole number of elements) as `dtype` bytes, transposed
/// from `[rows, cols]` when `transpose` is given, written into `dst` (grown when too small,
/// never shrunk, so it can be reused). Returns the filled part of `dst`.
pub fn convert_into<'o>(
    src: &[u8],
    transpose: Option<(usize, usize)>,
    dtype: OutputDtype,
    dst: &'o mut Vec<u8>,
) -> &'o [u8] {
    let src: &[[u8; 4]] = bytemuck::cast_slice(src);
    let len = src.len() * element_size(dtype) as usize;
    if dst.len() < len {
        dst.resize(len, 0);
    }
    let out = &mut dst[..len];
    match dtype {
        OutputDtype::F32 => map_into(src, transpose, bytemuck::cast_slice_mut(out), |b| b),
        OutputDtype::F16 => map_into(src, transpose, bytemuck::cast_slice_mut(out), to_f16),
        OutputDtype::Bf16 => map_into(src, transpose, bytemuck::cast_slice_mut(out), to_bf16),
    }
    &dst[..len]
}

/// `[rows, cols]` of a transposed entry, `None` for a copied one.
fn transpose_shape(entry: &Entry) -> Option<(usize, usize)> {
    entry
        .transform
        .matrix(&entry.tf_shape)
        .map(|(rows, cols)| (rows as usize, cols as usize))
}

fn size_error(entry: &Entry, got: u64) -> WriteError {
    WriteError::SourceSize {
        tensor: entry.tf.clone(),
        got,
        expected: entry.num_elements() * 4,
    }
}

/// Turn one source tensor (little-endian f32 bytes in TF layout) into output bytes.
pub fn convert_tensor<'a>(
    entry: &Entry,
    src: Cow<'a, [u8]>,
    dtype: OutputDtype,
) -> Result<Cow<'a, [u8]>, WriteError> {
    if src.len() as u64 != entry.num_elements() * 4 {
        return Err(size_error(entry, src.len() as u64));
    }
    let transpose = transpose_shape(entry);
    if transpose.is_none() && dtype == OutputDtype::F32 {
        return Ok(src);
    }
    let mut out = Vec::new();
    convert_into(&src, transpose, dtype, &mut out);
    Ok(Cow::Owned(out))
}

/// Where the tensors' values come from: little-endian f32 bytes of a checkpoint variable in TF
/// layout. Only [`f32_le_bytes`](TensorSource::f32_le_bytes) is required; the other two exist
/// so a source can avoid holding whole tensors (the defaults go through `f32_le_bytes`).
pub trait TensorSource {
    fn f32_le_bytes(&self, tf_name: &str) -> Result<Cow<'_, [u8]>, WriteError>;

    /// The same bytes, in `buf` (reused across tensors: grown, never shrunk). Returns the
    /// filled part.
    fn f32_le_into<'b>(&self, tf_name: &str, buf: &'b mut Vec<u8>) -> Result<&'b [u8], WriteError> {
        copy_into(&self.f32_le_bytes(tf_name)?, buf)
    }

    /// The same bytes, handed to `sink` in order in pieces of at most `chunk` bytes, using `buf`
    /// as scratch. The error of a failed check (a checksum mismatch) may only come after `sink`
    /// has seen every piece: whatever the pieces went to must then be thrown away.
    fn f32_le_chunks(
        &self,
        tf_name: &str,
        chunk: usize,
        buf: &mut Vec<u8>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let _ = buf;
        feed_in_chunks(&self.f32_le_bytes(tf_name)?, chunk, sink)
    }
}

/// `bytes` copied into the reused `buf`; returns the filled part.
fn copy_into<'b>(bytes: &[u8], buf: &'b mut Vec<u8>) -> Result<&'b [u8], WriteError> {
    buf.clear();
    buf.extend_from_slice(bytes);
    Ok(&buf[..])
}

/// `bytes` handed to `sink` in order, in pieces of at most `chunk` bytes.
fn feed_in_chunks(
    bytes: &[u8],
    chunk: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    for piece in bytes.chunks(chunk.max(1)) {
        sink(piece)?;
    }
    Ok(())
}

fn read_error(tf_name: &str) -> impl Fn(crate::checkpoint::CheckpointError) -> WriteError + '_ {
    move |e| WriteError::Read {
        tensor: tf_name.to_owned(),
        error: e.to_string(),
    }
}

fn is_f32(ckpt: &crate::checkpoint::Checkpoint, tf_name: &str) -> Result<bool, WriteError> {
    let info = ckpt.get(tf_name).ok_or_else(|| WriteError::Read {
        tensor: tf_name.to_owned(),
        error: "not in the checkpoint".to_owned(),
    })?;
    Ok(info.dtype == crate::checkpoint::DType::Float32)
}

/// Checkpoints are read with positioned reads into reused buffers (see
/// `Checkpoint::read_chunks`), not through the shard mapping: that keeps the resident set
/// bounded by the buffers instead of growing with every mapped page read.
impl TensorSource for crate::checkpoint::Checkpoint {
    fn f32_le_bytes(&self, tf_name: &str) -> Result<Cow<'_, [u8]>, WriteError> {
        if is_f32(self, tf_name)? {
            self.read_bytes(tf_name).map_err(read_error(tf_name))
        } else {
            let values = self.read_f32(tf_name).map_err(read_error(tf_name))?;
            Ok(Cow::Owned(
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ))
        }
    }

    fn f32_le_into<'b>(&self, tf_name: &str, buf: &'b mut Vec<u8>) -> Result<&'b [u8], WriteError> {
        if is_f32(self, tf_name)? {
            self.read_into(tf_name, buf).map_err(read_error(tf_name))
        } else {
            copy_into(&self.f32_le_bytes(tf_name)?, buf)
        }
    }

    fn f32_le_chunks(
        &self,
        tf_name: &str,
        chunk: usize,
        buf: &mut Vec<u8>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        if !is_f32(self, tf_name)? {
            return feed_in_chunks(&self.f32_le_bytes(tf_name)?, chunk, sink);
        }
        self.read_chunks(tf_name, chunk, buf, sink)
            .map_err(|e| match e {
                crate::checkpoint::ChunkError::Read(e) => read_error(tf_name)(e),
                crate::checkpoint::ChunkError::Sink(e) => e,
            })
    }
}

/// Buffers in flight between the converting thread and the writing thread.
const BUFFERS: usize = 4;

/// The converting side of the writer thread: hands out recycled buffers and sends filled
/// ones (with their filled length) to be written.
struct Pipe {
    to_writer: SyncSender<(Vec<u8>, usize)>,
    recycled: Receiver<Vec<u8>>,
    made: usize,
}

/// The writer thread is gone (it failed; its error is the one to report).
struct WriterGone;

impl Pipe {
    fn buffer(&mut self) -> Result<Vec<u8>, WriterGone> {
        if let Ok(buf) = self.recycled.try_recv() {
            return Ok(buf);
        }
        if self.made < BUFFERS {
            self.made += 1;
            return Ok(Vec::new());
        }
        self.recycled.recv().map_err(|_| WriterGone)
    }

    fn send(&self, buf: Vec<u8>, len: usize) -> Result<(), WriterGone> {
        self.to_writer.send((buf, len)).map_err(|_| WriterGone)
    }
}

/// Why converting stopped: an error of its own, or the writer thread failed.
enum Stop {
    Failed(WriteError),
    WriterGone,
}

impl From<WriteError> for Stop {
    fn from(e: WriteError) -> Self {
        Stop::Failed(e)
    }
}

impl From<WriterGone> for Stop {
    fn from(_: WriterGone) -> Self {
        Stop::WriterGone
    }
}

/// Read, check and convert every tensor in order, sending the output bytes down `pipe`.
fn produce(
    pipe: &mut Pipe,
    entries: &[Entry],
    source: &dyn TensorSource,
    dtype: OutputDtype,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, Stop> {
    let mut written = 0u64;
    let mut input = Vec::new();
    for entry in entries {
        let expected = entry.num_elements() * 4;
        match transpose_shape(entry) {
            None => {
                let mut got = 0u64;
                // The sink's own error type cannot carry "writer gone"; remember it here.
                let mut gone = false;
                let mut sink = |piece: &[u8]| {
                    got += piece.len() as u64;
                    if got > expected || piece.len() % 4 != 0 {
                        return Err(size_error(entry, got));
                    }
                    let sent = pipe.buffer().and_then(|mut buf| {
                        let len = match dtype {
                            OutputDtype::F32 => {
                                if buf.len() < piece.len() {
                                    buf.resize(piece.len(), 0);
                                }
                                buf[..piece.len()].copy_from_slice(piece);
                                piece.len()
                            }
                            _ => convert_into(piece, None, dtype, &mut buf).len(),
                        };
                        written += len as u64;
                        progress(len as u64);
                        pipe.send(buf, len)
                    });
                    sent.map_err(|WriterGone| {
                        gone = true;
                        WriteError::Io {
                            path: "model.safetensors".into(),
                            error: "the writer stopped".into(),
                        }
                    })
                };
                let read = source.f32_le_chunks(&entry.tf, COPY_CHUNK, &mut input, &mut sink);
                if gone {
                    return Err(Stop::WriterGone);
                }
                read?;
                if got != expected {
                    return Err(size_error(entry, got).into());
                }
            }
            Some(shape) => {
                let src = source.f32_le_into(&entry.tf, &mut input)?;
                if src.len() as u64 != expected {
                    return Err(size_error(entry, src.len() as u64).into());
                }
                let mut buf = pipe.buffer()?;
                let len = convert_into(src, Some(shape), dtype, &mut buf).len();
                written += len as u64;
                progress(len as u64);
                pipe.send(buf, len)?;
            }
        }
    }
    Ok(written)
}

/// Stream a complete safetensors file into `out`, calling `progress` with each chunk's size.
///
/// Tensors are read, checked and converted on the calling thread while a second thread writes
/// the finished bytes, so the kernel's copy into the page cache overlaps the next tensor's
/// work. Memory stays at a few buffers the size of the largest transposed tensor: copied
/// tensors go through in [`COPY_CHUNK`] pieces. A tensor whose checksum fails is only detected
/// after its pieces were written, so on any `Err` the caller must discard `out`'s destination
/// (the staging directory does).
pub fn write_safetensors<W: Write + Send>(
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
    let (to_writer, filled) = sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (give_back, recycled) = channel::<Vec<u8>>();
    let (produced, wrote) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<()> {
            for (buf, len) in filled {
                out.write_all(&buf[..len])?;
                // The converting side may be finished and gone; nothing to recycle then.
                let _ = give_back.send(buf);
            }
            Ok(())
        });
        let mut pipe = Pipe {
            to_writer,
            recycled,
            made: 0,
        };
        let produced = produce(&mut pipe, entries, source, dtype, progress);
        drop(pipe); // closes the channel: the writer drains it and ends
        let wrote = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (produced, wrote)
    });
    let written = match (produced, wrote) {
        (Ok(written), Ok(())) => written,
        (_, Err(e)) => return Err(io(e)),
        (Err(Stop::Failed(e)), Ok(())) => return Err(e),
        // Not expected: the writer only ends early on an error.
        (Err(Stop::WriterGone), Ok(())) => {
            return Err(io(std::io::Error::other("the writer thread stopped early")))
        }
    };
    debug_assert_eq!(written, data_len);
    Ok(8 + header.len() as u64 + written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Transform;

    fn entry(transform: Transform, tf_shape: &[u64]) -> Entry {
        let hf_shape = transform.hf_shape(tf_shape);
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

    /// Model Garden's einsum kernels: q/k/v `[H, N, D]` and the attention output `[N, D, H]`
    /// become `reshape(·, [H, H])ᵀ`; an `[N, D]` bias is its values in order.
    #[test]
    fn einsum_kernels_reshape_then_transpose() {
        // [2, 2, 3] with values 0..12: as [2, 6] (merge last) or [4, 3] (merge first).
        let v: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let last = entry(Transform::MergeLastTranspose, &[2, 2, 3]);
        assert_eq!(last.hf_shape, [6, 2]);
        let out = convert_tensor(&last, Cow::Owned(bytes(&v)), OutputDtype::F32).unwrap();
        let want: Vec<f32> = (0..6).flat_map(|c| [c as f32, (6 + c) as f32]).collect();
        assert_eq!(&out[..], &bytes(&want)[..]);
        let first = entry(Transform::MergeFirstTranspose, &[2, 2, 3]);
        assert_eq!(first.hf_shape, [3, 4]);
        let out = convert_tensor(&first, Cow::Owned(bytes(&v)), OutputDtype::F32).unwrap();
        let want: Vec<f32> = (0..3)
            .flat_map(|c| (0..4).map(move |r| (r * 3 + c) as f32))
            .collect();
        assert_eq!(&out[..], &bytes(&want)[..]);
        let flat = entry(Transform::Flatten, &[2, 3]);
        assert_eq!(flat.hf_shape, [6]);
        let out = convert_tensor(&flat, Cow::Owned(bytes(&v[..6])), OutputDtype::F16).unwrap();
        assert_eq!(out.len(), 12);
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

    fn naive_transpose(src: &[u32], rows: usize, cols: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(rows * cols);
        for c in 0..cols {
            for r in 0..rows {
                out.push(src[r * cols + c]);
            }
        }
        out
    }

    /// The tiled walk equals the definition on shapes that are not multiples of the tile (and
    /// degenerate ones), with a mapping applied.
    #[test]
    fn tiled_transpose_matches_the_definition() {
        let shapes = [
            (1, 1),
            (1, 9),
            (9, 1),
            (7, 13),
            (TILE, TILE),
            (TILE + 1, TILE - 1),
            (3 * TILE + 5, 2 * TILE + 3),
            (64, 1),
            (100, 37),
            (0, 5),
            (5, 0),
        ];
        for (rows, cols) in shapes {
            let src: Vec<u32> = (0..(rows * cols) as u32).map(|x| x * 7 + 1).collect();
            let mut dst = vec![0u64; rows * cols];
            transpose_map(&src, rows, cols, &mut dst, |x| u64::from(x) << 1);
            let want: Vec<u64> = naive_transpose(&src, rows, cols)
                .into_iter()
                .map(|x| u64::from(x) << 1)
                .collect();
            assert_eq!(dst, want, "[{rows}, {cols}]");
        }
    }

    /// `convert_into` with a reused (and oversized) output buffer gives what the element-wise
    /// definition gives, for every output dtype, transposed or not.
    #[test]
    fn convert_into_reuses_its_buffer() {
        let (rows, cols) = (19, 45);
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| (i as f32 - 300.0) * 0.37 + 1e-3)
            .collect();
        let src = bytes(&values);
        let mut out = vec![0xAA; 100_000];
        for dtype in [OutputDtype::F32, OutputDtype::F16, OutputDtype::Bf16] {
            let elem = |x: f32| -> Vec<u8> {
                match dtype {
                    OutputDtype::F32 => x.to_le_bytes().to_vec(),
                    OutputDtype::F16 => f32_to_f16_bits(x).to_le_bytes().to_vec(),
                    OutputDtype::Bf16 => f32_to_bf16_bits(x).to_le_bytes().to_vec(),
                }
            };
            let plain: Vec<u8> = values.iter().flat_map(|&x| elem(x)).collect();
            assert_eq!(convert_into(&src, None, dtype, &mut out), &plain[..]);
            let idx: Vec<u32> = (0..(rows * cols) as u32).collect();
            let transposed: Vec<u8> = naive_transpose(&idx, rows, cols)
                .into_iter()
                .flat_map(|i| elem(values[i as usize]))
                .collect();
            assert_eq!(
                convert_into(&src, Some((rows, cols)), dtype, &mut out),
                &transposed[..]
            );
        }
        assert_eq!(out.len(), 100_000);
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

    /// float16 / bfloat16 checkpoint variables come out of every `TensorSource` path as the
    /// same f32 values that `read_f32` decodes (real TF-written fixture).
    #[test]
    fn half_checkpoint_variables_read_as_f32_through_every_path() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format/half");
        let ckpt = crate::checkpoint::Checkpoint::open(&dir).unwrap();
        for name in ["h16", "bf16", "f32_neighbour"] {
            let want: Vec<u8> = ckpt
                .read_f32(name)
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            assert_eq!(
                want.len(),
                ckpt.get(name).unwrap().num_elements() as usize * 4
            );
            assert_eq!(&*ckpt.f32_le_bytes(name).unwrap(), &want[..], "{name}");
            let mut buf = vec![0xAA; 3];
            assert_eq!(
                ckpt.f32_le_into(name, &mut buf).unwrap(),
                &want[..],
                "{name}"
            );
            let mut got = Vec::new();
            let mut pieces = 0;
            ckpt.f32_le_chunks(name, 7, &mut buf, &mut |p| {
                assert!(p.len() <= 7);
                pieces += 1;
                got.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, want, "{name}");
            assert_eq!(pieces, want.len().div_ceil(7), "{name}");
        }
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
