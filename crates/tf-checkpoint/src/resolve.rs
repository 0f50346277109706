//! Turning what the user typed into a checkpoint prefix.
//!
//! Accepted: a prefix (`model.ckpt-1000`), the prefix's `.index`, `.data-SSSSS-of-NNNNN` or
//! `.meta` file, or a directory. A directory uses its `checkpoint` state file (like
//! `tf.train.latest_checkpoint`); without one, the single `*.index` file inside it.

use std::path::{Path, PathBuf};

use super::error::CheckpointError;

/// Name of the state file TF's savers write.
pub const STATE_FILE: &str = "checkpoint";

/// `PREFIX` + `suffix` as a path (appending, not replacing an extension).
pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Resolve `path` to a prefix whose `.index` exists.
pub fn resolve(path: &Path) -> Result<PathBuf, CheckpointError> {
    if path.is_dir() {
        return resolve_dir(path);
    }
    let prefix = strip_known_suffix(path).unwrap_or_else(|| path.to_path_buf());
    if with_suffix(&prefix, ".index").is_file() {
        return Ok(prefix);
    }
    if !path.exists() && !has_files_starting_with(&prefix) {
        return Err(CheckpointError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let hint = if path.is_file() && prefix == path {
        format!(
            " ({} is a file but not part of a V2 checkpoint: pass the prefix, without .index/.data-*)",
            path.display()
        )
    } else {
        String::new()
    };
    Err(CheckpointError::NoIndex { prefix, hint })
}

/// Does any file next to `prefix` start with its file name (`prefix.data-*`, `prefix.meta`)?
fn has_files_starting_with(prefix: &Path) -> bool {
    let (Some(name), parent) = (prefix.file_name(), prefix.parent()) else {
        return false;
    };
    let parent = match parent {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = name.to_str() else {
        return false;
    };
    std::fs::read_dir(parent).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|f| f.starts_with(name) && f.len() > name.len())
        })
    })
}

/// Strip `.index`, `.meta` or `.data-<digits>-of-<digits>` from a file name.
fn strip_known_suffix(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = if let Some(stem) = name.strip_suffix(".index") {
        stem
    } else if let Some(stem) = name.strip_suffix(".meta") {
        stem
    } else {
        let at = name.rfind(".data-")?;
        let tail = &name[at + ".data-".len()..];
        let (shard, total) = tail.split_once("-of-")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(shard) || !digits(total) {
            return None;
        }
        &name[..at]
    };
    if stem.is_empty() {
        return None;
    }
    Some(path.with_file_name(stem))
}

fn resolve_dir(dir: &Path) -> Result<PathBuf, CheckpointError> {
    let state_file = dir.join(STATE_FILE);
    if state_file.is_file() {
        let text = std::fs::read(&state_file).map_err(|source| CheckpointError::Io {
            path: state_file.clone(),
            error: source,
        })?;
        let named =
            parse_state_file(&text).map_err(|(line, reason)| CheckpointError::StateFileSyntax {
                state_file: state_file.clone(),
                line,
                reason,
            })?;
        let named = match named {
            Some(p) if !p.is_empty() => p,
            _ => return Err(CheckpointError::StateFileEmpty { state_file }),
        };
        let named = PathBuf::from(named);
        let prefix = if named.is_absolute() {
            named
        } else {
            dir.join(named)
        };
        if with_suffix(&prefix, ".index").is_file() {
            return Ok(prefix);
        }
        // Absolute paths from another machine are a common reason; point at a local copy.
        let hint = prefix
            .file_name()
            .map(|base| dir.join(base))
            .filter(|local| local != &prefix && with_suffix(local, ".index").is_file())
            .map(|local| {
                format!(
                    "; a checkpoint {} exists in the directory, pass that prefix instead",
                    local.display()
                )
            })
            .unwrap_or_else(|| "; pass an existing checkpoint prefix instead".to_string());
        return Err(CheckpointError::StateFileMissingPrefix {
            state_file,
            prefix,
            hint,
        });
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CheckpointError::Io {
        path: dir.to_path_buf(),
        error: source,
    })?;
    let mut candidates = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CheckpointError::Io {
            path: dir.to_path_buf(),
            error: source,
        })?;
        let name = entry.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".index")) {
            if !stem.is_empty() && entry.path().is_file() {
                candidates.push(dir.join(stem));
            }
        }
    }
    candidates.sort();
    match candidates.len() {
        0 => Err(CheckpointError::NoCheckpointInDir {
            dir: dir.to_path_buf(),
            hint: no_checkpoint_hint(dir),
        }),
        1 => Ok(candidates.remove(0)),
        _ => Err(CheckpointError::SeveralCheckpoints {
            dir: dir.to_path_buf(),
            candidates,
        }),
    }
}

/// What to say about a directory without a checkpoint: a converted model directory (or a
/// `--model both` output) is a common wrong argument, and deserves a precise pointer.
fn no_checkpoint_hint(dir: &Path) -> String {
    let holds_model = |d: &Path| {
        d.join("model.safetensors").is_file() || d.join("model.safetensors.index.json").is_file()
    };
    if holds_model(dir) {
        return "; it is a converted HuggingFace model directory, not a TensorFlow checkpoint: pass the TF checkpoint it was converted from (inspect and verify take the model directory itself)".to_string();
    }
    let models: Vec<String> = ["discriminator", "generator"]
        .iter()
        .filter(|sub| holds_model(&dir.join(sub)))
        .map(|sub| dir.join(sub).display().to_string())
        .collect();
    if !models.is_empty() {
        return format!(
            "; it holds converted HuggingFace models ({}), not a TensorFlow checkpoint: pass the TF checkpoint they were converted from, or one of those directories to inspect or verify",
            models.join(", ")
        );
    }
    "; pass the directory that holds the checkpoint, or the checkpoint prefix".to_string()
}

/// Parse a text-format `CheckpointState` and return `model_checkpoint_path`, if set.
/// Errors carry the 1-based line number.
pub fn parse_state_file(text: &[u8]) -> Result<Option<String>, (usize, String)> {
    let text = std::str::from_utf8(text).map_err(|e| (1, format!("not UTF-8 text ({e})")))?;
    let mut model_path = None;
    for (i, raw_line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (field, value) = line
            .split_once(':')
            .ok_or_else(|| (line_no, format!("expected `name: value`, found {line:?}")))?;
        let field = field.trim();
        let value = value.trim();
        match field {
            "model_checkpoint_path" => {
                model_path = Some(unquote(value).map_err(|e| (line_no, e))?);
            }
            "all_model_checkpoint_paths" => {
                unquote(value).map_err(|e| (line_no, e))?;
            }
            // Timestamps and anything newer: not needed to find the checkpoint.
            _ => {}
        }
    }
    Ok(model_path)
}

/// The `checkpoint` state file a TF1 `Saver(save_relative_paths=True)` writes after saving
/// `prefix_name` (a file name relative to the directory): `model_checkpoint_path` and a single
/// `all_model_checkpoint_paths`, no timestamps, each value quoted and C-escaped as protobuf's
/// text format does (`"`, `'`, `\\`, `\n`, `\r`, `\t`; other control and non-ASCII bytes in octal).
pub fn state_file_text(prefix_name: &str) -> String {
    let quoted = quote(prefix_name);
    format!("model_checkpoint_path: {quoted}\nall_model_checkpoint_paths: {quoted}\n")
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for &b in value.as_bytes() {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            other => out.push_str(&format!("\\{other:03o}")),
        }
    }
    out.push('"');
    out
}

/// Decode a double- (or single-) quoted C-escaped string.
fn unquote(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let quote = *bytes.first().ok_or("missing string value")?;
    if !(quote == b'"' || quote == b'\'') || bytes.len() < 2 || bytes[bytes.len() - 1] != quote {
        return Err(format!("expected a quoted string, found {value}"));
    }
    let inner = &bytes[1..bytes.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b == quote {
            return Err(format!("unescaped quote inside {value}"));
        }
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let esc = *inner.get(i).ok_or("string ends with a lone backslash")?;
        i += 1;
        match esc {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'\\' | b'\'' | b'"' | b'?' => out.push(esc),
            b'x' | b'X' => {
                let digits: Vec<u8> = inner[i..]
                    .iter()
                    .take(2)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .copied()
                    .collect();
                if digits.is_empty() {
                    return Err("\\x escape without hex digits".into());
                }
                i += digits.len();
                let s = std::str::from_utf8(&digits).map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(s, 16).map_err(|e| e.to_string())?);
            }
            b'0'..=b'7' => {
                let mut v: u32 = u32::from(esc - b'0');
                let mut n = 1;
                while n < 3 && i < inner.len() && (b'0'..=b'7').contains(&inner[i]) {
                    v = v * 8 + u32::from(inner[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(u8::try_from(v).map_err(|_| "octal escape above \\377".to_string())?);
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    String::from_utf8(out).map_err(|_| "path is not valid UTF-8 after unescaping".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_parsing() {
        let text = b"model_checkpoint_path: \"ckpt-2\"\nall_model_checkpoint_paths: \"ckpt-1\"\nall_model_checkpoint_paths: \"ckpt-2\"\nall_model_checkpoint_timestamps: 1795625281.8997242\nlast_preserved_timestamp: 1795625280.8585634\n";
        assert_eq!(parse_state_file(text).unwrap().as_deref(), Some("ckpt-2"));
        let escaped = br#"model_checkpoint_path: "dir with \"quotes\"/a\\b\101\x42\n""#;
        assert_eq!(
            parse_state_file(escaped).unwrap().as_deref(),
            Some("dir with \"quotes\"/a\\bAB\n")
        );
        assert_eq!(parse_state_file(b"").unwrap(), None);
        assert!(parse_state_file(b"model_checkpoint_path \"x\"").is_err());
        assert!(parse_state_file(b"model_checkpoint_path: x").is_err());
        assert!(parse_state_file(b"model_checkpoint_path: \"x\\q\"").is_err());
        assert!(parse_state_file(b"model_checkpoint_path: \"x\\\"").is_err());
    }

    #[test]
    fn state_file_text_is_what_the_saver_writes() {
        // fixtures/electra/tied/checkpoint, written by tf.compat.v1.train.Saver.
        let tf = std::fs::read_to_string(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/fixtures/electra/tied/checkpoint"
        ))
        .unwrap();
        assert_eq!(state_file_text("model.ckpt-1000"), tf);
        for name in ["a \"q\" b", "back\\slash", "tab\tnl\n", "caf\u{e9}", "it's"] {
            let text = state_file_text(name);
            assert_eq!(
                parse_state_file(text.as_bytes()).unwrap().as_deref(),
                Some(name)
            );
        }
        assert_eq!(quote("caf\u{e9}"), "\"caf\\303\\251\"");
    }

    #[test]
    fn suffixes_are_stripped() {
        let p = |s: &str| strip_known_suffix(Path::new(s));
        assert_eq!(
            p("a/model.ckpt-1000.index"),
            Some(PathBuf::from("a/model.ckpt-1000"))
        );
        assert_eq!(
            p("a/model.ckpt-1000.data-00000-of-00001"),
            Some(PathBuf::from("a/model.ckpt-1000"))
        );
        assert_eq!(p("m.meta"), Some(PathBuf::from("m")));
        assert_eq!(p("model.ckpt-1000"), None);
        assert_eq!(p("x.data-abc-of-1"), None);
        assert_eq!(p(".index"), None);
    }
}
