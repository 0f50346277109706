//! Fuzz target `kernels`: the vectorised transpose and precision conversion against the portable
//! ones.
//!
//! Input: `[rows][cols][band start][band length][values...]`: a `[rows % 70, cols % 70]` matrix
//! whose f32 elements are the value bytes read four at a time (repeated when there are too few,
//! zeros when there are none), and a band of its columns clamped into range. For that band, and
//! for the element-wise conversion of the whole matrix, the target asserts that
//! `kernels::transpose_columns` / `kernels::convert` give exactly the bytes of their portable
//! forms in f32, f16 and bf16, and that the f32 band is the definition of the transpose. On a
//! processor without AVX2 + F16C both sides are the portable form (the assertions still hold).

#![no_main]

use electra_convert::kernels::{
    convert, convert_portable, transpose_columns, transpose_columns_portable, Target,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, values)) = data.split_first_chunk::<4>() else {
        return;
    };
    let rows = head[0] as usize % 70;
    let cols = head[1] as usize % 70;
    let start = (head[2] as usize).min(cols);
    let end = (start + head[3] as usize).min(cols);
    let n = rows * cols;
    let words: Vec<[u8; 4]> = if values.len() < 4 {
        vec![[0; 4]; n]
    } else {
        let have = values.len() / 4;
        (0..n)
            .map(|i| {
                let k = (i % have) * 4;
                [values[k], values[k + 1], values[k + 2], values[k + 3]]
            })
            .collect()
    };

    let m = (end - start) * rows;
    let (mut fast, mut slow) = (vec![[0u8; 4]; m], vec![[0u8; 4]; m]);
    transpose_columns(&words, rows, cols, start..end, Target::F32(&mut fast));
    transpose_columns_portable(&words, rows, cols, start..end, Target::F32(&mut slow));
    assert_eq!(fast, slow, "f32 band");
    for c in start..end {
        for r in 0..rows {
            assert_eq!(fast[(c - start) * rows + r], words[r * cols + c], "transpose at ({r}, {c})");
        }
    }
    let (mut fast, mut slow) = (vec![[0u8; 2]; m], vec![[0u8; 2]; m]);
    transpose_columns(&words, rows, cols, start..end, Target::F16(&mut fast));
    transpose_columns_portable(&words, rows, cols, start..end, Target::F16(&mut slow));
    assert_eq!(fast, slow, "f16 band");
    transpose_columns(&words, rows, cols, start..end, Target::Bf16(&mut fast));
    transpose_columns_portable(&words, rows, cols, start..end, Target::Bf16(&mut slow));
    assert_eq!(fast, slow, "bf16 band");

    let (mut fast, mut slow) = (vec![[0u8; 2]; n], vec![[0u8; 2]; n]);
    convert(&words, Target::F16(&mut fast));
    convert_portable(&words, Target::F16(&mut slow));
    assert_eq!(fast, slow, "f16 conversion");
    convert(&words, Target::Bf16(&mut fast));
    convert_portable(&words, Target::Bf16(&mut slow));
    assert_eq!(fast, slow, "bf16 conversion");
});
