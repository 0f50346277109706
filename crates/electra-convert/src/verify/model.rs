//! The ELECTRA forward pass in candle, run stage by stage so that only one stage's weights are
//! resident at a time, whatever the depth of the model.
//!
//! The network is described by *logical* parameters (`Param`); a `WeightProvider` turns each
//! into a tensor in the layout the math wants (dense kernels as `[in, out]`, so a layer is
//! `x · K + b`). Providers: the HuggingFace one (`hf.rs`, safetensors names, torch `[out, in]`
//! weights), the TensorFlow one (`tf.rs`, checkpoint names, `[in, out]` kernels), the TF2 one
//! (`tf2.rs`, Model Garden / NVIDIA object names through the object graph, einsum kernels
//! reshaped) and the random one of the benchmark (`bench.rs`). Supporting another source layout
//! means writing one more provider: it names each `Param` in its own spelling, checks shapes
//! without reading values (`WeightProvider::check`) and reads values only when asked. Everything numeric — embeddings, LayerNorm, attention, activations, heads —
//! lives here once, so the checks differ only in weight naming and layout.
//!
//! A `Tower` holds sizes and numerics but no weights. Its forward pass has three kinds of
//! stage — the embeddings (`Tower::embed`), each encoder layer (`Tower::layer`) and the head
//! (`Tower::head`) — and each stage fetches its own weights from the provider
//! (`EmbeddingWeights`, `LayerWeights`, `HeadWeights`), applies them to the running hidden
//! states and drops them before the next stage is fetched. `forward_pair` runs two towers (the
//! converted model and the original) on two threads, each stage by stage, so the parity check
//! holds one stage per side at a time.

use std::collections::HashMap;

use candle_core::{Device, Tensor, D};

use super::config::{Activation, Architecture};
use super::VerifyError;

/// One parameter of the network, named by its role rather than by any file's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// What the network asks a provider for, in the network's terms (a provider maps it onto its
/// own names and layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A `[rows, width]` table (embeddings, the MLM decoder).
    Table { rows: usize, width: usize },
    /// A dense layer `d_in → d_out` (kernel and bias).
    Dense { d_in: usize, d_out: usize },
    /// A LayerNorm over `width` features (scale and shift).
    Norm { width: usize },
    /// A plain vector of `len` values.
    Vector { len: usize },
}

/// A dense layer as `x · kernel + bias`, kernel `[in, out]`.
#[derive(Clone)]
pub(crate) struct Dense {
    pub kernel: Tensor,
    pub bias: Tensor,
}

/// LayerNorm's scale and shift.
#[derive(Clone)]
pub(crate) struct Norm {
    pub gamma: Tensor,
    pub beta: Tensor,
}

/// Source of weights. Every method gets the shape the network expects; a provider must check the
/// stored tensor against it and report mismatches by the stored name. Values are read only by
/// the fetching methods (`table`, `table_rows`, `dense`, `norm`, `vector`), each time they are
/// called: a provider does not cache, the caller drops what it fetched when the stage is done.
pub(crate) trait WeightProvider {
    /// Whether an optional parameter (only `EmbeddingsProject`) is present.
    fn has(&self, param: Param) -> bool;
    /// Check that `param` is stored with the shape `want` implies (and a usable dtype), without
    /// reading its values. [`Tower::check_weights`] calls this for every parameter before the
    /// first stage runs, so a broken file is reported before any arithmetic.
    fn check(&mut self, param: Param, want: Want) -> Result<(), VerifyError>;
    /// A `[rows, width]` table (embeddings, the MLM decoder).
    fn table(&mut self, param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError>;
    /// Rows `ids` of a `[rows, width]` table, as `[ids.len(), width]` (the embedding lookup).
    /// The default fetches the whole table and gathers; a provider that can read single rows
    /// should, so that the lookup does not hold the whole vocabulary.
    fn table_rows(
        &mut self,
        param: Param,
        rows: usize,
        width: usize,
        ids: &[u32],
    ) -> Result<Tensor, VerifyError> {
        let table = self.table(param, rows, width)?;
        gather_rows(&table, ids)
    }
    /// A dense layer `in → out`, returned with its kernel as `[in, out]`.
    fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError>;
    /// A LayerNorm over `width` features.
    fn norm(&mut self, param: Param, width: usize) -> Result<Norm, VerifyError>;
    /// A plain vector of `len` values.
    fn vector(&mut self, param: Param, len: usize) -> Result<Tensor, VerifyError>;
}

/// `table[ids]` for a resident table, refusing ids outside it (never a panic).
pub(crate) fn gather_rows(table: &Tensor, ids: &[u32]) -> Result<Tensor, VerifyError> {
    let rows = table.dim(0).map_err(candle)?;
    check_ids(ids, rows)?;
    let ids = Tensor::from_slice(ids, ids.len(), &Device::Cpu).map_err(candle)?;
    table.index_select(&ids, 0).map_err(candle)
}

/// Refuse a lookup of an id outside a table of `rows` rows.
pub(crate) fn check_ids(ids: &[u32], rows: usize) -> Result<(), VerifyError> {
    match ids.iter().find(|&&id| id as usize >= rows) {
        Some(id) => Err(VerifyError::Compute {
            message: format!("token id {id} is outside the embedding table of {rows} rows"),
        }),
        None => Ok(()),
    }
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

impl HeadKind {
    /// The head a transformers class puts on the tower.
    pub(crate) fn of(arch: Architecture) -> HeadKind {
        match arch {
            Architecture::PreTraining => HeadKind::Discriminator,
            Architecture::MaskedLm => HeadKind::Generator,
            Architecture::Model => HeadKind::None,
        }
    }
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
    pub(crate) fn transformers(layer_norm_eps: f64, hidden_act: Activation) -> Numerics {
        Numerics {
            layer_norm_eps,
            hidden_act,
            generator_act: Activation::GeluErf,
            mask_value: f32::MIN,
        }
    }

    /// google-research/electra: ε = 1e-12 hard-coded in `tf.contrib.layers.layer_norm`, the
    /// exact-erf GELU of `modeling.py` everywhere, −10000 at padded positions.
    pub(crate) fn tensorflow_original() -> Numerics {
        Numerics {
            layer_norm_eps: 1e-12,
            hidden_act: Activation::GeluErf,
            generator_act: Activation::GeluErf,
            mask_value: -10000.0,
        }
    }
}

/// The weights of the embedding stage for one batch: the looked-up word rows, not the table.
pub(crate) struct EmbeddingWeights {
    /// `[B·S, E]`: the word embedding of every input token.
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: Norm,
    project: Option<Dense>,
}

/// The weights of one encoder layer.
pub(crate) struct LayerWeights {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_output: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// The weights of the head.
pub(crate) enum HeadWeights {
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
    /// Number of sequences.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u8>,
    /// Segment ids (0 or 1).
    pub token_type_ids: Vec<u32>,
}

/// What a forward pass returns (both `f32` tensors on the CPU).
pub(crate) struct Outputs {
    /// `[B, S, H]`: the tower's output (`last_hidden_state`).
    pub last_hidden_state: Tensor,
    /// `[B, S]` (discriminator) or `[B, S, V]` (generator); `None` for the bare encoder.
    pub logits: Option<Tensor>,
}

/// The state between two stages: the hidden states so far and the additive attention mask.
#[derive(Clone)]
pub(crate) struct Running {
    /// `[B, S, H]` (`[B, S, E]` never escapes the embedding stage: the projection is part of it).
    x: Tensor,
    /// `[B, 1, 1, S]`: 0 where attended, the tower's mask value at padded keys.
    mask: Tensor,
}

/// An ELECTRA tower with an optional head: sizes and numerics, no weights.
#[derive(Debug, Clone)]
pub(crate) struct Tower {
    dims: Dims,
    head: HeadKind,
    numerics: Numerics,
}

fn candle(err: candle_core::Error) -> VerifyError {
    VerifyError::Compute {
        message: err.to_string(),
    }
}

impl Tower {
    pub(crate) fn new(dims: Dims, head: HeadKind, numerics: Numerics) -> Tower {
        Tower {
            dims,
            head,
            numerics,
        }
    }

    pub(crate) fn dims(&self) -> &Dims {
        &self.dims
    }

    /// The same tower with another generator-head activation (to measure what a head that
    /// transformers cannot represent computes).
    pub(crate) fn with_generator_activation(&self, act: Activation) -> Tower {
        let mut t = self.clone();
        t.numerics.generator_act = act;
        t
    }

    /// Every parameter the forward pass fetches, with the shape it asks for, in fetch order.
    pub(crate) fn wants(&self) -> Vec<(Param, Want)> {
        let d = &self.dims;
        let (e, h, i) = (d.embedding, d.hidden, d.intermediate);
        let table = |rows, width| Want::Table { rows, width };
        let dense = |d_in, d_out| Want::Dense { d_in, d_out };
        let norm = |width| Want::Norm { width };
        let mut wants = vec![
            (Param::WordEmbeddings, table(d.vocab, e)),
            (Param::PositionEmbeddings, table(d.max_positions, e)),
            (Param::TokenTypeEmbeddings, table(d.type_vocab, e)),
            (Param::EmbeddingsLayerNorm, norm(e)),
        ];
        if d.project {
            wants.push((Param::EmbeddingsProject, dense(e, h)));
        }
        for l in 0..d.layers {
            wants.extend([
                (Param::Query(l), dense(h, h)),
                (Param::Key(l), dense(h, h)),
                (Param::Value(l), dense(h, h)),
                (Param::AttentionOutput(l), dense(h, h)),
                (Param::AttentionLayerNorm(l), norm(h)),
                (Param::Intermediate(l), dense(h, i)),
                (Param::Output(l), dense(i, h)),
                (Param::OutputLayerNorm(l), norm(h)),
            ]);
        }
        match self.head {
            HeadKind::None => {}
            HeadKind::Discriminator => wants.extend([
                (Param::DiscriminatorDense, dense(h, h)),
                (Param::DiscriminatorPrediction, dense(h, 1)),
            ]),
            HeadKind::Generator => wants.extend([
                (Param::GeneratorDense, dense(h, e)),
                (Param::GeneratorLayerNorm, norm(e)),
                (Param::GeneratorDecoder, table(d.vocab, e)),
                (Param::GeneratorBias, Want::Vector { len: d.vocab }),
            ]),
        }
        wants
    }

    /// Check every parameter's presence and shape with the provider, reading no values.
    pub(crate) fn check_weights(
        &self,
        weights: &mut dyn WeightProvider,
    ) -> Result<(), VerifyError> {
        for (param, want) in self.wants() {
            weights.check(param, want)?;
        }
        Ok(())
    }

    fn fetch_embeddings(
        &self,
        w: &mut dyn WeightProvider,
        ids: &[u32],
    ) -> Result<EmbeddingWeights, VerifyError> {
        let d = &self.dims;
        let e = d.embedding;
        Ok(EmbeddingWeights {
            word: w.table_rows(Param::WordEmbeddings, d.vocab, e, ids)?,
            position: w.table(Param::PositionEmbeddings, d.max_positions, e)?,
            token_type: w.table(Param::TokenTypeEmbeddings, d.type_vocab, e)?,
            norm: w.norm(Param::EmbeddingsLayerNorm, e)?,
            project: if d.project {
                Some(w.dense(Param::EmbeddingsProject, e, d.hidden)?)
            } else {
                None
            },
        })
    }

    fn fetch_layer(
        &self,
        w: &mut dyn WeightProvider,
        l: usize,
    ) -> Result<LayerWeights, VerifyError> {
        let (h, i) = (self.dims.hidden, self.dims.intermediate);
        Ok(LayerWeights {
            query: w.dense(Param::Query(l), h, h)?,
            key: w.dense(Param::Key(l), h, h)?,
            value: w.dense(Param::Value(l), h, h)?,
            attention_output: w.dense(Param::AttentionOutput(l), h, h)?,
            attention_norm: w.norm(Param::AttentionLayerNorm(l), h)?,
            intermediate: w.dense(Param::Intermediate(l), h, i)?,
            output: w.dense(Param::Output(l), i, h)?,
            output_norm: w.norm(Param::OutputLayerNorm(l), h)?,
        })
    }

    fn fetch_head(&self, w: &mut dyn WeightProvider) -> Result<HeadWeights, VerifyError> {
        let d = &self.dims;
        let (e, h) = (d.embedding, d.hidden);
        Ok(match self.head {
            HeadKind::None => HeadWeights::None,
            HeadKind::Discriminator => HeadWeights::Discriminator {
                dense: w.dense(Param::DiscriminatorDense, h, h)?,
                prediction: w.dense(Param::DiscriminatorPrediction, h, 1)?,
            },
            HeadKind::Generator => HeadWeights::Generator {
                dense: w.dense(Param::GeneratorDense, h, e)?,
                norm: w.norm(Param::GeneratorLayerNorm, e)?,
                decoder: w.table(Param::GeneratorDecoder, d.vocab, e)?,
                bias: w.vector(Param::GeneratorBias, d.vocab)?,
            },
        })
    }

    /// Check that `batch` fits this model (ids in range, sequence not longer than the position table).
    pub(crate) fn check_batch(&self, batch: &Batch) -> Result<(), String> {
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

    /// The whole forward pass on `batch` (already checked with [`Tower::check_batch`]), one
    /// stage's weights resident at a time.
    pub(crate) fn forward(
        &self,
        weights: &mut dyn WeightProvider,
        batch: &Batch,
    ) -> Result<Outputs, VerifyError> {
        let mut running = self.embed(weights, batch)?;
        for l in 0..self.dims.layers {
            running = self.layer(weights, l, running)?;
        }
        self.head(weights, running)
    }

    /// Stage 1: fetch the embedding weights, embed `batch`, drop them.
    pub(crate) fn embed(
        &self,
        weights: &mut dyn WeightProvider,
        batch: &Batch,
    ) -> Result<Running, VerifyError> {
        let fetched = self.fetch_embeddings(weights, &batch.input_ids)?;
        self.apply_embeddings(&fetched, batch).map_err(candle)
    }

    /// Stage 2 + `l`: fetch layer `l`'s weights, apply the layer, drop them.
    pub(crate) fn layer(
        &self,
        weights: &mut dyn WeightProvider,
        l: usize,
        running: Running,
    ) -> Result<Running, VerifyError> {
        let fetched = self.fetch_layer(weights, l)?;
        let x = self
            .apply_layer(&running.x, &fetched, &running.mask)
            .map_err(candle)?;
        Ok(Running {
            x,
            mask: running.mask,
        })
    }

    /// Last stage: fetch the head's weights, apply the head, drop them.
    pub(crate) fn head(
        &self,
        weights: &mut dyn WeightProvider,
        running: Running,
    ) -> Result<Outputs, VerifyError> {
        let fetched = self.fetch_head(weights)?;
        let logits = self.apply_head(&running.x, &fetched).map_err(candle)?;
        Ok(Outputs {
            last_hidden_state: running.x,
            logits,
        })
    }

    fn apply_embeddings(
        &self,
        w: &EmbeddingWeights,
        batch: &Batch,
    ) -> candle_core::Result<Running> {
        let dev = Device::Cpu;
        let (b, s) = (batch.batch, batch.seq);
        let eps = self.numerics.layer_norm_eps;

        // Embeddings: LN(word + position + token_type), then the optional projection.
        let types = Tensor::from_slice(&batch.token_type_ids, b * s, &dev)?;
        let e = self.dims.embedding;
        let word = w.word.reshape((b, s, e))?;
        let token_type = w.token_type.index_select(&types, 0)?.reshape((b, s, e))?;
        let position = w.position.narrow(0, 0, s)?.unsqueeze(0)?;
        let x = (word + token_type)?.broadcast_add(&position)?;
        let mut x = layer_norm(&x, &w.norm, eps)?;
        if let Some(project) = &w.project {
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
        Ok(Running { x, mask })
    }

    /// One post-LN transformer layer.
    fn apply_layer(
        &self,
        x: &Tensor,
        layer: &LayerWeights,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
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

    fn apply_head(&self, x: &Tensor, head: &HeadWeights) -> candle_core::Result<Option<Tensor>> {
        let (b, s, _) = x.dims3()?;
        Ok(match head {
            HeadWeights::None => None,
            HeadWeights::Discriminator { dense, prediction } => {
                let h = activation(&linear(x, dense)?, self.numerics.hidden_act)?;
                Some(linear(&h, prediction)?.squeeze(D::Minus1)?)
            }
            HeadWeights::Generator {
                dense,
                norm,
                decoder,
                bias,
            } => {
                let h = activation(&linear(x, dense)?, self.numerics.generator_act)?;
                let h = layer_norm(&h, norm, self.numerics.layer_norm_eps)?;
                let (_, _, width) = h.dims3()?;
                let logits = h
                    .reshape((b * s, width))?
                    .matmul(&decoder.t()?)?
                    .broadcast_add(bias)?;
                Some(logits.reshape((b, s, self.dims.vocab))?)
            }
        })
    }
}

/// A provider that can be handed to another thread.
pub(crate) type SendProvider<'a> = &'a mut (dyn WeightProvider + Send);

/// Run two towers on the same batch, the second on a thread of its own, so that each side's
/// reading, checking and rearranging of weights (single-threaded per side) runs beside the
/// other's instead of after it. Each side still fetches one stage at a time, so two stages are
/// resident, one per side. The arithmetic is exactly that of two [`Tower::forward`] calls. The
/// towers may differ in depth (a structure mismatch is reported by the caller, not here). When
/// both sides fail, the first side's error is the one returned.
pub(crate) fn forward_pair(
    first: (&Tower, SendProvider<'_>),
    second: (&Tower, SendProvider<'_>),
    batch: &Batch,
) -> Result<[Outputs; 2], VerifyError> {
    let (ta, wa) = first;
    let (tb, wb) = second;
    let (a, b) = beside(|| ta.forward(wa, batch), || tb.forward(wb, batch));
    Ok([a?, b?])
}

/// [`forward_pair`], and also the second tower's head as `alternative` computes it, on the same
/// encoder output (the head's weights are fetched once more; the encoder is not rerun).
pub(crate) fn forward_pair_with_alternative_head(
    first: (&Tower, SendProvider<'_>),
    second: (&Tower, SendProvider<'_>),
    alternative: &Tower,
    batch: &Batch,
) -> Result<[Outputs; 3], VerifyError> {
    let (ta, wa) = first;
    let (tb, wb) = second;
    let (a, b) = beside(
        || ta.forward(wa, batch),
        || {
            let mut running = tb.embed(wb, batch)?;
            for l in 0..tb.dims.layers {
                running = tb.layer(wb, l, running)?;
            }
            let alt = alternative.head(wb, running.clone())?;
            Ok([tb.head(wb, running)?, alt])
        },
    );
    let [b, alt] = b?;
    Ok([a?, b, alt])
}

/// `(first(), second())`, with `second` on a scoped thread of its own. A panic on that thread is
/// resumed on this one.
fn beside<A, B: Send>(first: impl FnOnce() -> A, second: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(second);
        let a = first();
        let b = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

/// What a provider hands out for one [`Want`].
#[derive(Clone)]
enum Fetched {
    Table(Tensor),
    Dense(Dense),
    Norm(Norm),
    Vector(Tensor),
}

/// Every weight of a tower held in memory (for the forward-pass benchmark, which times the
/// arithmetic, not the reading). `&Resident` is a provider; fetching clones a handle, not data.
pub(crate) struct Resident {
    fetched: HashMap<Param, Fetched>,
}

impl Resident {
    /// Fetch every parameter of `tower` from `source` once.
    pub(crate) fn load(
        tower: &Tower,
        source: &mut dyn WeightProvider,
    ) -> Result<Resident, VerifyError> {
        let mut fetched = HashMap::new();
        for (param, want) in tower.wants() {
            let value = match want {
                Want::Table { rows, width } => Fetched::Table(source.table(param, rows, width)?),
                Want::Dense { d_in, d_out } => Fetched::Dense(source.dense(param, d_in, d_out)?),
                Want::Norm { width } => Fetched::Norm(source.norm(param, width)?),
                Want::Vector { len } => Fetched::Vector(source.vector(param, len)?),
            };
            fetched.insert(param, value);
        }
        Ok(Resident { fetched })
    }

    fn get(&self, param: Param) -> Result<&Fetched, VerifyError> {
        self.fetched
            .get(&param)
            .ok_or_else(|| VerifyError::Compute {
                message: format!("{param:?} was not loaded"),
            })
    }
}

fn wrong_kind(param: Param) -> VerifyError {
    VerifyError::Compute {
        message: format!("{param:?} was loaded as another kind of parameter"),
    }
}

impl WeightProvider for &Resident {
    fn has(&self, param: Param) -> bool {
        self.fetched.contains_key(&param)
    }

    fn check(&mut self, param: Param, _want: Want) -> Result<(), VerifyError> {
        self.get(param).map(|_| ())
    }

    fn table(&mut self, param: Param, _rows: usize, _width: usize) -> Result<Tensor, VerifyError> {
        match self.get(param)? {
            Fetched::Table(t) => Ok(t.clone()),
            _ => Err(wrong_kind(param)),
        }
    }

    fn dense(&mut self, param: Param, _d_in: usize, _d_out: usize) -> Result<Dense, VerifyError> {
        match self.get(param)? {
            Fetched::Dense(d) => Ok(d.clone()),
            _ => Err(wrong_kind(param)),
        }
    }

    fn norm(&mut self, param: Param, _width: usize) -> Result<Norm, VerifyError> {
        match self.get(param)? {
            Fetched::Norm(n) => Ok(n.clone()),
            _ => Err(wrong_kind(param)),
        }
    }

    fn vector(&mut self, param: Param, _len: usize) -> Result<Tensor, VerifyError> {
        match self.get(param)? {
            Fetched::Vector(v) => Ok(v.clone()),
            _ => Err(wrong_kind(param)),
        }
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

pub(crate) fn candle_error(err: candle_core::Error) -> VerifyError {
    candle(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constant weights that record every request, to pin what the stages fetch.
    #[derive(Default)]
    struct Recording {
        requests: Vec<(Param, Want)>,
    }

    fn filled(shape: &[usize], value: f32) -> Result<Tensor, VerifyError> {
        Tensor::full(value, shape, &Device::Cpu).map_err(candle)
    }

    impl WeightProvider for Recording {
        fn has(&self, _param: Param) -> bool {
            true
        }
        fn check(&mut self, _param: Param, _want: Want) -> Result<(), VerifyError> {
            Ok(())
        }
        fn table(
            &mut self,
            param: Param,
            rows: usize,
            width: usize,
        ) -> Result<Tensor, VerifyError> {
            self.requests.push((param, Want::Table { rows, width }));
            filled(&[rows, width], 0.01)
        }
        fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError> {
            self.requests.push((param, Want::Dense { d_in, d_out }));
            Ok(Dense {
                kernel: filled(&[d_in, d_out], 0.02)?,
                bias: filled(&[d_out], 0.0)?,
            })
        }
        fn norm(&mut self, param: Param, width: usize) -> Result<Norm, VerifyError> {
            self.requests.push((param, Want::Norm { width }));
            Ok(Norm {
                gamma: filled(&[width], 1.0)?,
                beta: filled(&[width], 0.0)?,
            })
        }
        fn vector(&mut self, param: Param, len: usize) -> Result<Tensor, VerifyError> {
            self.requests.push((param, Want::Vector { len }));
            filled(&[len], 0.0)
        }
    }

    fn dims(project: bool) -> Dims {
        Dims {
            vocab: 11,
            embedding: 4,
            hidden: if project { 6 } else { 4 },
            intermediate: 5,
            layers: 3,
            heads: 2,
            max_positions: 8,
            type_vocab: 2,
            project,
        }
    }

    fn batch() -> Batch {
        Batch {
            batch: 2,
            seq: 3,
            input_ids: vec![1, 2, 3, 10, 0, 0],
            attention_mask: vec![1, 1, 1, 1, 0, 0],
            token_type_ids: vec![0, 0, 1, 0, 1, 1],
        }
    }

    #[test]
    fn the_stages_fetch_exactly_what_check_weights_checks() {
        for head in [HeadKind::None, HeadKind::Discriminator, HeadKind::Generator] {
            for project in [false, true] {
                let tower = Tower::new(
                    dims(project),
                    head,
                    Numerics::transformers(1e-12, Activation::GeluErf),
                );
                let mut weights = Recording::default();
                let out = tower.forward(&mut weights, &batch()).unwrap();
                // table_rows' default goes through table(): the same request.
                assert_eq!(
                    weights.requests,
                    tower.wants(),
                    "{head:?} project={project}"
                );
                let want_logits = match head {
                    HeadKind::None => None,
                    HeadKind::Discriminator => Some(vec![2, 3]),
                    HeadKind::Generator => Some(vec![2, 3, 11]),
                };
                assert_eq!(out.logits.map(|t| t.dims().to_vec()), want_logits);
                assert_eq!(out.last_hidden_state.dims(), &[2, 3, dims(project).hidden]);
            }
        }
    }

    #[test]
    fn resident_weights_give_the_streamed_result() {
        let tower = Tower::new(
            dims(true),
            HeadKind::Generator,
            Numerics::transformers(1e-12, Activation::GeluErf),
        );
        let streamed = tower.forward(&mut Recording::default(), &batch()).unwrap();
        let resident = Resident::load(&tower, &mut Recording::default()).unwrap();
        let again = tower.forward(&mut &resident, &batch()).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(
            values(streamed.logits.as_ref().unwrap()),
            values(again.logits.as_ref().unwrap())
        );
    }

    #[test]
    fn out_of_range_ids_are_an_error_not_a_panic() {
        let table = filled(&[3, 2], 1.0).unwrap();
        assert!(gather_rows(&table, &[0, 2]).is_ok());
        let err = gather_rows(&table, &[1, 3]).unwrap_err().to_string();
        assert!(
            err.contains("token id 3") && err.contains("3 rows"),
            "{err}"
        );
    }
}
