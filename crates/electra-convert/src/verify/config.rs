//! The parts of a HuggingFace `config.json` that the forward pass needs.
//!
//! Missing fields take `ElectraConfig`'s defaults (transformers 4.x), exactly as
//! `from_pretrained` would fill them in; fields that would make the candle forward pass compute
//! something different from transformers (an unknown activation, relative position embeddings)
//! are rejected instead of being silently approximated.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::VerifyError;

/// Which HuggingFace model class a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `ElectraForPreTraining`: discriminator tower + replaced-token head, logits [B, S].
    PreTraining,
    /// `ElectraForMaskedLM`: generator tower + MLM head, logits [B, S, V].
    MaskedLm,
    /// `ElectraModel`: the bare tower, last_hidden_state [B, S, H].
    Model,
}

impl Architecture {
    /// The transformers class name.
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::PreTraining => "ElectraForPreTraining",
            Architecture::MaskedLm => "ElectraForMaskedLM",
            Architecture::Model => "ElectraModel",
        }
    }

    /// The `--model` spelling of the same kind.
    pub fn kind(self) -> &'static str {
        match self {
            Architecture::PreTraining => "discriminator",
            Architecture::MaskedLm => "generator",
            Architecture::Model => "encoder",
        }
    }

    fn from_class_name(name: &str) -> Option<Architecture> {
        match name {
            "ElectraForPreTraining" => Some(Architecture::PreTraining),
            "ElectraForMaskedLM" => Some(Architecture::MaskedLm),
            "ElectraModel" => Some(Architecture::Model),
            _ => None,
        }
    }

    /// Guess the class from the tensor names when `architectures` is absent.
    pub fn from_keys<'a>(mut keys: impl Iterator<Item = &'a str>) -> Option<Architecture> {
        let mut found = None;
        for key in keys.by_ref() {
            if key.starts_with("discriminator_predictions.") {
                return Some(Architecture::PreTraining);
            }
            if key.starts_with("generator_predictions.") || key.starts_with("generator_lm_head.") {
                return Some(Architecture::MaskedLm);
            }
            if key.starts_with("embeddings.") || key.starts_with("encoder.") {
                found = Some(Architecture::Model);
            }
        }
        found
    }
}

/// An activation function as transformers' `get_activation` computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `gelu`: the exact form 0.5·x·(1 + erf(x/√2)) (ELECTRA's own GELU).
    GeluErf,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Activation {
    /// Parse a `hidden_act` value; `None` for anything transformers would compute differently.
    pub(crate) fn parse(name: &str) -> Option<Activation> {
        match name {
            "gelu" => Some(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Activation::GeluErf => "gelu (erf)",
            Activation::GeluTanh => "gelu (tanh approximation)",
            Activation::Relu => "relu",
        }
    }
}

/// Model dimensions and numerics read from `config.json`.
#[derive(Debug, Clone)]
pub(crate) struct ModelConfig {
    pub path: PathBuf,
    /// From `architectures[0]`; `None` when the file has no `architectures` list.
    pub architecture: Option<Architecture>,
    pub vocab_size: usize,
    pub embedding_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    pub pad_token_id: Option<u64>,
}

impl ModelConfig {
    /// Read and validate `path` (a `config.json`).
    pub(crate) fn load(path: &Path) -> Result<ModelConfig, VerifyError> {
        let text = std::fs::read_to_string(path).map_err(|error| VerifyError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|err| VerifyError::Config {
            path: path.to_path_buf(),
            message: format!("not valid JSON: {err}"),
        })?;
        Self::from_json(path, &value)
    }

    pub(crate) fn from_json(path: &Path, value: &Value) -> Result<ModelConfig, VerifyError> {
        let bad = |message: String| VerifyError::Config {
            path: path.to_path_buf(),
            message,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| bad("the top level is not a JSON object".into()))?;

        if let Some(model_type) = obj.get("model_type") {
            if model_type.as_str() != Some("electra") {
                return Err(bad(format!(
                    "model_type is {model_type}, not \"electra\"; verify only runs ELECTRA models"
                )));
            }
        }
        if let Some(kind) = obj.get("position_embedding_type") {
            if kind.as_str() != Some("absolute") {
                return Err(bad(format!(
                    "position_embedding_type {kind} is not supported (only \"absolute\", ELECTRA's own)"
                )));
            }
        }

        let architecture = match obj.get("architectures") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) if list.is_empty() => None,
            Some(Value::Array(list)) => {
                let first = list[0]
                    .as_str()
                    .ok_or_else(|| bad("architectures[0] is not a string".into()))?;
                Some(Architecture::from_class_name(first).ok_or_else(|| {
                    bad(format!(
                        "architecture {first:?} is not supported; verify runs ElectraForPreTraining, \
                         ElectraForMaskedLM and ElectraModel"
                    ))
                })?)
            }
            Some(other) => return Err(bad(format!("architectures is {other}, not a list"))),
        };

        let size = |key: &str, default: Option<usize>| -> Result<usize, VerifyError> {
            match obj.get(key) {
                None | Some(Value::Null) => default.ok_or_else(|| bad(format!("{key} is missing"))),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(format!("{key} is {v}, not a positive integer"))),
            }
        };
        // ElectraConfig's defaults, as transformers would fill them in.
        let vocab_size = size("vocab_size", Some(30522))?;
        let embedding_size = size("embedding_size", Some(128))?;
        let hidden_size = size("hidden_size", Some(256))?;
        let num_hidden_layers = size("num_hidden_layers", Some(12))?;
        let num_attention_heads = size("num_attention_heads", Some(4))?;
        let intermediate_size = size("intermediate_size", Some(1024))?;
        let max_position_embeddings = size("max_position_embeddings", Some(512))?;
        let type_vocab_size = size("type_vocab_size", Some(2))?;
        if hidden_size % num_attention_heads != 0 {
            return Err(bad(format!(
                "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )));
        }

        let hidden_act = match obj.get("hidden_act") {
            None | Some(Value::Null) => Activation::GeluErf,
            Some(Value::String(name)) => Activation::parse(name).ok_or_else(|| {
                bad(format!(
                    "hidden_act {name:?} is not supported; use \"gelu\" (exact erf, ELECTRA's), \
                     \"gelu_new\" / \"gelu_pytorch_tanh\" (tanh approximation) or \"relu\""
                ))
            })?,
            Some(other) => return Err(bad(format!("hidden_act is {other}, not a string"))),
        };
        let layer_norm_eps = match obj.get("layer_norm_eps") {
            None | Some(Value::Null) => 1e-12,
            Some(v) => v
                .as_f64()
                .filter(|e| e.is_finite() && *e >= 0.0)
                .ok_or_else(|| bad(format!("layer_norm_eps is {v}, not a non-negative number")))?,
        };
        let pad_token_id = obj.get("pad_token_id").and_then(Value::as_u64);

        Ok(ModelConfig {
            path: path.to_path_buf(),
            architecture,
            vocab_size,
            embedding_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings,
            type_vocab_size,
            hidden_act,
            layer_norm_eps,
            pad_token_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ModelConfig, VerifyError> {
        ModelConfig::from_json(Path::new("config.json"), &value)
    }

    #[test]
    fn defaults_follow_electra_config() {
        let c = parse(json!({"architectures": ["ElectraModel"]})).unwrap();
        assert_eq!(c.architecture, Some(Architecture::Model));
        assert_eq!((c.embedding_size, c.hidden_size), (128, 256));
        assert_eq!(c.hidden_act, Activation::GeluErf);
        assert_eq!(c.layer_norm_eps, 1e-12);
    }

    #[test]
    fn activations() {
        for (name, act) in [
            ("gelu", Activation::GeluErf),
            ("gelu_new", Activation::GeluTanh),
            ("gelu_pytorch_tanh", Activation::GeluTanh),
            ("relu", Activation::Relu),
        ] {
            assert_eq!(parse(json!({"hidden_act": name})).unwrap().hidden_act, act);
        }
        let err = parse(json!({"hidden_act": "swish"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("swish"), "{err}");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(json!({"architectures": ["BertModel"]})).is_err());
        assert!(parse(json!({"hidden_size": 0})).is_err());
        assert!(parse(json!({"hidden_size": 10, "num_attention_heads": 3})).is_err());
        assert!(parse(json!({"layer_norm_eps": "x"})).is_err());
        assert!(parse(json!({"position_embedding_type": "relative_key"})).is_err());
        assert!(parse(json!([1])).is_err());
    }

    #[test]
    fn architecture_from_keys() {
        let arch = |keys: &[&str]| Architecture::from_keys(keys.iter().copied());
        assert_eq!(
            arch(&["electra.x", "discriminator_predictions.dense.weight"]),
            Some(Architecture::PreTraining)
        );
        assert_eq!(
            arch(&["generator_lm_head.bias"]),
            Some(Architecture::MaskedLm)
        );
        assert_eq!(
            arch(&["embeddings.word_embeddings.weight"]),
            Some(Architecture::Model)
        );
        assert_eq!(arch(&["foo"]), None);
    }
}
