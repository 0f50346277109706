//! Fuzz target `vocab`: the tokenizer side of a model directory.
//!
//! The first input byte picks the entry point (`mode % 2`), the rest is its input:
//!
//! - 0: `[flags][u16 LE n][n bytes vocab.txt][text]`: `write::tokenizer::parse_vocab` on the
//!   vocabulary; when accepted, `Tokenizer::from_parts` with the three decisions from `flags`
//!   (bits 0..2), `build_tokenizer`, the tokenizer.json round trip, and the text encoded (single
//!   and as a pair);
//! - 1: `[u16 LE n][n bytes vocab.txt][tokenizer_config.json]`: both written into a temp
//!   directory (reused across runs) and read back with `write::tokenizer::load_dir`, then the
//!   config bytes encoded as text.
//!
//! Besides "no panic, no sanitizer report", the target asserts what success promises: every
//! accepted token has its line's id, a token repeated on two lines is never accepted, the
//! tokenizer.json text parses back to a tokenizer with the same vocabulary and the same ids for
//! the text, and every id produced lies inside the vocabulary plus the five special tokens.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use electra_convert::write::tokenizer::{
    build_tokenizer, load_dir, parse_vocab, DecisionSource, Tokenizer,
};
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let n = u16::from_le_bytes(*len) as usize;
    (rest.len() >= n).then(|| rest.split_at(n))
}

fn check_ids(tok: &tokenizers::Tokenizer, text: &str, bound: usize) {
    let Ok(enc) = tok.encode(text, true) else {
        return;
    };
    for &id in enc.get_ids() {
        assert!((id as usize) < bound, "id {id} outside {bound}");
    }
}

fn tempdir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("fuzz-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 2 {
        0 => {
            let Some((&flags, rest)) = rest.split_first() else {
                return;
            };
            let Some((vocab, text)) = split(rest) else {
                return;
            };
            let path = Path::new("fuzz/vocab.txt");
            let Ok(tokens) = parse_vocab(path, vocab) else {
                return;
            };
            let mut seen = std::collections::HashSet::new();
            for t in &tokens {
                assert!(seen.insert(t.as_str()), "repeated token {t:?} accepted");
            }
            let tok = Tokenizer::from_parts(
                path,
                tokens.clone(),
                flags & 1 != 0,
                flags & 2 != 0,
                flags & 4 != 0,
                DecisionSource::Default,
            );
            let built = build_tokenizer(&tok).expect("an accepted vocabulary builds");
            for (i, t) in tokens.iter().enumerate() {
                assert_eq!(built.token_to_id(t), Some(i as u32), "{t:?}");
            }
            let json = built.to_string(false).expect("serialises");
            let back: tokenizers::Tokenizer = json.parse().expect("tokenizer.json parses back");
            assert_eq!(back.get_vocab_size(true), built.get_vocab_size(true));
            let text = String::from_utf8_lossy(text);
            let bound = tokens.len() + 5;
            check_ids(&built, &text, bound);
            if let (Ok(a), Ok(b)) = (built.encode(text.as_ref(), true), back.encode(text.as_ref(), true)) {
                assert_eq!(a.get_ids(), b.get_ids());
            }
            let mid = (0..=text.len() / 2)
                .rev()
                .find(|&k| text.is_char_boundary(k))
                .unwrap_or(0);
            let (left, right) = text.split_at(mid);
            if let Ok(pair) = built.encode((left, right), true) {
                for &id in pair.get_ids() {
                    assert!((id as usize) < bound, "pair id {id} outside {bound}");
                }
            }
        }
        _ => {
            let Some((vocab, config)) = split(rest) else {
                return;
            };
            let dir = tempdir();
            let _ = std::fs::remove_file(dir.join("tokenizer.json"));
            std::fs::write(dir.join("vocab.txt"), vocab).unwrap();
            std::fs::write(dir.join("tokenizer_config.json"), config).unwrap();
            if let Ok(tok) = load_dir(dir) {
                let n = parse_vocab(Path::new("v"), vocab).expect("load_dir accepted it").len();
                check_ids(&tok, &String::from_utf8_lossy(config), n + 5);
            }
        }
    }
});
