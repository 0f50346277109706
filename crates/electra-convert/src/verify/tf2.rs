//! The original network of a TF2 object-based checkpoint (Model Garden `ElectraPretrainer`,
//! NVIDIA TF2 ELECTRA), with weights found by their own object names through the checkpoint's
//! object graph and used in their own layout: Model Garden's einsum kernels `[H, N, D]` /
//! `[N, D, H]` and `[N, D]` biases are reshaped here into the `[in, out]` matrices the forward
//! pass multiplies by (the einsum `abc,cde->abde` is that matmul followed by a head split).
//!
//! Like `tf.rs`, values are read only when a stage of the forward pass asks for them (positioned,
//! CRC-checked reads through the checkpoint reader) and dropped with the stage; the embedding
//! lookup reads only the batch's rows.
//!
//! Like `tf.rs`, this is written independently of the mapping tables: the object paths below
//! are a second statement of where each weight lives (where the producer names a weight twice,
//! the name used here is deliberately the *other* one, e.g. Model Garden's generator decoder is
//! read as `model/masked_lm/embedding_table`), so a wrong or swapped table row shows up as a
//! parity failure. Sizes come from the shapes; Model Garden's head count from its 3-D kernels.

use candle_core::{Device, Tensor};

use super::config::{Activation, Architecture};
use super::model::{Dense, Dims, HeadKind, Norm, Numerics, Param, Tower, Want, WeightProvider};
use super::tf::TfVariables;
use super::VerifyError;
use tf_checkpoint::ObjectGraph;

/// Which producer's names to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Producer {
    ModelGarden,
    Nvidia,
}

/// Tell the producer from the graph's root edges (independently of the mapping's detection).
pub(crate) fn producer(graph: &ObjectGraph) -> Option<Producer> {
    let roots = graph.root_edges();
    let has = |r: &str| roots.iter().any(|x| x == r);
    if has("encoder") && graph.walk("model/masked_lm").is_some() {
        Some(Producer::ModelGarden)
    } else if !has("model") && model_garden_encoder(graph).is_some() {
        // A Model Garden BertEncoder alone: an encoder checkpoint or an export_tfhub SavedModel.
        Some(Producer::ModelGarden)
    } else if graph.walk("model/discriminator/electra").is_some() {
        Some(Producer::Nvidia)
    } else {
        None
    }
}

/// The object path of a Model Garden BertEncoder standing alone, found by its own attribute
/// names: `encoder` in `tf.train.Checkpoint(encoder=…)`, the Keras model's first weighted layer
/// `layer_with_weights-0` in an `export_tfhub` SavedModel.
fn model_garden_encoder(graph: &ObjectGraph) -> Option<&'static str> {
    ["encoder", "layer_with_weights-0"].into_iter().find(|t| {
        graph.walk(&format!("{t}/_transformer_layers/0")).is_some()
            && graph.walk(&format!("{t}/_embedding_layer")).is_some()
    })
}

/// The original model and what was found.
pub(crate) struct Original<'a> {
    pub tower: Tower,
    /// Its weights, checked, not yet read.
    pub weights: Tf2Weights<'a>,
    pub scope: String,
    pub notes: Vec<String>,
    /// Model Garden's generator: the head's own activation (tanh GELU), which transformers
    /// cannot represent; the check itself runs with transformers' erf GELU in that head.
    pub original_head_act: Option<Activation>,
}

pub(crate) struct Tf2Weights<'a> {
    ckpt: &'a dyn TfVariables,
    graph: &'a ObjectGraph,
    producer: Producer,
    /// Object path of the tower (`encoder`, `model/generator/electra`, ...).
    tower: String,
    generator: bool,
}

fn missing(ckpt: &dyn TfVariables, path: &str, hint: String) -> VerifyError {
    VerifyError::MissingVariable {
        path: ckpt.path().to_path_buf(),
        name: path.to_owned(),
        hint,
    }
}

impl Tf2Weights<'_> {
    fn layer(&self, l: usize) -> String {
        match self.producer {
            Producer::ModelGarden => format!("{}/_transformer_layers/{l}", self.tower),
            Producer::Nvidia => format!("{}/encoder/layer/{l}", self.tower),
        }
    }

    /// Object path of a layer (without its `kernel`/`gamma`/... leaf), or of a table.
    fn base(&self, param: Param) -> Vec<String> {
        let t = &self.tower;
        let mg = self.producer == Producer::ModelGarden;
        let one = |s: String| vec![s];
        match param {
            Param::WordEmbeddings if mg => one(format!("{t}/_embedding_layer/embeddings")),
            Param::WordEmbeddings => vec![
                format!("{t}/embeddings/word_embeddings"),
                format!("{t}/embeddings/weight"),
            ],
            // The matrix the MLM logits multiply by, named as the head holds it.
            Param::GeneratorDecoder if mg => vec![
                "model/masked_lm/embedding_table".into(),
                format!("{t}/_embedding_layer/embeddings"),
            ],
            Param::GeneratorDecoder => vec![
                "model/generator/generator_lm_head/input_embeddings/word_embeddings".into(),
                "model/generator/generator_lm_head/input_embeddings/weight".into(),
                format!("{t}/embeddings/word_embeddings"),
                format!("{t}/embeddings/weight"),
            ],
            Param::PositionEmbeddings if mg => {
                one(format!("{t}/_position_embedding_layer/embeddings"))
            }
            Param::PositionEmbeddings => {
                one(format!("{t}/embeddings/position_embeddings/embeddings"))
            }
            Param::TokenTypeEmbeddings if mg => {
                one(format!("{t}/_type_embedding_layer/embeddings"))
            }
            Param::TokenTypeEmbeddings => {
                one(format!("{t}/embeddings/token_type_embeddings/embeddings"))
            }
            Param::EmbeddingsLayerNorm if mg => one(format!("{t}/_embedding_norm_layer")),
            Param::EmbeddingsLayerNorm => one(format!("{t}/embeddings/LayerNorm")),
            Param::EmbeddingsProject if mg => one(format!("{t}/_embedding_projection")),
            Param::EmbeddingsProject => one(format!("{t}/embeddings_project")),
            Param::Query(l) if mg => {
                one(format!("{}/_attention_layer/_query_dense", self.layer(l)))
            }
            Param::Key(l) if mg => one(format!("{}/_attention_layer/_key_dense", self.layer(l))),
            Param::Value(l) if mg => {
                one(format!("{}/_attention_layer/_value_dense", self.layer(l)))
            }
            Param::AttentionOutput(l) if mg => {
                one(format!("{}/_attention_layer/_output_dense", self.layer(l)))
            }
            Param::AttentionLayerNorm(l) if mg => {
                one(format!("{}/_attention_layer_norm", self.layer(l)))
            }
            Param::Intermediate(l) if mg => one(format!("{}/_intermediate_dense", self.layer(l))),
            Param::Output(l) if mg => one(format!("{}/_output_dense", self.layer(l))),
            Param::OutputLayerNorm(l) if mg => one(format!("{}/_output_layer_norm", self.layer(l))),
            Param::Query(l) => one(format!("{}/attention/self_attention/query", self.layer(l))),
            Param::Key(l) => one(format!("{}/attention/self_attention/key", self.layer(l))),
            Param::Value(l) => one(format!("{}/attention/self_attention/value", self.layer(l))),
            Param::AttentionOutput(l) => {
                one(format!("{}/attention/dense_output/dense", self.layer(l)))
            }
            Param::AttentionLayerNorm(l) => one(format!(
                "{}/attention/dense_output/LayerNorm",
                self.layer(l)
            )),
            Param::Intermediate(l) => one(format!("{}/intermediate/dense", self.layer(l))),
            Param::Output(l) => one(format!("{}/bert_output/dense", self.layer(l))),
            Param::OutputLayerNorm(l) => one(format!("{}/bert_output/LayerNorm", self.layer(l))),
            Param::DiscriminatorDense if mg => one("model/discriminator_projection".into()),
            Param::DiscriminatorPrediction if mg => one("model/discriminator_head".into()),
            Param::GeneratorDense if mg => one("model/masked_lm/dense".into()),
            Param::GeneratorLayerNorm if mg => one("model/masked_lm/layer_norm".into()),
            Param::GeneratorBias if mg => one("model/masked_lm/output_bias.Sbias".into()),
            Param::DiscriminatorDense => {
                one("model/discriminator/discriminator_predictions/dense".into())
            }
            Param::DiscriminatorPrediction => {
                one("model/discriminator/discriminator_predictions/dense_prediction".into())
            }
            Param::GeneratorDense => one("model/generator/generator_predictions/dense".into()),
            Param::GeneratorLayerNorm => {
                one("model/generator/generator_predictions/LayerNorm".into())
            }
            Param::GeneratorBias => one("model/generator/generator_lm_head/bias".into()),
        }
    }

    /// The checkpoint key and shape of the first candidate path that is a stored variable.
    fn find(&self, candidates: &[String]) -> Option<(String, String, Vec<usize>)> {
        candidates.iter().find_map(|path| {
            let key = self.graph.resolve(path)?;
            let shape = self.ckpt.shape(key)?;
            Some((path.clone(), key.to_owned(), shape))
        })
    }

    fn leaf(&self, param: Param, leaf: &str) -> Vec<String> {
        self.base(param)
            .into_iter()
            .map(|b| format!("{b}/{leaf}"))
            .collect()
    }

    fn require(&self, candidates: &[String]) -> Result<(String, String, Vec<usize>), VerifyError> {
        self.find(candidates).ok_or_else(|| {
            missing(
                self.ckpt,
                &candidates.join(" or "),
                format!(
                    "no such object in the checkpoint's object graph; the {} of a {} checkpoint has it",
                    if self.generator { "generator" } else { "discriminator" },
                    match self.producer {
                        Producer::ModelGarden => "Model Garden ElectraPretrainer",
                        Producer::Nvidia => "NVIDIA TF2 ELECTRA",
                    }
                ),
            )
        })
    }

    /// The key of a variable whose stored shape must be `stored`.
    fn checked(&self, candidates: &[String], stored: &[usize]) -> Result<String, VerifyError> {
        let (path, key, found) = self.require(candidates)?;
        if found != stored {
            return Err(VerifyError::VariableShape {
                path: self.ckpt.path().to_path_buf(),
                name: format!("{path} (stored as {key})"),
                expected: stored.to_vec(),
                found,
            });
        }
        Ok(key)
    }

    /// Read a variable, check its stored shape is `stored` and return it as `shape`.
    fn load(
        &self,
        candidates: &[String],
        stored: &[usize],
        shape: &[usize],
    ) -> Result<Tensor, VerifyError> {
        let key = self.checked(candidates, stored)?;
        let values = self.ckpt.read_f32(&key)?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(VerifyError::Checkpoint {
                path: self.ckpt.path().to_path_buf(),
                message: format!("{key}: {} values for shape {shape:?}", values.len()),
            });
        }
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(super::model::candle_error)
    }

    /// Model Garden's attention kernels are einsum kernels; their stored shapes.
    fn stored_dense_shapes(
        &self,
        param: Param,
        d_in: usize,
        d_out: usize,
    ) -> (Vec<usize>, Vec<usize>) {
        if self.producer == Producer::ModelGarden {
            let heads = |w: usize| -> Option<usize> {
                let (_, _, s) = self.find(&self.leaf(param, "kernel"))?;
                match s.as_slice() {
                    [_, n, _]
                        if matches!(param, Param::Query(_) | Param::Key(_) | Param::Value(_)) =>
                    {
                        Some(*n).filter(|n| *n > 0 && w % n == 0)
                    }
                    [n, _, _] if matches!(param, Param::AttentionOutput(_)) => {
                        Some(*n).filter(|n| *n > 0 && w % n == 0)
                    }
                    _ => None,
                }
            };
            match param {
                Param::Query(_) | Param::Key(_) | Param::Value(_) => {
                    if let Some(n) = heads(d_out) {
                        return (vec![d_in, n, d_out / n], vec![n, d_out / n]);
                    }
                }
                Param::AttentionOutput(_) => {
                    if let Some(n) = heads(d_in) {
                        return (vec![n, d_in / n, d_out], vec![d_out]);
                    }
                }
                _ => {}
            }
        }
        (vec![d_in, d_out], vec![d_out])
    }
}

impl WeightProvider for Tf2Weights<'_> {
    fn has(&self, param: Param) -> bool {
        self.find(&self.leaf(param, "kernel")).is_some()
    }

    fn check(&mut self, param: Param, want: Want) -> Result<(), VerifyError> {
        match want {
            Want::Table { rows, width } => {
                self.checked(&self.base(param), &[rows, width]).map(drop)
            }
            Want::Dense { d_in, d_out } => {
                let (kernel, bias) = self.stored_dense_shapes(param, d_in, d_out);
                self.checked(&self.leaf(param, "kernel"), &kernel)?;
                self.checked(&self.leaf(param, "bias"), &bias).map(drop)
            }
            Want::Norm { width } => {
                self.checked(&self.leaf(param, "gamma"), &[width])?;
                self.checked(&self.leaf(param, "beta"), &[width]).map(drop)
            }
            Want::Vector { len } => self.checked(&self.base(param), &[len]).map(drop),
        }
    }

    fn table_rows(
        &mut self,
        param: Param,
        rows: usize,
        width: usize,
        ids: &[u32],
    ) -> Result<Tensor, VerifyError> {
        let key = self.checked(&self.base(param), &[rows, width])?;
        let values = self.ckpt.read_f32_rows(&key, width, ids)?;
        if values.len() != ids.len() * width {
            return Err(VerifyError::Checkpoint {
                path: self.ckpt.path().to_path_buf(),
                message: format!(
                    "{key}: {} values for {} rows of {width}",
                    values.len(),
                    ids.len()
                ),
            });
        }
        Tensor::from_vec(values, (ids.len(), width), &Device::Cpu)
            .map_err(super::model::candle_error)
    }

    fn table(&mut self, param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError> {
        self.load(&self.base(param), &[rows, width], &[rows, width])
    }

    fn dense(&mut self, param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError> {
        let (kernel_shape, bias_shape) = self.stored_dense_shapes(param, d_in, d_out);
        Ok(Dense {
            // [H, N, D] read row-major is [H, N·D]; [N, D, H] is [N·D, H]: the einsums'
            // contractions as one matmul each.
            kernel: self.load(&self.leaf(param, "kernel"), &kernel_shape, &[d_in, d_out])?,
            bias: self.load(&self.leaf(param, "bias"), &bias_shape, &[d_out])?,
        })
    }

    fn norm(&mut self, param: Param, width: usize) -> Result<Norm, VerifyError> {
        Ok(Norm {
            gamma: self.load(&self.leaf(param, "gamma"), &[width], &[width])?,
            beta: self.load(&self.leaf(param, "beta"), &[width], &[width])?,
        })
    }

    fn vector(&mut self, param: Param, len: usize) -> Result<Tensor, VerifyError> {
        self.load(&self.base(param), &[len], &[len])
    }
}

fn two(w: &Tf2Weights<'_>, candidates: &[String]) -> Result<[usize; 2], VerifyError> {
    let (path, _, shape) = w.require(candidates)?;
    match shape.as_slice() {
        [a, b] => Ok([*a, *b]),
        _ => Err(VerifyError::Checkpoint {
            path: w.ckpt.path().to_path_buf(),
            message: format!("{path} has shape {shape:?}, expected 2 dimensions"),
        }),
    }
}

/// Build the original tower + head for `arch` from a TF2 checkpoint.
pub(crate) fn load_original<'a>(
    ckpt: &'a dyn TfVariables,
    graph: &'a ObjectGraph,
    producer: Producer,
    arch: Architecture,
    config_heads: usize,
) -> Result<Original<'a>, VerifyError> {
    let generator = arch == Architecture::MaskedLm;
    let tower = match (producer, generator) {
        (Producer::ModelGarden, false) => model_garden_encoder(graph).unwrap_or("encoder"),
        (Producer::ModelGarden, true) => "model/generator_network",
        (Producer::Nvidia, false) => "model/discriminator/electra",
        (Producer::Nvidia, true) => "model/generator/electra",
    };
    let mut weights = Tf2Weights {
        ckpt,
        graph,
        producer,
        tower: tower.to_owned(),
        generator,
    };
    let [vocab, embedding] = two(&weights, &weights.base(Param::WordEmbeddings))?;
    let [max_positions, _] = two(&weights, &weights.base(Param::PositionEmbeddings))?;
    let [type_vocab, _] = two(&weights, &weights.base(Param::TokenTypeEmbeddings))?;
    let project = weights.has(Param::EmbeddingsProject);
    let hidden = if project {
        two(&weights, &weights.leaf(Param::EmbeddingsProject, "kernel"))?[1]
    } else {
        embedding
    };
    let mut layers = 0;
    while weights.has(Param::Query(layers)) {
        layers += 1;
    }
    let intermediate = if layers > 0 {
        two(&weights, &weights.leaf(Param::Intermediate(0), "kernel"))?[1]
    } else {
        0
    };
    let mut notes = Vec::new();
    let heads = match producer {
        Producer::ModelGarden if layers > 0 => {
            let (path, _, shape) = weights.require(&weights.leaf(Param::Query(0), "kernel"))?;
            match shape.as_slice() {
                [_, n, _] => {
                    if *n != config_heads {
                        notes.push(format!(
                            "the checkpoint's attention kernels have {n} heads ({path}), config.json says {config_heads}"
                        ));
                    }
                    *n
                }
                _ => {
                    return Err(VerifyError::Checkpoint {
                        path: ckpt.path().to_path_buf(),
                        message: format!("{path} has shape {shape:?}, expected [H, N, D]"),
                    })
                }
            }
        }
        _ => config_heads,
    };
    if heads == 0 || hidden % heads != 0 {
        return Err(VerifyError::Checkpoint {
            path: ckpt.path().to_path_buf(),
            message: format!(
                "the {tower} tower's hidden size {hidden} is not divisible by {heads} attention heads"
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
    let (numerics, original_head_act) = match producer {
        Producer::ModelGarden => {
            // tf_utils.get_activation("gelu") is the tanh approximation everywhere, ε = 1e-12,
            // the Keras softmax mask adds -1e9. The generator head runs with transformers' exact
            // GELU for the verdict; its own tanh GELU is measured separately.
            let mut n = Numerics::tensorflow_original();
            n.hidden_act = Activation::GeluTanh;
            n.generator_act = Activation::GeluErf;
            n.mask_value = -1e9;
            (n, generator.then_some(Activation::GeluTanh))
        }
        Producer::Nvidia => (Numerics::tensorflow_original(), None),
    };
    let model = Tower::new(dims, head, numerics);
    model.check_weights(&mut weights)?;
    Ok(Original {
        tower: model,
        weights,
        scope: tower.to_owned(),
        notes,
        original_head_act,
    })
}
