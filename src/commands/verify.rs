//! `verify`: parity of a converted model against reference outputs or the checkpoint.

use crate::cli::VerifyArgs;

pub fn run(_args: &VerifyArgs) -> anyhow::Result<()> {
    anyhow::bail!("verify is not built yet")
}
