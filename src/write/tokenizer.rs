//! Tokenizer files: vocab.txt (copied), tokenizer_config.json and special_tokens_map.json, with
//! the fields transformers 4.57.6's `ElectraTokenizer.save_pretrained` writes.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::WriteError;

/// The special tokens of BERT-style vocabularies, in the order their config keys sort.
const SPECIALS: [(&str, &str); 5] = [
    ("cls_token", "[CLS]"),
    ("mask_token", "[MASK]"),
    ("pad_token", "[PAD]"),
    ("sep_token", "[SEP]"),
    ("unk_token", "[UNK]"),
];

/// Where the lowercasing decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CasingSource {
    /// `--cased` / `--uncased`.
    Flag,
    /// Read from the vocabulary.
    Vocabulary,
}

/// A vocabulary to ship, with the tokenizer settings derived for it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tokenizer {
    pub vocab: PathBuf,
    pub do_lower_case: bool,
    pub casing_from: CasingSource,
    /// Tokens of the vocabulary, in id order.
    #[serde(skip)]
    tokens: Vec<String>,
}

/// `--vocab`, else `vocab.txt` in the checkpoint's directory, else in its parent.
pub fn find_vocab(checkpoint_dir: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let mut candidates = vec![checkpoint_dir.join("vocab.txt")];
    if let Some(parent) = checkpoint_dir.parent() {
        candidates.push(parent.join("vocab.txt"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// True when some ordinary token (not a bracketed special like `[CLS]`) has an uppercase letter.
pub fn vocabulary_is_cased<S: AsRef<str>>(tokens: &[S]) -> bool {
    tokens.iter().map(AsRef::as_ref).any(|t| {
        let special = t.len() > 2 && t.starts_with('[') && t.ends_with(']');
        !special && t.chars().any(char::is_uppercase)
    })
}

impl Tokenizer {
    /// Read the vocabulary; `lower` is `Some` when `--cased`/`--uncased` decided.
    pub fn load(vocab: &Path, lower: Option<bool>) -> Result<Tokenizer, WriteError> {
        let bytes = std::fs::read(vocab).map_err(|e| WriteError::Vocab {
            path: vocab.to_path_buf(),
            reason: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| WriteError::Vocab {
            path: vocab.to_path_buf(),
            reason: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        })?;
        let tokens: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .collect();
        if tokens.is_empty() {
            return Err(WriteError::Vocab {
                path: vocab.to_path_buf(),
                reason: "the file is empty".into(),
            });
        }
        let (do_lower_case, casing_from) = match lower {
            Some(l) => (l, CasingSource::Flag),
            None => (!vocabulary_is_cased(&tokens), CasingSource::Vocabulary),
        };
        Ok(Tokenizer {
            vocab: vocab.to_path_buf(),
            do_lower_case,
            casing_from,
            tokens,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Special tokens the vocabulary lacks (a warning, not an error).
    pub fn missing_specials(&self) -> Vec<&'static str> {
        SPECIALS
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| !self.tokens.iter().any(|x| x == t))
            .collect()
    }

    /// tokenizer_config.json as `ElectraTokenizer.save_pretrained` writes it.
    pub fn config(&self, model_max_length: u64) -> Value {
        let mut decoder: Vec<(usize, &str)> = SPECIALS
            .iter()
            .filter_map(|(_, t)| self.tokens.iter().position(|x| x == t).map(|i| (i, *t)))
            .collect();
        decoder.sort();
        let decoder: Map<String, Value> = decoder
            .into_iter()
            .map(|(i, t)| {
                (
                    i.to_string(),
                    json!({"content": t, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true}),
                )
            })
            .collect();
        let mut m = Map::new();
        m.insert("added_tokens_decoder".into(), Value::Object(decoder));
        m.insert("clean_up_tokenization_spaces".into(), json!(true));
        m.insert("cls_token".into(), json!("[CLS]"));
        m.insert("do_basic_tokenize".into(), json!(true));
        m.insert("do_lower_case".into(), json!(self.do_lower_case));
        m.insert("extra_special_tokens".into(), json!({}));
        m.insert("mask_token".into(), json!("[MASK]"));
        m.insert("model_max_length".into(), json!(model_max_length));
        m.insert("never_split".into(), Value::Null);
        m.insert("pad_token".into(), json!("[PAD]"));
        m.insert("sep_token".into(), json!("[SEP]"));
        // Uncased: accents are stripped along with lowercasing (null = follow do_lower_case);
        // cased: keep them, as ELECTRA's cased data pipeline does.
        m.insert(
            "strip_accents".into(),
            if self.do_lower_case {
                Value::Null
            } else {
                json!(false)
            },
        );
        m.insert("tokenize_chinese_chars".into(), json!(true));
        m.insert("tokenizer_class".into(), json!("ElectraTokenizer"));
        m.insert("unk_token".into(), json!("[UNK]"));
        Value::Object(m)
    }

    pub fn special_tokens_map() -> Value {
        Value::Object(
            SPECIALS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casing() {
        assert!(!vocabulary_is_cased(&["[PAD]", "[unused0]", "the", "##s"]));
        assert!(vocabulary_is_cased(&["[PAD]", "The"]));
        assert!(vocabulary_is_cased(&["[CLS]", "##É"]));
        assert!(!vocabulary_is_cased(&["[UNK]", "ü", "123"]));
    }
}
