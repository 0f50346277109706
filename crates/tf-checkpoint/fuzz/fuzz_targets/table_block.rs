//! Fuzz target `table_block`: the low-level parsers one by one.
//!
//! The first input byte picks the parser, the rest is its input. Covered: the varints, the
//! footer / block / whole-table parsers, reading a block behind a fuzzed handle, the protobuf
//! decoders of the header, entry, shape and slice messages, the slice-key encoder and region
//! check, and the `checkpoint` state-file parser.

#![no_main]

use tf_checkpoint::{parse_state_file, proto, slices, sstable, varint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => {
            let mut pos = 0;
            if varint::read_varint64(input, &mut pos).is_ok() {
                assert!((1..=10).contains(&pos));
            }
            let mut pos = 0;
            if varint::read_varint32(input, &mut pos).is_ok() {
                assert!((1..=5).contains(&pos));
            }
        }
        1 => {
            if let Ok(entries) = sstable::parse_block(input, 0) {
                // Each entry needs at least three header bytes.
                assert!(entries.len() <= input.len() / 3 + 1);
            }
        }
        2 => {
            if let Ok(entries) = sstable::parse_table(input) {
                for w in entries.windows(2) {
                    assert!(w[0].key < w[1].key, "keys must be strictly increasing");
                }
            }
        }
        3 => {
            // A handle from the first bytes, the "file" is the rest.
            let mut pos = 0;
            if let Ok(handle) = sstable::BlockHandle::decode(input, &mut pos) {
                let file = &input[pos..];
                if let Ok(block) = sstable::read_block(file, handle, "data") {
                    let _ = sstable::parse_block(&block, handle.offset);
                }
            }
            let _ = sstable::parse_footer(input);
        }
        4 => {
            let _ = proto::decode_header(input);
        }
        5 => {
            if let Ok(entry) = proto::decode_entry(input) {
                for s in &entry.slices {
                    let key = slices::encode_slice_key(b"v", s);
                    assert!(key.starts_with(&[0]));
                    let dims: Vec<u64> =
                        entry.shape.dims.iter().map(|&d| d.max(0) as u64).collect();
                    if let Ok(region) = slices::slice_region(s, &dims) {
                        assert_eq!(region.len(), dims.len());
                        for (&(start, len), &d) in region.iter().zip(&dims) {
                            assert!(start + len <= d);
                        }
                    }
                }
            }
        }
        6 => {
            let _ = proto::decode_shape(input);
        }
        7 => {
            if let Ok(slice) = proto::decode_slice(input) {
                let _ = slices::encode_slice_key(input, &slice);
            }
        }
        8 => {
            let _ = parse_state_file(input);
        }
        _ => {
            // Signed increasing numbers must sort like the numbers themselves.
            if input.len() >= 16 {
                let a = i64::from_le_bytes(input[..8].try_into().unwrap());
                let b = i64::from_le_bytes(input[8..16].try_into().unwrap());
                let (mut ea, mut eb) = (Vec::new(), Vec::new());
                slices::write_signed_num_increasing(&mut ea, a);
                slices::write_signed_num_increasing(&mut eb, b);
                assert_eq!(a.cmp(&b), ea.cmp(&eb), "{a} vs {b}: {ea:02x?} {eb:02x?}");
            }
        }
    }
});
