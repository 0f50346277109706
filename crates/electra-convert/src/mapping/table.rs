//! The declarative TF → HuggingFace tables, one per model kind. Everything else in
//! [`crate::mapping`] (planning, `map` output, docs/mapping.md) is derived from these rows.
//!
//! Placeholders in names:
//! - `{tower}` — the TF scope of the exported transformer (`electra` or `generator`),
//! - `{emb}` — the TF scope holding that model's embedding tables (`electra`, or `generator`
//!   when the checkpoint has untied generator embeddings),
//! - `{n}` — a layer index (rows of `LAYER` are repeated for every layer found),
//! - `{hf}` — the HuggingFace prefix of the transformer (`electra.` for head models, empty for
//!   `ElectraModel`).
//!
//! Shapes are written in TF order with symbolic dimensions (see [`Dim`]).

use serde::Serialize;

/// How the tensor's values are carried over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Same values, same layout.
    Copy,
    /// A TF dense `kernel` [in, out] becomes a torch Linear `weight` [out, in].
    Transpose,
    /// Same values, one axis: an einsum bias `[N, D]` becomes `[N·D]` (row-major, so head-major
    /// as transformers splits heads).
    Flatten,
    /// An einsum kernel `[a, b, c]` viewed as `[a, b·c]`, then transposed to `[b·c, a]`
    /// (Model Garden's query/key/value `[H, N, D]` → `[H, H]` → weight).
    MergeLastTranspose,
    /// An einsum kernel `[a, b, c]` viewed as `[a·b, c]`, then transposed to `[c, a·b]`
    /// (Model Garden's attention output `[N, D, H]` → `[H, H]` → weight).
    MergeFirstTranspose,
}

impl Transform {
    /// The name used in `docs/mapping.md` and `map` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Transform::Copy => "copy",
            Transform::Transpose => "transpose",
            Transform::Flatten => "flatten",
            Transform::MergeLastTranspose => "merge_last_transpose",
            Transform::MergeFirstTranspose => "merge_first_transpose",
        }
    }

    /// How the docs describe it.
    pub fn describe(self) -> &'static str {
        match self {
            Transform::Copy => "copy",
            Transform::Transpose => "transpose",
            Transform::Flatten => "flatten [a, b] → [a·b]",
            Transform::MergeLastTranspose => "reshape [a, b, c] → [a, b·c], transpose",
            Transform::MergeFirstTranspose => "reshape [a, b, c] → [a·b, c], transpose",
        }
    }

    /// The `[rows, cols]` matrix a transposing transform swaps, from the TF shape; `None` when
    /// the bytes are carried over in order.
    pub fn matrix(self, tf_shape: &[u64]) -> Option<(u64, u64)> {
        match (self, tf_shape) {
            (Transform::Transpose, [r, c]) => Some((*r, *c)),
            (Transform::MergeLastTranspose, [a, b, c]) => Some((*a, b * c)),
            (Transform::MergeFirstTranspose, [a, b, c]) => Some((a * b, *c)),
            _ => None,
        }
    }

    /// The HuggingFace shape of a TF shape under this transform.
    pub fn hf_shape(self, tf_shape: &[u64]) -> Vec<u64> {
        match self {
            Transform::Copy => tf_shape.to_vec(),
            Transform::Flatten => vec![tf_shape.iter().product()],
            _ => match self.matrix(tf_shape) {
                Some((rows, cols)) => vec![cols, rows],
                None => tf_shape.iter().rev().copied().collect(),
            },
        }
    }
}

/// A symbolic dimension of a checkpoint tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Dim {
    /// vocab_size (rows of word_embeddings)
    V,
    /// embedding_size (columns of word_embeddings)
    E,
    /// hidden_size of the exported transformer
    H,
    /// intermediate_size of the exported transformer
    I,
    /// max_position_embeddings
    P,
    /// type_vocab_size
    T,
    /// the literal 1 (the discriminator's single output unit)
    One,
    /// num_attention_heads (Model Garden's 3-D attention kernels)
    N,
    /// the head size, hidden_size / num_attention_heads
    D,
}

impl Dim {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Dim::V => "V",
            Dim::E => "E",
            Dim::H => "H",
            Dim::I => "I",
            Dim::P => "P",
            Dim::T => "T",
            Dim::One => "1",
            Dim::N => "N",
            Dim::D => "D",
        }
    }

    /// The config.json field this dimension is.
    pub(crate) fn config_field(self) -> Option<&'static str> {
        match self {
            Dim::V => Some("vocab_size"),
            Dim::E => Some("embedding_size"),
            Dim::H => Some("hidden_size"),
            Dim::I => Some("intermediate_size"),
            Dim::P => Some("max_position_embeddings"),
            Dim::T => Some("type_vocab_size"),
            Dim::N => Some("num_attention_heads"),
            Dim::One | Dim::D => None,
        }
    }
}

/// One row: a checkpoint variable and the HuggingFace tensor it becomes.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// The checkpoint variable (`{n}` for the layer number, `{tower}` for the scope).
    pub tf: &'static str,
    /// The HuggingFace tensor (same placeholders).
    pub hf: &'static str,
    /// How the values are changed on the way.
    pub transform: Transform,
    /// TF shape.
    pub shape: &'static [Dim],
}

const fn copy(tf: &'static str, hf: &'static str, shape: &'static [Dim]) -> Row {
    Row {
        tf,
        hf,
        transform: Transform::Copy,
        shape,
    }
}

const fn transpose(tf: &'static str, hf: &'static str, shape: &'static [Dim]) -> Row {
    Row {
        tf,
        hf,
        transform: Transform::Transpose,
        shape,
    }
}

/// A row with any transform (the TF2 tables use the einsum reshapes).
pub(crate) const fn row(
    tf: &'static str,
    hf: &'static str,
    transform: Transform,
    shape: &'static [Dim],
) -> Row {
    Row {
        tf,
        hf,
        transform,
        shape,
    }
}

use Dim::{One, E, H, I, P, T, V};

/// A group of rows and when it applies.
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// Section heading in `docs/mapping.md`.
    pub name: &'static str,
    /// When its rows apply.
    pub when: When,
    /// The rows.
    pub rows: &'static [Row],
}

/// When a [`Section`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always part of the model.
    Always,
    /// Once per encoder layer (`{n}` = 0..L).
    EachLayer,
    /// Only when embedding_size ≠ hidden_size (ELECTRA creates the projection exactly then, and
    /// transformers' `ElectraEmbeddings` has `embeddings_project` exactly then).
    EmbeddingWidthDiffers,
}

pub(crate) const EMBEDDINGS: Section = Section {
    name: "embeddings",
    when: When::Always,
    rows: &[
        copy(
            "{emb}/embeddings/word_embeddings",
            "{hf}embeddings.word_embeddings.weight",
            &[V, E],
        ),
        copy(
            "{emb}/embeddings/position_embeddings",
            "{hf}embeddings.position_embeddings.weight",
            &[P, E],
        ),
        copy(
            "{emb}/embeddings/token_type_embeddings",
            "{hf}embeddings.token_type_embeddings.weight",
            &[T, E],
        ),
        copy(
            "{emb}/embeddings/LayerNorm/gamma",
            "{hf}embeddings.LayerNorm.weight",
            &[E],
        ),
        copy(
            "{emb}/embeddings/LayerNorm/beta",
            "{hf}embeddings.LayerNorm.bias",
            &[E],
        ),
    ],
};

pub(crate) const PROJECTION: Section = Section {
    name: "embedding projection",
    when: When::EmbeddingWidthDiffers,
    rows: &[
        transpose(
            "{tower}/embeddings_project/kernel",
            "{hf}embeddings_project.weight",
            &[E, H],
        ),
        copy(
            "{tower}/embeddings_project/bias",
            "{hf}embeddings_project.bias",
            &[H],
        ),
    ],
};

pub(crate) const LAYER: Section = Section {
    name: "encoder layer",
    when: When::EachLayer,
    rows: &[
        transpose(
            "{tower}/encoder/layer_{n}/attention/self/query/kernel",
            "{hf}encoder.layer.{n}.attention.self.query.weight",
            &[H, H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/attention/self/query/bias",
            "{hf}encoder.layer.{n}.attention.self.query.bias",
            &[H],
        ),
        transpose(
            "{tower}/encoder/layer_{n}/attention/self/key/kernel",
            "{hf}encoder.layer.{n}.attention.self.key.weight",
            &[H, H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/attention/self/key/bias",
            "{hf}encoder.layer.{n}.attention.self.key.bias",
            &[H],
        ),
        transpose(
            "{tower}/encoder/layer_{n}/attention/self/value/kernel",
            "{hf}encoder.layer.{n}.attention.self.value.weight",
            &[H, H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/attention/self/value/bias",
            "{hf}encoder.layer.{n}.attention.self.value.bias",
            &[H],
        ),
        transpose(
            "{tower}/encoder/layer_{n}/attention/output/dense/kernel",
            "{hf}encoder.layer.{n}.attention.output.dense.weight",
            &[H, H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/attention/output/dense/bias",
            "{hf}encoder.layer.{n}.attention.output.dense.bias",
            &[H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/attention/output/LayerNorm/gamma",
            "{hf}encoder.layer.{n}.attention.output.LayerNorm.weight",
            &[H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/attention/output/LayerNorm/beta",
            "{hf}encoder.layer.{n}.attention.output.LayerNorm.bias",
            &[H],
        ),
        transpose(
            "{tower}/encoder/layer_{n}/intermediate/dense/kernel",
            "{hf}encoder.layer.{n}.intermediate.dense.weight",
            &[H, I],
        ),
        copy(
            "{tower}/encoder/layer_{n}/intermediate/dense/bias",
            "{hf}encoder.layer.{n}.intermediate.dense.bias",
            &[I],
        ),
        transpose(
            "{tower}/encoder/layer_{n}/output/dense/kernel",
            "{hf}encoder.layer.{n}.output.dense.weight",
            &[I, H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/output/dense/bias",
            "{hf}encoder.layer.{n}.output.dense.bias",
            &[H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/output/LayerNorm/gamma",
            "{hf}encoder.layer.{n}.output.LayerNorm.weight",
            &[H],
        ),
        copy(
            "{tower}/encoder/layer_{n}/output/LayerNorm/beta",
            "{hf}encoder.layer.{n}.output.LayerNorm.bias",
            &[H],
        ),
    ],
};

pub(crate) const DISCRIMINATOR_HEAD: Section = Section {
    name: "replaced-token detection head",
    when: When::Always,
    rows: &[
        transpose(
            "discriminator_predictions/dense/kernel",
            "discriminator_predictions.dense.weight",
            &[H, H],
        ),
        copy(
            "discriminator_predictions/dense/bias",
            "discriminator_predictions.dense.bias",
            &[H],
        ),
        transpose(
            "discriminator_predictions/dense_1/kernel",
            "discriminator_predictions.dense_prediction.weight",
            &[H, One],
        ),
        copy(
            "discriminator_predictions/dense_1/bias",
            "discriminator_predictions.dense_prediction.bias",
            &[One],
        ),
    ],
};

pub(crate) const GENERATOR_HEAD: Section = Section {
    name: "masked-LM head",
    when: When::Always,
    rows: &[
        transpose(
            "generator_predictions/dense/kernel",
            "generator_predictions.dense.weight",
            &[H, E],
        ),
        copy(
            "generator_predictions/dense/bias",
            "generator_predictions.dense.bias",
            &[E],
        ),
        copy(
            "generator_predictions/LayerNorm/gamma",
            "generator_predictions.LayerNorm.weight",
            &[E],
        ),
        copy(
            "generator_predictions/LayerNorm/beta",
            "generator_predictions.LayerNorm.bias",
            &[E],
        ),
        copy(
            "generator_predictions/output_bias",
            "generator_lm_head.bias",
            &[V],
        ),
    ],
};

/// A tensor of the HuggingFace model that is deliberately not stored because transformers ties
/// it to another one (and `save_pretrained` leaves it out).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tied {
    /// The tensor left out.
    pub hf: &'static str,
    /// The tensor whose values it shares.
    pub same_as: &'static str,
}

/// The full table of one single-model kind.
#[derive(Clone, Copy, Debug)]
pub struct ModelTable {
    /// `discriminator`, `generator` or `encoder`.
    pub kind: &'static str,
    /// transformers class (config.json `architectures`).
    pub class: &'static str,
    /// TF scope of the transformer.
    pub tower: &'static str,
    /// HuggingFace prefix of the transformer's tensors.
    pub hf_prefix: &'static str,
    /// The row groups.
    pub sections: &'static [Section],
    /// Tensors left out because they are tied.
    pub tied: &'static [Tied],
}

pub(crate) const DISCRIMINATOR: ModelTable = ModelTable {
    kind: "discriminator",
    class: "ElectraForPreTraining",
    tower: "electra",
    hf_prefix: "electra.",
    sections: &[EMBEDDINGS, PROJECTION, LAYER, DISCRIMINATOR_HEAD],
    tied: &[],
};

pub(crate) const GENERATOR: ModelTable = ModelTable {
    kind: "generator",
    class: "ElectraForMaskedLM",
    tower: "generator",
    hf_prefix: "electra.",
    sections: &[EMBEDDINGS, PROJECTION, LAYER, GENERATOR_HEAD],
    tied: &[Tied {
        hf: "generator_lm_head.weight",
        same_as: "electra.embeddings.word_embeddings.weight",
    }],
};

pub(crate) const ENCODER: ModelTable = ModelTable {
    kind: "encoder",
    class: "ElectraModel",
    tower: "electra",
    hf_prefix: "",
    sections: &[EMBEDDINGS, PROJECTION, LAYER],
    tied: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kernels_are_transposed() {
        for table in [DISCRIMINATOR, GENERATOR, ENCODER] {
            for section in table.sections {
                for row in section.rows {
                    assert_eq!(
                        row.tf.ends_with("/kernel"),
                        row.transform == Transform::Transpose,
                        "{}",
                        row.tf
                    );
                    assert!(
                        row.transform == Transform::Copy || row.shape.len() == 2,
                        "{}",
                        row.tf
                    );
                }
            }
        }
    }

    #[test]
    fn hf_names_follow_the_renaming_rules() {
        for table in [DISCRIMINATOR, GENERATOR, ENCODER] {
            for section in table.sections {
                for row in section.rows {
                    let last = row.tf.rsplit('/').next().unwrap();
                    let expected_suffix = match last {
                        "kernel" | "gamma" => ".weight",
                        "beta" | "bias" | "output_bias" => ".bias",
                        s if s.ends_with("_embeddings") => ".weight",
                        other => panic!("unexpected leaf {other}"),
                    };
                    assert!(row.hf.ends_with(expected_suffix), "{}", row.hf);
                }
            }
        }
    }
}
