//! Masked CRC32C, the checksum TensorFlow stores everywhere on disk (block trailers, entry
//! checksums, string-length checksums).
//!
//! Storing a raw CRC of data that itself contains CRCs makes the outer checksum weak, so the
//! stored value is "masked": rotated right by 15 bits and offset by a constant.

const MASK_DELTA: u32 = 0xa282_ead8;

/// Plain CRC32C (Castagnoli) of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continue a running CRC32C with more bytes.
pub(crate) fn extend(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The on-disk form of a CRC.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Undo [`mask`].
pub(crate) fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_vectors_from_the_spec() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46dd_794e);
        let descending: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113f_db5c);
    }

    #[test]
    fn extend_matches_one_shot() {
        let data: Vec<u8> = (0..100).collect();
        assert_eq!(extend(crc32c(&data[..40]), &data[40..]), crc32c(&data));
    }

    #[test]
    fn mask_vectors() {
        assert_eq!(mask(0), 0xa282_ead8);
        for crc in [0u32, 1, 0x8a91_36aa, u32::MAX] {
            assert_eq!(unmask(mask(crc)), crc);
            assert_ne!(mask(crc), crc);
        }
        // The empty-string-tensor checksum bytes from the spec: d8 ea 82 a2.
        assert_eq!(mask(0).to_le_bytes(), [0xd8, 0xea, 0x82, 0xa2]);
    }
}
