//! `alga-lambda completions SHELL`: the shell completion script, generated from
//! the same clap definition that parses the command line (clap_complete), so it
//! never drifts from the commands.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use clap_complete::Shell as Target;

/// The shells a script is generated for.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    /// Bash: `source <(alga-lambda completions bash)`.
    Bash,
    /// Zsh: write it as `_alga-lambda` into a directory on `$fpath`.
    Zsh,
    /// Fish: write it to `~/.config/fish/completions/alga-lambda.fish`.
    Fish,
}

/// Arguments of `completions`.
#[derive(Args)]
#[command(after_help = "Install:\n  \
bash  echo 'source <(alga-lambda completions bash)' >> ~/.bashrc\n  \
zsh   alga-lambda completions zsh > \"${fpath[1]}/_alga-lambda\"\n  \
fish  alga-lambda completions fish > ~/.config/fish/completions/alga-lambda.fish")]
pub struct CompletionsArgs {
    /// The shell.
    shell: Shell,
}

/// Prints the script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs, mut cli: clap::Command) -> crate::Outcome {
    let target = match args.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    clap_complete::generate(target, &mut cli, "alga-lambda", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
