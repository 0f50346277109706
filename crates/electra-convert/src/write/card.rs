//! README.md, the model card of a converted directory, in the Hugging Face Hub's format: YAML
//! front matter (`library_name`, `tags`, `license` only when given) and Markdown saying what the
//! model is, how it was made, what the parity checks found and how to load it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::mapping::Plan;
use crate::options::{ModelKind, OutputDtype};

use super::WriteError;

/// One parity check as the card reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParityLine {
    /// `"checkpoint"` or `"reference"`.
    pub mode: String,
    /// What the model was compared against (a path, made relative like the command line).
    pub against: String,
    /// Each compared output with its largest absolute difference.
    pub outputs: Vec<(String, f64)>,
    /// Absolute tolerance of the check.
    pub atol: f64,
    /// Relative tolerance of the check.
    pub rtol: f64,
    /// Whether the check passed.
    pub passed: bool,
}

/// Everything the card says.
#[derive(Clone, Debug)]
pub struct CardFacts<'a> {
    /// The plan the model was written from.
    pub plan: &'a Plan,
    /// Attention heads written to config.json.
    pub num_attention_heads: u64,
    /// The checkpoint as given (made relative when absolute).
    pub checkpoint: String,
    /// The checkpoint's `global_step`, if it has one.
    pub global_step: Option<i64>,
    /// The dtype of the weights.
    pub dtype: OutputDtype,
    /// Tensors in model.safetensors.
    pub tensors: usize,
    /// Size of model.safetensors in bytes.
    pub bytes: u64,
    /// The tokenizer decisions in words, with the vocabulary size; `None` without a vocabulary.
    pub tokenizer: Option<(usize, String)>,
    /// The command line (or batch job) that asked for this conversion.
    pub invocation: Option<String>,
    /// Written as one of two models of a `--model both` run.
    pub both: bool,
    /// The Hub license identifier for the front matter, if given.
    pub license: Option<&'a str>,
    /// The parity checks run, in order.
    pub parity: &'a [ParityLine],
}

/// A license the card's front matter can carry: a Hub license identifier such as `apache-2.0`,
/// `mit`, `cc-by-4.0` or `other` (ASCII letters, digits, `-`, `.`, `+`; at most 64).
pub fn check_license(license: &str) -> Result<(), WriteError> {
    let ok = !license.is_empty()
        && license.len() <= 64
        && license
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(WriteError::License {
            license: license.to_owned(),
        })
    }
}

/// `path` as the card shows it: relative paths as given, absolute ones relative to `base`
/// (normally the current directory), so the card carries no machine-specific prefix.
pub(crate) fn display_path(path: &Path, base: &Path) -> String {
    if !path.is_absolute() || !base.is_absolute() {
        return path.display().to_string();
    }
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c.as_os_str());
    }
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel.display().to_string()
    }
}

/// A command line as a shell would read it back: arguments with spaces or shell characters in
/// single quotes; absolute paths (also in `--flag=/path`) made relative to `base`.
pub fn command_line<S: AsRef<str>>(args: &[S], base: &Path) -> String {
    args.iter()
        .map(|a| {
            let a = a.as_ref();
            let a = match a.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") && value.starts_with('/') => {
                    format!("{flag}={}", display_path(Path::new(value), base))
                }
                _ if a.starts_with('/') => display_path(Path::new(a), base),
                _ => a.to_owned(),
            };
            shell_quote(&a)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

fn what_it_is(kind: ModelKind, tower: &str) -> (String, &'static str) {
    match kind {
        ModelKind::Generator => (
            format!("the **generator** of an ELECTRA pretraining checkpoint (TF scope `{tower}/`)"),
            "masked-language-model head: logits over the vocabulary for every position",
        ),
        ModelKind::Encoder => (
            format!("the **discriminator's transformer** of an ELECTRA checkpoint (TF scope `{tower}/`)"),
            "no head: the last hidden states, for fine-tuning or feature extraction",
        ),
        _ => (
            format!("the **discriminator** of an ELECTRA pretraining checkpoint (TF scope `{tower}/`)"),
            "replaced-token-detection head: one logit per token, > 0 where the token looks replaced",
        ),
    }
}

fn usage(kind: ModelKind, class: &str, tokenizer: bool) -> String {
    let mut s = String::from("```python\nimport torch\n");
    if tokenizer {
        let _ = writeln!(
            s,
            "from transformers import AutoTokenizer, {class}\n\ntokenizer = AutoTokenizer.from_pretrained(\"path/to/this/directory\")\nmodel = {class}.from_pretrained(\"path/to/this/directory\").eval()"
        );
        let text = if kind == ModelKind::Generator {
            "the capital of france is [MASK]."
        } else {
            "the quick brown fox jumps over the lazy dog"
        };
        let _ = writeln!(
            s,
            "inputs = tokenizer(\"{text}\", return_tensors=\"pt\")\nwith torch.no_grad():\n    outputs = model(**inputs)"
        );
    } else {
        let _ = writeln!(
            s,
            "from transformers import {class}\n\nmodel = {class}.from_pretrained(\"path/to/this/directory\").eval()\n# No vocabulary was shipped: pass token ids of the vocabulary the model was trained with.\ninput_ids = torch.tensor([[2, 10, 11, 3]])\nwith torch.no_grad():\n    outputs = model(input_ids=input_ids)"
        );
    }
    match kind {
        ModelKind::Generator => s.push_str("logits = outputs.logits  # [batch, seq, vocab_size]\n"),
        ModelKind::Encoder => {
            s.push_str("hidden = outputs.last_hidden_state  # [batch, seq, hidden_size]\n")
        }
        _ => s.push_str(
            "replaced = outputs.logits > 0  # [batch, seq]: True where a token looks replaced\n",
        ),
    }
    s.push_str("```\n");
    s
}

/// The README.md text.
pub fn model_card(f: &CardFacts<'_>, tool_version: &str) -> String {
    let plan = f.plan;
    let d = &plan.dims;
    let mut s = String::new();
    s.push_str("---\nlibrary_name: transformers\ntags:\n- electra\n");
    if let Some(l) = f.license {
        let _ = writeln!(s, "license: {l}");
    }
    s.push_str("---\n\n");
    let kind = plan.kind.as_str();
    let _ = writeln!(
        s,
        "# ELECTRA {kind} ({}) converted from `{}`\n",
        plan.class, f.checkpoint
    );
    let (what, head) = what_it_is(plan.kind, &plan.layout.tower);
    let _ = writeln!(
        s,
        "This directory holds {what}, as the transformers class `{}` ({head}).{}\n",
        plan.class,
        if f.both {
            " It was written together with the other model of the same checkpoint (`--model both`)."
        } else {
            ""
        }
    );
    if let Some(caveat) = crate::mapping::head_caveat(plan) {
        let _ = writeln!(s, "**Note.** {caveat}.\n");
    }
    s.push_str("| | |\n|---|---|\n");
    let _ = writeln!(s, "| class | `{}` |", plan.class);
    let _ = writeln!(s, "| checkpoint | `{}` |", f.checkpoint);
    let _ = writeln!(s, "| tower | `{}/` |", plan.layout.tower);
    if plan.source_layout != crate::mapping::SourceLayout::GoogleTf1 {
        let _ = writeln!(
            s,
            "| source layout | {} (keys resolved through the checkpoint's object graph) |",
            crate::mapping::tf2_encoder::plan_title(plan)
        );
    }
    let _ = writeln!(
        s,
        "| global_step | {} |",
        f.global_step.map_or_else(
            || "not recorded in the checkpoint".to_owned(),
            |g| g.to_string()
        )
    );
    let _ = writeln!(
        s,
        "| vocab_size, embedding_size, hidden_size | {}, {}, {} |",
        d.vocab_size, d.embedding_size, d.hidden_size
    );
    let _ = writeln!(
        s,
        "| layers, attention heads, intermediate_size | {}, {}, {} |",
        d.num_hidden_layers, f.num_attention_heads, d.intermediate_size
    );
    let _ = writeln!(
        s,
        "| max_position_embeddings, type_vocab_size | {}, {} |",
        d.max_position_embeddings, d.type_vocab_size
    );
    let _ = writeln!(
        s,
        "| weights | {} tensors, {} bytes, {} (model.safetensors) |",
        f.tensors,
        f.bytes,
        f.dtype.as_str()
    );
    match &f.tokenizer {
        Some((n, words)) => {
            let _ = writeln!(s, "| tokenizer | {n} tokens; {words} |");
        }
        None => s.push_str("| tokenizer | none shipped (no vocabulary was given or found) |\n"),
    }

    s.push_str("\n## How it was made\n\n");
    let _ = writeln!(
        s,
        "Converted with electra-convert {tool_version}, which reads the TensorFlow checkpoint directly and writes the tensors under transformers' names (kernels transposed), with no TensorFlow or PyTorch involved:\n"
    );
    match &f.invocation {
        Some(cmd) => {
            let _ = writeln!(s, "    {cmd}\n");
        }
        None => s.push_str("    (through the electra_convert library's convert())\n\n"),
    }
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for sk in &plan.skipped {
        let name = serde_json::to_value(sk.category)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *by_reason.entry(name).or_default() += 1;
    }
    if by_reason.is_empty() {
        s.push_str("Every checkpoint variable was exported.\n");
    } else {
        let _ = writeln!(
            s,
            "Checkpoint variables not exported ({}; `electra-convert map` lists each with its reason):\n",
            plan.skipped.len()
        );
        for (reason, n) in &by_reason {
            let _ = writeln!(s, "- {}: {n}", reason.replace('_', " "));
        }
    }

    s.push_str("\n## Parity\n\n");
    if f.parity.is_empty() {
        s.push_str("No parity check was run for this directory (`--verify` or `--reference` runs one, `electra-convert verify` checks it later).\n");
    } else {
        s.push_str("A candle forward pass of this directory was compared with:\n\n");
        s.push_str("| check | against | output | max abs diff | tolerance | result |\n|---|---|---|---|---|---|\n");
        for p in f.parity {
            for (output, diff) in &p.outputs {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {output} | {diff:.3e} | atol {:e}, rtol {:e} | {} |",
                    p.mode,
                    p.against,
                    p.atol,
                    p.rtol,
                    if p.passed { "passed" } else { "FAILED" }
                );
            }
        }
        s.push_str("\n`checkpoint` runs the original weights read by their TensorFlow names (not through the conversion tables); `reference` compares with outputs stored in a reference file.\n");
    }

    s.push_str("\n## Usage\n\n");
    s.push_str(&usage(plan.kind, plan.class, f.tokenizer.is_some()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_become_relative_to_the_base() {
        let base = Path::new("/work/repo");
        assert_eq!(
            display_path(Path::new("/work/repo/fixtures/x"), base),
            "fixtures/x"
        );
        assert_eq!(display_path(Path::new("/tmp/out"), base), "../../tmp/out");
        assert_eq!(display_path(Path::new("rel/p"), base), "rel/p");
        assert_eq!(display_path(Path::new("/work/repo"), base), ".");
        assert_eq!(
            command_line(
                &[
                    "electra-convert",
                    "--model",
                    "encoder",
                    "/work/repo/ck",
                    "-o",
                    "out dir",
                    "--vocab=/work/v.txt"
                ],
                base
            ),
            "electra-convert --model encoder ck -o 'out dir' --vocab=../v.txt"
        );
    }

    #[test]
    fn licenses_are_hub_identifiers() {
        for ok in ["apache-2.0", "mit", "cc-by-4.0", "other", "gpl-3.0+"] {
            assert!(check_license(ok).is_ok(), "{ok}");
        }
        for bad in ["", "apache 2.0", "mit\nfoo: bar", "x: y", "é"] {
            assert!(check_license(bad).is_err(), "{bad:?}");
        }
    }
}
