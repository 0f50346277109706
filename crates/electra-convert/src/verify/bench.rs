//! A randomly initialised network for timing the forward pass (`benches/forward.rs`).
//! Not used by the checks themselves.

use candle_core::{Device, Tensor};

use super::model::{
    Batch, Dense, Dims, HeadKind, Norm, Numerics, Param, Resident, Tower, Want, WeightProvider,
};
use super::{config::Activation, VerifyError, XorShift};

/// Sizes of a benchmark model (ELECTRA-base: 30522 / 768 / 768 / 3072 / 12 layers / 12 heads).
#[derive(Debug, Clone, Copy)]
pub struct BenchShape {
    pub vocab: usize,
    pub embedding: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub max_positions: usize,
}

impl BenchShape {
    pub const ELECTRA_BASE: BenchShape = BenchShape {
        vocab: 30522,
        embedding: 768,
        hidden: 768,
        intermediate: 3072,
        layers: 12,
        heads: 12,
        max_positions: 512,
    };
}

struct RandomWeights(XorShift);

impl RandomWeights {
    /// Uniform values with standard deviation 0.02 (ELECTRA's initializer_range).
    fn tensor(&mut self, shape: &[usize]) -> Result<Tensor, VerifyError> {
        let n: usize = shape.iter().product();
        let half_width = 0.02 * 3f32.sqrt();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                let u = (self.0.next() >> 40) as f32 / (1u64 << 24) as f32;
                (2.0 * u - 1.0) * half_width
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(super::model::candle_error)
    }

    fn filled(&self, len: usize, value: f32) -> Result<Tensor, VerifyError> {
        Tensor::from_vec(vec![value; len], len, &Device::Cpu).map_err(super::model::candle_error)
    }
}

impl WeightProvider for RandomWeights {
    fn has(&self, _param: Param) -> bool {
        true
    }

    fn check(&mut self, _param: Param, _want: Want) -> Result<(), VerifyError> {
        Ok(())
    }

    fn table(&mut self, _param: Param, rows: usize, width: usize) -> Result<Tensor, VerifyError> {
        self.tensor(&[rows, width])
    }

    fn dense(&mut self, _param: Param, d_in: usize, d_out: usize) -> Result<Dense, VerifyError> {
        Ok(Dense {
            kernel: self.tensor(&[d_in, d_out])?,
            bias: self.tensor(&[d_out])?,
        })
    }

    fn norm(&mut self, _param: Param, width: usize) -> Result<Norm, VerifyError> {
        Ok(Norm {
            gamma: self.filled(width, 1.0)?,
            beta: self.filled(width, 0.0)?,
        })
    }

    fn vector(&mut self, _param: Param, len: usize) -> Result<Tensor, VerifyError> {
        self.tensor(&[len])
    }
}

/// An `ElectraForPreTraining`-shaped network with random weights, transformers numerics, every
/// weight resident (the benchmark times the arithmetic, not the reading).
pub struct BenchModel {
    tower: Tower,
    weights: Resident,
}

impl BenchModel {
    pub fn new(shape: BenchShape, seed: u64) -> Result<BenchModel, VerifyError> {
        let dims = Dims {
            vocab: shape.vocab,
            embedding: shape.embedding,
            hidden: shape.hidden,
            intermediate: shape.intermediate,
            layers: shape.layers,
            heads: shape.heads,
            max_positions: shape.max_positions,
            type_vocab: 2,
            project: shape.embedding != shape.hidden,
        };
        let tower = Tower::new(
            dims,
            HeadKind::Discriminator,
            Numerics::transformers(1e-12, Activation::GeluErf),
        );
        let weights = Resident::load(&tower, &mut RandomWeights(XorShift::new(seed)))?;
        Ok(BenchModel { tower, weights })
    }

    /// Seeded inputs of `[batch, seq]`: the last row's final quarter padded, two segments.
    pub fn batch(&self, batch: usize, seq: usize, seed: u64) -> Batch {
        let mut rng = XorShift::new(seed);
        let dims = self.tower.dims();
        let mut b = Batch {
            batch,
            seq,
            input_ids: Vec::new(),
            attention_mask: Vec::new(),
            token_type_ids: Vec::new(),
        };
        for row in 0..batch {
            for pos in 0..seq {
                let padded = row + 1 == batch && pos >= seq - seq / 4;
                b.input_ids.push(if padded {
                    0
                } else {
                    rng.below(dims.vocab) as u32
                });
                b.attention_mask.push(u8::from(!padded));
                b.token_type_ids.push(u32::from(pos >= seq / 2));
            }
        }
        b
    }

    /// One forward pass; returns the discriminator logits `[batch, seq]`, row-major.
    pub fn forward(&self, batch: &Batch) -> Result<Vec<f32>, VerifyError> {
        self.tower
            .check_batch(batch)
            .map_err(|message| VerifyError::Compute { message })?;
        let out = self.tower.forward(&mut &self.weights, batch)?;
        let logits = out.logits.ok_or_else(|| VerifyError::Compute {
            message: "no logits".into(),
        })?;
        logits
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(super::model::candle_error)
    }
}
