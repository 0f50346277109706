//! Reading tensor data with positioned reads instead of the memory map.
//!
//! [`Checkpoint::read_bytes`] hands out slices of the shard mapping. That is the cheapest way to
//! look at a tensor once, but a caller that pushes gigabytes through (a conversion) pays for it
//! twice: every 4 KiB page is faulted in on first touch, and every touched page of the mapping
//! counts toward the process's resident set until the shard is unmapped, so peak RSS grows to the
//! size of everything read. The methods here copy the bytes with `pread` into a buffer the caller
//! owns and reuses, in pieces small enough to stay in the CPU cache while the CRC is computed
//! over them, so memory stays bounded by the buffer.
//!
//! Both methods accept exactly what `read_bytes` accepts and return the same bytes
//! (little-endian, byte-swapped for big-endian bundles). Partitioned variables are assembled
//! through `read_bytes` (they are rare and small).

use std::fs::File;

use super::{crc, unassemblable, Checkpoint, CheckpointError, DType, Endianness, Layout, Stored};

/// Bytes read and checksummed per `pread`: a piece stays in L2 between the copy and the CRC.
const PIECE: usize = 256 * 1024;

/// Why [`Checkpoint::read_chunks`] stopped: the checkpoint could not be read (or its CRC did not
/// match), or the caller's sink failed.
#[derive(Debug)]
pub enum ChunkError<E> {
    /// Reading or checking the tensor failed.
    Read(CheckpointError),
    /// The caller's sink returned this error.
    Sink(E),
}

impl<E> From<CheckpointError> for ChunkError<E> {
    fn from(e: CheckpointError) -> Self {
        ChunkError::Read(e)
    }
}

/// Fill `buf` from byte `offset` of `file` (a positioned read: no shared file position, so
/// threads may read one file at once). Also used by the safetensors readers of `verify` and
/// `export`.
#[cfg(unix)]
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fill `buf` from byte `offset` of `file` (seek, then read).
#[cfg(not(unix))]
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// An open data shard and the tensor being read from it (for error messages).
struct Source<'a> {
    ckpt: &'a Checkpoint,
    file: File,
    stored: &'a Stored,
    tensor: &'a str,
    /// Byte-swap unit for big-endian bundles, 1 for none.
    swap: usize,
}

impl<'a> Source<'a> {
    fn open(
        ckpt: &'a Checkpoint,
        stored: &'a Stored,
        tensor: &'a str,
        dtype: DType,
    ) -> Result<Self, CheckpointError> {
        let shard = &ckpt.shards[stored.shard];
        let file = File::open(&shard.path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                CheckpointError::ShardMissing {
                    path: shard.path.clone(),
                    prefix: ckpt.prefix.clone(),
                    tensor: tensor.to_string(),
                }
            } else {
                CheckpointError::Io {
                    path: shard.path.clone(),
                    error,
                }
            }
        })?;
        let swap = match ckpt.header.endianness {
            Endianness::Big => dtype.swap_width(),
            _ => 1,
        };
        Ok(Source {
            ckpt,
            file,
            stored,
            tensor,
            swap,
        })
    }

    /// Fill `buf` with the stored bytes at `at` (relative to the entry), extend `crc` over
    /// them, then byte-swap in place if needed.
    fn read(&self, buf: &mut [u8], at: u64, crc: &mut u32) -> Result<(), CheckpointError> {
        for (k, piece) in buf.chunks_mut(PIECE).enumerate() {
            let shard_base = self.ckpt.shards[self.stored.shard].base;
            let offset = shard_base + self.stored.offset + at + (k * PIECE) as u64;
            read_exact_at(&self.file, piece, offset).map_err(|error| {
                let shard = &self.ckpt.shards[self.stored.shard];
                if error.kind() == std::io::ErrorKind::UnexpectedEof {
                    // The index was checked against the file at open; it shrank since.
                    CheckpointError::ShardTooShort {
                        path: shard.path.clone(),
                        len: self.file.metadata().map(|m| m.len()).unwrap_or(0),
                        needed: self.stored.offset + self.stored.size,
                        tensor: self.tensor.to_string(),
                    }
                } else {
                    CheckpointError::Io {
                        path: shard.path.clone(),
                        error,
                    }
                }
            })?;
            *crc = crc::extend(*crc, piece);
        }
        if self.swap > 1 {
            for unit in buf.chunks_exact_mut(self.swap) {
                unit.reverse();
            }
        }
        Ok(())
    }

    fn finish(&self, crc: u32) -> Result<(), CheckpointError> {
        self.ckpt.verify_crc(self.tensor, self.stored, crc)
    }
}

impl Checkpoint {
    /// The layout of a numeric tensor, or the error `read_bytes` gives for it.
    fn numeric_layout(&self, name: &str) -> Result<(usize, &super::TensorInfo), CheckpointError> {
        let (i, info) = self.lookup(name)?;
        match info.dtype {
            DType::String => Err(CheckpointError::WrongDtype {
                tensor: info.name.clone(),
                dtype: info.dtype.tf_name(),
                wanted: "a numeric tensor (use read_strings)",
            }),
            DType::Other(_) => Err(CheckpointError::UnsupportedDtype {
                tensor: info.name.clone(),
                dtype: info.dtype.tf_name(),
            }),
            _ => match &self.layouts[i] {
                Layout::Unassemblable => Err(unassemblable(info)),
                _ => Ok((i, info)),
            },
        }
    }

    /// The bytes [`read_bytes`](Checkpoint::read_bytes) returns, read with positioned reads
    /// into `buf` (grown when too small, never shrunk, so one buffer serves many tensors) and
    /// CRC-verified before this returns. Returns the filled prefix of `buf`.
    pub fn read_into<'b>(
        &self,
        name: &str,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], CheckpointError> {
        let (i, info) = self.numeric_layout(name)?;
        let stored = match &self.layouts[i] {
            Layout::Plain(stored) => stored,
            _ => {
                let bytes = self.read_bytes(name)?;
                buf.clear();
                buf.extend_from_slice(&bytes);
                return Ok(&buf[..]);
            }
        };
        // Validated at open: size == elements × element size, within the shard.
        let size = stored.size as usize;
        if buf.len() < size {
            buf.resize(size, 0);
        }
        let source = Source::open(self, stored, &info.name, info.dtype)?;
        let mut crc = 0;
        source.read(&mut buf[..size], 0, &mut crc)?;
        source.finish(crc)?;
        Ok(&buf[..size])
    }

    /// Stream the bytes [`read_bytes`](Checkpoint::read_bytes) returns to `sink`, in order, in
    /// pieces of at most `chunk` bytes (at least one byte), read with positioned reads into `buf`
    /// (reused like in [`read_into`](Checkpoint::read_into)).
    ///
    /// The CRC is computed as the bytes go by and compared after the last piece, so `sink` may
    /// have seen every byte of a tensor that then fails with
    /// [`CheckpointError::TensorChecksum`]: a caller that writes the pieces somewhere must treat
    /// an `Err` as "everything written for this tensor is garbage" and discard it.
    pub fn read_chunks<E>(
        &self,
        name: &str,
        chunk: usize,
        buf: &mut Vec<u8>,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), ChunkError<E>> {
        let chunk = chunk.max(1);
        let (i, info) = self.numeric_layout(name)?;
        let stored = match &self.layouts[i] {
            Layout::Plain(stored) => stored,
            _ => {
                let bytes = self.read_bytes(name)?;
                for piece in bytes.chunks(chunk) {
                    sink(piece).map_err(ChunkError::Sink)?;
                }
                return Ok(());
            }
        };
        let size = stored.size;
        // Keep whole swap units in a piece (chunk sizes that are not multiples are rounded).
        let unit = if self.header.endianness == Endianness::Big {
            info.dtype.swap_width()
        } else {
            1
        };
        let chunk = (chunk / unit).max(1) * unit;
        let want = (chunk as u64).min(size) as usize;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let source = Source::open(self, stored, &info.name, info.dtype)?;
        let mut crc = 0;
        let mut at = 0u64;
        while at < size {
            let n = ((size - at) as usize).min(chunk);
            source.read(&mut buf[..n], at, &mut crc)?;
            sink(&buf[..n]).map_err(ChunkError::Sink)?;
            at += n as u64;
        }
        source.finish(crc)?;
        Ok(())
    }

    /// The values [`read_f32`](Checkpoint::read_f32) returns, appended to `out`, read with
    /// positioned reads (no mapping) and CRC-verified before this returns. A float32 tensor is
    /// read straight into `out`'s memory on a little-endian host; other dtypes are decoded piece
    /// by piece from `buf` (reused like in [`read_into`](Checkpoint::read_into)). On an error,
    /// `out` may hold part of the tensor.
    pub fn read_f32_into(
        &self,
        name: &str,
        buf: &mut Vec<u8>,
        out: &mut Vec<f32>,
    ) -> Result<(), CheckpointError> {
        let (_, info) = self.lookup(name)?;
        if !info.dtype.is_float() {
            return Err(self.wrong(info, "a floating-point tensor"));
        }
        let (i, info) = self.numeric_layout(name)?;
        if let (Layout::Plain(stored), DType::Float32, true) =
            (&self.layouts[i], info.dtype, cfg!(target_endian = "little"))
        {
            // Validated at open: size == elements × 4. `Source::read` leaves the bytes in
            // little-endian order (swapped for a big-endian bundle), the host's order here.
            let count = stored.size as usize / 4;
            let start = out.len();
            if out.is_empty() {
                // Zeroed pages straight from the allocator (calloc), not a memset.
                *out = crate::buffer::zeroed_f32(count);
            } else {
                out.resize(start + count, 0.0);
            }
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[start..]);
            let source = Source::open(self, stored, &info.name, info.dtype)?;
            let mut crc = 0;
            source.read(bytes, 0, &mut crc)?;
            return source.finish(crc);
        }
        let dtype = info.dtype;
        self.read_chunks(name, 1 << 20, buf, |bytes| {
            super::decode_f32(dtype, bytes, out);
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|e| match e {
            ChunkError::Read(e) => e,
            ChunkError::Sink(never) => match never {},
        })
    }

    /// The values [`read_f32`](Checkpoint::read_f32) returns, streamed: read like
    /// [`read_chunks`](Checkpoint::read_chunks) in pieces of about `chunk` bytes (rounded down
    /// to a multiple of 8, at least 8), each decoded to f32 and handed to `sink` with the index
    /// of its first element. Memory stays at one piece however large the tensor. The CRC caveat
    /// of `read_chunks` applies: an `Err` after some pieces means all of them are garbage.
    pub fn read_f32_chunks<E>(
        &self,
        name: &str,
        chunk: usize,
        buf: &mut Vec<u8>,
        mut sink: impl FnMut(usize, &[f32]) -> Result<(), E>,
    ) -> Result<(), ChunkError<E>> {
        let (_, info) = self.lookup(name)?;
        if !info.dtype.is_float() {
            return Err(ChunkError::Read(
                self.wrong(info, "a floating-point tensor"),
            ));
        }
        let dtype = info.dtype;
        // Whole elements in every piece: 8 is a multiple of every float width.
        let chunk = (chunk / 8).max(1) * 8;
        let mut values = Vec::new();
        let mut first = 0;
        self.read_chunks(name, chunk, buf, |bytes| {
            values.clear();
            super::decode_f32(dtype, bytes, &mut values);
            sink(first, &values)?;
            first += values.len();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::testing::{build_bundle, TensorSpec};
    use super::super::with_suffix;
    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("fixtures")
    }

    fn write(dir: &Path, index: &[u8], data: &[u8]) -> PathBuf {
        crate::testing::write_single_shard(dir, index, data).unwrap()
    }

    fn spec(name: &str, dtype: DType, shape: &[i64], data: Vec<u8>) -> TensorSpec {
        crate::testing::tensor(name, dtype, shape, data)
    }

    /// Deterministic bytes that are not a repeating pattern of any short period.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// `read_f32_chunks` (piece by piece, at the right element indices) and `read_f32_into`
    /// give `read_f32`'s values for every float tensor of the format fixtures (f32, f64, f16,
    /// bf16, partitioned, multi-shard), and refuse the others with `read_f32`'s error.
    #[test]
    fn streamed_f32_reads_equal_read_f32_on_the_fixtures() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut buf = Vec::new();
        let mut checked = 0;
        for name in ["basic", "half", "partitioned", "multishard", "tiny"] {
            let ckpt =
                Checkpoint::open(&fixtures().join("format").join(name).join("ckpt")).unwrap();
            for info in ckpt.tensors() {
                let mut into = vec![7.0];
                let into_result = ckpt.read_f32_into(&info.name, &mut buf, &mut into);
                for chunk in [1, 8, 12, 4096] {
                    let mut got = Vec::new();
                    let result =
                        ckpt.read_f32_chunks(&info.name, chunk, &mut buf, |first, piece| {
                            assert_eq!(first, got.len());
                            got.extend_from_slice(piece);
                            Ok::<(), ()>(())
                        });
                    match ckpt.read_f32(&info.name) {
                        Ok(want) => {
                            result.unwrap();
                            assert_eq!(bits(&got), bits(&want), "{name}/{} {chunk}", info.name);
                            assert_eq!(into_result.as_ref().ok(), Some(&()));
                            assert_eq!(into[0], 7.0, "read_f32_into appends");
                            assert_eq!(bits(&into[1..]), bits(&want), "{name}/{}", info.name);
                            checked += 1;
                        }
                        Err(e) => {
                            match result {
                                Err(ChunkError::Read(got)) => {
                                    assert_eq!(got.to_string(), e.to_string())
                                }
                                other => panic!("{}: {:?}", info.name, other.map_err(|_| ())),
                            }
                            let err = into_result.as_ref().unwrap_err();
                            assert_eq!(err.to_string(), e.to_string());
                        }
                    }
                }
            }
        }
        assert!(checked >= 40, "{checked}");
    }

    fn chunks_of(ckpt: &Checkpoint, name: &str, chunk: usize) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        ckpt.read_chunks(name, chunk, &mut buf, |piece| {
            got.extend_from_slice(piece);
            sizes.push(piece.len());
            Ok::<(), ()>(())
        })
        .unwrap();
        (got, sizes)
    }

    /// Every numeric tensor of every format fixture (plain, half, partitioned, multi-shard)
    /// comes out of both streaming methods exactly as `read_bytes` gives it, with one buffer
    /// reused across tensors of different sizes.
    #[test]
    fn same_bytes_as_read_bytes_on_the_fixtures() {
        let mut buf = Vec::new();
        let mut checked = 0;
        for name in ["basic", "half", "partitioned", "multishard", "tiny"] {
            let ckpt =
                Checkpoint::open(&fixtures().join("format").join(name).join("ckpt")).unwrap();
            for info in ckpt.tensors() {
                let Ok(want) = ckpt.read_bytes(&info.name) else {
                    let err = ckpt.read_into(&info.name, &mut buf).unwrap_err();
                    assert_eq!(
                        err.to_string(),
                        ckpt.read_bytes(&info.name).unwrap_err().to_string()
                    );
                    continue;
                };
                assert_eq!(ckpt.read_into(&info.name, &mut buf).unwrap(), &want[..]);
                for chunk in [1, 3, 8, 1 << 20] {
                    let (got, sizes) = chunks_of(&ckpt, &info.name, chunk);
                    assert_eq!(got, &want[..], "{name}/{} chunk {chunk}", info.name);
                    assert!(sizes.iter().all(|&s| s > 0 && s <= chunk));
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} tensors compared");
    }

    /// Big-endian bundles: the CRC is over the stored bytes, the output is swapped, and
    /// chunks never split a swap unit.
    #[test]
    fn big_endian_is_swapped_per_chunk() {
        let tmp = tempfile::tempdir().unwrap();
        let values: Vec<f32> = (0..1000).map(|i| i as f32 * 0.25 - 3.0).collect();
        let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let c128: Vec<u8> = [1.0f64, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let (index, data) = build_bundle(
            &[
                spec("f", DType::Float32, &[10, 100], be),
                spec("c", DType::Complex128, &[1], c128),
            ],
            true,
        );
        let ckpt = Checkpoint::open(&write(tmp.path(), &index, &data)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(ckpt.read_into("f", &mut buf).unwrap(), &le[..]);
        for chunk in [1, 6, 4000, 5000] {
            let (got, sizes) = chunks_of(&ckpt, "f", chunk);
            assert_eq!(got, le);
            assert!(sizes[..sizes.len() - 1].iter().all(|s| s % 4 == 0));
        }
        let want = ckpt.read_bytes("c").unwrap().into_owned();
        assert_eq!(chunks_of(&ckpt, "c", 3).0, want);
    }

    /// A flipped byte in a tensor larger than a read piece: `read_into` refuses it; `read_chunks`
    /// delivers every byte and then reports the checksum error (after the last chunk).
    #[test]
    fn crc_mismatch_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let big = noise(3 * PIECE + 12, 7);
        let (index, mut data) = build_bundle(
            &[
                spec("a_small", DType::Float32, &[2], noise(8, 1)),
                spec("big", DType::Float32, &[big.len() as i64 / 4], big.clone()),
            ],
            false,
        );
        let flip = 8 + 2 * PIECE + 5; // inside the third piece of `big`
        data[flip] ^= 0x10;
        let ckpt = Checkpoint::open(&write(tmp.path(), &index, &data)).unwrap();
        let mut buf = Vec::new();
        let err = ckpt.read_into("big", &mut buf).unwrap_err();
        assert!(
            matches!(err, CheckpointError::TensorChecksum { offset: 8, .. }),
            "{err}"
        );
        assert!(ckpt.read_into("a_small", &mut buf).is_ok());

        let mut seen = 0usize;
        let err = ckpt
            .read_chunks("big", 1 << 20, &mut buf, |piece| {
                seen += piece.len();
                Ok::<(), ()>(())
            })
            .unwrap_err();
        assert_eq!(seen, big.len());
        match err {
            ChunkError::Read(CheckpointError::TensorChecksum { tensor, size, .. }) => {
                assert_eq!(tensor, "big");
                assert_eq!(size, big.len() as u64);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sink_error_stops_the_stream() {
        let tmp = tempfile::tempdir().unwrap();
        let (index, data) = build_bundle(&[spec("t", DType::UInt8, &[100], noise(100, 3))], false);
        let ckpt = Checkpoint::open(&write(tmp.path(), &index, &data)).unwrap();
        let mut calls = 0;
        let err = ckpt
            .read_chunks("t", 10, &mut Vec::new(), |_| {
                calls += 1;
                if calls == 3 {
                    Err("disk full")
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(matches!(err, ChunkError::Sink("disk full")));
        assert_eq!(calls, 3);
    }

    #[test]
    fn strings_and_missing_names_are_refused() {
        let ckpt = Checkpoint::open(&fixtures().join("format/strings/ckpt")).unwrap();
        let name = &ckpt
            .tensors()
            .iter()
            .find(|t| t.dtype == DType::String)
            .unwrap()
            .name;
        let mut buf = Vec::new();
        assert!(matches!(
            ckpt.read_into(name, &mut buf),
            Err(CheckpointError::WrongDtype { .. })
        ));
        assert!(matches!(
            ckpt.read_chunks(name, 4, &mut buf, |_| Ok::<(), ()>(())),
            Err(ChunkError::Read(CheckpointError::WrongDtype { .. }))
        ));
        assert!(matches!(
            ckpt.read_into("no/such/tensor", &mut buf),
            Err(CheckpointError::TensorNotFound { .. })
        ));
    }

    /// The shard shrinking after open is an error naming the shard, not a panic or short data.
    #[test]
    fn truncated_shard_after_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (index, data) = build_bundle(&[spec("t", DType::Float32, &[64], noise(256, 5))], false);
        let prefix = write(tmp.path(), &index, &data);
        let ckpt = Checkpoint::open(&prefix).unwrap();
        let shard = with_suffix(&prefix, ".data-00000-of-00001");
        std::fs::write(&shard, &data[..100]).unwrap();
        let err = ckpt.read_into("t", &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, CheckpointError::ShardTooShort { len: 100, .. }),
            "{err}"
        );
    }
}
