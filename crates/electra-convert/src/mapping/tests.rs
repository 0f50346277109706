use std::path::{Path, PathBuf};

use super::*;

fn fixture(layout: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("fixtures/electra")
        .join(layout)
}

fn vars(layout: &str) -> Vec<SourceVar> {
    let text = std::fs::read_to_string(fixture(layout).join("tf_variables.json")).unwrap();
    let rows: Vec<(String, Vec<u64>, String)> = serde_json::from_str(&text).unwrap();
    rows.into_iter()
        .map(|(name, shape, dtype)| SourceVar { name, shape, dtype })
        .collect()
}

/// (name, shape) of every tensor of an expected model.safetensors, in file order.
fn expected_tensors(layout: &str, kind: &str) -> Vec<(String, Vec<u64>)> {
    let bytes = std::fs::read(
        fixture(layout)
            .join("expected")
            .join(kind)
            .join("model.safetensors"),
    )
    .unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            (k, shape)
        })
        .collect()
}

fn kind(s: &str) -> ModelKind {
    match s {
        "discriminator" => ModelKind::Discriminator,
        "generator" => ModelKind::Generator,
        "encoder" => ModelKind::Encoder,
        _ => unreachable!(),
    }
}

#[test]
fn plans_match_transformers_key_sets_order_and_shapes() {
    for (layout, kinds) in [
        ("tied", &["discriminator", "generator", "encoder"][..]),
        ("released", &["discriminator", "generator", "encoder"][..]),
        ("untied", &["discriminator", "generator", "encoder"][..]),
        ("finetuned", &["encoder"][..]),
    ] {
        let vars = vars(layout);
        for k in kinds {
            let plan = plan(kind(k), &vars).unwrap_or_else(|e| panic!("{layout}/{k}: {e}"));
            let got: Vec<(String, Vec<u64>)> = plan
                .entries
                .iter()
                .map(|e| (e.hf.clone(), e.hf_shape.clone()))
                .collect();
            assert_eq!(got, expected_tensors(layout, k), "{layout}/{k}");
            // Every variable is either mapped or skipped, never both.
            assert_eq!(
                plan.entries.len() + plan.skipped.len(),
                vars.len(),
                "{layout}/{k}"
            );
            assert!(plan
                .skipped
                .iter()
                .all(|s| s.category != SkipCategory::Unrecognised));
        }
    }
}

#[test]
fn dims_are_read_from_shapes() {
    let plan = plan(ModelKind::Generator, &vars("tied")).unwrap();
    let d = &plan.dims;
    assert_eq!(
        (
            d.vocab_size,
            d.embedding_size,
            d.hidden_size,
            d.intermediate_size,
            d.num_hidden_layers,
            d.max_position_embeddings,
            d.type_vocab_size
        ),
        (80, 32, 64, 96, 2, 32, 2)
    );
    assert_eq!(plan.layout.embeddings_scope, "electra");
    let untied = plan_all(ModelKind::Generator, &vars("untied")).unwrap();
    assert_eq!(untied[0].layout.embeddings_scope, "generator");
    assert_eq!(untied[0].dims.embedding_size, 32);
    assert!(untied[0]
        .skipped
        .iter()
        .any(|s| s.tf == "electra/embeddings/word_embeddings"
            && s.category == SkipCategory::OtherModel));
}

#[test]
fn skip_reasons() {
    let plan = plan(ModelKind::Discriminator, &vars("tied")).unwrap();
    let reason = |name: &str| {
        plan.skipped
            .iter()
            .find(|s| s.tf == name)
            .map(|s| s.category)
    };
    assert_eq!(reason("global_step"), Some(SkipCategory::GlobalStep));
    assert_eq!(
        reason("electra/embeddings/word_embeddings/adam_m"),
        Some(SkipCategory::OptimizerSlot)
    );
    assert_eq!(
        reason("generator_predictions/output_bias"),
        Some(SkipCategory::OtherModel)
    );
    let enc = super::plan(ModelKind::Encoder, &vars("finetuned")).unwrap();
    assert_eq!(enc.task_heads, vec!["mnli".to_owned()]);
    assert!(
        enc.skipped
            .iter()
            .any(|s| s.tf == "task_specific/mnli/dense/kernel"
                && s.category == SkipCategory::TaskHead)
    );
}

#[test]
fn bert_is_not_electra() {
    let err = plan(ModelKind::Discriminator, &vars("bert")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MappingError::NotElectra { .. }));
    assert!(msg.contains("BERT"), "{msg}");
    assert!(msg.contains("`bert/`"), "{msg}");
}

#[test]
fn finetuned_discriminator_points_to_encoder() {
    let err = plan_all(ModelKind::Discriminator, &vars("finetuned")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("mnli"), "{msg}");
    assert!(msg.contains("--model encoder"), "{msg}");
    let err = plan_all(ModelKind::Both, &vars("finetuned")).unwrap_err();
    assert!(err.to_string().contains("--model encoder"));
    let err = plan_all(ModelKind::Generator, &vars("finetuned")).unwrap_err();
    assert!(err.to_string().contains("generator/encoder"));
}

#[test]
fn available_kinds_per_layout() {
    use ModelKind::*;
    assert_eq!(
        available_kinds(&vars("tied")),
        vec![Discriminator, Generator, Encoder, Both]
    );
    assert_eq!(available_kinds(&vars("finetuned")), vec![Encoder]);
    assert!(available_kinds(&vars("bert")).is_empty());
}

fn without(vars: &[SourceVar], name: &str) -> Vec<SourceVar> {
    vars.iter().filter(|v| v.name != name).cloned().collect()
}

#[test]
fn missing_tensor_is_named() {
    let v = without(
        &vars("tied"),
        "electra/encoder/layer_1/attention/self/key/bias",
    );
    let msg = plan(ModelKind::Discriminator, &v).unwrap_err().to_string();
    assert!(
        msg.contains("electra.encoder.layer.1.attention.self.key.bias"),
        "{msg}"
    );
    assert!(msg.contains("electra/encoder/layer_1/attention/self/key/bias"));
}

#[test]
fn missing_projection_is_an_error_when_widths_differ() {
    let v = without(&vars("tied"), "electra/embeddings_project/kernel");
    let v = without(&v, "electra/embeddings_project/bias");
    let msg = plan(ModelKind::Encoder, &v).unwrap_err().to_string();
    assert!(msg.contains("embeddings_project.weight"), "{msg}");
    assert!(msg.contains("embedding_size 32"), "{msg}");
}

#[test]
fn layer_gaps_are_errors() {
    let v: Vec<SourceVar> = vars("tied")
        .into_iter()
        .filter(|v| !v.name.starts_with("electra/encoder/layer_0/"))
        .collect();
    let err = plan(ModelKind::Discriminator, &v).unwrap_err();
    assert!(
        matches!(&err, MappingError::LayerGap { missing, .. } if missing == &vec![0]),
        "{err}"
    );
}

#[test]
fn shape_mismatch_names_both_sides() {
    let mut v = vars("tied");
    for var in &mut v {
        if var.name == "electra/encoder/layer_1/attention/self/value/kernel" {
            var.shape = vec![128, 64];
        }
    }
    let msg = plan(ModelKind::Discriminator, &v).unwrap_err().to_string();
    assert!(
        msg.contains("electra/encoder/layer_1/attention/self/value/kernel"),
        "{msg}"
    );
    assert!(
        msg.contains("electra.encoder.layer.1.attention.self.value.weight"),
        "{msg}"
    );
    assert!(msg.contains("[H, H] = [128, 128]"), "{msg}");
    assert!(msg.contains("[128, 64]"), "{msg}");
}

#[test]
fn word_embedding_width_must_match_layer_norm() {
    let mut v = vars("released");
    for var in &mut v {
        if var.name == "electra/embeddings/LayerNorm/gamma" {
            var.shape = vec![32];
        }
    }
    let msg = plan(ModelKind::Encoder, &v).unwrap_err().to_string();
    assert!(
        msg.contains("E = 64 from `electra/embeddings/word_embeddings`"),
        "{msg}"
    );
}

#[test]
fn unknown_variable_inside_the_tower_is_an_error() {
    let mut v = vars("released");
    v.push(SourceVar::new(
        "electra/pooler/dense/kernel",
        &[64, 64],
        "float32",
    ));
    let msg = plan(ModelKind::Encoder, &v).unwrap_err().to_string();
    assert!(msg.contains("electra/pooler/dense/kernel"), "{msg}");
    // Outside the exported scopes it is skipped with a reason.
    let mut v = vars("released");
    v.push(SourceVar::new(
        "cloze_predictions/output_bias",
        &[72],
        "float32",
    ));
    let p = plan(ModelKind::Encoder, &v).unwrap();
    assert_eq!(
        p.skipped.last().unwrap().category,
        SkipCategory::Unrecognised
    );
}

#[test]
fn temperature_is_skipped() {
    let mut v = vars("released");
    v.push(SourceVar::new(
        "generator_predictions/temperature",
        &[],
        "float32",
    ));
    let p = plan(ModelKind::Generator, &v).unwrap();
    assert!(p
        .skipped
        .iter()
        .any(|s| s.category == SkipCategory::Temperature));
}

#[test]
fn non_float_weights_are_refused() {
    let mut v = vars("released");
    for var in &mut v {
        if var.name == "electra/embeddings/LayerNorm/beta" {
            var.dtype = "int32".into();
        }
    }
    assert!(matches!(
        plan(ModelKind::Encoder, &v).unwrap_err(),
        MappingError::UnsupportedDtype { .. }
    ));
}

#[test]
fn many_layers_sort_like_transformers() {
    // Layer 10 sorts before layer 2 in byte order, as safetensors orders keys.
    let base = vars("released");
    let mut v: Vec<SourceVar> = base
        .iter()
        .filter(|v| !v.name.contains("/encoder/layer_"))
        .cloned()
        .collect();
    for n in 0..12 {
        for var in base
            .iter()
            .filter(|v| v.name.starts_with("electra/encoder/layer_0/"))
        {
            let mut var = var.clone();
            var.name = var.name.replace("layer_0", &format!("layer_{n}"));
            v.push(var);
        }
    }
    let p = plan(ModelKind::Encoder, &v).unwrap();
    assert_eq!(p.dims.num_hidden_layers, 12);
    let i10 = p
        .entries
        .iter()
        .position(|e| e.hf.starts_with("encoder.layer.10."))
        .unwrap();
    let i2 = p
        .entries
        .iter()
        .position(|e| e.hf.starts_with("encoder.layer.2."))
        .unwrap();
    assert!(i10 < i2);
}

#[test]
fn electric_checkpoints_are_refused_by_detection_but_can_be_forced() {
    let mut vars = vec![
        SourceVar::new("electra/embeddings/word_embeddings", &[30, 8], "float32"),
        SourceVar::new(
            "generator_ltr/encoder/layer_0/attention/self/query/kernel",
            &[8, 8],
            "float32",
        ),
        SourceVar::new("cloze_predictions/output_bias", &[30], "float32"),
    ];
    let err = detect_layout(&vars, None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Electric"), "{text}");
    assert!(
        text.contains("`generator_ltr/`") && text.contains("`cloze_predictions/`"),
        "{text}"
    );
    vars.truncate(1);
    assert_eq!(detect_layout(&vars, None).unwrap(), SourceLayout::GoogleTf1);
}

/// Regression: a layer number near u32::MAX used to make the gap list allocate one entry per
/// missing layer (gigabytes); the error now lists the first few.
#[test]
fn a_huge_layer_number_is_a_short_gap_error() {
    let vars = vec![
        SourceVar::new("electra/embeddings/word_embeddings", &[30, 8], "float32"),
        SourceVar::new(
            "electra/encoder/layer_0/attention/self/query/kernel",
            &[8, 8],
            "float32",
        ),
        SourceVar::new(
            "electra/encoder/layer_4000000000/attention/self/query/kernel",
            &[8, 8],
            "float32",
        ),
    ];
    match plan(ModelKind::Encoder, &vars) {
        Err(MappingError::LayerGap { count, missing, .. }) => {
            assert_eq!(count, 4_000_000_001);
            assert_eq!(missing.len(), 16);
            assert_eq!(missing[0], 1);
        }
        other => panic!("{other:?}"),
    }
}
