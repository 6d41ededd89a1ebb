//! The `natter` command line as people meet it: every subcommand's
//! `--help` ends with examples, and `natter completions` writes a script
//! that completes every subcommand.

use std::process::Command;

/// Runs `natter ARGS`; its stdout, after checking that it succeeded.
fn natter(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(args)
        .output()
        .expect("running the natter binary");
    assert!(
        out.status.success(),
        "natter {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("natter prints UTF-8")
}

/// The subcommands `natter --help` lists under "Commands:", but `help`.
fn subcommands() -> Vec<String> {
    let help = natter(&["--help"]);
    let commands: Vec<String> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    for expected in ["serve", "turn", "join", "send", "receive", "echo", "completions"] {
        assert!(
            commands.iter().any(|c| c == expected),
            "`natter --help` lists {expected} among {commands:?}"
        );
    }
    commands
}

#[test]
fn every_subcommand_help_has_examples() {
    for command in subcommands() {
        let help = natter(&[&command, "--help"]);
        let examples = help
            .split_once("\nExamples:\n")
            .map(|(_, after)| after)
            .unwrap_or_else(|| panic!("`natter {command} --help` has no \"Examples:\" section:\n{help}"));
        assert!(
            examples.contains(&format!("natter {command}")),
            "the examples of `natter {command} --help` run natter {command}:\n{examples}"
        );
    }
}

#[test]
fn bash_completions_name_every_subcommand() {
    let script = natter(&["completions", "bash"]);
    assert!(script.contains("complete -F"), "a bash completion script:\n{script}");
    // The words completed after `natter`: the top level's `opts="..."`.
    let top = script
        .lines()
        .find(|line| line.trim_start().starts_with("opts=\"") && line.contains("--version"))
        .unwrap_or_else(|| panic!("no top-level opts line in the bash script:\n{script}"));
    let words: Vec<&str> = top
        .trim()
        .trim_start_matches("opts=\"")
        .trim_end_matches('"')
        .split_whitespace()
        .collect();
    for command in subcommands() {
        assert!(
            words.contains(&command.as_str()),
            "bash completes {command} after natter: {top}"
        );
    }
}

#[test]
fn completions_for_every_shell_and_a_clear_error_for_others() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(
            natter(&["completions", shell]).contains("natter"),
            "the {shell} script names natter"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["completions", "tcsh"])
        .output()
        .expect("running the natter binary");
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'tcsh'") && stderr.contains("bash"),
        "the error names the shell and the choices: {stderr}"
    );
}
