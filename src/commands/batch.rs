//! `batch`: run a manifest of conversions for CI.

use crate::cli::BatchArgs;

pub fn run(_args: &BatchArgs) -> anyhow::Result<()> {
    anyhow::bail!("batch is not built yet")
}
