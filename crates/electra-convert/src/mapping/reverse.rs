//! The TF → HuggingFace tables of [`table`](super::table) read backwards, for `export`.
//!
//! Nothing here is a second table: [`rows`] expands the very rows `convert` plans from (the same
//! placeholders filled the same way) for a given layer count and projection, and `inverse`
//! indexes them by HuggingFace name, so an HF tensor finds its TF variable and the transform to
//! undo. A transposed row's HF shape is its TF shape reversed, so undoing is transposing again.

use std::collections::{BTreeSet, HashMap};

use super::table::{Dim, ModelTable, Transform, When};

/// One row of a table with its placeholders filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcreteRow {
    /// The checkpoint variable, `{n}` filled in.
    pub tf: String,
    /// The HuggingFace tensor, `{n}` filled in.
    pub hf: String,
    /// How the values are changed on the way to HuggingFace.
    pub transform: Transform,
    /// TF shape, symbolic.
    pub shape: &'static [Dim],
    /// Name of the table section the row comes from.
    pub section: &'static str,
}

/// Every row of `table` for a model with `layers` encoder layers, its embedding tables under
/// `emb` (`electra`, or `generator` for untied generator embeddings), and the embedding
/// projection rows when `projection`.
pub fn rows(table: &ModelTable, emb: &str, layers: usize, projection: bool) -> Vec<ConcreteRow> {
    let mut out = Vec::new();
    for section in table.sections {
        let instances: Vec<Option<usize>> = match section.when {
            When::Always => vec![None],
            When::EmbeddingWidthDiffers if projection => vec![None],
            When::EmbeddingWidthDiffers => vec![],
            When::EachLayer => (0..layers).map(Some).collect(),
        };
        for n in instances {
            for row in section.rows {
                out.push(ConcreteRow {
                    tf: super::fill(row.tf, table.tower, emb, table.hf_prefix, n),
                    hf: super::fill(row.hf, table.tower, emb, table.hf_prefix, n),
                    transform: row.transform,
                    shape: row.shape,
                    section: section.name,
                });
            }
        }
    }
    out
}

/// The rows of [`rows`] by HuggingFace name.
pub(crate) fn inverse(rows: &[ConcreteRow]) -> HashMap<&str, &ConcreteRow> {
    rows.iter().map(|r| (r.hf.as_str(), r)).collect()
}

/// Encoder layer indices present among HuggingFace tensor names (`{hf_prefix}encoder.layer.N.`).
pub(crate) fn hf_layers<'a>(
    table: &ModelTable,
    names: impl Iterator<Item = &'a str>,
) -> BTreeSet<usize> {
    let prefix = format!("{}encoder.layer.", table.hf_prefix);
    names
        .filter_map(|n| n.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.split('.').next())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The HuggingFace name of the embedding projection weight (its presence decides the rows).
pub(crate) fn hf_projection_weight(table: &ModelTable) -> String {
    format!("{}embeddings_project.weight", table.hf_prefix)
}

/// The TF shape of an HF tensor of this row (kernels are stored transposed in HF).
pub fn tf_shape(row: &ConcreteRow, hf_shape: &[u64]) -> Vec<u64> {
    match row.transform {
        Transform::Copy => hf_shape.to_vec(),
        Transform::Transpose => hf_shape.iter().rev().copied().collect(),
        // Only the TF2 tables reshape einsum tensors, and export reads only the Google TF1
        // tables (it writes TF1 checkpoints). The head split a 3-D shape needs is not in the HF
        // shape, so these give the 2-D (or flat) view the reshape started from.
        Transform::Flatten => hf_shape.to_vec(),
        Transform::MergeLastTranspose | Transform::MergeFirstTranspose => {
            hf_shape.iter().rev().copied().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{DISCRIMINATOR, GENERATOR};
    use super::*;

    /// Read backwards, the rows give back what `plan` gives forwards on a real checkpoint.
    #[test]
    fn rows_match_the_forward_plan_of_the_tied_fixture() {
        let ckpt = tf_checkpoint::Checkpoint::open(std::path::Path::new(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/fixtures/electra/tied/model.ckpt-1000"
        )))
        .unwrap();
        let vars: Vec<super::super::SourceVar> = ckpt
            .tensors()
            .iter()
            .map(|t| super::super::SourceVar::new(&t.name, &t.shape, t.dtype.tf_name()))
            .collect();
        for (kind, table) in [
            (crate::options::ModelKind::Discriminator, &DISCRIMINATOR),
            (crate::options::ModelKind::Generator, &GENERATOR),
        ] {
            let plan = super::super::plan(kind, &vars).unwrap();
            let rows = rows(table, "electra", plan.layout.layers, true);
            let inv = inverse(&rows);
            assert_eq!(rows.len(), plan.entries.len());
            for e in &plan.entries {
                let row = inv[e.hf.as_str()];
                assert_eq!((&row.tf, row.transform), (&e.tf, e.transform));
                assert_eq!(tf_shape(row, &e.hf_shape), e.tf_shape);
            }
            let names: Vec<&str> = plan.entries.iter().map(|e| e.hf.as_str()).collect();
            assert_eq!(
                hf_layers(table, names.iter().copied()).len(),
                plan.layout.layers
            );
        }
        let untied = rows(&GENERATOR, "generator", 1, false);
        assert!(untied
            .iter()
            .any(|r| r.tf == "generator/embeddings/word_embeddings"));
        assert!(!untied.iter().any(|r| r.tf.contains("embeddings_project")));
    }
}
