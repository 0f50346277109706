//! The trainer's own configuration beside a TF2 checkpoint: Model Garden's `params.yaml` (the
//! experiment config its trainer serialises into the model directory) and NVIDIA's
//! `pretrain_config.json`. Only the few facts config.json needs and the checkpoint cannot tell
//! are read: head counts (NVIDIA's 2-D kernels do not show them), the activation, the LayerNorm
//! epsilon, pre-/post-LN, and the vocabulary file.
//!
//! `params.yaml` is read with a purpose-built reader of the block-style YAML `yaml.dump` writes
//! (nested `key: value` maps; list items are skipped), not a general YAML parser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::table_tf2::SourceLayout;
use super::ModelKind;

/// Largest trainer config read (real ones are a few KB).
const MAX_BYTES: u64 = 4 << 20;

/// Everything that can make a trainer config unusable.
#[derive(Debug, thiserror::Error)]
pub enum TrainerConfigError {
    /// The file cannot be read.
    #[error("cannot read trainer config {path}: {error}")]
    Io {
        /// The trainer config.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },

    /// A line cannot be parsed.
    #[error("trainer config {path} line {line}: {reason}; fix the file or move it away (config.json then uses the layout's defaults, or pass --config)")]
    Syntax {
        /// The trainer config.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A setting has a value the converter cannot represent.
    #[error("trainer config {path}: {field} is {value}, which {why}")]
    Unsupported {
        /// The trainer config.
        path: PathBuf,
        /// The setting's name.
        field: String,
        /// Its value.
        value: String,
        /// Why it is unsupported.
        why: String,
    },
}

/// What the trainer config says about one tower.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TowerSettings {
    /// Attention heads.
    pub num_attention_heads: Option<u64>,
    /// In transformers' spelling (`gelu_new`, `gelu`, `relu`).
    pub hidden_act: Option<String>,
    /// Layer-norm epsilon.
    pub layer_norm_eps: Option<f64>,
}

/// A trainer config, reduced to what the converter uses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainerConfig {
    /// The file read.
    pub path: PathBuf,
    /// Settings of the discriminator.
    pub discriminator: TowerSettings,
    /// Settings of the generator.
    pub generator: TowerSettings,
    /// A vocabulary the config names (resolved against its directory), if it exists.
    pub vocab_file: Option<PathBuf>,
}

impl TrainerConfig {
    /// The settings of the tower a model kind is exported from.
    pub fn tower(&self, kind: ModelKind) -> &TowerSettings {
        match kind {
            ModelKind::Generator => &self.generator,
            _ => &self.discriminator,
        }
    }
}

/// The file name a layout's trainer writes beside its checkpoints.
pub fn file_name(layout: SourceLayout) -> Option<&'static str> {
    match layout {
        SourceLayout::ModelGarden => Some("params.yaml"),
        SourceLayout::Nvidia => Some("pretrain_config.json"),
        SourceLayout::GoogleTf1 | SourceLayout::HfKeras => None,
    }
}

/// Look for the layout's trainer config in `dir` (the checkpoint's directory) and its parent.
pub fn find(dir: &Path, layout: SourceLayout) -> Result<Option<TrainerConfig>, TrainerConfigError> {
    let Some(name) = file_name(layout) else {
        return Ok(None);
    };
    for candidate in [Some(dir), dir.parent()].into_iter().flatten() {
        let path = candidate.join(name);
        if path.is_file() {
            return load(&path, layout).map(Some);
        }
    }
    Ok(None)
}

/// Read one trainer config of `layout`.
pub fn load(path: &Path, layout: SourceLayout) -> Result<TrainerConfig, TrainerConfigError> {
    let io = |error: String| TrainerConfigError::Io {
        path: path.to_path_buf(),
        error,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| io(e.to_string()))?
        .len();
    if len > MAX_BYTES {
        return Err(io(format!(
            "{len} bytes is larger than any trainer config ({MAX_BYTES} bytes at most)"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| io(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| io(format!("not UTF-8 text: {e}")))?;
    match layout {
        SourceLayout::ModelGarden => from_params_yaml(path, &text),
        SourceLayout::Nvidia => from_pretrain_config(path, &text),
        SourceLayout::GoogleTf1 | SourceLayout::HfKeras => Err(io(format!(
            "{} checkpoints have no trainer config",
            layout.title()
        ))),
    }
}

/// Flatten block-style YAML into `a.b.c -> scalar` (quotes removed; `null`/`~` kept as text).
pub(crate) fn flatten_yaml(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    // Indent of a list being skipped: lines deeper than it, or `-` lines at it, belong to it.
    let mut list_at: Option<usize> = None;
    // Indent of the last `key: value` line: deeper lines continue its value (a wrapped plain
    // scalar, or a flow collection `[{...},\n  ...]` spread over lines) and are skipped.
    let mut scalar_at: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_end();
        let content = trimmed.trim_start();
        if content.is_empty() || content.starts_with('#') || content == "---" {
            continue;
        }
        if raw.contains('\t') && raw.starts_with(|c: char| c.is_whitespace()) {
            return Err((line, "tab in indentation".into()));
        }
        let indent = trimmed.len() - content.len();
        let is_item = content == "-" || content.starts_with("- ");
        if let Some(at) = list_at {
            if indent > at || (indent == at && is_item) {
                continue;
            }
            list_at = None;
        }
        if let Some(at) = scalar_at {
            if indent > at {
                continue;
            }
            scalar_at = None;
        }
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        if is_item {
            list_at = Some(indent);
            continue;
        }
        let (key, value) = match content.split_once(": ") {
            Some((k, v)) => (k.trim(), v.trim()),
            None => match content.strip_suffix(':') {
                Some(k) => (k.trim(), ""),
                None => return Err((line, format!("expected `key: value`, found {content:?}"))),
            },
        };
        let key = unquote(key);
        if value.is_empty() {
            stack.push((indent, key));
            continue;
        }
        let mut path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        path.push(&key);
        out.insert(path.join("."), unquote(value));
        scalar_at = Some(indent);
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    s.to_owned()
}

fn is_null(v: &str) -> bool {
    matches!(v, "null" | "~" | "None" | "")
}

/// Model Garden's activation names (official.modeling.tf_utils.get_activation) in transformers'
/// spelling; "gelu" there is the tanh approximation.
fn model_garden_act(name: &str) -> Option<&'static str> {
    match name {
        "gelu" => Some("gelu_new"),
        "exact_gelu" => Some("gelu"),
        "relu" => Some("relu"),
        _ => None,
    }
}

fn from_params_yaml(path: &Path, text: &str) -> Result<TrainerConfig, TrainerConfigError> {
    let map = flatten_yaml(text).map_err(|(line, reason)| TrainerConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        reason,
    })?;
    let unsupported = |field: &str, value: &str, why: &str| TrainerConfigError::Unsupported {
        path: path.to_path_buf(),
        field: field.to_owned(),
        value: value.to_owned(),
        why: why.to_owned(),
    };
    let tower = |which: &str| -> Result<TowerSettings, TrainerConfigError> {
        let base = format!("task.model.{which}");
        let kind = map
            .get(&format!("{base}.type"))
            .cloned()
            .unwrap_or_else(|| "bert".to_owned());
        let get = |field: &str| map.get(&format!("{base}.{kind}.{field}"));
        let mut out = TowerSettings::default();
        if let Some(v) = get("norm_first") {
            if v == "true" {
                return Err(unsupported(
                    &format!("{base}.{kind}.norm_first"),
                    v,
                    "makes a pre-LayerNorm Transformer; transformers' ELECTRA is post-LayerNorm, so the model cannot be expressed",
                ));
            }
        }
        if let Some(v) = get("num_attention_heads") {
            out.num_attention_heads = v.parse().ok();
        }
        if let Some(v) = get("hidden_activation") {
            let act = model_garden_act(v).ok_or_else(|| {
                unsupported(
                    &format!("{base}.{kind}.hidden_activation"),
                    v,
                    "has no transformers `hidden_act` equivalent (gelu, exact_gelu and relu have)",
                )
            })?;
            out.hidden_act = Some(act.to_owned());
        }
        if let Some(v) = get("norm_epsilon").filter(|v| !is_null(v)) {
            out.layer_norm_eps = v.parse().ok();
        }
        Ok(out)
    };
    Ok(TrainerConfig {
        path: path.to_path_buf(),
        discriminator: tower("discriminator_encoder")?,
        generator: tower("generator_encoder")?,
        vocab_file: None,
    })
}

fn from_pretrain_config(path: &Path, text: &str) -> Result<TrainerConfig, TrainerConfigError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| TrainerConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.line(),
            reason: e.to_string(),
        })?;
    let obj = value
        .as_object()
        .ok_or_else(|| TrainerConfigError::Syntax {
            path: path.to_path_buf(),
            line: 1,
            reason: "the top level is not a JSON object".into(),
        })?;
    let act = match obj.get("act_func").and_then(|v| v.as_str()) {
        None => None,
        // NVIDIA's ACT2FN: gelu is x·Φ(x) with tf.math.erf.
        Some("gelu") => Some("gelu".to_owned()),
        Some("relu") => Some("relu".to_owned()),
        Some(other) => {
            return Err(TrainerConfigError::Unsupported {
                path: path.to_path_buf(),
                field: "act_func".into(),
                value: other.to_owned(),
                why: "has no transformers `hidden_act` equivalent (gelu and relu have)".into(),
            })
        }
    };
    let eps = obj.get("layer_norm_eps").and_then(|v| v.as_f64());
    let heads = obj.get("num_attention_heads").and_then(|v| v.as_u64());
    let vocab_file = obj
        .get("vocab_file")
        .and_then(|v| v.as_str())
        .map(|v| {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                p
            } else {
                path.parent().unwrap_or(Path::new(".")).join(p)
            }
        })
        .filter(|p| p.is_file());
    Ok(TrainerConfig {
        path: path.to_path_buf(),
        discriminator: TowerSettings {
            num_attention_heads: heads,
            hidden_act: act.clone(),
            layer_norm_eps: eps,
        },
        generator: TowerSettings {
            // NVIDIA's get_generator_config: one head per 64 hidden units of the generator,
            // which the shapes give (filled in when config.json is built).
            num_attention_heads: None,
            hidden_act: act,
            layer_norm_eps: eps,
        },
        vocab_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_blocks_flatten_and_lists_are_skipped() {
        let text = "runtime:\n  distribution_strategy: mirrored\ntask:\n  model:\n    cls_heads:\n    - activation: tanh\n      inner_dim: 16\n    - name: x\n    flow: [{activation: tanh, inner_dim: 768,\n        name: next_sentence}]\n    long: a plain scalar that\n      wraps\n    discriminator_encoder:\n      bert:\n        hidden_activation: gelu\n        norm_first: false\n        num_attention_heads: 2\n        embedding_size: null\n      type: bert\n    num_masked_tokens: 5\n  name: 'quoted'\n";
        let m = flatten_yaml(text).unwrap();
        assert_eq!(
            m["task.model.discriminator_encoder.bert.num_attention_heads"],
            "2"
        );
        assert_eq!(m["task.model.discriminator_encoder.type"], "bert");
        assert_eq!(m["task.model.num_masked_tokens"], "5");
        assert!(!m.contains_key("task.model.name"));
        assert_eq!(m["task.model.long"], "a plain scalar that");
        assert_eq!(m["task.name"], "quoted");
        assert_eq!(m["runtime.distribution_strategy"], "mirrored");
        assert!(!m
            .keys()
            .any(|k| k.contains("inner_dim") || k.contains("activation: tanh")));
        assert!(flatten_yaml("a:\n  b c\n").is_err());
    }
}
