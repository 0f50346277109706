//! Keras 2 `save_weights` / transformers `tf_model.h5` layout on top of the HDF5 reader.

use super::attr::AttrValue;
use super::error::{Error, Result};
use super::file::{DatasetInfo, Group, H5File, MemberKind};
use super::MAX_SPLIT_ATTRS;

/// Which writer produced the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KerasFormat {
    /// Keras `save_weights` (single-file `tf_model.h5`): one group per top-level layer.
    SaveWeights {
        /// Root attribute `backend`, if present.
        backend: Option<String>,
        /// Root attribute `keras_version`, if present.
        keras_version: Option<String>,
    },
    /// transformers' sharded writer (`tf_model-0000K-of-0000N.h5`): datasets by weight name
    /// (model-name component already dropped) from the root, listed in root `layer_names`.
    Shard,
}

/// One weight: its name as listed in the file and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerasWeight {
    /// Name from `weight_names` (save_weights: full TF name incl. model name, e.g.
    /// `tf_electra_for_pre_training/electra/.../kernel:0`) or `layer_names` (shard: `electra/.../kernel:0`).
    pub name: String,
    /// Absolute dataset path in the file.
    pub path: String,
    /// Dataset location.
    pub info: DatasetInfo,
}

/// One top-level Keras layer. In a shard there is a single layer with an empty name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerasLayer {
    /// Layer name from root `layer_names` (empty for a shard).
    pub name: String,
    /// Weights in `weight_names` order.
    pub weights: Vec<KerasWeight>,
}

/// All weights of a Keras / transformers h5 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerasWeights {
    /// Writer layout.
    pub format: KerasFormat,
    /// Layers in `layer_names` order.
    pub layers: Vec<KerasLayer>,
}

/// Reads a string-list attribute written by Keras' `save_attributes_to_hdf5_group`: either
/// `name` itself, or the split parts `name0`, `name1`, ... concatenated. An empty list is stored
/// as an empty float64 array. `Ok(None)` when neither form is present.
pub fn string_list_attr(group: &Group<'_>, name: &str) -> Result<Option<Vec<String>>> {
    if let Some(a) = group.attr(name)? {
        return as_names(group, name, a.value).map(Some);
    }
    let mut out: Option<Vec<String>> = None;
    for i in 0..MAX_SPLIT_ATTRS {
        let part = format!("{name}{i}");
        match group.attr(&part)? {
            Some(a) => out
                .get_or_insert_with(Vec::new)
                .extend(as_names(group, &part, a.value)?),
            None => break,
        }
    }
    Ok(out)
}

fn as_names(group: &Group<'_>, name: &str, v: AttrValue) -> Result<Vec<String>> {
    match v {
        AttrValue::Strings(s) => Ok(s),
        v if v.is_empty() => Ok(Vec::new()),
        v => Err(Error::NotKeras {
            detail: format!(
                "attribute {name} of {} holds {v:?}, not strings",
                group.path()
            ),
        }),
    }
}

fn scalar_string(group: &Group<'_>, name: &str) -> Result<Option<String>> {
    Ok(group
        .attr(name)?
        .and_then(|a| a.value.as_strings().and_then(|s| s.first().cloned())))
}

/// Lists every weight of a Keras `save_weights` file or a transformers shard.
///
/// Single file: root `layer_names` → group per layer → its `weight_names` → datasets at
/// `/<layer>/<weight name>`. Shard (no `backend` attribute and the first name is a dataset):
/// root `layer_names` are dataset paths from the root.
pub fn keras_weights(file: &H5File) -> Result<KerasWeights> {
    let root = file.root()?;
    let layer_names = string_list_attr(&root, "layer_names")?.ok_or_else(|| Error::NotKeras {
        detail: "root has no layer_names attribute".into(),
    })?;
    let backend = scalar_string(&root, "backend")?;
    let keras_version = scalar_string(&root, "keras_version")?;
    let first_is_dataset = match layer_names.first() {
        Some(n) if backend.is_none() && keras_version.is_none() => {
            matches!(member_kind(&root, n)?, Some(MemberKind::Dataset))
        }
        _ => false,
    };
    if first_is_dataset {
        let mut weights = Vec::with_capacity(layer_names.len());
        for n in layer_names {
            let info = root.dataset(&n)?;
            weights.push(KerasWeight {
                path: format!("/{}", n.trim_start_matches('/')),
                name: n,
                info,
            });
        }
        return Ok(KerasWeights {
            format: KerasFormat::Shard,
            layers: vec![KerasLayer {
                name: String::new(),
                weights,
            }],
        });
    }
    let mut layers = Vec::with_capacity(layer_names.len());
    for lname in layer_names {
        let g = root.group(&lname).map_err(|e| match e {
            Error::NotFound { .. } => Error::NotKeras {
                detail: format!("layer_names lists {lname:?} but the root has no such group"),
            },
            e => e,
        })?;
        let wnames = string_list_attr(&g, "weight_names")?.ok_or_else(|| Error::NotKeras {
            detail: format!("layer group {} has no weight_names attribute", g.path()),
        })?;
        let mut weights = Vec::with_capacity(wnames.len());
        for w in wnames {
            let info = g.dataset(&w)?;
            weights.push(KerasWeight {
                path: format!("{}/{}", g.path(), w.trim_start_matches('/')),
                name: w,
                info,
            });
        }
        layers.push(KerasLayer {
            name: lname,
            weights,
        });
    }
    Ok(KerasWeights {
        format: KerasFormat::SaveWeights {
            backend,
            keras_version,
        },
        layers,
    })
}

/// Kind of the object at a root-relative path, `None` if a component is missing.
fn member_kind(root: &Group<'_>, path: &str) -> Result<Option<MemberKind>> {
    let (dir, last) = match path.trim_start_matches('/').rsplit_once('/') {
        Some((d, l)) => (Some(d), l),
        None => (None, path.trim_start_matches('/')),
    };
    let parent = match dir {
        Some(d) => match root.group(d) {
            Ok(g) => g,
            Err(Error::NotFound { .. }) | Err(Error::WrongKind { .. }) => return Ok(None),
            Err(e) => return Err(e),
        },
        None => {
            return Ok(root
                .members()?
                .into_iter()
                .find(|m| m.name == last)
                .map(|m| m.kind))
        }
    };
    Ok(parent
        .members()?
        .into_iter()
        .find(|m| m.name == last)
        .map(|m| m.kind))
}
