//! Writer of TensorFlow V2 checkpoints (tensor bundles), byte for byte as TensorFlow's
//! `BundleWriter` writes them: tensors are appended to one data shard in the order they are
//! added (densely packed, little-endian), each entry records offset, size and the masked CRC32C
//! of its bytes, and [`BundleWriter::finish`] writes the `.index` table (header entry under the
//! empty key, then the entries in bytewise key order) with the crate's SSTable builder.
//!
//! Tensor bytes are streamed: [`BundleWriter::begin`] returns a [`TensorWriter`] that takes the
//! data in pieces of any size and checksums them as they pass, so memory stays at one piece
//! whatever the tensor size. Only the entries (name + a few integers each) are kept until the
//! index is written. The writer does no file handling; `write::bundle` puts the files on disk
//! atomically.

use std::collections::BTreeMap;
use std::io::Write;

use super::proto::{self, BundleEntry, TensorShape};
use super::sstable::{TableBuilder, TableOptions};
use super::varint::write_varint64;
use super::{crc, DType, MAX_DIMS};

/// Why a tensor could not be added, or the bundle not finished.
#[derive(Debug, thiserror::Error)]
pub enum BundleWriteError {
    /// Writing the data or index file failed.
    #[error("writing the checkpoint: {0}")]
    Io(#[from] std::io::Error),
    /// A tensor name was added before.
    #[error("tensor {name:?} is added twice; checkpoint keys are unique")]
    Duplicate {
        /// The repeated name.
        name: String,
    },
    /// The empty name is the header's key.
    #[error("tensor {name:?} has an empty name; the empty key is reserved for the bundle header")]
    EmptyName {
        /// The (empty) name.
        name: String,
    },
    /// The shape is unusable: too many dimensions, too large, or not matching the strings given.
    #[error("tensor {name:?}: {reason}")]
    BadShape {
        /// The tensor's name.
        name: String,
        /// What is wrong with the shape.
        reason: String,
    },
    /// A numeric writer was used for a dtype without a fixed element size.
    #[error("tensor {name:?} has dtype {dtype}, which is written with add_strings or not at all")]
    NotNumeric {
        /// The tensor's name.
        name: String,
        /// The dtype's TF name.
        dtype: String,
    },
    /// The bytes written do not match dtype × shape.
    #[error("tensor {name:?}: {got} bytes were written but {dtype} {shape:?} needs {expected}")]
    SizeMismatch {
        /// The tensor's name.
        name: String,
        /// The dtype's TF name.
        dtype: String,
        /// The declared shape.
        shape: Vec<u64>,
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes actually written.
        got: u64,
    },
    /// A [`TensorWriter`] was dropped before it finished, so the data file has a hole.
    #[error("an earlier tensor ({name:?}) was abandoned half-written; the data file is unusable")]
    Abandoned {
        /// The abandoned tensor's name.
        name: String,
    },
}

/// Appends tensors to a data shard and writes the matching index at the end.
#[derive(Debug)]
pub struct BundleWriter<D: Write> {
    data: D,
    offset: u64,
    entries: BTreeMap<Vec<u8>, BundleEntry>,
    /// Set while a [`TensorWriter`] is open (and forever if it was dropped unfinished).
    open: Option<String>,
    options: TableOptions,
}

fn check_shape(name: &str, shape: &[u64]) -> Result<u64, BundleWriteError> {
    let bad = |reason: String| BundleWriteError::BadShape {
        name: name.to_string(),
        reason,
    };
    if shape.len() > MAX_DIMS {
        return Err(bad(format!(
            "{} dimensions, more than TensorFlow's maximum of {MAX_DIMS}",
            shape.len()
        )));
    }
    shape
        .iter()
        .try_fold(1u64, |acc, &d| {
            acc.checked_mul(d).filter(|&n| n <= i64::MAX as u64)
        })
        .ok_or_else(|| bad(format!("shape {shape:?} has more than 2^63 elements")))
}

impl<D: Write> BundleWriter<D> {
    /// A writer appending to `data` (the `.data-00000-of-00001` file), with TF's table options.
    pub fn new(data: D) -> Self {
        Self::with_options(data, TableOptions::default())
    }

    /// Like [`new`](Self::new) with other block options (tests use small blocks).
    pub(crate) fn with_options(data: D, options: TableOptions) -> Self {
        BundleWriter {
            data,
            offset: 0,
            entries: BTreeMap::new(),
            open: None,
            options,
        }
    }

    /// Bytes written to the data shard so far.
    pub fn data_len(&self) -> u64 {
        self.offset
    }

    /// Number of tensors added.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tensor has been added yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn check_new(&self, name: &str) -> Result<(), BundleWriteError> {
        if let Some(open) = &self.open {
            return Err(BundleWriteError::Abandoned { name: open.clone() });
        }
        if name.is_empty() {
            return Err(BundleWriteError::EmptyName {
                name: name.to_string(),
            });
        }
        if self.entries.contains_key(name.as_bytes()) {
            return Err(BundleWriteError::Duplicate {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Start a numeric tensor: its little-endian bytes (exactly elements × element size) are
    /// then passed to [`TensorWriter::write`] and the entry is recorded by
    /// [`TensorWriter::finish`].
    pub fn begin(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
    ) -> Result<TensorWriter<'_, D>, BundleWriteError> {
        self.check_new(name)?;
        let Some(elem) = dtype.element_size() else {
            return Err(BundleWriteError::NotNumeric {
                name: name.to_string(),
                dtype: dtype.tf_name(),
            });
        };
        let elements = check_shape(name, shape)?;
        let expected = elements
            .checked_mul(elem as u64)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| BundleWriteError::BadShape {
                name: name.to_string(),
                reason: format!("{dtype} {shape:?} is more than 2^63 bytes"),
            })?;
        self.open = Some(name.to_string());
        Ok(TensorWriter {
            writer: self,
            name: name.to_string(),
            dtype,
            shape: shape.to_vec(),
            expected,
            written: 0,
            crc: 0,
        })
    }

    /// Add a whole numeric tensor at once.
    pub fn add(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        bytes: &[u8],
    ) -> Result<(), BundleWriteError> {
        let mut t = self.begin(name, dtype, shape)?;
        t.write(bytes)?;
        t.finish()
    }

    /// Add a string tensor (row-major elements), in TF's layout: varint64 lengths, the masked
    /// length checksum, then the bytes.
    pub fn add_strings(
        &mut self,
        name: &str,
        shape: &[u64],
        elements: &[&[u8]],
    ) -> Result<(), BundleWriteError> {
        self.check_new(name)?;
        let n = check_shape(name, shape)?;
        if n != elements.len() as u64 {
            return Err(BundleWriteError::BadShape {
                name: name.to_string(),
                reason: format!(
                    "shape {shape:?} holds {n} strings but {} were given",
                    elements.len()
                ),
            });
        }
        let mut lengths = Vec::new();
        let mut running = 0u32;
        for e in elements {
            write_varint64(&mut lengths, e.len() as u64);
            running = match u32::try_from(e.len()) {
                Ok(small) => crc::extend(running, &small.to_le_bytes()),
                Err(_) => crc::extend(running, &(e.len() as u64).to_le_bytes()),
            };
        }
        let checksum = crc::mask(running).to_le_bytes();
        running = crc::extend(running, &checksum);
        self.data.write_all(&lengths)?;
        self.data.write_all(&checksum)?;
        let mut size = (lengths.len() + 4) as u64;
        for e in elements {
            self.data.write_all(e)?;
            running = crc::extend(running, e);
            size += e.len() as u64;
        }
        self.record(name, DType::String, shape, size, crc::mask(running));
        Ok(())
    }

    fn record(&mut self, name: &str, dtype: DType, shape: &[u64], size: u64, masked_crc: u32) {
        let entry = BundleEntry {
            dtype: dtype.to_proto(),
            shape: TensorShape {
                dims: shape.iter().map(|&d| d as i64).collect(),
                unknown_rank: false,
            },
            shard_id: 0,
            offset: self.offset as i64,
            size: size as i64,
            crc32c: masked_crc,
            slices: Vec::new(),
        };
        self.offset += size;
        self.entries.insert(name.as_bytes().to_vec(), entry);
    }

    /// Flush the data sink and write the whole `.index` to `index`. Returns both sinks.
    pub fn finish<I: Write>(mut self, index: I) -> Result<(D, I), BundleWriteError> {
        if let Some(open) = self.open.take() {
            return Err(BundleWriteError::Abandoned { name: open });
        }
        self.data.flush()?;
        let mut table = TableBuilder::new(index, self.options);
        table.add(b"", &proto::encode_header(&proto::tf_header()))?;
        for (key, entry) in &self.entries {
            table.add(key, &proto::encode_entry(entry))?;
        }
        let (mut index, _) = table.finish()?;
        index.flush()?;
        Ok((self.data, index))
    }
}

/// One numeric tensor being streamed into the data shard.
#[derive(Debug)]
pub struct TensorWriter<'w, D: Write> {
    writer: &'w mut BundleWriter<D>,
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    expected: u64,
    written: u64,
    crc: u32,
}

impl<D: Write> TensorWriter<'_, D> {
    /// Append the next piece of the tensor's bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BundleWriteError> {
        let got = self.written + bytes.len() as u64;
        if got > self.expected {
            return Err(self.mismatch(got));
        }
        self.writer.data.write_all(bytes)?;
        self.crc = crc::extend(self.crc, bytes);
        self.written = got;
        Ok(())
    }

    fn mismatch(&self, got: u64) -> BundleWriteError {
        BundleWriteError::SizeMismatch {
            name: self.name.clone(),
            dtype: self.dtype.tf_name(),
            shape: self.shape.clone(),
            expected: self.expected,
            got,
        }
    }

    /// Record the entry; every byte must have been written.
    pub fn finish(self) -> Result<(), BundleWriteError> {
        if self.written != self.expected {
            return Err(self.mismatch(self.written));
        }
        self.writer.open = None;
        let (name, dtype, shape, size, crc) = (
            self.name.clone(),
            self.dtype,
            self.shape.clone(),
            self.written,
            crc::mask(self.crc),
        );
        self.writer.record(&name, dtype, &shape, size, crc);
        Ok(())
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
