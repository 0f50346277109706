//! The export library against TensorFlow's own bytes: exporting the transformers-written
//! directories of a fixture gives back, byte for byte, the checkpoint TensorFlow's Saver wrote
//! for the same variables.

use std::path::{Path, PathBuf};

use electra_convert::{export, AdamSlots, ExportOptions, ExportSource, NoProgress};
use tf_checkpoint::Checkpoint;

fn fixtures() -> PathBuf {
    crate::repo_root().join("fixtures")
}

fn expected(layout: &str, kind: &str) -> PathBuf {
    fixtures()
        .join("electra")
        .join(layout)
        .join("expected")
        .join(kind)
}

fn hf(layout: &str, with_generator: bool, out: &Path, step: i64, slots: bool) -> ExportOptions {
    ExportOptions {
        source: ExportSource::Hf {
            discriminator: expected(layout, "discriminator"),
            generator: with_generator.then(|| expected(layout, "generator")),
        },
        output: out.to_path_buf(),
        global_step: Some(step),
        adam_slots: slots.then_some(AdamSlots::Zeros),
        force: false,
    }
}

fn files(prefix: &Path) -> (Vec<u8>, Vec<u8>) {
    let p = prefix.display().to_string();
    (
        std::fs::read(format!("{p}.index")).unwrap(),
        std::fs::read(format!("{p}.data-00000-of-00001")).unwrap(),
    )
}

/// `released` and `untied` have no Adam slots: their TF checkpoints hold exactly the variables
/// an export of their expected directories writes, so the files must be identical.
#[test]
fn export_of_hf_dirs_is_tensorflows_checkpoint_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for (layout, prefix, step, layout_name) in [
        ("released", "electra_tiny", 1_000_000, "shared embeddings"),
        ("untied", "model.ckpt-500", 500, "untied embeddings"),
    ] {
        let out = tmp.path().join(layout).join(prefix);
        let outcome = export(&hf(layout, true, &out, step, false), &mut NoProgress).unwrap();
        assert_eq!(outcome.layout, layout_name);
        let tf = fixtures().join("electra").join(layout).join(prefix);
        let (index, data) = files(&out);
        let (tf_index, tf_data) = files(&tf);
        assert_eq!(data, tf_data, "{layout}: data");
        assert_eq!(index, tf_index, "{layout}: index");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(layout).join("checkpoint")).unwrap(),
            std::fs::read_to_string(fixtures().join("electra").join(layout).join("checkpoint"))
                .unwrap()
        );
        assert_eq!(outcome.bytes, tf_data.len() as u64);
    }
}

/// `tied`: every variable but the (random) Adam slots equals TF's; the zero slots cover exactly
/// the variables that have slots in TF's checkpoint.
#[test]
fn tied_export_with_zero_slots_matches_tensorflows_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tied/model.ckpt-1000");
    let outcome = export(&hf("tied", true, &out, 1000, true), &mut NoProgress).unwrap();
    let ours = Checkpoint::open(&out).unwrap();
    let tf = Checkpoint::open(&fixtures().join("electra/tied/model.ckpt-1000")).unwrap();
    let names = |c: &Checkpoint| {
        c.tensors()
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&ours), names(&tf));
    assert_eq!(outcome.adam_slots_added, 2 * (names(&tf).len() - 1) / 3);
    for t in tf.tensors() {
        let mine = ours.get(&t.name).unwrap();
        assert_eq!((mine.dtype, &mine.shape), (t.dtype, &t.shape), "{}", t.name);
        let got = ours.read_bytes(&t.name).unwrap();
        if t.name.ends_with("/adam_m") || t.name.ends_with("/adam_v") {
            assert!(got.iter().all(|&b| b == 0), "{}", t.name);
        } else {
            assert_eq!(got, tf.read_bytes(&t.name).unwrap(), "{}", t.name);
        }
    }
}

fn from_checkpoint(ckpt: &Path, out: &Path, step: Option<i64>) -> ExportOptions {
    ExportOptions {
        source: ExportSource::Checkpoint(ckpt.to_path_buf()),
        output: out.to_path_buf(),
        global_step: step,
        adam_slots: None,
        force: false,
    }
}

/// `export --checkpoint` of the released fixture (no slots) adds zero slots for every trainable
/// variable and keeps everything else: the result is the HF export of the same model with
/// `--adam-slots zeros`, byte for byte. Of `tied` (slots and global_step present) it is a copy.
#[test]
fn checkpoint_completion_adds_only_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let released = fixtures().join("electra/released/electra_tiny");
    let a = tmp.path().join("a/electra_tiny");
    let outcome = export(&from_checkpoint(&released, &a, None), &mut NoProgress).unwrap();
    let tf = Checkpoint::open(&released).unwrap();
    assert_eq!(outcome.copied, tf.tensors().len());
    assert_eq!(outcome.adam_slots_added, 2 * (tf.tensors().len() - 1));
    assert_eq!(outcome.global_step, 1_000_000);
    let b = tmp.path().join("b/electra_tiny");
    export(&hf("released", true, &b, 1_000_000, true), &mut NoProgress).unwrap();
    assert_eq!(files(&a), files(&b));

    let tied = fixtures().join("electra/tied/model.ckpt-1000");
    let c = tmp.path().join("c/model.ckpt-1000");
    let outcome = export(&from_checkpoint(&tied, &c, None), &mut NoProgress).unwrap();
    assert_eq!(outcome.adam_slots_added, 0);
    assert_eq!(files(&c), files(&tied));

    // global_step present: --global-step is refused, and nothing is written.
    let d = tmp.path().join("d/x");
    let err = export(&from_checkpoint(&tied, &d, Some(5)), &mut NoProgress).unwrap_err();
    assert!(
        err.to_string().contains("already has global_step = 1000"),
        "{err}"
    );
    assert!(!tmp.path().join("d").exists());
}

/// Hub discriminators such as google/electra-base-discriminator still carry an
/// `electra.embeddings_project` although embedding_size = hidden_size (transformers ignores it).
/// Export leaves it out, says so, and writes exactly what it writes without it.
#[test]
fn an_unused_embedding_projection_is_left_out() {
    use safetensors::tensor::TensorView;
    let tmp = tempfile::tempdir().unwrap();
    let disc = tmp.path().join("disc");
    std::fs::create_dir(&disc).unwrap();
    let src = expected("released", "discriminator");
    std::fs::copy(src.join("config.json"), disc.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (w, b) = (vec![0u8; 64 * 64 * 4], vec![0u8; 64 * 4]);
    let mut views: Vec<(String, TensorView)> = st.tensors();
    views.push((
        "electra.embeddings_project.weight".into(),
        TensorView::new(safetensors::Dtype::F32, vec![64, 64], &w).unwrap(),
    ));
    views.push((
        "electra.embeddings_project.bias".into(),
        TensorView::new(safetensors::Dtype::F32, vec![64], &b).unwrap(),
    ));
    let with_projection = safetensors::serialize(views, None).unwrap();
    std::fs::write(disc.join("model.safetensors"), with_projection).unwrap();

    let run = |d: PathBuf, out: &Path| {
        let options = ExportOptions {
            source: ExportSource::Hf {
                discriminator: d,
                generator: Some(expected("released", "generator")),
            },
            output: out.to_path_buf(),
            global_step: Some(1_000_000),
            adam_slots: None,
            force: false,
        };
        export(&options, &mut NoProgress).unwrap()
    };
    let a = tmp.path().join("a/electra_tiny");
    let outcome = run(disc, &a);
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("embeddings_project")),
        "{:?}",
        outcome.notes
    );
    assert_eq!(
        files(&a),
        files(&fixtures().join("electra/released/electra_tiny"))
    );
}

/// A fine-tuned checkpoint (encoder + task head, slots present) is copied unchanged, with notes
/// saying what it lacks for pretraining; a BERT checkpoint is refused before anything is written.
#[test]
fn checkpoint_mode_on_other_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let finetuned = fixtures().join("electra/finetuned/model.ckpt-2000");
    let out = tmp.path().join("ft/model.ckpt-2000");
    let outcome = export(&from_checkpoint(&finetuned, &out, None), &mut NoProgress).unwrap();
    assert_eq!(outcome.adam_slots_added, 0);
    assert_eq!(files(&out), files(&finetuned));
    let notes = outcome.notes.join("\n");
    assert!(notes.contains("task_specific/mnli/dense/kernel"), "{notes}");
    assert!(
        notes.contains("no complete discriminator + generator pair"),
        "{notes}"
    );

    let bert = fixtures().join("electra/bert/bert_model.ckpt");
    let err = export(
        &from_checkpoint(&bert, &tmp.path().join("b/x"), None),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not an ELECTRA checkpoint"),
        "{err}"
    );
    assert!(!tmp.path().join("b").exists());
}
