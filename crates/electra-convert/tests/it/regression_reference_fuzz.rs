//! Regression tests for the `reference` cargo-fuzz target (`fuzz/fuzz_targets/reference.rs`):
//! each is named after the behaviour it pins down; `fuzz/README.md` lists the runs.

use std::path::Path;

use electra_convert::verify::{read_reference, read_reference_bytes};

/// A `.safetensors` file whose 8-byte header length happens to start with the bytes `PK`
/// (length 0x4b50 = 19280 modulo 65536, which the writer's 8-byte padding allows) was taken
/// for a zip archive by the content sniffing and refused as "not a readable .npz".
#[test]
fn safetensors_whose_header_length_begins_with_pk_is_read() {
    let mut header = String::from(
        r#"{"input_ids":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"logits":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}"#,
    );
    while header.len() < 0x4b50 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    assert!(bytes.starts_with(b"PK"));
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&3i64.to_le_bytes());
    bytes.extend_from_slice(&0.25f32.to_le_bytes());
    let file = read_reference_bytes(Path::new("pk.safetensors"), &bytes).expect("safetensors");
    let reference = file.into_reference().expect("valid reference");
    assert_eq!(reference.batch.input_ids, vec![3]);
    assert_eq!(reference.expected[0].2, vec![0.25]);
}

/// The in-memory entry point and the file reader agree on the fixtures.
#[test]
fn read_reference_bytes_matches_read_reference() {
    let root = crate::repo_root().join("fixtures/electra/tied/expected");
    for kind in ["discriminator", "generator", "encoder"] {
        for ext in ["npz", "safetensors"] {
            let path = root.join(kind).join(format!("reference.{ext}"));
            let from_file = read_reference(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let from_bytes = read_reference_bytes(&path, &bytes).unwrap();
            assert_eq!(from_file.arrays, from_bytes.arrays, "{}", path.display());
        }
    }
}

/// A corrupt zip that is not a safetensors file either still reports the zip problem.
#[test]
fn corrupt_npz_still_reports_the_zip_error() {
    let err = read_reference_bytes(Path::new("bad.npz"), b"PK\x03\x04garbage")
        .unwrap_err()
        .to_string();
    assert!(err.contains("zip"), "{err}");
}
