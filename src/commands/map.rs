//! `map`: print the mapping table as it applies to one checkpoint.

use crate::cli::MapArgs;

pub fn run(_args: &MapArgs) -> anyhow::Result<()> {
    anyhow::bail!("map is not built yet")
}
