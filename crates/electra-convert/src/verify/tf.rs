//! The original network, straight from a TF checkpoint: weights looked up by their own
//! google-research/electra names, in TF layout (kernels `[in, out]`, LayerNorm `gamma`/`beta`,
//! `discriminator_predictions/dense_1`, `generator_predictions/output_bias`).
//!
//! This deliberately does not use the mapping module: it is a second, independent statement of
//! where every weight lives, so a wrong or swapped mapping entry makes the two forward passes
//! disagree. Sizes come from the checkpoint's own shapes; only the number of attention heads
//! (which a checkpoint does not record) comes from the model directory's config.json. The numerics
//! are the original's (ε = 1e-12, erf GELU, −10000 mask), not config.json's, so a wrong
//! `layer_norm_eps` or `hidden_act` in the converted config fails this check too.
//!
//! Shapes come from the checkpoint's index; values are read when a stage of the forward pass
//! asks for them, with positioned reads (no mapping of the data shard), and dropped with the
//! stage. The embedding lookup keeps only the rows of the batch's tokens.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::config::Architecture;
use super::model::{
    check_ids, Dense, Dims, HeadKind, Norm, Numerics, Param, Tower, Want, WeightProvider,
};
use super::VerifyError;
use tf_checkpoint::{Checkpoint, ChunkError};

/// Bytes per positioned read when streaming a variable.
const PIECE: usize = 1 << 20;

/// Read access to a TF checkpoint's variables (implemented for the project's checkpoint reader;
/// an in-memory implementation is handy for tests).
pub trait TfVariables: Sync {
    /// What to call the checkpoint in messages.
    fn path(&self) -> &Path;
    /// Shape of `name`, if the checkpoint has it.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Values of a floating-point variable as f32, row-major.
    fn read_f32(&self, name: &str) -> Result<Vec<f32>, VerifyError>;
    /// Rows `ids` of a `[rows, width]` floating-point variable as f32, `ids.len() × width`
    /// values in the order of `ids`. The default reads the whole variable and gathers.
    fn read_f32_rows(
        &self,
        name: &str,
        width: usize,
        ids: &[u32],
    ) -> Result<Vec<f32>, VerifyError> {
        let all = self.read_f32(name)?;
        let rows = all.len() / width.max(1);
        check_ids(ids, rows)?;
        let mut out = Vec::with_capacity(ids.len() * width);
        for &id in ids {
            let at = id as usize * width;
            out.extend_from_slice(&all[at..at + width]);
        }
        Ok(out)
    }
}

impl TfVariables for Checkpoint {
    fn path(&self) -> &Path {
        self.prefix()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let info = self.get(name)?;
        info.shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect()
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>, VerifyError> {
        let mut values = Vec::new();
        self.read_f32_into(name, &mut Vec::new(), &mut values)
            .map_err(|e| VerifyError::Checkpoint {
                path: self.prefix().to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(values)
    }

    fn read_f32_rows(
        &self,
        name: &str,
        width: usize,
        ids: &[u32],
    ) -> Result<Vec<f32>, VerifyError> {
        streamed_rows(self, name, width, ids, PIECE)
    }
}

/// Rows `ids` of the `[rows, width]` float variable `name`, read in pieces of `piece` bytes:
/// each distinct row is copied once as it streams past (a row may straddle two pieces), then
/// laid out in `ids` order. Memory: one piece plus the rows asked for.
fn streamed_rows(
    ckpt: &Checkpoint,
    name: &str,
    width: usize,
    ids: &[u32],
    piece: usize,
) -> Result<Vec<f32>, VerifyError> {
    let elements = ckpt.get(name).map_or(0, |i| i.num_elements() as usize);
    let rows = elements / width.max(1);
    check_ids(ids, rows)?;
    let mut slot = vec![usize::MAX; rows];
    let mut distinct = 0;
    for &id in ids {
        if slot[id as usize] == usize::MAX {
            slot[id as usize] = distinct;
            distinct += 1;
        }
    }
    let mut gathered = vec![0f32; distinct * width];
    let mut buf = Vec::new();
    ckpt.read_f32_chunks(name, piece, &mut buf, |first, piece| {
        let end = first + piece.len();
        let mut row = first / width.max(1);
        while row < rows && row * width < end {
            if slot[row] != usize::MAX {
                let (lo, hi) = ((row * width).max(first), ((row + 1) * width).min(end));
                let dst = slot[row] * width + (lo - row * width);
                gathered[dst..dst + (hi - lo)].copy_from_slice(&piece[lo - first..hi - first]);
            }
            row += 1;
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .map_err(|e| checkpoint_error(ckpt, e))?;
    let mut out = Vec::with_capacity(ids.len() * width);
    for &id in ids {
        let at = slot[id as usize] * width;
        out.extend_from_slice(&gathered[at..at + width]);
    }
    Ok(out)
}

fn checkpoint_error(ckpt: &Checkpoint, e: ChunkError<std::convert::Infallible>) -> VerifyError {
    let message = match e {
        ChunkError::Read(e) => e.to_string(),
        ChunkError::Sink(never) => match never {},
    };
    VerifyError::Checkpoint {
        path: ckpt.prefix().to_path_buf(),
        message,
    }
}

/// The original model and how it was found.
pub(crate) struct Original<'a> {
    pub tower: Tower,
    /// Its weights, checked, not yet read.
    pub weights: TfWeights<'a>,
    /// `electra` or `generator`: the tower that was run.
    pub scope: String,
    pub notes: Vec<String>,
}

pub(crate) struct TfWeights<'a> {
    vars: &'a dyn TfVariables,
    /// Tower scope: `electra` or `generator`.
    scope: String,
    /// Embedding scope: `electra/embeddings` (shared) or `generator/embeddings` (untied).
    embeddings: String,
    /// transformers' Keras names (`tf_model.h5`): `layer_._N`, `word_embeddings/weight`,
    /// `{position,token_type}_embeddings/embeddings`, `dense_prediction`, `generator_lm_head/bias`.
    keras: bool,
}

impl TfWeights<'_> {
    fn require_shape(&self, name: &str) -> Result<Vec<usize>, VerifyError> {
        self.vars.shape(name).ok_or_else(|| VerifyError::MissingVariable {
            path: self.vars.path().to_path_buf(),
            name: name.to_string(),
            hint: format!(
                "the {} tower of an ELECTRA pretraining checkpoint has it; is this the checkpoint the model was converted from?",
                self.scope
            ),
        })
    }

    fn check_shape(&self, name: &str, shape: &[usize]) -> Result<(), VerifyError> {
        let found = self.require_shape(name)?;
        if found != shape {
            return Err(VerifyError::VariableShape {
                path: self.vars.path().to_path_buf(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found,
            });
        }
        Ok(())
    }

    fn load(&self, name: &str, shape: &[usize]) -> Result<Tensor, VerifyError> {
        self.check_shape(name, shape)?;
        let values = self.vars.read_f32(name)?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(VerifyError::Checkpoint {
                path: self.vars.path().to_path_buf(),
                message: format!("{name}: {} values for shape {shape:?}", values.len()),
            });
        }
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(super::model::candle_error)
    }

    fn layer(&self, l: usize) -> String {
        if self.keras {
            return format!("{}/encoder/layer_._{l}", self.scope);
        }
        format!("{}/encoder/layer_{l}", self.scope)
    }

    /// Scope of a dense layer or LayerNorm (without `/kernel`, `/gamma`, ...).
    fn base(&self, param: Param) -> String {
        if self.keras {
            match param {
                Param::WordEmbeddings | Param::GeneratorDecoder => {
                    return format!("{}/word_embeddings/weight", self.embeddings)
                }
                Param::PositionEmbeddings => {
                    return format!("{}/position_embeddings/embeddings", self.embeddings)
                }
                Param::TokenTypeEmbeddings => {
                    return format!("{}/token_type_embeddings/embeddings", self.embeddings)
                }
                Param::DiscriminatorPrediction => {
                    return "discriminator_predictions/dense_prediction".into()
                }
                Param::GeneratorBias => return "generator_lm_head/bias".into(),
                _ => {}
            }
        }
        match param {
            Param::WordEmbeddings | Param::GeneratorDecoder => {
                // TF's MLM logits multiply by the tower's own embedding table.
                format!("{}/word_embeddings", self.embeddings)
            }
            Param::PositionEmbeddings => format!("{}/position_embeddings", self.embeddings),
            Param::TokenTypeEmbeddings => format!("{}/token_type_embeddings", self.embeddings),
            Param::EmbeddingsLayerNorm => format!("{}/LayerNorm", self.embeddings),
            Param::EmbeddingsProject => format!("{}/embeddings_project", self.scope),
            Param::Query(l) => format!("{}/attention/self/query", self.layer(l)),
            Param::Key(l) => format!("{}/attention/self/key", self.layer(l)),
            Param::Value(l) => format!("{}/attention/self/value", self.layer(l)),
            Param::AttentionOutput(l) => format!("{}/attention/output/dense", self.layer(l)),
            Param::AttentionLayerNorm(l) => format!("{}/attention/output/LayerNorm", self.layer(l)),
            Param::Intermediate(l) => format!("{}/intermediate/dense", self.layer(l)),
            Param::Output(l) => format!("{}/output/dense", self.layer(l)),
            Param::OutputLayerNorm(l) => format!("{}/output/LayerNorm", self.layer(l)),
            Param::DiscriminatorDense => "discriminator_predictions/dense".into(),
            // The head's second dense layer is unnamed in the original code, so TF calls it dense_1.
            Param::DiscriminatorPrediction => "discriminator_predictions/dense_1".into(),
            Param::GeneratorDense => "generator_predictions/dense".into(),
            Param::GeneratorLayerNorm => "generator_predictions/LayerNorm".into(),
            Param::GeneratorBias => "generator_predictions/output_bias".into(),
        }
    }
}

impl WeightProvider for TfWeights<'_> {
    fn has(&self, param: Param) -> bool {
        self.vars
            .shape(&format!("{}/kernel", self.base(param)))
            .is_some()
    }

    fn check(&mut self, param: Param, want: Want) -> Result<(), VerifyError> {
        let base = self.base(param);
        match want {
            Want::Table { rows, width } => self.check_shape(&base, &[rows, width]),
            Want::Dense { d_in, d_out } => {
                self.check_shape(&format!("{base}/kernel"), &[d_in, d_out])?;
                self.check_shape(&format!("{base}/bias"), &[d_out])
            }
            Want::Norm { width } => {
                self.check_shape(&format!("{base}/gamma"), &[width])?;
                self.check_shape(&format!("{base}/beta"), &[width])
            }
            Want::Vector { len } => self.check_shape(&base, &[len]),
        }
    }

    fn table(&mut self, param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError> {
        self.load(&self.base(param), &[rows, width])
    }

    fn table_rows(
        &mut self,
        param: Param,
        rows: usize,
        width: usize,
        ids: &[u32],
    ) -> Result<Tensor, VerifyError> {
        let name = self.base(param);
        self.check_shape(&name, &[rows, width])?;
        let values = self.vars.read_f32_rows(&name, width, ids)?;
        if values.len() != ids.len() * width {
            return Err(VerifyError::Checkpoint {
                path: self.vars.path().to_path_buf(),
                message: format!(
                    "{name}: {} values for {} rows of {width}",
                    values.len(),
                    ids.len()
                ),
            });
        }
        Tensor::from_vec(values, (ids.len(), width), &Device::Cpu)
            .map_err(super::model::candle_error)
    }

    fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError> {
        let base = self.base(param);
        Ok(Dense {
            kernel: self.load(&format!("{base}/kernel"), &[d_in, d_out])?,
            bias: self.load(&format!("{base}/bias"), &[d_out])?,
        })
    }

    fn norm(&mut self, param: Param, width: usize) -> Result<Norm, VerifyError> {
        let base = self.base(param);
        Ok(Norm {
            gamma: self.load(&format!("{base}/gamma"), &[width])?,
            beta: self.load(&format!("{base}/beta"), &[width])?,
        })
    }

    fn vector(&mut self, param: Param, len: usize) -> Result<Tensor, VerifyError> {
        self.load(&self.base(param), &[len])
    }
}

/// Build the original tower + head that corresponds to `arch`, sizes read from the checkpoint.
pub(crate) fn load_original(
    vars: &dyn TfVariables,
    arch: Architecture,
    heads: usize,
) -> Result<Original<'_>, VerifyError> {
    let mut notes = Vec::new();
    let query0 = |scope: &str| format!("{scope}/encoder/layer_0/attention/self/query/kernel");
    // transformers' TF classes: one model per file, its tower always `electra`.
    let keras = vars
        .shape("electra/embeddings/word_embeddings/weight")
        .is_some();
    let scope = match arch {
        _ if keras => "electra",
        Architecture::MaskedLm => {
            if vars.shape(&query0("generator")).is_some() {
                "generator"
            } else {
                // untied_generator=False / electra_objective=False: one tower serves both.
                notes.push(
                    "the checkpoint has no generator/ tower; the generator runs on electra/ (untied_generator=False)"
                        .into(),
                );
                "electra"
            }
        }
        Architecture::PreTraining | Architecture::Model => "electra",
    };
    let embeddings =
        if scope == "generator" && vars.shape("generator/embeddings/word_embeddings").is_some() {
            notes.push(
                "the generator has its own generator/embeddings (untied_generator_embeddings=True)"
                    .into(),
            );
            "generator/embeddings".to_string()
        } else {
            "electra/embeddings".to_string()
        };
    let mut weights = TfWeights {
        vars,
        scope: scope.to_string(),
        embeddings,
        keras,
    };

    let word = weights.require_shape(&weights.base(Param::WordEmbeddings))?;
    let [vocab, embedding] = two_dims(&weights, Param::WordEmbeddings, &word)?;
    let position = weights.require_shape(&weights.base(Param::PositionEmbeddings))?;
    let [max_positions, _] = two_dims(&weights, Param::PositionEmbeddings, &position)?;
    let types = weights.require_shape(&weights.base(Param::TokenTypeEmbeddings))?;
    let [type_vocab, _] = two_dims(&weights, Param::TokenTypeEmbeddings, &types)?;
    let project = weights.has(Param::EmbeddingsProject);
    let hidden = if project {
        let name = format!("{}/kernel", weights.base(Param::EmbeddingsProject));
        let shape = weights.require_shape(&name)?;
        two_dims(&weights, Param::EmbeddingsProject, &shape)?[1]
    } else {
        embedding
    };
    let mut layers = 0;
    while vars
        .shape(&format!(
            "{}/attention/self/query/kernel",
            weights.layer(layers)
        ))
        .is_some()
    {
        layers += 1;
    }
    let intermediate = if layers > 0 {
        let name = format!("{}/kernel", weights.base(Param::Intermediate(0)));
        let shape = weights.require_shape(&name)?;
        two_dims(&weights, Param::Intermediate(0), &shape)?[1]
    } else {
        0
    };
    if heads == 0 || hidden % heads != 0 {
        return Err(VerifyError::Checkpoint {
            path: vars.path().to_path_buf(),
            message: format!(
                "the {scope} tower's hidden size {hidden} is not divisible by num_attention_heads {heads} from config.json"
            ),
        });
    }
    let dims = Dims {
        vocab,
        embedding,
        hidden,
        intermediate,
        layers,
        heads,
        max_positions,
        type_vocab,
        project,
    };
    let head = HeadKind::of(arch);
    let tower = Tower::new(dims, head, Numerics::tensorflow_original());
    tower.check_weights(&mut weights)?;
    Ok(Original {
        tower,
        weights,
        scope: scope.to_string(),
        notes,
    })
}

fn two_dims(w: &TfWeights<'_>, param: Param, shape: &[usize]) -> Result<[usize; 2], VerifyError> {
    match shape {
        [a, b] => Ok([*a, *b]),
        _ => Err(VerifyError::Checkpoint {
            path: w.vars.path().to_path_buf(),
            message: format!(
                "{} has shape {shape:?}, expected 2 dimensions",
                w.base(param)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed row lookup equals indexing `read_f32` for every piece size, rows straddling
    /// pieces, repeated and unordered ids, on the f32 [3, 4] and f16 [4, 3] format fixtures.
    #[test]
    fn streamed_rows_equal_the_whole_table_indexed() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("fixtures/format");
        for (fixture, name, width) in [("basic", "f32_matrix", 4), ("half", "h16", 3)] {
            let ckpt = Checkpoint::open(&root.join(fixture).join("ckpt")).unwrap();
            let all = TfVariables::read_f32(&ckpt, name).unwrap();
            let rows = all.len() / width;
            let ids: Vec<u32> = vec![2, 0, 2, 1, (rows - 1) as u32, 0];
            let want: Vec<u32> = ids
                .iter()
                .flat_map(|&i| &all[i as usize * width..(i as usize + 1) * width])
                .map(|v| v.to_bits())
                .collect();
            for piece in [1, 8, 12, 16, 24, 1 << 20] {
                let got = streamed_rows(&ckpt, name, width, &ids, piece).unwrap();
                let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{fixture}/{name} piece {piece}");
            }
            let err = streamed_rows(&ckpt, name, width, &[rows as u32], 8).unwrap_err();
            assert!(err.to_string().contains("outside"), "{err}");
        }
    }
}
