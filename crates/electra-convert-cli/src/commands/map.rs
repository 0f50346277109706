//! `map`: print the mapping table as it applies to one checkpoint.

use std::fmt::Write as _;

use anyhow::Context;
use serde_json::json;

use crate::cli::MapArgs;
use electra_convert::mapping::{self, Plan, SkipCategory, SourceLayout};
use electra_convert::options::ModelKind;

pub fn run(args: &MapArgs) -> anyhow::Result<()> {
    if args.checkpoint.join("config.json").is_file()
        && !electra_convert::source::is_tf_weights(&args.checkpoint)
    {
        return run_reverse(args);
    }
    let ckpt = electra_convert::source::open(&args.checkpoint)
        .with_context(|| format!("cannot open checkpoint {}", args.checkpoint.display()))?;
    let vars = electra_convert::convert::source_vars(&ckpt);
    let graph = ckpt.object_graph()?;
    let plans = mapping::plan_checkpoint(args.model, &vars, graph.as_ref(), args.layout)
        .with_context(|| format!("checkpoint {}", ckpt.location()))?;
    let layout = plans[0].source_layout;
    if args.json {
        let out = json!({
            "checkpoint": ckpt.location(),
            "form": {"id": ckpt.form(), "name": ckpt.form().title(), "location": ckpt.location()},
            "layout": {"id": layout.as_str(), "name": electra_convert::mapping::tf2_encoder::layout_title(layout, graph.as_ref())},
            "model": args.model,
            "models": plans,
            "fetched": ckpt.fetched(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut out = String::new();
        let _ = writeln!(out, "checkpoint {}", ckpt.prefix().display());
        let _ = writeln!(out, "form: {}", ckpt.form().title());
        let _ = writeln!(
            out,
            "layout: {}",
            electra_convert::mapping::tf2_encoder::layout_title(layout, graph.as_ref())
        );
        for plan in &plans {
            out.push('\n');
            out.push_str(&render_text(plan));
        }
        print!("{out}");
    }
    Ok(())
}

fn shape(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    )
}

/// The human-readable table of one plan.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let d = &plan.dims;
    let project = if plan.layout.embeddings_project {
        "yes"
    } else {
        "no"
    };
    if plan.source_layout == SourceLayout::GoogleTf1 {
        let _ = writeln!(
            out,
            "--model {} → {} (TF tower `{}`, embeddings `{}/embeddings`, {} layer(s), embeddings_project {project})",
            plan.kind.as_str(),
            plan.class,
            plan.layout.tower,
            plan.layout.embeddings_scope,
            plan.layout.layers,
        );
    } else {
        let _ = writeln!(
            out,
            "--model {} → {} ({} tower object `{}`, word table stored under `{}`, {} layer(s), embeddings_project {project}; keys resolved through the object graph)",
            plan.kind.as_str(),
            plan.class,
            plan.source_layout.title(),
            plan.layout.tower,
            plan.layout.embeddings_scope,
            plan.layout.layers,
        );
    }
    let _ = writeln!(
        out,
        "sizes: vocab_size {}, embedding_size {}, hidden_size {}, intermediate_size {}, num_hidden_layers {}, max_position_embeddings {}, type_vocab_size {}",
        d.vocab_size,
        d.embedding_size,
        d.hidden_size,
        d.intermediate_size,
        d.num_hidden_layers,
        d.max_position_embeddings,
        d.type_vocab_size
    );
    let tf_w = plan
        .entries
        .iter()
        .map(|e| e.tf.len())
        .max()
        .unwrap_or(0)
        .max("TF variable".len());
    let hf_w = plan
        .entries
        .iter()
        .map(|e| e.hf.len())
        .max()
        .unwrap_or(0)
        .max("HuggingFace tensor".len());
    let _ = writeln!(
        out,
        "\n{:tf_w$}  {:hf_w$}  {:9}  shape (TF → HF)",
        "TF variable", "HuggingFace tensor", "transform"
    );
    for e in &plan.entries {
        let _ = writeln!(
            out,
            "{:tf_w$}  {:hf_w$}  {:9}  {} → {}",
            e.tf,
            e.hf,
            e.transform.as_str(),
            shape(&e.tf_shape),
            shape(&e.hf_shape)
        );
    }
    for t in &plan.tied {
        let _ = writeln!(
            out,
            "{:tf_w$}  {:hf_w$}  {:9}  not stored: tied to {}",
            "-", t.hf, "tied", t.same_as
        );
    }
    let slots = plan
        .skipped
        .iter()
        .filter(|s| s.category == SkipCategory::OptimizerSlot)
        .count();
    let _ = writeln!(
        out,
        "\nskipped: {} variable(s){}",
        plan.skipped.len(),
        if slots > 0 {
            if plan.source_layout == SourceLayout::GoogleTf1 {
                format!(" ({slots} of them Adam optimizer slots, adam_m/adam_v: training state, not weights)")
            } else {
                format!(" ({slots} of them optimizer slots, `.OPTIMIZER_SLOT/...`: training state, not weights)")
            }
        } else {
            String::new()
        }
    );
    for s in plan
        .skipped
        .iter()
        .filter(|s| s.category != SkipCategory::OptimizerSlot)
    {
        let _ = writeln!(out, "  {}  {}  {}", s.tf, shape(&s.shape), s.reason);
    }
    if !plan.task_heads.is_empty() {
        let _ = writeln!(
            out,
            "task heads found (not exported): {}",
            plan.task_heads.join(", ")
        );
    }
    out
}

/// `map` of a HuggingFace directory: what `export` writes for each of its tensors.
fn run_reverse(args: &MapArgs) -> anyhow::Result<()> {
    let kinds: Vec<ModelKind> = match args.model {
        ModelKind::Discriminator | ModelKind::Generator => vec![args.model],
        other => anyhow::bail!(
            "{} is a HuggingFace model directory; map shows how export writes it, which needs --model discriminator or --model generator (not {})",
            args.checkpoint.display(),
            other.as_str()
        ),
    };
    let maps = kinds
        .iter()
        .map(|&k| electra_convert::export::reverse_map(&args.checkpoint, k))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let out = json!({"directory": args.checkpoint, "model": args.model, "direction": "export", "models": maps});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut out = String::new();
    for m in &maps {
        let _ = writeln!(
            out,
            "{} ({}) → TF checkpoint (export; the tables of `map` read backwards)\n",
            m.directory.display(),
            m.class
        );
        let hf_w = m
            .entries
            .iter()
            .map(|e| e.hf.len())
            .max()
            .unwrap_or(0)
            .max(18);
        let tf_w = m
            .entries
            .iter()
            .map(|e| e.tf.len())
            .max()
            .unwrap_or(0)
            .max(11);
        let _ = writeln!(
            out,
            "{:hf_w$}  {:tf_w$}  {:9}  shape (HF → TF)",
            "HuggingFace tensor", "TF variable", "transform"
        );
        for e in &m.entries {
            let _ = writeln!(
                out,
                "{:hf_w$}  {:tf_w$}  {:9}  {} → {}",
                e.hf,
                e.tf,
                e.transform.as_str(),
                shape(&e.hf_shape),
                shape(&e.tf_shape)
            );
        }
        if !m.not_written.is_empty() {
            let _ = writeln!(
                out,
                "\nnot written (tied or buffers): {}",
                m.not_written.join(", ")
            );
        }
    }
    print!("{out}");
    Ok(())
}
