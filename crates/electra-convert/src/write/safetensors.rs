//! Streaming safetensors writer.
//!
//! The header is computed from the plan alone (names, shapes, output dtype), which fixes every
//! tensor's offset; then the tensors are read from the checkpoint, transposed and converted on
//! the fly and written at their offsets by two threads. Peak memory is about one large tensor
//! per thread.
//!
//! The byte layout follows what the `safetensors` library (and so transformers'
//! `save_pretrained`) produces for tensors of a single dtype: an 8-byte little-endian header
//! length, compact JSON with `__metadata__` first and then the tensors in byte-wise name order
//! (the order of their data), padded with spaces to a multiple of 8 bytes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::mapping::Entry;
use crate::options::OutputDtype;

use super::{trace, WriteError};

/// safetensors dtype name.
pub fn dtype_name(dtype: OutputDtype) -> &'static str {
    match dtype {
        OutputDtype::F32 => "F32",
        OutputDtype::F16 => "F16",
        OutputDtype::Bf16 => "BF16",
    }
}

/// Bytes per element of `dtype`.
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
pub(crate) fn file_size(entries: &[Entry], dtype: OutputDtype) -> u64 {
    let (h, data) = header(entries, dtype);
    8 + h.len() as u64 + data
}

use crate::kernels::{Target, TILE};

/// Bytes per piece when a tensor is copied without transposing: big enough that the `write`
/// syscalls cost nothing, small enough to stay in L2 between read, checksum and write.
pub(crate) const COPY_CHUNK: usize = 1 << 20;

/// Little-endian f32 bytes `src` (a whole number of elements) as `dtype` bytes, transposed
/// from `[rows, cols]` when `transpose` is given, written into `dst` (grown when too small,
/// never shrunk, so it can be reused). Returns the filled part of `dst`.
pub(crate) fn convert_into<'o>(
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
    let out = Target::of(&mut dst[..len], dtype);
    match transpose {
        Some((rows, cols)) => crate::kernels::transpose_columns(src, rows, cols, 0..cols, out),
        None => crate::kernels::convert(src, out),
    }
    &dst[..len]
}

/// Output rows `columns` of the transposed `[rows, cols]` f32 matrix `src` (little-endian
/// bytes) as `dtype` bytes, in `dst` (grown when too small, never shrunk). Returns the filled
/// part: the bytes of the output from element `columns.start * rows` on.
pub(crate) fn convert_columns_into<'o>(
    src: &[u8],
    (rows, cols): (usize, usize),
    columns: std::ops::Range<usize>,
    dtype: OutputDtype,
    dst: &'o mut Vec<u8>,
) -> &'o [u8] {
    let src: &[[u8; 4]] = bytemuck::cast_slice(src);
    let len = columns.len() * rows * element_size(dtype) as usize;
    if dst.len() < len {
        dst.resize(len, 0);
    }
    let out = Target::of(&mut dst[..len], dtype);
    crate::kernels::transpose_columns(src, rows, cols, columns, out);
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
    /// The variable `tf_name` as little-endian f32 bytes, in its checkpoint layout.
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

fn read_error(tf_name: &str) -> impl Fn(tf_checkpoint::CheckpointError) -> WriteError + '_ {
    move |e| WriteError::Read {
        tensor: tf_name.to_owned(),
        error: e.to_string(),
    }
}

fn is_f32(ckpt: &tf_checkpoint::Checkpoint, tf_name: &str) -> Result<bool, WriteError> {
    let info = ckpt.get(tf_name).ok_or_else(|| WriteError::Read {
        tensor: tf_name.to_owned(),
        error: "not in the checkpoint".to_owned(),
    })?;
    Ok(info.dtype == tf_checkpoint::DType::Float32)
}

/// Checkpoints are read with positioned reads into reused buffers (see
/// `Checkpoint::read_chunks`), not through the shard mapping: that keeps the resident set
/// bounded by the buffers instead of growing with every mapped page read.
impl TensorSource for tf_checkpoint::Checkpoint {
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
                tf_checkpoint::ChunkError::Read(e) => read_error(tf_name)(e),
                tf_checkpoint::ChunkError::Sink(e) => e,
            })
    }
}

/// Threads that convert and write tensors. Each takes the next tensor, reads and checks it,
/// converts it and writes it at its place in the file, so no thread waits for another to hand
/// over a buffer. Two keep both cores of the machine this was measured on busy; every further
/// thread would add its buffers (about one large kernel plus one output slice) to the memory.
const WORKERS: usize = 2;

/// Bytes of output produced per positioned write of a transposed tensor: the output buffer of
/// a thread is this size, not the size of the largest kernel.
pub const OUT_SLICE: usize = 2 << 20;

/// Where the file's bytes go: positioned writes, from several threads at once.
pub(crate) trait PositionedOutput: Sync {
    /// Write all of `bytes` at byte `offset` of the file.
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> std::io::Result<()>;

    /// Every byte before `end` has been written and will not change again. Called repeatedly
    /// as the written prefix grows, from any of the threads, so a later call may carry a
    /// smaller `end` than an earlier one. The default does nothing.
    fn settled(&self, end: u64) {
        let _ = end;
    }
}

/// One tensor's place in the file.
struct Task<'e> {
    entry: &'e Entry,
    /// Absolute offset of its first output byte, and its output size.
    offset: u64,
    len: u64,
}

/// How far the tensors have been written: a tensor's bytes are written front to back, so the
/// file is final up to the end of the written part of the first unfinished tensor.
struct Settled {
    /// Output bytes written so far, per task.
    written: Vec<u64>,
    /// The first task with bytes still to write.
    first_open: usize,
}

/// What the threads share.
struct Shared<'a> {
    tasks: Vec<Task<'a>>,
    /// The next task nobody has taken.
    next: AtomicUsize,
    /// Set when a thread fails: the others stop at their next piece.
    stop: AtomicBool,
    failure: Mutex<Option<WriteError>>,
    settled: Mutex<Settled>,
    /// Bytes written but not yet passed to the progress callback.
    unreported: AtomicU64,
    out: &'a dyn PositionedOutput,
    /// File size: the end of the last tensor.
    end: u64,
}

/// A thread stopped because another failed (its own work is abandoned, not wrong).
struct Halted;

/// Why a thread stopped early.
enum Stop {
    Failed(WriteError),
    Halted,
}

impl From<WriteError> for Stop {
    fn from(e: WriteError) -> Self {
        Stop::Failed(e)
    }
}

impl From<Halted> for Stop {
    fn from(_: Halted) -> Self {
        Stop::Halted
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared<'_> {
    fn halted(&self) -> Result<(), Halted> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Halted)
        } else {
            Ok(())
        }
    }

    /// Remember the first failure and make every thread stop.
    fn fail(&self, error: WriteError) {
        lock(&self.failure).get_or_insert(error);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Write `bytes` of task `i` at `at` bytes into its output (pieces of a task come in
    /// order), then tell the output how far the file is final.
    fn put(&self, i: usize, bytes: &[u8], at: u64) -> Result<(), WriteError> {
        let task = &self.tasks[i];
        let timer = trace::start();
        self.out
            .write_all_at(bytes, task.offset + at)
            .map_err(|e| WriteError::Io {
                path: "model.safetensors".into(),
                error: e.to_string(),
            })?;
        timer.stop("worker", "pwrite", bytes.len() as u64);
        let end = {
            let mut s = lock(&self.settled);
            s.written[i] += bytes.len() as u64;
            while s.first_open < self.tasks.len()
                && s.written[s.first_open] == self.tasks[s.first_open].len
            {
                s.first_open += 1;
            }
            match self.tasks.get(s.first_open) {
                Some(open) => open.offset + s.written[s.first_open],
                None => self.end,
            }
        };
        self.out.settled(end);
        self.unreported
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Take tasks until none are left (or another thread failed); `report` passes the bytes
/// written so far to the progress callback (only the calling thread has one).
fn work(
    shared: &Shared<'_>,
    source: &(dyn TensorSource + Sync),
    dtype: OutputDtype,
    report: &mut dyn FnMut(),
) {
    let mut input = Vec::new();
    let mut output = Vec::new();
    loop {
        if shared.halted().is_err() {
            return;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.tasks.len() {
            return;
        }
        let timer = trace::start();
        match write_tensor(shared, i, source, dtype, &mut input, &mut output, report) {
            Ok(()) => timer.stop("worker", "tensor", shared.tasks[i].len),
            Err(Stop::Halted) => return,
            Err(Stop::Failed(e)) => {
                shared.fail(e);
                return;
            }
        }
    }
}

/// Read, check, convert and write task `i`.
fn write_tensor(
    shared: &Shared<'_>,
    i: usize,
    source: &(dyn TensorSource + Sync),
    dtype: OutputDtype,
    input: &mut Vec<u8>,
    output: &mut Vec<u8>,
    report: &mut dyn FnMut(),
) -> Result<(), Stop> {
    let entry = shared.tasks[i].entry;
    let expected = entry.num_elements() * 4;
    let esize = element_size(dtype);
    match transpose_shape(entry) {
        None => {
            let mut got = 0u64;
            // The sink's error type cannot carry "halted"; remember it here.
            let mut halted = false;
            let mut sink = |piece: &[u8]| -> Result<(), WriteError> {
                if shared.halted().is_err() {
                    halted = true;
                    return Err(WriteError::Io {
                        path: "model.safetensors".into(),
                        error: "stopped".into(),
                    });
                }
                let at = got / 4 * esize;
                got += piece.len() as u64;
                if got > expected || piece.len() % 4 != 0 {
                    return Err(size_error(entry, got));
                }
                let bytes = match dtype {
                    OutputDtype::F32 => piece,
                    _ => convert_into(piece, None, dtype, output),
                };
                shared.put(i, bytes, at)?;
                report();
                Ok(())
            };
            let read = source.f32_le_chunks(&entry.tf, COPY_CHUNK, input, &mut sink);
            if halted {
                return Err(Stop::Halted);
            }
            read?;
            if got != expected {
                return Err(size_error(entry, got).into());
            }
        }
        Some((rows, cols)) => {
            let timer = trace::start();
            let src = source.f32_le_into(&entry.tf, input)?;
            timer.stop("worker", "read", src.len() as u64);
            if src.len() as u64 != expected {
                return Err(size_error(entry, src.len() as u64).into());
            }
            let row_bytes = rows * esize as usize;
            // Whole tiles per slice, at least one tile.
            let per_slice = (OUT_SLICE / row_bytes.max(1) / TILE).max(1) * TILE;
            for c0 in (0..cols).step_by(per_slice) {
                shared.halted()?;
                let c1 = (c0 + per_slice).min(cols);
                let timer = trace::start();
                let bytes = convert_columns_into(src, (rows, cols), c0..c1, dtype, output);
                timer.stop("worker", "transpose", bytes.len() as u64);
                shared.put(i, bytes, (c0 * row_bytes) as u64)?;
                report();
            }
        }
    }
    Ok(())
}

/// Write a complete safetensors file to `out`, calling `progress` with the sizes of the
/// pieces written. Returns the file size.
///
/// `WORKERS` (two) threads (the calling one among them) each take the next tensor, read and check
/// it, transpose and convert it and write it at its offset (known from the header), so reading,
/// converting and the kernel's copy into the page cache of different tensors overlap without
/// any thread waiting for another. Memory stays at a few buffers per thread: the largest
/// transposed tensor's input, one [`OUT_SLICE`] of output, one [`COPY_CHUNK`] for copied
/// tensors. A tensor whose checksum fails is only detected after its pieces were written, so on
/// any `Err` the caller must discard the file (the staging directory does).
pub(crate) fn write_safetensors(
    out: &dyn PositionedOutput,
    entries: &[Entry],
    source: &(dyn TensorSource + Sync),
    dtype: OutputDtype,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, WriteError> {
    let (header, data_len) = header(entries, dtype);
    let data_start = 8 + header.len() as u64;
    let mut head = Vec::with_capacity(data_start as usize);
    head.extend_from_slice(&(header.len() as u64).to_le_bytes());
    head.extend_from_slice(&header);
    out.write_all_at(&head, 0).map_err(|e| WriteError::Io {
        path: "model.safetensors".into(),
        error: e.to_string(),
    })?;
    progress(data_start);
    let mut offset = data_start;
    let tasks: Vec<Task<'_>> = entries
        .iter()
        .map(|entry| {
            let len = entry.num_elements() * element_size(dtype);
            let task = Task { entry, offset, len };
            offset += len;
            task
        })
        .collect();
    let shared = Shared {
        settled: Mutex::new(Settled {
            written: vec![0; tasks.len()],
            first_open: 0,
        }),
        tasks,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
        unreported: AtomicU64::new(0),
        out,
        end: data_start + data_len,
    };
    let mut report = || {
        let n = shared.unreported.swap(0, Ordering::Relaxed);
        if n > 0 {
            progress(n);
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..WORKERS)
            .map(|_| scope.spawn(|| work(&shared, source, dtype, &mut || {})))
            .collect();
        work(&shared, source, dtype, &mut report);
        for helper in helpers {
            helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
    });
    report();
    if let Some(error) = shared
        .failure
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    {
        return Err(error);
    }
    let settled = shared
        .settled
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Every task either finished or failed; no failure means every byte is written.
    assert_eq!(settled.first_open, shared.tasks.len(), "unwritten tensors");
    Ok(shared.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{f32_to_bf16_bits, f32_to_f16_bits, transpose_columns_map};
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
            transpose_columns_map(&src, rows, cols, 0..cols, &mut dst, |x| u64::from(x) << 1);
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
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("fixtures/format/half");
        let ckpt = tf_checkpoint::Checkpoint::open(&dir).unwrap();
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

    /// Any band of columns of the tiled transpose is the matching slice of the whole
    /// transpose, for bands that do and do not start or end on a tile edge.
    #[test]
    fn column_bands_of_the_transpose_are_slices_of_the_whole() {
        for (rows, cols) in [
            (7, 13),
            (3 * TILE + 5, 5 * TILE + 3),
            (1, 20),
            (20, 1),
            (4, 0),
        ] {
            let src: Vec<u32> = (0..(rows * cols) as u32).map(|x| x * 3 + 2).collect();
            let mut whole = vec![0u32; rows * cols];
            transpose_columns_map(&src, rows, cols, 0..cols, &mut whole, |x| x);
            for (a, b) in [
                (0, cols),
                (0, cols / 2),
                (cols / 2, cols),
                (1, cols.max(1) - 1),
            ] {
                if a > b {
                    continue;
                }
                let mut band = vec![0u32; (b - a) * rows];
                transpose_columns_map(&src, rows, cols, a..b, &mut band, |x| x);
                assert_eq!(
                    band,
                    whole[a * rows..b * rows],
                    "[{rows}, {cols}] columns {a}..{b}"
                );
            }
        }
    }

    /// A tensor source held in memory; names listed in `broken` fail to read.
    struct MemorySource {
        tensors: std::collections::HashMap<String, Vec<u8>>,
        broken: Vec<String>,
    }

    impl TensorSource for MemorySource {
        fn f32_le_bytes(&self, tf_name: &str) -> Result<Cow<'_, [u8]>, WriteError> {
            if self.broken.iter().any(|b| b == tf_name) {
                return Err(WriteError::Read {
                    tensor: tf_name.into(),
                    error: "broken on purpose".into(),
                });
            }
            Ok(Cow::Borrowed(&self.tensors[tf_name]))
        }
    }

    /// A file in memory that checks, at every `settled(end)`, that the first `end` bytes are
    /// already the final ones, and can refuse writes past `fail_from`.
    struct MemoryFile<'a> {
        bytes: Mutex<Vec<u8>>,
        expected: &'a [u8],
        settled_early: AtomicBool,
        settled_max: AtomicU64,
        fail_from: u64,
    }

    impl PositionedOutput for MemoryFile<'_> {
        fn write_all_at(&self, bytes: &[u8], offset: u64) -> std::io::Result<()> {
            if offset + bytes.len() as u64 > self.fail_from {
                return Err(std::io::Error::other("no space left (test)"));
            }
            let mut file = self.bytes.lock().unwrap();
            let end = offset as usize + bytes.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[offset as usize..end].copy_from_slice(bytes);
            Ok(())
        }

        fn settled(&self, end: u64) {
            let file = self.bytes.lock().unwrap();
            let end = end as usize;
            if end > file.len() || file[..end] != self.expected[..end] {
                self.settled_early.store(true, Ordering::Relaxed);
            }
            self.settled_max.fetch_max(end as u64, Ordering::Relaxed);
        }
    }

    fn memory_file(expected: &[u8], fail_from: u64) -> MemoryFile<'_> {
        MemoryFile {
            bytes: Mutex::new(Vec::new()),
            expected,
            settled_early: AtomicBool::new(false),
            settled_max: AtomicU64::new(0),
            fail_from,
        }
    }

    fn named(name: &str, transform: Transform, tf_shape: &[u64]) -> Entry {
        Entry {
            tf: format!("tf/{name}"),
            hf: name.into(),
            ..entry(transform, tf_shape)
        }
    }

    /// Tensors of every kind the writer treats differently: copied ones larger than a copy
    /// chunk, transposed ones larger than an output slice, small and empty ones.
    fn mixed_tensors() -> (Vec<Entry>, MemorySource) {
        let entries = vec![
            named("a.bias", Transform::Copy, &[3]),
            named(
                "b.big_copy",
                Transform::Copy,
                &[(COPY_CHUNK / 4) as u64 * 2 + 5, 1],
            ),
            named("c.empty", Transform::Copy, &[0, 4]),
            named("d.kernel", Transform::Transpose, &[600, 1000]),
            named("e.odd_kernel", Transform::Transpose, &[13, 9]),
            named("f.wide_kernel", Transform::Transpose, &[2, 300_001]),
            named("g.norm", Transform::Copy, &[8]),
        ];
        let mut x = 0x2545_f491_u32;
        let tensors = entries
            .iter()
            .map(|e| {
                let values: Vec<f32> = (0..e.num_elements())
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        (x as f32 / u32::MAX as f32 - 0.5) * 70_000.0
                    })
                    .collect();
                (e.tf.clone(), bytes(&values))
            })
            .collect();
        let source = MemorySource {
            tensors,
            broken: Vec::new(),
        };
        (entries, source)
    }

    /// The file as the definition gives it: length, header, then every tensor converted on its
    /// own, back to back.
    fn sequential_file(entries: &[Entry], source: &MemorySource, dtype: OutputDtype) -> Vec<u8> {
        let (head, _) = header(entries, dtype);
        let mut file = (head.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(&head);
        for e in entries {
            let src = source.f32_le_bytes(&e.tf).unwrap();
            file.extend_from_slice(&convert_tensor(e, src, dtype).unwrap());
        }
        file
    }

    /// The threaded, positioned writer gives exactly the sequential file for every output
    /// dtype, reports every byte to `progress`, and only ever declares a prefix settled once
    /// those bytes are final.
    #[test]
    fn threaded_writer_gives_the_sequential_file() {
        let (entries, source) = mixed_tensors();
        for dtype in [OutputDtype::F32, OutputDtype::F16, OutputDtype::Bf16] {
            let want = sequential_file(&entries, &source, dtype);
            assert_eq!(want.len() as u64, file_size(&entries, dtype));
            let file = memory_file(&want, u64::MAX);
            let mut reported = 0u64;
            let size =
                write_safetensors(&file, &entries, &source, dtype, &mut |n| reported += n).unwrap();
            assert_eq!(size, want.len() as u64);
            assert_eq!(reported, size, "{dtype:?}");
            assert!(
                *file.bytes.lock().unwrap() == want,
                "{dtype:?}: bytes differ"
            );
            assert!(!file.settled_early.load(Ordering::Relaxed), "{dtype:?}");
            assert_eq!(file.settled_max.load(Ordering::Relaxed), size, "{dtype:?}");
        }
    }

    /// A tensor that cannot be read fails the whole write with that tensor's error (the other
    /// thread stops instead of finishing or hanging).
    #[test]
    fn a_failed_read_fails_the_write() {
        let (entries, mut source) = mixed_tensors();
        source.broken.push("tf/d.kernel".into());
        let want = sequential_file(&entries, &source_without_breaks(&source), OutputDtype::F32);
        let file = memory_file(&want, u64::MAX);
        let err =
            write_safetensors(&file, &entries, &source, OutputDtype::F32, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&err, WriteError::Read { tensor, .. } if tensor == "tf/d.kernel"),
            "{err}"
        );
        assert!(!file.settled_early.load(Ordering::Relaxed));
        assert!(file.settled_max.load(Ordering::Relaxed) < want.len() as u64);
    }

    fn source_without_breaks(source: &MemorySource) -> MemorySource {
        MemorySource {
            tensors: source.tensors.clone(),
            broken: Vec::new(),
        }
    }

    /// A write the file refuses (disk full) fails the whole write with the I/O error.
    #[test]
    fn a_failed_write_fails_the_write() {
        let (entries, source) = mixed_tensors();
        let want = sequential_file(&entries, &source, OutputDtype::F16);
        let file = memory_file(&want, want.len() as u64 / 2);
        let err =
            write_safetensors(&file, &entries, &source, OutputDtype::F16, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&err, WriteError::Io { error, .. } if error.contains("no space left (test)")),
            "{err}"
        );
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
