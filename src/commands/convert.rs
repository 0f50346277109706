//! `convert`: checkpoint → HuggingFace model directory (optionally verified).

use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    convert_one(args)
}

/// One conversion exactly as the `convert` command performs it; `batch` calls this per job.
pub fn convert_one(_args: &ConvertArgs) -> anyhow::Result<()> {
    anyhow::bail!("convert is not built yet")
}
