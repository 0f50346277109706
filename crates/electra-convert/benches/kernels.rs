//! Transpose-and-convert kernels at ELECTRA-base kernel shapes: the vectorised form
//! (`kernels::transpose_columns`, AVX2 + F16C where available) against the portable tiled loop
//! (`kernels::transpose_columns_portable`), for f32, f16 and bf16 output, and the element-wise
//! conversion of a copied tensor. Plain `harness = false` bench:
//!
//!     cargo bench --bench kernels
//!
//! Each case runs `BENCH_ITERS` times (default 20) after one warm-up; the table gives the best
//! and the median time and the input rate of the median (GB/s of f32 read). The writer transposes
//! in 2 MiB output bands (`OUT_SLICE`), and so does this bench.

// Benchmarks and tests report on stdout/stderr; the no-print rule is for the library itself.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use electra_convert::kernels::{
    convert, convert_portable, transpose_columns, transpose_columns_portable, Target,
};
use electra_convert::write::safetensors::element_size;
use electra_convert::OutputDtype;

const OUT_SLICE: usize = 2 << 20;

/// `[rows, cols]` transposed band by band, as the writer does it.
fn transpose_all(
    src: &[[u8; 4]],
    rows: usize,
    cols: usize,
    p: OutputDtype,
    out: &mut [u8],
    vectorised: bool,
) {
    let per_band = (OUT_SLICE / (rows * (element_size(p) as usize)) / 8).max(1) * 8;
    for c0 in (0..cols).step_by(per_band) {
        let band = c0..(c0 + per_band).min(cols);
        let n = band.len() * rows * (element_size(p) as usize);
        let dst = Target::of(&mut out[..n], p);
        if vectorised {
            transpose_columns(src, rows, cols, band, dst);
        } else {
            transpose_columns_portable(src, rows, cols, band, dst);
        }
    }
}

/// Best and median seconds of `iters` runs of `f` after one warm-up.
fn time(iters: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("kernels: run with `cargo bench --bench kernels`");
        return;
    }
    let iters = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    println!(
        "{:<28} {:>5} {:>10} {:>10} {:>8}",
        "case", "prec", "best ms", "median ms", "GB/s"
    );
    for (rows, cols) in [(768, 768), (768, 3072), (3072, 768)] {
        let src: Vec<[u8; 4]> = (0..rows * cols)
            .map(|i| ((i as f32).sin() * 0.02).to_le_bytes())
            .collect();
        let mut out = vec![0u8; rows * cols * 4];
        for p in [OutputDtype::F32, OutputDtype::F16, OutputDtype::Bf16] {
            for vectorised in [false, true] {
                let (best, median) = time(iters, || {
                    transpose_all(&src, rows, cols, p, &mut out, vectorised)
                });
                let label = format!(
                    "transpose [{rows}, {cols}] {}",
                    if vectorised { "vector" } else { "portable" }
                );
                let rate = (rows * cols * 4) as f64 / median / 1e9;
                println!(
                    "{label:<28} {:>5} {:>10.3} {:>10.3} {rate:>8.2}",
                    format!("{p:?}"),
                    best * 1e3,
                    median * 1e3
                );
            }
        }
    }
    // A copied tensor: the ELECTRA-base word embeddings, [30522, 768], in 1 MiB pieces.
    let n = 30522 * 768;
    let src: Vec<[u8; 4]> = (0..n)
        .map(|i| ((i as f32).cos() * 0.05).to_le_bytes())
        .collect();
    let mut out = vec![0u8; n * 2];
    for p in [OutputDtype::F16, OutputDtype::Bf16] {
        for vectorised in [false, true] {
            let (best, median) = time(iters, || {
                for (piece, dst) in src.chunks(1 << 18).zip(out.chunks_mut((1 << 18) * 2)) {
                    let dst = Target::of(&mut dst[..piece.len() * 2], p);
                    if vectorised {
                        convert(piece, dst);
                    } else {
                        convert_portable(piece, dst);
                    }
                }
            });
            let label = format!(
                "convert [30522, 768] {}",
                if vectorised { "vector" } else { "portable" }
            );
            let rate = (n * 4) as f64 / median / 1e9;
            println!(
                "{label:<28} {:>5} {:>10.3} {:>10.3} {rate:>8.2}",
                format!("{p:?}"),
                best * 1e3,
                median * 1e3
            );
        }
    }
}
