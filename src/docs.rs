//! The man page and shell completions, generated from the clap definitions
//! in `cli`, so they cannot drift from the flags the binary takes.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// `kaprobe completions SHELL`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "kaprobe", out);
    Ok(())
}

/// `kaprobe man [COMMAND]`: kaprobe(1), or kaprobe-COMMAND(1) for one of
/// the subcommands, which kaprobe(1) refers to by those names.
pub fn man(command: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let cmd = Cli::command();
    let page = match command {
        // `kaprobe help` is clap's, with no page of its own: a kaprobe-help(1)
        // listed among the subcommands would name a page nobody can install.
        None => cmd.disable_help_subcommand(true),
        Some(name) => {
            let sub = cmd
                .find_subcommand(name)
                .ok_or_else(|| io::Error::other(format!("no subcommand '{name}'")))?;
            let title = format!("kaprobe-{name}");
            sub.clone()
                .name(title.clone())
                .display_name(title)
                .version(env!("CARGO_PKG_VERSION"))
                // The version is for the page's footer: `kaprobe sniff`
                // takes no -V, so its synopsis must not show one.
                .disable_version_flag(true)
        }
    };
    clap_mangen::Man::new(page).render(out)
}
