//! config.json: inferred from the checkpoint's shapes, or a user's file checked against them and
//! completed to the file transformers writes.
//!
//! The inferred file has exactly the fields transformers 4.57.6 writes for an `ElectraConfig`
//! built from those sizes (all defaults included), with keys sorted and 2-space indentation as
//! `save_pretrained` writes them. `transformers_version` says "4.57.6": the file is what that
//! version writes, and it is the version the tensors were checked against.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::mapping::trainer::TowerSettings;
use crate::mapping::{Dim, Plan};
use crate::options::OutputDtype;

use super::WriteError;

/// The transformers version whose `save_pretrained` output these files reproduce.
pub(crate) const TRANSFORMERS_VERSION: &str = "4.57.6";

/// ELECTRA's rule: one head per 64 hidden units, at least one.
pub(crate) fn default_heads(hidden_size: u64) -> u64 {
    (hidden_size / 64).max(1)
}

fn torch_dtype(dtype: OutputDtype) -> &'static str {
    match dtype {
        OutputDtype::F32 => "float32",
        OutputDtype::F16 => "float16",
        OutputDtype::Bf16 => "bfloat16",
    }
}

fn check_heads(heads: u64, hidden: u64, origin: &str) -> Result<(), WriteError> {
    if heads == 0 || hidden % heads != 0 {
        return Err(WriteError::Heads {
            heads,
            hidden,
            origin: origin.to_owned(),
        });
    }
    Ok(())
}

/// The config.json transformers would write for this plan (layout defaults for what the
/// shapes cannot tell).
pub fn infer(plan: &Plan, num_heads: Option<u32>, dtype: OutputDtype) -> Result<Value, WriteError> {
    infer_with(plan, num_heads, dtype, None)
}

/// [`infer`], with the trainer's own settings for the exported tower (`params.yaml` /
/// `pretrain_config.json`) where they exist. Head count: `--num-heads`, else the 3-D attention
/// kernels' (Model Garden), else the trainer config's, else ELECTRA's max(1, H / 64).
/// Activation and LayerNorm epsilon: the trainer config's, else the layout's default.
pub(crate) fn infer_with(
    plan: &Plan,
    num_heads: Option<u32>,
    dtype: OutputDtype,
    trainer: Option<&TowerSettings>,
) -> Result<Value, WriteError> {
    let d = &plan.dims;
    let heads = match (num_heads, d.num_attention_heads) {
        (Some(n), Some(shaped)) if u64::from(n) != shaped => {
            return Err(WriteError::Heads {
                heads: u64::from(n),
                hidden: d.hidden_size,
                origin: format!(
                    "--num-heads, but the checkpoint's attention kernels have {shaped} heads (`{}`); drop --num-heads",
                    d.source(Dim::N).unwrap_or("?")
                ),
            })
        }
        (Some(n), _) => {
            check_heads(u64::from(n), d.hidden_size, "--num-heads")?;
            u64::from(n)
        }
        (None, Some(shaped)) => {
            check_heads(shaped, d.hidden_size, "the attention kernels' shape")?;
            shaped
        }
        (None, None) => match trainer.and_then(|t| t.num_attention_heads) {
            Some(h) => {
                check_heads(h, d.hidden_size, "the trainer config's num_attention_heads")?;
                h
            }
            None => {
                let h = default_heads(d.hidden_size);
                check_heads(h, d.hidden_size, "the default max(1, hidden_size / 64)")?;
                h
            }
        },
    };
    let hidden_act = trainer
        .and_then(|t| t.hidden_act.clone())
        .unwrap_or_else(|| plan.source_layout.default_hidden_act().to_owned());
    let eps = trainer.and_then(|t| t.layer_norm_eps).unwrap_or(1e-12);
    let fields: BTreeMap<&str, Value> = BTreeMap::from([
        ("architectures", json!([plan.class])),
        ("attention_probs_dropout_prob", json!(0.1)),
        ("classifier_dropout", Value::Null),
        ("dtype", json!(torch_dtype(dtype))),
        ("embedding_size", json!(d.embedding_size)),
        ("hidden_act", json!(hidden_act)),
        ("hidden_dropout_prob", json!(0.1)),
        ("hidden_size", json!(d.hidden_size)),
        ("initializer_range", json!(0.02)),
        ("intermediate_size", json!(d.intermediate_size)),
        ("layer_norm_eps", json!(eps)),
        ("max_position_embeddings", json!(d.max_position_embeddings)),
        ("model_type", json!("electra")),
        ("num_attention_heads", json!(heads)),
        ("num_hidden_layers", json!(d.num_hidden_layers)),
        ("pad_token_id", json!(0)),
        ("position_embedding_type", json!("absolute")),
        ("summary_activation", json!("gelu")),
        ("summary_last_dropout", json!(0.1)),
        ("summary_type", json!("first")),
        ("summary_use_proj", json!(true)),
        ("transformers_version", json!(TRANSFORMERS_VERSION)),
        ("type_vocab_size", json!(d.type_vocab_size)),
        ("use_cache", json!(true)),
        ("vocab_size", json!(d.vocab_size)),
    ]);
    Ok(Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<String, Value>>(),
    ))
}

/// ElectraConfig's defaults for the fields that must agree with the shapes.
fn electra_default(field: &str) -> u64 {
    match field {
        "vocab_size" => 30522,
        "embedding_size" => 128,
        "hidden_size" => 256,
        "num_hidden_layers" => 12,
        "num_attention_heads" => 4,
        "intermediate_size" => 1024,
        "max_position_embeddings" => 512,
        "type_vocab_size" => 2,
        _ => 0,
    }
}

/// `PretrainedConfig().to_dict()` of transformers 4.57.6 for the keys `save_pretrained` leaves out
/// when a config holds them at this value (its `to_diff_dict`), unless ElectraConfig's own default
/// differs (only `pad_token_id`, which ELECTRA's config always writes). Values as JSON text.
const BASE_DEFAULTS: &[(&str, &str)] = &[
    ("add_cross_attention", "false"),
    ("bad_words_ids", "null"),
    ("begin_suppress_tokens", "null"),
    ("bos_token_id", "null"),
    ("chunk_size_feed_forward", "0"),
    ("cross_attention_hidden_size", "null"),
    ("decoder_start_token_id", "null"),
    ("diversity_penalty", "0.0"),
    ("do_sample", "false"),
    ("early_stopping", "false"),
    ("encoder_no_repeat_ngram_size", "0"),
    ("eos_token_id", "null"),
    ("exponential_decay_length_penalty", "null"),
    ("finetuning_task", "null"),
    ("forced_bos_token_id", "null"),
    ("forced_eos_token_id", "null"),
    ("id2label", r#"{"0": "LABEL_0", "1": "LABEL_1"}"#),
    ("is_decoder", "false"),
    ("is_encoder_decoder", "false"),
    ("label2id", r#"{"LABEL_0": 0, "LABEL_1": 1}"#),
    ("length_penalty", "1.0"),
    ("max_length", "20"),
    ("min_length", "0"),
    ("no_repeat_ngram_size", "0"),
    ("num_beam_groups", "1"),
    ("num_beams", "1"),
    ("num_return_sequences", "1"),
    ("output_attentions", "false"),
    ("output_hidden_states", "false"),
    ("output_scores", "false"),
    ("prefix", "null"),
    ("problem_type", "null"),
    ("pruned_heads", "{}"),
    ("remove_invalid_values", "false"),
    ("repetition_penalty", "1.0"),
    ("return_dict", "true"),
    ("return_dict_in_generate", "false"),
    ("sep_token_id", "null"),
    ("suppress_tokens", "null"),
    ("task_specific_params", "null"),
    ("temperature", "1.0"),
    ("tf_legacy_loss", "false"),
    ("tie_encoder_decoder", "false"),
    ("tie_word_embeddings", "true"),
    ("tokenizer_class", "null"),
    ("top_k", "50"),
    ("top_p", "1.0"),
    ("torchscript", "false"),
    ("typical_p", "1.0"),
    ("use_bfloat16", "false"),
];

/// Keys of a user's file that the tool sets itself (the class it exports, the weights' dtype,
/// the version whose output the file reproduces) or that `save_pretrained` never writes.
const OWN_KEYS: &[&str] = &[
    "architectures",
    "model_type",
    "transformers_version",
    "dtype",
    "torch_dtype",
    "_name_or_path",
    "_commit_hash",
    "_auto_class",
    "_attn_implementation_internal",
];

/// True when `save_pretrained` would leave this user field out (it equals PretrainedConfig's
/// default). Numbers compare by value, as Python's `==` does (`0 == 0.0`).
fn is_base_default(key: &str, value: &Value) -> bool {
    let Some((_, text)) = BASE_DEFAULTS.iter().find(|(k, _)| *k == key) else {
        return false;
    };
    let default: Value = serde_json::from_str(text).expect("default JSON");
    same_value(value, &default)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// Read a user's config.json, check it against the plan's shapes (a missing field counts as
/// ElectraConfig's default, as transformers would read it), and return the complete config.json
/// transformers 4.57.6's `save_pretrained` writes for it: every field of [`infer`] (so
/// `model_type` is always `"electra"`), the user's values in place of the defaults, the user's
/// other fields kept unless they equal PretrainedConfig's defaults, keys sorted. `architectures`
/// is the exported class and `dtype` follows `--dtype`; notes say what was replaced.
pub(crate) fn from_user_file(
    path: &Path,
    plan: &Plan,
    num_heads: Option<u32>,
    dtype: OutputDtype,
) -> Result<(Value, Vec<String>), WriteError> {
    let invalid = |reason: String| WriteError::ConfigInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(invalid("the top level is not a JSON object".into()));
    };
    match obj.get("model_type") {
        None => {}
        Some(Value::String(mt)) if mt == "electra" => {}
        Some(mt) => {
            return Err(WriteError::ConfigModelType {
                path: path.to_path_buf(),
                model_type: mt.to_string(),
            })
        }
    }
    let field_u64 = |field: &str| -> Result<u64, WriteError> {
        match obj.get(field) {
            None => Ok(electra_default(field)),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| invalid(format!("{field} is {v}, not a non-negative integer"))),
        }
    };
    let d = &plan.dims;
    let mut checks: Vec<(&str, u64, String)> = [Dim::V, Dim::E, Dim::H, Dim::I, Dim::P, Dim::T]
        .into_iter()
        .map(|dim| {
            (
                dim.config_field().expect("named dim"),
                d.get(dim),
                format!(
                    "from the shape of `{}`",
                    d.source(dim).unwrap_or("the checkpoint")
                ),
            )
        })
        .collect();
    checks.push((
        "num_hidden_layers",
        d.num_hidden_layers,
        format!("layers found under `{}/encoder/`", plan.layout.tower),
    ));
    for (field, actual, why) in checks {
        let configured = field_u64(field)?;
        if configured != actual {
            return Err(WriteError::ConfigMismatch {
                path: path.to_path_buf(),
                field: field.to_owned(),
                configured,
                defaulted: !obj.contains_key(field),
                actual,
                why,
                model: plan.kind.as_str(),
            });
        }
    }
    let configured_heads = field_u64("num_attention_heads")?;
    if let Some(shaped) = d.num_attention_heads {
        if configured_heads != shaped {
            return Err(WriteError::ConfigMismatch {
                path: path.to_path_buf(),
                field: "num_attention_heads".to_owned(),
                configured: configured_heads,
                defaulted: !obj.contains_key("num_attention_heads"),
                actual: shaped,
                why: format!(
                    "from the shape of `{}`",
                    d.source(Dim::N).unwrap_or("the attention kernels")
                ),
                model: plan.kind.as_str(),
            });
        }
    }
    let heads = match num_heads {
        Some(n) if obj.contains_key("num_attention_heads") && u64::from(n) != configured_heads => {
            return Err(invalid(format!(
                "num_attention_heads is {configured_heads} but --num-heads says {n}; drop one of them"
            )));
        }
        Some(n) => u64::from(n),
        None => configured_heads,
    };
    check_heads(heads, d.hidden_size, "num_attention_heads")?;

    let mut notes = Vec::new();
    let arch = json!([plan.class]);
    if let Some(a) = obj.get("architectures") {
        if *a != arch && !a.is_null() {
            notes.push(format!(
                "{}: architectures {a} replaced by [\"{}\"] for the exported {} model",
                path.display(),
                plan.class,
                plan.kind.as_str()
            ));
        }
    }
    let written_dtype = torch_dtype(dtype);
    for key in ["dtype", "torch_dtype"] {
        match obj.get(key) {
            Some(Value::String(s)) if s == written_dtype => {}
            None | Some(Value::Null) => {}
            Some(v) => notes.push(format!(
                "{}: {key} {v} replaced by \"{written_dtype}\", the type of the written weights (--dtype {})",
                path.display(),
                dtype.as_str()
            )),
        }
    }

    // Start from the complete inferred file, then put the user's values in.
    let heads_u32 = u32::try_from(heads)
        .map_err(|_| invalid(format!("num_attention_heads {heads} is out of range")))?;
    let Value::Object(base) = infer(plan, Some(heads_u32), dtype)? else {
        unreachable!("infer returns an object")
    };
    let mut fields: BTreeMap<String, Value> = base.into_iter().collect();
    for (key, value) in obj {
        if OWN_KEYS.contains(&key.as_str()) || is_base_default(&key, &value) {
            continue;
        }
        fields.insert(key, value);
    }
    fields.insert("num_attention_heads".into(), json!(heads));
    Ok((Value::Object(fields.into_iter().collect()), notes))
}

/// Serialise like Python's `json.dumps(indent=2)` plus the trailing newline transformers adds.
pub(crate) fn to_json_text(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("config JSON");
    s.push('\n');
    s
}
