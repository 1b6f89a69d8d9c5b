//! `covenant completions SHELL` and `covenant man [-o DIR]` through the real binary: the scripts
//! and pages are generated from the parser itself, so they name the real subcommands and flags.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::process::{Command, Output};

fn covenant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .output()
        .expect("the covenant binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn bash_completion_names_the_subcommands_and_their_flags() {
    let output = covenant(&["completions", "bash"]);
    assert!(output.status.success(), "{output:?}");
    let script = stdout(&output);
    assert!(
        script.contains("complete -F _covenant"),
        "not a bash completion script"
    );
    for word in ["run", "policy", "compile", "completions", "man"] {
        assert!(script.contains(word), "bash script does not mention {word}");
    }
    // A flag of `covenant run`, so the script descends into subcommands.
    assert!(
        script.contains("--strategy"),
        "bash script lacks covenant run's --strategy"
    );
}

#[test]
fn every_supported_shell_gets_a_script_naming_covenant() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = covenant(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = stdout(&output);
        assert!(
            script.contains("covenant"),
            "{shell} script does not name covenant"
        );
        assert!(
            script.contains("compile"),
            "{shell} script lacks the compile subcommand"
        );
    }
}

#[test]
fn an_unknown_shell_is_refused_with_exit_code_2() {
    let output = covenant(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn man_without_a_directory_prints_the_top_page() {
    let output = covenant(&["man"]);
    assert!(output.status.success(), "{output:?}");
    let page = stdout(&output);
    assert!(page.contains(".TH covenant 1"), "no .TH header: {page}");
    assert!(
        page.contains(".SH SUBCOMMANDS"),
        "no subcommand section: {page}"
    );
    // Subcommands are cross-referenced as their own pages (roff escapes the hyphen).
    for sub in ["run", "policy", "compile"] {
        assert!(
            page.contains(&format!("covenant\\-{sub}(1)")),
            "no covenant-{sub}(1): {page}"
        );
    }
}

#[test]
fn man_into_a_directory_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("man1");
    let output = covenant(&["man", "-o", out.to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "{output:?}");

    let top = std::fs::read_to_string(out.join("covenant.1")).expect("covenant.1 written");
    assert!(top.contains(".TH covenant 1"), "{top}");

    let run = std::fs::read_to_string(out.join("covenant-run.1")).expect("covenant-run.1 written");
    assert!(run.contains(".TH covenant-run 1"), "{run}");
    assert!(
        run.contains("strategy"),
        "covenant-run.1 does not describe --strategy"
    );

    // Nested subcommands get their own pages too.
    assert!(out.join("covenant-policy-build.1").is_file());
    // No page for clap's `help` pseudo-subcommand.
    assert!(!out.join("covenant-help.1").exists());

    // Every written page is listed on stdout, one path a line.
    let listed = stdout(&output);
    let count = std::fs::read_dir(&out).expect("read dir").count();
    assert_eq!(listed.lines().count(), count, "{listed}");
    assert!(
        listed.lines().any(|line| line.ends_with("covenant-run.1")),
        "{listed}"
    );
}
