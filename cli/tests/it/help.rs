//! `--help` names every command as it is today, each subcommand's help works, and
//! `completions` prints a script for each shell.

use std::process::{Command, Output};

fn alga(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .args(args)
        .output()
        .unwrap()
}

const COMMANDS: [&str; 18] = [
    "new",
    "up",
    "run",
    "emit",
    "keygen",
    "pack",
    "sign",
    "verify",
    "publish",
    "recompile",
    "install",
    "uninstall",
    "enable",
    "disable",
    "grant",
    "list",
    "invoke",
    "completions",
];

#[test]
fn help_is_current_for_every_command() {
    let out = alga(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for c in COMMANDS {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{c} "))),
            "--help does not list {c}:\n{help}"
        );
        let sub = alga(&[c, "--help"]);
        assert!(sub.status.success(), "{c} --help");
        let text = String::from_utf8(sub.stdout).unwrap();
        assert!(text.contains(&format!("Usage: alga-lambda {c}")), "{text}");
    }
    assert!(!help.contains("(later)"), "{help}");
    assert!(help.contains("alga-lambda new"), "{help}");
    assert!(help.contains("-v, --verbose"), "{help}");
    let up = String::from_utf8(alga(&["up", "--help"]).stdout).unwrap();
    assert!(up.contains("--json"), "{up}");
    let new = String::from_utf8(alga(&["new", "--help"]).stdout).unwrap();
    assert!(
        new.contains("- ts: TypeScript") && new.contains("- js: JavaScript"),
        "{new}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _alga__lambda"),
        ("zsh", "#compdef alga-lambda"),
        ("fish", "complete -c alga-lambda"),
    ] {
        let out = alga(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script}");
        for c in ["new", "publish", "completions"] {
            assert!(script.contains(c), "{shell} script lacks {c}");
        }
    }
    let out = alga(&["completions", "powershell-9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error[usage]: invalid value 'powershell-9'")
    );
}
