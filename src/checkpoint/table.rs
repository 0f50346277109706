//! The `.index` file: a LevelDB-style sorted table without filter blocks.
//!
//! Layout: data blocks, a metaindex block and an index block, each followed by a 5-byte trailer
//! (type byte + masked CRC32C), then a 48-byte footer holding the metaindex and index handles and
//! a magic number. [`parse_table`] checks every handle against the file length, verifies the
//! trailer CRC of every block it touches (all of them), decompresses Snappy blocks with a bounded
//! output size, and requires keys to be strictly increasing across the whole table. It never
//! panics and allocates at most a small multiple of the input length.

use super::crc;
use super::varint::{fixed32, fixed64, read_varint32, read_varint64};

/// Footer length in bytes.
pub const FOOTER_LEN: usize = 48;
/// Magic number at the end of the footer.
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Type byte + masked CRC.
pub const TRAILER_LEN: usize = 5;

/// Snappy never expands by more than this factor when decompressing (a 3-byte copy element
/// produces at most 64 bytes), so a declared uncompressed length beyond it is a lie.
const SNAPPY_MAX_RATIO: usize = 22;

/// What is wrong with an `.index` table, and at which byte offset of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("the file is {len} bytes long, shorter than the 48-byte table footer")]
    TooShort { len: usize },
    #[error("bad magic number {found:#018x} in the footer (expected {TABLE_MAGIC:#018x}): not a TF V2 .index file")]
    BadMagic { found: u64 },
    #[error("{what} handle at byte {at} is unreadable: {reason}")]
    BadHandle {
        what: &'static str,
        at: usize,
        reason: String,
    },
    #[error("{what} block at byte {offset} (size {size}) runs past the end of the file ({file_len} bytes, trailer included)")]
    BlockOutOfRange {
        what: &'static str,
        offset: u64,
        size: u64,
        file_len: usize,
    },
    #[error("block at byte {offset}: checksum mismatch (stored crc32c {stored:#010x}, computed {computed:#010x}); the file is corrupt")]
    BlockChecksum {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("block at byte {offset}: unknown compression type {block_type} (only 0 = none and 1 = Snappy exist)")]
    BadBlockType { offset: u64, block_type: u8 },
    #[error("block at byte {offset}: Snappy data is invalid: {reason}")]
    Snappy { offset: u64, reason: String },
    #[error("block at byte {offset}: {reason}")]
    BadBlock { offset: u64, reason: String },
    #[error("block at byte {offset}: key {key:?} is not greater than the key before it (keys must be strictly increasing)")]
    KeyOrder { offset: u64, key: String },
}

/// A raw `(key, value)` pair of a block.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A decoded key/value pair from a data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// File offset of the block the entry came from (for error messages).
    pub block_offset: u64,
}

/// A block location inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHandle {
    pub offset: u64,
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
    pub metaindex: BlockHandle,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            env!("CARGO_MANIFEST_DIR"),
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
        crate::checkpoint::varint::write_varint64(&mut handle, 0);
        crate::checkpoint::varint::write_varint64(&mut handle, compressed.len() as u64);
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
            crate::checkpoint::varint::write_varint64(&mut footer, v);
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
