//! `inspect`: list the tensors of a TF checkpoint, a `.safetensors` file or a HuggingFace
//! model directory.
//!
//! For checkpoints the default table hides Adam slots (`*/adam_m`, `*/adam_v`) and
//! `global_step` behind one summary line; `--all` lists every variable exactly as
//! `tf.train.list_variables` does. `--json` prints the same information machine-readably.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::InspectArgs;
use tf_checkpoint::TensorInfo;

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let target = match electra_convert::source::is_tf_weights(&args.path) {
        true => None,
        false => safetensors_target(&args.path)?,
    };
    let out = match target {
        Some(target) => inspect_safetensors(&target, args)?,
        None => match model_subdirs(&args.path)? {
            Some(targets) => inspect_models(&args.path, &targets, args)?,
            None => inspect_checkpoint(&args.path, args)?,
        },
    };
    print!("{out}");
    Ok(())
}

/// A `--model both` output: `DIR/discriminator/` and `DIR/generator/`, each a model directory.
/// `None` when `path` is not a directory or has neither subdirectory.
fn model_subdirs(path: &Path) -> anyhow::Result<Option<Vec<SafetensorsTarget>>> {
    if !path.is_dir() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    for sub in ["discriminator", "generator"] {
        if let Some(target) = safetensors_target(&path.join(sub))? {
            targets.push(target);
        }
    }
    Ok(Some(targets).filter(|t| !t.is_empty()))
}

/// Every model directory of a `--model both` output, one after the other (JSON: `models[]`).
fn inspect_models(
    path: &Path,
    targets: &[SafetensorsTarget],
    args: &InspectArgs,
) -> anyhow::Result<String> {
    let parts = targets
        .iter()
        .map(|t| inspect_safetensors(t, args))
        .collect::<anyhow::Result<Vec<String>>>()?;
    if args.json {
        let models = parts
            .iter()
            .map(|p| serde_json::from_str(p))
            .collect::<Result<Vec<Value>, _>>()?;
        let doc = json!({"directory": path.display().to_string(), "models": models});
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    let names: Vec<String> = targets
        .iter()
        .map(|t| t.shown.display().to_string())
        .collect();
    Ok(format!(
        "{} holds {} converted model(s): {}\n\n{}",
        path.display(),
        targets.len(),
        names.join(", "),
        parts.join("\n")
    ))
}

/// What a safetensors inspection reads: the weight files and an optional config.json.
struct SafetensorsTarget {
    shown: PathBuf,
    files: Vec<PathBuf>,
    config: Option<PathBuf>,
}

/// Decide whether `path` is a safetensors file or a model directory (rather than a checkpoint).
fn safetensors_target(path: &Path) -> anyhow::Result<Option<SafetensorsTarget>> {
    if path.is_file() && path.extension().is_some_and(|e| e == "safetensors") {
        return Ok(Some(SafetensorsTarget {
            shown: path.to_path_buf(),
            files: vec![path.to_path_buf()],
            config: None,
        }));
    }
    if !path.is_dir() {
        return Ok(None);
    }
    let config = Some(path.join("config.json")).filter(|c| c.is_file());
    // The same listing verify and export use: shard names that leave the directory are refused.
    match electra_convert::verify::listed_weight_files(path) {
        Ok(Some(files)) => Ok(Some(SafetensorsTarget {
            shown: path.to_path_buf(),
            files,
            config,
        })),
        Ok(None) => Ok(None),
        Err((index, error)) => Err(anyhow::anyhow!("{}: {error}", index.display())),
    }
}

/// `1536` → `1.5 KiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Render rows as left-aligned columns (the size column right-aligned).
fn table(header: [&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 4], out: &mut String| {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        ));
    };
    line(header, &mut out);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3]], &mut out);
    }
    out
}

/// Is this an optimizer slot (hidden by default)?
fn slot_kind(name: &str) -> Option<&'static str> {
    if name.ends_with("/adam_m") {
        Some("adam_m")
    } else if name.ends_with("/adam_v") {
        Some("adam_v")
    } else {
        None
    }
}

use electra_convert::mapping::tf2_encoder::layout_title;

fn inspect_checkpoint(path: &Path, args: &InspectArgs) -> anyhow::Result<String> {
    let ckpt = electra_convert::source::open(path)?;
    let bytes_of = |t: &TensorInfo| {
        t.num_bytes()
            .unwrap_or_else(|| ckpt.stored_len(&t.name).unwrap_or(0))
    };
    let (mut adam_m, mut adam_v, mut slot_bytes) = (0usize, 0usize, 0u64);
    for t in ckpt.tensors() {
        match slot_kind(&t.name) {
            Some("adam_m") => adam_m += 1,
            Some(_) => adam_v += 1,
            None => continue,
        }
        slot_bytes += bytes_of(t);
    }
    let global_step = match ckpt.get("global_step") {
        Some(_) => Some(ckpt.read_i64_scalar("global_step")?),
        None => None,
    };
    let hidden =
        |t: &TensorInfo| !args.all && (slot_kind(&t.name).is_some() || t.name == "global_step");
    let shown: Vec<&TensorInfo> = ckpt.tensors().iter().filter(|t| !hidden(t)).collect();
    let total_bytes: u64 = ckpt.tensors().iter().map(bytes_of).sum();
    let graph = ckpt.object_graph()?;
    let vars = electra_convert::convert::source_vars(&ckpt);
    let layout = electra_convert::mapping::detect_layout(&vars, graph.as_ref());
    let form = form_text(&ckpt);

    if args.json {
        let tensors: Vec<Value> = shown
            .iter()
            .map(|t| {
                json!({"name": t.name, "dtype": t.dtype.tf_name(), "shape": t.shape,
                       "bytes": bytes_of(t)})
            })
            .collect();
        let layout = match &layout {
            Ok(l) => json!({"id": l.as_str(), "name": layout_title(*l, graph.as_ref())}),
            Err(e) => json!({"id": null, "name": null, "problem": e.to_string()}),
        };
        let doc = json!({
            "checkpoint": ckpt.location(),
            "form": {"id": ckpt.form(), "name": ckpt.form().title(), "location": ckpt.location()},
            "layout": layout,
            "tensors": tensors,
            "optimizer_slots": {"count": adam_m + adam_v, "adam_m": adam_m, "adam_v": adam_v,
                                "bytes": slot_bytes},
            "global_step": global_step,
            "fetched": ckpt.fetched(),
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }

    let rows: Vec<[String; 4]> = shown
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.dtype.tf_name(),
                shape_text(&t.shape),
                human_bytes(bytes_of(t)),
            ]
        })
        .collect();
    let mut out = format!(
        "checkpoint {} ({} tensors, {}, {} shard{})\n\n",
        ckpt.location(),
        ckpt.tensors().len(),
        human_bytes(total_bytes),
        ckpt.num_shards(),
        if ckpt.num_shards() == 1 { "" } else { "s" }
    );
    out.push_str(&format!("form: {form}\n"));
    if let Some(f) = ckpt.fetched() {
        out.push_str(&format!(
            "fetched: {} of {} in {} requests (no tensor data but the step counter)\n",
            human_bytes(f.bytes_fetched),
            human_bytes(f.checkpoint_bytes),
            f.requests
        ));
    }
    match &layout {
        Ok(l) => out.push_str(&format!("layout: {}\n\n", layout_title(*l, graph.as_ref()))),
        Err(e) => out.push_str(&format!(
            "layout: not one electra-convert converts ({e})\n\n"
        )),
    }
    out.push_str(&table(["name", "dtype", "shape", "size"], &rows));
    if !args.all && (adam_m + adam_v > 0 || global_step.is_some()) {
        let mut parts = Vec::new();
        if adam_m + adam_v > 0 {
            parts.push(format!(
                "{} optimizer slots ({adam_m} adam_m, {adam_v} adam_v, {})",
                adam_m + adam_v,
                human_bytes(slot_bytes)
            ));
        }
        if let Some(step) = global_step {
            parts.push(format!("global_step = {step}"));
        }
        out.push_str(&format!(
            "\n+ {} (hidden; --all lists them)\n",
            parts.join(", ")
        ));
    }
    Ok(out)
}

/// The form line: its title, and for an archive which checkpoint inside which file.
fn form_text(ckpt: &electra_convert::source::Source) -> String {
    use electra_convert::source::{zip, Form};
    let title = ckpt.form().title();
    match (ckpt.form(), zip::split_zip_selector(ckpt.location())) {
        (Form::Zip, (archive, Some(inner))) => {
            format!("{title} ({inner} inside {})", archive.display())
        }
        _ => title.to_string(),
    }
}

/// One tensor of a safetensors file, as listed.
struct StTensor {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    bytes: u64,
}

fn read_safetensors(
    path: &Path,
) -> anyhow::Result<(Vec<StTensor>, std::collections::BTreeMap<String, String>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only map of a file we do not modify; see checkpoint::ShardData for the
    // truncation caveat shared by every file mapping.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid safetensors file ({e:?}); it may be truncated or not safetensors at all",
            path.display()
        )
    })?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&map).map_err(|e| {
        anyhow::anyhow!("{}: unreadable safetensors header ({e:?})", path.display())
    })?;
    let mut tensors: Vec<StTensor> = st
        .iter()
        .map(|(name, view)| StTensor {
            name: name.to_string(),
            dtype: format!("{:?}", view.dtype()),
            shape: view.shape().iter().map(|&d| d as u64).collect(),
            bytes: view.data().len() as u64,
        })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let meta = metadata
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok((tensors, meta))
}

fn inspect_safetensors(target: &SafetensorsTarget, args: &InspectArgs) -> anyhow::Result<String> {
    let mut tensors = Vec::new();
    let mut metadata = std::collections::BTreeMap::new();
    for file in &target.files {
        let (t, m) = read_safetensors(file)?;
        tensors.extend(t);
        metadata.extend(m);
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let config: Option<Value> = match &target.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not valid JSON; fix or regenerate it", path.display())
            })?)
        }
        None => None,
    };
    let total: u64 = tensors.iter().map(|t| t.bytes).sum();
    if args.json {
        let list: Vec<Value> = tensors
            .iter()
            .map(|t| json!({"name": t.name, "dtype": t.dtype, "shape": t.shape, "bytes": t.bytes}))
            .collect();
        let doc = json!({
            "safetensors": target.shown.display().to_string(),
            "files": target.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "metadata": metadata,
            "config": config,
            "tensors": list,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    let mut out = format!(
        "safetensors {} ({} tensors, {})\n",
        target.shown.display(),
        tensors.len(),
        human_bytes(total)
    );
    if !metadata.is_empty() {
        let pairs: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("metadata: {}\n", pairs.join(", ")));
    }
    if let Some(config) = &config {
        let keys = [
            "model_type",
            "architectures",
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        ];
        let pairs: Vec<String> = keys
            .iter()
            .filter_map(|k| config.get(*k).map(|v| format!("{k}={v}")))
            .collect();
        out.push_str(&format!("config: {}\n", pairs.join(", ")));
    }
    out.push('\n');
    let rows: Vec<[String; 4]> = tensors
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.dtype.clone(),
                shape_text(&t.shape),
                human_bytes(t.bytes),
            ]
        })
        .collect();
    out.push_str(&table(["name", "dtype", "shape", "size"], &rows));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn slots() {
        assert_eq!(slot_kind("a/kernel/adam_m"), Some("adam_m"));
        assert_eq!(slot_kind("a/kernel/adam_v"), Some("adam_v"));
        assert_eq!(slot_kind("a/kernel"), None);
        assert_eq!(shape_text(&[]), "[]");
        assert_eq!(shape_text(&[2, 3]), "[2, 3]");
    }
}
