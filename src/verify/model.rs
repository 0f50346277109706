//! The ELECTRA forward pass in candle, independent of where the weights come from.
//!
//! The network is described by *logical* parameters (`Param`); a `WeightProvider` turns each
//! into a tensor in the layout the math wants (dense kernels as `[in, out]`, so a layer is
//! `x · K + b`). Two providers exist: the HuggingFace one (`hf.rs`, safetensors names, torch
//! `[out, in]` weights) and the TensorFlow one (`tf.rs`, checkpoint names, `[in, out]` kernels).
//! Everything numeric — embeddings, LayerNorm, attention, activations, heads — lives here once,
//! so the two checks differ only in weight naming and layout.

use candle_core::{DType, Device, Tensor, D};

use super::config::Activation;
use super::VerifyError;

/// One parameter of the network, named by its role rather than by any file's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    WordEmbeddings,
    PositionEmbeddings,
    TokenTypeEmbeddings,
    EmbeddingsLayerNorm,
    EmbeddingsProject,
    Query(usize),
    Key(usize),
    Value(usize),
    AttentionOutput(usize),
    AttentionLayerNorm(usize),
    Intermediate(usize),
    Output(usize),
    OutputLayerNorm(usize),
    DiscriminatorDense,
    DiscriminatorPrediction,
    GeneratorDense,
    GeneratorLayerNorm,
    /// The MLM decoder matrix `[V, E]` (tied to the word embeddings unless stored separately).
    GeneratorDecoder,
    /// The MLM output bias `[V]`.
    GeneratorBias,
}

/// A dense layer as `x · kernel + bias`, kernel `[in, out]`.
pub(crate) struct Dense {
    pub kernel: Tensor,
    pub bias: Tensor,
}

/// LayerNorm's scale and shift.
pub(crate) struct Norm {
    pub gamma: Tensor,
    pub beta: Tensor,
}

/// Source of weights. Every method gets the shape the network expects; a provider must check the
/// stored tensor against it and report mismatches by the stored name.
pub(crate) trait WeightProvider {
    /// Whether an optional parameter (only `EmbeddingsProject`) is present.
    fn has(&self, param: Param) -> bool;
    /// A `[rows, width]` table (embeddings, the MLM decoder).
    fn table(&mut self, param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError>;
    /// A dense layer `in → out`, returned with its kernel as `[in, out]`.
    fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError>;
    /// A LayerNorm over `width` features.
    fn norm(&mut self, param: Param, width: usize) -> Result<Norm, VerifyError>;
    /// A plain vector of `len` values.
    fn vector(&mut self, param: Param, len: usize) -> Result<Tensor, VerifyError>;
}

/// Sizes of one tower (discriminator or generator) plus its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dims {
    pub vocab: usize,
    pub embedding: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    /// Whether the `embeddings_project` layer (E → H) exists.
    pub project: bool,
}

/// Which head sits on the tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadKind {
    None,
    Discriminator,
    Generator,
}

/// The numeric choices that distinguish transformers' computation from the TF original.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numerics {
    pub layer_norm_eps: f64,
    /// Activation of the FFN and of the discriminator head (`hidden_act`).
    pub hidden_act: Activation,
    /// Activation of the generator head (transformers: always exact GELU; TF: `hidden_act`).
    pub generator_act: Activation,
    /// Added to attention scores at padded key positions.
    pub mask_value: f32,
}

impl Numerics {
    /// transformers 4.x: `layer_norm_eps` everywhere, `finfo(float32).min` as the padding bias.
    pub fn transformers(layer_norm_eps: f64, hidden_act: Activation) -> Numerics {
        Numerics {
            layer_norm_eps,
            hidden_act,
            generator_act: Activation::GeluErf,
            mask_value: f32::MIN,
        }
    }

    /// google-research/electra: ε = 1e-12 hard-coded in `tf.contrib.layers.layer_norm`, the
    /// exact-erf GELU of `modeling.py` everywhere, −10000 at padded positions.
    pub fn tensorflow_original() -> Numerics {
        Numerics {
            layer_norm_eps: 1e-12,
            hidden_act: Activation::GeluErf,
            generator_act: Activation::GeluErf,
            mask_value: -10000.0,
        }
    }
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_output: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

enum Head {
    None,
    Discriminator {
        dense: Dense,
        prediction: Dense,
    },
    Generator {
        dense: Dense,
        norm: Norm,
        /// `[V, E]`; logits = h · decoderᵀ + bias.
        decoder: Tensor,
        bias: Tensor,
    },
}

/// A token batch: ids, mask and segment ids, all `[batch, seq]` row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u8>,
    pub token_type_ids: Vec<u32>,
}

/// What a forward pass returns (both `f32` tensors on the CPU).
pub(crate) struct Outputs {
    /// `[B, S, H]`: the tower's output (`last_hidden_state`).
    pub last_hidden_state: Tensor,
    /// `[B, S]` (discriminator) or `[B, S, V]` (generator); `None` for the bare encoder.
    pub logits: Option<Tensor>,
}

/// An ELECTRA tower with an optional head, weights loaded.
pub(crate) struct Electra {
    dims: Dims,
    numerics: Numerics,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embeddings_norm: Norm,
    project: Option<Dense>,
    layers: Vec<Layer>,
    head: Head,
}

fn candle(err: candle_core::Error) -> VerifyError {
    VerifyError::Compute {
        message: err.to_string(),
    }
}

impl Electra {
    /// Pull every parameter from `weights`, checking shapes against `dims`.
    pub fn load(
        weights: &mut dyn WeightProvider,
        dims: Dims,
        head: HeadKind,
        numerics: Numerics,
    ) -> Result<Electra, VerifyError> {
        let (e, h, i) = (dims.embedding, dims.hidden, dims.intermediate);
        let word = weights.table(Param::WordEmbeddings, dims.vocab, e)?;
        let position = weights.table(Param::PositionEmbeddings, dims.max_positions, e)?;
        let token_type = weights.table(Param::TokenTypeEmbeddings, dims.type_vocab, e)?;
        let embeddings_norm = weights.norm(Param::EmbeddingsLayerNorm, e)?;
        let project = if dims.project {
            Some(weights.dense(Param::EmbeddingsProject, e, h)?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(dims.layers);
        for l in 0..dims.layers {
            layers.push(Layer {
                query: weights.dense(Param::Query(l), h, h)?,
                key: weights.dense(Param::Key(l), h, h)?,
                value: weights.dense(Param::Value(l), h, h)?,
                attention_output: weights.dense(Param::AttentionOutput(l), h, h)?,
                attention_norm: weights.norm(Param::AttentionLayerNorm(l), h)?,
                intermediate: weights.dense(Param::Intermediate(l), h, i)?,
                output: weights.dense(Param::Output(l), i, h)?,
                output_norm: weights.norm(Param::OutputLayerNorm(l), h)?,
            });
        }
        let head = match head {
            HeadKind::None => Head::None,
            HeadKind::Discriminator => Head::Discriminator {
                dense: weights.dense(Param::DiscriminatorDense, h, h)?,
                prediction: weights.dense(Param::DiscriminatorPrediction, h, 1)?,
            },
            HeadKind::Generator => Head::Generator {
                dense: weights.dense(Param::GeneratorDense, h, e)?,
                norm: weights.norm(Param::GeneratorLayerNorm, e)?,
                decoder: weights.table(Param::GeneratorDecoder, dims.vocab, e)?,
                bias: weights.vector(Param::GeneratorBias, dims.vocab)?,
            },
        };
        Ok(Electra {
            dims,
            numerics,
            word,
            position,
            token_type,
            embeddings_norm,
            project,
            layers,
            head,
        })
    }

    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// Check that `batch` fits this model (ids in range, sequence not longer than the position table).
    pub fn check_batch(&self, batch: &Batch) -> Result<(), String> {
        let n = batch.batch * batch.seq;
        if batch.batch == 0 || batch.seq == 0 {
            return Err(format!(
                "the batch is empty ([{}, {}])",
                batch.batch, batch.seq
            ));
        }
        if batch.input_ids.len() != n
            || batch.attention_mask.len() != n
            || batch.token_type_ids.len() != n
        {
            return Err("input_ids, attention_mask and token_type_ids differ in size".into());
        }
        if batch.seq > self.dims.max_positions {
            return Err(format!(
                "sequence length {} exceeds max_position_embeddings {}",
                batch.seq, self.dims.max_positions
            ));
        }
        if let Some((at, id)) = batch
            .input_ids
            .iter()
            .enumerate()
            .find(|(_, &id)| id as usize >= self.dims.vocab)
        {
            return Err(format!(
                "input_ids[{}][{}] = {id} is outside the vocabulary (size {})",
                at / batch.seq,
                at % batch.seq,
                self.dims.vocab
            ));
        }
        if let Some((at, t)) = batch
            .token_type_ids
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= self.dims.type_vocab)
        {
            return Err(format!(
                "token_type_ids[{}][{}] = {t} is outside type_vocab_size {}",
                at / batch.seq,
                at % batch.seq,
                self.dims.type_vocab
            ));
        }
        if let Some(at) = batch.attention_mask.iter().position(|&m| m > 1) {
            return Err(format!(
                "attention_mask[{}][{}] is {}, not 0 or 1",
                at / batch.seq,
                at % batch.seq,
                batch.attention_mask[at]
            ));
        }
        Ok(())
    }

    /// Run the network on `batch` (already checked with [`Electra::check_batch`]).
    pub fn forward(&self, batch: &Batch) -> Result<Outputs, VerifyError> {
        self.forward_inner(batch).map_err(candle)
    }

    fn forward_inner(&self, batch: &Batch) -> candle_core::Result<Outputs> {
        let dev = Device::Cpu;
        let (b, s) = (batch.batch, batch.seq);
        let eps = self.numerics.layer_norm_eps;

        // Embeddings: LN(word + position + token_type), then the optional projection.
        let ids = Tensor::from_slice(&batch.input_ids, b * s, &dev)?;
        let types = Tensor::from_slice(&batch.token_type_ids, b * s, &dev)?;
        let e = self.dims.embedding;
        let word = self.word.index_select(&ids, 0)?.reshape((b, s, e))?;
        let token_type = self
            .token_type
            .index_select(&types, 0)?
            .reshape((b, s, e))?;
        let position = self.position.narrow(0, 0, s)?.unsqueeze(0)?;
        let x = (word + token_type)?.broadcast_add(&position)?;
        let mut x = layer_norm(&x, &self.embeddings_norm, eps)?;
        if let Some(project) = &self.project {
            x = linear(&x, project)?;
        }

        // Additive mask [B, 1, 1, S]: 0 where attended, mask_value at padded keys.
        let mask: Vec<f32> = batch
            .attention_mask
            .iter()
            .map(|&m| {
                if m == 1 {
                    0.0
                } else {
                    self.numerics.mask_value
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, s), &dev)?;

        for layer in &self.layers {
            x = self.layer(&x, layer, &mask)?;
        }

        let logits = match &self.head {
            Head::None => None,
            Head::Discriminator { dense, prediction } => {
                let h = activation(&linear(&x, dense)?, self.numerics.hidden_act)?;
                Some(linear(&h, prediction)?.squeeze(D::Minus1)?)
            }
            Head::Generator {
                dense,
                norm,
                decoder,
                bias,
            } => {
                let h = activation(&linear(&x, dense)?, self.numerics.generator_act)?;
                let h = layer_norm(&h, norm, eps)?;
                let (_, _, width) = h.dims3()?;
                let logits = h
                    .reshape((b * s, width))?
                    .matmul(&decoder.t()?)?
                    .broadcast_add(bias)?;
                Some(logits.reshape((b, s, self.dims.vocab))?)
            }
        };
        Ok(Outputs {
            last_hidden_state: x,
            logits,
        })
    }

    /// One post-LN transformer layer.
    fn layer(&self, x: &Tensor, layer: &Layer, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let heads = self.dims.heads;
        let d = h / heads;
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, s, heads, d))?.transpose(1, 2)?.contiguous()
        };
        let q = split(linear(x, &layer.query)?)?;
        let k = split(linear(x, &layer.key)?)?;
        let v = split(linear(x, &layer.value)?)?;
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, h))?;
        let attended = (linear(&context, &layer.attention_output)? + x)?;
        let attended = layer_norm(
            &attended,
            &layer.attention_norm,
            self.numerics.layer_norm_eps,
        )?;
        let inner = activation(
            &linear(&attended, &layer.intermediate)?,
            self.numerics.hidden_act,
        )?;
        let out = (linear(&inner, &layer.output)? + attended)?;
        layer_norm(&out, &layer.output_norm, self.numerics.layer_norm_eps)
    }
}

/// `x · kernel + bias` over the last axis of a `[B, S, in]` tensor.
pub(crate) fn linear(x: &Tensor, dense: &Dense) -> candle_core::Result<Tensor> {
    let (b, s, d_in) = x.dims3()?;
    let d_out = dense.kernel.dim(1)?;
    x.reshape((b * s, d_in))?
        .matmul(&dense.kernel)?
        .broadcast_add(&dense.bias)?
        .reshape((b, s, d_out))
}

/// LayerNorm over the last axis, two-pass (mean, then the variance of the centred values) in
/// f32, biased variance, ε inside the square root — as torch and TF compute it. (candle-nn's fused
/// kernel uses E[x²] − E[x]², which loses digits when the mean is large.)
pub(crate) fn layer_norm(x: &Tensor, norm: &Norm, eps: f64) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let inv_std = (var + eps)?.sqrt()?.recip()?;
    centred
        .broadcast_mul(&inv_std)?
        .broadcast_mul(&norm.gamma)?
        .broadcast_add(&norm.beta)
}

pub(crate) fn activation(x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    match act {
        Activation::GeluErf => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
        Activation::Relu => x.relu(),
    }
}

/// Turn loaded values into an f32 tensor of `shape` (used by providers).
pub(crate) fn to_f32(t: Tensor) -> Result<Tensor, VerifyError> {
    if t.dtype() == DType::F32 {
        Ok(t)
    } else {
        t.to_dtype(DType::F32).map_err(candle)
    }
}

pub(crate) fn candle_error(err: candle_core::Error) -> VerifyError {
    candle(err)
}
