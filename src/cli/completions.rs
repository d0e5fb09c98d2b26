//! `dpsbench completions`: a shell completion script on stdout.

use std::io::Write as _;

use anyhow::{Context, Result};
use clap::Args;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

pub(super) fn completions(args: CompletionsArgs) -> Result<i32> {
    use clap::CommandFactory as _;
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "dpsbench", &mut script);
    std::io::stdout().write_all(&script).context("cannot write the completion script")?;
    Ok(0)
}
