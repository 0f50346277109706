//! Fuzz target `reference`: the verify module's reference-file reader.
//!
//! The first input byte picks the entry point (`mode % 4`), the rest is its input:
//!
//! - 0: `parse_npy` on the bytes (one `.npy` array);
//! - 1: `parse_npz` on the bytes (an `.npz`, i.e. a zip of `.npy` members), then the whole
//!   reader on the same bytes;
//! - 2: the bytes describe zip *members*, and a real archive is written from them first, so
//!   that mutated `.npy` members get past the zip CRCs and reach the size and header checks
//!   (layout: `[flags]` then repeated `[name len][name][u16 LE data len][data]`; flags bit 0
//!   = deflate, bit 1 = also add a directory entry);
//! - 3: `read_reference_bytes` on the bytes (format told apart by content, so this is mostly
//!   the `.safetensors` path).
//!
//! Whenever a reference file is read, it is also validated with `into_reference`. Besides "no
//! panic, no sanitizer report", the target asserts what success promises: every array holds
//! exactly product(shape) elements (the product computed without overflow), member names are
//! unique, and a validated reference has `input_ids` with a `[b, s]` batch whose three inputs
//! hold b*s values (masks 0/1), and outputs of shape `[b, s, ...]` holding product(shape) values.

#![no_main]

use std::io::{Cursor, Write};
use std::path::Path;

use electra_convert::verify::npy::{parse_npz, Array};
use electra_convert::verify::{parse_npy, read_reference_bytes};
use libfuzzer_sys::fuzz_target;

fn elements(shape: &[usize]) -> usize {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or_else(|| panic!("accepted shape {shape:?} overflows"))
}

fn check_array(name: &str, a: &Array) {
    assert_eq!(
        a.len(),
        elements(&a.shape),
        "{name}: {} values for shape {:?}",
        a.len(),
        a.shape
    );
}

fn check_reference(bytes: &[u8]) {
    let path = Path::new("fuzz-input");
    let Ok(file) = read_reference_bytes(path, bytes) else {
        return;
    };
    for (name, a) in &file.arrays {
        check_array(name, a);
    }
    let had_ids = file.arrays.contains_key("input_ids");
    let Ok(reference) = file.into_reference() else {
        return;
    };
    assert!(had_ids, "a reference without input_ids was accepted");
    let batch = &reference.batch;
    assert!(batch.batch > 0 && batch.seq > 0);
    let n = batch.batch * batch.seq;
    assert_eq!(batch.input_ids.len(), n);
    assert_eq!(batch.attention_mask.len(), n);
    assert_eq!(batch.token_type_ids.len(), n);
    assert!(batch.attention_mask.iter().all(|&m| m <= 1));
    assert!(!reference.expected.is_empty());
    for (name, shape, values) in &reference.expected {
        assert!(name == "logits" || name == "last_hidden_state");
        assert!(shape.len() >= 2 && shape[0] == batch.batch && shape[1] == batch.seq);
        assert_eq!(values.len(), elements(shape), "{name} {shape:?}");
    }
}

fn check_npz(bytes: &[u8]) {
    if let Ok(arrays) = parse_npz(Cursor::new(bytes)) {
        for (i, (name, a)) in arrays.iter().enumerate() {
            check_array(name, a);
            assert!(
                arrays[..i].iter().all(|(n, _)| n != name),
                "{name} listed twice"
            );
        }
    }
}

/// Write a zip archive from `[flags]([name len][name][u16 LE len][data])*`.
fn build_zip(input: &[u8]) -> Option<Vec<u8>> {
    let (&flags, mut rest) = input.split_first()?;
    let method = if flags & 1 == 1 {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    if flags & 2 == 2 {
        w.add_directory("dir/", opts).ok()?;
    }
    while let Some((&name_len, tail)) = rest.split_first() {
        let name_len = usize::from(name_len % 32).min(tail.len());
        let name = String::from_utf8_lossy(&tail[..name_len]).into_owned();
        let tail = &tail[name_len..];
        if tail.len() < 2 {
            break;
        }
        let len = usize::from(u16::from_le_bytes([tail[0], tail[1]])).min(tail.len() - 2);
        let data = &tail[2..2 + len];
        rest = &tail[2 + len..];
        w.start_file(name, opts).ok()?;
        w.write_all(data).ok()?;
    }
    Some(w.finish().ok()?.into_inner())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(a) = parse_npy(input) {
                check_array("npy", &a);
            }
        }
        1 => {
            check_npz(input);
            check_reference(input);
        }
        2 => {
            if let Some(zip) = build_zip(input) {
                check_npz(&zip);
                check_reference(&zip);
            }
        }
        _ => check_reference(input),
    }
});
