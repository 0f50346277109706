//! Planning for the TF2 object-based layouts: detection of the producer from the object graph's
//! root edges, and application of a [`LayoutTable`] by resolving each row's semantic path
//! through the graph to the key the variable is stored under.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::table_tf2::{self, LayoutTable, SourceLayout};
use super::{
    missing_error, symbolic, Dim, Dims, Layout, MappingError, ModelKind, Plan, SkipCategory,
    Skipped, SourceVar, When,
};
use tf_checkpoint::object_graph::OBJECT_GRAPH_KEY;
use tf_checkpoint::object_graph::{ObjectGraph, SLOT_MARKER, VARIABLE_SUFFIX};

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which producer wrote an object-based checkpoint, or a refusal naming what it is.
pub fn detect(g: &ObjectGraph) -> Result<SourceLayout, MappingError> {
    let roots = g.root_edges();
    let root = |name: &str| roots.iter().any(|r| r == name);
    if root("train_iterator") || (root("world_size") && root("rank")) {
        return Err(MappingError::Refused {
            what: "an NVIDIA ELECTRA input-pipeline checkpoint (`iter_ckpt_rank_*`: the data iterator's position, `train_iterator`/`world_size`/`rank`), not a model".into(),
            advice: "pass the model checkpoint beside it instead: `ckpt-N` (or `ckpt-p2-N` after phase 2) in the run's `checkpoints/` directory, next to pretrain_config.json".into(),
        });
    }
    let model_children = g.children_at("model");
    let model = |name: &str| model_children.iter().any(|c| c == name);
    if model("discriminator_rtd_head")
        || model("discriminator_mws_head")
        || model("discriminator_mws_network")
    {
        return Err(MappingError::Refused {
            what: "a Model Garden TEAMS checkpoint (`model/discriminator_mws_head`, `model/discriminator_rtd_head`): its generator shares encoder layers with the discriminator and its multi-word-selection head has no transformers counterpart".into(),
            advice: "electra-convert converts ELECTRA pretraining checkpoints (Google TF1, Model Garden `electra/pretraining`, NVIDIA TF2); pass one of those".into(),
        });
    }
    if root("encoder") && root("model") {
        if model("masked_lm") || model("discriminator_head") || model("generator_network") {
            return Ok(SourceLayout::ModelGarden);
        }
        // Name the task model's own parts, not the functional-model aliases and private fields.
        let parts: Vec<String> = model_children
            .iter()
            .filter(|c| !c.starts_with("layer-") && !c.starts_with("layer_with_weights-"))
            .filter(|c| !c.starts_with('_'))
            .cloned()
            .collect();
        return Err(MappingError::Refused {
            what: format!(
                "a Model Garden fine-tuning checkpoint: `encoder/` is a fine-tuned encoder and `model/` is a task model ({}), not an ElectraPretrainer",
                if parts.is_empty() { "no named parts".to_owned() } else { list(&parts) }
            ),
            advice: "pass the pretraining run's checkpoint (the `ckpt-N` of an `electra/pretraining` model_dir, beside its params.yaml); fine-tuned task heads have no transformers ELECTRA equivalent".into(),
        });
    }
    if root("model") && (model("discriminator") || model("generator")) {
        return Ok(SourceLayout::Nvidia);
    }
    if let Some(found) = super::tf2_encoder::detect(g)? {
        return Ok(found);
    }
    Err(MappingError::UnknownTf2Layout {
        roots: list(&roots),
        model: if root("model") {
            format!(" (children of `model`: {})", list(&model_children))
        } else {
            String::new()
        },
    })
}

/// [`super::fill`] for the TF2 tables, which name no embedding scope of their own.
fn fill(template: &str, tower: &str, hf: &str, n: Option<usize>) -> String {
    super::fill(template, tower, tower, hf, n)
}

/// Every variable key reachable from the node at `path` (children only, cycles cut).
fn keys_under(g: &ObjectGraph, path: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let Some(start) = g.walk(path) else {
        return out;
    };
    let mut seen = HashSet::from([start]);
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        let Some(node) = g.node(n) else { continue };
        if let Some(key) = node.variable_key() {
            out.insert(key.to_owned());
        }
        for c in &node.children {
            if seen.insert(c.node) {
                stack.push(c.node);
            }
        }
    }
    out
}

/// The object paths of each model of a layout: its tower, then its head(s).
fn parts(layout: SourceLayout, kind: ModelKind) -> &'static [&'static str] {
    match (layout, kind) {
        (SourceLayout::ModelGarden, ModelKind::Discriminator) => &[
            "encoder",
            "model/discriminator_projection",
            "model/discriminator_head",
        ],
        (SourceLayout::ModelGarden, ModelKind::Generator) => {
            &["model/generator_network", "model/masked_lm"]
        }
        (SourceLayout::ModelGarden, _) => &["encoder"],
        (SourceLayout::Nvidia, ModelKind::Discriminator) => &["model/discriminator"],
        (SourceLayout::Nvidia, ModelKind::Generator) => &["model/generator"],
        (SourceLayout::Nvidia, _) => &["model/discriminator/electra"],
        (SourceLayout::GoogleTf1 | SourceLayout::HfKeras, _) => &[],
    }
}

fn table_of(layout: SourceLayout, kind: ModelKind) -> Option<&'static LayoutTable> {
    let [d, g, e] = table_tf2::tables(layout)?;
    match kind {
        ModelKind::Discriminator => Some(d),
        ModelKind::Generator => Some(g),
        ModelKind::Encoder => Some(e),
        ModelKind::Both => None,
    }
}

/// The object path of a table's tower in this graph: the table's own, except where an encoder
/// stands alone (a SavedModel's `layer_with_weights-0`, see [`super::tf2_encoder`]).
fn tower_of<'t>(g: &ObjectGraph, lt: &'t LayoutTable) -> &'t str {
    super::tf2_encoder::tower(g, lt).unwrap_or(lt.table.tower)
}

/// Whether a model's tower and head are in the graph (the first row of each section that
/// applies always must resolve).
fn present(g: &ObjectGraph, lt: &LayoutTable) -> bool {
    let tower = tower_of(g, lt);
    g.walk(tower).is_some()
        && lt
            .table
            .sections
            .iter()
            .filter(|s| s.when == When::Always)
            .all(|s| {
                s.rows
                    .first()
                    .is_some_and(|r| g.resolve(&fill(r.tf, tower, "", None)).is_some())
            })
}

/// The `--model` values an object-based checkpoint of `layout` supports.
pub(crate) fn available_kinds(layout: SourceLayout, g: &ObjectGraph) -> Vec<ModelKind> {
    let has = |k| table_of(layout, k).is_some_and(|lt| present(g, lt));
    let (d, gen, e) = (
        has(ModelKind::Discriminator),
        has(ModelKind::Generator),
        has(ModelKind::Encoder),
    );
    super::kinds_from(d, gen, e)
}

/// Plans for every model a `--model` choice writes, from an object-based checkpoint.
pub(crate) fn plan_all(
    layout: SourceLayout,
    kind: ModelKind,
    vars: &[SourceVar],
    g: &ObjectGraph,
) -> Result<Vec<Plan>, MappingError> {
    let available = available_kinds(layout, g);
    if !available.contains(&kind) {
        if let Some(refusal) = super::tf2_encoder::encoder_only(g, kind, &available) {
            return Err(refusal);
        }
        let kinds = available
            .iter()
            .map(|k| format!("--model {}", k.as_str()))
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(MappingError::ModelNotInCheckpoint {
            kind: kind.as_str(),
            needed: match kind {
                ModelKind::Both => "both the discriminator and the generator".to_owned(),
                k => format!(
                    "the {} objects {}",
                    layout.title(),
                    parts(layout, k)
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            },
            contents: format!("the root objects {}", list(&g.root_edges())),
            suggestion: if kinds.is_empty() {
                "No --model applies.".to_owned()
            } else {
                format!("Use {kinds} instead.")
            },
        });
    }
    super::expand(kind)
        .into_iter()
        .map(|k| plan(layout, k, vars, g))
        .collect()
}

struct Planned {
    path: String,
    key: String,
    hf: String,
    row: super::Row,
}

/// Apply one TF2 table.
pub(super) fn plan(
    layout: SourceLayout,
    kind: ModelKind,
    vars: &[SourceVar],
    g: &ObjectGraph,
) -> Result<Plan, MappingError> {
    let lt = table_of(layout, kind).ok_or_else(|| MappingError::ModelNotInCheckpoint {
        kind: kind.as_str(),
        needed: "one model at a time".to_owned(),
        contents: format!("the root objects {}", list(&g.root_edges())),
        suggestion: "Plan discriminator and generator separately.".to_owned(),
    })?;
    let table = &lt.table;
    let tower = tower_of(g, lt);
    let by_name: HashMap<&str, &SourceVar> = vars.iter().map(|v| (v.name.as_str(), v)).collect();

    // Layers: the numbered children of the layer list.
    let layer_list = fill(lt.layer_list, tower, "", None);
    let layers: BTreeSet<usize> = g
        .children_at(&layer_list)
        .iter()
        .filter_map(|c| c.parse::<usize>().ok())
        .collect();
    let count = layers.iter().next_back().map_or(0, |m| m + 1);
    if layers.len() != count {
        return Err(MappingError::LayerGap {
            tower: layer_list,
            count,
            found: layers.iter().copied().collect(),
            missing: super::missing_layers(&layers, count),
        });
    }

    let mut planned = Vec::new();
    let mut projection = Vec::new();
    let mut missing = Vec::new();
    for section in table.sections {
        let instances: Vec<Option<usize>> = match section.when {
            When::EachLayer => (0..count).map(Some).collect(),
            _ => vec![None],
        };
        for n in instances {
            for row in section.rows {
                let path = fill(row.tf, tower, table.hf_prefix, n);
                let hf = fill(row.hf, tower, table.hf_prefix, n);
                let key = g.resolve(&path).map(str::to_owned);
                match key {
                    Some(key) if by_name.contains_key(key.as_str()) => {
                        let p = Planned { path, key, hf, row: *row };
                        if section.when == When::EmbeddingWidthDiffers {
                            projection.push(p);
                        } else {
                            planned.push(p);
                        }
                    }
                    Some(key) => missing.push(format!(
                        "`{hf}` (from `{path}`, stored as `{key}` by the object graph but absent from the index)"
                    )),
                    None if section.when == When::EmbeddingWidthDiffers => {}
                    None => missing.push(format!("`{hf}` (from `{path}`)")),
                }
            }
        }
    }
    if !missing.is_empty() || count == 0 {
        let note = if count == 0 {
            missing.insert(0, format!("every `{}encoder.layer.*`", table.hf_prefix));
            format!("No layers were found under `{layer_list}` in the object graph.")
        } else {
            "Every tensor of the model must come from the checkpoint; nothing is left at a random initialisation.".to_owned()
        };
        return Err(missing_error(table.class, missing, note));
    }
    let project_present = !projection.is_empty();

    // Dimensions: each from the first row (in table order) whose shape names it.
    let mut dims = Dims {
        vocab_size: 0,
        embedding_size: 0,
        hidden_size: 0,
        intermediate_size: 0,
        num_hidden_layers: count as u64,
        max_position_embeddings: 0,
        type_vocab_size: 0,
        num_attention_heads: None,
        sources: BTreeMap::new(),
    };
    for p in planned.iter().chain(&projection) {
        let var = by_name[p.key.as_str()];
        if var.shape.len() != p.row.shape.len() {
            return Err(MappingError::ShapeMismatch {
                tf: p.key.clone(),
                tf_shape: var.shape.clone(),
                hf: p.hf.clone(),
                needs: format!("[{}]", symbolic(p.row.shape)),
                provenance: format!(
                    "a {}-D tensor is required (object path `{}`)",
                    p.row.shape.len(),
                    p.path
                ),
            });
        }
        for (axis, dim) in p.row.shape.iter().enumerate() {
            if matches!(dim, Dim::One | Dim::D) || dims.sources.contains_key(dim) {
                continue;
            }
            let value = var.shape[axis];
            match dim {
                Dim::V => dims.vocab_size = value,
                Dim::E => dims.embedding_size = value,
                Dim::H => dims.hidden_size = value,
                Dim::I => dims.intermediate_size = value,
                Dim::P => dims.max_position_embeddings = value,
                Dim::T => dims.type_vocab_size = value,
                Dim::N => dims.num_attention_heads = Some(value),
                Dim::One | Dim::D => {}
            }
            dims.sources.insert(*dim, p.path.clone());
        }
    }
    if let Some(heads) = dims.num_attention_heads {
        if heads == 0 || dims.hidden_size % heads != 0 {
            let q = planned
                .iter()
                .find(|p| p.row.shape.contains(&Dim::N))
                .expect("N came from a row");
            return Err(MappingError::ShapeMismatch {
                tf: q.key.clone(),
                tf_shape: by_name[q.key.as_str()].shape.clone(),
                hf: q.hf.clone(),
                needs: "[H, N, D] with N·D = H".to_owned(),
                provenance: format!("H = {} and N = {heads} from `{}`", dims.hidden_size, q.path),
            });
        }
    }
    let widths_differ = dims.embedding_size != dims.hidden_size;
    if widths_differ && !project_present {
        let items = table
            .sections
            .iter()
            .filter(|s| s.when == When::EmbeddingWidthDiffers)
            .flat_map(|s| s.rows)
            .map(|r| {
                format!(
                    "`{}` (from `{}`)",
                    fill(r.hf, tower, table.hf_prefix, None),
                    fill(r.tf, tower, "", None)
                )
            })
            .collect();
        return Err(missing_error(
            table.class,
            items,
            format!(
                "embedding_size {} differs from hidden_size {}, so the embeddings must be projected, but the tower has no projection layer",
                dims.embedding_size, dims.hidden_size
            ),
        ));
    }
    if !widths_differ && project_present {
        return Err(MappingError::UnexpectedProjection {
            tower: tower.to_owned(),
            width: dims.hidden_size,
        });
    }
    planned.append(&mut projection);

    let mut entries = Vec::with_capacity(planned.len());
    let mut object_paths = BTreeMap::new();
    for p in &planned {
        let var = by_name[p.key.as_str()];
        entries.push(super::planned_entry(&p.key, &p.hf, &p.row, var, &dims)?);
        object_paths.insert(p.key.clone(), p.path.clone());
    }
    entries.sort_by(|a, b| a.hf.as_bytes().cmp(b.hf.as_bytes()));

    let skipped = skip_all(layout, kind, lt, vars, g, &object_paths)?;
    let word_key = &planned[0].key;
    let embeddings_scope = word_key
        .strip_suffix(VARIABLE_SUFFIX)
        .unwrap_or(word_key)
        .to_owned();
    Ok(Plan {
        kind,
        class: table.class,
        layout: Layout {
            tower: tower.to_owned(),
            embeddings_scope,
            layers: count,
            embeddings_project: project_present,
        },
        source_layout: layout,
        dims,
        entries,
        tied: table.tied.to_vec(),
        skipped,
        task_heads: Vec::new(),
        object_paths,
    })
}

/// A reason for every variable the plan does not export.
fn skip_all(
    layout: SourceLayout,
    kind: ModelKind,
    lt: &LayoutTable,
    vars: &[SourceVar],
    g: &ObjectGraph,
    mapped: &BTreeMap<String, String>,
) -> Result<Vec<Skipped>, MappingError> {
    let tower = tower_of(g, lt);
    let unused: Vec<(HashSet<String>, &str)> = lt
        .unused
        .iter()
        .map(|(path, why)| (keys_under(g, &fill(path, tower, "", None)), *why))
        .collect();
    let own: HashSet<String> = parts(layout, kind)
        .iter()
        .map(|p| if *p == lt.table.tower { tower } else { p })
        .flat_map(|p| keys_under(g, p))
        .collect();
    let mut others: Vec<(HashSet<String>, String)> = Vec::new();
    for other in [ModelKind::Discriminator, ModelKind::Generator] {
        if other == kind {
            continue;
        }
        let why = match (kind, other) {
            (ModelKind::Encoder, ModelKind::Discriminator) => "replaced-token detection head; ElectraModel has no head (export it with --model discriminator)".to_owned(),
            _ => format!("{} (export it with --model {})", other.as_str(), other.as_str()),
        };
        let keys = parts(layout, other)
            .iter()
            .flat_map(|p| keys_under(g, p))
            .collect();
        others.push((keys, why));
    }
    let mut skipped = Vec::new();
    let mut unrecognised = Vec::new();
    for v in vars {
        let name = v.name.as_str();
        if mapped.contains_key(name) {
            continue;
        }
        let first = name.split('/').next().unwrap_or(name);
        let (category, reason) = if name == OBJECT_GRAPH_KEY {
            (
                SkipCategory::Metadata,
                "the checkpoint's object graph; read to resolve every key, not a weight".to_owned(),
            )
        } else if let Some((var, slot)) = name.split_once(SLOT_MARKER) {
            let slot = slot.strip_suffix(VARIABLE_SUFFIX).unwrap_or(slot);
            (
                SkipCategory::OptimizerSlot,
                format!("optimizer slot `{slot}` of `{var}` (training state, not a weight)"),
            )
        } else if first == "optimizer" {
            (
                SkipCategory::OptimizerState,
                "optimizer state (iteration count, hyperparameters, loss scale), not a weight"
                    .to_owned(),
            )
        } else if matches!(first, "global_step" | "step") {
            (SkipCategory::GlobalStep, "training step counter".to_owned())
        } else if first == "save_counter" {
            (
                SkipCategory::GlobalStep,
                "tf.train.Checkpoint's save counter".to_owned(),
            )
        } else if let Some(why) = super::tf2_encoder::skip_reason(name) {
            (SkipCategory::Metadata, why.to_owned())
        } else if first == "phase2" {
            (
                SkipCategory::GlobalStep,
                "NVIDIA's phase-2 flag (training state)".to_owned(),
            )
        } else if !name.ends_with(VARIABLE_SUFFIX) {
            (
                SkipCategory::Metadata,
                "object metadata, not a variable value".to_owned(),
            )
        } else if let Some((_, why)) = unused.iter().find(|(keys, _)| keys.contains(name)) {
            (SkipCategory::TaskHead, (*why).to_owned())
        } else if own.contains(name) {
            unrecognised.push(format!("`{name}`"));
            continue;
        } else if let Some((_, why)) = others.iter().find(|(keys, _)| keys.contains(name)) {
            (SkipCategory::OtherModel, why.clone())
        } else {
            (
                SkipCategory::Unrecognised,
                format!("not part of the {} layout; left out", layout.title()),
            )
        };
        skipped.push(Skipped {
            tf: v.name.clone(),
            shape: v.shape.clone(),
            category,
            reason,
        });
    }
    if !unrecognised.is_empty() {
        return Err(MappingError::Unrecognised {
            kind: lt.table.kind,
            names: unrecognised.join(", "),
        });
    }
    Ok(skipped)
}
