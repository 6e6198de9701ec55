//! Generated artifacts: shell completion scripts and man pages, rendered from the clap
//! definition. They are committed under `completions/` and `man/`; a test fails when they drift.

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;

/// Every generated file as `(relative path, content)`.
pub fn artifacts() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "ldv.bash"),
        (Shell::Zsh, "_ldv"),
        (Shell::Fish, "ldv.fish"),
        (Shell::PowerShell, "_ldv.ps1"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "ldv", &mut buf);
        out.push((format!("completions/{file}"), buf));
    }
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .expect("rendering to memory cannot fail");
    out.push(("man/ldv.1".to_owned(), page));
    for sub in cmd.get_subcommands() {
        let name = format!("ldv-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .expect("rendering to memory cannot fail");
        out.push((format!("man/{name}.1"), page));
    }
    out
}
