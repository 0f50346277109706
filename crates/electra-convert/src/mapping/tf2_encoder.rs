//! Model Garden encoders standing alone, converted with the Model Garden encoder table
//! (`--model encoder`, ElectraModel):
//!
//! - **encoder checkpoints**: `tf.train.Checkpoint(encoder=BertEncoder)` — root objects
//!   `encoder` and `save_counter`, the `encoder/` subtree exactly as in an `ElectraPretrainer`
//!   checkpoint (what `export_tfhub` reads and fine-tuning configs' `init_checkpoint` names);
//! - **SavedModels** (`export_tfhub --export_type=model`): the Keras model's first weighted layer
//!   `layer_with_weights-0` is the `BertEncoder`, its subtree the same as `encoder/`; keys are
//!   positional (`variables/K/...`) and resolve through the object graph like any other.
//!
//! Both are recognised by the encoder's own attribute names (`_transformer_layers`,
//! `_embedding_layer`), so a SavedModel or checkpoint of another model is refused by name.

use super::table_tf2::{LayoutTable, SourceLayout};
use super::{MappingError, ModelKind};
use tf_checkpoint::ObjectGraph;

/// The object path of a SavedModel's encoder.
pub const SAVED_MODEL_TOWER: &str = "layer_with_weights-0";

/// Which standalone encoder a graph holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standalone {
    /// `tf.train.Checkpoint(encoder=…)`: root objects `encoder`, `save_counter`.
    EncoderCheckpoint,
    /// A Keras SavedModel whose `layer_with_weights-0` is a `BertEncoder`.
    SavedModel,
}

impl Standalone {
    /// What `inspect` and messages call it.
    pub fn title(self) -> &'static str {
        match self {
            Standalone::EncoderCheckpoint => "Model Garden TF2 BertEncoder (encoder checkpoint)",
            Standalone::SavedModel => "Model Garden TF2 BertEncoder (export_tfhub SavedModel)",
        }
    }

    /// The object path of the encoder.
    pub fn tower(self) -> &'static str {
        match self {
            Standalone::EncoderCheckpoint => "encoder",
            Standalone::SavedModel => SAVED_MODEL_TOWER,
        }
    }
}

fn is_bert_encoder(g: &ObjectGraph, path: &str) -> bool {
    g.walk(&format!("{path}/_transformer_layers")).is_some()
        && g.walk(&format!("{path}/_embedding_layer")).is_some()
}

fn names(v: &[String]) -> String {
    if v.is_empty() {
        return "none".to_owned();
    }
    v.iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The standalone encoder a graph holds, if it is one (no `model` root object).
pub fn standalone(g: &ObjectGraph) -> Option<Standalone> {
    let roots = g.root_edges();
    let root = |name: &str| roots.iter().any(|r| r == name);
    if root("model") {
        return None;
    }
    if root("encoder") && is_bert_encoder(g, "encoder") {
        return Some(Standalone::EncoderCheckpoint);
    }
    if root(SAVED_MODEL_TOWER) && is_bert_encoder(g, SAVED_MODEL_TOWER) {
        return Some(Standalone::SavedModel);
    }
    None
}

/// What `inspect` and `map` call a detected layout: the standalone encoder's own title where
/// the graph is one, else the layout's.
pub fn layout_title(layout: SourceLayout, g: Option<&ObjectGraph>) -> &'static str {
    match g.and_then(standalone) {
        Some(s) if layout == SourceLayout::ModelGarden => s.title(),
        _ => layout.title(),
    }
}

/// What a plan's source is called on the model card: a standalone encoder's title when the
/// plan is one (the SavedModel's tower; an `encoder` tower with nothing under `model/`), else
/// the layout's.
pub fn plan_title(plan: &super::Plan) -> &'static str {
    if plan.source_layout == SourceLayout::ModelGarden && plan.kind == ModelKind::Encoder {
        if plan.layout.tower == SAVED_MODEL_TOWER {
            return Standalone::SavedModel.title();
        }
        if !plan.skipped.iter().any(|s| s.tf.starts_with("model/")) {
            return Standalone::EncoderCheckpoint.title();
        }
    }
    plan.source_layout.title()
}

/// Detection for graphs without a `model` root: a standalone Model Garden encoder, a refusal
/// naming what else it is, or `None` (not recognised at all).
pub fn detect(g: &ObjectGraph) -> Result<Option<SourceLayout>, MappingError> {
    if standalone(g).is_some() {
        return Ok(Some(SourceLayout::ModelGarden));
    }
    let roots = g.root_edges();
    let root = |name: &str| roots.iter().any(|r| r == name);
    if root("model") {
        return Ok(None);
    }
    if root("encoder") {
        return Err(MappingError::Refused {
            what: format!(
                "a `tf.train.Checkpoint(encoder=…)` whose `encoder` is not a Model Garden BertEncoder (no `_transformer_layers` and `_embedding_layer`; its children: {})",
                names(&g.children_at("encoder"))
            ),
            advice: "electra-convert reads Model Garden BERT-style encoders (ELECTRA's discriminator); other encoder types have no transformers ELECTRA equivalent".into(),
        });
    }
    if root(SAVED_MODEL_TOWER) {
        return Err(MappingError::Refused {
            what: format!(
                "a Keras SavedModel whose first weighted layer (`{SAVED_MODEL_TOWER}`) is not a Model Garden BertEncoder (no `_transformer_layers` and `_embedding_layer`; its children: {})",
                names(&g.children_at(SAVED_MODEL_TOWER))
            ),
            advice: "electra-convert reads SavedModels of ELECTRA/BERT encoders as Model Garden's export_tfhub writes them".into(),
        });
    }
    Ok(None)
}

/// The tower path of the Model Garden encoder table in a SavedModel's graph.
pub fn tower(g: &ObjectGraph, lt: &LayoutTable) -> Option<&'static str> {
    (lt.layout == SourceLayout::ModelGarden
        && lt.table.tower == "encoder"
        && standalone(g) == Some(Standalone::SavedModel))
    .then_some(SAVED_MODEL_TOWER)
}

/// The refusal of a discriminator/generator/both request on a standalone encoder.
pub fn encoder_only(
    g: &ObjectGraph,
    kind: ModelKind,
    available: &[ModelKind],
) -> Option<MappingError> {
    let found = standalone(g)?;
    (kind != ModelKind::Encoder && available == [ModelKind::Encoder]).then(|| {
        MappingError::EncoderOnly {
            kind: kind.as_str(),
            what: format!("this {}", found.title()),
        }
    })
}

/// Reasons for the variables only standalone encoders have.
pub fn skip_reason(key: &str) -> Option<&'static str> {
    (key == "do_lower_case/.ATTRIBUTES/VARIABLE_VALUE").then_some(
        "the SavedModel's tokenizer flag `do_lower_case` (export_tfhub's bool variable): read for tokenizer_config.json, not a weight",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{plan_checkpoint, SkipCategory, SourceVar};
    use std::path::Path;
    use tf_checkpoint::Checkpoint;

    fn open(dir: &str) -> (Vec<SourceVar>, ObjectGraph) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/forms");
        let path = match dir {
            "mg_savedmodel" => root.join(dir).join("variables/variables"),
            _ => root.join(dir),
        };
        let ckpt = Checkpoint::open(&path).unwrap();
        let vars = ckpt
            .tensors()
            .iter()
            .map(|t| SourceVar::new(t.name.clone(), &t.shape, t.dtype.tf_name()))
            .collect();
        let g = ckpt.object_graph().unwrap().unwrap();
        (vars, g)
    }

    #[test]
    fn encoder_checkpoint_plans_an_electra_model_and_accounts_for_the_rest() {
        for (dir, layers, proj) in [("mg_encoder", 2, true), ("mg_encoder_noproj", 1, false)] {
            let (vars, g) = open(dir);
            assert_eq!(standalone(&g), Some(Standalone::EncoderCheckpoint));
            let plans = plan_checkpoint(ModelKind::Encoder, &vars, Some(&g), None).unwrap();
            let p = &plans[0];
            assert_eq!(p.class, "ElectraModel");
            assert_eq!(p.layout.layers, layers);
            assert_eq!(p.layout.embeddings_project, proj);
            assert_eq!(p.dims.num_attention_heads, Some(2));
            assert_eq!(p.entries.len() + p.skipped.len(), vars.len());
            let skipped: Vec<&str> = p.skipped.iter().map(|s| s.tf.as_str()).collect();
            assert_eq!(skipped.len(), 4, "{skipped:?}");
            assert!(p
                .skipped
                .iter()
                .all(|s| s.category != SkipCategory::Unrecognised));
        }
    }

    #[test]
    fn saved_model_resolves_positional_keys_through_layer_with_weights_0() {
        let (vars, g) = open("mg_savedmodel");
        assert_eq!(standalone(&g), Some(Standalone::SavedModel));
        let plans = plan_checkpoint(ModelKind::Encoder, &vars, Some(&g), None).unwrap();
        let p = &plans[0];
        assert_eq!(p.layout.tower, SAVED_MODEL_TOWER);
        assert_eq!(p.entries.len(), 39);
        assert!(p.entries.iter().all(|e| e.tf.starts_with("variables/")));
        let lower = p
            .skipped
            .iter()
            .find(|s| s.tf.starts_with("do_lower_case/"))
            .unwrap();
        assert_eq!(lower.category, SkipCategory::Metadata);
        assert!(p
            .skipped
            .iter()
            .all(|s| s.category != SkipCategory::Unrecognised));
    }

    #[test]
    fn heads_are_refused_on_an_encoder_only_checkpoint() {
        for dir in ["mg_encoder", "mg_savedmodel"] {
            let (vars, g) = open(dir);
            for kind in [
                ModelKind::Discriminator,
                ModelKind::Generator,
                ModelKind::Both,
            ] {
                let e = plan_checkpoint(kind, &vars, Some(&g), None).unwrap_err();
                let msg = e.to_string();
                assert!(matches!(e, MappingError::EncoderOnly { .. }), "{msg}");
                assert!(msg.contains("encoder only") && msg.contains("--model encoder"));
            }
        }
    }

    fn graph(roots: &[&str], encoder_children: &[&str]) -> ObjectGraph {
        use tf_checkpoint::object_graph::{encode, Child, Node};
        let mut nodes = vec![Node::default()];
        for r in roots {
            let n = nodes.len();
            nodes[0].children.push(Child {
                node: n,
                name: (*r).to_owned(),
            });
            nodes.push(Node::default());
        }
        for c in encoder_children {
            let n = nodes.len();
            nodes[1].children.push(Child {
                node: n,
                name: (*c).to_owned(),
            });
            nodes.push(Node::default());
        }
        ObjectGraph::decode(&encode(&nodes)).unwrap()
    }

    #[test]
    fn other_encoders_and_saved_models_are_refused_by_name() {
        let g = graph(&["encoder", "save_counter"], &["_layers"]);
        let e = crate::mapping::detect_tf2(&g).unwrap_err();
        assert!(matches!(e, MappingError::Refused { .. }), "{e}");
        assert!(e.to_string().contains("`_layers`"), "{e}");
        let g = graph(&["layer_with_weights-0", "variables"], &["dense"]);
        let e = crate::mapping::detect_tf2(&g).unwrap_err();
        assert!(e.to_string().contains("Keras SavedModel"), "{e}");
        // Complete BertEncoder attribute names are accepted.
        let g = graph(
            &["encoder", "save_counter"],
            &["_transformer_layers", "_embedding_layer"],
        );
        assert_eq!(standalone(&g), Some(Standalone::EncoderCheckpoint));
    }

    #[test]
    fn unknown_layouts_name_model_children_only_when_there_is_a_model() {
        let g = graph(&["net", "save_counter"], &[]);
        let e = crate::mapping::detect_tf2(&g).unwrap_err().to_string();
        assert!(e.contains("`net`, `save_counter`."), "{e}");
        assert!(!e.contains("children of"), "{e}");
        let g = graph(&["model", "save_counter"], &["head"]);
        let e = crate::mapping::detect_tf2(&g).unwrap_err().to_string();
        assert!(e.contains("(children of `model`: `head`)"), "{e}");
    }
}
