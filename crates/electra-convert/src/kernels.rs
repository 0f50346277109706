//! Transpose and precision-conversion kernels shared by the safetensors writer, export and verify.
//!
//! Every kernel has a portable form (tiled loops over little-endian bytes, the reference) and, on
//! x86-64 processors with AVX2 and F16C (detected at run time), a vectorised form: 8 × 8 tiles
//! transposed in registers, f16 through the processor's own conversion instruction (the one
//! `half` uses one value at a time), bf16 rounded with integer arithmetic. Both forms give the
//! same bytes for every input, NaNs included; the tests compare them on random bit patterns.

use std::ops::Range;

use half::{bf16, f16};

use crate::options::OutputDtype;

/// f32 → f16 exactly as torch's `.to(torch.float16)` on CPU: round to nearest even, overflow to
/// ±inf, NaN keeps its sign and top payload bits with the quiet bit set.
pub(crate) fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// f32 → bf16 exactly as torch's `.to(torch.bfloat16)` on CPU for non-scalar tensors: round to
/// nearest even; every NaN becomes 0xFFFF (what torch's vectorised conversion produces;
/// `half` would keep sign and payload instead).
pub(crate) fn f32_to_bf16_bits(x: f32) -> u16 {
    if x.is_nan() {
        0xFFFF
    } else {
        bf16::from_f32(x).to_bits()
    }
}

/// Where converted values go: little-endian output elements of one precision.
pub enum Target<'a> {
    /// float32 output.
    F32(&'a mut [[u8; 4]]),
    /// float16 output.
    F16(&'a mut [[u8; 2]]),
    /// bfloat16 output.
    Bf16(&'a mut [[u8; 2]]),
}

impl<'a> Target<'a> {
    /// `out` (a whole number of `dtype` elements) as the target of that precision.
    pub fn of(out: &'a mut [u8], dtype: OutputDtype) -> Target<'a> {
        match dtype {
            OutputDtype::F32 => Target::F32(bytemuck::cast_slice_mut(out)),
            OutputDtype::F16 => Target::F16(bytemuck::cast_slice_mut(out)),
            OutputDtype::Bf16 => Target::Bf16(bytemuck::cast_slice_mut(out)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Target::F32(d) => d.len(),
            Target::F16(d) | Target::Bf16(d) => d.len(),
        }
    }
}

fn f16_bytes(b: [u8; 4]) -> [u8; 2] {
    f32_to_f16_bits(f32::from_le_bytes(b)).to_le_bytes()
}

fn bf16_bytes(b: [u8; 4]) -> [u8; 2] {
    f32_to_bf16_bits(f32::from_le_bytes(b)).to_le_bytes()
}

/// Edge of the square tiles the portable transpose walks. Measured on this project's kernels
/// (`[768, 768]`, `[768, 3072]`, `[3072, 768]` f32) 8 beat 16, 32 and 64: the source rows of a
/// `[768, 3072]` kernel are 12 KiB apart, a multiple of 4 KiB, so every row of a tile lands in the
/// same L1 set and a tile taller than the cache's associativity (8) evicts itself. The
/// vectorised transpose uses the same edge (one AVX register holds a tile row).
pub(crate) const TILE: usize = 8;

/// Rows `columns` of the transpose of the row-major `[rows, cols]` matrix `src` (that is, its
/// columns), element-wise mapped: `dst[(c - columns.start) * rows + r] = f(src[r * cols + c])`,
/// walked in `TILE`×`TILE` tiles so that both the strided reads and the sequential writes stay in
/// cache. A band rather than the whole matrix, so a large kernel's output can be produced (and
/// written) a slice at a time; `0..cols` is the whole transpose.
///
/// Panics unless `src` holds `rows * cols` elements, `columns` lies within `0..cols` and `dst`
/// holds `columns.len() * rows` elements.
pub(crate) fn transpose_columns_map<S: Copy, D: Copy>(
    src: &[S],
    rows: usize,
    cols: usize,
    columns: Range<usize>,
    dst: &mut [D],
    f: impl Fn(S) -> D,
) {
    check_band(src.len(), rows, cols, &columns, dst.len());
    let first = columns.start;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in columns.clone().step_by(TILE) {
            let c1 = (c0 + TILE).min(columns.end);
            for c in c0..c1 {
                let at = (c - first) * rows;
                let column = &mut dst[at + r0..at + r1];
                for (k, d) in column.iter_mut().enumerate() {
                    *d = f(src[(r0 + k) * cols + c]);
                }
            }
        }
    }
}

fn check_band(src: usize, rows: usize, cols: usize, columns: &Range<usize>, dst: usize) {
    assert_eq!(src, rows * cols, "transpose source size");
    assert!(
        columns.start <= columns.end && columns.end <= cols,
        "transpose columns"
    );
    assert_eq!(dst, columns.len() * rows, "transpose destination size");
}

/// Columns `columns` of the row-major `[rows, cols]` little-endian f32 matrix `src`, each
/// converted to the target's precision and written as one output row:
/// `dst[(c - columns.start) * rows + r] = src[r * cols + c]`. Vectorised where the processor
/// allows, with the same result as [`transpose_columns_portable`].
///
/// Panics unless `src` holds `rows * cols` elements, `columns` lies within `0..cols` and `dst`
/// holds `columns.len() * rows` elements.
pub fn transpose_columns(
    src: &[[u8; 4]],
    rows: usize,
    cols: usize,
    columns: Range<usize>,
    dst: Target<'_>,
) {
    check_band(src.len(), rows, cols, &columns, dst.len());
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the processor has AVX2 and F16C (checked just above), and the sizes were
        // checked against the band.
        unsafe { avx2::transpose_columns(src, rows, cols, columns, dst) };
        return;
    }
    transpose_columns_portable(src, rows, cols, columns, dst)
}

/// The portable form of [`transpose_columns`].
pub fn transpose_columns_portable(
    src: &[[u8; 4]],
    rows: usize,
    cols: usize,
    columns: Range<usize>,
    dst: Target<'_>,
) {
    match dst {
        Target::F32(d) => transpose_columns_map(src, rows, cols, columns, d, |b| b),
        Target::F16(d) => transpose_columns_map(src, rows, cols, columns, d, f16_bytes),
        Target::Bf16(d) => transpose_columns_map(src, rows, cols, columns, d, bf16_bytes),
    }
}

/// The whole transpose of a row-major `[rows, cols]` matrix of four-byte values (f32, or their
/// bits as u32) into a `[cols, rows]` one, moved as they are, vectorised where the processor
/// allows. The values' byte order does not matter: whole units move.
///
/// Panics unless `src` and `dst` both hold `rows * cols` elements, or `T` is not four bytes.
pub(crate) fn transpose_words<T: bytemuck::Pod>(
    src: &[T],
    rows: usize,
    cols: usize,
    dst: &mut [T],
) {
    assert_eq!(std::mem::size_of::<T>(), 4, "four-byte values");
    transpose_columns(
        bytemuck::cast_slice(src),
        rows,
        cols,
        0..cols,
        Target::F32(bytemuck::cast_slice_mut(dst)),
    )
}

/// `src` element by element in the target's precision (`dst[i] = src[i]`), vectorised where the
/// processor allows, with the same result as [`convert_portable`].
///
/// Panics unless `dst` holds as many elements as `src`.
pub fn convert(src: &[[u8; 4]], dst: Target<'_>) {
    assert_eq!(src.len(), dst.len(), "conversion destination size");
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the processor has AVX2 and F16C (checked just above); the lengths are equal.
        unsafe { avx2::convert(src, dst) };
        return;
    }
    convert_portable(src, dst)
}

/// The portable form of [`convert`].
pub fn convert_portable(src: &[[u8; 4]], dst: Target<'_>) {
    assert_eq!(src.len(), dst.len(), "conversion destination size");
    match dst {
        Target::F32(d) => d.copy_from_slice(src),
        Target::F16(d) => d.iter_mut().zip(src).for_each(|(d, &s)| *d = f16_bytes(s)),
        Target::Bf16(d) => d.iter_mut().zip(src).for_each(|(d, &s)| *d = bf16_bytes(s)),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The x86-64 forms. x86 is little-endian, so the bytes are the values.

    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Target, TILE};

    /// Columns walked down all the rows before moving on (two tiles). `benches/kernels.rs` on the
    /// ELECTRA-base kernels, 2 MiB bands: walking whole bands row by row (the portable order) ran
    /// at 6.2 / 6.5 / 4.2 GB/s in f32 and 27 / 28 / 5.7 in f16 on `[768, 768]`, `[768, 3072]`,
    /// `[3072, 768]` (the strides of these shapes are multiples of 1–4 KiB, so the scattered
    /// output rows conflict in the caches); blocks of 16 columns gave 27 / 13 / 9 and 24 / 15 /
    /// 21 GB/s, the best sum over the three shapes of the sizes tried (8, 16, 32, 64, 128).
    const COLUMN_BLOCK: usize = 2 * TILE;

    /// AVX2 and F16C, detected once (the standard library caches the answer).
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
    }

    /// Eight rows of eight f32 each → the eight columns, as registers.
    ///
    /// # Safety
    /// AVX2 must be available.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }

    /// Eight f32 → eight bf16, rounded to nearest even; every NaN becomes 0xFFFF.
    ///
    /// # Safety
    /// AVX2 must be available.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn bf16x8(v: __m256) -> __m128i {
        let bits = _mm256_castps_si256(v);
        let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(1));
        let rounded = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb);
        let mut top = _mm256_srli_epi32::<16>(rounded);
        let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
        top = _mm256_blendv_epi8(top, _mm256_set1_epi32(0xFFFF), nan);
        // Each 32-bit lane holds at most 0xFFFF, so the unsigned pack keeps it; the pack works per
        // 128-bit half, so gather the two halves' results into the low 128 bits.
        let packed = _mm256_packus_epi32(top, top);
        _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0x08>(packed))
    }

    /// Store one transposed tile column (eight values) at element `at` of the target.
    ///
    /// # Safety
    /// `at + 8` must not exceed the target's length.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn store8(dst: &mut Target<'_>, at: usize, v: __m256) {
        match dst {
            Target::F32(d) => _mm256_storeu_ps(d.as_mut_ptr().add(at).cast(), v),
            Target::F16(d) => _mm_storeu_si128(
                d.as_mut_ptr().add(at).cast(),
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v),
            ),
            Target::Bf16(d) => _mm_storeu_si128(d.as_mut_ptr().add(at).cast(), bf16x8(v)),
        }
    }

    /// # Safety
    /// AVX2 and F16C must be available; the sizes must have been checked as in
    /// `super::check_band`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn transpose_columns(
        src: &[[u8; 4]],
        rows: usize,
        cols: usize,
        columns: Range<usize>,
        mut dst: Target<'_>,
    ) {
        let first = columns.start;
        let p = src.as_ptr().cast::<f32>();
        let full_rows = rows / TILE * TILE;
        // Full tiles: rows in steps of eight, and the columns of the band in steps of eight.
        let full_end = first + (columns.len() / TILE) * TILE;
        // Two tiles of columns at a time, down all the rows, then the next two: 16 output rows
        // fill sequentially while the source is read 64 bytes per row.
        for b0 in (first..full_end).step_by(COLUMN_BLOCK) {
            let b1 = (b0 + COLUMN_BLOCK).min(full_end);
            for r0 in (0..full_rows).step_by(TILE) {
                for c0 in (b0..b1).step_by(TILE) {
                    let mut tile = [_mm256_setzero_ps(); 8];
                    for (k, row) in tile.iter_mut().enumerate() {
                        *row = _mm256_loadu_ps(p.add((r0 + k) * cols + c0));
                    }
                    for (j, column) in transpose8(tile).into_iter().enumerate() {
                        store8(&mut dst, (c0 + j - first) * rows + r0, column);
                    }
                }
            }
        }
        // The edges (rows past the last full tile, columns past the band's last full tile)
        // element by element, as the portable form does them.
        let mut one = |r: usize, c: usize| {
            let s = src[r * cols + c];
            let at = (c - first) * rows + r;
            match &mut dst {
                Target::F32(d) => d[at] = s,
                Target::F16(d) => d[at] = super::f16_bytes(s),
                Target::Bf16(d) => d[at] = super::bf16_bytes(s),
            }
        };
        for r in 0..full_rows {
            for c in full_end..columns.end {
                one(r, c);
            }
        }
        for r in full_rows..rows {
            for c in columns.clone() {
                one(r, c);
            }
        }
    }

    /// # Safety
    /// AVX2 and F16C must be available; `dst` must hold as many elements as `src`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn convert(src: &[[u8; 4]], mut dst: Target<'_>) {
        if let Target::F32(d) = dst {
            d.copy_from_slice(src);
            return;
        }
        let p = src.as_ptr().cast::<f32>();
        let whole = src.len() / 8 * 8;
        for at in (0..whole).step_by(8) {
            store8(&mut dst, at, _mm256_loadu_ps(p.add(at)));
        }
        for at in whole..src.len() {
            match &mut dst {
                Target::F16(d) => d[at] = super::f16_bytes(src[at]),
                Target::Bf16(d) => d[at] = super::bf16_bytes(src[at]),
                Target::F32(_) => unreachable!("returned above"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: bit patterns of every kind (NaNs with payloads, infinities, subnormals,
    /// values that round up, down and to even) in large numbers.
    fn patterns(n: usize, seed: u64) -> Vec<[u8; 4]> {
        let mut s = seed | 1;
        let special = [
            0x7fc0_0000u32,
            0xffc0_0000,
            0xff81_2345,
            0x7f80_0001,
            0x7f80_0000,
            0xff80_0000,
            0x477f_f000,
            0x477f_e000,
            0x3380_0000,
            0x3300_0001,
            0x3f80_8000,
            0x3f81_8000,
            0x7f7f_ffff,
            0x0000_0001,
            0x8000_0000,
            0,
        ];
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let bits = if i % 5 == 0 {
                    special[(s >> 40) as usize % special.len()]
                } else if i % 5 == 1 {
                    // Halfway cases for f16 and bf16.
                    (s as u32 & 0xffff_e000) | 0x1000
                } else {
                    s as u32
                };
                bits.to_le_bytes()
            })
            .collect()
    }

    fn both_forms_agree(rows: usize, cols: usize, band: Range<usize>) {
        let src = patterns(rows * cols, (rows * 131 + cols) as u64);
        let n = band.len() * rows;
        let (mut a32, mut b32) = (vec![[0u8; 4]; n], vec![[1u8; 4]; n]);
        transpose_columns(&src, rows, cols, band.clone(), Target::F32(&mut a32));
        transpose_columns_portable(&src, rows, cols, band.clone(), Target::F32(&mut b32));
        assert_eq!(a32, b32, "f32 [{rows}, {cols}] {band:?}");
        let (mut a, mut b) = (vec![[0u8; 2]; n], vec![[1u8; 2]; n]);
        transpose_columns(&src, rows, cols, band.clone(), Target::F16(&mut a));
        transpose_columns_portable(&src, rows, cols, band.clone(), Target::F16(&mut b));
        assert_eq!(a, b, "f16 [{rows}, {cols}] {band:?}");
        transpose_columns(&src, rows, cols, band.clone(), Target::Bf16(&mut a));
        transpose_columns_portable(&src, rows, cols, band.clone(), Target::Bf16(&mut b));
        assert_eq!(a, b, "bf16 [{rows}, {cols}] {band:?}");
    }

    /// The vectorised transpose (where this machine has it) gives the portable form's bytes
    /// for every precision, on shapes with and without partial tiles and on bands that do and
    /// do not start on a tile edge.
    #[test]
    fn vectorised_transpose_equals_the_portable_one() {
        for (rows, cols) in [
            (8, 8),
            (16, 24),
            (64, 40),
            (9, 17),
            (23, 8),
            (8, 31),
            (1, 9),
        ] {
            both_forms_agree(rows, cols, 0..cols);
            both_forms_agree(rows, cols, cols / 3..cols);
            both_forms_agree(rows, cols, 1..cols.max(1));
        }
        both_forms_agree(5, 0, 0..0);
    }

    /// The shapes the writer meets: an ELECTRA-base FFN kernel `[768, 3072]` in the 2 MiB output
    /// bands the writer produces (680 columns of f32, 1360 of f16), the last band short.
    #[test]
    fn electra_kernel_bands_agree_in_every_precision() {
        let (rows, cols) = (768, 3072);
        let src = patterns(rows * cols, 11);
        for (per_band, f16) in [(680, false), (1360, true)] {
            for c0 in (0..cols).step_by(per_band) {
                let band = c0..(c0 + per_band).min(cols);
                let n = band.len() * rows;
                if f16 {
                    let (mut a, mut b) = (vec![[0u8; 2]; n], vec![[1u8; 2]; n]);
                    transpose_columns(&src, rows, cols, band.clone(), Target::F16(&mut a));
                    transpose_columns_portable(&src, rows, cols, band, Target::F16(&mut b));
                    assert!(a == b, "f16 band from column {c0}");
                } else {
                    let (mut a, mut b) = (vec![[0u8; 4]; n], vec![[1u8; 4]; n]);
                    transpose_columns(&src, rows, cols, band.clone(), Target::F32(&mut a));
                    transpose_columns_portable(&src, rows, cols, band, Target::F32(&mut b));
                    assert!(a == b, "f32 band from column {c0}");
                }
            }
        }
    }

    /// The whole transpose (vectorised where available) is the definition:
    /// `dst[c * rows + r] == src[r * cols + c]`, for f32 and for u32 words.
    #[test]
    fn transpose_words_is_the_definition() {
        let (rows, cols) = (13, 21);
        let src: Vec<f32> = (0..rows * cols).map(|x| x as f32 * 0.5 - 7.0).collect();
        let mut dst = vec![0f32; rows * cols];
        transpose_words(&src, rows, cols, &mut dst);
        let words: Vec<u32> = src.iter().map(|x| x.to_bits()).collect();
        let mut word_dst = vec![0u32; rows * cols];
        transpose_words(&words, rows, cols, &mut word_dst);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(dst[c * rows + r], src[r * cols + c], "({r}, {c})");
                assert_eq!(word_dst[c * rows + r], words[r * cols + c], "({r}, {c})");
            }
        }
    }

    /// Element-wise conversion: vectorised and portable agree on every kind of bit pattern,
    /// including lengths that are not a multiple of the vector width.
    #[test]
    fn vectorised_conversion_equals_the_portable_one() {
        for n in [0, 1, 7, 8, 9, 1000, 4099] {
            let src = patterns(n, n as u64 + 3);
            let (mut a, mut b) = (vec![[0u8; 2]; n], vec![[1u8; 2]; n]);
            convert(&src, Target::F16(&mut a));
            convert_portable(&src, Target::F16(&mut b));
            assert_eq!(a, b, "f16, {n} values");
            convert(&src, Target::Bf16(&mut a));
            convert_portable(&src, Target::Bf16(&mut b));
            assert_eq!(a, b, "bf16, {n} values");
            let (mut a32, mut b32) = (vec![[0u8; 4]; n], vec![[1u8; 4]; n]);
            convert(&src, Target::F32(&mut a32));
            convert_portable(&src, Target::F32(&mut b32));
            assert_eq!(a32, src);
            assert_eq!(b32, src);
        }
    }

    /// The conversions torch makes (values checked against torch 2.x on CPU), through both forms.
    #[test]
    fn both_forms_round_like_torch() {
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
        // Sixteen values so the vectorised form runs on two full vectors.
        let src: Vec<[u8; 4]> = cases
            .iter()
            .chain(cases.iter().take(6))
            .map(|c| c.0.to_le_bytes())
            .collect();
        let want_h: Vec<[u8; 2]> = cases
            .iter()
            .chain(cases.iter().take(6))
            .map(|c| c.1.to_le_bytes())
            .collect();
        let want_b: Vec<[u8; 2]> = cases
            .iter()
            .chain(cases.iter().take(6))
            .map(|c| c.2.to_le_bytes())
            .collect();
        let mut out = vec![[0u8; 2]; src.len()];
        convert(&src, Target::F16(&mut out));
        assert_eq!(out, want_h);
        convert(&src, Target::Bf16(&mut out));
        assert_eq!(out, want_b);
        convert_portable(&src, Target::F16(&mut out));
        assert_eq!(out, want_h);
        convert_portable(&src, Target::Bf16(&mut out));
        assert_eq!(out, want_b);
        // And as a column of an 8 × 2 matrix, so the transposing kernel converts them too.
        let mut t = vec![[0u8; 2]; 16];
        transpose_columns(&src, 8, 2, 0..2, Target::F16(&mut t));
        let col: Vec<[u8; 2]> = (0..2)
            .flat_map(|c| (0..8).map(move |r| r * 2 + c))
            .map(|i| want_h[i])
            .collect();
        assert_eq!(t, col);
    }
}
