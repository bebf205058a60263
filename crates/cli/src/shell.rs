//! `candor completions` and `candor man`: generated from the same clap
//! definition as the parser, so they never disagree with it.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use clap_complete::Shell;

use crate::Outcome;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The script is rendered into memory first: clap_complete panics on a
/// failed write, and a closed pipe must end quietly instead.
pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> Result<Outcome> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "candor", &mut script);
    print(&script)
}

pub fn man(command: clap::Command) -> Result<Outcome> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    print(&page)
}

pub fn print(bytes: &[u8]) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(Outcome::Clean)
}
