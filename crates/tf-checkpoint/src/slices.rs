//! Partitioned (sliced) variables: the encoded keys their slices are stored under, and
//! assembling the slices back into the full tensor.
//!
//! A partitioned variable has a "full-tensor" entry under its plain name (dtype, full shape, a
//! list of slice extents, no data) and one ordinary entry per slice under a key built from the
//! name and the extents with TF's order-preserving "OrderedCode" encoding.

use super::proto::{Extent, TensorSlice};

/// `WriteNumIncreasing`: a length byte, then the value big-endian without leading zero bytes.
fn write_num_increasing(out: &mut Vec<u8>, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// `WriteSignedNumIncreasing`: n-byte two's complement with its leading n bits inverted, where
/// n is the smallest length that holds the value in 7n-1 signed bits.
pub fn write_signed_num_increasing(out: &mut Vec<u8>, value: i64) {
    let magnitude = if value < 0 { !value } else { value } as u64;
    let bit_len = 64 - magnitude.leading_zeros() as usize;
    let n = (bit_len + 1).div_ceil(7).clamp(1, 10);
    // Sign-extend to 10 bytes, big-endian.
    let mut wide = [if value < 0 { 0xffu8 } else { 0 }; 10];
    wide[2..].copy_from_slice(&value.to_be_bytes());
    let mut bytes = wide[10 - n..].to_vec();
    for bit in 0..n {
        bytes[bit / 8] ^= 0x80 >> (bit % 8);
    }
    out.extend_from_slice(&bytes);
}

/// The key a slice of `name` is stored under (`EncodeTensorNameSlice`).
pub fn encode_slice_key(name: &[u8], slice: &TensorSlice) -> Vec<u8> {
    let mut key = vec![0u8]; // WriteNumIncreasing(0)
    for &b in name {
        match b {
            0x00 => key.extend_from_slice(&[0x00, 0xff]),
            0xff => key.extend_from_slice(&[0xff, 0x00]),
            other => key.push(other),
        }
    }
    key.extend_from_slice(&[0x00, 0x01]);
    write_num_increasing(&mut key, slice.extents.len() as u64);
    for extent in &slice.extents {
        let (start, length) = match extent.length {
            Some(length) => (extent.start, length),
            None => (0, -1),
        };
        write_signed_num_increasing(&mut key, start);
        write_signed_num_increasing(&mut key, length);
    }
    key
}

/// A slice's position inside the full tensor: `(start, length)` per dimension.
pub type Region = Vec<(u64, u64)>;

/// Check a slice against the full shape and return its region.
pub fn slice_region(slice: &TensorSlice, full_shape: &[u64]) -> Result<Region, String> {
    if slice.extents.len() != full_shape.len() {
        return Err(format!(
            "a slice has {} extents for a rank-{} tensor",
            slice.extents.len(),
            full_shape.len()
        ));
    }
    let mut region = Vec::with_capacity(full_shape.len());
    for (dim, (extent, &size)) in slice.extents.iter().zip(full_shape).enumerate() {
        let (start, length) = match *extent {
            Extent { length: None, .. }
            | Extent {
                length: Some(-1), ..
            } => (0, size),
            Extent {
                start,
                length: Some(length),
            } => {
                if start < 0 || length < 0 {
                    return Err(format!(
                        "dimension {dim}: negative slice start {start} or length {length}"
                    ));
                }
                (start as u64, length as u64)
            }
        };
        if start.checked_add(length).is_none_or(|end| end > size) {
            return Err(format!(
                "dimension {dim}: slice [{start}, {start}+{length}) exceeds the dimension size {size}"
            ));
        }
        region.push((start, length));
    }
    Ok(region)
}

/// Require the regions to be pairwise disjoint and to cover the whole tensor exactly.
pub(crate) fn check_coverage(regions: &[Region], full_shape: &[u64]) -> Result<(), String> {
    let volume = |r: &Region| r.iter().map(|&(_, l)| u128::from(l)).product::<u128>();
    let total: u128 = full_shape.iter().map(|&d| u128::from(d)).product();
    for (i, a) in regions.iter().enumerate() {
        for (j, b) in regions.iter().enumerate().skip(i + 1) {
            let overlap = a
                .iter()
                .zip(b)
                .all(|(&(sa, la), &(sb, lb))| sa < sb + lb && sb < sa + la);
            if overlap && volume(a) > 0 && volume(b) > 0 {
                return Err(format!("slices {i} and {j} overlap"));
            }
        }
    }
    let covered: u128 = regions.iter().map(volume).sum();
    if covered != total {
        return Err(format!(
            "the slices cover {covered} of the tensor's {total} elements"
        ));
    }
    Ok(())
}

/// Copy a slice's row-major bytes into the full tensor buffer.
/// The caller has checked the region against `full_shape` and `src.len()` against its volume.
pub(crate) fn copy_region(
    dst: &mut [u8],
    full_shape: &[u64],
    region: &Region,
    src: &[u8],
    elem: usize,
) {
    let rank = full_shape.len();
    if rank == 0 {
        dst[..elem].copy_from_slice(&src[..elem]);
        return;
    }
    if region.iter().any(|&(_, l)| l == 0) {
        return;
    }
    // Row-major strides (in elements) of the full tensor.
    let mut strides = vec![1u64; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * full_shape[d + 1];
    }
    let row = region[rank - 1].1 as usize * elem;
    let mut index = vec![0u64; rank - 1]; // position within the slice, outer dims
    let mut src_pos = 0usize;
    loop {
        let mut dst_elem = region[rank - 1].0;
        for d in 0..rank - 1 {
            dst_elem += (region[d].0 + index[d]) * strides[d];
        }
        let dst_pos = dst_elem as usize * elem;
        dst[dst_pos..dst_pos + row].copy_from_slice(&src[src_pos..src_pos + row]);
        src_pos += row;
        // Advance the outer multi-index.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < region[d].1 {
                break;
            }
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn signed_vectors_from_the_spec() {
        assert_eq!(signed(0), [0x80]);
        assert_eq!(signed(1), [0x81]);
        assert_eq!(signed(9), [0x89]);
        assert_eq!(signed(-1), [0x7f]);
        assert_eq!(signed(100), [0xc0, 0x64]);
        assert_eq!(signed(8900), [0xe0, 0x22, 0xc4]);
        assert_eq!(signed(63), [0xbf]);
        assert_eq!(signed(-64), [0x40]);
        assert_eq!(signed(64), [0xc0, 0x40]);
        // Wide values use 9 and 10 bytes with two-byte prefixes.
        assert_eq!(&signed(1 << 56)[..2], [0xff, 0x81]);
        assert_eq!(signed(1 << 56).len(), 9);
        assert_eq!(&signed(i64::MAX)[..2], [0xff, 0xc0]);
        assert_eq!(signed(i64::MAX).len(), 10);
        // Order is preserved bytewise.
        let values = [
            i64::MIN,
            -100_000,
            -65,
            -64,
            -1,
            0,
            1,
            63,
            64,
            8900,
            1 << 40,
            i64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(signed(pair[0]) < signed(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn slice_key_vectors_from_the_spec() {
        let foo = TensorSlice {
            extents: vec![
                Extent {
                    start: 0,
                    length: None,
                },
                Extent {
                    start: 0,
                    length: Some(1),
                },
            ],
        };
        assert_eq!(
            encode_slice_key(b"foo", &foo),
            [0x00, 0x66, 0x6f, 0x6f, 0x00, 0x01, 0x01, 0x02, 0x80, 0x7f, 0x80, 0x81]
        );
        let v = TensorSlice {
            extents: vec![Extent {
                start: 0,
                length: Some(100),
            }],
        };
        assert_eq!(
            encode_slice_key(b"v", &v),
            [0x00, 0x76, 0x00, 0x01, 0x01, 0x01, 0x80, 0xc0, 0x64]
        );
        // Name bytes 00 and ff are escaped.
        let key = encode_slice_key(&[0x61, 0x00, 0xff], &TensorSlice::default());
        assert_eq!(key, [0x00, 0x61, 0x00, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00]);
    }

    #[test]
    fn assembling_rows_and_columns() {
        // Full [2,3] f32-sized (use 1-byte elements for clarity), split into columns 0..1 and 1..3.
        let shape = [2u64, 3];
        let left: Region = vec![(0, 2), (0, 1)];
        let right: Region = vec![(0, 2), (1, 2)];
        check_coverage(&[left.clone(), right.clone()], &shape).unwrap();
        let mut dst = vec![0u8; 6];
        copy_region(&mut dst, &shape, &left, &[1, 4], 1);
        copy_region(&mut dst, &shape, &right, &[2, 3, 5, 6], 1);
        assert_eq!(dst, [1, 2, 3, 4, 5, 6]);
        assert!(check_coverage(std::slice::from_ref(&left), &shape).is_err());
        assert!(check_coverage(&[left.clone(), left.clone(), right], &shape).is_err());
    }

    #[test]
    fn regions_are_checked() {
        let bad = TensorSlice {
            extents: vec![Extent {
                start: 3,
                length: Some(2),
            }],
        };
        assert!(slice_region(&bad, &[4]).is_err());
        let neg = TensorSlice {
            extents: vec![Extent {
                start: -1,
                length: Some(1),
            }],
        };
        assert!(slice_region(&neg, &[4]).is_err());
        assert!(slice_region(&TensorSlice::default(), &[4]).is_err());
        let full = TensorSlice {
            extents: vec![Extent {
                start: 0,
                length: None,
            }],
        };
        assert_eq!(slice_region(&full, &[4]).unwrap(), vec![(0, 4)]);
    }
}
