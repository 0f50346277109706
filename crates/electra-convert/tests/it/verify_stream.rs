//! The streaming readers behind the parity checks: a model directory's weights are read by byte
//! range from the safetensors headers (sharded directories included), and a damaged or lying
//! weight file is an error naming the file, never a panic or a giant allocation.

use crate::verify_support;

use std::path::Path;

use electra_convert::verify::{
    verify_against_checkpoint, verify_against_reference, ParityReport, Tolerance, VerifyError,
};
use verify_support::*;

const TOL: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// One output's numbers: name, max abs and max rel diff (bits), mismatches, worst index.
type Numbers = (String, u64, u64, usize, Option<Vec<usize>>);

/// Everything numeric a report says, to compare two runs exactly.
fn numbers(report: &ParityReport) -> Vec<Numbers> {
    report
        .outputs
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                c.max_abs_diff.to_bits(),
                c.max_rel_diff.to_bits(),
                c.mismatched,
                c.worst_index.clone(),
            )
        })
        .collect()
}

/// Split `dir/model.safetensors` into two shards plus `model.safetensors.index.json`, the way
/// `save_pretrained(max_shard_size=...)` lays them out.
fn shard(dir: &Path) {
    let file = dir.join("model.safetensors");
    let tensors = read_tensors(&file);
    let names: Vec<String> = tensors.keys().cloned().collect();
    let (first, second) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (part, keys) in [(1, first), (2, second)] {
        let shard_name = format!("model-0000{part}-of-00002.safetensors");
        let subset: Tensors = keys
            .iter()
            .map(|k| (k.clone(), tensors[k].clone()))
            .collect();
        write_tensors(&dir.join(&shard_name), &subset);
        for k in keys {
            map.insert(k.clone(), shard_name.clone().into());
        }
    }
    std::fs::remove_file(&file).unwrap();
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_sharded_directory_gives_the_single_file_numbers() {
    for (layout, kind) in [("tied", "discriminator"), ("released", "generator")] {
        let copy = ModelCopy::new(layout, kind);
        let single_ref = verify_against_reference(copy.dir(), &copy.reference(), TOL).unwrap();
        let single_ckpt =
            verify_against_checkpoint(copy.dir(), &checkpoint(layout), TOL, 0).unwrap();
        shard(copy.dir());
        assert!(!copy.dir().join("model.safetensors").exists());
        let sharded_ref = verify_against_reference(copy.dir(), &copy.reference(), TOL).unwrap();
        let sharded_ckpt =
            verify_against_checkpoint(copy.dir(), &checkpoint(layout), TOL, 0).unwrap();
        assert!(sharded_ref.passed && sharded_ckpt.passed);
        assert_eq!(
            numbers(&sharded_ref),
            numbers(&single_ref),
            "{layout}/{kind}"
        );
        assert_eq!(
            numbers(&sharded_ckpt),
            numbers(&single_ckpt),
            "{layout}/{kind}"
        );
    }
}

#[test]
fn a_tensor_stored_in_two_shards_is_an_error() {
    let copy = ModelCopy::new("tied", "encoder");
    shard(copy.dir());
    // Put one tensor of shard 1 into shard 2 as well.
    let one = copy.dir().join("model-00001-of-00002.safetensors");
    let two = copy.dir().join("model-00002-of-00002.safetensors");
    let first = read_tensors(&one);
    let mut second = read_tensors(&two);
    let (name, value) = first.iter().next().unwrap();
    second.insert(name.clone(), value.clone());
    write_tensors(&two, &second);
    let err = verify_against_reference(copy.dir(), &copy.reference(), TOL).unwrap_err();
    assert!(matches!(err, VerifyError::Safetensors { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(name.as_str()) && text.contains("stored twice"),
        "{text}"
    );
}

fn expect_unreadable(dir: &Path, bytes: &[u8], needle: &str) {
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    let reference = model_dir("released", "encoder").join("reference.safetensors");
    match verify_against_reference(dir, &reference, TOL) {
        Err(VerifyError::Safetensors { path, message }) => {
            assert_eq!(path, dir.join("model.safetensors"));
            assert!(
                message.contains("not a readable safetensors file"),
                "{message}"
            );
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
        other => panic!("expected a Safetensors error, got {other:?}"),
    }
}

#[test]
fn lying_headers_are_errors_without_allocating_what_they_claim() {
    let copy = ModelCopy::new("released", "encoder");
    let good = std::fs::read(copy.dir().join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    expect_unreadable(
        copy.dir(),
        &good[..5],
        "shorter than the 8-byte header length",
    );
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_unreadable(copy.dir(), &huge, "more than the 100000000-byte limit");
    let mut long = good.clone();
    long[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    expect_unreadable(copy.dir(), &long, "but the file has only");
    expect_unreadable(copy.dir(), &good[..good.len() - 1], "describes");
    let mut extra = good.clone();
    extra.push(0);
    expect_unreadable(copy.dir(), &extra, "describes");
    let mut not_json = good.clone();
    not_json[8] = b'!';
    expect_unreadable(copy.dir(), &not_json, "invalid header");
    assert!(n > 0);
}

#[test]
fn every_truncation_and_header_byte_flip_is_an_error_or_a_report_never_a_panic() {
    let copy = ModelCopy::new("released", "encoder");
    let file = copy.dir().join("model.safetensors");
    let good = std::fs::read(&file).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let reference = copy.reference();
    let mut errors = 0;
    // Truncations inside and just past the header, then through the data.
    let mut cuts: Vec<usize> = (0..n + 16).collect();
    cuts.extend((n + 16..good.len()).step_by(4093));
    for cut in cuts {
        std::fs::write(&file, &good[..cut]).unwrap();
        assert!(
            verify_against_reference(copy.dir(), &reference, TOL).is_err(),
            "cut at {cut}"
        );
        errors += 1;
    }
    // Every seventh header byte replaced by two values: an error or a (passing or failing) report.
    for at in (0..8 + n).step_by(7) {
        for value in [b'9', 0xff] {
            if good[at] == value {
                continue;
            }
            let mut bytes = good.clone();
            bytes[at] = value;
            std::fs::write(&file, &bytes).unwrap();
            if verify_against_reference(copy.dir(), &reference, TOL).is_err() {
                errors += 1;
            }
        }
    }
    assert!(errors > n, "{errors}");
}
