//! transformers' TF weights (`tf_model.h5`, single or sharded) presented as a TensorFlow bundle.
//!
//! The HDF5 files are read with [`super::h5`] (metadata only). Every Keras weight becomes one
//! bundle entry under its TF name without the model-name component and without `:0`
//! (`electra/encoder/layer_._0/attention/self/query/kernel`): its dtype and shape from the
//! dataset, its shard the h5 file it is in, its offset and size the dataset's contiguous bytes,
//! and its CRC32C computed here by reading each dataset once (in bounded chunks). The index is
//! built in memory with `tf-checkpoint`'s own encoders and the h5 files serve as the data shards,
//! so every later read is the ordinary streamed, CRC-checked bundle read.
//!
//! The generator file stores the shared embedding layer twice (under `electra` and again under
//! `generator_lm_head`): the copies must be byte-equal; the second is listed under its layer's
//! name (`generator_lm_head/electra/embeddings/...`), which the mapping skips with that reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tf_checkpoint::proto::{self, BundleEntry, TensorShape};
use tf_checkpoint::sstable::{TableBuilder, TableOptions};
use tf_checkpoint::{Checkpoint, DType, ShardFile};

use super::h5::{self, Dtype, H5File, KerasFormat};
use super::{Form, Source, SourceError};

/// The single-file name transformers writes.
pub const H5_FILE: &str = "tf_model.h5";
/// The shard index transformers writes beside `tf_model-0000K-of-0000N.h5`.
pub const H5_INDEX: &str = "tf_model.h5.index.json";

/// Bytes read at a time while checksumming a dataset.
const CRC_CHUNK: usize = 8 << 20;

/// What the user named, if it is a transformers TF h5 upload: the file to open (`tf_model.h5`
/// or the shard index), else `None`.
pub fn detect(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        for name in [H5_INDEX, H5_FILE] {
            let p = path.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        return None;
    }
    let name = path.file_name()?.to_str()?;
    (path.is_file() && (name.ends_with(".h5") || name.ends_with(".h5.index.json")))
        .then(|| path.to_path_buf())
}

/// One weight found in the files.
struct Found {
    file: usize,
    info: h5::DatasetInfo,
    /// Where it was found, for messages.
    path: String,
}

/// Open a `tf_model.h5`, one shard of a sharded upload, or its `tf_model.h5.index.json`.
pub fn open(path: &Path) -> Result<Source, SourceError> {
    let side_dir = super::directory_of(path);
    let files: Vec<PathBuf> = if path.to_string_lossy().ends_with(".index.json") {
        shard_files(path)?
    } else {
        vec![path.to_path_buf()]
    };
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut expected: Option<Vec<String>> = None;
    if files.len() > 1 || path.to_string_lossy().ends_with(".index.json") {
        expected = Some(index_names(path)?);
    }
    let mut opened = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let h5err = |source: h5::Error| SourceError::H5 {
            path: file.clone(),
            source,
        };
        let f = H5File::open(file).map_err(h5err)?;
        let weights = h5::keras_weights(&f).map_err(h5err)?;
        for layer in &weights.layers {
            for w in &layer.weights {
                let name = tf_name(&w.name, &layer.name, &weights.format);
                if let Some(first) = found.get(&name) {
                    // The generator's second copy of the shared embedding layer.
                    let a = read_all(&opened, &f, first)?;
                    let b = f.read_dataset_bytes(&w.info).map_err(h5err)?;
                    if first.info.shape != w.info.shape || a != b {
                        return Err(SourceError::Keras {
                            path: file.clone(),
                            detail: format!(
                                "the weight `{name}` is stored twice with different values (`{}` and `{}`)",
                                first.path, w.path
                            ),
                        });
                    }
                    // Kept under its layer's name so `map` can account for it.
                    let copy = format!("{}/{name}", layer.name);
                    if layer.name.is_empty() || found.contains_key(&copy) {
                        return Err(SourceError::Keras {
                            path: file.clone(),
                            detail: format!("the weight `{name}` is stored more than twice"),
                        });
                    }
                    found.insert(
                        copy,
                        Found {
                            file: i,
                            info: w.info.clone(),
                            path: w.path.clone(),
                        },
                    );
                    continue;
                }
                found.insert(
                    name,
                    Found {
                        file: i,
                        info: w.info.clone(),
                        path: w.path.clone(),
                    },
                );
            }
        }
        opened.push(f);
    }
    if found.is_empty() {
        return Err(SourceError::Keras {
            path: path.to_path_buf(),
            detail: "the file holds no weights".into(),
        });
    }
    if let Some(names) = expected {
        let listed: std::collections::BTreeSet<String> = names
            .iter()
            .map(|n| {
                tf_name(
                    n,
                    "",
                    &KerasFormat::SaveWeights {
                        backend: None,
                        keras_version: None,
                    },
                )
            })
            .collect();
        let have: std::collections::BTreeSet<String> = found.keys().cloned().collect();
        if listed != have {
            let missing: Vec<&String> = listed.difference(&have).take(5).collect();
            let extra: Vec<&String> = have.difference(&listed).take(5).collect();
            return Err(SourceError::Keras {
                path: path.to_path_buf(),
                detail: format!(
                    "the shards do not hold the weights the index lists (listed but missing: {missing:?}; present but not listed: {extra:?})"
                ),
            });
        }
    }

    let mut entries = Vec::with_capacity(found.len());
    for (name, w) in &found {
        let crc = crc_of(&opened[w.file], &w.info).map_err(|source| SourceError::H5 {
            path: files[w.file].clone(),
            source,
        })?;
        entries.push((
            name.clone(),
            entry(
                tf_dtype(w.info.dtype),
                &w.info.shape,
                w.file,
                w.info.data_offset,
                w.info.data_len,
                crc,
            ),
        ));
    }
    let shards = files
        .iter()
        .enumerate()
        .map(|(i, p)| ShardFile {
            id: i as i32,
            path: p.clone(),
            base: 0,
            len: None,
        })
        .collect();
    let checkpoint = in_memory_bundle(path, shards, &entries)?;
    Ok(Source::new(
        checkpoint,
        Form::KerasH5,
        side_dir,
        path.display().to_string(),
        Vec::new(),
    ))
}

/// A bundle entry for `len` bytes at `offset` of shard `shard` whose CRC32C is `crc`.
pub(super) fn entry(
    dtype: DType,
    shape: &[u64],
    shard: usize,
    offset: u64,
    len: u64,
    crc: u32,
) -> BundleEntry {
    BundleEntry {
        dtype: dtype.to_proto(),
        shape: TensorShape {
            dims: shape.iter().map(|&d| d as i64).collect(),
            unknown_rank: false,
        },
        shard_id: shard as i32,
        offset: offset as i64,
        size: len as i64,
        crc32c: tf_checkpoint::crc_mask(crc),
        slices: Vec::new(),
    }
}

/// A checkpoint over `shards` whose index is built here from `entries` (sorted by key).
pub(super) fn in_memory_bundle(
    path: &Path,
    shards: Vec<ShardFile>,
    entries: &[(String, BundleEntry)],
) -> Result<Checkpoint, SourceError> {
    let io = |e: std::io::Error| SourceError::Keras {
        path: path.to_path_buf(),
        detail: format!("building the in-memory index: {e}"),
    };
    let mut table = TableBuilder::new(Vec::new(), TableOptions::default());
    let mut header = proto::tf_header();
    header.num_shards = i32::try_from(shards.len()).map_err(|_| SourceError::Keras {
        path: path.to_path_buf(),
        detail: "too many shards".into(),
    })?;
    table.add(b"", &proto::encode_header(&header)).map_err(io)?;
    for (name, e) in entries {
        table
            .add(name.as_bytes(), &proto::encode_entry(e))
            .map_err(io)?;
    }
    let (index, _) = table.finish().map_err(io)?;
    Ok(Checkpoint::from_index_bytes(path, &index)?.with_shard_files(shards)?)
}

/// A Keras weight name as a bundle key: no model-name component (transformers' single files
/// list it first: `tf_electra_for_pre_training/electra/...` in layer `electra`; a name that
/// starts with its own layer's name has none), no `:0`.
fn tf_name(name: &str, layer: &str, format: &KerasFormat) -> String {
    let name = match (format, name.split_once('/')) {
        (KerasFormat::SaveWeights { .. }, Some((first, rest))) if first != layer => rest,
        _ => name,
    };
    name.strip_suffix(":0").unwrap_or(name).to_owned()
}

pub(super) fn tf_dtype(d: Dtype) -> DType {
    match d {
        Dtype::F16 => DType::Float16,
        Dtype::F32 => DType::Float32,
        Dtype::F64 => DType::Float64,
        Dtype::I8 => DType::Int8,
        Dtype::I16 => DType::Int16,
        Dtype::I32 => DType::Int32,
        Dtype::I64 => DType::Int64,
        Dtype::U8 => DType::UInt8,
        Dtype::U16 => DType::UInt16,
        Dtype::U32 => DType::UInt32,
        Dtype::U64 => DType::UInt64,
    }
}

/// The CRC32C of a dataset's bytes, read in bounded chunks.
fn crc_of(file: &H5File, info: &h5::DatasetInfo) -> h5::Result<u32> {
    let mut crc = 0u32;
    let mut offset = 0u64;
    while offset < info.data_len {
        let n = (info.data_len - offset).min(CRC_CHUNK as u64) as usize;
        let bytes = file.read_at(info.data_offset + offset, n)?;
        crc = crc32c::crc32c_append(crc, &bytes);
        offset += n as u64;
    }
    Ok(crc)
}

fn read_all(opened: &[H5File], current: &H5File, w: &Found) -> Result<Vec<u8>, SourceError> {
    let f = opened.get(w.file).unwrap_or(current);
    f.read_dataset_bytes(&w.info)
        .map_err(|source| SourceError::H5 {
            path: PathBuf::from(&w.path),
            source,
        })
}

fn read_index(index: &Path) -> Result<serde_json::Value, SourceError> {
    let bad = |detail: String| SourceError::Keras {
        path: index.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(index).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))
}

/// The weight names `tf_model.h5.index.json` lists.
fn index_names(index: &Path) -> Result<Vec<String>, SourceError> {
    if !index.to_string_lossy().ends_with(".index.json") {
        return Ok(Vec::new());
    }
    let value = read_index(index)?;
    let map = weight_map(index, &value)?;
    Ok(map.keys().cloned().collect())
}

fn weight_map<'a>(
    index: &Path,
    value: &'a serde_json::Value,
) -> Result<&'a serde_json::Map<String, serde_json::Value>, SourceError> {
    value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| SourceError::Keras {
            path: index.to_path_buf(),
            detail: "no `weight_map` object".into(),
        })
}

/// The shard files `tf_model.h5.index.json` names, in name order, beside it.
pub(crate) fn shard_files(index: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let value = read_index(index)?;
    let map = weight_map(index, &value)?;
    let dir = super::directory_of(index);
    let mut names = std::collections::BTreeSet::new();
    for (key, v) in map {
        let Some(file) = v.as_str() else {
            return Err(SourceError::Keras {
                path: index.to_path_buf(),
                detail: format!("the shard of `{key}` is not a string"),
            });
        };
        let plain = Path::new(file);
        if plain.components().count() != 1 || plain.file_name().is_none() {
            return Err(SourceError::Keras {
                path: index.to_path_buf(),
                detail: format!("the shard name `{file}` is not a file name beside the index"),
            });
        }
        names.insert(file.to_owned());
    }
    if names.is_empty() {
        return Err(SourceError::Keras {
            path: index.to_path_buf(),
            detail: "the `weight_map` is empty".into(),
        });
    }
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}
