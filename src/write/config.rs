//! config.json: inferred from the checkpoint's shapes, or a user's file checked against them.
//!
//! The inferred file has exactly the fields transformers 4.57.6 writes for an `ElectraConfig`
//! built from those sizes (all defaults included), with keys sorted and 2-space indentation as
//! `save_pretrained` writes them. `transformers_version` says "4.57.6": the file is what that
//! version writes, and it is the version the tensors were checked against.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::mapping::{Dim, Plan};
use crate::options::OutputDtype;

use super::WriteError;

/// The transformers version whose `save_pretrained` output these files reproduce.
pub const TRANSFORMERS_VERSION: &str = "4.57.6";

/// ELECTRA's rule: one head per 64 hidden units, at least one.
pub fn default_heads(hidden_size: u64) -> u64 {
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

/// The config.json transformers would write for this plan.
pub fn infer(plan: &Plan, num_heads: Option<u32>, dtype: OutputDtype) -> Result<Value, WriteError> {
    let d = &plan.dims;
    let heads = match num_heads {
        Some(n) => {
            check_heads(u64::from(n), d.hidden_size, "--num-heads")?;
            u64::from(n)
        }
        None => {
            let h = default_heads(d.hidden_size);
            check_heads(h, d.hidden_size, "the default max(1, hidden_size / 64)")?;
            h
        }
    };
    let fields: BTreeMap<&str, Value> = BTreeMap::from([
        ("architectures", json!([plan.class])),
        ("attention_probs_dropout_prob", json!(0.1)),
        ("classifier_dropout", Value::Null),
        ("dtype", json!(torch_dtype(dtype))),
        ("embedding_size", json!(d.embedding_size)),
        ("hidden_act", json!("gelu")),
        ("hidden_dropout_prob", json!(0.1)),
        ("hidden_size", json!(d.hidden_size)),
        ("initializer_range", json!(0.02)),
        ("intermediate_size", json!(d.intermediate_size)),
        ("layer_norm_eps", json!(1e-12)),
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

/// Read a user's config.json, check it against the plan's shapes (a missing field counts as
/// ElectraConfig's default, as transformers would read it), and return it with `architectures`
/// set to the exported class.
pub fn from_user_file(
    path: &Path,
    plan: &Plan,
    num_heads: Option<u32>,
) -> Result<(Value, Vec<String>), WriteError> {
    let invalid = |reason: String| WriteError::ConfigInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(invalid("the top level is not a JSON object".into()));
    };
    if let Some(mt) = obj.get("model_type") {
        if mt != "electra" {
            return Err(invalid(format!("model_type is {mt}, not \"electra\"")));
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
    obj.insert("num_attention_heads".into(), json!(heads));

    let mut notes = Vec::new();
    let arch = json!([plan.class]);
    match obj.get("architectures") {
        Some(a) if *a == arch => {}
        Some(a) => {
            notes.push(format!(
                "{}: architectures {a} replaced by [\"{}\"] for the exported {} model",
                path.display(),
                plan.class,
                plan.kind.as_str()
            ));
            obj.insert("architectures".into(), arch);
        }
        None => {
            obj.insert("architectures".into(), arch);
        }
    }
    Ok((Value::Object(obj), notes))
}

/// Serialise like Python's `json.dumps(indent=2)` plus the trailing newline transformers adds.
pub fn to_json_text(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("config JSON");
    s.push('\n');
    s
}
