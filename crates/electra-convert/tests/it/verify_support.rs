//! Helpers shared by the verify test files: fixture paths, editable copies of model directories.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

pub(crate) fn fixtures() -> PathBuf {
    crate::repo_root().join("fixtures/electra")
}

/// `fixtures/electra/<layout>/expected/<kind>`.
pub(crate) fn model_dir(layout: &str, kind: &str) -> PathBuf {
    fixtures().join(layout).join("expected").join(kind)
}

/// The checkpoint of a layout (its directory; the reader resolves the prefix).
pub(crate) fn checkpoint(layout: &str) -> PathBuf {
    fixtures().join(layout)
}

/// Every (layout, kind) pair that has expected outputs.
pub(crate) fn all_models() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for layout in ["tied", "released", "untied", "finetuned"] {
        for kind in ["discriminator", "generator", "encoder"] {
            if model_dir(layout, kind).is_dir() {
                out.push((layout, kind));
            }
        }
    }
    assert_eq!(out.len(), 10, "fixture set changed: {out:?}");
    out
}

/// Tensors of a safetensors file as f32 values by name.
pub(crate) type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

pub(crate) fn read_tensors(file: &Path) -> Tensors {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name}");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

pub(crate) fn write_tensors(file: &Path, tensors: &Tensors) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, (shape, values))| {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), shape.clone(), data)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let out = safetensors::tensor::serialize(views, Some(meta)).unwrap();
    std::fs::write(file, out).unwrap();
}

/// A private copy of a fixture model directory that tests may modify.
pub(crate) struct ModelCopy {
    pub tmp: tempfile::TempDir,
    pub layout: &'static str,
    pub kind: &'static str,
}

impl ModelCopy {
    pub(crate) fn new(layout: &'static str, kind: &'static str) -> ModelCopy {
        let tmp = tempfile::tempdir().unwrap();
        for file in ["config.json", "model.safetensors"] {
            std::fs::copy(model_dir(layout, kind).join(file), tmp.path().join(file)).unwrap();
        }
        ModelCopy { tmp, layout, kind }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub(crate) fn reference(&self) -> PathBuf {
        model_dir(self.layout, self.kind).join("reference.safetensors")
    }

    pub(crate) fn edit_tensors(&self, edit: impl FnOnce(&mut Tensors)) {
        let file = self.dir().join("model.safetensors");
        let mut tensors = read_tensors(&file);
        edit(&mut tensors);
        write_tensors(&file, &tensors);
    }

    pub(crate) fn edit_config(
        &self,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) {
        let file = self.dir().join("config.json");
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        edit(value.as_object_mut().unwrap());
        std::fs::write(&file, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    }
}

/// Key prefix of the tower's tensors in a model directory of `kind`.
pub(crate) fn prefix(kind: &str) -> &'static str {
    if kind == "encoder" {
        ""
    } else {
        "electra."
    }
}

/// Transpose a row-major [rows, cols] matrix.
pub(crate) fn transpose(shape: &[usize], values: &[f32]) -> Vec<f32> {
    let (r, c) = (shape[0], shape[1]);
    let mut out = vec![0.0; values.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = values[i * c + j];
        }
    }
    out
}
