//! LEB128 varints and little-endian fixed-width integers, as used by the `.index` table and
//! by protobuf. Every decoder is bounded: it never reads past the slice and never accepts more
//! than 5 (varint32) or 10 (varint64) bytes, so a hostile file cannot make it loop or overflow.

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended while the high "more follows" bit was still set.
    Truncated,
    /// More bytes than the type allows, or bits beyond the type's width.
    Overlong,
}

impl std::fmt::Display for VarintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarintError::Truncated => f.write_str("varint runs past the end of its buffer"),
            VarintError::Overlong => f.write_str("varint is longer than its type allows"),
        }
    }
}

/// Decode a varint64 at `*pos`, advancing `*pos` past it.
pub fn read_varint64(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = *buf.get(*pos + i).ok_or(VarintError::Truncated)?;
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            // The tenth byte may only contribute the top bit of a u64.
            return Err(VarintError::Overlong);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Ok(value);
        }
    }
    Err(VarintError::Overlong)
}

/// Decode a varint32 at `*pos` (at most 5 bytes, value must fit in 32 bits).
pub fn read_varint32(buf: &[u8], pos: &mut usize) -> Result<u32, VarintError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let byte = *buf.get(*pos + i).ok_or(VarintError::Truncated)?;
        let bits = u32::from(byte & 0x7f);
        if i == 4 && bits > 0x0f {
            return Err(VarintError::Overlong);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Ok(value);
        }
    }
    Err(VarintError::Overlong)
}

/// Append `value` as a varint64 (used by tests and the test-only writer).
pub(crate) fn write_varint64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Little-endian u32 at `pos`, or `None` if it would run past the end.
pub(crate) fn fixed32(buf: &[u8], pos: usize) -> Option<u32> {
    let bytes = buf.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Little-endian u64 at `pos`, or `None` if it would run past the end.
pub(crate) fn fixed64(buf: &[u8], pos: usize) -> Option<u64> {
    let bytes = buf.get(pos..pos.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v64(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
        let mut pos = 0;
        read_varint64(bytes, &mut pos).map(|v| (v, pos))
    }

    fn v32(bytes: &[u8]) -> Result<(u32, usize), VarintError> {
        let mut pos = 0;
        read_varint32(bytes, &mut pos).map(|v| (v, pos))
    }

    #[test]
    fn small_and_multibyte_values() {
        assert_eq!(v64(&[0x00]), Ok((0, 1)));
        assert_eq!(v64(&[0x7f]), Ok((127, 1)));
        assert_eq!(v64(&[0x80, 0x01]), Ok((128, 2)));
        assert_eq!(v64(&[0xac, 0x02]), Ok((300, 2)));
        assert_eq!(v32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok((u32::MAX, 5)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(v64(&max), Ok((u64::MAX, 10)));
    }

    #[test]
    fn round_trip() {
        for value in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            1 << 35,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write_varint64(&mut buf, value);
            assert_eq!(v64(&buf), Ok((value, buf.len())));
        }
    }

    #[test]
    fn truncated_and_overlong() {
        assert_eq!(v64(&[]), Err(VarintError::Truncated));
        assert_eq!(v64(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(v32(&[0xff, 0xff]), Err(VarintError::Truncated));
        // 11 continuation bytes: longer than any u64.
        assert_eq!(v64(&[0x80; 11]), Err(VarintError::Overlong));
        // 10 bytes whose last byte carries more than the top bit.
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(v64(&too_big), Err(VarintError::Overlong));
        // varint32: 6 bytes, or a 5th byte with bits beyond 32.
        assert_eq!(
            v32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::Overlong)
        );
        assert_eq!(
            v32(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overlong)
        );
    }

    #[test]
    fn fixed_widths() {
        assert_eq!(fixed32(&[1, 2, 3, 4], 0), Some(0x0403_0201));
        assert_eq!(fixed32(&[1, 2, 3], 0), None);
        assert_eq!(fixed32(&[1, 2, 3, 4], usize::MAX), None);
        let magic = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb];
        assert_eq!(fixed64(&magic, 0), Some(0xdb47_7524_8b80_fb57));
    }
}
