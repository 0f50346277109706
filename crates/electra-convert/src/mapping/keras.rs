//! transformers' TF classes (`TFElectraForPreTraining`, `TFElectraForMaskedLM`) as saved in
//! `tf_model.h5`: Keras weight names without the model-name component and `:0`
//! (`electra/encoder/layer_._0/attention/self/query/kernel`).
//!
//! The Keras names differ from google-research/electra's TF1 names only in the spelling of a few
//! scopes, so this table is the list of those spellings ([`RENAMES`]): each name is respelled in
//! TF1 terms, the TF1 table ([`super::table`]) is applied, and every name in the plan is put back
//! to the Keras name. The transforms are the TF1 table's: dense kernels `[in, out]` are
//! transposed, everything else copied. The generator's tower is `electra/` in these files (there
//! is one model per file), and `generator_lm_head/bias` is the masked-LM output bias; its matrix
//! is not stored (tied to the word table, as in transformers).

use std::collections::HashMap;

use super::{expand, plan, MappingError, ModelKind, Plan, SkipCategory, SourceVar};

/// Where the generator file's second copy of the embedding layer is listed.
const LM_HEAD_COPY: &str = "generator_lm_head/electra/embeddings/";
use crate::options::SourceLayout;

/// Keras scope → TF1 scope, applied in order to the start of a name (`{tower}` is `electra`,
/// or `generator` when planning the generator).
pub const RENAMES: &[(&str, &str)] = &[
    (
        "electra/embeddings/word_embeddings/weight",
        "electra/embeddings/word_embeddings",
    ),
    (
        "electra/embeddings/position_embeddings/embeddings",
        "electra/embeddings/position_embeddings",
    ),
    (
        "electra/embeddings/token_type_embeddings/embeddings",
        "electra/embeddings/token_type_embeddings",
    ),
    ("electra/embeddings/", "electra/embeddings/"),
    ("electra/embeddings_project/", "{tower}/embeddings_project/"),
    ("electra/encoder/layer_._", "{tower}/encoder/layer_"),
    (
        "discriminator_predictions/dense_prediction/",
        "discriminator_predictions/dense_1/",
    ),
    ("discriminator_predictions/", "discriminator_predictions/"),
    ("generator_predictions/", "generator_predictions/"),
    (
        "generator_lm_head/bias",
        "generator_predictions/output_bias",
    ),
];

/// Whether a checkpoint's names are transformers' Keras names.
pub fn detect(vars: &[SourceVar]) -> bool {
    vars.iter().any(|v| {
        v.name.starts_with("electra/encoder/layer_._")
            || v.name == "electra/embeddings/word_embeddings/weight"
    })
}

/// The TF1 spelling of a Keras name when planning `kind` (unknown names are kept as they are,
/// and the TF1 planner skips them with its reason).
pub fn to_tf1(name: &str, kind: ModelKind) -> String {
    let tower = if kind == ModelKind::Generator {
        "generator"
    } else {
        "electra"
    };
    for (keras, tf1) in RENAMES {
        if let Some(rest) = name.strip_prefix(keras) {
            return format!("{}{rest}", tf1.replace("{tower}", tower));
        }
    }
    name.to_owned()
}

/// The `--model` values the file supports.
pub fn available_kinds(vars: &[SourceVar]) -> Vec<ModelKind> {
    let mut kinds: Vec<ModelKind> = [
        ModelKind::Discriminator,
        ModelKind::Generator,
        ModelKind::Encoder,
    ]
    .into_iter()
    .filter(|&k| plan_one(k, vars).is_ok())
    .collect();
    if kinds.contains(&ModelKind::Discriminator) && kinds.contains(&ModelKind::Generator) {
        kinds.push(ModelKind::Both);
    }
    kinds
}

/// Plans for every model a `--model` choice writes.
pub fn plan_all(kind: ModelKind, vars: &[SourceVar]) -> Result<Vec<Plan>, MappingError> {
    expand(kind)
        .into_iter()
        .map(|k| plan_one(k, vars))
        .collect()
}

/// Apply the TF1 table through [`RENAMES`] and give the plan the Keras names back.
pub fn plan_one(kind: ModelKind, vars: &[SourceVar]) -> Result<Plan, MappingError> {
    let mut back: HashMap<String, String> = HashMap::with_capacity(vars.len());
    let renamed: Vec<SourceVar> = vars
        .iter()
        .map(|v| {
            let name = to_tf1(&v.name, kind);
            back.insert(name.clone(), v.name.clone());
            SourceVar {
                name,
                shape: v.shape.clone(),
                dtype: v.dtype.clone(),
            }
        })
        .collect();
    let mut p = plan(kind, &renamed)?;
    let restore = |n: &mut String| {
        if let Some(orig) = back.get(n.as_str()) {
            *n = orig.clone();
        }
    };
    p.source_layout = SourceLayout::HfKeras;
    for e in &mut p.entries {
        restore(&mut e.tf);
    }
    for s in &mut p.skipped {
        restore(&mut s.tf);
        if let Some(rest) = s.tf.strip_prefix(LM_HEAD_COPY) {
            s.category = SkipCategory::OtherModel;
            s.reason = format!(
                "the generator file's second copy of the shared embedding weight `electra/embeddings/{rest}` (Keras lists the embedding layer again under generator_lm_head); byte-equal to it, checked when the file was opened"
            );
        }
    }
    for source in p.dims.sources.values_mut() {
        restore(source);
    }
    p.layout.tower = "electra".to_owned();
    p.layout.embeddings_scope = "electra".to_owned();
    Ok(p)
}

/// docs/mapping.md's section for this layout.
pub fn markdown() -> String {
    let mut out = String::from(
        "### transformers TF `tf_model.h5` (`--layout hf-keras`)\n\n\
         transformers' `TFElectraForPreTraining` / `TFElectraForMaskedLM` save Keras weights named \
         after the PyTorch modules. Names are read without the model-name component \
         (`tf_electra_for_pre_training/`) and without `:0`; each is respelled in TF1 terms below and \
         the TF1 tables above apply (`{tower}` = `generator` when the generator is planned: one \
         model per file, its tower is `electra/`). The generator file stores the five embedding \
         weights a second time under `generator_lm_head/`; the copies must be byte-equal and the \
         second is not read. `generator_lm_head.weight` is not stored: it is tied to the word table.\n\n\
         | Keras name starts with | TF1 name starts with |\n|---|---|\n",
    );
    for (keras, tf1) in RENAMES {
        if keras != tf1 {
            out.push_str(&format!("| `{keras}` | `{tf1}` |\n"));
        }
    }
    out.push('\n');
    out
}
