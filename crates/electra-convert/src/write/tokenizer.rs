//! Tokenizer files: vocab.txt, tokenizer.json (built with the `tokenizers` crate),
//! tokenizer_config.json and special_tokens_map.json, and the three decisions behind them
//! (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`) with where each came from.
//!
//! tokenizer.json is the file transformers 5.23.0 writes for this vocabulary and these settings
//! (its `BertTokenizer`: BertNormalizer, BertPreTokenizer, WordPiece with `##` and 100
//! characters per word, `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1`, WordPiece decoder);
//! tokenizer_config.json states every decision explicitly, so transformers 4.57.6 and 5.x (whose
//! `do_lower_case` defaults differ) tokenize alike. [`build_tokenizer`] and [`load_dir`] are the
//! library's way to get a `tokenizers::Tokenizer` for a vocabulary or a model directory.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::{BertNormalizer, StripAccents};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, NormalizedString, Normalizer};

use super::WriteError;

/// The special tokens of BERT-style vocabularies, in the order their config keys sort.
const SPECIALS: [(&str, &str); 5] = [
    ("cls_token", "[CLS]"),
    ("mask_token", "[MASK]"),
    ("pad_token", "[PAD]"),
    ("sep_token", "[SEP]"),
    ("unk_token", "[UNK]"),
];

/// The order in which transformers 5.x adds special tokens a vocabulary lacks (after the last
/// vocabulary id): its special-token attribute order.
const ADD_ORDER: [&str; 5] = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"];

/// WordPiece's limit: a longer word becomes `[UNK]` (BERT's `max_input_chars_per_word`).
pub(crate) const MAX_INPUT_CHARS_PER_WORD: usize = 100;

/// Where a tokenizer decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// A command-line flag (`--cased`/`--uncased`, `--strip-accents`/`--no-strip-accents`).
    Flag,
    /// Read from the vocabulary (uppercase letters; accented letters in a lowercase vocabulary).
    Vocabulary,
    /// Follows `do_lower_case`, as BERT does: a cased tokenizer keeps accents.
    Casing,
    /// BERT's default (`tokenize_chinese_chars`).
    Default,
    /// Read from a model directory's tokenizer_config.json.
    TokenizerConfig,
    /// Recorded by the producer in a SavedModel (Model Garden `export_tfhub`'s `do_lower_case`
    /// bool variable).
    SavedModel,
}

impl DecisionSource {
    /// The name used in JSON output (`flag`, `vocabulary`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionSource::Flag => "flag",
            DecisionSource::Vocabulary => "vocabulary",
            DecisionSource::Casing => "casing",
            DecisionSource::Default => "default",
            DecisionSource::TokenizerConfig => "tokenizer_config",
            DecisionSource::SavedModel => "saved_model",
        }
    }
}

/// The lowercasing decision's source (the name the rest of the crate used first).
pub type CasingSource = DecisionSource;

/// A vocabulary to ship, with the tokenizer settings derived for it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tokenizer {
    /// The vocabulary file shipped.
    pub vocab: PathBuf,
    /// Lower-case before WordPiece.
    pub do_lower_case: bool,
    /// What decided `do_lower_case`.
    pub casing_from: DecisionSource,
    /// Strip accents.
    pub strip_accents: bool,
    /// What decided `strip_accents`.
    pub accents_from: DecisionSource,
    /// Put spaces around CJK characters.
    pub tokenize_chinese_chars: bool,
    /// What decided `tokenize_chinese_chars`.
    pub chinese_chars_from: DecisionSource,
    /// Tokens of the vocabulary, in id order.
    #[serde(skip)]
    tokens: Vec<String>,
}

/// `--vocab`, else `vocab.txt` in the checkpoint's directory, else in its parent.
pub(crate) fn find_vocab(checkpoint_dir: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let mut candidates = vec![checkpoint_dir.join("vocab.txt")];
    if let Some(parent) = checkpoint_dir.parent() {
        candidates.push(parent.join("vocab.txt"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// A bracketed special such as `[CLS]` or `[unused3]`.
fn is_special(token: &str) -> bool {
    token.len() > 2 && token.starts_with('[') && token.ends_with(']')
}

/// True when some ordinary token (not a bracketed special like `[CLS]`) has an uppercase letter.
pub(crate) fn vocabulary_is_cased<S: AsRef<str>>(tokens: &[S]) -> bool {
    tokens.iter().map(AsRef::as_ref).any(|t| {
        let special = is_special(t);
        !special && t.chars().any(char::is_uppercase)
    })
}

/// True when the token holds a letter with an accent: stripping accents the way the tokenizer
/// does (NFD, then drop nonspacing marks) changes it.
fn has_accent(token: &str) -> bool {
    let mut n = NormalizedString::from(token);
    n.nfd();
    let decomposed = n.get().to_owned();
    if StripAccents.normalize(&mut n).is_err() {
        return false;
    }
    n.get() != decomposed
}

/// The first ordinary token with an accented letter, if any.
pub(crate) fn first_accented<S: AsRef<str>>(tokens: &[S]) -> Option<&str> {
    tokens
        .iter()
        .map(AsRef::as_ref)
        .find(|t| !is_special(t) && has_accent(t))
}

/// The tokenizer decisions asked for on the command line (`None` = infer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenizerChoices {
    /// `--uncased` (true) / `--cased` (false).
    pub lower: Option<bool>,
    /// `--strip-accents` (true) / `--no-strip-accents` (false).
    pub strip_accents: Option<bool>,
}

impl Tokenizer {
    /// Read and check the vocabulary and settle the three decisions.
    pub fn load(vocab: &Path, choices: TokenizerChoices) -> Result<Tokenizer, WriteError> {
        let bytes = std::fs::read(vocab).map_err(|e| WriteError::Vocab {
            path: vocab.to_path_buf(),
            reason: e.to_string(),
        })?;
        let tokens = parse_vocab(vocab, &bytes)?;
        let (do_lower_case, casing_from) = match choices.lower {
            Some(l) => (l, DecisionSource::Flag),
            None => (!vocabulary_is_cased(&tokens), DecisionSource::Vocabulary),
        };
        let (strip_accents, accents_from) = match choices.strip_accents {
            Some(s) => (s, DecisionSource::Flag),
            None if !do_lower_case => (false, DecisionSource::Casing),
            // A lowercase vocabulary built with stripping holds no accented letters.
            None => (
                first_accented(&tokens).is_none(),
                DecisionSource::Vocabulary,
            ),
        };
        Ok(Tokenizer {
            vocab: vocab.to_path_buf(),
            do_lower_case,
            casing_from,
            strip_accents,
            accents_from,
            tokenize_chinese_chars: true,
            chinese_chars_from: DecisionSource::Default,
            tokens,
        })
    }

    /// A tokenizer from tokens already read and decisions already made (e.g. a model
    /// directory's vocab.txt and tokenizer_config.json).
    pub fn from_parts(
        vocab: &Path,
        tokens: Vec<String>,
        do_lower_case: bool,
        strip_accents: bool,
        tokenize_chinese_chars: bool,
        from: DecisionSource,
    ) -> Tokenizer {
        Tokenizer {
            vocab: vocab.to_path_buf(),
            do_lower_case,
            casing_from: from,
            strip_accents,
            accents_from: from,
            tokenize_chinese_chars,
            chinese_chars_from: from,
            tokens,
        }
    }

    /// Number of tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Tokens in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// A one-line account of the three decisions and their sources, for the summary.
    pub fn describe(&self) -> String {
        let accents_why = match self.accents_from {
            DecisionSource::Vocabulary if self.strip_accents => {
                "vocabulary: lowercase without accented letters"
            }
            DecisionSource::Vocabulary => "vocabulary: lowercase with accented letters",
            DecisionSource::Casing => "casing: a cased tokenizer keeps accents",
            other => other.as_str(),
        };
        let casing_why = match self.casing_from {
            DecisionSource::Vocabulary if self.do_lower_case => "vocabulary: no uppercase letters",
            DecisionSource::Vocabulary => "vocabulary: has uppercase letters",
            DecisionSource::SavedModel => "saved_model: the do_lower_case variable",
            other => other.as_str(),
        };
        format!(
            "do_lower_case {} ({casing_why}), strip_accents {} ({accents_why}), tokenize_chinese_chars {} ({})",
            self.do_lower_case,
            self.strip_accents,
            self.tokenize_chinese_chars,
            self.chinese_chars_from.as_str()
        )
    }

    /// Special tokens the vocabulary lacks (a warning, not an error; `[UNK]` is refused by
    /// [`parse_vocab`]). tokenizer.json adds them after the last vocabulary id, as
    /// transformers 5.x does.
    pub fn missing_specials(&self) -> Vec<&'static str> {
        SPECIALS
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| !self.tokens.iter().any(|x| x == t))
            .collect()
    }

    /// The id of each special token: its vocabulary line, or (when missing) the id
    /// transformers 5.x gives it after the vocabulary.
    fn special_ids(&self) -> Vec<(&'static str, usize)> {
        let mut next = self.tokens.len();
        let mut ids = Vec::new();
        for t in ADD_ORDER {
            let id = match self.tokens.iter().position(|x| x == t) {
                Some(i) => i,
                None => {
                    next += 1;
                    next - 1
                }
            };
            ids.push((t, id));
        }
        ids.sort_by_key(|&(_, id)| id);
        ids
    }

    /// tokenizer_config.json: what `ElectraTokenizer.save_pretrained` of transformers 4.57.6
    /// writes, with `do_lower_case`, `strip_accents` and `tokenize_chinese_chars` always stated
    /// (never null), so that 4.57.6 and 5.x need no defaults.
    pub fn config(&self, model_max_length: u64) -> Value {
        let decoder: Map<String, Value> = self
            .special_ids()
            .into_iter()
            .map(|(t, i)| {
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
        m.insert("strip_accents".into(), json!(self.strip_accents));
        m.insert(
            "tokenize_chinese_chars".into(),
            json!(self.tokenize_chinese_chars),
        );
        m.insert("tokenizer_class".into(), json!("ElectraTokenizer"));
        m.insert("unk_token".into(), json!("[UNK]"));
        Value::Object(m)
    }

    /// The content of special_tokens_map.json.
    pub fn special_tokens_map() -> Value {
        Value::Object(
            SPECIALS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        )
    }

    /// vocab.txt as written: one token per line, `\n` line ends (a CRLF file is normalised,
    /// since transformers strips only `\n` and would keep the `\r` in every token).
    pub(crate) fn vocab_text(&self) -> String {
        let mut s = String::with_capacity(self.tokens.iter().map(|t| t.len() + 1).sum());
        for t in &self.tokens {
            s.push_str(t);
            s.push('\n');
        }
        s
    }
}

/// Split a vocab.txt into tokens and refuse what tokenizer.json cannot represent: not UTF-8
/// (naming the line), empty, a token repeated on two lines (a tokenizer.json vocabulary maps a
/// token to one id, so one of the two ids could never be produced), and no `[UNK]` (the
/// `tokenizers` crate's WordPiece fails on every out-of-vocabulary word without it).
pub fn parse_vocab(path: &Path, bytes: &[u8]) -> Result<Vec<String>, WriteError> {
    let line_err = |line: usize, reason: String| WriteError::VocabLine {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(line_err(
                line,
                format!("not UTF-8 (byte offset {at} of the file)"),
            ));
        }
    };
    let tokens: Vec<String> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect();
    if tokens.is_empty() {
        return Err(WriteError::Vocab {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let mut seen: ahash::AHashMap<&str, usize> = ahash::AHashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if let Some(first) = seen.insert(t.as_str(), i) {
            return Err(line_err(
                i + 1,
                format!(
                    "token `{}` repeats line {}; tokenizer.json maps each token to one id, so id {first} could never be produced. Remove the repeated line only if the model was trained without it",
                    t.escape_debug(),
                    first + 1
                ),
            ));
        }
    }
    if !seen.contains_key("[UNK]") {
        return Err(WriteError::Vocab {
            path: path.to_path_buf(),
            reason: "no `[UNK]` line: the tokenizers crate's WordPiece (tokenizer.json) fails on every word outside the vocabulary without it".into(),
        });
    }
    Ok(tokens)
}

/// Build the `tokenizers::Tokenizer` transformers 5.23.0's `BertTokenizer` builds for this
/// vocabulary and these settings (and writes as tokenizer.json).
pub fn build_tokenizer(tok: &Tokenizer) -> Result<tokenizers::Tokenizer, WriteError> {
    let fail = |e: tokenizers::Error| WriteError::TokenizerBuild {
        path: tok.vocab.clone(),
        error: e.to_string(),
    };
    let vocab: ahash::AHashMap<String, u32> = tok
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(MAX_INPUT_CHARS_PER_WORD)
        .build()
        .map_err(fail)?;
    let mut t = tokenizers::Tokenizer::new(model);
    t.with_normalizer(Some(BertNormalizer::new(
        true,
        tok.tokenize_chinese_chars,
        Some(tok.strip_accents),
        tok.do_lower_case,
    )))
    .map_err(fail)?;
    t.with_pre_tokenizer(Some(BertPreTokenizer));
    t.with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
    let ids = tok.special_ids();
    let id_of = |name: &str| {
        ids.iter()
            .find(|(t, _)| *t == name)
            .map(|&(_, i)| i as u32)
            .expect("special id")
    };
    let post = TemplateProcessing::builder()
        .try_single("[CLS]:0 $A:0 [SEP]:0")
        .map_err(|e| fail(e.into()))?
        .try_pair("[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1")
        .map_err(|e| fail(e.into()))?
        .special_tokens(vec![("[CLS]", id_of("[CLS]")), ("[SEP]", id_of("[SEP]"))])
        .build()
        .map_err(|e| fail(Box::new(e)))?;
    t.with_post_processor(Some(post));
    let added: Vec<AddedToken> = ADD_ORDER
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    t.add_special_tokens(added).map_err(fail)?;
    Ok(t)
}

/// tokenizer.json text as transformers writes it (pretty-printed, 2-space indent).
pub(crate) fn tokenizer_json(tok: &Tokenizer) -> Result<String, WriteError> {
    build_tokenizer(tok)?
        .to_string(true)
        .map_err(|e| WriteError::TokenizerBuild {
            path: tok.vocab.clone(),
            error: e.to_string(),
        })
}

/// The tokenizer of a model directory: its tokenizer.json if there is one, else its vocab.txt
/// with the decisions of its tokenizer_config.json (missing or null `do_lower_case` = true,
/// `strip_accents` = follow `do_lower_case`, `tokenize_chinese_chars` = true, as BERT's slow
/// tokenizer reads them).
pub fn load_dir(dir: &Path) -> Result<tokenizers::Tokenizer, WriteError> {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        return tokenizers::Tokenizer::from_file(&json).map_err(|e| WriteError::TokenizerBuild {
            path: json.clone(),
            error: e.to_string(),
        });
    }
    let vocab = dir.join("vocab.txt");
    if !vocab.is_file() {
        return Err(WriteError::Vocab {
            path: dir.to_path_buf(),
            reason: "the directory has neither tokenizer.json nor vocab.txt".into(),
        });
    }
    let bytes = std::fs::read(&vocab).map_err(|e| WriteError::Vocab {
        path: vocab.clone(),
        reason: e.to_string(),
    })?;
    let tokens = parse_vocab(&vocab, &bytes)?;
    let cfg_path = dir.join("tokenizer_config.json");
    let cfg: Value = if cfg_path.is_file() {
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| WriteError::Vocab {
            path: cfg_path.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| WriteError::ConfigInvalid {
            path: cfg_path.clone(),
            reason: e.to_string(),
        })?
    } else {
        json!({})
    };
    let flag = |key: &str| -> Result<Option<bool>, WriteError> {
        match cfg.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(WriteError::ConfigInvalid {
                path: cfg_path.clone(),
                reason: format!("{key} is {v}, not true, false or null"),
            }),
        }
    };
    let lower = flag("do_lower_case")?.unwrap_or(true);
    let strip = flag("strip_accents")?.unwrap_or(lower);
    let chinese = flag("tokenize_chinese_chars")?.unwrap_or(true);
    let tok = Tokenizer::from_parts(
        &vocab,
        tokens,
        lower,
        strip,
        chinese,
        DecisionSource::TokenizerConfig,
    );
    build_tokenizer(&tok)
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

    #[test]
    fn accented_letters_are_found_in_ordinary_tokens_only() {
        assert_eq!(first_accented(&["[UNK]", "the", "##s", "123"]), None);
        assert_eq!(first_accented(&["[UNK]", "the", "##ü", "é"]), Some("##ü"));
        // Composed and decomposed spellings alike; a bare combining mark counts too.
        assert_eq!(first_accented(&["e\u{301}"]), Some("e\u{301}"));
        assert_eq!(first_accented(&["\u{301}"]), Some("\u{301}"));
        // Letters without a decomposition (ß, ø, CJK) are not accented.
        assert_eq!(first_accented(&["straße", "øl", "中"]), None);
    }

    #[test]
    fn vocab_lines_tokenizer_json_cannot_hold_are_refused_by_line() {
        let p = Path::new("v.txt");
        let err = parse_vocab(p, b"[PAD]\n[UNK]\nthe\nof\nthe\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("repeats line 3"), "{msg}");
        let err = parse_vocab(p, b"[UNK]\nok\nbad\xff\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = parse_vocab(p, b"the\nof\n").unwrap_err();
        assert!(err.to_string().contains("[UNK]"), "{err}");
        assert_eq!(
            parse_vocab(p, b"[UNK]\r\nthe\r\n").unwrap(),
            vec!["[UNK]".to_owned(), "the".to_owned()]
        );
    }

    /// Seeded random vocab files (newlines, CRLF, combining marks, invalid UTF-8, duplicates,
    /// blank lines): parsing never panics, and every accepted vocabulary gives a tokenizer in
    /// which each token has its line's id, survives a tokenizer.json round trip and encodes text.
    #[test]
    fn random_vocabularies_parse_or_fail_cleanly() {
        let pieces: [&[u8]; 12] = [
            b"[CLS]",
            b"[SEP]",
            b"a",
            b"B",
            b"##a",
            "é".as_bytes(),
            "\u{301}".as_bytes(),
            b" ",
            b"\xff",
            "中".as_bytes(),
            b"[PAD]",
            b"\r",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3000 {
            let lines = (next() % 12) as usize;
            let unk_at = (next() % 14) as usize;
            let mut bytes = Vec::new();
            for j in 0..lines {
                if j == unk_at {
                    bytes.extend_from_slice(b"[UNK]\n");
                }
                for _ in 0..next() % 3 {
                    bytes.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
                }
                // Mostly unique lines; now and then a likely repeat or a blank line.
                if next() % 10 != 0 {
                    bytes.extend_from_slice(j.to_string().as_bytes());
                }
                bytes.extend_from_slice(if next() % 4 == 0 { b"\r\n" } else { b"\n" });
            }
            let path = Path::new("random.txt");
            let tokens = match parse_vocab(path, &bytes) {
                Ok(t) => t,
                Err(e) => {
                    assert!(matches!(
                        e,
                        WriteError::Vocab { .. } | WriteError::VocabLine { .. }
                    ));
                    refused += 1;
                    continue;
                }
            };
            accepted += 1;
            let flags = next();
            let tok = Tokenizer::from_parts(
                path,
                tokens.clone(),
                flags & 1 == 0,
                flags & 2 == 0,
                flags & 4 == 0,
                DecisionSource::Default,
            );
            let built = build_tokenizer(&tok).unwrap();
            for (i, t) in tokens.iter().enumerate() {
                assert_eq!(built.token_to_id(t), Some(i as u32), "{t:?} in {tokens:?}");
            }
            let json = built.to_string(false).unwrap();
            let back: tokenizers::Tokenizer = json.parse().unwrap();
            assert_eq!(back.get_vocab_size(true), built.get_vocab_size(true));
            let text = String::from_utf8_lossy(&bytes).replace('\n', " ");
            let a = built.encode(text.as_str(), true).unwrap();
            let b = back.encode(text.as_str(), true).unwrap();
            assert_eq!(a.get_ids(), b.get_ids());
        }
        assert!(
            accepted > 100 && refused > 100,
            "{accepted} accepted, {refused} refused"
        );
    }
}
