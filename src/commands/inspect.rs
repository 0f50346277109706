//! `inspect`: list the tensors of a checkpoint, safetensors file or model directory.

use crate::cli::InspectArgs;

pub fn run(_args: &InspectArgs) -> anyhow::Result<()> {
    anyhow::bail!("inspect is not built yet")
}
