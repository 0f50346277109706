//! Fuzz target `model_dir`: the verify module's model-directory reader (safetensors headers read
//! from the file, tensors read by byte range, every parameter checked before the forward pass)
//! and the `--text-file` reader.
//!
//! The first input byte picks the mode (`mode % 4`), the rest is its input:
//!
//! - 0: the bytes are the whole `model.safetensors`;
//! - 1: the bytes are a safetensors *header* (the JSON); the file is written as its 8-byte length,
//!   the header, and a zero-filled data section as long as the largest `data_offsets` end the
//!   header names (capped at 8 MiB; 0 if the header is not JSON), so mutated dtypes, shapes and
//!   offsets reach the shape checks and the byte-range reads;
//! - 2: as 1, but the data section is the real data of the `released` encoder fixture, repeated
//!   or cut to the length the header asks for;
//! - 3: the bytes are a `--text-file`.
//!
//! Modes 0–2 run `verify_against_reference` on a directory holding the `released` encoder's
//! config.json, the fuzzed model.safetensors and its reference.safetensors. Besides "no panic":
//! a report that comes back is for the fixture's `[2, 12, 64]` hidden states; texts that come
//! back are non-empty lines.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use electra_convert::verify::{read_text_file, verify_against_reference, Tolerance};
use libfuzzer_sys::fuzz_target;

const CONFIG: &[u8] =
    include_bytes!("../../../../fixtures/electra/released/expected/encoder/config.json");
const REFERENCE: &[u8] =
    include_bytes!("../../../../fixtures/electra/released/expected/encoder/reference.safetensors");
const MODEL: &[u8] =
    include_bytes!("../../../../fixtures/electra/released/expected/encoder/model.safetensors");
const MAX_DATA: u64 = 8 << 20;

struct Dir {
    _tmp: tempfile::TempDir,
    model_dir: PathBuf,
    reference: PathBuf,
    text_file: PathBuf,
}

fn dir() -> &'static Dir {
    static DIR: OnceLock<Dir> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let model_dir = tmp.path().join("model");
        std::fs::create_dir(&model_dir).unwrap();
        std::fs::write(model_dir.join("config.json"), CONFIG).unwrap();
        let reference = tmp.path().join("reference.safetensors");
        std::fs::write(&reference, REFERENCE).unwrap();
        let text_file = tmp.path().join("texts.txt");
        Dir {
            model_dir,
            reference,
            text_file,
            _tmp: tmp,
        }
    })
}

/// The largest `data_offsets[1]` of a header, if it is a JSON object.
fn data_len(header: &[u8]) -> u64 {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(header) else {
        return 0;
    };
    map.values()
        .filter_map(|v| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0)
        .min(MAX_DATA)
}

fn file_from_header(header: &[u8], real_data: bool) -> Vec<u8> {
    let len = data_len(header) as usize;
    let mut out = Vec::with_capacity(8 + header.len() + len);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header);
    if real_data {
        let n = u64::from_le_bytes(MODEL[..8].try_into().unwrap()) as usize;
        let data = &MODEL[8 + n..];
        out.extend(data.iter().copied().cycle().take(len));
    } else {
        out.resize(out.len() + len, 0);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let d = dir();
    if mode % 4 == 3 {
        std::fs::write(&d.text_file, rest).unwrap();
        if let Ok(texts) = read_text_file(&d.text_file) {
            assert!(!texts.is_empty());
            for t in &texts {
                assert!(!t.trim().is_empty() && !t.contains('\n'), "{t:?}");
            }
        }
        return;
    }
    let bytes = match mode % 4 {
        0 => rest.to_vec(),
        1 => file_from_header(rest, false),
        _ => file_from_header(rest, true),
    };
    std::fs::write(d.model_dir.join("model.safetensors"), &bytes).unwrap();
    let tol = Tolerance::default();
    if let Ok(report) = verify_against_reference(&d.model_dir, &d.reference, tol) {
        let hidden = &report.outputs["last_hidden_state"];
        assert_eq!(hidden.shape, [2, 12, 64]);
    }
});
