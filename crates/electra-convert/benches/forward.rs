//! Forward-pass timing at ELECTRA-base shapes (batch 8 × seq 128, H 768, 12 layers, I 3072,
//! V 30522), random weights, discriminator head. Plain `harness = false` bench:
//!
//!     RAYON_NUM_THREADS=2 cargo bench --bench forward
//!
//! Environment: BENCH_BATCH, BENCH_SEQ, BENCH_ITERS (default 8, 128, 10). candle's matmul (gemm)
//! and elementwise kernels take their thread count from RAYON_NUM_THREADS.

// Benchmarks and tests report on stdout/stderr; the no-print rule is for the library itself.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use electra_convert::verify::bench::{BenchModel, BenchShape};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system) of this process in seconds, from /proc/self/stat (Linux; USER_HZ = 100).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful. Run only under bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("forward: run with `cargo bench --bench forward`");
        return;
    }
    let (b, s, iters) = (
        env("BENCH_BATCH", 8),
        env("BENCH_SEQ", 128),
        env("BENCH_ITERS", 10),
    );
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let t = Instant::now();
    let model = BenchModel::new(BenchShape::ELECTRA_BASE, 0).expect("build model");
    let build = t.elapsed().as_secs_f64();
    let batch = model.batch(b, s, 1);
    for _ in 0..2 {
        model.forward(&batch).expect("forward");
    }
    let mut times = Vec::with_capacity(iters);
    let mut checksum = 0f64;
    let cpu_start = process_cpu_seconds();
    for _ in 0..iters {
        let t = Instant::now();
        let logits = model.forward(&batch).expect("forward");
        times.push(t.elapsed().as_secs_f64());
        checksum += logits.iter().map(|&x| x as f64).sum::<f64>();
    }
    let cpu = match (cpu_start, process_cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.1} ms", (b - a) / iters as f64 * 1e3),
        _ => "n/a".into(),
    };
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "candle forward ElectraForPreTraining base b{b} s{s} threads={threads}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {iters} runs, CPU time {cpu} per run (build {:.1} s, checksum {checksum:.4})",
        median * 1e3,
        times[0] * 1e3,
        times[times.len() - 1] * 1e3,
        build
    );
}
