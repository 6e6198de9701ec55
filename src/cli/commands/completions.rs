//! `ldv completions SHELL`.

use clap::CommandFactory;

use crate::cli::args::{Cli, CompletionsArgs};

/// Prints the completion script for the shell on stdout.
pub fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "ldv",
        &mut std::io::stdout(),
    );
    Ok(0)
}
