//! `verify --text`: run a converted model on a person's sentences and show what it does with them,
//! tokenized by the model directory's own tokenizer.
//!
//! * `ElectraForPreTraining` (discriminator): per token, the probability that it was replaced
//!   (sigmoid of the logit); tokens above 0.5 are marked.
//! * `ElectraForMaskedLM` (generator): at each `[MASK]`, the five most probable tokens; with no
//!   `[MASK]` in the text, the most probable token at every position and the share of positions
//!   where that is the input token.
//! * `ElectraModel` (encoder): the shape and L2 norm of every token's hidden state.
//!
//! Each text runs on its own (batch 1, no padding), with `token_type_ids` from the tokenizer.
//! Positions count tokens from `[CLS]` = 0. Probabilities are computed in f64 from the model's
//! f32 logits (softmax with the maximum subtracted first).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::Architecture;
use super::model::Batch;
use super::{load_converted, VerifyError};

/// How many predictions a `[MASK]` gets.
pub(crate) const TOP_K: usize = 5;

/// A token is marked as replaced above this probability.
pub(crate) const REPLACED_THRESHOLD: f64 = 0.5;

/// What `verify --text` found, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct TextReport {
    /// transformers class of the directory.
    pub model: String,
    /// One result per text, in the order given.
    pub texts: Vec<TextResult>,
    /// Where the tokenizer came from (`tokenizer.json` or `vocab.txt`), for the table.
    #[serde(skip)]
    pub tokenizer: PathBuf,
    /// The model directory.
    #[serde(skip)]
    pub model_dir: PathBuf,
    /// Things to tell the user on stderr (truncated texts).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One text and what the model made of it.
#[derive(Debug, Clone, Serialize)]
pub struct TextResult {
    /// The text as given.
    pub text: String,
    /// Every token the model saw, `[CLS]` and `[SEP]` included.
    pub tokens: Vec<TokenResult>,
    /// Generator, text with `[MASK]`: the predictions at each mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masks: Option<Vec<MaskResult>>,
    /// Generator, text without `[MASK]`: how many positions the top-1 prediction reproduces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<Reconstruction>,
    /// The token count before truncation to `max_position_embeddings`, when the text was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_from: Option<usize>,
}

/// One token; which fields are present depends on the model class.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResult {
    /// The token's string.
    pub token: String,
    /// Its id in the vocabulary.
    pub id: u32,
    /// Discriminator: sigmoid of the logit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_probability: Option<f64>,
    /// Generator without `[MASK]`: the most probable token at this position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<Prediction>,
    /// Encoder: shape of the hidden state (`[hidden_size]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// Encoder: its L2 norm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub norm: Option<f64>,
}

/// The predictions at one `[MASK]`.
#[derive(Debug, Clone, Serialize)]
pub struct MaskResult {
    /// Token position, `[CLS]` = 0.
    pub position: usize,
    /// The `TOP_K` most probable tokens, most probable first.
    pub top: Vec<Prediction>,
}

/// A predicted token.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The token's string.
    pub token: String,
    /// Its id.
    pub id: u32,
    /// Its softmax probability.
    pub probability: f64,
}

/// How much of a text without `[MASK]` the generator reproduces.
#[derive(Debug, Clone, Serialize)]
pub struct Reconstruction {
    /// Positions whose top-1 prediction is the input token.
    pub equal: usize,
    /// Positions compared: every token of the sequence, `[CLS]` and `[SEP]` included.
    pub positions: usize,
    /// `equal / positions`.
    pub share: f64,
}

/// Read `--text-file`: one text per line (a trailing `\r` is dropped), blank lines skipped.
pub fn read_text_file(path: &Path) -> Result<Vec<String>, VerifyError> {
    let bytes = std::fs::read(path).map_err(|error| VerifyError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        VerifyError::TextFile {
            path: path.to_path_buf(),
            message: format!(
                "not UTF-8: invalid byte 0x{:02x} at byte offset {at} (line {line}); save the file as UTF-8",
                bytes[at]
            ),
        }
    })?;
    let texts: Vec<String> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if texts.is_empty() {
        return Err(VerifyError::TextFile {
            path: path.to_path_buf(),
            message: "holds no text (every line is blank); write one text per line".into(),
        });
    }
    Ok(texts)
}

/// The tokenizer of `dir`: tokenizer.json when present, else vocab.txt (+ tokenizer_config.json).
fn load_tokenizer(dir: &Path) -> Result<(tokenizers::Tokenizer, PathBuf), VerifyError> {
    let json = dir.join("tokenizer.json");
    let vocab = dir.join("vocab.txt");
    let source = if json.is_file() {
        json
    } else if vocab.is_file() {
        vocab
    } else {
        return Err(VerifyError::NoTokenizer {
            dir: dir.to_path_buf(),
        });
    };
    let tokenizer = crate::write::tokenizer::load_dir(dir).map_err(|e| VerifyError::Tokenizer {
        path: source.clone(),
        message: e.to_string(),
    })?;
    Ok((tokenizer, source))
}

/// Run the model of `model_dir` on every text and report what it predicts. `truncate`: cut texts
/// longer than `max_position_embeddings` tokens (with a warning) instead of refusing them.
pub fn run_texts(
    model_dir: &Path,
    texts: &[String],
    truncate: bool,
) -> Result<TextReport, VerifyError> {
    for (i, text) in texts.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(VerifyError::EmptyText { index: i + 1 });
        }
    }
    let mut converted = load_converted(model_dir)?;
    let (tokenizer, source) = load_tokenizer(model_dir)?;
    let vocab = converted.config.vocab_size;
    let tokenizer_size = tokenizer.get_vocab_size(true);
    if tokenizer_size > vocab {
        return Err(VerifyError::TokenizerVocab {
            path: source,
            tokens: tokenizer_size,
            vocab_size: vocab,
        });
    }
    let max = converted.config.max_position_embeddings;
    let mask_id = tokenizer.token_to_id("[MASK]");
    let mut warnings = Vec::new();
    let mut results = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let index = i + 1;
        let tokenize_error = |e: tokenizers::Error| VerifyError::Tokenizer {
            path: source.clone(),
            message: format!("text {index}: {e}"),
        };
        let mut encoding = tokenizer
            .encode(text.as_str(), true)
            .map_err(tokenize_error)?;
        let mut truncated_from = None;
        if encoding.len() > max {
            if !truncate {
                return Err(VerifyError::TextTooLong {
                    index,
                    tokens: encoding.len(),
                    max_positions: max,
                });
            }
            truncated_from = Some(encoding.len());
            warnings.push(format!(
                "text {index} has {} tokens, more than max_position_embeddings {max}: only its first {max} tokens ([SEP] included) are used (--no-truncate refuses such texts)",
                encoding.len()
            ));
            let mut cut = tokenizer.clone();
            cut.with_truncation(Some(tokenizers::TruncationParams {
                max_length: max,
                ..Default::default()
            }))
            .map_err(tokenize_error)?;
            encoding = cut.encode(text.as_str(), true).map_err(tokenize_error)?;
        }
        let ids = encoding.get_ids().to_vec();
        let seq = ids.len();
        let batch = Batch {
            batch: 1,
            seq,
            input_ids: ids.clone(),
            attention_mask: vec![1; seq],
            token_type_ids: encoding.get_type_ids().to_vec(),
        };
        converted
            .tower
            .check_batch(&batch)
            .map_err(|message| VerifyError::Tokenizer {
                path: source.clone(),
                message: format!("text {index}: {message}"),
            })?;
        let outputs = converted.tower.forward(&mut converted.weights, &batch)?;
        let name_of = |id: u32| {
            tokenizer
                .id_to_token(id)
                .unwrap_or_else(|| format!("<id {id}>"))
        };
        let mut tokens: Vec<TokenResult> = encoding
            .get_tokens()
            .iter()
            .zip(&ids)
            .map(|(token, &id)| TokenResult {
                token: token.clone(),
                id,
                replaced_probability: None,
                predicted: None,
                shape: None,
                norm: None,
            })
            .collect();
        let mut masks = None;
        let mut reconstruction = None;
        match converted.arch {
            Architecture::PreTraining => {
                let logits = values(outputs.logits.as_ref())?;
                for (t, &logit) in tokens.iter_mut().zip(&logits) {
                    t.replaced_probability = Some(sigmoid(logit));
                }
            }
            Architecture::MaskedLm => {
                let logits = values(outputs.logits.as_ref())?;
                let v = converted.config.vocab_size;
                let row = |p: usize| &logits[p * v..(p + 1) * v];
                let positions: Vec<usize> = (0..seq).filter(|&p| Some(ids[p]) == mask_id).collect();
                if positions.is_empty() {
                    let mut equal = 0;
                    for (p, t) in tokens.iter_mut().enumerate() {
                        let top = top_k(row(p), 1, &name_of).remove(0);
                        equal += usize::from(top.id == t.id);
                        t.predicted = Some(top);
                    }
                    reconstruction = Some(Reconstruction {
                        equal,
                        positions: seq,
                        share: equal as f64 / seq as f64,
                    });
                } else {
                    masks = Some(
                        positions
                            .into_iter()
                            .map(|p| MaskResult {
                                position: p,
                                top: top_k(row(p), TOP_K, &name_of),
                            })
                            .collect(),
                    );
                }
            }
            Architecture::Model => {
                let hidden = values(Some(&outputs.last_hidden_state))?;
                let h = converted.config.hidden_size;
                for (p, t) in tokens.iter_mut().enumerate() {
                    let norm = hidden[p * h..(p + 1) * h]
                        .iter()
                        .map(|&x| (x as f64) * (x as f64))
                        .sum::<f64>()
                        .sqrt();
                    t.shape = Some(vec![h]);
                    t.norm = Some(norm);
                }
            }
        }
        results.push(TextResult {
            text: text.clone(),
            tokens,
            masks,
            reconstruction,
            truncated_from,
        });
    }
    Ok(TextReport {
        model: converted.arch.class_name().into(),
        texts: results,
        tokenizer: source,
        model_dir: model_dir.to_path_buf(),
        warnings,
    })
}

fn values(t: Option<&candle_core::Tensor>) -> Result<Vec<f32>, VerifyError> {
    let t = t.ok_or_else(|| VerifyError::Compute {
        message: "the model produced no logits".into(),
    })?;
    t.flatten_all()
        .and_then(|f| f.to_vec1::<f32>())
        .map_err(super::model::candle_error)
}

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-(x as f64)).exp())
}

/// The `k` most probable tokens of one row of logits (softmax in f64), most probable first;
/// equal probabilities in id order.
fn top_k(logits: &[f32], k: usize, name_of: &dyn Fn(u32) -> String) -> Vec<Prediction> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|i| Prediction {
            token: name_of(i as u32),
            id: i as u32,
            probability: (logits[i] as f64 - max).exp() / sum,
        })
        .collect()
}

impl TextReport {
    /// The table `verify --text` prints; `colour` highlights replaced tokens with ANSI escapes
    /// (on a terminal), otherwise they carry a plain `<- replaced` marker.
    pub fn to_text(&self, colour: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}), tokenizer {}",
            self.model_dir.display(),
            self.model,
            self.tokenizer.display()
        );
        for (i, t) in self.texts.iter().enumerate() {
            let _ = writeln!(out);
            let _ = writeln!(out, "text {}: {}", i + 1, t.text);
            if let Some(n) = t.truncated_from {
                let _ = writeln!(
                    out,
                    "  (truncated: {n} tokens, the first {} used)",
                    t.tokens.len()
                );
            }
            let width = t
                .tokens
                .iter()
                .map(|k| k.token.chars().count())
                .max()
                .unwrap_or(5)
                .max(5);
            match self.model.as_str() {
                "ElectraForPreTraining" => self.discriminator_rows(&mut out, t, width, colour),
                "ElectraForMaskedLM" => self.generator_rows(&mut out, t, width),
                _ => self.encoder_rows(&mut out, t, width),
            }
        }
        out.truncate(out.trim_end().len());
        out
    }

    fn discriminator_rows(&self, out: &mut String, t: &TextResult, width: usize, colour: bool) {
        let _ = writeln!(
            out,
            "  {:>3}  {:<width$}  {:>6}  replaced",
            "pos", "token", "id"
        );
        let mut marked = 0;
        for (p, k) in t.tokens.iter().enumerate() {
            let prob = k.replaced_probability.unwrap_or(f64::NAN);
            let replaced = prob > REPLACED_THRESHOLD;
            marked += usize::from(replaced);
            let line = format!("  {p:>3}  {:<width$}  {:>6}  {prob:.4}", k.token, k.id);
            let _ = match (replaced, colour) {
                (true, true) => writeln!(out, "\x1b[1;31m{line}\x1b[0m"),
                (true, false) => writeln!(out, "{line}  <- replaced"),
                (false, _) => writeln!(out, "{line}"),
            };
        }
        let _ = writeln!(
            out,
            "  {marked} of {} tokens look replaced (probability > {REPLACED_THRESHOLD})",
            t.tokens.len()
        );
    }

    fn generator_rows(&self, out: &mut String, t: &TextResult, width: usize) {
        if let Some(masks) = &t.masks {
            for m in masks {
                let top: Vec<String> = m
                    .top
                    .iter()
                    .map(|p| format!("{} {:.4}", p.token, p.probability))
                    .collect();
                let _ = writeln!(out, "  [MASK] at {}: {}", m.position, top.join(", "));
            }
            return;
        }
        let _ = writeln!(
            out,
            "  {:>3}  {:<width$}  {:>6}  {:<width$}  probability",
            "pos", "token", "id", "top-1"
        );
        for (p, k) in t.tokens.iter().enumerate() {
            if let Some(pred) = &k.predicted {
                let same = if pred.id == k.id { "  =" } else { "" };
                let _ = writeln!(
                    out,
                    "  {p:>3}  {:<width$}  {:>6}  {:<width$}  {:.4}{same}",
                    k.token, k.id, pred.token, pred.probability
                );
            }
        }
        if let Some(r) = &t.reconstruction {
            let _ = writeln!(
                out,
                "  top-1 equals the input at {} of {} positions ({:.1}%); no [MASK] in the text",
                r.equal,
                r.positions,
                r.share * 100.0
            );
        }
    }

    fn encoder_rows(&self, out: &mut String, t: &TextResult, width: usize) {
        let _ = writeln!(
            out,
            "  {:>3}  {:<width$}  {:>6}  hidden state",
            "pos", "token", "id"
        );
        for (p, k) in t.tokens.iter().enumerate() {
            let shape = k.shape.clone().unwrap_or_default();
            let _ = writeln!(
                out,
                "  {p:>3}  {:<width$}  {:>6}  {shape:?}, norm {:.4}",
                k.token,
                k.id,
                k.norm.unwrap_or(f64::NAN)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_a_softmax_in_probability_order() {
        let name = |id: u32| format!("t{id}");
        let top = top_k(&[0.0, 2.0, 1.0, 2.0], 3, &name);
        let ids: Vec<u32> = top.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 3, 2], "ties in id order");
        let z = 1.0 + 2.0 * 2f64.exp() + 1f64.exp();
        assert!((top[0].probability - 2f64.exp() / z).abs() < 1e-15);
        assert!((top[2].probability - 1f64.exp() / z).abs() < 1e-15);
        assert_eq!(top[0].token, "t1");
    }

    #[test]
    fn replaced_tokens_are_coloured_on_a_terminal_and_marked_otherwise() {
        let token = |token: &str, id, p| TokenResult {
            token: token.into(),
            id,
            replaced_probability: Some(p),
            predicted: None,
            shape: None,
            norm: None,
        };
        let report = TextReport {
            model: "ElectraForPreTraining".into(),
            texts: vec![TextResult {
                text: "a b".into(),
                tokens: vec![token("a", 9, 0.25), token("b", 10, 0.75)],
                masks: None,
                reconstruction: None,
                truncated_from: None,
            }],
            tokenizer: PathBuf::from("d/vocab.txt"),
            model_dir: PathBuf::from("d"),
            warnings: Vec::new(),
        };
        let plain = report.to_text(false);
        assert!(
            plain.contains("    1  b          10  0.7500  <- replaced"),
            "{plain}"
        );
        assert!(plain.contains("    0  a           9  0.2500\n"), "{plain}");
        assert!(!plain.contains('\x1b'));
        let colour = report.to_text(true);
        assert!(
            colour.contains("\x1b[1;31m    1  b          10  0.7500\x1b[0m"),
            "{colour}"
        );
        assert!(!colour.contains("<- replaced"));
        assert!(colour.contains("1 of 2 tokens look replaced"));
    }

    #[test]
    fn sigmoid_values() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) - 0.880_797_077_977_882_3).abs() < 1e-15);
    }

    #[test]
    fn text_files_are_utf8_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.txt");
        std::fs::write(&f, "one\r\n\n  \ntwo [MASK]\n").unwrap();
        assert_eq!(read_text_file(&f).unwrap(), ["one", "two [MASK]"]);
        std::fs::write(&f, b"ok\nbad \xff here\n").unwrap();
        let err = read_text_file(&f).unwrap_err().to_string();
        assert!(
            err.contains("0xff") && err.contains("byte offset 7") && err.contains("line 2"),
            "{err}"
        );
        std::fs::write(&f, "\n \n").unwrap();
        assert!(read_text_file(&f)
            .unwrap_err()
            .to_string()
            .contains("no text"));
    }
}
