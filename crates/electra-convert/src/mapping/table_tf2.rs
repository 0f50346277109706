//! The declarative tables of the two TF2 source layouts (TensorFlow Model Garden's
//! `ElectraPretrainer`, NVIDIA DeepLearningExamples' TF2 ELECTRA), one per model kind, in the
//! same row vocabulary as the Google TF1 tables of [`super::table`].
//!
//! A TF2 row's source is a *semantic path* through the checkpoint's object graph (edge names
//! from the root, escaped as in checkpoint keys), not a key: the planner resolves it through
//! `_CHECKPOINTABLE_OBJECT_GRAPH` to the key the variable was stored under, which may be a
//! `layer_with_weights-K` alias or, for a shared table, another tower's path. Placeholders:
//! `{tower}` is the path of the exported tower (`ModelTable::tower` of the [`LayoutTable`]), `{n}` a layer
//! index, `{hf}` the HuggingFace prefix.

use super::table::{row, ModelTable, Section, Tied, Transform, When};
use super::table::{Dim, Dim::*};
pub use crate::options::SourceLayout;

use Transform::{
    Copy as C, Flatten as F, MergeFirstTranspose as MF, MergeLastTranspose as ML, Transpose as T_,
};

/// One TF2 model table with the layout facts the planner needs besides the rows.
#[derive(Clone, Copy, Debug)]
pub struct LayoutTable {
    /// The producer this table is for.
    pub layout: SourceLayout,
    /// The rows, naming object-graph paths instead of variable names.
    pub table: ModelTable,
    /// The object-graph path of the list whose children `0`, `1`, … are the layers
    /// (`{tower}` filled in).
    pub layer_list: &'static str,
    /// Object-graph paths whose variables are deliberately left out, with the reason
    /// (`{tower}` filled in). Checked in order; the first containing a variable wins.
    pub unused: &'static [(&'static str, &'static str)],
}

const fn r(tf: &'static str, hf: &'static str, t: Transform, shape: &'static [Dim]) -> super::Row {
    row(tf, hf, t, shape)
}

// ---------------------------------------------------------------- Model Garden

const MG_EMBEDDINGS: Section = Section {
    name: "embeddings",
    when: When::Always,
    rows: &[
        r(
            "{tower}/_embedding_layer/embeddings",
            "{hf}embeddings.word_embeddings.weight",
            C,
            &[V, E],
        ),
        r(
            "{tower}/_position_embedding_layer/embeddings",
            "{hf}embeddings.position_embeddings.weight",
            C,
            &[P, E],
        ),
        r(
            "{tower}/_type_embedding_layer/embeddings",
            "{hf}embeddings.token_type_embeddings.weight",
            C,
            &[T, E],
        ),
        r(
            "{tower}/_embedding_norm_layer/gamma",
            "{hf}embeddings.LayerNorm.weight",
            C,
            &[E],
        ),
        r(
            "{tower}/_embedding_norm_layer/beta",
            "{hf}embeddings.LayerNorm.bias",
            C,
            &[E],
        ),
    ],
};

const MG_PROJECTION: Section = Section {
    name: "embedding projection",
    when: When::EmbeddingWidthDiffers,
    rows: &[
        r(
            "{tower}/_embedding_projection/kernel",
            "{hf}embeddings_project.weight",
            T_,
            &[E, H],
        ),
        r(
            "{tower}/_embedding_projection/bias",
            "{hf}embeddings_project.bias",
            C,
            &[H],
        ),
    ],
};

const MG_LAYER: Section = Section {
    name: "encoder layer",
    when: When::EachLayer,
    rows: &[
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_query_dense/kernel",
            "{hf}encoder.layer.{n}.attention.self.query.weight",
            ML,
            &[H, N, D],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_query_dense/bias",
            "{hf}encoder.layer.{n}.attention.self.query.bias",
            F,
            &[N, D],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_key_dense/kernel",
            "{hf}encoder.layer.{n}.attention.self.key.weight",
            ML,
            &[H, N, D],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_key_dense/bias",
            "{hf}encoder.layer.{n}.attention.self.key.bias",
            F,
            &[N, D],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_value_dense/kernel",
            "{hf}encoder.layer.{n}.attention.self.value.weight",
            ML,
            &[H, N, D],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_value_dense/bias",
            "{hf}encoder.layer.{n}.attention.self.value.bias",
            F,
            &[N, D],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_output_dense/kernel",
            "{hf}encoder.layer.{n}.attention.output.dense.weight",
            MF,
            &[N, D, H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer/_output_dense/bias",
            "{hf}encoder.layer.{n}.attention.output.dense.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer_norm/gamma",
            "{hf}encoder.layer.{n}.attention.output.LayerNorm.weight",
            C,
            &[H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_attention_layer_norm/beta",
            "{hf}encoder.layer.{n}.attention.output.LayerNorm.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_intermediate_dense/kernel",
            "{hf}encoder.layer.{n}.intermediate.dense.weight",
            T_,
            &[H, I],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_intermediate_dense/bias",
            "{hf}encoder.layer.{n}.intermediate.dense.bias",
            C,
            &[I],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_output_dense/kernel",
            "{hf}encoder.layer.{n}.output.dense.weight",
            T_,
            &[I, H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_output_dense/bias",
            "{hf}encoder.layer.{n}.output.dense.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_output_layer_norm/gamma",
            "{hf}encoder.layer.{n}.output.LayerNorm.weight",
            C,
            &[H],
        ),
        r(
            "{tower}/_transformer_layers/{n}/_output_layer_norm/beta",
            "{hf}encoder.layer.{n}.output.LayerNorm.bias",
            C,
            &[H],
        ),
    ],
};

const MG_DISCRIMINATOR_HEAD: Section = Section {
    name: "replaced-token detection head",
    when: When::Always,
    rows: &[
        r(
            "model/discriminator_projection/kernel",
            "discriminator_predictions.dense.weight",
            T_,
            &[H, H],
        ),
        r(
            "model/discriminator_projection/bias",
            "discriminator_predictions.dense.bias",
            C,
            &[H],
        ),
        r(
            "model/discriminator_head/kernel",
            "discriminator_predictions.dense_prediction.weight",
            T_,
            &[H, One],
        ),
        r(
            "model/discriminator_head/bias",
            "discriminator_predictions.dense_prediction.bias",
            C,
            &[One],
        ),
    ],
};

const MG_GENERATOR_HEAD: Section = Section {
    name: "masked-LM head",
    when: When::Always,
    rows: &[
        r(
            "model/masked_lm/dense/kernel",
            "generator_predictions.dense.weight",
            T_,
            &[H, E],
        ),
        r(
            "model/masked_lm/dense/bias",
            "generator_predictions.dense.bias",
            C,
            &[E],
        ),
        r(
            "model/masked_lm/layer_norm/gamma",
            "generator_predictions.LayerNorm.weight",
            C,
            &[E],
        ),
        r(
            "model/masked_lm/layer_norm/beta",
            "generator_predictions.LayerNorm.bias",
            C,
            &[E],
        ),
        r(
            "model/masked_lm/output_bias.Sbias",
            "generator_lm_head.bias",
            C,
            &[V],
        ),
    ],
};

const LM_TIED: &[Tied] = &[Tied {
    hf: "generator_lm_head.weight",
    same_as: "electra.embeddings.word_embeddings.weight",
}];

const MG_UNUSED: &[(&str, &str)] = &[
    ("{tower}/_pooler_layer", "BertEncoder's pooler (`_pooler_layer`): ELECTRA's objectives never train it and transformers' ELECTRA has no pooler"),
    ("model/classification", "the generator's NSP-style classification head (`model/classification`), unused by ELECTRA pretraining; transformers has no equivalent"),
];

pub(crate) const MG_DISCRIMINATOR: LayoutTable = LayoutTable {
    layout: SourceLayout::ModelGarden,
    table: ModelTable {
        kind: "discriminator",
        class: "ElectraForPreTraining",
        tower: "encoder",
        hf_prefix: "electra.",
        sections: &[
            MG_EMBEDDINGS,
            MG_PROJECTION,
            MG_LAYER,
            MG_DISCRIMINATOR_HEAD,
        ],
        tied: &[],
    },
    layer_list: "{tower}/_transformer_layers",
    unused: MG_UNUSED,
};

pub(crate) const MG_GENERATOR: LayoutTable = LayoutTable {
    layout: SourceLayout::ModelGarden,
    table: ModelTable {
        kind: "generator",
        class: "ElectraForMaskedLM",
        tower: "model/generator_network",
        hf_prefix: "electra.",
        sections: &[MG_EMBEDDINGS, MG_PROJECTION, MG_LAYER, MG_GENERATOR_HEAD],
        tied: LM_TIED,
    },
    layer_list: "{tower}/_transformer_layers",
    unused: MG_UNUSED,
};

pub(crate) const MG_ENCODER: LayoutTable = LayoutTable {
    layout: SourceLayout::ModelGarden,
    table: ModelTable {
        kind: "encoder",
        class: "ElectraModel",
        tower: "encoder",
        hf_prefix: "",
        sections: &[MG_EMBEDDINGS, MG_PROJECTION, MG_LAYER],
        tied: &[],
    },
    layer_list: "{tower}/_transformer_layers",
    unused: MG_UNUSED,
};

// ---------------------------------------------------------------- NVIDIA

const NV_EMBEDDINGS: Section = Section {
    name: "embeddings",
    when: When::Always,
    rows: &[
        r(
            "{tower}/embeddings/weight",
            "{hf}embeddings.word_embeddings.weight",
            C,
            &[V, E],
        ),
        r(
            "{tower}/embeddings/position_embeddings/embeddings",
            "{hf}embeddings.position_embeddings.weight",
            C,
            &[P, E],
        ),
        r(
            "{tower}/embeddings/token_type_embeddings/embeddings",
            "{hf}embeddings.token_type_embeddings.weight",
            C,
            &[T, E],
        ),
        r(
            "{tower}/embeddings/LayerNorm/gamma",
            "{hf}embeddings.LayerNorm.weight",
            C,
            &[E],
        ),
        r(
            "{tower}/embeddings/LayerNorm/beta",
            "{hf}embeddings.LayerNorm.bias",
            C,
            &[E],
        ),
    ],
};

const NV_PROJECTION: Section = Section {
    name: "embedding projection",
    when: When::EmbeddingWidthDiffers,
    rows: &[
        r(
            "{tower}/embeddings_project/kernel",
            "{hf}embeddings_project.weight",
            T_,
            &[E, H],
        ),
        r(
            "{tower}/embeddings_project/bias",
            "{hf}embeddings_project.bias",
            C,
            &[H],
        ),
    ],
};

const NV_LAYER: Section = Section {
    name: "encoder layer",
    when: When::EachLayer,
    rows: &[
        r(
            "{tower}/encoder/layer/{n}/attention/self_attention/query/kernel",
            "{hf}encoder.layer.{n}.attention.self.query.weight",
            T_,
            &[H, H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/self_attention/query/bias",
            "{hf}encoder.layer.{n}.attention.self.query.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/self_attention/key/kernel",
            "{hf}encoder.layer.{n}.attention.self.key.weight",
            T_,
            &[H, H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/self_attention/key/bias",
            "{hf}encoder.layer.{n}.attention.self.key.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/self_attention/value/kernel",
            "{hf}encoder.layer.{n}.attention.self.value.weight",
            T_,
            &[H, H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/self_attention/value/bias",
            "{hf}encoder.layer.{n}.attention.self.value.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/dense_output/dense/kernel",
            "{hf}encoder.layer.{n}.attention.output.dense.weight",
            T_,
            &[H, H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/dense_output/dense/bias",
            "{hf}encoder.layer.{n}.attention.output.dense.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/dense_output/LayerNorm/gamma",
            "{hf}encoder.layer.{n}.attention.output.LayerNorm.weight",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/attention/dense_output/LayerNorm/beta",
            "{hf}encoder.layer.{n}.attention.output.LayerNorm.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/intermediate/dense/kernel",
            "{hf}encoder.layer.{n}.intermediate.dense.weight",
            T_,
            &[H, I],
        ),
        r(
            "{tower}/encoder/layer/{n}/intermediate/dense/bias",
            "{hf}encoder.layer.{n}.intermediate.dense.bias",
            C,
            &[I],
        ),
        r(
            "{tower}/encoder/layer/{n}/bert_output/dense/kernel",
            "{hf}encoder.layer.{n}.output.dense.weight",
            T_,
            &[I, H],
        ),
        r(
            "{tower}/encoder/layer/{n}/bert_output/dense/bias",
            "{hf}encoder.layer.{n}.output.dense.bias",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/bert_output/LayerNorm/gamma",
            "{hf}encoder.layer.{n}.output.LayerNorm.weight",
            C,
            &[H],
        ),
        r(
            "{tower}/encoder/layer/{n}/bert_output/LayerNorm/beta",
            "{hf}encoder.layer.{n}.output.LayerNorm.bias",
            C,
            &[H],
        ),
    ],
};

const NV_DISCRIMINATOR_HEAD: Section = Section {
    name: "replaced-token detection head",
    when: When::Always,
    rows: &[
        r(
            "model/discriminator/discriminator_predictions/dense/kernel",
            "discriminator_predictions.dense.weight",
            T_,
            &[H, H],
        ),
        r(
            "model/discriminator/discriminator_predictions/dense/bias",
            "discriminator_predictions.dense.bias",
            C,
            &[H],
        ),
        r(
            "model/discriminator/discriminator_predictions/dense_prediction/kernel",
            "discriminator_predictions.dense_prediction.weight",
            T_,
            &[H, One],
        ),
        r(
            "model/discriminator/discriminator_predictions/dense_prediction/bias",
            "discriminator_predictions.dense_prediction.bias",
            C,
            &[One],
        ),
    ],
};

const NV_GENERATOR_HEAD: Section = Section {
    name: "masked-LM head",
    when: When::Always,
    rows: &[
        r(
            "model/generator/generator_predictions/dense/kernel",
            "generator_predictions.dense.weight",
            T_,
            &[H, E],
        ),
        r(
            "model/generator/generator_predictions/dense/bias",
            "generator_predictions.dense.bias",
            C,
            &[E],
        ),
        r(
            "model/generator/generator_predictions/LayerNorm/gamma",
            "generator_predictions.LayerNorm.weight",
            C,
            &[E],
        ),
        r(
            "model/generator/generator_predictions/LayerNorm/beta",
            "generator_predictions.LayerNorm.bias",
            C,
            &[E],
        ),
        r(
            "model/generator/generator_lm_head/bias",
            "generator_lm_head.bias",
            C,
            &[V],
        ),
    ],
};

pub(crate) const NV_DISCRIMINATOR: LayoutTable = LayoutTable {
    layout: SourceLayout::Nvidia,
    table: ModelTable {
        kind: "discriminator",
        class: "ElectraForPreTraining",
        tower: "model/discriminator/electra",
        hf_prefix: "electra.",
        sections: &[
            NV_EMBEDDINGS,
            NV_PROJECTION,
            NV_LAYER,
            NV_DISCRIMINATOR_HEAD,
        ],
        tied: &[],
    },
    layer_list: "{tower}/encoder/layer",
    unused: &[],
};

pub(crate) const NV_GENERATOR: LayoutTable = LayoutTable {
    layout: SourceLayout::Nvidia,
    table: ModelTable {
        kind: "generator",
        class: "ElectraForMaskedLM",
        tower: "model/generator/electra",
        hf_prefix: "electra.",
        sections: &[NV_EMBEDDINGS, NV_PROJECTION, NV_LAYER, NV_GENERATOR_HEAD],
        tied: LM_TIED,
    },
    layer_list: "{tower}/encoder/layer",
    unused: &[],
};

pub(crate) const NV_ENCODER: LayoutTable = LayoutTable {
    layout: SourceLayout::Nvidia,
    table: ModelTable {
        kind: "encoder",
        class: "ElectraModel",
        tower: "model/discriminator/electra",
        hf_prefix: "",
        sections: &[NV_EMBEDDINGS, NV_PROJECTION, NV_LAYER],
        tied: &[],
    },
    layer_list: "{tower}/encoder/layer",
    unused: &[],
};

/// The TF2 tables of a layout, discriminator / generator / encoder.
pub fn tables(layout: SourceLayout) -> Option<[&'static LayoutTable; 3]> {
    match layout {
        SourceLayout::GoogleTf1 | SourceLayout::HfKeras => None,
        SourceLayout::ModelGarden => Some([&MG_DISCRIMINATOR, &MG_GENERATOR, &MG_ENCODER]),
        SourceLayout::Nvidia => Some([&NV_DISCRIMINATOR, &NV_GENERATOR, &NV_ENCODER]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every HuggingFace name of a TF2 table is one the Google TF1 table of the same kind
    /// produces: the three layouts fill the same transformers model.
    #[test]
    fn tf2_tables_fill_the_same_hf_tensors_as_tf1() {
        use super::super::table as tf1;
        for layout in [SourceLayout::ModelGarden, SourceLayout::Nvidia] {
            for (t, reference) in tables(layout).unwrap().iter().zip([
                tf1::DISCRIMINATOR,
                tf1::GENERATOR,
                tf1::ENCODER,
            ]) {
                let names = |m: &ModelTable| -> Vec<(String, Transform)> {
                    let mut v: Vec<_> = m
                        .sections
                        .iter()
                        .flat_map(|s| s.rows.iter().map(|r| (r.hf.to_owned(), r.transform)))
                        .collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                };
                let ours: Vec<String> = names(&t.table).into_iter().map(|x| x.0).collect();
                let theirs: Vec<String> = names(&reference).into_iter().map(|x| x.0).collect();
                assert_eq!(ours, theirs, "{:?} {}", layout, t.table.kind);
                assert_eq!(t.table.class, reference.class);
                assert_eq!(t.table.tied.len(), reference.tied.len());
            }
        }
    }

    /// Kernels are transposed (2-D) or reshaped then transposed (3-D); nothing else moves.
    #[test]
    fn only_kernels_move() {
        for layout in [SourceLayout::ModelGarden, SourceLayout::Nvidia] {
            for t in tables(layout).unwrap() {
                for s in t.table.sections {
                    for row in s.rows {
                        let kernel = row.tf.ends_with("/kernel");
                        let moves = row
                            .transform
                            .matrix(&[2, 3, 4][..row.shape.len()])
                            .is_some();
                        assert_eq!(kernel, moves, "{}", row.tf);
                        match row.transform {
                            Transform::MergeLastTranspose | Transform::MergeFirstTranspose => {
                                assert_eq!(row.shape.len(), 3, "{}", row.tf)
                            }
                            Transform::Flatten => assert_eq!(row.shape, [N, D], "{}", row.tf),
                            _ => assert!(row.shape.len() <= 2, "{}", row.tf),
                        }
                    }
                }
            }
        }
    }
}
