//! The `.index` file: a LevelDB-style sorted table without filter blocks.
//!
//! Layout: data blocks, a metaindex block and an index block, each followed by a 5-byte trailer
//! (type byte + masked CRC32C), then a 48-byte footer holding the metaindex and index handles and
//! a magic number. [`parse_table`] checks every handle against the file length, verifies the
//! trailer CRC of every block it touches (all of them), decompresses Snappy blocks with a bounded
//! output size, and requires keys to be strictly increasing across the whole table. It never
//! panics and allocates at most a small multiple of the input length.
//!
//! The crate-internal `TableBuilder` is the other direction: it writes a table exactly as TensorFlow's
//! `TableBuilder` does for a bundle index (uncompressed, the same flush rule, the same shortest
//! separators and short successor, restart interval 1 in the index block, an empty metaindex),
//! so that the same entries give the same bytes.

use std::io::Write;

use super::crc;
use super::varint::{fixed32, fixed64, read_varint32, read_varint64, write_varint64};

/// Footer length in bytes.
pub const FOOTER_LEN: usize = 48;
/// Magic number at the end of the footer.
pub(crate) const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Type byte + masked CRC.
pub const TRAILER_LEN: usize = 5;

/// Snappy never expands by more than this factor when decompressing (a 3-byte copy element
/// produces at most 64 bytes), so a declared uncompressed length beyond it is a lie.
const SNAPPY_MAX_RATIO: usize = 22;

/// What is wrong with an `.index` table, and at which byte offset of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("the file is {len} bytes long, shorter than the 48-byte table footer")]
    /// The file cannot even hold the footer.
    TooShort {
        /// The file's length in bytes.
        len: usize,
    },
    #[error("bad magic number {found:#018x} in the footer (expected {TABLE_MAGIC:#018x}): not a TF V2 .index file")]
    /// The footer's magic number is not the LevelDB table magic.
    BadMagic {
        /// The magic number found.
        found: u64,
    },
    #[error("{what} handle at byte {at} is unreadable: {reason}")]
    /// A block handle (in the footer or the index block) cannot be decoded.
    BadHandle {
        /// Which handle (`metaindex`, `index`, `data`).
        what: &'static str,
        /// Byte offset of the handle.
        at: usize,
        /// What was wrong with it.
        reason: String,
    },
    #[error("{what} block at byte {offset} (size {size}) runs past the end of the file ({file_len} bytes, trailer included)")]
    /// A block handle points past the end of the file.
    BlockOutOfRange {
        /// Which block (`metaindex`, `index`, `data`).
        what: &'static str,
        /// The block's offset as stored.
        offset: u64,
        /// The block's size as stored (trailer excluded).
        size: u64,
        /// The file's length in bytes.
        file_len: usize,
    },
    #[error("block at byte {offset}: checksum mismatch (stored crc32c {stored:#010x}, computed {computed:#010x}); the file is corrupt")]
    /// A block's CRC does not match its trailer.
    BlockChecksum {
        /// Byte offset of the block.
        offset: u64,
        /// The CRC32C in the trailer (unmasked).
        stored: u32,
        /// The CRC32C of the bytes read.
        computed: u32,
    },
    #[error("block at byte {offset}: unknown compression type {block_type} (only 0 = none and 1 = Snappy exist)")]
    /// The trailer names a compression type other than none or Snappy.
    BadBlockType {
        /// Byte offset of the block.
        offset: u64,
        /// The type byte found.
        block_type: u8,
    },
    #[error("block at byte {offset}: Snappy data is invalid: {reason}")]
    /// A Snappy-compressed block does not decompress.
    Snappy {
        /// Byte offset of the block.
        offset: u64,
        /// The decoder's complaint.
        reason: String,
    },
    #[error("block at byte {offset}: {reason}")]
    /// A block's entries or restart array are malformed.
    BadBlock {
        /// Byte offset of the block.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    #[error("block at byte {offset}: key {key:?} is not greater than the key before it (keys must be strictly increasing)")]
    /// Keys are not strictly increasing.
    KeyOrder {
        /// Byte offset of the block holding the key.
        offset: u64,
        /// The out-of-order key (shown lossily).
        key: String,
    },
}

/// A raw `(key, value)` pair of a block.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A decoded key/value pair from a data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// The full key (prefix compression undone).
    pub key: Vec<u8>,
    /// The value bytes.
    pub value: Vec<u8>,
    /// File offset of the block the entry came from (for error messages).
    pub block_offset: u64,
}

/// A block location inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHandle {
    /// Byte offset of the block in the file.
    pub offset: u64,
    /// Length of the block, without its 5-byte trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Decode a handle (two varint64) at `*pos` of `buf`.
    pub fn decode(buf: &[u8], pos: &mut usize) -> Result<BlockHandle, String> {
        let offset = read_varint64(buf, pos).map_err(|e| format!("offset: {e}"))?;
        let size = read_varint64(buf, pos).map_err(|e| format!("size: {e}"))?;
        Ok(BlockHandle { offset, size })
    }
}

/// The two handles of the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// The metaindex block (empty in TF bundles).
    pub metaindex: BlockHandle,
    /// The index block, which points at the data blocks.
    pub index: BlockHandle,
}

/// Decode and check the footer (the last 48 bytes of `file`).
pub fn parse_footer(file: &[u8]) -> Result<Footer, TableError> {
    if file.len() < FOOTER_LEN {
        return Err(TableError::TooShort { len: file.len() });
    }
    let start = file.len() - FOOTER_LEN;
    let footer = &file[start..];
    let magic = fixed64(footer, 40).unwrap_or(0);
    if magic != TABLE_MAGIC {
        return Err(TableError::BadMagic { found: magic });
    }
    // Both handles must fit in the 40 bytes before the magic.
    let handles = &footer[..40];
    let mut pos = 0;
    let metaindex =
        BlockHandle::decode(handles, &mut pos).map_err(|reason| TableError::BadHandle {
            what: "metaindex",
            at: start,
            reason,
        })?;
    let at = start + pos;
    let index = BlockHandle::decode(handles, &mut pos).map_err(|reason| TableError::BadHandle {
        what: "index",
        at,
        reason,
    })?;
    Ok(Footer { metaindex, index })
}

/// Read the block behind `handle`: range check, CRC check, decompression.
pub fn read_block(
    file: &[u8],
    handle: BlockHandle,
    what: &'static str,
) -> Result<Vec<u8>, TableError> {
    // Blocks live strictly before the footer.
    let limit = file.len().saturating_sub(FOOTER_LEN);
    let out_of_range = || TableError::BlockOutOfRange {
        what,
        offset: handle.offset,
        size: handle.size,
        file_len: file.len(),
    };
    let start = usize::try_from(handle.offset).map_err(|_| out_of_range())?;
    let size = usize::try_from(handle.size).map_err(|_| out_of_range())?;
    let end = start.checked_add(size).ok_or_else(out_of_range)?;
    let trailer_end = end.checked_add(TRAILER_LEN).ok_or_else(out_of_range)?;
    if trailer_end > limit {
        return Err(out_of_range());
    }
    let stored = &file[start..end];
    let block_type = file[end];
    let stored_crc = fixed32(file, end + 1).unwrap_or(0);
    let computed = crc::extend(crc::crc32c(stored), &[block_type]);
    if crc::unmask(stored_crc) != computed {
        return Err(TableError::BlockChecksum {
            offset: handle.offset,
            stored: crc::unmask(stored_crc),
            computed,
        });
    }
    match block_type {
        0 => Ok(stored.to_vec()),
        1 => {
            let snappy = |reason: String| TableError::Snappy {
                offset: handle.offset,
                reason,
            };
            let len = snap::raw::decompress_len(stored).map_err(|e| snappy(e.to_string()))?;
            if len > stored.len().saturating_mul(SNAPPY_MAX_RATIO) {
                return Err(snappy(format!(
                    "declares {len} uncompressed bytes for {} compressed bytes, more than Snappy can encode",
                    stored.len()
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(stored)
                .map_err(|e| snappy(e.to_string()))
        }
        other => Err(TableError::BadBlockType {
            offset: handle.offset,
            block_type: other,
        }),
    }
}

/// Decode every entry of one block (contents after decompression). `offset` is the block's
/// file offset, used only in errors.
pub fn parse_block(block: &[u8], offset: u64) -> Result<Vec<KeyValue>, TableError> {
    let bad = |reason: String| TableError::BadBlock { offset, reason };
    let num_restarts = fixed32(block, block.len().wrapping_sub(4))
        .filter(|_| block.len() >= 4)
        .ok_or_else(|| {
            bad(format!(
                "block is {} bytes, too short for its restart count",
                block.len()
            ))
        })? as usize;
    let max_restarts = (block.len() - 4) / 4;
    if num_restarts > max_restarts {
        return Err(bad(format!(
            "declares {num_restarts} restart points but only {max_restarts} fit"
        )));
    }
    let entries_end = block.len() - 4 * (1 + num_restarts);
    if num_restarts == 0 {
        // An empty block; nothing may precede the tail.
        if entries_end != 0 {
            return Err(bad("block with no restart points contains entries".into()));
        }
        return Ok(Vec::new());
    }
    for i in 0..num_restarts {
        let restart = fixed32(block, entries_end + 4 * i).unwrap_or(u32::MAX) as usize;
        // A restart must point at an entry; offset 0 is also allowed when there are none.
        if restart > entries_end || (restart == entries_end && entries_end != 0) {
            return Err(bad(format!(
                "restart point {i} = {restart} lies outside the {entries_end}-byte entry area"
            )));
        }
    }
    let mut entries: Vec<KeyValue> = Vec::new();
    let mut prev_key: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    while pos < entries_end {
        let area = &block[..entries_end];
        let entry_at = pos;
        let header = |e| bad(format!("entry at block byte {entry_at}: {e}"));
        let shared = read_varint32(area, &mut pos).map_err(header)? as usize;
        let non_shared = read_varint32(area, &mut pos).map_err(header)? as usize;
        let value_len = read_varint32(area, &mut pos).map_err(header)? as usize;
        if shared > prev_key.len() {
            return Err(bad(format!(
                "entry at block byte {entry_at} shares {shared} bytes with a {}-byte previous key",
                prev_key.len()
            )));
        }
        let key_end = pos
            .checked_add(non_shared)
            .filter(|&e| e <= entries_end)
            .ok_or_else(|| {
                bad(format!(
                    "entry at block byte {entry_at}: key runs past the entry area"
                ))
            })?;
        let value_end = key_end
            .checked_add(value_len)
            .filter(|&e| e <= entries_end)
            .ok_or_else(|| {
                bad(format!(
                    "entry at block byte {entry_at}: value runs past the entry area"
                ))
            })?;
        let mut key = Vec::with_capacity(shared + non_shared);
        key.extend_from_slice(&prev_key[..shared]);
        key.extend_from_slice(&block[pos..key_end]);
        let value = block[key_end..value_end].to_vec();
        pos = value_end;
        prev_key.clone_from(&key);
        entries.push((key, value));
    }
    Ok(entries)
}

/// Parse a whole `.index` file into its data entries, in key order.
pub fn parse_table(file: &[u8]) -> Result<Vec<TableEntry>, TableError> {
    let footer = parse_footer(file)?;
    // TF never reads the metaindex, but its trailer is verified like every other block.
    let metaindex = read_block(file, footer.metaindex, "metaindex")?;
    parse_block(&metaindex, footer.metaindex.offset)?;
    let index_block = read_block(file, footer.index, "index")?;
    let index_entries = parse_block(&index_block, footer.index.offset)?;

    let mut out: Vec<TableEntry> = Vec::new();
    let mut last_block_end: u64 = 0;
    for (_, handle_bytes) in &index_entries {
        let mut pos = 0;
        let handle = BlockHandle::decode(handle_bytes, &mut pos).map_err(|reason| {
            TableError::BadHandle {
                what: "data block",
                at: footer.index.offset as usize,
                reason,
            }
        })?;
        // Data blocks are laid out in increasing order without overlap; requiring it also
        // bounds the total work by the file length.
        if handle.offset < last_block_end {
            return Err(TableError::BadBlock {
                offset: handle.offset,
                reason: format!(
                    "data block overlaps or precedes the previous one (which ended at byte {last_block_end})"
                ),
            });
        }
        let block = read_block(file, handle, "data")?;
        last_block_end = handle.offset + handle.size + TRAILER_LEN as u64;
        for (key, value) in parse_block(&block, handle.offset)? {
            if let Some(prev) = out.last() {
                if key <= prev.key {
                    return Err(TableError::KeyOrder {
                        offset: handle.offset,
                        key: String::from_utf8_lossy(&key).into_owned(),
                    });
                }
            }
            out.push(TableEntry {
                key,
                value,
                block_offset: handle.offset,
            });
        }
    }
    Ok(out)
}

/// TF's `table::Options` defaults that a bundle index uses.
pub(crate) const TF_BLOCK_SIZE: usize = 262_144;
/// Restart interval of data blocks (index blocks use 1).
pub(crate) const TF_RESTART_INTERVAL: usize = 16;

/// How a [`TableBuilder`] cuts blocks. [`TableOptions::default`] is what TensorFlow uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Target uncompressed size of a data block.
    pub block_size: usize,
    /// Every this many entries a data block restarts prefix compression.
    pub restart_interval: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: TF_BLOCK_SIZE,
            restart_interval: TF_RESTART_INTERVAL,
        }
    }
}

/// One block under construction (LevelDB's `BlockBuilder`).
#[derive(Debug)]
struct BlockBuilder {
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    last_key: Vec<u8>,
    interval: usize,
}

impl BlockBuilder {
    fn new(interval: usize) -> Self {
        BlockBuilder {
            buffer: Vec::new(),
            restarts: vec![0],
            counter: 0,
            last_key: Vec::new(),
            interval: interval.max(1),
        }
    }

    fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// `CurrentSizeEstimate`: entries, restart array and its count.
    fn size_estimate(&self) -> usize {
        self.buffer.len() + 4 * self.restarts.len() + 4
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter < self.interval {
            shared = self
                .last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count();
        } else {
            self.restarts.push(self.buffer.len() as u32);
            self.counter = 0;
        }
        write_varint64(&mut self.buffer, shared as u64);
        write_varint64(&mut self.buffer, (key.len() - shared) as u64);
        write_varint64(&mut self.buffer, value.len() as u64);
        self.buffer.extend_from_slice(&key[shared..]);
        self.buffer.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
    }

    /// The finished block contents; the builder is reset.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buffer);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts = vec![0];
        self.counter = 0;
        self.last_key.clear();
        out
    }
}

/// Bytewise `FindShortestSeparator`: a short key `k` with `start <= k < limit`.
pub(crate) fn shortest_separator(start: &mut Vec<u8>, limit: &[u8]) {
    let min_len = start.len().min(limit.len());
    let diff = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if diff >= min_len {
        // One is a prefix of the other: keep `start`.
        return;
    }
    let byte = start[diff];
    if byte < 0xff && byte + 1 < limit[diff] {
        start[diff] = byte + 1;
        start.truncate(diff + 1);
    }
}

/// Bytewise `FindShortSuccessor`: a short key `>= key`.
pub(crate) fn short_successor(key: &mut Vec<u8>) {
    if let Some(i) = key.iter().position(|&b| b != 0xff) {
        key[i] += 1;
        key.truncate(i + 1);
    }
}

/// Writes an SSTable to `out` entry by entry. Memory holds one data block and the index block.
#[derive(Debug)]
pub struct TableBuilder<W: Write> {
    out: W,
    offset: u64,
    options: TableOptions,
    data: BlockBuilder,
    index: BlockBuilder,
    last_key: Vec<u8>,
    entries: u64,
    /// Handle of the last flushed data block, waiting for the next key to pick its separator.
    pending: Option<BlockHandle>,
}

impl<W: Write> TableBuilder<W> {
    /// A builder writing a table to `out`.
    pub fn new(out: W, options: TableOptions) -> Self {
        TableBuilder {
            out,
            offset: 0,
            options,
            data: BlockBuilder::new(options.restart_interval),
            index: BlockBuilder::new(1),
            last_key: Vec::new(),
            entries: 0,
            pending: None,
        }
    }

    /// Add one entry. Keys must be strictly increasing (bytewise); anything else is an
    /// `InvalidInput` error and nothing is written.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        if self.entries > 0 {
            if key <= self.last_key.as_slice() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "table keys must be strictly increasing: {:?} after {:?}",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(&self.last_key)
                    ),
                ));
            }
            // TF's own rule: a huge entry gets a block of its own.
            if key.len() + value.len() >= 2 * self.options.block_size {
                self.flush()?;
            }
        }
        if let Some(handle) = self.pending.take() {
            shortest_separator(&mut self.last_key, key);
            self.index.add(&self.last_key, &encode_handle(handle));
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        self.data.add(key, value);
        if self.data.size_estimate() >= self.options.block_size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let contents = self.data.finish();
        self.pending = Some(self.write_block(&contents)?);
        Ok(())
    }

    fn write_block(&mut self, contents: &[u8]) -> std::io::Result<BlockHandle> {
        let handle = BlockHandle {
            offset: self.offset,
            size: contents.len() as u64,
        };
        let crc = crc::mask(crc::extend(crc::crc32c(contents), &[0]));
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[1..].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(contents)?;
        self.out.write_all(&trailer)?;
        self.offset += (contents.len() + TRAILER_LEN) as u64;
        Ok(handle)
    }

    /// Write the last data block, the metaindex, the index and the footer; returns the sink and
    /// the table's length in bytes.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.flush()?;
        let metaindex = BlockBuilder::new(1).finish();
        let metaindex = self.write_block(&metaindex)?;
        if let Some(handle) = self.pending.take() {
            short_successor(&mut self.last_key);
            self.index.add(&self.last_key, &encode_handle(handle));
        }
        let index = self.index.finish();
        let index = self.write_block(&index)?;
        let mut footer = encode_handle(metaindex);
        footer.extend_from_slice(&encode_handle(index));
        footer.resize(40, 0);
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        self.out.write_all(&footer)?;
        self.offset += FOOTER_LEN as u64;
        Ok((self.out, self.offset))
    }
}

fn encode_handle(handle: BlockHandle) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    write_varint64(&mut out, handle.offset);
    write_varint64(&mut out, handle.size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(&[u8], &[u8])], options: TableOptions) -> Vec<u8> {
        let mut builder = TableBuilder::new(Vec::new(), options);
        for (k, v) in entries {
            builder.add(k, v).unwrap();
        }
        let (bytes, len) = builder.finish().unwrap();
        assert_eq!(bytes.len() as u64, len);
        bytes
    }

    #[test]
    fn builder_reproduces_the_tiny_vector() {
        let tiny = tiny_index();
        let entries = parse_table(&tiny).unwrap();
        let pairs: Vec<(&[u8], &[u8])> = entries
            .iter()
            .map(|e| (e.key.as_slice(), e.value.as_slice()))
            .collect();
        assert_eq!(build(&pairs, TableOptions::default()), tiny);
    }

    #[test]
    fn separators_follow_tf() {
        let cases: [(&[u8], &[u8], &[u8]); 5] = [
            (b"abcd", b"abzz", b"abd"),
            (b"abc", b"abd", b"abc"), // c+1 == d: unchanged
            (b"ab", b"abc", b"ab"),   // prefix: unchanged
            (b"layer_04931/x", b"layer_04932/x", b"layer_04931/x"),
            (b"a\xff", b"b", b"a\xff"),
        ];
        for (start, limit, want) in cases {
            let mut s = start.to_vec();
            shortest_separator(&mut s, limit);
            assert_eq!(s, want, "{start:?} / {limit:?}");
        }
        for (key, want) in [
            (&b"s_scalar"[..], &b"t"[..]),
            (b"plain", b"q"),
            (b"\xff\xffa", b"\xff\xffb"),
            (b"\xff\xff", b"\xff\xff"),
        ] {
            let mut k = key.to_vec();
            short_successor(&mut k);
            assert_eq!(k, want);
        }
    }

    /// Small blocks: many data blocks, restarts every 16 entries, the huge-entry rule; the
    /// reader gets every entry back.
    #[test]
    fn multi_block_tables_read_back() {
        let options = TableOptions {
            block_size: 300,
            restart_interval: 16,
        };
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..500)
            .map(|i| {
                (
                    format!("electra/encoder/layer_{:04}/attention/self/query/kernel", i)
                        .into_bytes(),
                    vec![i as u8; i % 7],
                )
            })
            .collect();
        pairs.push((b"zz_big".to_vec(), vec![1u8; 700]));
        pairs.push((b"zz_small".to_vec(), vec![2u8; 3]));
        let refs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let bytes = build(&refs, options);
        let footer = parse_footer(&bytes).unwrap();
        let index = parse_block(&read_block(&bytes, footer.index, "index").unwrap(), 0).unwrap();
        assert!(index.len() > 20, "{} blocks", index.len());
        let got = parse_table(&bytes).unwrap();
        assert_eq!(got.len(), pairs.len());
        for (g, (k, v)) in got.iter().zip(&pairs) {
            assert_eq!((&g.key, &g.value), (k, v));
        }
        // The big entry sits alone in its block.
        let big = got.iter().find(|e| e.key == b"zz_big").unwrap();
        assert!(got
            .iter()
            .filter(|e| e.block_offset == big.block_offset)
            .all(|e| e.key == b"zz_big"));
        let mut b = TableBuilder::new(Vec::new(), options);
        b.add(b"b", b"").unwrap();
        assert!(b.add(b"a", b"").is_err());
        assert!(b.add(b"b", b"").is_err());
    }

    /// The 121-byte `.index` of `SaveV2(prefix, ["x"], [""], [float32 [1.0]])` (spec §3.6).
    pub(crate) fn tiny_index() -> Vec<u8> {
        let hex = concat!(
            "00000608011a020801",
            "00010f78",
            "080112041202080128043581a5da2b",
            "00000000",
            "01000000",
            "003e83b62e",
            "0000000001000000",
            "00c0f2a1b0",
            "000102790024",
            "00000000",
            "01000000",
            "0008121017",
            "2908360e",
            "000000000000000000000000000000000000000000000000000000000000000000000000",
            "57fb808b247547db"
        );
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn tiny_vector_matches_fixture_and_parses() {
        let bytes = tiny_index();
        assert_eq!(bytes.len(), 121);
        let fixture = std::fs::read(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/fixtures/format/tiny/ckpt.index"
        ))
        .unwrap();
        assert_eq!(bytes, fixture);
        let footer = parse_footer(&bytes).unwrap();
        assert_eq!(
            footer.metaindex,
            BlockHandle {
                offset: 41,
                size: 8
            }
        );
        assert_eq!(
            footer.index,
            BlockHandle {
                offset: 54,
                size: 14
            }
        );
        let index = parse_block(&read_block(&bytes, footer.index, "index").unwrap(), 54).unwrap();
        assert_eq!(index.len(), 1);
        assert_eq!(index[0].0, b"y");
        assert_eq!(index[0].1, [0x00, 0x24]);
        let entries = parse_table(&bytes).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].key, b"");
        assert_eq!(entries[0].value, [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
        assert_eq!(entries[1].key, b"x");
        assert_eq!(entries[1].value.len(), 15);
    }

    #[test]
    fn prefix_compressed_keys_and_restarts() {
        // Three entries: "abc"->"1", "abd"->"2" (shares 2), "b"->"" ; restarts at 0 only.
        let mut block = vec![0, 3, 1];
        block.extend_from_slice(b"abc1");
        block.extend_from_slice(&[2, 1, 1]);
        block.extend_from_slice(b"d2");
        block.extend_from_slice(&[0, 1, 0]);
        block.extend_from_slice(b"b");
        block.extend_from_slice(&0u32.to_le_bytes());
        block.extend_from_slice(&1u32.to_le_bytes());
        let entries = parse_block(&block, 0).unwrap();
        let keys: Vec<&[u8]> = entries.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [b"abc".as_slice(), b"abd", b"b"]);
        assert_eq!(entries[1].1, b"2");
        assert_eq!(entries[2].1, b"");
    }

    #[test]
    fn corrupt_blocks_are_rejected() {
        assert!(matches!(
            parse_block(&[1, 2], 0),
            Err(TableError::BadBlock { .. })
        ));
        // 100 restarts claimed in an 8-byte block.
        let mut block = vec![0, 0, 0, 0];
        block.extend_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            parse_block(&block, 0),
            Err(TableError::BadBlock { .. })
        ));
        // shared > previous key length.
        let mut block = vec![5, 1, 0, b'a'];
        block.extend_from_slice(&0u32.to_le_bytes());
        block.extend_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            parse_block(&block, 0),
            Err(TableError::BadBlock { .. })
        ));
        // value length past the end.
        let mut block = vec![0, 1, 200, b'a'];
        block.extend_from_slice(&0u32.to_le_bytes());
        block.extend_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            parse_block(&block, 0),
            Err(TableError::BadBlock { .. })
        ));
    }

    #[test]
    fn footer_errors() {
        let bytes = tiny_index();
        assert_eq!(
            parse_table(&bytes[..47]),
            Err(TableError::TooShort { len: 47 })
        );
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            parse_table(&bad),
            Err(TableError::BadMagic { .. })
        ));
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40; // inside the data block
        assert!(matches!(
            parse_table(&flipped),
            Err(TableError::BlockChecksum { offset: 0, .. })
        ));
    }

    #[test]
    fn snappy_blocks_are_decoded() {
        // Re-encode the tiny index with its data block Snappy-compressed (type 1).
        let bytes = tiny_index();
        let raw = &bytes[..36];
        let compressed = snap::raw::Encoder::new().compress_vec(raw).unwrap();
        let mut file = compressed.clone();
        file.push(1);
        let crc = crc::mask(crc::extend(crc::crc32c(&compressed), &[1]));
        file.extend_from_slice(&crc.to_le_bytes());
        let meta_off = file.len() as u64;
        file.extend_from_slice(&bytes[41..54]); // metaindex + trailer
        let index_off = file.len() as u64;
        let mut index = vec![0, 1, 0, b'y'];
        let mut handle = Vec::new();
        crate::varint::write_varint64(&mut handle, 0);
        crate::varint::write_varint64(&mut handle, compressed.len() as u64);
        index[2] = handle.len() as u8;
        index.extend_from_slice(&handle);
        index.extend_from_slice(&0u32.to_le_bytes());
        index.extend_from_slice(&1u32.to_le_bytes());
        let index_len = index.len() as u64;
        let crc = crc::mask(crc::extend(crc::crc32c(&index), &[0]));
        file.extend_from_slice(&index);
        file.push(0);
        file.extend_from_slice(&crc.to_le_bytes());
        let mut footer = Vec::new();
        for v in [meta_off, 8, index_off, index_len] {
            crate::varint::write_varint64(&mut footer, v);
        }
        footer.resize(40, 0);
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        file.extend_from_slice(&footer);
        let entries = parse_table(&file).unwrap();
        assert_eq!(
            entries,
            parse_table(&bytes)
                .unwrap()
                .into_iter()
                .map(|mut e| {
                    e.block_offset = 0;
                    e
                })
                .collect::<Vec<_>>()
        );
    }
}
