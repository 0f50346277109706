//! The reader against every committed fixture: the listing equals TensorFlow's
//! `list_variables`, and every value equals what TF's own reader returned.

use crate::checkpoint_support;

use checkpoint_support::*;
use tf_checkpoint::{Checkpoint, DType};

fn listing(ckpt: &Checkpoint) -> Vec<(String, String, Vec<u64>)> {
    ckpt.tensors()
        .iter()
        .map(|t| (t.name.clone(), t.dtype.tf_name(), t.shape.clone()))
        .collect()
}

#[test]
fn every_format_fixture_lists_like_tf() {
    for dir in fixture_dirs("format") {
        let ckpt = Checkpoint::open(&dir.join("ckpt")).unwrap();
        assert_eq!(listing(&ckpt), tf_listing(&dir), "{dir:?}");
    }
}

#[test]
fn every_electra_fixture_lists_like_tf() {
    for dir in fixture_dirs("electra") {
        // Opening the directory goes through the `checkpoint` state file.
        let ckpt = Checkpoint::open(&dir).unwrap();
        assert_eq!(ckpt.prefix(), prefix_in(&dir).as_path(), "{dir:?}");
        assert_eq!(listing(&ckpt), tf_listing(&dir), "{dir:?}");
    }
}

#[test]
fn every_format_fixture_value_matches_tf() {
    let mut checked = 0;
    for dir in fixture_dirs("format") {
        let ckpt = Checkpoint::open(&dir.join("ckpt")).unwrap();
        let expected = read_json(&dir.join("expected.json"));
        let values = expected["values"].as_object().unwrap();
        assert_eq!(values.len(), ckpt.tensors().len(), "{dir:?}");
        for (name, value) in values {
            let info = ckpt.get(name).unwrap();
            if let Some(strings) = value.get("strings_hex") {
                let want: Vec<Vec<u8>> = strings
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| unhex(s.as_str().unwrap()))
                    .collect();
                assert_eq!(ckpt.read_strings(name).unwrap(), want, "{dir:?} {name}");
            } else {
                let want = unhex(value["hex"].as_str().unwrap());
                let got = ckpt.read_bytes(name).unwrap();
                assert_eq!(got.as_ref(), want.as_slice(), "{dir:?} {name}");
                assert_eq!(Some(want.len() as u64), info.num_bytes(), "{dir:?} {name}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} tensors checked");
}

#[test]
fn tiny_fixture_is_the_spec_vector() {
    let ckpt = Checkpoint::open(&fixtures().join("format/tiny/ckpt")).unwrap();
    assert_eq!(ckpt.read_f32("x").unwrap(), [1.0]);
    assert_eq!(ckpt.num_shards(), 1);
}

#[test]
fn typed_reads_on_basic() {
    let ckpt = Checkpoint::open(&fixtures().join("format/basic/ckpt")).unwrap();
    let step = ckpt.read_i64_scalar("global_step").unwrap();
    let hex = read_json(&fixtures().join("format/basic/expected.json"))["values"]["global_step"]
        ["hex"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(step, i64::from_le_bytes(unhex(&hex).try_into().unwrap()));
    let empty = ckpt.get("empty_0x3").unwrap();
    assert_eq!(
        (empty.shape.as_slice(), empty.num_elements()),
        ([0u64, 3].as_slice(), 0)
    );
    assert!(ckpt.read_f32("empty_0x3").unwrap().is_empty());
    assert_eq!(ckpt.get("scalar_f32").unwrap().shape, Vec::<u64>::new());
    assert_eq!(ckpt.read_f32("scalar_f32").unwrap().len(), 1);
    // f64 converts to f32; ints do not.
    assert_eq!(ckpt.read_f32("f64_vector").unwrap().len(), 5);
    assert!(ckpt.read_f32("i32").is_err());
    assert!(ckpt.read_strings("i32").is_err());
    // A trailing :0 is ignored like tf.train.load_variable does.
    assert_eq!(ckpt.get("cube:0").unwrap().name, "cube");
}

#[test]
fn half_types_convert_to_f32() {
    let ckpt = Checkpoint::open(&fixtures().join("format/half/ckpt")).unwrap();
    assert_eq!(ckpt.get("h16").unwrap().dtype, DType::Float16);
    assert_eq!(ckpt.get("bf16").unwrap().dtype, DType::BFloat16);
    let h = ckpt.read_f32("h16_specials").unwrap();
    assert_eq!(&h[..2], &[1.0, -0.5]);
    assert!(h.contains(&f32::INFINITY) && h.contains(&65504.0));
    let b = ckpt.read_f32("bf16_specials").unwrap();
    assert_eq!(&b[..2], &[1.0, -0.5]);
    assert!(b.contains(&f32::NEG_INFINITY));
}

#[test]
fn partitioned_variable_is_listed_whole_and_assembled() {
    let ckpt = Checkpoint::open(&fixtures().join("format/partitioned/ckpt")).unwrap();
    let part = ckpt.get("part").unwrap();
    assert_eq!(part.shape, [10, 4]);
    assert_eq!(part.partitions, 3);
    assert_eq!(ckpt.read_f32("part").unwrap().len(), 40);
}

#[test]
fn multishard_reads_from_both_shards() {
    let ckpt = Checkpoint::open(&fixtures().join("format/multishard/ckpt")).unwrap();
    assert_eq!(ckpt.num_shards(), 2);
    assert_eq!(ckpt.shard_paths().len(), 2);
    assert_eq!(ckpt.read_strings("shard1/names").unwrap().len(), 2);
    assert!(ckpt.read_i64_scalar("shard0/step").is_ok());
}

/// Spot-check checkpoint values against transformers' own converted weights.
#[test]
fn electra_values_match_transformers_output() {
    let cases = [
        // (layout, kind, TF name, HF name, transpose)
        (
            "tied",
            "discriminator",
            "electra/embeddings/word_embeddings",
            "electra.embeddings.word_embeddings.weight",
            false,
        ),
        (
            "tied",
            "discriminator",
            "electra/encoder/layer_1/attention/self/query/kernel",
            "electra.encoder.layer.1.attention.self.query.weight",
            true,
        ),
        (
            "tied",
            "generator",
            "generator_predictions/output_bias",
            "generator_lm_head.bias",
            false,
        ),
        (
            "released",
            "discriminator",
            "discriminator_predictions/dense/kernel",
            "discriminator_predictions.dense.weight",
            true,
        ),
        (
            "finetuned",
            "encoder",
            "electra/encoder/layer_0/output/LayerNorm/gamma",
            "encoder.layer.0.output.LayerNorm.weight",
            false,
        ),
        (
            "untied",
            "generator",
            "generator/embeddings/word_embeddings",
            "electra.embeddings.word_embeddings.weight",
            false,
        ),
    ];
    for (layout, kind, tf_name, hf_name, transpose) in cases {
        let dir = fixtures().join("electra").join(layout);
        let ckpt = Checkpoint::open(&dir).unwrap();
        let values = ckpt.read_f32(tf_name).unwrap();
        let shape = ckpt.get(tf_name).unwrap().shape.clone();
        let bytes =
            std::fs::read(dir.join("expected").join(kind).join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor(hf_name).unwrap();
        let hf: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let expected: Vec<f32> = if transpose {
            let (rows, cols) = (shape[0] as usize, shape[1] as usize);
            assert_eq!(view.shape(), [cols, rows]);
            (0..rows * cols)
                .map(|i| hf[(i % cols) * rows + i / cols])
                .collect()
        } else {
            hf
        };
        assert_eq!(values, expected, "{layout} {tf_name}");
    }
}

#[test]
fn electra_global_steps() {
    for (layout, step) in [
        ("tied", 1000),
        ("released", 1_000_000),
        ("untied", 500),
        ("finetuned", 2000),
    ] {
        let ckpt = Checkpoint::open(&fixtures().join("electra").join(layout)).unwrap();
        assert_eq!(
            ckpt.read_i64_scalar("global_step").unwrap(),
            step,
            "{layout}"
        );
    }
}

#[test]
fn every_electra_tensor_reads_with_valid_crc() {
    for dir in fixture_dirs("electra") {
        let ckpt = Checkpoint::open(&dir).unwrap();
        for t in ckpt.tensors() {
            let bytes = ckpt.read_bytes(&t.name).unwrap();
            assert_eq!(Some(bytes.len() as u64), t.num_bytes(), "{}", t.name);
        }
    }
}

#[test]
fn path_forms_resolve_to_the_same_prefix() {
    let dir = fixtures().join("electra/tied");
    let prefix = dir.join("model.ckpt-1000");
    for path in [
        dir.clone(),
        prefix.clone(),
        dir.join("model.ckpt-1000.index"),
        dir.join("model.ckpt-1000.data-00000-of-00001"),
    ] {
        assert_eq!(
            Checkpoint::open(&path).unwrap().prefix(),
            prefix.as_path(),
            "{path:?}"
        );
    }
    // Directory without a state file but with exactly one index.
    let basic = fixtures().join("format/basic");
    assert_eq!(
        Checkpoint::open(&basic).unwrap().prefix(),
        basic.join("ckpt").as_path()
    );
}
