//! `covenant completions SHELL` and `covenant man [-o DIR]`: shell completion scripts and roff
//! manual pages, both generated from the same clap definition the binary parses with, so they
//! cannot drift from the real command line.
//!
//! Both take the built `clap::Command` from `main.rs` (`Cli::command()`) rather than naming the
//! `Cli` type here, so this module does not depend on how the top-level parser is declared.
//! Hidden subcommands (such as the host's internal `worker`) get no manual page; completion
//! scripts follow clap_complete, which also leaves hidden subcommands out.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use clap_complete::Shell;

/// The binary's name as users type it; completion scripts register themselves under it.
const BIN_NAME: &str = "covenant";

/// The subcommand's long help (`--help`).
pub const COMPLETIONS_LONG_ABOUT: &str = "Print a completion script for covenant to stdout. Load it in the current shell \
                  or save it where your shell looks for completions, e.g.\n\n  \
                  covenant completions bash > ~/.local/share/bash-completion/completions/covenant\n  \
                  covenant completions zsh > \"${fpath[1]}/_covenant\"\n  \
                  covenant completions fish > ~/.config/fish/completions/covenant.fish";

/// Print a shell completion script for covenant to stdout.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The subcommand's long help (`--help`).
pub const MAN_LONG_ABOUT: &str = "Write roff manual pages: covenant.1 and one page per subcommand \
                  (covenant-run.1, covenant-policy-build.1, ...). With -o DIR, every page is \
                  written into DIR (created if missing) and each path is printed; without it, \
                  the top-level page goes to stdout (try `covenant man | man -l -`).";

/// Write roff manual pages for covenant and each of its subcommands.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into this directory instead of printing the top-level page.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`, generated from `command`.
///
/// # Errors
///
/// Never in practice; the signature matches the other subcommands.
pub fn run_completions(
    args: CompletionsArgs,
    mut command: clap::Command,
) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, BIN_NAME, &mut stdout);
    stdout
        .flush()
        .context("writing the completion script to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the manual pages generated from `command`: all of them into `args.out_dir`, or the
/// top-level page to stdout.
///
/// # Errors
///
/// The directory cannot be created or a page cannot be written.
pub fn run_man(args: ManArgs, command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut command = command.disable_help_subcommand(true);
    // Building fills in each subcommand's display name (`covenant-run`), which the page's
    // title and file name come from.
    command.build();
    match args.out_dir {
        None => {
            let mut stdout = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")))
                .render(&mut stdout)
                .context("writing the manual page to stdout")?;
            stdout
                .flush()
                .context("writing the manual page to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut written = Vec::new();
            write_pages(&command, &dir, &mut written)?;
            for path in written {
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `command` and, depth first, of every visible subcommand into `dir`,
/// collecting the paths in the order written (parent first).
fn write_pages(
    command: &clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    // Every page names the package it comes from, not the subcommand (`run 0.1.0`).
    let man = clap_mangen::Man::new(command.clone())
        .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")));
    let path = man
        .generate_to(dir)
        .with_context(|| format!("writing {}", dir.join(man.get_filename()).display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
